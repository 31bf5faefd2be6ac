/* counters: see counters.h. */
#include <inttypes.h>

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
