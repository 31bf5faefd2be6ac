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
#include <time.h>

#include <jansson.h>

#include "build_config.h"
#include "http_data.h"
#include "http_internal.h"
#include "netaddr.h"

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

/*
 * The time of the newest attempt, -1 for none or when it cannot be read;
 * kept for as long as the log's version says nothing was written.
 */
static int64_t
status_last_ts(struct http *h)
{
	sqlite3_stmt	*st;
	uint64_t	 v = 0;
	int64_t		 ts = -1;

	if (h->src.version != NULL) {
		v = h->src.version(h->src.arg);
		if (h->last_known && h->last_version == v)
			return h->last_ts;
	}
	if (h->rdb == NULL || sqlite3_prepare_v2(h->rdb, "SELECT max(ts) FROM"
	    " attempts", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		ts = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	h->last_known = h->src.version != NULL;
	h->last_version = v;
	h->last_ts = ts;
	return ts;
}

/* The time of the newest row written, as the CLI prints times, or null. */
static json_t *
status_last_write(struct http *h)
{
	int64_t	ts = status_last_ts(h);
	char	buf[64];

	if (ts < 0)
		return json_null();
	http_format_time(ts, buf, sizeof(buf));
	return json_string(buf);
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

/* Send text in format f: CSV as an attachment named name, or JSON. */
static void
api_send_text(struct http_req *r, const char *text, size_t len,
    enum report_format f, const char *name)
{
	struct evbuffer	*b;
	char		 disp[128];

	if ((b = evbuffer_new()) == NULL) {
		http_reply_error(r, 500, "out of memory");
		return;
	}
	evbuffer_add(b, text, len);
	if (f == REPORT_CSV) {
		snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"",
		    name);
		http_header(r, "Content-Disposition", disp);
	}
	http_reply(r, 200, f == REPORT_CSV ? "text/csv; charset=utf-8" :
	    "application/json", b);
	evbuffer_free(b);
}

/*
 * The report cache. A report reads the counts of its period, so a
 * dashboard that many people, or a script on many machines, keep open
 * would make the console's one thread run the same query for each of
 * them. An answer is shared, keyed by the parameters as given, for as
 * long as the attempt log's version (http_source.version) says no row
 * was written or deleted since the query began (a minute at most). Once
 * one was, the next read renews it, unless the answer is younger than
 * ten times the console CPU its query took, or, when it was itself
 * renewed less than two seconds after the one before (attempts keep
 * arriving, as they do on a busy network: the writer commits every
 * 50 ms), younger than a second. So the first read after a quiet spell
 * sees the new rows at once, and a steady stream of attempts costs one
 * query per report a second at most, not one per commit. Attempt lists
 * are never cached. Each read is still audited.
 */
static int
cache_key(const struct http_req *r, enum report_kind kind, char *key,
    size_t len)
{
	size_t	n;

	n = (size_t)snprintf(key, len, "%d", (int)kind);
	for (size_t i = 0; i < r->params.n && n < len; i++)
		n += (size_t)snprintf(key + n, len - n, "&%s=%s",
		    r->params.key[i], r->params.value[i]);
	return n < len ? 0 : -1;
}

/* The log's version; false when the source cannot tell. */
static bool
cache_version(struct http *h, uint64_t *v)
{
	*v = h->src.version != NULL ? h->src.version(h->src.arg) : 0;
	return h->src.version != NULL;
}

static struct http_report_cached *
cache_find(struct http *h, const char *key, int64_t now)
{
	uint64_t	v;
	bool		known = cache_version(h, &v);

	for (size_t i = 0; i < HTTP_REPORT_CACHE; i++) {
		struct http_report_cached *c = &h->rcache[i];
		int64_t age = now - c->made_ms;

		if (c->key[0] == '\0' || age < 0 ||
		    age >= HTTP_REPORT_CACHE_MAX_MS ||
		    strcmp(c->key, key) != 0)
			continue;
		if ((known && c->version == v) || age < c->keep_ms)
			return c;
	}
	return NULL;
}

/* The slot of key's stale answer, or else the oldest. */
static struct http_report_cached *
cache_slot(struct http *h, const char *key)
{
	struct http_report_cached *c = &h->rcache[0];

	for (size_t i = 0; i < HTTP_REPORT_CACHE; i++)
		if (strcmp(h->rcache[i].key, key) == 0)
			return &h->rcache[i];
	for (size_t i = 1; i < HTTP_REPORT_CACHE; i++)
		if (h->rcache[i].made_ms < c->made_ms)
			c = &h->rcache[i];
	return c;
}

/* Keep text (taken over) under key. */
static void
cache_put(struct http *h, const char *key, int64_t now, uint64_t version,
    int64_t cost_us, char *text, size_t len, enum report_format f)
{
	struct http_report_cached *c = cache_slot(h, key);
	bool	busy = strcmp(c->key, key) == 0 && now - c->made_ms <
	    2 * HTTP_REPORT_CACHE_BUSY_MS;

	free(c->body);
	snprintf(c->key, sizeof(c->key), "%s", key);
	c->made_ms = now;
	c->version = version;
	c->keep_ms = cost_us * HTTP_REPORT_CACHE_COST / 1000;
	if (busy && c->keep_ms < HTTP_REPORT_CACHE_BUSY_MS)
		c->keep_ms = HTTP_REPORT_CACHE_BUSY_MS;
	c->body = text;
	c->len = len;
	c->format = f;
}

void
http_report_cache_free(struct http *h)
{
	for (size_t i = 0; i < HTTP_REPORT_CACHE; i++) {
		free(h->rcache[i].body);
		h->rcache[i].body = NULL;
		h->rcache[i].key[0] = '\0';
	}
}

/* CPU time of the calling thread, in µs. */
static int64_t
thread_cpu_us(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == -1)
		return 0;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * A read of a report shared from the cache: audited as any read, and no
 * option parsed (a key in the cache was valid when it was put there).
 */
static bool
api_rows_cached(struct http_req *r, enum report_kind kind,
    const char *action, const char *name, char *key, size_t keylen)
{
	struct http_report_cached *c;
	char	detail[512];

	/* The central database changes without the local log's version. */
	if (kind != REPORT_COUNTS || http_param(&r->params, "central") !=
	    NULL || cache_key(r, kind, key, keylen) == -1) {
		key[0] = '\0';
		return false;
	}
	if ((c = cache_find(r->h, key, r->now_ms)) == NULL)
		return false;
	http_audit_params(r, detail, sizeof(detail));
	http_audit(r, action, detail);
	api_send_text(r, c->body, c->len, c->format, name);
	return true;
}

/*
 * The part report and attempts share: options from the parameters (JSON
 * unless format says csv; no table), an audit row, the query, the rows.
 */
static void
api_rows(struct http_req *r, enum report_kind kind, const char *action,
    const char *name)
{
	static const char *const json[] = { "format", "json", NULL };
	struct report_opts	 o;
	struct report_rows	*rows;
	char			 err[512], detail[512], key[HTTP_REPORT_KEY];
	char			*text;
	size_t			 len;
	uint64_t		 version;
	int64_t			 t0;
	int			 status, rc;
	bool			 central;

	if (api_rows_cached(r, kind, action, name, key, sizeof(key)))
		return;
	if (http_data_central_param(&r->params, &central) == -1) {
		http_reply_error(r, 400, "central: use 1 (every instance's rows,"
		    " from the central database) or 0 (this one's log)");
		return;
	}
	if (http_data_opts(&o, kind, &r->params, json, err, sizeof(err)) ==
	    -1) {
		http_reply_error(r, 400, err);
		return;
	}
	if (o.format == REPORT_TABLE) {
		http_reply_error(r, 400, "format: use json or csv");
		return;
	}
	if (kind == REPORT_ATTEMPTS && (o.limit == 0 ||
	    o.limit > ATTEMPTS_PAGE_MAX)) {
		http_reply_error(r, 400, "limit: 1 to 1000 rows a page; page"
		    " on with before");
		return;
	}
	if (!central && o.before_instance[0] != '\0') {
		http_reply_error(r, 400, "before: NAME:ID is for central=1 (a"
		    " local log's ids are its own); give the ID");
		return;
	}
	http_audit_params(r, detail, sizeof(detail));
	http_audit(r, action, detail);
	/* Read before the query: rows written during it make it stale. */
	cache_version(r->h, &version);
	t0 = thread_cpu_us();
	status = 503;
	rc = central ? http_data_run_central(r->h, &o, &rows, &status, err,
	    sizeof(err)) : http_data_run(r->h, &o, &rows, err, sizeof(err));
	if (rc == -1) {
		http_reply_error(r, status, err);
		return;
	}
	text = report_write_buffer(rows, o.format, &len);
	report_rows_free(rows);
	if (text == NULL) {
		http_reply_error(r, 500, "out of memory");
		return;
	}
	api_send_text(r, text, len, o.format, name);
	if (key[0] != '\0')
		cache_put(r->h, key, r->now_ms, version, thread_cpu_us() - t0,
		    text, len, o.format);
	else
		free(text);
}

void
http_api_report(struct http_req *r)
{
	static const char *const allowed[] = { "by", "since", "until", "top",
	    "format", "tz", "central", "instance", NULL };

	if (api_check(r, allowed) == 0)
		api_rows(r, REPORT_COUNTS, "read report",
		    "dnswarden-report.csv");
}

void
http_api_attempts(struct http_req *r)
{
	static const char *const allowed[] = { "since", "until", "client",
	    "site", "limit", "before", "format", "tz", "central", "instance",
	    NULL };

	if (api_check(r, allowed) == 0)
		api_rows(r, REPORT_ATTEMPTS, "read attempts",
		    "dnswarden-attempts.csv");
}

/* What `dnswarden lookup NAME` says, as an object; NULL: not a name. */
json_t *
http_lookup_json(struct http_req *r, const char *name, int policy)
{
	struct blocklist_match	 m = { 0 };
	int			 rc;
	const char		*pname;
	json_t			*o;

	rc = blocklist_match_name_policy(r->h->bl, policy, name, &m);
	if (rc == -1)
		return NULL;
	pname = blocklist_policy_name(r->h->bl, policy);
	o = json_pack("{s:s, s:b, s:o}", "name", name, "blocked", rc == 1,
	    "policy", pname != NULL ? json_string(pname) : json_null());
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
	int		 policy = BLOCKLIST_POLICY_DEFAULT;

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
	/* As `dnswarden lookup --client`: the client's policy decides
	 * which categories apply (docs/blocklist.md, "Policies"). */
	if (client != NULL)
		policy = blocklist_policy_of(r->h->bl,
		    (struct sockaddr *)&na.ss);
	http_audit_params(r, detail, sizeof(detail));
	http_audit(r, "lookup", detail);
	if ((o = http_lookup_json(r, name, policy)) == NULL) {
		http_reply_error(r, 400, "not a valid domain name");
		return;
	}
	if (client != NULL)
		json_object_set_new(o, "client", json_string(client));
	reply_json_value(r, o);
}
