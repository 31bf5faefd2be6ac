/* log_test: the per-second budget of debug lines a client can cause. */
#include "log.h"
#include "unit.h"

/* A flood within one second: per_s lines pass, the rest are counted and
 * reported once, by the first call of a later second. */
static void
test_flood_is_cut_and_counted(void)
{
	struct log_ratelimit rl = { .per_s = 3 };
	unsigned long sup = 99;
	int passed = 0;

	for (int i = 0; i < 10; i++) {
		passed += log_ratelimit_pass(&rl, 5000 + (uint64_t)i, &sup);
		CHECK_INT(sup, 0);
	}
	CHECK_INT(passed, 3);
	/* Two seconds of silence later: the next line passes and carries
	 * the count of the seven held back. */
	CHECK(log_ratelimit_pass(&rl, 8000, &sup));
	CHECK_INT(sup, 7);
	CHECK(log_ratelimit_pass(&rl, 8001, &sup));
	CHECK_INT(sup, 0);
}

/* Below the budget nothing is held back, second after second. */
static void
test_slow_lines_all_pass(void)
{
	struct log_ratelimit rl = { .per_s = 2 };
	unsigned long sup;

	for (uint64_t ms = 0; ms < 10000; ms += 600) {
		CHECK(log_ratelimit_pass(&rl, ms, &sup));
		CHECK_INT(sup, 0);
	}
}

int
main(void)
{
	RUN(test_flood_is_cut_and_counted);
	RUN(test_slow_lines_all_pass);
	UNIT_DONE();
}
