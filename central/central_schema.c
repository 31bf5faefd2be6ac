/*
 * central_schema: the tables dnswarden keeps in the central PostgreSQL
 * database, created when missing and checked when present.
 *
 * dnswarden_attempts is partitioned by month on ts, so that retention
 * there drops whole partitions. PostgreSQL wants the partition key in
 * every unique key of a partitioned table: the key is (instance, id, ts)
 * rather than (instance, id). A row's ts never changes, so the two are
 * unique alike, and ON CONFLICT DO NOTHING still drops the copy a retry
 * sends again.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "central_internal.h"

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS dnswarden_meta ("
	" key text PRIMARY KEY,"
	" value text NOT NULL);"
	"CREATE TABLE IF NOT EXISTS dnswarden_instances ("
	" instance text PRIMARY KEY,"
	" shipped_id bigint NOT NULL,"
	" shipped_at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE IF NOT EXISTS dnswarden_attempts ("
	" instance text NOT NULL,"
	" id bigint NOT NULL,"
	" ts timestamptz NOT NULL,"
	" client text NOT NULL,"
	" client_name text,"
	" qname text NOT NULL,"
	" qtype text NOT NULL,"
	" rule text NOT NULL,"
	" category text NOT NULL,"
	" site text,"
	" transport text NOT NULL,"
	" verified boolean NOT NULL,"
	" policy text,"
	" visit boolean,"
	" PRIMARY KEY (instance, id, ts))"
	" PARTITION BY RANGE (ts);"
	"CREATE INDEX IF NOT EXISTS dnswarden_attempts_ts"
	" ON dnswarden_attempts (ts);"
	"CREATE TABLE IF NOT EXISTS dnswarden_sums ("
	" instance text NOT NULL,"
	" kind smallint NOT NULL,"
	" grain smallint NOT NULL,"
	" t bigint NOT NULL,"
	" k1 text NOT NULL,"
	" k2 text NOT NULL,"
	" k3 text NOT NULL,"
	" queries bigint NOT NULL,"
	" attempts bigint NOT NULL,"
	" verified bigint NOT NULL,"
	" PRIMARY KEY (instance, kind, grain, t, k1, k2, k3));"
	"INSERT INTO dnswarden_meta VALUES ('schema_version', '1')"
	" ON CONFLICT (key) DO NOTHING;";

/*
 * The summaries of the rows of src (instance, ts, client, client_name,
 * rule, category, site, policy, verified, visit) added to
 * dnswarden_sums: the same kinds and grains as the local attempt_sums
 * (../attemptlog/sink.h; NULL kept as ''), per instance. A printf format:
 * %s is src, a table or a CTE. Used when the tables are upgraded to
 * version 2; each batch's are added up by the shipper in C instead
 * (central.c, sums_make), which must count exactly the same
 * (tests/e2e/test_central.py compares the two).
 */
const char central_sums_sql[] =
	"INSERT INTO dnswarden_sums (instance, kind, grain, t, k1, k2, k3,"
	" queries, attempts, verified)"
	" SELECT instance, v.kind, v.grain, v.t, v.k1, v.k2, v.k3, count(*),"
	" count(*) FILTER (WHERE visit), count(*) FILTER (WHERE verified)"
	" FROM (SELECT instance, visit, verified,"
	" floor(extract(epoch FROM ts))::bigint AS s,"
	" extract(epoch FROM date_trunc('month', ts AT TIME ZONE 'UTC'))"
	"::bigint AS m, client, coalesce(client_name, '') AS cn, rule,"
	" category, coalesce(site, '') AS site, coalesce(policy, '') AS pol"
	" FROM %s) AS b CROSS JOIN LATERAL (VALUES"
	" (0, 0, s / 900 * 900, '', '', ''),"
	" (1, 1, s / 86400 * 86400, client, cn, ''), (1, 2, m, client, cn, ''),"
	" (2, 1, s / 86400 * 86400, rule, category, site),"
	" (2, 2, m, rule, category, site),"
	" (3, 1, s / 86400 * 86400, pol, '', ''), (3, 2, m, pol, '', ''))"
	" AS v (kind, grain, t, k1, k2, k3)"
	" GROUP BY 1, 2, 3, 4, 5, 6, 7"
	" ON CONFLICT (instance, kind, grain, t, k1, k2, k3) DO UPDATE SET"
	" queries = dnswarden_sums.queries + excluded.queries,"
	" attempts = dnswarden_sums.attempts + excluded.attempts,"
	" verified = dnswarden_sums.verified + excluded.verified";

/* The columns as information_schema names their types. */
static const struct {
	const char	*table, *column, *type;
} shape[] = {
	{ "dnswarden_instances", "instance", "text" },
	{ "dnswarden_instances", "shipped_id", "bigint" },
	{ "dnswarden_attempts", "instance", "text" },
	{ "dnswarden_attempts", "id", "bigint" },
	{ "dnswarden_attempts", "ts", "timestamp with time zone" },
	{ "dnswarden_attempts", "client", "text" },
	{ "dnswarden_attempts", "client_name", "text" },
	{ "dnswarden_attempts", "qname", "text" },
	{ "dnswarden_attempts", "qtype", "text" },
	{ "dnswarden_attempts", "rule", "text" },
	{ "dnswarden_attempts", "category", "text" },
	{ "dnswarden_attempts", "site", "text" },
	{ "dnswarden_attempts", "transport", "text" },
	{ "dnswarden_attempts", "verified", "boolean" },
	{ "dnswarden_attempts", "policy", "text" },
	{ "dnswarden_attempts", "visit", "boolean" },
	{ "dnswarden_sums", "instance", "text" },
	{ "dnswarden_sums", "kind", "smallint" },
	{ "dnswarden_sums", "grain", "smallint" },
	{ "dnswarden_sums", "t", "bigint" },
	{ "dnswarden_sums", "k1", "text" },
	{ "dnswarden_sums", "k2", "text" },
	{ "dnswarden_sums", "k3", "text" },
	{ "dnswarden_sums", "queries", "bigint" },
	{ "dnswarden_sums", "attempts", "bigint" },
	{ "dnswarden_sums", "verified", "bigint" },
};

void
central_pg_error(PGconn *pg, const char *what, char *err, size_t errlen)
{
	const char *m = pg ? PQerrorMessage(pg) : "out of memory";
	size_t n;

	snprintf(err, errlen, "%s: %s", what, m && m[0] ? m : "unknown error");
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
	/* libpq's messages may span lines; keep the log to one. */
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

/* Ours first: what conninfo sets overrides them. */
static const char *const connect_keys[] = { "connect_timeout",
    "application_name", "keepalives", "keepalives_idle",
    "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname",
    NULL };
#define CONNECT_VALS(app, conninfo) { "5", (app) ? (app) : "dnswarden", \
    "1", "10", "5", "3", "30000", (conninfo), NULL }

PGconn *
central_connect(const char *conninfo, const char *app)
{
	const char *const vals[] = CONNECT_VALS(app, conninfo);

	return PQconnectdbParams(connect_keys, vals, 1);
}

bool
central_answers(const char *conninfo, const char *app)
{
	const char *const vals[] = CONNECT_VALS(app, conninfo);

	return PQpingParams(connect_keys, vals, 1) == PQPING_OK;
}

/* Run sql (no parameters, no rows); 0 or -1 with err. */
static int
pg_exec(PGconn *pg, const char *sql, const char *what, char *err,
    size_t errlen)
{
	PGresult *res = PQexec(pg, sql);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		central_pg_error(pg, what, err, errlen);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* Each column of shape[] present with its type, or say which is not. */
static int
schema_check(PGconn *pg, char *err, size_t errlen)
{
	const char *params[2];
	PGresult *res;

	for (size_t i = 0; i < sizeof(shape) / sizeof(shape[0]); i++) {
		params[0] = shape[i].table;
		params[1] = shape[i].column;
		res = PQexecParams(pg, "SELECT data_type FROM"
		    " information_schema.columns WHERE table_schema ="
		    " current_schema() AND table_name = $1 AND column_name = $2",
		    2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			central_pg_error(pg, "cannot read the central schema",
			    err, errlen);
			PQclear(res);
			return -1;
		}
		if (PQntuples(res) == 0 ||
		    strcmp(PQgetvalue(res, 0, 0), shape[i].type) != 0) {
			snprintf(err, errlen, "central table %s has an"
			    " incompatible shape: column %s %s%s, expected %s"
			    " (see docs/central.md)", shape[i].table,
			    shape[i].column, PQntuples(res) ? "is " :
			    "is missing", PQntuples(res) ?
			    PQgetvalue(res, 0, 0) : "", shape[i].type);
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

/*
 * 1 -> 2: dnswarden_sums, filled from the rows already shipped (a fresh
 * database has none), then kept by each batch's transaction.
 */
static int
schema_upgrade_sums(PGconn *pg, char *err, size_t errlen)
{
	char sql[2048];

	snprintf(sql, sizeof(sql), central_sums_sql, "dnswarden_attempts");
	if (pg_exec(pg, "TRUNCATE dnswarden_sums", "cannot upgrade the"
	    " central tables", err, errlen) == -1 ||
	    pg_exec(pg, sql, "cannot upgrade the central tables", err,
	    errlen) == -1)
		return -1;
	return pg_exec(pg, "UPDATE dnswarden_meta SET value = '2' WHERE key ="
	    " 'schema_version'", "cannot upgrade the central tables", err,
	    errlen);
}

/*
 * The schema's lock, for this transaction: two sites starting at once,
 * one creates, the other waits. Tried rather than waited for in
 * PostgreSQL, so that a lock held long (an upgrade of a large table
 * elsewhere) does not hold this daemon's stop. 0, or -1 (err).
 */
static int
schema_lock(PGconn *pg, bool (*stop)(void *), void *arg, char *err,
    size_t errlen)
{
	for (;;) {
		PGresult *res = PQexec(pg, "SELECT"
		    " pg_try_advisory_xact_lock(7361626)");
		bool got = PQresultStatus(res) == PGRES_TUPLES_OK &&
		    strcmp(PQgetvalue(res, 0, 0), "t") == 0;

		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			central_pg_error(pg, "cannot lock the central schema",
			    err, errlen);
			PQclear(res);
			return -1;
		}
		PQclear(res);
		if (got)
			return 0;
		if (stop != NULL && stop(arg)) {
			snprintf(err, errlen, "stopped while another session"
			    " held the central schema's lock");
			return -1;
		}
		usleep(200 * 1000);
	}
}

int
central_schema_ensure(PGconn *pg, bool (*stop)(void *), void *arg,
    char *err, size_t errlen)
{
	PGresult *res;
	int version = 0;

	if (pg_exec(pg, "BEGIN", "cannot lock the central schema", err,
	    errlen) == -1 || schema_lock(pg, stop, arg, err, errlen) == -1)
		goto fail;
	res = PQexec(pg, "SELECT to_regclass('dnswarden_meta') IS NOT NULL"
	    " AND EXISTS (SELECT 1 FROM information_schema.columns WHERE"
	    " table_schema = current_schema() AND table_name ="
	    " 'dnswarden_meta' AND column_name = 'value')");
	if (PQresultStatus(res) == PGRES_TUPLES_OK &&
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		PQclear(res);
		res = PQexec(pg, "SELECT value FROM dnswarden_meta WHERE key ="
		    " 'schema_version'");
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1)
			version = atoi(PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	if (version > CENTRAL_SCHEMA_VERSION) {
		snprintf(err, errlen, "central schema version %d is newer than"
		    " this dnswarden's (%d)", version, CENTRAL_SCHEMA_VERSION);
		goto fail;
	}
	/*
	 * Current tables are only checked: the DDL would need the owner's
	 * rights, which a resolver's role need not have (docs/central.md,
	 * "Roles and grants").
	 */
	if ((version < CENTRAL_SCHEMA_VERSION && pg_exec(pg, schema_sql,
	    "cannot create the central tables", err, errlen) == -1) ||
	    schema_check(pg, err, errlen) == -1 ||
	    (version < 2 && schema_upgrade_sums(pg, err, errlen) == -1))
		goto fail;
	return pg_exec(pg, "COMMIT", "cannot commit the central tables", err,
	    errlen);
fail:
	PQclear(PQexec(pg, "ROLLBACK"));
	return -1;
}

int64_t
central_month_start(int64_t ms, int months)
{
	time_t t = (time_t)(ms / 1000 - (ms % 1000 < 0));
	struct tm tm;

	gmtime_r(&t, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mon += months;
	return (int64_t)timegm(&tm);
}

/* One month's partition, starting at Unix second start. */
static int
partition_create(PGconn *pg, int64_t start, char *err, size_t errlen)
{
	char sql[512], name[64];
	time_t t = (time_t)start;
	struct tm tm;
	int64_t end = central_month_start(start * 1000, 1);
	PGresult *res;
	bool there;

	gmtime_r(&t, &tm);
	/* Numbers only: nothing here comes from a row. */
	snprintf(name, sizeof(name), "dnswarden_attempts_%04d_%02d",
	    tm.tm_year + 1900, tm.tm_mon + 1);
	/* Made ahead by a DBA, the resolver's role need not create any. */
	snprintf(sql, sizeof(sql), "SELECT to_regclass('%s') IS NOT NULL",
	    name);
	res = PQexec(pg, sql);
	there = PQresultStatus(res) == PGRES_TUPLES_OK &&
	    strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (there)
		return 0;
	snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS %s PARTITION"
	    " OF dnswarden_attempts FOR VALUES FROM (to_timestamp(%" PRId64
	    ")) TO (to_timestamp(%" PRId64 "))", name, start, end);
	return pg_exec(pg, sql, "cannot create a partition", err, errlen);
}

int
central_partitions_ensure(PGconn *pg, int64_t from_ms, int64_t to_ms,
    char *err, size_t errlen)
{
	int64_t m = central_month_start(from_ms, 0);
	int64_t last = central_month_start(to_ms, 1);

	for (int guard = 0; m <= last && guard < 240; guard++) {
		if (partition_create(pg, m, err, errlen) == -1)
			return -1;
		m = central_month_start(m * 1000, 1);
	}
	return 0;
}
