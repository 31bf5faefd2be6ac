/* cache: see cache.h. */
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "hash.h"

struct cache_entry {
	struct cache_entry	*hnext;		/* hash chain */
	struct cache_entry	*prev, *next;	/* LRU list, newest first */
	uint64_t		 stored_ms;
	uint64_t		 expire_ms;
	uint64_t		 stamp;		/* c->clock when last moved up */
	uint32_t		 hash;
	uint32_t		 tag;		/* the caller's, see cache.h */
	uint16_t		 keylen;
	uint16_t		 pktlen;
	uint16_t		 nttls;
	uint16_t		 nnames;
	bool			 whole;		/* came over TCP, see cache.h */
	size_t			 size;		/* bytes charged to the cache */
	/* key | ttl offsets (uint16) | name offsets (uint16) | packet */
	uint8_t			 data[];
};

struct cache {
	struct cache_limits	  lim;
	uint64_t		  seed;
	struct cache_entry	**table;
	size_t			  mask;		/* table size - 1 */
	size_t			  count;
	size_t			  bytes;
	uint64_t		  evictions;
	uint64_t		  clock;	/* counts inserts and moves */
	struct cache_entry	 *newest, *oldest;
};

static inline uint8_t *
entry_ttls(const struct cache_entry *e)
{
	return (uint8_t *)e->data + e->keylen;
}

static inline const uint8_t *
entry_names(const struct cache_entry *e)
{
	return e->data + e->keylen + 2 * e->nttls;
}

static inline const uint8_t *
entry_pkt(const struct cache_entry *e)
{
	return entry_names(e) + 2 * e->nnames;
}

struct cache *
cache_new(const struct cache_limits *lim, uint64_t hash_seed)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->lim = *lim;
	c->seed = hash_seed;
	c->mask = 1023;
	c->table = calloc(c->mask + 1, sizeof(*c->table));
	if (c->table == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
cache_key_make(const struct cache *c, struct cache_key *key,
    const uint8_t *lname, size_t lname_len, uint16_t qtype, uint16_t qclass,
    bool do_bit, bool cd)
{
	uint8_t *p = key->data;

	memcpy(p, lname, lname_len);
	p += lname_len;
	*p++ = qtype >> 8;
	*p++ = qtype & 0xff;
	*p++ = qclass >> 8;
	*p++ = qclass & 0xff;
	*p++ = (do_bit ? 1 : 0) | (cd ? 2 : 0);
	key->len = (uint16_t)(p - key->data);
	key->hash = hash_bytes(key->data, key->len, c->seed);
}

static struct cache_entry **
slot_find(struct cache *c, const struct cache_key *key)
{
	struct cache_entry **pp = &c->table[key->hash & c->mask];

	for (; *pp != NULL; pp = &(*pp)->hnext) {
		struct cache_entry *e = *pp;
		if (e->hash == key->hash && e->keylen == key->len &&
		    memcmp(e->data, key->data, key->len) == 0)
			break;
	}
	return pp;
}

static void
lru_unlink(struct cache *c, struct cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->newest = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->oldest = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(struct cache *c, struct cache_entry *e)
{
	e->stamp = ++c->clock;
	e->prev = NULL;
	e->next = c->newest;
	if (c->newest)
		c->newest->prev = e;
	c->newest = e;
	if (c->oldest == NULL)
		c->oldest = e;
}

/* Unlink e found at *pp from both structures and free it. */
static void
entry_remove(struct cache *c, struct cache_entry **pp)
{
	struct cache_entry *e = *pp;

	*pp = e->hnext;
	lru_unlink(c, e);
	c->count--;
	c->bytes -= e->size;
	free(e);
}

static void
entry_remove_any(struct cache *c, struct cache_entry *e)
{
	struct cache_entry **pp = &c->table[e->hash & c->mask];

	while (*pp != e)
		pp = &(*pp)->hnext;
	entry_remove(c, pp);
}

static void
evict_until(struct cache *c, size_t want_entries, size_t want_bytes)
{
	while (c->oldest != NULL &&
	    (c->count + want_entries > c->lim.max_entries ||
	    c->bytes + want_bytes > c->lim.max_bytes)) {
		entry_remove_any(c, c->oldest);
		c->evictions++;
	}
}

/* Keep chains short: double the table when it is as full as it is long. */
static void
table_grow(struct cache *c)
{
	size_t nsize = (c->mask + 1) * 2;
	struct cache_entry **nt = calloc(nsize, sizeof(*nt));

	if (nt == NULL)
		return;		/* longer chains, still correct */
	for (size_t i = 0; i <= c->mask; i++) {
		struct cache_entry *e = c->table[i], *next;
		for (; e != NULL; e = next) {
			next = e->hnext;
			e->hnext = nt[e->hash & (nsize - 1)];
			nt[e->hash & (nsize - 1)] = e;
		}
	}
	free(c->table);
	c->table = nt;
	c->mask = nsize - 1;
}

void
cache_set_limits(struct cache *c, const struct cache_limits *lim)
{
	c->lim = *lim;
	evict_until(c, 0, 0);
}

/* How long the reply may be kept, in seconds; 0: not at all. */
static uint32_t
reply_ttl(const struct cache *c, const struct dns_reply *r)
{
	if (r->tc || r->too_many_rrs || r->ext_rcode != 0)
		return 0;
	if (r->rcode == DNS_RCODE_NXDOMAIN ||
	    (r->rcode == DNS_RCODE_NOERROR && r->ancount == 0)) {
		if (!r->has_soa)
			return 0;	/* RFC 2308 5: no SOA, no caching */
		return r->neg_ttl < c->lim.max_negative_ttl ? r->neg_ttl :
		    c->lim.max_negative_ttl;
	}
	if (r->rcode != DNS_RCODE_NOERROR || r->min_ttl == UINT32_MAX)
		return 0;
	return r->min_ttl < c->lim.max_ttl ? r->min_ttl : c->lim.max_ttl;
}

bool
cache_insert(struct cache *c, const struct cache_key *key, const uint8_t *pkt,
    size_t len, const struct dns_reply *r, uint64_t now_ms, uint32_t tag)
{
	uint32_t ttl = reply_ttl(c, r);

	/* An answer whose names were not all checked is never kept. */
	if (ttl == 0 || c->lim.max_entries == 0 || len > UINT16_MAX ||
	    r->names_overflow)
		return false;
	size_t datalen = key->len + 2 * r->nttls + 2 * r->nnames + len;
	size_t size = sizeof(struct cache_entry) + datalen;
	if (size > c->lim.max_bytes)
		return false;

	struct cache_entry **pp = slot_find(c, key);
	if (*pp != NULL)
		entry_remove(c, pp);
	evict_until(c, 1, size);
	struct cache_entry *e = malloc(size);
	if (e == NULL)
		return false;
	e->stored_ms = now_ms;
	e->expire_ms = now_ms + (uint64_t)ttl * 1000;
	e->hash = key->hash;
	e->tag = tag;
	e->keylen = key->len;
	e->pktlen = (uint16_t)len;
	e->nttls = (uint16_t)r->nttls;
	e->nnames = (uint16_t)r->nnames;
	e->whole = r->over_tcp;
	e->size = size;
	memcpy(e->data, key->data, key->len);
	memcpy(entry_ttls(e), r->ttl_off, 2 * r->nttls);
	uint8_t *p = entry_ttls(e) + 2 * r->nttls;
	memcpy(p, r->name_off, 2 * r->nnames);
	memcpy(p + 2 * r->nnames, pkt, len);

	if (c->count >= c->mask + 1)
		table_grow(c);
	pp = &c->table[e->hash & c->mask];
	e->hnext = *pp;
	*pp = e;
	lru_push(c, e);
	c->count++;
	c->bytes += size;
	return true;
}

struct cache_entry *
cache_lookup(struct cache *c, const struct cache_key *key, uint64_t now_ms)
{
	struct cache_entry **pp = slot_find(c, key);
	struct cache_entry *e = *pp;

	if (e == NULL)
		return NULL;
	if (now_ms >= e->expire_ms) {
		entry_remove(c, pp);
		return NULL;
	}
	/*
	 * Entries in the newest eighth stay where they are: moving a hot
	 * entry to the front on every hit writes to three entries' links
	 * and gains nothing for the eviction order.
	 */
	if (c->newest != e && c->clock - e->stamp > c->count / 8) {
		lru_unlink(c, e);
		lru_push(c, e);
	}
	return e;
}

size_t
cache_entry_copy(const struct cache_entry *e, uint64_t now_ms, uint8_t *out,
    size_t cap)
{
	uint32_t elapsed = (uint32_t)((now_ms - e->stored_ms) / 1000);
	const uint8_t *offs = entry_ttls(e);

	if (e->pktlen > cap)
		return 0;
	memcpy(out, entry_pkt(e), e->pktlen);
	if (elapsed == 0)
		return e->pktlen;
	for (uint16_t i = 0; i < e->nttls; i++) {
		uint16_t off;
		memcpy(&off, offs + 2 * i, 2);
		uint8_t *t = out + off;
		uint32_t ttl = (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 |
		    (uint32_t)t[2] << 8 | t[3];
		ttl = ttl > elapsed ? ttl - elapsed : 0;
		t[0] = ttl >> 24;
		t[1] = (ttl >> 16) & 0xff;
		t[2] = (ttl >> 8) & 0xff;
		t[3] = ttl & 0xff;
	}
	return e->pktlen;
}

bool
cache_entry_whole(const struct cache_entry *e)
{
	return e->whole;
}

uint32_t
cache_entry_tag(const struct cache_entry *e)
{
	return e->tag;
}

void
cache_entry_set_tag(struct cache_entry *e, uint32_t tag)
{
	e->tag = tag;
}

size_t
cache_entry_nnames(const struct cache_entry *e)
{
	return e->nnames;
}

uint16_t
cache_entry_name_off(const struct cache_entry *e, size_t i)
{
	uint16_t off;

	memcpy(&off, entry_names(e) + 2 * i, 2);	/* may be unaligned */
	return off;
}

size_t
cache_count(const struct cache *c)
{
	return c->count;
}

size_t
cache_bytes(const struct cache *c)
{
	return c->bytes;
}

uint64_t
cache_evictions(const struct cache *c)
{
	return c->evictions;
}

/* Is the wire name at key (its labels up to the root) lname or below it? */
static bool
key_name_under(const uint8_t *key, size_t keylen, const uint8_t *lname,
    size_t lname_len)
{
	size_t off = 0;

	for (;;) {
		size_t rest = keylen - off;
		if (rest == lname_len && memcmp(key + off, lname, lname_len) == 0)
			return true;
		if (off >= keylen || key[off] == 0)
			return false;
		off += 1 + key[off];
	}
}

size_t
cache_flush(struct cache *c, const uint8_t *lname, size_t lname_len)
{
	struct cache_entry *e, *prev;
	size_t n = 0;

	for (e = c->oldest; e != NULL; e = prev) {
		prev = e->prev;
		/* The key is the name, then 5 bytes of type, class, bits. */
		if (lname != NULL && (e->keylen < 5 ||
		    !key_name_under(e->data, (size_t)e->keylen - 5, lname,
		    lname_len)))
			continue;
		entry_remove_any(c, e);
		n++;
	}
	return n;
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	while (c->oldest != NULL) {
		struct cache_entry *e = c->oldest;
		c->oldest = e->prev;
		free(e);
	}
	free(c->table);
	free(c);
}
