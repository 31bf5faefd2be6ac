/*
 * bl_index: arena of entry records and the linear-probing hash index that
 * points into it. Slot positions come from the hash by multiply-shift, so
 * the table need not be a power of two and can be sized to its load.
 */
#include <stdlib.h>
#include <string.h>

#include "bl_index.h"

#define LOAD_NUM	7	/* maximum load factor 7/10 */
#define LOAD_DEN	10

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
	free(ix->arena);
	free(ix->slots);
	free(ix->filter);
	bl_index_init(ix);
}

/* Move every slot into a table of n slots (n > count). */
static int
index_resize(struct bl_index *ix, uint32_t n)
{
	struct bl_slot *s = calloc(n, sizeof(*s));

	if (s == NULL)
		return -1;
	for (uint32_t i = 0; i < ix->nslots; i++) {
		uint32_t j;

		if (ix->slots[i].off == 0)
			continue;
		for (j = slot_first(ix->slots[i].hash, n); s[j].off != 0;)
			if (++j == n)
				j = 0;
		s[j] = ix->slots[i];
	}
	free(ix->slots);
	ix->slots = s;
	ix->nslots = n;
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
	size_t need = len + 1 + 10, off;

	if (ix->len == 0)
		ix->len = 1;	/* offset 0 marks an empty slot */
	if (ix->len + need > UINT32_MAX)
		return 0;
	if (ix->len + need > ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 4096;
		char *a;

		while (cap < ix->len + need)
			cap *= 2;
		if ((a = realloc(ix->arena, cap)) == NULL)
			return 0;
		ix->arena = a;
		ix->cap = cap;
	}
	off = ix->len;
	memcpy(ix->arena + off, text, len);
	ix->arena[off + len] = '\0';
	ix->len += len + 1;
	ix->len += varint_put((uint8_t *)ix->arena + ix->len, origin);
	ix->len += varint_put((uint8_t *)ix->arena + ix->len, line);
	return (uint32_t)off;
}

/* Slots needed for n records at the maximum load. */
static size_t
slots_for(size_t n)
{
	return n * LOAD_DEN / LOAD_NUM + 1;
}

int
bl_index_reserve(struct bl_index *ix, size_t n)
{
	size_t want = slots_for(ix->count + n);

	if (want <= ix->nslots)
		return 0;
	if (want > UINT32_MAX)
		return -1;
	return index_resize(ix, (uint32_t)want);
}

int
bl_index_add(struct bl_index *ix, uint32_t h, const char *text, size_t len,
    uint32_t origin, uint32_t line, uint32_t *slot)
{
	uint32_t i, off;

	if (slots_for(ix->count + 1) > ix->nslots) {
		size_t n = ix->nslots ? (size_t)ix->nslots * 2 : 64;

		if (n > UINT32_MAX || index_resize(ix, (uint32_t)n) == -1)
			return -1;
	}
	for (i = slot_first(h, ix->nslots); ix->slots[i].off != 0;) {
		if (ix->slots[i].hash == h &&
		    strcmp(ix->arena + ix->slots[i].off, text) == 0) {
			*slot = i;
			return 1;
		}
		if (++i == ix->nslots)
			i = 0;
	}
	if ((off = arena_append(ix, text, len, origin, line)) == 0)
		return -1;
	ix->slots[i].hash = h;
	ix->slots[i].off = off;
	ix->count++;
	return 0;
}

int
bl_index_replace(struct bl_index *ix, uint32_t slot, uint32_t origin,
    uint32_t line)
{
	/* The old record stays in the arena unused: replacing is rare. */
	size_t old = ix->slots[slot].off, len = strlen(ix->arena + old);
	uint32_t off;
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return -1;
	memcpy(copy, ix->arena + old, len + 1);
	off = arena_append(ix, copy, len, origin, line);
	free(copy);
	if (off == 0)
		return -1;
	ix->slots[slot].off = off;
	return 0;
}

static int
filter_build(struct bl_index *ix)
{
	size_t n = (ix->count + 7) / 8;

	free(ix->filter);
	ix->nfilter = n > 0 ? (uint32_t)n : 1;
	if ((ix->filter = calloc(ix->nfilter, sizeof(uint64_t))) == NULL)
		return -1;
	for (uint32_t i = 0; i < ix->nslots; i++) {
		uint32_t w;
		uint64_t bits;

		if (ix->slots[i].off == 0)
			continue;
		bits = bl_index_filter_bits(ix, ix->slots[i].hash, &w);
		ix->filter[w] |= bits;
	}
	return 0;
}

int
bl_index_finish(struct bl_index *ix)
{
	size_t n = slots_for(ix->count);
	char *a;

	if (n < 8)
		n = 8;
	/* A table reserved a little large is not worth another rehash. */
	if ((n > ix->nslots || n + n / 4 < ix->nslots) &&
	    index_resize(ix, (uint32_t)n) == -1)
		return -1;
	if (filter_build(ix) == -1)
		return -1;
	if (ix->len > 0 && ix->len < ix->cap &&
	    (a = realloc(ix->arena, ix->len)) != NULL) {
		ix->arena = a;
		ix->cap = ix->len;
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
		if (s->hash == h && strcmp(ix->arena + s->off, text) == 0)
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
