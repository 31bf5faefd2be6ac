/* dot_test: padding, and the read path's framing and ID matching. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <string.h>

#include <event2/event.h>

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

int
main(void)
{
	RUN(test_pad_to_128);
	RUN(test_pad_leaves_other_messages);
	RUN(test_answers_matched_by_id_in_any_order);
	RUN(test_waiting_queries_fail_when_freed);
	RUN(test_full_connection_queues);
	RUN(test_bad_ca_file);
	UNIT_DONE();
}
