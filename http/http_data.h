/*
 * http_data: the rows the console shows (reports, attempts) and their CSV
 * and JSON forms. Private to http/.
 */
#ifndef DNSWARDEN_HTTP_DATA_H
#define DNSWARDEN_HTTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <sqlite3.h>

/* Rows of text cells (NULL: SQL NULL), as the CLI prints them. */
struct http_table {
	const char *const	*cols;
	size_t			 ncols;
	size_t			 nrows;
	size_t			 cap;
	char			**cells;	/* nrows * ncols */
	int64_t			*ids;		/* attempts: each row's id */
	int64_t			 lost;		/* rows lost in the period */
};

struct http_attempts_query {
	int64_t		 since, until;	/* ms; until exclusive */
	const char	*client;	/* address or name, or NULL */
	const char	*pseudonym;	/* the client's pseudonym, or NULL */
	const char	*site;		/* or NULL */
	long		 limit;
	int64_t		 before;	/* an id to page from; 0: newest */
};

/* True if by is one of day, week, month, client, category, site, domain. */
bool	http_data_by_ok(const char *by);

/*
 * The rows of `dnswarden report --by BY` (by NULL or "": the total) for
 * [since, until), the top groups only when top > 0. 0, or -1 (t may hold
 * some rows; free it either way).
 */
int	http_data_report(sqlite3 *db, const char *by, int64_t since,
	    int64_t until, long top, struct http_table *t);

/* The rows of `dnswarden log` for q, newest first, with their ids. */
int	http_data_attempts(sqlite3 *db, const struct http_attempts_query *q,
	    struct http_table *t);

void	http_table_free(struct http_table *t);

/* The cell of column col in row, or NULL (no such column, or NULL). */
const char *http_table_cell(const struct http_table *t, size_t row,
	    const char *col);

/* t as `--format csv` prints it. */
void	http_table_csv(const struct http_table *t, struct evbuffer *out);

/*
 * t as a JSON array of objects, each with "period_rows_lost" as the CLI
 * writes it; with_ids adds each row's "id" too (attempts, for paging).
 */
json_t	*http_table_json(const struct http_table *t, bool with_ids);

/* A time as the CLI prints it: "2024-05-01T09:30:00Z". */
void	http_data_format_time(int64_t ms, char *buf, size_t len);

#endif
