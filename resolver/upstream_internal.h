/*
 * upstream_internal: what upstream.c takes from the system, and the one
 * place it decides that tries timed out, for resolver/upstream_test.c to
 * replace and to drive: a test moves the clock and calls upstream_expire()
 * where the daemon waits for its timer (as Unbound's replay tests let
 * time pass). Not for the daemon's other modules.
 */
#ifndef DNSWARDEN_UPSTREAM_INTERNAL_H
#define DNSWARDEN_UPSTREAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "upstream.h"

struct upstream_sys {
	/* Milliseconds on a clock that never goes back. */
	uint64_t	(*now_ms)(void *arg);
	/* Fill buf with len random bytes; 0, or -1 with errno set. */
	int		(*random)(void *arg, void *buf, size_t len);
	void		*arg;
};

/*
 * Use sys instead of now_ms_monotonic() and getrandom() from now on; sys
 * is copied. Call it before the first upstream_submit(): tries already in
 * flight keep the deadlines of the old clock.
 */
void	upstream_set_sys(struct upstream *up, const struct upstream_sys *sys);

/*
 * Every UDP try whose timeout has passed by up's clock times out: it is
 * counted in upstream_timeouts and moves on to its next upstream (or fails
 * its query when it was the last). up's own timer calls this; a test calls
 * it after moving the clock.
 */
void	upstream_expire(struct upstream *up);

#endif
