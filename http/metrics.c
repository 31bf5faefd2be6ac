/*
 * metrics: GET /metrics in the Prometheus text format (version 0.0.4),
 * from the counters X-macro, so that every counter the daemon keeps is
 * exported under its own name without a list to keep in step. Reading
 * takes no lock that the DNS path takes: the loops' counters are read as
 * they are (a snapshot, as SIGUSR1 prints them).
 *
 * No label ever carries a client or a query name; the one label with
 * text, category, comes from the blocklist the admin wrote.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "build_config.h"
#include "http_internal.h"

static void
metric(struct evbuffer *b, const char *name, const char *type,
    const char *help, uint64_t value)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n",
	    name, help, name, type, name, value);
}

/* A label value: backslash, double quote and newline escaped. */
static void
label_value(struct evbuffer *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static void
metrics_blocked(struct evbuffer *b, const struct counters *c)
{
	evbuffer_add_printf(b, "# HELP dnswarden_blocked_total queries blocked"
	    " by the blocklist, by category\n"
	    "# TYPE dnswarden_blocked_total counter\n");
	for (unsigned i = 0; i < c->blocked_by.n; i++) {
		evbuffer_add_printf(b, "dnswarden_blocked_total{category=\"");
		label_value(b, c->blocked_by.c[i].name);
		evbuffer_add_printf(b, "\"} %" PRIu64 "\n",
		    c->blocked_by.c[i].blocked);
	}
}

static void
metrics_counters(struct evbuffer *b, const struct counters *c)
{
	char	name[128];

#define METRIC_COUNTER(field, help)					\
	if (strcmp(#field, "blocked") != 0) {				\
		snprintf(name, sizeof(name), "dnswarden_%s_total", #field); \
		metric(b, name, "counter", help, c->field);		\
	}
	COUNTERS_FIELDS(METRIC_COUNTER)
#undef METRIC_COUNTER
	metrics_blocked(b, c);
}

static void
metrics_log(struct evbuffer *b, const struct attemptlog_stats *ls)
{
	metric(b, "dnswarden_attempt_log_rows_queued_total", "counter",
	    "rows accepted into the attempt log's queue", ls->queued);
	metric(b, "dnswarden_attempt_log_rows_written_total", "counter",
	    "rows committed to the attempt log", ls->written);
	metric(b, "dnswarden_attempt_log_rows_lost_total", "counter",
	    "rows lost because the attempt log's queue was full", ls->dropped);
	metric(b, "dnswarden_attempt_log_write_errors_total", "counter",
	    "attempt log batches that failed (rows kept and retried)",
	    ls->write_errors);
	metric(b, "dnswarden_attempt_log_rows_pending", "gauge",
	    "rows waiting in the attempt log's queue", ls->pending);
}

void
http_metrics(struct http_req *r)
{
	static const char *const allowed[] = { NULL };
	struct http		*h = r->h;
	struct counters		 c = { 0 };
	struct attemptlog_stats	 ls = { 0 };
	struct evbuffer		*b;
	const char		*bad;

	if (http_params_allow(&r->params, allowed, &bad) == -1) {
		http_reply_error(r, 400, "unknown parameter");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		http_reply_error(r, 500, "out of memory");
		return;
	}
	if (h->src.stats != NULL)
		h->src.stats(h->src.arg, &c, &ls);
	evbuffer_add_printf(b, "# HELP dnswarden_build_info the running"
	    " version\n# TYPE dnswarden_build_info gauge\n"
	    "dnswarden_build_info{version=\"%s\"} 1\n", DNSWARDEN_VERSION);
	evbuffer_add_printf(b, "# HELP dnswarden_start_time_seconds when the"
	    " daemon started, Unix time\n"
	    "# TYPE dnswarden_start_time_seconds gauge\n"
	    "dnswarden_start_time_seconds %" PRId64 "\n", h->started_ms / 1000);
	metric(b, "dnswarden_blocklist_entries", "gauge",
	    "blocklist entries loaded", blocklist_size(h->bl));
	metrics_counters(b, &c);
	metrics_log(b, &ls);
	http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b);
	evbuffer_free(b);
}
