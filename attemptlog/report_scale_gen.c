/*
 * report_scale_gen: a year of attempts for bench/report_scale.sh, written
 * through the SQLite sink the writer thread uses (visits, summaries and
 * all), as fast as it goes.
 *
 * usage: report_scale_gen FILE ROWS [CLIENTS SITES DAYS [END]]
 *
 * Rows are spread evenly over DAYS days (default 365; a fraction is fine:
 * 0.041667 is an hour) ending at END (Unix seconds, or "now"; default
 * 2026-01-01, the fixed year the report benchmarks and tests rely on), from CLIENTS clients (default 5,000; 10.x.y.z, four in five
 * with a department name) for SITES sites (default 200, in 8 categories,
 * one in ten from an imported list without a site). A browser asks 1 to 4
 * times within a few seconds (A, AAAA, HTTPS): about 2.5 rows an attempt.
 * Client 10.0.0.1 is one of the clients, for log --client. Prints the CPU
 * seconds and rows per second at the end.
 */
#include <sys/resource.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "sink.h"

#define BATCH		1024
#define END_MS		1767225600000LL	/* 2026-01-01T00:00:00Z */

struct gen {
	long		 clients, sites;
	char		(*client)[24];
	char		(*name)[16];
	char		(*rule)[48];
	char		(*qname)[56];
	char		(*site)[32];
	uint64_t	 x;
};

static uint64_t
rnd(struct gen *g)
{
	g->x ^= g->x << 13;
	g->x ^= g->x >> 7;
	g->x ^= g->x << 17;
	return g->x;
}

static struct sink_str
str(const char *s)
{
	return (struct sink_str){ s, s ? strlen(s) : 0 };
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
gen_names(struct gen *g)
{
	g->client = calloc((size_t)g->clients, sizeof(*g->client));
	g->name = calloc((size_t)g->clients, sizeof(*g->name));
	g->rule = calloc((size_t)g->sites, sizeof(*g->rule));
	g->qname = calloc((size_t)g->sites, sizeof(*g->qname));
	g->site = calloc((size_t)g->sites, sizeof(*g->site));
	if (!g->client || !g->name || !g->rule || !g->qname || !g->site) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (long i = 0; i < g->clients; i++) {
		long a = i + 1;

		snprintf(g->client[i], sizeof(g->client[i]), "10.%ld.%ld.%ld",
		    (a >> 16) & 255, (a >> 8) & 255, a & 255);
		if (i % 5)
			snprintf(g->name[i], sizeof(g->name[i]), "dept%ld",
			    i % 40);
	}
	for (long i = 0; i < g->sites; i++) {
		snprintf(g->rule[i], sizeof(g->rule[i]), "site%ld.example", i);
		snprintf(g->qname[i], sizeof(g->qname[i]), "www.site%ld.example",
		    i);
		if (i % 10)
			snprintf(g->site[i], sizeof(g->site[i]), "Site %ld", i);
	}
}

int
main(int argc, char *argv[])
{
	static const char *const categories[] = { "adult", "gambling",
	    "commercial-sex", "malware", "phishing", "drugs", "weapons",
	    "dating" };
	static const char *const qtypes[] = { "A", "AAAA", "HTTPS", "A" };
	static const char *const policies[] = { NULL, NULL, NULL, NULL, NULL,
	    NULL, NULL, "guests", "kids", "staff" };
	static struct sink_attempt batch[BATCH];
	struct gen g = { .clients = 5000, .sites = 200,
	    .x = 0x9e3779b97f4a7c15ULL };
	long rows, done = 0;
	double days = 365;
	int64_t start, span, ts, end = END_MS;
	struct sink *s;
	char err[512];
	double cpu0;

	if (argc < 3) {
		fprintf(stderr, "usage: report_scale_gen FILE ROWS [CLIENTS"
		    " SITES DAYS [END]]\n");
		return 2;
	}
	rows = atol(argv[2]);
	if (argc > 3)
		g.clients = atol(argv[3]);
	if (argc > 4)
		g.sites = atol(argv[4]);
	if (argc > 5)
		days = atof(argv[5]);
	if (argc > 6)
		end = strcmp(argv[6], "now") == 0 ? now_ms_wall() :
		    atoll(argv[6]) * 1000;
	span = (int64_t)(days * 86400000.0);
	if (rows <= 0 || g.clients <= 0 || g.sites <= 0 || span <= 0 ||
	    end <= span)
		return 2;
	gen_names(&g);
	start = end - span;
	sink_sqlite_ops.setup();
	if ((s = sink_sqlite_ops.open(argv[1], err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	cpu0 = cpu_s();
	ts = start;
	while (done < rows) {
		struct sink_batch b = { .attempts = batch };
		size_t n = 0;

		while (n < BATCH && done < rows) {
			long c = (long)(rnd(&g) % (uint64_t)g.clients);
			long t = (long)(rnd(&g) % (uint64_t)g.sites);
			int burst = 1 + (int)(rnd(&g) % 4);
			const char *pol = policies[c % 10];

			/*
			 * Attempts spread evenly: their share of the span, less
			 * the 0.7 s between a burst's queries (added below), so
			 * that the last row falls near the end.
			 */
			int64_t share = span / rows * burst - (burst - 1) * 700;

			ts += (int64_t)(rnd(&g) % (uint64_t)(2 * (share > 0 ?
			    share : 0) + 1));
			for (int k = 0; k < burst && n < BATCH && done < rows;
			    k++, n++, done++) {
				struct sink_attempt *a = &batch[n];
				bool tcp = rnd(&g) % 10 == 0;

				memset(a, 0, sizeof(*a));
				a->ts_ms = ts + k * 700;
				a->client = str(g.client[c]);
				a->client_name = str(g.name[c][0] ?
				    g.name[c] : NULL);
				a->qname = str(g.qname[t]);
				a->qtype = str(qtypes[k]);
				a->rule = str(g.rule[t]);
				a->category = str(g.site[t][0] ?
				    categories[t % 8] : "imported-list");
				a->site = str(g.site[t][0] ? g.site[t] : NULL);
				a->transport = str(tcp ? "tcp" : "udp");
				a->verified = tcp;
				a->policy = str(pol);
			}
			ts += (burst - 1) * 700;
		}
		b.nattempts = n;
		b.now_ms = now_ms_wall();	/* as the writer: wall time */
		if (sink_sqlite_ops.write_batch(s, &b) == -1) {
			fprintf(stderr, "write: %s\n", sink_sqlite_ops.error(s));
			return 1;
		}
	}
	sink_sqlite_ops.close(s);
	printf("rows %ld cpu_s %.2f us_per_row %.2f\n", rows, cpu_s() - cpu0,
	    (cpu_s() - cpu0) * 1e6 / (double)rows);
	return 0;
}
