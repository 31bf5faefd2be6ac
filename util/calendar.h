/*
 * calendar: UTC arithmetic on Unix times, shared by the attempt log's
 * sums, the reports and the console's parameters. Nothing here reads a
 * clock (that is clock.h).
 */
#ifndef DNSWARDEN_CALENDAR_H
#define DNSWARDEN_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* t rounded down to a multiple of step (step > 0), also for t < 0. */
static inline int64_t
cal_floor(int64_t t, int64_t step)
{
	int64_t r = t % step;

	return r < 0 ? t - r - step : t - r;
}

/* The start of the UTC month of t, both in Unix seconds. */
static inline int64_t
cal_month_start(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return (int64_t)timegm(&tm);
}

/* Days in month (1-12) of year (the full year, say 2024). */
static inline int
cal_days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

#endif
