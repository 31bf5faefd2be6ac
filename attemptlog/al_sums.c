/*
 * al_sums: the visit table and the pending counts. See al_sums.h.
 *
 * Both are open-addressing tables with linear probing. Per row the sink
 * hashes three strings (client, rule, policy) once and then touches eight
 * slots: the visit rule's and seven counts. A count is written to SQLite
 * once per key and flush, not once per row: a row costs memory lookups,
 * not an UPSERT.
 */
#include <sys/random.h>

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
	return hash_more(h, s.s ? s.s : "", s.s ? s.len : 0);
}

static uint64_t
random_seed(void)
{
	uint64_t seed = 0x243f6a8885a308d3ULL;

	/* Without randomness the table works, only its hashes are guessable. */
	(void)getrandom(&seed, sizeof(seed), GRND_NONBLOCK);
	return seed;
}

/* ---- visits ---- */

struct al_visits {
	uint64_t	*keys;		/* 0: empty */
	int64_t		*ts;
	size_t		 cap, count;
	int64_t		 newest;
	uint64_t	 seed;
};

static int
visits_alloc(struct al_visits *v, size_t cap)
{
	v->keys = calloc(cap, sizeof(*v->keys));
	v->ts = calloc(cap, sizeof(*v->ts));
	if (v->keys == NULL || v->ts == NULL) {
		free(v->keys);
		free(v->ts);
		return -1;
	}
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
	v->seed = random_seed();
	return v;
}

void
al_visits_free(struct al_visits *v)
{
	if (v == NULL)
		return;
	free(v->keys);
	free(v->ts);
	free(v);
}

uint64_t
al_visits_key(const struct al_visits *v, struct sink_str client,
    struct sink_str rule)
{
	uint64_t h = hash_str(hash_str(v->seed, client), rule);

	h = mix64(h);
	return h ? h : 1;
}

static size_t
visits_find(const struct al_visits *v, uint64_t key)
{
	size_t mask = v->cap - 1, i = (size_t)key & mask;

	while (v->keys[i] != 0 && v->keys[i] != key)
		i = (i + 1) & mask;
	return i;
}

/* Drop the entries of the minute before the newest row; grow if full. */
static int
visits_rebuild(struct al_visits *v)
{
	struct al_visits old = *v;
	size_t live = 0, cap = v->cap;

	for (size_t i = 0; i < old.cap; i++)
		if (old.keys[i] != 0 &&
		    old.ts[i] >= v->newest - SINK_VISIT_GAP_MS)
			live++;
	while ((live + 1) * 4 > cap * 1)
		cap *= 2;
	if (visits_alloc(v, cap) == -1) {
		*v = old;
		return -1;
	}
	for (size_t i = 0; i < old.cap; i++) {
		if (old.keys[i] == 0 ||
		    old.ts[i] < v->newest - SINK_VISIT_GAP_MS)
			continue;
		size_t j = visits_find(v, old.keys[i]);

		v->keys[j] = old.keys[i];
		v->ts[j] = old.ts[i];
		v->count++;
	}
	free(old.keys);
	free(old.ts);
	return 0;
}

int
al_visits_step(struct al_visits *v, uint64_t key, int64_t ts_ms)
{
	size_t i;

	if (ts_ms > v->newest)
		v->newest = ts_ms;
	i = visits_find(v, key);
	if (v->keys[i] == key) {
		bool start = ts_ms - v->ts[i] > SINK_VISIT_GAP_MS;

		if (ts_ms > v->ts[i])
			v->ts[i] = ts_ms;
		return start;
	}
	if ((v->count + 1) * 2 > v->cap) {
		if (visits_rebuild(v) == -1)
			return -1;
		i = visits_find(v, key);
	}
	v->keys[i] = key;
	v->ts[i] = ts_ms;
	v->count++;
	return 1;
}

/* ---- pending counts ---- */

struct sum_entry {
	struct al_sum	 sum;
	uint64_t	 hash;
	char		*text;		/* k[0..2] point into it */
};

struct al_sums {
	struct sum_entry *entries;
	size_t		  count, entries_cap;
	uint32_t	 *slots;	/* entry index + 1; 0: empty */
	size_t		  cap;
	uint64_t	  seed;
	int64_t		  day_cached, month_cached;	/* al_sums_month() */
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
	s->seed = random_seed();
	s->day_cached = -1;
	return s;
}

void
al_sums_clear(struct al_sums *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->entries[i].text);
	s->count = 0;
	memset(s->slots, 0, s->cap * sizeof(*s->slots));
}

void
al_sums_free(struct al_sums *s)
{
	if (s == NULL)
		return;
	al_sums_clear(s);
	free(s->entries);
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
	return &s->entries[i].sum;
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

static int
sums_grow(struct al_sums *s)
{
	size_t cap = s->cap * 2, mask = cap - 1;
	uint32_t *slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return -1;
	for (size_t e = 0; e < s->count; e++) {
		size_t i = (size_t)s->entries[e].hash & mask;

		while (slots[i] != 0)
			i = (i + 1) & mask;
		slots[i] = (uint32_t)e + 1;
	}
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return 0;
}

/* A new entry for key, its strings copied. */
static struct sum_entry *
sums_insert(struct al_sums *s, size_t slot, uint64_t h, const struct al_sum *key)
{
	struct sum_entry *e;
	size_t len = key->k[0].len + key->k[1].len + key->k[2].len + 1;
	char *p;

	if (s->count == s->entries_cap) {
		size_t ncap = s->entries_cap ? s->entries_cap * 2 : SUMS_MIN;
		struct sum_entry *n = reallocarray(s->entries, ncap,
		    sizeof(*n));

		if (n == NULL)
			return NULL;
		s->entries = n;
		s->entries_cap = ncap;
	}
	if ((p = malloc(len)) == NULL)
		return NULL;
	e = &s->entries[s->count];
	e->sum = *key;
	e->sum.queries = e->sum.attempts = e->sum.verified = 0;
	e->hash = h;
	e->text = p;
	for (int k = 0; k < 3; k++) {
		memcpy(p, key->k[k].s, key->k[k].len);
		e->sum.k[k].s = p;
		p += key->k[k].len;
	}
	s->slots[slot] = (uint32_t)++s->count;
	return e;
}

/* Add one row's counts to key (its strings never NULL). */
static int
sums_bump(struct al_sums *s, uint64_t hk, const struct al_sum *key)
{
	uint64_t h = mix64(hk ^ ((uint64_t)key->t * 0x9e3779b97f4a7c15ULL) ^
	    ((uint64_t)key->kind << 56) ^ ((uint64_t)key->grain << 48));
	size_t mask = s->cap - 1, i = (size_t)h & mask;
	struct sum_entry *e = NULL;

	for (; s->slots[i] != 0; i = (i + 1) & mask) {
		struct sum_entry *c = &s->entries[s->slots[i] - 1];

		if (c->hash == h && c->sum.t == key->t &&
		    c->sum.kind == key->kind && c->sum.grain == key->grain &&
		    str_eq(c->sum.k[0], key->k[0]) &&
		    str_eq(c->sum.k[1], key->k[1]) &&
		    str_eq(c->sum.k[2], key->k[2])) {
			e = c;
			break;
		}
	}
	if (e == NULL) {
		if ((s->count + 1) * 2 > s->cap) {
			if (sums_grow(s) == -1)
				return -1;
			return sums_bump(s, hk, key);
		}
		if ((e = sums_insert(s, i, h, key)) == NULL)
			return -1;
	}
	e->sum.queries += key->queries;
	e->sum.attempts += key->attempts;
	e->sum.verified += key->verified;
	return 0;
}

static struct sink_str
nonnull(struct sink_str v)
{
	if (v.s == NULL)
		return (struct sink_str){ "", 0 };
	return v;
}

int
al_sums_add(struct al_sums *s, const struct sink_attempt *a, bool visit)
{
	static const struct sink_str none = { "", 0 };
	int64_t t = cal_floor(a->ts_ms, 1000) / 1000;
	int64_t day = al_sums_day(t), month;
	struct al_sum k = {
		.queries = 1, .attempts = visit, .verified = a->verified,
	};
	uint64_t hc, hr, hp;

	if (day != s->day_cached) {
		s->day_cached = day;
		s->month_cached = al_sums_month(day);
	}
	month = s->month_cached;

	k.kind = SINK_SUM_TIME;
	k.grain = SINK_GRAIN_QUARTER;
	k.t = cal_floor(t, SINK_QUARTER_S);
	k.k[0] = k.k[1] = k.k[2] = none;
	if (sums_bump(s, s->seed, &k) == -1)
		return -1;

	k.kind = SINK_SUM_POLICY;
	k.k[0] = nonnull(a->policy);
	hp = hash_str(s->seed, k.k[0]);
	k.grain = SINK_GRAIN_DAY;
	k.t = day;
	if (sums_bump(s, hp, &k) == -1)
		return -1;
	k.grain = SINK_GRAIN_MONTH;
	k.t = month;
	if (sums_bump(s, hp, &k) == -1)
		return -1;

	k.kind = SINK_SUM_CLIENT;
	k.k[0] = nonnull(a->client);
	k.k[1] = nonnull(a->client_name);
	hc = hash_str(hash_str(s->seed, k.k[0]), k.k[1]);
	k.grain = SINK_GRAIN_DAY;
	k.t = day;
	if (sums_bump(s, hc, &k) == -1)
		return -1;
	k.grain = SINK_GRAIN_MONTH;
	k.t = month;
	if (sums_bump(s, hc, &k) == -1)
		return -1;

	k.kind = SINK_SUM_RULE;
	k.k[0] = nonnull(a->rule);
	k.k[1] = nonnull(a->category);
	k.k[2] = nonnull(a->site);
	hr = hash_str(hash_str(hash_str(s->seed, k.k[0]), k.k[1]), k.k[2]);
	k.grain = SINK_GRAIN_DAY;
	k.t = day;
	if (sums_bump(s, hr, &k) == -1)
		return -1;
	k.grain = SINK_GRAIN_MONTH;
	k.t = month;
	return sums_bump(s, hr, &k);
}
