/* Unit tests for the per-client token bucket. */
#include <arpa/inet.h>

#include "ratelimit.h"
#include "unit.h"

static struct sockaddr_storage
addr(const char *s)
{
	struct sockaddr_storage ss = { 0 };

	if (strchr(s, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, s, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, s, &a->sin_addr);
	}
	return ss;
}

static int
allowed_in_a_row(struct ratelimit *rl, const char *s, uint64_t now, int n)
{
	struct sockaddr_storage ss = addr(s);
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

int
main(void)
{
	RUN(test_burst_then_rate);
	RUN(test_off_and_v6);
	UNIT_DONE();
}
