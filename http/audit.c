/*
 * audit: the record of who looked at the record. One row per login,
 * failed login, logout and read of attempts, reports or lookups, in table
 * audit of the log database. The console's thread queues each row before
 * it answers; the audit thread writes the queue through its own
 * connection, as many rows as are waiting in one transaction (WAL lets it
 * sit beside the attempt writer; busy_timeout waits out the writer's
 * short transactions). A commit, its fsync and a wait for the writer's
 * lock thus hold up no request; a full queue holds up the console until
 * there is room, so no row is ever dropped to keep up. Reading the trail
 * waits for the rows queued before it.
 *
 * The thread gathers rows for HTTP_AUDIT_LINGER_MS after the first one
 * (less when a batch fills, a reader waits or the console stops), and is
 * woken only for a first row, not for each: 50 clients reading as fast
 * as they are answered made a commit, and a wake-up, every few requests,
 * and the checkpoints those commits brought fell on the attempt writer,
 * which is the DNS path's. Commits are synchronous=NORMAL, as the attempt
 * writer's: a row survives a crash of the process once committed, and
 * the last commits may be lost with the machine's power.
 */
#include <limits.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http_internal.h"
#include "log.h"
#include "thread.h"

#define AUDIT_PAGE	100
#define AUDIT_PAGE_MAX	1000

int
http_audit_init(struct http *h)
{
	char	*err = NULL;

	if (sqlite3_exec(h->wdb, "CREATE TABLE IF NOT EXISTS audit ("
	    " id INTEGER PRIMARY KEY,"
	    " ts INTEGER NOT NULL,"
	    " user TEXT NOT NULL,"
	    " role TEXT NOT NULL,"
	    " remote TEXT NOT NULL,"
	    " action TEXT NOT NULL,"
	    " detail TEXT NOT NULL)", NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("http: %s: cannot create table audit: %s", h->dbpath,
		    err ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

void
http_audit_as(struct http_req *r, const char *user, enum http_role role,
    const char *action, const char *detail)
{
	struct http_audit_queue	*q = &r->h->aq;
	struct http_audit_row	*row;

	if (!q->running)
		return;
	pthread_mutex_lock(&q->mtx);
	while (q->len == HTTP_AUDIT_QUEUE && !q->stop)
		pthread_cond_wait(&q->done, &q->mtx);
	if (q->len == HTTP_AUDIT_QUEUE) {	/* stopping: never here */
		pthread_mutex_unlock(&q->mtx);
		return;
	}
	row = &q->ring[(q->head + q->len) % HTTP_AUDIT_QUEUE];
	row->ts = r->now_ms;
	snprintf(row->user, sizeof(row->user), "%s", user ? user : "");
	snprintf(row->role, sizeof(row->role), "%s", http_role_name(role));
	snprintf(row->remote, sizeof(row->remote), "%s", r->remote);
	snprintf(row->action, sizeof(row->action), "%s", action);
	snprintf(row->detail, sizeof(row->detail), "%s", detail);
	q->len++;
	q->queued++;
	if (q->idle || q->len == HTTP_AUDIT_BATCH)
		pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->mtx);
}

/* Rows [from, from + n) of the ring in one transaction; false: not. */
static bool
audit_write(struct http *h, sqlite3_stmt *st, size_t from, size_t n)
{
	struct http_audit_queue	*q = &h->aq;
	bool			 ok;

	ok = sqlite3_exec(h->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	    SQLITE_OK;
	for (size_t i = 0; ok && i < n; i++) {
		const struct http_audit_row *row =
		    &q->ring[(from + i) % HTTP_AUDIT_QUEUE];

		sqlite3_bind_int64(st, 1, row->ts);
		sqlite3_bind_text(st, 2, row->user, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, row->role, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, row->remote, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, row->action, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, row->detail, -1, SQLITE_STATIC);
		ok = sqlite3_step(st) == SQLITE_DONE;
		sqlite3_reset(st);
	}
	sqlite3_clear_bindings(st);
	if (ok && sqlite3_exec(h->wdb, "COMMIT", NULL, NULL, NULL) ==
	    SQLITE_OK)
		return true;
	/* Never silent: a read whose audit row is lost is said so. */
	log_warnx("http: %zu audit rows lost: %s", n, sqlite3_errmsg(h->wdb));
	for (size_t i = 0; i < n; i++) {
		const struct http_audit_row *row =
		    &q->ring[(from + i) % HTTP_AUDIT_QUEUE];

		log_warnx("http: audit row lost: %s by %s from %s",
		    row->action, row->user, row->remote);
	}
	if (!sqlite3_get_autocommit(h->wdb))
		sqlite3_exec(h->wdb, "ROLLBACK", NULL, NULL, NULL);
	return false;
}

/* A few more rows for this commit; with q->mtx held. */
static void
audit_linger(struct http_audit_queue *q)
{
	struct timespec	until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += HTTP_AUDIT_LINGER_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (q->len < HTTP_AUDIT_BATCH && !q->stop &&
	    q->flush_upto <= q->written &&
	    pthread_cond_timedwait(&q->more, &q->mtx, &until) == 0)
		;
}

static void *
audit_main(void *arg)
{
	struct http		*h = arg;
	struct http_audit_queue	*q = &h->aq;
	sqlite3_stmt		*st = NULL;
	size_t			 from, n;

	thread_renice_self(h->nice);
	if (sqlite3_prepare_v2(h->wdb, "INSERT INTO audit (ts, user, role,"
	    " remote, action, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1,
	    &st, NULL) != SQLITE_OK)
		log_warnx("http: audit rows cannot be written: %s",
		    sqlite3_errmsg(h->wdb));
	pthread_mutex_lock(&q->mtx);
	for (;;) {
		q->idle = true;
		while (q->len == 0 && !q->stop)
			pthread_cond_wait(&q->more, &q->mtx);
		q->idle = false;
		if (q->len == 0)
			break;
		audit_linger(q);
		/* The console only appends after these: they stay put. */
		from = q->head;
		n = q->len < HTTP_AUDIT_BATCH ? q->len : HTTP_AUDIT_BATCH;
		pthread_mutex_unlock(&q->mtx);
		if (st != NULL)
			audit_write(h, st, from, n);
		else
			log_warnx("http: %zu audit rows lost", n);
		pthread_mutex_lock(&q->mtx);
		q->head = (q->head + n) % HTTP_AUDIT_QUEUE;
		q->len -= n;
		q->written += n;
		pthread_cond_broadcast(&q->done);
	}
	pthread_mutex_unlock(&q->mtx);
	sqlite3_finalize(st);
	return NULL;
}

int
http_audit_start(struct http *h)
{
	struct http_audit_queue	*q = &h->aq;
	pthread_condattr_t	 attr;

	if ((q->ring = calloc(HTTP_AUDIT_QUEUE, sizeof(*q->ring))) == NULL)
		return -1;
	pthread_mutex_init(&q->mtx, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&q->more, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&q->done, NULL);
	if (pthread_create(&q->thread, NULL, audit_main, h) != 0) {
		log_warnx("http: cannot start the audit thread");
		pthread_cond_destroy(&q->done);
		pthread_cond_destroy(&q->more);
		pthread_mutex_destroy(&q->mtx);
		free(q->ring);
		q->ring = NULL;
		return -1;
	}
	/* Its CPU is the console's (bench/console_load.sh). */
	pthread_setname_np(q->thread, "dw-audit");
	q->running = true;
	return 0;
}

void
http_audit_stop(struct http *h)
{
	struct http_audit_queue	*q = &h->aq;

	if (!q->running)
		return;
	pthread_mutex_lock(&q->mtx);
	q->stop = true;
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->mtx);
	pthread_join(q->thread, NULL);
	q->running = false;
	pthread_cond_destroy(&q->done);
	pthread_cond_destroy(&q->more);
	pthread_mutex_destroy(&q->mtx);
	free(q->ring);
	q->ring = NULL;
}

void
http_audit_flush(struct http *h)
{
	struct http_audit_queue	*q = &h->aq;
	uint64_t		 upto;

	if (!q->running)
		return;
	pthread_mutex_lock(&q->mtx);
	upto = q->queued;
	if (q->flush_upto < upto) {	/* no lingering while we wait */
		q->flush_upto = upto;
		pthread_cond_signal(&q->more);
	}
	while (q->written < upto)
		pthread_cond_wait(&q->done, &q->mtx);
	pthread_mutex_unlock(&q->mtx);
}

void
http_audit(struct http_req *r, const char *action, const char *detail)
{
	http_audit_as(r, r->user, r->role, action, detail);
}

void
http_audit_params(const struct http_req *r, char *buf, size_t len)
{
	size_t	n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->params.n && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s=%s",
		    i ? " " : "", r->params.key[i], r->params.value[i]);
}

static json_t *
audit_row(sqlite3_stmt *st)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s}",
	    "id", (json_int_t)sqlite3_column_int64(st, 0),
	    "ts", (json_int_t)sqlite3_column_int64(st, 1),
	    "user", (const char *)sqlite3_column_text(st, 2),
	    "role", (const char *)sqlite3_column_text(st, 3),
	    "remote", (const char *)sqlite3_column_text(st, 4),
	    "action", (const char *)sqlite3_column_text(st, 5),
	    "detail", (const char *)sqlite3_column_text(st, 6));
}

/* GET /api/v1/audit?limit=&before=: newest first. */
void
http_api_audit(struct http_req *r)
{
	static const char *const allowed[] = { "limit", "before", NULL };
	const char	*bad, *v;
	long		 limit = AUDIT_PAGE, before = 0;
	sqlite3_stmt	*st;
	json_t		*rows;
	char		*text;

	if (http_params_allow(&r->params, allowed, &bad) == -1) {
		http_reply_error(r, 400, "unknown parameter");
		return;
	}
	if (((v = http_param(&r->params, "limit")) != NULL &&
	    http_parse_count(v, 1, AUDIT_PAGE_MAX, &limit) == -1) ||
	    ((v = http_param(&r->params, "before")) != NULL &&
	    http_parse_count(v, 1, LONG_MAX, &before) == -1)) {
		http_reply_error(r, 400, "bad limit or before");
		return;
	}
	http_audit_flush(r->h);
	if (r->h->rdb == NULL || sqlite3_prepare_v2(r->h->rdb, "SELECT id, ts,"
	    " user, role, remote, action, detail FROM audit WHERE ?1 = 0 OR"
	    " id < ?1 ORDER BY id DESC LIMIT ?2", -1, &st, NULL) != SQLITE_OK) {
		http_reply_error(r, 503, "the audit trail cannot be read");
		return;
	}
	sqlite3_bind_int64(st, 1, before);
	sqlite3_bind_int64(st, 2, limit);
	rows = json_array();
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(rows, audit_row(st));
	sqlite3_finalize(st);
	text = json_dumps(rows, JSON_INDENT(1));
	http_reply_json(r, 200, text ? text : "[]");
	free(text);
	json_decref(rows);
}
