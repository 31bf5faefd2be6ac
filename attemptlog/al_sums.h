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

/* The key of (client, rule): a 64-bit hash, seeded per table. */
uint64_t al_visits_key(const struct al_visits *v, struct sink_str client,
	    struct sink_str rule);

/*
 * A row of key at ts_ms: returns true when it starts an attempt (no row
 * of key in the table, or the last one more than SINK_VISIT_GAP_MS
 * older), and remembers ts_ms (or keeps a later time already there).
 * Returns -1 when the table cannot grow (out of memory), else 0 or 1.
 */
int	al_visits_step(struct al_visits *v, uint64_t key, int64_t ts_ms);

/* Counts of rows per summary key, not yet in table attempt_sums. */
struct al_sums;

struct al_sum {
	uint8_t		 kind;		/* SINK_SUM_* */
	uint8_t		 grain;		/* SINK_GRAIN_* */
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

/* How many distinct keys, and the i-th (0 <= i < count). */
size_t	al_sums_count(const struct al_sums *s);
const struct al_sum *al_sums_get(const struct al_sums *s, size_t i);

/* Forget every count (they were written). */
void	al_sums_clear(struct al_sums *s);

/* Start of the UTC day and month of t (Unix s). */
int64_t	al_sums_day(int64_t t);
int64_t	al_sums_month(int64_t t);

#endif
