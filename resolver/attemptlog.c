/*
 * attemptlog: see attemptlog.h.
 *
 * Two bounded rings of fixed-size records, one for blocked attempts and
 * one for the optional full query log, so that a flood of ordinary queries
 * can never crowd out the attempts. One mutex guards both rings' indexes;
 * producers copy a record into the free slot at the tail and the writer
 * reads the slots at the head *without* the lock (producers never touch
 * them) and releases them only after its transaction has committed. So a
 * failed write leaves every row where it was, and the retry reads it again.
 *
 * The writer thread also owns everything slow: formatting names, client
 * pseudonyms, the sink, error and drop messages, and retention.
 */
#include <sys/random.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ldns/ldns.h>

#include "attemptlog.h"
#include "log.h"
#include "sha256.h"
#include "sink.h"

#define AL_BATCH_MAX		1024	/* rows per transaction and table */
#define AL_IDLE_MS		500	/* longest sleep: commit cadence */
#define AL_LINGER_MS		50	/* gather small batches this long */
#define AL_RETRY_MS		1000	/* retry an unwritable database */
#define AL_DROP_REPORT_MS	5000	/* at most one drop summary per */
#define AL_CLOSE_RETRY_MS	5000	/* at close, retry a failing db for */
#define AL_EXPIRE_ROWS		1000	/* rows deleted per transaction */
#define AL_EXPIRE_EVERY_MS	(24 * 3600 * 1000LL)
#define AL_QNAME_TEXT		1024	/* 255 wire bytes, each up to \DDD */
#define AL_CLIENT_TEXT		64

/* Copies of the match strings: the blocklist may be swapped meanwhile. */
#define AL_RULE_MAX		254
#define AL_CATEGORY_MAX		64
#define AL_SITE_MAX		96
#define AL_UPSTREAM_MAX		64

union al_addr {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
};

/*
 * The strings of a record are packed one after the other in data (wire
 * qname, then NUL-terminated text), so that a typical record touches two
 * or three cache lines of its slot rather than one per field.
 */
struct al_attempt_rec {
	int64_t		ts_ms;
	union al_addr	client;
	uint16_t	qtype;
	uint16_t	category_off;	/* rule is at data + qname_len */
	uint16_t	site_off;	/* 0: no site */
	uint8_t		transport;
	uint8_t		qname_len;
	char		data[255 + AL_RULE_MAX + AL_CATEGORY_MAX +
			    AL_SITE_MAX];
};

struct al_query_rec {
	int64_t		ts_ms;
	union al_addr	client;
	uint32_t	duration_us;
	uint16_t	qtype;
	uint8_t		transport;
	uint8_t		rcode;
	bool		cached;
	bool		blocked;
	bool		has_upstream;	/* at data + qname_len */
	uint8_t		qname_len;
	char		data[255 + AL_UPSTREAM_MAX];
};

/* Rows dropped since the writer last took them, for table log_gaps. */
struct al_gap {
	uint64_t	rows;
	int64_t		ts_start;
	int64_t		ts_end;
	char		reason[256];
};

struct al_ring {
	uint8_t		*slots;
	size_t		 slot_size;
	size_t		 cap;
	size_t		 head;		/* oldest row */
	size_t		 count;
	uint64_t	 queued;
	uint64_t	 written;
	uint64_t	 dropped;
	struct al_gap	 gap;		/* drops not yet taken by the writer */
	const char	*table;
};

/* What the writer needs of the configuration: its own copy (see reload). */
struct al_settings {
	enum client_identity	 identity;
	uint8_t			*key;
	size_t			 keylen;
	struct config_client	*clients;
	size_t			 nclients;
	unsigned		 retention_days;
};

/* The text a formatted row points to. */
struct al_text {
	char	qname[AL_QNAME_TEXT];
	char	client[AL_CLIENT_TEXT];
	char	qtype[16];
	char	rcode[16];
};

/* State only the writer thread touches. */
struct al_writer {
	const struct sink_ops	*ops;
	struct sink		*sink;
	struct al_settings	*set;
	bool			 failing;
	char			 err[512];	/* cause of the failure */
	int64_t			 fail_since;	/* monotonic ms */
	int64_t			 retry_at;
	bool			 recovering;	/* catching up after a failure */
	uint64_t		 recovered_rows;
	int64_t			 last_write;
	struct al_gap		 gaps[2];	/* attempts, queries: unsaved */
	uint64_t		 drops_logged;
	int64_t			 drops_logged_at;
	bool			 drop_episode;
	int64_t			 expire_at;	/* next retention pass */
	int64_t			 expire_cutoff;	/* wall ms; 0: pass not running */

	uint64_t		 expired;	/* rows deleted this pass */
	int64_t			 stop_at;	/* when close() was seen */

	/* One batch, formatted. */
	struct sink_attempt	 attempts[AL_BATCH_MAX];
	struct sink_query	 queries[AL_BATCH_MAX];
	struct al_text		 atext[AL_BATCH_MAX];
	struct al_text		 qtext[AL_BATCH_MAX];
};

struct attemptlog {
	char			*path;
	pthread_t		 thread;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	struct al_ring		 attempts;
	struct al_ring		 queries;
	bool			 stopping;
	bool			 writer_idle;	/* waiting for rows: wake it */
	struct al_settings	*next_set;	/* from a reload, for the writer */
	uint64_t		 write_errors;
	atomic_bool		 all_queries;
	uint8_t			 random_key[32]; /* when no pseudonym_key */
	struct al_writer	 w;
};

static int64_t
al_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
al_now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Copy src into dst, cut on a UTF-8 character boundary if too long.
 * Returns the bytes used, NUL included.
 */
static size_t
al_copy_str(char *dst, size_t dstlen, const char *src)
{
	size_t n;

	if (src == NULL) {
		dst[0] = '\0';
		return 1;
	}
	n = strnlen(src, dstlen);
	if (n == dstlen) {
		n = dstlen - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
	return n + 1;
}

static void
al_copy_addr(union al_addr *dst, const struct sockaddr *sa)
{
	memset(dst, 0, sizeof(*dst));
	if (sa == NULL)
		dst->sa.sa_family = AF_UNSPEC;
	else if (sa->sa_family == AF_INET)
		memcpy(&dst->sin, sa, sizeof(dst->sin));
	else if (sa->sa_family == AF_INET6)
		memcpy(&dst->sin6, sa, sizeof(dst->sin6));
	else
		dst->sa.sa_family = AF_UNSPEC;
}

/* ---- the queue (any thread) ---- */

static int
al_ring_init(struct al_ring *r, size_t cap, size_t slot_size,
    const char *table)
{
	r->slots = calloc(cap, slot_size);
	r->cap = cap;
	r->slot_size = slot_size;
	r->table = table;
	return r->slots == NULL ? -1 : 0;
}

static void *
al_ring_slot(const struct al_ring *r, size_t i)
{
	return r->slots + ((r->head + i) % r->cap) * r->slot_size;
}

/* A free slot at the tail, or NULL (row counted as dropped). Locked. */
static void *
al_ring_reserve(struct al_ring *r, int64_t ts_ms)
{
	if (r->count == r->cap) {
		r->dropped++;
		if (r->gap.rows++ == 0)
			r->gap.ts_start = ts_ms;
		r->gap.ts_end = ts_ms;
		return NULL;
	}
	r->queued++;
	return al_ring_slot(r, r->count++);
}

static void
al_wake_locked(struct attemptlog *al)
{
	if (al->writer_idle) {
		al->writer_idle = false;
		pthread_cond_signal(&al->cond);
	}
}

static void
al_pack_attempt(struct al_attempt_rec *rec, const uint8_t *qname,
    size_t qname_len, const struct blocklist_match *m)
{
	size_t off;

	rec->qname_len = qname_len > 255 ? 255 : (uint8_t)qname_len;
	memcpy(rec->data, qname, rec->qname_len);
	off = rec->qname_len;
	off += al_copy_str(rec->data + off, AL_RULE_MAX, m ? m->rule : NULL);
	rec->category_off = (uint16_t)off;
	off += al_copy_str(rec->data + off, AL_CATEGORY_MAX,
	    m ? m->category : NULL);
	rec->site_off = 0;
	if (m != NULL && m->site != NULL) {
		rec->site_off = (uint16_t)off;
		al_copy_str(rec->data + off, AL_SITE_MAX, m->site);
	}
}

void
attemptlog_append(struct attemptlog *al, const struct attempt *a)
{
	struct al_attempt_rec *rec;
	const struct blocklist_match *m = a->match;

	if (al == NULL)
		return;
	pthread_mutex_lock(&al->mtx);
	if ((rec = al_ring_reserve(&al->attempts, a->ts_ms)) != NULL) {
		rec->ts_ms = a->ts_ms;
		al_copy_addr(&rec->client, a->client);
		rec->qtype = a->qtype;
		rec->transport = (uint8_t)a->transport;
		al_pack_attempt(rec, a->qname, a->qname_len, m);
		al_wake_locked(al);
	}
	pthread_mutex_unlock(&al->mtx);
}

void
attemptlog_append_query(struct attemptlog *al, const struct query_event *q)
{
	struct al_query_rec *rec;

	if (al == NULL || !atomic_load_explicit(&al->all_queries,
	    memory_order_relaxed))
		return;
	pthread_mutex_lock(&al->mtx);
	if ((rec = al_ring_reserve(&al->queries, q->ts_ms)) != NULL) {
		rec->ts_ms = q->ts_ms;
		al_copy_addr(&rec->client, q->client);
		rec->duration_us = q->duration_us;
		rec->qtype = q->qtype;
		rec->transport = (uint8_t)q->transport;
		rec->rcode = q->rcode;
		rec->cached = q->cached;
		rec->blocked = q->blocked;
		rec->has_upstream = q->upstream != NULL;
		rec->qname_len = q->qname_len > 255 ? 255 :
		    (uint8_t)q->qname_len;
		memcpy(rec->data, q->qname, rec->qname_len);
		al_copy_str(rec->data + rec->qname_len, AL_UPSTREAM_MAX,
		    q->upstream);
		al_wake_locked(al);
	}
	pthread_mutex_unlock(&al->mtx);
}

void
attemptlog_get_stats(struct attemptlog *al, struct attemptlog_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (al == NULL)
		return;
	pthread_mutex_lock(&al->mtx);
	out->queued = al->attempts.queued + al->queries.queued;
	out->written = al->attempts.written + al->queries.written;
	out->dropped = al->attempts.dropped + al->queries.dropped;
	out->write_errors = al->write_errors;
	out->pending = al->attempts.count + al->queries.count;
	pthread_mutex_unlock(&al->mtx);
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

/* ---- formatting (writer thread) ---- */

/* Presentation format, lower case, no trailing dot; "." for the root. */
static void
al_format_qname(const uint8_t *wire, size_t len, char *out)
{
	size_t i = 0, o = 0;

	while (i < len && wire[i] != 0) {
		size_t lab = wire[i++];

		if (lab > 63 || lab > len - i)
			break;		/* not from a valid packet: stop */
		if (o > 0)
			out[o++] = '.';
		for (size_t j = 0; j < lab; j++, i++) {
			uint8_t c = wire[i];

			if (c >= 'A' && c <= 'Z')
				c += 'a' - 'A';
			if (c == '.' || c == '\\') {
				out[o++] = '\\';
				out[o++] = (char)c;
			} else if (c <= 0x20 || c >= 0x7f) {
				o += (size_t)snprintf(out + o, 5, "\\%03u", c);
			} else
				out[o++] = (char)c;
		}
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
}

static const char *
al_format_qtype(uint16_t qtype, char *buf, size_t len)
{
	const ldns_rr_descriptor *d = ldns_rr_descript(qtype);

	if (d != NULL && d->_type == qtype && d->_name != NULL)
		return d->_name;
	/* Query-only types have no RR descriptor in ldns. */
	switch (qtype) {
	case 251:
		return "IXFR";
	case 252:
		return "AXFR";
	case 253:
		return "MAILB";
	case 254:
		return "MAILA";
	case 255:
		return "ANY";
	}
	snprintf(buf, len, "TYPE%u", qtype);
	return buf;
}

static const char *
al_format_rcode(uint8_t rcode, char *buf, size_t len)
{
	static const char *names[] = {
		"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",
		"REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
		"NOTZONE",
	};

	if (rcode < sizeof(names) / sizeof(names[0]))
		return names[rcode];
	snprintf(buf, len, "RCODE%u", rcode);
	return buf;
}

/* The address as text; IPv4-mapped IPv6 shown as IPv4. */
static void
al_format_addr(const union al_addr *a, char *out, size_t len)
{
	const struct in6_addr *in6 = &a->sin6.sin6_addr;

	if (a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(in6))
		inet_ntop(AF_INET, in6->s6_addr + 12, out, (socklen_t)len);
	else if (a->sa.sa_family == AF_INET6)
		inet_ntop(AF_INET6, in6, out, (socklen_t)len);
	else if (a->sa.sa_family == AF_INET)
		inet_ntop(AF_INET, &a->sin.sin_addr, out, (socklen_t)len);
	else
		snprintf(out, len, "unknown");
}

static const char *
al_client_name(const struct al_settings *set, const union al_addr *a)
{
	/* A dual-stack socket gives ::ffff:a.b.c.d; match it as IPv4. */
	struct sockaddr_in v4;
	const struct sockaddr *sa = &a->sa;

	if (a->sa.sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&a->sin6.sin6_addr)) {
		memset(&v4, 0, sizeof(v4));
		v4.sin_family = AF_INET;
		memcpy(&v4.sin_addr, a->sin6.sin6_addr.s6_addr + 12, 4);
		sa = (const struct sockaddr *)&v4;
	}
	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return NULL;
	for (size_t i = 0; i < set->nclients; i++)
		if (cidr_contains(&set->clients[i].net, sa))
			return set->clients[i].name;
	return NULL;
}

static void
al_pseudonym(const uint8_t *key, size_t keylen, const char *addr, char *out)
{
	uint8_t mac[SHA256_DIGEST_LEN];

	hmac_sha256(key, keylen, addr, strlen(addr), mac);
	for (int i = 0; i < ATTEMPTLOG_PSEUDONYM_LEN / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

int
attemptlog_pseudonym(const char *key, const char *addr, char *out)
{
	union al_addr a;
	char text[AL_CLIENT_TEXT];

	memset(&a, 0, sizeof(a));
	out[0] = '\0';
	if (inet_pton(AF_INET, addr, &a.sin.sin_addr) == 1)
		a.sa.sa_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &a.sin6.sin6_addr) == 1)
		a.sa.sa_family = AF_INET6;
	else
		return -1;
	al_format_addr(&a, text, sizeof(text));
	al_pseudonym((const uint8_t *)key, strlen(key), text, out);
	return 0;
}

/* client per log.client_identity; *name from clients: (or NULL). */
static void
al_format_client(const struct al_settings *set, const union al_addr *a,
    char *out, const char **name)
{
	char addr[AL_CLIENT_TEXT];

	al_format_addr(a, addr, sizeof(addr));
	*name = al_client_name(set, a);
	switch (set->identity) {
	case CLIENT_IDENTITY_NAME:
		snprintf(out, AL_CLIENT_TEXT, "%s", *name ? *name : addr);
		break;
	case CLIENT_IDENTITY_PSEUDONYM:
		al_pseudonym(set->key, set->keylen, addr, out);
		break;
	default:
		snprintf(out, AL_CLIENT_TEXT, "%s", addr);
		break;
	}
}

static const char *
al_transport_text(uint8_t t)
{
	return t == TRANSPORT_TCP ? "tcp" : "udp";
}

static void
al_format_attempt(struct al_writer *w, size_t i,
    const struct al_attempt_rec *rec)
{
	struct sink_attempt *row = &w->attempts[i];
	struct al_text *t = &w->atext[i];

	row->ts_ms = rec->ts_ms;
	al_format_client(w->set, &rec->client, t->client, &row->client_name);
	row->client = t->client;
	al_format_qname((const uint8_t *)rec->data, rec->qname_len,
	    t->qname);
	row->qname = t->qname;
	row->qtype = al_format_qtype(rec->qtype, t->qtype, sizeof(t->qtype));
	row->rule = rec->data + rec->qname_len;
	row->category = rec->data + rec->category_off;
	row->site = rec->site_off ? rec->data + rec->site_off : NULL;
	row->transport = al_transport_text(rec->transport);
}

static void
al_format_query(struct al_writer *w, size_t i, const struct al_query_rec *rec)
{
	struct sink_query *row = &w->queries[i];
	struct al_text *t = &w->qtext[i];

	row->ts_ms = rec->ts_ms;
	al_format_client(w->set, &rec->client, t->client, &row->client_name);
	row->client = t->client;
	al_format_qname((const uint8_t *)rec->data, rec->qname_len,
	    t->qname);
	row->qname = t->qname;
	row->qtype = al_format_qtype(rec->qtype, t->qtype, sizeof(t->qtype));
	row->rcode = al_format_rcode(rec->rcode, t->rcode, sizeof(t->rcode));
	row->cached = rec->cached;
	row->blocked = rec->blocked;
	row->upstream = rec->has_upstream ? rec->data + rec->qname_len :
	    NULL;
	row->duration_us = rec->duration_us;
	row->transport = al_transport_text(rec->transport);
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
		if (w->failing)
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
 */
static int64_t
al_writer_until(struct attemptlog *al, int64_t now)
{
	struct al_writer *w = &al->w;
	bool rows = al_has_rows(al);
	int64_t until;

	if (al->next_set != NULL || (al->stopping && !rows))
		return 0;
	if (w->sink == NULL)
		return now >= w->retry_at ? 0 : w->retry_at;
	if (rows) {
		if (al->stopping || al->attempts.count >= AL_BATCH_MAX ||
		    al->queries.count >= AL_BATCH_MAX ||
		    now >= w->last_write + AL_LINGER_MS)
			return 0;
		return w->last_write + AL_LINGER_MS;
	}
	if (w->set->retention_days > 0 &&
	    (w->expire_cutoff != 0 || now >= w->expire_at))
		return 0;
	until = now + AL_IDLE_MS;
	if (w->set->retention_days > 0 && w->expire_at < until)
		until = w->expire_at;
	al->writer_idle = true;
	return until;
}

static void
al_cond_wait_until(struct attemptlog *al, int64_t until_mono)
{
	struct timespec ts;

	ts.tv_sec = until_mono / 1000;
	ts.tv_nsec = (long)(until_mono % 1000) * 1000000;
	pthread_cond_timedwait(&al->cond, &al->mtx, &ts);
}

static void
al_writer_wait(struct attemptlog *al, struct al_take *t)
{
	struct al_writer *w = &al->w;
	int64_t until;

	pthread_mutex_lock(&al->mtx);
	while ((until = al_writer_until(al, al_now_mono())) != 0) {
		al_cond_wait_until(al, until);
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
	int64_t now = al_now_mono();
	char cause[sizeof(w->err)];

	/* why may be the sink's own error text, gone with the sink. */
	snprintf(cause, sizeof(cause), "%s", why);

	pthread_mutex_lock(&al->mtx);
	al->write_errors++;
	pthread_mutex_unlock(&al->mtx);
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
	    (al_now_mono() - w->fail_since) / 1000, w->recovered_rows);
	w->recovering = false;
}

static void
al_writer_open(struct attemptlog *al)
{
	struct al_writer *w = &al->w;
	char err[512];

	if ((w->sink = w->ops->open(al->path, err, sizeof(err))) == NULL)
		al_writer_failed(al, err);
	else
		al_writer_succeeded(al);
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
	struct sink_gap gaps[2];
	struct sink_batch b;

	memset(&b, 0, sizeof(b));
	b.ngaps = al_batch_gaps(w, gaps);
	if (t->natt == 0 && t->nq == 0 && b.ngaps == 0)
		return;
	for (size_t i = 0; i < t->natt; i++)
		al_format_attempt(w, i, al_ring_slot(&al->attempts, i));
	for (size_t i = 0; i < t->nq; i++)
		al_format_query(w, i, al_ring_slot(&al->queries, i));
	b.attempts = w->attempts;
	b.nattempts = t->natt;
	b.queries = w->queries;
	b.nqueries = t->nq;
	b.gaps = gaps;
	b.now_ms = al_now_wall();
	if (w->ops->write_batch(w->sink, &b) == -1) {
		al_writer_failed(al, w->ops->error(w->sink));
		return;
	}
	pthread_mutex_lock(&al->mtx);
	al->attempts.head = (al->attempts.head + t->natt) % al->attempts.cap;
	al->attempts.count -= t->natt;
	al->attempts.written += t->natt;
	al->queries.head = (al->queries.head + t->nq) % al->queries.cap;
	al->queries.count -= t->nq;
	al->queries.written += t->nq;
	/*
	 * An empty ring starts again at slot 0, so that only as many slots
	 * as the deepest backlog are ever touched: memory in use follows
	 * the load, not queue_size.
	 */
	if (al->attempts.count == 0)
		al->attempts.head = 0;
	if (al->queries.count == 0)
		al->queries.head = 0;
	pthread_mutex_unlock(&al->mtx);
	memset(w->gaps, 0, sizeof(w->gaps));
	w->last_write = al_now_mono();
	w->recovered_rows += t->natt + t->nq;
}

/* The first drop at once, then a summary at most every few seconds. */
static void
al_writer_log_drops(struct attemptlog *al, bool final)
{
	struct al_writer *w = &al->w;
	int64_t now = al_now_mono();
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

/* One short retention step, between batches. */
static void
al_writer_expire(struct attemptlog *al)
{
	struct al_writer *w = &al->w;
	int64_t now = al_now_mono();
	long n;

	if (w->set->retention_days == 0 || w->sink == NULL)
		return;
	if (w->expire_cutoff == 0) {
		if (now < w->expire_at)
			return;
		w->expire_cutoff = al_now_wall() -
		    (int64_t)w->set->retention_days * 86400 * 1000;
		w->expired = 0;
	}
	n = w->ops->expire(w->sink, w->expire_cutoff, AL_EXPIRE_ROWS);
	if (n < 0) {
		al_writer_failed(al, w->ops->error(w->sink));
		return;
	}
	w->expired += (uint64_t)n;
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
		w->expire_at = al_now_mono();
	}
	al_settings_free(w->set);
	w->set = set;
}

/* True when close() may return: all written, or given up. */
static bool
al_writer_done(struct attemptlog *al)
{
	struct al_writer *w = &al->w;
	struct attemptlog_stats st;
	bool rows;

	if (w->stop_at == 0)
		w->stop_at = al_now_mono();
	pthread_mutex_lock(&al->mtx);
	rows = al_has_rows(al);
	pthread_mutex_unlock(&al->mtx);
	if (!rows)
		return true;
	if (!w->failing || al_now_mono() - w->stop_at < AL_CLOSE_RETRY_MS)
		return false;
	attemptlog_get_stats(al, &st);
	log_warnx("attempt log: stopping: %" PRIu64 " rows could not be"
	    " written and are lost: %s", st.pending, w->err);
	return true;
}

static void *
al_writer_main(void *arg)
{
	struct attemptlog *al = arg;
	struct al_writer *w = &al->w;
	struct al_take t;

	for (;;) {
		al_writer_wait(al, &t);
		al_writer_settings(al, t.set);
		if (w->sink == NULL && al_now_mono() >= w->retry_at)
			al_writer_open(al);
		if (w->sink != NULL)
			al_writer_flush(al, &t);
		al_writer_log_drops(al, t.stopping);
		al_writer_log_recovery(al);
		if (t.stopping) {
			if (al_writer_done(al))
				break;
		} else
			al_writer_expire(al);
	}
	w->ops->close(w->sink);
	w->sink = NULL;
	return NULL;
}

/* ---- open and close ---- */

static void
al_free(struct attemptlog *al)
{
	free(al->attempts.slots);
	free(al->queries.slots);
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
	pthread_condattr_destroy(&ca);
	/* Signals are the event loop's business, never the writer's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&al->thread, NULL, al_writer_main, al);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		log_warn("attempt log: cannot start the writer thread");
		pthread_cond_destroy(&al->cond);
		pthread_mutex_destroy(&al->mtx);
		return -1;
	}
	return 0;
}

struct attemptlog *
attemptlog_open(const struct config *cfg)
{
	return attemptlog_open_sink(cfg, &sink_sqlite_ops);
}

struct attemptlog *
attemptlog_open_sink(const struct config *cfg, const struct sink_ops *ops)
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
	if ((al->path = strdup(cfg->log.database)) == NULL ||
	    al_ring_init(&al->attempts, cap, sizeof(struct al_attempt_rec),
	    "attempts") == -1 ||
	    al_ring_init(&al->queries, cap, sizeof(struct al_query_rec),
	    "queries") == -1 ||
	    (al->w.set = al_settings_new(al, cfg)) == NULL) {
		log_warnx("attempt log: out of memory for a queue of %zu"
		    " rows", cap);
		al_free(al);
		return NULL;
	}
	al->w.ops = ops;
	atomic_init(&al->all_queries, cfg->log.all_queries);
	if (al_start_thread(al) == -1) {
		al_free(al);
		return NULL;
	}
	return al;
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
	pthread_mutex_destroy(&al->mtx);
	al_free(al);
}
