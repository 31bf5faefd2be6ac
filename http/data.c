/*
 * data: see http_data.h. The console holds one report_db, opened on
 * first use (the log may not exist when the console starts) and kept.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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
		if (report_opts_set(o, p->key[i], p->value[i], err, errlen) ==
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
