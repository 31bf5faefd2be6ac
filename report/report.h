/*
 * report: the queries behind `dnswarden report` and `dnswarden log` and
 * the console's /api/v1/report and /api/v1/attempts, as a library. The
 * caller fills options (report_opts_set(), by name, as the command line
 * and the URL give them), runs them against a database opened read-only
 * (report_run()) and gets the rows as data; the formatters then write
 * those rows as a table, CSV or JSON, the same bytes for every caller.
 * Nothing here prints unless asked to write to a FILE.
 *
 * What the numbers mean: docs/reports.md.
 */
#ifndef DNSWARDEN_REPORT_H
#define DNSWARDEN_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum report_kind {
	REPORT_COUNTS,		/* `report`: queries and attempts per group */
	REPORT_ATTEMPTS,	/* `log`: the rows, newest first */
};

enum report_by {
	REPORT_BY_TOTAL, REPORT_BY_DAY, REPORT_BY_WEEK, REPORT_BY_MONTH,
	REPORT_BY_CLIENT, REPORT_BY_CATEGORY, REPORT_BY_SITE,
	REPORT_BY_DOMAIN, REPORT_BY_POLICY, REPORT_BY_INSTANCE,
};

enum report_format { REPORT_TABLE, REPORT_CSV, REPORT_JSON };

#define REPORT_ARG_MAX		256	/* longest option value kept */
#define REPORT_LOG_LIMIT	100	/* default --limit */

/* What to report. Fill with report_opts_init() and report_opts_set(). */
struct report_opts {
	enum report_kind	 kind;
	enum report_by		 by;		/* counts */
	long			 top;		/* counts: groups kept; 0 all */
	enum report_format	 format;
	char			 client[REPORT_ARG_MAX]; /* attempts; "" any */
	char			 site[REPORT_ARG_MAX];	 /* attempts; "" any */
	char			 category[REPORT_ARG_MAX]; /* attempts; "" any */
	char			 rule[REPORT_ARG_MAX];	 /* attempts; "" any */
	char			 instance[REPORT_ARG_MAX]; /* "" any */
	int64_t			 before;	/* attempts: ids below; 0 all */
	char			 before_instance[REPORT_ARG_MAX]; /* central:
						   --before NAME:ID's NAME */
	long			 limit;		/* attempts: rows; 0 all */
	char			 tz[REPORT_ARG_MAX];	/* "" the local zone */
	char			 since_arg[REPORT_ARG_MAX]; /* as given */
	char			 until_arg[REPORT_ARG_MAX];
	bool			 scan;		/* counts: from every row, not
						   the summaries (tests, bench) */

	/* Set by report_opts_finish() from the above. */
	int64_t			 since;		/* Unix ms, inclusive */
	int64_t			 until;		/* Unix ms, exclusive */
};

/* Defaults for kind: every time, no grouping, table, --limit 100. */
void	report_opts_init(struct report_opts *o, enum report_kind kind);

/*
 * Set option name ("since", "until", "by", "top", "tz", "format",
 * "client", "site", "category", "rule", "instance", "before" (ID, or
 * NAME:ID for a central log), "limit": the long
 * option without its dashes, or the URL parameter) to value. Returns 0,
 * or -1 with a one-line reason in err (errlen bytes) for an unknown name
 * or a value that does not parse: a usage error. Dates are checked later, in
 * report_opts_finish(), once the zone is known.
 */
int	report_opts_set(struct report_opts *o, const char *name,
	    const char *value, char *err, size_t errlen);

/*
 * Check the options together and work out since and until: DATE is
 * YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM], in the zone of
 * --tz unless it names its own; a bare date as --until means the end of
 * that day. Returns 0, or -1 with the reason in err (a date that does not
 * parse, --since not before --until, an unknown --tz).
 */
int	report_opts_finish(struct report_opts *o, char *err, size_t errlen);

/*
 * About --tz: "" or "local" is the machine's zone, "UTC" is UTC, "+05:30"
 * a fixed offset, and a zone name ("Europe/Berlin", from the system's
 * zoneinfo) is made the process's zone (TZ) for what follows: a caller
 * with threads of its own should pass one of the other forms.
 */

struct report_db;

/*
 * Open the attempt log at path read-only, as SQLite's defensive reader
 * (trusted_schema off: nothing in the file runs as code), and check that
 * it is one: the reason in err and NULL when the file is missing, is not
 * a dnswarden log, or is of a newer schema than this program reads.
 * Never writes to the file.
 */
struct report_db *report_db_open(const char *path, char *err, size_t errlen);

/*
 * Open the central database (log.central.postgresql, a libpq connection
 * string) for reading every instance's rows: report_run() on it reads
 * dnswarden_sums and dnswarden_attempts there. The reason in err (one
 * line) and NULL when it cannot be reached, refuses, or has no dnswarden
 * tables (or ones of a newer schema).
 */
struct report_db *report_db_open_central(const char *conninfo, char *err,
	    size_t errlen);

/*
 * report_db_open_central() for a long-running reader (the console):
 * application_name app, libpq's connect_timeout timeout_s seconds, and
 * statement_ms the longest a query may run (0: no limit), unless
 * conninfo sets them itself.
 */
struct report_db *report_db_open_central_as(const char *conninfo,
	    const char *app, int timeout_s, int statement_ms, char *err,
	    size_t errlen);

/*
 * The instances the central database db holds rows of, sorted: *names
 * (NULL-terminated; free with report_names_free()) and their number in
 * *n. 0, or -1 with the reason in err (db is a local log, or cannot be
 * read).
 */
int	report_db_instances(struct report_db *db, char ***names, size_t *n,
	    char *err, size_t errlen);

void	report_names_free(char **names);

/* False once db's connection to the central database was lost. */
bool	report_db_ok(const struct report_db *db);

/*
 * The name of db's instance (log.central.instance), for --by instance
 * and --instance on a local log. By default, the instance the file was
 * last shipped as, or else the host name.
 */
void	report_db_set_instance(struct report_db *db, const char *name);

/* Close db (NULL is fine). */
void	report_db_close(struct report_db *db);

enum report_type {
	REPORT_T_TEXT,		/* text; null for SQL NULL */
	REPORT_T_INT,		/* a count or an id, in num */
	REPORT_T_TIME,		/* Unix ms, in num */
	REPORT_T_BOOL,		/* 0 or 1, in num */
};

struct report_column {
	const char		*name;
	enum report_type	 type;
};

struct report_cell {
	const char	*text;		/* TEXT: NULL for SQL NULL; TIME: the
					   time as printed, in the zone of --tz */
	int64_t		 num;		/* INT, TIME (Unix ms), BOOL */
};

/* A stretch of rows the server lost (table log_gaps). */
struct report_gap {
	int64_t		 ts_start;	/* Unix ms */
	int64_t		 ts_end;
	int64_t		 rows;
	const char	*reason;
	char		 from[48];	/* ts_start, ts_end as printed */
	char		 to[48];
};

#define REPORT_GAPS_SHOWN	10

/* A result: columns, rows of cells (row-major), and what was lost. */
struct report_rows {
	const struct report_column *cols;
	size_t			 ncols;
	struct report_cell	*cells;		/* nrows * ncols */
	size_t			 nrows;
	int64_t			 rows_lost;	/* in the period, all gaps */
	struct report_gap	 gaps[REPORT_GAPS_SHOWN]; /* the first ones */
	size_t			 ngaps;		/* all gaps, may be more */
	bool			 limit_reached;	/* attempts: --limit cut */
	/* the table's first line: room for rows_title()'s longest, an
	 * instance and a time zone label of REPORT_ARG_MAX each */
	char			 title[2 * REPORT_ARG_MAX + 700];
	char			 empty[1024];	/* attempts, no rows: which
						   filter matched nothing
						   ("no attempts for client
						   X from A to B"); else "" */
};

/* A cell of r (row, column). */
const struct report_cell *report_cell(const struct report_rows *r,
	    size_t row, size_t col);

/*
 * Run o (finished by report_opts_finish()) on db. pseudonym_key is the
 * configuration's log.pseudonym_key, or NULL: with it, a client given as
 * an address also finds the rows that name it by its pseudonym. Returns
 * 0 with the rows in *out (free with report_rows_free()), or -1 with the
 * reason in err (a database that cannot be read, out of memory).
 */
int	report_run(struct report_db *db, const struct report_opts *o,
	    const char *pseudonym_key, struct report_rows **out, char *err,
	    size_t errlen);

void	report_rows_free(struct report_rows *r);

/*
 * Write r to out as a table (its title, a header, aligned columns; every
 * control character shown escaped), CSV (RFC 4180 with CRLF; a cell that
 * a spreadsheet would run as a formula is prefixed with ') or JSON (an
 * array of objects, each with period_rows_lost, written by jansson).
 * Returns 0, or -1 when out of memory or when out fails.
 */
int	report_write(const struct report_rows *r, enum report_format f,
	    FILE *out);

/*
 * report_write() into a new buffer; returns it (NUL-terminated, *len
 * bytes; the caller frees it), or NULL when out of memory.
 */
char	*report_write_buffer(const struct report_rows *r, enum report_format f,
	    size_t *len);

/*
 * The warnings about lost rows, one line each, each starting with
 * prefix ("dnswarden report"), escaped as the table is. Nothing when no
 * row was lost.
 */
void	report_write_warnings(const struct report_rows *r, const char *prefix,
	    FILE *out);

/*
 * The commands. argv[0] is "report" or "log"; they write to stdout,
 * messages to stderr, and return the exit status: 0 ok, 1 bad
 * configuration, input or database, 2 usage.
 */
int	report_cmd(int argc, char **argv);
int	log_cmd(int argc, char **argv);

#endif
