/* privsep: see privsep.h. */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocklist.h"
#include "config.h"
#include "diag.h"
#include "fileopen.h"
#include "log.h"
#include "privsep.h"

/* Requests, one SOCK_SEQPACKET message each: a byte, then the path. */
#define PS_LOAD		'L'	/* load the configuration; remember files */
#define PS_OPEN		'O'	/* open one of them: errno, and the fd */
#define PS_DONE		'D'	/* forget them */
#define PS_MSG_MAX	(PATH_MAX + 1)

struct privsep {
	int		 fd;
	pid_t		 pid;
	bool		 loading;	/* between reload_begin and _end */
};

/* The files the helper's own load opened: the only ones it hands out. */
struct ps_named {
	char		**paths;	/* as the loaders named them */
	size_t		  n;
};

/* ---- the helper ---- */

static void
ps_named_clear(struct ps_named *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->paths[i]);
	free(nm->paths);
	memset(nm, 0, sizeof(*nm));
}

/* fileopen_fn while the helper loads: open, and remember the path. */
static int
ps_record_open(const char *path, void *ctx)
{
	struct ps_named *nm = ctx;
	char **p;

	if ((p = reallocarray(nm->paths, nm->n + 1, sizeof(*p))) == NULL ||
	    (p[nm->n] = strdup(path)) == NULL) {
		if (p != NULL)
			nm->paths = p;
		errno = ENOMEM;
		return -1;
	}
	nm->paths = p;
	nm->n++;
	return fileopen_direct(path, NULL);
}

/* Load as the daemon will, to learn which files the configuration names. */
static void
ps_helper_load(const char *config_path, struct ps_named *nm)
{
	struct diag d;
	struct config *cfg;

	ps_named_clear(nm);
	diag_init(&d);		/* the daemon's own load reports the errors */
	fileopen_set_opener(ps_record_open, nm);
	if ((cfg = config_load(config_path, &d)) != NULL)
		blocklist_free(blocklist_load(cfg, &d));
	fileopen_set_opener(NULL, NULL);
	config_free(cfg);
	diag_free(&d);
}

/*
 * Exactly as the loaders named it: a realpath() match would let the daemon
 * name the target of a symlink it planted in a directory it can write.
 */
static bool
ps_helper_named(const struct ps_named *nm, const char *path)
{
	for (size_t i = 0; i < nm->n; i++)
		if (strcmp(nm->paths[i], path) == 0)
			return true;
	return false;
}

/* Raise or lower CAP_DAC_READ_SEARCH in the effective set (kept permitted). */
static void
ps_cap_effective(bool on)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[2];

	if (syscall(SYS_capget, &hdr, caps) == -1)
		return;
	caps[0].effective = on ? caps[0].permitted &
	    (1u << CAP_DAC_READ_SEARCH) : 0;
	caps[1].effective = 0;
	syscall(SYS_capset, &hdr, caps);
}

/*
 * Open a named file for the daemon. First without the capability: what
 * the service user can read itself, through any symlinks, gives the daemon
 * nothing new. Only a file it cannot read is opened with the capability,
 * and then through no symlink at all: a symlink the daemon planted in a
 * directory it can write must not lead the helper to another file.
 */
static int
ps_helper_open_fd(const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	int fd, saved;

	ps_cap_effective(false);
	fd = fileopen_direct(path, NULL);
	saved = errno;
	ps_cap_effective(true);
	if (fd != -1 || saved != EACCES) {
		errno = saved;
		return fd;
	}
	return fileopen_regular((int)syscall(SYS_openat2, AT_FDCWD, path,
	    &how, sizeof(how)));
}

/* Answer an errno and, when it is 0, the descriptor. */
static int
ps_send(int sock, int32_t err, int fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { &err, sizeof(err) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd != -1) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == -1 ? -1 : 0;
}

static int
ps_helper_open(int sock, const struct ps_named *nm, const char *path)
{
	int fd, rc;

	if (!ps_helper_named(nm, path))
		return ps_send(sock, EPERM, -1);
	if ((fd = ps_helper_open_fd(path)) == -1)
		return ps_send(sock, errno, -1);
	rc = ps_send(sock, 0, fd);
	close(fd);
	return rc;
}

static void
ps_helper_loop(int sock, const char *config_path)
{
	struct ps_named nm = { 0 };
	char msg[PS_MSG_MAX + 1];
	ssize_t n;
	int rc = 0;

	while (rc == 0 && (n = recv(sock, msg, PS_MSG_MAX, 0)) > 0) {
		msg[n] = '\0';
		switch (msg[0]) {
		case PS_LOAD:
			ps_helper_load(config_path, &nm);
			rc = ps_send(sock, 0, -1);
			break;
		case PS_OPEN:
			rc = ps_helper_open(sock, &nm, msg + 1);
			break;
		case PS_DONE:
			ps_named_clear(&nm);
			break;
		default:
			rc = -1;	/* not ours: stop */
		}
	}
	ps_named_clear(&nm);
}

/*
 * Become uid/gid keeping CAP_DAC_READ_SEARCH alone: a bug in the loaders
 * can then read files, not act as root. Not being root, the daemon cannot
 * ptrace the helper: the helper holds a capability it lacks.
 */
static int
ps_helper_drop(uid_t uid, gid_t gid)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[2] = { { 0 } };

	if (geteuid() != 0)
		return 0;
	caps[0].effective = caps[0].permitted = 1u << CAP_DAC_READ_SEARCH;
	if (prctl(PR_SET_KEEPCAPS, 1) == -1 || setgroups(1, &gid) == -1 ||
	    setresgid(gid, gid, gid) == -1 || setresuid(uid, uid, uid) == -1 ||
	    syscall(SYS_capset, &hdr, caps) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_warn("privsep: helper cannot drop to uid %u keeping"
		    " CAP_DAC_READ_SEARCH", (unsigned)uid);
		return -1;
	}
	return 0;
}

static void __attribute__((noreturn))
ps_helper_main(int sock, const char *config_path, uid_t uid, gid_t gid)
{
	pid_t daemon = getppid();

	if (ps_helper_drop(uid, gid) == -1)
		_exit(1);
	/* Gone with the daemon, whichever way it ends (after the drop: a
	 * change of user clears this setting). EOF on sock says it too. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != daemon)
		_exit(0);
	ps_helper_loop(sock, config_path);
	/* _exit: the daemon's heap is not the helper's to check or free. */
	_exit(0);
}

/* ---- the daemon's side ---- */

struct privsep *
privsep_start(const char *config_path, uid_t uid, gid_t gid)
{
	struct privsep *ps;
	int sv[2];

	if ((ps = calloc(1, sizeof(*ps))) == NULL) {
		log_warn("privsep");
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("privsep: socketpair");
		free(ps);
		return NULL;
	}
	fflush(stderr);
	if ((ps->pid = fork()) == -1) {
		log_warn("privsep: fork");
		close(sv[0]);
		close(sv[1]);
		free(ps);
		return NULL;
	}
	if (ps->pid == 0) {
		close(sv[0]);
		ps_helper_main(sv[1], config_path, uid, gid);
	}
	close(sv[1]);
	ps->fd = sv[0];
	return ps;
}

/* Send one request: type, then the path (may be empty). */
static int
ps_request(struct privsep *ps, char type, const char *path)
{
	char msg[PS_MSG_MAX];
	size_t len = strlen(path);

	if (len + 1 > sizeof(msg)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	msg[0] = type;
	memcpy(msg + 1, path, len);
	return send(ps->fd, msg, len + 1, MSG_NOSIGNAL) == -1 ? -1 : 0;
}

/* Receive an answer: its errno, and the descriptor that came with it. */
static int32_t
ps_reply(struct privsep *ps, int *fdp, bool want_fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	int32_t err;
	struct iovec iov = { &err, sizeof(err) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	ssize_t n;

	*fdp = -1;
	n = recvmsg(ps->fd, &msg, MSG_CMSG_CLOEXEC);
	if (n != (ssize_t)sizeof(err))
		return n == -1 ? errno : EPIPE;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL;
	    c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fdp, CMSG_DATA(c), sizeof(int));
	if (err != 0 && *fdp != -1) {
		close(*fdp);
		*fdp = -1;
	}
	return err == 0 && want_fd && *fdp == -1 ? EPROTO : err;
}

/* fileopen_fn in the daemon: the helper opens. */
static int
ps_open(const char *path, void *ctx)
{
	struct privsep *ps = ctx;
	int32_t err;
	int fd;

	if (!ps->loading) {
		errno = EPERM;
		return -1;
	}
	if (ps_request(ps, PS_OPEN, path) == -1)
		return -1;
	if ((err = ps_reply(ps, &fd, true)) != 0) {
		errno = err;
		return -1;
	}
	return fd;
}

void
privsep_install(struct privsep *ps)
{
	fileopen_set_opener(ps_open, ps);
}

int
privsep_reload_begin(struct privsep *ps, char *err, size_t errlen)
{
	int32_t e;
	int fd;

	if (ps_request(ps, PS_LOAD, "") == -1)
		e = errno;
	else
		e = ps_reply(ps, &fd, false);
	if (e != 0) {
		snprintf(err, errlen, "the helper that reads the configuration"
		    " is gone (%s); restart dnswarden", strerror(e));
		return -1;
	}
	ps->loading = true;
	return 0;
}

void
privsep_reload_end(struct privsep *ps)
{
	ps->loading = false;
	ps_request(ps, PS_DONE, "");
}

void
privsep_stop(struct privsep *ps)
{
	if (ps == NULL)
		return;
	close(ps->fd);
	while (waitpid(ps->pid, NULL, 0) == -1 && errno == EINTR)
		;
	free(ps);
}
