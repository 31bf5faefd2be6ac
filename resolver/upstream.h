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

#include <event2/event.h>

#include "cache.h"
#include "config.h"
#include "counters.h"
#include "dnsmsg.h"
#include "dot.h"

struct upstream_query;

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
 * and from names the upstream that gave it, or both are NULL when every
 * upstream failed. The callee must take every waiter off the list
 * (TAILQ_REMOVE) and answer it.
 */
typedef void (*upstream_done_fn)(void *arg, const struct cache_key *key,
    uint8_t *reply, size_t len, struct dns_reply *r, const char *from,
    struct upstream_waiters *waiters);

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

/* Number of upstream queries in flight. */
size_t		 upstream_inflight(const struct upstream *up);

/* Stop every query in flight (their waiters get the failure callback) and
 * release up. NULL is fine. */
void		 upstream_free(struct upstream *up);

#endif
