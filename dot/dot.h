/*
 * dot: DNS over TLS to upstream resolvers (RFC 7858), for the forwarder.
 *
 * A dot_upstream stands for one configured TLS server. It keeps up to a
 * configured number of connections open, sends queries on them without
 * waiting for earlier answers (RFC 7766 pipelining), and hands each answer,
 * in whatever order the server sends them, to the query whose ID it
 * carries; checking the question is the caller's job. Certificates are
 * verified against the configured name, TLS 1.2 is the minimum, and
 * sessions are resumed on new connections. A connection with no query
 * left closes after the idle timeout. Everything runs on the caller's
 * event loop; nothing here blocks.
 */
#ifndef DNSWARDEN_DOT_H
#define DNSWARDEN_DOT_H

#include <sys/queue.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "netaddr.h"

struct dot_ctx;
struct dot_upstream;
struct dot_conn;

/*
 * An answer for q: msg (len bytes, the caller may change it in place
 * until it returns) or, when the query failed on this server (handshake,
 * certificate, connection lost twice, too many in flight), msg NULL and
 * why a short reason.
 */
struct dot_query;
typedef void	(*dot_answer_fn)(void *arg, struct dot_query *q, uint8_t *msg,
		    size_t len, const char *why);

/* One query; the caller embeds it in its own state and keeps it and the
 * message it sent in place until the answer or dot_query_cancel(). */
struct dot_query {
	TAILQ_ENTRY(dot_query)	 entry;
	struct dot_upstream	*du;
	struct dot_conn		*conn;	/* NULL while being re-sent */
	dot_answer_fn		 cb;
	void			*arg;
	uint8_t			*msg;	/* the caller's buffer */
	size_t			 len;
	uint16_t		 id;	/* the ID it went out with */
	bool			 active;
	bool			 queued;	/* waiting for a free slot */
	unsigned		 resent;	/* times moved from a connection that
					   answered nothing */
};
TAILQ_HEAD(dot_queries, dot_query);

/* Figures for one TLS upstream, kept by its loop. */
struct dot_stats {
	uint64_t	queries;	/* sent (re-sends count again) */
	uint64_t	answers;
	uint64_t	failures;	/* queries answered with msg NULL */
	uint64_t	timeouts;	/* queries the caller gave up on */
	uint64_t	connects;	/* handshakes completed */
	uint64_t	resumed;	/* of those, with a resumed session */
	uint64_t	reconnects;	/* connections the server closed under queries */
	uint64_t	handshake_failures;
	unsigned	open;		/* connections open now */
};

/* Limits for the connections to one upstream. */
struct dot_limits {
	unsigned	max_connections;	/* >= 1 */
	unsigned	idle_ms;	/* close a connection idle this long */
	unsigned	handshake_ms;	/* give up a connect + handshake */
};

/*
 * The TLS settings shared by every upstream: certificates are checked
 * against ca_file (a PEM bundle) or, when it is NULL, the system store.
 * NULL on failure, with a message in err.
 */
struct dot_ctx	*dot_ctx_new(const char *ca_file, char *err, size_t errlen);

/* Release ctx; connections made with it keep what they need. */
void		 dot_ctx_free(struct dot_ctx *ctx);

/*
 * An upstream at addr whose certificate must name tls_name; text names it
 * in log lines. The strings are copied. NULL when out of memory.
 */
struct dot_upstream *dot_upstream_new(struct event_base *base,
		    struct dot_ctx *ctx, const struct netaddr *addr,
		    const char *tls_name, const char *text,
		    const struct dot_limits *lim);

/* Is du the connection pool for this server and name? */
bool		 dot_upstream_is(const struct dot_upstream *du,
		    const struct netaddr *addr, const char *tls_name);

/* Apply new limits (a reload); open connections stay. */
void		 dot_upstream_set_limits(struct dot_upstream *du,
		    const struct dot_limits *lim);

/*
 * Close every connection and release du. Queries still waiting get
 * their failure callback first.
 */
void		 dot_upstream_free(struct dot_upstream *du);

/*
 * Send msg (len bytes, 12 to 1024: a DNS query, the padding already in
 * place, whose ID dot_send() overwrites with one unique on the connection
 * it goes out on) to du. cb(arg, q, ...) is called exactly once, later, unless the query
 * is cancelled first. When every connection (up to the limit) has its
 * fill of queries in flight, q waits for a free slot. Returns 0, or -1
 * when no connection can be opened (cb is not called then).
 */
int		 dot_send(struct dot_upstream *du, struct dot_query *q,
		    uint8_t *msg, size_t len, dot_answer_fn cb, void *arg);

/* Forget q (no callback); a no-op when it is not active. */
void		 dot_query_cancel(struct dot_query *q);

/*
 * q has waited past the caller's timeout: count it, and send no more
 * queries on the connection it waits on, which may be stuck. The caller
 * then cancels q (dot_query_cancel()).
 */
void		 dot_query_timeout(struct dot_query *q);

/*
 * Pad the query msg (len bytes, ending in an OPT record with no options,
 * as dnsmsg_build_query() makes it) with an EDNS Padding option (RFC 7830)
 * to a multiple of 128 bytes (RFC 8467). Returns the new length, or len
 * unchanged when the message does not end that way or cap is too small.
 */
size_t		 dot_pad_query(uint8_t *msg, size_t len, size_t cap);

/*
 * Connect to the TLS upstream at addr, verify its certificate against
 * tls_name and ask it one query (the root's NS), waiting at most
 * timeout_ms; for `dnswarden check --probe`. Returns 0 when it answered,
 * -1 when not; out gets one line saying what happened.
 */
int		 dot_probe(struct dot_ctx *ctx, const struct netaddr *addr,
		    const char *tls_name, unsigned timeout_ms, char *out,
		    size_t outlen);

/* du's figures so far. */
void		 dot_upstream_stats(const struct dot_upstream *du,
		    struct dot_stats *out);

/*
 * The IDs of the queries waiting on du's first connection, oldest first:
 * up to max of them in ids; returns how many. For the fuzz target, which
 * answers them.
 */
size_t		 dot_upstream_query_ids(const struct dot_upstream *du,
		    uint16_t *ids, size_t max);

/*
 * Run data through the read path of du's first connection as if its
 * server had sent it (framing, ID match, callbacks). For the fuzz target
 * and tests; returns -1 when du has no connection.
 */
int		 dot_upstream_feed(struct dot_upstream *du, const uint8_t *data,
		    size_t len);

#endif
