/*
 * ratelimit: a token bucket per client address (IPv6 clients by their /64,
 * since one host can use a whole /64). Buckets live in a fixed table, so
 * memory does not grow with the number of clients. A client whose slot was
 * taken by another takes it over with the tokens left in it: a flood from
 * many (forged) addresses must not get a fresh burst each time it lands on
 * a slot. One limiter serves every event loop (the kernel spreads a
 * client's source ports over the loops' sockets), so a bucket is updated
 * under a lock, striped over the table. The same table counts each
 * client's TCP connections, with atomics.
 */
#ifndef DNSWARDEN_RATELIMIT_H
#define DNSWARDEN_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct ratelimit;

/* A limiter allowing qps per client with bursts of burst; qps 0: off. */
struct ratelimit *ratelimit_new(unsigned qps, unsigned burst, uint64_t seed);

/* Change the rate (a reload); buckets keep their state. */
void		  ratelimit_set(struct ratelimit *rl, unsigned qps,
		    unsigned burst);

/* Take one token for client at now_ms; false when over the limit.
 * Thread-safe. */
bool		  ratelimit_allow(struct ratelimit *rl,
		    const struct sockaddr *client, uint64_t now_ms);

/*
 * Count one more TCP connection from client, unless it has max already
 * (clients whose addresses share a slot, about 1 in 65536, share the
 * count). Sets *slot for ratelimit_conn_release(). Returns false, counting
 * nothing, when over max. Thread-safe.
 */
bool		  ratelimit_conn_acquire(struct ratelimit *rl,
		    const struct sockaddr *client, unsigned max,
		    uint32_t *slot);

/* The connection counted in slot by ratelimit_conn_acquire() has ended. */
void		  ratelimit_conn_release(struct ratelimit *rl, uint32_t slot);

/* Release rl; NULL is fine. */
void		  ratelimit_free(struct ratelimit *rl);

#endif
