/*
 * al_sums: the visit table and the pending counts. See al_sums.h.
 *
 * Both are open-addressing tables with linear probing. Per row the sink
 * hashes the row's strings once, for the visit key and two count keys
 * (client, rule); the quarter's total and the policy are the previous
 * row's most of the time. A count is written to SQLite once per key and
 * flush, not once per row: a row costs memory lookups, not an UPSERT.
 */
#include <sys/mman.h>
#include <sys/random.h>

#include <pthread.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "al_sums.h"
#include "calendar.h"
#include "hash.h"

#define VISITS_MIN	1024		/* slots, a power of 2 */
#define SUMS_MIN	256

static uint64_t
mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t
hash_str(uint64_t h, struct sink_str s)
{
	return hash_more_short(h, s.s ? s.s : "", s.s ? s.len : 0);
}

/*
 * One seed for every table of the process, so that a row's strings are
 * hashed once (al_sums_row_hash()) for its visit key and its count keys
 * alike.
 */
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;
static uint64_t seed_value;

static void
seed_init(void)
{
	seed_value = 0x243f6a8885a308d3ULL;
	/* Without randomness the tables work, only their hashes are guessable. */
	(void)getrandom(&seed_value, sizeof(seed_value), GRND_NONBLOCK);
}

static uint64_t
process_seed(void)
{
	pthread_once(&seed_once, seed_init);
	return seed_value;
}

/* The visit key of a client and a rule from their strings' hashes. */
static uint64_t
visit_key(uint64_t client, uint64_t rule)
{
	uint64_t h = mix64(client ^ (rule * 0x9e3779b97f4a7c15ULL));

	return h ? h : 1;
}

/* ---- visits ---- */

/*
 * A slot is one word: the key's top 40 bits (never 0) above the time of
 * its last row, in ms after the table's base, in the low 24 bits (4.6
 * hours). Half the memory of a key and a time side by side, for a table
 * that a minute of busy traffic makes far larger than the CPU's caches:
 * each row's slot is a miss, and a rebuild writes them all.
 *
 * The top bits also choose the home slot, so a rebuild can place an
 * entry without its key's other bits. Two pairs whose keys share those
 * 40 bits would be taken for one: at 100,000 rows a second, about once
 * in three months of it (a probe compares one or two other slots), for
 * one row's visit flag.
 */
#define VISIT_TIME_BITS	24
#define VISIT_TIME_MASK	((UINT64_C(1) << VISIT_TIME_BITS) - 1)

struct al_visits {
	uint64_t	*slots;		/* 0: empty */
	size_t		 cap, count;
	int64_t		 newest;
	int64_t		 base;		/* time 0 of the slots, Unix ms */
	uint64_t	 seed;
};

static uint64_t
visit_tag(uint64_t key)
{
	uint64_t t = key & ~VISIT_TIME_MASK;

	return t != 0 ? t : UINT64_C(1) << VISIT_TIME_BITS;
}

static size_t
visit_home(const struct al_visits *v, uint64_t tag)
{
	return (size_t)(tag >> VISIT_TIME_BITS) & (v->cap - 1);
}

static int64_t
slot_ts(const struct al_visits *v, uint64_t slot)
{
	return v->base + (int64_t)(slot & VISIT_TIME_MASK);
}

/* tag at ts_ms; a time outside the 24 bits is kept at their nearer end. */
static uint64_t
slot_make(const struct al_visits *v, uint64_t tag, int64_t ts_ms)
{
	int64_t off = ts_ms - v->base;

	if (off < 0)
		off = 0;
	if (off > (int64_t)VISIT_TIME_MASK)
		off = (int64_t)VISIT_TIME_MASK;
	return tag | (uint64_t)off;
}

/*
 * A table of HUGE_PAGE or more is mapped on its own, aligned to and
 * marked for transparent huge pages (with the kernel's default
 * "madvise" setting, only such memory gets them). With 4 kB pages, each
 * row's slot was a TLB miss as well as a cache miss, and a table taking
 * the place of a full one faulted its pages in one by one: 33-41 ms of
 * the writer's time a million rows (bench/log_ab.sh's workload), against
 * about 3 ms with huge pages, and the rows' lookups took 0.05 µs a row
 * instead of 0.085 (docs/performance.md). Smaller tables come from
 * calloc().
 */
#define HUGE_PAGE	((size_t)2 << 20)

static uint64_t *
slots_alloc(size_t cap)
{
	size_t len = cap * sizeof(uint64_t);
	uintptr_t p, a;
	void *m;

	if (len < HUGE_PAGE)
		return calloc(cap, sizeof(uint64_t));
	m = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	p = (uintptr_t)m;
	a = (p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	if (a > p)
		munmap(m, a - p);
	munmap((void *)(a + len), p + HUGE_PAGE - a);
	/* Without huge pages (the kernel's "never") it works all the same. */
	(void)madvise((void *)a, len, MADV_HUGEPAGE);
	return (uint64_t *)a;
}

static void
slots_free(uint64_t *slots, size_t cap)
{
	if (cap * sizeof(uint64_t) < HUGE_PAGE)
		free(slots);
	else if (slots != NULL)
		munmap(slots, cap * sizeof(uint64_t));
}

static int
visits_alloc(struct al_visits *v, size_t cap)
{
	if ((v->slots = slots_alloc(cap)) == NULL)
		return -1;
	v->cap = cap;
	v->count = 0;
	return 0;
}

struct al_visits *
al_visits_new(void)
{
	struct al_visits *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return NULL;
	if (visits_alloc(v, VISITS_MIN) == -1) {
		free(v);
		return NULL;
	}
	v->newest = INT64_MIN;
	v->base = INT64_MIN;		/* set by the first row */
	v->seed = process_seed();
	return v;
}

void
al_visits_free(struct al_visits *v)
{
	if (v == NULL)
		return;
	slots_free(v->slots, v->cap);
	free(v);
}

uint64_t
al_visits_key(const struct al_visits *v, struct sink_str client,
    struct sink_str rule)
{
	return visit_key(hash_str(v->seed, client), hash_str(v->seed, rule));
}

/* The slot of tag, or the empty slot that ends its chain. */
static size_t
visits_find(const struct al_visits *v, uint64_t tag)
{
	size_t mask = v->cap - 1, i = visit_home(v, tag);

	while (v->slots[i] != 0 && (v->slots[i] & ~VISIT_TIME_MASK) != tag)
		i = (i + 1) & mask;
	return i;
}

void
al_visits_prefetch(const struct al_visits *v, uint64_t key)
{
	__builtin_prefetch(&v->slots[visit_home(v, visit_tag(key))], 1);
}

/*
 * Drop the entries older than the minute before the newest row, and
 * count time from base. The table is rebuilt when three quarters full
 * (al_visits_step() gives the slots of pairs gone quiet to new pairs, so
 * that is mostly live entries), into one of the same size if at most
 * half of it is live, else into one at most a quarter full: a table that
 * must grow is most likely still growing (at start-up, or a scanner
 * walking a list), and each rebuild writes every entry again. A quarter
 * full is the memory that half full was with slots of 16 bytes, which is
 * as large as the table can be before it takes the CPU's caches from
 * the writer's SQLite pages (a quarter full then cost the writer about a
 * tenth more a row, bench/log_ab.sh, docs/performance.md).
 */
static int
visits_rebuild(struct al_visits *v, int64_t base)
{
	struct al_visits old = *v;
	int64_t cut = v->newest - SINK_VISIT_GAP_MS;
	size_t live = 0, cap = v->cap;

	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i] != 0 && slot_ts(&old, old.slots[i]) >= cut)
			live++;
	if ((live + 1) * 2 > cap)
		while ((live + 1) * 4 > cap)
			cap *= 2;
	if (visits_alloc(v, cap) == -1) {
		*v = old;
		return -1;
	}
	v->base = base;
	for (size_t i = 0; i < old.cap; i++) {
		uint64_t e = old.slots[i];

		if (e == 0 || slot_ts(&old, e) < cut)
			continue;
		v->slots[visits_find(v, e & ~VISIT_TIME_MASK)] = slot_make(v,
		    e & ~VISIT_TIME_MASK, slot_ts(&old, e));
		v->count++;
	}
	slots_free(old.slots, old.cap);
	return 0;
}

/*
 * Time 0 of the slots follows the rows, so that the live minute fits the
 * 24 bits with room on either side (VISIT_BASE_ROOM, 70 minutes, before
 * the minute, 3.4 hours after it): the table is rebuilt from a new time
 * 0 about every 3.4 hours, or when a row is from before time 0 (over an
 * hour late). A row more than 4.6 hours older than the newest means the
 * clock was set back: the table then starts again, as at start-up, so
 * that the pairs of the new time are counted as if the later ones never
 * came.
 */
#define VISIT_BASE_ROOM	((int64_t)(VISIT_TIME_MASK / 4))

static void
visits_restart(struct al_visits *v, int64_t ts_ms)
{
	memset(v->slots, 0, v->cap * sizeof(*v->slots));
	v->count = 0;
	v->newest = ts_ms;
	v->base = ts_ms - SINK_VISIT_GAP_MS - VISIT_BASE_ROOM;
}

/* Rebuild when ts_ms falls outside the slots' time; -1 out of memory. */
static int
visits_rebase(struct al_visits *v, int64_t ts_ms)
{
	int64_t cut = v->newest - SINK_VISIT_GAP_MS, base;

	if (ts_ms >= v->base && ts_ms - v->base <= (int64_t)VISIT_TIME_MASK)
		return 0;
	base = (ts_ms < cut ? ts_ms : cut) - VISIT_BASE_ROOM;
	if (base < v->newest - (int64_t)VISIT_TIME_MASK)
		base = v->newest - (int64_t)VISIT_TIME_MASK;
	return visits_rebuild(v, base);
}

int
al_visits_step(struct al_visits *v, uint64_t key, int64_t ts_ms)
{
	uint64_t tag = visit_tag(key);
	size_t mask, i, reuse = SIZE_MAX;
	int64_t cut;

	if (v->base == INT64_MIN ||
	    ts_ms < v->newest - (int64_t)VISIT_TIME_MASK)
		visits_restart(v, ts_ms);
	if (ts_ms > v->newest)
		v->newest = ts_ms;
	if (visits_rebase(v, ts_ms) == -1)
		return -1;
	cut = v->newest - SINK_VISIT_GAP_MS;
	mask = v->cap - 1;
	for (i = visit_home(v, tag); v->slots[i] != 0; i = (i + 1) & mask) {
		uint64_t *e = &v->slots[i];
		int64_t last;

		if ((*e & ~VISIT_TIME_MASK) != tag) {
			if (reuse == SIZE_MAX && slot_ts(v, *e) < cut)
				reuse = i;
			continue;
		}
		last = slot_ts(v, *e);
		if (ts_ms > last)
			*e = slot_make(v, tag, ts_ms);
		return ts_ms - last > SINK_VISIT_GAP_MS;
	}
	/*
	 * A new key takes the first slot on its chain whose entry is older
	 * than the minute: the chain keeps its length, and the table is
	 * rebuilt when live entries fill it, not each time the slots of
	 * pairs gone quiet add up to three quarters.
	 */
	if (reuse != SIZE_MAX) {
		v->slots[reuse] = slot_make(v, tag, ts_ms);
		return 1;
	}
	if ((v->count + 1) * 4 > v->cap * 3) {
		if (visits_rebuild(v, v->base) == -1)
			return -1;
		i = visits_find(v, tag);
	}
	v->slots[i] = slot_make(v, tag, ts_ms);
	v->count++;
	return 1;
}

size_t
al_visits_slots(const struct al_visits *v)
{
	return v->cap;
}

/* ---- pending counts ---- */

/*
 * Entries hold one period's counts: a quarter hour for kind TIME, a UTC
 * day for the others (the month's counts are the days' summed, written
 * by the sink beside each day). Their strings live in blocks that are
 * never moved, freed together by al_sums_clear().
 */
#define TEXT_BLOCK	65536

struct text_block {
	struct text_block *next;
	size_t		 used, cap;
	char		 text[];
};

/*
 * What a row touches of an entry, apart from its key: the entry's 64-bit
 * hash, which stands for the key (kind, grain, t and the strings, hashed
 * with a seed chosen at random per process), and its counts, copied into
 * the entry by al_sums_sort(). A row's lookups then read 32 bytes a key,
 * in an array a third the size of the entries (their strings apart),
 * instead of comparing up to three strings in entries the visit table's
 * misses have pushed out of the CPU's caches (that cost the writer about
 * as much as the visit table did, docs/performance.md). Two keys would
 * be counted as one only if their hashes were equal: about once in 2^64
 * a lookup.
 */
struct sum_hot {
	uint64_t	 hash;
	int64_t		 queries, attempts, verified;
};

/* The low half of an entry's hash beside its index: most misses end here. */
struct sum_slot {
	uint32_t	 idx;		/* entry index + 1; 0: empty */
	uint32_t	 tag;
};

struct al_sums {
	struct al_sum	 *entries;	/* their counts: see sum_hot */
	struct sum_hot	 *hot;		/* beside entries[], as many */
	size_t		  count, entries_cap;
	const struct al_sum **order;	/* al_sums_sort()'s; NULL: none */
	size_t		  order_cap;
	struct sum_slot	 *slots;
	size_t		  cap;
	struct text_block *text;	/* the newest first */
	uint64_t	  seed;
	int64_t		  day_cached;	/* the day of the last row */
	int64_t		  day_last;	/* the latest day counted */
	uint32_t	  last_time, last_policy;	/* entry index + 1 */
	bool		  sorted;	/* order[] holds every entry */
	struct row_hash	 *hashes;	/* al_sums_add_batch()'s */
	size_t		  hashes_cap;
};

struct al_sums *
al_sums_new(void)
{
	struct al_sums *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if ((s->slots = calloc(SUMS_MIN, sizeof(*s->slots))) == NULL) {
		free(s);
		return NULL;
	}
	s->cap = SUMS_MIN;
	s->seed = process_seed();
	s->day_cached = INT64_MIN;
	s->day_last = INT64_MIN;
	return s;
}

void
al_sums_clear(struct al_sums *s)
{
	struct text_block *b = s->text, *next;

	/* The first block stays for the next counts. */
	if (b != NULL) {
		for (next = b->next; next != NULL; ) {
			struct text_block *n = next->next;

			free(next);
			next = n;
		}
		b->next = NULL;
		b->used = 0;
	}
	s->count = 0;
	s->day_last = INT64_MIN;
	s->last_time = s->last_policy = 0;
	s->sorted = false;
	memset(s->slots, 0, s->cap * sizeof(*s->slots));
}

void
al_sums_free(struct al_sums *s)
{
	if (s == NULL)
		return;
	al_sums_clear(s);
	free(s->text);
	free(s->order);
	free(s->hashes);
	free(s->entries);
	free(s->hot);
	free(s->slots);
	free(s);
}

size_t
al_sums_count(const struct al_sums *s)
{
	return s->count;
}

const struct al_sum *
al_sums_get(const struct al_sums *s, size_t i)
{
	return s->sorted ? s->order[i] : &s->entries[i];
}

int64_t
al_sums_last_day(const struct al_sums *s)
{
	return s->day_last;
}

int64_t
al_sums_day(int64_t t)
{
	return cal_floor(t, 86400);
}

int64_t
al_sums_month(int64_t t)
{
	return cal_month_start(t);
}

static bool
str_eq(struct sink_str a, struct sink_str b)
{
	return a.len == b.len && memcmp(a.s, b.s, a.len) == 0;
}

static void
slots_fill(struct sum_slot *slots, size_t cap, const struct sum_hot *e,
    size_t count)
{
	size_t mask = cap - 1;

	for (size_t n = 0; n < count; n++) {
		size_t i = (size_t)e[n].hash & mask;

		while (slots[i].idx != 0)
			i = (i + 1) & mask;
		slots[i].idx = (uint32_t)n + 1;
		slots[i].tag = (uint32_t)(e[n].hash >> 32);
	}
}

static int
sums_grow(struct al_sums *s)
{
	size_t cap = s->cap * 2;
	struct sum_slot *slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return -1;
	slots_fill(slots, cap, s->hot, s->count);
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return 0;
}

/* A copy of len bytes that stays put until al_sums_clear(). */
static char *
sums_text(struct al_sums *s, size_t len)
{
	struct text_block *b = s->text;
	char *p;

	if (b == NULL || b->cap - b->used < len) {
		size_t cap = len > TEXT_BLOCK ? len : TEXT_BLOCK;

		if ((b = malloc(sizeof(*b) + cap)) == NULL)
			return NULL;
		b->cap = cap;
		b->used = 0;
		if (s->text != NULL && s->text->used == 0) {
			/* Only an empty first block: replace it. */
			b->next = s->text->next;
			free(s->text);
		} else
			b->next = s->text;
		s->text = b;
	}
	p = b->text + b->used;
	b->used += len;
	return p;
}

/* A new entry for key, its strings copied; its index + 1, or 0. */
static uint32_t
sums_insert(struct al_sums *s, size_t slot, uint64_t h,
    const struct al_sum *key)
{
	struct al_sum *e;
	size_t len = key->k[0].len + key->k[1].len + key->k[2].len;
	char *p;

	if (s->count == s->entries_cap) {
		size_t ncap = s->entries_cap ? s->entries_cap * 2 : SUMS_MIN;
		struct al_sum *n = reallocarray(s->entries, ncap, sizeof(*n));
		struct sum_hot *hot;

		if (n == NULL)
			return 0;
		s->entries = n;
		if ((hot = reallocarray(s->hot, ncap, sizeof(*hot))) == NULL)
			return 0;
		s->hot = hot;
		s->entries_cap = ncap;
	}
	if ((p = sums_text(s, len)) == NULL)
		return 0;
	s->sorted = false;
	e = &s->entries[s->count];
	*e = *key;
	e->queries = e->attempts = e->verified = 0;
	s->hot[s->count] = (struct sum_hot){ .hash = h };
	for (int k = 0; k < 3; k++) {
		if (key->k[k].len > 0)
			memcpy(p, key->k[k].s, key->k[k].len);
		e->k[k].s = p;
		p += key->k[k].len;
	}
	s->slots[slot].idx = (uint32_t)++s->count;
	s->slots[slot].tag = (uint32_t)(h >> 32);
	return s->slots[slot].idx;
}

/* The hash of key in the table, from hk, the hash of its strings. */
static uint64_t
sums_hash(uint64_t hk, const struct al_sum *key)
{
	return mix64(hk ^ ((uint64_t)key->t * 0x9e3779b97f4a7c15ULL) ^
	    ((uint64_t)key->kind << 56) ^ ((uint64_t)key->grain << 48));
}

/* The entry of key (its strings never NULL), made if new: index + 1, or 0. */
static uint32_t
sums_find(struct al_sums *s, uint64_t h, const struct al_sum *key)
{
	uint32_t tag = (uint32_t)(h >> 32);
	size_t mask = s->cap - 1, i = (size_t)h & mask;

	for (; s->slots[i].idx != 0; i = (i + 1) & mask)
		if (s->slots[i].tag == tag &&
		    s->hot[s->slots[i].idx - 1].hash == h)
			return s->slots[i].idx;
	if ((s->count + 1) * 2 > s->cap) {
		if (sums_grow(s) == -1)
			return 0;
		return sums_find(s, h, key);
	}
	return sums_insert(s, i, h, key);
}

static void
sums_bump(struct al_sums *s, uint32_t idx, const struct al_sum *key)
{
	struct sum_hot *e = &s->hot[idx - 1];

	e->queries += key->queries;
	e->attempts += key->attempts;
	e->verified += key->verified;
}

static struct sink_str
nonnull(struct sink_str v)
{
	if (v.s == NULL)
		return (struct sink_str){ "", 0 };
	return v;
}

/* The hashes of a row's client and rule keys (kinds CLIENT and RULE). */
struct row_hash {
	uint64_t	client, rule;
};

static void
row_keys(struct al_sums *s, const struct sink_attempt *a, struct al_sum *kc,
    struct al_sum *kr)
{
	static const struct sink_str none = { "", 0 };
	int64_t t = cal_floor(a->ts_ms, 1000) / 1000;

	if (s->day_cached == INT64_MIN || t < s->day_cached ||
	    t - s->day_cached >= 86400)
		s->day_cached = al_sums_day(t);
	kc->kind = SINK_SUM_CLIENT;
	kc->grain = SINK_GRAIN_DAY;
	kc->t = s->day_cached;
	kc->k[0] = nonnull(a->client);
	kc->k[1] = nonnull(a->client_name);
	kc->k[2] = none;
	kr->kind = SINK_SUM_RULE;
	kr->grain = SINK_GRAIN_DAY;
	kr->t = s->day_cached;
	kr->k[0] = nonnull(a->rule);
	kr->k[1] = nonnull(a->category);
	kr->k[2] = nonnull(a->site);
}

/* The hash of a key of three strings (kind RULE). */
static uint64_t
key3_hash(const struct al_sums *s, const struct al_sum *key)
{
	return sums_hash(hash_str(hash_str(hash_str(s->seed, key->k[0]),
	    key->k[1]), key->k[2]), key);
}

void
al_sums_row_hash(const struct al_sums *s, const struct sink_attempt *a,
    struct al_row_hash *h)
{
	uint64_t client = hash_str(s->seed, a->client);
	uint64_t rule = hash_str(s->seed, a->rule);

	h->visit = visit_key(client, rule);
	/* As key3_hash() and row_hash() would take them from the strings. */
	h->client = hash_str(client, a->client_name);
	h->rule = hash_str(hash_str(rule, a->category), a->site);
}

static void
row_hash(struct al_sums *s, const struct sink_attempt *a,
    const struct al_row_hash *rh, struct row_hash *h)
{
	struct al_sum kc, kr;

	row_keys(s, a, &kc, &kr);
	h->client = sums_hash(rh->client, &kc);
	h->rule = sums_hash(rh->rule, &kr);
}

static int
row_add(struct al_sums *s, const struct sink_attempt *a, bool visit,
    const struct row_hash *h)
{
	static const struct sink_str none = { "", 0 };
	int64_t t = cal_floor(a->ts_ms, 1000) / 1000;
	struct al_sum k = {
		.queries = 1, .attempts = visit, .verified = a->verified,
	};
	struct al_sum kc, kr;
	const struct al_sum *c;
	uint32_t idx;

	row_keys(s, a, &kc, &kr);
	if (s->day_cached > s->day_last)
		s->day_last = s->day_cached;

	/* Totals: the quarter of the row before, most of the time. */
	k.kind = SINK_SUM_TIME;
	k.grain = SINK_GRAIN_QUARTER;
	k.t = cal_floor(t, SINK_QUARTER_S);
	k.k[0] = k.k[1] = k.k[2] = none;
	c = s->last_time ? &s->entries[s->last_time - 1] : NULL;
	if (c == NULL || c->t != k.t) {
		if ((idx = sums_find(s, sums_hash(s->seed, &k), &k)) == 0)
			return -1;
		s->last_time = idx;
	}
	sums_bump(s, s->last_time, &k);

	/* Policies are few: the last one again, most of the time. */
	k.grain = SINK_GRAIN_DAY;
	k.t = s->day_cached;
	k.kind = SINK_SUM_POLICY;
	k.k[0] = nonnull(a->policy);
	c = s->last_policy ? &s->entries[s->last_policy - 1] : NULL;
	if (c == NULL || c->t != k.t || !str_eq(c->k[0], k.k[0])) {
		if ((idx = sums_find(s, sums_hash(hash_str(s->seed, k.k[0]),
		    &k), &k)) == 0)
			return -1;
		s->last_policy = idx;
	}
	sums_bump(s, s->last_policy, &k);

	if ((idx = sums_find(s, h->client, &kc)) == 0)
		return -1;
	sums_bump(s, idx, &k);
	if ((idx = sums_find(s, h->rule, &kr)) == 0)
		return -1;
	sums_bump(s, idx, &k);
	return 0;
}

int
al_sums_add(struct al_sums *s, const struct sink_attempt *a, bool visit)
{
	struct al_row_hash rh;
	struct row_hash h;

	al_sums_row_hash(s, a, &rh);
	row_hash(s, a, &rh, &h);
	return row_add(s, a, visit, &h);
}

/*
 * Stages of loading a key's counts ahead of its row: its slot, then the
 * counts the slot names. The second reads only what the first had asked
 * for, rows earlier.
 */
static void
prefetch_slot(const struct al_sums *s, uint64_t h)
{
	__builtin_prefetch(&s->slots[(size_t)h & (s->cap - 1)]);
}

static void
prefetch_hot(const struct al_sums *s, uint64_t h)
{
	const struct sum_slot *sl = &s->slots[(size_t)h & (s->cap - 1)];

	if (sl->idx != 0 && sl->tag == (uint32_t)(h >> 32))
		__builtin_prefetch(&s->hot[sl->idx - 1], 1);
}

/* Rows between the stages: the time one row takes covers a stage's load. */
#define SUMS_AHEAD	4

int
al_sums_add_batch(struct al_sums *s, const struct sink_attempt *a,
    const struct al_row_hash *rh, const uint8_t *visit, size_t n)
{
	struct row_hash *h;

	if (n > s->hashes_cap) {
		if ((h = reallocarray(s->hashes, n, sizeof(*h))) == NULL)
			return -1;
		s->hashes = h;
		s->hashes_cap = n;
	}
	h = s->hashes;
	for (size_t i = 0; i < n; i++)
		row_hash(s, &a[i], &rh[i], &h[i]);
	for (size_t i = 0; i < n; i++) {
		size_t j;

		if ((j = i + 2 * SUMS_AHEAD) < n) {
			prefetch_slot(s, h[j].client);
			prefetch_slot(s, h[j].rule);
		}
		if ((j = i + SUMS_AHEAD) < n) {
			prefetch_hot(s, h[j].client);
			prefetch_hot(s, h[j].rule);
		}
		if (row_add(s, &a[i], visit[i] != 0, &h[i]) == -1)
			return -1;
	}
	return 0;
}

/* As SQLite's BINARY collation orders text: bytes, then length. */
static int
str_cmp(struct sink_str a, struct sink_str b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n > 0 ? memcmp(a.s, b.s, n) : 0;

	if (c != 0)
		return c;
	return a.len < b.len ? -1 : a.len > b.len;
}

static int
entry_cmp(const void *pa, const void *pb)
{
	const struct al_sum *a = *(const struct al_sum *const *)pa;
	const struct al_sum *b = *(const struct al_sum *const *)pb;
	int c;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->grain != b->grain)
		return a->grain < b->grain ? -1 : 1;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	/* A day's rule keys are numbered as counted (sink_sqlite.c). */
	if (al_sum_is_rule_day(a))
		return (a > b) - (a < b);
	for (int k = 0; k < 3; k++)
		if ((c = str_cmp(a->k[k], b->k[k])) != 0)
			return c;
	return 0;
}

/* Whether the n keys of o are already in entry_cmp()'s order. */
static bool
order_sorted(const struct al_sum **o, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (entry_cmp(&o[i - 1], &o[i]) > 0)
			return false;
	return true;
}

/* Swap the blocks o[0, a) and o[a, n), by three reversals. */
static void
order_rotate(const struct al_sum **o, size_t a, size_t n)
{
	const struct al_sum *t;
	size_t ranges[3][2] = { { 0, a }, { a, n }, { 0, n } };

	for (int r = 0; r < 3; r++)
		for (size_t i = ranges[r][0], j = ranges[r][1]; i + 1 < j;
		    i++, j--) {
			t = o[i];
			o[i] = o[j - 1];
			o[j - 1] = t;
		}
}

/*
 * A day's rule keys order by (t, entry): they are in that order already
 * unless a late row came in, and on a scanner's names they are nearly
 * every key. Only the others are sorted; the rule keys go between them
 * as one block (kind RULE sorts between CLIENT and POLICY).
 */
int
al_sums_sort(struct al_sums *s)
{
	const struct al_sum **o;
	size_t nother = 0, nrule, at;

	for (size_t i = 0; i < s->count; i++) {
		s->entries[i].queries = s->hot[i].queries;
		s->entries[i].attempts = s->hot[i].attempts;
		s->entries[i].verified = s->hot[i].verified;
	}
	if (s->count > s->order_cap) {
		const struct al_sum **n = reallocarray(s->order, s->entries_cap,
		    sizeof(*n));

		if (n == NULL)
			return -1;
		s->order = n;
		s->order_cap = s->entries_cap;
	}
	o = s->order;
	for (size_t i = 0; i < s->count; i++)
		if (!al_sum_is_rule_day(&s->entries[i]))
			o[nother++] = &s->entries[i];
	nrule = nother;
	for (size_t i = 0; i < s->count; i++)
		if (al_sum_is_rule_day(&s->entries[i]))
			o[nrule++] = &s->entries[i];
	nrule -= nother;
	qsort(o, nother, sizeof(*o), entry_cmp);
	if (!order_sorted(o + nother, nrule))
		qsort(o + nother, nrule, sizeof(*o), entry_cmp);
	for (at = nother; at > 0 && (o[at - 1]->kind > SINK_SUM_RULE ||
	    (o[at - 1]->kind == SINK_SUM_RULE &&
	    o[at - 1]->grain > SINK_GRAIN_DAY)); at--)
		;
	order_rotate(o + at, nother - at, s->count - at);
	s->sorted = true;
	return 0;
}

uint64_t
al_sums_hash(const struct al_sums *s, const struct al_sum *key)
{
	return key3_hash(s, key);
}

void
al_sums_prefetch(const struct al_sums *s, uint64_t h)
{
	prefetch_slot(s, h);
}

int64_t
al_sums_number(struct al_sums *s, const struct al_sum *key, uint64_t h,
    int64_t next)
{
	uint32_t idx = sums_find(s, h, key);
	struct sum_hot *e;

	if (idx == 0)
		return -1;
	/* A new entry's counts are 0: its number is kept in queries. */
	e = &s->hot[idx - 1];
	if (e->queries == 0)
		e->queries = next;
	return e->queries;
}
