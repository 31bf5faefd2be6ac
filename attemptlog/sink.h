/*
 * sink: where the attempt log's writer thread puts its rows. The writer
 * formats every row to text first, so a sink only stores strings and
 * integers; it knows nothing of DNS or of the configuration. SQLite is the
 * one sink today (sink_sqlite.c); a PostgreSQL sink can sit beside it with
 * the same ops.
 *
 * Row strings come with their length and are not NUL-terminated: they
 * point into the writer's buffers and queue, and measuring them again for
 * every row cost the writer more than formatting them.
 *
 * A sink object is used by one thread at a time. Every call that fails
 * leaves its reason in sink_ops.error() until the next call.
 */
#ifndef DNSWARDEN_SINK_H
#define DNSWARDEN_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The schema version a sink writes (PRAGMA user_version for SQLite). */
#define SINK_SCHEMA_VERSION	7

/*
 * Table attempt_sums (version 4): counts of rows, attempts (rows whose
 * visit is 1) and verified rows per (kind, grain, t, k1, k2, k3), kept by
 * the writer as it writes the rows; rows with id <= attempt_sums_state.
 * covered_id are in it, later ones not yet. t is the start of the period
 * in Unix seconds (UTC); text keys hold "" for NULL. Since version 6 a
 * month row counts only its days before attempt_sums_state.months_day;
 * the days from it on are in their day rows alone. Since version 7 the
 * day rows of kind RULE are in table attempt_sums_rules (t, seq, k1, k2,
 * k3 and the counts), where one key may have several rows a day, to be
 * added up (sink_sqlite.c). The report library
 * reads it (../report/rp_query.c); docs/reports.md describes it.
 */
#define SINK_SUM_TIME		0	/* totals; grain QUARTER */
#define SINK_SUM_CLIENT		1	/* k1 client, k2 client_name; DAY, MONTH */
#define SINK_SUM_RULE		2	/* k1 rule, k2 category, k3 site; DAY, MONTH */
#define SINK_SUM_POLICY		3	/* k1 policy; DAY, MONTH */

#define SINK_GRAIN_QUARTER	0	/* 15 minutes: every zone's offset is
					   a multiple of it */
#define SINK_GRAIN_DAY		1	/* UTC day */
#define SINK_GRAIN_MONTH	2	/* UTC calendar month */
#define SINK_QUARTER_S		900

/* A row starts an attempt when its client's last row for its rule is
 * more than this much older, or there is none (docs/reports.md). */
#define SINK_VISIT_GAP_MS	60000

/* The SQLite sink writes the counts it keeps in memory to attempt_sums
 * when the oldest is this old, or when there are this many keys
 * (sink_sqlite.c says why these figures). */
#define SINK_SUMS_FLUSH_MS	2000
#define SINK_SUMS_MAX_KEYS	131072

/* len bytes at s, not NUL-terminated; s NULL: SQL NULL. */
struct sink_str {
	const char	*s;
	size_t		 len;
};

/* One row of table attempts (its columns: docs/reports.md). */
struct sink_attempt {
	int64_t		 ts_ms;
	struct sink_str	 client;
	struct sink_str	 client_name;	/* NULL: none */
	struct sink_str	 qname;
	struct sink_str	 qtype;
	struct sink_str	 rule;
	struct sink_str	 category;
	struct sink_str	 site;		/* NULL: imported list */
	struct sink_str	 transport;
	bool		 verified;	/* address proven (TCP, DNS cookie) */
	struct sink_str	 policy;	/* NULL: the default policy */
};

/* One row of table queries (log.all_queries). */
struct sink_query {
	int64_t		 ts_ms;
	struct sink_str	 client;
	struct sink_str	 client_name;	/* NULL: none */
	struct sink_str	 qname;
	struct sink_str	 qtype;
	struct sink_str	 rcode;		/* "NOERROR", "NXDOMAIN", ... */
	bool		 cached;
	bool		 blocked;
	struct sink_str	 upstream;	/* NULL: none asked */
	uint32_t	 duration_us;
	struct sink_str	 transport;
	bool		 verified;
	struct sink_str	 policy;	/* NULL: the default policy */
};

/* Rows the writer lost (queue full), for table log_gaps. NUL-terminated. */
struct sink_gap {
	int64_t		 ts_start;	/* first and last lost row, ms */
	int64_t		 ts_end;
	uint64_t	 rows;
	const char	*table;		/* "attempts" or "queries" */
	const char	*reason;
};

/* What one write_batch() stores, all or nothing. */
struct sink_batch {
	const struct sink_attempt	*attempts;
	size_t				 nattempts;
	const struct sink_query		*queries;
	size_t				 nqueries;
	const struct sink_gap		*gaps;
	size_t				 ngaps;
	int64_t				 now_ms;	/* for log_gaps.logged_at */
};

struct sink;

struct sink_ops {
	const char	*name;		/* "sqlite", for messages */

	/*
	 * Process-wide settings the sink wants, or NULL. Called by
	 * attemptlog_open() in its caller's thread before the writer thread
	 * starts; may be called more than once.
	 */
	void		 (*setup)(void);

	/*
	 * Open (creating, or upgrading in place, as needed) the store named
	 * by target: a file path for SQLite. Returns the sink, or NULL with
	 * the reason, cause included, written to err (errlen bytes).
	 */
	struct sink	*(*open)(const char *target, char *err, size_t errlen);

	/*
	 * Store every row of b in one transaction. Returns 0, or -1 when
	 * nothing was stored (the caller keeps the rows and retries).
	 */
	int		 (*write_batch)(struct sink *s, const struct sink_batch *b);

	/*
	 * Delete at most max_rows rows older than before_ms (attempts first,
	 * then queries, then log_gaps), in one short transaction. Returns the
	 * number deleted (less than max_rows: nothing older is left), or -1.
	 */
	long		 (*expire)(struct sink *s, int64_t before_ms,
			    unsigned max_rows);

	/*
	 * Background work, in one short transaction of at most max_rows
	 * rows: bring table attempt_sums up to the last row (after an
	 * upgrade or a crash; on a file of an earlier version this decides
	 * the column visit of its rows too), or write the counts kept in
	 * memory when they are due at now_ms (wall). After an upgrade to
	 * version 5, the first step instead indexes every row (attempts_log,
	 * seconds on a large file; not bounded by max_rows). Returns the rows
	 * still to work through after this step (0: up to date), or -1.
	 * NULL: the sink has none.
	 */
	long		 (*maintain)(struct sink *s, unsigned max_rows,
			    int64_t now_ms);

	/* The reason for the last failure ("" if none); owned by s. */
	const char	*(*error)(struct sink *s);

	/* Close s (NULL is fine); rows already written stay. */
	void		 (*close)(struct sink *s);
};

/* The SQLite sink (sink_sqlite.c). */
extern const struct sink_ops sink_sqlite_ops;

#endif
