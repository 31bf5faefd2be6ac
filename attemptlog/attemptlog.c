/*
 * attemptlog: see attemptlog.h.
 *
 * Two bounded queues, one for blocked attempts and one for the optional
 * full query log, so that a flood of ordinary queries can never crowd out
 * the attempts. Each queue is a ring of variable-length records (a small
 * header, the client address, the wire name and the match strings, each
 * as long as it is) in a chain of 64 kB chunks: a row costs about what it
 * holds, about 80 bytes for a typical blocked name, and chunks are mapped
 * as the backlog grows and unmapped once the writer has emptied them, so
 * memory follows the rows waiting rather than log.queue_size, which
 * remains the limit in rows.
 *
 * One mutex guards both queues' positions. Producers measure a row outside
 * it and copy it to the tail inside it; the writer reads the records at
 * the head *without* the lock (producers never touch them) and releases
 * them only after its transaction has committed. So a failed write leaves
 * every row where it was, and the retry reads it again.
 *
 * The writer thread also owns everything slow: formatting names, client
 * pseudonyms, the sink, error and drop messages, and retention.
 */
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <arpa/inet.h>
#include <netinet/in.h>

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

#include <ldns/ldns.h>

#include "attemptlog.h"
#include "log.h"
#include "sha256.h"
#include "sink.h"

#define AL_BATCH_MAX		1024	/* rows per transaction and table */
#define AL_IDLE_MS		500	/* longest sleep: commit cadence */
#define AL_LINGER_MS		50	/* gather small batches this long */
#define AL_WRITER_NICE		10	/* the writer yields to event loops:
					   this much nicer than they are */
#define AL_RETRY_MS		1000	/* retry an unwritable database */
#define AL_DROP_REPORT_MS	5000	/* at most one drop summary per */
#define AL_OPEN_WAIT_MS		1000	/* start-up waits for the first open */
#define AL_EXPIRE_ROWS		1000	/* rows deleted per transaction */
#define AL_EXPIRE_EVERY_MS	(24 * 3600 * 1000LL)
#define AL_QNAME_TEXT		1024	/* 255 wire bytes, each up to \DDD */
#define AL_CLIENT_TEXT		64
#define AL_CLIENT_CACHE		256	/* formatted clients kept, a power of 2 */

/* The batch's text: names and clients, each row worst case AL_ROW_TEXT. */
#define AL_ROW_TEXT		(AL_QNAME_TEXT + AL_CLIENT_TEXT + 32)
#define AL_TEXT_SIZE		(256 * 1024)

/* Copies of the match strings, in bytes: the blocklist may be swapped. */
#define AL_RULE_MAX		253
#define AL_CATEGORY_MAX		63
#define AL_SITE_MAX		95
#define AL_UPSTREAM_MAX		63

/*
 * The queue's chunks. A chunk is mapped when the tail needs room and
 * unmapped when the writer has read past it, but for a few kept for the
 * tail to reuse while rows keep coming (a steady 100,000 rows/s cycles
 * through about 8 of them); those go too after AL_IDLE_MS without a row.
 */
#define AL_CHUNK_SIZE		(64 * 1024)
#define AL_SPARE_CHUNKS		16
#define AL_ALIGN		8	/* every record starts 8-aligned */

/* Record flags. */
#define AL_F_INET		0x01	/* 4 address bytes after the header */
#define AL_F_INET6		0x02	/* 16 address bytes */
#define AL_F_TCP		0x04
#define AL_F_SITE		0x08	/* attempts: a site (may be "") */
#define AL_F_RULE_TAIL		0x10	/* attempts: rule = end of the qname */
#define AL_F_CACHED		0x20	/* queries */
#define AL_F_BLOCKED		0x40	/* queries */
#define AL_F_UPSTREAM		0x80	/* queries: an upstream (may be "") */

/*
 * A blocked attempt in the queue: this header, then the client address
 * (0, 4 or 16 bytes: IPv4-mapped addresses are stored as IPv4), the wire
 * qname, the rule (unless AL_F_RULE_TAIL: the rule is then the end of the
 * qname as text, which it usually is, and is not stored again), the
 * category and the site, none NUL-terminated, padded to AL_ALIGN.
 */
struct al_attempt_hdr {
	uint8_t		size8;		/* record bytes / AL_ALIGN; 0 ends a chunk */
	uint8_t		flags;
	uint16_t	qtype;
	uint8_t		qname_len;
	uint8_t		rule_len;
	uint8_t		category_len;
	uint8_t		site_len;
	int64_t		ts_ms;
};

/* An answered query: this header, the address, the qname, the upstream. */
struct al_query_hdr {
	uint8_t		size8;		/* first, as in al_attempt_hdr */
	uint8_t		flags;
	uint16_t	qtype;
	uint8_t		qname_len;
	uint8_t		upstream_len;
	uint8_t		rcode;
	uint8_t		unused;
	int64_t		ts_ms;
	uint32_t	duration_us;
};

/* The ring reads size8 first in either kind of record. */
_Static_assert(offsetof(struct al_attempt_hdr, size8) == 0 &&
    offsetof(struct al_query_hdr, size8) == 0, "size8 first");
_Static_assert(sizeof(struct al_attempt_hdr) % AL_ALIGN == 0 &&
    sizeof(struct al_query_hdr) % AL_ALIGN == 0, "headers keep alignment");

struct al_chunk {
	struct al_chunk	*next;
	uint8_t		 data[];
};
#define AL_CHUNK_DATA	(AL_CHUNK_SIZE - offsetof(struct al_chunk, data))

/* A place in a ring: a chunk and the byte offset of a record in it. */
struct al_pos {
	struct al_chunk	*c;
	size_t		 off;
};

/* Rows dropped since the writer last took them, for table log_gaps. */
struct al_gap {
	uint64_t	rows;
	int64_t		ts_start;
	int64_t		ts_end;
	bool		nomem;		/* a chunk could not be mapped */
	char		reason[256];
};

struct al_ring {
	struct al_pos	 head;		/* oldest row: the writer's */
	struct al_pos	 tail;		/* next free byte: the producers' */
	struct al_chunk	*spares;	/* emptied chunks kept for the tail */
	size_t		 nspares;
	size_t		 cap;		/* rows */
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

/*
 * A client as the writer last formatted it: most rows come from clients
 * seen a moment ago, and a pseudonym costs two SHA-256 runs.
 */
struct al_client {
	uint8_t		 family;	/* AL_F_INET, AL_F_INET6; 0: empty */
	uint8_t		 addr[16];
	uint8_t		 textlen;
	const char	*name;		/* from clients:, or NULL */
	size_t		 namelen;
	char		 text[AL_CLIENT_TEXT]; /* the address or pseudonym */
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
	uint64_t		 fails;		/* failed opens and writes */
	bool			 stop_seen;	/* close() was seen */
	uint64_t		 fails_at_stop;	/* fails when it was */

	struct al_client	 clients[AL_CLIENT_CACHE];

	/* One batch, formatted; its text in text[0 .. textlen). */
	struct sink_attempt	 attempts[AL_BATCH_MAX];
	struct sink_query	 queries[AL_BATCH_MAX];
	size_t			 textlen;
	char			 text[AL_TEXT_SIZE];
};

struct attemptlog {
	char			*path;
	pthread_t		 thread;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	pthread_cond_t		 opened;	/* signals open_tried */
	bool			 open_tried;	/* the writer's first open */
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

/* The bytes of src to keep, at most max, cut on a UTF-8 boundary. */
static size_t
al_cut_len(const char *src, size_t max)
{
	size_t n;

	if (src == NULL)
		return 0;
	if ((n = strnlen(src, max + 1)) > max) {
		n = max;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	return n;
}

static size_t
al_align(size_t n)
{
	return (n + AL_ALIGN - 1) & ~(size_t)(AL_ALIGN - 1);
}

/*
 * The client's address bytes for a record (IPv4-mapped IPv6 as IPv4, as
 * the log shows it); sets *flag to AL_F_INET or AL_F_INET6, or 0.
 */
static size_t
al_addr_bytes(const struct sockaddr *sa, const uint8_t **bytes,
    uint8_t *flag)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

	*flag = 0;
	*bytes = NULL;
	if (sa != NULL && sa->sa_family == AF_INET) {
		*bytes = (const uint8_t *)
		    &((const struct sockaddr_in *)sa)->sin_addr;
		*flag = AL_F_INET;
		return 4;
	}
	if (sa == NULL || sa->sa_family != AF_INET6)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		*bytes = sin6->sin6_addr.s6_addr + 12;
		*flag = AL_F_INET;
		return 4;
	}
	*bytes = sin6->sin6_addr.s6_addr;
	*flag = AL_F_INET6;
	return 16;
}

/* A wire-name byte that the text form writes as itself, lower-cased. */
static int
al_plain_char(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + ('a' - 'A');
	if (c <= 0x20 || c >= 0x7f || c == '.' || c == '\\')
		return -1;
	return c;
}

/*
 * Whether rule (rlen bytes) is exactly the text form of the qname's last
 * labels, so that the writer can take it from the formatted name instead
 * of the queue storing it twice. Any doubt (escapes, a bad label): no.
 */
static bool
al_rule_is_tail(const uint8_t *wire, size_t len, const char *rule,
    size_t rlen)
{
	size_t i = 0, text = 0, start;

	if (rlen == 0)
		return false;
	/* The text length of the whole name, to find where rule starts. */
	while (i < len && wire[i] != 0) {
		if (wire[i] > 63 || wire[i] >= len - i)
			return false;
		text += (text > 0) + wire[i];
		i += (size_t)wire[i] + 1;
	}
	if (rlen > text)
		return false;
	start = text - rlen;
	/* Walk again to the label that starts there, then compare. */
	for (i = 0, text = 0; text < start; i += (size_t)wire[i] + 1)
		text += wire[i] + 1;
	if (text != start)
		return false;		/* inside a label */
	for (size_t k = 0; k < rlen; i += (size_t)wire[i] + 1) {
		if (k > 0 && rule[k++] != '.')
			return false;
		for (size_t j = 1; j <= wire[i]; j++)
			if (al_plain_char(wire[i + j]) != (unsigned char)rule[k++])
				return false;
	}
	return true;
}

/* ---- the queue (any thread) ---- */

static struct al_chunk *
al_chunk_map(void)
{
	void *p = mmap(NULL, AL_CHUNK_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Unmap a list of chunks linked by next. */
static void
al_chunks_unmap(struct al_chunk *c)
{
	while (c != NULL) {
		struct al_chunk *next = c->next;

		munmap(c, AL_CHUNK_SIZE);
		c = next;
	}
}

static void
al_ring_init(struct al_ring *r, size_t cap, const char *table)
{
	r->cap = cap;
	r->table = table;
}

/* Give the tail a fresh chunk: a spare, or a new mapping. Locked. */
static int
al_ring_grow(struct al_ring *r)
{
	struct al_chunk *c = r->spares;

	if (c != NULL) {
		r->spares = c->next;
		r->nspares--;
	} else if ((c = al_chunk_map()) == NULL)
		return -1;
	c->next = NULL;
	if (r->tail.c == NULL)
		r->head.c = c;
	else {
		/* The writer reads this only after a counted row in c. */
		r->tail.c->data[r->tail.off] = 0;
		r->tail.c->next = c;
	}
	r->tail.c = c;
	r->tail.off = 0;
	return 0;
}

static void
al_ring_drop(struct al_ring *r, int64_t ts_ms, bool nomem)
{
	r->dropped++;
	if (r->gap.rows++ == 0)
		r->gap.ts_start = ts_ms;
	r->gap.ts_end = ts_ms;
	r->gap.nomem |= nomem;
}

/*
 * Room for a record of size bytes (a multiple of AL_ALIGN) at the tail,
 * or NULL (row counted as dropped). A chunk always keeps AL_ALIGN bytes
 * free after its last record for the end mark. Locked.
 */
static uint8_t *
al_ring_reserve(struct al_ring *r, size_t size, int64_t ts_ms)
{
	uint8_t *p;

	if (r->count == r->cap) {
		al_ring_drop(r, ts_ms, false);
		return NULL;
	}
	if ((r->tail.c == NULL ||
	    r->tail.off + size + AL_ALIGN > AL_CHUNK_DATA) &&
	    al_ring_grow(r) == -1) {
		al_ring_drop(r, ts_ms, true);
		return NULL;
	}
	p = r->tail.c->data + r->tail.off;
	r->tail.off += size;
	r->count++;
	r->queued++;
	return p;
}

/* The record at pos, stepping over a chunk's end mark. Writer only. */
static const uint8_t *
al_ring_peek(struct al_pos *pos)
{
	if (pos->c->data[pos->off] == 0) {
		pos->c = pos->c->next;
		pos->off = 0;
	}
	return pos->c->data + pos->off;
}

/* Move pos past the record it is at (al_ring_peek() first). */
static void
al_ring_skip(struct al_pos *pos)
{
	pos->off += (size_t)pos->c->data[pos->off] * AL_ALIGN;
}

/*
 * Release the n oldest rows, which end at end: chunks read to the end go
 * to the spares, or into *unmap for the caller to unmap after unlocking.
 * An emptied ring starts again at the top of its chunk. Locked.
 */
static void
al_ring_release(struct al_ring *r, size_t n, struct al_pos end,
    struct al_chunk **unmap)
{
	r->count -= n;
	r->written += n;
	while (r->head.c != end.c) {
		struct al_chunk *c = r->head.c;

		r->head.c = c->next;
		if (r->nspares < AL_SPARE_CHUNKS) {
			c->next = r->spares;
			r->spares = c;
			r->nspares++;
		} else {
			c->next = *unmap;
			*unmap = c;
		}
	}
	r->head.off = end.off;
	if (r->count == 0)
		r->head.off = r->tail.off = 0;
}

/* Hand every spare chunk to *unmap (the writer is idle). Locked. */
static void
al_ring_trim(struct al_ring *r, struct al_chunk **unmap)
{
	struct al_chunk *c;

	while ((c = r->spares) != NULL) {
		r->spares = c->next;
		c->next = *unmap;
		*unmap = c;
	}
	r->nspares = 0;
}

static void
al_ring_free(struct al_ring *r)
{
	al_chunks_unmap(r->head.c);
	al_chunks_unmap(r->spares);
}

static void
al_wake_locked(struct attemptlog *al)
{
	if (al->writer_idle) {
		al->writer_idle = false;
		pthread_cond_signal(&al->cond);
	}
}

/* A blocked attempt, measured outside the lock. */
struct al_attempt_in {
	struct al_attempt_hdr	 h;
	const uint8_t		*addr;
	size_t			 addrlen;
	size_t			 size;
};

static void
al_attempt_measure(const struct attempt *a, struct al_attempt_in *in)
{
	const struct blocklist_match *m = a->match;
	struct al_attempt_hdr *h = &in->h;
	size_t rule_len;

	memset(h, 0, sizeof(*h));
	in->addrlen = al_addr_bytes(a->client, &in->addr, &h->flags);
	h->ts_ms = a->ts_ms;
	h->qtype = a->qtype;
	h->qname_len = a->qname_len > 255 ? 255 : (uint8_t)a->qname_len;
	if (a->transport == TRANSPORT_TCP)
		h->flags |= AL_F_TCP;
	rule_len = al_cut_len(m ? m->rule : NULL, AL_RULE_MAX);
	h->rule_len = (uint8_t)rule_len;
	if (al_rule_is_tail(a->qname, h->qname_len, m ? m->rule : NULL,
	    rule_len)) {
		h->flags |= AL_F_RULE_TAIL;
		rule_len = 0;
	}
	h->category_len = (uint8_t)al_cut_len(m ? m->category : NULL,
	    AL_CATEGORY_MAX);
	if (m != NULL && m->site != NULL) {
		h->flags |= AL_F_SITE;
		h->site_len = (uint8_t)al_cut_len(m->site, AL_SITE_MAX);
	}
	in->size = al_align(sizeof(*h) + in->addrlen + h->qname_len +
	    rule_len + h->category_len + h->site_len);
	h->size8 = (uint8_t)(in->size / AL_ALIGN);
}

/* Copy n bytes (src may be NULL when n is 0); returns the end. */
static uint8_t *
al_put(uint8_t *p, const void *src, size_t n)
{
	if (n > 0)
		memcpy(p, src, n);
	return p + n;
}

static void
al_attempt_pack(uint8_t *p, const struct attempt *a,
    const struct al_attempt_in *in)
{
	const struct blocklist_match *m = a->match;
	const struct al_attempt_hdr *h = &in->h;

	p = al_put(p, h, sizeof(*h));
	p = al_put(p, in->addr, in->addrlen);
	p = al_put(p, a->qname, h->qname_len);
	if (!(h->flags & AL_F_RULE_TAIL))
		p = al_put(p, m ? m->rule : NULL, h->rule_len);
	p = al_put(p, m ? m->category : NULL, h->category_len);
	al_put(p, m ? m->site : NULL, h->site_len);
}

void
attemptlog_append(struct attemptlog *al, const struct attempt *a)
{
	struct al_attempt_in in;
	uint8_t *p;

	if (al == NULL)
		return;
	al_attempt_measure(a, &in);
	pthread_mutex_lock(&al->mtx);
	if ((p = al_ring_reserve(&al->attempts, in.size, a->ts_ms)) != NULL) {
		al_attempt_pack(p, a, &in);
		al_wake_locked(al);
	}
	pthread_mutex_unlock(&al->mtx);
}

void
attemptlog_append_query(struct attemptlog *al, const struct query_event *q)
{
	struct al_query_hdr h;
	const uint8_t *addr = NULL;
	size_t addrlen, size;
	uint8_t *p;

	if (al == NULL || !atomic_load_explicit(&al->all_queries,
	    memory_order_relaxed))
		return;
	memset(&h, 0, sizeof(h));
	addrlen = al_addr_bytes(q->client, &addr, &h.flags);
	h.ts_ms = q->ts_ms;
	h.duration_us = q->duration_us;
	h.qtype = q->qtype;
	h.rcode = q->rcode;
	h.qname_len = q->qname_len > 255 ? 255 : (uint8_t)q->qname_len;
	h.flags |= (q->transport == TRANSPORT_TCP ? AL_F_TCP : 0) |
	    (q->cached ? AL_F_CACHED : 0) | (q->blocked ? AL_F_BLOCKED : 0) |
	    (q->upstream != NULL ? AL_F_UPSTREAM : 0);
	h.upstream_len = (uint8_t)al_cut_len(q->upstream, AL_UPSTREAM_MAX);
	size = al_align(sizeof(h) + addrlen + h.qname_len + h.upstream_len);
	h.size8 = (uint8_t)(size / AL_ALIGN);
	pthread_mutex_lock(&al->mtx);
	if ((p = al_ring_reserve(&al->queries, size, q->ts_ms)) != NULL) {
		p = al_put(p, &h, sizeof(h));
		p = al_put(p, addr, addrlen);
		p = al_put(p, q->qname, h.qname_len);
		al_put(p, q->upstream, h.upstream_len);
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

/* v in decimal at o, no printf; returns the end. */
static char *
al_put_uint(char *o, unsigned v)
{
	char digits[10];
	int n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*o++ = digits[--n];
	return o;
}

/* Presentation format, lower case, no trailing dot; "." for the root. */
static size_t
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
			int plain = al_plain_char(c);

			if (plain >= 0)
				out[o++] = (char)plain;
			else if (c == '.' || c == '\\') {
				out[o++] = '\\';
				out[o++] = (char)c;
			} else {
				out[o++] = '\\';
				out[o++] = (char)('0' + c / 100);
				out[o++] = (char)('0' + c / 10 % 10);
				out[o++] = (char)('0' + c % 10);
			}
		}
	}
	if (o == 0)
		out[o++] = '.';
	return o;
}

static size_t
al_addr_len(uint8_t flags)
{
	return flags & AL_F_INET ? 4 : flags & AL_F_INET6 ? 16 : 0;
}

/* The address as text in out (AL_CLIENT_TEXT bytes); returns its length. */
static size_t
al_format_addr(uint8_t flags, const uint8_t *a, char *out)
{
	char *o = out;

	if (flags & AL_F_INET) {
		for (int i = 0; i < 4; i++) {
			if (i > 0)
				*o++ = '.';
			o = al_put_uint(o, a[i]);
		}
		*o = '\0';
		return (size_t)(o - out);
	}
	if (!(flags & AL_F_INET6) ||
	    inet_ntop(AF_INET6, a, out, AL_CLIENT_TEXT) == NULL)
		memcpy(out, "unknown", sizeof("unknown"));
	return strlen(out);
}

static const char *
al_client_name(const struct al_settings *set, uint8_t flags,
    const uint8_t *a)
{
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	const struct sockaddr *sa;

	if (flags & AL_F_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, a, 4);
		sa = (const struct sockaddr *)&sin;
	} else if (flags & AL_F_INET6) {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		memcpy(&sin6.sin6_addr, a, 16);
		sa = (const struct sockaddr *)&sin6;
	} else
		return NULL;
	for (size_t i = 0; i < set->nclients; i++)
		if (cidr_contains(&set->clients[i].net, sa))
			return set->clients[i].name;
	return NULL;
}

/* out: ATTEMPTLOG_PSEUDONYM_LEN hex digits and a NUL. */
static void
al_pseudonym(const uint8_t *key, size_t keylen, const char *addr,
    size_t addrlen, char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t mac[SHA256_DIGEST_LEN];

	hmac_sha256(key, keylen, addr, addrlen, mac);
	for (int i = 0; i < ATTEMPTLOG_PSEUDONYM_LEN / 2; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 0xf];
	}
	out[ATTEMPTLOG_PSEUDONYM_LEN] = '\0';
}

int
attemptlog_pseudonym(const char *key, const char *addr, char *out)
{
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	const struct sockaddr *sa;
	const uint8_t *bytes;
	char text[AL_CLIENT_TEXT];
	uint8_t flag;
	size_t n;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	out[0] = '\0';
	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sa = (const struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sa = (const struct sockaddr *)&sin6;
	} else
		return -1;
	al_addr_bytes(sa, &bytes, &flag);
	n = al_format_addr(flag, bytes, text);
	al_pseudonym((const uint8_t *)key, strlen(key), text, n, out);
	return 0;
}

/* Format a client per log.client_identity into c. */
static void
al_client_fill(const struct al_settings *set, struct al_client *c,
    uint8_t flags, const uint8_t *a)
{
	char addr[AL_CLIENT_TEXT];
	size_t n = al_format_addr(flags, a, addr);

	c->family = flags;
	if (flags != 0)
		memcpy(c->addr, a, al_addr_len(flags));
	c->name = al_client_name(set, flags, a);
	c->namelen = c->name != NULL ? strlen(c->name) : 0;
	switch (set->identity) {
	case CLIENT_IDENTITY_NAME:
		if (c->name != NULL) {
			c->textlen = 0;		/* the name is the client */
			break;
		}
		memcpy(c->text, addr, n + 1);
		c->textlen = (uint8_t)n;
		break;
	case CLIENT_IDENTITY_PSEUDONYM:
		al_pseudonym(set->key, set->keylen, addr, n, c->text);
		c->textlen = ATTEMPTLOG_PSEUDONYM_LEN;
		break;
	default:
		memcpy(c->text, addr, n + 1);
		c->textlen = (uint8_t)n;
		break;
	}
}

/* The client's cache entry, formatted now if it was not there. */
static const struct al_client *
al_client_get(struct al_writer *w, uint8_t flags, const uint8_t *a)
{
	size_t alen = al_addr_len(flags);
	uint32_t h = 2166136261u;	/* FNV-1a */
	struct al_client *c;

	if (alen == 0) {
		c = &w->clients[0];
		if (c->family != 0 || c->textlen == 0)
			al_client_fill(w->set, c, 0, NULL);
		return c;
	}
	for (size_t i = 0; i < alen; i++)
		h = (h ^ a[i]) * 16777619u;
	c = &w->clients[1 + h % (AL_CLIENT_CACHE - 1)];
	if (c->family != flags || memcmp(c->addr, a, alen) != 0)
		al_client_fill(w->set, c, flags, a);
	return c;
}

/* Copy n bytes to the batch's text. */
static struct sink_str
al_text_put(struct al_writer *w, const char *s, size_t n)
{
	struct sink_str out = { w->text + w->textlen, n };

	memcpy(w->text + w->textlen, s, n);
	w->textlen += n;
	return out;
}

static void
al_format_client(struct al_writer *w, uint8_t flags, const uint8_t *a,
    struct sink_str *client, struct sink_str *name)
{
	const struct al_client *c = al_client_get(w, flags, a);

	name->s = c->name;
	name->len = c->namelen;
	if (c->name != NULL && w->set->identity == CLIENT_IDENTITY_NAME)
		*client = *name;	/* stable: w->set outlives the batch */
	else
		*client = al_text_put(w, c->text, c->textlen);
}

static struct sink_str
al_format_qtype(struct al_writer *w, uint16_t qtype)
{
	const ldns_rr_descriptor *d = ldns_rr_descript(qtype);
	const char *name = NULL;
	struct sink_str out;

	if (d != NULL && d->_type == qtype && d->_name != NULL)
		name = d->_name;
	/* Query-only types have no RR descriptor in ldns. */
	switch (qtype) {
	case 251:
		name = "IXFR";
		break;
	case 252:
		name = "AXFR";
		break;
	case 253:
		name = "MAILB";
		break;
	case 254:
		name = "MAILA";
		break;
	case 255:
		name = "ANY";
		break;
	}
	if (name != NULL)
		return (struct sink_str){ name, strlen(name) };
	out = al_text_put(w, "TYPE", 4);
	out.len = (size_t)(al_put_uint(w->text + w->textlen, qtype) -
	    out.s);
	w->textlen += out.len - 4;
	return out;
}

static struct sink_str
al_format_rcode(struct al_writer *w, uint8_t rcode)
{
	static const struct sink_str names[] = {
		{ "NOERROR", 7 }, { "FORMERR", 7 }, { "SERVFAIL", 8 },
		{ "NXDOMAIN", 8 }, { "NOTIMP", 6 }, { "REFUSED", 7 },
		{ "YXDOMAIN", 8 }, { "YXRRSET", 7 }, { "NXRRSET", 7 },
		{ "NOTAUTH", 7 }, { "NOTZONE", 7 },
	};
	struct sink_str out;

	if (rcode < sizeof(names) / sizeof(names[0]))
		return names[rcode];
	out = al_text_put(w, "RCODE", 5);
	out.len = (size_t)(al_put_uint(w->text + w->textlen, rcode) -
	    out.s);
	w->textlen += out.len - 5;
	return out;
}

static struct sink_str
al_transport_text(uint8_t flags)
{
	return flags & AL_F_TCP ? (struct sink_str){ "tcp", 3 } :
	    (struct sink_str){ "udp", 3 };
}

/* The wire qname at p as text in the batch's text. */
static struct sink_str
al_format_name(struct al_writer *w, const uint8_t *p, size_t len)
{
	struct sink_str out = { w->text + w->textlen, 0 };

	out.len = al_format_qname(p, len, w->text + w->textlen);
	w->textlen += out.len;
	return out;
}

static void
al_format_attempt(struct al_writer *w, struct sink_attempt *row,
    const uint8_t *rec)
{
	const struct al_attempt_hdr *h = (const struct al_attempt_hdr *)rec;
	const uint8_t *p = rec + sizeof(*h);

	row->ts_ms = h->ts_ms;
	al_format_client(w, h->flags & (AL_F_INET | AL_F_INET6), p,
	    &row->client, &row->client_name);
	p += al_addr_len(h->flags);
	row->qname = al_format_name(w, p, h->qname_len);
	p += h->qname_len;
	if (h->flags & AL_F_RULE_TAIL) {
		row->rule.s = row->qname.s + row->qname.len - h->rule_len;
		row->rule.len = h->rule_len;
	} else {
		row->rule = (struct sink_str){ (const char *)p, h->rule_len };
		p += h->rule_len;
	}
	row->category = (struct sink_str){ (const char *)p, h->category_len };
	p += h->category_len;
	row->site = (struct sink_str){ NULL, 0 };
	if (h->flags & AL_F_SITE)
		row->site = (struct sink_str){ (const char *)p, h->site_len };
	row->qtype = al_format_qtype(w, h->qtype);
	row->transport = al_transport_text(h->flags);
}

static void
al_format_query(struct al_writer *w, struct sink_query *row,
    const uint8_t *rec)
{
	const struct al_query_hdr *h = (const struct al_query_hdr *)rec;
	const uint8_t *p = rec + sizeof(*h);

	row->ts_ms = h->ts_ms;
	al_format_client(w, h->flags & (AL_F_INET | AL_F_INET6), p,
	    &row->client, &row->client_name);
	p += al_addr_len(h->flags);
	row->qname = al_format_name(w, p, h->qname_len);
	p += h->qname_len;
	row->upstream = (struct sink_str){ NULL, 0 };
	if (h->flags & AL_F_UPSTREAM)
		row->upstream = (struct sink_str){ (const char *)p,
		    h->upstream_len };
	row->qtype = al_format_qtype(w, h->qtype);
	row->rcode = al_format_rcode(w, h->rcode);
	row->cached = (h->flags & AL_F_CACHED) != 0;
	row->blocked = (h->flags & AL_F_BLOCKED) != 0;
	row->duration_us = h->duration_us;
	row->transport = al_transport_text(h->flags);
}

/* Room in the batch's text for one more row of any length. */
static bool
al_text_room(const struct al_writer *w)
{
	return AL_TEXT_SIZE - w->textlen >= AL_ROW_TEXT;
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

static void
al_cond_wait_until(struct attemptlog *al, pthread_cond_t *cond,
    int64_t until_mono)
{
	struct timespec ts;

	ts.tv_sec = until_mono / 1000;
	ts.tv_nsec = (long)(until_mono % 1000) * 1000000;
	pthread_cond_timedwait(cond, &al->mtx, &ts);
}

static void
al_writer_wait(struct attemptlog *al, struct al_take *t)
{
	struct al_writer *w = &al->w;
	int64_t until;

	pthread_mutex_lock(&al->mtx);
	while ((until = al_writer_until(al, al_now_mono())) != 0) {
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
	int64_t now = al_now_mono();
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

/*
 * Format up to *n rows of r from its head (read without the lock: only
 * the writer moves it, and producers never touch these rows). *n becomes
 * the rows formatted, fewer if the batch's text is full; *end is where
 * they end.
 */
static void
al_format_attempts(struct al_writer *w, const struct al_ring *r, size_t *n,
    struct al_pos *end)
{
	struct al_pos pos = r->head;
	size_t i;

	for (i = 0; i < *n && al_text_room(w); i++) {
		al_format_attempt(w, &w->attempts[i], al_ring_peek(&pos));
		al_ring_skip(&pos);
	}
	*n = i;
	*end = pos;
}

static void
al_format_queries(struct al_writer *w, const struct al_ring *r, size_t *n,
    struct al_pos *end)
{
	struct al_pos pos = r->head;
	size_t i;

	for (i = 0; i < *n && al_text_room(w); i++) {
		al_format_query(w, &w->queries[i], al_ring_peek(&pos));
		al_ring_skip(&pos);
	}
	*n = i;
	*end = pos;
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
	b.now_ms = al_now_wall();
	if (w->ops->write_batch(w->sink, &b) == -1) {
		al_writer_failed(al, w->ops->error(w->sink));
		return;
	}
	pthread_mutex_lock(&al->mtx);
	al_ring_release(&al->attempts, b.nattempts, aend, &unmap);
	al_ring_release(&al->queries, b.nqueries, qend, &unmap);
	pthread_mutex_unlock(&al->mtx);
	al_chunks_unmap(unmap);
	memset(w->gaps, 0, sizeof(w->gaps));
	w->last_write = al_now_mono();
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
	 * Linux takes a thread ID here and changes that thread alone; the
	 * value is relative to the loops' own. Failure (a sandbox that
	 * forbids it) costs latency only.
	 */
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, (id_t)gettid());
	if (errno == 0)
		setpriority(PRIO_PROCESS, (id_t)gettid(),
		    nice + AL_WRITER_NICE > 19 ? 19 : nice + AL_WRITER_NICE);
	al_writer_first_open(al);
	for (;;) {
		al_writer_wait(al, &t);
		al_writer_settings(al, t.set);
		if (t.stopping && !w->stop_seen) {
			w->stop_seen = true;
			w->fails_at_stop = w->fails;
			w->retry_at = 0;	/* a failing database: once more */
		}
		if (w->sink == NULL && al_now_mono() >= w->retry_at)
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
 * Wait, at most AL_OPEN_WAIT_MS, until the writer has tried to open the
 * database: then the file, its schema and its WAL files (-wal, -shm) are
 * there, owned by the writer's user, or the failure is logged. A daemon
 * that answered before that let an admin reading the log as root create
 * the WAL files: SQLite as root creates them as root and hands them to
 * the database's owner just after, and the writer opening them between
 * the two failed with "Permission denied".
 */
static void
al_wait_first_open(struct attemptlog *al)
{
	int64_t until = al_now_mono() + AL_OPEN_WAIT_MS;
	bool tried;

	pthread_mutex_lock(&al->mtx);
	while (!al->open_tried && al_now_mono() < until)
		al_cond_wait_until(al, &al->opened, until);
	tried = al->open_tried;
	pthread_mutex_unlock(&al->mtx);
	if (!tried)
		log_warnx("attempt log: %s: still opening after %d ms; rows"
		    " wait in the queue meanwhile", al->path, AL_OPEN_WAIT_MS);
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
	al_ring_init(&al->attempts, cap, "attempts");
	al_ring_init(&al->queries, cap, "queries");
	if ((al->path = strdup(cfg->log.database)) == NULL ||
	    (al->w.set = al_settings_new(al, cfg)) == NULL) {
		log_warnx("attempt log: out of memory for a queue of %zu"
		    " rows", cap);
		al_free(al);
		return NULL;
	}
	al->w.ops = ops;
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
