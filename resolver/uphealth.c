/*
 * upstream: each upstream's health (counters, answer times, failing or
 * not) and how it is shown; see upstream.h. Kept per event loop and added
 * up by the reader, so the DNS path takes no lock.
 */
#include <inttypes.h>
#include <string.h>

#include "dnsmsg.h"
#include "log.h"
#include "upstream.h"

const uint64_t upstream_rtt_bounds_us[UPSTREAM_RTT_BUCKETS] = {
	250, 500, 1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000,
	50000, 75000, 100000, 150000, 200000, 300000, 500000, 750000,
	1000000, 1500000, 2000000, 3000000, UINT64_MAX,
};

const char *
upstream_fail_text(enum upstream_fail why)
{
	switch (why) {
	case UPSTREAM_FAIL_NONE:
		return "ok";
	case UPSTREAM_FAIL_TIMEOUT:
		return "timeout";
	case UPSTREAM_FAIL_REFUSED:
		return "refused";
	case UPSTREAM_FAIL_SERVFAIL:
		return "servfail";
	case UPSTREAM_FAIL_RCODE:
		return "error answer";
	case UPSTREAM_FAIL_NETWORK:
		return "network error";
	}
	return "?";
}

int
upstream_fail_ede(enum upstream_fail why)
{
	return why == UPSTREAM_FAIL_NETWORK ? DNS_EDE_NETWORK_ERROR :
	    DNS_EDE_NO_REACHABLE_AUTHORITY;
}

/* A line goes to the log at most once per interval. */
static bool
health_may_log(uint64_t *logged_ms, uint64_t now_ms)
{
	if (*logged_ms != 0 && now_ms - *logged_ms < UPSTREAM_LOG_INTERVAL_MS)
		return false;
	*logged_ms = now_ms;
	return true;
}

void
upstream_stats_answer(struct upstream_stats *s, uint64_t rtt_us,
    uint64_t *logged_ms, uint64_t now_ms)
{
	size_t i = 0;

	s->answers++;
	while (rtt_us > upstream_rtt_bounds_us[i])
		i++;
	s->rtt[i]++;
	if (s->failing)
		s->failed_run = s->consecutive;
	s->failing = false;
	s->consecutive = 0;
	/* The log says it fails: this answer, or a later one, says not. */
	if (s->logged_failing && health_may_log(logged_ms, now_ms)) {
		log_warnx("upstream %s answers again after %u failed tries",
		    s->addr, s->failed_run);
		s->logged_failing = false;
	}
}

void
upstream_stats_fail(struct upstream_stats *s, enum upstream_fail why,
    uint64_t *logged_ms, uint64_t now_ms)
{
	switch (why) {
	case UPSTREAM_FAIL_TIMEOUT:
		s->timeouts++;
		break;
	case UPSTREAM_FAIL_REFUSED:
		s->refused++;
		break;
	case UPSTREAM_FAIL_SERVFAIL:
		s->servfail++;
		break;
	default:
		s->errors++;
		break;
	}
	s->last_fail = why;
	if (++s->consecutive >= UPSTREAM_FAILING_AFTER)
		s->failing = true;
	/* Failing, and the log says not: this failure, or a later one. */
	if (s->failing && !s->logged_failing &&
	    health_may_log(logged_ms, now_ms)) {
		log_warnx("upstream %s is failing: %u tries in a row without "
		    "an answer, the last: %s", s->addr, s->consecutive,
		    upstream_fail_text(why));
		s->logged_failing = true;
	}
}

void
upstream_stats_merge(struct upstream_stats *list, size_t *n, size_t max,
    const struct upstream_stats *s)
{
	struct upstream_stats *t = NULL;

	for (size_t i = 0; i < *n && t == NULL; i++)
		if (strcmp(list[i].addr, s->addr) == 0)
			t = &list[i];
	if (t == NULL) {
		if (*n >= max)
			return;
		t = &list[(*n)++];
		*t = *s;
		return;
	}
	t->queries += s->queries;
	t->answers += s->answers;
	t->timeouts += s->timeouts;
	t->errors += s->errors;
	t->refused += s->refused;
	t->servfail += s->servfail;
	for (size_t i = 0; i < UPSTREAM_RTT_BUCKETS; i++)
		t->rtt[i] += s->rtt[i];
	if (s->failing) {
		t->failing = true;
		t->last_fail = s->last_fail;
	}
	if (s->consecutive > t->consecutive)
		t->consecutive = s->consecutive;
}

uint64_t
upstream_stats_quantile_us(const struct upstream_stats *s, double q)
{
	uint64_t total = 0, seen = 0;

	for (size_t i = 0; i < UPSTREAM_RTT_BUCKETS; i++)
		total += s->rtt[i];
	if (total == 0)
		return 0;
	for (size_t i = 0; i < UPSTREAM_RTT_BUCKETS; i++) {
		seen += s->rtt[i];
		if ((double)seen >= q * (double)total)
			return upstream_rtt_bounds_us[i];
	}
	return UINT64_MAX;
}

/* A bucket's bound in milliseconds: "0.25", "7.5", "-" for none. */
static void
format_ms(uint64_t us, char *buf, size_t len)
{
	if (us == 0)
		snprintf(buf, len, "-");
	else if (us == UINT64_MAX)
		snprintf(buf, len, ">3000");
	else
		snprintf(buf, len, "%g", (double)us / 1000.0);
}

void
upstream_stats_print(const struct upstream_stats *list, size_t n, FILE *out)
{
	char p50[16], p99[16], state[40];

	fprintf(out, "%-28s %-22s %9s %9s %8s %8s %8s %8s %7s %7s\n",
	    "upstream", "state", "queries", "answers", "timeouts", "errors",
	    "refused", "servfail", "p50_ms", "p99_ms");
	for (size_t i = 0; i < n; i++) {
		const struct upstream_stats *s = &list[i];
		format_ms(upstream_stats_quantile_us(s, 0.5), p50, sizeof(p50));
		format_ms(upstream_stats_quantile_us(s, 0.99), p99, sizeof(p99));
		if (s->failing)
			snprintf(state, sizeof(state), "failing (%s)",
			    upstream_fail_text(s->last_fail));
		else
			snprintf(state, sizeof(state), "%s", s->queries ? "ok" :
			    "unused");
		fprintf(out, "%-28s %-22s %9" PRIu64 " %9" PRIu64 " %8" PRIu64
		    " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %7s %7s\n",
		    s->addr, state, s->queries, s->answers, s->timeouts,
		    s->errors, s->refused, s->servfail, p50, p99);
	}
}
