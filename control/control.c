/* control: the daemon's side of the control channel; see control.h. */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "control.h"
#include "log.h"

#define CONTROL_READ_TIMEOUT_S	5	/* a client sends its line at once */
#define CONTROL_MAX_CONNS	16	/* more wait in the listen backlog */

struct control_req {
	struct control		*c;
	struct bufferevent	*bev;	/* NULL once the client went away */
	struct control_req	*next;
	bool			 dispatched;	/* handler owns the answer */
};

struct control {
	struct event_base	*base;
	struct evconnlistener	*listener;
	char			*path;
	control_handler_fn	 fn;
	void			*arg;
	struct control_req	*reqs;	/* every open connection */
	unsigned		 nreqs;
};

static const struct {
	const char		*name;
	enum control_cmd	 cmd;
	bool			 arg_ok;	/* takes an optional argument */
} control_cmds[] = {
	{ "reload",	CONTROL_RELOAD,		false },
	{ "flush",	CONTROL_FLUSH,		true },
	{ "stats",	CONTROL_STATS,		false },
	{ "upstreams",	CONTROL_UPSTREAMS,	false },
	{ "status",	CONTROL_STATUS,		false },
};

int
control_request_parse(const char *buf, size_t len, enum control_cmd *cmd,
    char *arg, size_t argcap, const char **why)
{
	size_t wlen = 0, astart, alen;

	if (len > 0 && buf[len - 1] == '\r')
		len--;
	while (wlen < len && buf[wlen] != ' ')
		wlen++;
	astart = wlen;
	while (astart < len && buf[astart] == ' ')
		astart++;
	alen = len - astart;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			*why = "control characters in the request";
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof(control_cmds) / sizeof(control_cmds[0]);
	    i++) {
		if (strlen(control_cmds[i].name) != wlen ||
		    memcmp(control_cmds[i].name, buf, wlen) != 0)
			continue;
		if (alen > 0 && !control_cmds[i].arg_ok) {
			*why = "this command takes no argument";
			return -1;
		}
		if (alen >= argcap || memchr(buf + astart, ' ', alen) != NULL) {
			*why = "one argument, a domain name, expected";
			return -1;
		}
		memcpy(arg, buf + astart, alen);
		arg[alen] = '\0';
		*cmd = control_cmds[i].cmd;
		return 0;
	}
	*why = "unknown command (reload, flush [NAME], stats, upstreams, "
	    "status)";
	return -1;
}

static void
req_free(struct control_req *r)
{
	struct control *c = r->c;
	struct control_req **pp;

	for (pp = &c->reqs; *pp != r; pp = &(*pp)->next)
		;
	*pp = r->next;
	c->nreqs--;
	if (r->bev != NULL)
		bufferevent_free(r->bev);
	free(r);
	if (c->listener != NULL && c->nreqs < CONTROL_MAX_CONNS)
		evconnlistener_enable(c->listener);
}

/* The client went away or timed out; a handler at work answers later. */
static void
req_gone(struct control_req *r)
{
	if (!r->dispatched) {
		req_free(r);
		return;
	}
	bufferevent_free(r->bev);
	r->bev = NULL;
}

static void
req_written_cb(struct bufferevent *bev, void *arg)
{
	req_free(arg);
}

static void
req_event_cb(struct bufferevent *bev, short what, void *arg)
{
	req_gone(arg);
}

void
control_reply(struct control_req *r, bool ok, const char *text)
{
	size_t n = strlen(text);

	r->dispatched = false;
	if (r->bev == NULL) {
		req_free(r);
		return;
	}
	evbuffer_add_printf(bufferevent_get_output(r->bev), "%s\n",
	    ok ? "ok" : "error");
	evbuffer_add(bufferevent_get_output(r->bev), text, n);
	if (n > 0 && text[n - 1] != '\n')
		evbuffer_add(bufferevent_get_output(r->bev), "\n", 1);
	/* Closed once the answer is out: the client reads to the end. */
	bufferevent_setcb(r->bev, NULL, req_written_cb, req_event_cb, r);
	bufferevent_enable(r->bev, EV_WRITE);
}

static void
req_read_cb(struct bufferevent *bev, void *arg)
{
	struct control_req *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char line[CONTROL_REQUEST_MAX + 1], name[CONTROL_REQUEST_MAX];
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL,
	    EVBUFFER_EOL_LF);
	enum control_cmd cmd;
	const char *why;

	if (eol.pos == -1) {
		if (evbuffer_get_length(in) > CONTROL_REQUEST_MAX) {
			bufferevent_disable(bev, EV_READ);
			control_reply(r, false, "request too long");
		}
		return;
	}
	bufferevent_disable(bev, EV_READ);
	if ((size_t)eol.pos > CONTROL_REQUEST_MAX) {
		control_reply(r, false, "request too long");
		return;
	}
	evbuffer_remove(in, line, (size_t)eol.pos);
	if (control_request_parse(line, (size_t)eol.pos, &cmd, name,
	    sizeof(name), &why) == -1) {
		control_reply(r, false, why);
		return;
	}
	r->dispatched = true;
	r->c->fn(r->c->arg, r, cmd, name);
}

static void
control_accept_cb(struct evconnlistener *el, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct control *c = arg;
	struct control_req *r = calloc(1, sizeof(*r));
	struct timeval tv = { CONTROL_READ_TIMEOUT_S, 0 };

	if (r == NULL || (r->bev = bufferevent_socket_new(c->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(r);
		close(fd);
		return;
	}
	r->c = c;
	r->next = c->reqs;
	c->reqs = r;
	if (++c->nreqs >= CONTROL_MAX_CONNS)
		evconnlistener_disable(el);
	bufferevent_setcb(r->bev, req_read_cb, NULL, req_event_cb, r);
	bufferevent_set_timeouts(r->bev, &tv, &tv);
	bufferevent_enable(r->bev, EV_READ);
}

/* 0 if something answers at sun: another daemon holds the socket. */
static int
control_probe(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r;

	if (fd == -1)
		return -1;
	r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	return r;
}

/* The socket's directory, made if missing (the last component only). */
static void
control_mkdir(const char *path)
{
	char *dir = strdup(path), *slash;

	if (dir == NULL)
		return;
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			log_warn("control socket: mkdir %s", dir);
	}
	free(dir);
}

/* A bound, listening socket at path with mode 0660 and group gid. */
static int
control_socket_open(const char *path, gid_t gid)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("control socket %s: path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	control_mkdir(path);
	if (control_probe(&sun) == 0) {
		log_warnx("control socket %s is in use: is another dnswarden "
		    "running?", path);
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		log_warn("control socket %s: cannot replace it", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_warn("control socket");
		return -1;
	}
	/* Never wider than 0660, not even for a moment. */
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		log_warn("control socket %s: bind", path);
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(path, 0660) == -1 ||
	    (geteuid() == 0 && chown(path, 0, gid) == -1)) {
		log_warn("control socket %s: cannot set its owner and mode",
		    path);
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

struct control *
control_listen(struct event_base *base, const char *path, gid_t gid,
    control_handler_fn fn, void *arg)
{
	struct control *c = calloc(1, sizeof(*c));
	int fd;

	if (c == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		log_warnx("control socket: out of memory");
		return NULL;
	}
	c->base = base;
	c->fn = fn;
	c->arg = arg;
	if ((fd = control_socket_open(path, gid)) == -1) {
		free(c->path);
		free(c);
		return NULL;
	}
	c->listener = evconnlistener_new(base, control_accept_cb, c,
	    LEV_OPT_CLOSE_ON_FREE, 16, fd);
	if (c->listener == NULL) {
		log_warnx("control socket %s: cannot listen", path);
		close(fd);
		unlink(path);
		free(c->path);
		free(c);
		return NULL;
	}
	return c;
}

void
control_free(struct control *c)
{
	if (c == NULL)
		return;
	evconnlistener_free(c->listener);
	c->listener = NULL;
	while (c->reqs != NULL) {
		c->reqs->dispatched = false;
		req_free(c->reqs);
	}
	/* After the privilege drop the directory may not let us: the next
	 * start replaces the stale socket then. */
	unlink(c->path);
	free(c->path);
	free(c);
}

gid_t
control_group(const char *user)
{
	struct group *gr = getgrnam("dnswarden");
	struct passwd *pw;

	if (gr != NULL)
		return gr->gr_gid;
	if (user != NULL && (pw = getpwnam(user)) != NULL)
		return pw->pw_gid;
	return 0;
}
