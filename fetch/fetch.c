/*
 * fetch: the thread that downloads each url: import when it is due, the
 * status file beside each copy, and what "check" and "update-lists" show.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fetch_internal.h"
#include "log.h"

#define RETRY_MAX_S	300	/* a failed download is tried again by then */
#define TICK_MS		1000	/* how often the thread looks at the sources */

/* A source as the thread keeps it: copies, and the copy it last saw. */
struct source {
	char		*url;
	char		*path;
	char		*sha256;
	char		*format;
	unsigned	 refresh_s;
	uint64_t	 max_bytes;
	struct stat	 seen;		/* the copy when loaded or replaced */
	bool		 seen_ok;
};

struct fetch {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	pthread_t	 thread;
	bool		 started;
	atomic_bool	 stop;
	struct source	*src;
	size_t		 nsrc;
	char		*ca_file;
	unsigned	 timeout_ms;
	void		(*changed)(void *);
	void		*arg;
};

/* ---- the status file ---- */

int
fetch_status_write(const char *path, const struct fetch_status *st)
{
	char *tmp = NULL, *meta = NULL;
	FILE *f;
	int rc = -1;

	if (asprintf(&meta, "%s.meta", path) == -1 ||
	    asprintf(&tmp, "%s.meta.tmp", path) == -1 ||
	    (f = fopen(tmp, "w")) == NULL)
		goto out;
	fprintf(f, "fetched=%lld\ntried=%lld\nnames=%zu\nresult=%s\n"
	    "etag=%s\nlast_modified=%s\ndigest=%s\n", (long long)st->fetched,
	    (long long)st->tried, st->names, st->result, st->etag,
	    st->last_modified, st->digest);
	if (fclose(f) == 0 && rename(tmp, meta) == 0)
		rc = 0;
out:
	if (rc == -1 && tmp != NULL)
		unlink(tmp);
	free(tmp);
	free(meta);
	return rc;
}

/* One "key=value" line of the status file into st. */
static void
status_line(char *line, struct fetch_status *st)
{
	char *v = strchr(line, '=');

	if (v == NULL)
		return;
	*v++ = '\0';
	v[strcspn(v, "\n")] = '\0';
	if (strcmp(line, "fetched") == 0)
		st->fetched = (time_t)strtoll(v, NULL, 10);
	else if (strcmp(line, "tried") == 0)
		st->tried = (time_t)strtoll(v, NULL, 10);
	else if (strcmp(line, "names") == 0)
		st->names = (size_t)strtoull(v, NULL, 10);
	else if (strcmp(line, "result") == 0)
		snprintf(st->result, sizeof(st->result), "%s", v);
	else if (strcmp(line, "etag") == 0)
		snprintf(st->etag, sizeof(st->etag), "%s", v);
	else if (strcmp(line, "last_modified") == 0)
		snprintf(st->last_modified, sizeof(st->last_modified), "%s", v);
	else if (strcmp(line, "digest") == 0)
		snprintf(st->digest, sizeof(st->digest), "%s", v);
}

int
fetch_status_read(const char *path, struct fetch_status *st)
{
	char *meta, line[512];
	FILE *f;

	memset(st, 0, sizeof(*st));
	if (asprintf(&meta, "%s.meta", path) == -1)
		return -1;
	f = fopen(meta, "r");
	free(meta);
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		status_line(line, st);
	fclose(f);
	return 0;
}

time_t
fetch_due(const struct fetch_status *st, unsigned refresh_s)
{
	unsigned retry = refresh_s < RETRY_MAX_S ? refresh_s : RETRY_MAX_S;

	if (st->tried == 0 && st->fetched == 0)
		return 0;
	if (st->fetched >= st->tried)
		return st->fetched + (time_t)refresh_s;
	/* The last try failed: again sooner than a refresh would come, but
	 * not in a loop. */
	if (st->fetched + (time_t)refresh_s > st->tried &&
	    st->fetched + (time_t)refresh_s < st->tried + (time_t)retry)
		return st->fetched + (time_t)refresh_s;
	return st->tried + (time_t)retry;
}

/* ---- the sources ---- */

static void
sources_free(struct source *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].url);
		free(s[i].path);
		free(s[i].sha256);
		free(s[i].format);
	}
	free(s);
}

/* Copies of bl's sources, each with the copy as it is now. */
static struct source *
sources_copy(const struct blocklist *bl, size_t *n)
{
	struct source *s = calloc(blocklist_nsources(bl) + 1, sizeof(*s));
	struct blocklist_source b;

	*n = 0;
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < blocklist_nsources(bl); i++, (*n)++) {
		blocklist_source(bl, i, &b);
		s[i].url = strdup(b.url);
		s[i].path = strdup(b.path);
		s[i].format = strdup(b.format);
		s[i].sha256 = b.sha256 ? strdup(b.sha256) : NULL;
		s[i].refresh_s = b.refresh_s;
		s[i].max_bytes = b.max_bytes;
		s[i].seen_ok = s[i].path != NULL &&
		    stat(s[i].path, &s[i].seen) == 0;
		if (s[i].url == NULL || s[i].path == NULL ||
		    s[i].format == NULL || (b.sha256 && s[i].sha256 == NULL)) {
			sources_free(s, *n + 1);
			return NULL;
		}
	}
	return s;
}

static void
source_view(const struct source *s, struct blocklist_source *b)
{
	b->url = s->url;
	b->path = s->path;
	b->format = s->format;
	b->sha256 = s->sha256;
	b->refresh_s = s->refresh_s;
	b->max_bytes = s->max_bytes;
}

static void
settings_set(struct fetch *f, const struct config *cfg)
{
	free(f->ca_file);
	f->ca_file = cfg->tls_ca_file ? strdup(cfg->tls_ca_file) : NULL;
	f->timeout_ms = cfg->blocklist.download_timeout_ms;
}

struct fetch *
fetch_new(const struct config *cfg, const struct blocklist *bl,
    void (*changed)(void *), void *arg)
{
	struct fetch *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_mutex_init(&f->mtx, NULL);
	pthread_cond_init(&f->cond, NULL);
	atomic_init(&f->stop, false);
	f->changed = changed;
	f->arg = arg;
	settings_set(f, cfg);
	if ((f->src = sources_copy(bl, &f->nsrc)) == NULL) {
		fetch_free(f);
		return NULL;
	}
	return f;
}

void
fetch_reconfigure(struct fetch *f, const struct config *cfg,
    const struct blocklist *bl)
{
	size_t n;
	struct source *s = sources_copy(bl, &n);

	if (s == NULL) {
		log_warnx("fetch: out of memory; keeping the list of sources");
		return;
	}
	pthread_mutex_lock(&f->mtx);
	sources_free(f->src, f->nsrc);
	f->src = s;
	f->nsrc = n;
	settings_set(f, cfg);
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->mtx);
}

/* ---- the thread ---- */

/* Did the copy change since it was loaded, by another process (such as
 * "dnswarden update-lists")? Called with the lock held. */
static bool
copy_changed(struct source *s)
{
	struct stat st;
	bool now_ok = stat(s->path, &st) == 0;

	if (now_ok == s->seen_ok && (!now_ok ||
	    (st.st_ino == s->seen.st_ino && st.st_mtim.tv_sec ==
	    s->seen.st_mtim.tv_sec && st.st_mtim.tv_nsec ==
	    s->seen.st_mtim.tv_nsec && st.st_size == s->seen.st_size)))
		return false;
	s->seen = st;
	s->seen_ok = now_ok;
	return true;
}

/*
 * Download source i if it is due at now (the lock held, and released
 * for the download). Returns true when its copy changed.
 */
static bool
source_tick(struct fetch *f, size_t i, time_t now)
{
	struct fetch_status st;
	struct blocklist_source b;
	struct fetch_opts o = { .stop = &f->stop };
	struct source s;
	enum fetch_outcome out;

	fetch_status_read(f->src[i].path, &st);
	if (fetch_due(&st, f->src[i].refresh_s) > now)
		return copy_changed(&f->src[i]);
	s = f->src[i];
	s.url = strdup(s.url), s.path = strdup(s.path);
	s.format = strdup(s.format);
	s.sha256 = s.sha256 ? strdup(s.sha256) : NULL;
	o.ca_file = f->ca_file ? strdup(f->ca_file) : NULL;
	o.timeout_ms = f->timeout_ms;
	pthread_mutex_unlock(&f->mtx);
	out = FETCH_FAILED;
	if (s.url && s.path && s.format) {
		source_view(&s, &b);
		out = fetch_download(&b, &o, now, &st);
		if (out == FETCH_FAILED)
			log_warnx("%s: %s", s.url, st.result);
		else
			log_info("%s: %s", s.url, st.result);
	}
	free(s.url), free(s.path), free(s.format), free(s.sha256);
	free((char *)o.ca_file);
	pthread_mutex_lock(&f->mtx);
	/* The sources may have been replaced meanwhile: find it again. */
	return out == FETCH_CHANGED || (i < f->nsrc && copy_changed(
	    &f->src[i]));
}

static void *
fetch_main(void *arg)
{
	struct fetch *f = arg;
	struct timespec ts;
	bool changed;

	pthread_mutex_lock(&f->mtx);
	while (!atomic_load(&f->stop)) {
		changed = false;
		for (size_t i = 0; i < f->nsrc && !atomic_load(&f->stop); i++)
			changed |= source_tick(f, i, time(NULL));
		if (changed) {
			pthread_mutex_unlock(&f->mtx);
			f->changed(f->arg);
			pthread_mutex_lock(&f->mtx);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += TICK_MS / 1000;
		if (!atomic_load(&f->stop))
			pthread_cond_timedwait(&f->cond, &f->mtx, &ts);
	}
	pthread_mutex_unlock(&f->mtx);
	return NULL;
}

int
fetch_start(struct fetch *f)
{
	if (pthread_create(&f->thread, NULL, fetch_main, f) != 0)
		return -1;
	f->started = true;
	return 0;
}

void
fetch_free(struct fetch *f)
{
	if (f == NULL)
		return;
	if (f->started) {
		pthread_mutex_lock(&f->mtx);
		atomic_store(&f->stop, true);
		pthread_cond_signal(&f->cond);
		pthread_mutex_unlock(&f->mtx);
		pthread_join(f->thread, NULL);
	}
	sources_free(f->src, f->nsrc);
	free(f->ca_file);
	pthread_mutex_destroy(&f->mtx);
	pthread_cond_destroy(&f->cond);
	free(f);
	curl_global_cleanup();
}

int
fetch_update_all(struct fetch *f, FILE *out)
{
	struct fetch_opts o = { .ca_file = f->ca_file,
	    .timeout_ms = f->timeout_ms, .stop = &f->stop };
	struct blocklist_source b;
	struct fetch_status st;
	int failed = 0;

	for (size_t i = 0; i < f->nsrc; i++) {
		source_view(&f->src[i], &b);
		fetch_status_read(b.path, &st);
		if (fetch_download(&b, &o, time(NULL), &st) == FETCH_FAILED)
			failed++;
		fprintf(out, "%s: %s\n", b.url, st.result);
	}
	return failed;
}

/* "3h", "2d", "45s": an age for people. */
static void
age_text(time_t secs, char *out, size_t cap)
{
	if (secs < 120)
		snprintf(out, cap, "%llds", (long long)secs);
	else if (secs < 7200)
		snprintf(out, cap, "%lldm", (long long)secs / 60);
	else if (secs < 172800)
		snprintf(out, cap, "%lldh", (long long)secs / 3600);
	else
		snprintf(out, cap, "%lldd", (long long)secs / 86400);
}

void
fetch_print_status(const struct blocklist *bl, time_t now, FILE *out)
{
	struct blocklist_source b;
	struct fetch_status st;
	char age[32], tried[32];

	if (blocklist_nsources(bl) == 0)
		return;
	fprintf(out, "sources:\n");
	for (size_t i = 0; i < blocklist_nsources(bl); i++) {
		blocklist_source(bl, i, &b);
		fprintf(out, "  %s (%s, refresh %us): ", b.url, b.format,
		    b.refresh_s);
		if (fetch_status_read(b.path, &st) == -1 ||
		    (st.fetched == 0 && st.tried == 0)) {
			fprintf(out, "never downloaded\n");
			continue;
		}
		age_text(now - st.fetched, age, sizeof(age));
		age_text(now - st.tried, tried, sizeof(tried));
		if (st.fetched != 0)
			fprintf(out, "copy %s old, %zu names; ", age, st.names);
		else
			fprintf(out, "no good copy; ");
		fprintf(out, "last try %s ago: %s\n", tried, st.result);
	}
}
