/*
 * http_internal: what the console's files share (server.c, auth.c,
 * params.c, api.c, audit.c, metrics.c, pages.c, html.c). Everything here
 * runs on the console's own thread, except http_reconfigure()'s swap.
 */
#ifndef DNSWARDEN_HTTP_INTERNAL_H
#define DNSWARDEN_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sqlite3.h>

#include "http.h"
#include "report.h"

#define HTTP_MAX_CONNECTIONS	64	/* open at once; more wait in accept */
#define HTTP_MAX_HEADERS	8192	/* bytes of request line and headers */
#define HTTP_MAX_BODY		4096	/* bytes: a login is the largest */
/*
 * evhttp's own limits, set above ours: a request between the two reaches
 * our callback and is refused there with a JSON 431 or 413 (libevent 2.1
 * has no hook for the page it writes itself); only one beyond these gets
 * libevent's answer. They also bound what a connection may buffer.
 */
#define HTTP_EVHTTP_MAX_HEADERS	65536
#define HTTP_EVHTTP_MAX_BODY	65536
#define HTTP_TIMEOUT_S		5	/* of inactivity, reading or writing */
#define HTTP_DEADLINE_MS	10000	/* to send a whole request */
#define HTTP_CONN_SLOTS		(HTTP_MAX_CONNECTIONS + 64)
#define HTTP_SESSIONS_MAX	256
#define HTTP_LOCKS_MAX		256	/* remote addresses with failures */
#define HTTP_LOCK_AFTER		5	/* failures before a lock-out */
#define HTTP_LOCK_BASE_MS	60000	/* first lock-out; doubles, to ... */
#define HTTP_LOCK_MAX_MS	900000	/* ... at most 15 minutes */
#define HTTP_LOCK_FORGET_MS	3600000	/* failures older than this count 0 */
#define HTTP_PARAMS_MAX		16
#define HTTP_PARAM_LEN		256	/* longest value, after decoding */
#define HTTP_HEX_ID		64	/* hex digits in a session or CSRF id */
#define HTTP_REPORT_CACHE	16	/* report answers kept while no */
#define HTTP_REPORT_CACHE_COST	10	/* row is added, then for 10 times */
#define HTTP_REPORT_CACHE_MAX_MS 60000	/* what one cost; a minute at most */
#define HTTP_REPORT_CACHE_BUSY_MS 1000	/* renewed within 2 of these: */
					/* kept this long at least */
#define HTTP_REPORT_KEY		1024	/* longest parameter list cached */
#define HTTP_CENTRAL_CONNECT_S	3	/* libpq connect_timeout */
#define HTTP_CENTRAL_QUERY_MS	15000	/* statement_timeout */
/*
 * After a failed connect, central reads answer with its error at once
 * for this long: an unreachable host would otherwise cost every request
 * HTTP_CENTRAL_CONNECT_S of the console's only thread.
 */
#define HTTP_CENTRAL_RETRY_MS	10000
#define HTTP_AUDIT_QUEUE	4096	/* audit rows waiting to be written */
#define HTTP_AUDIT_BATCH	512	/* rows in one transaction at most */
#define HTTP_AUDIT_DETAIL	512	/* bytes of a row's detail kept */
#define HTTP_AUDIT_LINGER_MS	50	/* gather rows this long per commit */

#define ROLE(r)		(1u << (r))
#define ROLES_ANY	(ROLE(HTTP_ROLE_ADMIN) | ROLE(HTTP_ROLE_SECURITY) | \
			    ROLE(HTTP_ROLE_HR) | ROLE(HTTP_ROLE_METRICS))
#define ROLES_READ	(ROLE(HTTP_ROLE_ADMIN) | ROLE(HTTP_ROLE_SECURITY) | \
			    ROLE(HTTP_ROLE_HR))
#define ROLES_SECURITY	(ROLE(HTTP_ROLE_ADMIN) | ROLE(HTTP_ROLE_SECURITY))
#define ROLES_ADMIN	ROLE(HTTP_ROLE_ADMIN)
#define ROLES_METRICS	(ROLE(HTTP_ROLE_ADMIN) | ROLE(HTTP_ROLE_METRICS))

struct http_session {
	char		id[HTTP_HEX_ID + 1];	/* "" when the slot is free */
	char		csrf[HTTP_HEX_ID + 1];
	char		user[65];
	enum http_role	role;
	int64_t		expires_ms;
};

/* Failed logins from one remote address. */
struct http_lock {
	char		addr[48];		/* "" when the slot is free */
	unsigned	failures;
	int64_t		last_ms;		/* last failure */
	int64_t		until_ms;		/* locked out before this */
};

struct http_auth {
	struct http_session	sessions[HTTP_SESSIONS_MAX];
	struct http_lock	locks[HTTP_LOCKS_MAX];
};

/* Decoded query parameters: keys and values are NUL-free valid UTF-8. */
struct http_params {
	size_t		n;
	char		key[HTTP_PARAMS_MAX][32];
	char		value[HTTP_PARAMS_MAX][HTTP_PARAM_LEN + 1];
};

/*
 * One report answer as sent: readers who ask for the same report while
 * the log's version stays the same share one query (see api.c).
 */
struct http_report_cached {
	char		 key[HTTP_REPORT_KEY];	/* "" when the slot is free */
	int64_t		 made_ms;
	uint64_t	 version;		/* the log's, before the query */
	int64_t		 keep_ms;		/* after a change, fresh this long */
	char		*body;
	size_t		 len;
	enum report_format format;
};

/* One audit row waiting for the audit thread (audit.c). */
struct http_audit_row {
	int64_t		ts;
	char		user[65];
	char		role[16];
	char		remote[48];
	char		action[32];
	char		detail[HTTP_AUDIT_DETAIL];
};

/*
 * The audit rows on their way to the database: queued by the console's
 * thread, written by the audit thread in transactions of many rows, so
 * that a read never waits for a commit, its fsync or the attempt
 * writer's lock (each used to cost the whole console that long).
 */
struct http_audit_queue {
	pthread_mutex_t		 mtx;
	pthread_cond_t		 more;		/* rows queued, or stop */
	pthread_cond_t		 done;		/* rows written: room, flush */
	struct http_audit_row	*ring;		/* HTTP_AUDIT_QUEUE slots */
	size_t			 head, len;
	uint64_t		 queued, written;	/* rows ever */
	uint64_t		 flush_upto;	/* a reader waits for these */
	bool			 idle;		/* waiting for a first row */
	bool			 stop;
	bool			 running;
	pthread_t		 thread;
};

/* A configuration and blocklist a reload replaced, to free. */
struct http_retired {
	struct config		*cfg;
	struct blocklist	*bl;
	struct http_retired	*next;
};

/* An open connection; we hold a reference to its bufferevent. */
struct http_conn {
	struct bufferevent	*bev;
	int64_t			 since_ms;	/* accepted, or last request */
};

struct http {
	struct event_base	*base;
	struct evhttp		*evh;
	struct evhttp_bound_socket *bound[8];
	size_t			 nbound;
	struct event		*sweep_ev;	/* closes, deadlines, resumes */
	struct http_conn	 conns[HTTP_CONN_SLOTS];
	size_t			 nconns;
	bool			 paused;	/* accepting paused at the limit */
	void			*ssl_ctx;	/* SSL_CTX, NULL without TLS */
	bool			 tls;
	pthread_t		 thread;
	bool			 started;
	struct event		*stop_ev;
	int			 nice;	/* http.nice, for both threads to
					   take as they start */

	/*
	 * cfg and bl are the console thread's own: a reload leaves the new
	 * ones in next_cfg and next_bl (mtx held for the copy only) and
	 * wakes swap_ev; the thread takes them between requests and frees
	 * the ones it left (retired), so that a reload, on the first
	 * loop, never waits for a request.
	 */
	const struct config	*cfg;
	const struct blocklist	*bl;
	pthread_mutex_t		 mtx;
	const struct config	*next_cfg;
	const struct blocklist	*next_bl;
	struct http_retired	*retired;
	struct event		*swap_ev;

	struct http_source	 src;
	char			*dbpath;
	sqlite3			*rdb;		/* read-only */
	struct report_db	*report_db;	/* the report library's, lazily */
	struct report_db	*central_db;	/* log.central.postgresql, lazily */
	char			*central_conninfo; /* what central_db was
						   opened with */
	uint64_t		 central_failed_ms; /* last failed connect,
						   monotonic; 0: none */
	char			 central_failed[256]; /* and its error */
	sqlite3			*wdb;		/* audit rows only, by aq's thread */
	struct http_audit_queue	 aq;
	int64_t			 started_ms;
	struct http_auth	 auth;
	struct http_report_cached rcache[HTTP_REPORT_CACHE];
	/* The newest attempt's time, for the log's version last_version. */
	bool			 last_known;
	uint64_t		 last_version;
	int64_t			 last_ts;	/* -1: no row */
};

/* One request, as a handler sees it. */
struct http_req {
	struct http		*h;
	struct evhttp_request	*req;
	const char		*path;
	struct http_params	 params;
	char			 remote[48];
	const char		*user;		/* session user or token name */
	enum http_role		 role;		/* HTTP_ROLE_NONE: anonymous */
	struct http_session	*session;	/* NULL for tokens */
	int64_t			 now_ms;
};

/* ---- server.c ---- */

/* Wall clock in ms (the one place the console reads it). */
int64_t	http_now_ms(void);

/* ms as "2024-05-01T09:30:00Z" (UTC). */
void	http_format_time(int64_t ms, char *buf, size_t len);

/* Send status with a JSON body (takes a reference-free copy of json). */
void	http_reply_json(struct http_req *r, int status, const char *json);

/* Send {"error": msg} with status. */
void	http_reply_error(struct http_req *r, int status, const char *msg);

/* Send body (owned by the caller) with status and content type. */
void	http_reply(struct http_req *r, int status, const char *type,
	    struct evbuffer *body);

/* Add a response header. */
void	http_header(struct http_req *r, const char *name, const char *value);

/*
 * The request target uri (origin-form, as evhttp hands it over) into
 * *urip (to free with evhttp_uri_free, even on failure), its path (valid
 * text beginning with '/') and its decoded query; 0, or -1 with *why.
 */
int	http_target_parse(const char *uri, struct evhttp_uri **urip,
	    const char **path, struct http_params *p, const char **why);

/* ---- params.c ---- */

/*
 * Decode the query string q (may be NULL) into p: '&'-separated
 * key=value pairs, '+' and %XX decoded. Refuses (-1, *why set to a static
 * message) NUL bytes, invalid UTF-8, control characters, a key repeated,
 * too many or too long parameters.
 */
int	http_params_parse(const char *q, struct http_params *p,
	    const char **why);

/* The value of key, or NULL. */
const char *http_param(const struct http_params *p, const char *key);

/*
 * 0 if every key of p is in allowed (NULL-terminated); else -1 with
 * *bad set to the first unknown key.
 */
int	http_params_allow(const struct http_params *p,
	    const char *const allowed[], const char **bad);

/*
 * A time as the CLI's --since/--until take it: YYYY-MM-DD or
 * YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM]; a bare date as until means the
 * end of that day. 0 and *ms, or -1.
 */
int	http_parse_time(const char *s, bool until, int64_t *ms);

/* A whole number in [min, max]; 0 or -1. */
int	http_parse_count(const char *s, long min, long max, long *out);

/* True if s is valid UTF-8 without control characters. */
bool	http_text_ok(const char *s, size_t len);

/* ---- auth.c ---- */

/*
 * Find who sent r (session cookie or bearer token) and set r->user,
 * r->role, r->session. Never fails: anonymous is HTTP_ROLE_NONE.
 */
void	http_auth_identify(struct http_req *r);

/* True if r is a POST whose X-CSRF-Token matches its session's. */
bool	http_auth_csrf_ok(struct http_req *r);

/*
 * The value of cookie name in a Cookie header (may be NULL) into out (len
 * bytes); false when absent or too long.
 */
bool	http_cookie_get(const char *header, const char *name, char *out,
	    size_t len);

/*
 * A login body, {"user": "...", "password": "..."} (len bytes of buf, at
 * most HTTP_MAX_BODY), into user and pw: 0, or -1 when it is anything
 * else (not JSON, a field missing, not a string, too long, a NUL inside).
 */
int	http_login_parse(const char *buf, size_t len, char *user, size_t ulen,
	    char *pw, size_t pwlen);

void	http_api_login(struct http_req *r);
void	http_api_logout(struct http_req *r);

/*
 * Lock-out bookkeeping, with the time as a parameter (unit tests):
 * true if addr may try a password at now_ms.
 */
bool	http_lock_allows(struct http_auth *a, const char *addr, int64_t now_ms);
void	http_lock_failed(struct http_auth *a, const char *addr, int64_t now_ms);
void	http_lock_reset(struct http_auth *a, const char *addr);

/* A session for user/role, or NULL when every slot is taken. */
struct http_session *http_session_new(struct http_auth *a, const char *user,
	    enum http_role role, int64_t now_ms, unsigned minutes);

/* The live session with id (constant-time compare), or NULL. */
struct http_session *http_session_find(struct http_auth *a, const char *id,
	    int64_t now_ms);

/* 2 * n hex digits of fresh randomness into out (2n + 1 bytes). */
int	http_random_hex(char *out, size_t n);

/* The name of role ("admin", ...; "" for none). */
const char *http_role_name(enum http_role role);

/* ---- audit.c ---- */

/* Create table audit when missing; 0 or -1 (logged). */
int	http_audit_init(struct http *h);

/*
 * Start the thread that writes the audit rows through h->wdb (which it
 * owns from then on); 0 or -1. Without it (no database) rows are dropped
 * as before. http_audit_stop() writes what is queued and joins it.
 */
int	http_audit_start(struct http *h);
void	http_audit_stop(struct http *h);

/* Wait until every row queued so far is written (or said lost). */
void	http_audit_flush(struct http *h);

/* One audit row for r (user, role, remote from r; may be anonymous). */
void	http_audit(struct http_req *r, const char *action, const char *detail);

/* Same, naming the user explicitly (failed logins). */
void	http_audit_as(struct http_req *r, const char *user,
	    enum http_role role, const char *action, const char *detail);

/* The query parameters of r as "k=v k=v", for audit details. */
void	http_audit_params(const struct http_req *r, char *buf, size_t len);

void	http_api_audit(struct http_req *r);

/* ---- api.c ---- */

void	http_api_status(struct http_req *r);
void	http_api_report(struct http_req *r);
void	http_api_attempts(struct http_req *r);
void	http_api_lookup(struct http_req *r);

/* Free the cached report answers. */
void	http_report_cache_free(struct http *h);

/* What /api/v1/status answers, as a new object (the caller frees it). */
struct json_t;
struct json_t *http_status_json(struct http_req *r);

/*
 * What `dnswarden lookup [--client ADDR] NAME` says, as a new object;
 * NULL: not a name. policy is blocklist_policy_of() the client's address,
 * or BLOCKLIST_POLICY_DEFAULT.
 */
struct json_t *http_lookup_json(struct http_req *r, const char *name,
	    int policy);

/* ---- metrics.c ---- */

void	http_metrics(struct http_req *r);

/* ---- pages.c ---- */

/* The HTML pages; path is one of the page paths. */
void	http_page(struct http_req *r);

/* True if path names a page. */
bool	http_page_exists(const char *path);

/* The static files: /static/app.js, /static/style.css, chart.js. */
bool	http_static(struct http_req *r);

#endif
