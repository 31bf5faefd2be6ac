/*
 * report_time: the cost of one report or log page inside a running
 * process, as the console's API pays it (no process start, no dynamic
 * linking), for bench/report_scale.sh.
 *
 * usage: report_time FILE RUNS report|log [NAME VALUE]...
 *
 * Each run opens FILE with report_db_open(), runs the options (the names
 * of report_opts_set(): by, since, client, before, limit, tz, ...) with
 * report_run(), writes the rows as a table to /dev/null and closes the
 * file. Prints one line per run and then
 *   median_wall_ms M max_wall_ms M median_cpu_ms M max_cpu_ms M rows N
 * CPU is this process's user + system time.
 */
#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "report.h"

#define RUNS_MAX	1000

static double
cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median and max of v[0..n), sorting v. */
static void
stats(double *v, int n, double *median, double *max)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	*median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	*max = v[n - 1];
}

/* One run; its rows' count, or -1. */
static long
one_run(const char *path, const struct report_opts *o, FILE *null)
{
	struct report_rows *rows;
	struct report_db *db;
	char err[512];
	long n;

	if ((db = report_db_open(path, err, sizeof(err))) == NULL ||
	    report_run(db, o, NULL, &rows, err, sizeof(err)) == -1) {
		fprintf(stderr, "report_time: %s\n", err);
		report_db_close(db);
		return -1;
	}
	n = (long)rows->nrows;
	if (report_write(rows, REPORT_TABLE, null) == -1)
		n = -1;
	report_rows_free(rows);
	report_db_close(db);
	return n;
}

int
main(int argc, char *argv[])
{
	static double wall[RUNS_MAX], cpu[RUNS_MAX];
	struct report_opts o;
	double wmed, wmax, cmed, cmax;
	char err[512];
	long runs, rows = 0;
	FILE *null;

	if (argc < 4 || argc % 2 != 0 || (runs = atol(argv[2])) <= 0 ||
	    runs > RUNS_MAX || (strcmp(argv[3], "report") != 0 &&
	    strcmp(argv[3], "log") != 0)) {
		fprintf(stderr, "usage: report_time FILE RUNS report|log"
		    " [NAME VALUE]...\n");
		return 2;
	}
	report_opts_init(&o, strcmp(argv[3], "log") == 0 ? REPORT_ATTEMPTS :
	    REPORT_COUNTS);
	for (int i = 4; i + 1 < argc; i += 2)
		if (report_opts_set(&o, argv[i], argv[i + 1], err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "report_time: %s\n", err);
			return 2;
		}
	if (report_opts_finish(&o, err, sizeof(err)) == -1) {
		fprintf(stderr, "report_time: %s\n", err);
		return 2;
	}
	if ((null = fopen("/dev/null", "w")) == NULL) {
		perror("/dev/null");
		return 1;
	}
	for (long i = 0; i < runs; i++) {
		uint64_t w0 = now_us_monotonic();
		double c0 = cpu_ms();

		if ((rows = one_run(argv[1], &o, null)) < 0)
			return 1;
		wall[i] = (double)(now_us_monotonic() - w0) / 1e3;
		cpu[i] = cpu_ms() - c0;
		printf("run %ld wall_ms %.2f cpu_ms %.2f\n", i + 1, wall[i],
		    cpu[i]);
	}
	stats(wall, (int)runs, &wmed, &wmax);
	stats(cpu, (int)runs, &cmed, &cmax);
	printf("median_wall_ms %.2f max_wall_ms %.2f median_cpu_ms %.2f"
	    " max_cpu_ms %.2f rows %ld\n", wmed, wmax, cmed, cmax, rows);
	fclose(null);
	return 0;
}
