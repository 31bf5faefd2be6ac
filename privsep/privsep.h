/*
 * privsep: reading the configuration after the privilege drop.
 *
 * Started as root, serve forks a small helper before it gives up root.
 * The helper keeps only the right to read files (it runs as the service
 * user with CAP_DAC_READ_SEARCH and nothing else) and waits on a
 * socketpair. On a reload the daemon asks it to load the configuration
 * named at start; the helper does, with the same loaders, and remembers
 * each file that load opened. The daemon then loads as usual, and each
 * file it opens (fileopen.h) is opened by the helper and passed back as a
 * descriptor (SCM_RIGHTS), but only if the helper's own load opened it:
 * the helper never opens a path the configuration does not name. The
 * daemon never opens a configuration path itself.
 */
#ifndef DNSWARDEN_PRIVSEP_H
#define DNSWARDEN_PRIVSEP_H

#include <stddef.h>
#include <sys/types.h>

struct privsep;

/*
 * Fork the helper for the configuration at config_path. When root, the
 * helper becomes uid/gid with CAP_DAC_READ_SEARCH only; otherwise it keeps
 * the caller's ids. Call before any thread starts. Returns the handle, or
 * NULL after logging why.
 */
struct privsep	*privsep_start(const char *config_path, uid_t uid, gid_t gid);

/*
 * From now on this process opens the files its loaders read through the
 * helper (fileopen_set_opener()). Loads between privsep_reload_begin()
 * and privsep_reload_end() get the files; outside them every open fails.
 */
void		 privsep_install(struct privsep *ps);

/*
 * Ask the helper to load the configuration and remember the files it
 * names. Returns 0, or -1 with a message in err (the helper is gone).
 */
int		 privsep_reload_begin(struct privsep *ps, char *err,
		    size_t errlen);

/* The reload's loading is over: the helper forgets the files. */
void		 privsep_reload_end(struct privsep *ps);

/* Close the channel, wait for the helper to exit, free ps (NULL is fine). */
void		 privsep_stop(struct privsep *ps);

#endif
