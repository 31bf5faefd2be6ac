/*
 * al_internal: the attempt log's shared state and the record layout, used
 * by its parts: the queue the DNS path appends to (al_queue.c), the record
 * format that turns a queued record into sink rows (al_record.c) and the
 * writer thread (attemptlog.c). Private to the attemptlog module.
 *
 * Two bounded queues, one for blocked attempts and one for the optional
 * full query log, so that a flood of ordinary queries can never crowd out
 * the attempts. Each queue is a ring of variable-length records (a small
 * header, the client address, the wire name and the match strings, each
 * as long as it is) in a chain of 64 kB chunks: a row costs about what it
 * holds, about 80 bytes for a typical blocked name, and chunks are mapped
 * as the backlog grows and unmapped once the writer has emptied them, so
 * memory follows the rows waiting rather than log.queue_size, which
 * remains the limit in rows.
 *
 * One mutex guards both queues' positions. Producers measure a row outside
 * it and copy it to the tail inside it; the writer reads the records at
 * the head *without* the lock (producers never touch them) and releases
 * them only after its transaction has committed. So a failed write leaves
 * every row where it was, and the retry reads it again.
 */
#ifndef DNSWARDEN_AL_INTERNAL_H
#define DNSWARDEN_AL_INTERNAL_H

#include <sys/socket.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attemptlog.h"
#include "sink.h"

#define AL_BATCH_MAX		1024	/* rows per transaction and table */
#define AL_IDLE_MS		500	/* longest sleep: commit cadence */
#define AL_LINGER_MS		50	/* gather small batches this long */
#define AL_WRITER_NICE		10	/* the writer yields to event loops:
					   this much nicer than they are */
#define AL_RETRY_MS		1000	/* retry an unwritable database */
#define AL_DROP_REPORT_MS	5000	/* at most one drop summary per */
#define AL_OPEN_WAIT_MS		1000	/* start-up waits for the first open */
#define AL_EXPIRE_ROWS		1000	/* rows deleted per transaction */
#define AL_EXPIRE_EVERY_MS	(24 * 3600 * 1000LL)
#define AL_SUMS_STEP_ROWS	4096	/* rows counted per step, catching up */
#define AL_SUMS_REPORT_MS	10000	/* progress while catching up */
#define AL_QNAME_TEXT		1024	/* 255 wire bytes, each up to \DDD */
#define AL_CLIENT_TEXT		64
#define AL_CLIENT_CACHE		256	/* formatted clients kept, a power of 2 */

/* The batch's text: names and clients, each row worst case AL_ROW_TEXT. */
#define AL_ROW_TEXT		(AL_QNAME_TEXT + AL_CLIENT_TEXT + 32)
#define AL_TEXT_SIZE		(256 * 1024)

/* Copies of the match strings, in bytes: the blocklist may be swapped. */
#define AL_RULE_MAX		253
#define AL_CATEGORY_MAX		63
#define AL_SITE_MAX		95
#define AL_UPSTREAM_MAX		63
#define AL_POLICY_MAX		63

/*
 * The queue's chunks. A chunk is mapped when the tail needs room and
 * unmapped when the writer has read past it, but for a few kept for the
 * tail to reuse while rows keep coming (a steady 100,000 rows/s cycles
 * through about 8 of them); those go too after AL_IDLE_MS without a row.
 */
#define AL_CHUNK_SIZE		(64 * 1024)
#define AL_SPARE_CHUNKS		16
#define AL_ALIGN		8	/* every record starts 8-aligned */

/* Record flags. */
#define AL_F_INET		0x01	/* 4 address bytes after the header */
#define AL_F_INET6		0x02	/* 16 address bytes */
#define AL_F_TCP		0x04
#define AL_F_SITE		0x08	/* attempts: a site (may be "") */
#define AL_F_RULE_TAIL		0x10	/* attempts: rule = end of the qname */
#define AL_F_CACHED		0x20	/* queries */
#define AL_F_BLOCKED		0x40	/* queries */
#define AL_F_UPSTREAM		0x80	/* queries: an upstream (may be "") */
/* The bits above 0x10 mean one thing in attempts, another in queries. */
#define AL_F_VERIFIED		0x20	/* attempts: the address was proven */
#define AL_F_POLICY		0x40	/* attempts: a policy (length byte, name) */

/*
 * A blocked attempt in the queue: this header, then the client address
 * (0, 4 or 16 bytes: IPv4-mapped addresses are stored as IPv4), the wire
 * qname, the rule (unless AL_F_RULE_TAIL: the rule is then the end of the
 * qname as text, which it usually is, and is not stored again), the
 * category and the site, and with AL_F_POLICY a byte holding the policy
 * name's length and the name; none NUL-terminated, padded to AL_ALIGN.
 */
struct al_attempt_hdr {
	uint8_t		size8;		/* record bytes / AL_ALIGN; 0 ends a chunk */
	uint8_t		flags;
	uint16_t	qtype;
	uint8_t		qname_len;
	uint8_t		rule_len;
	uint8_t		category_len;
	uint8_t		site_len;
	int64_t		ts_ms;
};

/*
 * An answered query: this header, the address, the qname, the upstream
 * and the policy name.
 */
struct al_query_hdr {
	uint8_t		size8;		/* first, as in al_attempt_hdr */
	uint8_t		flags;
	uint16_t	qtype;
	uint8_t		qname_len;
	uint8_t		upstream_len;
	uint8_t		rcode;
	uint8_t		policy_len;	/* 0: the default policy */
	int64_t		ts_ms;
	uint32_t	duration_us;
	bool		verified;	/* the address was proven */
};

/* The ring reads size8 first in either kind of record. */
_Static_assert(offsetof(struct al_attempt_hdr, size8) == 0 &&
    offsetof(struct al_query_hdr, size8) == 0, "size8 first");
_Static_assert(sizeof(struct al_attempt_hdr) % AL_ALIGN == 0 &&
    sizeof(struct al_query_hdr) % AL_ALIGN == 0, "headers keep alignment");

struct al_chunk {
	struct al_chunk	*next;
	uint8_t		 data[];
};
#define AL_CHUNK_DATA	(AL_CHUNK_SIZE - offsetof(struct al_chunk, data))

/* A place in a ring: a chunk and the byte offset of a record in it. */
struct al_pos {
	struct al_chunk	*c;
	size_t		 off;
};

/* Rows dropped since the writer last took them, for table log_gaps. */
struct al_gap {
	uint64_t	rows;
	int64_t		ts_start;
	int64_t		ts_end;
	bool		nomem;		/* a chunk could not be mapped */
	char		reason[256];
};

struct al_ring {
	struct al_pos	 head;		/* oldest row: the writer's */
	struct al_pos	 tail;		/* next free byte: the producers' */
	struct al_chunk	*spares;	/* emptied chunks kept for the tail */
	size_t		 nspares;
	size_t		 cap;		/* rows */
	size_t		 count;
	uint64_t	 queued;
	uint64_t	 written;
	uint64_t	 dropped;
	struct al_gap	 gap;		/* drops not yet taken by the writer */
	const char	*table;
};

/* What the writer needs of the configuration: its own copy (see reload). */
struct al_settings {
	enum client_identity	 identity;
	uint8_t			*key;
	size_t			 keylen;
	struct config_client	*clients;
	size_t			 nclients;
	unsigned		 retention_days;
};

/*
 * A client as the writer last formatted it: most rows come from clients
 * seen a moment ago, and a pseudonym costs two SHA-256 runs.
 */
struct al_client {
	uint8_t		 family;	/* AL_F_INET, AL_F_INET6; 0: empty */
	uint8_t		 addr[16];
	uint8_t		 textlen;
	const char	*name;		/* from clients:, or NULL */
	size_t		 namelen;
	char		 text[AL_CLIENT_TEXT]; /* the address or pseudonym */
};

/* State only the writer thread touches. */
struct al_writer {
	const struct sink_ops	*ops;
	struct sink		*sink;
	struct al_settings	*set;
	bool			 failing;
	char			 err[512];	/* cause of the failure */
	int64_t			 fail_since;	/* monotonic ms */
	int64_t			 retry_at;
	bool			 recovering;	/* catching up after a failure */
	uint64_t		 recovered_rows;
	int64_t			 last_write;
	struct al_gap		 gaps[2];	/* attempts, queries: unsaved */
	uint64_t		 drops_logged;
	int64_t			 drops_logged_at;
	bool			 drop_episode;
	int64_t			 expire_at;	/* next retention pass */
	int64_t			 expire_cutoff;	/* wall ms; 0: pass not running */

	uint64_t		 expired;	/* rows deleted this pass */
	long			 sums_left;	/* rows the summaries lack */
	bool			 maintain_due;	/* opened: look once, idle too */
	int64_t			 sums_report_at; /* next progress line */
	uint64_t		 fails;		/* failed opens and writes */
	bool			 stop_seen;	/* close() was seen */
	uint64_t		 fails_at_stop;	/* fails when it was */

	struct al_client	 clients[AL_CLIENT_CACHE];

	/* One batch, formatted; its text in text[0 .. textlen). */
	struct sink_attempt	 attempts[AL_BATCH_MAX];
	struct sink_query	 queries[AL_BATCH_MAX];
	size_t			 textlen;
	char			 text[AL_TEXT_SIZE];
};

struct attemptlog {
	char			*path;
	pthread_t		 thread;
	pthread_mutex_t		 mtx;
	pthread_cond_t		 cond;
	pthread_cond_t		 opened;	/* signals open_tried */
	bool			 open_tried;	/* the writer's first open */
	bool			 open_ok;	/* ... and whether it worked */
	char			 open_err[512];	/* ... or why not */
	struct al_ring		 attempts;
	struct al_ring		 queries;
	bool			 stopping;
	bool			 writer_idle;	/* waiting for rows: wake it */
	struct al_settings	*next_set;	/* from a reload, for the writer */
	uint64_t		 write_errors;
	atomic_bool		 all_queries;
	/*
	 * For readers on other threads (the console) that must not take
	 * mtx, which the DNS path takes for every row: what the reports
	 * read changed (attemptlog_version()), and the figures of
	 * attemptlog_get_stats() as of the writer's last pass.
	 */
	atomic_uint_fast64_t	 version;
	struct {
		atomic_uint_fast64_t queued, written, dropped, write_errors,
				     pending;
	}			 pub;
	uint8_t			 random_key[32]; /* when no pseudonym_key */
	struct attemptlog_clock	 clock;		/* what the writer decides by */
	struct al_writer	 w;
};

/* A wire-name byte that the text form writes as itself, lower-cased. */
static inline int
al_plain_char(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + ('a' - 'A');
	if (c <= 0x20 || c >= 0x7f || c == '.' || c == '\\')
		return -1;
	return c;
}

/* ---- the queue (al_queue.c) ---- */

/* An empty ring of at most cap rows, for table (a static string). */
void	al_ring_init(struct al_ring *r, size_t cap, const char *table);

/*
 * Release the n oldest rows, which end at end: chunks read to the end go
 * to the spares, or into *unmap for the caller to unmap after unlocking
 * (al_chunks_unmap()). Call with the log's mutex held.
 */
void	al_ring_release(struct al_ring *r, size_t n, struct al_pos end,
	    struct al_chunk **unmap);

/* Hand every spare chunk of r to *unmap (the writer is idle). Locked. */
void	al_ring_trim(struct al_ring *r, struct al_chunk **unmap);

/* Unmap every chunk of r; r is not used again. */
void	al_ring_free(struct al_ring *r);

/* Unmap a list of chunks linked by next. */
void	al_chunks_unmap(struct al_chunk *c);

/* Copy the figures for attemptlog_peek_stats(). Locked. */
void	al_stats_publish(struct attemptlog *al);

/* The record at pos, stepping over a chunk's end mark. Writer only. */
static inline const uint8_t *
al_ring_peek(struct al_pos *pos)
{
	if (pos->c->data[pos->off] == 0) {
		pos->c = pos->c->next;
		pos->off = 0;
	}
	return pos->c->data + pos->off;
}

/* Move pos past the record it is at (al_ring_peek() first). */
static inline void
al_ring_skip(struct al_pos *pos)
{
	pos->off += (size_t)pos->c->data[pos->off] * AL_ALIGN;
}

/*
 * The client's address bytes for a record (IPv4-mapped IPv6 as IPv4, as
 * the log shows it) in *bytes (pointing into sa); sets *flag to AL_F_INET
 * or AL_F_INET6, or 0. Returns the number of bytes: 4, 16 or 0.
 */
size_t	al_addr_bytes(const struct sockaddr *sa, const uint8_t **bytes,
	    uint8_t *flag);

/* ---- the record format (al_record.c, writer thread) ---- */

/*
 * Format up to *n attempt records of r from its head into w->attempts
 * (read without the lock: only the writer moves the head once the ring
 * has a chunk, which a counted row means, and producers never touch
 * these rows; with *n 0 the head is not read, since a producer's first
 * row may be setting it); their text goes to w->text after w->textlen.
 * *n becomes the rows formatted, fewer if the batch's text is full; *end
 * is where they end, for al_ring_release().
 */
void	al_format_attempts(struct al_writer *w, const struct al_ring *r,
	    size_t *n, struct al_pos *end);

/* The same for query records, into w->queries. */
void	al_format_queries(struct al_writer *w, const struct al_ring *r,
	    size_t *n, struct al_pos *end);

#endif
