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
 *   4  attempts gains visit (1: the row starts an attempt), tables
 *      attempt_sums and attempt_sums_state hold the counts the reports
 *      read (sink.h); older rows get visit NULL and are worked through
 *      by maintain(), a few thousand per step, after the upgrade
 *   5  index attempts_log on (ts, id, client, client_name) in place of
 *      attempts_ts on (ts): `log --client` walks it newest first without
 *      reading the rows it skips. The upgrade itself is quick; maintain()
 *      builds the index in one step after it (../docs/reports.md)
 *   6  attempt_sums_state gains months_day: the month rows count the
 *      day rows before it only; the writer adds each day to its month
 *      once, when a later day's rows are counted, instead of writing
 *      every key's month beside its day at each flush. An upgraded file
 *      starts after its last day row (its months count every day)
 *   7  the day rows of kind RULE move to table attempt_sums_rules, keyed
 *      by (t, seq): the writer numbers a day's (rule, category, site)
 *      keys in the order it first counts them, so a new key is added at
 *      the table's end instead of on a page of its own in text order
 *      (../docs/performance.md). The upgrade numbers each day's rows in
 *      key order
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

#include "al_sums.h"
#include "clock.h"
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

/* A summary's key strings and counts, in both summary tables. */
#define SUMS_KEY_COUNTS \
	" k1 TEXT NOT NULL," \
	" k2 TEXT NOT NULL," \
	" k3 TEXT NOT NULL," \
	" queries INTEGER NOT NULL," \
	" attempts INTEGER NOT NULL," \
	" verified INTEGER NOT NULL,"

/*
 * The summaries (version 4). WITHOUT ROWID: the key is the table, which
 * reports read by (kind, grain, t) ranges. covered_id: the rows up to it
 * are counted in attempt_sums.
 */
#define SCHEMA_SUMS \
	"CREATE TABLE attempt_sums (" \
	" kind INTEGER NOT NULL," \
	" grain INTEGER NOT NULL," \
	" t INTEGER NOT NULL," \
	SUMS_KEY_COUNTS \
	" PRIMARY KEY (kind, grain, t, k1, k2, k3)) WITHOUT ROWID;" \
	"CREATE TABLE attempt_sums_state (" \
	" id INTEGER PRIMARY KEY CHECK (id = 1)," \
	" covered_id INTEGER NOT NULL);" \
	"INSERT INTO attempt_sums_state VALUES (1, 0);"

/*
 * The one index of attempts (version 5). Its order is the log's, newest
 * first by (ts, id), and new rows land at its end, so the writer pays
 * about what a (ts) index cost it; an index led by client would put each
 * row on a different page (docs/performance.md). It carries client and
 * client_name, so that a page for one client skips the other clients'
 * rows in the index alone, and it serves every time range: the reports,
 * the retention DELETE, max(ts).
 */
#define LOG_INDEX \
	"CREATE INDEX IF NOT EXISTS attempts_log ON attempts(ts, id, client," \
	" client_name)"

/*
 * Version 6: the month rows (kinds CLIENT, RULE, POLICY) count the day
 * rows with t < months_day; a month's later days are in its day rows
 * only, until the writer rolls them up (sums_write()).
 */
#define SCHEMA_MONTHS_DAY \
	"ALTER TABLE attempt_sums_state ADD COLUMN" \
	" months_day INTEGER NOT NULL DEFAULT 0;" \
	"UPDATE attempt_sums_state SET months_day = coalesce((SELECT max(t)" \
	" FROM attempt_sums WHERE grain = " SINK_XSTR(SINK_GRAIN_DAY) ")" \
	" + 86400, 0);"

/*
 * Version 7: the day rows of kind RULE (sink.h), k1 rule, k2 category, k3
 * site as in attempt_sums. seq numbers the keys of day t; one key may
 * have more than one seq (the writer's numbers are in memory only, and
 * restart with each open), so readers add a day's rows up by key.
 */
#define SCHEMA_RULE_DAYS \
	"CREATE TABLE attempt_sums_rules (" \
	" t INTEGER NOT NULL," \
	" seq INTEGER NOT NULL," \
	SUMS_KEY_COUNTS \
	" PRIMARY KEY (t, seq)) WITHOUT ROWID;"

#define RULE_DAY_ROWS \
	" kind = " SINK_XSTR(SINK_SUM_RULE) " AND grain = " \
	SINK_XSTR(SINK_GRAIN_DAY)

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
	" policy TEXT,"
	" visit INTEGER);"
	LOG_INDEX ";"
	SCHEMA_SUMS
	SCHEMA_MONTHS_DAY
	SCHEMA_RULE_DAYS
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
	/*
	 * 3 -> 4: quick whatever the size; the rows' visit and their
	 * counts come after, in maintain() steps.
	 */
	"ALTER TABLE attempts ADD COLUMN visit INTEGER;"
	SCHEMA_SUMS,
	/*
	 * 4 -> 5: nothing here. Indexing every row takes seconds on a large
	 * file (9 s at ten million rows), so maintain() builds attempts_log
	 * in its own step once the writer runs; until then attempts_ts
	 * serves, and readers plan by the index they find.
	 */
	"",
	/* 5 -> 6: the months as they were count every day row there is. */
	SCHEMA_MONTHS_DAY,
	/* 6 -> 7: each day's rule rows numbered in key order. */
	SCHEMA_RULE_DAYS
	"INSERT INTO attempt_sums_rules SELECT t, row_number() OVER"
	" (PARTITION BY t ORDER BY k1, k2, k3), k1, k2, k3, queries, attempts,"
	" verified FROM attempt_sums WHERE" RULE_DAY_ROWS " ORDER BY t, k1, k2,"
	" k3;"
	"DELETE FROM attempt_sums WHERE" RULE_DAY_ROWS ";",
};
_Static_assert(sizeof(schema_upgrade) / sizeof(schema_upgrade[0]) ==
    SINK_SCHEMA_VERSION - 1, "an upgrade for every older version");

/*
 * Rows go in SINK_SQLITE_ROWS to an INSERT, the rest one by one: running
 * a statement (opening cursors, halting, resetting) cost about as much as
 * inserting the row itself.
 */
#define SINK_SQLITE_ROWS	32
#define ATTEMPT_COLS		12
#define QUERY_COLS		13
static const char insert_attempt_sql[] =
	"INSERT INTO attempts (ts, client, client_name, qname, qtype, rule,"
	" category, site, transport, verified, policy, visit) VALUES ";
static const char insert_query_sql[] =
	"INSERT INTO queries (ts, client, client_name, qname, qtype, rcode,"
	" cached, blocked, upstream, duration_us, transport, verified,"
	" policy) VALUES ";
static const char insert_gap_sql[] =
	"INSERT INTO log_gaps (ts_start, ts_end, rows_dropped, table_name,"
	" reason, logged_at) VALUES (?,?,?,?,?,?)";
/*
 * Table central_outbox: how far each central shipper (../central/) got.
 * Rows from its shipped_id on wait for it, so retention keeps them; the
 * last shipped row stays too, so that ids never start again at 1 under
 * rows the central database already holds.
 */
#define OUTBOX_HOLD \
	" AND id < (SELECT coalesce(min(shipped_id), 9223372036854775807)" \
	" FROM central_outbox)"
static const char schema_outbox[] =
	"CREATE TABLE IF NOT EXISTS central_outbox ("
	" instance TEXT PRIMARY KEY,"
	" shipped_id INTEGER NOT NULL)";
/* By rowid through the ts index: each step touches at most ?2 rows. */
static const char expire_attempts_sql[] =
	"DELETE FROM attempts WHERE id IN"
	" (SELECT id FROM attempts WHERE ts < ?1" OUTBOX_HOLD " LIMIT ?2)";
/* What retention kept back for the shipper, to say so. */
static const char outbox_held_sql[] =
	"SELECT count(*), (SELECT group_concat(instance, ', ') FROM"
	" central_outbox) FROM attempts WHERE ts < ?1 AND id >"
	" (SELECT coalesce(min(shipped_id), 9223372036854775807)"
	" FROM central_outbox)";
static const char expire_queries_sql[] =
	"DELETE FROM queries WHERE id IN"
	" (SELECT id FROM queries WHERE ts < ?1 LIMIT ?2)";
static const char expire_gaps_sql[] =
	"DELETE FROM log_gaps WHERE ts_end < ?1";
/*
 * Counts go SINK_SQLITE_ROWS to a statement too: each UPSERT statement
 * also opened and released a statement journal, a seventh of its cost.
 */
#define SUM_COLS		9
#define RULE_COLS		8
#define SUMS_ADD \
	" DO UPDATE SET queries = queries + excluded.queries," \
	" attempts = attempts + excluded.attempts," \
	" verified = verified + excluded.verified"
static const char upsert_sum_sql[] =
	"INSERT INTO attempt_sums (kind, grain, t, k1, k2, k3, queries,"
	" attempts, verified) VALUES ";
static const char upsert_sum_tail[] =
	" ON CONFLICT (kind, grain, t, k1, k2, k3)" SUMS_ADD;
static const char upsert_rule_sql[] =
	"INSERT INTO attempt_sums_rules (t, seq, k1, k2, k3, queries, attempts,"
	" verified) VALUES ";
static const char upsert_rule_tail[] = " ON CONFLICT (t, seq)" SUMS_ADD;
/* A key of a day before the one numbered (a late row): a new seq. */
static const char insert_rule_late_sql[] =
	"INSERT INTO attempt_sums_rules SELECT ?1, coalesce(max(seq), 0) + ?2,"
	" ?3, ?4, ?5, ?6, ?7, ?8 FROM attempt_sums_rules WHERE t = ?1";
static const char max_rule_seq_sql[] =
	"SELECT coalesce(max(seq), 0) FROM attempt_sums_rules WHERE t = ?1";
static const char set_covered_sql[] =
	"UPDATE attempt_sums_state SET covered_id = ?1, months_day = ?2";
/* The day rows ?1 <= t < ?2 added to their months (once a day). */
static const char roll_months_sql[] =
	"INSERT INTO attempt_sums (kind, grain, t, k1, k2, k3, queries,"
	" attempts, verified) SELECT kind, " SINK_XSTR(SINK_GRAIN_MONTH) ","
	" CAST(strftime('%s', t, 'unixepoch', 'start of month') AS INTEGER),"
	" k1, k2, k3, sum(queries), sum(attempts), sum(verified) FROM"
	" attempt_sums WHERE kind IN (" SINK_XSTR(SINK_SUM_CLIENT) ", "
	SINK_XSTR(SINK_SUM_RULE) ", " SINK_XSTR(SINK_SUM_POLICY) ") AND"
	" grain = " SINK_XSTR(SINK_GRAIN_DAY) " AND t >= ?1 AND t < ?2"
	" GROUP BY 1, 3, 4, 5, 6"
	" ON CONFLICT (kind, grain, t, k1, k2, k3)" SUMS_ADD;
/* The same for the day rows of kind RULE (version 7). */
static const char roll_rule_months_sql[] =
	"INSERT INTO attempt_sums (kind, grain, t, k1, k2, k3, queries,"
	" attempts, verified) SELECT " SINK_XSTR(SINK_SUM_RULE) ", "
	SINK_XSTR(SINK_GRAIN_MONTH) ", CAST(strftime('%s', t, 'unixepoch',"
	" 'start of month') AS INTEGER), k1, k2, k3, sum(queries),"
	" sum(attempts), sum(verified) FROM attempt_sums_rules WHERE t >= ?1"
	" AND t < ?2 GROUP BY 3, 4, 5, 6"
	" ON CONFLICT (kind, grain, t, k1, k2, k3)" SUMS_ADD;
/* Catching up: the rows not yet counted, in the order they were written. */
static const char uncounted_sql[] =
	"SELECT id, ts, client, client_name, rule, category, site, verified,"
	" policy, visit FROM attempts WHERE id > ?1 ORDER BY id LIMIT ?2";
static const char set_visit_sql[] =
	"UPDATE attempts SET visit = ?2 WHERE id = ?1";

/*
 * The day's rule keys the writer has numbered, at most this many (about
 * 100 bytes each): past it, it forgets them and numbers anew, so that a
 * key seen again gets a second row of the day, which readers add up.
 */
#define SINK_RULE_SEQS_MAX	131072

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
	sqlite3_stmt	*upsert_sum;	/* one key */
	sqlite3_stmt	*upsert_sums;	/* SINK_SQLITE_ROWS keys */
	sqlite3_stmt	*set_covered;
	sqlite3_stmt	*roll_months;
	sqlite3_stmt	*roll_rule_months;
	sqlite3_stmt	*upsert_rule;	/* one key */
	sqlite3_stmt	*upsert_rules;	/* SINK_SQLITE_ROWS keys */
	sqlite3_stmt	*insert_rule_late;
	sqlite3_stmt	*max_rule_seq;
	sqlite3_stmt	*uncounted;
	sqlite3_stmt	*set_visit;

	/* Which rows start an attempt: for new rows, and for old rows that
	 * an upgrade left with visit NULL (counted in id order). */
	struct al_visits *visits;
	struct al_visits *old_visits;	/* NULL until catching up */
	uint8_t		*batch_visit;	/* the batch's rows', as inserted */
	struct al_row_hash *batch_hash;	/* their keys' hashes */
	size_t		 batch_visit_cap;

	/*
	 * Counts of rows covered_id < id <= counted_id, not yet in
	 * attempt_sums. Only while caught up (live); before, maintain()
	 * counts the rows from the table.
	 */
	struct al_sums	*sums;
	int64_t		 covered_id;	/* as in attempt_sums_state */
	int64_t		 months_day;	/* as in attempt_sums_state */
	int64_t		 months_next;	/* sums_write()'s, until committed */
	int64_t		 counted_id;
	bool		 live;
	bool		 log_index;	/* attempts_log exists (version 5) */
	int64_t		 sums_since;	/* wall ms of the oldest pending count */

	/*
	 * The seq of each rule key of day rule_day in attempt_sums_rules
	 * (version 7), and the next one to give; INT64_MIN: no day yet.
	 */
	struct al_sums	*rule_seqs;
	int64_t		 rule_day;
	int64_t		 rule_next;
	struct rule_row	*rule_rows;	/* sums_write()'s */
	size_t		 rule_rows_cap;
	char		 err[512];
};

static void	sqlite_close(struct sink *s);
static int	sums_open(struct sink *s);

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
	if (sqlite_exec(s, schema_outbox, "cannot create central_outbox")
	    == -1)
		goto fail;
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
sqlite_prepare_rows(struct sink *s, sqlite3_stmt **st, const char *head,
    int ncols, int nrows, const char *tail)
{
	size_t len = strlen(head), tlen = strlen(tail), o;
	char *sql = malloc(len + (size_t)nrows * (2 * (size_t)ncols + 2) +
	    tlen + 1);
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
	memcpy(sql + o, tail, tlen);
	o += tlen;
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
sqlite_prepare_insert(struct sink *s, sqlite3_stmt **st, const char *head,
    int ncols, int nrows)
{
	return sqlite_prepare_rows(s, st, head, ncols, nrows, "");
}

static int
sqlite_prepare_upsert(struct sink *s, sqlite3_stmt **st, int nrows)
{
	return sqlite_prepare_rows(s, st, upsert_sum_sql, SUM_COLS, nrows,
	    upsert_sum_tail);
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
		{ &s->set_covered, set_covered_sql },
		{ &s->roll_months, roll_months_sql },
		{ &s->roll_rule_months, roll_rule_months_sql },
		{ &s->insert_rule_late, insert_rule_late_sql },
		{ &s->max_rule_seq, max_rule_seq_sql },
		{ &s->uncounted, uncounted_sql },
		{ &s->set_visit, set_visit_sql },
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
	    QUERY_COLS, SINK_SQLITE_ROWS) == -1 ||
	    sqlite_prepare_upsert(s, &s->upsert_sum, 1) == -1 ||
	    sqlite_prepare_upsert(s, &s->upsert_sums, SINK_SQLITE_ROWS) == -1 ||
	    sqlite_prepare_rows(s, &s->upsert_rule, upsert_rule_sql, RULE_COLS,
	    1, upsert_rule_tail) == -1 ||
	    sqlite_prepare_rows(s, &s->upsert_rules, upsert_rule_sql,
	    RULE_COLS, SINK_SQLITE_ROWS, upsert_rule_tail) == -1)
		return -1;
	return 0;
}

static int
sqlite_setup(struct sink *s, const char *path)
{
	char pragmas[128];
	long long has_index;

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
	if (sqlite_prepare(s) == -1)
		return -1;
	if ((has_index = sqlite_int(s, "SELECT count(*) FROM sqlite_master"
	    " WHERE type = 'index' AND name = 'attempts_log'")) < 0)
		return -1;
	s->log_index = has_index > 0;
	return sums_open(s);
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
bind_attempt(sqlite3_stmt *st, int base, const struct sink_attempt *a,
    bool visit)
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
	sqlite3_bind_int(st, base + 12, visit);
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
	void		(*bind)(struct sink *, sqlite3_stmt *, int,
			    const void *, size_t);
};

static void
bind_attempt_any(struct sink *s, sqlite3_stmt *st, int base,
    const void *row, size_t i)
{
	bind_attempt(st, base, row, s->batch_visit[i]);
}

static void
bind_query_any(struct sink *s, sqlite3_stmt *st, int base, const void *row,
    size_t i)
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
			k->bind(s, many, r * k->cols,
			    p + (i + (size_t)r) * k->size, i + (size_t)r);
		if (sqlite_step_insert(s, many, k->what) == -1)
			return -1;
	}
	for (; i < n; i++) {
		k->bind(s, one, 0, p + i * k->size, i);
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

/* The id of the batch's last attempt row, for the counts. */
static int
sqlite_write_rows(struct sink *s, const struct sink_batch *b,
    int64_t *last_id)
{
	for (size_t i = 0; i < b->ngaps; i++)
		if (sqlite_insert_gap(s, &b->gaps[i], b->now_ms) == -1)
			return -1;
	if (sqlite_insert_rows(s, &insert_attempts, s->ins_attempts,
	    s->ins_attempt, b->attempts, b->nattempts) == -1)
		return -1;
	*last_id = sqlite3_last_insert_rowid(s->db);
	return sqlite_insert_rows(s, &insert_queries, s->ins_queries,
	    s->ins_query, b->queries, b->nqueries);
}

/* ---- summaries (table attempt_sums) ---- */

/* One count to write: key m's, into period t of grain. */
struct sum_row {
	const struct al_sum	*m;
	int			 grain;
	int64_t			 t;
};

/* m's k1, k2, k3 and counts to parameters base + 1 to base + 6. */
static void
bind_key_counts(sqlite3_stmt *st, int base, const struct al_sum *m)
{
	for (int k = 0; k < 3; k++)
		sqlite3_bind_text(st, base + 1 + k, m->k[k].s,
		    (int)m->k[k].len, SQLITE_STATIC);
	sqlite3_bind_int64(st, base + 4, m->queries);
	sqlite3_bind_int64(st, base + 5, m->attempts);
	sqlite3_bind_int64(st, base + 6, m->verified);
}

static void
bind_sum(sqlite3_stmt *st, int base, const struct sum_row *r)
{
	sqlite3_bind_int(st, base + 1, r->m->kind);
	sqlite3_bind_int(st, base + 2, r->grain);
	sqlite3_bind_int64(st, base + 3, r->t);
	bind_key_counts(st, base + 3, r->m);
}

/* Write the n (at most SINK_SQLITE_ROWS) counts of rows. */
static int
sums_upsert(struct sink *s, const struct sum_row *rows, size_t n)
{
	if (n == SINK_SQLITE_ROWS) {
		for (size_t i = 0; i < n; i++)
			bind_sum(s->upsert_sums, (int)i * SUM_COLS, &rows[i]);
		return sqlite_step_insert(s, s->upsert_sums,
		    "cannot update attempt_sums");
	}
	for (size_t i = 0; i < n; i++) {
		bind_sum(s->upsert_sum, 0, &rows[i]);
		if (sqlite_step_insert(s, s->upsert_sum,
		    "cannot update attempt_sums") == -1)
			return -1;
	}
	return 0;
}

/* ---- the day rows of kind RULE (table attempt_sums_rules) ---- */

/* One of them to write: key m's counts into (t, seq); t is m->t. */
struct rule_row {
	int64_t			 t, seq;
	const struct al_sum	*m;
	uint64_t		 h;	/* m's al_sums_hash() in rule_seqs */
};

static void
bind_rule(struct sink *s, sqlite3_stmt *st, int base, const void *row,
    size_t i)
{
	const struct rule_row *r = row;

	sqlite3_bind_int64(st, base + 1, r->t);
	sqlite3_bind_int64(st, base + 2, r->seq);
	bind_key_counts(st, base + 2, r->m);
}

static const struct insert_kind upsert_rules = {
	"cannot update attempt_sums_rules", sizeof(struct rule_row),
	RULE_COLS, bind_rule,
};

/* The highest seq of day t in the table, or -1. */
static int64_t
rule_max_seq(struct sink *s, int64_t t)
{
	sqlite3_stmt *st = s->max_rule_seq;
	int64_t v = -1;

	sqlite3_bind_int64(st, 1, t);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		sink_error(s, "cannot read attempt_sums_rules");
	sqlite3_reset(st);
	return v;
}

/*
 * The seq of rule key m (of kind RULE, grain DAY): the one it was given
 * today, or the next. 0 for a key of a day before the one numbered (a
 * row late past midnight): it is written on its own. -1 on error.
 */
static int64_t
rule_seq(struct sink *s, const struct al_sum *m, uint64_t h)
{
	int64_t seq;

	if (m->t < s->rule_day)
		return 0;
	if (m->t > s->rule_day) {
		if ((seq = rule_max_seq(s, m->t)) == -1)
			return -1;
		s->rule_day = m->t;
		s->rule_next = seq + 1;
		al_sums_clear(s->rule_seqs);
	} else if (al_sums_count(s->rule_seqs) >= SINK_RULE_SEQS_MAX)
		al_sums_clear(s->rule_seqs);
	if ((seq = al_sums_number(s->rule_seqs, m, h, s->rule_next)) == -1) {
		snprintf(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	if (seq == s->rule_next)
		s->rule_next++;
	return seq;
}

static int
rule_write_late(struct sink *s, const struct al_sum *m)
{
	sqlite3_stmt *st = s->insert_rule_late;
	struct rule_row r = { m->t, 1, m, 0 };	/* the day's highest seq + 1 */

	bind_rule(s, st, 0, &r, 0);
	return sqlite_step_insert(s, st, "cannot insert into"
	    " attempt_sums_rules");
}

static int
rule_row_cmp(const void *pa, const void *pb)
{
	const struct rule_row *a = pa, *b = pb;

	/* Not through m: its entries are far apart in memory. */
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* How many keys ahead rules_write() asks for a key's slot in rule_seqs. */
#define RULE_PREFETCH	16

/*
 * The pending day counts of kind RULE, in the order of (t, seq): a new
 * key's seq is the day's next, so it lands at the table's end.
 */
static int
rules_write(struct sink *s)
{
	size_t n = al_sums_count(s->sums), n_all = 0, nr = 0;

	if (n > s->rule_rows_cap) {
		struct rule_row *r = reallocarray(s->rule_rows, n, sizeof(*r));

		if (r == NULL) {
			snprintf(s->err, sizeof(s->err), "out of memory");
			return -1;
		}
		s->rule_rows = r;
		s->rule_rows_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		const struct al_sum *m = al_sums_get(s->sums, i);

		if (al_sum_is_rule_day(m))
			s->rule_rows[n_all++] = (struct rule_row){ m->t, 0, m,
			    al_sums_hash(s->rule_seqs, m) };
	}
	for (size_t i = 0; i < n_all; i++) {
		struct rule_row *r = &s->rule_rows[i];
		int64_t seq;

		if (i + RULE_PREFETCH < n_all)
			al_sums_prefetch(s->rule_seqs,
			    s->rule_rows[i + RULE_PREFETCH].h);
		if ((seq = rule_seq(s, r->m, r->h)) == -1)
			return -1;
		if (seq == 0 && rule_write_late(s, r->m) == -1)
			return -1;
		if (seq > 0) {
			r->seq = seq;
			s->rule_rows[nr++] = *r;
		}
	}
	/* In order already unless some keys were numbered in a flush before. */
	for (size_t i = 1; i < nr; i++)
		if (rule_row_cmp(&s->rule_rows[i - 1], &s->rule_rows[i]) > 0) {
			qsort(s->rule_rows, nr, sizeof(*s->rule_rows),
			    rule_row_cmp);
			break;
		}
	return sqlite_insert_rows(s, &upsert_rules, s->upsert_rules,
	    s->upsert_rule, s->rule_rows, nr);
}

/* The day rows ?1 <= t < ?2 of every kind added to their months. */
static int
sums_roll_months(struct sink *s, int64_t from, int64_t to)
{
	sqlite3_stmt *st[] = { s->roll_months, s->roll_rule_months };

	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		sqlite3_bind_int64(st[i], 1, from);
		sqlite3_bind_int64(st[i], 2, to);
		if (sqlite_step_insert(s, st[i],
		    "cannot add the days to their months") == -1)
			return -1;
	}
	return 0;
}

/*
 * In the open transaction: the pending counts, and covered_id = to. In
 * the order of the table's key: the quarters and days, then the counts
 * of days before months_day again into their months.
 *
 * Months are written once per day, not per key and flush: when the
 * pending counts reach a day after months_day, the day rows before that
 * day are added to their months in one statement and months_day moves
 * up to it. The current day's keys then cost one UPSERT a flush, not two;
 * a late row of a day already rolled up still goes to both.
 */
static int
sums_write(struct sink *s, int64_t to)
{
	size_t n = al_sums_count(s->sums), nrows = 0;
	int64_t cut = al_sums_last_day(s->sums);
	struct sum_row rows[SINK_SQLITE_ROWS];

	s->months_next = s->months_day;
	if (n > 0 && cut > s->months_day) {
		if (sums_roll_months(s, s->months_day, cut) == -1)
			return -1;
		s->months_next = cut;
	}
	/* Unsorted, the counts are still right, only slower to write. */
	(void)al_sums_sort(s->sums);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			const struct al_sum *m = al_sums_get(s->sums, i);

			if (pass == 0 && al_sum_is_rule_day(m))
				continue;	/* rules_write()'s */
			if (pass == 0)
				rows[nrows++] = (struct sum_row){ m, m->grain,
				    m->t };
			else if (m->grain == SINK_GRAIN_DAY &&
			    m->t < s->months_next)
				rows[nrows++] = (struct sum_row){ m,
				    SINK_GRAIN_MONTH, al_sums_month(m->t) };
			if (nrows == SINK_SQLITE_ROWS) {
				if (sums_upsert(s, rows, nrows) == -1)
					return -1;
				nrows = 0;
			}
		}
	if (sums_upsert(s, rows, nrows) == -1 || rules_write(s) == -1)
		return -1;
	sqlite3_bind_int64(s->set_covered, 1, to);
	sqlite3_bind_int64(s->set_covered, 2, s->months_next);
	return sqlite_step_insert(s, s->set_covered,
	    "cannot update attempt_sums_state");
}

/* After the commit of sums_write(s, to). */
static void
sums_written(struct sink *s, int64_t to)
{
	al_sums_clear(s->sums);
	s->covered_id = to;
	s->months_day = s->months_next;
}

/*
 * Whether to write the counts now. They wait in memory at most
 * SINK_SUMS_FLUSH_MS, or SINK_SUMS_MAX_KEYS keys (sink.h), before they
 * are written (at once when the wall clock went back): an UPSERT per key
 * and flush instead of per row (and a month's per key and day, see
 * sums_write()). Reports add the rows not yet counted (id > covered_id)
 * from the table itself, so nothing is missing meanwhile, and a crash
 * loses nothing (the next open counts them again).
 *
 * Each flush writes every page its keys fall on, so when nearly every
 * row has a key of its own (a scanner probing a long list) the flushes'
 * pages, not the rows, are the writer's cost: 16,384 keys cost 10-12 us
 * of the writer a row in bench/log_throughput.sh --domains 100000
 * --clients 1, 65,536 keys about 6 us. At 65,536 a flood of 100,000
 * names at 150,000 rows/s flushed every 0.7 s, each flush rewriting the
 * day's rule pages (60-170 ms), and the queue overflowed under
 * bench/compare.sh. 131,072 keys lose no row there, and take a tenth to
 * a seventh off the writer's CPU a row in bench/log_ab.sh --domains
 * 100000 --clients 1 (0.86x and 0.92x, docs/performance.md). A key takes
 * about 150 bytes while it waits (its entry, slot and strings): at most
 * about 20 MB, a flush about a quarter of a second.
 */
static bool
sums_due(const struct sink *s, int64_t now_ms)
{
	return s->live && s->counted_id > s->covered_id &&
	    (al_sums_count(s->sums) >= SINK_SUMS_MAX_KEYS ||
	    now_ms - s->sums_since >= SINK_SUMS_FLUSH_MS ||
	    now_ms < s->sums_since);
}

/* Stop counting in memory: maintain() counts from the table instead. */
static void
sums_fall_back(struct sink *s, int64_t covered)
{
	al_sums_clear(s->sums);
	s->live = false;
	s->covered_id = s->counted_id = covered;
}

/* How many rows ahead batch_visits() asks for a row's visit slot. */
#define VISIT_PREFETCH	16

/* Which of the batch's rows start an attempt, into s->batch_visit. */
static int
batch_visits(struct sink *s, const struct sink_batch *b)
{
	if (b->nattempts > s->batch_visit_cap) {
		uint8_t *n = realloc(s->batch_visit, b->nattempts);
		struct al_row_hash *k = reallocarray(s->batch_hash,
		    b->nattempts, sizeof(*k));

		if (n != NULL)
			s->batch_visit = n;
		if (k != NULL)
			s->batch_hash = k;
		if (n == NULL || k == NULL) {
			snprintf(s->err, sizeof(s->err), "out of memory");
			return -1;
		}
		s->batch_visit_cap = b->nattempts;
	}
	for (size_t i = 0; i < b->nattempts; i++) {
		const struct sink_attempt *a = &b->attempts[i];

		al_sums_row_hash(s->sums, a, &s->batch_hash[i]);
		if (i < VISIT_PREFETCH)
			al_visits_prefetch(s->visits, s->batch_hash[i].visit);
	}
	for (size_t i = 0; i < b->nattempts; i++) {
		int r;

		if (i + VISIT_PREFETCH < b->nattempts)
			al_visits_prefetch(s->visits,
			    s->batch_hash[i + VISIT_PREFETCH].visit);
		r = al_visits_step(s->visits, s->batch_hash[i].visit,
		    b->attempts[i].ts_ms);
		if (r == -1) {
			snprintf(s->err, sizeof(s->err), "out of memory");
			return -1;
		}
		s->batch_visit[i] = (uint8_t)r;
	}
	return 0;
}

/* The batch is committed as rows first_id .. last_id: count them. */
static void
sums_count_batch(struct sink *s, const struct sink_batch *b,
    int64_t last_id)
{
	int64_t first_id = last_id - (int64_t)b->nattempts + 1;

	if (!s->live || b->nattempts == 0)
		return;
	if (first_id != s->counted_id + 1) {
		/* Another writer, or ids reused after every row expired. */
		sums_fall_back(s, first_id <= s->covered_id ? first_id - 1 :
		    s->covered_id);
		return;
	}
	if (s->counted_id == s->covered_id)
		s->sums_since = b->now_ms;
	if (al_sums_add_batch(s->sums, b->attempts, s->batch_hash,
	    s->batch_visit, b->nattempts) == -1) {
		sums_fall_back(s, s->covered_id);
		return;
	}
	s->counted_id = last_id;
}

static int
sqlite_write_batch(struct sink *s, const struct sink_batch *b)
{
	int64_t last_id = 0;
	bool flush;

	s->err[0] = '\0';
	/* On failure the writer closes the sink: the next open starts the
	 * visits and counts again from the file. */
	if (batch_visits(s, b) == -1 || sqlite_begin(s) == -1)
		return -1;
	flush = sums_due(s, b->now_ms);
	if ((!flush || sums_write(s, s->counted_id) == 0) &&
	    sqlite_write_rows(s, b, &last_id) == 0 &&
	    sqlite_exec(s, "COMMIT", "cannot commit") == 0) {
		if (flush)
			sums_written(s, s->counted_id);
		sums_count_batch(s, b, last_id);
		return 0;
	}
	/* A failed COMMIT may already have rolled back. */
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Load v with the last time of each (client, rule) that sql returns. */
static int
visits_seed(struct sink *s, struct al_visits *v, const char *sql,
    int64_t param)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		sink_error(s, "cannot read recent rows");
		return -1;
	}
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, param);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sink_str c = { (const char *)sqlite3_column_text(st, 0),
		    (size_t)sqlite3_column_bytes(st, 0) };
		struct sink_str r = { (const char *)sqlite3_column_text(st, 1),
		    (size_t)sqlite3_column_bytes(st, 1) };

		if (c.s == NULL || r.s == NULL)
			continue;
		if (al_visits_step(v, al_visits_key(v, c, r),
		    sqlite3_column_int64(st, 2)) == -1) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(s->err, sizeof(s->err), "cannot read recent rows: %s",
		    rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

/* At open: where the counts stand, and the last minute's visits. */
static int
sums_open(struct sink *s)
{
	long long covered, max_id, months;

	s->rule_day = INT64_MIN;
	if ((s->visits = al_visits_new()) == NULL ||
	    (s->sums = al_sums_new()) == NULL ||
	    (s->rule_seqs = al_sums_new()) == NULL) {
		snprintf(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	covered = sqlite_int(s, "SELECT covered_id FROM attempt_sums_state");
	max_id = sqlite_int(s, "SELECT coalesce(max(id), 0) FROM attempts");
	months = sqlite_int(s, "SELECT months_day FROM attempt_sums_state");
	if (covered < 0 || max_id < 0 || months < 0)
		return -1;
	s->months_day = s->months_next = months;
	s->live = covered == max_id;
	/* Every row expired and ids begin again: maintain() writes it. */
	if (covered > max_id)
		covered = max_id;
	s->covered_id = s->counted_id = covered;
	return visits_seed(s, s->visits, "SELECT client, rule, max(ts) FROM"
	    " attempts WHERE ts >= (SELECT max(ts) FROM attempts) - "
	    SINK_XSTR(SINK_VISIT_GAP_MS) " GROUP BY client, rule", 0);
}

/* Column i of st as a sink_str (NULL stays NULL). */
static struct sink_str
column_str(sqlite3_stmt *st, int i)
{
	struct sink_str v = { (const char *)sqlite3_column_text(st, i), 0 };

	v.len = (size_t)sqlite3_column_bytes(st, i);
	return v;
}

struct visit_fix {
	int64_t		id;
	int		visit;
};

/*
 * Count up to max_rows rows after covered_id from the table, deciding
 * the visit of rows an upgrade left without one; *last: the last id read.
 */
static int
sums_read_rows(struct sink *s, unsigned max_rows, struct visit_fix *fix,
    size_t *nfix, int64_t *last, unsigned *nread)
{
	sqlite3_stmt *st = s->uncounted;
	int rc;

	sqlite3_bind_int64(st, 1, s->covered_id);
	sqlite3_bind_int64(st, 2, max_rows);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sink_attempt a = {
			.ts_ms = sqlite3_column_int64(st, 1),
			.client = column_str(st, 2),
			.client_name = column_str(st, 3),
			.rule = column_str(st, 4),
			.category = column_str(st, 5),
			.site = column_str(st, 6),
			.verified = sqlite3_column_int(st, 7) != 0,
			.policy = column_str(st, 8),
		};
		int v = al_visits_step(s->old_visits, al_visits_key(
		    s->old_visits, a.client, a.rule), a.ts_ms);

		*last = sqlite3_column_int64(st, 0);
		if (v == -1)
			break;
		if (sqlite3_column_type(st, 9) == SQLITE_NULL) {
			fix[*nfix].id = *last;
			fix[(*nfix)++].visit = v;
		} else
			v = sqlite3_column_int(st, 9) != 0;
		if (al_sums_add(s->sums, &a, v) == -1)
			break;
		(*nread)++;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		snprintf(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	if (rc != SQLITE_DONE) {
		sink_error(s, "cannot read attempts");
		return -1;
	}
	return 0;
}

static int
sums_fix_visits(struct sink *s, const struct visit_fix *fix, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(s->set_visit, 1, fix[i].id);
		sqlite3_bind_int(s->set_visit, 2, fix[i].visit);
		if (sqlite_step_insert(s, s->set_visit,
		    "cannot update attempts") == -1)
			return -1;
	}
	return 0;
}

/* One step of counting rows from the table; the rows left after it. */
static long
sums_catch_up(struct sink *s, unsigned max_rows)
{
	struct visit_fix *fix = calloc(max_rows ? max_rows : 1, sizeof(*fix));
	int64_t last = s->covered_id;
	unsigned nread = 0;
	size_t nfix = 0;
	long long left = -1;

	if (fix == NULL) {
		snprintf(s->err, sizeof(s->err), "out of memory");
		return -1;
	}
	if (sqlite_begin(s) == -1)
		goto fail;
	if (s->old_visits == NULL) {
		if ((s->old_visits = al_visits_new()) == NULL) {
			snprintf(s->err, sizeof(s->err), "out of memory");
			goto fail;
		}
		if (visits_seed(s, s->old_visits, "SELECT client, rule,"
		    " max(ts) FROM attempts WHERE id <= ?1 AND ts >= (SELECT ts"
		    " FROM attempts WHERE id > ?1 ORDER BY id LIMIT 1) - "
		    SINK_XSTR(SINK_VISIT_GAP_MS) " GROUP BY client, rule",
		    s->covered_id) == -1)
			goto fail;
	}
	if (sums_read_rows(s, max_rows, fix, &nfix, &last, &nread) == -1 ||
	    sums_fix_visits(s, fix, nfix) == -1 || sums_write(s, last) == -1)
		goto fail;
	left = sqlite_int(s, "SELECT coalesce(max(id), 0) FROM attempts");
	if (left < 0 || sqlite_exec(s, "COMMIT", "cannot commit") == -1)
		goto fail;
	free(fix);
	sums_written(s, last);
	left = left > last ? left - last : 0;
	if (nread < max_rows) {
		/* Up to date: from now on the writer counts as it writes. */
		s->live = true;
		s->counted_id = last;
		al_visits_free(s->old_visits);
		s->old_visits = NULL;
		left = 0;
	}
	return (long)left;
fail:
	free(fix);
	/* The counts and visits read are gone with the transaction. */
	al_sums_clear(s->sums);
	al_visits_free(s->old_visits);
	s->old_visits = NULL;
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * After the upgrade to version 5: index attempts_log in one transaction
 * (9 s at ten million rows; rows wait in the queue meanwhile), and drop
 * attempts_ts, which it replaces, in the same one: the new index reuses
 * its pages, and no file ever has neither.
 */
static long
log_index_build(struct sink *s)
{
	long long rows;
	int64_t t0;

	if (sqlite_begin(s) == -1)
		return -1;
	rows = sqlite_int(s, "SELECT coalesce(max(id), 0) FROM attempts");
	log_info("attempt log: indexing the rows for log --client (index"
	    " attempts_log, about %lld rows, once after the upgrade to"
	    " version 5); new rows wait in the queue meanwhile", rows);
	t0 = now_ms_monotonic();
	if (rows < 0 || sqlite_exec(s, "DROP INDEX IF EXISTS attempts_ts;"
	    LOG_INDEX, "cannot create index attempts_log") == -1 ||
	    sqlite_exec(s, "COMMIT", "cannot commit") == -1) {
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	log_info("attempt log: index attempts_log built in %.1f s",
	    (double)(now_ms_monotonic() - t0) / 1000);
	s->log_index = true;
	return 0;
}

static long
sqlite_maintain(struct sink *s, unsigned max_rows, int64_t now_ms)
{
	s->err[0] = '\0';
	/* The index, then at once the first step of counting. */
	if (!s->log_index && log_index_build(s) == -1)
		return -1;
	if (!s->live)
		return sums_catch_up(s, max_rows);
	if (!sums_due(s, now_ms))
		return 0;
	if (sqlite_begin(s) == -1)
		return -1;
	if (sums_write(s, s->counted_id) == 0 &&
	    sqlite_exec(s, "COMMIT", "cannot commit") == 0) {
		sums_written(s, s->counted_id);
		return 0;
	}
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Retention of the counts, in the transaction deleting the rows before
 * day (Unix s, a UTC day's start): the days and quarters before it go,
 * and so do the months; the month that day is in keeps the counts of its
 * days from day on. Run again, it finds nothing more to do.
 */
static int
sums_expire(struct sink *s, int64_t day)
{
	long long d = day, m = al_sums_month(day);
	/* The month row counts only its days before months_day. */
	long long upto = s->months_next < d ? s->months_next : d;
	char sql[2048];

#define KINDS	SINK_XSTR(SINK_SUM_CLIENT) ", " SINK_XSTR(SINK_SUM_RULE) ", " \
		SINK_XSTR(SINK_SUM_POLICY)
	snprintf(sql, sizeof(sql),
	    "UPDATE attempt_sums AS m SET queries = m.queries - d.q,"
	    " attempts = m.attempts - d.a, verified = m.verified - d.v"
	    " FROM (SELECT kind, k1, k2, k3, sum(queries) AS q,"
	    " sum(attempts) AS a, sum(verified) AS v FROM attempt_sums"
	    " WHERE kind IN (" KINDS ") AND grain = %d AND t >= %lld AND"
	    " t < %lld GROUP BY kind, k1, k2, k3 UNION ALL SELECT %d, k1, k2,"
	    " k3, sum(queries), sum(attempts), sum(verified) FROM"
	    " attempt_sums_rules WHERE t >= %lld AND t < %lld GROUP BY k1, k2,"
	    " k3) AS d WHERE m.kind = d.kind"
	    " AND m.grain = %d AND m.t = %lld AND m.k1 = d.k1 AND m.k2 = d.k2"
	    " AND m.k3 = d.k3;"
	    "DELETE FROM attempt_sums WHERE kind IN (" KINDS ") AND grain = %d"
	    " AND t = %lld AND queries <= 0;"
	    "DELETE FROM attempt_sums WHERE kind IN (" KINDS ") AND grain = %d"
	    " AND t < %lld;"
	    "DELETE FROM attempt_sums WHERE kind IN (" KINDS ") AND grain = %d"
	    " AND t < %lld;"
	    "DELETE FROM attempt_sums WHERE kind = %d AND grain = %d"
	    " AND t < %lld;"
	    "DELETE FROM attempt_sums_rules WHERE t < %lld;",
	    SINK_GRAIN_DAY, m, upto, SINK_SUM_RULE, m, upto,
	    SINK_GRAIN_MONTH, m, SINK_GRAIN_MONTH, m, SINK_GRAIN_DAY, d,
	    SINK_GRAIN_MONTH, m,
	    SINK_SUM_TIME, SINK_GRAIN_QUARTER, d, d);
#undef KINDS
	return sqlite_exec(s, sql, "cannot delete expired counts");
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

/* Say when retention kept rows back because they are not shipped yet. */
static void
outbox_held(struct sink *s, int64_t before_ms)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(s->db, outbox_held_sql, -1, &st, NULL) !=
	    SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, before_ms);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
		log_warnx("attempt log: retention keeps %lld rows past their"
		    " time: not yet shipped to the central database"
		    " (instance %s)", (long long)sqlite3_column_int64(st, 0),
		    (const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
}

/*
 * Rows go by whole UTC days (before the day before_ms is in), so that
 * the counts of a day and its rows go together.
 */
static long
sqlite_expire(struct sink *s, int64_t before_ms, unsigned max_rows)
{
	int64_t day = al_sums_day(before_ms / 1000);
	bool flush = s->live && s->counted_id > s->covered_id;
	long n, total = 0;

	s->err[0] = '\0';
	before_ms = day * 1000;
	s->months_next = s->months_day;
	if (sqlite_begin(s) == -1)
		return -1;
	/* Pending counts first: they may hold rows of the days going. */
	if ((flush && sums_write(s, s->counted_id) == -1) ||
	    sums_expire(s, day) == -1)
		goto fail;
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
	if (flush)
		sums_written(s, s->counted_id);
	if (total < (long)max_rows)
		outbox_held(s, before_ms);
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
	/* The pending counts, or the next open counts their rows again. */
	if (s->db != NULL && s->sums != NULL && s->live &&
	    s->counted_id > s->covered_id && sqlite_begin(s) == 0) {
		if (sums_write(s, s->counted_id) == 0)
			sqlite_exec(s, "COMMIT", "cannot commit");
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
	al_visits_free(s->visits);
	al_visits_free(s->old_visits);
	al_sums_free(s->sums);
	al_sums_free(s->rule_seqs);
	free(s->rule_rows);
	free(s->batch_visit);
	free(s->batch_hash);
	sqlite3_finalize(s->upsert_sum);
	sqlite3_finalize(s->upsert_sums);
	sqlite3_finalize(s->set_covered);
	sqlite3_finalize(s->roll_months);
	sqlite3_finalize(s->roll_rule_months);
	sqlite3_finalize(s->upsert_rule);
	sqlite3_finalize(s->upsert_rules);
	sqlite3_finalize(s->insert_rule_late);
	sqlite3_finalize(s->max_rule_seq);
	sqlite3_finalize(s->uncounted);
	sqlite3_finalize(s->set_visit);
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
	.maintain = sqlite_maintain,
	.error = sqlite_error,
	.close = sqlite_close,
};
