/*
 * audit: the record of who looked at the record. One row per login,
 * failed login, logout and read of attempts, reports or lookups, in table
 * audit of the log database, written through the console's own
 * connection (WAL lets it sit beside the attempt writer; busy_timeout
 * waits out the writer's short transactions).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http_internal.h"
#include "log.h"

#define AUDIT_PAGE	100
#define AUDIT_PAGE_MAX	1000

int
http_audit_init(struct http *h)
{
	char	*err = NULL;

	if (sqlite3_exec(h->wdb, "CREATE TABLE IF NOT EXISTS audit ("
	    " id INTEGER PRIMARY KEY,"
	    " ts INTEGER NOT NULL,"
	    " user TEXT NOT NULL,"
	    " role TEXT NOT NULL,"
	    " remote TEXT NOT NULL,"
	    " action TEXT NOT NULL,"
	    " detail TEXT NOT NULL)", NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("http: %s: cannot create table audit: %s", h->dbpath,
		    err ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

void
http_audit_as(struct http_req *r, const char *user, enum http_role role,
    const char *action, const char *detail)
{
	sqlite3_stmt	*st;
	int		 rc = SQLITE_ERROR;

	if (r->h->wdb == NULL)
		return;
	if (sqlite3_prepare_v2(r->h->wdb, "INSERT INTO audit (ts, user, role,"
	    " remote, action, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1,
	    &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, r->now_ms);
		sqlite3_bind_text(st, 2, user ? user : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, http_role_name(role), -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r->remote, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, action, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, detail, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	/* Never silent: a read whose audit row is lost is said so. */
	if (rc != SQLITE_DONE)
		log_warnx("http: audit row lost (%s by %s from %s): %s", action,
		    user ? user : "", r->remote, sqlite3_errmsg(r->h->wdb));
}

void
http_audit(struct http_req *r, const char *action, const char *detail)
{
	http_audit_as(r, r->user, r->role, action, detail);
}

void
http_audit_params(const struct http_req *r, char *buf, size_t len)
{
	size_t	n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->params.n && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s=%s",
		    i ? " " : "", r->params.key[i], r->params.value[i]);
}

static json_t *
audit_row(sqlite3_stmt *st)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s}",
	    "id", (json_int_t)sqlite3_column_int64(st, 0),
	    "ts", (json_int_t)sqlite3_column_int64(st, 1),
	    "user", (const char *)sqlite3_column_text(st, 2),
	    "role", (const char *)sqlite3_column_text(st, 3),
	    "remote", (const char *)sqlite3_column_text(st, 4),
	    "action", (const char *)sqlite3_column_text(st, 5),
	    "detail", (const char *)sqlite3_column_text(st, 6));
}

/* GET /api/v1/audit?limit=&before=: newest first. */
void
http_api_audit(struct http_req *r)
{
	static const char *const allowed[] = { "limit", "before", NULL };
	const char	*bad, *v;
	long		 limit = AUDIT_PAGE, before = 0;
	sqlite3_stmt	*st;
	json_t		*rows;
	char		*text;

	if (http_params_allow(&r->params, allowed, &bad) == -1) {
		http_reply_error(r, 400, "unknown parameter");
		return;
	}
	if (((v = http_param(&r->params, "limit")) != NULL &&
	    http_parse_count(v, 1, AUDIT_PAGE_MAX, &limit) == -1) ||
	    ((v = http_param(&r->params, "before")) != NULL &&
	    http_parse_count(v, 1, LONG_MAX, &before) == -1)) {
		http_reply_error(r, 400, "bad limit or before");
		return;
	}
	if (r->h->rdb == NULL || sqlite3_prepare_v2(r->h->rdb, "SELECT id, ts,"
	    " user, role, remote, action, detail FROM audit WHERE ?1 = 0 OR"
	    " id < ?1 ORDER BY id DESC LIMIT ?2", -1, &st, NULL) != SQLITE_OK) {
		http_reply_error(r, 503, "the audit trail cannot be read");
		return;
	}
	sqlite3_bind_int64(st, 1, before);
	sqlite3_bind_int64(st, 2, limit);
	rows = json_array();
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(rows, audit_row(st));
	sqlite3_finalize(st);
	text = json_dumps(rows, JSON_INDENT(1));
	http_reply_json(r, 200, text ? text : "[]");
	free(text);
	json_decref(rows);
}
