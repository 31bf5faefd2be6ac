/*
 * upstream: forwarding questions to the configured upstream resolvers.
 * Identical questions in flight are merged into one upstream query with a
 * list of waiters. Each try goes out from a UDP socket on a random port,
 * shared only with the few tries to the same server in flight with it,
 * under a random ID unique on that socket (RFC 5452); a reply is taken only
 * when its source address and port, ID and question all match. Upstreams
 * are tried in order with a per-try timeout; a truncated reply is retried
 * over TCP. An upstream with a tls_name is asked over TLS instead (dot.h),
 * on connections kept open and shared by the queries in flight.
 * A query with a waiter that wants the reply whole (a client over TCP)
 * is asked over TCP: an upstream may drop optional records from a UDP
 * reply to fit it, without TC.
 */
#ifndef DNSWARDEN_UPSTREAM_H
#define DNSWARDEN_UPSTREAM_H

#include <sys/queue.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/event.h>

#include "cache.h"
#include "config.h"
#include "counters.h"
#include "dnsmsg.h"
#include "dot.h"

struct upstream_query;

/* Why a try at an upstream failed. */
enum upstream_fail {
	UPSTREAM_FAIL_NONE,
	UPSTREAM_FAIL_TIMEOUT,	/* no answer within upstream_timeout_ms */
	UPSTREAM_FAIL_REFUSED,	/* it answered REFUSED */
	UPSTREAM_FAIL_SERVFAIL,	/* it answered SERVFAIL */
	UPSTREAM_FAIL_RCODE,	/* FORMERR, NOTIMP, or a bare error */
	UPSTREAM_FAIL_NETWORK,	/* unreachable, refused port, socket error */
};

/* "timeout", "refused", ...: for logs, answers and the queries table. */
const char	*upstream_fail_text(enum upstream_fail why);

/*
 * The Extended DNS Error (RFC 8914) for a SERVFAIL after why: 23 (Network
 * Error) for a network failure, 22 (No Reachable Authority) otherwise.
 */
int		 upstream_fail_ede(enum upstream_fail why);

/* Answer time histogram: bucket i counts times up to ..._bounds_us[i]. */
#define UPSTREAM_RTT_BUCKETS	24
extern const uint64_t upstream_rtt_bounds_us[UPSTREAM_RTT_BUCKETS];

/* The most upstreams a stats snapshot describes. */
#define UPSTREAM_STATS_MAX	32

/*
 * One upstream's health as one event loop saw it. Each loop keeps its own
 * (no locks on the DNS path); a reader adds up the loops' snapshots with
 * upstream_stats_merge(). Kept across reloads while the address stays.
 */
struct upstream_stats {
	char		 addr[64];	/* "127.0.0.1:53": a label, never a client */
	uint64_t	 queries;	/* tries sent to it (UDP and TCP) */
	uint64_t	 answers;	/* tries it answered usefully */
	uint64_t	 timeouts;
	uint64_t	 errors;	/* network errors, other error codes */
	uint64_t	 refused;	/* REFUSED from it */
	uint64_t	 servfail;	/* SERVFAIL from it */
	uint64_t	 rtt[UPSTREAM_RTT_BUCKETS];	/* of its answers */
	bool		 failing;	/* its last tries all failed */
	unsigned	 consecutive;	/* failures since its last answer */
	enum upstream_fail last_fail;	/* the most recent failure */
	bool		 logged_failing; /* what its last log line said */
	unsigned	 failed_run;	/* the failures its last answer ended */
};

/* A client waiting for an answer; embedded in the caller's request. */
struct upstream_waiter {
	TAILQ_ENTRY(upstream_waiter)	 entry;
	struct upstream_query		*uq;	/* NULL once delivered */
	bool				 whole;	/* set by the caller: wants
						   the reply over TCP */
};
TAILQ_HEAD(upstream_waiters, upstream_waiter);

/*
 * Called once per upstream query when it is over: reply is the validated
 * upstream reply (r describes it; the callee may change both in place)
 * and from names the upstream that gave it; or reply and r are NULL when
 * every upstream failed, and from names the last one tried and why says
 * how it failed (from is NULL if none was tried). The callee must take
 * every waiter off the list (TAILQ_REMOVE) and answer it.
 */
typedef void (*upstream_done_fn)(void *arg, const struct cache_key *key,
    uint8_t *reply, size_t len, struct dns_reply *r, const char *from,
    enum upstream_fail why, struct upstream_waiters *waiters);

struct upstream;

/*
 * A forwarder on base using cfg's upstreams and limits; done is called
 * with arg for every finished query. NULL if out of memory.
 */
struct upstream	*upstream_new(struct event_base *base, const struct config *cfg,
		    struct counters *ctr, upstream_done_fn done, void *arg);

/*
 * Use a reloaded configuration for the tries that start from now on; the
 * UDP tries in flight wait no longer than its timeout from now. Never
 * fails: a reload does not stop the daemon.
 */
void		 upstream_reconfigure(struct upstream *up,
		    const struct config *cfg);

/*
 * Ask for key (built from the lower-case lname, qtype, qclass, DO and CD)
 * on behalf of w. Joins a query in flight for the same key when there is
 * one. Returns 0, or -1 when over server.max_outstanding or max_waiters
 * (the caller answers SERVFAIL).
 */
int		 upstream_submit(struct upstream *up, const struct cache_key *key,
		    const uint8_t *lname, size_t lname_len, uint16_t qtype,
		    uint16_t qclass, bool do_bit, bool cd,
		    struct upstream_waiter *w);

/*
 * Between upstream_cork() and upstream_uncork() new UDP tries are held back
 * and then sent together, one sendmmsg() for the tries that share a socket:
 * for the queries of one received batch.
 */
void		 upstream_cork(struct upstream *up);
void		 upstream_uncork(struct upstream *up);

/* The client behind w went away: take it off its query's list. */
void		 upstream_cancel(struct upstream_waiter *w);

/*
 * The DNS-over-TLS figures of configured upstream i (see dot.h); false
 * when it is not a TLS upstream.
 */
bool		 upstream_tls_stats(const struct upstream *up, size_t i,
		    struct dot_stats *out);

/* The connection pool of TLS upstream i, or NULL (for the fuzz target). */
struct dot_upstream *upstream_tls_pool(struct upstream *up, size_t i);

/*
 * Copy the health of up's configured upstreams (at most max) into out;
 * returns how many. For the loop's own thread.
 */
size_t		 upstream_get_stats(const struct upstream *up,
		    struct upstream_stats *out, size_t max);

/*
 * Add s into the list (*n entries, room for max): to the entry with the
 * same address, or as a new one. failing is true if any loop sees it so.
 */
void		 upstream_stats_merge(struct upstream_stats *list, size_t *n,
		    size_t max, const struct upstream_stats *s);

/* The time within which fraction q (0.5, 0.99) of s's answers came, in
 * microseconds (a bucket's upper bound); 0 without answers. */
uint64_t	 upstream_stats_quantile_us(const struct upstream_stats *s,
		    double q);

/* One line per upstream, under a header: "ctl upstreams". */
void		 upstream_stats_print(const struct upstream_stats *list,
		    size_t n, FILE *out);

/*
 * The health bookkeeping, for upstream.c and its tests; now_ms moves the
 * rate limit of the log lines. A try answered in rtt_us:
 */
void		 upstream_stats_answer(struct upstream_stats *s,
		    uint64_t rtt_us, uint64_t *logged_ms, uint64_t now_ms);

/*
 * A try that failed: counted, and after UPSTREAM_FAILING_AFTER in a row
 * the upstream is failing. The log says when an upstream starts failing
 * and when it answers again, at most one line per UPSTREAM_LOG_INTERVAL_MS
 * (*logged_ms); a change held back by the interval is said by the next
 * try that shows it after the interval, so that the last line about an
 * upstream says what it is doing, not a flap it had.
 */
#define UPSTREAM_FAILING_AFTER		3
#define UPSTREAM_LOG_INTERVAL_MS	10000
void		 upstream_stats_fail(struct upstream_stats *s,
		    enum upstream_fail why, uint64_t *logged_ms,
		    uint64_t now_ms);

/* Number of upstream queries in flight. */
size_t		 upstream_inflight(const struct upstream *up);

/* Stop every query in flight (their waiters get the failure callback) and
 * release up. NULL is fine. */
void		 upstream_free(struct upstream *up);

#endif
