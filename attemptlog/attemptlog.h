/*
 * attemptlog: the log of blocked attempts (and, optionally, of every
 * answered query). The event loop hands each event to attemptlog_append*(),
 * which copies it into a bounded queue and returns at once; a writer thread
 * formats the rows and writes them in batched transactions through a sink
 * (sink.h: SQLite today, PostgreSQL later). The event loop never waits on
 * the disk. When the queue is full the row is dropped and counted.
 */
#ifndef DNSWARDEN_ATTEMPTLOG_H
#define DNSWARDEN_ATTEMPTLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "blocklist.h"
#include "config.h"

enum transport {
	TRANSPORT_UDP,
	TRANSPORT_TCP,
};

/*
 * One blocked query, as the event loop sees it. Nothing here is kept:
 * the strings (the match's, the policy name) are copied into the queue,
 * so they need to live only until attemptlog_append() returns, and a
 * reload may free them right after.
 */
struct attempt {
	int64_t				 ts_ms;	/* Unix time, milliseconds */
	const struct sockaddr		*client;
	const uint8_t			*qname;	/* wire format, lower case */
	size_t				 qname_len;
	uint16_t			 qtype;
	enum transport			 transport;
	bool				 verified; /* address proven: TCP, or a
						      valid DNS server cookie */
	const char			*policy; /* policies: entry that applied,
						    NULL for the default */
	const struct blocklist_match	*match;	/* the rule that blocked it */
};

/* One answered query, for log.all_queries. Nothing here is kept. */
struct query_event {
	int64_t			 ts_ms;
	const struct sockaddr	*client;
	const uint8_t		*qname;		/* wire format, lower case */
	size_t			 qname_len;
	uint16_t		 qtype;
	uint8_t			 rcode;		/* answer code sent */
	bool			 cached;	/* answered from the cache */
	bool			 blocked;
	const char		*upstream;	/* NULL when none was asked */
	uint32_t		 duration_us;	/* query in to answer out */
	enum transport		 transport;
	bool			 verified;	/* as in struct attempt */
	const char		*policy;	/* as in struct attempt */
};

struct attemptlog_stats {
	uint64_t	queued;		/* rows accepted into the queue */
	uint64_t	written;	/* rows committed to the database */
	uint64_t	dropped;	/* rows lost because the queue was full */
	uint64_t	write_errors;	/* failed batches (rows kept and retried) */
	uint64_t	pending;	/* rows waiting in the queue now */

	/* The central shipper's (../central/central.h), filled by main. */
	bool		central;	/* log.central is configured */
	uint64_t	central_shipped;	/* rows shipped since start */
	uint64_t	central_waiting;	/* rows in the file not shipped */
	uint64_t	central_behind_s;	/* age of the oldest waiting */
	uint64_t	central_connected;	/* 1 while connected */
};

struct attemptlog;

/*
 * Start the writer thread for cfg->log and wait for its first attempt to
 * open the database, so that the database and its files exist, owned by
 * the writer's user, before the caller serves (no time limit: SQLite's
 * busy timeout bounds the open; after a second it says that it waits).
 * Never fails because of the database: when it cannot be opened the error
 * is logged once and the writer keeps retrying while rows wait in the
 * queue; attemptlog_open_status() tells. Returns NULL only when out of
 * memory or when cfg->log.database is NULL (logging off).
 */
struct attemptlog	*attemptlog_open(const struct config *cfg);

/*
 * attemptlog_open() writing the database at path (by name, or through a
 * directory descriptor, /proc/self/fd/N/attempts.db) instead of
 * cfg->log.database. An empty path is cfg->log.database.
 */
struct attemptlog	*attemptlog_open_path(const struct config *cfg,
			    const char *path);

/*
 * Whether the writer's first open (in attemptlog_open()) worked: 0, or -1
 * with the reason in err. For start-up to refuse to serve without a log
 * (log.required).
 */
int	attemptlog_open_status(struct attemptlog *al, char *err,
	    size_t errlen);

struct sink_ops;

/*
 * attemptlog_open() writing through another sink than SQLite (sink.h): a
 * fake one in the tests, PostgreSQL later. ops must outlive the log.
 */
struct attemptlog	*attemptlog_open_sink(const struct config *cfg,
			    const struct sink_ops *ops);

/*
 * The clocks the writer decides by, in milliseconds: monotonic (retrying a
 * failed database, gathering a batch, the daily retention pass) and wall
 * (the retention cutoff, log_gaps.logged_at). Both read from any thread.
 */
struct attemptlog_clock {
	int64_t	(*mono_ms)(void *arg);
	int64_t	(*wall_ms)(void *arg);
	void	*arg;
};

/*
 * attemptlog_open_sink() on clock (copied) instead of the system's, so
 * that a test moves time instead of sleeping; NULL: the system's.
 */
struct attemptlog	*attemptlog_open_clock(const struct config *cfg,
			    const struct sink_ops *ops,
			    const struct attemptlog_clock *clock);

/* The clock given to attemptlog_open_clock() moved: the writer looks at
 * it again now, instead of when its wait on the system's clock ends. */
void			 attemptlog_time_passed(struct attemptlog *al);

/* Hex digits in a client pseudonym (log.client_identity: pseudonym). */
#define ATTEMPTLOG_PSEUDONYM_LEN	16

/*
 * The pseudonym the log writes for the client address addr ("10.1.2.3",
 * "2001:db8::1", "::ffff:10.1.2.3" counts as IPv4) keyed with key: the
 * first ATTEMPTLOG_PSEUDONYM_LEN hex digits of HMAC-SHA256(key, address).
 * out holds ATTEMPTLOG_PSEUDONYM_LEN + 1 bytes. Returns 0, or -1 (out
 * empty) when addr is not an address.
 */
int	attemptlog_pseudonym(const char *key, const char *addr, char *out);

/* Take the clients:, identity and retention settings of a reloaded cfg. */
void	attemptlog_reconfigure(struct attemptlog *al, const struct config *cfg);

/* Queue one blocked attempt. Never blocks; thread-safe. al may be NULL. */
void	attemptlog_append(struct attemptlog *al, const struct attempt *a);

/* Queue one answered query (only when log.all_queries). al may be NULL. */
void	attemptlog_append_query(struct attemptlog *al,
	    const struct query_event *q);

/*
 * The same figures without taking the lock the DNS path appends under,
 * for a reader that must never hold it up (the console): as the writer
 * last saw them, at most one pass old (AL_IDLE_MS, half a second, when
 * idle). Zeros when al is NULL.
 */
void	attemptlog_peek_stats(struct attemptlog *al,
	    struct attemptlog_stats *out);

/*
 * A number that changes whenever what the reports read has changed:
 * attempt rows committed, rows deleted by retention, counts caught up
 * after an upgrade. Read without a lock, from any thread; a caller that
 * sees it change and then reads the database sees those changes. 0 when
 * al is NULL.
 */
uint64_t attemptlog_version(struct attemptlog *al);

/* Copy the writer's counters into out (zeros when al is NULL). */
void	attemptlog_get_stats(struct attemptlog *al,
	    struct attemptlog_stats *out);

/*
 * Write everything queued, stop the writer and release al (NULL is fine).
 * Blocks until the rows are on disk; a database that fails is tried once
 * more at once, and if that fails too the rows still queued are logged as
 * lost (how many, and why) and the call returns.
 */
void	attemptlog_close(struct attemptlog *al);

#endif
