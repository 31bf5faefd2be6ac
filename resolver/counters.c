/* counters: see counters.h. */
#include <inttypes.h>
#include <time.h>

#include "counters.h"

void
counters_add(struct counters *dst, const struct counters *src)
{
#define COUNTERS_ADD(name, help) dst->name += src->name;
	COUNTERS_FIELDS(COUNTERS_ADD)
#undef COUNTERS_ADD
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
