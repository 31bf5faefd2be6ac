/*
 * http: the web console, its JSON API and the Prometheus metrics (see
 * docs/console.md and the "Web console" section of the interface
 * contract). It runs on a thread and event base of its own, so that a
 * slow page never delays a DNS answer, and reads the attempt log through
 * read-only SQLite connections beside the writer.
 */
#ifndef DNSWARDEN_HTTP_H
#define DNSWARDEN_HTTP_H

#include "attemptlog.h"
#include "blocklist.h"
#include "config.h"
#include "counters.h"
#include "upstream.h"

/* One upstream's figures for /metrics. */
struct http_upstream {
	struct upstream_stats	health;		/* addr names it */
	uint64_t		p50_us, p99_us;	/* of its answers */
	bool			tls;		/* asked over TLS: */
	struct dot_stats	tls_stats;	/* its connections */
};

/* What the console reads from the running daemon. */
struct http_source {
	/*
	 * Fill sum with every event loop's counters added up and log with
	 * the attempt log's figures. Called on the console's thread; it
	 * must take no lock that the DNS path takes.
	 */
	void	(*stats)(void *arg, struct counters *sum,
		    struct attemptlog_stats *log);
	void	 *arg;
	/*
	 * Up to max upstreams' figures into out (returns how many) and the
	 * reloads' into reload, as of at most a second ago; NULL: none. Same
	 * rules as stats.
	 */
	size_t	(*upstreams)(void *arg, struct http_upstream *out, size_t max,
		    struct reload_stats *reload);
	/*
	 * A number that changes whenever what a report reads has changed
	 * (attemptlog_version()): the console reuses a report's answer
	 * while it stays the same. NULL: always recompute. Same rules.
	 */
	uint64_t (*version)(void *arg);
};

struct http;

/*
 * Bind cfg->http.listen (call it while still root) and load the TLS
 * certificate and key when http.tls is set. cfg and bl must stay valid
 * until http_reconfigure() or http_free(); src is copied. Returns the
 * console, or NULL after logging why (nothing is left bound). Call only
 * when cfg->http.nlisten > 0.
 */
struct http	*http_new(const struct config *cfg, const struct blocklist *bl,
		    const struct http_source *src);

/*
 * Open the log database at dbpath (cfg->log.database, or where the
 * privilege separation lets it be opened; NULL: no log) read-only for
 * reads, and once more for audit rows, and start the console's thread.
 * Call after dropping privileges. Returns 0, or -1 after logging why.
 */
int		 http_start(struct http *h, const char *dbpath);

/*
 * Use a reloaded configuration and blocklist from now on (users, tokens,
 * session length, lookups): the console's thread takes them before its
 * next request. Never waits for that thread. h takes over old_cfg and
 * old_bl (the ones cfg and bl replace, given to http_new() or to the
 * last call) and frees them once its thread no longer uses them; with h
 * NULL they are freed at once. Call it after every other user of the old
 * ones has moved on. A changed http.listen or http.tls needs a restart,
 * and is logged as such.
 */
void		 http_reconfigure(struct http *h, const struct config *cfg,
		    const struct blocklist *bl, struct config *old_cfg,
		    struct blocklist *old_bl);

/* Stop the thread, close every connection and release h (NULL is fine). */
void		 http_free(struct http *h);

/*
 * dnswarden passwd: read a password on standard input (one line) and
 * print its crypt(3) hash (yescrypt) for http.users. argv[0] is
 * "passwd". Returns the exit status (0, 1 on error, 2 usage).
 */
int		 http_passwd_cmd(int argc, char **argv);

/*
 * dnswarden token [NAME] [ROLE]: print a new random bearer token and the
 * line to paste under http.tokens (its SHA-256). argv[0] is "token".
 * Returns the exit status.
 */
int		 http_token_cmd(int argc, char **argv);

#endif
