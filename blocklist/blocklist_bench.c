/*
 * blocklist_bench: the import time, resident memory and lookup cost of a
 * large blocklist against a small one, for bench/blocklist_scale.sh. Built
 * on request (ninja blocklist/blocklist_bench), not installed, not a test.
 *
 * usage: blocklist_bench BIG.yaml SMALL.yaml DIR [ROUNDS]
 * DIR holds the query files bench/gen_blocklist.py writes: queries.txt
 * (mixed), misses.txt, big-hits.txt and small-hits.txt. Lookup times are
 * CPU time per lookup, the best of ROUNDS passes. Last, a reload: BIG.yaml
 * loaded again beside the first copy, which is then freed, as SIGHUP does.
 * Prints key=value lines.
 */
#include <sys/resource.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blocklist.h"
#include "proc_status.h"

struct queries {
	uint8_t		*buf;		/* wire names, back to back */
	size_t		*off;
	size_t		 n;
};

static long
rss_kib(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
hwm_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");

	if (f != NULL) {
		fputs("5", f);
		fclose(f);
	}
}

static double
seconds(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read one dotted name a line into wire format. */
static int
queries_read(const char *path, struct queries *q)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, used = 0, bufcap = 0, offcap = 0;
	ssize_t len;

	if (f == NULL)
		return -1;
	memset(q, 0, sizeof(*q));
	while ((len = getline(&line, &cap, f)) > 0) {
		char *p = line, *dot;

		line[strcspn(line, "\n")] = '\0';
		if (used + (size_t)len + 2 > bufcap) {
			bufcap = bufcap ? bufcap * 2 : 1 << 20;
			q->buf = realloc(q->buf, bufcap);
		}
		if (q->n == offcap) {
			offcap = offcap ? offcap * 2 : 1 << 16;
			q->off = realloc(q->off, offcap * sizeof(*q->off));
		}
		if (q->buf == NULL || q->off == NULL)
			return -1;
		q->off[q->n++] = used;
		for (; *p != '\0'; p = dot + (*dot == '.')) {
			dot = p + strcspn(p, ".");
			q->buf[used++] = (uint8_t)(dot - p);
			memcpy(q->buf + used, p, (size_t)(dot - p));
			used += (size_t)(dot - p);
		}
		q->buf[used++] = 0;
	}
	free(line);
	fclose(f);
	return 0;
}

/* CPU nanoseconds per lookup, best of rounds; *hits counts blocks. */
static double
lookups(const struct blocklist *bl, const struct queries *q, int rounds,
    size_t *hits)
{
	struct blocklist_match m;
	double best = 1e30;

	for (int r = 0; r < rounds; r++) {
		double t0 = seconds(CLOCK_PROCESS_CPUTIME_ID), t;

		*hits = 0;
		for (size_t i = 0; i < q->n; i++) {
			size_t end = i + 1 < q->n ? q->off[i + 1] : SIZE_MAX;
			const uint8_t *w = q->buf + q->off[i];

			*hits += blocklist_match_wire(bl, w,
			    end == SIZE_MAX ? 255 : end - q->off[i], &m) == 1;
		}
		t = seconds(CLOCK_PROCESS_CPUTIME_ID) - t0;
		if (t < best)
			best = t;
	}
	return best * 1e9 / (double)q->n;
}

static struct blocklist *
load(const char *path)
{
	struct diag d;
	struct blocklist *bl;

	diag_init(&d);
	bl = blocklist_load_file(path, &d);
	if (bl == NULL)
		fprintf(stderr, "%s", diag_text(&d));
	diag_free(&d);
	return bl;
}

/* Read DIR/name into q; exits on failure. */
static void
queries_load(const char *dir, const char *name, struct queries *q)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (queries_read(path, q) == -1) {
		perror(path);
		exit(1);
	}
}

static void
queries_free(struct queries *q)
{
	free(q->buf);
	free(q->off);
}

/* Time one query set on bl and print it as prefix_*. */
static double
run(const struct blocklist *bl, const struct queries *q, int rounds,
    const char *prefix)
{
	size_t hits = 0;
	double ns = lookups(bl, q, rounds, &hits);

	printf("%s_ns=%.1f\n%s_blocked=%zu/%zu\n", prefix, ns, prefix, hits,
	    q->n);
	return ns;
}

/* Load path as the daemon's first load, printing what it cost. */
static struct blocklist *
load_measured(const char *path)
{
	struct blocklist *bl;
	struct rusage ru0, ru1;
	double t0, c0, wall, cpu;
	long rss0, rss1, peak;
	size_t entries;

	rss0 = rss_kib();
	getrusage(RUSAGE_SELF, &ru0);
	hwm_reset();
	t0 = seconds(CLOCK_MONOTONIC);
	c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
	if ((bl = load(path)) == NULL)
		exit(1);
	wall = seconds(CLOCK_MONOTONIC) - t0;
	cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
	rss1 = rss_kib();
	peak = proc_status_kb("VmHWM");
	getrusage(RUSAGE_SELF, &ru1);
	entries = blocklist_size(bl);
	printf("entries=%zu\nimport_wall_s=%.3f\nimport_cpu_s=%.3f\n",
	    entries, wall, cpu);
	/* Wall time well above CPU time with many of these: a busy machine. */
	printf("import_preempted=%ld\nimport_major_faults=%ld\n",
	    ru1.ru_nivcsw - ru0.ru_nivcsw, ru1.ru_majflt - ru0.ru_majflt);
	printf("import_minor_faults=%ld\n", ru1.ru_minflt - ru0.ru_minflt);
	printf("rss_added_mib=%.1f\npeak_added_mib=%.1f\n",
	    (double)(rss1 - rss0) / 1024, (double)(peak - rss0) / 1024);
	printf("bytes_per_entry=%.1f\n",
	    (double)(rss1 - rss0) * 1024 / (double)entries);
	return bl;
}

/*
 * A reload: path loaded again while *blp is held, then the old copy
 * freed. Prints the peak during it and what stays resident after, both
 * above rss0 (the resident size before the first load).
 */
static void
reload_measured(const char *path, struct blocklist **blp, long rss0)
{
	struct blocklist *bl;
	double t0 = seconds(CLOCK_PROCESS_CPUTIME_ID);

	hwm_reset();
	if ((bl = load(path)) == NULL)
		exit(1);
	printf("reload_cpu_s=%.3f\n", seconds(CLOCK_PROCESS_CPUTIME_ID) - t0);
	blocklist_free(*blp);
	*blp = bl;
	printf("reload_peak_added_mib=%.1f\nreload_rss_added_mib=%.1f\n",
	    (double)(proc_status_kb("VmHWM") - rss0) / 1024,
	    (double)(rss_kib() - rss0) / 1024);
}

int
main(int argc, char **argv)
{
	struct queries mixed, misses, big_hits, small_hits;
	struct blocklist *bl;
	double big[3], small[3];
	long rss0;
	int rounds = argc > 4 ? atoi(argv[4]) : 5;

	if (argc < 4) {
		fprintf(stderr, "usage: %s BIG.yaml SMALL.yaml DIR [ROUNDS]\n",
		    argv[0]);
		return 2;
	}
	queries_load(argv[3], "queries.txt", &mixed);
	queries_load(argv[3], "misses.txt", &misses);
	queries_load(argv[3], "big-hits.txt", &big_hits);
	queries_load(argv[3], "small-hits.txt", &small_hits);

	rss0 = rss_kib();
	bl = load_measured(argv[1]);
	big[0] = run(bl, &mixed, rounds, "big_mixed");
	big[1] = run(bl, &misses, rounds, "big_misses");
	big[2] = run(bl, &big_hits, rounds, "big_hits");
	reload_measured(argv[1], &bl, rss0);
	blocklist_free(bl);
	printf("rss_after_free_added_mib=%.1f\n",
	    (double)(rss_kib() - rss0) / 1024);

	if ((bl = load(argv[2])) == NULL)
		return 1;
	printf("small_entries=%zu\n", blocklist_size(bl));
	small[0] = run(bl, &mixed, rounds, "small_mixed");
	small[1] = run(bl, &misses, rounds, "small_misses");
	small[2] = run(bl, &small_hits, rounds, "small_hits");
	blocklist_free(bl);
	printf("ratio_mixed=%.2f\nratio_misses=%.2f\nratio_hits=%.2f\n",
	    big[0] / small[0], big[1] / small[1], big[2] / small[2]);
	queries_free(&mixed);
	queries_free(&misses);
	queries_free(&big_hits);
	queries_free(&small_hits);
	return 0;
}
