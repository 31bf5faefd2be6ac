/*
 * rp_internal: what the parts of the report library share: the open
 * database, the time zone of a report, and dates. Private to report/.
 */
#ifndef DNSWARDEN_RP_INTERNAL_H
#define DNSWARDEN_RP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "report.h"

#define RP_TIME_MAX		INT64_MAX	/* --until not given */

struct report_db {
	sqlite3		*db;		/* a local log; NULL when central */
	int		 version;	/* PRAGMA user_version */
	bool		 has_gaps;	/* table log_gaps exists */
	bool		 has_log_index;	/* index attempts_log (version 5) */
	PGconn		*pg;		/* the central database, or NULL */
	char		 instance[REPORT_ARG_MAX]; /* a local log's */
};

enum rp_tz_kind {
	RP_TZ_UTC,
	RP_TZ_FIXED,		/* offset seconds east of UTC */
	RP_TZ_LOCAL,		/* the process's zone (TZ), maybe set by us */
};

struct rp_tz {
	enum rp_tz_kind	 kind;
	long		 offset;
	char		 label[REPORT_ARG_MAX];	/* for titles: "UTC", ... */
};

/*
 * The zone that --tz value names (see report.h). A zone name becomes the
 * process's TZ. Returns 0, or -1 with the reason in err.
 */
int	rp_tz_parse(const char *value, struct rp_tz *tz, char *err,
	    size_t errlen);

/*
 * The SQLite date-function modifiers that take 'unixepoch' seconds to
 * the zone's wall clock: "" for UTC, ", '+19800 seconds'", ", 'localtime'".
 */
void	rp_tz_modifier(const struct rp_tz *tz, char *buf, size_t len);

/*
 * The time ms (Unix milliseconds) as the reports print it, in zone tz:
 * "2024-05-01T09:30:00.250Z", "2024-05-01T11:30:00+02:00" (milliseconds
 * only when not 0).
 */
void	rp_time_format(int64_t ms, const struct rp_tz *tz, char *buf,
	    size_t len);

/*
 * DATE (see report_opts_finish()) in zone tz to Unix ms; until: a bare
 * date means the end of that day. Returns 0 or -1.
 */
int	rp_parse_when(const char *s, bool until, const struct rp_tz *tz,
	    int64_t *ms);

/*
 * The central side (rp_central.c). The SQL (PostgreSQL) that gives a
 * central report's input rows, grouped as far as its grouping allows
 * (rp_query.c, from the same plan as the local summaries): columns ts,
 * client, client_name, rule, category, site, policy, queries, attempts,
 * verified, instance; $1 is --instance when given. NULL when out of
 * memory; the caller frees it.
 */
char	*rp_central_counts_sql(const struct report_opts *o);

/*
 * Group mem, an SQLite database whose table c holds those rows, as a
 * local report groups its summaries (rp_query.c). Returns 0 or -1 (err).
 */
int	rp_counts_grouped(struct report_db *mem, const struct report_opts *o,
	    const struct rp_tz *tz, struct report_rows *r, char *err,
	    size_t errlen);

/* report_run() on the central database: counts, or the log's rows. */
int	rp_central_counts(struct report_db *d, const struct report_opts *o,
	    const struct rp_tz *tz, struct report_rows *r, char *err,
	    size_t errlen);
int	rp_central_attempts(struct report_db *d, const struct report_opts *o,
	    const char *pseudonym, const struct rp_tz *tz,
	    struct report_rows *r, char *err, size_t errlen);

/* No central rows: say why in r->empty (period: "from A to B"). */
void	rp_central_why_empty(struct report_db *d, const struct report_opts *o,
	    const char *period, struct report_rows *r);

/* "day" for REPORT_BY_DAY, ...; NULL for REPORT_BY_TOTAL. */
const char *rp_by_name(enum report_by by);

/*
 * Is the --client value v an IP address? Then it names one device (the
 * client column, or its pseudonym), never a clients: name (rp_query.c).
 */
bool	rp_client_is_address(const char *v);

#endif
