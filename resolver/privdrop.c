/* privdrop: see privdrop.h. */
#include <sys/stat.h>
#include <sys/types.h>
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"

/* Hand a root-owned file or directory to the daemon's user. */
static void
chown_if_root(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;

	if (lstat(path, &st) == 0 && st.st_uid == 0 && uid != 0 &&
	    !S_ISLNK(st.st_mode) && chown(path, uid, gid) == -1)
		log_warn("chown %s", path);
}

/* mkdir -p for the database's directory, owned by the daemon's user. */
static int
prepare_dir(const char *dbpath, uid_t uid, gid_t gid)
{
	char *copy = strdup(dbpath);
	char *dir;

	if (copy == NULL)
		return -1;
	dir = dirname(copy);
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			log_warn("mkdir %s", dir);
		*p = '/';
	}
	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		log_warn("mkdir %s", dir);
		free(copy);
		return -1;
	}
	chown_if_root(dir, uid, gid);
	free(copy);
	/* A database created by an earlier run as root must stay writable. */
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s%s", dbpath, suffix[i]);
		chown_if_root(path, uid, gid);
	}
	return 0;
}

int
privdrop_to_user(const char *user, const char *dbpath)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_warnx("user %s does not exist; running as nobody", user);
		if ((pw = getpwnam("nobody")) == NULL) {
			log_warnx("user nobody does not exist");
			return -1;
		}
	}
	if (dbpath != NULL)
		prepare_dir(dbpath, pw->pw_uid, pw->pw_gid);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		log_warn("dropping privileges to %s", pw->pw_name);
		return -1;
	}
	log_info("running as user %s", pw->pw_name);
	return 0;
}
