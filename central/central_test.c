/*
 * central_test: the shipper's pure parts: the reconnect backoff and the
 * month boundaries of the central partitions. The shipper against a real
 * PostgreSQL is tests/e2e/test_central.py.
 */
#include <stdint.h>

#include "central.h"
#include "central_internal.h"
#include "unit.h"

static void
test_backoff(void)
{
	CHECK_INT(central_backoff_ms(1), CENTRAL_BACKOFF_MIN_MS);
	CHECK_INT(central_backoff_ms(2), 2 * CENTRAL_BACKOFF_MIN_MS);
	CHECK_INT(central_backoff_ms(3), 4 * CENTRAL_BACKOFF_MIN_MS);
	/* Never longer than the cap, however long the outage. */
	CHECK_INT(central_backoff_ms(40), CENTRAL_BACKOFF_MAX_MS);
	CHECK_INT(central_backoff_ms(4000000000u), CENTRAL_BACKOFF_MAX_MS);
	for (unsigned i = 1; i < 50; i++)
		CHECK(central_backoff_ms(i + 1) >= central_backoff_ms(i));
}

static void
test_months(void)
{
	/* 2024-02-29T23:59:59.999Z: February; the next is March 1. */
	CHECK_INT(central_month_start(1709251199999LL, 0), 1706745600LL);
	CHECK_INT(central_month_start(1709251199999LL, 1), 1709251200LL);
	/* December rolls into the next year. */
	CHECK_INT(central_month_start(1735603200000LL, 1), 1735689600LL);
	/* Exactly on a boundary belongs to the month it starts. */
	CHECK_INT(central_month_start(1709251200000LL, 0), 1709251200LL);
	/* Before 1970: a negative ms rounds down, not toward zero. */
	CHECK_INT(central_month_start(-1, 0), -2678400LL);
}

int
main(void)
{
	RUN(test_backoff);
	RUN(test_months);
	UNIT_DONE();
}
