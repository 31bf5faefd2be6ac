/*
 * server: the console's thread, event base and evhttp listeners, the
 * limits every request runs under, and the route table that checks the
 * role before any handler runs (as PowerDNS checks its API key).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "http_internal.h"
#include "log.h"
#include "netaddr.h"
#include "thread.h"


typedef void (*http_handler)(struct http_req *);

static void	http_conn_served(struct http *, struct bufferevent *, int64_t);
static void	http_swap_cb(evutil_socket_t, short, void *);

/* One route: who may call it, and what answers. */
struct http_route {
	enum evhttp_cmd_type	 method;
	const char		*path;
	unsigned		 roles;		/* 0: anyone, even anonymous */
	http_handler		 fn;
};

static const struct http_route routes[] = {
	{ EVHTTP_REQ_POST, "/api/v1/login", 0, http_api_login },
	{ EVHTTP_REQ_POST, "/api/v1/logout", ROLES_ANY, http_api_logout },
	{ EVHTTP_REQ_GET, "/api/v1/status", ROLES_READ, http_api_status },
	{ EVHTTP_REQ_GET, "/api/v1/report", ROLES_READ, http_api_report },
	{ EVHTTP_REQ_GET, "/api/v1/attempts", ROLES_SECURITY,
	    http_api_attempts },
	{ EVHTTP_REQ_GET, "/api/v1/lookup", ROLES_SECURITY, http_api_lookup },
	{ EVHTTP_REQ_GET, "/api/v1/audit", ROLES_ADMIN, http_api_audit },
	{ EVHTTP_REQ_GET, "/metrics", ROLES_METRICS, http_metrics },
};

int64_t
http_now_ms(void)
{
	return now_ms_wall();
}

void
http_format_time(int64_t ms, char *buf, size_t len)
{
	time_t		t = (time_t)(ms / 1000);
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "%lld", (long long)ms);
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
http_header(struct http_req *r, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->req), name,
	    value);
}

/* Headers every answer carries: no script from anywhere but here. */
static void
http_common_headers(struct http_req *r, const char *type)
{
	http_header(r, "Content-Type", type);
	http_header(r, "Content-Security-Policy", "default-src 'none'; "
	    "script-src 'self'; style-src 'self'; img-src 'self'; "
	    "connect-src 'self'; form-action 'self'; base-uri 'none'; "
	    "frame-ancestors 'none'");
	http_header(r, "X-Content-Type-Options", "nosniff");
	http_header(r, "X-Frame-Options", "DENY");
	http_header(r, "Referrer-Policy", "no-referrer");
	http_header(r, "Cache-Control", "no-store");
}

/* Reasons libevent 2.1's table lacks (it knows up to 417). */
static const char *
http_reason(int status)
{
	switch (status) {
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	default:
		return NULL;
	}
}

void
http_reply(struct http_req *r, int status, const char *type,
    struct evbuffer *body)
{
	http_common_headers(r, type);
	evhttp_send_reply(r->req, status, http_reason(status), body);
}

void
http_reply_json(struct http_req *r, int status, const char *json)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(r->req, 500, NULL);
		return;
	}
	evbuffer_add(b, json, strlen(json));
	evbuffer_add(b, "\n", 1);
	http_reply(r, status, "application/json", b);
	evbuffer_free(b);
}

void
http_reply_error(struct http_req *r, int status, const char *msg)
{
	json_t	*j = json_pack("{s:s}", "error", msg);
	char	*text = j ? json_dumps(j, 0) : NULL;

	/* A reason that quotes a bad value may hold anything: jansson
	 * escapes it, and one that is not UTF-8 is replaced. */
	http_reply_json(r, status, text ? text : "{\"error\": \"bad request\"}");
	free(text);
	json_decref(j);
}

static const struct http_route *
route_find(const char *path, enum evhttp_cmd_type method, bool *other)
{
	*other = false;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].path, path) != 0)
			continue;
		if (routes[i].method == method)
			return &routes[i];
		*other = true;
	}
	return NULL;
}

static void
http_route(struct http_req *r, enum evhttp_cmd_type method)
{
	const struct http_route	*rt;
	bool			 other;

	if ((rt = route_find(r->path, method, &other)) == NULL) {
		if (other)
			http_reply_error(r, 405, "method not allowed");
		else if (method == EVHTTP_REQ_GET && http_static(r))
			return;
		else if (method == EVHTTP_REQ_GET && http_page_exists(r->path))
			http_page(r);
		else
			http_reply_error(r, 404, "not found");
		return;
	}
	if (rt->roles != 0 && r->role == HTTP_ROLE_NONE) {
		http_header(r, "WWW-Authenticate", "Bearer");
		http_reply_error(r, 401, "log in first");
	} else if (rt->roles != 0 && !(rt->roles & ROLE(r->role)))
		http_reply_error(r, 403, "your role may not read this");
	else if (method == EVHTTP_REQ_POST && rt->roles != 0 &&
	    r->session != NULL && !http_auth_csrf_ok(r))
		http_reply_error(r, 403, "missing or wrong X-CSRF-Token");
	else
		rt->fn(r);
}

int
http_target_parse(const char *uri, struct evhttp_uri **urip,
    const char **path, struct http_params *p, const char **why)
{
	struct evhttp_uri	*u;

	*urip = NULL;
	*path = NULL;
	if (uri == NULL || (u = evhttp_uri_parse(uri)) == NULL) {
		*why = "bad request target";
		return -1;
	}
	*urip = u;
	*path = evhttp_uri_get_path(u);
	if (*path == NULL || (*path)[0] != '/' ||
	    !http_text_ok(*path, strlen(*path))) {
		*why = "bad path";
		return -1;
	}
	return http_params_parse(evhttp_uri_get_query(u), p, why);
}

/* The path and query of the request target, checked and decoded. */
static int
http_req_parse(struct http_req *r, struct evhttp_uri **urip)
{
	const char	*why;

	if (http_target_parse(evhttp_request_get_uri(r->req), urip, &r->path,
	    &r->params, &why) == -1) {
		http_reply_error(r, 400, why);
		return -1;
	}
	return 0;
}

/*
 * Our limits on size, checked before anything else reads the request:
 * the request target and headers as they came (name, ": ", value and
 * CRLF each), and the body. Over them: a JSON 431 or 413, and the
 * connection is closed, as evhttp does at its own limits.
 */
static int
http_req_size_ok(struct http_req *r)
{
	struct evkeyvalq	*hdrs = evhttp_request_get_input_headers(r->req);
	struct evkeyval		*kv;
	const char		*uri = evhttp_request_get_uri(r->req);
	size_t			 n = uri != NULL ? strlen(uri) : 0;

	TAILQ_FOREACH(kv, hdrs, next)
		n += strlen(kv->key) + strlen(kv->value) + 4;
	if (n > HTTP_MAX_HEADERS) {
		http_header(r, "Connection", "close");
		http_reply_error(r, 431, "request headers too large: at most"
		    " 8192 bytes");
		return -1;
	}
	if (evbuffer_get_length(evhttp_request_get_input_buffer(r->req)) >
	    HTTP_MAX_BODY) {
		http_header(r, "Connection", "close");
		http_reply_error(r, 413, "request body too large: at most 4096"
		    " bytes");
		return -1;
	}
	return 0;
}

static void
http_request_cb(struct evhttp_request *req, void *arg)
{
	struct http		*h = arg;
	struct http_req		 r = { .h = h, .req = req };
	struct evhttp_uri	*u = NULL;
	enum evhttp_cmd_type	 method = evhttp_request_get_command(req);
	char			*host;
	ev_uint16_t		 port;

	r.now_ms = http_now_ms();
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &host,
	    &port);
	http_conn_served(h, evhttp_connection_get_bufferevent(
	    evhttp_request_get_connection(req)), r.now_ms);
	snprintf(r.remote, sizeof(r.remote), "%s", host ? host : "");
	if (http_req_size_ok(&r) == -1)
		return;
	if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_POST &&
	    method != EVHTTP_REQ_HEAD) {
		http_reply_error(&r, 405, "method not allowed");
		return;
	}
	if (method == EVHTTP_REQ_HEAD)
		method = EVHTTP_REQ_GET;
	if (http_req_parse(&r, &u) == 0) {
		http_auth_identify(&r);
		http_route(&r, method);
	}
	if (u != NULL)		/* libevent 2.1's free does not take NULL */
		evhttp_uri_free(u);
}

/* ---- connections: a limit, a deadline per request, and TLS ---- */

static void
http_accept_pause(struct http *h, bool pause)
{
	for (size_t i = 0; i < h->nbound; i++) {
		struct evconnlistener *l =
		    evhttp_bound_socket_get_listener(h->bound[i]);

		if (pause)
			evconnlistener_disable(l);
		else
			evconnlistener_enable(l);
	}
	h->paused = pause;
}

/*
 * Every second: release the connections evhttp has closed (it cleared
 * their callbacks; our reference kept the memory), and cut off those
 * whose request has taken longer than HTTP_DEADLINE_MS. evhttp's own
 * timeout is one of inactivity, which a client sending a byte a second
 * (slowloris) never trips.
 */
static void
http_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http	*h = arg;
	int64_t		 now = http_now_ms();
	size_t		 i = 0;

	while (i < h->nconns) {
		struct http_conn	*c = &h->conns[i];
		bufferevent_data_cb	 rd;

		bufferevent_getcb(c->bev, &rd, NULL, NULL, NULL);
		if (rd == NULL) {
			bufferevent_decref(c->bev);
			*c = h->conns[--h->nconns];
			continue;
		}
		if (now - c->since_ms > HTTP_DEADLINE_MS) {
			c->since_ms = INT64_MAX / 2;	/* once */
			bufferevent_trigger_event(c->bev, BEV_EVENT_READING |
			    BEV_EVENT_TIMEOUT, 0);
		}
		i++;
	}
	if (h->paused && h->nconns < HTTP_MAX_CONNECTIONS)
		http_accept_pause(h, false);
}

/* A request was read whole on bev: its deadline starts again. */
static void
http_conn_served(struct http *h, struct bufferevent *bev, int64_t now)
{
	for (size_t i = 0; i < h->nconns; i++)
		if (h->conns[i].bev == bev)
			h->conns[i].since_ms = now;
}

/*
 * Called for every accepted connection. At the limit, accepting pauses
 * (the kernel's backlog holds the rest) until some close, as unwind does
 * with a full descriptor table; the few accepted in the same burst still
 * get a slot of the spare ones.
 */
static struct bufferevent *
http_bev_cb(struct event_base *base, void *arg)
{
	struct http		*h = arg;
	struct bufferevent	*bev;

	if (!h->tls)
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	else {
		SSL *ssl = SSL_new(h->ssl_ctx);

		bev = ssl == NULL ? NULL : bufferevent_openssl_socket_new(base,
		    -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev == NULL || h->nconns == HTTP_CONN_SLOTS)
		return bev;	/* untracked: evhttp alone frees it */
	bufferevent_incref(bev);
	h->conns[h->nconns].bev = bev;
	h->conns[h->nconns].since_ms = http_now_ms();
	h->nconns++;
	if (h->nconns >= HTTP_MAX_CONNECTIONS && !h->paused)
		http_accept_pause(h, true);
	return bev;
}

static int
http_tls_load(struct http *h, const struct config *cfg)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return -1;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->http.tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, cfg->http.tls_key,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		char err[256];

		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		log_warnx("http.tls: cannot use %s and %s: %s",
		    cfg->http.tls_cert, cfg->http.tls_key, err);
		SSL_CTX_free(ctx);
		return -1;
	}
	h->ssl_ctx = ctx;
	h->tls = true;
	return 0;
}

static int
http_bind(struct http *h, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->http.nlisten && i < 8; i++) {
		const struct config_listen	*l = &cfg->http.listen[i];
		struct evconnlistener		*lev;

		lev = evconnlistener_new_bind(h->base, NULL, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		    LEV_OPT_CLOSE_ON_EXEC, 128,
		    (const struct sockaddr *)&l->addr.ss, (int)l->addr.len);
		if (lev == NULL) {
			log_warn("http.listen: cannot listen on %s", l->text);
			return -1;
		}
		if ((h->bound[h->nbound] = evhttp_bind_listener(h->evh, lev)) ==
		    NULL) {
			evconnlistener_free(lev);
			return -1;
		}
		h->nbound++;
	}
	if (cfg->http.nlisten > 8)
		log_warnx("http.listen: only the first 8 addresses are used");
	return 0;
}

static void
http_limits(struct http *h)
{
	/* Backstops: ours are checked in http_request_cb(). */
	evhttp_set_max_headers_size(h->evh, HTTP_EVHTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->evh, HTTP_EVHTTP_MAX_BODY);
	/* A slow client (slowloris) is cut off after this, per request. */
	evhttp_set_timeout(h->evh, HTTP_TIMEOUT_S);
	/* Every method reaches us, to be answered 405 in JSON. */
	evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(h->evh, "application/json");
	evhttp_set_bevcb(h->evh, http_bev_cb, h);
	evhttp_set_gencb(h->evh, http_request_cb, h);
}

struct http *
http_new(const struct config *cfg, const struct blocklist *bl,
    const struct http_source *src)
{
	struct http	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	pthread_mutex_init(&h->mtx, NULL);
	h->cfg = cfg;
	h->bl = bl;
	h->src = *src;
	if ((h->base = event_base_new()) == NULL ||
	    (h->evh = evhttp_new(h->base)) == NULL ||
	    (h->sweep_ev = event_new(h->base, -1, EV_PERSIST, http_sweep_cb,
	    h)) == NULL ||
	    (h->swap_ev = event_new(h->base, -1, 0, http_swap_cb, h)) == NULL)
		goto fail;
	if (cfg->http.tls_cert != NULL && http_tls_load(h, cfg) == -1)
		goto fail;
	http_limits(h);
	if (http_bind(h, cfg) == -1)
		goto fail;
	return h;
fail:
	log_warnx("http: the console cannot start");
	http_free(h);
	return NULL;
}

static void
http_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

static void *
http_main(void *arg)
{
	struct http	*h = arg;

	/* Where it shares a CPU with a DNS loop, the loop goes first. */
	thread_renice_self(h->nice);
	event_base_dispatch(h->base);
	return NULL;
}

/*
 * http.cpus: the console's thread and the audit writer's, off the DNS
 * loops' CPUs. A failure costs the pinning only, never the console.
 */
static void
http_threads_pin(struct http *h)
{
	const struct config_cpus	*c = &h->cfg->http.cpus;
	int				 err;

	if ((err = thread_pin(h->thread, c->cpu, c->n)) == 0 &&
	    h->aq.running)
		err = thread_pin(h->aq.thread, c->cpu, c->n);
	if (err != 0)
		log_warnx("http.cpus: cannot pin the console's threads: %s;"
		    " they run on the DNS loops' CPUs", strerror(err));
}

static sqlite3 *
http_db_open(const char *path, int flags)
{
	sqlite3	*db = NULL;

	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		log_warnx("http: %s: %s", path, db ? sqlite3_errmsg(db) :
		    "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	/* The writer holds its lock for milliseconds at a time. */
	sqlite3_busy_timeout(db, 2000);
	sqlite3_exec(db, "PRAGMA trusted_schema = OFF", NULL, NULL, NULL);
	return db;
}

int
http_start(struct http *h, const char *dbpath)
{
	sigset_t	set, old;

	h->started_ms = http_now_ms();
	h->nice = (int)h->cfg->http.nice;
	if (dbpath != NULL && dbpath[0] != '\0' &&
	    (h->dbpath = strdup(dbpath)) == NULL)
		return -1;
	if (h->dbpath != NULL) {
		/* Without them the console still shows status and metrics. */
		h->wdb = http_db_open(h->dbpath, SQLITE_OPEN_READWRITE);
		h->rdb = http_db_open(h->dbpath, SQLITE_OPEN_READONLY);
		/* As the attempt writer's: no fsync per commit (audit.c). */
		if (h->wdb != NULL)
			sqlite3_exec(h->wdb, "PRAGMA synchronous=NORMAL", NULL,
			    NULL, NULL);
		if (h->wdb != NULL)
			http_audit_init(h);
	}
	if ((h->stop_ev = event_new(h->base, -1, 0, http_stop_cb, h->base)) ==
	    NULL)
		return -1;
	const struct timeval sweep = { 1, 0 };
	event_add(h->sweep_ev, &sweep);
	/* Signals are the main loop's: keep them blocked here. */
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	/* The audit thread first: the console's queues rows for it. */
	if (h->wdb != NULL && http_audit_start(h) == -1)
		log_warnx("http: audit rows will not be written");
	if (pthread_create(&h->thread, NULL, http_main, h) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		http_audit_stop(h);
		log_warnx("http: cannot start the console's thread");
		return -1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* For top -H, perf and bench/console_load.sh: its CPU is the
	 * console's, apart from the DNS path's. */
	pthread_setname_np(h->thread, "dw-console");
	http_threads_pin(h);
	h->started = true;
	for (size_t i = 0; i < h->cfg->http.nusers; i++)
		if (h->cfg->http.users[i].password == NULL)
			log_warnx("http: user %s cannot log in: its"
			    " password_file does not exist yet",
			    h->cfg->http.users[i].name);
	for (size_t i = 0; i < h->cfg->http.nlisten && i < 8; i++)
		log_info("console on http%s://%s/", h->tls ? "s" : "",
		    h->cfg->http.listen[i].text);
	return 0;
}

/* Free a list of retired configurations and blocklists. */
static void
http_retired_free(struct http_retired *list)
{
	while (list != NULL) {
		struct http_retired *next = list->next;

		blocklist_free(list->bl);
		config_free(list->cfg);
		free(list);
		list = next;
	}
}

/* On the console's thread, between requests: take a reload's cfg and bl. */
static void
http_swap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http		*h = arg;
	struct http_retired	*old;

	pthread_mutex_lock(&h->mtx);
	if (h->next_cfg != NULL) {
		h->cfg = h->next_cfg;
		h->bl = h->next_bl;
		h->next_cfg = NULL;
		h->next_bl = NULL;
	}
	old = h->retired;
	h->retired = NULL;
	pthread_mutex_unlock(&h->mtx);
	http_retired_free(old);
}

void
http_reconfigure(struct http *h, const struct config *cfg,
    const struct blocklist *bl, struct config *old_cfg,
    struct blocklist *old_bl)
{
	struct http_retired	*r;

	if (h == NULL) {
		blocklist_free(old_bl);
		config_free(old_cfg);
		return;
	}
	if (old_cfg->http.nlisten != cfg->http.nlisten ||
	    (old_cfg->http.tls_cert == NULL) != (cfg->http.tls_cert == NULL))
		log_warnx("http.listen or http.tls changed: restart dnswarden"
		    " to apply");
	/* Out of memory: the old ones are kept for good, never freed early. */
	if ((r = calloc(1, sizeof(*r))) == NULL)
		log_warnx("http: out of memory; the replaced configuration"
		    " stays in memory");
	pthread_mutex_lock(&h->mtx);
	h->next_cfg = cfg;
	h->next_bl = bl;
	if (r != NULL) {
		r->cfg = old_cfg;
		r->bl = old_bl;
		r->next = h->retired;
		h->retired = r;
	}
	pthread_mutex_unlock(&h->mtx);
	if (h->started)
		event_active(h->swap_ev, 0, 0);
	else
		http_swap_cb(-1, 0, h);
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	if (h->started) {
		event_active(h->stop_ev, 0, 0);
		pthread_join(h->thread, NULL);
	}
	/* The console's thread has stopped queueing: write the rest. */
	http_audit_stop(h);
	if (h->stop_ev != NULL)
		event_free(h->stop_ev);
	if (h->sweep_ev != NULL)
		event_free(h->sweep_ev);
	if (h->swap_ev != NULL)
		event_free(h->swap_ev);
	if (h->evh != NULL)
		evhttp_free(h->evh);
	for (size_t i = 0; i < h->nconns; i++)
		bufferevent_decref(h->conns[i].bev);
	if (h->base != NULL)
		event_base_free(h->base);
	if (h->ssl_ctx != NULL)
		SSL_CTX_free(h->ssl_ctx);
	http_report_cache_free(h);
	report_db_close(h->report_db);
	report_db_close(h->central_db);
	free(h->central_conninfo);
	sqlite3_close(h->rdb);
	sqlite3_close(h->wdb);
	free(h->dbpath);
	/* The thread has stopped: nothing uses the replaced ones. */
	http_retired_free(h->retired);
	pthread_mutex_destroy(&h->mtx);
	explicit_bzero(&h->auth, sizeof(h->auth));
	free(h);
}
