/*
 * fuzz_frontend: the whole query path of resolver/frontend.c. Datagrams go
 * in through frontend_feed_udp(), the path of every datagram read
 * (size check, rate limit, parse, allow_clients, FORMERR/NOTIMP/BADVERS,
 * cache, blocklist, blocked answer with EDE, forwarding); a TCP stream
 * through one end of a socketpair handed to frontend_adopt_tcp() (the
 * accept path, framing, pipelining, output back-pressure, half-close).
 * There is no upstream: a miss is answered SERVFAIL and nothing is sent
 * anywhere. The cache holds five answers put there before each input,
 * one of them blocked through its CNAME; a reload with another blocklist
 * can come between two queries. One frontend serves every input and is
 * brought back to the same state after each (empty cache, first list,
 * zero counters, no connection open), and each input's client has an
 * address of its own; the rate limiter starts it with a full bucket
 * unless an earlier input's address shared its slot.
 *
 * Input: a flags byte, a chunk byte, then
 *   over UDP: datagrams, each as a 2-byte length and its bytes (a length
 *             past the end takes what is left), at most MAX_DGRAMS;
 *   over TCP: the bytes the client sends, its framing right or wrong,
 *             written in chunks of (chunk byte % 64) + 1 bytes when
 *             F_CHUNKED (at most MAX_CHUNKS, then the rest at once).
 *
 * Every answer must parse with ldns, carry the query's ID, opcode, RD,
 * CD and question as spelled (when the query had one it could read), an
 * OPT exactly when the query had one, with its DO bit; fit the client's
 * UDP limit (512 without EDNS, else the advertised size within
 * 512..1232), error answers 512 bytes whatever the transport; over TCP
 * never be truncated. What the answer is follows from the query alone:
 * nothing for what must be dropped (under 12 bytes, QR set, a datagram
 * over 4096 bytes, over the rate limit on UDP), REFUSED with EDE 18 outside
 * allow_clients (over TCP the connection itself is refused at accept),
 * REFUSED without EDE over the rate limit on TCP, FORMERR, NOTIMP, BADVERS as parsed, NXDOMAIN with the
 * blocked SOA (owner: the rule, or the name asked when a CNAME target is
 * blocked) and EDE 15 for blocked names under the list in force, the
 * stored answer (TC exactly when it does not fit) for the cached ones,
 * SERVFAIL for the rest. A half-closed connection gets every answer,
 * then EOF; a closed one is let go. The counters agree with the answers.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>	/* before ldns, which would make bool a char */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <ldns/ldns.h>

#include "blocklist.h"
#include "cache.h"
#include "clock.h"
#include "config.h"
#include "counters.h"
#include "dnsmsg.h"
#include "frontend.h"
#include "fuzz_util.h"
#include "ratelimit.h"
#include "ratelimit_internal.h"

#define F_PEER		0x03	/* 0, 1: allowed (v4, v6); 2, 3: not */
#define F_TCP		0x04
#define F_RATELIMIT	0x08	/* qps 1, burst RL_BURST */
#define F_RELOAD	0x10	/* blocklist 2 after the first datagram/chunk */
#define F_HALFCLOSE	0x20	/* TCP: shutdown(SHUT_WR) after the last byte */
#define F_CHUNKED	0x40	/* TCP: write in chunks, the loop run between */

#define MAX_DGRAMS	64
#define MAX_CHUNKS	256
#define RL_BURST	2
#define BLOCKED_TTL	300
#define UDP_MSG_MAX	4096	/* udpio's receive buffer */

static const char config_yaml[] =
    "server:\n"
    "  listen: [\"127.0.0.1:5353\"]\n"
    "  allow_clients: [\"127.0.0.0/8\", \"fd00::/16\"]\n"
    "  tcp_max_connections: 4\n"
    "  tcp_idle_timeout_ms: 10000\n"
    /* Never contacted: removed once loaded (see LLVMFuzzerInitialize). */
    "upstreams: [\"127.0.0.1:9\"]\n"
    "cache: {max_entries: 64, max_bytes: 1048576, max_ttl: 86400,\n"
    "        max_negative_ttl: 3600}\n"
    "blocklist:\n"
    "  files: [blocklist.yaml]\n"
    "  dns_bypass: true\n"
    "  blocked_ttl: 300\n"
    "log: {database: \"off\"}\n";

/* An entry long enough for the blocked answer to pass 512 bytes. */
#define LONG_ENTRY							\
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."	\
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."	\
    "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc."	\
    "long.example"

#define BLOCKLIST_COMMON						\
    "categories:\n"							\
    "  - name: fuzz\n"							\
    "    description: names the fuzzer can reach\n"			\
    "    sites:\n"							\
    "      - name: Example\n"						\
    "        domains: [blocked.example, \"*.wild.example\", x,\n"	\
    "                  a.b.c.d.example, www.backpage.com,\n"		\
    "                  \"b\xc3\xbc" "cher.example\",\n"		\
    "                  " LONG_ENTRY "]\n"

/* Before a reload: the CNAME target of alias.example is blocked. */
static const char blocklist1_yaml[] =
    BLOCKLIST_COMMON
    "allow:\n"
    "  - ok.blocked.example\n";

/* After: cached.example is blocked too, the CNAME target allowed. */
static const char blocklist2_yaml[] =
    BLOCKLIST_COMMON
    "      - name: Cached\n"
    "        domains: [cached.example]\n"
    "allow:\n"
    "  - ok.blocked.example\n"
    "  - target.blocked.example\n";

/* An answer put in the cache before each input. */
struct fixture {
	const char	*name;
	uint16_t	 qtype;
	const char	*cname;		/* CNAME target, or NULL */
	uint8_t		 rcode;
	unsigned	 ntxt;		/* TXT records of 100 bytes */
	uint8_t		 lname[DNS_MAX_NAME];
	size_t		 lname_len;
	uint8_t		 target[DNS_MAX_NAME];
	size_t		 target_len;
	unsigned	 ancount, nscount;
	uint8_t		 canon[8192];
	size_t		 canon_len;
	struct dns_reply r;
};

static struct fixture fixtures[] = {
	{ .name = "cached.example", .qtype = 1 },
	{ .name = "big.example", .qtype = 16, .ntxt = 8 },	/* ~930 bytes */
	{ .name = "huge.example", .qtype = 16, .ntxt = 40 },	/* ~4.5 KB */
	{ .name = "alias.example", .qtype = 1,
	  .cname = "target.blocked.example" },
	{ .name = "nx.example", .qtype = 1, .rcode = DNS_RCODE_NXDOMAIN },
};
#define NFIXTURES	(sizeof(fixtures) / sizeof(fixtures[0]))

enum expect {
	EXP_NONE,		/* dropped: no answer */
	EXP_REFUSED,
	EXP_FORMERR,
	EXP_NOTIMP,
	EXP_BADVERS,
	EXP_SERVFAIL,		/* a miss: no upstream */
	EXP_BLOCKED,
	EXP_BLOCKED_CNAME,
	EXP_CACHED,
	EXP_RATELIMITED,	/* TCP over the rate limit: REFUSED */
	EXP_KINDS
};

static struct event_base	*base;
static struct config		*cfg;
static struct config		 cfg_flush;	/* cfg with a cache of 0 */
static size_t			 cfg_nupstreams, cfg_nlisten;
static struct blocklist		*bl1, *bl2;
static struct ratelimit		*rl;
static struct counters		 ctr;
static struct frontend		*fe;

/* One input's run. */
struct run {
	struct frontend		*fe;
	struct counters		*ctr;
	const struct blocklist	*bl;		/* the list in force */
	bool			 allowed;	/* the peer, by allow_clients */
	bool			 tcp;
	bool			 ratelimit;	/* F_RATELIMIT */
	bool			 rl_fresh;	/* the peer's bucket is full */
	unsigned		 answered;	/* answers checked so far */
	unsigned		 kinds[EXP_KINDS];	/* answers of each kind */
	/* UDP: the answers to the datagram being fed. */
	unsigned		 nanswers;
	uint8_t			 answer[UDP_MSG_MAX];
	size_t			 answer_len;
};

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* ---- building the cache fixtures ---- */

struct wbuf {
	uint8_t	b[8192];
	size_t	n;
};

static void
put(struct wbuf *w, const void *p, size_t n)
{
	if (w->n + n > sizeof(w->b))
		abort();
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void
put16(struct wbuf *w, uint16_t v)
{
	uint8_t b[2] = { v >> 8, v & 0xff };
	put(w, b, 2);
}

static void
put32(struct wbuf *w, uint32_t v)
{
	put16(w, v >> 16);
	put16(w, v & 0xffff);
}

/* "a.example" in wire format, lower case; returns the length. */
static size_t
name_wire(const char *text, uint8_t *out)
{
	size_t o = 0;

	while (*text) {
		const char *dot = strchr(text, '.');
		size_t l = dot ? (size_t)(dot - text) : strlen(text);
		out[o++] = (uint8_t)l;
		for (size_t i = 0; i < l; i++) {
			char c = text[i];
			out[o++] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		text += l + (dot ? 1 : 0);
	}
	out[o++] = 0;
	return o;
}

static void
put_name(struct wbuf *w, const char *text)
{
	uint8_t b[DNS_MAX_NAME + 2];
	put(w, b, name_wire(text, b));
}

static void
put_rr_head(struct wbuf *w, const char *owner, uint16_t type, uint32_t ttl,
    uint16_t rdlen)
{
	if (owner == NULL)
		put16(w, 0xc00c);	/* the question's name */
	else
		put_name(w, owner);
	put16(w, type);
	put16(w, DNS_CLASS_IN);
	put32(w, ttl);
	put16(w, rdlen);
}

/* The upstream reply for f, made canonical as the frontend stores it. */
static void
fixture_build(struct fixture *f)
{
	struct wbuf w = { .n = 0 };
	uint8_t b[DNS_MAX_NAME + 2];
	static const uint8_t a[4] = { 192, 0, 2, 1 };

	f->lname_len = name_wire(f->name, f->lname);
	put16(&w, 0x4242);
	put16(&w, 0x8180 | f->rcode);		/* QR RD RA */
	put16(&w, 1);
	put16(&w, 0);			/* counts written below */
	put16(&w, 0);
	put16(&w, 0);
	put(&w, f->lname, f->lname_len);
	put16(&w, f->qtype);
	put16(&w, DNS_CLASS_IN);
	if (f->cname != NULL) {
		f->target_len = name_wire(f->cname, f->target);
		put_rr_head(&w, NULL, DNS_TYPE_CNAME, 300,
		    (uint16_t)f->target_len);
		put(&w, f->target, f->target_len);
		put_rr_head(&w, f->cname, DNS_TYPE_A, 300, 4);
		put(&w, a, 4);
		f->ancount = 2;
	} else if (f->rcode == DNS_RCODE_NXDOMAIN) {
		size_t m = name_wire("ns.example", b);
		size_t r = name_wire("host.example", b);
		put_rr_head(&w, "example", DNS_TYPE_SOA, 900,
		    (uint16_t)(m + r + 20));
		put_name(&w, "ns.example");
		put_name(&w, "host.example");
		for (int i = 0; i < 5; i++)
			put32(&w, 300);
		f->nscount = 1;
	} else if (f->ntxt > 0) {
		uint8_t txt[101];
		memset(txt, 't', sizeof(txt));
		txt[0] = 100;
		for (unsigned i = 0; i < f->ntxt; i++) {
			put_rr_head(&w, NULL, 16, 300, sizeof(txt));
			put(&w, txt, sizeof(txt));
		}
		f->ancount = f->ntxt;
	} else {
		put_rr_head(&w, NULL, DNS_TYPE_A, 300, 4);
		put(&w, a, 4);
		f->ancount = 1;
	}
	w.b[6] = (uint8_t)(f->ancount >> 8);
	w.b[7] = (uint8_t)f->ancount;
	w.b[9] = (uint8_t)f->nscount;
	if (dnsmsg_parse_reply(w.b, w.n, &f->r) != 0) {
		fprintf(stderr, "fuzz_frontend: fixture %s: no reply\n",
		    f->name);
		exit(2);
	}
	f->canon_len = dnsmsg_canonicalize(w.b, w.n, &f->r, 86400);
	memcpy(f->canon, w.b, f->canon_len);
	/* As if fetched over TCP: whole, served to TCP clients too (one
	 * that came over UDP is asked again, and here there is no upstream). */
	f->r.over_tcp = true;
}

/* Every fixture under every DO and CD, unchecked against the list. */
static void
fixtures_insert(struct cache *c)
{
	struct cache_key key;
	uint64_t now = now_ms_monotonic();	/* as the frontend */
	for (size_t i = 0; i < NFIXTURES; i++) {
		struct fixture *f = &fixtures[i];
		for (int bits = 0; bits < 4; bits++) {
			cache_key_make(c, &key, f->lname, f->lname_len,
			    f->qtype, DNS_CLASS_IN, bits & 1, bits & 2);
			FUZZ_CHECK(cache_insert(c, &key, f->canon,
			    f->canon_len, &f->r, now, 0));
		}
	}
}

/* ---- set-up ---- */

static struct blocklist *
load_list(const char *name, const char *yaml)
{
	char path[4096];
	struct diag d;
	struct blocklist *l;

	fuzz_path(path, sizeof(path), name);
	fuzz_write_file(path, yaml, strlen(yaml));
	diag_init(&d);
	l = blocklist_load_file(path, &d);
	if (l == NULL) {
		fprintf(stderr, "fuzz_frontend: %s: %s", name, diag_text(&d));
		exit(2);
	}
	diag_free(&d);
	return l;
}

static void
teardown(void)
{
	frontend_free(fe);
	event_base_loop(base, EVLOOP_NONBLOCK);
	cfg->nupstreams = cfg_nupstreams;
	cfg->server.nlisten = cfg_nlisten;
	config_free(cfg);
	blocklist_free(bl1);
	blocklist_free(bl2);
	ratelimit_free(rl);
	event_base_free(base);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[4096];
	struct diag d;

	/* Our end of a socketpair may close while the frontend writes. */
	signal(SIGPIPE, SIG_IGN);
	bl2 = load_list("blocklist2.yaml", blocklist2_yaml);
	fuzz_path(path, sizeof(path), "blocklist.yaml");
	fuzz_write_file(path, blocklist1_yaml, strlen(blocklist1_yaml));
	fuzz_path(path, sizeof(path), "dnswarden.yaml");
	fuzz_write_file(path, config_yaml, strlen(config_yaml));
	diag_init(&d);
	cfg = config_load(path, &d);
	bl1 = cfg ? blocklist_load(cfg, &d) : NULL;	/* with dns-bypass */
	if (cfg == NULL || bl1 == NULL) {
		fprintf(stderr, "fuzz_frontend: %s", diag_text(&d));
		exit(2);
	}
	diag_free(&d);
	/* No upstream: upstream_submit() refuses, a miss gets SERVFAIL at
	 * once, and nothing leaves the process. */
	cfg_nupstreams = cfg->nupstreams;
	cfg->nupstreams = 0;
	/* Nothing is bound: a reload must not find listen changed. */
	cfg_nlisten = cfg->server.nlisten;
	cfg->server.nlisten = 0;
	cfg_flush = *cfg;
	cfg_flush.cache.max_entries = 0;
	for (size_t i = 0; i < NFIXTURES; i++)
		fixture_build(&fixtures[i]);
	/*
	 * One frontend for every input, brought back to the same state
	 * after each (empty cache, zero counters, no connection): a
	 * frontend and a rate limiter per input cost a few milliseconds of
	 * mapping and unmapping under ASan, most of the run.
	 */
	base = event_base_new();
	rl = ratelimit_new(0, RL_BURST, 1);
	if (base == NULL || rl == NULL)
		exit(2);
	fe = frontend_new(base, cfg, bl1, rl, NULL, &ctr);
	if (fe == NULL)
		exit(2);
	atexit(teardown);
	return 0;
}

/* ---- what the answer must be ---- */

/* What the frontend should do with pkt, from the query alone. */
static enum expect
expect_of(const struct run *run, const uint8_t *pkt, size_t len,
    struct dns_query *q, enum dnsmsg_verdict *v,
    const struct fixture **fx, struct blocklist_match *m)
{
	bool drop = len < DNS_HEADER_LEN || (pkt[2] & 0x80);

	*fx = NULL;
	*v = dnsmsg_parse_query(pkt, len, q);
	FUZZ_CHECK((*v == DNSMSG_DROP) == drop);
	if (drop)
		return EXP_NONE;
	if (!run->allowed)
		return EXP_REFUSED;
	switch (*v) {
	case DNSMSG_FORMERR:
		return EXP_FORMERR;
	case DNSMSG_NOTIMP:
		return EXP_NOTIMP;
	case DNSMSG_BADVERS:
		return EXP_BADVERS;
	default:
		break;
	}
	FUZZ_CHECK(q->has_question);
	if (blocklist_match_wire(run->bl, q->lname, q->qname_len, m) == 1)
		return EXP_BLOCKED;
	for (size_t i = 0; i < NFIXTURES; i++) {
		const struct fixture *f = &fixtures[i];
		if (f->lname_len != q->qname_len || f->qtype != q->qtype ||
		    q->qclass != DNS_CLASS_IN ||
		    memcmp(f->lname, q->lname, q->qname_len) != 0)
			continue;
		*fx = f;
		if (f->cname != NULL && blocklist_match_wire(run->bl,
		    f->target, f->target_len, m) == 1)
			return EXP_BLOCKED_CNAME;
		return EXP_CACHED;
	}
	return EXP_SERVFAIL;
}

/* The client's UDP limit, as RFC 6891 and our 1232 cap make it. */
static size_t
udp_limit(const struct dns_query *q)
{
	if (!q->edns || q->udp_size <= DNS_UDP_PLAIN)
		return DNS_UDP_PLAIN;
	return q->udp_size < DNS_EDNS_SIZE ? q->udp_size : DNS_EDNS_SIZE;
}

/* The EDE info-code in p's OPT, or -1. */
static int
ede_code(const ldns_pkt *p)
{
	const ldns_rdf *d = ldns_pkt_edns_data(p);

	if (d == NULL)
		return -1;
	const uint8_t *o = ldns_rdf_data(d);
	size_t n = ldns_rdf_size(d), i = 0;
	while (i + 4 <= n) {
		uint16_t code = rd16(o + i), olen = rd16(o + i + 2);
		FUZZ_CHECK(i + 4 + olen <= n);
		if (code == 15) {
			FUZZ_CHECK(olen >= 2);
			return rd16(o + i + 4);
		}
		i += 4 + (size_t)olen;
	}
	FUZZ_CHECK(i == n);
	return -1;
}

/* Is the wire name suffix (slen bytes) a label suffix of name? */
static bool
is_label_suffix(const uint8_t *name, size_t len, const uint8_t *suffix,
    size_t slen)
{
	size_t off = 0;

	while (off < len) {
		if (len - off == slen)
			return memcmp(name + off, suffix, slen) == 0;
		if (name[off] == 0)
			break;
		off += 1 + name[off];
	}
	return false;
}

/* The blocked answer: NXDOMAIN, the SOA of the rule, EDE 15. */
static void
check_blocked(const struct run *run, const struct dns_query *q,
    const struct blocklist_match *m, bool via_cname, const uint8_t *ans,
    size_t n, const ldns_pkt *p, size_t limit)
{
	static const char ede_prefix[] = "blocked by dnswarden: category ";
	uint8_t rule[DNS_MAX_NAME + 2];
	const uint8_t *owner = q->lname;
	size_t owner_len = q->qname_len;
	bool tc = ans[2] & 0x02;

	FUZZ_CHECK(m->rule != NULL && m->category != NULL && !m->allowed);
	/* The SOA owns the rule (an ancestor of the name), or the name
	 * itself when a CNAME target was blocked or the rule's text is
	 * not the name's own suffix. */
	if (!via_cname && strlen(m->rule) + 2 <= DNS_MAX_NAME) {
		size_t rlen = name_wire(m->rule, rule);
		if (is_label_suffix(q->lname, q->qname_len, rule, rlen)) {
			owner = rule;
			owner_len = rlen;
		}
	}
	size_t full = DNS_HEADER_LEN + q->qname_len + 4 + owner_len + 10 +
	    69 + (q->edns ? 11 + 6 + strlen(ede_prefix) +
	    strlen(m->category) : 0);

	FUZZ_CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NXDOMAIN);
	FUZZ_CHECK(ldns_pkt_ancount(p) == 0);
	if (tc) {
		/* Only over UDP, only when the whole answer did not fit. */
		FUZZ_CHECK(!run->tcp);
		FUZZ_CHECK(full > limit);
		FUZZ_CHECK(ldns_pkt_nscount(p) == 0);
		FUZZ_CHECK(n == DNS_HEADER_LEN + q->qname_len + 4 +
		    (q->edns ? 11 : 0));
		return;
	}
	FUZZ_CHECK(n == full);
	FUZZ_CHECK(ldns_pkt_nscount(p) == 1);
	const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(p), 0);
	FUZZ_CHECK(ldns_rr_get_type(soa) == LDNS_RR_TYPE_SOA);
	FUZZ_CHECK(ldns_rr_get_class(soa) == LDNS_RR_CLASS_IN);
	FUZZ_CHECK(ldns_rr_ttl(soa) == BLOCKED_TTL);
	const ldns_rdf *o = ldns_rr_owner(soa);
	FUZZ_CHECK(ldns_rdf_size(o) == owner_len);
	uint8_t lower[DNS_MAX_NAME];
	const uint8_t *od = ldns_rdf_data(o);
	for (size_t i = 0; i < owner_len; i++)
		lower[i] = (uint8_t)(od[i] >= 'A' && od[i] <= 'Z' ?
		    od[i] + 32 : od[i]);
	FUZZ_CHECK(memcmp(lower, owner, owner_len) == 0);
	FUZZ_CHECK(ede_code(p) == (q->edns ? 15 : -1));
}

/* A stored answer: the entry, or TC when it does not fit. */
static void
check_cached(const struct run *run, const struct dns_query *q,
    const struct fixture *f, const uint8_t *ans, size_t n,
    const ldns_pkt *p, size_t limit)
{
	size_t extra = q->edns ? 11 : 0;
	bool tc = ans[2] & 0x02;

	FUZZ_CHECK(ldns_pkt_get_rcode(p) == f->rcode);
	FUZZ_CHECK(tc == (!run->tcp && f->canon_len + extra > limit));
	if (tc) {
		FUZZ_CHECK(ldns_pkt_ancount(p) == 0 &&
		    ldns_pkt_nscount(p) == 0);
		FUZZ_CHECK(n == DNS_HEADER_LEN + q->qname_len + 4 + extra);
		return;
	}
	FUZZ_CHECK(n == f->canon_len + extra);
	FUZZ_CHECK(ldns_pkt_ancount(p) == f->ancount);
	FUZZ_CHECK(ldns_pkt_nscount(p) == f->nscount);
	FUZZ_CHECK(memcmp(ans + DNS_HEADER_LEN + q->qname_len + 4,
	    f->canon + DNS_HEADER_LEN + q->qname_len + 4,
	    f->canon_len - (DNS_HEADER_LEN + q->qname_len + 4)) == 0);
	FUZZ_CHECK(ede_code(p) == -1);
}

/* One answer to the query pkt (len bytes), expected to be kind. */
static void
check_answer(struct run *run, const uint8_t *pkt, size_t len,
    const uint8_t *ans, size_t n)
{
	struct dns_query q;
	enum dnsmsg_verdict v;
	const struct fixture *fx;
	struct blocklist_match m;
	enum expect kind = expect_of(run, pkt, len, &q, &v, &fx, &m);
	size_t limit = run->tcp ? DNS_MAX_MSG : udp_limit(&q);
	ldns_pkt *p = NULL;

	FUZZ_CHECK(kind != EXP_NONE);
	/* Over TCP, past the burst, any answer may be the rate limit's. */
	if (run->tcp && run->ratelimit &&
	    (run->answered >= RL_BURST || !run->rl_fresh) &&
	    kind != EXP_REFUSED && (ans[3] & 0x0f) == DNS_RCODE_REFUSED)
		kind = EXP_RATELIMITED;
	run->answered++;
	run->kinds[kind]++;
	FUZZ_CHECK(n >= DNS_HEADER_LEN && n <= limit);
	FUZZ_CHECK(ldns_wire2pkt(&p, ans, n) == LDNS_STATUS_OK);
	/* The header as the client sent it: ID, QR, opcode, RD; CD for a
	 * QUERY. RA, AD and CD are defined for QUERY only: none of them in
	 * the answer to another opcode. */
	FUZZ_CHECK(rd16(ans) == rd16(pkt));
	FUZZ_CHECK(ans[2] & 0x80);
	FUZZ_CHECK((ans[2] & 0x78) == (pkt[2] & 0x78));
	FUZZ_CHECK((ans[2] & 0x01) == (pkt[2] & 0x01));
	if ((pkt[2] & 0x78) == 0)
		FUZZ_CHECK((ans[3] & 0x10) == (pkt[3] & 0x10));
	else
		FUZZ_CHECK(!(ans[3] & 0xb0));	/* RA, AD, CD */
	FUZZ_CHECK(!(ans[3] & 0x40));		/* Z */
	/* The question as spelled, when the query had one we read. */
	FUZZ_CHECK(rd16(ans + 4) == (q.has_question ? 1 : 0));
	if (q.has_question) {
		size_t qlen = (size_t)q.qname_len + 4;
		FUZZ_CHECK(n >= DNS_HEADER_LEN + qlen);
		FUZZ_CHECK(memcmp(ans + DNS_HEADER_LEN, pkt + DNS_HEADER_LEN,
		    qlen) == 0);
	}
	/* Our OPT exactly when the client sent one, with its DO bit. */
	FUZZ_CHECK(rd16(ans + 10) == (q.edns ? 1 : 0));
	FUZZ_CHECK(ldns_pkt_edns(p) == q.edns);
	if (q.edns) {
		FUZZ_CHECK(ldns_pkt_edns_do(p) == q.do_bit);
		FUZZ_CHECK(ldns_pkt_edns_udp_size(p) == DNS_EDNS_SIZE);
		FUZZ_CHECK(ldns_pkt_edns_version(p) == 0);
		FUZZ_CHECK(ldns_pkt_edns_extended_rcode(p) ==
		    (kind == EXP_BADVERS ? 1 : 0));
	}
	if (kind <= EXP_SERVFAIL || kind == EXP_RATELIMITED) {
		/* Error answers: no records, small enough for anyone. */
		static const uint8_t rcodes[] = {
			[EXP_REFUSED] = DNS_RCODE_REFUSED,
			[EXP_FORMERR] = DNS_RCODE_FORMERR,
			[EXP_NOTIMP] = DNS_RCODE_NOTIMP,
			[EXP_BADVERS] = 0,	/* 16: upper bits in the OPT */
			[EXP_SERVFAIL] = DNS_RCODE_SERVFAIL,
			[EXP_RATELIMITED] = DNS_RCODE_REFUSED,
		};
		FUZZ_CHECK(n <= DNS_UDP_PLAIN);
		FUZZ_CHECK((ans[3] & 0x0f) == rcodes[kind]);
		FUZZ_CHECK(!(ans[2] & 0x02));
		FUZZ_CHECK(ldns_pkt_ancount(p) == 0 &&
		    ldns_pkt_nscount(p) == 0);
		FUZZ_CHECK(ede_code(p) == (kind == EXP_REFUSED && q.edns ?
		    DNS_EDE_PROHIBITED : -1));
	} else if (kind == EXP_CACHED) {
		check_cached(run, &q, fx, ans, n, p, limit);
	} else {
		check_blocked(run, &q, &m, kind == EXP_BLOCKED_CNAME, ans, n,
		    p, limit);
	}
	ldns_pkt_free(p);
}

/* The counters of the run must tell what the answers showed. */
static void
check_counters(const struct run *run)
{
	const struct counters *c = run->ctr;

	FUZZ_CHECK(c->refused == run->kinds[EXP_REFUSED]);
	if (run->tcp)
		FUZZ_CHECK(c->ratelimited == run->kinds[EXP_RATELIMITED]);
	FUZZ_CHECK(c->formerr == run->kinds[EXP_FORMERR]);
	FUZZ_CHECK(c->notimp == run->kinds[EXP_NOTIMP]);
	FUZZ_CHECK(c->servfail == run->kinds[EXP_SERVFAIL]);
	FUZZ_CHECK(c->blocked == run->kinds[EXP_BLOCKED] +
	    run->kinds[EXP_BLOCKED_CNAME]);
	FUZZ_CHECK(c->blocked_cname == run->kinds[EXP_BLOCKED_CNAME]);
	FUZZ_CHECK(c->cache_hits == run->kinds[EXP_CACHED]);
	FUZZ_CHECK(c->cache_misses == run->kinds[EXP_SERVFAIL]);
}

/* ---- UDP ---- */

static void
udp_answer(void *arg, const uint8_t *pkt, size_t len)
{
	struct run *run = arg;

	run->nanswers++;
	FUZZ_CHECK(len <= sizeof(run->answer));
	memcpy(run->answer, pkt, len);
	run->answer_len = len;
}

static void
run_udp(struct run *run, const struct sockaddr *peer, socklen_t peerlen,
    uint8_t flags, const uint8_t *data, size_t size)
{
	size_t ndgrams = 0, passed = 0;

	while (size > 0 && ndgrams < MAX_DGRAMS) {
		size_t len = size >= 2 ? rd16(data) : 0;
		size_t hdr = size >= 2 ? 2 : size;
		data += hdr;
		size -= hdr;
		if (len > size)
			len = size;
		const uint8_t *pkt = data;
		data += len;
		size -= len;

		run->nanswers = 0;
		frontend_feed_udp(run->fe, pkt, len, peer, peerlen,
		    udp_answer, run);
		ndgrams++;
		FUZZ_CHECK(run->ctr->queries_udp == ndgrams);
		FUZZ_CHECK(run->nanswers <= 1);
		bool dropped = len > UDP_MSG_MAX ||
		    len < DNS_HEADER_LEN || (pkt[2] & 0x80);
		/* The first RL_BURST datagrams pass the limit; later ones
		 * may or may not, depending on the clock. */
		bool maybe_limited = (flags & F_RATELIMIT) && len <=
		    UDP_MSG_MAX && (passed++ >= RL_BURST || !run->rl_fresh);
		if (dropped)
			FUZZ_CHECK(run->nanswers == 0);
		else if (!maybe_limited)
			FUZZ_CHECK(run->nanswers == 1);
		if (run->nanswers == 1)
			check_answer(run, pkt, len > UDP_MSG_MAX ?
			    UDP_MSG_MAX : len, run->answer, run->answer_len);
		if ((flags & F_RELOAD) && ndgrams == 1) {
			frontend_reconfigure(run->fe, cfg, bl2);
			run->bl = bl2;
		}
	}
	if (!(flags & F_RATELIMIT))
		FUZZ_CHECK(run->ctr->ratelimited == 0);
}

/* ---- TCP ---- */

struct tcp_run {
	struct run	*run;
	int		 fd;		/* our end */
	bool		 eof;		/* the frontend closed its end */
	const uint8_t	*stream;	/* what the client sends */
	size_t		 sent;		/* bytes of it written so far */
	size_t		 next;		/* offset of the next frame to answer */
	const struct blocklist *bl_next; /* the list for frames from next on */
	size_t		 reload_at;	/* frames ending after this: bl2 */
	uint8_t		 in[2 + DNS_MAX_MSG];	/* an answer being read */
	size_t		 in_len;
};

/*
 * The next frame of the stream that gets an answer: a complete one not
 * dropped. Returns its offset or SIZE_MAX; frames skipped were dropped.
 */
static size_t
tcp_next_query(const struct tcp_run *t, size_t end, size_t *mlen)
{
	size_t off = t->next;

	while (off + 2 <= end) {
		size_t l = rd16(t->stream + off);
		if (off + 2 + l > end)
			break;
		const uint8_t *pkt = t->stream + off + 2;
		if (l >= DNS_HEADER_LEN && !(pkt[2] & 0x80)) {
			*mlen = l;
			return off;
		}
		off += 2 + l;
	}
	return SIZE_MAX;
}

/* A whole answer arrived: it answers the next query written. */
static void
tcp_answer(struct tcp_run *t, const uint8_t *ans, size_t n)
{
	size_t mlen, off = tcp_next_query(t, t->sent, &mlen);

	FUZZ_CHECK(off != SIZE_MAX);	/* no answer without a query */
	t->run->bl = off + 2 + mlen > t->reload_at ? bl2 : bl1;
	check_answer(t->run, t->stream + off + 2, mlen, ans, n);
	t->next = off + 2 + mlen;
}

/* Read what the frontend wrote; returns the number of bytes. */
static size_t
tcp_drain(struct tcp_run *t)
{
	size_t total = 0;

	while (!t->eof) {
		size_t want = t->in_len < 2 ? 2 - t->in_len :
		    2 + (size_t)rd16(t->in) - t->in_len;
		ssize_t r = recv(t->fd, t->in + t->in_len, want, 0);
		if (r == 0 || (r < 0 && errno == ECONNRESET)) {
			t->eof = true;
			break;
		}
		if (r < 0) {
			FUZZ_CHECK(errno == EAGAIN || errno == EINTR);
			break;
		}
		total += (size_t)r;
		t->in_len += (size_t)r;
		if (t->in_len >= 2 && t->in_len == 2 + (size_t)rd16(t->in)) {
			tcp_answer(t, t->in + 2, t->in_len - 2);
			t->in_len = 0;
		}
	}
	return total;
}

/* Run the loop until the frontend has nothing more to do or say. */
static void
tcp_pump(struct tcp_run *t)
{
	int idle = 0;

	for (int i = 0; i < 100000 && idle < 3; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		idle = tcp_drain(t) > 0 ? 0 : idle + 1;
	}
}

static void
tcp_write(struct tcp_run *t, size_t len)
{
	while (len > 0 && !t->eof) {
		ssize_t w = send(t->fd, t->stream + t->sent, len,
		    MSG_NOSIGNAL);
		if (w < 0) {
			FUZZ_CHECK(errno == EAGAIN || errno == EINTR);
			tcp_pump(t);	/* the frontend reads, we read */
			continue;
		}
		t->sent += (size_t)w;
		len -= (size_t)w;
	}
}

static void
run_tcp(struct run *run, const struct sockaddr *peer, socklen_t peerlen,
    uint8_t flags, uint8_t chunk, const uint8_t *data, size_t size)
{
	int sv[2];
	struct tcp_run t = {
		.run = run, .stream = data, .reload_at = SIZE_MAX,
	};
	size_t step = (flags & F_CHUNKED) ? (size_t)(chunk % 64) + 1 : size;
	unsigned nchunks = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1) {
		perror("socketpair");
		exit(2);
	}
	t.fd = sv[1];
	if (!run->allowed) {
		/* Refused at accept: its end closed, nothing read. */
		FUZZ_CHECK(frontend_adopt_tcp(run->fe, sv[0], peer, peerlen) ==
		    -1);
		FUZZ_CHECK(run->ctr->tcp_refused_client == 1);
		FUZZ_CHECK(fcntl(sv[0], F_GETFD) == -1 && errno == EBADF);
		FUZZ_CHECK(recv(t.fd, t.in, 1, 0) == 0);
		close(t.fd);
		return;
	}
	FUZZ_CHECK(frontend_adopt_tcp(run->fe, sv[0], peer, peerlen) == 0);
	FUZZ_CHECK(run->ctr->tcp_accepted == 1);
	bool shut = false;
	while (t.sent < size && !t.eof) {
		size_t len = size - t.sent;
		if (len > step && ++nchunks < MAX_CHUNKS)
			len = step;
		tcp_write(&t, len);
		if ((flags & F_HALFCLOSE) && t.sent == size) {
			/* With the last bytes, before the frontend read them:
			 * EOF may come while answers wait to be sent. */
			shutdown(t.fd, SHUT_WR);
			shut = true;
		}
		tcp_pump(&t);
		if ((flags & F_RELOAD) && t.reload_at == SIZE_MAX) {
			frontend_reconfigure(run->fe, cfg, bl2);
			t.reload_at = t.sent;
		}
	}
	if (!shut) {
		FUZZ_CHECK(!t.eof);	/* nothing makes the frontend hang up */
		if (flags & F_HALFCLOSE) {
			shutdown(t.fd, SHUT_WR);
			tcp_pump(&t);
		}
	}
	/* A half-closed connection: every answer, then the frontend closes. */
	if (flags & F_HALFCLOSE)
		FUZZ_CHECK(t.eof);
	size_t mlen;
	FUZZ_CHECK(tcp_next_query(&t, size, &mlen) == SIZE_MAX);
	FUZZ_CHECK(t.in_len == 0);	/* no answer cut short */
	/* Count the frames the frontend read: whole ones. */
	size_t frames = 0;
	for (size_t off = 0; off + 2 <= size &&
	    off + 2 + rd16(data + off) <= size; off += 2 + rd16(data + off))
		frames++;
	FUZZ_CHECK(run->ctr->queries_tcp == frames);
	close(t.fd);
	/* The frontend sees EOF (or a reset) and closes its end, which the
	 * next input must not find open. */
	for (int i = 0; i < 8 && fcntl(sv[0], F_GETFD) != -1; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	FUZZ_CHECK(fcntl(sv[0], F_GETFD) == -1 && errno == EBADF);
}

/*
 * The peer of this input: allowed or not by allow_clients, IPv4 or IPv6,
 * and a new address each time (a new /64 for IPv6), so that the rate
 * limiter, which keeps its buckets, starts it with a full one.
 */
static socklen_t
peer_make(int which, struct sockaddr_storage *ss)
{
	static uint32_t n;
	uint8_t b[3];

	n = (n + 1) & 0xffffff;
	b[0] = (uint8_t)(n >> 16);
	b[1] = (uint8_t)(n >> 8);
	b[2] = (uint8_t)n;
	memset(ss, 0, sizeof(*ss));
	if (which == 0 || which == 2) {
		/* 127/8 is allowed, 10/8 is not. */
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		uint8_t *a = (uint8_t *)&sin->sin_addr;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(40000);
		a[0] = which == 0 ? 127 : 10;
		memcpy(a + 1, b, 3);
		return sizeof(*sin);
	}
	/* fd00::/16 is allowed, 2001:db8::/32 is not. */
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	uint8_t *a = sin6->sin6_addr.s6_addr;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(40000);
	if (which == 1) {
		a[0] = 0xfd;
		memcpy(a + 5, b, 3);
	} else {
		a[0] = 0x20;
		a[1] = 0x01;
		a[2] = 0x0d;
		a[3] = 0xb8;
		memcpy(a + 5, b, 3);
	}
	a[15] = 1;
	return sizeof(*sin6);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct run run = { .fe = fe, .ctr = &ctr, .bl = bl1 };

	if (size < 2)
		return -1;
	fuzz_input(data, size);
	uint8_t flags = data[0], chunk = data[1];
	data += 2;
	size -= 2;

	int which = flags & F_PEER;
	sslen = peer_make(which, &ss);
	run.allowed = which < 2;
	run.tcp = (flags & F_TCP) != 0;
	run.ratelimit = (flags & F_RATELIMIT) != 0;
	/* A bucket another input's address spent is taken over as it is
	 * (no fresh burst on a collision): only a slot not yet used under a
	 * rate limit is known to be full. */
	static uint8_t rl_used[65536];
	uint32_t slot = ratelimit_slot(rl, (struct sockaddr *)&ss) & 0xffff;
	run.rl_fresh = !rl_used[slot];
	if (run.ratelimit)
		rl_used[slot] = 1;
	FUZZ_CHECK(config_client_allowed(cfg, (struct sockaddr *)&ss) ==
	    run.allowed);
	memset(&ctr, 0, sizeof(ctr));
	ratelimit_set(rl, (flags & F_RATELIMIT) ? 1 : 0, RL_BURST);
	fixtures_insert(frontend_cache(fe));

	if (run.tcp)
		run_tcp(&run, (struct sockaddr *)&ss, sslen, flags, chunk,
		    data, size);
	else
		run_udp(&run, (struct sockaddr *)&ss, sslen, flags, data, size);
	check_counters(&run);

	/* Back to the start: an empty cache (a reload with a cache of 0
	 * entries evicts all), the first blocklist. */
	frontend_reconfigure(fe, &cfg_flush, bl1);
	FUZZ_CHECK(cache_count(frontend_cache(fe)) == 0);
	frontend_reconfigure(fe, cfg, bl1);
	return 0;
}
