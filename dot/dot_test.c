/*
 * dot_test: padding, the read path's framing and ID matching, and the
 * TLS path against a server in a thread of the test that sends its
 * records whole, a few bytes at a time, or followed by its close.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dot.h"
#include "unit.h"

/* A query for "a.example." A with an empty OPT record: what the
 * forwarder sends. Returns its length. */
static size_t
build_query(uint8_t *buf, uint16_t id)
{
	static const uint8_t q[] = {
		0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
		1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0,
	};

	memcpy(buf, q, sizeof(q));
	buf[0] = (uint8_t)(id >> 8);
	buf[1] = (uint8_t)id;
	return sizeof(q);
}

static void
test_pad_to_128(void)
{
	uint8_t buf[512];
	size_t len = build_query(buf, 7), padded;

	padded = dot_pad_query(buf, len, sizeof(buf));
	CHECK_INT(padded, 128);
	/* OPT RDLENGTH covers the option: code 12, its length, zeros. */
	CHECK_INT(buf[len - 2] << 8 | buf[len - 1], padded - len);
	CHECK_INT(buf[len] << 8 | buf[len + 1], 12);
	CHECK_INT(buf[len + 2] << 8 | buf[len + 3], padded - len - 4);
	for (size_t i = len + 4; i < padded; i++)
		CHECK_INT(buf[i], 0);
}

static void
test_pad_leaves_other_messages(void)
{
	uint8_t buf[512];
	size_t len = build_query(buf, 7);

	/* No room: unchanged. */
	CHECK_INT(dot_pad_query(buf, len, 100), len);
	/* The OPT record already has options: unchanged. */
	buf[len - 1] = 4;
	CHECK_INT(dot_pad_query(buf, len, sizeof(buf)), len);
	/* No additional record at all: unchanged. */
	len = build_query(buf, 7);
	buf[11] = 0;
	CHECK_INT(dot_pad_query(buf, len, sizeof(buf)), len);
	CHECK_INT(dot_pad_query(buf, 5, sizeof(buf)), 5);
}

struct seen {
	int		 calls;
	size_t		 len;
	const char	*why;
	uint16_t	 id;
};

static void
answer_cb(void *arg, struct dot_query *q, uint8_t *msg, size_t len,
    const char *why)
{
	struct seen *s = arg;

	s->calls++;
	s->len = len;
	s->why = why;
	s->id = msg != NULL ? (uint16_t)(msg[0] << 8 | msg[1]) : 0;
}

/* "Answers": the query itself with QR set, framed. */
static size_t
frame(uint8_t *out, const uint8_t *msg, size_t len)
{
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	memcpy(out + 2, msg, len);
	out[4] |= 0x80;
	return len + 2;
}

/* An upstream pool to 127.0.0.1:9, one connection, never contacted:
 * the tests do not run the event loop. */
static struct dot_upstream *
test_upstream(struct event_base *base, struct dot_ctx *ctx)
{
	struct netaddr na = { .len = sizeof(struct sockaddr_in) };
	struct sockaddr_in *sin = (struct sockaddr_in *)&na.ss;
	struct dot_limits lim = { 1, 1000, 1000 };

	sin->sin_family = AF_INET;
	sin->sin_port = htons(9);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return dot_upstream_new(base, ctx, &na, "dot.test", "127.0.0.1:9", &lim);
}

static void
test_answers_matched_by_id_in_any_order(void)
{
	struct event_base *base = event_base_new();
	char err[128];
	struct dot_ctx *ctx = dot_ctx_new(NULL, err, sizeof(err));
	struct dot_upstream *du;
	struct dot_query q[3];
	struct seen seen[3] = { { 0 } };
	uint8_t msg[3][512], stream[2048];
	size_t n = 0;

	CHECK(base != NULL && ctx != NULL);
	du = test_upstream(base, ctx);
	CHECK(du != NULL);
	memset(q, 0, sizeof(q));
	for (int i = 0; i < 3; i++) {
		size_t len = build_query(msg[i], 0);
		CHECK_INT(dot_send(du, &q[i], msg[i], len, answer_cb, &seen[i]), 0);
	}
	/* Unique IDs, written into the messages. */
	CHECK(q[0].id != q[1].id && q[1].id != q[2].id && q[0].id != q[2].id);
	CHECK_INT(msg[1][0] << 8 | msg[1][1], q[1].id);

	/* Answers 2, then one for nobody, a runt, then 0; 1 never comes. */
	n += frame(stream + n, msg[2], 38);
	uint8_t other[512];
	size_t olen = build_query(other, (uint16_t)(q[0].id ^ q[1].id ^ q[2].id ^ 0x5a5a));
	n += frame(stream + n, other, olen);
	stream[n++] = 0;
	stream[n++] = 3;
	memcpy(stream + n, "abc", 3);
	n += 3;
	n += frame(stream + n, msg[0], 38);
	stream[n++] = 0;	/* half a length: waits for more */
	CHECK_INT(dot_upstream_feed(du, stream, n), 0);
	CHECK_INT(seen[2].calls, 1);
	CHECK_INT(seen[2].id, q[2].id);
	CHECK(seen[2].why == NULL && seen[2].len == 38);
	CHECK_INT(seen[0].calls, 1);
	CHECK_INT(seen[1].calls, 0);

	/* Cancelled: its answer is nobody's. */
	dot_query_cancel(&q[1]);
	n = frame(stream, msg[1], 38);
	CHECK_INT(dot_upstream_feed(du, stream, n), 0);
	CHECK_INT(seen[1].calls, 0);

	struct dot_stats st;
	dot_upstream_stats(du, &st);
	CHECK_INT(st.queries, 3);
	CHECK_INT(st.answers, 2);
	dot_upstream_free(du);
	dot_ctx_free(ctx);
	event_base_free(base);
}

static void
test_waiting_queries_fail_when_freed(void)
{
	struct event_base *base = event_base_new();
	char err[128];
	struct dot_ctx *ctx = dot_ctx_new(NULL, err, sizeof(err));
	struct dot_upstream *du;
	struct dot_query q;
	struct seen seen = { 0 };
	uint8_t msg[512];

	du = test_upstream(base, ctx);
	memset(&q, 0, sizeof(q));
	CHECK_INT(dot_send(du, &q, msg, build_query(msg, 0), answer_cb, &seen),
	    0);
	dot_upstream_free(du);
	CHECK_INT(seen.calls, 1);
	CHECK(seen.why != NULL && seen.len == 0);
	dot_ctx_free(ctx);
	event_base_free(base);
}

/* Past 128 in flight on the only connection, queries wait for a slot. */
static void
test_full_connection_queues(void)
{
	struct event_base *base = event_base_new();
	char err[128];
	struct dot_ctx *ctx = dot_ctx_new(NULL, err, sizeof(err));
	struct dot_upstream *du;
	enum { N = 130 };
	static struct dot_query q[N];
	static uint8_t msg[N][64];
	static struct seen seen[N];
	uint16_t ids[N];
	uint8_t stream[64];
	size_t n;

	du = test_upstream(base, ctx);
	memset(q, 0, sizeof(q));
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < N; i++)
		CHECK_INT(dot_send(du, &q[i], msg[i], build_query(msg[i], 0),
		    answer_cb, &seen[i]), 0);
	CHECK_INT(dot_upstream_query_ids(du, ids, N), 128);
	CHECK(q[128].queued && q[129].queued);

	/* A cancelled query makes room for the first that waits... */
	dot_query_cancel(&q[5]);
	CHECK(!q[128].queued && q[128].conn != NULL);
	CHECK(q[129].queued);
	/* ...and so does an answer, for the next. */
	n = frame(stream, msg[0], 38);
	CHECK_INT(dot_upstream_feed(du, stream, n), 0);
	CHECK_INT(seen[0].calls, 1);
	CHECK(!q[129].queued && q[129].conn != NULL);
	CHECK_INT(dot_upstream_query_ids(du, ids, N), 128);
	dot_upstream_free(du);
	CHECK_INT(seen[129].calls, 1);
	CHECK(seen[129].why != NULL);
	dot_ctx_free(ctx);
	event_base_free(base);
}

static void
test_bad_ca_file(void)
{
	char err[256];

	CHECK(dot_ctx_new("/nonexistent/ca.pem", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "/nonexistent/ca.pem") != NULL);
}


/* --- the TLS path, against a server of the test's own ---------------- */

enum srv_mode {
	SRV_WHOLE,	/* all answers in one send() */
	SRV_PIECES,	/* 1 to 7 bytes a send(), records cut anywhere */
	SRV_CLOSE,	/* all answers, close_notify and FIN at once */
	SRV_DIRTY,	/* all answers and FIN, no close_notify */
	SRV_POLL,	/* like NSD: answers each query, then waits for its
			   socket to be readable before it reads the next */
};

struct tls_srv {
	SSL_CTX		*ctx;
	int		 lfd;
	int		 nq;		/* queries to read before answering */
	enum srv_mode	 mode;
	size_t		 extra;		/* bytes added to each answer */
	int		 answered;	/* what the thread sent */
};

#define SRV_MAXQ	100

/* SSL_read exactly len bytes; -1 when the connection ends first. */
static int
srv_read(SSL *ssl, uint8_t *buf, size_t len)
{
	int n;

	for (size_t have = 0; have < len; have += (size_t)n)
		if ((n = SSL_read(ssl, buf + have, (int)(len - have))) <= 0)
			return -1;
	return 0;
}

/*
 * Each query read and answered in turn, and before reading the next one
 * a wait of at most 2 s for the socket to be readable, whatever OpenSSL
 * holds already: a query that shares a TLS record with the one before
 * is seen late, or (when the client sends nothing more) never.
 */
static void
srv_poll_loop(struct tls_srv *t, SSL *ssl, int fd)
{
	uint8_t buf[2 + 1024];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t len;

	for (int i = 0; i < t->nq; i++) {
		if (poll(&pfd, 1, 2000) != 1 || srv_read(ssl, buf, 2) == -1)
			return;
		len = (size_t)buf[0] << 8 | buf[1];
		if (len > 1024 || srv_read(ssl, buf + 2, len) == -1)
			return;
		buf[4] |= 0x80;
		if (SSL_write(ssl, buf, (int)(2 + len)) <= 0)
			return;
		t->answered++;
	}
	while (recv(fd, buf, 1, 0) > 0)		/* until the client closes */
		;
}

/* One TLS connection: read nq framed queries, answer them last first. */
static void *
srv_main(void *arg)
{
	struct tls_srv *t = arg;
	static uint8_t qbuf[SRV_MAXQ * 1100];
	uint8_t frame_buf[2 + 1024 + 1024];
	size_t have = 0, off, qoff[SRV_MAXQ], qlen[SRV_MAXQ];
	int fd, n, nq = 0, one = 1;
	SSL *ssl = NULL;
	BIO *mem;
	char *p;
	long plen;

	if ((fd = accept(t->lfd, NULL, NULL)) == -1)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ssl = SSL_new(t->ctx);
	SSL_set_bio(ssl, BIO_new_socket(fd, BIO_NOCLOSE),
	    BIO_new_socket(fd, BIO_NOCLOSE));
	if (SSL_accept(ssl) != 1)
		goto out;
	if (t->mode == SRV_POLL) {
		srv_poll_loop(t, ssl, fd);
		goto out;
	}
	while (nq < t->nq) {
		if ((n = SSL_read(ssl, qbuf + have, sizeof(qbuf) - have)) <= 0)
			goto out;
		have += (size_t)n;
		for (off = 0, nq = 0; off + 2 <= have && nq < SRV_MAXQ;) {
			size_t len = (size_t)qbuf[off] << 8 | qbuf[off + 1];
			if (off + 2 + len > have)
				break;
			qoff[nq] = off + 2;
			qlen[nq++] = len;
			off += 2 + len;
		}
	}
	/* From here on records go to memory, to be sent as the mode says. */
	mem = BIO_new(BIO_s_mem());
	SSL_set0_wbio(ssl, mem);
	for (int i = nq - 1; i >= 0; i--) {
		size_t len = qlen[i] + t->extra;
		frame_buf[0] = (uint8_t)(len >> 8);
		frame_buf[1] = (uint8_t)len;
		memcpy(frame_buf + 2, qbuf + qoff[i], qlen[i]);
		frame_buf[4] |= 0x80;
		memset(frame_buf + 2 + qlen[i], 0, t->extra);
		if (SSL_write(ssl, frame_buf, (int)(2 + len)) <= 0)
			goto out;
		t->answered++;
	}
	if (t->mode == SRV_CLOSE)
		SSL_shutdown(ssl);
	plen = BIO_get_mem_data(mem, &p);
	for (off = 0; off < (size_t)plen;) {
		size_t chunk = (size_t)plen - off;
		if (t->mode == SRV_PIECES) {
			chunk = chunk < 1 + off % 7 ? chunk : 1 + off % 7;
			usleep(200);
		}
		ssize_t w = send(fd, p + off, chunk, MSG_NOSIGNAL);
		if (w <= 0)
			goto out;
		off += (size_t)w;
	}
	if (t->mode != SRV_CLOSE && t->mode != SRV_DIRTY) {
		char c;
		while (recv(fd, &c, 1, 0) > 0)	/* until the client closes */
			;
	}
out:
	SSL_free(ssl);
	close(fd);
	return NULL;
}

/* A self-signed certificate for dot.test and its key; the PEM of the
 * certificate (the client's CA file) goes to path. */
static int
make_cert(X509 **xp, EVP_PKEY **kp, const char *path)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	FILE *f;

	if (pk == NULL || x == NULL)
		return -1;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
	    (const unsigned char *)"dot.test", -1, -1, 0);
	X509_set_issuer_name(x, nm);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
	    "DNS:dot.test");
	if (ext == NULL)
		return -1;
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (X509_sign(x, pk, EVP_sha256()) == 0 ||
	    (f = fopen(path, "w")) == NULL)
		return -1;
	PEM_write_X509(f, x);
	fclose(f);
	*xp = x;
	*kp = pk;
	return 0;
}

struct tls_run {
	struct event_base	*base;
	struct dot_upstream	*du;
	int			 want;
	bool			 until_closed;
};

static void
tls_check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tls_run *r = arg;
	struct dot_stats st;

	dot_upstream_stats(r->du, &st);
	if ((int)st.answers + (int)st.failures >= r->want &&
	    (!r->until_closed || st.open == 0))
		event_base_loopbreak(r->base);
}

/* nq queries to a server that answers as mode says, extra bytes added
 * to each answer: every one answered once, by ID, over one connection. */
static void
tls_case(enum srv_mode mode, int nq, size_t extra)
{
	static struct dot_query q[SRV_MAXQ];
	static struct seen seen[SRV_MAXQ];
	static uint8_t msg[SRV_MAXQ][512];
	size_t qlen[SRV_MAXQ];
	char path[] = "/tmp/dot_test.XXXXXX", err[256];
	struct tls_srv t = { .nq = nq, .mode = mode, .extra = extra };
	struct netaddr na = { .len = sizeof(struct sockaddr_in) };
	struct sockaddr_in *sin = (struct sockaddr_in *)&na.ss;
	socklen_t slen = sizeof(*sin);
	struct dot_limits lim = { 1, 5000, 5000 };
	struct timeval tick = { 0, 2000 }, limit = { 10, 0 };
	struct tls_run r = { .want = nq, .until_closed = (mode == SRV_CLOSE || mode == SRV_DIRTY) };
	struct dot_ctx *ctx;
	struct dot_stats st;
	struct event *check;
	pthread_t th;
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	int fd;

	if ((fd = mkstemp(path)) == -1)
		SKIP("no temporary file");
	close(fd);
	if (make_cert(&x, &pk, path) == -1) {
		unlink(path);
		CHECK(!"a test certificate");
		return;
	}
	t.ctx = SSL_CTX_new(TLS_server_method());
	CHECK(t.ctx != NULL);
	CHECK_INT(SSL_CTX_use_certificate(t.ctx, x), 1);
	CHECK_INT(SSL_CTX_use_PrivateKey(t.ctx, pk), 1);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t.lfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(t.lfd != -1);
	CHECK_INT(bind(t.lfd, (struct sockaddr *)sin, slen), 0);
	CHECK_INT(listen(t.lfd, 4), 0);
	CHECK_INT(getsockname(t.lfd, (struct sockaddr *)sin, &slen), 0);
	CHECK_INT(pthread_create(&th, NULL, srv_main, &t), 0);

	r.base = event_base_new();
	ctx = dot_ctx_new(path, err, sizeof(err));
	CHECK(ctx != NULL);
	r.du = dot_upstream_new(r.base, ctx, &na, "dot.test", "test", &lim);
	CHECK(r.du != NULL);
	memset(q, 0, sizeof(q));
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < nq; i++) {
		qlen[i] = dot_pad_query(msg[i], build_query(msg[i], 0),
		    sizeof(msg[i]));
		CHECK_INT(dot_send(r.du, &q[i], msg[i], qlen[i], answer_cb,
		    &seen[i]), 0);
	}
	check = event_new(r.base, -1, EV_PERSIST, tls_check_cb, &r);
	event_add(check, &tick);
	event_base_loopexit(r.base, &limit);
	event_base_dispatch(r.base);

	CHECK_INT(t.answered, nq);
	for (int i = 0; i < nq; i++) {
		CHECK_INT(seen[i].calls, 1);
		CHECK(seen[i].why == NULL);
		CHECK_INT(seen[i].id, q[i].id);
		CHECK_INT(seen[i].len, qlen[i] + extra);
	}
	dot_upstream_stats(r.du, &st);
	CHECK_INT(st.answers, nq);
	CHECK_INT(st.failures, 0);
	CHECK_INT(st.connects, 1);
	CHECK_INT(st.reconnects, 0);
	CHECK_INT(st.open, (mode == SRV_CLOSE || mode == SRV_DIRTY) ? 0 : 1);
	dot_upstream_free(r.du);	/* the server sees the close */
	pthread_join(th, NULL);
	event_free(check);
	dot_ctx_free(ctx);
	event_base_free(r.base);
	SSL_CTX_free(t.ctx);
	X509_free(x);
	EVP_PKEY_free(pk);
	close(t.lfd);
	unlink(path);
}

/* More answers than one read() takes (32 KiB): records cut at its end. */
static void
test_tls_many_answers_in_one_burst(void)
{
	tls_case(SRV_WHOLE, SRV_MAXQ, 600);
}

static void
test_tls_records_in_pieces(void)
{
	tls_case(SRV_PIECES, 12, 100);
}

static void
test_tls_answers_then_close_notify(void)
{
	tls_case(SRV_CLOSE, 10, 0);
}

static void
test_tls_answers_then_fin(void)
{
	tls_case(SRV_DIRTY, 10, 0);
}

/* Queries sent in one loop turn reach a server that reads one, answers
 * it and waits for its socket: a TLS record each, not one for all. */
static void
test_tls_server_reading_one_query_a_wakeup(void)
{
	tls_case(SRV_POLL, 20, 0);
}

int
main(void)
{
	RUN(test_pad_to_128);
	RUN(test_pad_leaves_other_messages);
	RUN(test_answers_matched_by_id_in_any_order);
	RUN(test_waiting_queries_fail_when_freed);
	RUN(test_full_connection_queues);
	RUN(test_bad_ca_file);
	RUN(test_tls_many_answers_in_one_burst);
	RUN(test_tls_records_in_pieces);
	RUN(test_tls_answers_then_close_notify);
	RUN(test_tls_answers_then_fin);
	RUN(test_tls_server_reading_one_query_a_wakeup);
	UNIT_DONE();
}
