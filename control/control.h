/*
 * control: the running daemon's control channel and its service manager.
 *
 * A Unix socket (server.control_socket, mode 0660, owned by root and the
 * dnswarden group) takes one request per connection, a line such as
 * "reload" or "flush example.com", and gives one answer: "ok" or "error"
 * on the first line, then text, then the daemon closes the connection.
 * "dnswarden ctl" is the client. The socket lives on the main event loop;
 * what a command does is the daemon's business (a handler in main.c).
 *
 * The service manager is told how start-up and reloads go (sd_notify(3):
 * READY=1, RELOADING=1, STATUS=...); without NOTIFY_SOCKET that is a no-op.
 */
#ifndef DNSWARDEN_CONTROL_H
#define DNSWARDEN_CONTROL_H

#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

/* The longest request line, and the longest NAME in "flush NAME". */
#define CONTROL_REQUEST_MAX	512

enum control_cmd {
	CONTROL_RELOAD,		/* reload the configuration and blocklists */
	CONTROL_FLUSH,		/* empty the cache, or NAME and below */
	CONTROL_STATS,		/* the counters */
	CONTROL_UPSTREAMS,	/* each upstream's state */
	CONTROL_STATUS,		/* version, uptime, what is loaded */
};

/*
 * Parse one request line (len bytes of buf, without its newline; outside
 * input). On success fills *cmd and arg (NUL-terminated, empty when the
 * command has no argument; argcap bytes) and returns 0. Otherwise returns
 * -1 with a message for the client in why.
 */
int	control_request_parse(const char *buf, size_t len,
	    enum control_cmd *cmd, char *arg, size_t argcap,
	    const char **why);

struct control;
struct control_req;

/*
 * Called on the main loop for each parsed request. The handler must
 * answer exactly once with control_reply(), now or later (an answer given
 * later, after the client went away, is dropped).
 */
typedef void	(*control_handler_fn)(void *arg, struct control_req *req,
		    enum control_cmd cmd, const char *argument);

/*
 * Listen on the Unix socket at path (made 0660, owner root when run as
 * root, group gid; its directory is created 0755 if missing). A socket
 * file nobody answers on is replaced; one where a daemon answers is an
 * error. Returns NULL after logging one line saying why.
 */
struct control	*control_listen(struct event_base *base, const char *path,
		    gid_t gid, control_handler_fn fn, void *arg);

/* Answer req: ok or not, and text (may be empty); releases req. */
void		 control_reply(struct control_req *req, bool ok,
		    const char *text);

/* Stop listening, drop open connections, unlink the socket if we can. */
void		 control_free(struct control *c);

/*
 * The group the socket is given: "dnswarden" when that group exists,
 * otherwise the primary group of user (server.user), otherwise 0.
 */
gid_t		 control_group(const char *user);

/*
 * Send request (a line without newline) to the daemon at path and wait up
 * to timeout_ms for its answer. Returns 0 with *ok and *answer (the text
 * after the status line; the caller frees it), or -1 with why filled in
 * (cannot connect, no answer).
 */
int		 control_request(const char *path, const char *request,
		    int timeout_ms, bool *ok, char **answer, char *why,
		    size_t whylen);

/* dnswarden ctl [-c FILE] COMMAND [NAME]: the client command. */
int		 ctl_cmd(int argc, char **argv);

/* sd_notify(3) with printf formatting; nothing when not under systemd. */
void		 control_notify(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2)));

#endif
