/*
 * central: ship every attempt row to one PostgreSQL database shared by
 * many sites (log.central), and read it back for `report --central` and
 * `log --central`.
 *
 * The local SQLite file stays the outbox: the attempt log's writer puts
 * rows there as always, and a shipper thread of its own (libpq, blocking,
 * never on a DNS thread) copies them in id order, in batches, to table
 * dnswarden_attempts keyed by (instance, id, ts). How far it got is kept
 * on both sides, in the local table central_outbox and in the central
 * table dnswarden_instances, in the transaction that inserts the rows; it
 * resumes from the smaller. Retention in the local file keeps every row
 * not yet shipped (../attemptlog/sink_sqlite.c). docs/central.md tells
 * the whole story.
 */
#ifndef DNSWARDEN_CENTRAL_H
#define DNSWARDEN_CENTRAL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct central;

struct central_stats {
	uint64_t	shipped;	/* rows shipped since start */
	uint64_t	waiting;	/* rows in the local file not shipped */
	uint64_t	behind_s;	/* age of the oldest waiting row */
	bool		connected;
};

/*
 * Start the shipper for cfg->log.central (which must be set), reading
 * the attempt log at db_path (the writer has created it). Waits for the
 * first connection attempt and the instance's lock (the connect bounded
 * by its connect_timeout; not for the tables, whose lock another session
 * may hold long): when another daemon already ships as this instance,
 * returns NULL with the reason, naming the instance and the other
 * daemon, in err. An unreachable or
 * refusing database is no error: it is logged and the shipper retries
 * with backoff while rows wait locally. NULL with err when out of memory
 * or the local file cannot be read.
 */
struct central	*central_start(const struct config *cfg, const char *db_path,
		    char *err, size_t errlen);

/* Copy the shipper's counters (zeros when c is NULL). Thread-safe. */
void		 central_get_stats(struct central *c, struct central_stats *out);

/* Stop the shipper and free c (NULL is fine). Unshipped rows stay. */
void		 central_stop(struct central *c);

/*
 * The wait before reconnect attempt number failures (1, 2, ...), in ms:
 * doubling from CENTRAL_BACKOFF_MIN_MS up to CENTRAL_BACKOFF_MAX_MS.
 * While no server answers at all, the shipper looks every
 * CENTRAL_PROBE_MS whether one does, and tries at once when it does.
 */
#define CENTRAL_BACKOFF_MIN_MS	200
#define CENTRAL_BACKOFF_MAX_MS	10000
#define CENTRAL_PROBE_MS	250
int64_t		 central_backoff_ms(unsigned failures);

#endif
