/*
 * central_internal: what the shipper (central.c), the schema
 * (central_schema.c) and the reader (central_read.c) share. Private to
 * central/.
 */
#ifndef DNSWARDEN_CENTRAL_INTERNAL_H
#define DNSWARDEN_CENTRAL_INTERNAL_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

/* Version of the central tables, in dnswarden_meta. */
#define CENTRAL_SCHEMA_VERSION	2	/* 2: dnswarden_sums */

/*
 * Connect to conninfo as application_name app (NULL: "dnswarden"), with
 * a connect timeout and TCP keepalives unless conninfo sets its own.
 * Returns the connection (check PQstatus) or NULL when out of memory.
 */
PGconn	*central_connect(const char *conninfo, const char *app);

/*
 * Whether a server at conninfo accepts connections (PQpingParams: no
 * login, no query; a server that asks for a password answers). Bounded
 * by the same connect timeout as central_connect().
 */
bool	 central_answers(const char *conninfo, const char *app);

/*
 * INSERT of the summaries of the rows of a relation into dnswarden_sums
 * (central_schema.c): a printf format whose one %s is the relation.
 */
extern const char central_sums_sql[];

/*
 * Create the central tables when missing, and check that those present
 * have the shape this dnswarden writes. Returns 0, or -1 with the reason
 * in err (a shape that differs is named: table, column, type). While
 * another session holds the schema's lock (a site creating or upgrading
 * the tables, a DBA), it tries again every 200 ms until stop(arg) is
 * true (NULL: until it gets it).
 */
int	 central_schema_ensure(PGconn *pg, bool (*stop)(void *), void *arg,
	    char *err, size_t errlen);

/*
 * Make sure the monthly partitions holding Unix ms from_ms to to_ms
 * exist (and the month after to_ms, made ahead). Returns 0 or -1 (err).
 */
int	 central_partitions_ensure(PGconn *pg, int64_t from_ms, int64_t to_ms,
	    char *err, size_t errlen);

/* The first Unix second of the UTC month ms is in, plus months. */
int64_t	 central_month_start(int64_t ms, int months);

/* err = what, ": ", PQerrorMessage without its newline. */
void	 central_pg_error(PGconn *pg, const char *what, char *err,
	    size_t errlen);

#endif
