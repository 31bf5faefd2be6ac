/*
 * al_queue: the attempt log's queue (see al_internal.h): measuring and
 * packing a row into a record, and the ring of chunks that holds records
 * until the writer has committed them. Runs in any thread: the DNS path
 * appends here, and must never wait on anything but the short lock.
 */
#include <sys/mman.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "al_internal.h"

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

size_t
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

void
al_chunks_unmap(struct al_chunk *c)
{
	while (c != NULL) {
		struct al_chunk *next = c->next;

		munmap(c, AL_CHUNK_SIZE);
		c = next;
	}
}

void
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

/*
 * An emptied ring starts again at the top of its chunk. With n 0, end
 * may be a head the writer copied before a producer's first row gave
 * the ring its first chunk (end.c NULL, head.c set since): walking to it
 * would hand the chunk holding that row to the spares and leave head
 * NULL under a counted row. Nothing was taken, so nothing moves.
 */
void
al_ring_release(struct al_ring *r, size_t n, struct al_pos end,
    struct al_chunk **unmap)
{
	if (n == 0)
		return;
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

void
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

void
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
	size_t			 policy_len;	/* 0: no AL_F_POLICY */
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
	if (a->verified)
		h->flags |= AL_F_VERIFIED;
	in->policy_len = al_cut_len(a->policy, AL_POLICY_MAX);
	if (in->policy_len > 0)
		h->flags |= AL_F_POLICY;
	in->size = al_align(sizeof(*h) + in->addrlen + h->qname_len +
	    rule_len + h->category_len + h->site_len +
	    (in->policy_len > 0 ? 1 + in->policy_len : 0));
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
	p = al_put(p, m ? m->site : NULL, h->site_len);
	if (in->policy_len > 0) {
		*p++ = (uint8_t)in->policy_len;
		al_put(p, a->policy, in->policy_len);
	}
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
	h.policy_len = (uint8_t)al_cut_len(q->policy, AL_POLICY_MAX);
	h.verified = q->verified;
	size = al_align(sizeof(h) + addrlen + h.qname_len + h.upstream_len +
	    h.policy_len);
	h.size8 = (uint8_t)(size / AL_ALIGN);
	pthread_mutex_lock(&al->mtx);
	if ((p = al_ring_reserve(&al->queries, size, q->ts_ms)) != NULL) {
		p = al_put(p, &h, sizeof(h));
		p = al_put(p, addr, addrlen);
		p = al_put(p, q->qname, h.qname_len);
		p = al_put(p, q->upstream, h.upstream_len);
		al_put(p, q->policy, h.policy_len);
		al_wake_locked(al);
	}
	pthread_mutex_unlock(&al->mtx);
}

/* Copy the figures for attemptlog_peek_stats(). Locked. */
void
al_stats_publish(struct attemptlog *al)
{
	atomic_store_explicit(&al->pub.queued, al->attempts.queued +
	    al->queries.queued, memory_order_relaxed);
	atomic_store_explicit(&al->pub.written, al->attempts.written +
	    al->queries.written, memory_order_relaxed);
	atomic_store_explicit(&al->pub.dropped, al->attempts.dropped +
	    al->queries.dropped, memory_order_relaxed);
	atomic_store_explicit(&al->pub.write_errors, al->write_errors,
	    memory_order_relaxed);
	atomic_store_explicit(&al->pub.pending, al->attempts.count +
	    al->queries.count, memory_order_relaxed);
}

void
attemptlog_peek_stats(struct attemptlog *al, struct attemptlog_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (al == NULL)
		return;
	out->queued = atomic_load_explicit(&al->pub.queued,
	    memory_order_relaxed);
	out->written = atomic_load_explicit(&al->pub.written,
	    memory_order_relaxed);
	out->dropped = atomic_load_explicit(&al->pub.dropped,
	    memory_order_relaxed);
	out->write_errors = atomic_load_explicit(&al->pub.write_errors,
	    memory_order_relaxed);
	out->pending = atomic_load_explicit(&al->pub.pending,
	    memory_order_relaxed);
}

uint64_t
attemptlog_version(struct attemptlog *al)
{
	return al == NULL ? 0 : atomic_load_explicit(&al->version,
	    memory_order_acquire);
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
