/*
 * fetch_internal: one download (fetch_http.c) and the status file beside
 * each copy, shared with the scheduling thread (fetch.c). Private to the
 * fetch module.
 */
#ifndef DNSWARDEN_FETCH_INTERNAL_H
#define DNSWARDEN_FETCH_INTERNAL_H

#include <stdatomic.h>

#include "fetch.h"

struct fetch_opts {
	const char	*ca_file;	/* NULL: the system store */
	unsigned	 timeout_ms;	/* the whole download */
	atomic_bool	*stop;		/* set: cut the download short */
};

enum fetch_outcome {
	FETCH_CHANGED,		/* a new last good copy */
	FETCH_UNCHANGED,	/* 304, or the same bytes */
	FETCH_FAILED,		/* the last good copy stays */
};

/*
 * Download src at now, conditionally on what st says of the last good
 * copy, and replace the copy when the download is a usable list. st is
 * updated (tried, result, and on success fetched, names, validators) and
 * written beside the copy.
 */
enum fetch_outcome fetch_download(const struct blocklist_source *src,
		    const struct fetch_opts *o, time_t now,
		    struct fetch_status *st);

/* Write st for the copy at path (PATH.meta, replaced whole). 0 or -1. */
int	fetch_status_write(const char *path, const struct fetch_status *st);

#endif
