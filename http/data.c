/*
 * data: see http_data.h. The console holds one report_db, opened on
 * first use (the log may not exist when the console starts) and kept.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "http_data.h"
#include "http_internal.h"

/* A zone that needs no change to the process's TZ. */
static bool
tz_safe(const char *tz)
{
	return tz[0] == '\0' || strcmp(tz, "local") == 0 ||
	    strcmp(tz, "UTC") == 0 || tz[0] == '+' || tz[0] == '-';
}

int
http_data_opts(struct report_opts *o, enum report_kind kind,
    const struct http_params *p, const char *const extra[], char *err,
    size_t errlen)
{
	report_opts_init(o, kind);
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i += 2)
		if (report_opts_set(o, extra[i], extra[i + 1], err, errlen) ==
		    -1)
			return -1;
	for (size_t i = 0; p != NULL && i < p->n; i++)
		if (strcmp(p->key[i], "central") != 0 && report_opts_set(o, p->key[i], p->value[i], err, errlen) ==
		    -1)
			return -1;
	if (!tz_safe(o->tz)) {
		snprintf(err, errlen, "tz: use UTC, local or an offset such as"
		    " +02:00");
		return -1;
	}
	return report_opts_finish(o, err, errlen);
}

int
http_data_run(struct http *h, const struct report_opts *o,
    struct report_rows **out, char *err, size_t errlen)
{
	const char	*key;

	*out = NULL;
	if (h->dbpath == NULL) {
		snprintf(err, errlen, "no attempt log (log.database is off)");
		return -1;
	}
	if (h->report_db == NULL &&
	    (h->report_db = report_db_open(h->dbpath, err, errlen)) == NULL)
		return -1;
	key = h->cfg->log.client_identity == CLIENT_IDENTITY_PSEUDONYM ?
	    h->cfg->log.pseudonym_key : NULL;
	return report_run(h->report_db, o, key, out, err, errlen);
}

/*
 * The console reads with log.central.console_postgresql (a reader role's
 * string: the resolver's own role may insert only), else with the
 * shipper's log.central.postgresql.
 */
static const char *
central_read_conninfo(const struct http *h)
{
	return h->cfg->log.central_read_conninfo != NULL ?
	    h->cfg->log.central_read_conninfo : h->cfg->log.central_conninfo;
}

bool
http_data_central_configured(const struct http *h)
{
	return central_read_conninfo(h) != NULL;
}

int
http_data_central_param(const struct http_params *p, bool *central)
{
	const char	*v = http_param(p, "central");

	*central = v != NULL && strcmp(v, "1") == 0;
	return v == NULL || strcmp(v, "0") == 0 || *central ? 0 : -1;
}

/*
 * The central database, opened with conninfo: the connection kept from
 * before when it was made with the same string and still stands.
 */
static struct report_db *
central_open(struct http *h, const char *conninfo, char *err, size_t errlen)
{
	uint64_t	now;

	if (h->central_db != NULL && report_db_ok(h->central_db) &&
	    strcmp(h->central_conninfo, conninfo) == 0)
		return h->central_db;
	now = now_ms_monotonic();
	if (h->central_failed_ms != 0 &&
	    now - h->central_failed_ms < HTTP_CENTRAL_RETRY_MS &&
	    h->central_conninfo != NULL &&
	    strcmp(h->central_conninfo, conninfo) == 0) {
		snprintf(err, errlen, "%s (the console tries again %d s"
		    " after a failure)", h->central_failed,
		    HTTP_CENTRAL_RETRY_MS / 1000);
		return NULL;
	}
	report_db_close(h->central_db);
	h->central_db = NULL;
	free(h->central_conninfo);
	h->central_failed_ms = 0;
	if ((h->central_conninfo = strdup(conninfo)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->central_db = report_db_open_central_as(conninfo, "dnswarden console",
	    HTTP_CENTRAL_CONNECT_S, HTTP_CENTRAL_QUERY_MS, err, errlen);
	if (h->central_db == NULL) {
		h->central_failed_ms = now;
		snprintf(h->central_failed, sizeof(h->central_failed), "%s",
		    err);
	}
	return h->central_db;
}

/* After a failed read: the next one connects afresh. */
static void
central_drop(struct http *h)
{
	report_db_close(h->central_db);
	h->central_db = NULL;
}

static bool
names_has(char **names, const char *name)
{
	for (size_t i = 0; names != NULL && names[i] != NULL; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/*
 * The central database of h->cfg (the console thread's own: a reload
 * swaps it between requests), or NULL with why in err and *status.
 */
static struct report_db *
central_db(struct http *h, int *status, char *err, size_t errlen)
{
	if (central_read_conninfo(h) == NULL) {
		*status = 400;
		snprintf(err, errlen, "central: log.central.postgresql is not"
		    " set: there is no central database to read");
		return NULL;
	}
	*status = 503;
	return central_open(h, central_read_conninfo(h), err, errlen);
}

int
http_data_run_central(struct http *h, const struct report_opts *o,
    struct report_rows **out, int *status, char *err, size_t errlen)
{
	struct report_db	*db;
	const char		*key = NULL;
	char			**names = NULL;
	size_t			 n;
	bool			 known;

	*out = NULL;
	if ((db = central_db(h, status, err, errlen)) == NULL)
		return -1;
	if (o->instance[0] != '\0') {
		if (report_db_instances(db, &names, &n, err, errlen) == -1) {
			central_drop(h);
			return -1;
		}
		known = names_has(names, o->instance);
		report_names_free(names);
		if (!known) {
			*status = 400;
			snprintf(err, errlen, "instance: no instance %s in the"
			    " central database", o->instance);
			return -1;
		}
	}
	if (h->cfg->log.client_identity == CLIENT_IDENTITY_PSEUDONYM)
		key = h->cfg->log.pseudonym_key;
	if (report_run(db, o, key, out, err, errlen) == -1) {
		central_drop(h);
		return -1;
	}
	return 0;
}

int
http_data_instances(struct http *h, char ***names, size_t *n, char *err,
    size_t errlen)
{
	struct report_db	*db;
	int			 status;

	*names = NULL;
	*n = 0;
	if ((db = central_db(h, &status, err, errlen)) == NULL)
		return -1;
	if (report_db_instances(db, names, n, err, errlen) == -1) {
		central_drop(h);
		return -1;
	}
	return 0;
}

int
http_data_col(const struct report_rows *r, const char *name)
{
	for (size_t c = 0; c < r->ncols; c++)
		if (strcmp(r->cols[c].name, name) == 0)
			return (int)c;
	return -1;
}

const char *
http_data_cell(const struct report_rows *r, size_t row, size_t col,
    char *buf, size_t len)
{
	const struct report_cell *c = report_cell(r, row, col);

	switch (r->cols[col].type) {
	case REPORT_T_INT:
		snprintf(buf, len, "%" PRId64, c->num);
		return buf;
	case REPORT_T_BOOL:
		return c->num ? "yes" : "no";
	default:
		return c->text != NULL ? c->text : "-";
	}
}
