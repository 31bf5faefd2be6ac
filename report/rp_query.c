/*
 * rp_query: the database side of the report library: opening a log
 * read-only, and the queries that give a report's rows. See report.h.
 *
 * An attempt is a run of queries from one client for one rule with no
 * pause longer than 60 seconds; it belongs to the period and group of
 * its first query (docs/reports.md).
 */
#include <sys/stat.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attemptlog.h"
#include "calendar.h"
#include "rp_internal.h"
#include "sink.h"

#define RP_BUSY_MS		5000	/* wait this long for the writer */
#define RP_ATTEMPT_GAP_MS	60000	/* a longer pause starts an attempt */

/* ---- the database ---- */

static int
rp_check_schema(struct report_db *d, const char *path, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int version = -1, tables = 0;

	if (sqlite3_prepare_v2(d->db, "SELECT (SELECT user_version FROM"
	    " pragma_user_version), (SELECT count(*) FROM sqlite_master WHERE"
	    " type = 'table' AND name = 'attempts'), (SELECT count(*) FROM"
	    " sqlite_master WHERE type = 'table' AND name = 'log_gaps'),"
	    " (SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
	    " name = 'attempts_log')", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		version = sqlite3_column_int(st, 0);
		tables = sqlite3_column_int(st, 1);
		d->has_gaps = sqlite3_column_int(st, 2) > 0;
		d->has_log_index = sqlite3_column_int(st, 3) > 0;
	}
	sqlite3_finalize(st);
	d->version = version;
	if (version < 0)
		snprintf(err, errlen, "%s: not a dnswarden attempt log (%s)",
		    path, sqlite3_errmsg(d->db));
	else if (version > SINK_SCHEMA_VERSION)
		snprintf(err, errlen, "%s: schema version %d is newer than this"
		    " dnswarden's (%d); use a newer dnswarden", path, version,
		    SINK_SCHEMA_VERSION);
	else if (tables == 0)
		snprintf(err, errlen, "%s: not a dnswarden attempt log (no"
		    " table attempts)", path);
	else
		return 0;
	return -1;
}

/*
 * The instance the file was last shipped as (table central_outbox, made
 * by the central shipper), or else the host name, as log.central.instance
 * defaults to.
 */
static void
rp_default_instance(struct report_db *d)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(d->db, "SELECT instance FROM central_outbox"
	    " ORDER BY shipped_id DESC LIMIT 1", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		snprintf(d->instance, sizeof(d->instance), "%s",
		    (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (d->instance[0] == '\0' &&
	    gethostname(d->instance, sizeof(d->instance) - 1) == -1)
		snprintf(d->instance, sizeof(d->instance), "localhost");
}

struct report_db *
report_db_open(const char *path, char *err, size_t errlen)
{
	struct report_db *d;
	struct stat sb;

	if (stat(path, &sb) == -1) {
		if (errno == ENOENT)
			snprintf(err, errlen, "%s: no attempt log yet (dnswarden"
			    " serve creates it when it starts with this"
			    " log.database)", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, d->db ?
		    sqlite3_errmsg(d->db) : "out of memory");
		report_db_close(d);
		return NULL;
	}
	/*
	 * The file may be written by the service user, who must not gain
	 * the reader's rights through it: no SQL functions called from the
	 * schema (views, triggers, defaults), no writes to the schema.
	 */
	sqlite3_db_config(d->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(d->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	/* The server's writer holds its lock for milliseconds at a time. */
	sqlite3_busy_timeout(d->db, RP_BUSY_MS);
	/* Pages mapped, not copied: a report reads megabytes of summaries. */
	sqlite3_exec(d->db, "PRAGMA mmap_size = 1073741824", NULL, NULL, NULL);
	/*
	 * Grouping thousands of clients sorts: in memory, not in a temporary
	 * file (a third of --by client's time at 10 million rows).
	 */
	sqlite3_exec(d->db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
	if (rp_check_schema(d, path, err, errlen) == -1) {
		report_db_close(d);
		return NULL;
	}
	rp_default_instance(d);
	return d;
}

void
report_db_set_instance(struct report_db *d, const char *name)
{
	snprintf(d->instance, sizeof(d->instance), "%s", name);
}

void
report_db_close(struct report_db *d)
{
	if (d == NULL)
		return;
	sqlite3_close(d->db);
	PQfinish(d->pg);
	free(d);
}

/* ---- rows ---- */

const struct report_cell *
report_cell(const struct report_rows *r, size_t row, size_t col)
{
	return &r->cells[row * r->ncols + col];
}

void
report_rows_free(struct report_rows *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nrows * r->ncols; i++)
		free((char *)r->cells[i].text);
	for (size_t i = 0; i < r->ngaps && i < REPORT_GAPS_SHOWN; i++)
		free((char *)r->gaps[i].reason);
	free(r->cells);
	free(r);
}

/* Keep the row st is on. Returns 0 or -1 (out of memory). */
static int
rows_add(struct report_rows *r, size_t *cap, sqlite3_stmt *st,
    const struct rp_tz *tz)
{
	struct report_cell *row;
	char tbuf[64];

	if (r->nrows == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct report_cell *cells = reallocarray(r->cells,
		    ncap * r->ncols, sizeof(*cells));

		if (cells == NULL)
			return -1;
		r->cells = cells;
		*cap = ncap;
	}
	row = r->cells + r->nrows * r->ncols;
	memset(row, 0, r->ncols * sizeof(*row));
	r->nrows++;		/* from here, freed with r */
	for (size_t i = 0; i < r->ncols; i++) {
		const char *v = (const char *)sqlite3_column_text(st, (int)i);

		if (v == NULL)
			continue;
		row[i].num = sqlite3_column_int64(st, (int)i);
		if (r->cols[i].type == REPORT_T_TIME) {
			rp_time_format(row[i].num, tz, tbuf, sizeof(tbuf));
			v = tbuf;
		} else if (r->cols[i].type != REPORT_T_TEXT)
			continue;
		if ((row[i].text = strdup(v)) == NULL)
			return -1;
	}
	return 0;
}

/* Step st to its end, keeping every row. Returns 0 or -1 (err). */
static int
rows_fill(struct report_rows *r, sqlite3 *db, sqlite3_stmt *st,
    const struct rp_tz *tz, char *err, size_t errlen)
{
	size_t cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (rows_add(r, &cap, st, tz) == -1) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "cannot read the log: %s",
		    sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* The rows lost in the period, from table log_gaps. */
static void
rows_gaps(struct report_rows *r, sqlite3 *db, const struct report_opts *o,
    const struct rp_tz *tz)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, "SELECT ts_start, ts_end, rows_dropped,"
	    " reason FROM log_gaps WHERE table_name = 'attempts' AND"
	    " ts_end >= ?1 AND ts_start < ?2 ORDER BY ts_start", -1, &st,
	    NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, o->since);
	sqlite3_bind_int64(st, 2, o->until);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *reason = (const char *)sqlite3_column_text(st, 3);
		struct report_gap *g;

		r->rows_lost += sqlite3_column_int64(st, 2);
		if (r->ngaps++ >= REPORT_GAPS_SHOWN)
			continue;
		g = &r->gaps[r->ngaps - 1];
		g->ts_start = sqlite3_column_int64(st, 0);
		g->ts_end = sqlite3_column_int64(st, 1);
		g->rows = sqlite3_column_int64(st, 2);
		g->reason = strdup(reason ? reason : "");
		rp_time_format(g->ts_start, tz, g->from, sizeof(g->from));
		rp_time_format(g->ts_end, tz, g->to, sizeof(g->to));
	}
	sqlite3_finalize(st);
}

/* ---- counts ---- */

struct by_def {
	const char		*select;	/* key columns; @Z: the zone */
	const char		*group;		/* GROUP BY, "" for the total */
	bool			 by_time;	/* rows in time order */
	struct report_column	 cols[7];
	size_t			 ncols;
};

#define T	REPORT_T_TEXT
#define COUNTS	{ "queries", REPORT_T_INT }, { "attempts", REPORT_T_INT }, \
	{ "verified_queries", REPORT_T_INT }, \
	{ "unverified_queries", REPORT_T_INT }
/* ISO 8601 week: the Thursday of a date's week names its year. */
#define THURSDAY "date(ts / 1000, 'unixepoch'@Z, '-3 days', 'weekday 4')"

static const struct by_def by_defs[] = {
	[REPORT_BY_TOTAL] = { "", "", false, { COUNTS }, 4 },
	[REPORT_BY_DAY] = { "strftime('%Y-%m-%d', ts / 1000, 'unixepoch'@Z)"
	    " AS day,", "GROUP BY 1", true, { { "day", T }, COUNTS }, 5 },
	[REPORT_BY_WEEK] = { "strftime('%Y', " THURSDAY ") || '-W' ||"
	    " printf('%02d', (strftime('%j', " THURSDAY ") - 1) / 7 + 1)"
	    " AS week,", "GROUP BY 1", true, { { "week", T }, COUNTS }, 5 },
	[REPORT_BY_MONTH] = { "strftime('%Y-%m', ts / 1000, 'unixepoch'@Z)"
	    " AS month,", "GROUP BY 1", true, { { "month", T }, COUNTS }, 5 },
	[REPORT_BY_CLIENT] = { "client, max(client_name) AS client_name,",
	    "GROUP BY client", false, { { "client", T },
	    { "client_name", T }, COUNTS }, 6 },
	[REPORT_BY_CATEGORY] = { "category,", "GROUP BY category", false,
	    { { "category", T }, COUNTS }, 5 },
	/* Imported lists have no site: one group per category for them. */
	[REPORT_BY_SITE] = { "site, max(category) AS category,",
	    "GROUP BY site, CASE WHEN site IS NULL THEN category END", false,
	    { { "site", T }, { "category", T }, COUNTS }, 6 },
	[REPORT_BY_DOMAIN] = { "rule AS domain, max(category) AS category,"
	    " max(site) AS site,", "GROUP BY rule", false,
	    { { "domain", T }, { "category", T }, { "site", T }, COUNTS }, 7 },
	/* NULL: the default policy. */
	[REPORT_BY_POLICY] = { "policy,", "GROUP BY policy", false,
	    { { "policy", T }, COUNTS }, 5 },
	/* A local log: its one instance; the central one: each site. */
	[REPORT_BY_INSTANCE] = { "instance,", "GROUP BY instance", false,
	    { { "instance", T }, COUNTS }, 5 },
};

/* src with every "@Z" replaced by the zone's modifiers. */
static void
expand_zone(const char *src, const char *zone, char *out, size_t len)
{
	size_t o = 0, zl = strlen(zone);

	for (; *src && o + zl + 1 < len; src++) {
		if (src[0] == '@' && src[1] == 'Z') {
			memcpy(out + o, zone, zl);
			o += zl;
			src++;
		} else
			out[o++] = *src;
	}
	out[o] = '\0';
}

/* Before version 3 there is no verified column: TCP was the proof. */
static const char *
verified_expr(const struct report_db *d)
{
	return d->version >= 3 ? "verified" : "transport = 'tcp'";
}

static const char *
policy_expr(const struct report_db *d)
{
	return d->version >= 3 ? "policy" : "NULL";
}

/*
 * One pass over the period: LAG gives each row the time since the
 * previous row of the same client and rule; a row starts an attempt when
 * there is none or it is more than 60 s old. Rows up to 60 s before
 * since are read only to see whether the first rows continue an attempt
 * that started before the period.
 */
static int
counts_query(struct report_db *d, const struct report_opts *o,
    const struct rp_tz *tz, struct report_rows *r, char *err, size_t errlen)
{
	const struct by_def *by = &by_defs[o->by];
	char sql[3072], select[512], zone[64];
	sqlite3_stmt *st;
	int rc;

	rp_tz_modifier(tz, zone, sizeof(zone));
	expand_zone(by->select, zone, select, sizeof(select));
	snprintf(sql, sizeof(sql),
	    "WITH r AS (SELECT ts, client, client_name, rule, category, site,"
	    " %s AS verified, %s AS policy, ?4 AS instance,"
	    " ts - lag(ts) OVER (PARTITION BY client, rule ORDER BY ts, id)"
	    " AS gap FROM attempts WHERE ts >= ?1 - %d AND ts < ?2),"
	    " g AS (SELECT %s count(*) AS queries,"
	    " coalesce(sum(gap IS NULL OR gap > %d), 0) AS attempts,"
	    " coalesce(sum(verified), 0) AS verified_queries,"
	    " count(*) - coalesce(sum(verified), 0) AS unverified_queries"
	    " FROM r WHERE ts >= ?1 AND (?5 IS NULL OR instance = ?5) %s"
	    " ORDER BY attempts DESC, queries DESC, 1 LIMIT ?3)"
	    " SELECT * FROM g ORDER BY %s", verified_expr(d), policy_expr(d),
	    RP_ATTEMPT_GAP_MS, select, RP_ATTEMPT_GAP_MS, by->group,
	    by->by_time ? "1" : "attempts DESC, queries DESC, 1");
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, o->since);
	sqlite3_bind_int64(st, 2, o->until);
	sqlite3_bind_int64(st, 3, o->top > 0 ? o->top : -1);
	sqlite3_bind_text(st, 4, d->instance, -1, SQLITE_STATIC);
	if (o->instance[0] != '\0')
		sqlite3_bind_text(st, 5, o->instance, -1, SQLITE_STATIC);
	r->cols = by->cols;
	r->ncols = by->ncols;
	rc = rows_fill(r, d->db, st, tz, err, errlen);
	sqlite3_finalize(st);
	return rc;
}

/* ---- counts from the summaries ---- */

/*
 * Table attempt_sums (../attemptlog/sink.h) holds the counts of the rows
 * up to covered_id per quarter hour (kind TIME), and per UTC day and
 * month (kinds CLIENT, RULE and POLICY); a month row counts only its
 * days before months_day (version 6), its later days are read from their
 * day rows. Since version 7 the day rows of kind RULE are in table
 * attempt_sums_rules, with the same k1, k2, k3 (a key may have several
 * rows a day: they are grouped as any rows are). A report reads whole
 * periods from it,
 * the rows of the stretches at either end that are not a whole period,
 * and the rows after covered_id, all as rows of one shape (r below), and
 * groups them as the scan does. An end with no row beyond it (no --since
 * or --until, or one past the data) needs no stretch: the periods there
 * hold no rows outside the report's.
 */
#define SUMS_NONE	INT64_MIN	/* an open end */
#define SUMS_ALL	INT64_MAX	/* months_day: the months count every day */

struct sums_sql {
	char		*buf;
	size_t		 len, cap;
	bool		 oom;
	bool		 central;	/* PostgreSQL's tables (rp_central.c) */
	const char	*inst;		/* central: " AND instance = $1" or "" */
	int64_t		 months_day;	/* day rows from it on are in no month
					   row; SUMS_ALL: every one is */
	bool		 rule_days;	/* in attempt_sums_rules (version 7) */
};

static void
sums_add(struct sums_sql *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sums_add(struct sums_sql *q, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(q->buf + q->len, q->cap - q->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			q->oom = true;
			return;
		}
		if ((size_t)n < q->cap - q->len)
			break;
		size_t ncap = (q->cap + (size_t)n + 1) * 2;
		char *nb = realloc(q->buf, ncap);

		if (nb == NULL) {
			q->oom = true;
			return;
		}
		q->buf = nb;
		q->cap = ncap;
	}
	q->len += (size_t)n;
}

static const char *const sums_cols[] = {
	[SINK_SUM_TIME] = "NULL, NULL, NULL, NULL, NULL, NULL",
	[SINK_SUM_CLIENT] = "k1, NULLIF(k2, ''), NULL, NULL, NULL, NULL",
	[SINK_SUM_RULE] = "NULL, NULL, k1, k2, NULLIF(k3, ''), NULL",
	[SINK_SUM_POLICY] = "NULL, NULL, NULL, NULL, NULL, NULLIF(k1, '')",
};

/*
 * Centrally, the rows' columns that a kind keeps: the others NULL, so
 * that the rows group as the summaries do (and ts only for kind TIME).
 */
static const char *const central_row_cols[] = {
	[SINK_SUM_TIME] = "floor(extract(epoch FROM ts) * 1000)::bigint,"
	    " NULL, NULL, NULL, NULL, NULL, NULL",
	[SINK_SUM_CLIENT] = "NULL::bigint, client, client_name, NULL, NULL,"
	    " NULL, NULL",
	[SINK_SUM_RULE] = "NULL::bigint, NULL, NULL, rule, category, site,"
	    " NULL",
	[SINK_SUM_POLICY] = "NULL::bigint, NULL, NULL, NULL, NULL, NULL,"
	    " policy",
};

/* The summaries of kind, grain with from <= t < to (Unix s). */
static void
sums_part(struct sums_sql *q, int kind, int grain, int64_t from, int64_t to)
{
	if (q->central)
		sums_add(q, " UNION ALL SELECT %s, %s, queries, attempts,"
		    " verified, instance FROM dnswarden_sums WHERE kind = %d"
		    " AND grain = %d%s", kind == SINK_SUM_TIME ? "t * 1000" :
		    "NULL::bigint", sums_cols[kind], kind, grain, q->inst);
	else if (q->rule_days && kind == SINK_SUM_RULE &&
	    grain == SINK_GRAIN_DAY)
		sums_add(q, " UNION ALL SELECT t * 1000, %s, queries, attempts,"
		    " verified FROM attempt_sums_rules WHERE true",
		    sums_cols[kind]);
	else
		sums_add(q, " UNION ALL SELECT t * 1000, %s, queries, attempts,"
		    " verified FROM attempt_sums WHERE kind = %d AND grain = %d",
		    sums_cols[kind], kind, grain);
	if (from != SUMS_NONE)
		sums_add(q, " AND t >= %" PRId64, from);
	if (to != SUMS_NONE)
		sums_add(q, " AND t < %" PRId64, to);
}

/* The counted rows with from <= ts < to (Unix ms), for kind. */
static void
rows_part(struct sums_sql *q, int64_t from, int64_t to, int64_t covered,
    int kind)
{
	if (from >= to)
		return;
	if (q->central) {
		sums_add(q, " UNION ALL SELECT %s, 1, visit::int, verified::int,"
		    " instance FROM dnswarden_attempts WHERE ts >= timestamptz"
		    " 'epoch' + %" PRId64 " * interval '1 millisecond' AND ts <"
		    " timestamptz 'epoch' + %" PRId64 " * interval"
		    " '1 millisecond'%s", central_row_cols[kind], from, to,
		    q->inst);
		return;
	}
	sums_add(q, " UNION ALL SELECT ts, client, client_name, rule,"
	    " category, site, policy, 1, visit, verified FROM attempts WHERE"
	    " ts >= %" PRId64 " AND ts < %" PRId64 " AND +id <= %" PRId64,
	    from, to, covered);
}

static int64_t
ceil_to(int64_t t, int64_t step)
{
	int64_t f = cal_floor(t, step);

	return f == t ? t : f + step;
}

/* The start of the UTC month after t (Unix s), or t if a month starts there. */
static int64_t
month_ceil(int64_t t)
{
	time_t tt = (time_t)cal_month_start(t);
	struct tm tm;

	if (tt == t)
		return t;
	gmtime_r(&tt, &tm);
	tm.tm_mon++;
	return (int64_t)timegm(&tm);
}

/*
 * [a, b) in ms (SUMS_NONE: open) as quarter hours and rows: the kind
 * TIME that totals, days, weeks and months read.
 */
static void
sums_plan_quarters(struct sums_sql *q, int64_t a, int64_t b, int64_t cov)
{
	const int64_t step = SINK_QUARTER_S * 1000LL;
	int64_t qa = a == SUMS_NONE ? SUMS_NONE : ceil_to(a, step);
	int64_t qb = b == SUMS_NONE ? SUMS_NONE : cal_floor(b, step);

	if (qa != SUMS_NONE && qb != SUMS_NONE && qa >= qb) {
		rows_part(q, a, b, cov, SINK_SUM_TIME);
		return;
	}
	if (a != SUMS_NONE)
		rows_part(q, a, qa, cov, SINK_SUM_TIME);
	sums_part(q, SINK_SUM_TIME, SINK_GRAIN_QUARTER,
	    qa == SUMS_NONE ? SUMS_NONE : qa / 1000,
	    qb == SUMS_NONE ? SUMS_NONE : qb / 1000);
	if (b != SUMS_NONE)
		rows_part(q, qb, b, cov, SINK_SUM_TIME);
}

/* [a, b) in ms as months, days and rows, for kind CLIENT, RULE, POLICY. */
static void
sums_plan_days(struct sums_sql *q, int kind, int64_t a, int64_t b,
    int64_t cov)
{
	const int64_t day = 86400000LL;
	int64_t da = a == SUMS_NONE ? SUMS_NONE : ceil_to(a, day) / 1000;
	int64_t db = b == SUMS_NONE ? SUMS_NONE : cal_floor(b, day) / 1000;
	int64_t ma, mb, md;

	if (da != SUMS_NONE && db != SUMS_NONE && da >= db) {
		rows_part(q, a, b, cov, kind);
		return;
	}
	if (a != SUMS_NONE)
		rows_part(q, a, da * 1000, cov, kind);
	if (b != SUMS_NONE)
		rows_part(q, db * 1000, b, cov, kind);
	ma = da == SUMS_NONE ? SUMS_NONE : month_ceil(da);
	mb = db == SUMS_NONE ? SUMS_NONE : cal_month_start(db);
	if (ma != SUMS_NONE && mb != SUMS_NONE && ma >= mb) {
		sums_part(q, kind, SINK_GRAIN_DAY, da, db);
		return;
	}
	if (da != SUMS_NONE && da < ma)
		sums_part(q, kind, SINK_GRAIN_DAY, da, ma);
	sums_part(q, kind, SINK_GRAIN_MONTH, ma, mb);
	/* The days of those months not yet added to them. */
	md = ma != SUMS_NONE && ma > q->months_day ? ma : q->months_day;
	if (q->months_day != SUMS_ALL && (mb == SUMS_NONE || md < mb))
		sums_part(q, kind, SINK_GRAIN_DAY, md, mb);
	if (db != SUMS_NONE && mb < db)
		sums_part(q, kind, SINK_GRAIN_DAY, mb, db);
}

/*
 * Whether the summaries can answer: version 4 or later, and no row after
 * covered_id without its visit (an upgrade still working through the
 * file). *covered, *min_ts, *max_ts (SUMS_NONE: no rows) and *months_day
 * (SUMS_ALL before version 6) for the plan.
 */
static bool
sums_usable(struct report_db *d, int64_t *covered, int64_t *min_ts,
    int64_t *max_ts, int64_t *months_day)
{
	sqlite3_stmt *st;
	bool ok = false;

	if (d->version < 4 || sqlite3_prepare_v2(d->db, d->version < 6 ?
	    "SELECT s.covered_id,"
	    " (SELECT min(ts) FROM attempts), (SELECT max(ts) FROM attempts),"
	    " EXISTS (SELECT 1 FROM attempts WHERE id > s.covered_id AND"
	    " visit IS NULL), 9223372036854775807 FROM attempt_sums_state"
	    " AS s" : "SELECT s.covered_id,"
	    " (SELECT min(ts) FROM attempts), (SELECT max(ts) FROM attempts),"
	    " EXISTS (SELECT 1 FROM attempts WHERE id > s.covered_id AND"
	    " visit IS NULL), s.months_day FROM attempt_sums_state AS s", -1,
	    &st, NULL) != SQLITE_OK)
		return false;
	if (sqlite3_step(st) == SQLITE_ROW && !sqlite3_column_int(st, 3)) {
		*covered = sqlite3_column_int64(st, 0);
		*months_day = sqlite3_column_int64(st, 4);
		*min_ts = sqlite3_column_type(st, 1) == SQLITE_NULL ?
		    SUMS_NONE : sqlite3_column_int64(st, 1);
		*max_ts = sqlite3_column_type(st, 2) == SQLITE_NULL ?
		    SUMS_NONE : sqlite3_column_int64(st, 2);
		ok = true;
	}
	sqlite3_finalize(st);
	return ok;
}

static void sums_plan(struct sums_sql *, enum report_by, int64_t, int64_t,
    int64_t);

/* The rows of r, the report's input, from the summaries (see above). */
static void
sums_source(struct sums_sql *q, enum report_by by, int64_t since,
    int64_t until, int64_t covered, int64_t min_ts, int64_t max_ts)
{
	int64_t a = min_ts == SUMS_NONE || since <= min_ts ? SUMS_NONE : since;
	int64_t b = max_ts == SUMS_NONE || until > max_ts ? SUMS_NONE : until;

	/* The rows not yet counted: by rowid, the ts index not wanted. */
	sums_add(q, "SELECT ts, client, client_name, rule, category, site,"
	    " policy, 1, visit, verified FROM attempts NOT INDEXED WHERE"
	    " id > %" PRId64 " AND ts >= %" PRId64 " AND ts < %" PRId64,
	    covered, since, until);
	sums_plan(q, by, a, b, covered);
}

/* The plan for [a, b) (ms, SUMS_NONE: open) of a report by by. */
static void
sums_plan(struct sums_sql *q, enum report_by by, int64_t a, int64_t b,
    int64_t covered)
{
	switch (by) {
	case REPORT_BY_CLIENT:
		sums_plan_days(q, SINK_SUM_CLIENT, a, b, covered);
		break;
	case REPORT_BY_CATEGORY:
	case REPORT_BY_SITE:
	case REPORT_BY_DOMAIN:
		sums_plan_days(q, SINK_SUM_RULE, a, b, covered);
		break;
	case REPORT_BY_POLICY:
		sums_plan_days(q, SINK_SUM_POLICY, a, b, covered);
		break;
	default:
		sums_plan_quarters(q, a, b, covered);
		break;
	}
}

char *
rp_central_counts_sql(const struct report_opts *o)
{
	struct sums_sql q = { .central = true, .months_day = SUMS_ALL };
	int64_t a = o->since <= 0 ? SUMS_NONE : o->since;
	int64_t b = o->until == RP_TIME_MAX ? SUMS_NONE : o->until;

	q.inst = o->instance[0] != '\0' ? " AND instance = $1" : "";
	/* The first SELECT names the columns and their types. */
	sums_add(&q, "SELECT min(ts), client, client_name, rule, category,"
	    " site, policy, sum(queries), sum(attempts), sum(verified),"
	    " instance FROM (SELECT NULL::bigint AS ts, NULL::text AS client,"
	    " NULL::text AS client_name, NULL::text AS rule, NULL::text AS"
	    " category, NULL::text AS site, NULL::text AS policy, 0::bigint AS"
	    " queries, 0::bigint AS attempts, 0::bigint AS verified,"
	    " NULL::text AS instance WHERE false");
	sums_plan(&q, o->by, a, b, 0);
	sums_add(&q, ") AS r0 GROUP BY ts / %d, client, client_name, rule,"
	    " category, site, policy, instance", SINK_QUARTER_S * 1000);
	if (q.oom) {
		free(q.buf);
		return NULL;
	}
	return q.buf;
}

/*
 * Days, weeks and months: the quarter hours summed into the zone's days
 * first (a fixed offset: arithmetic), or into quarter hours (a zone
 * with daylight saving time: its days begin on a quarter hour too), so
 * that the date functions run once a bucket, not once a summary row.
 * Each bucket's ts is an instant inside its day.
 */
static void
sums_time_buckets(struct sums_sql *q, enum report_by by,
    const struct rp_tz *tz)
{
	long off = tz->kind == RP_TZ_LOCAL ? 0 : tz->offset;
	long step = tz->kind == RP_TZ_LOCAL ? SINK_QUARTER_S : 86400;

	if (by != REPORT_BY_DAY && by != REPORT_BY_WEEK &&
	    by != REPORT_BY_MONTH) {
		sums_add(q, ", r AS (SELECT * FROM r0i");
		return;
	}
	sums_add(q, ", r AS (SELECT (b * %ld - %ld) * 1000 AS ts, NULL AS"
	    " client, NULL AS client_name, NULL AS rule, NULL AS category,"
	    " NULL AS site, NULL AS policy, sum(queries) AS queries,"
	    " sum(attempts) AS attempts, sum(verified) AS verified, instance"
	    " FROM (SELECT (ts / 1000 + %ld) / %ld AS b, queries, attempts,"
	    " verified, instance FROM r0i) GROUP BY b, instance", step, off,
	    off, step);
}

/*
 * q holds "WITH r0i AS (...)": the input rows, with their instance. The
 * zone's buckets, the groups, the order, --top.
 */
static int
counts_grouped(struct report_db *d, const struct report_opts *o,
    const struct rp_tz *tz, struct report_rows *r, struct sums_sql *q,
    char *err, size_t errlen)
{
	const struct by_def *by = &by_defs[o->by];
	char select[512], zone[64];
	sqlite3_stmt *st;
	int rc;

	rp_tz_modifier(tz, zone, sizeof(zone));
	expand_zone(by->select, zone, select, sizeof(select));
	sums_time_buckets(q, o->by, tz);
	sums_add(q, "), g AS (SELECT %s coalesce(sum(queries), 0) AS"
	    " queries, coalesce(sum(attempts), 0) AS attempts,"
	    " coalesce(sum(verified), 0) AS verified_queries,"
	    " coalesce(sum(queries), 0) - coalesce(sum(verified), 0) AS"
	    " unverified_queries FROM r %s"
	    " ORDER BY attempts DESC, queries DESC, 1 LIMIT ?1)"
	    " SELECT * FROM g ORDER BY %s", select, by->group,
	    by->by_time ? "1" : "attempts DESC, queries DESC, 1");
	if (q->oom) {
		free(q->buf);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = sqlite3_prepare_v2(d->db, q->buf, -1, &st, NULL);
	free(q->buf);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, o->top > 0 ? o->top : -1);
	sqlite3_bind_text(st, 2, d->instance, -1, SQLITE_STATIC);
	if (o->instance[0] != '\0')
		sqlite3_bind_text(st, 3, o->instance, -1, SQLITE_STATIC);
	r->cols = by->cols;
	r->ncols = by->ncols;
	rc = rows_fill(r, d->db, st, tz, err, errlen);
	sqlite3_finalize(st);
	return rc;
}

static int
counts_query_sums(struct report_db *d, const struct report_opts *o,
    const struct rp_tz *tz, struct report_rows *r, int64_t covered,
    int64_t min_ts, int64_t max_ts, int64_t months_day, char *err,
    size_t errlen)
{
	struct sums_sql q = { .months_day = months_day,
	    .rule_days = d->version >= 7 };

	sums_add(&q, "WITH r0 (ts, client, client_name, rule, category, site,"
	    " policy, queries, attempts, verified) AS (");
	sums_source(&q, o->by, o->since, o->until, covered, min_ts, max_ts);
	/* A local log is one instance: --instance keeps all or nothing. */
	sums_add(&q, "), r0i AS (SELECT r0.*, ?2 AS instance FROM r0 WHERE"
	    " ?3 IS NULL OR ?3 = ?2)");
	return counts_grouped(d, o, tz, r, &q, err, errlen);
}

int
rp_counts_grouped(struct report_db *mem, const struct report_opts *o,
    const struct rp_tz *tz, struct report_rows *r, char *err, size_t errlen)
{
	struct sums_sql q = { 0 };

	sums_add(&q, "WITH r0i AS (SELECT ts, client, client_name, rule,"
	    " category, site, policy, queries, attempts, verified, instance"
	    " FROM c WHERE ?3 IS NULL OR instance = ?3)");
	return counts_grouped(mem, o, tz, r, &q, err, errlen);
}

/* ---- attempts ---- */

static const struct report_column attempt_cols[] = {
	{ "time", REPORT_T_TIME }, { "client", T }, { "client_name", T },
	{ "qname", T }, { "qtype", T }, { "rule", T }, { "category", T },
	{ "site", T }, { "transport", T }, { "verified", REPORT_T_BOOL },
	{ "policy", T }, { "id", REPORT_T_INT },
};

/*
 * The filters of `dnswarden log`, each a WHERE term on fixed parameters:
 * ?3 the client (?4 its pseudonym), ?5 the site, ?8 the category, ?9 the
 * rule. Imported lists' rows have no site: --category and --rule find
 * them. (attempts_query() adds ?6, ?7 and ?12.)
 */
enum { F_CLIENT, F_SITE, F_CATEGORY, F_RULE, F_INSTANCE, F_N };

static const struct rp_filter {
	const char	*where;
	const char	*what;		/* "no attempts <what> VALUE" */
	const char	*option;
} filters[F_N] = {
	[F_CLIENT] = { "(client = ?3 OR client_name = ?3 OR client = ?4)",
	    "for client", "--client" },
	[F_SITE] = { "site = ?5 COLLATE NOCASE", "for site", "--site" },
	[F_CATEGORY] = { "category = ?8 COLLATE NOCASE", "in category",
	    "--category" },
	[F_RULE] = { "rule = ?9 COLLATE NOCASE", "for rule", "--rule" },
	/* A local log is one instance, ?11. */
	[F_INSTANCE] = { "?10 = ?11", "at instance", "--instance" },
};

static const char *
filter_value(const struct report_opts *o, int f)
{
	const char *v[F_N] = { o->client, o->site, o->category, o->rule,
	    o->instance };

	return v[f];
}

/*
 * --client given as an address is that client (or its pseudonym, ?4),
 * never a clients: name: the walk down index attempts_log then compares
 * one column of each entry instead of two or three (a client's first
 * page at ten million rows, docs/performance.md).
 */
bool
rp_client_is_address(const char *v)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, v, &a4) == 1 ||
	    inet_pton(AF_INET6, v, &a6) == 1;
}

static const char *
filter_where(const struct report_opts *o, const char *pseudonym, int f)
{
	if (f == F_CLIENT && rp_client_is_address(o->client))
		return pseudonym[0] != '\0' ? "client IN (?3, ?4)" :
		    "client = ?3";
	return filters[f].where;
}

/* " AND term" for each filter given in o and in mask (bits 1 << F_*). */
static void
filters_where(const struct report_opts *o, const char *pseudonym,
    unsigned mask, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int f = 0; f < F_N; f++)
		if ((mask & (1u << f)) && filter_value(o, f)[0] != '\0')
			n += (size_t)snprintf(buf + n, len - n, " AND %s",
			    filter_where(o, pseudonym, f));
}

static void
filters_bind(sqlite3_stmt *st, const struct report_db *d,
    const struct report_opts *o, const char *pseudonym)
{
	sqlite3_bind_int64(st, 1, o->since);
	sqlite3_bind_int64(st, 2, o->until);
	/* A parameter the statement does not use is SQLITE_RANGE: no harm. */
	if (o->client[0] != '\0')
		sqlite3_bind_text(st, 3, o->client, -1, SQLITE_STATIC);
	if (pseudonym[0] != '\0')
		sqlite3_bind_text(st, 4, pseudonym, -1, SQLITE_STATIC);
	if (o->site[0] != '\0')
		sqlite3_bind_text(st, 5, o->site, -1, SQLITE_STATIC);
	if (o->category[0] != '\0')
		sqlite3_bind_text(st, 8, o->category, -1, SQLITE_STATIC);
	if (o->rule[0] != '\0')
		sqlite3_bind_text(st, 9, o->rule, -1, SQLITE_STATIC);
	if (o->instance[0] != '\0') {
		sqlite3_bind_text(st, 10, o->instance, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 11, d->instance, -1, SQLITE_STATIC);
	}
}

#define RP_STR(x)	#x
#define RP_XSTR(x)	RP_STR(x)

/*
 * Each filter as a WHERE term on the summaries (sink.h): the client and
 * its name are kind CLIENT's k1 and k2, the rule, category and site kind
 * RULE's k1, k2 and k3. Same parameters as filters[].
 */
static const struct {
	int		 kind;
	const char	*where;
} sums_filters[F_N] = {
	[F_CLIENT] = { SINK_SUM_CLIENT, "(k1 = ?3 OR k2 = ?3 OR k1 = ?4)" },
	[F_SITE] = { SINK_SUM_RULE, "k3 = ?5 COLLATE NOCASE" },
	[F_CATEGORY] = { SINK_SUM_RULE, "k2 = ?8 COLLATE NOCASE" },
	[F_RULE] = { SINK_SUM_RULE, "k1 = ?9 COLLATE NOCASE" },
};

/*
 * The start (Unix ms) of the oldest day the summaries of kind count:
 * rows before it (kept past retention for a central shipper) are in no
 * summary. 0 when there is none; -1 on error.
 */
static int64_t
sums_oldest_day(struct report_db *d, int kind)
{
	sqlite3_stmt *st;
	int64_t t = -1;

	if (sqlite3_prepare_v2(d->db, kind == SINK_SUM_RULE && d->version >= 7 ?
	    "SELECT coalesce(min(t), 0) * 1000 FROM attempt_sums_rules WHERE"
	    " ?1 IS NOT NULL" : "SELECT coalesce(min(t), 0) * 1000 FROM"
	    " attempt_sums WHERE kind = ?1 AND grain = " RP_XSTR(SINK_GRAIN_DAY),
	    -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int(st, 1, kind);
	if (sqlite3_step(st) == SQLITE_ROW)
		t = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return t;
}

/*
 * Can filter f (given in o) match a row of the period? 0 when the
 * summaries say no: no month overlapping the period counts a row that
 * passes it, and no row that they do not cover (newer than covered_id,
 * or older than their oldest day) does. 1 when it may, or when the
 * summaries cannot tell (an older file, an upgrade under way). A value
 * that matches nothing (a mistyped address, a site never visited) so
 * answers from a few thousand summary rows instead of a walk over every
 * row of the period (10 million rows: 7 s of CPU).
 */
static int
filter_possible(struct report_db *d, const struct report_opts *o,
    const char *pseudonym, int f)
{
	int64_t covered, min_ts, max_ts, months_day, oldest;
	char sql[1536], days[128];
	const char *where;
	sqlite3_stmt *st;
	int rc = 1;

	if (sums_filters[f].where == NULL || filter_value(o, f)[0] == '\0' ||
	    !sums_usable(d, &covered, &min_ts, &max_ts, &months_day) ||
	    (oldest = sums_oldest_day(d, sums_filters[f].kind)) == -1)
		return 1;
	/*
	 * The months, then the days not yet in a month, each its own range
	 * of the key (kind, grain, t): one OR of the two grains was a
	 * search on kind alone, every day row of the year (10M rows, 5,000
	 * clients: 100 ms where the months take 1). Since version 7 the rule
	 * days are in a table of their own.
	 */
	where = f == F_CLIENT && rp_client_is_address(o->client) ?
	    "k1 IN (?3, ?4)" : sums_filters[f].where;
	if (sums_filters[f].kind == SINK_SUM_RULE && d->version >= 7)
		snprintf(days, sizeof(days), "attempt_sums_rules WHERE");
	else
		snprintf(days, sizeof(days), "attempt_sums WHERE kind = %d AND"
		    " grain = %d AND", sums_filters[f].kind, SINK_GRAIN_DAY);
	snprintf(sql, sizeof(sql), "SELECT EXISTS (SELECT 1 FROM attempt_sums"
	    " WHERE kind = %d AND grain = %d AND t >= ?20 AND t < ?21 AND %s)"
	    " OR EXISTS (SELECT 1 FROM %s t >= max(?20, ?24) AND t < ?21 AND"
	    " %s)"
	    " OR EXISTS (SELECT 1 FROM attempts NOT INDEXED WHERE id > ?22 AND"
	    " ts >= ?1"
	    " AND ts < ?2 AND %s) OR EXISTS (SELECT 1 FROM attempts WHERE"
	    " ts >= ?1 AND ts < ?23 AND %s)", sums_filters[f].kind,
	    SINK_GRAIN_MONTH, where, days, where,
	    filter_where(o, pseudonym, f), filter_where(o, pseudonym, f));
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return 1;
	filters_bind(st, d, o, pseudonym);
	sqlite3_bind_int64(st, 20, cal_month_start(o->since / 1000));
	sqlite3_bind_int64(st, 21, o->until / 1000 + (o->until % 1000 != 0));
	sqlite3_bind_int64(st, 22, covered);
	sqlite3_bind_int64(st, 23, oldest < o->until ? oldest : o->until);
	sqlite3_bind_int64(st, 24, months_day);
	if (sqlite3_step(st) == SQLITE_ROW)
		rc = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	return rc;
}

/* Can every filter in mask match? 0 when one cannot (see above). */
static int
filters_possible(struct report_db *d, const struct report_opts *o,
    const char *pseudonym, unsigned mask)
{
	for (int f = 0; f < F_N; f++)
		if ((mask & (1u << f)) && filter_possible(d, o, pseudonym, f)
		    == 0)
			return 0;
	return 1;
}

/* Does any row of the period pass the filters in mask? -1: error. */
static int
attempts_exist(struct report_db *d, const struct report_opts *o,
    const char *pseudonym, unsigned mask)
{
	char sql[1024], where[512];
	sqlite3_stmt *st;
	int rc = -1;

	if (filters_possible(d, o, pseudonym, mask) == 0)
		return 0;
	filters_where(o, pseudonym, mask, where, sizeof(where));
	snprintf(sql, sizeof(sql), "SELECT EXISTS (SELECT 1 FROM attempts"
	    " WHERE ts >= ?1 AND ts < ?2%s)", where);
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	filters_bind(st, d, o, pseudonym);
	if (sqlite3_step(st) == SQLITE_ROW)
		rc = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc;
}

/*
 * No rows: say why, in r->empty. The rule: when the period holds no
 * attempt at all, the period; else the first filter (in the order
 * --client, --site, --category, --rule) that alone matches nothing in
 * the period; else the filters together; else --before (the last page).
 */
static void
attempts_why_empty(struct report_db *d, const struct report_opts *o,
    const char *pseudonym, const char *period, struct report_rows *r)
{
	size_t n = 0;
	unsigned given = 0;
	const char *and = "";

	for (int f = 0; f < F_N; f++)
		if (filter_value(o, f)[0] != '\0')
			given |= 1u << f;
	if (attempts_exist(d, o, pseudonym, 0) == 0) {
		snprintf(r->empty, sizeof(r->empty), "no attempts %s", period);
		return;
	}
	for (int f = 0; f < F_N; f++)
		if ((given & (1u << f)) &&
		    attempts_exist(d, o, pseudonym, 1u << f) == 0) {
			snprintf(r->empty, sizeof(r->empty), "no attempts %s"
			    " %s %s", filters[f].what, filter_value(o, f),
			    period);
			return;
		}
	if (given != 0 && attempts_exist(d, o, pseudonym, given) == 0) {
		n = (size_t)snprintf(r->empty, sizeof(r->empty),
		    "no attempts match");
		for (int f = 0; f < F_N && n < sizeof(r->empty); f++)
			if (given & (1u << f)) {
				n += (size_t)snprintf(r->empty + n,
				    sizeof(r->empty) - n, "%s %s %s", and,
				    filters[f].option, filter_value(o, f));
				and = " and";
			}
		if (n < sizeof(r->empty))
			snprintf(r->empty + n, sizeof(r->empty) - n,
			    " together %s", period);
		return;
	}
	if (o->before > 0)
		snprintf(r->empty, sizeof(r->empty), "no attempts before id %"
		    PRId64 " %s", o->before, period);
}

/*
 * The time of the row --before names, or of the row before it when
 * retention deleted it: *ts, 1; 0 when there is no such row; -1 on error.
 */
static int
attempts_before_ts(struct report_db *d, int64_t before, int64_t *ts)
{
	sqlite3_stmt *st;
	int rc = -1;

	if (sqlite3_prepare_v2(d->db, "SELECT ts FROM attempts WHERE id <= ?1"
	    " ORDER BY id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, before);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		*ts = sqlite3_column_int64(st, 0);
		rc = 1;
		break;
	case SQLITE_DONE:
		rc = 0;
		break;
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * The page's statement. With a --limit, the page's ids come first from
 * the index alone, then their rows: the walk then reads index entries
 * only (no seek set up on the table for each entry it skips), a fifth to
 * a third less CPU for a client's page. Without one (every row), the rows
 * are read as the walk finds them, instead of a list of every id first.
 */
static void
attempts_sql(const struct report_db *d, const struct report_opts *o,
    const char *where, char *sql, size_t len)
{
	char ids[1024];

	/* No --since: no lower bound to check at every entry of the walk
	 * (a fifth of a client's page). */
	snprintf(ids, sizeof(ids), "FROM attempts%s WHERE %sts < ?2%s%s ORDER"
	    " BY ts DESC, id DESC LIMIT ?6", d->has_log_index ?
	    " INDEXED BY attempts_log" : "", o->since > 0 ? "ts >= ?1 AND " :
	    "", where, o->before > 0 ? " AND (ts, id) < (?12, ?7)" : "");
	snprintf(sql, len, "SELECT ts, client, client_name, qname, qtype, rule,"
	    " category, site, transport, %s, %s, id %s%s%s", verified_expr(d),
	    policy_expr(d), o->limit > 0 ? "FROM attempts WHERE id IN"
	    " (SELECT id " : "", ids, o->limit > 0 ? ") ORDER BY ts DESC,"
	    " id DESC" : "");
}

/*
 * The rows of `dnswarden log`, newest first. --before ID pages: the rows
 * after ID in that order (ID itself may be gone, deleted by retention).
 * The page's newest possible time is the query's upper bound on ts, so
 * that a page deep in the file is a seek on the ts index, not a walk
 * down from the newest row (tests: test_plans, test_page_cost in
 * report_test.c). Index attempts_log (version 5) is in the page's order
 * and holds client and client_name: a client's page walks it reading
 * only the rows it shows. INDEXED BY: the walk must stay in that order
 * whatever the filters, not become a scan and a sort; a file without the
 * index (older, or upgraded and not yet indexed) walks attempts_ts.
 */
static int
attempts_query(struct report_db *d, const struct report_opts *o,
    const char *pseudonym, const struct rp_tz *tz, struct report_rows *r,
    char *err, size_t errlen)
{
	sqlite3_stmt *st;
	char sql[1536], where[512];
	int64_t until = o->until, before_ts = 0;
	int rc;

	r->cols = attempt_cols;
	r->ncols = sizeof(attempt_cols) / sizeof(attempt_cols[0]);
	if (o->before > 0) {
		if ((rc = attempts_before_ts(d, o->before, &before_ts)) == -1) {
			snprintf(err, errlen, "cannot read the log: %s",
			    sqlite3_errmsg(d->db));
			return -1;
		}
		if (rc == 0)		/* nothing at or below the id */
			return 0;
		if (before_ts < until)
			until = before_ts + 1;
	}
	if (filters_possible(d, o, pseudonym, ~0u) == 0)
		return 0;
	filters_where(o, pseudonym, ~0u, where, sizeof(where));
	attempts_sql(d, o, where, sql, sizeof(sql));
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
		return -1;
	}
	filters_bind(st, d, o, pseudonym);
	sqlite3_bind_int64(st, 2, until);
	sqlite3_bind_int64(st, 6, o->limit > 0 ? o->limit : -1);
	if (o->before > 0) {
		sqlite3_bind_int64(st, 7, o->before);
		sqlite3_bind_int64(st, 12, before_ts);
	}
	rc = rows_fill(r, d->db, st, tz, err, errlen);
	sqlite3_finalize(st);
	r->limit_reached = o->limit > 0 && r->nrows == (size_t)o->limit;
	return rc;
}

/* ---- running ---- */

/* "Blocked attempts from 2024-05-01T00:00:00Z to now (times in UTC)..." */
static void
rows_title(struct report_rows *r, const struct report_opts *o,
    const struct rp_tz *tz, bool central, char *period, size_t plen)
{
	char from[64] = "the first row", to[64] = "now", extra[400] = "";
	char where[REPORT_ARG_MAX + 32] = "", before[REPORT_ARG_MAX + 24];

	if (o->since != 0)
		rp_time_format(o->since, tz, from, sizeof(from));
	if (o->until != RP_TIME_MAX)
		rp_time_format(o->until, tz, to, sizeof(to));
	if (o->instance[0] != '\0')
		snprintf(where, sizeof(where), " at instance %s", o->instance);
	else if (central)
		snprintf(where, sizeof(where), " at all instances");
	if (central)
		snprintf(before, sizeof(before), "%s:%" PRId64,
		    o->before_instance[0] ? o->before_instance : o->instance,
		    o->before);
	else
		snprintf(before, sizeof(before), "%" PRId64, o->before);
	if (o->kind == REPORT_ATTEMPTS && o->before > 0)
		snprintf(extra, sizeof(extra), ", newest first, before id %s%s",
		    before, r->limit_reached ? " (--limit reached)" : "");
	else if (o->kind == REPORT_ATTEMPTS)
		snprintf(extra, sizeof(extra), ", newest first%s",
		    r->limit_reached ? " (--limit reached)" : "");
	else if (o->by != REPORT_BY_TOTAL)
		snprintf(extra, sizeof(extra), ", by %s", rp_by_name(o->by));
	snprintf(r->title, sizeof(r->title), "Blocked attempts%s from %s to %s"
	    " (times in %s)%s", where, from, to, tz->label, extra);
	snprintf(period, plen, "from %s to %s", from, to);
}

int
report_run(struct report_db *d, const struct report_opts *o,
    const char *pseudonym_key, struct report_rows **out, char *err,
    size_t errlen)
{
	char pseudonym[ATTEMPTLOG_PSEUDONYM_LEN + 1] = "", period[160];
	int64_t covered, min_ts, max_ts, months_day;
	struct report_rows *r;
	struct rp_tz tz;
	int rc;

	*out = NULL;
	if (rp_tz_parse(o->tz, &tz, err, errlen) == -1)
		return -1;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* --client may be an address while the log holds pseudonyms. */
	if (o->kind == REPORT_ATTEMPTS && o->client[0] != '\0' &&
	    pseudonym_key != NULL)
		attemptlog_pseudonym(pseudonym_key, o->client, pseudonym);
	if (d->pg != NULL) {
		rc = o->kind == REPORT_ATTEMPTS ? rp_central_attempts(d, o,
		    pseudonym, &tz, r, err, errlen) : rp_central_counts(d, o,
		    &tz, r, err, errlen);
		rows_title(r, o, &tz, true, period, sizeof(period));
		if (rc == 0 && o->kind == REPORT_ATTEMPTS && r->nrows == 0)
			rp_central_why_empty(d, o, period, r);
		goto out;
	}
	/* One read transaction: the rows and the lost-row gaps agree. */
	sqlite3_exec(d->db, "BEGIN", NULL, NULL, NULL);
	if (o->kind == REPORT_ATTEMPTS)
		rc = attempts_query(d, o, pseudonym, &tz, r, err, errlen);
	else if (!o->scan && sums_usable(d, &covered, &min_ts, &max_ts,
	    &months_day))
		rc = counts_query_sums(d, o, &tz, r, covered, min_ts, max_ts,
		    months_day, err, errlen);
	else
		rc = counts_query(d, o, &tz, r, err, errlen);
	if (rc == 0 && d->has_gaps)
		rows_gaps(r, d->db, o, &tz);
	rows_title(r, o, &tz, false, period, sizeof(period));
	if (rc == 0 && o->kind == REPORT_ATTEMPTS && r->nrows == 0)
		attempts_why_empty(d, o, pseudonym, period, r);
	sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
out:
	if (rc == -1) {
		report_rows_free(r);
		return -1;
	}
	*out = r;
	return 0;
}
