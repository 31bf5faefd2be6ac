/*
 * attemptlog: see attemptlog.h. This file is the writer thread and the
 * log's life cycle; the queue is al_queue.c, the record format
 * al_record.c, their shared layout al_internal.h.
 *
 * The writer thread owns everything slow: formatting names, client
 * pseudonyms, the sink, error and drop messages, and retention.
 */
#include <sys/random.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "al_internal.h"
#include "clock.h"
#include "log.h"
#include "thread.h"

/* ---- time: the writer decides by al->clock, which a test may move ---- */

static int64_t
sys_mono_ms(void *arg)
{
	return (int64_t)(now_us_monotonic() / 1000);
}

static int64_t
sys_wall_ms(void *arg)
{
	return now_ms_wall();
}

static int64_t
al_now_mono(const struct attemptlog *al)
{
	return al->clock.mono_ms(al->clock.arg);
}

static int64_t
al_now_wall(const struct attemptlog *al)
{
	return al->clock.wall_ms(al->clock.arg);
}

/* ---- settings ---- */

static void
al_settings_free(struct al_settings *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->nclients; i++)
		free(set->clients[i].name);
	free(set->clients);
	if (set->key != NULL) {
		explicit_bzero(set->key, set->keylen);
		free(set->key);
	}
	free(set);
}

static struct al_settings *
al_settings_new(struct attemptlog *al, const struct config *cfg)
{
	struct al_settings *set;
	const void *key = al->random_key;
	size_t keylen = sizeof(al->random_key);

	if ((set = calloc(1, sizeof(*set))) == NULL)
		return NULL;
	set->identity = cfg->log.client_identity;
	set->retention_days = cfg->log.retention_days;
	if (cfg->log.pseudonym_key != NULL) {
		key = cfg->log.pseudonym_key;
		keylen = strlen(cfg->log.pseudonym_key);
	}
	if ((set->key = malloc(keylen)) == NULL)
		goto fail;
	memcpy(set->key, key, keylen);
	set->keylen = keylen;
	if (cfg->nclients > 0 &&
	    (set->clients = calloc(cfg->nclients, sizeof(*set->clients))) ==
	    NULL)
		goto fail;
	for (; set->nclients < cfg->nclients; set->nclients++) {
		struct config_client *c = &set->clients[set->nclients];

		c->net = cfg->clients[set->nclients].net;
		if ((c->name = strdup(cfg->clients[set->nclients].name)) ==
		    NULL)
			goto fail;
	}
	return set;
fail:
	al_settings_free(set);
	return NULL;
}

void
attemptlog_reconfigure(struct attemptlog *al, const struct config *cfg)
{
	struct al_settings *set;

	if (al == NULL)
		return;
	if (cfg->log.database == NULL || strcmp(cfg->log.database,
	    al->path) != 0)
		log_warnx("attempt log: a new log.database takes effect at"
		    " the next start; still writing %s", al->path);
	if (cfg->log.queue_size != 0 && cfg->log.queue_size !=
	    al->attempts.cap)
		log_warnx("attempt log: a new log.queue_size takes effect at"
		    " the next start; still %zu rows", al->attempts.cap);
	if (cfg->log.client_identity == CLIENT_IDENTITY_PSEUDONYM &&
	    cfg->log.pseudonym_key == NULL)
		log_warnx("attempt log: no log.pseudonym_key: pseudonyms"
		    " are keyed with a random key until the next start");
	if ((set = al_settings_new(al, cfg)) == NULL) {
		log_warnx("attempt log: out of memory; keeping the old"
		    " clients: and log settings");
		return;
	}
	atomic_store(&al->all_queries, cfg->log.all_queries);
	pthread_mutex_lock(&al->mtx);
	al_settings_free(al->next_set);
	al->next_set = set;
	al->writer_idle = false;
	pthread_cond_signal(&al->cond);
	pthread_mutex_unlock(&al->mtx);
}

/* ---- the writer thread ---- */

/* What one pass of the writer takes from the queue. */
struct al_take {
	size_t			 natt;
	size_t			 nq;
	bool			 stopping;
	struct al_settings	*set;	/* from a reload, or NULL */
};

/* Move the ring's new drops into the writer's unsaved gap. Locked. */
static void
al_take_gap(struct al_writer *w, struct al_ring *r, struct al_gap *g)
{
	if (r->gap.rows == 0)
		return;
	if (g->rows == 0) {
		g->ts_start = r->gap.ts_start;
		if (r->gap.nomem)
			snprintf(g->reason, sizeof(g->reason), "out of memory"
			    " for the queue");
		else if (w->failing)
			snprintf(g->reason, sizeof(g->reason), "queue full"
			    " while the database could not be written: %.190s",
			    w->err);
		else
			snprintf(g->reason, sizeof(g->reason), "queue full:"
			    " the writer could not keep up");
	}
	g->ts_end = r->gap.ts_end;
	g->rows += r->gap.rows;
	memset(&r->gap, 0, sizeof(r->gap));
}

static bool
al_has_rows(const struct attemptlog *al)
{
	return al->attempts.count > 0 || al->queries.count > 0 ||
	    al->attempts.gap.rows > 0 || al->queries.gap.rows > 0 ||
	    al->w.gaps[0].rows > 0 || al->w.gaps[1].rows > 0;
}

/*
 * Until when the writer may sleep, or 0 when it has work now. Locked.
 * Small batches linger a little so that a trickle of rows does not cost
 * a transaction each; a full batch, a stop or a failure retry does not.
 * Spare chunks go back AL_IDLE_MS after the last row was written.
 */
static int64_t
al_writer_until(struct attemptlog *al, int64_t now)
{
	struct al_writer *w = &al->w;
	bool rows = al_has_rows(al);
	bool spares = al->attempts.nspares + al->queries.nspares > 0;
	int64_t until;

	if (al->next_set != NULL || (al->stopping && !rows))
		return 0;
	/* A stop retries a failing database at once (al_writer_done()). */
	if (w->sink == NULL)
		return now >= w->retry_at || (al->stopping && !w->stop_seen) ?
		    0 : w->retry_at;
	if ((w->sums_left > 0 || w->maintain_due) && !al->stopping)
		return 0;
	if (rows) {
		if (al->stopping || al->attempts.count >= AL_BATCH_MAX ||
		    al->queries.count >= AL_BATCH_MAX ||
		    now >= w->last_write + AL_LINGER_MS)
			return 0;
		return w->last_write + AL_LINGER_MS;
	}
	if ((w->set->retention_days > 0 &&
	    (w->expire_cutoff != 0 || now >= w->expire_at)) ||
	    (spares && now >= w->last_write + AL_IDLE_MS))
		return 0;
	until = now + AL_IDLE_MS;
	if (spares && w->last_write + AL_IDLE_MS < until)
		until = w->last_write + AL_IDLE_MS;
	if (w->set->retention_days > 0 && w->expire_at < until)
		until = w->expire_at;
	al->writer_idle = true;
	return until;
}

/*
 * Wait on cond until `until` by al->clock, or until signalled. The
 * condition variable keeps CLOCK_MONOTONIC: the wait is until as far
 * from now on that clock as it is on al->clock (the same, but in tests).
 */
static void
al_cond_wait_until(struct attemptlog *al, pthread_cond_t *cond,
    int64_t until)
{
	int64_t left = until - al_now_mono(al);
	int64_t at_us = (int64_t)now_us_monotonic() +
	    (left > 0 ? left * 1000 : 0);
	struct timespec ts;

	ts.tv_sec = at_us / 1000000;
	ts.tv_nsec = (long)(at_us % 1000000) * 1000;
	pthread_cond_timedwait(cond, &al->mtx, &ts);
}

static void
al_writer_wait(struct attemptlog *al, struct al_take *t)
{
	struct al_writer *w = &al->w;
	int64_t until;

	pthread_mutex_lock(&al->mtx);
	al_stats_publish(al);
	while ((until = al_writer_until(al, al_now_mono(al))) != 0) {
		al_cond_wait_until(al, &al->cond, until);
		al->writer_idle = false;
	}
	t->natt = al->attempts.count < AL_BATCH_MAX ? al->attempts.count :
	    AL_BATCH_MAX;
	t->nq = al->queries.count < AL_BATCH_MAX ? al->queries.count :
	    AL_BATCH_MAX;
	t->stopping = al->stopping;
	t->set = al->next_set;
	al->next_set = NULL;
	al_take_gap(w, &al->attempts, &w->gaps[0]);
	al_take_gap(w, &al->queries, &w->gaps[1]);
	pthread_mutex_unlock(&al->mtx);
}

/* The database failed: say so once per cause, retry later. */
static void
al_writer_failed(struct attemptlog *al, const char *why)
{
	struct al_writer *w = &al->w;
	struct attemptlog_stats st;
	int64_t now = al_now_mono(al);
	char cause[sizeof(w->err)];

	/* why may be the sink's own error text, gone with the sink. */
	snprintf(cause, sizeof(cause), "%s", why);

	pthread_mutex_lock(&al->mtx);
	al->write_errors++;
	pthread_mutex_unlock(&al->mtx);
	w->fails++;
	if (w->sink != NULL) {
		/* Reopen on retry: the file or its directory may be new. */
		w->ops->close(w->sink);
		w->sink = NULL;
	}
	w->retry_at = now + AL_RETRY_MS;
	if (w->failing && strcmp(w->err, cause) == 0)
		return;
	attemptlog_get_stats(al, &st);
	log_warnx("attempt log: cannot write %s: %s; %" PRIu64 " rows wait"
	    " in the queue and will be written when it works again (retrying"
	    " every %d s)", al->path, cause, st.pending, AL_RETRY_MS / 1000);
	if (!w->failing)
		w->fail_since = now;
	w->failing = true;
	w->recovering = false;
	snprintf(w->err, sizeof(w->err), "%s", cause);
}

static void
al_writer_succeeded(struct attemptlog *al)
{
	struct al_writer *w = &al->w;

	if (!w->failing)
		return;
	w->failing = false;
	w->recovering = true;
	w->recovered_rows = 0;
	w->err[0] = '\0';
}

/* After a failure: say when the rows that waited are all written. */
static void
al_writer_log_recovery(struct attemptlog *al)
{
	struct al_writer *w = &al->w;
	struct attemptlog_stats st;

	if (!w->recovering)
		return;
	attemptlog_get_stats(al, &st);
	if (st.pending >= AL_BATCH_MAX)
		return;
	log_info("attempt log: %s: database writable again after %" PRId64
	    " s, %" PRIu64 " rows written", al->path,
	    (al_now_mono(al) - w->fail_since) / 1000, w->recovered_rows);
	w->recovering = false;
}

static void
al_writer_open(struct attemptlog *al)
{
	struct al_writer *w = &al->w;
	char err[512];

	if ((w->sink = w->ops->open(al->path, err, sizeof(err))) == NULL)
		al_writer_failed(al, err);
	else {
		/*
		 * An upgrade's catch-up (the visits of old rows, the counts)
		 * starts now, not when the first row arrives: the shipper
		 * waits for those visits.
		 */
		w->maintain_due = true;
		al_writer_succeeded(al);
	}
}

static size_t
al_batch_gaps(struct al_writer *w, struct sink_gap *out)
{
	size_t n = 0;

	for (int i = 0; i < 2; i++) {
		if (w->gaps[i].rows == 0)
			continue;
		out[n].ts_start = w->gaps[i].ts_start;
		out[n].ts_end = w->gaps[i].ts_end;
		out[n].rows = w->gaps[i].rows;
		out[n].table = i == 0 ? "attempts" : "queries";
		out[n].reason = w->gaps[i].reason;
		n++;
	}
	return n;
}

/* Write what t took, in one transaction; release the rows on success. */
static void
al_writer_flush(struct attemptlog *al, const struct al_take *t)
{
	struct al_writer *w = &al->w;
	struct al_chunk *unmap = NULL;
	struct al_pos aend, qend;
	struct sink_gap gaps[2];
	struct sink_batch b;

	memset(&b, 0, sizeof(b));
	b.ngaps = al_batch_gaps(w, gaps);
	if (t->natt == 0 && t->nq == 0 && b.ngaps == 0)
		return;
	w->textlen = 0;
	b.nattempts = t->natt;
	b.nqueries = t->nq;
	al_format_attempts(w, &al->attempts, &b.nattempts, &aend);
	al_format_queries(w, &al->queries, &b.nqueries, &qend);
	b.attempts = w->attempts;
	b.queries = w->queries;
	b.gaps = gaps;
	b.now_ms = al_now_wall(al);
	if (w->ops->write_batch(w->sink, &b) == -1) {
		al_writer_failed(al, w->ops->error(w->sink));
		return;
	}
	/* Committed: a report now counts them (before the figures say so). */
	if (b.nattempts > 0)
		atomic_fetch_add_explicit(&al->version, 1,
		    memory_order_release);
	pthread_mutex_lock(&al->mtx);
	al_ring_release(&al->attempts, b.nattempts, aend, &unmap);
	al_ring_release(&al->queries, b.nqueries, qend, &unmap);
	al_stats_publish(al);
	pthread_mutex_unlock(&al->mtx);
	al_chunks_unmap(unmap);
	memset(w->gaps, 0, sizeof(w->gaps));
	w->last_write = al_now_mono(al);
	w->recovered_rows += b.nattempts + b.nqueries;
}

/* Idle: give the spare chunks back; the queue keeps only its tail. */
static void
al_writer_trim(struct attemptlog *al)
{
	struct al_chunk *unmap = NULL;

	pthread_mutex_lock(&al->mtx);
	al_ring_trim(&al->attempts, &unmap);
	al_ring_trim(&al->queries, &unmap);
	pthread_mutex_unlock(&al->mtx);
	al_chunks_unmap(unmap);
}

/* The first drop at once, then a summary at most every few seconds. */
static void
al_writer_log_drops(struct attemptlog *al, bool final)
{
	struct al_writer *w = &al->w;
	int64_t now = al_now_mono(al);
	uint64_t dropped;

	pthread_mutex_lock(&al->mtx);
	dropped = al->attempts.dropped + al->queries.dropped;
	pthread_mutex_unlock(&al->mtx);
	if (dropped == w->drops_logged) {
		if (w->drop_episode &&
		    now - w->drops_logged_at >= AL_DROP_REPORT_MS)
			w->drop_episode = false;
		return;
	}
	if (!w->drop_episode) {
		log_warnx("attempt log: queue full (%zu rows): dropping rows"
		    " (%s); the loss is recorded in table log_gaps",
		    al->attempts.cap, w->failing ? "the database cannot be"
		    " written" : "the writer cannot keep up");
	} else if (final || now - w->drops_logged_at >= AL_DROP_REPORT_MS) {
		log_warnx("attempt log: %" PRIu64 " more rows dropped"
		    " (%" PRIu64 " since start)", dropped - w->drops_logged,
		    dropped);
	} else
		return;
	w->drop_episode = true;
	w->drops_logged = dropped;
	w->drops_logged_at = now;
}

/*
 * One step of the summaries' background work, between batches: after an
 * upgrade or a crash, counting rows from the table (with progress every
 * AL_SUMS_REPORT_MS on a large file); otherwise writing the counts kept
 * in memory when due.
 */
static void
al_writer_maintain(struct attemptlog *al)
{
	struct al_writer *w = &al->w;
	int64_t now = al_now_mono(al);
	long left;

	w->maintain_due = false;
	if (w->sink == NULL || w->ops->maintain == NULL)
		return;
	left = w->ops->maintain(w->sink, AL_SUMS_STEP_ROWS, al_now_wall(al));
	if (left < 0) {
		w->sums_left = 0;
		al_writer_failed(al, w->ops->error(w->sink));
		return;
	}
	if (left > 0 && w->sums_left == 0) {
		log_info("attempt log: %s: counting rows for the reports"
		    " (table attempt_sums), %d at a time between writes, %ld"
		    " left; reports read the rows meanwhile", al->path,
		    AL_SUMS_STEP_ROWS, left);
		w->sums_report_at = now + AL_SUMS_REPORT_MS;
	} else if (left > 0 && now >= w->sums_report_at) {
		log_info("attempt log: %s: %ld rows left to count", al->path,
		    left);
		w->sums_report_at = now + AL_SUMS_REPORT_MS;
	} else if (left == 0 && w->sums_left > 0)
		log_info("attempt log: %s: counts for the reports up to date",
		    al->path);
	if (left > 0 || w->sums_left > 0)	/* the counts moved */
		atomic_fetch_add_explicit(&al->version, 1,
		    memory_order_release);
	w->sums_left = left;
}

/* One short retention step, between batches. */
static void
al_writer_expire(struct attemptlog *al)
{
	struct al_writer *w = &al->w;
	int64_t now = al_now_mono(al);
	long n;

	if (w->set->retention_days == 0 || w->sink == NULL)
		return;
	if (w->expire_cutoff == 0) {
		if (now < w->expire_at)
			return;
		w->expire_cutoff = al_now_wall(al) -
		    (int64_t)w->set->retention_days * 86400 * 1000;
		w->expired = 0;
	}
	n = w->ops->expire(w->sink, w->expire_cutoff, AL_EXPIRE_ROWS);
	if (n < 0) {
		al_writer_failed(al, w->ops->error(w->sink));
		return;
	}
	w->expired += (uint64_t)n;
	if (n > 0)
		atomic_fetch_add_explicit(&al->version, 1,
		    memory_order_release);
	if (n >= AL_EXPIRE_ROWS)
		return;
	if (w->expired > 0)
		log_info("attempt log: deleted %" PRIu64 " rows older than"
		    " %u days", w->expired, w->set->retention_days);
	w->expire_cutoff = 0;
	w->expire_at = now + AL_EXPIRE_EVERY_MS;
}

static void
al_writer_settings(struct attemptlog *al, struct al_settings *set)
{
	struct al_writer *w = &al->w;

	if (set == NULL)
		return;
	if (set->retention_days != w->set->retention_days) {
		w->expire_cutoff = 0;
		w->expire_at = al_now_mono(al);
	}
	al_settings_free(w->set);
	w->set = set;
	/* Names, identity or key may have changed, and names point into set. */
	memset(w->clients, 0, sizeof(w->clients));
}

/*
 * Stopping on a database that does not work: say how many rows are lost,
 * and the drops that table log_gaps will not record either.
 */
static void
al_writer_log_loss(struct attemptlog *al)
{
	struct al_writer *w = &al->w;
	uint64_t natt, nq, gaps;
	char more[128] = "";

	pthread_mutex_lock(&al->mtx);
	natt = al->attempts.count;
	nq = al->queries.count;
	gaps = al->attempts.gap.rows + al->queries.gap.rows;
	pthread_mutex_unlock(&al->mtx);
	gaps += w->gaps[0].rows + w->gaps[1].rows;
	if (gaps > 0)
		snprintf(more, sizeof(more), "; the %" PRIu64 " rows dropped"
		    " before are not in table log_gaps either", gaps);
	log_warnx("attempt log: stopping: %" PRIu64 " rows could not be"
	    " written to %s and are lost (%" PRIu64 " attempts, %" PRIu64
	    " queries%s): %s", natt + nq, al->path, natt, nq, more, w->err);
}

/*
 * True when close() may return: every row written, or the database failed
 * after the stop. The stop retries a failing database at once rather than
 * after AL_RETRY_MS, and the first failure after it ends the writer: a
 * "systemctl stop" must not wait on a database that does not work (it
 * waited 5 s), and what that loses is logged.
 */
static bool
al_writer_done(struct attemptlog *al)
{
	struct al_writer *w = &al->w;
	bool rows;

	pthread_mutex_lock(&al->mtx);
	rows = al_has_rows(al);
	pthread_mutex_unlock(&al->mtx);
	if (!rows)
		return true;
	if (w->fails == w->fails_at_stop)
		return false;
	al_writer_log_loss(al);
	return true;
}

/* Tell attemptlog_open() that the first open has been tried. */
static void
al_writer_first_open(struct attemptlog *al)
{
	al_writer_open(al);
	pthread_mutex_lock(&al->mtx);
	al->open_tried = true;
	al->open_ok = al->w.sink != NULL;
	snprintf(al->open_err, sizeof(al->open_err), "%s", al->w.err);
	pthread_cond_signal(&al->opened);
	pthread_mutex_unlock(&al->mtx);
}

static void *
al_writer_main(void *arg)
{
	struct attemptlog *al = arg;
	struct al_writer *w = &al->w;
	struct al_take t;

	/*
	 * Where the writer and an event loop share a CPU, answers come first
	 * and the queue holds the rows meanwhile: otherwise a transaction of
	 * 1,024 rows (about 1.5 ms of CPU) holds up the answers behind it.
	 * The value is relative to the loops' own.
	 */
	thread_renice_self(AL_WRITER_NICE);
	al_writer_first_open(al);
	for (;;) {
		al_writer_wait(al, &t);
		al_writer_settings(al, t.set);
		if (t.stopping && !w->stop_seen) {
			w->stop_seen = true;
			w->fails_at_stop = w->fails;
			w->retry_at = 0;	/* a failing database: once more */
		}
		if (w->sink == NULL && al_now_mono(al) >= w->retry_at)
			al_writer_open(al);
		if (w->sink != NULL)
			al_writer_flush(al, &t);
		if (t.natt == 0 && t.nq == 0)
			al_writer_trim(al);
		al_writer_log_drops(al, t.stopping);
		al_writer_log_recovery(al);
		if (t.stopping) {
			if (al_writer_done(al))
				break;
		} else {
			al_writer_maintain(al);
			al_writer_expire(al);
		}
	}
	w->ops->close(w->sink);
	w->sink = NULL;
	return NULL;
}

/* ---- open and close ---- */

static void
al_free(struct attemptlog *al)
{
	al_ring_free(&al->attempts);
	al_ring_free(&al->queries);
	al_settings_free(al->w.set);
	al_settings_free(al->next_set);
	explicit_bzero(al->random_key, sizeof(al->random_key));
	free(al->path);
	free(al);
}

static int
al_start_thread(struct attemptlog *al)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	pthread_mutex_init(&al->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&al->cond, &ca);
	pthread_cond_init(&al->opened, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals are the event loop's business, never the writer's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&al->thread, NULL, al_writer_main, al);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)	/* for top -H and perf: its CPU is the log's cost */
		pthread_setname_np(al->thread, "dw-logwriter");
	if (rc != 0) {
		errno = rc;
		log_warn("attempt log: cannot start the writer thread");
		pthread_cond_destroy(&al->cond);
		pthread_cond_destroy(&al->opened);
		pthread_mutex_destroy(&al->mtx);
		return -1;
	}
	return 0;
}

/*
 * Wait until the writer has tried to open the database: then the file, its
 * schema and its WAL files (-wal, -shm) are there, owned by the writer's
 * user, or the failure is known. A daemon that answered before that let
 * an admin reading the log as root create the WAL files: SQLite as root
 * creates them as root and hands them to the database's owner just after,
 * and the writer opening them between the two failed with "Permission
 * denied". This wait once gave up after a second and served anyway: on a
 * loaded machine (the sanitizer build, two cores shared by test suites)
 * the first open took longer, and the race came back (log_write_errors 1,
 * issue 11). It does not give up now; after a second it says why start-up
 * waits. The open is bounded by SQLite's busy timeout.
 */
static void
al_wait_first_open(struct attemptlog *al)
{
	/* A bound on waiting for a thread: the machine's clock, in tests too. */
	int64_t until = sys_mono_ms(NULL) + AL_OPEN_WAIT_MS;
	struct timespec ts = { until / 1000, (long)(until % 1000) * 1000000 };
	bool said = false;

	pthread_mutex_lock(&al->mtx);
	while (!al->open_tried) {
		pthread_cond_timedwait(&al->opened, &al->mtx, &ts);
		if (al->open_tried || sys_mono_ms(NULL) < until || said)
			continue;
		said = true;
		log_warnx("attempt log: %s: still opening after %d ms;"
		    " dnswarden answers once it is open", al->path,
		    AL_OPEN_WAIT_MS);
		ts.tv_sec += 3600;
	}
	pthread_mutex_unlock(&al->mtx);
}

int
attemptlog_open_status(struct attemptlog *al, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&al->mtx);
	rc = al->open_ok ? 0 : -1;
	snprintf(err, errlen, "%s", al->open_ok ? "" : al->open_err);
	pthread_mutex_unlock(&al->mtx);
	return rc;
}

static struct attemptlog *
al_open(const struct config *cfg, const struct sink_ops *ops,
    const struct attemptlog_clock *clock, const char *path)
{
	struct attemptlog *al;
	size_t cap = cfg->log.queue_size ? cfg->log.queue_size : 65536;

	if (cfg->log.database == NULL)
		return NULL;
	if ((al = calloc(1, sizeof(*al))) == NULL)
		return NULL;
	if (getrandom(al->random_key, sizeof(al->random_key), 0) !=
	    (ssize_t)sizeof(al->random_key))
		log_warn("attempt log: getrandom");
	if (cfg->log.client_identity == CLIENT_IDENTITY_PSEUDONYM &&
	    cfg->log.pseudonym_key == NULL)
		log_warnx("attempt log: no log.pseudonym_key: pseudonyms"
		    " are keyed with a random key until the next start");
	al_ring_init(&al->attempts, cap, "attempts");
	al_ring_init(&al->queries, cap, "queries");
	if ((al->path = strdup(path)) == NULL ||
	    (al->w.set = al_settings_new(al, cfg)) == NULL) {
		log_warnx("attempt log: out of memory for a queue of %zu"
		    " rows", cap);
		al_free(al);
		return NULL;
	}
	al->w.ops = ops;
	al->clock = clock != NULL ? *clock :
	    (struct attemptlog_clock){ sys_mono_ms, sys_wall_ms, NULL };
	if (ops->setup != NULL)
		ops->setup();
	atomic_init(&al->all_queries, cfg->log.all_queries);
	if (al_start_thread(al) == -1) {
		al_free(al);
		return NULL;
	}
	al_wait_first_open(al);
	return al;
}

struct attemptlog *
attemptlog_open(const struct config *cfg)
{
	return attemptlog_open_sink(cfg, &sink_sqlite_ops);
}

struct attemptlog *
attemptlog_open_sink(const struct config *cfg, const struct sink_ops *ops)
{
	return attemptlog_open_clock(cfg, ops, NULL);
}

struct attemptlog *
attemptlog_open_clock(const struct config *cfg, const struct sink_ops *ops,
    const struct attemptlog_clock *clock)
{
	return al_open(cfg, ops, clock, cfg->log.database);
}

struct attemptlog *
attemptlog_open_path(const struct config *cfg, const char *path)
{
	return al_open(cfg, &sink_sqlite_ops, NULL,
	    path != NULL && path[0] != '\0' ? path : cfg->log.database);
}

void
attemptlog_time_passed(struct attemptlog *al)
{
	pthread_mutex_lock(&al->mtx);
	pthread_cond_signal(&al->cond);
	pthread_mutex_unlock(&al->mtx);
}

void
attemptlog_close(struct attemptlog *al)
{
	if (al == NULL)
		return;
	pthread_mutex_lock(&al->mtx);
	al->stopping = true;
	pthread_cond_signal(&al->cond);
	pthread_mutex_unlock(&al->mtx);
	pthread_join(al->thread, NULL);
	pthread_cond_destroy(&al->cond);
	pthread_cond_destroy(&al->opened);
	pthread_mutex_destroy(&al->mtx);
	al_free(al);
}
