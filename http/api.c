/*
 * api: the JSON endpoints that read (status, report, attempts, lookup).
 * Each checks its parameters before it reads anything, answers a bad one
 * with 400 and a JSON error, and leaves an audit row for every read of
 * the record.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "build_config.h"
#include "http_data.h"
#include "http_internal.h"
#include "netaddr.h"

#define TIME_MAX		INT64_MAX
#define ATTEMPTS_PAGE		100
#define ATTEMPTS_PAGE_MAX	1000

static void
reply_json_value(struct http_req *r, json_t *j)
{
	char	*text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

	if (text == NULL)
		http_reply_error(r, 500, "out of memory");
	else
		http_reply_json(r, 200, text);
	free(text);
	json_decref(j);
}

/* The counters and the log's figures, as one JSON object each. */
static void
status_counters(struct http *h, json_t *o)
{
	struct counters		c = { 0 };
	struct attemptlog_stats	ls = { 0 };
	json_t			*cj = json_object();

	if (h->src.stats != NULL)
		h->src.stats(h->src.arg, &c, &ls);
#define STATUS_COUNTER(name, help) \
	json_object_set_new(cj, #name, json_integer((json_int_t)c.name));
	COUNTERS_FIELDS(STATUS_COUNTER)
#undef STATUS_COUNTER
	json_object_set_new(o, "counters", cj);
	json_object_set_new(o, "log", json_pack("{s:I, s:I, s:I, s:I, s:I}",
	    "queued", (json_int_t)ls.queued, "written", (json_int_t)ls.written,
	    "dropped", (json_int_t)ls.dropped,
	    "write_errors", (json_int_t)ls.write_errors,
	    "pending", (json_int_t)ls.pending));
}

/* The time of the newest row written, as the CLI prints times, or null. */
static json_t *
status_last_write(struct http *h)
{
	sqlite3_stmt	*st;
	json_t		*j = json_null();
	char		 buf[64];

	if (h->rdb == NULL || sqlite3_prepare_v2(h->rdb, "SELECT max(ts) FROM"
	    " attempts", -1, &st, NULL) != SQLITE_OK)
		return j;
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL) {
		http_data_format_time(sqlite3_column_int64(st, 0), buf,
		    sizeof(buf));
		json_decref(j);
		j = json_string(buf);
	}
	sqlite3_finalize(st);
	return j;
}

json_t *
http_status_json(struct http_req *r)
{
	struct http	*h = r->h;
	json_t		*o = json_object();

	json_object_set_new(o, "version", json_string(DNSWARDEN_VERSION));
	json_object_set_new(o, "uptime_seconds",
	    json_integer((r->now_ms - h->started_ms) / 1000));
	json_object_set_new(o, "blocklist_entries",
	    json_integer((json_int_t)blocklist_size(h->bl)));
	json_object_set_new(o, "upstreams",
	    json_integer((json_int_t)h->cfg->nupstreams));
	json_object_set_new(o, "user", json_string(r->user ? r->user : ""));
	json_object_set_new(o, "role", json_string(http_role_name(r->role)));
	json_object_set_new(o, "last_attempt", status_last_write(h));
	status_counters(h, o);
	return o;
}

void
http_api_status(struct http_req *r)
{
	static const char *const allowed[] = { NULL };
	const char *bad;

	if (http_params_allow(&r->params, allowed, &bad) == -1) {
		http_reply_error(r, 400, "unknown parameter");
		return;
	}
	reply_json_value(r, http_status_json(r));
}

/* since= and until= of r; 0, or -1 after a 400. */
static int
api_period(struct http_req *r, int64_t *since, int64_t *until)
{
	const char	*s = http_param(&r->params, "since");
	const char	*u = http_param(&r->params, "until");

	*since = 0;
	*until = TIME_MAX;
	if ((s != NULL && http_parse_time(s, false, since) == -1) ||
	    (u != NULL && http_parse_time(u, true, until) == -1)) {
		http_reply_error(r, 400, "bad date: use YYYY-MM-DD or"
		    " YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]");
		return -1;
	}
	if (*since >= *until) {
		http_reply_error(r, 400, "since must be before until");
		return -1;
	}
	return 0;
}

static int
api_check(struct http_req *r, const char *const allowed[])
{
	const char	*bad;

	if (http_params_allow(&r->params, allowed, &bad) == -1) {
		http_reply_error(r, 400, "unknown parameter");
		return -1;
	}
	return 0;
}

/* Send t as CSV (an attachment named name) or JSON. */
static void
api_send_table(struct http_req *r, const struct http_table *t, bool csv,
    bool ids, const char *name)
{
	struct evbuffer	*b;
	char		 disp[128];

	if (!csv) {
		reply_json_value(r, http_table_json(t, ids));
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		http_reply_error(r, 500, "out of memory");
		return;
	}
	http_table_csv(t, b);
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", name);
	http_header(r, "Content-Disposition", disp);
	http_reply(r, 200, "text/csv; charset=utf-8", b);
	evbuffer_free(b);
}

void
http_api_report(struct http_req *r)
{
	static const char *const allowed[] = { "by", "since", "until", "top",
	    "format", NULL };
	const char		*by = http_param(&r->params, "by");
	const char		*fmt = http_param(&r->params, "format");
	const char		*top_s = http_param(&r->params, "top");
	struct http_table	 t;
	int64_t			 since, until;
	long			 top = 0;
	char			 detail[512];

	if (api_check(r, allowed) == -1 || api_period(r, &since, &until) == -1)
		return;
	if ((by != NULL && !http_data_by_ok(by)) ||
	    (fmt != NULL && strcmp(fmt, "json") != 0 &&
	    strcmp(fmt, "csv") != 0) ||
	    (top_s != NULL && http_parse_count(top_s, 1, 1000000, &top) == -1)) {
		http_reply_error(r, 400, "bad by, top or format");
		return;
	}
	http_audit_params(r, detail, sizeof(detail));
	http_audit(r, "read report", detail);
	if (http_data_report(r->h->rdb, by, since, until, top, &t) == -1) {
		http_table_free(&t);
		http_reply_error(r, 503, "the attempt log cannot be read");
		return;
	}
	api_send_table(r, &t, fmt != NULL && strcmp(fmt, "csv") == 0, false,
	    "dnswarden-report.csv");
	http_table_free(&t);
}

void
http_api_attempts(struct http_req *r)
{
	static const char *const allowed[] = { "since", "until", "client",
	    "site", "limit", "before", "format", NULL };
	struct http_attempts_query	 q = { .limit = ATTEMPTS_PAGE };
	const char			*v, *fmt = http_param(&r->params,
					    "format");
	const struct config		*cfg = r->h->cfg;
	struct http_table		 t;
	char				 pseudonym[ATTEMPTLOG_PSEUDONYM_LEN + 1];
	char				 detail[512];
	long				 before = 0;

	if (api_check(r, allowed) == -1 ||
	    api_period(r, &q.since, &q.until) == -1)
		return;
	if (((v = http_param(&r->params, "limit")) != NULL &&
	    http_parse_count(v, 1, ATTEMPTS_PAGE_MAX, &q.limit) == -1) ||
	    ((v = http_param(&r->params, "before")) != NULL &&
	    http_parse_count(v, 1, LONG_MAX, &before) == -1) ||
	    (fmt != NULL && strcmp(fmt, "json") != 0 &&
	    strcmp(fmt, "csv") != 0)) {
		http_reply_error(r, 400, "bad limit, before or format");
		return;
	}
	q.before = before;
	q.client = http_param(&r->params, "client");
	q.site = http_param(&r->params, "site");
	pseudonym[0] = '\0';
	if (q.client != NULL &&
	    cfg->log.client_identity == CLIENT_IDENTITY_PSEUDONYM &&
	    cfg->log.pseudonym_key != NULL)
		attemptlog_pseudonym(cfg->log.pseudonym_key, q.client,
		    pseudonym);
	q.pseudonym = pseudonym;
	http_audit_params(r, detail, sizeof(detail));
	http_audit(r, "read attempts", detail);
	if (http_data_attempts(r->h->rdb, &q, &t) == -1) {
		http_table_free(&t);
		http_reply_error(r, 503, "the attempt log cannot be read");
		return;
	}
	api_send_table(r, &t, fmt != NULL && strcmp(fmt, "csv") == 0, true,
	    "dnswarden-attempts.csv");
	http_table_free(&t);
}

/* What `dnswarden lookup NAME` says, as an object; NULL: not a name. */
json_t *
http_lookup_json(struct http_req *r, const char *name)
{
	struct blocklist_match	 m = { 0 };
	int			 rc = blocklist_match_name(r->h->bl, name, &m);
	json_t			*o;

	if (rc == -1)
		return NULL;
	o = json_pack("{s:s, s:b}", "name", name, "blocked", rc == 1);
	if (rc == 1 || m.allowed) {
		json_object_set_new(o, "rule", json_string(m.rule));
		json_object_set_new(o, "category", m.category ?
		    json_string(m.category) : json_null());
		json_object_set_new(o, "site", m.site ? json_string(m.site) :
		    json_null());
		json_object_set_new(o, "source", json_string(m.file));
		json_object_set_new(o, "line", json_integer(m.line));
		json_object_set_new(o, "allow_entry", json_boolean(m.allowed));
	}
	return o;
}

void
http_api_lookup(struct http_req *r)
{
	static const char *const allowed[] = { "name", "client", NULL };
	const char	*name = http_param(&r->params, "name");
	const char	*client = http_param(&r->params, "client");
	struct netaddr	 na;
	const char	*why;
	char		 detail[512];
	json_t		*o;

	if (api_check(r, allowed) == -1)
		return;
	if (name == NULL || name[0] == '\0') {
		http_reply_error(r, 400, "name is missing");
		return;
	}
	if (client != NULL && netaddr_parse(client, 53, &na, &why) == -1) {
		http_reply_error(r, 400, "client is not an address");
		return;
	}
	http_audit_params(r, detail, sizeof(detail));
	http_audit(r, "lookup", detail);
	if ((o = http_lookup_json(r, name)) == NULL) {
		http_reply_error(r, 400, "not a valid domain name");
		return;
	}
	if (client != NULL)
		json_object_set_new(o, "client", json_string(client));
	reply_json_value(r, o);
}
