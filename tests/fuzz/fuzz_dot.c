/*
 * fuzz_dot: what a DNS-over-TLS upstream sends back, through the read path
 * of dot/dot.c (the 2-byte framing, the match by ID, answers in any order,
 * runts, answers for nobody) and on into the forwarder's reply check
 * (reply_classify(): the question must match), the cache and the
 * frontend's answer to the waiting clients, CNAME and HTTPS checks
 * included.
 *
 * Before each input, up to MAX_QUERIES cache misses are fed to a frontend
 * whose only upstream is a TLS one (never contacted: the event loop does
 * not run, so its connection never opens); their queries wait on that
 * connection. The input is then the server's byte stream: frames of a
 * 2-byte length and the message, as sent; the first byte of a message of
 * two bytes or more chooses which waiting query's ID it carries (the IDs
 * are random, the fuzzer cannot know them), so that answers reach their
 * queries in any order, twice, or not at all.
 *
 * Input: a byte whose low three bits + 1 are how many queries wait, then
 * the stream.
 *
 * Checks: every answer taken is counted once and never more than were
 * sent; afterwards the forwarder lets every query go (a reload that
 * replaces the upstream) and nothing is left in flight.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>	/* before ldns, which would make bool a char */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "blocklist.h"
#include "cache.h"
#include "config.h"
#include "counters.h"
#include "dot.h"
#include "frontend.h"
#include "fuzz_util.h"
#include "ratelimit.h"
#include "upstream.h"

#define MAX_QUERIES	8
#define STREAM_MAX	65536

static const char config_yaml[] =
    "server:\n"
    "  listen: [\"127.0.0.1:5353\"]\n"
    "  allow_clients: [\"127.0.0.0/8\"]\n"
    "upstreams:\n"
    "  - { address: \"127.0.0.1:9\", tls_name: \"dot.fuzz\" }\n"
    "cache: {max_entries: 64, max_bytes: 1048576}\n"
    "blocklist:\n"
    "  files: [blocklist.yaml]\n"
    "log: {database: \"off\"}\n";

static const char blocklist_yaml[] =
    "categories:\n"
    "  - name: fuzz\n"
    "    description: names an answer may lead to\n"
    "    sites:\n"
    "      - name: Example\n"
    "        domains: [blocked.example, www.backpage.com]\n";

static struct event_base *base;
static struct config *cfg, cfg_other;
static struct config_upstream other_upstream;
static struct blocklist *bl;
static struct ratelimit *rl;
static struct frontend *fe;
static struct counters ctr;
static uint8_t stream[STREAM_MAX];

static void
teardown(void)
{
	frontend_free(fe);
	ratelimit_free(rl);
	blocklist_free(bl);
	config_free(cfg);
	event_base_free(base);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[4096];
	struct diag d;

	fuzz_path(path, sizeof(path), "blocklist.yaml");
	fuzz_write_file(path, blocklist_yaml, strlen(blocklist_yaml));
	fuzz_path(path, sizeof(path), "dnswarden.yaml");
	fuzz_write_file(path, config_yaml, strlen(config_yaml));
	diag_init(&d);
	cfg = config_load(path, &d);
	bl = cfg ? blocklist_load(cfg, &d) : NULL;
	if (cfg == NULL || bl == NULL) {
		fprintf(stderr, "fuzz_dot: %s", diag_text(&d));
		exit(2);
	}
	diag_free(&d);
	cfg->server.nlisten = 0;	/* nothing is bound */
	/*
	 * The reset between inputs: the same server under another name, and
	 * no cache. Its pool replaces the first one, which fails its queries
	 * over (to no other upstream); the TLS context stays, as it does on a
	 * reload that keeps tls_ca_file.
	 */
	other_upstream = cfg->upstreams[0];
	snprintf(other_upstream.tls_name, sizeof(other_upstream.tls_name),
	    "other.fuzz");
	cfg_other = *cfg;
	cfg_other.upstreams = &other_upstream;
	cfg_other.cache.max_entries = 0;
	base = event_base_new();
	rl = ratelimit_new(0, 1, 1);
	if (base == NULL || rl == NULL)
		exit(2);
	fe = frontend_new(base, cfg, bl, rl, NULL, &ctr);
	if (fe == NULL)
		exit(2);
	atexit(teardown);
	return 0;
}

/* A query for q<i>.fuzz.example A with EDNS, as a client sends it. */
static size_t
client_query(uint8_t *buf, unsigned i)
{
	static const uint8_t tail[] = {
		4, 'f', 'u', 'z', 'z', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0,
		0, 1, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0,
	};
	static const uint8_t head[] = {
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 2, 'q',
	};
	size_t n = 0;

	memcpy(buf, head, sizeof(head));
	n = sizeof(head);
	buf[n++] = (uint8_t)('0' + i);
	memcpy(buf + n, tail, sizeof(tail));
	return n + sizeof(tail);
}

/* The input's frames, each message's ID set to a waiting query's. */
static size_t
stream_build(const uint8_t *data, size_t size, const uint16_t *ids, size_t n)
{
	size_t in = 0, out = 0;

	while (in + 2 <= size && out + 2 <= sizeof(stream)) {
		size_t len = (size_t)data[in] << 8 | data[in + 1];
		size_t have = size - in - 2 < len ? size - in - 2 : len;
		if (out + 2 + have > sizeof(stream))
			break;
		memcpy(stream + out, data + in, 2 + have);
		if (have >= 2 && n > 0) {
			uint16_t id = ids[data[in + 2] % n];
			stream[out + 2] = (uint8_t)(id >> 8);
			stream[out + 3] = (uint8_t)id;
		}
		in += 2 + have;
		out += 2 + have;
	}
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer = { .sin_family = AF_INET };
	struct upstream *up = frontend_upstream(fe);
	struct dot_upstream *du;
	struct dot_stats before, after;
	uint16_t ids[MAX_QUERIES];
	uint8_t q[64];
	size_t nq, n, len;

	if (size < 1)
		return -1;
	fuzz_input(data, size);
	nq = (data[0] & 7) + 1;
	data++;
	size--;
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	peer.sin_port = htons(40000);
	for (unsigned i = 0; i < nq; i++) {
		len = client_query(q, i);
		frontend_feed_udp(fe, q, len, (struct sockaddr *)&peer,
		    sizeof(peer), NULL, NULL);
	}
	du = upstream_tls_pool(up, 0);
	FUZZ_CHECK(du != NULL);
	n = dot_upstream_query_ids(du, ids, MAX_QUERIES);
	FUZZ_CHECK(n == nq);
	dot_upstream_stats(du, &before);
	len = stream_build(data, size, ids, n);
	FUZZ_CHECK(dot_upstream_feed(du, stream, len) == 0);
	dot_upstream_stats(du, &after);
	FUZZ_CHECK(after.answers - before.answers <= n);
	FUZZ_CHECK(after.answers <= after.queries);

	/* Let every query go, empty the cache, and start again. */
	frontend_reconfigure(fe, &cfg_other, bl);
	FUZZ_CHECK(upstream_inflight(up) == 0);
	frontend_reconfigure(fe, cfg, bl);
	memset(&ctr, 0, sizeof(ctr));
	return 0;
}
