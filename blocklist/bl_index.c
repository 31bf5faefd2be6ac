/*
 * bl_index: arena of entry records and the linear-probing hash index that
 * points into it. Slot positions come from the hash by multiply-shift, so
 * the table need not be a power of two and can be sized to its load.
 */
#include <sys/mman.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl_index.h"
#include "bl_name.h"

/* Loads, in percent: the slots are sized for LOAD_AIM; an add that would
 * pass LOAD_GROW doubles them; bl_index_finish() rehashes when the load
 * ended outside [LOAD_LOW, LOAD_HIGH]. */
#define LOAD_AIM	70
#define LOAD_GROW	90
#define LOAD_LOW	50
#define LOAD_HIGH	80

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14; older headers lack it */
#endif

#define HUGE_PAGE	((size_t)2 << 20)
#define REHASH_AHEAD	8	/* records hashed ahead of their insertion */
#define DEAD		'.'	/* first byte of a replaced record's text */

/*
 * The arena, the slots and the filter are anonymous mappings, not malloc()
 * blocks:
 * - pages never written cost no memory, so the arena can be reserved for
 *   the most an import could need, and growing it is mremap(), which
 *   moves page tables instead of copying the records;
 * - a mapping of 2 MiB or more starts on a 2 MiB boundary and asks for
 *   transparent huge pages before it is written: a million entries fill
 *   30 MB, some 7,500 page faults in 4 KiB pages (a third of the import's
 *   CPU time in a VM) but 15 in huge pages;
 * - unmapping returns the memory at once, so the list a reload replaced
 *   does not stay resident.
 */
static size_t
page_round(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (n + pg - 1) & ~(pg - 1);
}

/* Zeroed memory for size bytes, or NULL. With fill, every page will be
 * written soon: fault them all in at once. */
static void *
mem_map(size_t size, bool fill)
{
	size_t len = page_round(size), extra = len >= HUGE_PAGE ? HUGE_PAGE : 0;
	char *p, *a;

	p = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	a = p;
	if (extra > 0) {
		a = (char *)(((uintptr_t)p + extra - 1) & ~(extra - 1));
		if (a > p)
			munmap(p, (size_t)(a - p));
		if (p + extra > a)
			munmap(a + len, (size_t)(p + extra - a));
		/* Fails harmlessly where huge pages are off. */
		madvise(a, len, MADV_HUGEPAGE);
	}
	/* Linux 5.14 and later; without it, page faults do the same. */
	if (fill)
		madvise(a, len, MADV_POPULATE_WRITE);
	return a;
}

/* Grow or shrink the mapping at p (old bytes) to size bytes. Returns its
 * new address, or NULL with p unchanged. */
static void *
mem_resize(void *p, size_t old, size_t size)
{
	void *q = mremap(p, page_round(old), page_round(size), MREMAP_MAYMOVE);

	return q == MAP_FAILED ? NULL : q;
}

static void
mem_unmap(void *p, size_t size)
{
	if (p != NULL)
		munmap(p, page_round(size));
}

static inline uint32_t
slot_first(uint32_t h, uint32_t nslots)
{
	return (uint32_t)(((uint64_t)h * nslots) >> 32);
}

void
bl_index_init(struct bl_index *ix)
{
	memset(ix, 0, sizeof(*ix));
}

void
bl_index_free(struct bl_index *ix)
{
	mem_unmap(ix->arena, ix->cap);
	mem_unmap(ix->slots, (size_t)ix->nslots * sizeof(*ix->slots));
	mem_unmap(ix->filter, (size_t)ix->nfilter * sizeof(*ix->filter));
	bl_index_init(ix);
}

/* Slots needed for n records at a load of pct percent. */
static size_t
slots_for(size_t n, size_t pct)
{
	return n * 100 / pct + 1;
}

static void
filter_set(struct bl_index *ix, uint32_t h)
{
	uint32_t w;
	uint64_t bits = bl_index_filter_bits(ix, h, &w);

	ix->filter[w] |= bits;
}

static void
filter_flush(struct bl_index *ix)
{
	for (uint32_t i = 0; i < ix->nunfiltered; i++)
		filter_set(ix, ix->unfiltered[i]);
	ix->nunfiltered = 0;
}

/* Set h's bits in the filter, soon. */
static void
filter_add(struct bl_index *ix, uint32_t h)
{
	ix->unfiltered[ix->nunfiltered++] = h;
	if (ix->nunfiltered == sizeof(ix->unfiltered) /
	    sizeof(ix->unfiltered[0]))
		filter_flush(ix);
}

/* Point a free slot at the record at off (hash h). */
static void
slot_put(struct bl_index *ix, uint32_t h, uint32_t off)
{
	uint32_t i = slot_first(h, ix->nslots);

	while (ix->slots[i].off != 0)
		if (++i == ix->nslots)
			i = 0;
	ix->slots[i].off = off;
	ix->slots[i].tag = bl_index_tag(h);
	filter_add(ix, h);
}

/* The offset after the record at off. */
static size_t
record_next(const struct bl_index *ix, size_t off)
{
	const uint8_t *p = (const uint8_t *)ix->arena + off;

	p += strlen((const char *)p) + 1;
	while (*p++ & 0x80)
		;
	while (*p++ & 0x80)
		;
	return (size_t)(p - (const uint8_t *)ix->arena);
}

/*
 * Move to n slots (n > count) and a filter sized for them. Slots keep only
 * part of the hash, so every live record's is computed again from its
 * text, walking the arena in order; the slot writes land at random, so
 * each record is hashed a few records ahead and its slot fetched then.
 */
static int
index_resize(struct bl_index *ix, size_t n)
{
	size_t nf = (n * LOAD_AIM / 100 + 7) / 8 + 1, ring_off[REHASH_AHEAD];
	uint32_t ring_h[REHASH_AHEAD];
	struct bl_slot *s;
	uint64_t *filter;
	size_t k = 0;

	if (n > UINT32_MAX || nf > UINT32_MAX)
		return -1;
	s = mem_map(n * sizeof(*s), true);
	filter = mem_map(nf * sizeof(*filter), true);
	if (s == NULL || filter == NULL) {
		mem_unmap(s, n * sizeof(*s));
		mem_unmap(filter, nf * sizeof(*filter));
		return -1;
	}
	mem_unmap(ix->slots, (size_t)ix->nslots * sizeof(*ix->slots));
	mem_unmap(ix->filter, (size_t)ix->nfilter * sizeof(*ix->filter));
	ix->slots = s;
	ix->nslots = (uint32_t)n;
	ix->filter = filter;
	ix->nfilter = (uint32_t)nf;
	ix->nunfiltered = 0;	/* all set again below */
	for (size_t off = 1; off < ix->len; off = record_next(ix, off)) {
		const char *text = ix->arena + off;

		if (text[0] == DEAD)
			continue;
		if (k >= REHASH_AHEAD)
			slot_put(ix, ring_h[k % REHASH_AHEAD],
			    (uint32_t)ring_off[k % REHASH_AHEAD]);
		ring_h[k % REHASH_AHEAD] = bl_name_text_hash(text,
		    strlen(text));
		ring_off[k % REHASH_AHEAD] = off;
		bl_index_prefetch(ix, ring_h[k % REHASH_AHEAD]);
		k++;
	}
	for (size_t i = k > REHASH_AHEAD ? k - REHASH_AHEAD : 0; i < k; i++)
		slot_put(ix, ring_h[i % REHASH_AHEAD],
		    (uint32_t)ring_off[i % REHASH_AHEAD]);
	return 0;
}

/* Room for need more arena bytes. */
static int
arena_reserve(struct bl_index *ix, size_t need)
{
	size_t cap;
	char *a;

	if (ix->len == 0)
		ix->len = 1;	/* offset 0 marks an empty slot */
	if (ix->len + need <= ix->cap)
		return 0;
	if (ix->len + need > UINT32_MAX)
		return -1;
	cap = ix->cap > 0 ? ix->cap * 2 : 65536;
	if (cap < ix->len + need)
		cap = ix->len + need;
	cap = page_round(cap);
	a = ix->arena == NULL ? mem_map(cap, false) :
	    mem_resize(ix->arena, ix->cap, cap);
	if (a == NULL)
		return -1;
	ix->arena = a;
	ix->cap = cap;
	return 0;
}

static size_t
varint_put(uint8_t *p, uint32_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static const uint8_t *
varint_get(const uint8_t *p, uint32_t *v)
{
	uint32_t shift = 0;

	*v = 0;
	do
		*v |= (uint32_t)(*p & 0x7f) << shift, shift += 7;
	while (*p++ & 0x80);
	return p;
}

/* Append a record; returns its offset or 0 when out of memory. */
static uint32_t
arena_append(struct bl_index *ix, const char *text, size_t len,
    uint32_t origin, uint32_t line)
{
	size_t off;

	if (arena_reserve(ix, len + 1 + 10) == -1)
		return 0;
	off = ix->len;
	memcpy(ix->arena + off, text, len);
	ix->arena[off + len] = '\0';
	ix->len += len + 1;
	ix->len += varint_put((uint8_t *)ix->arena + ix->len, origin);
	ix->len += varint_put((uint8_t *)ix->arena + ix->len, line);
	return (uint32_t)off;
}

int
bl_index_reserve(struct bl_index *ix, size_t n, size_t bytes)
{
	size_t want = slots_for(ix->count + n, LOAD_AIM);

	/* Records are found by 32-bit offsets: no more is ever needed. */
	if (bytes > UINT32_MAX - 1 - ix->len)
		bytes = UINT32_MAX - 1 - ix->len;
	if (arena_reserve(ix, bytes) == -1)
		return -1;
	if (want <= ix->nslots)
		return 0;
	return index_resize(ix, want);
}

int
bl_index_add(struct bl_index *ix, uint32_t h, const char *text, size_t len,
    uint32_t origin, uint32_t line, uint32_t *slot)
{
	uint16_t tag = bl_index_tag(h);
	uint32_t i, off;

	/* Only when bl_index_reserve() was told too few. */
	if (slots_for(ix->count + 1, LOAD_GROW) > ix->nslots &&
	    index_resize(ix, slots_for(ix->count < 32 ? 64 : ix->count * 2,
	    LOAD_AIM)) == -1)
		return -1;
	for (i = slot_first(h, ix->nslots); ix->slots[i].off != 0;) {
		if (ix->slots[i].tag == tag &&
		    strcmp(ix->arena + ix->slots[i].off, text) == 0) {
			*slot = i;
			return 1;
		}
		if (++i == ix->nslots)
			i = 0;
	}
	if ((off = arena_append(ix, text, len, origin, line)) == 0)
		return -1;
	ix->slots[i].off = off;
	ix->slots[i].tag = tag;
	filter_add(ix, h);
	ix->count++;
	return 0;
}

int
bl_index_replace(struct bl_index *ix, uint32_t slot, uint32_t origin,
    uint32_t line)
{
	/* The text is copied first because appending may move the arena;
	 * the old record stays there, marked so that a rehash skips it. */
	char copy[BL_NAME_TEXT_MAX + 1];
	uint32_t old = ix->slots[slot].off, off;
	size_t len = strlen(ix->arena + old);

	if (len >= sizeof(copy))
		return -1;
	memcpy(copy, ix->arena + old, len + 1);
	if ((off = arena_append(ix, copy, len, origin, line)) == 0)
		return -1;
	ix->arena[old] = DEAD;
	ix->slots[slot].off = off;
	return 0;
}

int
bl_index_finish(struct bl_index *ix)
{
	size_t n = slots_for(ix->count, LOAD_AIM);
	uint64_t load = (uint64_t)ix->count * 100;
	char *a;

	if (n < 8)
		n = 8;
	/* Rehashing touches every slot at random: only when the load is
	 * far off (more names than reserved for, or many fewer). */
	if ((ix->nslots < 8 || load > (uint64_t)ix->nslots * LOAD_HIGH ||
	    load < (uint64_t)ix->nslots * LOAD_LOW) &&
	    index_resize(ix, n) == -1)
		return -1;
	filter_flush(ix);
	if (ix->arena != NULL && page_round(ix->len) < ix->cap &&
	    (a = mem_resize(ix->arena, ix->cap, ix->len)) != NULL) {
		ix->arena = a;
		ix->cap = page_round(ix->len);
	}
	return 0;
}

uint32_t
bl_index_find(const struct bl_index *ix, uint32_t h, const char *text)
{
	uint32_t i = slot_first(h, ix->nslots);

	for (;;) {
		const struct bl_slot *s = &ix->slots[i];

		if (s->off == 0)
			return 0;
		if (s->tag == bl_index_tag(h) &&
		    strcmp(ix->arena + s->off, text) == 0)
			return s->off;
		if (++i == ix->nslots)
			i = 0;
	}
}

const char *
bl_index_record(const struct bl_index *ix, uint32_t off, uint32_t *origin,
    uint32_t *line)
{
	const char *text = ix->arena + off;
	const uint8_t *p = (const uint8_t *)text + strlen(text) + 1;

	p = varint_get(p, origin);
	varint_get(p, line);
	return text;
}
