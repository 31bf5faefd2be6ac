/*
 * frontend: one event loop's DNS service. It owns the UDP and TCP
 * listening sockets, the cache and the forwarder of that loop, and runs
 * each query through the same steps: parse, access control, rate limit,
 * blocklist, cache, upstream. Several frontends (one per thread, each with
 * SO_REUSEPORT sockets) can share one blocklist and one attempt log.
 */
#ifndef DNSWARDEN_FRONTEND_H
#define DNSWARDEN_FRONTEND_H

#include <event2/event.h>

#include "attemptlog.h"
#include "blocklist.h"
#include "config.h"
#include "counters.h"

struct frontend;

struct ratelimit;

/*
 * A frontend on base for cfg, matching queries against bl, limiting
 * clients with rl (shared by every frontend) and logging to log (may be
 * NULL). Counters go to ctr. The caller owns bl, rl, log and ctr and
 * keeps them until frontend_free(). The sockets are not open yet. NULL if
 * out of memory.
 */
struct frontend	*frontend_new(struct event_base *base, const struct config *cfg,
		    const struct blocklist *bl, struct ratelimit *rl,
		    struct attemptlog *log, struct counters *ctr);

/*
 * Bind UDP and TCP on every server.listen address (with SO_REUSEPORT when
 * reuseport is set). Returns 0, or -1 after logging which address failed.
 */
int		 frontend_listen(struct frontend *fe, bool reuseport);

/*
 * Take a reloaded configuration and blocklist. The listening addresses
 * stay as they were bound (a change needs a restart, and is logged). The
 * old cfg and bl may be freed once this returns.
 */
void		 frontend_reconfigure(struct frontend *fe,
		    const struct config *cfg, const struct blocklist *bl);

/* Start logging attempts to log (opened after the privilege drop). */
void		 frontend_set_log(struct frontend *fe, struct attemptlog *log);

/* Close every socket and connection, answer nobody, release fe. */
void		 frontend_free(struct frontend *fe);

#endif
