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

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

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

/* ---- the user serve runs as (privdrop.c) ---- */

struct privsep_user {
	char	name[64];
	uid_t	uid;
	gid_t	gid;
	bool	fallback;	/* CONFIG_USER_DEFAULT is missing: nobody */
};

/*
 * Look up cfg->server.user into u. When that is the default user
 * (CONFIG_USER_DEFAULT) and it does not exist, u is nobody with
 * u->fallback set. Returns 0, or -1 with a one-line message in err (any
 * other user that does not exist).
 * When not root, u is the caller: serve switches to no one.
 */
int	privsep_user_find(const struct config *cfg, struct privsep_user *u,
	    char *err, size_t errlen);

/* Say why running as nobody is weaker, when u is the fall-back. */
void	privsep_user_warn(const struct privsep_user *u);

/* One problem found by a check: an error, or a note when !error. */
typedef void (*privsep_report_fn)(void *ctx, bool error, const char *msg);

/* Where the writer opens the database (privsep_check_database()). */
struct privsep_db {
	int	dirfd;		/* -1, or the directory, kept open */
	char	path[4096];	/* the database, by name or via dirfd */
};

/*
 * Check that user u can create and write cfg->log.database: the path is
 * not a directory, its directory is one, u can create files in it, and u
 * can read and write the database and SQLite's -wal, -shm and -journal
 * files where they exist. As root a child process becomes u to try, so
 * groups and ACLs count. When u can use the directory but not reach it by
 * name (it lies inside a directory closed to u, as a clone under /root
 * does), the directory is opened now and out->path leads through
 * /proc/self/fd/N to it (out->dirfd stays open for the daemon's life).
 * With create, missing directory levels are made (only the last one is
 * given to u: dnswarden never changes the owner of anything it did not
 * create); without, that they are missing is a note. Each problem goes to
 * fn, one line that names the path and the command that fixes it. out may
 * be NULL. Returns the number of errors.
 */
int	privsep_check_database(const struct config *cfg,
	    const struct privsep_user *u, bool create, privsep_report_fn fn,
	    void *ctx, struct privsep_db *out);

/*
 * Load the configuration at config_path as the loaders do and report each
 * file it names that user u cannot read. As root that is a note (serve's
 * helper reads them), otherwise an error. Returns the number reported.
 */
int	privsep_check_readable(const char *config_path,
	    const struct privsep_user *u, privsep_report_fn fn, void *ctx);

/*
 * As root, become u for good (every thread started later inherits it);
 * otherwise give up every capability (those systemd's
 * AmbientCapabilities= gave, once the sockets are bound). Returns 0, or -1
 * after logging why.
 */
int	privsep_drop(const struct privsep_user *u);

#endif
