/*
 * clock: milliseconds of CLOCK_MONOTONIC_COARSE, for timestamps that
 * need no better than a tick (cache ages, socket ages) and must not move
 * when the wall clock is set.
 */
#ifndef DNSWARDEN_CLOCK_H
#define DNSWARDEN_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
now_ms_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
