/*
 * rp_central: report_run() on the central PostgreSQL database that every
 * instance ships its rows to (../central/). See report.h.
 *
 * Counts come from dnswarden_sums, which each shipped batch updates in
 * its own transaction, and from the rows of the stretches at either end
 * of the period that are not a whole quarter hour, day or month: the
 * plan of the local summaries (rp_query.c), run by PostgreSQL and grouped
 * there as far as the report's grouping allows. Those few rows are then
 * grouped into the report by the local code, in an SQLite database in
 * memory, so that both give the same numbers in the same order. The log
 * reads dnswarden_attempts newest first, by its ts index.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rp_internal.h"

#define RP_CENTRAL_TIMEOUT	5	/* connect_timeout, seconds */
#define RP_CENTRAL_SCHEMA	2	/* the newest central schema read */

/* err = what, ": ", libpq's message on one line. */
static void
pg_err(PGconn *pg, const char *what, char *err, size_t errlen)
{
	const char *m = pg != NULL ? PQerrorMessage(pg) : "out of memory";
	size_t n;

	snprintf(err, errlen, "%s: %s", what, m && m[0] ? m : "unknown error");
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\t' || *p == '\r')
			*p = ' ';
	n = strlen(err);
	while (n > 0 && err[n - 1] == ' ')
		err[--n] = '\0';
}

/* The tables there, and their version. 0 or -1 (err). */
static int
central_check(PGconn *pg, char *err, size_t errlen)
{
	PGresult *res = PQexec(pg, "SELECT to_regclass('dnswarden_attempts')"
	    " IS NOT NULL, to_regclass('dnswarden_sums') IS NOT NULL");
	int rc = -1, version = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		pg_err(pg, "cannot read the central database", err, errlen);
	else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		snprintf(err, errlen, "the central database %s has no table"
		    " dnswarden_attempts: no dnswarden has shipped to it yet,"
		    " or log.central.postgresql names another database",
		    PQdb(pg));
	else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0)
		snprintf(err, errlen, "the central database %s has no table"
		    " dnswarden_sums: start a dnswarden of this version"
		    " shipping to it, which adds it", PQdb(pg));
	else
		rc = 0;
	PQclear(res);
	if (rc == -1)
		return -1;
	res = PQexec(pg, "SELECT value FROM dnswarden_meta WHERE key ="
	    " 'schema_version'");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (version > RP_CENTRAL_SCHEMA) {
		snprintf(err, errlen, "the central database's schema version"
		    " %d is newer than this dnswarden's (%d); use a newer"
		    " dnswarden", version, RP_CENTRAL_SCHEMA);
		return -1;
	}
	return 0;
}

struct report_db *
report_db_open_central_as(const char *conninfo, const char *app,
    int timeout_s, int statement_ms, char *err, size_t errlen)
{
	char timeout[16], options[64];
	/* Ours first: what conninfo sets overrides them. */
	const char *const keys[] = { "connect_timeout", "application_name",
	    "options", "dbname", NULL };
	const char *vals[] = { timeout, app, options, conninfo, NULL };
	struct report_db *d;

	snprintf(timeout, sizeof(timeout), "%d", timeout_s);
	options[0] = '\0';	/* an empty value is no value to libpq */
	if (statement_ms > 0)
		snprintf(options, sizeof(options), "-c statement_timeout=%d",
		    statement_ms);
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->pg = PQconnectdbParams(keys, vals, 1);
	if (d->pg == NULL || PQstatus(d->pg) != CONNECTION_OK) {
		pg_err(d->pg, "cannot connect to the central database", err,
		    errlen);
		report_db_close(d);
		return NULL;
	}
	if (central_check(d->pg, err, errlen) == -1) {
		report_db_close(d);
		return NULL;
	}
	return d;
}

struct report_db *
report_db_open_central(const char *conninfo, char *err, size_t errlen)
{
	return report_db_open_central_as(conninfo, "dnswarden report",
	    RP_CENTRAL_TIMEOUT, 0, err, errlen);
}

/*
 * The instances with summaries: a loose index scan of dnswarden_sums'
 * primary key (one probe per instance, not a read of every row), and
 * the table a reader is granted (docs/central.md).
 */
int
report_db_instances(struct report_db *d, char ***names, size_t *n,
    char *err, size_t errlen)
{
	PGresult *res;
	char **v;
	int rows;

	*names = NULL;
	*n = 0;
	if (d->pg == NULL) {
		snprintf(err, errlen, "not the central database");
		return -1;
	}
	res = PQexec(d->pg, "WITH RECURSIVE i AS (SELECT min(instance) AS"
	    " name FROM dnswarden_sums UNION ALL SELECT (SELECT"
	    " min(instance) FROM dnswarden_sums WHERE instance > i.name)"
	    " FROM i WHERE i.name IS NOT NULL) SELECT name FROM i WHERE"
	    " name IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_err(d->pg, "cannot read the central database", err, errlen);
		PQclear(res);
		return -1;
	}
	rows = PQntuples(res);
	if ((v = calloc((size_t)rows + 1, sizeof(*v))) == NULL) {
		PQclear(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < rows; i++)
		if ((v[i] = strdup(PQgetvalue(res, i, 0))) == NULL) {
			report_names_free(v);
			PQclear(res);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	PQclear(res);
	*names = v;
	*n = (size_t)rows;
	return 0;
}

void
report_names_free(char **names)
{
	for (size_t i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

bool
report_db_ok(const struct report_db *d)
{
	return d->pg == NULL || PQstatus(d->pg) == CONNECTION_OK;
}

/* ---- counts ---- */

/* The rows of res into table c of mem. 0 or -1 (err). */
static int
mem_fill(sqlite3 *mem, PGresult *res, char *err, size_t errlen)
{
	static const bool text[11] = { false, true, true, true, true, true,
	    true, false, false, false, true };
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_exec(mem, "CREATE TABLE c (ts INTEGER, client TEXT,"
	    " client_name TEXT, rule TEXT, category TEXT, site TEXT, policy"
	    " TEXT, queries INTEGER, attempts INTEGER, verified INTEGER,"
	    " instance TEXT); BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(mem, "INSERT INTO c VALUES (?, ?, ?, ?, ?, ?,"
	    " ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(mem));
		return -1;
	}
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		for (int j = 0; j < 11; j++) {
			const char *v = PQgetvalue(res, i, j);

			if (PQgetisnull(res, i, j))
				sqlite3_bind_null(st, j + 1);
			else if (text[j])
				sqlite3_bind_text(st, j + 1, v, -1,
				    SQLITE_STATIC);
			else
				sqlite3_bind_int64(st, j + 1,
				    strtoll(v, NULL, 10));
		}
		if (sqlite3_step(st) != SQLITE_DONE) {
			snprintf(err, errlen, "%s", sqlite3_errmsg(mem));
			rc = -1;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc == 0 && sqlite3_exec(mem, "COMMIT", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(mem));
		rc = -1;
	}
	return rc;
}

int
rp_central_counts(struct report_db *d, const struct report_opts *o,
    const struct rp_tz *tz, struct report_rows *r, char *err, size_t errlen)
{
	struct report_db mem = { .version = 4 };
	const char *params[1] = { o->instance };
	char *sql;
	PGresult *res;
	int rc = -1;

	if ((sql = rp_central_counts_sql(o)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	res = PQexecParams(d->pg, sql, o->instance[0] != '\0' ? 1 : 0, NULL,
	    params, NULL, NULL, 0);
	free(sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_err(d->pg, "cannot read the central database", err, errlen);
		PQclear(res);
		return -1;
	}
	if (sqlite3_open(":memory:", &mem.db) != SQLITE_OK)
		snprintf(err, errlen, "out of memory");
	else if (mem_fill(mem.db, res, err, errlen) == 0)
		rc = rp_counts_grouped(&mem, o, tz, r, err, errlen);
	PQclear(res);
	sqlite3_close(mem.db);
	return rc;
}

/* ---- the log ---- */

static const struct report_column central_cols[] = {
	{ "time", REPORT_T_TIME }, { "client", REPORT_T_TEXT },
	{ "client_name", REPORT_T_TEXT }, { "qname", REPORT_T_TEXT },
	{ "qtype", REPORT_T_TEXT }, { "rule", REPORT_T_TEXT },
	{ "category", REPORT_T_TEXT }, { "site", REPORT_T_TEXT },
	{ "transport", REPORT_T_TEXT }, { "verified", REPORT_T_BOOL },
	{ "policy", REPORT_T_TEXT }, { "instance", REPORT_T_TEXT },
	{ "id", REPORT_T_INT },
};
#define NCOLS	(sizeof(central_cols) / sizeof(central_cols[0]))

/* A query and its parameters, $1... in order. */
struct pq_sql {
	char		 sql[2048];
	size_t		 len;
	const char	*params[12];
	int		 n;
};

static void
pq_add(struct pq_sql *q, const char *s)
{
	int n = snprintf(q->sql + q->len, sizeof(q->sql) - q->len, "%s", s);

	if (n > 0)
		q->len += (size_t)n < sizeof(q->sql) - q->len ? (size_t)n :
		    sizeof(q->sql) - q->len - 1;
}

/* fmt with its one %d the next parameter's number, bound to value. */
static void
pq_param(struct pq_sql *q, const char *fmt, const char *value)
{
	char buf[256];

	q->params[q->n++] = value;
	snprintf(buf, sizeof(buf), fmt, q->n, q->n, q->n);
	pq_add(q, buf);
}

/* The period and filters of o, as " AND ..." terms. */
static void
central_where(struct pq_sql *q, const struct report_opts *o,
    const char *pseudonym, bool filters)
{
	char buf[160];

	if (o->since > 0) {
		snprintf(buf, sizeof(buf), " AND ts >= timestamptz 'epoch' + %"
		    PRId64 " * interval '1 millisecond'", o->since);
		pq_add(q, buf);
	}
	if (o->until != INT64_MAX) {
		snprintf(buf, sizeof(buf), " AND ts < timestamptz 'epoch' + %"
		    PRId64 " * interval '1 millisecond'", o->until);
		pq_add(q, buf);
	}
	if (!filters)
		return;
	if (o->client[0] != '\0' && rp_client_is_address(o->client)) {
		/* An address is the device, as in a local log. */
		pq_param(q, " AND (client = $%d", o->client);
		if (pseudonym[0] != '\0')
			pq_param(q, " OR client = $%d", pseudonym);
		pq_add(q, ")");
	} else if (o->client[0] != '\0') {
		pq_param(q, " AND (client = $%d OR client_name = $%d", o->client);
		if (pseudonym[0] != '\0')
			pq_param(q, " OR client = $%d", pseudonym);
		pq_add(q, ")");
	}
	if (o->site[0] != '\0')
		pq_param(q, " AND lower(site) = lower($%d)", o->site);
	if (o->category[0] != '\0')
		pq_param(q, " AND lower(category) = lower($%d)", o->category);
	if (o->rule[0] != '\0')
		pq_param(q, " AND lower(rule) = lower($%d)", o->rule);
	if (o->instance[0] != '\0')
		pq_param(q, " AND instance = $%d", o->instance);
}

/* The row of res as cells of r. 0 or -1 (out of memory). */
static int
rows_add_pg(struct report_rows *r, size_t *cap, PGresult *res, int row,
    const struct rp_tz *tz)
{
	struct report_cell *cells;
	char tbuf[64];

	if (r->nrows == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;

		if ((cells = reallocarray(r->cells, ncap * r->ncols,
		    sizeof(*cells))) == NULL)
			return -1;
		r->cells = cells;
		*cap = ncap;
	}
	cells = r->cells + r->nrows * r->ncols;
	memset(cells, 0, r->ncols * sizeof(*cells));
	r->nrows++;		/* from here, freed with r */
	for (size_t i = 0; i < r->ncols; i++) {
		const char *v = PQgetvalue(res, row, (int)i);

		if (PQgetisnull(res, row, (int)i))
			continue;
		if (r->cols[i].type != REPORT_T_TEXT)
			cells[i].num = strtoll(v, NULL, 10);
		if (r->cols[i].type == REPORT_T_TIME) {
			rp_time_format(cells[i].num, tz, tbuf, sizeof(tbuf));
			v = tbuf;
		} else if (r->cols[i].type != REPORT_T_TEXT)
			continue;
		if ((cells[i].text = strdup(v)) == NULL)
			return -1;
	}
	return 0;
}

int
rp_central_attempts(struct report_db *d, const struct report_opts *o,
    const char *pseudonym, const struct rp_tz *tz, struct report_rows *r,
    char *err, size_t errlen)
{
	struct pq_sql q = { .len = 0 };
	char before[32], limit[64];
	const char *binst = o->before_instance[0] ? o->before_instance :
	    o->instance;
	size_t cap = 0;
	PGresult *res;

	pq_add(&q, "SELECT floor(extract(epoch FROM ts) * 1000)::bigint,"
	    " client, client_name, qname, qtype, rule, category, site,"
	    " transport, verified::int, policy, instance, id FROM"
	    " dnswarden_attempts WHERE true");
	central_where(&q, o, pseudonym, true);
	/*
	 * --before NAME:ID: the rows after that one, newest first (ID may
	 * be gone: then after the last row of NAME below it).
	 */
	if (o->before > 0) {
		snprintf(before, sizeof(before), "%" PRId64, o->before);
		pq_param(&q, " AND (ts, instance, id) < (coalesce((SELECT ts"
		    " FROM dnswarden_attempts WHERE instance = $%d", binst);
		pq_param(&q, " AND id = $%d)", before);
		pq_param(&q, ", (SELECT ts FROM dnswarden_attempts WHERE"
		    " instance = $%d", binst);
		pq_param(&q, " AND id < $%d ORDER BY id DESC LIMIT 1))", before);
		pq_param(&q, ", $%d", binst);
		pq_param(&q, ", $%d)", before);
	}
	pq_add(&q, " ORDER BY ts DESC, instance DESC, id DESC");
	if (o->limit > 0) {
		snprintf(limit, sizeof(limit), " LIMIT %ld", o->limit);
		pq_add(&q, limit);
	}
	res = PQexecParams(d->pg, q.sql, q.n, NULL, q.params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_err(d->pg, "cannot read the central database", err, errlen);
		PQclear(res);
		return -1;
	}
	r->cols = central_cols;
	r->ncols = NCOLS;
	for (int i = 0; i < PQntuples(res); i++)
		if (rows_add_pg(r, &cap, res, i, tz) == -1) {
			PQclear(res);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	PQclear(res);
	r->limit_reached = o->limit > 0 && r->nrows == (size_t)o->limit;
	return 0;
}

void
rp_central_why_empty(struct report_db *d, const struct report_opts *o,
    const char *period, struct report_rows *r)
{
	struct pq_sql q = { .len = 0 };
	PGresult *res;
	bool any;

	pq_add(&q, "SELECT EXISTS (SELECT 1 FROM dnswarden_attempts WHERE"
	    " true");
	central_where(&q, o, "", false);
	pq_add(&q, ")");
	res = PQexecParams(d->pg, q.sql, q.n, NULL, q.params, NULL, NULL, 0);
	any = PQresultStatus(res) != PGRES_TUPLES_OK ||
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!any)
		snprintf(r->empty, sizeof(r->empty), "no attempts at any"
		    " instance %s", period);
	else if (o->before > 0)
		snprintf(r->empty, sizeof(r->empty), "no attempts match before"
		    " id %s:%" PRId64 " %s", o->before_instance[0] ?
		    o->before_instance : o->instance, o->before, period);
	else
		snprintf(r->empty, sizeof(r->empty), "no attempts match the"
		    " filters %s", period);
}
