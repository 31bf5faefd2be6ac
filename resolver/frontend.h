/*
 * frontend: one event loop's DNS service. It owns the UDP and TCP
 * listening sockets, the cache and the forwarder of that loop, and runs
 * each query through the same steps: parse, access control, rate limit,
 * blocklist, cache, upstream. Several frontends (one per thread, each with
 * SO_REUSEPORT sockets) can share one blocklist and one attempt log.
 */
#ifndef DNSWARDEN_FRONTEND_H
#define DNSWARDEN_FRONTEND_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "attemptlog.h"
#include "blocklist.h"
#include "config.h"
#include "counters.h"

struct frontend;

struct cache;
struct ratelimit;
struct upstream;

/*
 * A frontend on base for cfg, matching queries against bl, limiting
 * clients with rl (shared by every frontend) and recording attempts in
 * the attempt log attempts (may be NULL). Counters go to ctr. The caller
 * owns bl, rl, attempts and ctr and keeps them until frontend_free(). The
 * sockets are not open yet. NULL if out of memory.
 */
struct frontend	*frontend_new(struct event_base *base, const struct config *cfg,
		    const struct blocklist *bl, struct ratelimit *rl,
		    struct attemptlog *attempts, struct counters *ctr);

/*
 * Bind UDP and TCP on every server.listen address (with SO_REUSEPORT when
 * reuseport is set). Returns 0, or -1 after logging which address failed.
 */
int		 frontend_listen(struct frontend *fe, bool reuseport);

/*
 * Before the loops bind with SO_REUSEPORT (which another socket could
 * join): bind each server.listen address once without it, UDP and TCP,
 * and close again. Returns 0 when all are free, or -1 after logging one
 * line for the first that is not (in use, needs CAP_NET_BIND_SERVICE).
 */
int		 frontend_listen_check(const struct config *cfg);

/*
 * Take a reloaded configuration and blocklist. The listening addresses
 * stay as they were bound (a change needs a restart, and is logged). The
 * old cfg and bl may be freed once this returns.
 */
void		 frontend_reconfigure(struct frontend *fe,
		    const struct config *cfg, const struct blocklist *bl);

/*
 * Make and check DNS server cookies with secret (16 bytes, copied) instead
 * of the random one fe made for itself: every frontend of a process must
 * share one, since a client's queries reach any of them. Returns 0, or -1
 * (out of memory; the old secret stays).
 */
int		 frontend_set_cookie_secret(struct frontend *fe,
		    const uint8_t secret[16]);

/* Start recording attempts in the attempt log attempts (opened after the
 * privilege drop). */
void		 frontend_set_attemptlog(struct frontend *fe,
		    struct attemptlog *attempts);

/*
 * Feeding the query path without listening sockets (the fuzz target
 * tests/fuzz/fuzz_frontend.c, tests). A frontend made by frontend_new()
 * needs no frontend_listen() for these.
 */

/* An answer the frontend made, handed over instead of being sent. */
typedef void	(*frontend_answer_fn)(void *arg, const uint8_t *pkt,
		    size_t len);

/*
 * Take pkt (len bytes) as a datagram received from peer and run it
 * through the steps udp_read_cb() runs for each one: the size check (over
 * 4096 bytes is dropped, as truncated), the rate limit, then the query
 * path (parse, allow_clients, FORMERR/NOTIMP/BADVERS, cache, blocklist,
 * forwarding). Each answer made on the way is passed to answer(arg, ...)
 * (when not NULL) instead of being sent; answers that come later, from an
 * upstream, go to no socket (they count as dropped).
 */
void		 frontend_feed_udp(struct frontend *fe, const uint8_t *pkt,
		    size_t len, const struct sockaddr *peer,
		    socklen_t peerlen, frontend_answer_fn answer, void *arg);

/*
 * Take fd, a connected stream socket (one end of a socketpair() in
 * tests), as a TCP connection accepted from peer: from the next turn of
 * the event loop on, what is written to the other end is read as
 * length-prefixed queries and answered on fd. fd is made non-blocking.
 * Returns 0, or -1 when the connection is refused (peer outside
 * server.allow_clients, over server.tcp_max_connections or the peer's
 * server.tcp_max_connections_per_client, out of memory); fd is closed
 * then.
 */
int		 frontend_adopt_tcp(struct frontend *fe, int fd,
		    const struct sockaddr *peer, socklen_t peerlen);

struct upstream_stats;

/*
 * The health of fe's upstreams (upstream.h), at most max of them, into
 * out; returns how many. For fe's own thread.
 */
size_t		 frontend_upstream_stats(const struct frontend *fe,
		    struct upstream_stats *out, size_t max);

/* The frontend's cache, for tests that fill it with cache_insert(),
 * and for "ctl flush". */
struct cache	*frontend_cache(struct frontend *fe);

/* The frontend's forwarder, for its figures (SIGUSR1) and tests. */
struct upstream	*frontend_upstream(struct frontend *fe);

/* Close every socket and connection, answer nobody, release fe. */
void		 frontend_free(struct frontend *fe);

#endif
