/*
 * central: the shipper thread. See central.h.
 *
 * One loop: connect (and lock the instance), read the next rows after
 * the high-water mark from the local file, send those above the central
 * mark with COPY straight into dnswarden_attempts, their summaries (added
 * up here) into dnswarden_sums and the new mark in the same transaction;
 * on any failure drop the connection, say why once, and try again after
 * a backoff. The DNS threads never see any of it: they only append to
 * the attempt log.
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

/*
 * A batch ends at whichever comes first: rows, bytes of COPY text, or
 * distinct summary keys. Large batches cost PostgreSQL less a row (fewer
 * summary upserts and commits: docs/performance.md, "Central log"); the
 * caps bound what a batch holds in memory (about 35 MB) however many of
 * its keys are distinct. A shipper that keeps up sends what is there.
 */
#define CENTRAL_BATCH_ROWS	100000
#define CENTRAL_BATCH_BYTES	(16 << 20)
#define CENTRAL_BATCH_KEYS	65536
#define CENTRAL_SQLSTATE_DUP	"23505"	/* unique_violation */
#define CENTRAL_POLL_MS		200	/* looking for new rows when idle */
#define CENTRAL_MARK_MS		1000	/* local mark written this often */
#define CENTRAL_BUSY_MS		1000

struct buf {
	char			*p;
	size_t			 len, cap;
};

/* A field of the batch's COPY text: offset and length in c->b. */
struct bfield {
	uint32_t		 off, len;
};

/* What a row's summaries are made of (central_sums_sql's columns). */
enum { SF_CLIENT, SF_CNAME, SF_RULE, SF_CAT, SF_SITE, SF_POLICY, SF_N };
struct srow {
	int64_t			 id, ts;
	uint32_t		 off;		/* where its line starts in c->b */
	struct bfield		 f[SF_N];	/* NULL: length 0, as '' */
	bool			 visit, verified;
};

/* One summary key of dnswarden_sums and the batch's deltas to it. */
struct sent {
	int64_t			 t;
	uint64_t		 hash;
	struct bfield		 k[3];
	int			 kind, grain;
	int64_t			 queries, attempts, verified;
};

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
	struct buf		 inst;		/* instance as COPY text, a tab */
	char			 app[256];	/* PostgreSQL keeps 63 bytes */
	sqlite3			*ro, *rw;
	sqlite3_stmt		*sel, *maxid, *oldest, *setmark;
	PGconn			*pg;
	enum central_state	 state;
	char			 cause[512];
	char			 sqlstate[6];	/* of the last command failed */
	unsigned		 failures;
	int64_t			 hwm;		/* last id shipped */
	int64_t			 local_mark;	/* as written locally */
	int64_t			 mark_at;	/* mono ms of that write */
	int64_t			 part_from, part_to; /* months made (s) */
	int64_t			 ts_sec;	/* the second in ts_text */
	char			 ts_text[64];	/* "YYYY-MM-DD HH:MM:SS" */
	struct buf		 b;		/* the batch, COPY text */
	struct buf		 sb;		/* its summaries, COPY text */
	struct srow		*rows;		/* the batch's summary keys */
	size_t			 nrows, rows_cap;
	struct sent		*ents;		/* the summaries, one a key */
	size_t			 nents, ents_cap;
	uint32_t		*slots;		/* hash: ents index + 1 */
	size_t			 slots_cap;
	int64_t			 month_from, month_to; /* of the last row summed */
	bool			 full;		/* the last batch met a cap */
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
 * The session's staging tables: a batch's rows, when they cannot go
 * straight into dnswarden_attempts (batch_send()), and its summed counts.
 */
static const char *const batch_tables[] = {
	"CREATE TEMP TABLE dw_batch (instance text, id bigint, ts timestamptz,"
	" client text, client_name text, qname text, qtype text, rule text,"
	" category text, site text, transport text, verified boolean, policy"
	" text, visit boolean) ON COMMIT DELETE ROWS",
	"CREATE TEMP TABLE dw_sums (kind smallint, grain smallint, t bigint,"
	" k1 text, k2 text, k3 text, queries bigint, attempts bigint, verified"
	" bigint) ON COMMIT DELETE ROWS",
};

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
	for (size_t i = 0; i < sizeof(batch_tables) / sizeof(batch_tables[0]);
	    i++) {
		res = PQexec(c->pg, batch_tables[i]);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			central_pg_error(c->pg, "cannot create the batch tables",
			    err, errlen);
			PQclear(res);
			pg_drop(c);
			return -1;
		}
		PQclear(res);
	}
	local = local_mark_read(c);
	c->hwm = local < central_mark ? local : central_mark;
	c->local_mark = local;
	return 0;
}

/* ---- one batch ---- */

static int
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap : 1 << 20;
		char *nb;

		while (ncap < b->len + n)
			ncap *= 2;
		if ((nb = realloc(b->p, ncap)) == NULL)
			return -1;
		b->p = nb;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

/* v in COPY's text format: escapes for \, tab, newline, return. */
static int
buf_add_escaped(struct buf *b, const unsigned char *v)
{
	char esc[2] = { '\\', 0 };
	size_t from = 0, i;

	for (i = 0; v[i] != '\0'; i++) {
		switch (v[i]) {
		case '\\': esc[1] = '\\'; break;
		case '\t': esc[1] = 't'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		default: continue;
		}
		if (buf_add(b, (const char *)v + from, i - from) == -1 ||
		    buf_add(b, esc, 2) == -1)
			return -1;
		from = i + 1;
	}
	return buf_add(b, (const char *)v + from, i - from);
}

/*
 * One field of COPY's text format: \N for NULL, escapes for the rest.
 * Where its text went in c->b to *f (NULL: length 0), when f is set.
 */
static int
copy_field(struct central *c, sqlite3_stmt *st, int col, bool boolean,
    char end, struct bfield *f)
{
	const unsigned char *v = sqlite3_column_text(st, col);
	size_t at = c->b.len;

	if (v == NULL) {
		if (f != NULL)
			f->off = f->len = 0;
		return buf_add(&c->b, "\\N", 2) || buf_add(&c->b, &end, 1) ?
		    -1 : 0;
	}
	if (boolean)
		return buf_add(&c->b, sqlite3_column_int(st, col) ? "t" : "f",
		    1) || buf_add(&c->b, &end, 1) ? -1 : 0;
	if (buf_add_escaped(&c->b, v) == -1)
		return -1;
	if (f != NULL) {
		f->off = (uint32_t)at;
		f->len = (uint32_t)(c->b.len - at);
	}
	return buf_add(&c->b, &end, 1);
}

/*
 * ms as COPY text for a timestamptz, in UTC to the millisecond. The
 * date of the second is kept: a batch's rows share few seconds.
 */
static int
copy_ts(struct central *c, int64_t ms)
{
	int64_t s = ms / 1000 - (ms % 1000 < 0);
	char frac[16];

	if (s != c->ts_sec || c->ts_text[0] == '\0') {
		time_t t = (time_t)s;
		struct tm tm;

		if (gmtime_r(&t, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
		snprintf(c->ts_text, sizeof(c->ts_text), "%04d-%02d-%02d"
		    " %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		c->ts_sec = s;
	}
	snprintf(frac, sizeof(frac), ".%03d+00\t", (int)(ms - s * 1000));
	return buf_add(&c->b, c->ts_text, strlen(c->ts_text)) ||
	    buf_add(&c->b, frac, strlen(frac)) ? -1 : 0;
}

/* Room for one more row of summary keys. */
static struct srow *
srow_new(struct central *c)
{
	if (c->nrows == c->rows_cap) {
		size_t ncap = c->rows_cap ? c->rows_cap * 2 : 1024;
		struct srow *nr = realloc(c->rows, ncap * sizeof(*nr));

		if (nr == NULL)
			return NULL;
		c->rows = nr;
		c->rows_cap = ncap;
	}
	return &c->rows[c->nrows++];
}

static void	sums_reset(struct central *);
static int	sums_row(struct central *, const struct srow *);

/*
 * The next rows after the mark, as COPY text of dnswarden_attempts's
 * columns in c->b, and what their summaries are made of in c->rows, their summaries added up (sums_row()),
 * until a cap (c->full). Returns the number read (0: none),
 * or -1 (err); last id and the ts range to *last, *ts_min, *ts_max.
 */
static long
batch_read(struct central *c, int64_t *last, int64_t *ts_min,
    int64_t *ts_max, char *err, size_t errlen)
{
	static const bool boolean[13] = { [10] = true, [12] = true };
	/* The columns of sel that are summary keys, and which. */
	static const signed char key[13] = { -1, -1, SF_CLIENT, SF_CNAME,
	    -1, -1, SF_RULE, SF_CAT, SF_SITE, -1, -1, SF_POLICY, -1 };
	long n = 0;
	int rc;

	c->b.len = 0;
	c->nrows = 0;
	c->full = false;
	sums_reset(c);
	sqlite3_bind_int64(c->sel, 1, c->hwm);
	sqlite3_bind_int(c->sel, 2, CENTRAL_BATCH_ROWS);
	while ((rc = sqlite3_step(c->sel)) == SQLITE_ROW) {
		int64_t ts = sqlite3_column_int64(c->sel, 1);
		struct srow *r;

		/*
		 * A row an upgrade left with visit NULL waits until the
		 * writer's catch-up (maintain()) decides it: shipped now, it
		 * would count as no attempt centrally for good. Rows go in
		 * id order, so the batch ends here.
		 */
		if (sqlite3_column_type(c->sel, 12) == SQLITE_NULL) {
			rc = SQLITE_DONE;
			break;
		}
		if ((r = srow_new(c)) == NULL)
			goto oom;
		r->id = sqlite3_column_int64(c->sel, 0);
		r->ts = ts;
		r->off = (uint32_t)c->b.len;
		r->verified = sqlite3_column_int(c->sel, 10) != 0;
		r->visit = sqlite3_column_int(c->sel, 12) != 0;
		if (buf_add(&c->b, c->inst.p, c->inst.len) == -1)
			goto oom;
		for (int col = 0; col < 13; col++)
			if ((col == 1 ? copy_ts(c, ts) : copy_field(c, c->sel,
			    col, boolean[col], col == 12 ? '\n' : '\t',
			    key[col] >= 0 ? &r->f[key[col]] : NULL)) == -1)
				goto oom;
		*last = r->id;
		if (n == 0 || ts < *ts_min)
			*ts_min = ts;
		if (n == 0 || ts > *ts_max)
			*ts_max = ts;
		if (sums_row(c, r) == -1)
			goto oom;
		if (++n == CENTRAL_BATCH_ROWS || c->b.len >= CENTRAL_BATCH_BYTES ||
		    c->nents >= CENTRAL_BATCH_KEYS) {
			c->full = true;
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "cannot read %s: %s", c->db_path,
		    sqlite3_errmsg(c->ro));
		n = -1;
	}
	sqlite3_reset(c->sel);	/* ends the read: the WAL may move on */
	return n;
oom:
	sqlite3_reset(c->sel);
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* ---- the batch's summaries, added up here ---- */

static uint64_t
hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ULL;
	return h;
}

static bool
sent_same(const struct central *c, const struct sent *e, int kind,
    int grain, int64_t t, const struct bfield *k)
{
	if (e->kind != kind || e->grain != grain || e->t != t)
		return false;
	for (int i = 0; i < 3; i++)
		if (e->k[i].len != k[i].len || memcmp(c->b.p + e->k[i].off,
		    c->b.p + k[i].off, k[i].len) != 0)
			return false;
	return true;
}

/* The slots doubled (or made), every entry placed again. */
static int
slots_grow(struct central *c)
{
	size_t ncap = c->slots_cap ? c->slots_cap * 2 : 4096;
	uint32_t *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return -1;
	for (size_t i = 0; i < c->nents; i++) {
		size_t j = c->ents[i].hash & (ncap - 1);

		while (ns[j] != 0)
			j = (j + 1) & (ncap - 1);
		ns[j] = (uint32_t)i + 1;
	}
	free(c->slots);
	c->slots = ns;
	c->slots_cap = ncap;
	return 0;
}

/* One row's share of the summary (kind, grain, t, k), added. */
static int
sums_add(struct central *c, int kind, int grain, int64_t t,
    const struct bfield *k, const struct srow *r)
{
	uint64_t h = 14695981039346656037ULL;
	struct sent *e;
	size_t j;

	h = hash_bytes(h, &kind, sizeof(kind));
	h = hash_bytes(h, &grain, sizeof(grain));
	h = hash_bytes(h, &t, sizeof(t));
	for (int i = 0; i < 3; i++)
		h = hash_bytes(hash_bytes(h, c->b.p + k[i].off, k[i].len),
		    "\t", 1);
	if ((c->nents + 1) * 2 > c->slots_cap && slots_grow(c) == -1)
		return -1;
	for (j = h & (c->slots_cap - 1); c->slots[j] != 0;
	    j = (j + 1) & (c->slots_cap - 1)) {
		e = &c->ents[c->slots[j] - 1];
		if (e->hash == h && sent_same(c, e, kind, grain, t, k))
			goto add;
	}
	if (c->nents == c->ents_cap) {
		size_t ncap = c->ents_cap ? c->ents_cap * 2 : 1024;
		struct sent *ne = realloc(c->ents, ncap * sizeof(*ne));

		if (ne == NULL)
			return -1;
		c->ents = ne;
		c->ents_cap = ncap;
	}
	e = &c->ents[c->nents++];
	c->slots[j] = (uint32_t)c->nents;
	e->kind = kind;
	e->grain = grain;
	e->t = t;
	e->hash = h;
	memcpy(e->k, k, sizeof(e->k));
	e->queries = e->attempts = e->verified = 0;
add:
	e->queries++;
	e->attempts += r->visit;
	e->verified += r->verified;
	return 0;
}

static void
sums_reset(struct central *c)
{
	c->nents = 0;
	if (c->slots_cap > 0)
		memset(c->slots, 0, c->slots_cap * sizeof(*c->slots));
}

/*
 * A row's summaries, added up as central_sums_sql does in PostgreSQL: a
 * quarter hour's total (kind 0), per client (1), per rule, category and
 * site (2) and per policy (3) by UTC day (grain 1) and month (2); NULL
 * keys as ''. 0 or -1 (out of memory).
 */
static int
sums_row(struct central *c, const struct srow *r)
{
	const struct bfield none = { 0, 0 };
	/* floor(extract(epoch FROM ts)), then bigint division. */
	int64_t s = r->ts / 1000 - (r->ts % 1000 < 0);
	int64_t day = s / 86400 * 86400;
	const struct bfield *f = r->f;
	struct bfield k[3];

	if (s < c->month_from || s >= c->month_to) {
		c->month_from = central_month_start(r->ts, 0);
		c->month_to = central_month_start(r->ts, 1);
	}
	k[0] = k[1] = k[2] = none;
	if (sums_add(c, 0, 0, s / 900 * 900, k, r) == -1)
		return -1;
	k[0] = f[SF_CLIENT];
	k[1] = f[SF_CNAME];
	if (sums_add(c, 1, 1, day, k, r) == -1 ||
	    sums_add(c, 1, 2, c->month_from, k, r) == -1)
		return -1;
	k[0] = f[SF_RULE];
	k[1] = f[SF_CAT];
	k[2] = f[SF_SITE];
	if (sums_add(c, 2, 1, day, k, r) == -1 ||
	    sums_add(c, 2, 2, c->month_from, k, r) == -1)
		return -1;
	k[0] = f[SF_POLICY];
	k[1] = k[2] = none;
	return sums_add(c, 3, 1, day, k, r) == -1 ||
	    sums_add(c, 3, 2, c->month_from, k, r) == -1 ? -1 : 0;
}

/*
 * The summaries of the batch's rows above mark (those the central table
 * does not hold yet) as COPY text for dw_sums in c->sb: those batch_read()
 * added up, unless some rows are at or below the mark. 0 or -1.
 */
static int
sums_make(struct central *c, int64_t mark)
{
	char num[128];

	if (c->nrows > 0 && c->rows[0].id <= mark) {
		sums_reset(c);
		for (size_t i = 0; i < c->nrows; i++)
			if (c->rows[i].id > mark &&
			    sums_row(c, &c->rows[i]) == -1)
				return -1;
	}
	c->sb.len = 0;
	for (size_t i = 0; i < c->nents; i++) {
		const struct sent *e = &c->ents[i];
		int n;

		n = snprintf(num, sizeof(num), "%d\t%d\t%" PRId64 "\t",
		    e->kind, e->grain, e->t);
		if (buf_add(&c->sb, num, (size_t)n) == -1)
			return -1;
		/* The keys are COPY text already, escaped as the batch's. */
		for (int j = 0; j < 3; j++)
			if (buf_add(&c->sb, c->b.p + e->k[j].off,
			    e->k[j].len) == -1 || buf_add(&c->sb, "\t", 1) == -1)
				return -1;
		n = snprintf(num, sizeof(num), "%" PRId64 "\t%" PRId64 "\t%"
		    PRId64 "\n", e->queries, e->attempts, e->verified);
		if (buf_add(&c->sb, num, (size_t)n) == -1)
			return -1;
	}
	return 0;
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
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
	PQclear(res);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return 0;
	central_pg_error(c->pg, what, err, errlen);
	return -1;
}

/*
 * COPY of len bytes at p into a table, inside the open transaction. 0 or
 * -1 (err).
 */
static int
copy_in(struct central *c, const char *sql, const char *p, size_t len,
    char *err, size_t errlen)
{
	PGresult *res = pg_exec(c, sql, 0, NULL);

	if (PQresultStatus(res) != PGRES_COPY_IN) {
		pg_ok(c, res, "cannot copy", err, errlen);
		return -1;
	}
	PQclear(res);
	if ((len > 0 && PQputCopyData(c->pg, p, (int)len) != 1) ||
	    PQputCopyEnd(c->pg, NULL) != 1) {
		central_pg_error(c->pg, "cannot copy", err, errlen);
		return -1;
	}
	if (pg_ok(c, pg_next(c), "cannot copy", err, errlen) == -1)
		return -1;
	while ((res = pg_next(c)) != NULL)
		PQclear(res);
	return 0;
}

/*
 * The batch's rows above the central mark into dnswarden_attempts, their
 * summaries added to dnswarden_sums and the new mark, in one transaction.
 * The mark is read under its row's lock in the same transaction: the rows
 * at or below it are there already (they went in with it) and are not
 * sent again (a retry after a lost acknowledgement, a local mark that
 * lagged), nor counted twice. The rest go straight into the table with
 * COPY, which costs PostgreSQL about a third of a staging table moved
 * with INSERT ... ON CONFLICT DO NOTHING (docs/performance.md, "Central
 * log"); when safe, they take that way instead, whose key drops copies
 * that someone put above the mark (batch_ship()). The summaries are added
 * up here rather than by PostgreSQL from the inserted rows, which cost it
 * twice the insert's time a row.
 */
static int
batch_send(struct central *c, int64_t last, bool safe, long *sent,
    char *err, size_t errlen)
{
	char lastbuf[32];
	const char *params[2] = { c->instance, lastbuf };
	PGresult *res;
	int64_t mark = 0;
	size_t from = 0, off;

	snprintf(lastbuf, sizeof(lastbuf), "%" PRId64, last);
	if (pg_ok(c, pg_exec(c, "BEGIN", 0, NULL), "cannot begin", err,
	    errlen))
		return -1;
	res = pg_exec(c, "SELECT shipped_id FROM dnswarden_instances WHERE"
	    " instance = $1 FOR UPDATE", 1, params);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		mark = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (pg_ok(c, res, "cannot read the central mark", err, errlen) == -1)
		goto fail;
	if (sums_make(c, mark) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while (from < c->nrows && c->rows[from].id <= mark)
		from++;
	off = from < c->nrows ? c->rows[from].off : c->b.len;
	*sent = (long)(c->nrows - from);
	if (from < c->nrows && safe) {
		if (copy_in(c, "COPY dw_batch FROM STDIN", c->b.p + off,
		    c->b.len - off, err, errlen) == -1)
			goto fail;
		res = pg_exec(c, "INSERT INTO dnswarden_attempts SELECT * FROM"
		    " dw_batch ON CONFLICT DO NOTHING", 0, NULL);
		/* What the key dropped was there already: not shipped now. */
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			*sent = strtol(PQcmdTuples(res), NULL, 10);
		if (pg_ok(c, res, "cannot insert", err, errlen) == -1)
			goto fail;
	} else if (from < c->nrows && copy_in(c, "COPY dnswarden_attempts FROM"
	    " STDIN", c->b.p + off, c->b.len - off, err, errlen) == -1)
		goto fail;
	if (c->nents > 0 && (copy_in(c, "COPY dw_sums FROM STDIN", c->sb.p,
	    c->sb.len, err, errlen) == -1 ||
	    pg_ok(c, pg_exec(c, "INSERT INTO dnswarden_sums (instance, kind,"
	    " grain, t, k1, k2, k3, queries, attempts, verified) SELECT $1,"
	    " kind, grain, t, k1, k2, k3, queries, attempts, verified FROM"
	    " dw_sums ON CONFLICT (instance, kind, grain, t, k1, k2, k3) DO"
	    " UPDATE SET queries = dnswarden_sums.queries + excluded.queries,"
	    " attempts = dnswarden_sums.attempts + excluded.attempts,"
	    " verified = dnswarden_sums.verified + excluded.verified", 1,
	    params), "cannot add the summaries", err, errlen) == -1))
		goto fail;
	/* Never lowered: a batch resent from a lagging local mark. */
	if (pg_ok(c, pg_exec(c, "INSERT INTO dnswarden_instances"
	    " (instance, shipped_id) VALUES ($1, $2) ON CONFLICT (instance)"
	    " DO UPDATE SET shipped_id = greatest(dnswarden_instances"
	    ".shipped_id, excluded.shipped_id), shipped_at = now()", 2, params),
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
	long n, sent = 0;

	if ((n = batch_read(c, &last, &ts_min, &ts_max, err, errlen)) <= 0)
		return n;
	if (ts_min / 1000 < c->part_from || ts_max / 1000 >= c->part_to) {
		if (central_partitions_ensure(c->pg, ts_min, ts_max, err,
		    errlen) == -1)
			return -1;
		c->part_from = central_month_start(ts_min, 0);
		c->part_to = central_month_start(ts_max, 2);
	}
	/*
	 * Rows above the mark that are there already (put by hand, or by an
	 * earlier dnswarden, which could lower the mark) fail the COPY on
	 * the key: the batch goes again the way that drops them.
	 */
	if (batch_send(c, last, false, &sent, err, errlen) == -1 &&
	    (strcmp(c->sqlstate, CENTRAL_SQLSTATE_DUP) != 0 ||
	    PQstatus(c->pg) != CONNECTION_OK ||
	    batch_send(c, last, true, &sent, err, errlen) == -1))
		return -1;
	c->hwm = last;
	/*
	 * Counted as they arrive: a batch whose commit went through but
	 * whose acknowledgement was lost is sent again, and its rows are not
	 * shipped twice.
	 */
	pthread_mutex_lock(&c->mtx);
	c->st.shipped += (uint64_t)sent;
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

/*
 * Wait before the next attempt: the backoff, doubling up to
 * CENTRAL_BACKOFF_MAX_MS, so that a server that answers but refuses (a
 * wrong password, a full disk, a table of the wrong shape) is not asked
 * more often than that. While no server answers at all (stopped,
 * restarting, unreachable), look every CENTRAL_PROBE_MS whether one does
 * and end the wait when it does: a refused connection costs the database
 * host nothing, and the first batch follows its return within that
 * rather than within the backoff, which a long outage took to its
 * ceiling. True: stop.
 */
static bool
central_retry_wait(struct central *c)
{
	int64_t end = (int64_t)now_ms_monotonic() +
	    central_backoff_ms(c->failures);
	bool probing = !central_answers(c->conninfo, c->app);
	int64_t left;

	/*
	 * Once at least: a probe or a connect may have taken the whole
	 * backoff (an unreachable host, up to its connect timeout), and the
	 * counters and a stop are seen here.
	 */
	do {
		left = end - (int64_t)now_ms_monotonic();
		if (central_wait(c, probing && left > CENTRAL_PROBE_MS ?
		    CENTRAL_PROBE_MS : left > 0 ? left : 0))
			return true;
		left = end - (int64_t)now_ms_monotonic();
		if (probing && left > 0 && central_answers(c->conninfo, c->app))
			return false;
	} while (left > 0);
	return false;
}

static void *
central_thread(void *arg)
{
	struct central *c = arg;
	char err[512];
	long n = 0;

	for (;;) {
		if (central_ensure(c) == -1) {
			if (central_retry_wait(c))
				break;
			continue;
		}
		if ((n = batch_ship(c, err, sizeof(err))) == -1) {
			pg_drop(c);
			c->failures++;
			state_set(c, ST_DOWN, err);
			if (central_retry_wait(c))
				break;
			continue;
		}
		if (!c->full) {
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
	free(c->inst.p);
	free(c->b.p);
	free(c->sb.p);
	free(c->rows);
	free(c->ents);
	free(c->slots);
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
	if (buf_add_escaped(&c->inst, (const unsigned char *)c->instance) ==
	    -1 || buf_add(&c->inst, "\t", 1) == -1) {
		snprintf(err, errlen, "out of memory");
		central_free(c);
		return NULL;
	}
	c->hwm = local_mark_read(c);
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
