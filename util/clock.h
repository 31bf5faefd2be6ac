/*
 * clock: the one place dnswarden reads the time. Monotonic time is for
 * ages, timeouts and durations (it does not move when the wall clock is
 * set); wall time is for the time stamps written to the attempt log.
 *
 * Code that decides by the clock takes `now` from its caller (or a clock
 * function it was given) instead of calling these itself, so that a test
 * can move time rather than sleep.
 */
#ifndef DNSWARDEN_CLOCK_H
#define DNSWARDEN_CLOCK_H

#include <stdint.h>
#include <time.h>

/*
 * Milliseconds of CLOCK_MONOTONIC_COARSE: no better than a kernel tick
 * (1-4 ms), and cheap enough for every received batch (cache ages, socket
 * ages, timeouts).
 */
static inline uint64_t
now_ms_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Microseconds of CLOCK_MONOTONIC, for durations (how long a query took). */
static inline uint64_t
now_us_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Unix time in milliseconds (CLOCK_REALTIME), for time stamps. */
static inline int64_t
now_ms_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
