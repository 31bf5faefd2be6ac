/* counters: see counters.h. */
#include <inttypes.h>
#include <time.h>
#include <stdio.h>
#include <string.h>

#include "counters.h"

/* The slot of name in cc, added when new; the last slot is "other". */
static unsigned
counters_category_slot(struct counters_categories *cc, const char *name)
{
	unsigned	n = __atomic_load_n(&cc->n, __ATOMIC_ACQUIRE), i;

	for (i = 0; i < n; i++)
		if (strcmp(cc->c[i].name, name) == 0)
			return i;
	if (n == COUNTERS_CATEGORIES_MAX)
		return n - 1;
	if (n == COUNTERS_CATEGORIES_MAX - 1)
		name = "other";
	snprintf(cc->c[n].name, sizeof(cc->c[n].name), "%s", name);
	cc->c[n].blocked = 0;
	/* The name is complete before a reader can see the slot. */
	__atomic_store_n(&cc->n, n + 1, __ATOMIC_RELEASE);
	return n;
}

void
counters_category_blocked(struct counters *c, const char *category)
{
	struct counters_categories	*cc = &c->blocked_by;
	unsigned			 n = cc->n;

	/* The common case, a category already seen, in a few compares. */
	for (unsigned i = 0; i < n; i++)
		if (strcmp(cc->c[i].name, category ? category : "") == 0) {
			cc->c[i].blocked++;
			return;
		}
	cc->c[counters_category_slot(cc, category ? category : "")].blocked++;
}

void
counters_add(struct counters *dst, const struct counters *src)
{
	unsigned	n;

#define COUNTERS_ADD(name, help) dst->name += src->name;
	COUNTERS_FIELDS(COUNTERS_ADD)
#undef COUNTERS_ADD
	n = __atomic_load_n(&src->blocked_by.n, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++)
		dst->blocked_by.c[counters_category_slot(&dst->blocked_by,
		    src->blocked_by.c[i].name)].blocked +=
		    src->blocked_by.c[i].blocked;
}

void
counters_print(const struct counters *c, const struct attemptlog_stats *log,
    FILE *out)
{
	/* One buffer, one write: the lines stay together in the journal. */
	char buf[4096];
	size_t n = 0;

#define COUNTERS_PRINT(name, help)					\
	if (n < sizeof(buf))						\
		n += snprintf(buf + n, sizeof(buf) - n,			\
		    "dnswarden: stats: %s %" PRIu64 "\n", #name, c->name);
	COUNTERS_FIELDS(COUNTERS_PRINT)
#undef COUNTERS_PRINT
	if (n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - n,
		    "dnswarden: stats: log_rows_queued %" PRIu64 "\n"
		    "dnswarden: stats: log_rows_written %" PRIu64 "\n"
		    "dnswarden: stats: log_rows_dropped %" PRIu64 "\n"
		    "dnswarden: stats: log_write_errors %" PRIu64 "\n"
		    "dnswarden: stats: log_rows_pending %" PRIu64 "\n",
		    log->queued, log->written, log->dropped,
		    log->write_errors, log->pending);
	if (log->central && n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - n,
		    "dnswarden: stats: central_rows_shipped %" PRIu64 "\n"
		    "dnswarden: stats: central_rows_waiting %" PRIu64 "\n"
		    "dnswarden: stats: central_seconds_behind %" PRIu64 "\n"
		    "dnswarden: stats: central_connected %" PRIu64 "\n",
		    log->central_shipped, log->central_waiting,
		    log->central_behind_s, log->central_connected);
	fwrite(buf, 1, n < sizeof(buf) ? n : sizeof(buf) - 1, out);
	fflush(out);
}

void
counters_print_reload(const struct reload_stats *r, FILE *out)
{
	char when[32] = "never";
	time_t t = (time_t)(r->last_reload_ms / 1000);
	struct tm tm;

	if (r->last_reload_ms > 0 && gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(out,
	    "dnswarden: stats: reloads %" PRIu64 "\n"
	    "dnswarden: stats: reload_failures %" PRIu64 "\n"
	    "dnswarden: stats: last_reload_ms %" PRId64 "\n"
	    "dnswarden: stats: last_reload_result %s at %s\n"
	    "dnswarden: stats: last_reload_success_ms %" PRId64 "\n",
	    r->reloads, r->reload_failures, r->last_reload_ms,
	    r->last_reload_ok < 0 ? "none" : r->last_reload_ok ? "ok" :
	    "failed", when, r->last_success_ms);
	fflush(out);
}

void
counters_format(const struct counters *c, const struct attemptlog_stats *log,
    FILE *out)
{
#define COUNTERS_LINE(name, help)					\
	fprintf(out, "%-24s %" PRIu64 "\n", #name, c->name);
	COUNTERS_FIELDS(COUNTERS_LINE)
#undef COUNTERS_LINE
	fprintf(out, "%-24s %" PRIu64 "\n%-24s %" PRIu64 "\n%-24s %" PRIu64
	    "\n%-24s %" PRIu64 "\n%-24s %" PRIu64 "\n",
	    "log_rows_queued", log->queued, "log_rows_written", log->written,
	    "log_rows_dropped", log->dropped, "log_write_errors",
	    log->write_errors, "log_rows_pending", log->pending);
	if (log->central)
		fprintf(out, "%-24s %" PRIu64 "\n%-24s %" PRIu64 "\n%-24s %"
		    PRIu64 "\n%-24s %" PRIu64 "\n", "central_rows_shipped",
		    log->central_shipped, "central_rows_waiting",
		    log->central_waiting, "central_seconds_behind",
		    log->central_behind_s, "central_connected",
		    log->central_connected);
}
