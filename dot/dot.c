/*
 * dot: DNS over TLS to upstream resolvers. See dot.h.
 *
 * A connection is a socket and an SSL object that this file drives
 * itself: OpenSSL reads and writes through a BIO of ours over the
 * connection's buffers, so that one read() takes every TLS record that
 * has arrived and the queries of one loop turn, a TLS record each, leave
 * in one send() (libevent's OpenSSL bufferevent reads each record with two
 * read() calls and re-arms the write event for each query). Queries are
 * queued as soon as they come, even before the handshake is over, and
 * stay on the connection's list until their answer arrives or the caller
 * gives up. When the server closes a connection that still has queries
 * on it (RFC 7766 allows it to, at any time), each of them is sent once
 * more on another connection;
 * a second loss, a failed handshake or a certificate that does not match
 * fails the query, and the caller moves on to its next upstream.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "dot.h"
#include "log.h"

#define DOT_MAX_PIPELINE	128	/* queries in flight on one connection */
#define DOT_SPREAD_AT		32	/* open another connection past this */
#define DOT_SLOTS		256	/* > DOT_MAX_PIPELINE, a power of 2 */
#define DOT_RESENDS		3	/* from connections that answered nothing */
#define DOT_PAD_BLOCK		128	/* RFC 8467, section 4.1 */
#define DOT_MAX_MSG		65535
#define DOT_FRAME_MAX		1024	/* the longest query we send */
#define DOT_READ_MAX		32768	/* bytes taken from the socket at once */
#define DNS_TYPE_OPT		41
#define EDNS_OPT_PADDING	12	/* RFC 7830 */

struct dot_ctx {
	SSL_CTX		*ssl;
};

struct dot_conn {
	TAILQ_ENTRY(dot_conn)	 entry;
	struct dot_upstream	*du;
	SSL			*ssl;
	int			 fd;
	struct event		*rev;	/* readable (persistent) */
	struct event		*wev;	/* writable: connected, or room again */
	struct event		*flush;	/* queries to send, once a loop turn */
	struct event		*timer;	/* handshake, then idle */
	struct evbuffer		*out;	/* from OpenSSL, to send */
	struct evbuffer		*plain_in;	/* answers, decrypted */
	size_t			 in_off, in_len;	/* in in[] */
	bool			 connected;
	bool			 busy;	/* answering: not to be closed */
	bool			 broken;	/* a query could not be encrypted */
	struct dot_queries	 queries;	/* sent, waiting for answers */
	unsigned		 inflight;
	bool			 ready;	/* handshake done */
	bool			 stuck;	/* a query timed out: take no more */
	bool			 answered;	/* it gave at least one answer */
	uint16_t		 next_id;
	/* The queries waiting on it by the low bits of their IDs. */
	struct dot_query	*slot[DOT_SLOTS];
	uint8_t			 in[DOT_READ_MAX];	/* from the socket */
};
TAILQ_HEAD(dot_conns, dot_conn);

struct dot_upstream {
	struct event_base	*base;
	SSL_CTX			*ssl;	/* a reference of our own */
	struct netaddr		 addr;
	char			*tls_name;
	char			*text;
	struct dot_limits	 lim;
	struct dot_conns	 conns;
	unsigned		 nconns;
	struct dot_queries	 moving;	/* between two connections */
	struct dot_queries	 waiting;	/* for a free slot on one */
	SSL_SESSION		*session;	/* the last one, to resume */
	struct dot_stats	 st;
	bool			 failing;	/* said so in the log */
	char			 version[16];	/* TLS version of the last connect */
	uint8_t			 rbuf[DOT_MAX_MSG];
	uint8_t			 tbuf[16384];	/* one TLS record's data */
};

static int	dot_ex_index = -1;	/* SSL ex_data slot: its upstream */
static BIO_METHOD	*dot_bio_method;
static pthread_once_t	 dot_once = PTHREAD_ONCE_INIT;
static void	dot_init_once(void);

static void	conn_close(struct dot_conn *, bool);

static void	conn_lost(struct dot_conn *, const char *, bool, bool);
static void	du_drain(struct dot_upstream *);
static void	conn_take(struct dot_conn *, struct dot_query *);

/* --- the shared context --------------------------------------------- */

/* A new session from the server (TLS 1.3 sends it after the handshake). */
static int
session_new_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct dot_upstream *du = SSL_get_ex_data(ssl, dot_ex_index);

	if (du == NULL)
		return 0;
	if (du->session != NULL)
		SSL_SESSION_free(du->session);
	du->session = sess;
	return 1;		/* we keep the reference */
}

struct dot_ctx *
dot_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	struct dot_ctx *ctx;
	int ok;

	pthread_once(&dot_once, dot_init_once);
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL ||
	    (ctx->ssl = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context");
		free(ctx);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx->ssl, session_new_cb);
	if (ca_file != NULL)
		ok = SSL_CTX_load_verify_locations(ctx->ssl, ca_file, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx->ssl);
	if (ok != 1) {
		snprintf(err, errlen, "cannot load the certificates of %s: %s",
		    ca_file ? ca_file : "the system store",
		    ERR_reason_error_string(ERR_get_error()));
		ERR_clear_error();
		dot_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

void
dot_ctx_free(struct dot_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

/* --- upstreams ------------------------------------------------------- */

struct dot_upstream *
dot_upstream_new(struct event_base *base, struct dot_ctx *ctx,
    const struct netaddr *addr, const char *tls_name, const char *text,
    const struct dot_limits *lim)
{
	struct dot_upstream *du;

	if ((du = calloc(1, sizeof(*du))) == NULL)
		return NULL;
	if ((du->tls_name = strdup(tls_name)) == NULL ||
	    (du->text = strdup(text)) == NULL) {
		free(du->tls_name);
		free(du);
		return NULL;
	}
	du->base = base;
	SSL_CTX_up_ref(ctx->ssl);
	du->ssl = ctx->ssl;
	du->addr = *addr;
	du->lim = *lim;
	TAILQ_INIT(&du->conns);
	TAILQ_INIT(&du->moving);
	TAILQ_INIT(&du->waiting);
	return du;
}

bool
dot_upstream_is(const struct dot_upstream *du, const struct netaddr *addr,
    const char *tls_name)
{
	return du->addr.len == addr->len &&
	    memcmp(&du->addr.ss, &addr->ss, addr->len) == 0 &&
	    strcmp(du->tls_name, tls_name) == 0;
}

void
dot_upstream_set_limits(struct dot_upstream *du, const struct dot_limits *lim)
{
	du->lim = *lim;
}

/* Answer q with a failure: the caller's callback, after q is let go. */
static void
query_fail(struct dot_query *q, const char *why)
{
	q->active = false;
	q->conn = NULL;
	q->du->st.failures++;
	q->cb(q->arg, q, NULL, 0, why);
}

void
dot_upstream_free(struct dot_upstream *du)
{
	struct dot_conn *c;
	struct dot_query *q;

	if (du == NULL)
		return;
	while ((c = TAILQ_FIRST(&du->conns)) != NULL) {
		while ((q = TAILQ_FIRST(&c->queries)) != NULL) {
			conn_take(c, q);
			query_fail(q, "upstream removed");
		}
		conn_close(c, false);
	}
	while ((q = TAILQ_FIRST(&du->moving)) != NULL) {
		TAILQ_REMOVE(&du->moving, q, entry);
		query_fail(q, "upstream removed");
	}
	while ((q = TAILQ_FIRST(&du->waiting)) != NULL) {
		TAILQ_REMOVE(&du->waiting, q, entry);
		q->queued = false;
		query_fail(q, "upstream removed");
	}
	if (du->session != NULL)
		SSL_SESSION_free(du->session);
	SSL_CTX_free(du->ssl);
	free(du->tls_name);
	free(du->text);
	free(du);
}

void
dot_upstream_stats(const struct dot_upstream *du, struct dot_stats *out)
{
	*out = du->st;
	out->open = du->nconns;
}

/* One line when the upstream starts failing, one when it works again. */
static void
upstream_failing(struct dot_upstream *du, const char *why)
{
	if (du->failing)
		return;
	du->failing = true;
	log_warnx("TLS upstream %s (%s): %s", du->text, du->tls_name, why);
}

static void
upstream_working(struct dot_upstream *du)
{
	if (!du->failing)
		return;
	du->failing = false;
	log_info("TLS upstream %s (%s) works again", du->text, du->tls_name);
}

/* --- the BIO between OpenSSL and the connection's buffers ------------- */

/*
 * OpenSSL reads and writes through this BIO, never the socket: reads come
 * from what one read() of the socket brought in (all the records that
 * arrived, where a socket BIO makes two read() calls a record), writes go
 * to an evbuffer that is sent once a loop turn, the records of all the
 * queries of that turn in one send().
 */
static int
bio_write(BIO *b, const char *data, int len)
{
	struct dot_conn *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (evbuffer_add(c->out, data, (size_t)len) == -1)
		return -1;
	return len;
}

static int
bio_read(BIO *b, char *data, int len)
{
	struct dot_conn *c = BIO_get_data(b);
	size_t n = c->in_len - c->in_off;

	BIO_clear_retry_flags(b);
	if (n == 0) {
		BIO_set_retry_read(b);
		return -1;
	}
	if (n > (size_t)len)
		n = (size_t)len;
	memcpy(data, c->in + c->in_off, n);
	c->in_off += n;
	return (int)n;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct dot_conn *c = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return c != NULL ? (long)(c->in_len - c->in_off) : 0;
	default:
		return 0;
	}
}

static int
bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void
dot_init_once(void)
{
	BIO_METHOD *m;

	dot_ex_index = SSL_get_ex_new_index(0, "dnswarden dot", NULL, NULL,
	    NULL);
	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "dnswarden dot");
	if (m == NULL || BIO_meth_set_write(m, bio_write) != 1 ||
	    BIO_meth_set_read(m, bio_read) != 1 ||
	    BIO_meth_set_ctrl(m, bio_ctrl) != 1 ||
	    BIO_meth_set_create(m, bio_create) != 1) {
		BIO_meth_free(m);
		return;
	}
	dot_bio_method = m;
}

/* --- connections ----------------------------------------------------- */

/*
 * Send what OpenSSL wrote for c, as far as the socket takes it; the rest
 * when it is writable again. -1 when the connection is gone.
 */
static int
conn_send(struct dot_conn *c)
{
	struct evbuffer_iovec v[16];
	struct msghdr mh = { .msg_iov = (struct iovec *)v };
	ssize_t n;

	while (evbuffer_get_length(c->out) > 0) {
		mh.msg_iovlen = (size_t)evbuffer_peek(c->out, -1, NULL, v, 16);
		if (mh.msg_iovlen > 16)
			mh.msg_iovlen = 16;
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				event_add(c->wev, NULL);
				return 0;
			}
			return -1;
		}
		evbuffer_drain(c->out, (size_t)n);
	}
	return 0;
}

/*
 * Close c. A connection that ends well (idle, or closed by the server
 * after its answers) says so to the server and to OpenSSL, which would
 * otherwise mark its session as not to be resumed.
 */
static void
conn_close(struct dot_conn *c, bool clean)
{
	struct dot_upstream *du = c->du;

	TAILQ_REMOVE(&du->conns, c, entry);
	du->nconns--;
	if (c->ssl != NULL) {
		SSL_set_ex_data(c->ssl, dot_ex_index, NULL);
		if (clean && c->ready) {
			if (SSL_shutdown(c->ssl) < 0)
				ERR_clear_error();
			(void)conn_send(c);	/* the close_notify, if it fits */
		}
		SSL_free(c->ssl);	/* and the BIO */
	}
	if (c->fd != -1)
		close(c->fd);
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->flush != NULL)
		event_free(c->flush);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->out != NULL)
		evbuffer_free(c->out);
	if (c->plain_in != NULL)
		evbuffer_free(c->plain_in);
	free(c);
}

/* Why the handshake failed, in words an admin can act on. */
static const char *
conn_tls_error(struct dot_conn *c, char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	long vr = c->ssl != NULL ? SSL_get_verify_result(c->ssl) : X509_V_OK;

	if (vr != X509_V_OK)
		snprintf(buf, len, "certificate not accepted: %s",
		    X509_verify_cert_error_string(vr));
	else if (e != 0)
		snprintf(buf, len, "TLS handshake failed: %s",
		    ERR_reason_error_string(e));
	else
		snprintf(buf, len, "connection failed before the handshake "
		    "ended");
	ERR_clear_error();
	return buf;
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dot_conn *c = arg;

	if (!c->ready) {
		conn_lost(c, "TLS handshake timed out", true, false);
		return;
	}
	if (c->inflight == 0)
		conn_close(c, true);	/* idle */
}

static void
conn_arm_idle(struct dot_conn *c)
{
	struct timeval tv = { c->du->lim.idle_ms / 1000,
	    (c->du->lim.idle_ms % 1000) * 1000 };

	evtimer_add(c->timer, &tv);
}

/*
 * The ID of the next query on c: the next in sequence (from a random
 * start) whose slot is free, so unique among its queries, found at once
 * and reused only 65,536 queries later, long after a late answer to its
 * last owner. Nobody off the path can answer on a TLS connection, so an
 * ID need not be unpredictable here as it must over UDP.
 */
static uint16_t
conn_new_id(struct dot_conn *c)
{
	while (c->slot[c->next_id & (DOT_SLOTS - 1)] != NULL)
		c->next_id++;
	return c->next_id++;
}

/* q leaves c's list and slot. */
static void
conn_take(struct dot_conn *c, struct dot_query *q)
{
	TAILQ_REMOVE(&c->queries, q, entry);
	c->slot[q->id & (DOT_SLOTS - 1)] = NULL;
	c->inflight--;
}

/*
 * Encrypt q's frame (length and message: one SSL_write, so one TLS
 * record) into c->out. A record of its own for each query, not one for
 * all the queries of a loop turn: a server that, like NSD, waits for its
 * socket to be readable before it reads the next query would not see
 * the queries left in its TLS buffer until we sent more.
 */
static int
conn_encrypt(struct dot_conn *c, const struct dot_query *q)
{
	uint8_t frame[2 + DOT_FRAME_MAX];

	frame[0] = (uint8_t)(q->len >> 8);
	frame[1] = (uint8_t)q->len;
	memcpy(frame + 2, q->msg, q->len);
	if (SSL_write(c->ssl, frame, (int)(2 + q->len)) <= 0) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/*
 * Put q on c. Once the handshake is over its record joins the others of
 * this loop turn, to leave in one send() when the loop has run the
 * callbacks it has ready (the queries that came in the same turn); before
 * that it waits on c's list.
 */
static void
conn_put(struct dot_conn *c, struct dot_query *q)
{
	q->id = conn_new_id(c);
	q->queued = false;
	q->msg[0] = (uint8_t)(q->id >> 8);
	q->msg[1] = (uint8_t)q->id;
	q->conn = c;
	TAILQ_INSERT_TAIL(&c->queries, q, entry);
	c->slot[q->id & (DOT_SLOTS - 1)] = q;
	c->inflight++;
	c->du->st.queries++;
	if (!c->ready)
		return;
	if (c->inflight == 1)
		evtimer_del(c->timer);	/* it was idle */
	if (conn_encrypt(c, q) == -1)
		c->broken = true;	/* the flush says so */
	event_active(c->flush, EV_WRITE, 0);	/* once a turn */
}

/* The handshake is over: send the queries that waited for it. */
static int
conn_write_waiting(struct dot_conn *c)
{
	struct dot_query *q;

	TAILQ_FOREACH(q, &c->queries, entry)
		if (conn_encrypt(c, q) == -1)
			return -1;
	return conn_send(c);
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dot_conn *c = arg;

	if (c->broken || conn_send(c) == -1)
		conn_lost(c, "connection reset", false, false);
}

/* The answer msg on c: to the query with its ID, if one waits. */
static void
conn_dispatch(struct dot_conn *c, uint8_t *msg, size_t len)
{
	struct dot_query *q;
	uint16_t id;

	if (len < 12)
		return;		/* not even a header: nobody's */
	id = (uint16_t)(msg[0] << 8 | msg[1]);
	q = c->slot[id & (DOT_SLOTS - 1)];
	if (q == NULL || q->id != id)
		return;		/* for a query the caller gave up on */
	conn_take(c, q);
	c->answered = true;
	q->active = false;
	q->conn = NULL;
	c->du->st.answers++;
	q->cb(q->arg, q, msg, len, NULL);
}

/*
 * Take every whole message from in and answer its query. The callbacks
 * may send and cancel queries, on c too, but do not close c meanwhile.
 */
static void
conn_dispatch_all(struct dot_conn *c, struct evbuffer *in)
{
	struct dot_upstream *du = c->du;
	uint8_t lenbuf[2];
	size_t mlen;

	c->busy = true;
	while (evbuffer_copyout(in, lenbuf, 2) == 2) {
		mlen = (size_t)lenbuf[0] << 8 | lenbuf[1];
		if (evbuffer_get_length(in) < 2 + mlen)
			break;
		evbuffer_drain(in, 2);
		evbuffer_remove(in, du->rbuf, mlen);
		conn_dispatch(c, du->rbuf, mlen);
	}
	c->busy = false;
}

/* After c lost queries: the waiting ones move up; an idle c waits to
 * close, a stuck one closes. c may be freed. */
static void
conn_settle(struct dot_conn *c)
{
	du_drain(c->du);
	if (c->inflight == 0 && c->ready) {
		if (c->stuck)
			conn_close(c, false);
		else
			conn_arm_idle(c);
	}
}

/* Take every whole message from in; c may be freed when it is done. */
static void
conn_read(struct dot_conn *c, struct evbuffer *in)
{
	conn_dispatch_all(c, in);
	conn_settle(c);
}

static int	conn_choose_put(struct dot_upstream *, struct dot_query *);

/*
 * c is gone (closed by the server, reset, handshake failed). Its queries
 * go again on another connection (RFC 7766, section 6.2.1): freely when c
 * gave answers before it closed, as a server that closes after each
 * answer does, since every such round answers one more; up to DOT_RESENDS
 * times when it gave none (a server that closes on unread queries resets
 * the connection, and its answer can be lost with it), and never after a
 * failed handshake, which fails them all. The caller's timeout bounds it.
 */
static void
conn_lost(struct dot_conn *c, const char *why, bool handshake, bool eof)
{
	struct dot_upstream *du = c->du;
	struct dot_query *q;
	bool progress = c->answered;

	if (handshake) {
		du->st.handshake_failures++;
		upstream_failing(du, why);
	} else if (c->inflight > 0)
		du->st.reconnects++;
	/* Off the connection first: the callbacks may send again. */
	while ((q = TAILQ_FIRST(&c->queries)) != NULL) {
		conn_take(c, q);
		q->conn = NULL;
		TAILQ_INSERT_TAIL(&du->moving, q, entry);
	}
	c->inflight = 0;
	conn_close(c, !handshake && eof);
	while ((q = TAILQ_FIRST(&du->moving)) != NULL) {
		TAILQ_REMOVE(&du->moving, q, entry);
		if (!handshake && (progress || q->resent < DOT_RESENDS)) {
			q->resent += !progress;
			if (conn_choose_put(du, q) == 0)
				continue;
		}
		query_fail(q, why);
	}
	du_drain(du);
}

/* The handshake of c has ended well. */
static void
conn_ready(struct dot_conn *c)
{
	struct dot_upstream *du = c->du;

	c->ready = true;
	evtimer_del(c->timer);
	du->st.connects++;
	if (SSL_session_reused(c->ssl))
		du->st.resumed++;
	snprintf(du->version, sizeof(du->version), "%s",
	    SSL_get_version(c->ssl));
	upstream_working(du);
	if (c->inflight == 0)
		conn_arm_idle(c);
}

/*
 * Everything c has read so far through OpenSSL: the handshake until it
 * ends, then the answers. eof: the server closed its side after that.
 * c may be freed when it returns.
 */
static void
conn_input(struct dot_conn *c, bool eof)
{
	char buf[256];
	const char *why = NULL;
	int n, err;

	if (!c->ready) {
		if ((n = SSL_do_handshake(c->ssl)) != 1) {
			err = SSL_get_error(c->ssl, n);
			if (err != SSL_ERROR_WANT_READ || eof ||
			    conn_send(c) == -1)
				conn_lost(c, conn_tls_error(c, buf,
				    sizeof(buf)), true, false);
			return;
		}
		conn_ready(c);
		/* The queries that waited for it, then what came with it. */
		if (conn_write_waiting(c) == -1) {
			conn_lost(c, "connection reset", false, false);
			return;
		}
	}
	for (;;) {
		n = SSL_read(c->ssl, c->du->tbuf, sizeof(c->du->tbuf));
		if (n <= 0)
			break;
		evbuffer_add(c->plain_in, c->du->tbuf, (size_t)n);
	}
	switch ((err = SSL_get_error(c->ssl, n))) {
	case SSL_ERROR_WANT_READ:
		if (eof)	/* a clean TLS close is not required of it */
			why = "connection closed by the server";
		else if (conn_send(c) == -1)	/* say, a key update */
			why = "connection reset";
		break;
	case SSL_ERROR_ZERO_RETURN:
		why = "connection closed by the server";
		eof = true;
		break;
	default:
		why = "connection reset";
		eof = false;
		break;
	}
	ERR_clear_error();
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	if (why == NULL) {
		conn_read(c, c->plain_in);
		return;
	}
	/* Whatever came before the close is answered first. */
	conn_dispatch_all(c, c->plain_in);
	conn_lost(c, why, false, eof);
}

/* The socket is readable: one read() for all that arrived. */
static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dot_conn *c = arg;
	char buf[256];
	ssize_t n;

	if (c->in_off > 0) {		/* a part of a record, kept */
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	if (c->in_len == sizeof(c->in)) {	/* more than a record: never */
		conn_lost(c, "TLS record too long", !c->ready, false);
		return;
	}
	n = recv(fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		if (!c->ready)
			conn_lost(c, conn_tls_error(c, buf, sizeof(buf)), true,
			    false);
		else
			conn_lost(c, "connection reset", false, false);
		return;
	}
	c->in_len += (size_t)n;
	conn_input(c, n == 0);
}

/* The socket is writable: the connect is done, or there is room again. */
static void
write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dot_conn *c = arg;
	char buf[256];
	socklen_t len = sizeof(int);
	int err = 0;

	if (!c->connected) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			conn_lost(c, conn_tls_error(c, buf, sizeof(buf)), true,
			    false);
			return;
		}
		c->connected = true;
		event_add(c->rev, NULL);
		conn_input(c, false);	/* the ClientHello */
		return;
	}
	if (conn_send(c) == -1) {
		if (!c->ready)
			conn_lost(c, conn_tls_error(c, buf, sizeof(buf)), true,
			    false);
		else
			conn_lost(c, "connection reset", false, false);
	}
}

/* A new connection to du, connecting; NULL on a local failure. */
static struct dot_conn *
conn_open(struct dot_upstream *du)
{
	struct dot_conn *c;
	BIO *bio;
	struct timeval tv = { du->lim.handshake_ms / 1000,
	    (du->lim.handshake_ms % 1000) * 1000 };
	int one = 1;

	if (dot_bio_method == NULL || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->du = du;
	c->fd = -1;
	c->next_id = (uint16_t)arc4random();
	TAILQ_INIT(&c->queries);
	TAILQ_INSERT_TAIL(&du->conns, c, entry);
	du->nconns++;
	if ((c->out = evbuffer_new()) == NULL ||
	    (c->plain_in = evbuffer_new()) == NULL ||
	    (c->ssl = SSL_new(du->ssl)) == NULL ||
	    (bio = BIO_new(dot_bio_method)) == NULL)
		goto fail;
	BIO_set_data(bio, c);
	SSL_set_bio(c->ssl, bio, bio);
	SSL_set_ex_data(c->ssl, dot_ex_index, du);
	SSL_set_connect_state(c->ssl);
	if (SSL_set_tlsext_host_name(c->ssl, du->tls_name) != 1 ||
	    SSL_set1_host(c->ssl, du->tls_name) != 1)
		goto fail;
	if (du->session != NULL)
		SSL_set_session(c->ssl, du->session);
	c->fd = socket(du->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd == -1 ||
	    (c->rev = event_new(du->base, c->fd, EV_READ | EV_PERSIST,
	    read_cb, c)) == NULL ||
	    (c->wev = event_new(du->base, c->fd, EV_WRITE, write_cb, c)) ==
	    NULL ||
	    (c->flush = event_new(du->base, -1, 0, flush_cb, c)) == NULL ||
	    (c->timer = evtimer_new(du->base, timer_cb, c)) == NULL)
		goto fail;
	/*
	 * Queries are small and pipelined: without TCP_NODELAY, Nagle would
	 * hold each one back until the previous one's ACK (RFC 7766, 6.2.3).
	 */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&du->addr.ss,
	    (socklen_t)du->addr.len) == -1 && errno != EINPROGRESS)
		goto fail;
	event_add(c->wev, NULL);	/* the connect is done */
	evtimer_add(c->timer, &tv);
	return c;
fail:
	ERR_clear_error();
	conn_close(c, false);
	return NULL;
}

/* The open connection with the most room for one more query, or NULL. */
static struct dot_conn *
conn_with_room(struct dot_upstream *du)
{
	struct dot_conn *c, *best = NULL;

	TAILQ_FOREACH(c, &du->conns, entry) {
		if (c->stuck || c->inflight >= DOT_MAX_PIPELINE)
			continue;
		if (best == NULL || c->inflight < best->inflight)
			best = c;
	}
	return best;
}

/*
 * Put q on the least busy connection, or on a new one when there is none
 * or all are busy and the limit allows another. When every connection is
 * full, q waits for a free slot (its caller's timeout still runs); -1 only
 * when there is no connection at all and none can be opened.
 */
static int
conn_choose_put(struct dot_upstream *du, struct dot_query *q)
{
	struct dot_conn *c, *best = conn_with_room(du);

	if ((best == NULL || best->inflight >= DOT_SPREAD_AT) &&
	    du->nconns < du->lim.max_connections &&
	    (c = conn_open(du)) != NULL)
		best = c;
	if (best != NULL) {
		conn_put(best, q);
		return 0;
	}
	if (du->nconns == 0)
		return -1;
	q->conn = NULL;
	q->queued = true;
	TAILQ_INSERT_TAIL(&du->waiting, q, entry);
	return 0;
}

/* Move waiting queries onto connections as they have room again. */
static void
du_drain(struct dot_upstream *du)
{
	struct dot_query *q;
	struct dot_conn *c;

	while ((q = TAILQ_FIRST(&du->waiting)) != NULL) {
		if ((c = conn_with_room(du)) == NULL &&
		    (du->nconns >= du->lim.max_connections ||
		    (c = conn_open(du)) == NULL))
			return;
		TAILQ_REMOVE(&du->waiting, q, entry);
		conn_put(c, q);
	}
}

int
dot_send(struct dot_upstream *du, struct dot_query *q, uint8_t *msg,
    size_t len, dot_answer_fn cb, void *arg)
{
	q->du = du;
	q->cb = cb;
	q->arg = arg;
	q->msg = msg;
	q->len = len;
	q->conn = NULL;
	q->resent = 0;
	q->queued = false;
	if (len < 12 || len > DOT_FRAME_MAX || conn_choose_put(du, q) == -1)
		return -1;
	q->active = true;
	return 0;
}

void
dot_query_cancel(struct dot_query *q)
{
	struct dot_upstream *du = q->du;
	struct dot_conn *c = q->conn;

	if (!q->active)
		return;
	q->active = false;
	if (q->queued) {
		q->queued = false;
		TAILQ_REMOVE(&du->waiting, q, entry);
		return;
	}
	if (c == NULL) {
		TAILQ_REMOVE(&du->moving, q, entry);
		return;
	}
	conn_take(c, q);
	q->conn = NULL;
	if (!c->busy)		/* else the reading of answers does it */
		conn_settle(c);
}

void
dot_query_timeout(struct dot_query *q)
{
	if (!q->active)
		return;
	q->du->st.timeouts++;
	if (q->conn != NULL)
		q->conn->stuck = true;
}

/* --- padding and tests --------------------------------------------- */

size_t
dot_pad_query(uint8_t *msg, size_t len, size_t cap)
{
	size_t padded, pad;

	/* The last record: root owner, type OPT, ..., RDLENGTH 0. */
	if (len < 12 + 11 || msg[len - 11] != 0 ||
	    (msg[len - 10] << 8 | msg[len - 9]) != DNS_TYPE_OPT ||
	    msg[len - 2] != 0 || msg[len - 1] != 0 ||
	    (msg[10] << 8 | msg[11]) != 1)
		return len;
	padded = (len + 4 + DOT_PAD_BLOCK - 1) / DOT_PAD_BLOCK * DOT_PAD_BLOCK;
	if (padded > cap)
		return len;
	pad = padded - len - 4;
	msg[len - 2] = (uint8_t)((pad + 4) >> 8);
	msg[len - 1] = (uint8_t)(pad + 4);
	msg[len] = 0;
	msg[len + 1] = EDNS_OPT_PADDING;
	msg[len + 2] = (uint8_t)(pad >> 8);
	msg[len + 3] = (uint8_t)pad;
	memset(msg + len + 4, 0, pad);
	return padded;
}

struct probe {
	struct event_base	*base;
	bool			 done;
	const char		*why;	/* NULL: answered */
	uint8_t			 rcode;
};

static void
probe_answer_cb(void *arg, struct dot_query *q, uint8_t *msg, size_t len,
    const char *why)
{
	struct probe *p = arg;

	p->done = true;
	p->why = why;
	p->rcode = msg != NULL ? msg[3] & 0x0f : 0;
	event_base_loopbreak(p->base);
}

int
dot_probe(struct dot_ctx *ctx, const struct netaddr *addr,
    const char *tls_name, unsigned timeout_ms, char *out, size_t outlen)
{
	/* ". IN NS", RD set, with an empty OPT record to pad. */
	uint8_t msg[256] = {
		0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
		0, 0, 2, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0,
	};
	struct dot_limits lim = { 1, timeout_ms, timeout_ms };
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	struct probe p = { 0 };
	struct dot_upstream *du;
	struct dot_query q = { 0 };
	uint64_t start = now_us_monotonic();
	size_t len;
	int rc = -1;

	if ((p.base = event_base_new()) == NULL ||
	    (du = dot_upstream_new(p.base, ctx, addr, tls_name, tls_name,
	    &lim)) == NULL) {
		snprintf(out, outlen, "out of memory");
		if (p.base != NULL)
			event_base_free(p.base);
		return -1;
	}
	len = dot_pad_query(msg, 28, sizeof(msg));
	if (dot_send(du, &q, msg, len, probe_answer_cb, &p) == -1)
		p.why = "cannot open a connection";
	else {
		event_base_loopexit(p.base, &tv);
		event_base_dispatch(p.base);
	}
	if (p.done && p.why == NULL) {
		snprintf(out, outlen, "answered over %s in %llu ms, "
		    "certificate verified for %s (rcode %u)", du->version,
		    (unsigned long long)(now_us_monotonic() - start) / 1000,
		    tls_name, p.rcode);
		rc = 0;
	} else if (p.why != NULL)
		snprintf(out, outlen, "%s", p.why);
	else
		snprintf(out, outlen, "no answer within %u ms", timeout_ms);
	dot_query_cancel(&q);
	dot_upstream_free(du);
	event_base_free(p.base);
	return rc;
}

size_t
dot_upstream_query_ids(const struct dot_upstream *du, uint16_t *ids,
    size_t max)
{
	const struct dot_conn *c = TAILQ_FIRST(&du->conns);
	const struct dot_query *q;
	size_t n = 0;

	if (c == NULL)
		return 0;
	TAILQ_FOREACH(q, &c->queries, entry) {
		if (n == max)
			break;
		ids[n++] = q->id;
	}
	return n;
}

int
dot_upstream_feed(struct dot_upstream *du, const uint8_t *data, size_t len)
{
	struct dot_conn *c = TAILQ_FIRST(&du->conns);
	struct evbuffer *in;

	if (c == NULL || (in = evbuffer_new()) == NULL)
		return -1;
	evbuffer_add(in, data, len);
	conn_read(c, in);
	evbuffer_free(in);
	return 0;
}
