/*
 * ratelimit: a token bucket per client address (IPv6 clients by their /64,
 * since one host can use a whole /64). Buckets live in a fixed table, so
 * memory does not grow with the number of clients; a client whose slot was
 * taken by another starts again with a full bucket, which errs on the side
 * of answering. One limiter serves every event loop (the kernel spreads a
 * client's source ports over the loops' sockets), so a bucket is updated
 * under a lock, striped over the table.
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

/* Release rl; NULL is fine. */
void		  ratelimit_free(struct ratelimit *rl);

#endif
