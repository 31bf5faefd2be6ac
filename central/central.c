/*
 * central: the shipper thread. See central.h.
 *
 * One loop: connect (and lock the instance), read the next rows after
 * the high-water mark from the local file, send them with COPY into a
 * temporary table and move them into dnswarden_attempts with ON CONFLICT
 * DO NOTHING and the new mark in the same transaction; on any failure
 * drop the connection, say why once, and try again after a backoff. The
 * DNS threads never see any of it: they only append to the attempt log.
 */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "central.h"
#include "central_internal.h"
#include "clock.h"
#include "log.h"

#define CENTRAL_BATCH		20000	/* rows per transaction at most */
#define CENTRAL_POLL_MS		200	/* looking for new rows when idle */
#define CENTRAL_MARK_MS		1000	/* local mark written this often */
#define CENTRAL_BUSY_MS		1000

enum central_state {
	ST_START,		/* no attempt yet */
	ST_UP,			/* connected, shipping */
	ST_DOWN,		/* cannot connect, or a batch failed */
	ST_TAKEN,		/* another daemon ships as this instance */
};

struct central {
	pthread_t		 thr;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cv;
	bool			 stop;
	bool			 first_done;	/* first connection tried */
	int			 first_rc;
	char			 first_err[512];
	struct central_stats	 st;

	/* The thread's own, from here on. */
	char			*conninfo, *instance, *db_path;
	char			 app[256];	/* PostgreSQL keeps 63 bytes */
	sqlite3			*ro, *rw;
	sqlite3_stmt		*sel, *maxid, *oldest, *setmark;
	PGconn			*pg;
	enum central_state	 state;
	char			 cause[512];
	unsigned		 failures;
	int64_t			 hwm;		/* last id shipped */
	int64_t			 local_mark;	/* as written locally */
	int64_t			 mark_at;	/* mono ms of that write */
	int64_t			 part_from, part_to; /* months made (s) */
	char			*buf;
	size_t			 len, cap;
	char			 insert_sql[3072];
};

int64_t
central_backoff_ms(unsigned failures)
{
	int64_t ms = CENTRAL_BACKOFF_MIN_MS;

	for (unsigned i = 1; i < failures && ms < CENTRAL_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < CENTRAL_BACKOFF_MAX_MS ? ms : CENTRAL_BACKOFF_MAX_MS;
}

/* ---- the local file ---- */

static int
local_open(struct central *c, char *err, size_t errlen)
{
	static const char sel[] = "SELECT id, ts, client, client_name, qname,"
	    " qtype, rule, category, site, transport, verified, policy, visit"
	    " FROM attempts WHERE id > ?1 ORDER BY id LIMIT ?2";

	if (sqlite3_open_v2(c->db_path, &c->ro, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_open_v2(c->db_path, &c->rw, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", c->db_path, c->rw ?
		    sqlite3_errmsg(c->rw) : c->ro ? sqlite3_errmsg(c->ro) :
		    "out of memory");
		return -1;
	}
	sqlite3_busy_timeout(c->ro, CENTRAL_BUSY_MS);
	sqlite3_busy_timeout(c->rw, CENTRAL_BUSY_MS);
	if (sqlite3_prepare_v2(c->ro, sel, -1, &c->sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->ro, "SELECT coalesce(max(id), 0) FROM"
	    " attempts", -1, &c->maxid, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->ro, "SELECT ts FROM attempts WHERE id > ?1"
	    " ORDER BY id LIMIT 1", -1, &c->oldest, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->rw, "INSERT INTO central_outbox (instance,"
	    " shipped_id) VALUES (?1, ?2) ON CONFLICT (instance) DO UPDATE"
	    " SET shipped_id = excluded.shipped_id", -1, &c->setmark, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", c->db_path,
		    sqlite3_errmsg(c->rw));
		return -1;
	}
	return 0;
}

/* The mark kept in the local file; 0 when none. */
static int64_t
local_mark_read(struct central *c)
{
	sqlite3_stmt *st;
	int64_t v = 0;

	if (sqlite3_prepare_v2(c->ro, "SELECT shipped_id FROM central_outbox"
	    " WHERE instance = ?1", -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, c->instance, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * Write the mark locally, at most once a second unless forced: the
 * attempt log's writer shares the file's write lock. A mark that lags
 * costs only rows sent twice, which the central key drops.
 */
static void
local_mark_write(struct central *c, bool force)
{
	int64_t now = (int64_t)now_ms_monotonic();

	if (c->hwm == c->local_mark || (!force && now - c->mark_at <
	    CENTRAL_MARK_MS))
		return;
	sqlite3_bind_text(c->setmark, 1, c->instance, -1, SQLITE_STATIC);
	sqlite3_bind_int64(c->setmark, 2, c->hwm);
	if (sqlite3_step(c->setmark) == SQLITE_DONE) {
		c->local_mark = c->hwm;
		c->mark_at = now;
	}
	sqlite3_reset(c->setmark);
}

static int64_t
local_int(sqlite3_stmt *st, int64_t arg, int64_t dflt)
{
	int64_t v = dflt;

	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, arg);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return v;
}

/* waiting and behind_s from the file, for the counters. */
static void
stats_update(struct central *c)
{
	int64_t max = local_int(c->maxid, 0, 0);
	int64_t oldest = local_int(c->oldest, c->hwm, -1);
	int64_t now = now_ms_wall();

	pthread_mutex_lock(&c->mtx);
	c->st.waiting = max > c->hwm ? (uint64_t)(max - c->hwm) : 0;
	c->st.behind_s = oldest >= 0 && now > oldest ?
	    (uint64_t)((now - oldest) / 1000) : 0;
	c->st.connected = c->state == ST_UP;
	pthread_mutex_unlock(&c->mtx);
}

/* ---- states: one log line each time it changes ---- */

static void
state_set(struct central *c, enum central_state s, const char *cause)
{
	if (c->state == s && (cause == NULL || strcmp(cause, c->cause) == 0))
		return;
	switch (s) {
	case ST_UP:
		log_info("central: shipping to %s@%s:%s as instance \"%s\""
		    " from id %" PRId64, PQdb(c->pg), PQhost(c->pg),
		    PQport(c->pg), c->instance, c->hwm + 1);
		break;
	case ST_DOWN:
		log_warnx("central: %s; rows wait in the local file and"
		    " follow when it works again", cause);
		break;
	case ST_TAKEN:
		/* At start-up central_start()'s caller says it, and stops. */
		if (c->state != ST_START)
			log_warnx("central: %s", cause);
		break;
	case ST_START:
		break;
	}
	c->state = s;
	snprintf(c->cause, sizeof(c->cause), "%s", cause ? cause : "");
}

/* ---- PostgreSQL ---- */

static void	first_done(struct central *, int, const char *);
static bool	stopping(struct central *);
static void	stats_update(struct central *);

/* While waiting for a lock: the counters kept fresh, and a stop seen. */
static bool
waiting_cb(void *arg)
{
	stats_update(arg);
	return stopping(arg);
}

/* Which session holds the instance's lock key, for the message. */
static void
lock_holder(struct central *c, const char *key, char *out, size_t len)
{
	const char *params[1] = { key };
	PGresult *res = PQexecParams(c->pg, "SELECT a.application_name,"
	    " coalesce(host(a.client_addr), 'a local socket') FROM pg_locks l"
	    " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype ="
	    " 'advisory' AND l.granted AND l.objsubid = 1 AND"
	    " l.classid::bigint = (($1::bigint >> 32) & 4294967295) AND"
	    " l.objid::bigint = ($1::bigint & 4294967295) LIMIT 1", 1, NULL,
	    params, NULL, NULL, 0);

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(out, len, " (\"%s\" from %s)", PQgetvalue(res, 0, 0),
		    PQgetvalue(res, 0, 1));
	else
		out[0] = '\0';
	PQclear(res);
}

/*
 * One session per instance: a session advisory lock on a hash of the
 * instance name, freed by PostgreSQL when the session ends (a daemon
 * killed included). Returns 0, -1 (err), or 1 when another holds it.
 */
static int
instance_lock(struct central *c, char *err, size_t errlen)
{
	const char *params[1] = { c->instance };
	char key[32], who[256];
	PGresult *res;
	int rc;

	res = PQexecParams(c->pg, "SELECT hashtextextended('dnswarden ' ||"
	    " $1, 0)", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		central_pg_error(c->pg, "cannot lock the instance", err, errlen);
		PQclear(res);
		return -1;
	}
	snprintf(key, sizeof(key), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	params[0] = key;
	res = PQexecParams(c->pg, "SELECT pg_try_advisory_lock($1::bigint)",
	    1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		central_pg_error(c->pg, "cannot lock the instance", err, errlen);
		PQclear(res);
		return -1;
	}
	rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? 0 : 1;
	PQclear(res);
	if (rc == 1) {
		lock_holder(c, key, who, sizeof(who));
		snprintf(err, errlen, "another dnswarden already ships as"
		    " instance \"%s\" to this database%s: give each daemon its"
		    " own log.central.instance", c->instance, who);
	}
	return rc;
}

/* The mark kept centrally; 0 when none, -1 on error. */
static int64_t
central_mark_read(struct central *c, char *err, size_t errlen)
{
	const char *params[1] = { c->instance };
	PGresult *res = PQexecParams(c->pg, "SELECT shipped_id FROM"
	    " dnswarden_instances WHERE instance = $1", 1, NULL, params, NULL,
	    NULL, 0);
	int64_t v = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		central_pg_error(c->pg, "cannot read the central mark", err,
		    errlen);
		v = -1;
	} else if (PQntuples(res) == 1)
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static void
pg_drop(struct central *c)
{
	PQfinish(c->pg);
	c->pg = NULL;
	c->part_from = c->part_to = 0;
}

/*
 * Connect, lock the instance, make the tables and find where to resume:
 * the smaller of the two marks. Returns 0, -1 (err) or 1 (taken).
 */
static int
pg_session(struct central *c, char *err, size_t errlen)
{
	int64_t central_mark, local;
	PGresult *res;
	int rc;

	if ((c->pg = central_connect(c->conninfo, c->app)) == NULL ||
	    PQstatus(c->pg) != CONNECTION_OK) {
		central_pg_error(c->pg, "cannot connect to the central"
		    " database", err, errlen);
		pg_drop(c);
		return -1;
	}
	if ((rc = instance_lock(c, err, errlen)) == 0)
		/*
		 * The instance is ours: the start need not wait for the
		 * rest, which another session's locks may hold up.
		 */
		first_done(c, 0, "");
	if (rc != 0 || central_schema_ensure(c->pg, waiting_cb, c, err,
	    errlen) == -1 ||
	    (central_mark = central_mark_read(c, err, errlen)) < 0) {
		pg_drop(c);
		return rc == 1 ? 1 : -1;
	}
	res = PQexec(c->pg, "CREATE TEMP TABLE dw_batch (id bigint, ts_ms"
	    " bigint, client text, client_name text, qname text, qtype text,"
	    " rule text, category text, site text, transport text, verified"
	    " boolean, policy text, visit boolean) ON COMMIT DELETE ROWS");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		central_pg_error(c->pg, "cannot create the batch table", err,
		    errlen);
		PQclear(res);
		pg_drop(c);
		return -1;
	}
	PQclear(res);
	local = local_mark_read(c);
	c->hwm = local < central_mark ? local : central_mark;
	c->local_mark = local;
	return 0;
}

/* ---- one batch ---- */

static int
buf_add(struct central *c, const char *s, size_t n)
{
	if (c->len + n > c->cap) {
		size_t ncap = c->cap ? c->cap : 1 << 20;
		char *nb;

		while (ncap < c->len + n)
			ncap *= 2;
		if ((nb = realloc(c->buf, ncap)) == NULL)
			return -1;
		c->buf = nb;
		c->cap = ncap;
	}
	memcpy(c->buf + c->len, s, n);
	c->len += n;
	return 0;
}

/* One field of COPY's text format: \N for NULL, escapes for the rest. */
static int
copy_field(struct central *c, sqlite3_stmt *st, int col, bool boolean,
    char end)
{
	const unsigned char *v = sqlite3_column_text(st, col);
	char esc[2] = { '\\', 0 };
	size_t from = 0, i;

	if (v == NULL)
		return buf_add(c, "\\N", 2) || buf_add(c, &end, 1) ? -1 : 0;
	if (boolean)
		return buf_add(c, sqlite3_column_int(st, col) ? "t" : "f", 1) ||
		    buf_add(c, &end, 1) ? -1 : 0;
	for (i = 0; v[i] != '\0'; i++) {
		switch (v[i]) {
		case '\\': esc[1] = '\\'; break;
		case '\t': esc[1] = 't'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		default: continue;
		}
		if (buf_add(c, (const char *)v + from, i - from) == -1 ||
		    buf_add(c, esc, 2) == -1)
			return -1;
		from = i + 1;
	}
	if (buf_add(c, (const char *)v + from, i - from) == -1)
		return -1;
	return buf_add(c, &end, 1);
}

/*
 * The next rows after the mark, as COPY text in c->buf. Returns the
 * number read (0: none), or -1 (err); last id and the ts range to *last,
 * *ts_min, *ts_max.
 */
static long
batch_read(struct central *c, int64_t *last, int64_t *ts_min,
    int64_t *ts_max, char *err, size_t errlen)
{
	static const bool boolean[13] = { [10] = true, [12] = true };
	long n = 0;
	int rc;

	c->len = 0;
	sqlite3_bind_int64(c->sel, 1, c->hwm);
	sqlite3_bind_int(c->sel, 2, CENTRAL_BATCH);
	while ((rc = sqlite3_step(c->sel)) == SQLITE_ROW) {
		int64_t ts = sqlite3_column_int64(c->sel, 1);

		for (int col = 0; col < 13; col++)
			if (copy_field(c, c->sel, col, boolean[col],
			    col == 12 ? '\n' : '\t') == -1) {
				sqlite3_reset(c->sel);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
		*last = sqlite3_column_int64(c->sel, 0);
		if (n == 0 || ts < *ts_min)
			*ts_min = ts;
		if (n == 0 || ts > *ts_max)
			*ts_max = ts;
		n++;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "cannot read %s: %s", c->db_path,
		    sqlite3_errmsg(c->ro));
		n = -1;
	}
	sqlite3_reset(c->sel);	/* ends the read: the WAL may move on */
	return n;
}

static bool
stopping(struct central *c)
{
	bool stop;

	pthread_mutex_lock(&c->mtx);
	stop = c->stop;
	pthread_mutex_unlock(&c->mtx);
	return stop;
}

/*
 * The next result of the command sent, waiting for it in steps of 500 ms
 * that keep the counters fresh (a slow or locked database holds only this
 * thread, and the counters still show the rows piling up) and notice a
 * stop (the command is then cancelled, and NULL returned).
 */
static PGresult *
pg_next(struct central *c)
{
	struct pollfd pfd = { .fd = PQsocket(c->pg), .events = POLLIN };

	while (PQisBusy(c->pg)) {
		int rc = poll(&pfd, 1, 500);

		if (rc == 0) {
			stats_update(c);
			if (stopping(c)) {
				PGcancel *cn = PQgetCancel(c->pg);
				char e[256];

				if (cn != NULL) {
					PQcancel(cn, e, sizeof(e));
					PQfreeCancel(cn);
				}
				return NULL;
			}
			continue;
		}
		if (rc < 0 || PQconsumeInput(c->pg) == 0)
			break;
	}
	return PQgetResult(c->pg);
}

/* Send a command and wait for its (last) result, like PQexecParams. */
static PGresult *
pg_exec(struct central *c, const char *sql, int n, const char *const *params)
{
	PGresult *res, *last = NULL;

	if (!PQsendQueryParams(c->pg, sql, n, NULL, params, NULL, NULL, 0))
		return NULL;
	while ((res = pg_next(c)) != NULL) {
		PQclear(last);
		last = res;
		if (PQresultStatus(res) == PGRES_COPY_IN)
			break;
	}
	return last;
}

static int
pg_ok(struct central *c, PGresult *res, const char *what, char *err,
    size_t errlen)
{
	ExecStatusType s = PQresultStatus(res);

	PQclear(res);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return 0;
	central_pg_error(c->pg, what, err, errlen);
	return -1;
}

/*
 * The batch's rows into dnswarden_attempts, and the summaries of those
 * that were new (a retry's copies are not counted twice) into
 * dnswarden_sums, in one statement.
 */
static void
insert_sql_make(struct central *c)
{
	static const char head[] = "WITH ins AS (INSERT INTO"
	    " dnswarden_attempts SELECT $1, id, timestamptz 'epoch' + ts_ms *"
	    " interval '1 millisecond', client, client_name, qname, qtype,"
	    " rule, category, site, transport, verified, policy, visit FROM"
	    " dw_batch ON CONFLICT DO NOTHING RETURNING instance, ts, client,"
	    " client_name, rule, category, site, policy, verified, visit) ";
	int n = snprintf(c->insert_sql, sizeof(c->insert_sql), "%s", head);

	snprintf(c->insert_sql + n, sizeof(c->insert_sql) - (size_t)n,
	    central_sums_sql, "ins");
}

/* c->buf into the central table and the new mark, one transaction. */
static int
batch_send(struct central *c, int64_t last, char *err, size_t errlen)
{
	char lastbuf[32];
	const char *params[2] = { c->instance, lastbuf };
	PGresult *res;

	snprintf(lastbuf, sizeof(lastbuf), "%" PRId64, last);
	if (pg_ok(c, pg_exec(c, "BEGIN", 0, NULL), "cannot begin", err,
	    errlen))
		return -1;
	res = pg_exec(c, "COPY dw_batch FROM STDIN", 0, NULL);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		pg_ok(c, res, "cannot copy", err, errlen);
		goto fail;
	}
	PQclear(res);
	if (PQputCopyData(c->pg, c->buf, (int)c->len) != 1 ||
	    PQputCopyEnd(c->pg, NULL) != 1) {
		central_pg_error(c->pg, "cannot copy", err, errlen);
		goto fail;
	}
	if (pg_ok(c, pg_next(c), "cannot copy", err, errlen) == -1)
		goto fail;
	while ((res = pg_next(c)) != NULL)
		PQclear(res);
	if (pg_ok(c, pg_exec(c, c->insert_sql, 1, params), "cannot insert",
	    err, errlen) == -1 ||
	    pg_ok(c, pg_exec(c, "INSERT INTO dnswarden_instances"
	    " (instance, shipped_id) VALUES ($1, $2) ON CONFLICT (instance)"
	    " DO UPDATE SET shipped_id = excluded.shipped_id, shipped_at ="
	    " now()", 2, params),
	    "cannot store the mark", err, errlen) == -1 ||
	    pg_ok(c, pg_exec(c, "COMMIT", 0, NULL), "cannot commit", err,
	    errlen) == -1)
		goto fail;
	return 0;
fail:
	if (PQstatus(c->pg) == CONNECTION_OK && !stopping(c))
		PQclear(PQexec(c->pg, "ROLLBACK"));
	return -1;
}

/* Ship the next batch: rows shipped (0: none waited), or -1 (err). */
static long
batch_ship(struct central *c, char *err, size_t errlen)
{
	int64_t last = 0, ts_min = 0, ts_max = 0;
	long n;

	if ((n = batch_read(c, &last, &ts_min, &ts_max, err, errlen)) <= 0)
		return n;
	if (ts_min / 1000 < c->part_from || ts_max / 1000 >= c->part_to) {
		if (central_partitions_ensure(c->pg, ts_min, ts_max, err,
		    errlen) == -1)
			return -1;
		c->part_from = central_month_start(ts_min, 0);
		c->part_to = central_month_start(ts_max, 2);
	}
	if (batch_send(c, last, err, errlen) == -1)
		return -1;
	c->hwm = last;
	pthread_mutex_lock(&c->mtx);
	c->st.shipped += (uint64_t)n;
	pthread_mutex_unlock(&c->mtx);
	local_mark_write(c, false);
	return n;
}

/* ---- the thread ---- */

/* Wait ms or until stopped, keeping the counters fresh. True: stop. */
static bool
central_wait(struct central *c, int64_t ms)
{
	int64_t end = (int64_t)now_ms_monotonic() + ms;
	bool stop;

	for (;;) {
		int64_t left = end - (int64_t)now_ms_monotonic();
		struct timespec ts;

		stats_update(c);
		pthread_mutex_lock(&c->mtx);
		if (!c->stop && left > 0) {
			left = left < 500 ? left : 500;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += left / 1000;
			ts.tv_nsec += (left % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c->cv, &c->mtx, &ts);
		}
		stop = c->stop;
		pthread_mutex_unlock(&c->mtx);
		if (stop || (int64_t)now_ms_monotonic() >= end)
			return stop;
	}
}

static void
first_done(struct central *c, int rc, const char *err)
{
	pthread_mutex_lock(&c->mtx);
	if (!c->first_done) {
		c->first_done = true;
		c->first_rc = rc;
		snprintf(c->first_err, sizeof(c->first_err), "%s", err);
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mtx);
}

/* Connect when not connected. Returns 0 (connected), else -1. */
static int
central_ensure(struct central *c)
{
	char err[512];
	int rc;

	if (c->pg != NULL)
		return 0;
	rc = pg_session(c, err, sizeof(err));
	first_done(c, rc, err);
	if (rc == 0) {
		c->failures = 0;
		state_set(c, ST_UP, NULL);
		return 0;
	}
	c->failures++;
	state_set(c, rc == 1 ? ST_TAKEN : ST_DOWN, err);
	return -1;
}

static void *
central_thread(void *arg)
{
	struct central *c = arg;
	char err[512];
	long n = 0;

	for (;;) {
		if (central_ensure(c) == -1) {
			if (central_wait(c, central_backoff_ms(c->failures)))
				break;
			continue;
		}
		if ((n = batch_ship(c, err, sizeof(err))) == -1) {
			pg_drop(c);
			c->failures++;
			state_set(c, ST_DOWN, err);
			if (central_wait(c, central_backoff_ms(c->failures)))
				break;
			continue;
		}
		if (n < CENTRAL_BATCH) {
			local_mark_write(c, n == 0);
			if (central_wait(c, CENTRAL_POLL_MS))
				break;
		} else
			stats_update(c);
	}
	local_mark_write(c, true);
	pg_drop(c);
	return NULL;
}

static void
central_free(struct central *c)
{
	sqlite3_finalize(c->sel);
	sqlite3_finalize(c->maxid);
	sqlite3_finalize(c->oldest);
	sqlite3_finalize(c->setmark);
	sqlite3_close(c->ro);
	sqlite3_close(c->rw);
	pthread_mutex_destroy(&c->mtx);
	pthread_cond_destroy(&c->cv);
	free(c->conninfo);
	free(c->instance);
	free(c->db_path);
	free(c->buf);
	free(c);
}

struct central *
central_start(const struct config *cfg, const char *db_path, char *err,
    size_t errlen)
{
	struct central *c;
	pthread_condattr_t ca;
	char host[64] = "";

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->conninfo = strdup(cfg->log.central_conninfo);
	c->instance = strdup(cfg->log.central_instance);
	c->db_path = strdup(db_path);
	gethostname(host, sizeof(host) - 1);
	snprintf(c->app, sizeof(c->app), "dnswarden %s on %s pid %ld",
	    c->instance ? c->instance : "", host, (long)getpid());
	if (c->conninfo == NULL || c->instance == NULL || c->db_path == NULL) {
		snprintf(err, errlen, "out of memory");
		central_free(c);
		return NULL;
	}
	if (local_open(c, err, errlen) == -1) {
		central_free(c);
		return NULL;
	}
	c->hwm = local_mark_read(c);
	insert_sql_make(c);
	if (pthread_create(&c->thr, NULL, central_thread, c) != 0) {
		snprintf(err, errlen, "cannot start the shipper thread");
		central_free(c);
		return NULL;
	}
	pthread_setname_np(c->thr, "dw-central");	/* for top -H, bench/ */
	pthread_mutex_lock(&c->mtx);
	while (!c->first_done)
		pthread_cond_wait(&c->cv, &c->mtx);
	pthread_mutex_unlock(&c->mtx);
	if (c->first_rc == 1) {
		snprintf(err, errlen, "%s", c->first_err);
		central_stop(c);
		return NULL;
	}
	return c;
}

void
central_get_stats(struct central *c, struct central_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mtx);
	*out = c->st;
	pthread_mutex_unlock(&c->mtx);
}

void
central_stop(struct central *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mtx);
	c->stop = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mtx);
	pthread_join(c->thr, NULL);
	central_free(c);
}
