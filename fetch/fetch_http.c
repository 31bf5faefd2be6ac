/*
 * fetch_http: one download of a url: import with libcurl, into a
 * temporary file beside the last good copy, which it replaces only when
 * the download is whole, within the size cap, matches the pinned digest,
 * reads as a list of its format and keeps at least half of the names.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "build_config.h"
#include "fetch_internal.h"

/* One download under way. */
struct dl {
	FILE		*out;
	uint64_t	 got;
	uint64_t	 max;
	bool		 too_big;
	EVP_MD_CTX	*md;
	char		 etag[256];
	char		 last_modified[128];
	atomic_bool	*stop;
};

static size_t
write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct dl *d = arg;

	n *= size;
	if (d->got + n > d->max) {
		d->too_big = true;
		return 0;	/* curl stops with CURLE_WRITE_ERROR */
	}
	d->got += n;
	EVP_DigestUpdate(d->md, p, n);
	return fwrite(p, 1, n, d->out);
}

/* Keep the value of header "name:" from line (n bytes) in out. */
static void
header_value(const char *line, size_t n, const char *name, char *out,
    size_t cap)
{
	size_t k = strlen(name), len;

	if (n <= k || strncasecmp(line, name, k) != 0)
		return;
	line += k, n -= k;
	while (n > 0 && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' ||
	    line[n - 1] == ' '))
		n--;
	len = n < cap - 1 ? n : cap - 1;
	memcpy(out, line, len);
	out[len] = '\0';
	/* Sent back in a header: nothing that would end it. */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20)
			out[i] = '?';
}

static size_t
header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct dl *d = arg;

	n *= size;
	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0)	/* a redirect's next */
		d->etag[0] = d->last_modified[0] = '\0';
	header_value(p, n, "etag:", d->etag, sizeof(d->etag));
	header_value(p, n, "last-modified:", d->last_modified,
	    sizeof(d->last_modified));
	return n;
}

static int
progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct dl *d = arg;

	return d->stop != NULL && atomic_load(d->stop) ? 1 : 0;
}

/* The request: conditional on the copy's validators, only HTTP(S). */
static struct curl_slist *
dl_setup(CURL *c, const struct blocklist_source *src,
    const struct fetch_opts *o, const struct fetch_status *st,
    struct dl *d)
{
	struct curl_slist *h = NULL;
	char line[400];

	curl_easy_setopt(c, CURLOPT_URL, src->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "dnswarden/" DNSWARDEN_VERSION);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)d->max);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, d);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (st->fetched != 0 && access(src->path, R_OK) == 0) {
		if (st->etag[0] != '\0') {
			snprintf(line, sizeof(line), "If-None-Match: %s",
			    st->etag);
			h = curl_slist_append(h, line);
		}
		if (st->last_modified[0] != '\0') {
			snprintf(line, sizeof(line), "If-Modified-Since: %s",
			    st->last_modified);
			h = curl_slist_append(h, line);
		}
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	return h;
}

/* The digest of what was downloaded matches the pin (or there is none). */
static bool
dl_pin_ok(struct dl *d, const char *pin, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	EVP_DigestFinal_ex(d->md, md, &n);
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return pin == NULL || strcasecmp(pin, hex) == 0;
}

/*
 * The file at tmp, downloaded whole: may it replace the last good copy?
 * It must read as a list of its format, and keep at least half of the
 * names (a cut-short file must not unblock half the list). 0 or -1, with
 * why in st->result.
 */
static int
dl_accept(const struct blocklist_source *src, const char *tmp,
    struct fetch_status *st, size_t *names)
{
	struct diag d;
	int rc;

	diag_init(&d);
	rc = blocklist_list_check(tmp, src->format, names, &d);
	if (rc == -1) {
		const char *t = diag_text(&d), *nl = strchr(t, '\n');
		const char *msg = strstr(t, ": ") ? strstr(t, ": ") + 2 : t;
		snprintf(st->result, sizeof(st->result), "refused: %.*s",
		    (int)(nl && nl > msg ? nl - msg : 200), msg);
	} else if (st->names > 0 && *names < st->names / 2 +
	    st->names % 2) {
		snprintf(st->result, sizeof(st->result), "refused: it would "
		    "shrink the list from %zu to %zu names; kept the last good "
		    "copy", st->names, *names);
		rc = -1;
	}
	diag_free(&d);
	return rc;
}

/* Why curl or the server failed, into st->result. */
static void
dl_failed(struct fetch_status *st, CURLcode cc, long code, const struct dl *d)
{
	if (d->too_big)
		snprintf(st->result, sizeof(st->result), "refused: larger "
		    "than %llu bytes", (unsigned long long)d->max);
	else if (cc == CURLE_FILESIZE_EXCEEDED)
		snprintf(st->result, sizeof(st->result), "refused: larger "
		    "than %llu bytes", (unsigned long long)d->max);
	else if (cc != CURLE_OK)
		snprintf(st->result, sizeof(st->result), "failed: %s",
		    curl_easy_strerror(cc));
	else
		snprintf(st->result, sizeof(st->result), "failed: HTTP %ld",
		    code);
}

/* After a 200 and a whole file at tmp: check it and put it in place. */
static enum fetch_outcome
dl_finish(const struct blocklist_source *src, struct dl *d, const char *tmp,
    time_t now, struct fetch_status *st)
{
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	size_t names;

	if (!dl_pin_ok(d, src->sha256, hex)) {
		snprintf(st->result, sizeof(st->result), "refused: SHA-256 "
		    "%.64s is not the pinned %.64s", hex, src->sha256);
		return FETCH_FAILED;
	}
	if (st->fetched != 0 && strcmp(hex, st->digest) == 0 &&
	    access(src->path, R_OK) == 0) {
		st->fetched = now;
		snprintf(st->result, sizeof(st->result), "not modified (same "
		    "content)");
		return FETCH_UNCHANGED;
	}
	if (dl_accept(src, tmp, st, &names) == -1)
		return FETCH_FAILED;
	if (rename(tmp, src->path) == -1) {
		snprintf(st->result, sizeof(st->result), "failed: cannot "
		    "replace %s: %s", src->path, strerror(errno));
		return FETCH_FAILED;
	}
	st->fetched = now;
	st->names = names;
	memcpy(st->digest, hex, sizeof(st->digest) - 1);
	st->digest[sizeof(st->digest) - 1] = '\0';
	snprintf(st->etag, sizeof(st->etag), "%s", d->etag);
	snprintf(st->last_modified, sizeof(st->last_modified), "%s",
	    d->last_modified);
	snprintf(st->result, sizeof(st->result), "downloaded: %zu names, "
	    "%llu bytes", names, (unsigned long long)d->got);
	return FETCH_CHANGED;
}

/* The directory that holds path, made (0755) when missing. */
static int
dl_dir(const char *path, struct fetch_status *st)
{
	char *dir = strdup(path), *slash;
	int rc = 0;

	if (dir == NULL)
		return -1;
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
			snprintf(st->result, sizeof(st->result), "failed: "
			    "cannot create %s: %s", dir, strerror(errno));
			rc = -1;
		}
	}
	free(dir);
	return rc;
}

static enum fetch_outcome
dl_run(const struct blocklist_source *src, const struct fetch_opts *o,
    time_t now, struct fetch_status *st, struct dl *d, const char *tmp)
{
	enum fetch_outcome out = FETCH_FAILED;
	struct curl_slist *h;
	long code = 0;
	CURLcode cc;
	CURL *c;

	if ((c = curl_easy_init()) == NULL)
		return FETCH_FAILED;
	h = dl_setup(c, src, o, st, d);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (fflush(d->out) != 0 && cc == CURLE_OK)
		cc = CURLE_WRITE_ERROR;
	if (cc == CURLE_OK && code == 304) {
		st->fetched = now;
		snprintf(st->result, sizeof(st->result), "not modified");
		out = FETCH_UNCHANGED;
	} else if (cc == CURLE_OK && code == 200)
		out = dl_finish(src, d, tmp, now, st);
	else
		dl_failed(st, cc, code, d);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return out;
}

enum fetch_outcome
fetch_download(const struct blocklist_source *src, const struct fetch_opts *o,
    time_t now, struct fetch_status *st)
{
	struct dl d = { .max = src->max_bytes ? src->max_bytes :
	    FETCH_MAX_BYTES_DEFAULT, .stop = o->stop };
	enum fetch_outcome out = FETCH_FAILED;
	char *tmp = NULL;

	st->tried = now;
	snprintf(st->result, sizeof(st->result), "failed: out of memory");
	if (dl_dir(src->path, st) == -1 ||
	    asprintf(&tmp, "%s.part", src->path) == -1) {
		fetch_status_write(src->path, st);
		return FETCH_FAILED;
	}
	if ((d.out = fopen(tmp, "w")) == NULL)
		snprintf(st->result, sizeof(st->result), "failed: cannot "
		    "write %s: %s", tmp, strerror(errno));
	else if ((d.md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(d.md, EVP_sha256(), NULL) == 1)
		out = dl_run(src, o, now, st, &d, tmp);
	if (d.out != NULL)
		fclose(d.out);
	EVP_MD_CTX_free(d.md);
	unlink(tmp);	/* gone already when it became the copy */
	free(tmp);
	fetch_status_write(src->path, st);
	return out;
}
