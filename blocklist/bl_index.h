/*
 * bl_index: the blocklist's entries in one arena with an open-addressing
 * hash index over it. A record is the entry's text (lower case, NUL
 * terminated) followed by its origin and line as LEB128 varints; a slot is
 * the 32-bit hash of the name and the record's arena offset, so an entry
 * costs 8 bytes / load factor in the index plus its text and 2-6 bytes.
 *
 * Private to the blocklist module. Built once, then only read: finding is
 * safe from any number of threads.
 */
#ifndef DNSWARDEN_BL_INDEX_H
#define DNSWARDEN_BL_INDEX_H

#include <stddef.h>
#include <stdint.h>

struct bl_slot {
	uint32_t	hash;
	uint32_t	off;		/* 0: empty */
};

struct bl_index {
	char		*arena;
	size_t		 len;
	size_t		 cap;
	struct bl_slot	*slots;
	uint32_t	 nslots;
	size_t		 count;		/* records the slots point at */
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

/* Shrink the arena and size the slots for a final load of about 0.7. */
int	bl_index_finish(struct bl_index *ix);

/* Hint the CPU to fetch the first slot for h before bl_index_find(). */
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
