/*
 * report_test: "dnswarden report" and "dnswarden log" against a database
 * of known rows: the 60-second attempt rule at its edges, every --by in
 * every format, --since/--until and --tz, --top, lost-row warnings, the log
 * filters and pages, hostile strings in every format, the library without
 * the commands, the exit statuses, and the query plans (a log page is a
 * seek on an index, a report reads the summaries).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "attemptlog.h"
#include "report.h"
#include "rp_internal.h"
#include "sink.h"
#include "unit.h"

static char tmpdir[] = "/tmp/report_test.XXXXXX";
static char conf[256];		/* logs to attempts.db */
static char conf_empty[256];	/* logs to none.db, never created */
static char conf_pseudo[256];	/* client_identity: pseudonym */
static char out[65536], err[65536];

#define PSEUDO_KEY	"sixteen chars or more, secret"

/* 2024-03-04T10:00:00Z, a Monday, in ms. */
#define T	1709546400000LL
#define S	1000LL
#define DAY	(86400 * S)

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) == EOF) {
		perror(path);
		exit(1);
	}
}

static void
read_fd(int fd, char *buf, size_t len)
{
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

/*
 * Run fn with the NULL-terminated arguments, stdout into out and stderr
 * into err; returns its exit status.
 */
static int
run(int (*fn)(int, char **), ...)
{
	char *argv[32], ofile[300], efile[300];
	int argc = 0, rc, ofd, efd, saved_out, saved_err;
	va_list ap;

	va_start(ap, fn);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	snprintf(ofile, sizeof(ofile), "%s/stdout", tmpdir);
	snprintf(efile, sizeof(efile), "%s/stderr", tmpdir);
	ofd = open(ofile, O_RDWR | O_CREAT | O_TRUNC, 0600);
	efd = open(efile, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(1);
	saved_err = dup(2);
	dup2(ofd, 1);
	dup2(efd, 2);
	rc = fn(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	read_fd(ofd, out, sizeof(out));
	read_fd(efd, err, sizeof(err));
	close(ofd);
	close(efd);
	return rc;
}

static void
insert(sqlite3 *db, int64_t ts, const char *client, const char *name,
    const char *rule, const char *category, const char *site)
{
	sqlite3_stmt *st;

	sqlite3_prepare_v2(db, "INSERT INTO attempts (ts, client,"
	    " client_name, qname, qtype, rule, category, site, transport)"
	    " VALUES (?, ?, ?, 'www.' || ?4, 'A', ?4, ?5, ?6, 'udp')", -1,
	    &st, NULL);
	sqlite3_bind_int64(st, 1, ts);
	sqlite3_bind_text(st, 2, client, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, rule, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, category, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, site, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	sqlite3_finalize(st);
}

/* The writer's sink on path (made at the current schema if new). */
static struct sink *
sink_open(const char *path)
{
	char e[256];
	struct sink *s = sink_sqlite_ops.open(path, e, sizeof(e));

	if (s == NULL) {
		fprintf(stderr, "%s\n", e);
		exit(1);
	}
	return s;
}

/*
 * The known rows. Client 10.0.0.1 asks for example.com at T, +59 s (same
 * attempt), +119 s (60 s after the last: same), +180 s (61 s: a new one).
 */
static void
make_database(const char *path)
{
	char pseudo[ATTEMPTLOG_PSEUDONYM_LEN + 1];
	struct sink *s = sink_open(path);
	sqlite3 *db;

	sink_sqlite_ops.close(s);
	sqlite3_open(path, &db);
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	insert(db, T, "10.0.0.1", "finance", "example.com", "commercial-sex",
	    "Example Site");
	insert(db, T + 59 * S, "10.0.0.1", "finance", "example.com",
	    "commercial-sex", "Example Site");
	insert(db, T + 119 * S, "10.0.0.1", "finance", "example.com",
	    "commercial-sex", "Example Site");
	insert(db, T + 180 * S, "10.0.0.1", "finance", "example.com",
	    "commercial-sex", "Example Site");
	/* Another client, another rule: attempts of their own. */
	insert(db, T + 1 * S, "10.0.0.2", NULL, "example.com",
	    "commercial-sex", "Example Site");
	insert(db, T + 2 * S, "10.0.0.1", "finance", "other.net",
	    "commercial-sex", "Other, \"Inc\"");
	/* An imported list (no site), next day, twice within 30 s. */
	insert(db, T + DAY, "10.0.0.2", NULL, "imported.test",
	    "imported-list", NULL);
	insert(db, T + DAY + 30 * S, "10.0.0.2", NULL, "imported.test",
	    "imported-list", NULL);
	/* Next ISO week (Monday 2024-03-11), next month (2024-04-01). */
	insert(db, 1710115200000LL, "10.0.0.3", NULL, "example.com",
	    "commercial-sex", "Example Site");
	insert(db, 1711929600000LL, "10.0.0.3", NULL, "example.com",
	    "commercial-sex", "Example Site");
	/* Logged under a pseudonym, for log --client ADDR. */
	attemptlog_pseudonym(PSEUDO_KEY, "10.9.9.9", pseudo);
	insert(db, T - 30 * DAY, pseudo, NULL, "example.com",
	    "commercial-sex", "Example Site");
	/* 10.0.0.3 asked over TCP; 10.0.0.2 is under a policy. */
	sqlite3_exec(db, "UPDATE attempts SET transport = 'tcp', verified = 1"
	    " WHERE client = '10.0.0.3'; UPDATE attempts SET policy ="
	    " 'guests' WHERE client = '10.0.0.2'", NULL, NULL, NULL);
	/* 84 rows lost at T + 5 min. */
	sqlite3_exec(db, "INSERT INTO log_gaps (ts_start, ts_end,"
	    " rows_dropped, table_name, reason, logged_at) VALUES"
	    " (1709546700000, 1709546701000, 84, 'attempts',"
	    " 'queue full: the writer could not keep up', 0)",
	    NULL, NULL, NULL);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
}

/* A new, empty log file tmpdir/name (its path in path), open for SQL. */
static sqlite3 *
empty_log(const char *name, char *path, size_t len)
{
	sqlite3 *db;

	snprintf(path, len, "%s/%s", tmpdir, name);
	sink_sqlite_ops.close(sink_open(path));
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	return db;
}

/*
 * Let the writer's background work count the rows inserted above (as
 * after an upgrade): from then on reports read the summaries.
 */
static void
count_database(const char *path)
{
	struct sink *s = sink_open(path);
	long left;

	while ((left = sink_sqlite_ops.maintain(s, 4, 0)) > 0)
		;
	if (left < 0) {
		fprintf(stderr, "maintain: %s\n", sink_sqlite_ops.error(s));
		exit(1);
	}
	sink_sqlite_ops.close(s);
}

/* Rows from T - 1 day on, so the pseudonymous row stays out. */
#define SINCE	"2024-03-01"

#define COUNT_COLS	"queries,attempts,verified_queries,unverified_queries"

static void
test_attempt_rule(void)
{
	/* 59 s and 60 s continue an attempt, 61 s starts one. */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since",
	    "2024-03-04T10:00:00Z", "--until", "2024-03-04T10:05:00Z",
	    "--by", "domain", "--format", "csv", NULL), 0);
	CHECK_STR(out, "domain,category,site," COUNT_COLS "\r\n"
	    "example.com,commercial-sex,Example Site,5,3,0,5\r\n"
	    "other.net,commercial-sex,\"Other, \"\"Inc\"\"\",1,1,0,1\r\n");

	/* Different client: its own attempt; same client, other rule too. */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--until", "2024-03-04T10:00:03Z", "--by", "client",
	    "--format", "csv", NULL), 0);
	CHECK_STR(out, "client,client_name," COUNT_COLS "\r\n"
	    "10.0.0.1,finance,2,2,0,2\r\n10.0.0.2,,1,1,0,1\r\n");

	/*
	 * From 10:01:30 on: the row at +119 s continues the attempt begun
	 * before the period (counted there), +180 s starts a new one.
	 */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since",
	    "2024-03-04T10:01:30Z", "--until", "2024-03-04T10:04:00Z",
	    "--format", "csv", NULL), 0);
	CHECK_STR(out, COUNT_COLS "\r\n2,1,0,2\r\n");
}

static void
test_by_time(void)
{
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--by", "day", NULL), 0);
	CHECK_STR(out, "Blocked attempts from 2024-03-01T00:00:00Z to now"
	    " (times in UTC), by day\n"
	    "day         queries  attempts  verified_queries"
	    "  unverified_queries\n"
	    "2024-03-04        6         4                 0"
	    "                   6\n"
	    "2024-03-05        2         1                 0"
	    "                   2\n"
	    "2024-03-11        1         1                 1"
	    "                   0\n"
	    "2024-04-01        1         1                 1"
	    "                   0\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--by", "week", "--format", "csv", NULL), 0);
	CHECK_STR(out, "week," COUNT_COLS "\r\n2024-W10,8,5,0,8\r\n"
	    "2024-W11,1,1,1,0\r\n2024-W14,1,1,1,0\r\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--by", "month", "--format", "json", NULL), 0);
	CHECK_STR(out, "[\n"
	    "  {\"month\": \"2024-03\", \"queries\": 9, \"attempts\": 6,"
	    " \"verified_queries\": 1, \"unverified_queries\": 8,"
	    " \"period_rows_lost\": 84},\n"
	    "  {\"month\": \"2024-04\", \"queries\": 1, \"attempts\": 1,"
	    " \"verified_queries\": 1, \"unverified_queries\": 0,"
	    " \"period_rows_lost\": 84}\n]\n");
	CHECK(strstr(err, "warning: 84 rows were lost between"
	    " 2024-03-04T10:05:00Z and 2024-03-04T10:05:01Z (queue full:"
	    " the writer could not keep up)") != NULL);
	/* --top keeps the busiest, shown in time order. */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--by", "day", "--top", "2", "--format", "csv", NULL), 0);
	CHECK_STR(out, "day," COUNT_COLS "\r\n2024-03-04,6,4,0,6\r\n"
	    "2024-03-05,2,1,0,2\r\n");
}

static void
test_by_group(void)
{
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--by", "client", NULL), 0);
	CHECK(strstr(out, "client    client_name  queries  attempts"
	    "  verified_queries  unverified_queries\n"
	    "10.0.0.1  finance            5         3                 0"
	    "                   5\n"
	    "10.0.0.2  -                  3         2                 0"
	    "                   3\n"
	    "10.0.0.3  -                  2         2                 2"
	    "                   0\n") != NULL);
	CHECK(strstr(err, "84 rows in this period were never logged") !=
	    NULL);
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--by", "category", "--format", "json", NULL), 0);
	CHECK_STR(out, "[\n"
	    "  {\"category\": \"commercial-sex\", \"queries\": 8,"
	    " \"attempts\": 6, \"verified_queries\": 2,"
	    " \"unverified_queries\": 6, \"period_rows_lost\": 84},\n"
	    "  {\"category\": \"imported-list\", \"queries\": 2,"
	    " \"attempts\": 1, \"verified_queries\": 0,"
	    " \"unverified_queries\": 2, \"period_rows_lost\": 84}\n]\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--by", "site", "--format", "csv", NULL), 0);
	CHECK_STR(out, "site,category," COUNT_COLS "\r\n"
	    "Example Site,commercial-sex,7,5,2,5\r\n"
	    ",imported-list,2,1,0,2\r\n"
	    "\"Other, \"\"Inc\"\"\",commercial-sex,1,1,0,1\r\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--by", "domain", "--top", "1", "--format", "json", NULL), 0);
	CHECK_STR(out, "[\n"
	    "  {\"domain\": \"example.com\", \"category\": \"commercial-sex\","
	    " \"site\": \"Example Site\", \"queries\": 7, \"attempts\": 5,"
	    " \"verified_queries\": 2, \"unverified_queries\": 5,"
	    " \"period_rows_lost\": 84}\n]\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--by", "site", NULL), 0);
	CHECK(strstr(out, "\n-             imported-list         2"
	    "         1") != NULL);
	/* The default policy is the NULL group. */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--by", "policy", "--format", "csv", NULL), 0);
	CHECK_STR(out, "policy," COUNT_COLS "\r\n,7,5,2,5\r\n"
	    "guests,3,2,0,3\r\n");
}

static void
test_total_and_period(void)
{
	CHECK_INT(run(report_cmd, "report", "-c", conf, NULL), 0);
	CHECK_STR(out, "Blocked attempts from the first row to now (times in"
	    " UTC)\nqueries  attempts  verified_queries  unverified_queries\n"
	    "     11         8                 2                   9\n");
	/* --until DATE takes in the whole of that day. */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--until", "2024-03-05", "--format", "csv", NULL), 0);
	CHECK_STR(out, COUNT_COLS "\r\n8,5,0,8\r\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--until", "2024-03-05T00:00:00Z", "--format", "csv", NULL), 0);
	CHECK_STR(out, COUNT_COLS "\r\n6,4,0,6\r\n");
	/* The same instant with a zone. */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--until", "2024-03-05T02:00+02:00", "--format", "csv", NULL), 0);
	CHECK_STR(out, COUNT_COLS "\r\n6,4,0,6\r\n");
	/* No lost rows there: no warning. */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since",
	    "2024-03-05", "--format", "csv", NULL), 0);
	CHECK_STR(err, "");
}

/* Days, dates and printed times follow --tz. */
static void
test_time_zones(void)
{
	/* At -05:00 the rows of 00:00Z fall on the day before. */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--tz", "-05:00", "--by", "day", "--format", "csv", NULL), 0);
	CHECK_STR(out, "day," COUNT_COLS "\r\n2024-03-04,6,4,0,6\r\n"
	    "2024-03-05,2,1,0,2\r\n2024-03-10,1,1,1,0\r\n"
	    "2024-03-31,1,1,1,0\r\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since", SINCE,
	    "--tz", "-05:00", "--by", "month", NULL), 0);
	CHECK_STR(out, "Blocked attempts from 2024-03-01T00:00:00-05:00 to"
	    " now (times in UTC-05:00), by month\n"
	    "month    queries  attempts  verified_queries  unverified_queries\n"
	    "2024-03       10         7                 2                   8\n");
	/* A bare --until date ends at that zone's midnight. */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--tz", "-09:00",
	    "--since", "2024-03-04", "--until", "2024-03-04", "--format",
	    "csv", NULL), 0);
	CHECK_STR(out, COUNT_COLS "\r\n6,4,0,6\r\n");
	/* A zone by name: daylight saving time began on 2024-03-10. */
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--tz", "America/New_York",
	    "--limit", "2", "--format", "csv", NULL), 0);
	CHECK(strstr(out, "\r\n2024-03-31T20:00:00-04:00,10.0.0.3,") != NULL);
	CHECK(strstr(out, "\r\n2024-03-10T20:00:00-04:00,10.0.0.3,") != NULL);
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--tz",
	    "Asia/Kolkata", "--since", "2024-03-11", "--until", "2024-03-11",
	    "--format", "csv", NULL), 0);
	CHECK_STR(out, COUNT_COLS "\r\n1,1,1,0\r\n");
	setenv("TZ", "UTC", 1);
	tzset();
}

static void
test_empty(void)
{
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since",
	    "2030-01-01", "--by", "day", NULL), 0);
	CHECK_STR(out, "Blocked attempts from 2030-01-01T00:00:00Z to now"
	    " (times in UTC), by day\nday  queries  attempts  verified_queries"
	    "  unverified_queries\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since",
	    "2030-01-01", "--by", "client", "--format", "csv", NULL), 0);
	CHECK_STR(out, "client,client_name," COUNT_COLS "\r\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since",
	    "2030-01-01", "--by", "site", "--format", "json", NULL), 0);
	CHECK_STR(out, "[]\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since",
	    "2030-01-01", "--format", "csv", NULL), 0);
	CHECK_STR(out, COUNT_COLS "\r\n0,0,0,0\r\n");
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--since", "2030-01-01",
	    "--format", "json", NULL), 0);
	CHECK_STR(out, "[]\n");
}

#define LOG_COLS	"time,client,client_name,qname,qtype,rule,category," \
	"site,transport,verified,policy,id"

static void
test_log(void)
{
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--limit", "2", NULL), 0);
	CHECK_STR(out, "Blocked attempts from the first row to now (times in"
	    " UTC), newest first (--limit reached)\n"
	    "time                  client    client_name  qname"
	    "            qtype  rule         category        site"
	    "          transport  verified  policy  id\n"
	    "2024-04-01T00:00:00Z  10.0.0.3  -            www.example.com"
	    "  A      example.com  commercial-sex  Example Site  tcp"
	    "        yes       -       10\n"
	    "2024-03-11T00:00:00Z  10.0.0.3  -            www.example.com"
	    "  A      example.com  commercial-sex  Example Site  tcp"
	    "        yes       -        9\n");
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--client", "finance",
	    "--site", "OTHER, \"INC\"", "--format", "csv", NULL), 0);
	CHECK_STR(out, LOG_COLS "\r\n2024-03-04T10:00:02Z,10.0.0.1,finance,"
	    "www.other.net,A,other.net,commercial-sex,"
	    "\"Other, \"\"Inc\"\"\",udp,0,,6\r\n");
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--client", "10.0.0.2",
	    "--until", "2024-03-04", "--format", "json", NULL), 0);
	CHECK_STR(out, "[\n  {\"time\": \"2024-03-04T10:00:01Z\","
	    " \"client\": \"10.0.0.2\", \"client_name\": null,"
	    " \"qname\": \"www.example.com\", \"qtype\": \"A\","
	    " \"rule\": \"example.com\", \"category\": \"commercial-sex\","
	    " \"site\": \"Example Site\", \"transport\": \"udp\","
	    " \"verified\": false, \"policy\": \"guests\", \"id\": 5,"
	    " \"period_rows_lost\": 84}\n]\n");
	/* An address finds its pseudonym when the config has the key. */
	CHECK_INT(run(log_cmd, "log", "-c", conf_pseudo, "--client",
	    "10.9.9.9", "--format", "csv", NULL), 0);
	CHECK(strstr(out, "2024-02-03T10:00:00Z,") != NULL);
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--client", "10.9.9.9",
	    "--format", "csv", NULL), 0);
	CHECK(strstr(out, "2024-02-03") == NULL);
}

/* s ends with the line want (after the warnings about lost rows). */
#define CHECK_LAST(s, want) do {					\
	size_t sl = strlen(s), wl = strlen(want);			\
	CHECK(sl >= wl && strcmp((s) + sl - wl, (want)) == 0 &&	\
	    (sl == wl || (s)[sl - wl - 1] == '\n'));			\
	if (sl < wl || strcmp((s) + sl - wl, (want)) != 0)		\
		fprintf(stderr, "  got: %s", (s));			\
} while (0)

/*
 * --category and --rule find imported rows (no site); a log that shows
 * nothing says which filter matched nothing.
 */
static void
test_log_filters(void)
{
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--category",
	    "Imported-List", "--format", "csv", NULL), 0);
	CHECK_STR(out, LOG_COLS "\r\n"
	    "2024-03-05T10:00:30Z,10.0.0.2,,www.imported.test,A,imported.test,"
	    "imported-list,,udp,0,guests,8\r\n"
	    "2024-03-05T10:00:00Z,10.0.0.2,,www.imported.test,A,imported.test,"
	    "imported-list,,udp,0,guests,7\r\n");
	CHECK(strstr(err, "no attempts") == NULL);
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--rule", "other.net",
	    "--category", "commercial-sex", "--format", "csv", NULL), 0);
	CHECK(strstr(out, ",other.net,") != NULL && strstr(out, ",6\r\n") !=
	    NULL && strstr(out, "example.com") == NULL);

	CHECK_INT(run(log_cmd, "log", "-c", conf, "--client", "10.0.0.9",
	    "--site", "Example Site", NULL), 0);
	CHECK_LAST(err, "dnswarden log: no attempts for client 10.0.0.9 from"
	    " the first row to now\n");
	CHECK(strstr(out, "Blocked attempts from") == out);
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--site", "Example Site",
	    "--rule", "nope.test", "--format", "json", NULL), 0);
	CHECK_STR(out, "[]\n");
	CHECK_LAST(err, "dnswarden log: no attempts for rule nope.test from"
	    " the first row to now\n");
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--category", "gambling",
	    NULL), 0);
	CHECK_LAST(err, "dnswarden log: no attempts in category gambling from"
	    " the first row to now\n");
	/* Each alone matches rows, together none. */
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--client", "10.0.0.3",
	    "--category", "imported-list", "--since", SINCE, NULL), 0);
	CHECK_LAST(err, "dnswarden log: no attempts match --client 10.0.0.3"
	    " and --category imported-list together from"
	    " 2024-03-01T00:00:00Z to now\n");
	/* An empty period is the period's fault, whatever the filters. */
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--client", "10.0.0.9",
	    "--since", "2030-01-01", NULL), 0);
	CHECK_LAST(err, "dnswarden log: no attempts from 2030-01-01T00:00:00Z"
	    " to now\n");
	/* Past the last page. */
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--client", "10.0.0.3",
	    "--before", "9", NULL), 0);
	CHECK_LAST(err, "dnswarden log: no attempts before id 9 from the first"
	    " row to now\n");
	/* Unknown to report, which has no filters. */
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--rule", "x", NULL),
	    2);
}

/*
 * HR's configuration: log: and clients: only, no upstreams, no key. The
 * same reports as from the daemon's configuration (which holds the key);
 * only --client ADDR, which needs the key, cannot find a pseudonym.
 */
static void
test_reader_config(void)
{
	char reader[300], text[600], want[sizeof(out)];

	snprintf(reader, sizeof(reader), "%s/reader.yaml", tmpdir);
	snprintf(text, sizeof(text), "log:\n  database: \"attempts.db\"\n"
	    "  client_identity: pseudonym\n"
	    "  pseudonym_key_file: \"%s/no-access.key\"\n"
	    "clients:\n  - { network: \"10.0.0.0/24\", name: \"finance\" }\n",
	    tmpdir);
	write_file(reader, text);
	for (int by = 0; by < 3; by++) {
		const char *key = by == 0 ? "client" : by == 1 ? "site" : "day";

		CHECK_INT(run(report_cmd, "report", "-c", conf_pseudo, "--by",
		    key, "--format", "csv", NULL), 0);
		snprintf(want, sizeof(want), "%s", out);
		CHECK_INT(run(report_cmd, "report", "-c", reader, "--by", key,
		    "--format", "csv", NULL), 0);
		CHECK_STR(out, want);
	}
	CHECK_INT(run(log_cmd, "log", "-c", conf_pseudo, "--limit", "0",
	    NULL), 0);
	snprintf(want, sizeof(want), "%s", out);
	CHECK_INT(run(log_cmd, "log", "-c", reader, "--limit", "0", NULL), 0);
	CHECK_STR(out, want);
	CHECK(strstr(want, "2024-02-03") != NULL);
	/* The key's holder finds the address's rows; the reader is told
	 * why it does not. */
	CHECK_INT(run(log_cmd, "log", "-c", reader, "--client", "10.9.9.9",
	    NULL), 0);
	CHECK(strstr(err, "without the pseudonym key --client matches"
	    " pseudonyms and names") != NULL);
	CHECK_LAST(err, "dnswarden log: no attempts for client 10.9.9.9 from"
	    " the first row to now\n");
}

/* --before ID: the page after the row ID, in the same order. */
static void
test_log_pages(void)
{
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--since", SINCE,
	    "--limit", "3", "--format", "csv", NULL), 0);
	CHECK(strstr(out, ",10\r\n") != NULL && strstr(out, ",9\r\n") != NULL &&
	    strstr(out, ",8\r\n") != NULL);
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--since", SINCE,
	    "--limit", "3", "--before", "8", "--format", "json", NULL), 0);
	CHECK(strstr(out, "\"id\": 7,") != NULL);
	CHECK(strstr(out, "\"id\": 4,") != NULL);
	CHECK(strstr(out, "\"id\": 3,") != NULL);
	CHECK(strstr(out, "\"id\": 8,") == NULL);
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--since", SINCE,
	    "--before", "8", "--limit", "3", NULL), 0);
	CHECK(strstr(out, "Blocked attempts from 2024-03-01T00:00:00Z to now"
	    " (times in UTC), newest first, before id 8 (--limit reached)\n")
	    == out);
	/* The oldest row is the pseudonymous one, id 11. */
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--before", "11",
	    "--format", "csv", NULL), 0);
	CHECK_STR(out, LOG_COLS "\r\n");
}

/*
 * Names sent by an attacker, and a database written by one: CSV cells
 * never start a formula, the table and the messages never carry a
 * control character, JSON escapes them.
 */
static void
test_hostile_strings(void)
{
	char path[300];
	sqlite3 *db;

	db = empty_log("hostile.db", path, sizeof(path));
	CHECK_INT(sqlite3_exec(db, "INSERT INTO attempts (ts, client,"
	    " client_name, qname, qtype, rule, category, site, transport)"
	    " VALUES (1709546400000, '10.0.0.1', '@SUM(1+1)',"
	    " '=hyperlink(\"http://x\").www.backpage.com', 'A',"
	    " '+1+2.backpage.com', '-2', char(9) || 'tab', 'udp'),"
	    " (1709546401000, '10.0.0.2', char(27) || ']0;pwned' || char(7)"
	    " || char(27) || '[2J', 'x' || char(13) || 'y', 'A', 'r',"
	    " char(13) || 'cr', 'Site' || char(0x202e), 'udp');"
	    "INSERT INTO log_gaps (ts_start, ts_end, rows_dropped,"
	    " table_name, reason, logged_at) VALUES (1709546400000,"
	    " 1709546400000, 1, 'attempts', 'x' || char(27) || '[2J', 0)",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	CHECK_INT(run(log_cmd, "log", "--database", path, "--format", "csv",
	    NULL), 0);
	CHECK(strstr(out, ",'@SUM(1+1),\"'=hyperlink(\"\"http://x\"\")"
	    ".www.backpage.com\",A,'+1+2.backpage.com,'-2,'\ttab,") != NULL);
	CHECK(strstr(out, ",\"'\rcr\",") != NULL);
	CHECK_INT(run(report_cmd, "report", "--database", path, "--by",
	    "category", "--format", "csv", NULL), 0);
	CHECK(strstr(out, "\r\n'-2,1,1,0,1\r\n") != NULL);

	CHECK_INT(run(log_cmd, "log", "--database", path, NULL), 0);
	CHECK(strchr(out, 0x1b) == NULL && strchr(out, 0x07) == NULL &&
	    strchr(out, '\r') == NULL && strstr(out, "\xe2\x80\xae") ==
	    NULL);
	CHECK(strstr(out, "\\x1b]0;pwned\\x07\\x1b[2J") != NULL);
	CHECK(strstr(out, "x\\x0dy") != NULL);
	CHECK(strstr(out, "Site\\u202e") != NULL);
	CHECK(strchr(err, 0x1b) == NULL);
	CHECK(strstr(err, "(x\\x1b[2J)") != NULL);

	CHECK_INT(run(log_cmd, "log", "--database", path, "--format", "json",
	    NULL), 0);
	CHECK(strstr(out, "\"\\u001B]0;pwned\\u0007\\u001B[2J\"") != NULL);
}

/* The library without the commands: options by name, rows, buffers. */
static void
test_library(void)
{
	char path[300], e[256], *buf;
	struct report_rows *rows;
	struct report_opts o;
	struct report_db *db;
	size_t len;
	int v = -1;

	snprintf(path, sizeof(path), "%s/attempts.db", tmpdir);
	report_opts_init(&o, REPORT_COUNTS);
	CHECK_INT(report_opts_set(&o, "by", "client", e, sizeof(e)), 0);
	CHECK_INT(report_opts_set(&o, "since", SINCE, e, sizeof(e)), 0);
	CHECK_INT(report_opts_set(&o, "tz", "UTC", e, sizeof(e)), 0);
	CHECK_INT(report_opts_set(&o, "limit", "5", e, sizeof(e)), -1);
	CHECK_STR(e, "limit: unknown option");
	CHECK_INT(report_opts_set(&o, "by", "year", e, sizeof(e)), -1);
	CHECK(strncmp(e, "by: invalid value (one of day,", 30) == 0);
	CHECK_INT(report_opts_finish(&o, e, sizeof(e)), 0);
	CHECK((db = report_db_open(path, e, sizeof(e))) != NULL);
	/* Nothing in the file runs as the reader. */
	sqlite3_db_config(db->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, -1, &v);
	CHECK_INT(v, 0);
	CHECK_INT(sqlite3_db_readonly(db->db, "main"), 1);
	CHECK_INT(report_run(db, &o, NULL, &rows, e, sizeof(e)), 0);
	CHECK_INT(rows->nrows, 3);
	CHECK_INT(rows->ncols, 6);
	CHECK_STR(report_cell(rows, 0, 0)->text, "10.0.0.1");
	CHECK_INT(report_cell(rows, 0, 2)->num, 5);
	CHECK_INT(rows->rows_lost, 84);
	buf = report_write_buffer(rows, REPORT_CSV, &len);
	CHECK(buf != NULL && len == strlen(buf));
	CHECK(buf != NULL && strncmp(buf, "client,client_name,queries,", 27) ==
	    0);
	free(buf);
	report_rows_free(rows);
	report_db_close(db);
}

static void
test_errors(void)
{
	char path[300];

	CHECK_INT(run(report_cmd, "report", "-c", conf_empty, NULL), 1);
	CHECK(strstr(err, "none.db: no attempt log yet") != NULL);
	CHECK_STR(out, "");
	CHECK_INT(run(report_cmd, "report", "-c", "/nonexistent.yaml", NULL),
	    1);
	CHECK(err[0] != '\0');
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--by", "year",
	    NULL), 2);
	CHECK_STR(err, "dnswarden report: --by: invalid value (one of day,"
	    " week, month, client, category, site, domain, policy,"
	    " instance)\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since",
	    "2024-02-30", NULL), 2);
	CHECK_STR(err, "dnswarden report: --since: not a date (YYYY-MM-DD or"
	    " YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since",
	    "2024-03-01T25:00", NULL), 2);
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--since",
	    "2024-03-02", "--until", "2024-03-01", NULL), 2);
	CHECK_STR(err, "dnswarden report: --since must be before until\n");
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--tz", "Mars/Base",
	    NULL), 2);
	CHECK(strstr(err, "--tz: unknown time zone") != NULL);
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--tz", "../../etc",
	    NULL), 2);
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--top", "0", NULL),
	    2);
	CHECK_INT(run(report_cmd, "report", "-c", conf, "--frobnicate",
	    NULL), 2);
	CHECK_INT(run(report_cmd, "report", "-c", conf, "extra", NULL), 2);
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--by", "day", NULL), 2);
	CHECK_INT(run(log_cmd, "log", "-c", conf, "--before", "x", NULL), 2);
	CHECK_INT(run(log_cmd, "log", "--help", NULL), 0);
	CHECK(strstr(out, "usage: dnswarden log") != NULL);

	/* Not a log, or one of a newer dnswarden: one line, exit 1. */
	snprintf(path, sizeof(path), "%s/text.db", tmpdir);
	write_file(path, "not a database, just text that is long enough to"
	    " fill SQLite's header of one hundred bytes, and a bit more.\n");
	CHECK_INT(run(report_cmd, "report", "--database", path, NULL), 1);
	CHECK(strstr(err, "not a dnswarden attempt log") != NULL);
	CHECK(strchr(err, '\n') == err + strlen(err) - 1);
	snprintf(path, sizeof(path), "%s/newer.db", tmpdir);
	{
		sqlite3 *db;

		sqlite3_open(path, &db);
		sqlite3_exec(db, "CREATE TABLE attempts (id INTEGER PRIMARY"
		    " KEY); PRAGMA user_version = 99", NULL, NULL, NULL);
		sqlite3_close(db);
	}
	CHECK_INT(run(log_cmd, "log", "--database", path, NULL), 1);
	CHECK(strstr(err, "schema version 99 is newer") != NULL);
	CHECK(strchr(err, '\n') == err + strlen(err) - 1);
}

/* The bytes of the file at path, *len of them (NULL: none). */
static char *
file_bytes(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
	    fread(buf, 1, (size_t)n, f) == (size_t)n)
		*len = (size_t)n;
	fclose(f);
	return buf;
}

/* path exists? */
static bool
exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/*
 * The bad input, to both commands: an unknown --by or --tz, a
 * date that does not parse, --since after --until (usage: exit 2), a
 * file that is not a log, one of a newer schema (exit 1). Each is one
 * line on stderr, nothing on stdout, and the file is left as it was,
 * byte for byte, with no journal or WAL file made beside it.
 */
static void
test_bad_input_leaves_file(void)
{
	static const char *const usage[][5] = {
		{ "report", "--by", "year", NULL },
		{ "report", "--tz", "Mars/Base", NULL },
		{ "log", "--tz", "+25:00", NULL },
		{ "report", "--since", "2024-13-01", NULL },
		{ "log", "--until", "yesterday", NULL },
		{ "report", "--since", "2024-03-02", "--until", "2024-03-01" },
		{ "log", "--since", "2024-03-02T10:00", "--until",
		    "2024-03-02T09:59" },
	};
	static const char *const files[][2] = {
		{ "text.db", "not a dnswarden attempt log" },
		{ "newer.db", "schema version 99 is newer" },
	};
	char path[300], side[320];
	size_t len0, len1;
	char *before, *after;

	snprintf(path, sizeof(path), "%s/attempts.db", tmpdir);
	before = file_bytes(path, &len0);
	CHECK(before != NULL && len0 > 0);
	for (size_t i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
		const char *const *u = usage[i];
		bool log = strcmp(u[0], "log") == 0;

		CHECK_INT(run(log ? log_cmd : report_cmd, u[0], "--database",
		    path, u[1], u[2], u[3], u[4], NULL), 2);
		CHECK(strncmp(err, log ? "dnswarden log: " :
		    "dnswarden report: ", log ? 15 : 18) == 0);
		CHECK(strchr(err, '\n') == err + strlen(err) - 1);
		CHECK_STR(out, "");
		if (strchr(err, '\n') != err + strlen(err) - 1)
			fprintf(stderr, "  %s %s: %s", u[0], u[1], err);
	}
	after = file_bytes(path, &len1);
	CHECK(after != NULL && len1 == len0 && memcmp(before, after, len0) ==
	    0);
	free(before);
	free(after);

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i][0]);
		before = file_bytes(path, &len0);
		CHECK(before != NULL && len0 > 0);
		for (int cmd = 0; cmd < 2; cmd++) {
			CHECK_INT(run(cmd ? log_cmd : report_cmd, cmd ? "log" :
			    "report", "--database", path, cmd ? "--limit" :
			    "--by", cmd ? "5" : "day", NULL), 1);
			CHECK(strstr(err, files[i][1]) != NULL);
			CHECK(strchr(err, '\n') == err + strlen(err) - 1);
			CHECK_STR(out, "");
		}
		after = file_bytes(path, &len1);
		CHECK(after != NULL && len1 == len0 && memcmp(before, after,
		    len0) == 0);
		free(before);
		free(after);
		for (size_t k = 0; k < 3; k++) {
			static const char *const ext[] = { "-wal", "-shm",
			    "-journal" };

			snprintf(side, sizeof(side), "%s%s", path, ext[k]);
			CHECK(!exists(side));
		}
	}
}

/* ---- query plans ---- */

#define PLAN_SQL_MAX	32

struct plan_trace {
	char	*sql[PLAN_SQL_MAX];
	size_t	 n;
	long	 steps;		/* virtual machine steps of them all */
};

/*
 * Keep the text of each statement report_run() runs, and count the
 * steps it took (rows visited, in effect) when it ends.
 */
static int
plan_trace_cb(unsigned type, void *ctx, void *p, void *x)
{
	struct plan_trace *t = ctx;
	const char *sql = sqlite3_sql(p);

	(void)x;
	if (type == SQLITE_TRACE_PROFILE) {
		t->steps += sqlite3_stmt_status(p, SQLITE_STMTSTATUS_VM_STEP,
		    0);
		return 0;
	}
	if (sql != NULL && t->n < PLAN_SQL_MAX && strncmp(sql, "BEGIN", 5) &&
	    strncmp(sql, "COMMIT", 6))
		t->sql[t->n++] = strdup(sql);
	return 0;
}

/*
 * The plans (EXPLAIN QUERY PLAN, one detail a line, statements apart by
 * "--\n") of every statement report_run() ran for kind and the options
 * (name, value, ..., NULL), on the file at path, and in *steps the
 * steps they took; NULL on failure.
 */
static char *
plans_of(const char *path, long *steps, enum report_kind kind, ...)
{
	struct plan_trace t = { { NULL }, 0, 0 };
	struct report_rows *rows = NULL;
	struct report_opts o;
	struct report_db *db;
	char e[256], *all = calloc(1, 16384);
	const char *name;
	size_t len = 0;
	va_list ap;

	report_opts_init(&o, kind);
	va_start(ap, kind);
	while ((name = va_arg(ap, const char *)) != NULL)
		if (report_opts_set(&o, name, va_arg(ap, const char *), e,
		    sizeof(e)) == -1)
			fprintf(stderr, "option %s: %s\n", name, e);
	va_end(ap);
	if (all == NULL || report_opts_finish(&o, e, sizeof(e)) == -1 ||
	    (db = report_db_open(path, e, sizeof(e))) == NULL) {
		free(all);
		return NULL;
	}
	sqlite3_trace_v2(db->db, SQLITE_TRACE_STMT | SQLITE_TRACE_PROFILE,
	    plan_trace_cb, &t);
	if (report_run(db, &o, NULL, &rows, e, sizeof(e)) == -1)
		fprintf(stderr, "report_run: %s\n", e);
	sqlite3_trace_v2(db->db, 0, NULL, NULL);
	for (size_t i = 0; i < t.n; i++) {
		char *eqp = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", t.sql[i]);
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(db->db, eqp, -1, &st, NULL) == SQLITE_OK)
			while (sqlite3_step(st) == SQLITE_ROW && len < 16000)
				len += (size_t)snprintf(all + len, 16384 - len,
				    "%s\n", sqlite3_column_text(st, 3));
		sqlite3_finalize(st);
		sqlite3_free(eqp);
		if (len < 16000)
			len += (size_t)snprintf(all + len, 16384 - len, "--\n");
		free(t.sql[i]);
	}
	report_rows_free(rows);
	report_db_close(db);
	if (steps != NULL)
		*steps = t.steps;
	return all;
}

/* A full scan of table attempts in plans: "SCAN attempts" alone. */
static bool
scans_attempts(const char *plans)
{
	for (const char *p = plans; (p = strstr(p, "SCAN attempts")) != NULL;
	    p++) {
		char next = p[13];

		if ((p == plans || p[-1] == '\n' || p[-1] == ' ') &&
		    (next == '\n' || next == ' ' || next == '\0'))
			return true;
	}
	return false;
}

/*
 * `log` pages by index: with --since/--until, a filter on client or site
 * and --before, the page's ids come from a range of index attempts_log
 * bounded at both ends (the page's newest time is the upper bound),
 * without reading a row (COVERING: its entries hold client and
 * client_name), then the page's rows by rowid; the row --before names is
 * found by rowid too: seeks whose cost does not grow with the file, never
 * a SCAN of attempts, never a sort of more than the page. A report from
 * the summaries reads no attempts but the rows the summaries do not cover.
 */
#define PLAN_IDS	"SEARCH attempts USING COVERING INDEX attempts_log" \
			" (ts>? AND ts<?)\n"
/* Without --since, no lower bound: none to check at each entry. */
#define PLAN_IDS_TO	"SEARCH attempts USING COVERING INDEX attempts_log" \
			" (ts<?)\n"
#define PLAN_ROWS	"SEARCH attempts USING INTEGER PRIMARY KEY (rowid=?)\n"

static void
test_plans(void)
{
	char path[300], *p;
	static const char *const bys[] = { "day", "week", "month", "client",
	    "category", "site", "domain", "policy" };

	snprintf(path, sizeof(path), "%s/attempts.db", tmpdir);
	p = plans_of(path, NULL, REPORT_ATTEMPTS, "client", "10.0.0.1", "since",
	    "2024-03-01", "until", "2024-03-05", "limit", "2", "tz", "UTC",
	    NULL);
	CHECK(p != NULL && !scans_attempts(p));
	CHECK(p != NULL && strstr(p, PLAN_IDS) != NULL);
	CHECK(p != NULL && strstr(p, PLAN_ROWS) != NULL);
	free(p);
	/* A name, and a filter the index does not hold: same walk. */
	p = plans_of(path, NULL, REPORT_ATTEMPTS, "client", "finance",
	    "category", "commercial-sex", "limit", "2", NULL);
	CHECK(p != NULL && !scans_attempts(p));
	CHECK(p != NULL && strstr(p, "SEARCH attempts USING INDEX attempts_log"
	    " (ts<?)\n") != NULL);
	free(p);
	p = plans_of(path, NULL, REPORT_ATTEMPTS, "site", "Example Site", "before",
	    "8", "since", "2024-03-01", "limit", "2", NULL);
	CHECK(p != NULL && !scans_attempts(p));
	CHECK(p != NULL && strstr(p, "SEARCH attempts USING INTEGER PRIMARY"
	    " KEY (rowid<?)\n") != NULL);
	CHECK(p != NULL && strstr(p, "SEARCH attempts USING INDEX attempts_log"
	    " (ts>? AND ts<?)\n") != NULL);
	free(p);
	/* No period: --before alone bounds the range. */
	p = plans_of(path, NULL, REPORT_ATTEMPTS, "before", "8", "client",
	    "10.0.0.1", NULL);
	CHECK(p != NULL && !scans_attempts(p));
	CHECK(p != NULL && strstr(p, PLAN_IDS_TO) != NULL);
	free(p);
	/* Every row (--limit 0): the rows as the walk finds them. */
	p = plans_of(path, NULL, REPORT_ATTEMPTS, "limit", "0", NULL);
	CHECK(p != NULL && !scans_attempts(p));
	CHECK(p != NULL && strstr(p, "SEARCH attempts USING INDEX attempts_log"
	    " (ts<?)\n--\n") != NULL);
	free(p);
	for (size_t i = 0; i < sizeof(bys) / sizeof(bys[0]); i++) {
		p = plans_of(path, NULL, REPORT_COUNTS, "by", bys[i], "since",
		    "2024-03-01T10:07", "until", "2024-04-02", NULL);
		CHECK(p != NULL && !scans_attempts(p));
		CHECK(p != NULL && strstr(p, "attempt_sums") != NULL);
		if (p != NULL && scans_attempts(p))
			fprintf(stderr, "  --by %s:\n%s", bys[i], p);
		free(p);
	}
}

/*
 * A page's cost does not grow with the file: on 3,000 rows (10 clients
 * in turn, a second apart), the first page, a page --before an id near
 * the oldest row, and a client's page there, each take about as many
 * steps as the rows they show, not as the rows newer than the page.
 */
static void
test_page_cost(void)
{
	char path[300], *p;
	sqlite3 *db;
	long first, deep, client, none;

	db = empty_log("pages.db", path, sizeof(path));
	CHECK_INT(sqlite3_exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
	    " SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO attempts (ts,"
	    " client, qname, qtype, rule, category, site, transport) SELECT"
	    " 1709546400000 + i * 1000, '10.0.0.' || (i % 10), 'www.a.test',"
	    " 'A', 'a.test', 'adult', 'A', 'udp' FROM n", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	free(plans_of(path, &first, REPORT_ATTEMPTS, "limit", "5", NULL));
	free(plans_of(path, &deep, REPORT_ATTEMPTS, "before", "100", "limit",
	    "5", NULL));
	free(plans_of(path, &client, REPORT_ATTEMPTS, "before", "100",
	    "client", "10.0.0.3", "limit", "5", NULL));
	/* The measure: a client with no rows walks the whole range. */
	p = plans_of(path, &none, REPORT_ATTEMPTS, "client", "10.9.9.9",
	    "limit", "5", NULL);
	CHECK(p != NULL && !scans_attempts(p));
	free(p);
	CHECK(first > 0 && first < 1000);
	CHECK(deep > 0 && deep < 1000);
	CHECK(client > 0 && client < 2000);
	CHECK(none > 20000);
	if (deep >= 1000 || client >= 2000)
		fprintf(stderr, "  steps: first page %ld, deep page %ld, a"
		    " client's deep page %ld, no such client %ld\n", first,
		    deep, client, none);

	/*
	 * Once the rows are counted, a value that matches nothing is known
	 * from the summaries: no walk over the rows, and the same message.
	 */
	count_database(path);
	p = plans_of(path, &none, REPORT_ATTEMPTS, "client", "10.9.9.9",
	    "limit", "5", NULL);
	CHECK(none > 0 && none < 2000);
	/* Months and days each a range of the summaries' key, never every
	 * row of the kind (a year of a client's days). */
	CHECK(p != NULL && strstr(p, "attempt_sums USING PRIMARY KEY (kind=?"
	    " AND grain=? AND t>? AND t<?)\n") != NULL);
	CHECK(p != NULL && strstr(p, "attempt_sums USING PRIMARY KEY"
	    " (kind=?)\n") == NULL);
	if (p != NULL && strstr(p, "(kind=?)\n") != NULL)
		fprintf(stderr, "  %s", p);
	free(p);
	p = plans_of(path, &none, REPORT_ATTEMPTS, "site", "b", "limit", "5",
	    NULL);
	CHECK(none > 0 && none < 2000);
	/* The rule days (version 7) a range of their table's key too. */
	CHECK(p != NULL && strstr(p, "attempt_sums_rules USING PRIMARY KEY"
	    " (t>? AND t<?)\n") != NULL);
	free(p);
	CHECK_INT(run(log_cmd, "log", "--database", path, "--client",
	    "10.9.9.9", NULL), 0);
	CHECK_LAST(err, "dnswarden log: no attempts for client 10.9.9.9 from"
	    " the first row to now\n");
	CHECK_INT(run(log_cmd, "log", "--database", path, "--site", "a",
	    "--category", "nope", NULL), 0);
	CHECK_LAST(err, "dnswarden log: no attempts in category nope from"
	    " the first row to now\n");
	/* Found by a name, case-blind as the filters are. */
	CHECK_INT(run(log_cmd, "log", "--database", path, "--site", "a",
	    "--category", "ADULT", "--client", "10.0.0.3", "--limit", "1",
	    "--format", "csv", NULL), 0);
	CHECK(strstr(out, ",10.0.0.3,") != NULL);
	/*
	 * A row older than the oldest summarised day (kept past retention
	 * for a central shipper) is in no summary, and still found.
	 */
	sqlite3_open(path, &db);
	CHECK_INT(sqlite3_exec(db, "UPDATE attempts SET ts = ts - 400 * 86400000,"
	    " client = '10.8.8.8' WHERE id = 1", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	CHECK_INT(run(log_cmd, "log", "--database", path, "--client",
	    "10.8.8.8", "--format", "csv", NULL), 0);
	CHECK(strstr(out, ",10.8.8.8,") != NULL);
}

/* ---- the summaries against the scan ---- */

static const char *const hist_clients[] = { "10.1.0.1", "10.1.0.2",
    "10.1.0.3", "2001:db8::9", "10.1.0.5" };
static const char *const hist_names[] = { "finance", NULL, "sales", NULL,
    "finance" };
static const char *const hist_rules[] = { "example.com", "other.net",
    "imported.test", "third.org" };
static const char *const hist_sites[] = { "Example Site", "Other", NULL,
    "Third" };

static struct sink_str
str(const char *v)
{
	return (struct sink_str){ v, v ? strlen(v) : 0 };
}

/*
 * A history through the writer's sink, from *tsp on (then its end):
 * mostly seconds apart, now and then up to a day, so that attempts
 * continue and start across every size of period, in batches of 100.
 */
static struct sink *
make_history(const char *path, int rows, int64_t *tsp, bool close_it)
{
	struct sink *s = sink_open(path);
	struct sink_attempt batch[100];
	int64_t ts = *tsp;
	uint32_t x = 12345;

	for (int i = 0; i < rows; ) {
		struct sink_batch b = { .attempts = batch, .now_ms = ts };
		int n = 0;

		for (; n < 100 && i < rows; n++, i++) {
			struct sink_attempt *a = &batch[n];
			int c, r;

			x = x * 1103515245u + 12345u;
			c = (x >> 8) % 5;
			r = (x >> 12) % 4;
			/* Mostly seconds apart, sometimes an hour, a day. */
			ts += (x >> 16) % 7 == 0 ? (int64_t)((x >> 4) % 90000) *
			    1000 : (int64_t)((x >> 5) % 70) * 1000;
			memset(a, 0, sizeof(*a));
			a->ts_ms = ts;
			a->client = str(hist_clients[c]);
			a->client_name = str(hist_names[c]);
			a->qname = str(hist_rules[r]);
			a->qtype = str("A");
			a->rule = str(hist_rules[r]);
			a->category = str(r == 2 ? "imported-list" : "adult");
			a->site = str(hist_sites[r]);
			a->transport = str((x >> 3) % 3 ? "udp" : "tcp");
			a->verified = (x >> 3) % 3 == 0;
			a->policy = str(c == 1 ? "guests" : NULL);
		}
		b.nattempts = (size_t)n;
		if (sink_sqlite_ops.write_batch(s, &b) != 0) {
			fprintf(stderr, "write: %s\n", sink_sqlite_ops.error(s));
			exit(1);
		}
	}
	*tsp = ts;
	if (close_it) {
		sink_sqlite_ops.close(s);
		return NULL;
	}
	return s;
}

/* One report, every format concatenated; NULL on failure. */
static char *
report_all_formats(const char *path, const char *by, const char *since,
    const char *until, const char *tz, const char *top, bool scan)
{
	static const enum report_format fmts[] = { REPORT_TABLE, REPORT_CSV,
	    REPORT_JSON };
	struct report_rows *rows = NULL;
	struct report_opts o;
	struct report_db *db;
	char e[256], *all = NULL;
	size_t alen = 0;

	report_opts_init(&o, REPORT_COUNTS);
	o.scan = scan;
	if ((by && report_opts_set(&o, "by", by, e, sizeof(e)) == -1) ||
	    (since && report_opts_set(&o, "since", since, e, sizeof(e)) == -1) ||
	    (until && report_opts_set(&o, "until", until, e, sizeof(e)) == -1) ||
	    (top && report_opts_set(&o, "top", top, e, sizeof(e)) == -1) ||
	    report_opts_set(&o, "tz", tz, e, sizeof(e)) == -1 ||
	    report_opts_finish(&o, e, sizeof(e)) == -1 ||
	    (db = report_db_open(path, e, sizeof(e))) == NULL) {
		fprintf(stderr, "options: %s\n", e);
		return NULL;
	}
	if (report_run(db, &o, NULL, &rows, e, sizeof(e)) == 0) {
		for (size_t f = 0; f < 3; f++) {
			size_t len;
			char *buf = report_write_buffer(rows, fmts[f], &len);
			char *n = buf ? realloc(all, alen + len + 1) : NULL;

			if (n == NULL) {
				free(buf);
				free(all);
				all = NULL;
				break;
			}
			all = n;
			memcpy(all + alen, buf, len + 1);
			alen += len;
			free(buf);
		}
	} else
		fprintf(stderr, "report: %s\n", e);
	report_rows_free(rows);
	report_db_close(db);
	return all;
}

/* Every --by, format, zone and kind of period: summaries == scan. */
static int
compare_reports(const char *path, size_t nzones)
{
	static const char *const bys[] = { NULL, "day", "week", "month",
	    "client", "category", "site", "domain", "policy" };
	static const char *const tzs[] = { "UTC", "Europe/Berlin", "+05:30",
	    "+05:45", "America/New_York" };
	static const char *const ranges[][2] = {
		{ NULL, NULL },
		{ "2024-02-01", "2024-03-31" },		/* whole days */
		{ "2024-01-31T13:37:12", "2024-04-02T01:02:03.004" },
		{ "2024-03-10T10:00", "2024-03-10T10:20" },	/* < 1 h */
		{ "2024-02-15", NULL },
		{ NULL, "2024-05-01T00:14:59Z" },
		{ "2030-01-01", NULL },			/* nothing */
	};
	int diffs = 0, runs = 0;

	for (size_t b = 0; b < sizeof(bys) / sizeof(bys[0]); b++)
		for (size_t z = 0; z < nzones && z < sizeof(tzs) /
		    sizeof(tzs[0]); z++)
			for (size_t r = 0; r < sizeof(ranges) /
			    sizeof(ranges[0]); r++) {
				const char *top = (b + r) % 3 == 0 ? "2" : NULL;
				char *a = report_all_formats(path, bys[b],
				    ranges[r][0], ranges[r][1], tzs[z], top,
				    false);
				char *c = report_all_formats(path, bys[b],
				    ranges[r][0], ranges[r][1], tzs[z], top,
				    true);

				runs++;
				if (a == NULL || c == NULL || strcmp(a, c)) {
					fprintf(stderr, "differs: --by %s --tz"
					    " %s %s..%s\nsummaries:\n%s\nscan:"
					    "\n%s\n", bys[b] ? bys[b] : "-",
					    tzs[z], ranges[r][0] ?
					    ranges[r][0] : "-", ranges[r][1] ?
					    ranges[r][1] : "-", a ? a : "?",
					    c ? c : "?");
					diffs++;
				}
				free(a);
				free(c);
			}
	setenv("TZ", "UTC", 1);
	tzset();
	return runs > 0 ? diffs : -1;
}

static long long
db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * The ids of every page of `log --limit 7` with one filter (name, value),
 * newest first, each page --before the last id of the one before, into
 * ids (at most max); how many, or -1 on error.
 */
static int
paged_ids(const char *path, const char *name, const char *value,
    int64_t *ids, int max)
{
	struct report_rows *rows;
	struct report_opts o;
	struct report_db *db;
	char e[256], before[32];
	int n = 0;

	if ((db = report_db_open(path, e, sizeof(e))) == NULL)
		return -1;
	for (int64_t last = 0;;) {
		report_opts_init(&o, REPORT_ATTEMPTS);
		snprintf(before, sizeof(before), "%lld", (long long)last);
		if (report_opts_set(&o, name, value, e, sizeof(e)) == -1 ||
		    report_opts_set(&o, "limit", "7", e, sizeof(e)) == -1 ||
		    (last > 0 && report_opts_set(&o, "before", before, e,
		    sizeof(e)) == -1) ||
		    report_opts_finish(&o, e, sizeof(e)) == -1 ||
		    report_run(db, &o, NULL, &rows, e, sizeof(e)) == -1) {
			n = -1;
			break;
		}
		for (size_t i = 0; i < rows->nrows && n < max; i++)
			ids[n++] = report_cell(rows, i, 11)->num;
		last = rows->nrows > 0 ? ids[n - 1] : 0;
		report_rows_free(rows);
		if (last == 0 || n == max)
			break;
	}
	report_db_close(db);
	return n;
}

/* The ids sql selects, in its order, as paged_ids() would give them. */
static int
sql_ids(const char *path, const char *sql, int64_t *ids, int max)
{
	sqlite3_stmt *st;
	sqlite3 *db;
	int n = 0;

	sqlite3_open(path, &db);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		n = -1;
	else
		while (sqlite3_step(st) == SQLITE_ROW && n < max)
			ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/*
 * Paging a filter page by page gives each of its rows once, in the log's
 * order (ts, then id, newest first): three rows share each time, and ids
 * 100 to 119 are older than the ids before them (a clock stepped back).
 */
static void
check_pages(const char *path, const char *what)
{
	static const struct {
		const char	*name, *value, *where;
	} f[] = {
		{ "client", "10.0.1.3", "client = '10.0.1.3'" },
		{ "client", "floor2", "client = 'floor2' OR client_name ="
		    " 'floor2'" },
		{ "site", "site b", "site = 'Site B'" },
		{ "since", "2024-03-04", "1" },
	};
	int64_t got[700], want[700];
	char sql[256];

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		int n, m;

		snprintf(sql, sizeof(sql), "SELECT id FROM attempts WHERE %s"
		    " ORDER BY ts DESC, id DESC", f[i].where);
		n = paged_ids(path, f[i].name, f[i].value, got, 700);
		m = sql_ids(path, sql, want, 700);
		CHECK(m > 20);
		CHECK_INT(n, m);
		if (n == m && m > 0 && memcmp(got, want, (size_t)m *
		    sizeof(*got)) != 0) {
			fprintf(stderr, "  %s: --%s %s: pages differ\n", what,
			    f[i].name, f[i].value);
			CHECK(0);
		}
	}
}

/*
 * log pages across many pages, on a file of this version, on one of
 * version 4 (index attempts_ts), and on that file once opened by the
 * writer (version 5 at once, the index built by its first maintain()
 * step): the same pages every time, and the plans of each index.
 */
static void
test_log_client_pages(void)
{
	char path[300], *p;
	struct sink *s;
	sqlite3 *db;

	db = empty_log("client_pages.db", path, sizeof(path));
	CHECK_INT(sqlite3_exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
	    " SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO attempts (ts,"
	    " client, client_name, qname, qtype, rule, category, site,"
	    " transport) SELECT 1709546400000 + (i / 3) * 1000 - (CASE WHEN"
	    " i BETWEEN 100 AND 119 THEN 600000 ELSE 0 END), '10.0.1.' ||"
	    " (i % 11), CASE WHEN i % 11 IN (2, 5) THEN 'floor2' END,"
	    " 'www.a.test', 'A', 'a.test', 'adult', CASE WHEN i % 13 = 0 THEN"
	    " 'Site B' ELSE 'Site A' END, 'udp' FROM n", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	check_pages(path, "version 6");
	p = plans_of(path, NULL, REPORT_ATTEMPTS, "client", "10.0.1.3",
	    "limit", "7", NULL);
	CHECK(p != NULL && strstr(p, PLAN_IDS_TO) != NULL);
	free(p);

	/* The same file at version 4: attempts_ts serves the pages. */
	sqlite3_open(path, &db);
	CHECK_INT(sqlite3_exec(db, "DROP INDEX attempts_log; CREATE INDEX"
	    " attempts_ts ON attempts(ts); ALTER TABLE attempt_sums_state DROP"
	    " COLUMN months_day; DROP TABLE attempt_sums_rules;"
	    " PRAGMA user_version = 4", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	check_pages(path, "version 4");
	p = plans_of(path, NULL, REPORT_ATTEMPTS, "client", "10.0.1.3",
	    "limit", "7", NULL);
	CHECK(p != NULL && !scans_attempts(p));
	CHECK(p != NULL && strstr(p, "SEARCH attempts USING INDEX attempts_ts"
	    " (ts<?)\n") != NULL);
	free(p);

	/* Opened by the writer: version 6, indexed by its first step. */
	s = sink_open(path);
	check_pages(path, "upgraded, not yet indexed");
	CHECK_INT(sink_sqlite_ops.maintain(s, 4096, 0), 0);
	check_pages(path, "upgraded and indexed");
	sink_sqlite_ops.close(s);
	p = plans_of(path, NULL, REPORT_ATTEMPTS, "client", "10.0.1.3",
	    "limit", "7", NULL);
	CHECK(p != NULL && strstr(p, PLAN_IDS_TO) != NULL);
	CHECK(p != NULL && strstr(p, "attempts_ts") == NULL);
	free(p);
	sqlite3_open(path, &db);
	CHECK_INT(db_int(db, "PRAGMA user_version"), SINK_SCHEMA_VERSION);
	CHECK_INT(db_int(db, "SELECT count(*) FROM sqlite_master WHERE"
	    " type = 'index' AND tbl_name = 'attempts'"), 1);
	sqlite3_close(db);
}

static void
test_sums_vs_scan(void)
{
	char path[300];
	struct sink *s;
	sqlite3 *db;
	long long covered, max_id;
	int64_t ts = 1706100000000LL;	/* 2024-01-24 */

	/*
	 * All counted (the sink closed): from late January 2024 over the
	 * months after (a month end, daylight saving time), then with rows
	 * still pending.
	 */
	snprintf(path, sizeof(path), "%s/history.db", tmpdir);
	make_history(path, 2000, &ts, true);
	CHECK_INT(compare_reports(path, 5), 0);
	s = make_history(path, 300, &ts, false);
	sqlite3_open(path, &db);
	covered = db_int(db, "SELECT covered_id FROM attempt_sums_state");
	max_id = db_int(db, "SELECT max(id) FROM attempts");
	sqlite3_close(db);
	CHECK(covered < max_id);	/* the reports add these rows */
	CHECK_INT(compare_reports(path, 2), 0);
	sink_sqlite_ops.close(s);
}

static void
make_config(char *path, const char *name, const char *extra)
{
	char text[512];

	snprintf(path, 256, "%s/%s.yaml", tmpdir, name);
	snprintf(text, sizeof(text), "upstreams: [\"127.0.0.1:5300\"]\n"
	    "log:\n  database: \"%s.db\"\n%s", strcmp(name, "pseudo") == 0 ?
	    "attempts" : name, extra);
	write_file(path, text);
}

int
main(void)
{
	char db[300];

	/* The default zone is the local one: make it UTC here. */
	setenv("TZ", "UTC", 1);
	tzset();
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	make_config(conf, "attempts", "");
	make_config(conf_empty, "none", "");
	make_config(conf_pseudo, "pseudo", "  client_identity: pseudonym\n"
	    "  pseudonym_key: \"" PSEUDO_KEY "\"\n");
	snprintf(db, sizeof(db), "%s/attempts.db", tmpdir);
	make_database(db);

	RUN(test_attempt_rule);
	RUN(test_by_time);
	RUN(test_by_group);
	RUN(test_total_and_period);
	RUN(test_time_zones);
	RUN(test_empty);
	RUN(test_log);
	RUN(test_log_filters);
	RUN(test_log_pages);
	RUN(test_reader_config);
	RUN(test_hostile_strings);
	RUN(test_library);
	RUN(test_errors);
	RUN(test_bad_input_leaves_file);
	/* Again, the same answers from the summaries. */
	count_database(db);
	RUN(test_attempt_rule);
	RUN(test_by_time);
	RUN(test_by_group);
	RUN(test_total_and_period);
	RUN(test_time_zones);
	RUN(test_library);
	RUN(test_log);
	RUN(test_log_filters);
	RUN(test_log_pages);
	RUN(test_plans);
	RUN(test_page_cost);
	RUN(test_log_client_pages);
	RUN(test_sums_vs_scan);
	if (unit_failures == 0) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	} else
		fprintf(stderr, "files kept in %s\n", tmpdir);
	UNIT_DONE();
}
