/*
 * al_sums: what the SQLite sink keeps in memory to write table
 * attempt_sums cheaply (see sink.h): which rows start an attempt, and
 * the counts of rows written but not yet added to the table. Private to
 * attemptlog/; used by one thread.
 */
#ifndef DNSWARDEN_AL_SUMS_H
#define DNSWARDEN_AL_SUMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink.h"

/*
 * The last time of each (client, rule), for the visit rule. Entries more
 * than SINK_VISIT_GAP_MS older than the newest row go when room is needed,
 * so it holds the pairs of the last minute only.
 */
struct al_visits;

/* A new, empty table, or NULL (out of memory). */
struct al_visits *al_visits_new(void);
void	al_visits_free(struct al_visits *v);

/* The key of (client, rule): a 64-bit hash, seeded per process. */
uint64_t al_visits_key(const struct al_visits *v, struct sink_str client,
	    struct sink_str rule);

/*
 * Start loading key's slot: a table of a minute of busy traffic is far
 * larger than the CPU's caches, and waiting for each row's slot in turn
 * cost as much as writing the row. Call it a few rows ahead.
 */
void	al_visits_prefetch(const struct al_visits *v, uint64_t key);

/*
 * A row of key at ts_ms: returns true when it starts an attempt (no row
 * of key in the table, or the last one more than SINK_VISIT_GAP_MS
 * older), and remembers ts_ms (or keeps a later time already there).
 * Returns -1 when the table cannot grow (out of memory), else 0 or 1.
 */
int	al_visits_step(struct al_visits *v, uint64_t key, int64_t ts_ms);

/* The slots the table holds (its memory: 8 bytes each). */
size_t	al_visits_slots(const struct al_visits *v);

/*
 * Counts of rows per summary key, not yet in table attempt_sums: of kind
 * TIME per quarter hour, of the other kinds per UTC day. A month's counts
 * are its days' summed: the sink adds each day to its month once that
 * day is over (sink_sqlite.c, sums_write()).
 */
struct al_sums;

struct al_sum {
	uint8_t		 kind;		/* SINK_SUM_* */
	uint8_t		 grain;		/* SINK_GRAIN_QUARTER or _DAY */
	int64_t		 t;		/* period start, Unix s */
	struct sink_str	 k[3];		/* never NULL: "" for none */
	int64_t		 queries, attempts, verified;
};

struct al_sums *al_sums_new(void);
void	al_sums_free(struct al_sums *s);

/*
 * Count row a (visit: it starts an attempt) in every summary it belongs
 * to. Returns 0, or -1 (out of memory: the counts are then incomplete,
 * and the caller must rebuild them from the rows).
 */
int	al_sums_add(struct al_sums *s, const struct sink_attempt *a,
	    bool visit);

/*
 * A row's strings hashed once: its visit key (al_visits_key()'s), and
 * the strings of its keys of kind CLIENT and RULE, for
 * al_sums_add_batch().
 */
struct al_row_hash {
	uint64_t	visit, client, rule;
};

void	al_sums_row_hash(const struct al_sums *s, const struct sink_attempt *a,
	    struct al_row_hash *h);

/*
 * The same as al_sums_add() for the n rows of a (visit[i]: row i starts
 * an attempt; rh[i]: its al_sums_row_hash()), with each row's counts
 * loaded ahead of it: they are rarely still in the CPU's caches from the
 * row before of their key. Returns 0 or -1 as al_sums_add() does.
 */
int	al_sums_add_batch(struct al_sums *s, const struct sink_attempt *a,
	    const struct al_row_hash *rh, const uint8_t *visit, size_t n);

/*
 * How many distinct keys, and the i-th (0 <= i < count), whose counts are
 * those of the last al_sums_sort(): rows add to counts kept apart from
 * the keys (al_sums.c, struct sum_hot), copied into them there.
 */
size_t	al_sums_count(const struct al_sums *s);
const struct al_sum *al_sums_get(const struct al_sums *s, size_t i);

/*
 * Number the keys in the order of table attempt_sums' primary key, so
 * that writing them walks its pages in order (each page read and written
 * once per flush, not once per key), but a day's keys of kind RULE in the
 * order they were first counted (the sink numbers them so, in a table of
 * their own): al_sums_get() then returns them in that order until a key
 * is added or the counts are cleared. Returns 0, or -1 (out of memory:
 * the order stays as it was, the counts are copied all the same).
 */
int	al_sums_sort(struct al_sums *s);

/* A day's key of kind RULE: written to table attempt_sums_rules (v7). */
static inline bool
al_sum_is_rule_day(const struct al_sum *m)
{
	return m->kind == SINK_SUM_RULE && m->grain == SINK_GRAIN_DAY;
}

/*
 * Use s as a map from keys to numbers instead of counts: the number of
 * key (its strings never NULL), or, when key is new, next (at least 1),
 * which it keeps from then on; h is al_sums_hash(s, key).
 * al_sums_count() is the map's size and al_sums_clear() empties it.
 * Returns -1 when out of memory. The sink numbers the day's rules with it
 * (sink_sqlite.c, rule_seq()).
 */
int64_t	al_sums_number(struct al_sums *s, const struct al_sum *key,
	    uint64_t h, int64_t next);

/*
 * The hash of key in s, for al_sums_number(); it stays valid across
 * al_sums_clear(). al_sums_prefetch() starts loading its slot: a map of
 * a day's rules is far larger than the CPU's caches, so the sink asks
 * for each key's slot a few keys ahead of numbering it.
 */
uint64_t al_sums_hash(const struct al_sums *s, const struct al_sum *key);
void	al_sums_prefetch(const struct al_sums *s, uint64_t h);

/* The start of the latest UTC day counted, INT64_MIN when none. */
int64_t	al_sums_last_day(const struct al_sums *s);

/* Forget every count (they were written). */
void	al_sums_clear(struct al_sums *s);

/* Start of the UTC day and month of t (Unix s). */
int64_t	al_sums_day(int64_t t);
int64_t	al_sums_month(int64_t t);

#endif
