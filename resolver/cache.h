/*
 * cache: answers kept in wire format, ready to copy. A hit costs a hash
 * probe and a memcpy; the caller patches ID, question case and EDNS
 * (dnsmsg_finalize()). TTLs count down from the time an answer was stored;
 * negative answers are kept per RFC 2308 for the SOA's negative TTL. The
 * least recently used entry goes first when max_entries or max_bytes would
 * be exceeded.
 */
#ifndef DNSWARDEN_CACHE_H
#define DNSWARDEN_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsmsg.h"

/* Lower-case name, type, class, and the DO and CD bits. */
struct cache_key {
	uint32_t	hash;
	uint16_t	len;
	uint8_t		data[DNS_MAX_NAME + 5];
};

struct cache_limits {
	unsigned	max_entries;	/* 0: cache nothing */
	size_t		max_bytes;
	uint32_t	max_ttl;
	uint32_t	max_negative_ttl;
};

struct cache;
struct cache_entry;

/* A new empty cache; hash_seed should be random. NULL if out of memory. */
struct cache	*cache_new(const struct cache_limits *lim, uint64_t hash_seed);

/* Change the limits (a reload); evicts at once if they shrank. */
void		 cache_set_limits(struct cache *c, const struct cache_limits *lim);

/* Release c and every entry. NULL is fine. */
void		 cache_free(struct cache *c);

/* Fill key from a query's lower-case name, type, class and bits. */
void		 cache_key_make(const struct cache *c, struct cache_key *key,
		    const uint8_t *lname, size_t lname_len, uint16_t qtype,
		    uint16_t qclass, bool do_bit, bool cd);

/*
 * Store a canonical reply (dnsmsg_canonicalize()) described by r under key,
 * replacing any entry there, with the caller's tag (the frontend records
 * there which blocklist the answer was checked against). Replies that
 * must not be cached (TTL 0, SERVFAIL, negative without SOA, truncated,
 * names_overflow) are ignored. Returns true if stored.
 */
bool		 cache_insert(struct cache *c, const struct cache_key *key,
		    const uint8_t *pkt, size_t len, const struct dns_reply *r,
		    uint64_t now_ms, uint32_t tag);

/*
 * The live entry for key, marked as recently used; NULL if there is none
 * or it expired (an expired entry is removed). The entry stays valid until
 * the next call that changes c. Eviction order is least recently used,
 * except that a hit on an entry among the newest eighth does not move it.
 */
struct cache_entry *cache_lookup(struct cache *c,
		    const struct cache_key *key, uint64_t now_ms);

/*
 * True when the entry's reply came over TCP, so nothing was left out of
 * it: an upstream may drop optional records from a UDP reply to fit the
 * size we advertise, without TC. A client over TCP is never served a
 * reply that is not whole (the frontend asks again over TCP instead).
 */
bool		 cache_entry_whole(const struct cache_entry *e);

/* The tag given at insert or by cache_entry_set_tag(). */
uint32_t	 cache_entry_tag(const struct cache_entry *e);
void		 cache_entry_set_tag(struct cache_entry *e, uint32_t tag);

/*
 * Copy the entry's reply into out with every TTL lowered by the whole
 * seconds it has been stored. Returns the length, 0 if cap is too small.
 */
size_t		 cache_entry_copy(const struct cache_entry *e, uint64_t now_ms,
		    uint8_t *out, size_t cap);

/*
 * The names a client may follow in the answer (struct dns_reply's
 * name_off[] as stored), for checking them against the blocklist of the
 * moment: how many, and the offset of the i-th (i < that count) in the
 * reply that cache_entry_copy() gives.
 */
size_t		 cache_entry_nnames(const struct cache_entry *e);
uint16_t	 cache_entry_name_off(const struct cache_entry *e, size_t i);

/* Number of entries and bytes held. */
size_t		 cache_count(const struct cache *c);
size_t		 cache_bytes(const struct cache *c);

/*
 * Remove every entry (lname NULL), or the entries for the lower-case wire
 * name lname (lname_len bytes, with its root label) and every name below
 * it. Returns how many were removed.
 */
size_t		 cache_flush(struct cache *c, const uint8_t *lname,
		    size_t lname_len);

/* Entries evicted so far to make room. */
uint64_t	 cache_evictions(const struct cache *c);

#endif
