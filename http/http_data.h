/*
 * http_data: the console's way to the report library (report/report.h):
 * options from URL parameters, the query on the console's own read-only
 * connection, and the same CSV and JSON writers as the CLI, so that a
 * download equals `dnswarden report --format csv` byte for byte. Private
 * to http/.
 */
#ifndef DNSWARDEN_HTTP_DATA_H
#define DNSWARDEN_HTTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

#include "report.h"

struct http;
struct http_params;

/*
 * Options for kind from the request's parameters (each one a name
 * report_opts_set() knows, the caller having refused others), after
 * the pairs in extra (NULL-terminated name, value list; may be NULL).
 * A --tz that would change the process's zone is refused: the console
 * shares the process with the DNS path. 0, or -1 with the reason in err.
 */
int	http_data_opts(struct report_opts *o, enum report_kind kind,
	    const struct http_params *p, const char *const extra[],
	    char *err, size_t errlen);

/*
 * Run o on the log. 0 with *out (free with report_rows_free()), or -1
 * with the reason in err (no log, or it cannot be read).
 */
int	http_data_run(struct http *h, const struct report_opts *o,
	    struct report_rows **out, char *err, size_t errlen);

/*
 * Run o on the central database (log.central.postgresql), which every
 * instance ships its rows to, as `dnswarden report --central` does; an
 * instance in o must be one found there. It runs on the console's
 * thread, which no reload waits for (server.c), so the DNS thread never
 * waits for PostgreSQL. 0 with *out, or -1 with the reason in err and
 * an HTTP status in *status: 400 when log.central is not configured or
 * the instance is unknown, 503 when the database cannot be read.
 */
int	http_data_run_central(struct http *h, const struct report_opts *o,
	    struct report_rows **out, int *status, char *err, size_t errlen);

/*
 * The instances found in the central database, as
 * report_db_instances() (free with report_names_free()). 0, or -1
 * with the reason in err.
 */
int	http_data_instances(struct http *h, char ***names, size_t *n,
	    char *err, size_t errlen);

/* True if log.central.postgresql is set. */
bool	http_data_central_configured(const struct http *h);

/*
 * The URL parameter central: absent, "0" (the local log) or "1" (the
 * central database) into *central; 0, or -1 for another value.
 */
int	http_data_central_param(const struct http_params *p, bool *central);

/* A cell as a page shows it: text, the number, yes/no, "-" for NULL. */
const char *http_data_cell(const struct report_rows *r, size_t row,
	    size_t col, char *buf, size_t len);

/* The index of column name in r, or -1. */
int	http_data_col(const struct report_rows *r, const char *name);

#endif
