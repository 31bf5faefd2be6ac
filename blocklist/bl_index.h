/*
 * bl_index: the blocklist's entries in one arena with an open-addressing
 * hash index over it. A record is the entry's text (lower case, NUL
 * terminated) followed by its origin and line as LEB128 varints. A slot
 * is the record's arena offset and 16 bits of the name's hash (the bits
 * its position does not already depend on), 6 bytes, so an entry costs
 * 6 bytes / load factor in the index, its text and 2-6 bytes.
 * The arena, the slots and the filter are mapped memory of their own (see
 * bl_index.c): reserving room costs nothing until it is written.
 *
 * Private to the blocklist module. Built once, then only read: finding is
 * safe from any number of threads.
 */
#ifndef DNSWARDEN_BL_INDEX_H
#define DNSWARDEN_BL_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bl_slot {
	uint32_t	off;		/* 0: empty */
	uint16_t	tag;		/* bl_index_tag() of the hash */
} __attribute__((packed));

struct bl_index {
	char		*arena;
	size_t		 len;
	size_t		 cap;		/* bytes mapped */
	struct bl_slot	*slots;
	uint32_t	 nslots;
	size_t		 count;		/* records the slots point at */
	uint64_t	*filter;	/* Bloom filter over the hashes */
	uint32_t	 nfilter;	/* 64-bit words, about 1 byte/entry */
	/* Hashes added but not yet in the filter: setting their bits in a
	 * batch lets the CPU overlap the cache misses. */
	uint32_t	 unfiltered[1024];
	uint32_t	 nunfiltered;
};

/* An empty index. */
void	bl_index_init(struct bl_index *ix);

/* Release what ix holds; ix can be reused after bl_index_init(). */
void	bl_index_free(struct bl_index *ix);

/*
 * Add text (len bytes, its suffix hash h) with its origin and line.
 * Returns 0 when added, 1 when the text was there already (*slot then
 * names its slot, for bl_index_replace()), -1 when out of memory or past
 * the 4 GiB arena.
 */
int	bl_index_add(struct bl_index *ix, uint32_t h, const char *text,
	    size_t len, uint32_t origin, uint32_t line, uint32_t *slot);

/* Point slot at a new record for the same text. Returns 0 or -1. */
int	bl_index_replace(struct bl_index *ix, uint32_t slot, uint32_t origin,
	    uint32_t line);

/*
 * Make room for about n more records holding about bytes of text, so that
 * adding them neither rehashes the slots nor grows the arena. The slots
 * and the filter are sized for the load bl_index_finish() aims at; arena
 * room that stays unused costs no memory. Returns 0 or -1 (out of memory,
 * too large).
 */
int	bl_index_reserve(struct bl_index *ix, size_t n, size_t bytes);

/*
 * Give the arena's unused room back, and rehash the slots only when their
 * load is far from what they were sized for (a reservation much too large
 * or too small). Returns 0 or -1 (out of memory).
 */
int	bl_index_finish(struct bl_index *ix);

/* The part of hash h a slot keeps. */
static inline uint16_t
bl_index_tag(uint32_t h)
{
	return (uint16_t)h;
}

/*
 * The filter word for hash h and the bits h sets in it. The filter holds
 * 8 bits per entry in 64-bit words, 4 bits per entry in one word: about
 * 3% of the hashes not in the index pass it, and it is small enough (1 MB
 * for a million entries) to stay in the CPU caches, so a name that is
 * not listed rarely costs a trip to main memory.
 */
static inline uint64_t
bl_index_filter_bits(const struct bl_index *ix, uint32_t h, uint32_t *word)
{
	uint64_t x = (uint64_t)h * UINT64_C(0x9e3779b97f4a7c15);

	*word = (uint32_t)(((x >> 32) * ix->nfilter) >> 32);
	return (UINT64_C(1) << (x & 63)) | (UINT64_C(1) << ((x >> 6) & 63)) |
	    (UINT64_C(1) << ((x >> 12) & 63)) |
	    (UINT64_C(1) << ((x >> 18) & 63));
}

/* False when h is certainly not in a finished index. */
static inline bool
bl_index_maybe(const struct bl_index *ix, uint32_t h)
{
	uint32_t w;
	uint64_t bits = bl_index_filter_bits(ix, h, &w);

	return (ix->filter[w] & bits) == bits;
}

/* Hint the CPU to fetch what bl_index_maybe() and bl_index_find() read. */
static inline void
bl_index_prefetch_filter(const struct bl_index *ix, uint32_t h)
{
	uint32_t w;

	bl_index_filter_bits(ix, h, &w);
	__builtin_prefetch(&ix->filter[w]);
}

static inline void
bl_index_prefetch(const struct bl_index *ix, uint32_t h)
{
	__builtin_prefetch(&ix->slots[((uint64_t)h * ix->nslots) >> 32]);
}

/* The record offset for text (hash h), or 0 if it is not there. */
uint32_t bl_index_find(const struct bl_index *ix, uint32_t h,
	    const char *text);

/* The record at off: its text (owned by ix), origin and line. */
const char *bl_index_record(const struct bl_index *ix, uint32_t off,
	    uint32_t *origin, uint32_t *line);

#endif
