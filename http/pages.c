/*
 * pages: the console's HTML, rendered on the server from the same data
 * as the API, with a small script of our own (static/app.js) for the
 * login form, logout and the chart. Every value goes through html.c.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "build_config.h"
#include "http_data.h"
#include "http_html.h"
#include "http_internal.h"

#define DAY_MS		86400000LL

struct page {
	const char	*path;
	const char	*title;
	unsigned	 roles;
	void		(*fn)(struct http_req *, struct evbuffer *);
};

static void	page_overview(struct http_req *, struct evbuffer *);
static void	page_reports(struct http_req *, struct evbuffer *);
static void	page_attempts(struct http_req *, struct evbuffer *);
static void	page_blocklist(struct http_req *, struct evbuffer *);
static void	page_status(struct http_req *, struct evbuffer *);
static void	page_audit(struct http_req *, struct evbuffer *);

static const struct page pages[] = {
	{ "/", "Overview", ROLES_READ, page_overview },
	{ "/reports", "Reports", ROLES_READ, page_reports },
	{ "/attempts", "Attempts", ROLES_SECURITY, page_attempts },
	{ "/blocklist", "Blocklist", ROLES_READ, page_blocklist },
	{ "/status", "Status", ROLES_READ, page_status },
	{ "/audit", "Audit", ROLES_ADMIN, page_audit },
};
#define NPAGES	(sizeof(pages) / sizeof(pages[0]))

bool
http_page_exists(const char *path)
{
	for (size_t i = 0; i < NPAGES; i++)
		if (strcmp(pages[i].path, path) == 0)
			return true;
	return false;
}

static void
page_head(struct http_req *r, struct evbuffer *b, const char *title)
{
	html_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><title>%s - dnswarden</title>"
	    "<meta name=\"viewport\" content=\"width=device-width\">"
	    "<link rel=\"stylesheet\" href=\"/static/style.css\">", title);
	if (r->session != NULL)
		html_printf(b, "<meta name=\"csrf-token\" content=\"%s\">",
		    r->session->csrf);
	html_printf(b, "<script src=\"/static/chart.min.js\" defer></script>"
	    "<script src=\"/static/app.js\" defer></script></head><body>");
}

static void
page_nav(struct http_req *r, struct evbuffer *b)
{
	html_printf(b, "<header><span class=\"brand\">dnswarden</span><nav>");
	/*
	 * The current page's class is markup, so it is in the format, not an
	 * argument: html_printf() escapes every %s.
	 */
	for (size_t i = 0; i < NPAGES; i++)
		if (pages[i].roles & ROLE(r->role))
			html_printf(b, strcmp(r->path, pages[i].path) == 0 ?
			    "<a href=\"%s\" class=\"here\">%s</a>" :
			    "<a href=\"%s\">%s</a>", pages[i].path,
			    pages[i].title);
	html_printf(b, "</nav><span class=\"who\">%s (%s)</span>"
	    "<button id=\"logout\" type=\"button\">Log out</button></header>"
	    "<main>", r->user, http_role_name(r->role));
}

static void
page_send(struct http_req *r, int status, struct evbuffer *b)
{
	html_printf(b, "</main></body></html>\n");
	http_reply(r, status, "text/html; charset=utf-8", b);
}

static void
page_login(struct http_req *r, struct evbuffer *b)
{
	page_head(r, b, "Log in");
	html_printf(b, "<main class=\"login\"><h1>dnswarden</h1>"
	    "<form id=\"login\" autocomplete=\"on\">"
	    "<label>User <input name=\"user\" id=\"user\" required"
	    " autocomplete=\"username\"></label>"
	    "<label>Password <input name=\"password\" id=\"password\""
	    " type=\"password\" required autocomplete=\"current-password\">"
	    "</label><button type=\"submit\">Log in</button>"
	    "<p id=\"login-error\" class=\"error\" role=\"alert\"></p>"
	    "</form>");
	page_send(r, 200, b);
}

/*
 * The site selector's choice, parameter sites: "" (or absent) this
 * site's own log, "all" every site's rows in the central database,
 * "instance:NAME" one site's there. Shown only with log.central set.
 */
#define SITES_INSTANCE	"instance:"

struct page_sites {
	bool		 central;
	const char	*instance;	/* one site, or NULL */
	const char	*value;		/* as given; "" for this site */
};

/* 0, or -1 with the reason in err. */
static int
page_sites_get(struct http_req *r, struct page_sites *s, char *err,
    size_t errlen)
{
	const char	*v = http_param(&r->params, "sites");
	size_t		 plen = strlen(SITES_INSTANCE);

	s->central = false;
	s->instance = NULL;
	s->value = v != NULL ? v : "";
	if (s->value[0] == '\0')
		return 0;
	if (!http_data_central_configured(r->h)) {
		snprintf(err, errlen, "sites: log.central.postgresql is not set:"
		    " there is only this site");
		return -1;
	}
	s->central = true;
	if (strcmp(v, "all") == 0)
		return 0;
	if (strncmp(v, SITES_INSTANCE, plen) == 0 && v[plen] != '\0') {
		s->instance = v + plen;
		return 0;
	}
	snprintf(err, errlen, "sites: use all or instance:NAME");
	return -1;
}

/* &sites=... for a link (nothing for this site). */
static void
page_sites_link(struct evbuffer *b, const struct page_sites *s)
{
	if (s->value[0] != '\0')
		html_printf(b, "&amp;sites=%u", s->value);
}

/* One <option> of the selector. */
static void
page_sites_option(struct evbuffer *b, const char *value, const char *label,
    const char *chosen)
{
	html_printf(b, "<option value=\"%s\"%s>%s</option>", value,
	    strcmp(value, chosen) == 0 ? " selected" : "", label);
}

/*
 * The selector: this site, all sites, and each instance the central
 * database holds rows of (names from the database: escaped as any).
 */
static void
page_sites_select(struct http_req *r, struct evbuffer *b)
{
	const char	*v = http_param(&r->params, "sites");
	char		**names = NULL, err[512], value[HTTP_PARAM_LEN + 16];
	size_t		 n = 0;
	int		 rc;

	if (!http_data_central_configured(r->h))
		return;
	rc = http_data_instances(r->h, &names, &n, err, sizeof(err));
	html_printf(b, "<label>sites <select name=\"sites\" id=\"sites\">");
	page_sites_option(b, "", "this site", v != NULL ? v : "");
	page_sites_option(b, "all", "all sites", v != NULL ? v : "");
	for (size_t i = 0; i < n; i++) {
		snprintf(value, sizeof(value), SITES_INSTANCE "%s", names[i]);
		page_sites_option(b, value, names[i], v != NULL ? v : "");
	}
	html_printf(b, "</select></label>");
	if (rc == -1)
		html_printf(b, "<span class=\"error\" id=\"sites-error\">%s"
		    "</span>", err);
	report_names_free(names);
}

/*
 * Options for a page's query: since/until from the page's form (the
 * last `days` days by default), then extra. 0, or -1 after showing why.
 */
static int
page_opts(struct http_req *r, struct evbuffer *b, struct report_opts *o,
    enum report_kind kind, int days, const char *const extra[])
{
	const char	*s = http_param(&r->params, "since");
	const char	*u = http_param(&r->params, "until");
	const char	*pairs[18];
	char		 from[32], err[512];
	size_t		 n = 0;

	http_format_time(((r->now_ms / DAY_MS) - (days - 1)) * DAY_MS, from,
	    sizeof(from));
	from[10] = '\0';
	pairs[n++] = "since";
	pairs[n++] = s != NULL && s[0] != '\0' ? s : from;
	if (u != NULL && u[0] != '\0') {
		pairs[n++] = "until";
		pairs[n++] = u;
	}
	struct page_sites	 sites;

	if (page_sites_get(r, &sites, err, sizeof(err)) == -1) {
		html_printf(b, "<p class=\"error\">%s</p>", err);
		return -1;
	}
	if (sites.instance != NULL) {
		pairs[n++] = "instance";
		pairs[n++] = sites.instance;
	}
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 14; i++)
		pairs[n++] = extra[i];
	pairs[n] = NULL;
	if (http_data_opts(o, kind, NULL, pairs, err, sizeof(err)) == 0)
		return 0;
	html_printf(b, "<p class=\"error\">%s</p>", err);
	return -1;
}

/* Run o; the rows, or NULL after showing why. */
static struct report_rows *
page_run(struct http_req *r, struct evbuffer *b, const struct report_opts *o)
{
	struct report_rows	*rows;
	struct page_sites	 sites;
	char			 err[512];
	int			 status;

	if (page_sites_get(r, &sites, err, sizeof(err)) == 0 &&
	    (sites.central ? http_data_run_central(r->h, o, &rows, &status,
	    err, sizeof(err)) : http_data_run(r->h, o, &rows, err,
	    sizeof(err))) == 0)
		return rows;
	html_printf(b, "<p class=\"error\">%s cannot be read: %s</p>",
	    sites.central ? "the central database" : "the log", err);
	return NULL;
}

/* True if column name is shown: every one but id, or those in only. */
static bool
page_col_shown(const char *name, const char *const only[])
{
	if (strcmp(name, "id") == 0)
		return false;
	if (only == NULL)
		return true;
	for (size_t i = 0; only[i] != NULL; i++)
		if (strcmp(only[i], name) == 0)
			return true;
	return false;
}

/*
 * rows as a table, the id column left out (only: the columns to show, or
 * NULL for all). With link, each client links to that client's attempts.
 * A text cell carries its value as a title too: the style sheet cuts a
 * long name short with an ellipsis, and the title shows it whole.
 */
static void
page_table(struct http_req *r, struct evbuffer *b,
    const struct report_rows *rows, const char *cls, bool link,
    const char *const only[])
{
	struct page_sites	sites;
	char			err[256];
	char	buf[32], label[64];
	int	ncols = 0;

	if (page_sites_get(r, &sites, err, sizeof(err)) == -1)
		link = false;
	/* A wide table scrolls in its own box, never the whole page. */
	html_printf(b, "<div class=\"scroll\"><table class=\"%s\"><thead>"
	    "<tr>", cls);
	for (size_t c = 0; c < rows->ncols; c++) {
		if (!page_col_shown(rows->cols[c].name, only))
			continue;
		/* "verified_queries" as "verified queries": it may wrap. */
		snprintf(label, sizeof(label), "%s", rows->cols[c].name);
		for (char *u = label; (u = strchr(u, '_')) != NULL; u++)
			*u = ' ';
		html_printf(b, "<th>%s</th>", label);
		ncols++;
	}
	html_printf(b, "</tr></thead><tbody>");
	for (size_t i = 0; i < rows->nrows; i++) {
		html_printf(b, "<tr>");
		for (size_t c = 0; c < rows->ncols; c++) {
			const char *name = rows->cols[c].name;
			const char *v = http_data_cell(rows, i, c, buf,
			    sizeof(buf));

			if (!page_col_shown(name, only))
				continue;
			if (link && strcmp(name, "client") == 0) {
				html_printf(b, "<td class=\"text\" title=\"%s\">"
				    "<a class=\"client\" href=\"/attempts?client="
				    "%u", v, v);
				page_sites_link(b, &sites);
				html_printf(b, "\">%s</a></td>", v);
			}
			else if (rows->cols[c].type == REPORT_T_INT)
				html_printf(b, "<td class=\"num\">%s</td>", v);
			else
				html_printf(b, "<td class=\"text\" title=\"%s\">"
				    "%s</td>", v, v);
		}
		html_printf(b, "</tr>");
	}
	if (rows->nrows == 0)
		html_printf(b, "<tr><td colspan=\"%d\">no blocked attempts"
		    "</td></tr>", ncols);
	html_printf(b, "</tbody></table></div>");
	if (rows->rows_lost > 0)
		html_printf(b, "<p class=\"error\">%L rows in this period were"
		    " never logged: the counts are too low</p>",
		    rows->rows_lost);
}

/* Attempts per day as a chart (data in attributes, drawn by app.js). */
static void
page_chart(struct http_req *r, struct evbuffer *b)
{
	static const char *const by_day[] = { "by", "day", NULL };
	struct report_opts	 o;
	struct report_rows	*rows;
	json_t			*labels, *values;
	char			*l, *v;
	int			 dc, ac;

	html_printf(b, "<section><h2>Attempts per day</h2>");
	if (page_opts(r, b, &o, REPORT_COUNTS, 30, by_day) == -1 ||
	    (rows = page_run(r, b, &o)) == NULL) {
		html_printf(b, "</section>");
		return;
	}
	labels = json_array();
	values = json_array();
	dc = http_data_col(rows, "day");
	ac = http_data_col(rows, "attempts");
	for (size_t i = 0; dc >= 0 && ac >= 0 && i < rows->nrows; i++) {
		json_array_append_new(labels,
		    json_string(report_cell(rows, i, (size_t)dc)->text));
		json_array_append_new(values,
		    json_integer(report_cell(rows, i, (size_t)ac)->num));
	}
	l = json_dumps(labels, JSON_COMPACT);
	v = json_dumps(values, JSON_COMPACT);
	html_printf(b, "<div class=\"chart\"><canvas id=\"chart\""
	    " data-labels=\"%s\" data-values=\"%s\"></canvas></div>"
	    "<details><summary>the numbers</summary>", l ? l : "[]",
	    v ? v : "[]");
	page_table(r, b, rows, "daily", false, NULL);
	html_printf(b, "</details></section>");
	free(l);
	free(v);
	json_decref(labels);
	json_decref(values);
	report_rows_free(rows);
}

static void
page_top(struct http_req *r, struct evbuffer *b, const char *by,
    const char *title)
{
	const char *const	 extra[] = { "by", by, "top", "10", NULL };
	/* A half-width panel: the name, what it is, and the two counts;
	 * the Reports page has every column. */
	static const char *const cols[] = { "site", "category", "client",
	    "client_name", "queries", "attempts", NULL };
	struct report_opts	 o;
	struct report_rows	*rows;

	html_printf(b, "<section><h2>%s</h2>", title);
	if (page_opts(r, b, &o, REPORT_COUNTS, 30, extra) == 0 &&
	    (rows = page_run(r, b, &o)) != NULL) {
		page_table(r, b, rows, by, false, cols);
		report_rows_free(rows);
	}
	html_printf(b, "</section>");
}

static void
page_health(struct http_req *r, struct evbuffer *b)
{
	json_t	*st = http_status_json(r);
	json_t	*log = json_object_get(st, "log");
	json_t	*last = json_object_get(st, "last_attempt");

	html_printf(b, "<section><h2>Log health</h2><dl class=\"health\">"
	    "<dt>rows lost</dt><dd id=\"rows-lost\">%L</dd>"
	    "<dt>rows waiting</dt><dd>%L</dd>"
	    "<dt>write errors</dt><dd>%L</dd>"
	    "<dt>last attempt logged</dt><dd>%s</dd></dl></section>",
	    (int64_t)json_integer_value(json_object_get(log, "dropped")),
	    (int64_t)json_integer_value(json_object_get(log, "pending")),
	    (int64_t)json_integer_value(json_object_get(log, "write_errors")),
	    json_is_string(last) ? json_string_value(last) : "none");
	json_decref(st);
}

static void
page_period_form(struct http_req *r, struct evbuffer *b, const char *extra)
{
	const char	*s = http_param(&r->params, "since");
	const char	*u = http_param(&r->params, "until");

	html_printf(b, "<form class=\"filter\" method=\"get\">"
	    "<label>From <input name=\"since\" placeholder=\"YYYY-MM-DD\""
	    " value=\"%s\"></label><label>to <input name=\"until\""
	    " placeholder=\"YYYY-MM-DD\" value=\"%s\"></label>",
	    s ? s : "", u ? u : "");
	evbuffer_add(b, extra, strlen(extra));
	page_sites_select(r, b);
	html_printf(b, "<button type=\"submit\">Show</button></form>");
}

static void
page_overview(struct http_req *r, struct evbuffer *b)
{
	static const char *const recent[] = { "limit", "10", NULL };
	struct report_opts	 o;
	struct report_rows	*rows;
	char			 detail[512];

	html_printf(b, "<h1>Overview</h1>");
	page_period_form(r, b, "");
	http_audit_params(r, detail, sizeof(detail));
	http_audit(r, "read report", detail[0] ? detail : "overview");
	page_chart(r, b);
	html_printf(b, "<div class=\"cols\">");
	page_top(r, b, "site", "Top sites");
	page_top(r, b, "client", "Top clients");
	html_printf(b, "</div>");
	if (ROLE(r->role) & ROLES_SECURITY) {
		http_audit(r, "read attempts", "overview limit=10");
		html_printf(b, "<section><h2>Recent attempts</h2>");
		if (page_opts(r, b, &o, REPORT_ATTEMPTS, 30, recent) == 0 &&
		    (rows = page_run(r, b, &o)) != NULL) {
			page_table(r, b, rows, "attempts", true, NULL);
			report_rows_free(rows);
		}
		html_printf(b, "</section>");
	}
	page_health(r, b);
}

static void
page_reports(struct http_req *r, struct evbuffer *b)
{
	static const char *const bys[] = { "day", "week", "month", "client",
	    "site", "category", "domain", "policy", "instance" };
	/* by instance: every site's own row, with the central database */
	size_t			 nby = sizeof(bys) / sizeof(bys[0]) -
	    (http_data_central_configured(r->h) ? 0 : 1);
	struct page_sites	 sites;
	const char		*by = http_param(&r->params, "by");
	const char		*since = http_param(&r->params, "since");
	const char		*until = http_param(&r->params, "until");
	struct evbuffer		*sel = evbuffer_new();
	struct report_opts	 o;
	struct report_rows	*rows;
	char			 detail[512];
	bool			 known = false;

	for (size_t i = 0; by != NULL && i < nby; i++)
		known |= strcmp(by, bys[i]) == 0;
	if (!known)
		by = "day";
	const char *const extra[] = { "by", by, NULL };

	html_printf(sel, "<label>by <select name=\"by\">");
	for (size_t i = 0; i < nby; i++)
		html_printf(sel, "<option%s>%s</option>",
		    strcmp(by, bys[i]) == 0 ? " selected" : "", bys[i]);
	html_printf(sel, "</select></label>");
	evbuffer_add(sel, "", 1);
	html_printf(b, "<h1>Reports</h1>");
	page_period_form(r, b, (const char *)evbuffer_pullup(sel, -1));
	evbuffer_free(sel);
	if (page_opts(r, b, &o, REPORT_COUNTS, 30, extra) == -1)
		return;
	http_audit_params(r, detail, sizeof(detail));
	http_audit(r, "read report", detail);
	html_printf(b, "<p><a id=\"csv\" href=\"/api/v1/report?by=%u", by);
	if (since != NULL && since[0] != '\0')
		html_printf(b, "&amp;since=%u", since);
	if (until != NULL && until[0] != '\0')
		html_printf(b, "&amp;until=%u", until);
	/* The API's names for the selector's choice (site is the website). */
	if (page_sites_get(r, &sites, detail, sizeof(detail)) == 0 &&
	    sites.central)
		html_printf(b, "&amp;central=1");
	if (sites.instance != NULL)
		html_printf(b, "&amp;instance=%u", sites.instance);
	html_printf(b, "&amp;format=csv\" download>Download CSV</a></p>");
	if ((rows = page_run(r, b, &o)) != NULL) {
		page_table(r, b, rows, "report", false, NULL);
		report_rows_free(rows);
	}
}

/*
 * The link to the page after rows: before the last row's id (central:
 * its instance:id, ids being per instance there), with the same filters.
 */
static void
page_older(struct http_req *r, struct evbuffer *b,
    const struct report_rows *rows)
{
	const char	*client = http_param(&r->params, "client");
	const char	*site = http_param(&r->params, "site");
	int		 ic = http_data_col(rows, "id");
	int		 nc = http_data_col(rows, "instance");
	struct page_sites sites;
	char		 err[256];

	if (ic < 0 || rows->nrows == 0 ||
	    page_sites_get(r, &sites, err, sizeof(err)) == -1)
		return;
	html_printf(b, "<p><a id=\"older\" href=\"/attempts?before=");
	if (sites.central && nc >= 0)
		html_printf(b, "%u:", report_cell(rows, rows->nrows - 1,
		    (size_t)nc)->text);
	html_printf(b, "%L", report_cell(rows, rows->nrows - 1,
	    (size_t)ic)->num);
	if (client != NULL && client[0] != '\0')
		html_printf(b, "&amp;client=%u", client);
	if (site != NULL && site[0] != '\0')
		html_printf(b, "&amp;site=%u", site);
	page_sites_link(b, &sites);
	html_printf(b, "\">Older attempts</a></p>");
}

static void
page_attempts(struct http_req *r, struct evbuffer *b)
{
	const char		*client = http_param(&r->params, "client");
	const char		*site = http_param(&r->params, "site");
	const char		*before = http_param(&r->params, "before");
	const char		*extra[8];
	struct evbuffer		*form = evbuffer_new();
	struct report_opts	 o;
	struct report_rows	*rows;
	char			 detail[512];
	size_t			 n = 0;

	extra[n++] = "limit";
	extra[n++] = "50";
	if (client != NULL && client[0] != '\0') {
		extra[n++] = "client";
		extra[n++] = client;
	}
	if (site != NULL && site[0] != '\0') {
		extra[n++] = "site";
		extra[n++] = site;
	}
	if (before != NULL && before[0] != '\0') {
		extra[n++] = "before";
		extra[n++] = before;
	}
	extra[n] = NULL;
	html_printf(form, "<label>client <input name=\"client\" value=\"%s\">"
	    "</label><label>site <input name=\"site\" value=\"%s\"></label>",
	    client ? client : "", site ? site : "");
	evbuffer_add(form, "", 1);
	html_printf(b, "<h1>Attempts</h1>");
	page_period_form(r, b, (const char *)evbuffer_pullup(form, -1));
	evbuffer_free(form);
	if (page_opts(r, b, &o, REPORT_ATTEMPTS, 3650, extra) == -1)
		return;
	http_audit_params(r, detail, sizeof(detail));
	http_audit(r, "read attempts", detail);
	if ((rows = page_run(r, b, &o)) == NULL)
		return;
	page_table(r, b, rows, "attempts", true, NULL);
	if (rows->limit_reached)
		page_older(r, b, rows);
	report_rows_free(rows);
}

static void
page_lookup(struct http_req *r, struct evbuffer *b, const char *name)
{
	json_t	*o;

	http_audit(r, "lookup", name);
	if ((o = http_lookup_json(r, name,
	    BLOCKLIST_POLICY_DEFAULT)) == NULL) {
		html_printf(b, "<p class=\"error\">not a valid domain name</p>");
		return;
	}
	if (json_is_true(json_object_get(o, "blocked")))
		html_printf(b, "<p id=\"lookup-result\">%s is <b>blocked</b>:"
		    " rule %s, category %s, site %s (%s)</p>", name,
		    json_string_value(json_object_get(o, "rule")),
		    json_string_value(json_object_get(o, "category")),
		    json_is_string(json_object_get(o, "site")) ?
		    json_string_value(json_object_get(o, "site")) : "-",
		    json_string_value(json_object_get(o, "source")));
	else
		html_printf(b, "<p id=\"lookup-result\">%s is allowed</p>",
		    name);
	json_decref(o);
}

static void
page_blocklist(struct http_req *r, struct evbuffer *b)
{
	const char	*name = http_param(&r->params, "name");
	char		*text = NULL;
	size_t		 len = 0;
	FILE		*f = open_memstream(&text, &len);

	html_printf(b, "<h1>Blocklist</h1>");
	if (ROLE(r->role) & ROLES_SECURITY) {
		html_printf(b, "<form class=\"filter\" method=\"get\"><label>"
		    "Look up a name <input name=\"name\" value=\"%s\"></label>"
		    "<button type=\"submit\">Look up</button></form>",
		    name ? name : "");
		if (name != NULL && name[0] != '\0')
			page_lookup(r, b, name);
	}
	if (f != NULL) {
		blocklist_print_summary(r->h->bl, f);
		fclose(f);
	}
	html_printf(b, "<h2>Categories and entries</h2><pre>%s</pre>",
	    text ? text : "");
	free(text);
}

static void
page_status(struct http_req *r, struct evbuffer *b)
{
	json_t		*st = http_status_json(r);
	json_t		*c = json_object_get(st, "counters");
	const char	*k;
	json_t		*v;

	html_printf(b, "<h1>Status</h1><dl class=\"status\">"
	    "<dt>version</dt><dd>%s</dd><dt>uptime</dt><dd>%L s</dd>"
	    "<dt>blocklist entries</dt><dd>%L</dd>"
	    "<dt>upstreams</dt><dd>%L</dd></dl>"
	    "<h2>Counters</h2><table class=\"counters\"><tbody>",
	    DNSWARDEN_VERSION,
	    (int64_t)json_integer_value(json_object_get(st, "uptime_seconds")),
	    (int64_t)json_integer_value(json_object_get(st,
	    "blocklist_entries")),
	    (int64_t)json_integer_value(json_object_get(st, "upstreams")));
	json_object_foreach(c, k, v)
		html_printf(b, "<tr><td>%s</td><td class=\"num\">%L</td></tr>",
		    k, (int64_t)json_integer_value(v));
	html_printf(b, "</tbody></table>");
	json_decref(st);
	page_health(r, b);
}

static void
page_audit(struct http_req *r, struct evbuffer *b)
{
	sqlite3_stmt	*st;
	char		 ts[64];

	html_printf(b, "<h1>Audit trail</h1><table class=\"audit\"><thead><tr>"
	    "<th>time</th><th>user</th><th>role</th><th>remote</th>"
	    "<th>action</th><th>detail</th></tr></thead><tbody>");
	http_audit_flush(r->h);
	if (r->h->rdb != NULL && sqlite3_prepare_v2(r->h->rdb, "SELECT ts,"
	    " user, role, remote, action, detail FROM audit ORDER BY id DESC"
	    " LIMIT 200", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			http_format_time(sqlite3_column_int64(st, 0), ts,
			    sizeof(ts));
			html_printf(b, "<tr><td>%s</td><td>%s</td><td>%s</td>"
			    "<td>%s</td><td>%s</td><td>%s</td></tr>", ts,
			    (const char *)sqlite3_column_text(st, 1),
			    (const char *)sqlite3_column_text(st, 2),
			    (const char *)sqlite3_column_text(st, 3),
			    (const char *)sqlite3_column_text(st, 4),
			    (const char *)sqlite3_column_text(st, 5));
		}
		sqlite3_finalize(st);
	}
	html_printf(b, "</tbody></table>");
}

void
http_page(struct http_req *r)
{
	const struct page	*p = NULL;
	struct evbuffer		*b = evbuffer_new();

	for (size_t i = 0; i < NPAGES; i++)
		if (strcmp(pages[i].path, r->path) == 0)
			p = &pages[i];
	if (b == NULL || p == NULL) {
		http_reply_error(r, 500, "out of memory");
		evbuffer_free(b);
		return;
	}
	if (r->role == HTTP_ROLE_NONE && strcmp(r->path, "/") == 0)
		page_login(r, b);
	else if (r->role == HTTP_ROLE_NONE) {
		http_header(r, "Location", "/");
		http_reply(r, 303, "text/html; charset=utf-8", b);
	} else {
		page_head(r, b, p->title);
		page_nav(r, b);
		if (p->roles & ROLE(r->role)) {
			p->fn(r, b);
			page_send(r, 200, b);
		} else {
			html_printf(b, "<h1>Not allowed</h1><p class=\"error\""
			    " id=\"refused\">Your role (%s) may not see this"
			    " page.</p>", http_role_name(r->role));
			page_send(r, 403, b);
		}
	}
	evbuffer_free(b);
}
