/*
 * privdrop: the user serve becomes, what must be true of the database for
 * that user, and the switch itself. See privsep.h.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocklist.h"
#include "diag.h"
#include "fileopen.h"
#include "log.h"
#include "privsep.h"

#define PD_PROBE_MAX	64	/* paths one probe checks */

int
privsep_user_find(const struct config *cfg, struct privsep_user *u,
    char *err, size_t errlen)
{
	const char *name = cfg->server.user;
	struct passwd *pw;

	memset(u, 0, sizeof(*u));
	if (geteuid() != 0) {
		/* Not root: serve switches to no one; checks are as us. */
		pw = getpwuid(geteuid());
		snprintf(u->name, sizeof(u->name), "%s", pw ? pw->pw_name :
		    "(this user)");
		u->uid = geteuid();
		u->gid = getegid();
		return 0;
	}
	errno = 0;
	if ((pw = getpwnam(name)) == NULL &&
	    strcmp(name, CONFIG_USER_DEFAULT) != 0) {
		snprintf(err, errlen, "%s: server.user %s: no such user%s%s",
		    cfg->path, name, errno ? ": " : "",
		    errno ? strerror(errno) : "");
		return -1;
	}
	if (pw == NULL) {
		u->fallback = true;
		if ((pw = getpwnam("nobody")) == NULL) {
			snprintf(err, errlen, "neither user %s nor nobody"
			    " exists; create %s (meson install does)", name,
			    name);
			return -1;
		}
	}
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return 0;
}

void
privsep_user_warn(const struct privsep_user *u)
{
	if (u->fallback)
		log_warnx("user %s does not exist; running as nobody, which"
		    " other services share: any of them could alter or delete"
		    " the record of blocked attempts and read what dnswarden"
		    " reads. Create the user (meson install and scripts/run.sh"
		    " do)", CONFIG_USER_DEFAULT);
}

/*
 * access(2) for each path as user u: errs[i] is 0 or the errno. As root
 * a child process becomes u first, so groups and ACLs count as they will.
 */
static int
pd_probe(const struct privsep_user *u, const char *const *paths,
    const int *modes, int *errs, size_t n)
{
	int pfd[2];
	pid_t pid;

	if (geteuid() != 0 || u->uid == 0) {
		for (size_t i = 0; i < n; i++)
			errs[i] = access(paths[i], modes[i]) == 0 ? 0 : errno;
		return 0;
	}
	if (pipe2(pfd, O_CLOEXEC) == -1)
		return -1;
	fflush(stderr);
	if ((pid = fork()) == -1) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		if (setgroups(1, &u->gid) == -1 ||
		    setresgid(u->gid, u->gid, u->gid) == -1 ||
		    setresuid(u->uid, u->uid, u->uid) == -1)
			_exit(1);
		for (size_t i = 0; i < n; i++)
			errs[i] = access(paths[i], modes[i]) == 0 ? 0 : errno;
		_exit(write(pfd[1], errs, n * sizeof(*errs)) ==
		    (ssize_t)(n * sizeof(*errs)) ? 0 : 1);
	}
	close(pfd[1]);
	ssize_t got = read(pfd[0], errs, n * sizeof(*errs));
	close(pfd[0]);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
	return got == (ssize_t)(n * sizeof(*errs)) ? 0 : -1;
}

static void
pd_report(privsep_report_fn fn, void *ctx, bool error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
pd_report(privsep_report_fn fn, void *ctx, bool error, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(ctx, error, msg);
}

/*
 * Create the missing levels of dir as root: the upper ones 0755 and root's,
 * the last 0750 and u's. They are dnswarden's own; nothing that existed
 * before changes owner. Returns 0, or -1 with the failing level in bad.
 */
static int
pd_make_dir(const char *dir, const struct privsep_user *u, char *bad,
    size_t badlen)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char saved = *s;
		*s = '\0';
		bool last = saved == '\0';
		if (mkdir(p, last ? 0750 : 0755) == 0) {
			if (last && geteuid() == 0 &&
			    chown(p, u->uid, u->gid) == -1)
				goto fail;
			log_info("created directory %s%s%s", p,
			    last && geteuid() == 0 ? " for user " : "",
			    last && geteuid() == 0 ? u->name : "");
		} else if (errno != EEXIST)
			goto fail;
		if (last)
			return 0;
		*s = saved;
	}
fail:
	snprintf(bad, badlen, "%s: %s", p, strerror(errno));
	return -1;
}

/* The nearest existing ancestor of dir must be a directory. */
static int
pd_missing_dir(const char *dir, const struct privsep_user *u, bool create,
    privsep_report_fn fn, void *ctx)
{
	char p[PATH_MAX], bad[PATH_MAX + 64];
	struct stat st;
	char *slash;

	/* The nearest ancestor that exists ("/" at worst). */
	snprintf(p, sizeof(p), "%s", dir);
	while ((slash = strrchr(p, '/')) != NULL) {
		slash[slash == p] = '\0';
		if (stat(p, &st) == 0 || slash == p)
			break;
	}
	if (stat(p, &st) == 0 && !S_ISDIR(st.st_mode)) {
		pd_report(fn, ctx, true, "log.database: %s is not a directory",
		    p);
		return 1;
	}
	/* Not root, serve makes it as itself: it needs to write there. */
	if (!create && geteuid() != 0 && access(p, W_OK | X_OK) == -1) {
		pd_report(fn, ctx, true, "log.database: directory %s does not"
		    " exist, and user %s cannot create it in %s (%s); create"
		    " it as root: install -d -o %s -m 0750 %s", dir, u->name,
		    p, strerror(errno), u->name, dir);
		return 1;
	}
	if (!create) {
		pd_report(fn, ctx, false, "log.database: directory %s does not"
		    " exist; serve creates it for user %s", dir, u->name);
		return 0;
	}
	if (pd_make_dir(dir, u, bad, sizeof(bad)) == -1) {
		pd_report(fn, ctx, true, "log.database: cannot create"
		    " directory %s; create it as root: install -d -o %s -m 0750"
		    " %s", bad, u->name, dir);
		return 1;
	}
	return 0;
}

/*
 * Where the writer will find dir: by name, or, when u cannot reach it by
 * name (a directory above is closed to it, as a clone under /root is),
 * through a descriptor opened now: /proc/self/fd/N leads to the directory
 * itself, whatever lies above it. via gets that path.
 */
static int
pd_reach(const char *dir, const struct privsep_user *u, int *dirfd,
    char *via, size_t vialen)
{
	const char *paths[1] = { dir };
	int modes[1] = { X_OK }, err;

	*dirfd = -1;
	snprintf(via, vialen, "%s", dir);
	if (geteuid() != 0 || pd_probe(u, paths, modes, &err, 1) == -1 ||
	    err == 0)
		return 0;
	if ((*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	snprintf(via, vialen, "/proc/self/fd/%d", *dirfd);
	return 0;
}

/* The database file and SQLite's files beside it, as u, through via. */
static int
pd_probe_db(const char *dir, const char *via, const char *base,
    const struct privsep_user *u, privsep_report_fn fn, void *ctx)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char files[4][PATH_MAX], names[4][PATH_MAX];
	const char *paths[5] = { via }, *shown[5] = { dir };
	int modes[5] = { W_OK | X_OK }, errs[5];
	size_t n = 1;
	int bad = 0;

	for (size_t i = 0; i < 4; i++) {
		if (snprintf(files[n - 1], sizeof(files[0]), "%s/%s%s", via,
		    base, sfx[i]) >= (int)sizeof(files[0]) ||
		    snprintf(names[n - 1], sizeof(names[0]), "%s/%s%s", dir,
		    base, sfx[i]) >= (int)sizeof(names[0])) {
			pd_report(fn, ctx, true, "log.database: %s: path too"
			    " long", dir);
			return 1;
		}
		if (access(files[n - 1], F_OK) == 0 || (geteuid() != 0 &&
		    errno != ENOENT)) {
			paths[n] = files[n - 1];
			shown[n] = names[n - 1];
			modes[n++] = R_OK | W_OK;
		}
	}
	if (pd_probe(u, paths, modes, errs, n) == -1) {
		pd_report(fn, ctx, true, "log.database: cannot check %s as"
		    " user %s: %s", dir, u->name, strerror(errno));
		return 1;
	}
	if (errs[0] != 0) {
		pd_report(fn, ctx, true, "log.database: user %s cannot create"
		    " files in %s (%s); run \"chown %s %s\" if that directory"
		    " is for the database alone, or set log.database to a file"
		    " in a directory of its own such as /var/lib/dnswarden",
		    u->name, dir, strerror(errs[0]), u->name, dir);
		bad++;
	}
	for (size_t i = 1; i < n; i++) {
		if (errs[i] == 0)
			continue;
		pd_report(fn, ctx, true, "log.database: user %s cannot write"
		    " %s (%s); run \"chown %s %s\"", u->name, shown[i],
		    strerror(errs[i]), u->name, shown[i]);
		bad++;
	}
	return bad;
}

/* The directory part of db ("." for a bare name) into dir. */
static const char *
pd_split(const char *db, char *dir, size_t dirlen)
{
	const char *slash = strrchr(db, '/');

	if (slash == NULL) {
		snprintf(dir, dirlen, ".");
		return db;
	}
	snprintf(dir, dirlen, "%.*s", slash == db ? 1 : (int)(slash - db),
	    db);
	return slash + 1;
}

int
privsep_check_database(const struct config *cfg,
    const struct privsep_user *u, bool create, privsep_report_fn fn,
    void *ctx, struct privsep_db *out)
{
	const char *db = cfg->log.database, *base;
	char dir[PATH_MAX], via[PATH_MAX];
	struct stat st;
	int dirfd, bad;

	if (out != NULL) {
		out->dirfd = -1;
		snprintf(out->path, sizeof(out->path), "%s", db ? db : "");
	}
	if (db == NULL)
		return 0;
	if (stat(db, &st) == 0 && !S_ISREG(st.st_mode)) {
		pd_report(fn, ctx, true, "log.database: %s is %s, not a file",
		    db, S_ISDIR(st.st_mode) ? "a directory" : "not a regular"
		    " file");
		return 1;
	}
	base = pd_split(db, dir, sizeof(dir));
	if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
		pd_report(fn, ctx, true, "log.database: %s is not a directory",
		    dir);
		return 1;
	}
	if (stat(dir, &st) == -1) {
		bad = pd_missing_dir(dir, u, create, fn, ctx);
		if (bad != 0 || !create)
			return bad;
	}
	if (pd_reach(dir, u, &dirfd, via, sizeof(via)) == -1) {
		pd_report(fn, ctx, true, "log.database: cannot open %s: %s",
		    dir, strerror(errno));
		return 1;
	}
	bad = pd_probe_db(dir, via, base, u, fn, ctx);
	if (dirfd != -1 && bad == 0)
		pd_report(fn, ctx, false, "log.database: user %s cannot reach"
		    " %s by name (a directory above it is closed to it); the"
		    " writer reaches it through a descriptor opened before the"
		    " drop", u->name, dir);
	if (out != NULL && dirfd != -1 && bad == 0 &&
	    snprintf(out->path, sizeof(out->path), "%s/%s", via, base) <
	    (int)sizeof(out->path))
		out->dirfd = dirfd;
	else if (dirfd != -1)
		close(dirfd);
	return bad;
}

/* Each file the loaders open, recorded (fileopen_fn). */
struct pd_files {
	char	*paths[PD_PROBE_MAX];
	size_t	 n;
};

static int
pd_record(const char *path, void *ctx)
{
	struct pd_files *f = ctx;

	if (f->n < PD_PROBE_MAX && (f->paths[f->n] = strdup(path)) != NULL)
		f->n++;
	return fileopen_direct(path, NULL);
}

int
privsep_check_readable(const char *config_path,
    const struct privsep_user *u, privsep_report_fn fn, void *ctx)
{
	struct pd_files f = { .n = 0 };
	int modes[PD_PROBE_MAX], errs[PD_PROBE_MAX], bad = 0;
	struct config *cfg;
	struct diag d;

	diag_init(&d);
	fileopen_set_opener(pd_record, &f);
	if ((cfg = config_load(config_path, &d)) != NULL)
		blocklist_free(blocklist_load(cfg, &d));
	fileopen_set_opener(NULL, NULL);
	config_free(cfg);
	diag_free(&d);
	for (size_t i = 0; i < f.n; i++)
		modes[i] = R_OK;
	if (pd_probe(u, (const char *const *)f.paths, modes, errs, f.n) == 0)
		for (size_t i = 0; i < f.n; i++) {
			if (errs[i] == 0)
				continue;
			pd_report(fn, ctx, geteuid() != 0, "%s: not readable"
			    " by user %s (%s): serve started as root reads it"
			    " through its helper, but run as %s (the systemd"
			    " unit) it cannot; run \"chgrp %s %s\" and"
			    " \"chmod g+r %s\"", f.paths[i], u->name,
			    strerror(errs[i]), u->name, u->name, f.paths[i],
			    f.paths[i]);
			bad++;
		}
	for (size_t i = 0; i < f.n; i++)
		free(f.paths[i]);
	return bad;
}

/* No capability left: also those systemd gave (AmbientCapabilities=). */
static int
pd_caps_clear(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[2] = { { 0 } };

	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	return syscall(SYS_capset, &hdr, caps) == -1 ? -1 : 0;
}

int
privsep_drop(const struct privsep_user *u)
{
	if (geteuid() != 0) {
		if (pd_caps_clear() == -1)
			log_warn("cannot give up capabilities");
		return 0;
	}
	if (setgroups(1, &u->gid) == -1 ||
	    setresgid(u->gid, u->gid, u->gid) == -1 ||
	    setresuid(u->uid, u->uid, u->uid) == -1) {
		log_warn("dropping privileges to %s", u->name);
		return -1;
	}
	log_info("running as user %s", u->name);
	return 0;
}
