/*
 * counters: every statistic the daemon keeps, in one place. Each event loop
 * owns one struct counters and increments it without locking; readers
 * (SIGUSR1 today, a metrics endpoint later) sum the loops' structs with
 * counters_sum(). Rows lost by the attempt log are counted by its writer and
 * reported next to these.
 */
#ifndef DNSWARDEN_COUNTERS_H
#define DNSWARDEN_COUNTERS_H

#include <stdint.h>
#include <stdio.h>

#include "attemptlog.h"

/* X-macro: name, help text. Keeps the struct, the sum and the printout in
 * step, and gives a metrics exporter its names and help for free. */
#define COUNTERS_FIELDS(X)						\
	X(queries,		"queries received")			\
	X(queries_udp,		"queries received over UDP")		\
	X(queries_tcp,		"queries received over TCP")		\
	X(cache_hits,		"answers served from the cache")	\
	X(cache_misses,		"queries forwarded upstream")		\
	X(cache_evictions,	"cache entries evicted")		\
	X(merged,		"queries merged into one in flight")	\
	X(blocked,		"queries blocked by the blocklist")	\
	X(blocked_cname,	"answers blocked by CNAME inspection")	\
	X(refused,		"queries refused by allow_clients")	\
	X(ratelimited,		"queries dropped by the rate limit")	\
	X(formerr,		"malformed queries answered FORMERR")	\
	X(notimp,		"queries answered NOTIMP")		\
	X(dropped,		"malformed packets dropped")		\
	X(servfail,		"SERVFAIL answers sent")		\
	X(truncated,		"UDP answers sent truncated")		\
	X(upstream_queries,	"queries sent upstream")		\
	X(upstream_timeouts,	"upstream tries that timed out")	\
	X(upstream_errors,	"upstream tries that failed otherwise")	\
	X(upstream_tcp,		"upstream retries over TCP")		\
	X(upstream_sockets,	"UDP sockets opened for upstream tries")	\
	X(upstream_late,	"upstream replies after their try gave up")	\
	X(forged_replies,	"upstream replies dropped as forged")	\
	X(overload_dropped,	"queries shed because of overload")	\
	X(tcp_accepted,		"TCP connections accepted")		\
	X(tcp_refused,		"TCP connections refused (limit)")	\
	X(tcp_timeouts,		"TCP connections closed idle")		\
	X(reply_unchecked,	"upstream replies with too many names to check") \
	X(tcp_refused_client,	"TCP connections refused: not in allow_clients") \
	X(tcp_client_limit,	"TCP connections refused: per-client limit") \
	X(tcp_write_timeouts,	"TCP connections closed: answers not read") \
	X(tcp_lifetime_closed,	"TCP connections closed at their maximum age") \
	X(cookies_valid,	"queries with a valid DNS server cookie")	\
	X(cookies_invalid,	"queries with a server cookie not ours or too old")

/*
 * Blocked queries per category, for the metrics. Only the loop that owns
 * it writes it; a reader (another thread) reads n with acquire and then
 * only the entries below n, whose names never change once written.
 * Categories beyond the table's size count under "other".
 */
#define COUNTERS_CATEGORIES_MAX	32
#define COUNTERS_CATEGORY_LEN	64

struct counters_categories {
	unsigned	n;
	struct {
		char		name[COUNTERS_CATEGORY_LEN];
		uint64_t	blocked;
	} c[COUNTERS_CATEGORIES_MAX];
};

struct counters {
#define COUNTERS_DECLARE(name, help) uint64_t name;
	COUNTERS_FIELDS(COUNTERS_DECLARE)
#undef COUNTERS_DECLARE
	struct counters_categories	blocked_by;
};

/* Count one query blocked by category (the owning loop only). */
void	counters_category_blocked(struct counters *c, const char *category);

/* Add every field of src to dst (categories matched by name). */
void	counters_add(struct counters *dst, const struct counters *src);

/*
 * Print the counters and the attempt log's figures to out, one
 * "name value" per line (SIGUSR1).
 */
void	counters_print(const struct counters *c,
	    const struct attemptlog_stats *log, FILE *out);

/*
 * Reloads (SIGHUP, and "dnswarden ctl reload"), kept by main's one reload
 * function; read without a lock by SIGUSR1 and, later, the console.
 * Metrics: dnswarden_reloads_total, dnswarden_reload_failures_total,
 * dnswarden_last_reload_success_timestamp_seconds.
 */
struct reload_stats {
	uint64_t	reloads;		/* tried, failed ones included */
	uint64_t	reload_failures;
	int64_t		last_reload_ms;		/* Unix time; 0: none yet */
	int		last_reload_ok;		/* 1 ok, 0 failed, -1 none */
	int64_t		last_success_ms;	/* start-up counts as one */
};

/*
 * Print the reload figures to out, "name value" lines as
 * counters_print() does, and the last result with its time in UTC.
 */
void	counters_print_reload(const struct reload_stats *r, FILE *out);

/*
 * The same figures as one block, "name value" a line with the values
 * aligned, without prefix ("dnswarden ctl stats").
 */
void	counters_format(const struct counters *c,
	    const struct attemptlog_stats *log, FILE *out);

#endif
