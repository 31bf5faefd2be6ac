/*
 * log_throughput_test: push blocked attempts through attemptlog_append()
 * into a fresh SQLite database at a paced rate, then check that every row
 * is in the file and report the figures.
 *
 * Run by "meson test" with a small load as a correctness check (no row
 * lost at a modest rate; no timing is asserted). bench/log_throughput.sh
 * runs it with the full load:
 *
 *   log_throughput_test [--rows N] [--rate R] [--threads T] [--queue Q]
 *                       [--dir DIR] [--index NAME] [--fill]
 *                       [--domains N] [--clients N]
 *
 * --domains and --clients set how many distinct blocked names and client
 * addresses the rows spread over (500 and 2,000 by default). A scanner
 * probing a long list looks like --domains 100000 --clients 1: nearly
 * every row then has a summary key of its own (issue 12's compare.sh
 * figure).
 *
 * --index changes the indexes before the run, to measure their cost:
 * client_rule_ts adds one on (client, rule, ts); the others replace
 * attempts_log (ts, id, client, client_name) by an index of that name
 * (the writer builds attempts_log where it finds none) on other columns:
 * ts on (ts) alone, as version 4's attempts_ts, ts_client on (ts,
 * client), ts_client_name on (ts, client, client_name); none puts it on
 * table log_gaps, leaving attempts without an index.
 *
 * --rate 0 appends as fast as the producers can (drops then measure how
 * far the writer falls behind rather than a failure).
 *
 * CPU is reported for the whole process from start to attemptlog_close()
 * (so not the final count), and split into the producers' threads and the
 * rest, which is the writer thread (the main thread only waits).
 *
 * --fill measures the queue's memory instead: after a paced warm-up of
 * 30,000 rows, with the database locked by another connection, it fills
 * the queue (--queue rows, no pacing), reads the resident anonymous
 * memory, unlocks, and reads it again once the writer has drained the
 * queue and been idle for a while; both over the figure after warm-up.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <getopt.h>
#include <stdbool.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "attemptlog.h"
#include "clock.h"
#include "proc_status.h"
#include "sink.h"

#define NDOMAINS	500		/* defaults */
#define NCLIENTS	2000

struct bench {
	long		 rows;
	long		 rate;		/* rows per second, all threads */
	int		 threads;
	unsigned	 queue;
	const char	*dir;
	const char	*index;
	bool		 fill;
	unsigned	 ndomains, nclients;
	struct attemptlog *al;
	char		(*rules)[64];
	char		(*sites)[64];
	uint8_t		(*wires)[80];
	size_t		*wire_len;
};

struct producer {
	struct bench	*b;
	int		 id;
	pthread_t	 thread;
	double		 cpu_s;		/* this thread's CPU time */
};

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double
thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
process_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Names like www.site123.example: realistic lengths, label by label. */
static int
bench_names(struct bench *b)
{
	b->rules = calloc(b->ndomains, sizeof(*b->rules));
	b->sites = calloc(b->ndomains, sizeof(*b->sites));
	b->wires = calloc(b->ndomains, sizeof(*b->wires));
	b->wire_len = calloc(b->ndomains, sizeof(*b->wire_len));
	if (b->rules == NULL || b->sites == NULL || b->wires == NULL ||
	    b->wire_len == NULL)
		return -1;
	for (unsigned i = 0; i < b->ndomains; i++) {
		char label[32];
		size_t n, o = 0;

		snprintf(b->rules[i], sizeof(b->rules[i]), "site%u.example", i);
		snprintf(b->sites[i], sizeof(b->sites[i]), "Example Site %u", i);
		snprintf(label, sizeof(label), "site%u", i);
		b->wires[i][o++] = 3;
		memcpy(b->wires[i] + o, "www", 3);
		o += 3;
		n = strlen(label);
		b->wires[i][o++] = (uint8_t)n;
		memcpy(b->wires[i] + o, label, n);
		o += n;
		b->wires[i][o++] = 7;
		memcpy(b->wires[i] + o, "example", 7);
		o += 7;
		b->wires[i][o++] = 0;
		b->wire_len[i] = o;
	}
	return 0;
}

static void
bench_append(struct bench *b, uint32_t r)
{
	static const uint16_t qtypes[] = { 1, 28, 65 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	unsigned d = r % b->ndomains;
	struct blocklist_match m = {
		.rule = b->rules[d], .category = "commercial-sex",
		.site = d % 10 ? b->sites[d] : NULL,
	};
	struct attempt a = {
		.ts_ms = now_ms_wall(), .client = (struct sockaddr *)&sin,
		.qname = b->wires[d], .qname_len = b->wire_len[d],
		.qtype = qtypes[(r >> 9) % 3], .transport = TRANSPORT_UDP,
		.match = &m,
	};

	sin.sin_addr.s_addr = htonl(0x0a000000u | ((r >> 11) % b->nclients));
	attemptlog_append(b->al, &a);
}

/* Each producer appends its share in 1 ms ticks at rate / threads. */
static void *
producer_main(void *arg)
{
	struct producer *p = arg;
	struct bench *b = p->b;
	long share = b->rows / b->threads + (p->id < b->rows % b->threads);
	double per_ns = b->rate > 0 ? (double)b->rate / b->threads / 1e9 : 0;
	int64_t start = now_ns();
	uint32_t r = (uint32_t)p->id * 2654435761u;
	long done = 0;

	while (done < share) {
		long due = per_ns > 0 ?
		    (long)((double)(now_ns() - start) * per_ns) + 1 : share;

		if (due > share)
			due = share;
		for (; done < due; done++) {
			r = r * 1103515245u + 12345u;
			bench_append(b, r);
		}
		if (done < share && per_ns > 0) {
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
		}
	}
	p->cpu_s = thread_cpu_s();
	return NULL;
}

static long long
db_count(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM attempts", -1, &st,
	    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Change the indexes to measure what they cost the writer. */
static int
bench_index(const char *path, const char *index)
{
	char err[256], sql[256];
	struct sink *s;
	sqlite3 *db;
	int rc;

	if (strcmp(index, "client_rule_ts") == 0)
		snprintf(sql, sizeof(sql), "CREATE INDEX attempts_client_rule_ts"
		    " ON attempts(client, rule, ts)");
	else if (strcmp(index, "none") == 0)
		snprintf(sql, sizeof(sql), "DROP INDEX attempts_log;"
		    " CREATE INDEX attempts_log ON log_gaps(ts_start)");
	else if (strcmp(index, "ts") == 0)
		snprintf(sql, sizeof(sql), "DROP INDEX attempts_log;"
		    " CREATE INDEX attempts_log ON attempts(ts)");
	else if (strcmp(index, "ts_client") == 0)
		snprintf(sql, sizeof(sql), "DROP INDEX attempts_log;"
		    " CREATE INDEX attempts_log ON attempts(ts, client)");
	else if (strcmp(index, "ts_client_name") == 0)
		snprintf(sql, sizeof(sql), "DROP INDEX attempts_log;"
		    " CREATE INDEX attempts_log ON attempts(ts, client,"
		    " client_name)");
	else {
		fprintf(stderr, "unknown --index %s\n", index);
		return -1;
	}
	/* Create the schema first, the way the server would. */
	if ((s = sink_sqlite_ops.open(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	sink_sqlite_ops.close(s);
	sqlite3_open(path, &db);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int
bench_parse(int argc, char **argv, struct bench *b)
{
	static const struct option opts[] = {
		{ "rows", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "queue", required_argument, NULL, 'q' },
		{ "dir", required_argument, NULL, 'd' },
		{ "index", required_argument, NULL, 'i' },
		{ "fill", no_argument, NULL, 'f' },
		{ "domains", required_argument, NULL, 'D' },
		{ "clients", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	b->rows = 20000;
	b->rate = 20000;
	b->threads = 2;
	b->queue = 65536;
	b->ndomains = NDOMAINS;
	b->nclients = NCLIENTS;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': b->rows = atol(optarg); break;
		case 'r': b->rate = atol(optarg); break;
		case 't': b->threads = atoi(optarg); break;
		case 'q': b->queue = (unsigned)atol(optarg); break;
		case 'd': b->dir = optarg; break;
		case 'i': b->index = optarg; break;
		case 'f': b->fill = true; break;
		case 'D': b->ndomains = (unsigned)atol(optarg); break;
		case 'C': b->nclients = (unsigned)atol(optarg); break;
		default: return -1;
		}
	}
	return b->rows > 0 && b->threads > 0 && b->threads <= 64 &&
	    b->ndomains > 0 && b->nclients > 0 ? 0 : -1;
}

/* CPU seconds up to attemptlog_close(): all threads, and the producers. */
struct bench_cpu {
	double	total;
	double	producers;
	double	main;
};

static void
bench_report(const struct bench *b, const char *path, double produce_s,
    double total_s, const struct attemptlog_stats *st, long long rows,
    const struct bench_cpu *cpu)
{
	struct stat sb;
	long long bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
	double per = rows > 0 ? 1e6 / rows : 0;

	printf("rows_appended %ld\n", b->rows);
	printf("target_rate %ld\n", b->rate);
	printf("producer_threads %d\n", b->threads);
	printf("queue_size %u\n", b->queue);
	printf("extra_index %s\n", b->index ? b->index : "none");
	printf("domains %u\n", b->ndomains);
	printf("clients %u\n", b->nclients);
	printf("append_seconds %.3f\n", produce_s);
	printf("offered_rows_per_s %.0f\n", b->rows / produce_s);
	printf("until_on_disk_seconds %.3f\n", total_s);
	printf("sustained_rows_per_s %.0f\n", (double)st->written / total_s);
	printf("rows_dropped %" PRIu64 "\n", st->dropped);
	printf("rows_in_database %lld\n", rows);
	printf("db_bytes %lld\n", bytes);
	printf("bytes_per_row %.1f\n", rows > 0 ? (double)bytes / rows : 0);
	/* CPU is steadier than wall time on a shared machine. */
	printf("cpu_seconds %.3f\n", cpu->total);
	printf("cpu_us_per_row %.2f\n", cpu->total * per);
	printf("producer_cpu_us_per_row %.2f\n", cpu->producers * per);
	printf("writer_cpu_us_per_row %.2f\n",
	    (cpu->total - cpu->producers - cpu->main) * per);
}

static void
bench_start(struct bench *b, struct producer *p)
{
	for (int i = 0; i < b->threads; i++) {
		p[i].b = b;
		p[i].id = i;
		pthread_create(&p[i].thread, NULL, producer_main, &p[i]);
	}
}

static double
bench_join(struct bench *b, struct producer *p)
{
	double cpu = 0;

	for (int i = 0; i < b->threads; i++) {
		pthread_join(p[i].thread, NULL);
		cpu += p[i].cpu_s;
	}
	return cpu;
}

/* The paced run: every row on disk, and the figures. */
static int
bench_run(struct bench *b, const char *path)
{
	struct producer p[64];
	struct attemptlog_stats st;
	struct bench_cpu cpu;
	int64_t t0, t1, t2;
	long long rows;

	t0 = now_ns();
	bench_start(b, p);
	cpu.producers = bench_join(b, p);
	t1 = now_ns();
	attemptlog_get_stats(b->al, &st);
	fprintf(stderr, "appended; %" PRIu64 " rows pending\n", st.pending);
	attemptlog_close(b->al);	/* returns when all is on disk */
	t2 = now_ns();
	cpu.total = process_cpu_s();
	cpu.main = thread_cpu_s();

	rows = db_count(path);
	/* close() released al; the counters were read just before. */
	st.written = (uint64_t)(rows > 0 ? rows : 0);
	bench_report(b, path, (t1 - t0) / 1e9, (t2 - t0) / 1e9, &st, rows,
	    &cpu);
	if (rows != b->rows - (long long)st.dropped || (b->rate > 0 &&
	    st.dropped > 0)) {
		fprintf(stderr, "FAIL: %lld rows in the database, %ld"
		    " appended, %" PRIu64 " dropped\n", rows, b->rows,
		    st.dropped);
		return 1;
	}
	return 0;
}

static void
bench_wait_written(struct attemptlog *al, uint64_t n)
{
	struct attemptlog_stats st;
	struct timespec ts = { 0, 10 * 1000000 };

	for (int i = 0; i < 3000; i++) {
		attemptlog_get_stats(al, &st);
		if (st.written >= n)
			return;
		nanosleep(&ts, NULL);
	}
}

/* --fill: the resident memory of a full queue, and after it drained. */
static int
bench_fill(struct bench *b, const char *path)
{
	struct producer p[64];
	struct attemptlog_stats st;
	struct timespec idle = { 1, 500 * 1000000 };
	long rss0, rss_full, rss_drained;
	sqlite3 *other;

	/*
	 * Warm up first, paced so that the queue stays short: SQLite's page
	 * cache and the writer's buffers then hold what they will hold, and
	 * what grows next is the queue.
	 */
	bench_append(b, 1);		/* the writer creates the file */
	bench_wait_written(b->al, 1);
	b->rows = 30000;
	b->rate = 30000;
	bench_start(b, p);
	bench_join(b, p);
	bench_wait_written(b->al, (uint64_t)b->rows + 1);
	nanosleep(&idle, NULL);
	rss0 = proc_status_kb("RssAnon");
	b->rows = b->queue;
	b->rate = 0;
	sqlite3_open(path, &other);
	if (sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "cannot lock %s\n", path);
		return 1;
	}
	bench_start(b, p);
	bench_join(b, p);
	attemptlog_get_stats(b->al, &st);
	rss_full = proc_status_kb("RssAnon");
	sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(other);
	bench_wait_written(b->al, (uint64_t)b->queue + 30001);
	nanosleep(&idle, NULL);
	rss_drained = proc_status_kb("RssAnon");
	printf("queue_size %u\n", b->queue);
	printf("rows_queued %" PRIu64 "\n", st.pending);
	printf("rows_dropped %" PRIu64 "\n", st.dropped);
	printf("rss_anon_idle_kb %ld\n", rss0);
	printf("queue_full_kb %ld\n", rss_full - rss0);
	printf("queue_bytes_per_row %.1f\n", st.pending > 0 ?
	    (rss_full - rss0) * 1024.0 / (double)st.pending : 0);
	printf("after_drain_kb %ld\n", rss_drained - rss0);
	attemptlog_close(b->al);
	return st.pending == b->queue && st.dropped == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof(*b));
	struct config *cfg = config_default();
	char dir[] = "/tmp/log_throughput.XXXXXX", path[512];
	int rc;

	if (b == NULL || cfg == NULL || bench_parse(argc, argv, b) == -1) {
		fprintf(stderr, "usage: log_throughput_test [--rows N]"
		    " [--rate R] [--threads T] [--queue Q] [--dir DIR]"
		    " [--index NAME] [--fill] [--domains N]"
		    " [--clients N]\n");
		return 2;
	}
	if (b->dir == NULL && (b->dir = mkdtemp(dir)) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/attempts.db", b->dir);
	unlink(path);
	if (b->index != NULL && bench_index(path, b->index) == -1)
		return 1;
	free(cfg->log.database);
	cfg->log.database = strdup(path);
	cfg->log.queue_size = b->queue;
	if (bench_names(b) == -1) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	b->al = attemptlog_open(cfg);
	rc = b->fill ? bench_fill(b, path) : bench_run(b, path);
	if (b->dir == dir) {
		char wal[600];

		snprintf(wal, sizeof(wal), "%s-wal", path);
		unlink(wal);
		snprintf(wal, sizeof(wal), "%s-shm", path);
		unlink(wal);
		unlink(path);
		rmdir(dir);
	}
	config_free(cfg);
	free(b->rules);
	free(b->sites);
	free(b->wires);
	free(b->wire_len);
	free(b);
	return rc;
}
