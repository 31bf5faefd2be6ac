/*
 * report: the "report" and "log" commands. See report.h and, for what the
 * numbers mean, docs/reports.md.
 *
 * Times are UTC throughout: --since/--until without a zone, the day, week
 * and month groups, and every time printed. An attempt is a run of queries
 * from one client for one rule with no pause longer than 60 seconds; it
 * belongs to the period and group of its first query.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "attemptlog.h"
#include "config.h"
#include "report.h"
#include "sink.h"

#define REPORT_BUSY_MS		5000	/* wait this long for the writer */
#define REPORT_ATTEMPT_GAP_MS	60000	/* a longer pause starts an attempt */
#define REPORT_LOG_LIMIT	100
#define REPORT_TIME_MAX		INT64_MAX

enum report_by {
	BY_TOTAL, BY_DAY, BY_WEEK, BY_MONTH, BY_CLIENT, BY_CATEGORY, BY_SITE,
	BY_DOMAIN,
};

enum report_format { FORMAT_TABLE, FORMAT_CSV, FORMAT_JSON };

struct report_opts {
	const char		*cmd;		/* "report" or "log" */
	const char		*config;
	int64_t			 since;		/* ms, inclusive */
	int64_t			 until;		/* ms, exclusive */
	enum report_by		 by;
	long			 top;		/* 0: all groups */
	enum report_format	 format;
	const char		*client;	/* log: address or name */
	const char		*site;		/* log: site name */
	long			 limit;		/* log: 0 means all */
};

/* ---- result sets and their three formats ---- */

enum col_kind { COL_TEXT, COL_INT, COL_TIME, COL_BOOL };

struct rs_col {
	const char	*name;
	enum col_kind	 kind;
};

struct rs {
	const struct rs_col	*cols;
	size_t			 ncols;
	char			**cells;	/* nrows * ncols; NULL: SQL NULL */
	size_t			 nrows;
	size_t			 cap;		/* rows allocated */
};

/* "2024-05-01T09:30:00.250Z" (ms kept only when not zero). */
static void
report_format_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

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
rs_add_row(struct rs *rs, sqlite3_stmt *st)
{
	char tbuf[64], **row;

	if (rs->nrows == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		char **cells = realloc(rs->cells,
		    cap * rs->ncols * sizeof(*cells));

		if (cells == NULL)
			return -1;
		rs->cells = cells;
		rs->cap = cap;
	}
	row = rs->cells + rs->nrows * rs->ncols;
	for (size_t i = 0; i < rs->ncols; i++) {
		const char *v = (const char *)sqlite3_column_text(st, (int)i);

		if (v != NULL && rs->cols[i].kind == COL_TIME) {
			report_format_time(sqlite3_column_int64(st, (int)i),
			    tbuf, sizeof(tbuf));
			v = tbuf;
		}
		row[i] = v ? strdup(v) : NULL;
	}
	rs->nrows++;
	return 0;
}

/* Step st to its end, keeping every row. Returns 0 or -1 (message). */
static int
rs_fill(struct rs *rs, sqlite3 *db, sqlite3_stmt *st, const char *cmd)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (rs_add_row(rs, st) == -1) {
			fprintf(stderr, "dnswarden %s: out of memory\n", cmd);
			return -1;
		}
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "dnswarden %s: cannot read the log: %s\n",
		    cmd, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

static void
rs_free(struct rs *rs)
{
	for (size_t i = 0; i < rs->nrows * rs->ncols; i++)
		free(rs->cells[i]);
	free(rs->cells);
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* A cell as the table shows it: booleans as yes or no. */
static const char *
cell_text(const struct rs *rs, size_t r, size_t c)
{
	const char *v = rs->cells[r * rs->ncols + c];

	if (v != NULL && rs->cols[c].kind == COL_BOOL)
		return strcmp(v, "0") != 0 ? "yes" : "no";
	return v;
}

static void
rs_print_table(const struct rs *rs, FILE *out)
{
	size_t width[16] = { 0 };

	for (size_t c = 0; c < rs->ncols; c++) {
		width[c] = strlen(rs->cols[c].name);
		for (size_t r = 0; r < rs->nrows; r++) {
			const char *v = cell_text(rs, r, c);
			size_t w = text_width(v ? v : "-");

			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r <= rs->nrows; r++) {
		for (size_t c = 0; c < rs->ncols; c++) {
			const char *v = r == 0 ? rs->cols[c].name :
			    cell_text(rs, r - 1, c);
			int pad = (int)(width[c] - text_width(v ? v : "-"));
			bool last = c + 1 == rs->ncols;

			if (rs->cols[c].kind == COL_INT)
				fprintf(out, "%*s%s", pad, "", v ? v : "-");
			else
				fprintf(out, "%s%*s", v ? v : "-",
				    last ? 0 : pad, "");
			fputs(last ? "\n" : "  ", out);
		}
	}
}

static void
csv_field(const char *v, FILE *out)
{
	if (v == NULL)
		return;
	if (strpbrk(v, ",\"\r\n") == NULL) {
		fputs(v, out);
		return;
	}
	putc('"', out);
	for (; *v; v++) {
		if (*v == '"')
			putc('"', out);
		putc(*v, out);
	}
	putc('"', out);
}

static void
rs_print_csv(const struct rs *rs, FILE *out)
{
	for (size_t r = 0; r <= rs->nrows; r++)
		for (size_t c = 0; c < rs->ncols; c++) {
			csv_field(r == 0 ? rs->cols[c].name :
			    rs->cells[(r - 1) * rs->ncols + c], out);
			fputs(c + 1 == rs->ncols ? "\r\n" : ",", out);
		}
}

static void
json_string(const char *v, FILE *out)
{
	putc('"', out);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			putc(*p, out);
	}
	putc('"', out);
}

/* An array of objects; extra (when not NULL) is appended to each. */
static void
rs_print_json(const struct rs *rs, const char *extra, FILE *out)
{
	fputs("[", out);
	for (size_t r = 0; r < rs->nrows; r++) {
		fputs(r ? ",\n  {" : "\n  {", out);
		for (size_t c = 0; c < rs->ncols; c++) {
			const char *v = rs->cells[r * rs->ncols + c];

			if (c > 0)
				fputs(", ", out);
			json_string(rs->cols[c].name, out);
			fputs(": ", out);
			if (v == NULL)
				fputs("null", out);
			else if (rs->cols[c].kind == COL_INT)
				fputs(v, out);
			else if (rs->cols[c].kind == COL_BOOL)
				fputs(strcmp(v, "0") != 0 ? "true" : "false",
				    out);
			else
				json_string(v, out);
		}
		if (extra != NULL)
			fprintf(out, ", %s", extra);
		fputs("}", out);
	}
	fputs(rs->nrows ? "\n]\n" : "]\n", out);
}

/* ---- dates ---- */

static int
days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/* "Z", "+02:00", "+0200", "-05" or "": the offset east of UTC, seconds. */
static int
parse_zone(const char *s, long *off)
{
	int hh, mm = 0, n = 0;

	*off = 0;
	if (*s == '\0' || strcmp(s, "Z") == 0 || strcmp(s, "z") == 0)
		return 0;
	if (*s != '+' && *s != '-')
		return -1;
	if (!(sscanf(s + 1, "%2d:%2d%n", &hh, &mm, &n) == 2 && n == 5) &&
	    !(sscanf(s + 1, "%2d%2d%n", &hh, &mm, &n) == 2 && n == 4) &&
	    !(sscanf(s + 1, "%2d%n", &hh, &n) == 1 && n == 2 && (mm = 0, 1)))
		return -1;
	if (s[1 + n] != '\0' || hh > 23 || mm > 59 ||
	    !isdigit((unsigned char)s[1]))
		return -1;
	*off = (*s == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
	return 0;
}

/* The "HH:MM[:SS[.fff]]" after the date; *n set to the length read. */
static int
parse_clock(const char *s, struct tm *tm, int *msec, int *len)
{
	int n = 0, frac = 0, digits = 0;

	if (sscanf(s, "%2d:%2d%n", &tm->tm_hour, &tm->tm_min, &n) != 2 ||
	    n != 5)
		return -1;
	if (s[n] == ':') {
		int m = 0;

		if (sscanf(s + n + 1, "%2d%n", &tm->tm_sec, &m) != 1 || m != 2)
			return -1;
		n += 3;
		if (s[n] == '.' || s[n] == ',') {
			for (n++; isdigit((unsigned char)s[n]); n++, digits++)
				if (digits < 3)
					frac = frac * 10 + (s[n] - '0');
			if (digits == 0)
				return -1;
			for (; digits < 3; digits++)
				frac *= 10;
		}
	}
	if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
		return -1;
	*msec = frac;
	*len = n;
	return 0;
}

/*
 * DATE: YYYY-MM-DD, or YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z|+HH:MM], UTC when
 * no zone is given. A bare date as --until means the end of that day.
 */
static int
parse_when(const char *s, bool until, int64_t *ms)
{
	struct tm tm;
	int n = 0, msec = 0, clock_len = 0;
	long off = 0;
	bool date_only;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &n) != 3 || n != 10 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
	    tm.tm_mday < 1 ||
	    tm.tm_mday > days_in_month(tm.tm_year, tm.tm_mon))
		return -1;
	date_only = s[10] == '\0';
	if (!date_only) {
		if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
			return -1;
		if (parse_clock(s + 11, &tm, &msec, &clock_len) == -1 ||
		    parse_zone(s + 11 + clock_len, &off) == -1)
			return -1;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1 && errno == EOVERFLOW)
		return -1;
	*ms = ((int64_t)t - off) * 1000 + msec;
	if (date_only && until)
		*ms += 86400 * 1000LL;
	return 0;
}

/* ---- options ---- */

static void
report_usage(FILE *out, const char *cmd)
{
	if (strcmp(cmd, "log") == 0)
		fprintf(out, "usage: dnswarden log [-c FILE] [--since DATE]"
		    " [--until DATE] [--client ADDR|NAME]\n"
		    "                     [--site NAME] [--limit N]"
		    " [--format table|csv|json]\n");
	else
		fprintf(out, "usage: dnswarden report [-c FILE] [--since DATE]"
		    " [--until DATE]\n"
		    "                        [--by day|week|month|client|"
		    "category|site|domain]\n"
		    "                        [--top N]"
		    " [--format table|csv|json]\n");
	fprintf(out, "DATE: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM],"
	    " UTC unless a zone is given;\n"
	    "--until YYYY-MM-DD includes that whole day.\n");
}

static int
lookup(const char *s, const char *const names[], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static const char *const by_names[] = {
	[BY_TOTAL] = NULL, [BY_DAY] = "day", [BY_WEEK] = "week",
	[BY_MONTH] = "month", [BY_CLIENT] = "client",
	[BY_CATEGORY] = "category", [BY_SITE] = "site",
	[BY_DOMAIN] = "domain",
};
static const char *const format_names[] = { "table", "csv", "json" };

/* A count option: a whole number from min up. */
static int
parse_count(const char *s, long min, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min)
		return -1;
	*out = v;
	return 0;
}

/* One option's value; 0, or -1 after saying what was wrong. */
static int
report_opt(struct report_opts *o, int ch, const char *arg)
{
	const char *what = NULL;
	int i;

	switch (ch) {
	case 'c':
		o->config = arg;
		return 0;
	case 's':
	case 'u':
		if (parse_when(arg, ch == 'u', ch == 's' ? &o->since :
		    &o->until) == 0)
			return 0;
		what = ch == 's' ? "--since" : "--until";
		break;
	case 'b':
		if ((i = lookup(arg, by_names, 8)) > 0) {
			o->by = (enum report_by)i;
			return 0;
		}
		what = "--by";
		break;
	case 'f':
		if ((i = lookup(arg, format_names, 3)) >= 0) {
			o->format = (enum report_format)i;
			return 0;
		}
		what = "--format";
		break;
	case 't':
	case 'l':
		if (parse_count(arg, ch == 't' ? 1 : 0, ch == 't' ? &o->top :
		    &o->limit) == 0)
			return 0;
		what = ch == 't' ? "--top" : "--limit";
		break;
	case 'C':
		o->client = arg;
		return 0;
	case 'S':
		o->site = arg;
		return 0;
	}
	fprintf(stderr, "dnswarden %s: %s: invalid value \"%s\"\n", o->cmd,
	    what ? what : "option", arg);
	return -1;
}

/*
 * Parse argv into o. Returns -1 to go on, or the exit status: 0 after
 * --help, 2 on a usage error.
 */
static int
report_parse(int argc, char **argv, struct report_opts *o, bool is_log)
{
	static const struct option report_long[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "by", required_argument, NULL, 'b' },
		{ "top", required_argument, NULL, 't' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option log_long[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "client", required_argument, NULL, 'C' },
		{ "site", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'l' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->cmd = is_log ? "log" : "report";
	o->config = CONFIG_DEFAULT_PATH;
	o->until = REPORT_TIME_MAX;
	o->limit = REPORT_LOG_LIMIT;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+c:h",
	    is_log ? log_long : report_long, NULL)) != -1) {
		if (ch == 'h') {
			report_usage(stdout, o->cmd);
			return 0;
		}
		if (ch == '?' || ch == ':') {
			fprintf(stderr, "dnswarden %s: %s: unknown option or"
			    " missing value\n", o->cmd, argv[optind - 1]);
			report_usage(stderr, o->cmd);
			return 2;
		}
		if (report_opt(o, ch, optarg) == -1) {
			report_usage(stderr, o->cmd);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dnswarden %s: unexpected argument \"%s\"\n",
		    o->cmd, argv[optind]);
		report_usage(stderr, o->cmd);
		return 2;
	}
	if (o->since >= o->until) {
		fprintf(stderr, "dnswarden %s: --since must be before"
		    " --until\n", o->cmd);
		return 2;
	}
	return -1;
}

/* ---- the database ---- */

static int
report_check_schema(sqlite3 *db, const char *path, const char *cmd,
    bool *has_gaps, int *versionp)
{
	sqlite3_stmt *st;
	int version = -1, tables = 0;

	if (sqlite3_prepare_v2(db, "SELECT (SELECT user_version FROM"
	    " pragma_user_version), (SELECT count(*) FROM sqlite_master WHERE"
	    " type = 'table' AND name = 'attempts'), (SELECT count(*) FROM"
	    " sqlite_master WHERE type = 'table' AND name = 'log_gaps')", -1,
	    &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		version = sqlite3_column_int(st, 0);
		tables = sqlite3_column_int(st, 1);
		*has_gaps = sqlite3_column_int(st, 2) > 0;
	}
	if (version < 0)
		fprintf(stderr, "dnswarden %s: %s: %s\n", cmd, path,
		    sqlite3_errmsg(db));
	else if (version > SINK_SCHEMA_VERSION)
		fprintf(stderr, "dnswarden %s: %s: schema version %d is newer"
		    " than this dnswarden's (%d); use a newer dnswarden\n",
		    cmd, path, version, SINK_SCHEMA_VERSION);
	else if (tables == 0)
		fprintf(stderr, "dnswarden %s: %s: not a dnswarden attempt"
		    " log (no table attempts)\n", cmd, path);
	sqlite3_finalize(st);
	*versionp = version;
	return version >= 0 && version <= SINK_SCHEMA_VERSION && tables > 0 ?
	    0 : -1;
}

/* Open path read-only; 0, or -1 after saying why. */
static int
report_open_db(const char *path, const char *cmd, sqlite3 **dbp,
    bool *has_gaps, int *version)
{
	struct stat sb;

	*dbp = NULL;
	if (stat(path, &sb) == -1) {
		if (errno == ENOENT)
			fprintf(stderr, "dnswarden %s: %s: no attempt log yet"
			    " (dnswarden serve creates it when it starts with"
			    " this log.database)\n", cmd, path);
		else
			fprintf(stderr, "dnswarden %s: %s: %s\n", cmd, path,
			    strerror(errno));
		return -1;
	}
	if (sqlite3_open_v2(path, dbp, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "dnswarden %s: %s: %s\n", cmd, path,
		    *dbp ? sqlite3_errmsg(*dbp) : "out of memory");
		return -1;
	}
	/* The server's writer holds its lock for milliseconds at a time. */
	sqlite3_busy_timeout(*dbp, REPORT_BUSY_MS);
	return report_check_schema(*dbp, path, cmd, has_gaps, version);
}

/*
 * Load the configuration for its log settings; returns it (the caller
 * frees it), or NULL after printing the diagnostics.
 */
static struct config *
report_config(const struct report_opts *o)
{
	struct config *cfg;
	struct diag d;

	diag_init(&d);
	cfg = config_load(o->config, &d);
	if (cfg == NULL)
		fputs(diag_text(&d), stderr);
	diag_free(&d);
	if (cfg != NULL && cfg->log.database == NULL) {
		fprintf(stderr, "dnswarden %s: %s: log.database is not set:"
		    " nothing is logged\n", o->cmd, o->config);
		config_free(cfg);
		cfg = NULL;
	}
	return cfg;
}

/*
 * Warn on stderr about rows the server lost in the period; returns how
 * many (0 if none, or when the database predates table log_gaps).
 */
static int64_t
report_gaps(sqlite3 *db, const struct report_opts *o)
{
	sqlite3_stmt *st;
	int64_t total = 0;
	int shown = 0;
	char from[64], to[64];

	if (sqlite3_prepare_v2(db, "SELECT ts_start, ts_end, rows_dropped,"
	    " reason FROM log_gaps WHERE table_name = 'attempts' AND"
	    " ts_end >= ?1 AND ts_start < ?2 ORDER BY ts_start", -1, &st,
	    NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, o->since);
	sqlite3_bind_int64(st, 2, o->until);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t rows = sqlite3_column_int64(st, 2);

		total += rows;
		if (shown++ >= 10)
			continue;
		report_format_time(sqlite3_column_int64(st, 0), from,
		    sizeof(from));
		report_format_time(sqlite3_column_int64(st, 1), to,
		    sizeof(to));
		fprintf(stderr, "dnswarden %s: warning: %" PRId64 " rows were"
		    " lost between %s and %s (%s)\n", o->cmd, rows, from, to,
		    (const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_finalize(st);
	if (shown > 10)
		fprintf(stderr, "dnswarden %s: warning: and %d more gaps\n",
		    o->cmd, shown - 10);
	if (total > 0)
		fprintf(stderr, "dnswarden %s: warning: %" PRId64 " rows in"
		    " this period were never logged: the counts are too low\n",
		    o->cmd, total);
	return total;
}

/* "2024-05-01T00:00:00Z to 2024-06-01T00:00:00Z (UTC)" for titles. */
static void
report_period(const struct report_opts *o, char *buf, size_t len)
{
	char from[64] = "the first row", to[64] = "now";

	if (o->since != 0)
		report_format_time(o->since, from, sizeof(from));
	if (o->until != REPORT_TIME_MAX)
		report_format_time(o->until, to, sizeof(to));
	snprintf(buf, len, "from %s to %s (times in UTC)", from, to);
}

static void
report_print(const struct report_opts *o, const struct rs *rs,
    const char *title, int64_t lost)
{
	char extra[64];

	switch (o->format) {
	case FORMAT_CSV:
		rs_print_csv(rs, stdout);
		break;
	case FORMAT_JSON:
		snprintf(extra, sizeof(extra), "\"period_rows_lost\": %" PRId64,
		    lost);
		rs_print_json(rs, extra, stdout);
		break;
	default:
		printf("%s\n", title);
		rs_print_table(rs, stdout);
		break;
	}
}

/* ---- report ---- */

struct by_def {
	const char		*select;	/* key columns */
	const char		*group;		/* GROUP BY, "" for the total */
	bool			 by_time;	/* rows in time order */
	struct rs_col		 cols[5];
	size_t			 ncols;
};

#define COUNTS	{ "queries", COL_INT }, { "attempts", COL_INT }
/* ISO 8601 week: the Thursday of a date's week names its year. */
#define THURSDAY "date(ts / 1000, 'unixepoch', '-3 days', 'weekday 4')"

static const struct by_def by_defs[] = {
	[BY_TOTAL] = { "", "", false, { COUNTS }, 2 },
	[BY_DAY] = { "strftime('%Y-%m-%d', ts / 1000, 'unixepoch') AS day,",
	    "GROUP BY 1", true, { { "day", COL_TEXT }, COUNTS }, 3 },
	[BY_WEEK] = { "strftime('%Y', " THURSDAY ") || '-W' ||"
	    " printf('%02d', (strftime('%j', " THURSDAY ") - 1) / 7 + 1)"
	    " AS week,", "GROUP BY 1", true,
	    { { "week", COL_TEXT }, COUNTS }, 3 },
	[BY_MONTH] = { "strftime('%Y-%m', ts / 1000, 'unixepoch') AS month,",
	    "GROUP BY 1", true, { { "month", COL_TEXT }, COUNTS }, 3 },
	[BY_CLIENT] = { "client, max(client_name) AS client_name,",
	    "GROUP BY client", false, { { "client", COL_TEXT },
	    { "client_name", COL_TEXT }, COUNTS }, 4 },
	[BY_CATEGORY] = { "category,", "GROUP BY category", false,
	    { { "category", COL_TEXT }, COUNTS }, 3 },
	/* Imported lists have no site: one group per category for them. */
	[BY_SITE] = { "site, max(category) AS category,",
	    "GROUP BY site, CASE WHEN site IS NULL THEN category END", false,
	    { { "site", COL_TEXT }, { "category", COL_TEXT }, COUNTS }, 4 },
	[BY_DOMAIN] = { "rule AS domain, max(category) AS category,"
	    " max(site) AS site,", "GROUP BY rule", false,
	    { { "domain", COL_TEXT }, { "category", COL_TEXT },
	    { "site", COL_TEXT }, COUNTS }, 5 },
};

/*
 * One pass over the period: LAG gives each row the time since the
 * previous row of the same client and rule; a row starts an attempt when
 * there is none or it is more than 60 s old. Rows up to 60 s before
 * --since are read only to see whether the first rows continue an attempt
 * that started before the period.
 */
static int
report_query(sqlite3 *db, const struct report_opts *o, struct rs *rs)
{
	const struct by_def *by = &by_defs[o->by];
	sqlite3_stmt *st;
	char sql[2048];
	int rc;

	snprintf(sql, sizeof(sql),
	    "WITH r AS (SELECT ts, client, client_name, rule, category, site,"
	    " ts - lag(ts) OVER (PARTITION BY client, rule ORDER BY ts, id)"
	    " AS gap FROM attempts WHERE ts >= ?1 - %d AND ts < ?2),"
	    " g AS (SELECT %s count(*) AS queries,"
	    " coalesce(sum(gap IS NULL OR gap > %d), 0) AS attempts"
	    " FROM r WHERE ts >= ?1 %s"
	    " ORDER BY attempts DESC, queries DESC, 1 LIMIT ?3)"
	    " SELECT * FROM g ORDER BY %s",
	    REPORT_ATTEMPT_GAP_MS, by->select, REPORT_ATTEMPT_GAP_MS,
	    by->group, by->by_time ? "1" : "attempts DESC, queries DESC, 1");
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "dnswarden report: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, o->since);
	sqlite3_bind_int64(st, 2, o->until);
	sqlite3_bind_int64(st, 3, o->top > 0 ? o->top : -1);
	rs->cols = by->cols;
	rs->ncols = by->ncols;
	rc = rs_fill(rs, db, st, "report");
	sqlite3_finalize(st);
	return rc;
}

/* ---- log ---- */

static const struct rs_col log_cols[] = {
	{ "time", COL_TIME }, { "client", COL_TEXT },
	{ "client_name", COL_TEXT }, { "qname", COL_TEXT },
	{ "qtype", COL_TEXT }, { "rule", COL_TEXT }, { "category", COL_TEXT },
	{ "site", COL_TEXT }, { "transport", COL_TEXT },
	{ "verified", COL_BOOL }, { "policy", COL_TEXT },
};

/*
 * --client may be an address while the log holds pseudonyms: match the
 * pseudonym the server would have written for it, too.
 */
static void
log_client_pseudonym(const struct config *cfg, const char *client,
    char out[ATTEMPTLOG_PSEUDONYM_LEN + 1])
{
	out[0] = '\0';
	if (client != NULL &&
	    cfg->log.client_identity == CLIENT_IDENTITY_PSEUDONYM &&
	    cfg->log.pseudonym_key != NULL)
		attemptlog_pseudonym(cfg->log.pseudonym_key, client, out);
}

/* The rows of `dnswarden log`: the attempts o selects, newest first. */
static int
attempts_select(sqlite3 *db, int version, const struct report_opts *o,
    const char *pseudonym, struct rs *rs)
{
	sqlite3_stmt *st;
	int rc;

	char sql[1024];

	/* Before version 3, TCP was the one proof of an address. */
	snprintf(sql, sizeof(sql), "SELECT ts, client, client_name, qname,"
	    " qtype, rule, category, site, transport, %s FROM attempts"
	    " WHERE ts >= ?1 AND ts < ?2"
	    " AND (?3 IS NULL OR client = ?3 OR client_name = ?3"
	    " OR client = ?4)"
	    " AND (?5 IS NULL OR site = ?5 COLLATE NOCASE)"
	    " ORDER BY ts DESC, id DESC LIMIT ?6", version >= 3 ?
	    "verified, policy" : "transport = 'tcp', NULL");
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "dnswarden log: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, o->since);
	sqlite3_bind_int64(st, 2, o->until);
	if (o->client != NULL)
		sqlite3_bind_text(st, 3, o->client, -1, SQLITE_STATIC);
	if (pseudonym[0] != '\0')
		sqlite3_bind_text(st, 4, pseudonym, -1, SQLITE_STATIC);
	if (o->site != NULL)
		sqlite3_bind_text(st, 5, o->site, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, o->limit > 0 ? o->limit : -1);
	rs->cols = log_cols;
	rs->ncols = sizeof(log_cols) / sizeof(log_cols[0]);
	rc = rs_fill(rs, db, st, "log");
	sqlite3_finalize(st);
	return rc;
}

/*
 * The part "report" and "log" share: options, configuration, one read
 * transaction on the database (so the rows and the lost-row gaps agree),
 * the query, the output. log is true for "log".
 */
static int
report_run(int argc, char **argv, bool log)
{
	struct report_opts o;
	struct config *cfg;
	struct rs rs = { 0 };
	sqlite3 *db = NULL;
	bool has_gaps = false;
	char title[256], period[160], pseudonym[ATTEMPTLOG_PSEUDONYM_LEN + 1];
	int64_t lost = 0;
	int rc, version = 0;

	if ((rc = report_parse(argc, argv, &o, log)) >= 0)
		return rc;
	if ((cfg = report_config(&o)) == NULL)
		return 1;
	rc = 1;
	if (log)
		log_client_pseudonym(cfg, o.client, pseudonym);
	if (report_open_db(cfg->log.database, o.cmd, &db, &has_gaps,
	    &version) == -1)
		goto out;
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	if ((log ? attempts_select(db, version, &o, pseudonym, &rs) :
	    report_query(db, &o, &rs)) == -1)
		goto out;
	if (has_gaps)
		lost = report_gaps(db, &o);
	report_period(&o, period, sizeof(period));
	if (log)
		snprintf(title, sizeof(title), "Blocked attempts %s, newest "
		    "first%s", period, o.limit > 0 &&
		    rs.nrows == (size_t)o.limit ? " (--limit reached)" : "");
	else
		snprintf(title, sizeof(title), "Blocked attempts %s%s%s",
		    period, o.by != BY_TOTAL ? ", by " : "",
		    o.by != BY_TOTAL ? by_names[o.by] : "");
	report_print(&o, &rs, title, lost);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	rs_free(&rs);
	sqlite3_close(db);
	config_free(cfg);
	return rc;
}

int
report_cmd(int argc, char **argv)
{
	return report_run(argc, argv, false);
}

int
log_cmd(int argc, char **argv)
{
	return report_run(argc, argv, true);
}
