/*
 * attemptlog_test: the queue and its batching (through a fake sink that the
 * test can hold or fail), the SQLite sink (columns, schema, upgrade from
 * version 1, retention), and the failure paths that must work as root too:
 * a directory that is a file, and a write lock held by another connection.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "al_internal.h"
#include "al_sums.h"
#include "attemptlog.h"
#include "clock.h"
#include "proc_status.h"
#include "sink.h"
#include "sqlite_fdvfs.h"
#include "unit.h"

static char tmpdir[] = "/tmp/attemptlog_test.XXXXXX";

/* ThreadSanitizer's shadow memory follows the queue's into RssAnon. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN	1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN	1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN	0
#endif

/* ---- helpers ---- */

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* "www.example.com" to wire format; returns the length. */
static size_t
wire(const char *name, uint8_t *out)
{
	size_t o = 0;

	while (*name) {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);

		out[o++] = (uint8_t)n;
		memcpy(out + o, name, n);
		o += n;
		name += n + (dot != NULL);
	}
	out[o++] = 0;
	return o;
}

static struct sockaddr_in6
addr(const char *text)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&s6;

	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
	} else {
		inet_pton(AF_INET6, text, &s6.sin6_addr);
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons(40000);
	}
	return s6;
}

static const struct blocklist_match match_site = {
	.rule = "example.com", .category = "commercial-sex",
	.site = "Example Site", .file = "x.yaml", .line = 3,
};
static const struct blocklist_match match_import = {
	.rule = "imported.test", .category = "imported-list",
	.site = NULL, .file = "hosts.txt", .line = 1,
};

static void
append(struct attemptlog *al, int64_t ts, const char *client,
    const char *qname, uint16_t qtype, const struct blocklist_match *m)
{
	struct sockaddr_in6 sa = addr(client);
	uint8_t w[256];
	struct attempt a = {
		.ts_ms = ts, .client = (struct sockaddr *)&sa, .qname = w,
		.qtype = qtype, .transport = TRANSPORT_UDP, .match = m,
	};

	a.qname_len = wire(qname, w);
	attemptlog_append(al, &a);
}

static struct config *
test_config(const char *dbname, unsigned queue_size)
{
	struct config *cfg = config_default();
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, dbname);
	free(cfg->log.database);
	cfg->log.database = strdup(path);
	cfg->log.queue_size = queue_size;
	return cfg;
}

static void
add_client(struct config *cfg, const char *net, const char *name)
{
	const char *why;

	cfg->clients = realloc(cfg->clients,
	    (cfg->nclients + 1) * sizeof(*cfg->clients));
	if (cidr_parse(net, &cfg->clients[cfg->nclients].net, &why) == -1) {
		fprintf(stderr, "%s: %s\n", net, why);
		exit(1);
	}
	cfg->clients[cfg->nclients++].name = strdup(name);
}

static sqlite3 *
db_open(const char *path)
{
	sqlite3 *db;

	if (sqlite3_open(path, &db) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", path, sqlite3_errmsg(db));
		exit(1);
	}
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static long long
db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	/* Quiet: db_wait_int() polls files the writer has not set up yet. */
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The first row of sql as "a|b|NULL|..." in buf. */
static const char *
db_row(sqlite3 *db, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt *st;
	size_t o = 0;

	buf[0] = '\0';
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
		return buf;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			const char *v = (const char *)sqlite3_column_text(st, i);

			o += (size_t)snprintf(buf + o, len - o, "%s%s",
			    i ? "|" : "", v ? v : "NULL");
		}
	sqlite3_finalize(st);
	return buf;
}

/* Poll until sql gives want (or 5 s pass); returns the last value. */
static long long
db_wait_int(const char *path, const char *sql, long long want)
{
	long long v = -1;

	for (int i = 0; i < 500; i++) {
		sqlite3 *db;

		if (access(path, F_OK) == 0) {
			db = db_open(path);
			v = db_int(db, sql);
			sqlite3_close(db);
			if (v == want)
				break;
		}
		sleep_ms(10);
	}
	return v;
}

/*
 * The clock of the tests that wait for the writer's retry of a failed
 * database (every second) or its idle time: the system's monotonic clock
 * plus what the *_moving() waits added. They move it on 100 ms for each
 * 10 ms they poll, so a retry comes after about 0.1 s instead of a
 * second, and still only after the failure it follows (the writer sets
 * its retry time on this clock). Wall time stays the system's.
 */
static int64_t moved_ms;

static int64_t
moving_mono_ms(void *arg)
{
	(void)arg;
	return (int64_t)(now_us_monotonic() / 1000) +
	    __atomic_load_n(&moved_ms, __ATOMIC_RELAXED);
}

static int64_t
moving_wall_ms(void *arg)
{
	(void)arg;
	return now_ms_wall();
}

static const struct attemptlog_clock moving_clock = {
	moving_mono_ms, moving_wall_ms, NULL
};

/* An attempt log on the moving clock, on ops (NULL: SQLite). */
static struct attemptlog *
open_moving(const struct config *cfg, const struct sink_ops *ops)
{
	return attemptlog_open_clock(cfg, ops != NULL ? ops :
	    &sink_sqlite_ops, &moving_clock);
}

/* 10 ms pass; 100 ms on the moving clock when move (the writer is told). */
static void
poll_pause(struct attemptlog *al, bool move)
{
	if (move) {
		__atomic_add_fetch(&moved_ms, 100, __ATOMIC_RELAXED);
		attemptlog_time_passed(al);
	}
	sleep_ms(10);
}

/*
 * Poll the writer's counters until the one at offset field of struct
 * attemptlog_stats reaches n, or polls polls pass (then the caller's CHECK
 * fails): what a test waits for, rather than a fixed time that a busy
 * machine under ASan may not give the writer. With move, the clock moves
 * 100 ms a poll (al from open_moving()): through a retry.
 */
static void
wait_stat(struct attemptlog *al, size_t field, uint64_t n, int polls,
    bool move)
{
	struct attemptlog_stats st;
	uint64_t v;

	for (int i = 0; i < polls; i++) {
		attemptlog_get_stats(al, &st);
		memcpy(&v, (const char *)&st + field, sizeof(v));
		if (v >= n)
			return;
		poll_pause(al, move);
	}
}

/* Until n rows are written (10 s at most without move). */
static void
wait_written(struct attemptlog *al, uint64_t n)
{
	wait_stat(al, offsetof(struct attemptlog_stats, written), n, 1000,
	    false);
}

static void
wait_written_moving(struct attemptlog *al, uint64_t n)
{
	wait_stat(al, offsetof(struct attemptlog_stats, written), n, 1000,
	    true);
}

/* Until the writer has failed n batches (20 s at most without move). */
static void
wait_write_errors(struct attemptlog *al, uint64_t n)
{
	wait_stat(al, offsetof(struct attemptlog_stats, write_errors), n,
	    2000, false);
}

static void
wait_write_errors_moving(struct attemptlog *al, uint64_t n)
{
	wait_stat(al, offsetof(struct attemptlog_stats, write_errors), n,
	    2000, true);
}

/* ---- a fake sink the test can hold or fail ---- */

#define FAKE_MAX	20000

static struct fake {
	pthread_mutex_t	mtx;
	void		(*check)(const struct sink_attempt *); /* each row */
	bool		fail;		/* open and write fail */
	int		opens;
	int		batches;
	size_t		max_batch;
	size_t		nrows;
	int64_t		ts[FAKE_MAX];
	size_t		ngaps;
	uint64_t	gap_rows;
	int64_t		gap_start, gap_end;
	char		gap_table[16];
	int64_t		expire_before;	/* the last expire()'s cutoff */
} fake = { .mtx = PTHREAD_MUTEX_INITIALIZER };

static struct sink *
fake_open(const char *target, char *err, size_t errlen)
{
	struct sink *s = NULL;

	pthread_mutex_lock(&fake.mtx);
	fake.opens++;
	if (fake.fail)
		snprintf(err, errlen, "fake: cannot open %s", target);
	else
		s = (struct sink *)&fake;
	pthread_mutex_unlock(&fake.mtx);
	return s;
}

static int
fake_write(struct sink *s, const struct sink_batch *b)
{
	int rc = -1;

	pthread_mutex_lock(&fake.mtx);
	if (!fake.fail) {
		rc = 0;
		fake.batches++;
		if (b->nattempts > fake.max_batch)
			fake.max_batch = b->nattempts;
		for (size_t i = 0; i < b->nattempts && fake.nrows < FAKE_MAX;
		    i++)
			fake.ts[fake.nrows++] = b->attempts[i].ts_ms;
		for (size_t i = 0; fake.check != NULL && i < b->nattempts;
		    i++)
			fake.check(&b->attempts[i]);
		for (size_t i = 0; i < b->ngaps; i++) {
			fake.ngaps++;
			fake.gap_rows += b->gaps[i].rows;
			fake.gap_start = b->gaps[i].ts_start;
			fake.gap_end = b->gaps[i].ts_end;
			snprintf(fake.gap_table, sizeof(fake.gap_table), "%s",
			    b->gaps[i].table);
		}
	}
	pthread_mutex_unlock(&fake.mtx);
	return rc;
}

static long
fake_expire(struct sink *s, int64_t before, unsigned max_rows)
{
	pthread_mutex_lock(&fake.mtx);
	fake.expire_before = before;
	pthread_mutex_unlock(&fake.mtx);
	return 0;
}

static const char *
fake_error(struct sink *s)
{
	return "fake: write failed";
}

static void
fake_close(struct sink *s)
{
}

static const struct sink_ops fake_ops = {
	.name = "fake", .open = fake_open, .write_batch = fake_write,
	.expire = fake_expire, .error = fake_error, .close = fake_close,
};

static void
fake_reset(bool fail)
{
	pthread_mutex_lock(&fake.mtx);
	memset((char *)&fake + sizeof(fake.mtx), 0,
	    sizeof(fake) - sizeof(fake.mtx));
	fake.fail = fail;
	pthread_mutex_unlock(&fake.mtx);
}

/* A row's string as C text, for messages. */
static const char *
str_of(struct sink_str v, char *buf, size_t len)
{
	if (v.s == NULL)
		return "NULL";
	snprintf(buf, len, "%.*s", (int)v.len, v.s);
	return buf;
}

static bool
str_is(struct sink_str v, const char *want)
{
	if (want == NULL)
		return v.s == NULL;
	return v.s != NULL && v.len == strlen(want) &&
	    memcmp(v.s, want, v.len) == 0;
}

static void
fake_set_fail(bool fail)
{
	pthread_mutex_lock(&fake.mtx);
	fake.fail = fail;
	pthread_mutex_unlock(&fake.mtx);
}

/* ---- tests ---- */

/*
 * A pseudonym is the first 64 bits of HMAC-SHA256(key, the address as
 * text), as docs/privacy.md says: values computed with Python's hmac.
 */
static void
test_pseudonym_hmac(void)
{
	char out[ATTEMPTLOG_PSEUDONYM_LEN + 1];

	CHECK_INT(attemptlog_pseudonym("Jefe", "192.0.2.1", out), 0);
	CHECK_STR(out, "0ee0d900648846ca");
	CHECK_INT(attemptlog_pseudonym("a key", "2001:db8::1", out), 0);
	CHECK_STR(out, "6429783b6df682ef");
	CHECK_INT(attemptlog_pseudonym("a key", "not an address", out), -1);
}

/* Many rows: written in batches of bounded size, in order, all of them. */
static void
test_batches_in_order(void)
{
	struct config *cfg = test_config("unused.db", 20000);
	struct attemptlog_stats st;
	struct attemptlog *al;
	bool ordered = true;

	fake_reset(false);
	al = attemptlog_open_sink(cfg, &fake_ops);
	CHECK(al != NULL);
	for (int i = 0; i < 10000; i++)
		append(al, 1000 + i, "10.0.0.1", "www.example.com", 1,
		    &match_site);
	attemptlog_close(al);
	CHECK_INT(fake.nrows, 10000);
	for (size_t i = 0; i < fake.nrows; i++)
		if (fake.ts[i] != (int64_t)(1000 + i))
			ordered = false;
	CHECK(ordered);
	CHECK(fake.max_batch <= AL_BATCH_MAX);
	CHECK(fake.batches >= (10000 + AL_BATCH_MAX - 1) / AL_BATCH_MAX);
	attemptlog_get_stats(NULL, &st);
	CHECK_INT(st.written, 0);
	config_free(cfg);
}

/*
 * The version moves when committed attempts change what a report reads,
 * and only then; the peeked figures (no lock) follow the commit.
 */
static void
test_version_and_peek(void)
{
	struct config *cfg = test_config("unused.db", 1000);
	struct attemptlog_stats st;
	struct attemptlog *al;
	uint64_t v0, v1;

	fake_reset(false);
	al = open_moving(cfg, &fake_ops);
	CHECK(al != NULL);
	v0 = attemptlog_version(al);
	for (int i = 0; i < 5; i++)
		append(al, 2000 + i, "10.0.0.1", "www.example.com", 1,
		    &match_site);
	wait_written_moving(al, 5);
	v1 = attemptlog_version(al);
	CHECK(v1 != v0);
	attemptlog_peek_stats(al, &st);
	CHECK_INT(st.written, 5);
	CHECK_INT(st.queued, 5);
	CHECK_INT(st.pending, 0);
	/* Idle passes of the writer (2 s on its clock) change nothing. */
	for (int i = 0; i < 20; i++)
		poll_pause(al, true);
	CHECK_INT(attemptlog_version(al), v1);
	append(al, 3000, "10.0.0.2", "www.example.com", 1, &match_site);
	wait_written_moving(al, 6);
	CHECK(attemptlog_version(al) != v1);
	attemptlog_close(al);
	CHECK_INT(attemptlog_version(NULL), 0);
	attemptlog_peek_stats(NULL, &st);
	CHECK_INT(st.written, 0);
	config_free(cfg);
}

/* A full queue drops and counts; the loss reaches the sink as a gap. */
static void
test_overflow_counted(void)
{
	struct config *cfg = test_config("unused.db", 16);
	struct attemptlog_stats st;
	struct attemptlog *al;

	fake_reset(true);
	al = open_moving(cfg, &fake_ops);
	for (int i = 0; i < 100; i++)
		append(al, 5000 + i, "10.0.0.1", "example.com", 1,
		    &match_site);
	attemptlog_get_stats(al, &st);
	CHECK_INT(st.queued, 16);
	CHECK_INT(st.dropped, 84);
	CHECK_INT(st.pending, 16);
	CHECK_INT(st.written, 0);
	wait_write_errors_moving(al, 2);	/* the first try and a retry */
	attemptlog_get_stats(al, &st);
	CHECK(st.write_errors >= 1);
	CHECK_INT(st.pending, 16);
	fake_set_fail(false);
	wait_written_moving(al, 16);
	attemptlog_get_stats(al, &st);
	CHECK_INT(st.written, 16);
	CHECK_INT(st.pending, 0);
	attemptlog_close(al);
	CHECK_INT(fake.nrows, 16);
	CHECK_INT(fake.ts[0], 5000);	/* the oldest rows were kept */
	CHECK_INT(fake.ts[15], 5015);
	CHECK_INT(fake.ngaps, 1);
	CHECK_INT(fake.gap_rows, 84);
	CHECK_INT(fake.gap_start, 5016);
	CHECK_INT(fake.gap_end, 5099);
	CHECK_STR(fake.gap_table, "attempts");
	config_free(cfg);
}

/*
 * The file at path holds n attempts, a millisecond apart in id order as
 * they were appended, and SQLite finds nothing wrong in it.
 */
static void
check_rows_whole(const char *path, long long n)
{
	sqlite3 *db = db_open(path);
	char buf[64];

	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts"), n);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts a JOIN attempts b"
	    " ON b.id = a.id + 1 WHERE b.ts != a.ts + 1"), 0);
	CHECK_STR(db_row(db, "PRAGMA integrity_check", buf, sizeof(buf)),
	    "ok");
	sqlite3_close(db);
}

/* close() writes everything still queued, at once. */
static void
test_close_flushes(void)
{
	struct config *cfg = test_config("close.db", 1000);
	struct attemptlog *al = attemptlog_open(cfg);
	int64_t t0 = now_ms_wall();

	/* 777 = 24 statements of 32 rows and 9 single rows: in order. */
	for (int i = 0; i < 777; i++)
		append(al, t0 + i, "10.0.0.1", "example.com", 28,
		    &match_site);
	attemptlog_close(al);
	check_rows_whole(cfg->log.database, 777);
	config_free(cfg);
}

/*
 * The rows of every commit are in the file for another connection at
 * once, and still there when the daemon dies without closing the log:
 * the WAL frames that the writer's VFS writes header and page together
 * (sqlite_fdvfs.c) must land whole, at their offsets, through the
 * checkpoints that read them back (30,000 rows: about 1,300 frames).
 */
static void
test_wal_after_crash(void)
{
	struct config *cfg = test_config("crash.db", 65536);
	const int n = 30000;
	int64_t t0 = now_ms_wall();
	int status;
	pid_t pid;

	fflush(stderr);
	if ((pid = fork()) == 0) {
		struct attemptlog *al = attemptlog_open(cfg);
		long long seen;
		sqlite3 *db;

		for (int i = 0; i < n; i++)
			append(al, t0 + i, "10.0.0.1", "example.com", 28,
			    &match_site);
		wait_written(al, (uint64_t)n);
		db = db_open(cfg->log.database);
		seen = db_int(db, "SELECT count(*) FROM attempts");
		sqlite3_close(db);
		/* No attemptlog_close(): as if the daemon were killed. */
		_exit(seen == n ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	check_rows_whole(cfg->log.database, n);
	config_free(cfg);
}

/*
 * A WAL file of the writer's VFS holds a frame header back only until
 * its page comes: whatever else is done to the file first sees the
 * header written where SQLite put it. The crash test above only reaches
 * the joined write; these are the other ways a held header leaves.
 */
static void
test_wal_held_header(void)
{
	unsigned char hdr[24], page[4096], back[4096 + 24];
	char path[600];
	sqlite3_int64 size = -1;
	sqlite3_file *f;
	sqlite3_vfs *vfs;
	FILE *db;
	int out = 0;

	sqlite_fdvfs_register();
	vfs = sqlite3_vfs_find("dnswarden-fd");
	CHECK(vfs != NULL);
	if (vfs == NULL)
		return;
	/* SQLite's own VFS gives a WAL file its database's mode. */
	snprintf(path, sizeof(path), "%s/held.db", tmpdir);
	CHECK((db = fopen(path, "w")) != NULL);
	if (db != NULL)
		fclose(db);
	snprintf(path, sizeof(path), "%s/held.db-wal", tmpdir);
	unlink(path);
	memset(hdr, 'h', sizeof(hdr));
	memset(page, 'p', sizeof(page));
	f = calloc(1, (size_t)vfs->szOsFile);
	CHECK_INT(vfs->xOpen(vfs, path, f, SQLITE_OPEN_WAL |
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &out), SQLITE_OK);
	/* A header, then the size: the size counts the header. */
	CHECK_INT(f->pMethods->xWrite(f, hdr, 24, 32), SQLITE_OK);
	CHECK_INT(f->pMethods->xFileSize(f, &size), SQLITE_OK);
	CHECK_INT(size, 56);
	/* A header, then a write elsewhere: both land. */
	CHECK_INT(f->pMethods->xWrite(f, hdr, 24, 56), SQLITE_OK);
	CHECK_INT(f->pMethods->xWrite(f, page, 4096, 4000), SQLITE_OK);
	CHECK_INT(f->pMethods->xRead(f, back, 24, 56), SQLITE_OK);
	CHECK(memcmp(back, hdr, 24) == 0);
	/* A header and its page: one frame, read back whole. */
	CHECK_INT(f->pMethods->xWrite(f, hdr, 24, 8096), SQLITE_OK);
	CHECK_INT(f->pMethods->xWrite(f, page, 4096, 8120), SQLITE_OK);
	CHECK_INT(f->pMethods->xRead(f, back, 4120, 8096), SQLITE_OK);
	CHECK(memcmp(back, hdr, 24) == 0 && memcmp(back + 24, page, 4096) == 0);
	/* A header, then the file closed: it is in the file. */
	CHECK_INT(f->pMethods->xWrite(f, hdr, 24, 12216), SQLITE_OK);
	CHECK_INT(f->pMethods->xClose(f), SQLITE_OK);
	memset(f, 0, (size_t)vfs->szOsFile);
	CHECK_INT(vfs->xOpen(vfs, path, f, SQLITE_OPEN_WAL |
	    SQLITE_OPEN_READWRITE, &out), SQLITE_OK);
	CHECK_INT(f->pMethods->xFileSize(f, &size), SQLITE_OK);
	CHECK_INT(size, 12240);
	CHECK_INT(f->pMethods->xRead(f, back, 24, 12216), SQLITE_OK);
	CHECK(memcmp(back, hdr, 24) == 0);
	CHECK_INT(f->pMethods->xClose(f), SQLITE_OK);
	free(f);
}

/*
 * attemptlog_open() returns once the writer has tried to open the sink:
 * a daemon must not answer (and an admin read the database) before its
 * files exist.
 */
static void
test_open_tried_before_return(void)
{
	struct config *cfg = test_config("unused.db", 100);
	struct attemptlog *al;
	int opens;

	for (int i = 0; i < 2; i++) {
		fake_reset(i == 1);	/* the open works, then fails */
		al = attemptlog_open_sink(cfg, &fake_ops);
		pthread_mutex_lock(&fake.mtx);
		opens = fake.opens;
		pthread_mutex_unlock(&fake.mtx);
		CHECK_INT(opens, 1);
		char err[256];
		CHECK_INT(attemptlog_open_status(al, err, sizeof(err)),
		    i == 1 ? -1 : 0);
		CHECK(i == 1 ? err[0] != '\0' : err[0] == '\0');
		attemptlog_close(al);
	}
	config_free(cfg);
}

/*
 * close() on a sink that keeps failing: one more attempt at once, not
 * after the retry period, then the rows are given up, at once (it took
 * 5 s: "systemctl stop" waited). A sink that works again by then gets
 * them all.
 */
static void
test_close_on_failing_sink(void)
{
	struct config *cfg = test_config("unused.db", 100);
	struct attemptlog_stats st;
	struct attemptlog *al;
	int64_t t0, took;
	int opens;

	for (int works = 0; works < 2; works++) {
		fake_reset(true);
		al = attemptlog_open_sink(cfg, &fake_ops);
		for (int i = 0; i < 21; i++)
			append(al, 7000 + i, "10.0.0.1", "example.com", 1,
			    &match_site);
		wait_write_errors(al, 1);	/* next retry in 0.9 s */
		attemptlog_get_stats(al, &st);
		CHECK_INT(st.pending, 21);
		pthread_mutex_lock(&fake.mtx);
		opens = fake.opens;
		fake.fail = !works;
		pthread_mutex_unlock(&fake.mtx);
		t0 = now_ms_wall();
		attemptlog_close(al);
		took = now_ms_wall() - t0;
		CHECK(took < 500);
		CHECK_INT(fake.opens, opens + 1);
		CHECK_INT(fake.nrows, works ? 21 : 0);
	}
	config_free(cfg);
}

/* Every column of a row, for each client_identity. */
static void
test_columns(void)
{
	struct config *cfg = test_config("columns.db", 100);
	struct attemptlog *al;
	uint8_t odd[] = { 3, 'A', '.', 0x01, 2, 'b', '\\', 0 };
	struct sockaddr_in6 sa = addr("::ffff:10.1.2.3");
	struct attempt a = {
		.ts_ms = 1700000000123, .client = (struct sockaddr *)&sa,
		.qname = odd, .qname_len = sizeof(odd), .qtype = 65,
		.transport = TRANSPORT_TCP, .verified = true,
		.policy = "guests", .match = &match_import,
	};
	char buf[512];
	sqlite3 *db;

	add_client(cfg, "10.1.2.0/24", "finance");
	cfg->log.retention_days = 0;
	al = attemptlog_open(cfg);
	append(al, 1700000000000, "10.1.2.3", "WWW.Example.COM", 1,
	    &match_site);
	append(al, 1700000000001, "2001:db8::1", "example.com", 64999,
	    &match_site);
	attemptlog_append(al, &a);
	attemptlog_close(al);

	db = db_open(cfg->log.database);
	CHECK_STR(db_row(db, "SELECT ts, client, client_name, qname, qtype,"
	    " rule, category, site, transport FROM attempts WHERE id = 1",
	    buf, sizeof(buf)), "1700000000000|10.1.2.3|finance|"
	    "www.example.com|A|example.com|commercial-sex|Example Site|udp");
	CHECK_STR(db_row(db, "SELECT client, client_name, qname, qtype FROM"
	    " attempts WHERE id = 2", buf, sizeof(buf)),
	    "2001:db8::1|NULL|example.com|TYPE64999");
	CHECK_STR(db_row(db, "SELECT client, client_name, qname, qtype, rule,"
	    " site, transport FROM attempts WHERE id = 3", buf, sizeof(buf)),
	    "10.1.2.3|finance|a\\.\\001.b\\\\|HTTPS|imported.test|NULL|tcp");
	/* verified and policy: as given, and unset by default. */
	CHECK_STR(db_row(db, "SELECT group_concat(verified || ':' ||"
	    " coalesce(policy, 'NULL'), ',') FROM (SELECT * FROM attempts"
	    " ORDER BY id)", buf, sizeof(buf)), "0:NULL,0:NULL,1:guests");
	CHECK_INT(db_int(db, "PRAGMA user_version"), SINK_SCHEMA_VERSION);
	CHECK_INT(db_int(db, "SELECT count(*) FROM sqlite_master WHERE"
	    " name IN ('attempts_log', 'queries', 'log_gaps')"), 3);
	CHECK_INT(db_int(db, "SELECT count(*) FROM sqlite_master WHERE"
	    " name = 'attempts_ts'"), 0);
	sqlite3_close(db);
	config_free(cfg);
}

static void
test_identity(void)
{
	struct config *cfg = test_config("identity.db", 100);
	struct attemptlog *al;
	char buf[512];
	sqlite3 *db;

	add_client(cfg, "10.1.2.0/24", "finance");
	cfg->log.retention_days = 0;		/* ts 1..4 are from 1970 */
	cfg->log.client_identity = CLIENT_IDENTITY_NAME;
	al = attemptlog_open(cfg);
	append(al, 1, "10.1.2.3", "example.com", 1, &match_site);
	append(al, 2, "10.9.9.9", "example.com", 1, &match_site);
	wait_written(al, 2);
	cfg->log.client_identity = CLIENT_IDENTITY_PSEUDONYM;
	cfg->log.pseudonym_key = strdup("a secret of sixteen or more");
	attemptlog_reconfigure(al, cfg);
	append(al, 3, "10.1.2.3", "example.com", 1, &match_site);
	append(al, 4, "10.1.2.3", "example.com", 1, &match_site);
	attemptlog_close(al);

	db = db_open(cfg->log.database);
	CHECK_STR(db_row(db, "SELECT client, client_name FROM attempts"
	    " WHERE ts = 1", buf, sizeof(buf)), "finance|finance");
	CHECK_STR(db_row(db, "SELECT client, client_name FROM attempts"
	    " WHERE ts = 2", buf, sizeof(buf)), "10.9.9.9|NULL");
	db_row(db, "SELECT client, client_name FROM attempts WHERE ts = 3",
	    buf, sizeof(buf));
	CHECK_INT(strlen(buf), 16 + strlen("|finance"));
	CHECK(strstr(buf, "10.1.2.3") == NULL);
	CHECK_INT(db_int(db, "SELECT count(DISTINCT client) FROM attempts"
	    " WHERE ts IN (3, 4)"), 1);
	sqlite3_close(db);
	config_free(cfg);
}

/*
 * The longest name with the longest rule fits whole; a long category and
 * site are cut to at most 63 and 95 bytes, never inside a UTF-8 character
 * (the site is all two-byte characters: 94 bytes).
 */
static void
test_long_strings(void)
{
	struct config *cfg = test_config("long.db", 100);
	char name[300], rule[300], category[128], site[256];
	struct blocklist_match m = { .rule = rule, .category = category,
	    .site = site };
	struct attemptlog *al;
	char buf[2048];
	sqlite3 *db;
	size_t o = 0;

	for (int l = 0; l < 4; l++) {		/* 63+1+63+1+63+1+61 = 253 */
		int n = l < 3 ? 63 : 61;

		memset(name + o, 'a' + l, (size_t)n);
		o += (size_t)n;
		name[o++] = '.';
	}
	name[--o] = '\0';
	snprintf(rule, sizeof(rule), "%s", name);
	memset(category, 'c', 100);
	category[100] = '\0';
	for (o = 0; o < 200; o += 2)
		memcpy(site + o, "\xc3\xa9", 2);	/* e acute */
	site[o] = '\0';
	cfg->log.retention_days = 0;
	al = attemptlog_open(cfg);
	append(al, 1, "10.0.0.1", name, 1, &m);
	attemptlog_close(al);
	db = db_open(cfg->log.database);
	CHECK_STR(db_row(db, "SELECT length(qname), length(rule),"
	    " length(category), length(CAST(site AS BLOB)), qname = rule"
	    " FROM attempts", buf, sizeof(buf)), "253|253|63|94|1");
	sqlite3_close(db);
	config_free(cfg);
}

/* A row is in the file well within the 2 s of the contract. */
static void
test_latency(void)
{
	struct config *cfg = test_config("latency.db", 100);
	struct attemptlog *al = attemptlog_open(cfg);
	int64_t t0;

	/* attemptlog_open() returns once the writer has made the file. */
	t0 = now_ms_wall();
	append(al, t0, "10.0.0.1", "example.com", 1, &match_site);
	CHECK_INT(db_wait_int(cfg->log.database,
	    "SELECT count(*) FROM attempts", 1), 1);
	CHECK(now_ms_wall() - t0 < 2000);
	fprintf(stderr, "  row on disk after %lld ms\n",
	    (long long)(now_ms_wall() - t0));
	attemptlog_close(al);
	config_free(cfg);
}

static void
test_all_queries(void)
{
	struct config *cfg = test_config("queries.db", 100);
	struct sockaddr_in6 sa = addr("192.0.2.7");
	uint8_t w[64];
	struct query_event q = {
		.ts_ms = 42, .client = (struct sockaddr *)&sa, .qname = w,
		.qtype = 28, .rcode = 3, .cached = true, .blocked = false,
		.upstream = "127.0.0.1:5300", .duration_us = 1234,
		.transport = TRANSPORT_TCP,
	};
	struct attemptlog *al;
	char buf[512];
	sqlite3 *db;

	q.qname_len = wire("nope.example", w);
	al = attemptlog_open(cfg);
	attemptlog_append_query(al, &q);	/* off: not logged */
	cfg->log.all_queries = true;
	attemptlog_reconfigure(al, cfg);
	q.ts_ms = 43;
	q.verified = true;
	q.policy = "guests";
	attemptlog_append_query(al, &q);
	q.verified = false;
	q.policy = NULL;
	q.ts_ms = 44;
	q.rcode = 14;
	q.upstream = NULL;
	attemptlog_append_query(al, &q);
	/* Enough for a statement of 32 rows and a few single ones. */
	q.rcode = 0;
	q.cached = false;
	q.upstream = "";
	q.transport = TRANSPORT_UDP;
	for (int i = 0; i < 40; i++) {
		q.ts_ms = 100 + i;
		q.duration_us = (uint32_t)i;
		attemptlog_append_query(al, &q);
	}
	attemptlog_close(al);
	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "SELECT count(*) FROM queries"), 42);
	CHECK_INT(db_int(db, "SELECT count(*) FROM queries WHERE ts >= 100"
	    " AND duration_us = ts - 100 AND rcode = 'NOERROR' AND cached = 0"
	    " AND upstream = '' AND transport = 'udp'"), 40);
	CHECK_STR(db_row(db, "SELECT ts, client, client_name, qname, qtype,"
	    " rcode, cached, blocked, upstream, duration_us, transport"
	    " FROM queries ORDER BY ts", buf, sizeof(buf)),
	    "43|192.0.2.7|NULL|nope.example|AAAA|NXDOMAIN|1|0|"
	    "127.0.0.1:5300|1234|tcp");
	CHECK_STR(db_row(db, "SELECT rcode, upstream FROM queries WHERE"
	    " ts = 44", buf, sizeof(buf)), "RCODE14|NULL");
	CHECK_STR(db_row(db, "SELECT group_concat(verified || ':' ||"
	    " coalesce(policy, 'NULL'), ',') FROM (SELECT * FROM queries"
	    " WHERE ts IN (43, 44) ORDER BY ts)", buf, sizeof(buf)),
	    "1:guests,0:NULL");
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts"), 0);
	sqlite3_close(db);
	config_free(cfg);
}


/*
 * The writer copies a ring's head without the lock. A batch that took no
 * row of a ring, flushed while a producer's first row gave that ring its
 * first chunk, released 0 rows up to the copied head (chunk NULL): the
 * walk moved the new chunk to the spares and left head NULL under a
 * counted row, and the next batch read through NULL (seen once in an
 * ASan e2e run with log.all_queries). Releasing nothing must move
 * nothing.
 */
static void
test_release_nothing_keeps_first_chunk(void)
{
	struct al_ring r;
	struct al_pos end;
	struct al_chunk *c, *unmap = NULL;

	memset(&r, 0, sizeof(r));
	al_ring_init(&r, 16, "queries");
	end = r.head;			/* the writer's copy: no chunk yet */
	/* A producer's first row, as al_ring_grow and reserve leave it. */
	c = calloc(1, AL_CHUNK_SIZE);
	CHECK(c != NULL);
	r.head.c = r.tail.c = c;
	c->data[0] = 3;
	r.tail.off = 3 * AL_ALIGN;
	r.count = 1;
	al_ring_release(&r, 0, end, &unmap);
	CHECK(r.head.c == c && r.head.off == 0);
	CHECK(r.tail.c == c && r.tail.off == 3 * AL_ALIGN);
	CHECK(r.count == 1 && r.spares == NULL && unmap == NULL);
	/* Taking that row then empties the ring onto the same chunk. */
	end.c = c;
	end.off = 3 * AL_ALIGN;
	al_ring_release(&r, 1, end, &unmap);
	CHECK(r.head.c == c && r.count == 0 && r.written == 1);
	CHECK(r.head.off == 0 && r.tail.off == 0 && unmap == NULL);
	free(c);
}

/*
 * Row i of test_ring_wraps: names of 2 to 253 characters, rules that are
 * or are not the end of the name, long and short categories and sites,
 * IPv4, IPv6 and IPv4-mapped clients, 3,000 of them (the writer's client
 * cache collides).
 */
struct wrap_row {
	char	name[300];
	char	rule[300];
	char	category[128];
	char	site[160];
	bool	has_site;
	char	client[64];
	char	want_client[64];
	char	want_category[64];
	char	want_site[96];
};

static void
wrap_row(int i, struct wrap_row *r)
{
	int labels = 1 + i % 4, o = 0;
	int c = i % 3000;

	for (int l = 0; l < labels; l++) {
		int n = 1 + (i * 7 + l * 13) % 63;

		if (l > 0)
			r->name[o++] = '.';
		for (int k = 0; k < n; k++)
			r->name[o++] = (char)('a' + (i + k + l) % 26);
	}
	r->name[o] = '\0';
	/* Half the rules end the name; the rest are another name. */
	if (i % 2 == 0)
		snprintf(r->rule, sizeof(r->rule), "%s",
		    strchr(r->name, '.') ? strchr(r->name, '.') + 1 : r->name);
	else
		snprintf(r->rule, sizeof(r->rule), "rule%d.example", i);
	memset(r->category, 'c', sizeof(r->category));
	r->category[i % 100] = '\0';
	snprintf(r->want_category, sizeof(r->want_category), "%.63s",
	    r->category);
	memset(r->site, 's', sizeof(r->site));
	r->site[(i * 3) % 150] = '\0';
	snprintf(r->want_site, sizeof(r->want_site), "%.95s", r->site);
	r->has_site = i % 5 != 0;
	if (c % 3 == 0)
		snprintf(r->client, sizeof(r->client), "10.%d.%d.1", c / 256,
		    c % 256);
	else if (c % 3 == 1)
		snprintf(r->client, sizeof(r->client), "2001:db8::%x", c);
	else
		snprintf(r->client, sizeof(r->client), "::ffff:10.%d.%d.2",
		    c / 256, c % 256);
	snprintf(r->want_client, sizeof(r->want_client), "%s",
	    c % 3 == 2 ? r->client + 7 : r->client);
}

static size_t wrap_bad;

static void
wrap_check(const struct sink_attempt *a)
{
	struct wrap_row r;
	char buf[300];

	wrap_row((int)a->ts_ms, &r);
	if (str_is(a->qname, r.name) && str_is(a->rule, r.rule) &&
	    str_is(a->category, r.want_category) &&
	    str_is(a->site, r.has_site ? r.want_site : NULL) &&
	    str_is(a->client, r.want_client) && str_is(a->qtype, "AAAA") &&
	    str_is(a->client_name, NULL) && str_is(a->transport, "udp"))
		return;
	if (wrap_bad++ < 5)
		fprintf(stderr, "  row %lld: qname %s\n", (long long)a->ts_ms,
		    str_of(a->qname, buf, sizeof(buf)));
}

static void
wrap_append(struct attemptlog *al, int i)
{
	struct wrap_row r;
	struct blocklist_match m = { .rule = r.rule, .category = r.category };

	wrap_row(i, &r);
	m.site = r.has_site ? r.site : NULL;
	append(al, i, r.client, r.name, 28, &m);
}

/*
 * Variable-length rows, 20 to 700 bytes, through a queue of chunks that
 * is emptied and refilled many times, with writes that fail and are
 * retried from the same records: every row arrives whole and in order.
 */
static void
test_ring_wraps(void)
{
	struct config *cfg = test_config("unused.db", 20000);
	struct attemptlog_stats st;
	struct attemptlog *al;
	bool ordered = true;

	fake_reset(true);
	fake.check = wrap_check;
	wrap_bad = 0;
	al = open_moving(cfg, &fake_ops);
	for (int i = 0; i < 5000; i++)
		wrap_append(al, i);
	wait_write_errors_moving(al, 2);	/* the first try and a retry */
	fake_set_fail(false);
	for (int i = 5000; i < 20000; i++) {
		wrap_append(al, i);
		if (i % 2000 == 0)	/* the writer empties the queue: wraps */
			wait_written_moving(al, (uint64_t)i + 1);
	}
	attemptlog_get_stats(al, &st);
	CHECK_INT(st.dropped, 0);
	attemptlog_close(al);
	CHECK_INT(fake.nrows, 20000);
	for (size_t i = 0; i < fake.nrows; i++)
		if (fake.ts[i] != (int64_t)i)
			ordered = false;
	CHECK(ordered);
	CHECK_INT(wrap_bad, 0);
	fake.check = NULL;
	config_free(cfg);
}

/*
 * A full default queue of typical rows costs a few MB, not one slot of
 * the longest row each (46 MB before), and gives it back once the
 * writer has emptied it and been idle for a moment.
 */
static void
test_memory_released(void)
{
	struct config *cfg = test_config("unused.db", 65536);
	struct attemptlog_stats st;
	struct attemptlog *al;
	long before, full, after = -1;

	fake_reset(true);
	al = open_moving(cfg, &fake_ops);
	before = proc_status_kb("RssAnon");
	for (int i = 0; i < 65536; i++)
		append(al, i, "10.0.0.1", "www.example.com", 1, &match_site);
	attemptlog_get_stats(al, &st);
	full = proc_status_kb("RssAnon");
	CHECK_INT(st.pending, 65536);
	CHECK_INT(st.dropped, 0);
	fprintf(stderr, "  full queue: %ld kB, %.1f bytes a row\n",
	    full - before, (full - before) * 1024.0 / 65536);
	CHECK(UNDER_TSAN || full - before < 65536 * 120 / 1024);
	fake_set_fail(false);
	wait_written_moving(al, 65536);
	for (int i = 0; i < 300; i++) {		/* AL_IDLE_MS, then unmap */
		after = proc_status_kb("RssAnon");
		if (after - before < 1024 && !UNDER_TSAN)
			break;
		poll_pause(al, true);
	}
	fprintf(stderr, "  after the drain: %ld kB%s\n", after - before,
	    UNDER_TSAN ? " (not checked under ThreadSanitizer)" : "");
	CHECK(UNDER_TSAN || after - before < 1024);
	attemptlog_close(al);
	config_free(cfg);
}

/* test_rule_tail's names with escapes, and a row without a match. */
static void
append_escaped(struct attemptlog *al)
{
	static const uint8_t odd[] = { 3, 'a', '.', 'b', 7, 'e', 'x', 'a',
	    'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0 };
	static const uint8_t dot[] = { 6, 'e', 'x', '.', 'a', 'm', 'p', 3,
	    'c', 'o', 'm', 0 };
	struct sockaddr_in6 sa = addr("10.0.0.1");
	struct blocklist_match m = { .category = "c" };
	struct attempt a = {
		.ts_ms = 1000, .client = (struct sockaddr *)&sa,
		.qtype = 1, .transport = TRANSPORT_UDP, .match = &m,
	};

	a.qname = odd;		/* an escape before the rule */
	a.qname_len = sizeof(odd);
	m.rule = "example.com";
	attemptlog_append(al, &a);
	a.qname = dot;		/* an escape inside it */
	a.qname_len = sizeof(dot);
	m.rule = "ex.amp.com";
	attemptlog_append(al, &a);
	a.match = NULL;		/* no match at all: empty strings */
	attemptlog_append(al, &a);
}

/*
 * The queue keeps the rule only once when it is the end of the name as
 * text; otherwise (inside a label, an escape, longer than the name, no
 * match at all) it keeps it as given.
 */
static void
test_rule_tail(void)
{
	static const struct {
		const char	*qname;
		const char	*rule;
		const char	*want;	/* qname|rule in the row */
	} cases[] = {
		{ "www.example.com", "example.com",
		    "www.example.com|example.com" },
		{ "example.com", "example.com", "example.com|example.com" },
		{ "xexample.com", "example.com", "xexample.com|example.com" },
		{ "WWW.EXAMPLE.COM", "example.com",
		    "www.example.com|example.com" },
		{ "com", "example.com", "com|example.com" },
		{ "x.www.example.com", "www.example.com",
		    "x.www.example.com|www.example.com" },
		{ NULL, NULL, NULL },
	};
	struct config *cfg = test_config("tail.db", 100);
	struct blocklist_match m = { .category = "c" };
	struct attemptlog *al;
	char buf[512], sql[128];
	sqlite3 *db;
	int n = 0;

	cfg->log.retention_days = 0;
	al = attemptlog_open(cfg);
	for (; cases[n].qname != NULL; n++) {
		m.rule = cases[n].rule;
		append(al, n, "10.0.0.1", cases[n].qname, 1, &m);
	}
	append_escaped(al);
	attemptlog_close(al);

	db = db_open(cfg->log.database);
	for (int i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql), "SELECT qname, rule FROM attempts"
		    " WHERE ts = %d", i);
		CHECK_STR(db_row(db, sql, buf, sizeof(buf)), cases[i].want);
	}
	CHECK_STR(db_row(db, "SELECT qname, rule, category, site FROM"
	    " attempts WHERE ts = 1000 ORDER BY id", buf, sizeof(buf)),
	    "a\\.b.example.com|example.com|c|NULL");
	CHECK_STR(db_row(db, "SELECT qname, rule FROM attempts WHERE"
	    " ts = 1000 ORDER BY id LIMIT 1 OFFSET 1", buf, sizeof(buf)),
	    "ex\\.amp.com|ex.amp.com");
	CHECK_STR(db_row(db, "SELECT qname, rule, category, site FROM"
	    " attempts WHERE ts = 1000 ORDER BY id LIMIT 1 OFFSET 2", buf,
	    sizeof(buf)), "ex\\.amp.com|||NULL");
	sqlite3_close(db);
	config_free(cfg);
}

/* Version 1's attempts table, as first specified. */
#define V1_ATTEMPTS	"CREATE TABLE attempts ("			\
	    " id INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"		\
	    " client TEXT NOT NULL, client_name TEXT, qname TEXT NOT NULL,"\
	    " qtype TEXT NOT NULL, rule TEXT NOT NULL,"			\
	    " category TEXT NOT NULL, site TEXT, transport TEXT NOT NULL);"

/*
 * cfg's database made by sql (an older schema and its rows), then opened
 * by the writer, which upgrades it, with one row appended (ts 2000,
 * new.example.com); returns the database opened again, which must be at
 * the current version.
 */
static sqlite3 *
upgraded(struct config *cfg, const char *sql)
{
	struct attemptlog *al;
	sqlite3 *db;

	db = db_open(cfg->log.database);
	CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cfg->log.retention_days = 0;
	al = attemptlog_open(cfg);
	append(al, 2000, "10.0.0.1", "new.example.com", 1, &match_site);
	attemptlog_close(al);
	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "PRAGMA user_version"), SINK_SCHEMA_VERSION);
	return db;
}

/* Version 1: the attempts table as first specified, nothing else. */
static void
test_upgrade_v1(void)
{
	struct config *cfg = test_config("v1.db", 100);
	sqlite3 *db;

	db = upgraded(cfg, V1_ATTEMPTS
	    "INSERT INTO attempts VALUES (1, 1000, '10.0.0.9', NULL,"
	    " 'old.example.com', 'A', 'example.com', 'c', 's', 'udp');"
	    "PRAGMA user_version = 1;");
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts"), 2);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts WHERE"
	    " verified = 0 AND policy IS NULL"), 2);
	CHECK_INT(db_int(db, "SELECT ts FROM attempts WHERE id = 1"), 1000);
	CHECK_INT(db_int(db, "SELECT count(*) FROM sqlite_master WHERE"
	    " name IN ('queries', 'queries_ts', 'log_gaps')"), 3);
	/* attempts_ts, or attempts_log once the writer's step built it. */
	CHECK_INT(db_int(db, "SELECT count(*) FROM sqlite_master WHERE"
	    " name IN ('attempts_ts', 'attempts_log')"), 1);
	CHECK_INT(db_int(db, "SELECT count(*) FROM log_gaps"), 0);
	sqlite3_close(db);

	/* A newer schema than ours is refused, never rewritten. */
	db = db_open(cfg->log.database);
	sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
	sqlite3_close(db);
	{
		char err[256];
		struct sink *s = sink_sqlite_ops.open(cfg->log.database, err,
		    sizeof(err));

		CHECK(s == NULL);
		CHECK(strstr(err, "newer") != NULL);
	}
	config_free(cfg);
}

/* The database's directory is a file: rows wait, then arrive. */
/*
 * Version 2 gains verified and policy in place; the TCP rows it holds
 * are verified (TCP was their proof), the UDP rows are not.
 */
static void
test_upgrade_v2(void)
{
	struct config *cfg = test_config("v2.db", 100);
	char buf[256];
	sqlite3 *db;

	db = upgraded(cfg, V1_ATTEMPTS
	    "CREATE INDEX attempts_ts ON attempts(ts);"
	    "CREATE TABLE queries (id INTEGER PRIMARY KEY,"
	    " ts INTEGER NOT NULL, client TEXT NOT NULL, client_name TEXT,"
	    " qname TEXT NOT NULL, qtype TEXT NOT NULL, rcode TEXT NOT NULL,"
	    " cached INTEGER NOT NULL, blocked INTEGER NOT NULL,"
	    " upstream TEXT, duration_us INTEGER NOT NULL,"
	    " transport TEXT NOT NULL);"
	    "CREATE TABLE log_gaps (id INTEGER PRIMARY KEY,"
	    " ts_start INTEGER NOT NULL, ts_end INTEGER NOT NULL,"
	    " rows_dropped INTEGER NOT NULL, table_name TEXT NOT NULL,"
	    " reason TEXT NOT NULL, logged_at INTEGER NOT NULL);"
	    "INSERT INTO attempts VALUES (1, 1000, '10.0.0.9', NULL,"
	    " 'a.example.com', 'A', 'example.com', 'c', 's', 'udp');"
	    "INSERT INTO attempts VALUES (2, 1001, '10.0.0.9', NULL,"
	    " 'a.example.com', 'A', 'example.com', 'c', 's', 'tcp');"
	    "INSERT INTO queries VALUES (1, 1000, '10.0.0.9', NULL,"
	    " 'x.test', 'A', 'NOERROR', 0, 0, NULL, 5, 'tcp');"
	    "PRAGMA user_version = 2;");
	CHECK_STR(db_row(db, "SELECT group_concat(id || ':' || verified ||"
	    " ':' || coalesce(policy, 'NULL'), ',') FROM (SELECT * FROM"
	    " attempts ORDER BY id)", buf, sizeof(buf)),
	    "1:0:NULL,2:1:NULL,3:0:NULL");
	CHECK_INT(db_int(db, "SELECT verified FROM queries"), 1);
	sqlite3_close(db);
	config_free(cfg);
}

static void
test_directory_is_file(void)
{
	struct config *cfg;
	char dir[512], db_path[600];
	struct attemptlog_stats st;
	struct attemptlog *al;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/sub", tmpdir);
	mkdir(dir, 0750);
	snprintf(dir, sizeof(dir), "%s/sub/dir", tmpdir);
	snprintf(db_path, sizeof(db_path), "%s/attempts.db", dir);
	cfg = test_config("sub/dir/attempts.db", 100);
	if ((f = fopen(dir, "w")) != NULL)
		fclose(f);

	al = open_moving(cfg, NULL);
	for (int i = 0; i < 10; i++)
		append(al, now_ms_wall(), "10.0.0.1", "example.com", 1,
		    &match_site);
	wait_write_errors(al, 1);
	attemptlog_get_stats(al, &st);
	CHECK_INT(st.written, 0);
	CHECK_INT(st.pending, 10);
	CHECK(st.write_errors >= 1);
	unlink(dir);		/* the writer makes the directory itself */
	wait_written_moving(al, 10);	/* at the next retry */
	CHECK_INT(db_wait_int(db_path, "SELECT count(*) FROM attempts", 10),
	    10);
	attemptlog_get_stats(al, &st);
	CHECK_INT(st.written, 10);
	attemptlog_close(al);
	{
		struct stat sb;

		CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0750);
		CHECK(stat(db_path, &sb) == 0 && (sb.st_mode & 0007) == 0);
	}
	config_free(cfg);
}

/* Another connection holds the write lock: rows wait, then arrive. */
static void
test_locked_by_other(void)
{
	struct config *cfg = test_config("locked.db", 100);
	struct attemptlog_stats st;
	struct attemptlog *al;
	sqlite3 *other;

	al = open_moving(cfg, NULL);
	append(al, now_ms_wall(), "10.0.0.1", "example.com", 1, &match_site);
	CHECK_INT(db_wait_int(cfg->log.database,
	    "SELECT count(*) FROM attempts", 1), 1);
	other = db_open(cfg->log.database);
	CHECK_INT(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	for (int i = 0; i < 5; i++)
		append(al, now_ms_wall(), "10.0.0.1", "example.com", 1,
		    &match_site);
	wait_write_errors(al, 1);
	attemptlog_get_stats(al, &st);
	CHECK_INT(st.written, 1);
	CHECK_INT(st.pending, 5);
	CHECK(st.write_errors >= 1);
	sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(other);
	wait_written_moving(al, 6);	/* at the next retry */
	CHECK_INT(db_wait_int(cfg->log.database,
	    "SELECT count(*) FROM attempts", 6), 6);
	attemptlog_close(al);
	config_free(cfg);
}

/*
 * Disk full, simulated with RLIMIT_FSIZE (which binds root too): the
 * writes fail with EFBIG, rows wait, and arrive once there is room.
 */
static void
test_disk_full(void)
{
	struct config *cfg = test_config("full.db", 20000);
	struct attemptlog_stats st;
	struct rlimit old, rl;
	struct attemptlog *al;
	int i;

	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	al = open_moving(cfg, NULL);
	append(al, now_ms_wall(), "10.0.0.1", "example.com", 1, &match_site);
	wait_written(al, 1);
	rl = old;
	rl.rlim_cur = 256 * 1024;	/* the WAL reaches this quickly */
	setrlimit(RLIMIT_FSIZE, &rl);
	for (i = 0; i < 15000; i++)
		append(al, now_ms_wall(), "10.0.0.1", "www.example.com", 1,
		    &match_site);
	for (i = 0; i < 300; i++) {
		attemptlog_get_stats(al, &st);
		if (st.write_errors > 0)
			break;
		sleep_ms(10);
	}
	CHECK(st.write_errors > 0);
	CHECK(st.pending > 0);
	setrlimit(RLIMIT_FSIZE, &old);
	wait_written_moving(al, 15001);	/* at the next retry */
	attemptlog_get_stats(al, &st);
	CHECK_INT(st.written, 15001);
	CHECK_INT(st.dropped, 0);
	attemptlog_close(al);
	CHECK_INT(db_wait_int(cfg->log.database,
	    "SELECT count(*) FROM attempts", 15001), 15001);
	config_free(cfg);
}

/* A read-only file: only meaningful when not root (root may write). */
/* test_readonly_file() in tmpdir/sub ("" or "dir/"), as a user that file
 * modes bind. */
static void
readonly_file_body(const char *sub)
{
	char name[600];
	struct config *cfg;
	struct attemptlog_stats st;
	struct attemptlog *al;

	snprintf(name, sizeof(name), "%sreadonly.db", sub);
	cfg = test_config(name, 100);
	al = attemptlog_open(cfg);
	append(al, now_ms_wall(), "10.0.0.1", "example.com", 1, &match_site);
	wait_written(al, 1);
	attemptlog_close(al);
	chmod(cfg->log.database, 0440);
	al = open_moving(cfg, NULL);
	append(al, now_ms_wall(), "10.0.0.1", "example.com", 1, &match_site);
	wait_write_errors(al, 1);
	attemptlog_get_stats(al, &st);
	CHECK_INT(st.written, 0);
	CHECK_INT(st.pending, 1);
	CHECK(st.write_errors >= 1);
	chmod(cfg->log.database, 0640);
	wait_written_moving(al, 1);	/* at the next retry */
	attemptlog_get_stats(al, &st);
	CHECK_INT(st.written, 1);
	attemptlog_close(al);
	config_free(cfg);
}

/*
 * A database file that cannot be written keeps its rows queued until it
 * can. Root ignores file modes, and CI runs as root: there the test runs
 * in a child process that has dropped to nobody, in a directory of its
 * own, and the child's failures fail the test.
 */
static void
test_readonly_file(void)
{
	char dir[600];
	struct passwd *pw;
	int status, before = unit_failures;
	pid_t pid;

	if (geteuid() != 0) {
		readonly_file_body("");
		return;
	}
	if ((pw = getpwnam("nobody")) == NULL)
		SKIP("running as root and there is no user nobody to drop to");
	snprintf(dir, sizeof(dir), "%s/readonly", tmpdir);
	CHECK(mkdir(dir, 0700) == 0 && chown(dir, pw->pw_uid, pw->pw_gid) == 0);
	CHECK(chmod(tmpdir, 0711) == 0);	/* nobody may pass through */
	fflush(stderr);
	if ((pid = fork()) == 0) {
		if (setgroups(0, NULL) == -1 || setgid(pw->pw_gid) == -1 ||
		    setuid(pw->pw_uid) == -1 || geteuid() == 0) {
			perror("readonly: dropping to nobody");
			_exit(2);
		}
		readonly_file_body("readonly/");
		exit(unit_failures > before ? 1 : 0);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * Make cfg's database (its schema, by an open and a close with retention
 * off) and, in a transaction left open for the caller to add to and
 * commit, n attempts from ts on, a millisecond apart.
 */
static sqlite3 *
db_with_old_rows(struct config *cfg, int n, int64_t ts)
{
	sqlite3 *db;
	char sql[256];

	cfg->log.retention_days = 0;
	attemptlog_close(attemptlog_open(cfg));
	db = db_open(cfg->log.database);
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (int i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO attempts (ts, client,"
		    " qname, qtype, rule, category, transport) VALUES (%lld,"
		    " 'c', 'q', 'A', 'r', 'k', 'udp')", (long long)ts + i);
		sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	return db;
}

/* Rows past retention_days go, in several small steps; the rest stay. */
static void
test_retention(void)
{
	struct config *cfg = test_config("retention.db", 100);
	int64_t old = now_ms_wall() - 400LL * 86400 * 1000;
	struct attemptlog *al;
	sqlite3 *db;
	char sql[256];

	db = db_with_old_rows(cfg, 2500, old);
	snprintf(sql, sizeof(sql), "INSERT INTO log_gaps (ts_start, ts_end,"
	    " rows_dropped, table_name, reason, logged_at) VALUES (%lld,"
	    " %lld, 5, 'attempts', 'test', 0)", (long long)old,
	    (long long)old);
	sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);

	cfg->log.retention_days = 365;
	al = attemptlog_open(cfg);
	append(al, now_ms_wall(), "10.0.0.1", "example.com", 1, &match_site);
	CHECK_INT(db_wait_int(cfg->log.database,
	    "SELECT count(*) FROM attempts", 1), 1);
	CHECK_INT(db_wait_int(cfg->log.database,
	    "SELECT count(*) FROM log_gaps", 0), 0);
	attemptlog_close(al);
	config_free(cfg);
}

/*
 * Rows the central shipper has not sent yet (central_outbox, ../central/)
 * stay past their retention, and so does the last one it sent: ids must
 * never start again under rows the central database holds.
 */
static void
test_retention_holds_unshipped(void)
{
	struct config *cfg = test_config("outbox.db", 100);
	int64_t old = now_ms_wall() - 400LL * 86400 * 1000;
	struct attemptlog *al;
	sqlite3 *db;

	db = db_with_old_rows(cfg, 100, old);
	/* Two shippers: the one behind (id 40 sent) decides. */
	CHECK_INT(sqlite3_exec(db, "INSERT INTO central_outbox VALUES"
	    " ('site-a', 70), ('site-b', 40)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);

	cfg->log.retention_days = 365;
	al = attemptlog_open(cfg);
	append(al, now_ms_wall(), "10.0.0.1", "example.com", 1, &match_site);
	/* Ids 1 to 39 go; 40 to 100 stay, and the new row. */
	CHECK_INT(db_wait_int(cfg->log.database,
	    "SELECT count(*) FROM attempts", 62), 62);
	CHECK_INT(db_wait_int(cfg->log.database,
	    "SELECT min(id) FROM attempts", 40), 40);
	attemptlog_close(al);
	config_free(cfg);
}

/* ---- the summaries (table attempt_sums) ---- */

/* Rows whose visit is not what the window over all rows says: none. */
static long long
sums_wrong_visits(sqlite3 *db)
{
	return db_int(db, "WITH r AS (SELECT visit, ts - lag(ts) OVER"
	    " (PARTITION BY client, rule ORDER BY ts, id) AS gap FROM"
	    " attempts) SELECT count(*) FROM r WHERE visit IS NOT"
	    " (gap IS NULL OR gap > 60000)");
}

/*
 * The summaries as reports read them: a month's row plus its day rows
 * from months_day on (version 6), which it does not count yet, and the
 * day rows of kind RULE from their own table (version 7), a key's rows
 * of a day added up.
 */
static const char sums_read_view[] =
	"CREATE TEMP VIEW IF NOT EXISTS sums_all AS"
	" SELECT * FROM attempt_sums UNION ALL SELECT 2, 1, t, k1, k2, k3,"
	" sum(queries), sum(attempts), sum(verified) FROM attempt_sums_rules"
	" GROUP BY t, k1, k2, k3;"
	"CREATE TEMP VIEW IF NOT EXISTS sums_read AS"
	" SELECT * FROM sums_all WHERE grain != 2"
	" UNION ALL SELECT kind, 2, m, k1, k2, k3, sum(queries),"
	" sum(attempts), sum(verified) FROM (SELECT kind, t AS m, k1, k2, k3,"
	" queries, attempts, verified FROM attempt_sums WHERE grain = 2"
	" UNION ALL SELECT kind, CAST(strftime('%s', t, 'unixepoch',"
	" 'start of month') AS INTEGER), k1, k2, k3, queries, attempts,"
	" verified FROM sums_all WHERE grain = 1 AND t >= (SELECT"
	" months_day FROM attempt_sums_state)) GROUP BY kind, m, k1, k2, k3";

/* The summaries as version 6 kept them: every day row in attempt_sums. */
static const char sums_before_v7[] =
	"DROP VIEW IF EXISTS temp.sums_read; DROP VIEW IF EXISTS temp.sums_all;"
	"INSERT INTO attempt_sums SELECT 2, 1, t, k1, k2, k3, sum(queries),"
	" sum(attempts), sum(verified) FROM attempt_sums_rules GROUP BY t, k1,"
	" k2, k3;"
	"DROP TABLE attempt_sums_rules;";

/* The summaries as versions 4 and 5 kept them: every day in its month. */
static const char sums_before_v6[] =
	"INSERT INTO attempt_sums SELECT kind, 2, CAST(strftime('%s', t,"
	" 'unixepoch', 'start of month') AS INTEGER), k1, k2, k3, queries,"
	" attempts, verified FROM attempt_sums WHERE grain = 1 AND t >="
	" (SELECT months_day FROM attempt_sums_state) AND true ON CONFLICT DO"
	" UPDATE SET queries = queries + excluded.queries, attempts ="
	" attempts + excluded.attempts, verified = verified +"
	" excluded.verified;"
	"ALTER TABLE attempt_sums_state DROP COLUMN months_day;";

/* Keys of attempt_sums that differ from a GROUP BY of the rows. */
static long long
sums_wrong(sqlite3 *db)
{
	static const char *const from_rows[] = {
		"SELECT 0, 0, ts / 1000 / 900 * 900, '', '', '' %s GROUP BY 3",
		"SELECT 3, 1, ts / 1000 / 86400 * 86400, coalesce(policy, ''),"
		" '', '' %s GROUP BY 3, 4",
		"SELECT 3, 2, CAST(strftime('%%s', ts / 1000, 'unixepoch',"
		" 'start of month') AS INTEGER), coalesce(policy, ''), '', ''"
		" %s GROUP BY 3, 4",
		"SELECT 1, 1, ts / 1000 / 86400 * 86400, client,"
		" coalesce(client_name, ''), '' %s GROUP BY 3, 4, 5",
		"SELECT 1, 2, CAST(strftime('%%s', ts / 1000, 'unixepoch',"
		" 'start of month') AS INTEGER), client,"
		" coalesce(client_name, ''), '' %s GROUP BY 3, 4, 5",
		"SELECT 2, 1, ts / 1000 / 86400 * 86400, rule, category,"
		" coalesce(site, '') %s GROUP BY 3, 4, 5, 6",
		"SELECT 2, 2, CAST(strftime('%%s', ts / 1000, 'unixepoch',"
		" 'start of month') AS INTEGER), rule, category,"
		" coalesce(site, '') %s GROUP BY 3, 4, 5, 6",
	};
	static const int kinds[][2] = { { 0, 0 }, { 3, 1 }, { 3, 2 },
	    { 1, 1 }, { 1, 2 }, { 2, 1 }, { 2, 2 } };
	static const char counts[] = ", count(*), sum(visit), sum(verified)"
	    " FROM attempts";
	long long wrong = 0;
	char q[512], sql[2048];

	CHECK_INT(sqlite3_exec(db, sums_read_view, NULL, NULL, NULL),
	    SQLITE_OK);
	for (size_t i = 0; i < sizeof(from_rows) / sizeof(from_rows[0]);
	    i++) {
		snprintf(q, sizeof(q), from_rows[i], counts);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM (%s EXCEPT"
		    " SELECT * FROM sums_read WHERE kind = %d AND grain ="
		    " %d)", q, kinds[i][0], kinds[i][1]);
		wrong += db_int(db, sql);
	}
	/* and nothing more than those keys */
	wrong += db_int(db, "SELECT (SELECT count(*) FROM sums_read) -"
	    " (SELECT count(*) FROM (SELECT DISTINCT ts / 1000 / 900"
	    " FROM attempts)) - (SELECT count(*) FROM (SELECT DISTINCT"
	    " ts / 1000 / 86400, policy FROM attempts)) - (SELECT count(*)"
	    " FROM (SELECT DISTINCT strftime('%Y-%m', ts / 1000, 'unixepoch'),"
	    " policy FROM attempts)) - (SELECT count(*) FROM (SELECT DISTINCT"
	    " ts / 1000 / 86400, client, client_name FROM attempts)) -"
	    " (SELECT count(*) FROM (SELECT DISTINCT strftime('%Y-%m', ts /"
	    " 1000, 'unixepoch'), client, client_name FROM attempts)) -"
	    " (SELECT count(*) FROM (SELECT DISTINCT ts / 1000 / 86400, rule,"
	    " category, site FROM attempts)) - (SELECT count(*) FROM (SELECT"
	    " DISTINCT strftime('%Y-%m', ts / 1000, 'unixepoch'), rule,"
	    " category, site FROM attempts))");
	return wrong;
}

/*
 * The writer decides each row's visit as it writes it, and the counts it
 * keeps are those of the rows; an upgraded file (its rows without visit)
 * gets both, worked through in steps while new rows are written.
 */
static void
test_sums(void)
{
	struct config *cfg = test_config("sums.db", 20000);
	static const char *const clients[] = { "10.0.0.1", "10.0.0.2",
	    "10.0.0.3", "2001:db8::7" };
	int64_t ts = 1700000000000LL - 40LL * 86400 * 1000;
	struct attemptlog *al;
	sqlite3 *db;
	char sql[256];

	cfg->log.retention_days = 0;
	add_client(cfg, "10.0.0.2/32", "finance");
	al = attemptlog_open(cfg);
	for (int i = 0; i < 6000; i++) {
		/* Gaps of 0 to 28 s, and a jump of a day now and then. */
		ts += (i * 37 % 29) * 1000 + (i % 500 == 0 ? 86400000LL : 0);
		append(al, ts, clients[i * 7 % 4], i % 3 ? "www.example.com" :
		    "x.imported.test", i % 5 ? 1 : 28, i % 3 ? &match_site :
		    &match_import);
	}
	attemptlog_close(al);
	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts"), 6000);
	CHECK_INT(sums_wrong_visits(db), 0);
	CHECK_INT(sums_wrong(db), 0);
	CHECK_INT(db_int(db, "SELECT covered_id FROM attempt_sums_state"),
	    6000);
	/* The days before the last are in their months, the last one not. */
	CHECK_INT(db_int(db, "SELECT months_day FROM attempt_sums_state"),
	    ts / 1000 / 86400 * 86400);
	CHECK(db_int(db, "SELECT count(*) FROM attempt_sums WHERE grain = 2")
	    > 0);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempt_sums WHERE grain ="
	    " 2 AND t > (SELECT months_day FROM attempt_sums_state)"), 0);

	/*
	 * Back to version 5: every day in its month. The upgrade keeps the
	 * months, and the next day is added to its month once a later one
	 * is counted.
	 */
	CHECK_INT(sqlite3_exec(db, sums_before_v7, NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, sums_before_v6, NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "PRAGMA user_version = 5", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);
	al = attemptlog_open(cfg);
	ts += 1000;
	append(al, ts, clients[1], "www.example.com", 1, &match_site);
	ts += 86400000LL;
	append(al, ts, clients[2], "www.example.com", 1, &match_site);
	attemptlog_close(al);
	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "PRAGMA user_version"), SINK_SCHEMA_VERSION);
	CHECK_INT(db_int(db, "SELECT months_day FROM attempt_sums_state"),
	    ts / 1000 / 86400 * 86400);
	CHECK_INT(sums_wrong_visits(db), 0);
	CHECK_INT(sums_wrong(db), 0);

	/* Back to version 3: no visit, no summaries. */
	CHECK_INT(sqlite3_exec(db, sums_before_v7, NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "ALTER TABLE attempts DROP COLUMN visit;"
	    "DROP TABLE attempt_sums; DROP TABLE attempt_sums_state;"
	    "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	al = attemptlog_open(cfg);
	append(al, ts + 1000, clients[0], "www.example.com", 1, &match_site);
	snprintf(sql, sizeof(sql), "SELECT covered_id FROM"
	    " attempt_sums_state");
	CHECK_INT(db_wait_int(cfg->log.database, sql, 6003), 6003);
	attemptlog_close(al);
	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts WHERE visit IS"
	    " NULL"), 0);
	CHECK_INT(db_int(db, "SELECT months_day FROM attempt_sums_state"),
	    ts / 1000 / 86400 * 86400);
	CHECK_INT(sums_wrong_visits(db), 0);
	CHECK_INT(sums_wrong(db), 0);
	sqlite3_close(db);
	config_free(cfg);
}

/*
 * Version 4 (index attempts_ts on ts) to 5: the open upgrades at once,
 * and the writer's next background step replaces attempts_ts with
 * attempts_log, in one transaction; rows and counts stay, new rows go on,
 * and retention's DELETE walks the new index.
 */
static void
test_upgrade_v4(void)
{
	struct config *cfg = test_config("v4.db", 1000);
	struct attemptlog *al;
	char buf[512];
	sqlite3 *db;

	cfg->log.retention_days = 0;
	al = attemptlog_open(cfg);
	for (int i = 0; i < 300; i++)
		append(al, 1700000000000LL + i * 1000, i % 2 ? "10.0.0.1" :
		    "10.0.0.2", "www.example.com", 1, &match_site);
	attemptlog_close(al);
	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "SELECT covered_id FROM attempt_sums_state"), 300);
	CHECK_INT(sqlite3_exec(db, sums_before_v7, NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, sums_before_v6, NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "DROP INDEX attempts_log; CREATE INDEX"
	    " attempts_ts ON attempts(ts); PRAGMA user_version = 4", NULL, NULL,
	    NULL), SQLITE_OK);
	sqlite3_close(db);

	al = attemptlog_open(cfg);
	append(al, 1700000300000LL, "10.0.0.1", "www.example.com", 1,
	    &match_site);
	CHECK_INT(db_wait_int(cfg->log.database, "SELECT count(*) FROM"
	    " sqlite_master WHERE name = 'attempts_log'", 1), 1);
	attemptlog_close(al);
	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "PRAGMA user_version"), SINK_SCHEMA_VERSION);
	CHECK_STR(db_row(db, "SELECT group_concat(name, ',') FROM sqlite_master"
	    " WHERE type = 'index' AND tbl_name = 'attempts'", buf,
	    sizeof(buf)), "attempts_log");
	CHECK_STR(db_row(db, "SELECT sql FROM sqlite_master WHERE name ="
	    " 'attempts_log'", buf, sizeof(buf)), "CREATE INDEX attempts_log ON"
	    " attempts(ts, id, client, client_name)");
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts"), 301);
	CHECK_INT(db_int(db, "SELECT covered_id FROM attempt_sums_state"), 301);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts WHERE client ="
	    " '10.0.0.1'"), 151);
	CHECK_INT(sums_wrong(db), 0);
	/* Retention's rows, found in the index alone (sink_sqlite.c). */
	CHECK_STR(db_row(db, "EXPLAIN QUERY PLAN SELECT id FROM attempts WHERE"
	    " ts < 5 AND id < 9 LIMIT 10", buf, sizeof(buf)), "3|0|0|SEARCH"
	    " attempts USING COVERING INDEX attempts_log (ts<?)");
	sqlite3_close(db);
	config_free(cfg);
}

/*
 * Version 6 to 7: the open moves the day rows of kind RULE to
 * attempt_sums_rules, each day's numbered in key order, and the
 * summaries read the same after as before; the rows written after it
 * (a key of the last day again, a new one, a new day) are counted too.
 */
static void
test_upgrade_v6(void)
{
	struct config *cfg = test_config("v6.db", 1000);
	static const char *const rules[] = { "d.test", "b.test", "a.test",
	    "c.test" };
	struct blocklist_match m[4];
	int64_t ts = 1700000000000LL;
	struct attemptlog *al;
	sqlite3 *db;

	cfg->log.retention_days = 0;
	al = attemptlog_open(cfg);
	for (int i = 0; i < 400; i++) {
		m[i % 4] = i % 8 < 4 ? match_site : match_import;
		m[i % 4].rule = rules[i % 4];
		/* 10 minutes apart: three days. */
		append(al, ts + i * 600000LL, i % 3 ? "10.0.0.1" : "10.0.0.2",
		    rules[i % 4], 1, &m[i % 4]);
	}
	attemptlog_close(al);
	db = db_open(cfg->log.database);
	CHECK_INT(sqlite3_exec(db, sums_before_v7, NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "PRAGMA user_version = 6;"
	    "CREATE TABLE sums_v6 AS SELECT * FROM attempt_sums", NULL, NULL,
	    NULL), SQLITE_OK);
	CHECK(db_int(db, "SELECT count(*) FROM attempt_sums WHERE kind = 2 AND"
	    " grain = 1") >= 12);
	sqlite3_close(db);

	/* Opened (and upgraded) without a row more: the same counts. */
	attemptlog_close(attemptlog_open(cfg));
	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "PRAGMA user_version"), SINK_SCHEMA_VERSION);
	CHECK_INT(sqlite3_exec(db, sums_read_view, NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_INT(db_int(db, "SELECT (SELECT count(*) FROM (SELECT * FROM"
	    " sums_v6 EXCEPT SELECT * FROM sums_all)) + (SELECT count(*) FROM"
	    " (SELECT * FROM sums_all EXCEPT SELECT * FROM sums_v6))"), 0);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempt_sums WHERE kind = 2"
	    " AND grain = 1"), 0);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempt_sums_rules AS r"
	    " WHERE seq != (SELECT count(*) FROM attempt_sums_rules AS o WHERE"
	    " o.t = r.t AND (o.k1, o.k2, o.k3) <= (r.k1, r.k2, r.k3))"), 0);
	CHECK_INT(sums_wrong(db), 0);
	sqlite3_close(db);

	al = attemptlog_open(cfg);
	ts += 400 * 600000LL;
	append(al, ts, "10.0.0.1", "a.test", 1, &m[2]);
	m[0].rule = "e.test";
	append(al, ts + 1000, "10.0.0.1", "e.test", 1, &m[0]);
	append(al, ts + 86400000LL, "10.0.0.1", "a.test", 1, &m[2]);
	attemptlog_close(al);
	db = db_open(cfg->log.database);
	CHECK_INT(sums_wrong_visits(db), 0);
	CHECK_INT(sums_wrong(db), 0);
	sqlite3_close(db);
	config_free(cfg);
}

/* Rule rows through the sink, one batch, now_ms 3 s after the last. */
static void
rules_batch(struct sink *s, int64_t day_ms, const char *const *rules,
    int n)
{
	static int64_t now_ms;
	struct sink_attempt a[8];
	struct sink_batch b = { .attempts = a, .nattempts = (size_t)n };

	now_ms += 3000;	/* each batch flushes the one before */
	b.now_ms = now_ms;
	for (int i = 0; i < n; i++) {
		const char *r = rules[i] + 1;
		/* "+rule": a row of the day before day_ms (a late one) */
		int64_t ts = day_ms + 3600000LL * (i + 1) -
		    (rules[i][0] == '+' ? 86400000LL : 0);

		a[i] = (struct sink_attempt){ .ts_ms = ts,
		    .client = { "10.0.0.1", 8 }, .qname = { r, strlen(r) },
		    .qtype = { "A", 1 }, .rule = { r, strlen(r) },
		    .category = { "adult", 5 }, .transport = { "udp", 3 } };
	}
	CHECK_INT(sink_sqlite_ops.write_batch(s, &b), 0);
}

/*
 * The writer numbers a day's rule keys as it first counts them: a key
 * counted again in a later flush keeps its seq, the next day numbers
 * from 1 again, and a late row of the day before gets a seq after that
 * day's last. Retention deletes the rule rows with their days.
 */
static void
test_rule_seqs(void)
{
	struct config *cfg = test_config("seqs.db", 100);
	const int64_t day = 1700006400000LL;	/* a UTC midnight */
	char err[256], buf[512];
	struct sink *s;
	sqlite3 *db;

	s = sink_sqlite_ops.open(cfg->log.database, err, sizeof(err));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	rules_batch(s, day, (const char *[]){ " a.t", " b.t" }, 2);
	rules_batch(s, day, (const char *[]){ " a.t", " c.t" }, 2);
	rules_batch(s, day + 86400000LL, (const char *[]){ " b.t", " a.t" },
	    2);
	rules_batch(s, day + 86400000LL, (const char *[]){ " d.t", " b.t",
	    "+e.t", "+c.t" }, 4);
	rules_batch(s, day + 86400000LL, (const char *[]){ " a.t" }, 1);
	sink_sqlite_ops.close(s);
	db = db_open(cfg->log.database);
	CHECK_STR(db_row(db, "SELECT group_concat(k1 || seq, ' ') FROM (SELECT"
	    " * FROM attempt_sums_rules ORDER BY t, seq)", buf, sizeof(buf)),
	    "a.t1 b.t2 c.t3 e.t4 c.t5 b.t1 a.t2 d.t3");
	/* (Not the visits: the late rows are out of time order.) */
	CHECK_INT(sums_wrong(db), 0);
	sqlite3_close(db);

	/* Retention of the first day. */
	s = sink_sqlite_ops.open(cfg->log.database, err, sizeof(err));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK(sink_sqlite_ops.expire(s, day + 86400000LL, 1000) > 0);
	sink_sqlite_ops.close(s);
	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts"), 5);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempt_sums_rules WHERE"
	    " t < 1700006400 + 86400"), 0);
	CHECK_INT(sums_wrong(db), 0);
	sqlite3_close(db);
	config_free(cfg);
}

/* ---- the writer on a clock the test moves ---- */

static struct {
	_Atomic int64_t	mono, wall;
} test_clock;

static int64_t
test_mono_ms(void *arg)
{
	return test_clock.mono;
}

static int64_t
test_wall_ms(void *arg)
{
	return test_clock.wall;
}

/* Until n rows are written, the test clock moving 100 ms a poll. */
static void
wait_written_test_clock(struct attemptlog *al, uint64_t n)
{
	struct attemptlog_stats st;

	for (int i = 0; i < 1000; i++) {
		attemptlog_get_stats(al, &st);
		if (st.written >= n)
			return;
		test_clock.mono += 100;
		attemptlog_time_passed(al);
		sleep_ms(10);
	}
}

static int64_t
fake_get(int64_t *field)
{
	int64_t v;

	pthread_mutex_lock(&fake.mtx);
	v = *field;
	pthread_mutex_unlock(&fake.mtx);
	return v;
}

/*
 * The writer decides by the clock it is given: a failed database is tried
 * again when that clock has moved on by the retry interval (here at once,
 * where the machine's clock would take a second), and the retention
 * cutoff is its wall time less retention_days.
 */
static void
test_writer_clock(void)
{
	struct config *cfg = test_config("unused.db", 100);
	struct attemptlog_clock clock = { test_mono_ms, test_wall_ms, NULL };
	const int64_t wall = 4102444800000LL;	/* 2100-01-01 */
	struct attemptlog *al;
	int64_t opens = 0;

	cfg->log.retention_days = 30;
	test_clock.mono = 1000000;
	test_clock.wall = wall;
	fake_reset(true);
	al = attemptlog_open_clock(cfg, &fake_ops, &clock);
	pthread_mutex_lock(&fake.mtx);
	opens = fake.opens;
	pthread_mutex_unlock(&fake.mtx);
	CHECK_INT(opens, 1);
	append(al, wall - 5, "10.0.0.1", "example.com", 1, &match_site);
	fake_set_fail(false);
	test_clock.mono += 1000;		/* AL_RETRY_MS */
	attemptlog_time_passed(al);
	wait_written(al, 1);
	pthread_mutex_lock(&fake.mtx);
	opens = fake.opens;
	pthread_mutex_unlock(&fake.mtx);
	CHECK_INT(opens, 2);
	CHECK_INT(fake.nrows, 1);
	for (int i = 0; i < 500 && fake_get(&fake.expire_before) == 0; i++)
		sleep_ms(10);
	CHECK_INT(fake_get(&fake.expire_before), wall - 30LL * 86400 * 1000);
	attemptlog_close(al);
	config_free(cfg);
}

/*
 * Rows from..to-1 at ts, rule "r<i>.test" each, then once they are
 * written a row repeating the last (a batch after them: the check that
 * would flush them). Returns the rows written in all, to + 1.
 */
static int
key_cap_rows(struct attemptlog *al, int64_t ts, int from, int to)
{
	struct blocklist_match m = match_site;
	char rule[32];

	m.rule = rule;
	for (int i = from; i < to; i++) {
		snprintf(rule, sizeof(rule), "r%d.test", i);
		append(al, ts, "10.0.0.1", rule, 1, &m);
	}
	wait_written_test_clock(al, (uint64_t)to);
	append(al, ts, "10.0.0.1", rule, 1, &m);
	wait_written_test_clock(al, (uint64_t)to + 1);
	return to + 1;
}

/* One row of (client, rule) at ts_ms in v: 1 if it starts an attempt. */
static int
visit(struct al_visits *v, const char *client, const char *rule,
    int64_t ts_ms)
{
	struct sink_str c = { client, strlen(client) };
	struct sink_str r = { rule, strlen(rule) };

	return al_visits_step(v, al_visits_key(v, c, r), ts_ms);
}

/*
 * Every byte of a client or rule tells pairs apart, whatever its place in
 * the string: the strings are hashed a word at a time, and the bytes
 * after the last whole word by loads that may overlap. A byte the hash
 * skipped would make two devices (or two sites) one pair, and the
 * second's first row no attempt.
 */
static void
test_visits_every_byte(void)
{
	const int64_t t0 = 1767225600000LL;
	struct al_visits *v = al_visits_new();
	char base[40], other[40];
	int missed = 0;

	CHECK(v != NULL);
	for (size_t len = 1; len < sizeof(base) - 1; len++) {
		for (size_t i = 0; i < len; i++)
			base[i] = (char)('a' + (len + i) % 26);
		base[len] = '\0';
		CHECK_INT(visit(v, base, "r.example", t0), 1);
		CHECK_INT(visit(v, "10.0.0.1", base, t0), 1);
		for (size_t at = 0; at < len; at++) {
			memcpy(other, base, len + 1);
			other[at] = (char)(other[at] == 'z' ? 'a' : other[at] + 1);
			missed += visit(v, other, "r.example", t0) != 1;
			missed += visit(v, "10.0.0.1", other, t0) != 1;
			/* The same bytes again: the same pair. */
			missed += visit(v, other, "r.example", t0 + 1) != 0;
		}
		/* A string and its prefix are two strings. */
		missed += visit(v, base, "r.example.", t0) != 1;
	}
	CHECK_INT(missed, 0);
	al_visits_free(v);
}

/*
 * The visit rule as the table applies it, row by row: a pair's row
 * starts an attempt when its last row is more than SINK_VISIT_GAP_MS
 * older. The table keeps times in 24 bits from a time 0 that follows the
 * rows, so the rule must hold across hours of rows, rows an hour late, a
 * clock set back, and a table grown or rebuilt in between.
 */
static void
test_visits_table(void)
{
	const int64_t t0 = 1767225600000LL;	/* 2026-01-01 00:00 UTC */
	const int64_t hour = 3600 * 1000LL;
	struct al_visits *v = al_visits_new();
	char name[32];
	int starts, slow;

	CHECK(v != NULL);
	CHECK_INT(visit(v, "10.0.0.1", "a.example", t0), 1);
	CHECK_INT(visit(v, "10.0.0.1", "a.example", t0 + SINK_VISIT_GAP_MS), 0);
	CHECK_INT(visit(v, "10.0.0.1", "a.example",
	    t0 + 2 * SINK_VISIT_GAP_MS), 0);
	CHECK_INT(visit(v, "10.0.0.1", "a.example",
	    t0 + 3 * SINK_VISIT_GAP_MS + 1), 1);
	/* Another client, or another rule, is another pair. */
	CHECK_INT(visit(v, "10.0.0.2", "a.example", t0 + 1000), 1);
	CHECK_INT(visit(v, "10.0.0.1", "b.example", t0 + 1000), 1);

	/*
	 * Ten hours, the table's time 0 moving on twice: a row every 30 s
	 * is one attempt, a row every 61 s each a new one.
	 */
	starts = slow = 0;
	for (int64_t t = 0; t < 10 * hour; t += 1000) {
		if (t % 30000 == 0)
			starts += visit(v, "10.0.0.3", "slow.example",
			    t0 + hour + t);
		if (t % 61000 == 0)
			slow += visit(v, "10.0.0.4", "slow.example",
			    t0 + hour + t);
	}
	CHECK_INT(starts, 1);
	CHECK_INT(slow, (int)((10 * hour + 60999) / 61000));

	/*
	 * A row two hours late: a pair of its own starts, its next row
	 * within the minute does not, and the pairs of the present keep
	 * their times.
	 */
	CHECK_INT(visit(v, "10.0.0.3", "slow.example", t0 + 11 * hour), 0);
	CHECK_INT(visit(v, "10.0.0.5", "late.example", t0 + 9 * hour), 1);
	CHECK_INT(visit(v, "10.0.0.5", "late.example",
	    t0 + 9 * hour + 30000), 0);
	CHECK_INT(visit(v, "10.0.0.3", "slow.example",
	    t0 + 11 * hour + 30000), 0);
	/*
	 * A late row never moves a pair's time back: a minute after the
	 * pair's latest row still continues the attempt, a minute and 1 ms
	 * starts one.
	 */
	CHECK_INT(visit(v, "10.0.0.3", "slow.example",
	    t0 + 11 * hour - 5000), 0);
	CHECK_INT(visit(v, "10.0.0.3", "slow.example",
	    t0 + 11 * hour + 30000 + SINK_VISIT_GAP_MS), 0);
	CHECK_INT(visit(v, "10.0.0.3", "slow.example",
	    t0 + 11 * hour + 30000 + 2 * SINK_VISIT_GAP_MS + 1), 1);

	/*
	 * The clock set back six hours: the table starts again, so the
	 * rows of the new time count as they would have on their own.
	 */
	CHECK_INT(visit(v, "10.0.0.3", "slow.example", t0 + 5 * hour), 1);
	CHECK_INT(visit(v, "10.0.0.3", "slow.example",
	    t0 + 5 * hour + 30000), 0);
	CHECK_INT(visit(v, "10.0.0.3", "slow.example",
	    t0 + 5 * hour + 30000 + SINK_VISIT_GAP_MS + 1), 1);

	/* 50,000 pairs in one minute: the table grows and keeps them all. */
	starts = 0;
	for (int i = 0; i < 50000; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		starts += visit(v, "10.0.0.6", name, t0 + 6 * hour + i);
	}
	CHECK_INT(starts, 50000);
	starts = 0;
	for (int i = 0; i < 50000; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		starts += visit(v, "10.0.0.6", name, t0 + 6 * hour + 50000 + i);
	}
	CHECK_INT(starts, 0);
	al_visits_free(v);

	/*
	 * 200,000 pairs, 10 a second: at most 600 of them in a minute, so
	 * the table stays the size of a minute's pairs, not of all of them.
	 */
	CHECK((v = al_visits_new()) != NULL);
	starts = 0;
	for (int i = 0; i < 200000; i++) {
		snprintf(name, sizeof(name), "s%d.example", i);
		starts += visit(v, "10.0.0.7", name, t0 + i * 100LL);
	}
	CHECK_INT(starts, 200000);
	CHECK(al_visits_slots(v) <= 4096);
	al_visits_free(v);
}

/*
 * The writer's counts reach attempt_sums when there are
 * SINK_SUMS_MAX_KEYS of them even if the time to flush never comes (the
 * wall clock stands still here; the monotonic one moves only to end the
 * writer's wait for more rows): fewer keys than that stay in memory. Each
 * row has a rule of its own, so a key of its own (RULE), and at most the
 * four kinds' keys.
 */
static void
test_sums_key_cap(void)
{
	struct config *cfg = test_config("sumscap.db", 1U << 17);
	struct attemptlog_clock clock = { test_mono_ms, test_wall_ms, NULL };
	const int64_t ts = 1700000000000LL;
	const int below = SINK_SUMS_MAX_KEYS / 4 - 1;
	struct attemptlog_stats st;
	struct attemptlog *al;
	sqlite3 *db;
	int n;

	cfg->log.retention_days = 0;
	test_clock.mono = 1000000;
	test_clock.wall = ts;
	al = attemptlog_open_clock(cfg, &sink_sqlite_ops, &clock);
	n = key_cap_rows(al, ts, 0, below);
	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "SELECT count(*) FROM attempts"), n);
	CHECK_INT(db_int(db, "SELECT covered_id FROM attempt_sums_state"), 0);
	sqlite3_close(db);

	n = key_cap_rows(al, ts, n, SINK_SUMS_MAX_KEYS + 1);
	db = db_open(cfg->log.database);
	CHECK(db_int(db, "SELECT covered_id FROM attempt_sums_state") > below);
	sqlite3_close(db);
	attemptlog_get_stats(al, &st);
	CHECK_INT(st.dropped, 0);
	attemptlog_close(al);

	db = db_open(cfg->log.database);
	CHECK_INT(db_int(db, "SELECT covered_id FROM attempt_sums_state"), n);
	CHECK_INT(sums_wrong(db), 0);
	sqlite3_close(db);
	config_free(cfg);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_pseudonym_hmac);
	RUN(test_batches_in_order);
	RUN(test_overflow_counted);
	RUN(test_version_and_peek);
	RUN(test_ring_wraps);
	RUN(test_release_nothing_keeps_first_chunk);
	RUN(test_memory_released);
	RUN(test_close_flushes);
	RUN(test_wal_after_crash);
	RUN(test_wal_held_header);
	RUN(test_open_tried_before_return);
	RUN(test_close_on_failing_sink);
	RUN(test_columns);
	RUN(test_identity);
	RUN(test_long_strings);
	RUN(test_rule_tail);
	RUN(test_latency);
	RUN(test_all_queries);
	RUN(test_upgrade_v1);
	RUN(test_upgrade_v2);
	RUN(test_upgrade_v4);
	RUN(test_upgrade_v6);
	RUN(test_directory_is_file);
	RUN(test_locked_by_other);
	RUN(test_disk_full);
	RUN(test_readonly_file);
	RUN(test_retention);
	RUN(test_retention_holds_unshipped);
	RUN(test_sums);
	RUN(test_rule_seqs);
	RUN(test_writer_clock);
	RUN(test_sums_key_cap);
	RUN(test_visits_table);
	RUN(test_visits_every_byte);
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (unit_failures == 0 && system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	UNIT_DONE();
}
