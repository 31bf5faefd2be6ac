/*
 * metrics: GET /metrics in the Prometheus text format (version 0.0.4),
 * from the counters X-macro, so that every counter the daemon keeps is
 * exported under its own name without a list to keep in step. Reading
 * takes no lock that the DNS path takes: the loops' counters are read as
 * they are (a snapshot, as SIGUSR1 prints them).
 *
 * No label ever carries a client or a query name; the one label with
 * text, category, comes from the blocklist the admin wrote.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "build_config.h"
#include "http_internal.h"

static void
metric(struct evbuffer *b, const char *name, const char *type,
    const char *help, uint64_t value)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n",
	    name, help, name, type, name, value);
}

/* A label value: backslash, double quote and newline escaped. */
static void
label_value(struct evbuffer *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static void
metrics_blocked(struct evbuffer *b, const struct counters *c)
{
	evbuffer_add_printf(b, "# HELP dnswarden_blocked_total queries blocked"
	    " by the blocklist, by category\n"
	    "# TYPE dnswarden_blocked_total counter\n");
	for (unsigned i = 0; i < c->blocked_by.n; i++) {
		evbuffer_add_printf(b, "dnswarden_blocked_total{category=\"");
		label_value(b, c->blocked_by.c[i].name);
		evbuffer_add_printf(b, "\"} %" PRIu64 "\n",
		    c->blocked_by.c[i].blocked);
	}
}

static void
metrics_counters(struct evbuffer *b, const struct counters *c)
{
	char	name[128];

#define METRIC_COUNTER(field, help)					\
	if (strcmp(#field, "blocked") != 0) {				\
		snprintf(name, sizeof(name), "dnswarden_%s_total", #field); \
		metric(b, name, "counter", help, c->field);		\
	}
	COUNTERS_FIELDS(METRIC_COUNTER)
#undef METRIC_COUNTER
	metrics_blocked(b, c);
}

static void
metrics_log(struct evbuffer *b, const struct attemptlog_stats *ls)
{
	metric(b, "dnswarden_attempt_log_rows_queued_total", "counter",
	    "rows accepted into the attempt log's queue", ls->queued);
	metric(b, "dnswarden_attempt_log_rows_written_total", "counter",
	    "rows committed to the attempt log", ls->written);
	metric(b, "dnswarden_attempt_log_rows_lost_total", "counter",
	    "rows lost because the attempt log's queue was full", ls->dropped);
	metric(b, "dnswarden_attempt_log_write_errors_total", "counter",
	    "attempt log batches that failed (rows kept and retried)",
	    ls->write_errors);
	metric(b, "dnswarden_attempt_log_rows_pending", "gauge",
	    "rows waiting in the attempt log's queue", ls->pending);
	if (!ls->central)
		return;
	metric(b, "dnswarden_central_rows_shipped_total", "counter",
	    "attempt rows shipped to the central database", ls->central_shipped);
	metric(b, "dnswarden_central_rows_waiting", "gauge",
	    "attempt rows in the local file not yet shipped",
	    ls->central_waiting);
	metric(b, "dnswarden_central_seconds_behind", "gauge",
	    "age of the oldest row not yet shipped, seconds",
	    ls->central_behind_s);
	metric(b, "dnswarden_central_up", "gauge",
	    "1 while connected to the central database",
	    ls->central_connected);
}

/* One line of a labelled family: name{upstream="ADDR"} value. */
static void
upstream_line(struct evbuffer *b, const char *name, const char *addr,
    const char *extra, uint64_t value)
{
	evbuffer_add_printf(b, "%s{upstream=\"", name);
	label_value(b, addr);
	evbuffer_add_printf(b, "\"%s} %" PRIu64 "\n", extra, value);
}

static void
family(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/*
 * Per-upstream figures, labelled with the upstream's address only; the
 * unlabelled dnswarden_upstream_*_total above are the sums.
 */
static void
metrics_upstreams(struct evbuffer *b, const struct http_upstream *u,
    size_t n)
{
	static const struct {
		const char	*name, *help;
		size_t		 off;
	} health[] = {
#define H(f, h) { "dnswarden_upstream_server_" #f "_total", h,			\
	    offsetof(struct upstream_stats, f) }
		H(queries, "tries sent to the upstream"),
		H(answers, "tries the upstream answered usefully"),
		H(timeouts, "tries that timed out"),
		H(errors, "tries that failed on the network or with another "
		    "error code"),
		H(refused, "REFUSED answers from the upstream"),
		H(servfail, "SERVFAIL answers from the upstream"),
#undef H
	}, tls[] = {
#define T(f, h) { "dnswarden_upstream_tls_" #f "_total", h,		\
	    offsetof(struct dot_stats, f) }
		T(queries, "queries sent over TLS"),
		T(failures, "queries that failed over TLS (moved on)"),
		T(connects, "TLS handshakes completed"),
		T(resumed, "TLS handshakes that resumed a session"),
		T(reconnects, "connections the server closed under queries"),
		T(handshake_failures, "TLS handshakes that failed"),
#undef T
	};

	if (n == 0)
		return;
	for (size_t k = 0; k < sizeof(health) / sizeof(health[0]); k++) {
		family(b, health[k].name, "counter", health[k].help);
		for (size_t i = 0; i < n; i++)
			upstream_line(b, health[k].name, u[i].health.addr, "",
			    *(const uint64_t *)((const char *)&u[i].health +
			    health[k].off));
	}
	family(b, "dnswarden_upstream_server_failing", "gauge",
	    "1 while the upstream's last tries all failed");
	for (size_t i = 0; i < n; i++)
		upstream_line(b, "dnswarden_upstream_server_failing",
		    u[i].health.addr, "", u[i].health.failing);
	family(b, "dnswarden_upstream_server_response_seconds", "gauge",
	    "time within which half, and 99 %, of the answers came");
	for (size_t i = 0; i < n; i++) {
		evbuffer_add_printf(b, "dnswarden_upstream_server_response_seconds"
		    "{upstream=\"");
		label_value(b, u[i].health.addr);
		evbuffer_add_printf(b, "\",quantile=\"0.5\"} %.6f\n",
		    u[i].p50_us / 1e6);
		evbuffer_add_printf(b, "dnswarden_upstream_server_response_seconds"
		    "{upstream=\"");
		label_value(b, u[i].health.addr);
		evbuffer_add_printf(b, "\",quantile=\"0.99\"} %.6f\n",
		    u[i].p99_us / 1e6);
	}
	for (size_t k = 0; k < sizeof(tls) / sizeof(tls[0]); k++) {
		family(b, tls[k].name, "counter", tls[k].help);
		for (size_t i = 0; i < n; i++)
			if (u[i].tls)
				upstream_line(b, tls[k].name,
				    u[i].health.addr, "",
				    *(const uint64_t *)((const char *)
				    &u[i].tls_stats + tls[k].off));
	}
	family(b, "dnswarden_upstream_tls_connections", "gauge",
	    "TLS connections open to the upstream");
	for (size_t i = 0; i < n; i++)
		if (u[i].tls)
			upstream_line(b, "dnswarden_upstream_tls_connections",
			    u[i].health.addr, "", u[i].tls_stats.open);
}

static void
metrics_reloads(struct evbuffer *b, const struct reload_stats *rs)
{
	metric(b, "dnswarden_reloads_total", "counter",
	    "reloads tried (SIGHUP, ctl reload, new lists)", rs->reloads);
	metric(b, "dnswarden_reload_failures_total", "counter",
	    "reloads that failed; the old configuration stayed",
	    rs->reload_failures);
	metric(b, "dnswarden_last_reload_success_timestamp_seconds", "gauge",
	    "when the configuration in force was loaded, Unix time",
	    (uint64_t)(rs->last_success_ms / 1000));
}

void
http_metrics(struct http_req *r)
{
	static const char *const allowed[] = { NULL };
	struct http		*h = r->h;
	struct counters		 c = { 0 };
	struct attemptlog_stats	 ls = { 0 };
	struct evbuffer		*b;
	const char		*bad;

	if (http_params_allow(&r->params, allowed, &bad) == -1) {
		http_reply_error(r, 400, "unknown parameter");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		http_reply_error(r, 500, "out of memory");
		return;
	}
	if (h->src.stats != NULL)
		h->src.stats(h->src.arg, &c, &ls);
	evbuffer_add_printf(b, "# HELP dnswarden_build_info the running"
	    " version\n# TYPE dnswarden_build_info gauge\n"
	    "dnswarden_build_info{version=\"%s\"} 1\n", DNSWARDEN_VERSION);
	evbuffer_add_printf(b, "# HELP dnswarden_start_time_seconds when the"
	    " daemon started, Unix time\n"
	    "# TYPE dnswarden_start_time_seconds gauge\n"
	    "dnswarden_start_time_seconds %" PRId64 "\n", h->started_ms / 1000);
	metric(b, "dnswarden_blocklist_entries", "gauge",
	    "blocklist entries loaded", blocklist_size(h->bl));
	metrics_counters(b, &c);
	metrics_log(b, &ls);
	if (h->src.upstreams != NULL) {
		struct http_upstream	up[UPSTREAM_STATS_MAX];
		struct reload_stats	rs = { 0 };
		size_t			n;

		n = h->src.upstreams(h->src.arg, up, UPSTREAM_STATS_MAX, &rs);
		metrics_upstreams(b, up, n);
		metrics_reloads(b, &rs);
	}
	http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b);
	evbuffer_free(b);
}
