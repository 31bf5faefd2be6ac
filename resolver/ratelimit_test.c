/* Unit tests for the per-client token bucket. */
#include <arpa/inet.h>

#include <stdio.h>

#include "ratelimit.h"
#include "ratelimit_internal.h"
#include "unit.h"

static int
allowed_in_a_row(struct ratelimit *rl, const char *s, uint64_t now, int n)
{
	struct sockaddr_storage ss = unit_addr(s);
	int ok = 0;

	for (int i = 0; i < n; i++)
		ok += ratelimit_allow(rl, (struct sockaddr *)&ss, now);
	return ok;
}

static void
test_burst_then_rate(void)
{
	struct ratelimit *rl = ratelimit_new(100, 20, 7);

	/* A fresh client gets its burst, then nothing at the same instant. */
	CHECK_INT(allowed_in_a_row(rl, "10.0.0.1", 1000, 50), 20);
	/* 100 qps refills 10 tokens in 100 ms. */
	CHECK_INT(allowed_in_a_row(rl, "10.0.0.1", 1100, 50), 10);
	/* Another client is not affected. */
	CHECK_INT(allowed_in_a_row(rl, "10.0.0.2", 1100, 5), 5);
	/* The bucket never holds more than the burst. */
	CHECK_INT(allowed_in_a_row(rl, "10.0.0.1", 100000, 50), 20);
	ratelimit_free(rl);
}

static void
test_off_and_v6(void)
{
	struct ratelimit *rl = ratelimit_new(0, 0, 7);

	CHECK_INT(allowed_in_a_row(rl, "10.0.0.1", 1, 10000), 10000);
	ratelimit_set(rl, 10, 10);
	/* Addresses in one IPv6 /64 share a bucket; IPv4-mapped = IPv4. */
	CHECK_INT(allowed_in_a_row(rl, "2001:db8::1", 5, 6), 6);
	CHECK_INT(allowed_in_a_row(rl, "2001:db8::2", 5, 6), 4);
	CHECK_INT(allowed_in_a_row(rl, "2001:db8:0:1::1", 5, 6), 6);
	CHECK_INT(allowed_in_a_row(rl, "192.0.2.1", 5, 6), 6);
	CHECK_INT(allowed_in_a_row(rl, "::ffff:192.0.2.1", 5, 6), 4);
	ratelimit_free(rl);
}

/* An IPv4 address other than s whose bucket shares s's slot. */
static void
colliding(struct ratelimit *rl, const char *s, char *out, size_t len)
{
	struct sockaddr_storage a = unit_addr(s), b;
	uint32_t want = ratelimit_slot(rl, (struct sockaddr *)&a);

	for (uint32_t i = 1; i < (1u << 24); i++) {
		snprintf(out, len, "10.%u.%u.%u", i >> 16, (i >> 8) & 0xff,
		    i & 0xff);
		b = unit_addr(out);
		if (strcmp(out, s) != 0 &&
		    ratelimit_slot(rl, (struct sockaddr *)&b) == want)
			return;
	}
	snprintf(out, len, "none");
}

/* A flood from many addresses gets no fresh burst when one of them lands
 * on a spent slot: the newcomer takes the slot over as it is. */
static void
test_collision_keeps_budget(void)
{
	struct ratelimit *rl = ratelimit_new(1, 5, 7);
	char other[32];

	colliding(rl, "192.0.2.1", other, sizeof(other));
	CHECK(strcmp(other, "none") != 0);
	CHECK_INT(allowed_in_a_row(rl, "192.0.2.1", 1000, 10), 5);
	CHECK_INT(allowed_in_a_row(rl, other, 1000, 10), 0);
	/* Time refills the slot for whoever holds it: 1 qps, 2 s. */
	CHECK_INT(allowed_in_a_row(rl, other, 3000, 10), 2);
	CHECK_INT(allowed_in_a_row(rl, "192.0.2.1", 3000, 10), 0);
	ratelimit_free(rl);
}

/* TCP connections counted per client, up to max, and released. */
static void
test_connections(void)
{
	struct ratelimit *rl = ratelimit_new(0, 1, 7);
	struct sockaddr_storage a = unit_addr("192.0.2.1"), b = unit_addr("192.0.2.2");
	uint32_t s1, s2, s3, s4;

	CHECK(ratelimit_conn_acquire(rl, (struct sockaddr *)&a, 2, &s1));
	CHECK(ratelimit_conn_acquire(rl, (struct sockaddr *)&a, 2, &s2));
	CHECK(!ratelimit_conn_acquire(rl, (struct sockaddr *)&a, 2, &s3));
	CHECK(ratelimit_conn_acquire(rl, (struct sockaddr *)&b, 2, &s4));
	ratelimit_conn_release(rl, s1);
	CHECK(ratelimit_conn_acquire(rl, (struct sockaddr *)&a, 2, &s3));
	CHECK_INT(s3, s2);
	ratelimit_free(rl);
}

int
main(void)
{
	RUN(test_burst_then_rate);
	RUN(test_off_and_v6);
	RUN(test_collision_keeps_budget);
	RUN(test_connections);
	UNIT_DONE();
}
