/*
 * sink_sqlite: the attempt log in one SQLite file, WAL mode, one writer
 * connection. See sink.h.
 *
 * Schema versions (PRAGMA user_version):
 *   1  table attempts alone, as first specified, no index
 *   2  attempts plus index on ts, tables queries and log_gaps
 *   3  attempts and queries gain verified and policy (the evidence and
 *      policies of ../docs/reports.md); older rows get verified = 1 for
 *      TCP, the one proof they had, and no policy
 * Version 0 on a file that already has table attempts is read as 1.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "sink.h"
#include "sqlite_fdvfs.h"

/*
 * The writer must not stall on a lock for long: rows pile up in the queue
 * meanwhile. A failed batch is retried later, nothing is lost.
 */
#define SINK_SQLITE_BUSY_MS	200

/* The WAL file is cut back to this size after each checkpoint. */
#define SINK_SQLITE_WAL_LIMIT	(64 * 1024 * 1024)

#define SINK_STR(x)		#x
#define SINK_XSTR(x)		SINK_STR(x)
#define SINK_SCHEMA_VERSION_TEXT	SINK_XSTR(SINK_SCHEMA_VERSION)

/* A new file, at SINK_SCHEMA_VERSION. */
static const char schema_new[] =
	"CREATE TABLE attempts ("
	" id INTEGER PRIMARY KEY,"
	" ts INTEGER NOT NULL,"
	" client TEXT NOT NULL,"
	" client_name TEXT,"
	" qname TEXT NOT NULL,"
	" qtype TEXT NOT NULL,"
	" rule TEXT NOT NULL,"
	" category TEXT NOT NULL,"
	" site TEXT,"
	" transport TEXT NOT NULL,"
	" verified INTEGER NOT NULL DEFAULT 0,"
	" policy TEXT);"
	"CREATE INDEX attempts_ts ON attempts(ts);"
	"CREATE TABLE queries ("
	" id INTEGER PRIMARY KEY,"
	" ts INTEGER NOT NULL,"
	" client TEXT NOT NULL,"
	" client_name TEXT,"
	" qname TEXT NOT NULL,"
	" qtype TEXT NOT NULL,"
	" rcode TEXT NOT NULL,"
	" cached INTEGER NOT NULL,"
	" blocked INTEGER NOT NULL,"
	" upstream TEXT,"
	" duration_us INTEGER NOT NULL,"
	" transport TEXT NOT NULL,"
	" verified INTEGER NOT NULL DEFAULT 0,"
	" policy TEXT);"
	"CREATE INDEX queries_ts ON queries(ts);"
	"CREATE TABLE log_gaps ("
	" id INTEGER PRIMARY KEY,"
	" ts_start INTEGER NOT NULL,"
	" ts_end INTEGER NOT NULL,"
	" rows_dropped INTEGER NOT NULL,"
	" table_name TEXT NOT NULL,"
	" reason TEXT NOT NULL,"
	" logged_at INTEGER NOT NULL);";

/*
 * Upgrades in place, one per version: upgrade[v - 1] takes a file of
 * version v to v + 1, in the transaction that checked the version.
 */
static const char *const schema_upgrade[] = {
	/* 1 -> 2 */
	"CREATE INDEX IF NOT EXISTS attempts_ts ON attempts(ts);"
	"CREATE TABLE IF NOT EXISTS queries ("
	" id INTEGER PRIMARY KEY,"
	" ts INTEGER NOT NULL,"
	" client TEXT NOT NULL,"
	" client_name TEXT,"
	" qname TEXT NOT NULL,"
	" qtype TEXT NOT NULL,"
	" rcode TEXT NOT NULL,"
	" cached INTEGER NOT NULL,"
	" blocked INTEGER NOT NULL,"
	" upstream TEXT,"
	" duration_us INTEGER NOT NULL,"
	" transport TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS queries_ts ON queries(ts);"
	"CREATE TABLE IF NOT EXISTS log_gaps ("
	" id INTEGER PRIMARY KEY,"
	" ts_start INTEGER NOT NULL,"
	" ts_end INTEGER NOT NULL,"
	" rows_dropped INTEGER NOT NULL,"
	" table_name TEXT NOT NULL,"
	" reason TEXT NOT NULL,"
	" logged_at INTEGER NOT NULL);",
	/*
	 * 2 -> 3. SQLite adds a NOT NULL column only with a default; new
	 * files get the same one, so that both read alike.
	 */
	"ALTER TABLE attempts ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE attempts ADD COLUMN policy TEXT;"
	"UPDATE attempts SET verified = 1 WHERE transport = 'tcp';"
	"ALTER TABLE queries ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE queries ADD COLUMN policy TEXT;"
	"UPDATE queries SET verified = 1 WHERE transport = 'tcp';",
};
_Static_assert(sizeof(schema_upgrade) / sizeof(schema_upgrade[0]) ==
    SINK_SCHEMA_VERSION - 1, "an upgrade for every older version");

/*
 * Rows go in SINK_SQLITE_ROWS to an INSERT, the rest one by one: running
 * a statement (opening cursors, halting, resetting) cost about as much as
 * inserting the row itself.
 */
#define SINK_SQLITE_ROWS	32
#define ATTEMPT_COLS		11
#define QUERY_COLS		13
static const char insert_attempt_sql[] =
	"INSERT INTO attempts (ts, client, client_name, qname, qtype, rule,"
	" category, site, transport, verified, policy) VALUES ";
static const char insert_query_sql[] =
	"INSERT INTO queries (ts, client, client_name, qname, qtype, rcode,"
	" cached, blocked, upstream, duration_us, transport, verified,"
	" policy) VALUES ";
static const char insert_gap_sql[] =
	"INSERT INTO log_gaps (ts_start, ts_end, rows_dropped, table_name,"
	" reason, logged_at) VALUES (?,?,?,?,?,?)";
/* By rowid through the ts index: each step touches at most ?2 rows. */
static const char expire_attempts_sql[] =
	"DELETE FROM attempts WHERE id IN"
	" (SELECT id FROM attempts WHERE ts < ?1 LIMIT ?2)";
static const char expire_queries_sql[] =
	"DELETE FROM queries WHERE id IN"
	" (SELECT id FROM queries WHERE ts < ?1 LIMIT ?2)";
static const char expire_gaps_sql[] =
	"DELETE FROM log_gaps WHERE ts_end < ?1";

struct sink {
	sqlite3		*db;
	sqlite3_stmt	*ins_attempt;	/* one row */
	sqlite3_stmt	*ins_attempts;	/* SINK_SQLITE_ROWS rows */
	sqlite3_stmt	*ins_query;
	sqlite3_stmt	*ins_queries;
	sqlite3_stmt	*ins_gap;
	sqlite3_stmt	*exp_attempts;
	sqlite3_stmt	*exp_queries;
	sqlite3_stmt	*exp_gaps;
	char		 err[512];
};

static void	sqlite_close(struct sink *s);

/* "what: sqlite message (errno text)": the OS cause matters most to admins. */
static void
sqlite_set_error(sqlite3 *db, char *err, size_t errlen, const char *what)
{
	int saved = errno;	/* the failed system call's, most likely */
	int code = db ? sqlite3_errcode(db) & 0xff : SQLITE_NOMEM;
	int sys = db ? sqlite3_system_errno(db) : 0;

	/* SQLite records the errno of some failures only (not writes). */
	if (sys == 0 && (code == SQLITE_IOERR || code == SQLITE_FULL))
		sys = saved;
	const char *msg = db ? sqlite3_errmsg(db) : "out of memory";

	/* errno is kept from the last failed system call: only I/O errors
	 * may name it without it being stale. */
	if (code != SQLITE_IOERR && code != SQLITE_CANTOPEN &&
	    code != SQLITE_FULL && code != SQLITE_READONLY &&
	    code != SQLITE_PERM)
		sys = 0;
	if (code == SQLITE_BUSY)
		snprintf(err, errlen, "%s: %s (another connection holds the"
		    " write lock)", what, msg);
	else if (sys != 0)
		snprintf(err, errlen, "%s: %s (%s)", what, msg, strerror(sys));
	else
		snprintf(err, errlen, "%s: %s", what, msg);
}

static void
sink_error(struct sink *s, const char *what)
{
	sqlite_set_error(s->db, s->err, sizeof(s->err), what);
}

/* mkdir -p for the database's directory, new levels mode 0750. */
static int
sqlite_make_parent(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		snprintf(err, errlen, "%s is not a directory", dir);
		return -1;
	}
	for (char *p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create directory %s: %s",
			    dir, strerror(errno));
			return -1;
		}
		if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s is not a directory", dir);
			return -1;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	log_info("attempt log: created directory %s", dir);
	return 0;
}

/*
 * Create the file ourselves so that it is not world-readable: the log names
 * people. SQLite gives its -wal and -shm files the database's mode.
 */
static int
sqlite_precreate(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);

	if (fd == -1) {
		snprintf(err, errlen, "cannot open %s for writing: %s", path,
		    strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

static int
sqlite_exec(struct sink *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		sink_error(s, what);
		return -1;
	}
	return 0;
}

/*
 * Start a write transaction. SQLite opens the file only now, so this is
 * where a missing directory or a permission shows too: "cannot lock" is
 * kept for another connection holding the lock.
 */
static int
sqlite_begin(struct sink *s)
{
	int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc == SQLITE_OK)
		return 0;
	rc &= 0xff;	/* the primary code of an extended one */
	sink_error(s, rc == SQLITE_BUSY || rc == SQLITE_LOCKED ?
	    "cannot lock database" : "cannot write database");
	return -1;
}

/* The single integer a pragma or query returns, or -1. */
static long long
sqlite_int(struct sink *s, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		sink_error(s, sql);
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		sink_error(s, sql);
	sqlite3_finalize(st);
	return v;
}

static int
sqlite_wal(struct sink *s)
{
	sqlite3_stmt *st;
	int ok = 0;

	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st,
	    NULL) != SQLITE_OK) {
		sink_error(s, "cannot set WAL mode");
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(st, 0),
		    "wal") == 0;
	if (!ok)
		sink_error(s, "cannot set WAL mode");
	sqlite3_finalize(st);
	return ok ? 0 : -1;
}

/* Bring the schema to SINK_SCHEMA_VERSION in one transaction. */
static int
sqlite_migrate(struct sink *s, const char *path)
{
	long long version, has_attempts;

	if (sqlite_begin(s) == -1)
		return -1;
	version = sqlite_int(s, "PRAGMA user_version");
	has_attempts = sqlite_int(s, "SELECT count(*) FROM sqlite_master"
	    " WHERE type = 'table' AND name = 'attempts'");
	if (version < 0 || has_attempts < 0)
		goto fail;
	if (version > SINK_SCHEMA_VERSION) {
		snprintf(s->err, sizeof(s->err), "schema version %lld is newer"
		    " than this dnswarden's (%d)", version,
		    SINK_SCHEMA_VERSION);
		goto fail;
	}
	if (!has_attempts) {
		if (sqlite_exec(s, schema_new, "cannot create schema") == -1)
			goto fail;
	} else if (version < SINK_SCHEMA_VERSION) {
		for (long long v = version ? version : 1;
		    v < SINK_SCHEMA_VERSION; v++)
			if (sqlite_exec(s, schema_upgrade[v - 1],
			    "cannot upgrade schema") == -1)
				goto fail;
		log_info("attempt log: %s: schema upgraded from version %lld"
		    " to %d", path, version ? version : 1,
		    SINK_SCHEMA_VERSION);
	}
	if (version != SINK_SCHEMA_VERSION && sqlite_exec(s,
	    "PRAGMA user_version = " SINK_SCHEMA_VERSION_TEXT,
	    "cannot set schema version") == -1)
		goto fail;
	if (sqlite_exec(s, "COMMIT", "cannot commit schema") == -1)
		goto fail;
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* An INSERT of nrows rows of ncols parameters each, after head. */
static int
sqlite_prepare_insert(struct sink *s, sqlite3_stmt **st, const char *head,
    int ncols, int nrows)
{
	size_t len = strlen(head), o;
	char *sql = malloc(len + (size_t)nrows * (2 * (size_t)ncols + 2) + 1);
	int rc;

	if (sql == NULL) {
		snprintf(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	memcpy(sql, head, len);
	o = len;
	for (int r = 0; r < nrows; r++) {
		sql[o++] = r > 0 ? ',' : '(';
		if (r > 0)
			sql[o++] = '(';
		for (int c = 0; c < ncols; c++) {
			sql[o++] = '?';
			sql[o++] = c + 1 < ncols ? ',' : ')';
		}
	}
	sql[o] = '\0';
	rc = sqlite3_prepare_v3(s->db, sql, (int)o, SQLITE_PREPARE_PERSISTENT,
	    st, NULL);
	free(sql);
	if (rc != SQLITE_OK) {
		sink_error(s, "cannot prepare statement");
		return -1;
	}
	return 0;
}

static int
sqlite_prepare(struct sink *s)
{
	struct {
		sqlite3_stmt	**st;
		const char	 *sql;
	} stmts[] = {
		{ &s->ins_gap, insert_gap_sql },
		{ &s->exp_attempts, expire_attempts_sql },
		{ &s->exp_queries, expire_queries_sql },
		{ &s->exp_gaps, expire_gaps_sql },
	};

	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
		if (sqlite3_prepare_v3(s->db, stmts[i].sql, -1,
		    SQLITE_PREPARE_PERSISTENT, stmts[i].st, NULL) != SQLITE_OK) {
			sink_error(s, "cannot prepare statement");
			return -1;
		}
	if (sqlite_prepare_insert(s, &s->ins_attempt, insert_attempt_sql,
	    ATTEMPT_COLS, 1) == -1 ||
	    sqlite_prepare_insert(s, &s->ins_attempts, insert_attempt_sql,
	    ATTEMPT_COLS, SINK_SQLITE_ROWS) == -1 ||
	    sqlite_prepare_insert(s, &s->ins_query, insert_query_sql,
	    QUERY_COLS, 1) == -1 ||
	    sqlite_prepare_insert(s, &s->ins_queries, insert_query_sql,
	    QUERY_COLS, SINK_SQLITE_ROWS) == -1)
		return -1;
	return 0;
}

static int
sqlite_setup(struct sink *s, const char *path)
{
	char pragmas[128];

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, SINK_SQLITE_BUSY_MS);
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		snprintf(s->err, sizeof(s->err), "the file is read-only");
		return -1;
	}
	if (sqlite_wal(s) == -1)
		return -1;
	snprintf(pragmas, sizeof(pragmas), "PRAGMA synchronous=NORMAL;"
	    "PRAGMA journal_size_limit=%d", SINK_SQLITE_WAL_LIMIT);
	if (sqlite_exec(s, pragmas, "cannot set pragmas") == -1)
		return -1;
	if (sqlite_migrate(s, path) == -1)
		return -1;
	return sqlite_prepare(s);
}

static struct sink *
sqlite_open(const char *path, char *err, size_t errlen)
{
	struct sink *s;
	int rc;

	if (sqlite_make_parent(path, err, errlen) == -1 ||
	    sqlite_precreate(path, err, errlen) == -1)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		sink_error(s, "cannot open database");
	else if (sqlite_setup(s, path) == 0)
		return s;
	snprintf(err, errlen, "%s", s->err);
	sqlite_close(s);
	return NULL;
}

/* Length given: with -1, SQLite's strlen() was the writer's top cost. */
static void
bind_str(sqlite3_stmt *st, int i, struct sink_str v)
{
	if (v.s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, v.s, (int)v.len, SQLITE_STATIC);
}

/* For the rare log_gaps rows, NUL-terminated. */
static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Step a bound INSERT once and reset it for the next row. */
static int
sqlite_step_insert(struct sink *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		sink_error(s, what);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

/* Bind row a to parameters base + 1 to base + ATTEMPT_COLS. */
static void
bind_attempt(sqlite3_stmt *st, int base, const struct sink_attempt *a)
{
	sqlite3_bind_int64(st, base + 1, a->ts_ms);
	bind_str(st, base + 2, a->client);
	bind_str(st, base + 3, a->client_name);
	bind_str(st, base + 4, a->qname);
	bind_str(st, base + 5, a->qtype);
	bind_str(st, base + 6, a->rule);
	bind_str(st, base + 7, a->category);
	bind_str(st, base + 8, a->site);
	bind_str(st, base + 9, a->transport);
	sqlite3_bind_int(st, base + 10, a->verified);
	bind_str(st, base + 11, a->policy);
}

static void
bind_query(sqlite3_stmt *st, int base, const struct sink_query *q)
{
	sqlite3_bind_int64(st, base + 1, q->ts_ms);
	bind_str(st, base + 2, q->client);
	bind_str(st, base + 3, q->client_name);
	bind_str(st, base + 4, q->qname);
	bind_str(st, base + 5, q->qtype);
	bind_str(st, base + 6, q->rcode);
	sqlite3_bind_int(st, base + 7, q->cached);
	sqlite3_bind_int(st, base + 8, q->blocked);
	bind_str(st, base + 9, q->upstream);
	sqlite3_bind_int64(st, base + 10, q->duration_us);
	bind_str(st, base + 11, q->transport);
	sqlite3_bind_int(st, base + 12, q->verified);
	bind_str(st, base + 13, q->policy);
}

/* How rows of one table are bound: so one loop serves both tables. */
struct insert_kind {
	const char	*what;		/* for the error message */
	size_t		 size;		/* sizeof one row */
	int		 cols;		/* parameters per row */
	void		(*bind)(sqlite3_stmt *, int, const void *);
};

static void
bind_attempt_any(sqlite3_stmt *st, int base, const void *row)
{
	bind_attempt(st, base, row);
}

static void
bind_query_any(sqlite3_stmt *st, int base, const void *row)
{
	bind_query(st, base, row);
}

static const struct insert_kind insert_attempts = {
	"cannot insert into attempts", sizeof(struct sink_attempt),
	ATTEMPT_COLS, bind_attempt_any,
};
static const struct insert_kind insert_queries = {
	"cannot insert into queries", sizeof(struct sink_query),
	QUERY_COLS, bind_query_any,
};

/*
 * Insert n rows: SINK_SQLITE_ROWS at a time through the multi-row
 * statement many, the rest one by one through one.
 */
static int
sqlite_insert_rows(struct sink *s, const struct insert_kind *k,
    sqlite3_stmt *many, sqlite3_stmt *one, const void *rows, size_t n)
{
	const char *p = rows;
	size_t i = 0;

	for (; n - i >= SINK_SQLITE_ROWS; i += SINK_SQLITE_ROWS) {
		for (int r = 0; r < SINK_SQLITE_ROWS; r++)
			k->bind(many, r * k->cols,
			    p + (i + (size_t)r) * k->size);
		if (sqlite_step_insert(s, many, k->what) == -1)
			return -1;
	}
	for (; i < n; i++) {
		k->bind(one, 0, p + i * k->size);
		if (sqlite_step_insert(s, one, k->what) == -1)
			return -1;
	}
	return 0;
}

static int
sqlite_insert_gap(struct sink *s, const struct sink_gap *g, int64_t now)
{
	sqlite3_stmt *st = s->ins_gap;

	sqlite3_bind_int64(st, 1, g->ts_start);
	sqlite3_bind_int64(st, 2, g->ts_end);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)g->rows);
	bind_text(st, 4, g->table);
	bind_text(st, 5, g->reason);
	sqlite3_bind_int64(st, 6, now);
	return sqlite_step_insert(s, st, "cannot insert into log_gaps");
}

static int
sqlite_write_rows(struct sink *s, const struct sink_batch *b)
{
	for (size_t i = 0; i < b->ngaps; i++)
		if (sqlite_insert_gap(s, &b->gaps[i], b->now_ms) == -1)
			return -1;
	if (sqlite_insert_rows(s, &insert_attempts, s->ins_attempts,
	    s->ins_attempt, b->attempts, b->nattempts) == -1)
		return -1;
	return sqlite_insert_rows(s, &insert_queries, s->ins_queries,
	    s->ins_query, b->queries, b->nqueries);
}

static int
sqlite_write_batch(struct sink *s, const struct sink_batch *b)
{
	s->err[0] = '\0';
	if (sqlite_begin(s) == -1)
		return -1;
	if (sqlite_write_rows(s, b) == 0 &&
	    sqlite_exec(s, "COMMIT", "cannot commit") == 0)
		return 0;
	/* A failed COMMIT may already have rolled back. */
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Run one bound DELETE; the rows it removed, or -1. */
static long
sqlite_delete(struct sink *s, sqlite3_stmt *st, int64_t before,
    unsigned max_rows)
{
	int rc;

	sqlite3_bind_int64(st, 1, before);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, max_rows);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		sink_error(s, "cannot delete expired rows");
		return -1;
	}
	return sqlite3_changes(s->db);
}

static long
sqlite_expire(struct sink *s, int64_t before_ms, unsigned max_rows)
{
	long n, total = 0;

	s->err[0] = '\0';
	if (sqlite_begin(s) == -1)
		return -1;
	if ((n = sqlite_delete(s, s->exp_attempts, before_ms, max_rows)) < 0)
		goto fail;
	total += n;
	if (total < (long)max_rows) {
		n = sqlite_delete(s, s->exp_queries, before_ms,
		    max_rows - (unsigned)total);
		if (n < 0)
			goto fail;
		total += n;
	}
	if (total < (long)max_rows &&
	    sqlite_delete(s, s->exp_gaps, before_ms, 0) < 0)
		goto fail;
	if (sqlite_exec(s, "COMMIT", "cannot commit") == -1)
		goto fail;
	return total;
fail:
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static const char *
sqlite_error(struct sink *s)
{
	return s->err;
}

static void
sqlite_close(struct sink *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->ins_attempt);
	sqlite3_finalize(s->ins_attempts);
	sqlite3_finalize(s->ins_query);
	sqlite3_finalize(s->ins_queries);
	sqlite3_finalize(s->ins_gap);
	sqlite3_finalize(s->exp_attempts);
	sqlite3_finalize(s->exp_queries);
	sqlite3_finalize(s->exp_gaps);
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		log_warnx("attempt log: close: %s", sqlite3_errmsg(s->db));
	free(s);
}

/*
 * SQLite's memory statistics take a global mutex around every malloc and
 * free: 8 % of the writer's time, for figures nothing here reads. The
 * setting only takes before SQLite's first use in the process (later it
 * fails harmlessly); in the daemon, the log's writer is that first use.
 */
static void
sqlite_process_setup(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite_fdvfs_register();
}

const struct sink_ops sink_sqlite_ops = {
	.name = "sqlite",
	.setup = sqlite_process_setup,
	.open = sqlite_open,
	.write_batch = sqlite_write_batch,
	.expire = sqlite_expire,
	.error = sqlite_error,
	.close = sqlite_close,
};
