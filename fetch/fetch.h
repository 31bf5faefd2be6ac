/*
 * fetch: keeps the blocklists' url: imports current. A thread of its own
 * downloads each source with libcurl when its refresh is due (never on
 * the DNS path, never before serving: the last good copy in
 * blocklist.cache_dir serves meanwhile), with conditional requests
 * (ETag, Last-Modified), a size cap, TLS verification and an optional
 * SHA-256 pin. A download replaces the last good copy only when it reads
 * as a list and keeps at least half of the names; otherwise the copy
 * stays and the failure is recorded beside it (PATH.meta) for "check".
 * When a copy changed, the caller is told, and reloads.
 */
#ifndef DNSWARDEN_FETCH_H
#define DNSWARDEN_FETCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "blocklist.h"
#include "config.h"

/* Size cap of one download when the import sets no max_bytes. */
#define FETCH_MAX_BYTES_DEFAULT	((uint64_t)256 << 20)

struct fetch;

/* What was last recorded about a source (its PATH.meta). */
struct fetch_status {
	time_t		fetched;	/* last download that succeeded (200 or
					   304); 0: never */
	time_t		tried;		/* last attempt; 0: never */
	size_t		names;		/* in the last good copy */
	char		result[256];	/* of the last attempt */
	char		etag[256];
	char		last_modified[128];
	char		digest[65];	/* SHA-256 of the last good copy */
};

/*
 * A fetcher for the url: imports of bl, with the timeouts and CA file of
 * cfg. changed(arg) is called on the fetcher's thread each time a last
 * good copy changed (by this fetcher or another process, such as
 * "dnswarden update-lists"). NULL if out of memory.
 */
struct fetch	*fetch_new(const struct config *cfg, const struct blocklist *bl,
		    void (*changed)(void *), void *arg);

/* Start the thread that downloads each source when it is due. 0 or -1. */
int		 fetch_start(struct fetch *f);

/* Take the sources and settings of a reloaded cfg and bl (copied). */
void		 fetch_reconfigure(struct fetch *f, const struct config *cfg,
		    const struct blocklist *bl);

/*
 * Download every source now, in the caller's thread, printing one line
 * per source to out. Returns the number that failed (their last good
 * copies stay).
 */
int		 fetch_update_all(struct fetch *f, FILE *out);

/* Stop the thread (a download under way is cut short) and free f. */
void		 fetch_free(struct fetch *f);

/* Read the status recorded for the source whose copy is path. 0, or -1
 * when there is none (st zeroed). */
int		 fetch_status_read(const char *path, struct fetch_status *st);

/*
 * The sources of bl with their age and last result, at now, for
 * "dnswarden check". Prints nothing without url: imports.
 */
void		 fetch_print_status(const struct blocklist *bl, time_t now,
		    FILE *out);

/* When a source last fetched at st is due again, at refresh_s: after a
 * failure sooner (at most 5 minutes, or refresh_s), never: now. */
time_t		 fetch_due(const struct fetch_status *st, unsigned refresh_s);

#endif
