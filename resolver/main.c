/*
 * dnswarden: a DNS forwarder that blocks listed sites and logs attempts.
 * main wires the modules together: it parses the command line, loads the
 * configuration and blocklist, owns the event base and the signals.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "attemptlog.h"
#include "central.h"
#include "blocklist.h"
#include "build_config.h"
#include "cache.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "counters.h"
#include "dot.h"
#include "fetch.h"
#include "frontend.h"
#include "http.h"
#include "upstream.h"
#include "log.h"
#include "privsep.h"
#include "thread.h"
#include "ratelimit.h"
#include "report.h"

#define MAX_THREADS	64

struct daemon;

/* One event loop with its own sockets (SO_REUSEPORT), cache and counters. */
struct worker {
	struct daemon		*d;
	pthread_t		 thread;
	bool			 started;
	struct event_base	*base;
	struct frontend		*fe;
	struct counters		 ctr;
};

/* Everything the running daemon holds; the signal callbacks get it. */
struct daemon {
	const char		*config_path;
	struct config		*cfg;
	struct blocklist	*bl;
	struct attemptlog	*log;
	struct central		*central;	/* log.central, or NULL */
	struct fetch		*fetch;		/* url: imports; NULL: none */
	struct ratelimit	*rl;		/* shared by every loop */
	unsigned		 nworkers;
	struct worker		 workers[MAX_THREADS];	/* [0]: main thread */
	/* A reload hands the new cfg/bl to every loop and waits for all. */
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	unsigned		 acks;
	struct config		*next_cfg;
	struct blocklist	*next_bl;
	struct privsep		*ps;		/* reads files for a reload */
	struct privsep_db	 db;		/* where the writer opens it */
	struct reload_stats	 reload;
	struct http		*http;		/* the console; NULL: none */
	/*
	 * What the console's /metrics shows of the upstreams and reloads:
	 * a copy made once a second on the main loop, which is where
	 * reloads happen, so the console's thread never reads a loop's
	 * upstreams while a reload replaces them.
	 */
	struct event		*snap_ev;
	pthread_mutex_t		 snap_mtx;
	struct http_upstream	 snap[UPSTREAM_STATS_MAX];
	size_t			 nsnap;
	struct reload_stats	 snap_reload;
	char			 reload_error[256];	/* the last failure's */
	struct control		*ctl;		/* server.control_socket */
	uint64_t		 started_ms;	/* monotonic */
	/* A job run in every loop's own thread (daemon_on_workers()). */
	void			(*job)(struct worker *, void *);
	void			*job_arg;
	unsigned		 job_acks;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: dnswarden serve [-v] [-c FILE]\n"
	    "       dnswarden check [-c FILE] [--probe]\n"
	    "       dnswarden lookup [-c FILE] [--client ADDR] NAME...\n"
	    "       dnswarden update-lists [-c FILE]\n"
	    "       dnswarden report [-c FILE | --database FILE] [--since DATE]"
	    " [--until DATE]\n"
	    "                        [--by KEY] [--top N] [--tz ZONE]"
	    " [--format table|csv|json]\n"
	    "       dnswarden log [-c FILE | --database FILE] [--since DATE]"
	    " [--until DATE]\n"
	    "                     [--client ADDR|NAME] [--site NAME]"
	    " [--category NAME] [--rule NAME]\n"
	    "                     [--limit N] [--before ID] [--tz ZONE]"
	    " [--format table|csv|json]\n"
	    "       dnswarden passwd < PASSWORD\n"
	    "       dnswarden token [NAME [ROLE]]\n"
	    "       dnswarden ctl [-c FILE] reload|flush [NAME]|stats|upstreams"
	    "|status\n"
	    "       dnswarden help [COMMAND]\n"
	    "       dnswarden --version\n"
	    "Default FILE: %s\n", CONFIG_DEFAULT_PATH);
}

/* Parse the -c/-v options shared by serve, check and lookup. */
static int
parse_common(int argc, char **argv, const char **path, bool *verbose)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	*path = CONFIG_DEFAULT_PATH;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:v", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			*path = optarg;
			break;
		case 'v':
			if (verbose == NULL)
				return -1;
			*verbose = true;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

/*
 * Load configuration and blocklist, printing diagnostics; 0 or -1. On
 * failure err (if not NULL) gets the first message, for a reload's caller.
 * With summary, a load that worked prints only how many warnings it had.
 */
static int
load_all_err(const char *path, struct config **cfgp, struct blocklist **blp,
    char *err, size_t errlen, bool summary)
{
	struct diag d;

	diag_init(&d);
	*cfgp = config_load(path, &d);
	*blp = *cfgp ? blocklist_load(*cfgp, &d) : NULL;
	if (!summary || *cfgp == NULL || *blp == NULL || d.errors > 0)
		fputs(diag_text(&d), stderr);
	else if (d.warnings > 0)
		fprintf(stderr, "%u warning%s loading %s and its blocklists: "
		    "dnswarden check -c %s shows %s\n", d.warnings,
		    d.warnings == 1 ? "" : "s", path, path,
		    d.warnings == 1 ? "it" : "them");
	if (err != NULL)
		snprintf(err, errlen, "%.*s", (int)strcspn(diag_text(&d), "\n"),
		    diag_text(&d));
	diag_free(&d);
	if (*cfgp == NULL || *blp == NULL) {
		config_free(*cfgp);
		*cfgp = NULL;
		return -1;
	}
	return 0;
}

static int
load_all(const char *path, struct config **cfgp, struct blocklist **blp)
{
	return load_all_err(path, cfgp, blp, NULL, 0, false);
}

/* What check found; with soft, errors count as notes (log.required). */
struct check_result {
	unsigned	errors;
	bool		soft;
};

/* privsep_report_fn for check: errors and notes, one line each. */
static void
check_report_cb(void *ctx, bool error, const char *msg)
{
	struct check_result *r = ctx;

	error = error && !r->soft;
	fprintf(stderr, "%s%s\n", error ? "" : "note: ", msg);
	if (error)
		r->errors++;
}

/*
 * What serve would find as server.user: the user exists, the files are
 * readable, the database can be written (an error unless log.required is
 * false, as at start). Returns the number of errors.
 */
static unsigned
check_service_user(const char *path, const struct config *cfg)
{
	struct check_result r = { 0, false };
	struct privsep_user u;
	char err[512];

	if (privsep_user_find(cfg, &u, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (u.fallback)
		fprintf(stderr, "note: user %s does not exist; serve would run"
		    " as nobody, which other services share\n",
		    CONFIG_USER_DEFAULT);
	privsep_check_readable(path, &u, check_report_cb, &r);
	r.soft = !cfg->log.required;
	privsep_check_database(cfg, &u, false, check_report_cb, &r, NULL);
	return r.errors;
}

/*
 * One line per TLS upstream: what its certificate must name and, with
 * probe, whether it answers with that certificate now. Returns the
 * number of probes that failed.
 */
static unsigned
check_tls_upstreams(const struct config *cfg, bool probe)
{
	struct dot_ctx *ctx = NULL;
	char msg[512];
	unsigned failed = 0;

	for (size_t i = 0; i < cfg->nupstreams; i++) {
		const struct config_upstream *u = &cfg->upstreams[i];
		if (u->tls_name[0] == '\0')
			continue;
		printf("  %s over TLS, certificate for %s (CAs: %s)",
		    u->text, u->tls_name, cfg->tls_ca_file ? cfg->tls_ca_file :
		    "the system store");
		if (!probe) {
			putchar('\n');
			continue;
		}
		if (ctx == NULL &&
		    (ctx = dot_ctx_new(cfg->tls_ca_file, msg, sizeof(msg))) ==
		    NULL) {
			printf(": probe failed: %s\n", msg);
			failed++;
			continue;
		}
		if (dot_probe(ctx, &u->addr, u->tls_name,
		    cfg->upstream_timeout_ms, msg, sizeof(msg)) == 0)
			printf(": probe ok: %s\n", msg);
		else {
			printf(": probe failed: %s\n", msg);
			failed++;
		}
	}
	dot_ctx_free(ctx);
	return failed;
}

static void
print_cpus(const char *what, const struct config_cpus *c)
{
	printf("%s", what);
	for (size_t i = 0; i < c->n; i++)
		printf("%s%u", i ? "," : " ", c->cpu[i]);
}

/* Where the threads will run, when the keys say anything: server.cpus
 * alone leaves the console's CPUs to be worked out (docs/console.md). */
static void
check_print_cpus(const struct config *cfg)
{
	if (cfg->server.cpus.n == 0 && cfg->http.cpus.n == 0)
		return;
	print_cpus("CPUs: DNS loops", &cfg->server.cpus);
	if (cfg->server.cpus.n == 0)
		printf(" any");
	if (cfg->http.nlisten == 0) {
		printf("\n");
		return;
	}
	print_cpus(", console", &cfg->http.cpus);
	if (cfg->http.cpus.n == 0)
		printf(" beside the DNS loops (no CPU left)");
	else if (cfg->http.cpus_rest)
		printf(" (those server.cpus leaves)");
	printf(", http.nice %u\n", cfg->http.nice);
}

static int
cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "probe", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = CONFIG_DEFAULT_PATH;
	struct config *cfg;
	struct blocklist *bl;
	bool probe = false;
	unsigned failed;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (ch == 'c')
			path = optarg;
		else if (ch == 'p')
			probe = true;
		else {
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "dnswarden check: unexpected argument \"%s\"\n"
		    "usage: dnswarden check [-c FILE] [--probe]\n", argv[optind]);
		return 2;
	}
	if (load_all(path, &cfg, &bl) == -1)
		return 1;
	if (check_service_user(path, cfg) > 0) {
		blocklist_free(bl);
		config_free(cfg);
		return 1;
	}
	printf("%s: configuration valid\n", path);
	printf("upstreams: %zu, listen addresses: %zu\n", cfg->nupstreams,
	    cfg->server.nlisten);
	check_print_cpus(cfg);
	failed = check_tls_upstreams(cfg, probe);
	blocklist_print_summary(bl, stdout);
	fetch_print_status(bl, time(NULL), stdout);
	blocklist_free(bl);
	config_free(cfg);
	return failed > 0 ? 1 : 0;
}

/* ":LINE" and the newline; built-in entries have no line. */
static void
print_line(unsigned line)
{
	if (line > 0)
		printf(":%u", line);
	putchar('\n');
}

/* lookup's options: -c FILE and --client ADDR. */
static int
parse_lookup(int argc, char **argv, const char **path, const char **client)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "client", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	*path = CONFIG_DEFAULT_PATH;
	*client = NULL;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (ch == 'c')
			*path = optarg;
		else if (ch == 'C')
			*client = optarg;
		else
			return -1;
	}
	return optind == argc ? -1 : 0;
}

/* The policy for lookup --client ADDR (the default without one); -2 when
 * ADDR is not an address. */
static int
lookup_policy(const struct blocklist *bl, const char *client)
{
	struct netaddr na;
	const char *why;

	if (client == NULL)
		return BLOCKLIST_POLICY_DEFAULT;
	if (netaddr_parse(client, 53, &na, &why) == -1) {
		fprintf(stderr, "--client %s: %s\n", client, why);
		return -2;
	}
	return blocklist_policy_of(bl, (struct sockaddr *)&na.ss);
}

static int
cmd_lookup(int argc, char **argv)
{
	const char *path, *client, *pname;
	struct config *cfg;
	struct blocklist *bl;
	int status = 0, pol;

	if (parse_lookup(argc, argv, &path, &client) == -1) {
		fprintf(stderr, "dnswarden lookup: %s\nusage: dnswarden lookup "
		    "[-c FILE] [--client ADDR] NAME...\n", optind == argc ?
		    "no NAME given" : "unknown option or missing value");
		return 2;
	}
	/* Its output is its answer: warnings in one line (check shows them). */
	if (load_all_err(path, &cfg, &bl, NULL, 0, true) == -1)
		return 1;
	if ((pol = lookup_policy(bl, client)) == -2) {
		blocklist_free(bl);
		config_free(cfg);
		return 2;
	}
	pname = blocklist_policy_name(bl, pol);
	if (client != NULL)
		printf("client %s: policy %s\n", client, pname != NULL ? pname :
		    "(default: every category)");
	for (int i = optind; i < argc; i++) {
		struct blocklist_match m = { 0 };
		int r = blocklist_match_name_policy(bl, pol, argv[i], &m);
		if (r == -1) {
			fprintf(stderr, "%s: not a valid domain name\n",
			    argv[i]);
			status = 1;
		} else if (r == 1) {
			printf("%s blocked rule=%s category=%s site=\"%s\" "
			    "source=%s", argv[i], m.rule, m.category,
			    m.site ? m.site : "", m.file);
			print_line(m.line);
		} else if (m.allowed) {
			printf("%s allowed rule=%s (allow entry) source=%s",
			    argv[i], m.rule, m.file);
			print_line(m.line);
		} else {
			printf("%s allowed\n", argv[i]);
		}
	}
	blocklist_free(bl);
	config_free(cfg);
	return status;
}

/* ---- serve ---- */

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	log_info("signal %d: stopping", (int)sig);
	for (unsigned i = 0; i < d->nworkers; i++)
		event_base_loopbreak(d->workers[i].base);
}

/* Runs in each worker's own thread: switch it to the new cfg/bl. */
static void
apply_reload_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct daemon *d = w->d;

	frontend_reconfigure(w->fe, d->next_cfg, d->next_bl);
	pthread_mutex_lock(&d->mtx);
	d->acks++;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->mtx);
}

/* Hand the new cfg/bl to every loop, then free the old ones. */
static void
daemon_reload_apply(struct daemon *d, struct config *cfg,
    struct blocklist *bl)
{
	const struct timeval now = { 0, 0 };

	if (cfg->server.threads != d->nworkers)
		log_warnx("server.threads changed: restart dnswarden to apply");
	if (strcmp(cfg->server.user, d->cfg->server.user) != 0)
		log_warnx("server.user changed: restart dnswarden to apply");
	if (!config_cpus_equal(&cfg->server.cpus, &d->cfg->server.cpus))
		log_warnx("server.cpus changed: restart dnswarden to apply");
	if (!config_cpus_equal(&cfg->http.cpus, &d->cfg->http.cpus) ||
	    cfg->http.nice != d->cfg->http.nice)
		log_warnx("http.cpus or http.nice changed: restart dnswarden to"
		    " apply");
	d->next_cfg = cfg;
	d->next_bl = bl;
	d->acks = 0;
	ratelimit_set(d->rl, cfg->server.rate_limit_qps,
	    cfg->server.rate_limit_burst);
	frontend_reconfigure(d->workers[0].fe, cfg, bl);
	for (unsigned i = 1; i < d->nworkers; i++)
		event_base_once(d->workers[i].base, -1, EV_TIMEOUT,
		    apply_reload_cb, &d->workers[i], &now);
	/* The old ones are freed only when no loop can still use them. */
	pthread_mutex_lock(&d->mtx);
	while (d->acks + 1 < d->nworkers)
		pthread_cond_wait(&d->cond, &d->mtx);
	pthread_mutex_unlock(&d->mtx);
	attemptlog_reconfigure(d->log, cfg);
	if (d->fetch != NULL)
		fetch_reconfigure(d->fetch, cfg, bl);
	/* Last: the console frees the old ones once it has left them, and
	 * this loop does not wait for the request it is answering. */
	http_reconfigure(d->http, cfg, bl, d->cfg, d->bl);
	d->cfg = cfg;
	d->bl = bl;
}

/* Load beside the running ones; through the helper when we dropped root. */
static int
daemon_reload_load(struct daemon *d, struct config **cfgp,
    struct blocklist **blp, char *err, size_t errlen)
{
	int rc;

	if (d->ps != NULL && privsep_reload_begin(d->ps, err, errlen) == -1)
		return -1;
	rc = load_all_err(d->config_path, cfgp, blp, err, errlen, false);
	if (d->ps != NULL)
		privsep_reload_end(d->ps);
	return rc;
}

/*
 * The one reload, for SIGHUP and "dnswarden ctl reload": build the new
 * configuration and blocklist beside the old, swap on success, count it.
 * Returns 0, or -1 with the first error in err (the running configuration
 * stays in force). Runs in the main loop's thread.
 */
static int
daemon_reload(struct daemon *d, char *err, size_t errlen)
{
	struct config *cfg;
	struct blocklist *bl;
	int rc;

	control_notify("RELOADING=1\nSTATUS=reloading %s", d->config_path);
	d->reload.reloads++;
	d->reload.last_reload_ms = now_ms_wall();
	err[0] = '\0';
	rc = daemon_reload_load(d, &cfg, &bl, err, errlen);
	if (rc == 0) {
		daemon_reload_apply(d, cfg, bl);
		d->reload.last_success_ms = d->reload.last_reload_ms;
		log_info("reloaded: %zu blocklist entries", blocklist_size(bl));
		control_notify("READY=1\nSTATUS=serving, %zu blocklist "
		    "entries, reloaded", blocklist_size(bl));
	} else {
		d->reload.reload_failures++;
		if (err[0] == '\0')
			snprintf(err, errlen, "%s: cannot load", d->config_path);
		snprintf(d->reload_error, sizeof(d->reload_error), "%s", err);
		control_notify("READY=1\nSTATUS=reload failed, running the "
		    "previous configuration: %s", err);
	}
	d->reload.last_reload_ok = rc == 0;
	return rc;
}

static void
reload_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	char err[512];

	log_info("SIGHUP: reloading %s", d->config_path);
	if (daemon_reload(d, err, sizeof(err)) == -1)
		log_warnx("reload failed (%s); keeping the running"
		    " configuration", err);
}

/*
 * TLS upstream i's figures summed over the loops (each has its own
 * connections); false when it is not a TLS upstream. Main thread only.
 */
static bool
tls_stats_sum(struct daemon *d, size_t i, struct dot_stats *sum)
{
	struct dot_stats st;
	bool tls = false;

	memset(sum, 0, sizeof(*sum));
	for (unsigned w = 0; w < d->nworkers; w++) {
		struct upstream *up = frontend_upstream(d->workers[w].fe);
		if (!upstream_tls_stats(up, i, &st))
			continue;
		tls = true;
		sum->queries += st.queries;
		sum->answers += st.answers;
		sum->failures += st.failures;
		sum->timeouts += st.timeouts;
		sum->connects += st.connects;
		sum->resumed += st.resumed;
		sum->reconnects += st.reconnects;
		sum->handshake_failures += st.handshake_failures;
		sum->open += st.open;
	}
	return tls;
}

/* Each TLS upstream's figures: "upstream ADDR tls_NAME VALUE" a line. */
static void
stats_print_tls(struct daemon *d, FILE *out)
{
	const struct config *cfg = d->cfg;
	char buf[4096];
	size_t n = 0;

	for (size_t i = 0; i < cfg->nupstreams; i++) {
		struct dot_stats sum;
		if (!tls_stats_sum(d, i, &sum))
			continue;
#define TLS_LINE(field)							\
		if (n < sizeof(buf))					\
			n += snprintf(buf + n, sizeof(buf) - n,		\
			    "dnswarden: stats: upstream %s tls_" #field	\
			    " %" PRIu64 "\n", cfg->upstreams[i].text,	\
			    (uint64_t)sum.field);
		TLS_LINE(queries) TLS_LINE(answers) TLS_LINE(failures)
		TLS_LINE(timeouts) TLS_LINE(connects) TLS_LINE(resumed)
		TLS_LINE(reconnects) TLS_LINE(handshake_failures)
		TLS_LINE(open)
#undef TLS_LINE
	}
	fwrite(buf, 1, n < sizeof(buf) ? n : sizeof(buf) - 1, out);
	fflush(out);
}

/* The console's copy of the upstreams' and reloads' figures. */
static void
snapshot_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct http_upstream snap[UPSTREAM_STATS_MAX];
	struct upstream_stats up[UPSTREAM_STATS_MAX], list[UPSTREAM_STATS_MAX];
	size_t n = 0, k;

	for (unsigned w = 0; w < d->nworkers; w++) {
		k = frontend_upstream_stats(d->workers[w].fe, up,
		    UPSTREAM_STATS_MAX);
		for (size_t i = 0; i < k; i++)
			upstream_stats_merge(list, &n, UPSTREAM_STATS_MAX,
			    &up[i]);
	}
	memset(snap, 0, sizeof(snap));
	for (size_t i = 0; i < n; i++) {
		snap[i].health = list[i];
		snap[i].p50_us = upstream_stats_quantile_us(&list[i], 0.5);
		snap[i].p99_us = upstream_stats_quantile_us(&list[i], 0.99);
		for (size_t j = 0; j < d->cfg->nupstreams; j++)
			if (strcmp(d->cfg->upstreams[j].text, list[i].addr) == 0)
				snap[i].tls = tls_stats_sum(d, j,
				    &snap[i].tls_stats);
	}
	/* The console may hold the lock: skip this second, never wait. */
	if (pthread_mutex_trylock(&d->snap_mtx) != 0)
		return;
	memcpy(d->snap, snap, sizeof(snap));
	d->nsnap = n;
	d->snap_reload = d->reload;
	pthread_mutex_unlock(&d->snap_mtx);
}

/* http_source: the last copy, for the console's thread. */
static size_t
daemon_upstreams(void *arg, struct http_upstream *out, size_t max,
    struct reload_stats *reload)
{
	struct daemon *d = arg;
	size_t n;

	pthread_mutex_lock(&d->snap_mtx);
	n = d->nsnap < max ? d->nsnap : max;
	memcpy(out, d->snap, n * sizeof(*out));
	*reload = d->snap_reload;
	pthread_mutex_unlock(&d->snap_mtx);
	return n;
}

/* Keep the console's copy fresh: now and once a second. */
static void
snapshot_start(struct daemon *d)
{
	const struct timeval sec = { 1, 0 };

	d->snap_ev = event_new(d->workers[0].base, -1, EV_PERSIST,
	    snapshot_cb, d);
	if (d->snap_ev == NULL || event_add(d->snap_ev, &sec) == -1)
		log_warnx("the console's /metrics will show no upstreams");
	snapshot_cb(-1, 0, d);
}

/*
 * The attempt log's counters and the central shipper's with them. The
 * console (peek) reads the log's without the lock the DNS path appends
 * under: a console thread that holds it, or waits for it, never holds up
 * an answer.
 */
static void
daemon_log_stats(struct daemon *d, struct attemptlog_stats *ls, bool peek)
{
	struct central_stats cs;

	if (peek)
		attemptlog_peek_stats(d->log, ls);
	else
		attemptlog_get_stats(d->log, ls);
	if (d->central == NULL)
		return;
	central_get_stats(d->central, &cs);
	ls->central = true;
	ls->central_shipped = cs.shipped;
	ls->central_waiting = cs.waiting;
	ls->central_behind_s = cs.behind_s;
	ls->central_connected = cs.connected;
}

static void
stats_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct attemptlog_stats ls;
	struct counters sum = { 0 };

	/* Other loops' counters are read without a lock: a snapshot. */
	for (unsigned i = 0; i < d->nworkers; i++)
		counters_add(&sum, &d->workers[i].ctr);
	daemon_log_stats(d, &ls, false);
	counters_print(&sum, &ls, stderr);
	stats_print_tls(d, stderr);
	counters_print_reload(&d->reload, stderr);
}

/* The console's view of the counters (http_source): a snapshot. */
static void
daemon_stats(void *arg, struct counters *sum, struct attemptlog_stats *ls)
{
	struct daemon *d = arg;

	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < d->nworkers; i++)
		counters_add(sum, &d->workers[i].ctr);
	daemon_log_stats(d, ls, true);
}

/* http_source: what the reports read changed. */
static uint64_t
daemon_log_version(void *arg)
{
	struct daemon *d = arg;

	return attemptlog_version(d->log);
}

/* Bind the console's addresses while still root; none without listen. */
static int
console_create(struct daemon *d)
{
	const struct http_source src = { daemon_stats, d, daemon_upstreams,
	    daemon_log_version };

	if (d->cfg->http.nlisten == 0)
		return 0;
	d->http = http_new(d->cfg, d->bl, &src);
	return d->http != NULL ? 0 : -1;
}

/* ---- the control channel ---- */

static void
worker_job_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct daemon *d = w->d;

	d->job(w, d->job_arg);
	pthread_mutex_lock(&d->mtx);
	d->job_acks++;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->mtx);
}

/*
 * Run fn(worker, arg) in every loop's own thread, where the worker's cache
 * and counters live, and wait until all have: jobs take no locks on the
 * DNS path. fn serialises what it adds up with d->mtx.
 */
static void
daemon_on_workers(struct daemon *d, void (*fn)(struct worker *, void *),
    void *arg)
{
	const struct timeval now = { 0, 0 };

	d->job = fn;
	d->job_arg = arg;
	d->job_acks = 0;
	for (unsigned i = 1; i < d->nworkers; i++)
		event_base_once(d->workers[i].base, -1, EV_TIMEOUT,
		    worker_job_cb, &d->workers[i], &now);
	worker_job_cb(-1, 0, &d->workers[0]);
	pthread_mutex_lock(&d->mtx);
	while (d->job_acks < d->nworkers)
		pthread_cond_wait(&d->cond, &d->mtx);
	pthread_mutex_unlock(&d->mtx);
}

/* What the workers add up for "ctl flush", "ctl stats", "ctl upstreams". */
struct worker_sum {
	const uint8_t		*lname;		/* flush: NULL for all */
	size_t			 lname_len;
	size_t			 flushed;
	size_t			 cache_entries;
	size_t			 cache_bytes;
	struct counters		 ctr;
	struct upstream_stats	 up[UPSTREAM_STATS_MAX];
	size_t			 nup;
};

static void
flush_job(struct worker *w, void *arg)
{
	struct worker_sum *s = arg;
	size_t n = cache_flush(frontend_cache(w->fe), s->lname, s->lname_len);

	pthread_mutex_lock(&w->d->mtx);
	s->flushed += n;
	pthread_mutex_unlock(&w->d->mtx);
}

static void
sum_job(struct worker *w, void *arg)
{
	struct worker_sum *s = arg;
	struct cache *c = frontend_cache(w->fe);
	struct upstream_stats up[UPSTREAM_STATS_MAX];
	size_t n = frontend_upstream_stats(w->fe, up,
	    UPSTREAM_STATS_MAX);

	pthread_mutex_lock(&w->d->mtx);
	s->cache_entries += cache_count(c);
	s->cache_bytes += cache_bytes(c);
	counters_add(&s->ctr, &w->ctr);
	for (size_t i = 0; i < n; i++)
		upstream_stats_merge(s->up, &s->nup,
		    UPSTREAM_STATS_MAX, &up[i]);
	pthread_mutex_unlock(&w->d->mtx);
}

/* "flush [NAME]": the cache of every loop, or NAME and below. */
static void
ctl_flush(struct daemon *d, struct control_req *req, const char *name)
{
	struct worker_sum s = { 0 };
	uint8_t wire[DNS_MAX_NAME];
	char text[128];
	int len = 0;

	if (name[0] != '\0' &&
	    (len = dnsmsg_name_from_text(name, wire, sizeof(wire))) <= 0) {
		control_reply(req, false, "not a valid domain name");
		return;
	}
	s.lname = name[0] != '\0' ? wire : NULL;
	s.lname_len = (size_t)len;
	daemon_on_workers(d, flush_job, &s);
	snprintf(text, sizeof(text), "flushed %zu cache entr%s%s%s\n",
	    s.flushed, s.flushed == 1 ? "y" : "ies",
	    name[0] != '\0' ? " at and below " : "", name);
	log_info("control: %s", text);
	control_reply(req, true, text);
}

static void
ctl_stats(struct daemon *d, struct control_req *req)
{
	struct worker_sum *s = calloc(1, sizeof(*s));
	struct attemptlog_stats ls;
	char *text;
	size_t len;
	FILE *f;

	if (s == NULL || (f = open_memstream(&text, &len)) == NULL) {
		free(s);
		control_reply(req, false, "out of memory");
		return;
	}
	daemon_on_workers(d, sum_job, s);
	daemon_log_stats(d, &ls, false);
	fprintf(f, "%-24s %" PRIu64 "\n%-24s %zu\n%-24s %zu\n",
	    "uptime_seconds", (now_ms_monotonic() - d->started_ms) / 1000,
	    "cache_entries", s->cache_entries, "cache_bytes", s->cache_bytes);
	counters_format(&s->ctr, &ls, f);
	fclose(f);
	control_reply(req, true, text);
	free(text);
	free(s);
}

static void
ctl_upstreams(struct daemon *d, struct control_req *req)
{
	struct worker_sum *s = calloc(1, sizeof(*s));
	char *text;
	size_t len;
	FILE *f;

	if (s == NULL || (f = open_memstream(&text, &len)) == NULL) {
		free(s);
		control_reply(req, false, "out of memory");
		return;
	}
	daemon_on_workers(d, sum_job, s);
	upstream_stats_print(s->up, s->nup, f);
	fclose(f);
	control_reply(req, true, text);
	free(text);
	free(s);
}

static void
ctl_status(struct daemon *d, struct control_req *req)
{
	const struct config *cfg = d->cfg;
	char *text, when[64] = "never";
	size_t len;
	FILE *f;

	if ((f = open_memstream(&text, &len)) == NULL) {
		control_reply(req, false, "out of memory");
		return;
	}
	time_t t = (time_t)(d->reload.last_reload_ms / 1000);
	if (d->reload.last_reload_ok >= 0)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	fprintf(f, "%-18s %s\n%-18s %ld\n%-18s %" PRIu64 "\n%-18s %s\n",
	    "version", DNSWARDEN_VERSION, "pid", (long)getpid(),
	    "uptime_seconds", (now_ms_monotonic() - d->started_ms) / 1000,
	    "config", d->config_path);
	fprintf(f, "%-18s", "listen");
	for (size_t i = 0; i < cfg->server.nlisten; i++)
		fprintf(f, " %s", cfg->server.listen[i].text);
	fprintf(f, "\n%-18s", "upstreams");
	for (size_t i = 0; i < cfg->nupstreams; i++)
		fprintf(f, " %s", cfg->upstreams[i].text);
	fprintf(f, "\n%-18s %s\n%-18s %zu\n%-18s %zu\n%-18s %u\n"
	    "%-18s %s%s%s\n", "database",
	    cfg->log.database ? cfg->log.database : "off",
	    "blocklist_files", cfg->blocklist.nfiles, "blocklist_entries",
	    blocklist_size(d->bl), "threads", d->nworkers, "last_reload", when,
	    d->reload.last_reload_ok < 0 ? "" : d->reload.last_reload_ok ?
	    " ok" : " failed: ", d->reload.last_reload_ok == 0 ?
	    d->reload_error : "");
	fclose(f);
	control_reply(req, true, text);
	free(text);
}

/* One request from "dnswarden ctl", on the main loop. */
static void
control_cb(void *arg, struct control_req *req, enum control_cmd cmd,
    const char *argument)
{
	struct daemon *d = arg;
	char err[4096];

	switch (cmd) {
	case CONTROL_RELOAD:
		log_info("control: reloading %s", d->config_path);
		if (daemon_reload(d, err, sizeof(err)) == 0)
			control_reply(req, true, "ok");
		else
			control_reply(req, false, err);
		break;
	case CONTROL_FLUSH:
		ctl_flush(d, req, argument);
		break;
	case CONTROL_STATS:
		ctl_stats(d, req);
		break;
	case CONTROL_UPSTREAMS:
		ctl_upstreams(d, req);
		break;
	case CONTROL_STATUS:
		ctl_status(d, req);
		break;
	}
}

/* The control socket, bound as root like the DNS ports; 0 or -1. */
static int
daemon_control_open(struct daemon *d)
{
	const char *path = d->cfg->server.control_socket;

	if (path == NULL)
		return 0;
	d->ctl = control_listen(d->workers[0].base, path,
	    control_group(d->cfg->server.user), control_cb, d);
	return d->ctl != NULL ? 0 : -1;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

/*
 * server.cpus: this thread (the first loop) before any other exists, so
 * that every thread made later starts there too; the console's move on
 * to http.cpus (http_start()). A CPU taken away since the configuration
 * was checked costs the pinning only, never the service.
 */
static void
daemon_cpus_apply(const struct config *cfg)
{
	int	err;

	if ((err = thread_pin(pthread_self(), cfg->server.cpus.cpu,
	    cfg->server.cpus.n)) != 0)
		log_warnx("server.cpus: cannot pin the DNS threads: %s; they"
		    " run on any CPU", strerror(err));
}

/* Create every loop and bind its sockets, still as root. */
static int
workers_create(struct daemon *d)
{
	bool reuseport = d->cfg->server.threads > 1;

	uint64_t seed;
	arc4random_buf(&seed, sizeof(seed));
	d->rl = ratelimit_new(d->cfg->server.rate_limit_qps,
	    d->cfg->server.rate_limit_burst, seed);
	if (d->rl == NULL)
		return -1;
	/* Loops that share a port must not share it with anyone else. */
	if (reuseport && frontend_listen_check(d->cfg) == -1)
		return -1;
	d->nworkers = d->cfg->server.threads;
	if (d->nworkers < 1)
		d->nworkers = 1;
	if (d->nworkers > MAX_THREADS)
		d->nworkers = MAX_THREADS;
	/* One DNS Cookie secret for every loop, made at start and kept
	 * across reloads (a reload does not void the clients' cookies). */
	uint8_t cookie_secret[16];
	arc4random_buf(cookie_secret, sizeof(cookie_secret));
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];
		w->d = d;
		if ((w->base = event_base_new()) == NULL)
			fatalx("event_base_new failed");
		w->fe = frontend_new(w->base, d->cfg, d->bl, d->rl, NULL,
		    &w->ctr);
		if (w->fe == NULL ||
		    frontend_set_cookie_secret(w->fe, cookie_secret) == -1 ||
		    frontend_listen(w->fe, reuseport) == -1)
			return -1;
	}
	explicit_bzero(cookie_secret, sizeof(cookie_secret));
	return 0;
}

static void
workers_free(struct daemon *d)
{
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];
		if (w->started)
			pthread_join(w->thread, NULL);
		frontend_free(w->fe);
		if (w->base)
			event_base_free(w->base);
	}
	ratelimit_free(d->rl);
}

/* The signals the daemon handles. */
static void
daemon_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
}

/* Start-up names what the admin will want to check first. */
static void
log_startup(const struct config *cfg)
{
	char buf[1024];
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < cfg->nupstreams && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s",
		    i ? ", " : "", cfg->upstreams[i].text);
	log_info("upstreams: %s", buf);
	log_info("attempt log: %s", cfg->log.database ? cfg->log.database :
	    "off");
	if (cfg->server.control_socket != NULL)
		log_info("control socket: %s", cfg->server.control_socket);
}

static int
serve_loop(struct daemon *d)
{
	struct event_base *base = d->workers[0].base;
	struct event *sigs[4];
	const int signums[4] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	event_callback_fn fns[4] = { stop_cb, stop_cb, reload_cb, stats_cb };

	for (int i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(base, signums[i], fns[i], d);
		if (sigs[i] == NULL || event_add(sigs[i], NULL) == -1)
			fatalx("cannot install signal handlers");
	}
	/* Signals held back since start-up are delivered now, to libevent;
	 * worker threads keep them blocked. */
	sigset_t set;
	daemon_signals(&set);
	for (unsigned i = 1; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			fatalx("cannot start worker thread %u", i);
		w->started = true;
	}
	log_info("dnswarden %s serving, %zu blocklist entries, %zu upstreams, "
	    "%u thread%s", DNSWARDEN_VERSION, blocklist_size(d->bl),
	    d->cfg->nupstreams, d->nworkers, d->nworkers > 1 ? "s" : "");
	log_startup(d->cfg);
	/* Sockets bound, log open, loops running: systemd may go on. */
	control_notify("READY=1\nSTATUS=serving, %zu blocklist entries, "
	    "%zu upstreams", blocklist_size(d->bl), d->cfg->nupstreams);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	event_base_dispatch(base);
	control_notify("STOPPING=1\nSTATUS=stopping");
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < 4; i++)
		event_free(sigs[i]);
	return 0;
}

/* privsep_report_fn for serve: each problem as one line. */
static void
serve_report_cb(void *ctx, bool error, const char *msg)
{
	unsigned *errors = ctx;

	log_warnx("%s", msg);
	if (error)
		(*errors)++;
}

/*
 * Still root (if started so): who to become, a database that user can
 * write (made here if missing), and the helper that reads the files for a
 * reload once root is gone. 0, or -1 after saying why.
 */
static int
serve_prepare(struct daemon *d, struct privsep_user *u)
{
	unsigned errors = 0;
	char err[512];

	if (privsep_user_find(d->cfg, u, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	privsep_user_warn(u);
	privsep_check_database(d->cfg, u, true, serve_report_cb, &errors,
	    &d->db);
	if (errors > 0 && d->cfg->log.required) {
		log_warnx("not serving without the attempt log (set"
		    " log.required: false to serve anyway)");
		return -1;
	}
	if (geteuid() == 0 &&
	    (d->ps = privsep_start(d->config_path, u->uid, u->gid)) == NULL)
		return -1;
	return 0;
}

/* After the writer's first open: serve without a log only if allowed. */
static int
serve_log_ready(struct daemon *d)
{
	char err[512];

	if (d->log == NULL || attemptlog_open_status(d->log, err,
	    sizeof(err)) == 0)
		return 0;
	if (d->cfg->log.required) {
		log_warnx("attempt log: %s: %s: not serving without it (set"
		    " log.required: false to serve anyway)",
		    d->cfg->log.database, err);
		return -1;
	}
	log_warnx("attempt log: %s: %s: serving without it"
	    " (log.required: false); rows wait in the queue",
	    d->cfg->log.database, err);
	return 0;
}

/*
 * The central shipper, once the writer has made the file. Only another
 * daemon shipping as the same instance stops the start: an unreachable
 * database is retried while rows wait in the file.
 */
static int
serve_central(struct daemon *d)
{
	char err[512];

	if (d->cfg->log.central_conninfo == NULL || d->log == NULL ||
	    attemptlog_open_status(d->log, err, sizeof(err)) == -1)
		return 0;
	if ((d->central = central_start(d->cfg, d->db.path, err,
	    sizeof(err))) == NULL) {
		log_warnx("central: %s: not serving", err);
		return -1;
	}
	return 0;
}

static void
serve_free(struct daemon *d)
{
	http_free(d->http);	/* it reads the loops' counters and the log */
	if (d->snap_ev != NULL)
		event_free(d->snap_ev);
	fetch_free(d->fetch);
	control_free(d->ctl);
	workers_free(d);
	central_stop(d->central);	/* unshipped rows wait in the file */
	attemptlog_close(d->log);	/* every queued row reaches the disk */
	privsep_stop(d->ps);
	if (d->db.dirfd != -1)
		close(d->db.dirfd);
	blocklist_free(d->bl);
	config_free(d->cfg);
}

/* On the fetcher's thread: a downloaded list changed; reload it as
 * SIGHUP does, in the main loop. */
static void
lists_changed(void *arg)
{
	kill(getpid(), SIGHUP);
}

static int
cmd_update_lists(int argc, char **argv)
{
	const char *path;
	struct config *cfg;
	struct blocklist *bl;
	struct fetch *f;
	int failed;

	if (parse_common(argc, argv, &path, NULL) == -1 || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (load_all(path, &cfg, &bl) == -1)
		return 1;
	if ((f = fetch_new(cfg, bl, NULL, NULL)) == NULL) {
		fprintf(stderr, "dnswarden: out of memory\n");
		failed = 1;
	} else
		failed = fetch_update_all(f, stdout);
	fetch_free(f);
	blocklist_free(bl);
	config_free(cfg);
	return failed > 0 ? 1 : 0;
}

static int
cmd_serve(int argc, char **argv)
{
	struct daemon d = { .mtx = PTHREAD_MUTEX_INITIALIZER,
	    .cond = PTHREAD_COND_INITIALIZER, .db.dirfd = -1,
	    .snap_mtx = PTHREAD_MUTEX_INITIALIZER };
	struct privsep_user u;
	bool verbose = false;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		printf("usage: dnswarden serve [-v] [-c FILE]\n");
		return 0;
	}
	if (parse_common(argc, argv, &d.config_path, &verbose) == -1 ||
	    optind != argc) {
		fprintf(stderr, "dnswarden serve: %s\nusage: dnswarden serve "
		    "[-v] [-c FILE]\n", optind != argc && optind < argc ?
		    "unexpected argument" : "unknown option or missing value");
		return 2;
	}
	log_set_verbose(verbose);
	/* A SIGHUP from "systemctl reload" right after start must not kill
	 * us: hold the signals until their handlers are in place. */
	sigset_t set;
	daemon_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (load_all(d.config_path, &d.cfg, &d.bl) == -1)
		return 1;
	if (serve_prepare(&d, &u) == -1) {
		serve_free(&d);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() == -1)
		fatalx("evthread_use_pthreads failed");
	d.started_ms = now_ms_monotonic();
	daemon_cpus_apply(d.cfg);
	if (workers_create(&d) == -1 || console_create(&d) == -1 ||
	    daemon_control_open(&d) == -1 ||
	    privsep_drop(&u) == -1) {
		serve_free(&d);
		return 1;
	}
	if (d.ps != NULL)
		privsep_install(d.ps);
	/* The writer thread starts only now, as the unprivileged user, and
	 * has created or opened the database (or said why it cannot) before
	 * the first query is answered: see attemptlog_open(). */
	d.log = attemptlog_open_path(d.cfg, d.db.path);
	if (serve_log_ready(&d) == -1) {
		serve_free(&d);
		return 1;
	}
	if (serve_central(&d) == -1) {
		serve_free(&d);
		return 1;
	}
	for (unsigned i = 0; i < d.nworkers; i++)
		frontend_set_attemptlog(d.workers[i].fe, d.log);
	if (d.http != NULL && http_start(d.http, d.db.path) == -1) {
		http_free(d.http);
		d.http = NULL;
	}
	d.reload.last_reload_ok = -1;
	d.reload.last_success_ms = now_ms_wall();
	if (d.http != NULL)
		snapshot_start(&d);
	/* Downloads start once we serve: the last good copies serve now. */
	if ((d.fetch = fetch_new(d.cfg, d.bl, lists_changed, &d)) == NULL ||
	    fetch_start(d.fetch) == -1)
		log_warnx("cannot start the list downloads; url: imports stay "
		    "as they are");
	serve_loop(&d);
	serve_free(&d);
	log_info("stopped");
	libevent_global_shutdown();
	return 0;
}

static int	cmd_help(int, char **);

static const struct command {
	const char	*name;
	int		(*fn)(int, char **);
	const char	*help;		/* NULL: the command prints its own */
} commands[] = {
	{ "serve",	cmd_serve,
	    "usage: dnswarden serve [-v] [-c FILE]\n"
	    "Run the resolver in the foreground until SIGTERM or SIGINT.\n"
	    "SIGHUP reloads the configuration and blocklists, SIGUSR1 prints\n"
	    "the counters to stderr. -v logs debug messages.\n" },
	{ "check",	cmd_check,
	    "usage: dnswarden check [-c FILE] [--probe]\n"
	    "Load the configuration and every blocklist, print a summary, and\n"
	    "exit 0 if valid, 1 with file:line:column: messages if not.\n"
	    "--probe: connect to each TLS upstream, verify its certificate\n"
	    "and ask it one query (exit 1 if any fails).\n" },
	{ "lookup",	cmd_lookup,
	    "usage: dnswarden lookup [-c FILE] [--client ADDR] NAME...\n"
	    "Print for each name whether it is blocked, and by which entry;\n"
	    "with --client, for that client's policy.\n" },
	{ "update-lists", cmd_update_lists,
	    "usage: dnswarden update-lists [-c FILE]\n"
	    "Download every url: import of the blocklists now. A list that\n"
	    "fails, or would shrink by more than half, keeps its last good\n"
	    "copy; a running daemon loads the new copies by itself.\n" },
	{ "report",	report_cmd,	NULL },
	{ "log",	log_cmd,	NULL },
	{ "passwd",	http_passwd_cmd,	NULL },
	{ "token",	http_token_cmd,	NULL },
	{ "ctl",	ctl_cmd,
	    "usage: dnswarden ctl [-c FILE] [-s SOCKET] reload|flush [NAME]|"
	    "stats|upstreams|status\n"
	    "Talk to the running daemon over server.control_socket (root and\n"
	    "the dnswarden group): reload and wait for the result (exit 1 with\n"
	    "the error if it failed; the running configuration stays), empty\n"
	    "the cache or NAME and below, print the counters, each upstream's\n"
	    "health, or what is loaded.\n" },
	{ "help",	cmd_help,
	    "usage: dnswarden help [COMMAND]\n" },
};

static const struct command *
command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

static int
cmd_help(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	if ((c = command_find(argv[1])) == NULL) {
		fprintf(stderr, "dnswarden: unknown command '%s'\n", argv[1]);
		return 2;
	}
	if (c->help != NULL) {
		fputs(c->help, stdout);
		return 0;
	}
	char *args[] = { argv[1], "--help", NULL };
	return c->fn(2, args);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("dnswarden %s\n", DNSWARDEN_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(argc - 1, argv + 1);
	const struct command *c = command_find(argv[1]);
	if (c != NULL)
		return c->fn(argc - 1, argv + 1);
	fprintf(stderr, "dnswarden: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
