/*
 * data: the rows behind the report and attempts endpoints and the pages,
 * read through the console's read-only connection, and their CSV and
 * JSON forms. The queries and the CSV are those of `dnswarden report` and
 * `dnswarden log`, so that a download equals the command's output byte
 * for byte (tests/e2e/test_console.py checks it).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_data.h"
#include "log.h"

#define ATTEMPT_GAP_MS	60000	/* a longer pause starts an attempt */

struct by_def {
	const char	*name;
	const char	*select;
	const char	*group;
	bool		 by_time;
	const char	*cols[5];
	size_t		 ncols;
};

#define THURSDAY "date(ts / 1000, 'unixepoch', '-3 days', 'weekday 4')"

static const struct by_def by_defs[] = {
	{ "", "", "", false, { "queries", "attempts" }, 2 },
	{ "day", "strftime('%Y-%m-%d', ts / 1000, 'unixepoch') AS day,",
	    "GROUP BY 1", true, { "day", "queries", "attempts" }, 3 },
	{ "week", "strftime('%Y', " THURSDAY ") || '-W' ||"
	    " printf('%02d', (strftime('%j', " THURSDAY ") - 1) / 7 + 1)"
	    " AS week,", "GROUP BY 1", true,
	    { "week", "queries", "attempts" }, 3 },
	{ "month", "strftime('%Y-%m', ts / 1000, 'unixepoch') AS month,",
	    "GROUP BY 1", true, { "month", "queries", "attempts" }, 3 },
	{ "client", "client, max(client_name) AS client_name,",
	    "GROUP BY client", false,
	    { "client", "client_name", "queries", "attempts" }, 4 },
	{ "category", "category,", "GROUP BY category", false,
	    { "category", "queries", "attempts" }, 3 },
	{ "site", "site, max(category) AS category,",
	    "GROUP BY site, CASE WHEN site IS NULL THEN category END", false,
	    { "site", "category", "queries", "attempts" }, 4 },
	{ "domain", "rule AS domain, max(category) AS category,"
	    " max(site) AS site,", "GROUP BY rule", false,
	    { "domain", "category", "site", "queries", "attempts" }, 5 },
};

static const char *const log_cols[] = { "time", "client", "client_name",
    "qname", "qtype", "rule", "category", "site", "transport", "verified",
    "policy" };

bool
http_data_by_ok(const char *by)
{
	for (size_t i = 1; i < sizeof(by_defs) / sizeof(by_defs[0]); i++)
		if (strcmp(by, by_defs[i].name) == 0)
			return true;
	return false;
}

static bool
col_is_int(const char *name)
{
	return strcmp(name, "queries") == 0 || strcmp(name, "attempts") == 0;
}

/* "2024-05-01T09:30:00.250Z" (ms only when not zero), as the CLI. */
void
http_data_format_time(int64_t ms, char *buf, size_t len)
{
	time_t		t = (time_t)(ms / 1000);
	struct tm	tm;
	size_t		n;

	if (ms < 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "%" PRId64, ms);
		return;
	}
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (ms % 1000 != 0)
		snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
	else
		snprintf(buf + n, len - n, "Z");
}

static int
table_add_row(struct http_table *t, sqlite3_stmt *st, bool log)
{
	char	tbuf[64], **row;

	if (t->nrows == t->cap) {
		size_t	cap = t->cap ? t->cap * 2 : 64;
		char	**cells = reallocarray(t->cells, cap * t->ncols,
			    sizeof(*cells));
		int64_t	*ids = reallocarray(t->ids, cap, sizeof(*ids));

		if (cells != NULL)
			t->cells = cells;
		if (ids != NULL)
			t->ids = ids;
		if (cells == NULL || ids == NULL)
			return -1;
		t->cap = cap;
	}
	row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		const char *v = (const char *)sqlite3_column_text(st, (int)i);

		if (v != NULL && log && i == 0) {
			http_data_format_time(sqlite3_column_int64(st, 0),
			    tbuf, sizeof(tbuf));
			v = tbuf;
		}
		row[i] = v ? strdup(v) : NULL;
	}
	t->ids[t->nrows] = log ? sqlite3_column_int64(st, (int)t->ncols) : 0;
	t->nrows++;
	return 0;
}

static int
table_fill(struct http_table *t, sqlite3 *db, sqlite3_stmt *st, bool log)
{
	int	rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (table_add_row(t, st, log) == -1)
			return -1;
	if (rc != SQLITE_DONE) {
		log_warnx("http: cannot read the log: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* Rows lost by the writer in the period, from log_gaps (0 without it). */
static int64_t
data_lost(sqlite3 *db, int64_t since, int64_t until)
{
	sqlite3_stmt	*st;
	int64_t		 n = 0;

	if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(rows_dropped), 0) FROM"
	    " log_gaps WHERE table_name = 'attempts' AND ts_end >= ?1 AND"
	    " ts_start < ?2", -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, until);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

int
http_data_report(sqlite3 *db, const char *by, int64_t since, int64_t until,
    long top, struct http_table *t)
{
	const struct by_def	*b = &by_defs[0];
	sqlite3_stmt		*st;
	char			 sql[2048];
	int			 rc;

	for (size_t i = 1; by != NULL && i < sizeof(by_defs) /
	    sizeof(by_defs[0]); i++)
		if (strcmp(by, by_defs[i].name) == 0)
			b = &by_defs[i];
	snprintf(sql, sizeof(sql),
	    "WITH r AS (SELECT ts, client, client_name, rule, category, site,"
	    " ts - lag(ts) OVER (PARTITION BY client, rule ORDER BY ts, id)"
	    " AS gap FROM attempts WHERE ts >= ?1 - %d AND ts < ?2),"
	    " g AS (SELECT %s count(*) AS queries,"
	    " coalesce(sum(gap IS NULL OR gap > %d), 0) AS attempts"
	    " FROM r WHERE ts >= ?1 %s"
	    " ORDER BY attempts DESC, queries DESC, 1 LIMIT ?3)"
	    " SELECT * FROM g ORDER BY %s",
	    ATTEMPT_GAP_MS, b->select, ATTEMPT_GAP_MS, b->group,
	    b->by_time ? "1" : "attempts DESC, queries DESC, 1");
	memset(t, 0, sizeof(*t));
	t->cols = b->cols;
	t->ncols = b->ncols;
	if (db == NULL || sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warnx("http: report: %s", sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, until);
	sqlite3_bind_int64(st, 3, top > 0 ? top : -1);
	rc = table_fill(t, db, st, false);
	sqlite3_finalize(st);
	t->lost = data_lost(db, since, until);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int
http_data_attempts(sqlite3 *db, const struct http_attempts_query *q,
    struct http_table *t)
{
	sqlite3_stmt	*st;
	int		 rc;

	memset(t, 0, sizeof(*t));
	t->cols = log_cols;
	t->ncols = sizeof(log_cols) / sizeof(log_cols[0]);
	if (db == NULL || sqlite3_prepare_v2(db, "SELECT ts, client,"
	    " client_name, qname, qtype, rule, category, site, transport,"
	    " verified, policy, id"
	    " FROM attempts WHERE ts >= ?1 AND ts < ?2"
	    " AND (?3 IS NULL OR client = ?3 OR client_name = ?3"
	    " OR client = ?4)"
	    " AND (?5 IS NULL OR site = ?5 COLLATE NOCASE)"
	    " AND (?7 = 0 OR id < ?7)"
	    " ORDER BY ts DESC, id DESC LIMIT ?6", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, q->since);
	sqlite3_bind_int64(st, 2, q->until);
	if (q->client != NULL)
		sqlite3_bind_text(st, 3, q->client, -1, SQLITE_STATIC);
	if (q->pseudonym != NULL && q->pseudonym[0] != '\0')
		sqlite3_bind_text(st, 4, q->pseudonym, -1, SQLITE_STATIC);
	if (q->site != NULL)
		sqlite3_bind_text(st, 5, q->site, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, q->limit > 0 ? q->limit : -1);
	sqlite3_bind_int64(st, 7, q->before);
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	rc = table_fill(t, db, st, true);
	sqlite3_finalize(st);
	t->lost = data_lost(db, q->since, q->until);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

void
http_table_free(struct http_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->ids);
	memset(t, 0, sizeof(*t));
}

const char *
http_table_cell(const struct http_table *t, size_t row, const char *col)
{
	for (size_t c = 0; c < t->ncols; c++)
		if (strcmp(t->cols[c], col) == 0)
			return t->cells[row * t->ncols + c];
	return NULL;
}

static void
csv_field(const char *v, struct evbuffer *out)
{
	if (v == NULL)
		return;
	if (strpbrk(v, ",\"\r\n") == NULL) {
		evbuffer_add(out, v, strlen(v));
		return;
	}
	evbuffer_add(out, "\"", 1);
	for (; *v; v++) {
		if (*v == '"')
			evbuffer_add(out, "\"", 1);
		evbuffer_add(out, v, 1);
	}
	evbuffer_add(out, "\"", 1);
}

void
http_table_csv(const struct http_table *t, struct evbuffer *out)
{
	for (size_t r = 0; r <= t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			csv_field(r == 0 ? t->cols[c] :
			    t->cells[(r - 1) * t->ncols + c], out);
			evbuffer_add_printf(out, c + 1 == t->ncols ? "\r\n" :
			    ",");
		}
}

/* Names in the log are text the writer escaped; never trust it twice. */
static json_t *
data_json_string(const char *v)
{
	json_t	*s = json_string(v);

	return s != NULL ? s : json_string("(not UTF-8)");
}

json_t *
http_table_json(const struct http_table *t, bool with_ids)
{
	json_t	*rows = json_array();

	for (size_t r = 0; rows != NULL && r < t->nrows; r++) {
		json_t *o = json_object();

		for (size_t c = 0; o != NULL && c < t->ncols; c++) {
			const char *v = t->cells[r * t->ncols + c];

			if (v == NULL)
				json_object_set_new(o, t->cols[c], json_null());
			else if (strcmp(t->cols[c], "verified") == 0)
				json_object_set_new(o, t->cols[c],
				    json_boolean(strcmp(v, "0") != 0));
			else if (col_is_int(t->cols[c]))
				json_object_set_new(o, t->cols[c],
				    json_integer(strtoll(v, NULL, 10)));
			else
				json_object_set_new(o, t->cols[c],
				    data_json_string(v));
		}
		if (o != NULL)
			json_object_set_new(o, "period_rows_lost",
			    json_integer(t->lost));
		if (o != NULL && with_ids)
			json_object_set_new(o, "id", json_integer(t->ids[r]));
		json_array_append_new(rows, o);
	}
	return rows;
}
