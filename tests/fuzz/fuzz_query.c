/*
 * fuzz_query: a packet from a client, through the steps the frontend runs
 * on it: dnsmsg_parse_query(), the blocklist, the cache key, the query
 * sent upstream, and every answer the client can get: an error (REFUSED
 * with EDE 18 for a client outside allow_clients, FORMERR, NOTIMP,
 * BADVERS, SERVFAIL), the blocked answer, or a stored reply finalized for
 * this client (small, and too big for UDP).
 *
 * A COOKIE option (RFC 7873) is taken only at the lengths allowed and as
 * it was on the wire; turned into the one the answers carry
 * (cookie_answer(), RFC 9018), that one proves the same address at once
 * and no other, and the answers carry it.
 *
 * Each answer must re-parse with ldns (a parser independent of ours),
 * carry the client's ID and question as the client spelled it, and fit
 * the limit: the client's UDP size, 65535 over TCP.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "blocklist.h"
#include "cache.h"
#include "cookie.h"
#include "dnsmsg.h"
#include "fuzz_util.h"

#define FLAG_QR		0x80	/* in byte 2 */

static struct blocklist	*bl;
static struct cache	*cache;
static struct cookie	*cookie;
static uint8_t		 out[DNS_MAX_MSG + 512];	/* as the frontend's */
static uint8_t		 canon[DNS_MAX_MSG];

/* Block entries of each kind (exact, wildcard, deep), one allow. */
static const char blocklist_yaml[] =
    "categories:\n"
    "  - name: fuzz\n"
    "    description: names the fuzzer can reach\n"
    "    sites:\n"
    "      - name: Example\n"
    "        domains: [example.com, \"*.wild.example\", a.b.c.d.example, x]\n"
    "allow:\n"
    "  - ok.example.com\n";

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct cache_limits lim = { 16, 1 << 20, 86400, 3600 };
	struct diag d;
	char path[4096];

	static const uint8_t secret[COOKIE_SECRET_LEN] = "fuzz cookie key";
	cookie = cookie_new(secret);
	if (cookie == NULL) {
		fprintf(stderr, "fuzz_query: no SipHash\n");
		exit(2);
	}
	fuzz_path(path, sizeof(path), "blocklist.yaml");
	fuzz_write_file(path, blocklist_yaml, strlen(blocklist_yaml));
	diag_init(&d);
	bl = blocklist_load_file(path, &d);
	if (bl == NULL) {
		fprintf(stderr, "fuzz_query: blocklist: %s", diag_text(&d));
		exit(2);
	}
	diag_free(&d);
	cache = cache_new(&lim, 0x5eed);
	if (cache == NULL)
		exit(2);
	return 0;
}

/* What every answer shares: parses, ID, QR, question as asked, OPT. */
static ldns_pkt *
check_answer(const struct dns_query *q, const uint8_t *pkt, size_t n,
    size_t limit)
{
	ldns_pkt *p = NULL;

	FUZZ_CHECK(n >= DNS_HEADER_LEN);
	FUZZ_CHECK(n <= limit);
	FUZZ_CHECK(ldns_wire2pkt(&p, pkt, n) == LDNS_STATUS_OK);
	FUZZ_CHECK(rd16(pkt) == q->id);
	FUZZ_CHECK(pkt[2] & FLAG_QR);
	FUZZ_CHECK(rd16(pkt + 4) == (q->has_question ? 1 : 0));
	if (q->has_question) {
		size_t o = DNS_HEADER_LEN + q->qname_len;
		FUZZ_CHECK(n >= o + 4);
		FUZZ_CHECK(memcmp(pkt + DNS_HEADER_LEN, q->qname,
		    q->qname_len) == 0);
		FUZZ_CHECK(rd16(pkt + o) == q->qtype);
		FUZZ_CHECK(rd16(pkt + o + 2) == q->qclass);
	}
	FUZZ_CHECK(rd16(pkt + 10) == (q->edns ? 1 : 0));	/* OPT, ours */
	FUZZ_CHECK(ldns_pkt_edns(p) == q->edns);
	return p;
}

/* Error answers: must fit any client, even one without EDNS. */
static void
answers_error(const struct dns_query *q, enum dnsmsg_verdict v)
{
	static const uint8_t rcodes[] = {
		[DNSMSG_OK] = DNS_RCODE_SERVFAIL,
		[DNSMSG_FORMERR] = DNS_RCODE_FORMERR,
		[DNSMSG_NOTIMP] = DNS_RCODE_NOTIMP,
		[DNSMSG_BADVERS] = DNS_RCODE_BADVERS,
	};
	uint8_t rcode = rcodes[v];
	size_t n;

	n = dnsmsg_build_error(q, DNS_RCODE_REFUSED, DNS_EDE_PROHIBITED,
	    "client not in allow_clients", out, sizeof(out));
	ldns_pkt_free(check_answer(q, out, n, DNS_UDP_PLAIN));
	FUZZ_CHECK((out[3] & 0xf) == DNS_RCODE_REFUSED);

	n = dnsmsg_build_error(q, rcode, -1, NULL, out, sizeof(out));
	ldns_pkt_free(check_answer(q, out, n, DNS_UDP_PLAIN));
	FUZZ_CHECK((out[3] & 0xf) == (rcode & 0xf));
	if (rcode > 0xf) {
		/* The upper bits go in the OPT TTL's first byte. */
		FUZZ_CHECK(q->edns);
		FUZZ_CHECK(rd16(out + 10) == 1);
		FUZZ_CHECK(out[n - 11 + 5] == rcode >> 4);
	}
}

static void
answer_blocked(const struct dns_query *q, const uint8_t *rule,
    size_t rule_len, const char *category)
{
	size_t limit = dnsmsg_udp_limit(q);
	size_t n = dnsmsg_build_blocked(q, rule, rule_len, category, 300, out,
	    sizeof(out), limit);

	/* A long name and a long rule would take the SOA past the limit:
	 * then the answer is truncated, without the SOA. */
	ldns_pkt *p = check_answer(q, out, n, limit);

	FUZZ_CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NXDOMAIN);
	FUZZ_CHECK(ldns_pkt_ancount(p) == 0);
	FUZZ_CHECK(ldns_pkt_nscount(p) == (ldns_pkt_tc(p) ? 0 : 1));
	ldns_pkt_free(p);
}

/* The blocklist on the query name; wire and text matching must agree. */
static void
answers_blocked(const struct dns_query *q)
{
	struct blocklist_match m;
	char text[1024];
	size_t rule_len;

	int hit = blocklist_match_wire(bl, q->lname, q->qname_len, &m);
	FUZZ_CHECK(hit == 0 || hit == 1);
	dnsmsg_name_to_text(q->lname, q->qname_len, text, sizeof(text));
	FUZZ_CHECK(strlen(text) < sizeof(text));
	int hit_text = blocklist_match_name(bl, text, NULL);
	FUZZ_CHECK(hit_text == -1 || hit_text == hit);
	/* A suffix of any length, or the whole name. */
	size_t text_len = q->id % 256;
	const uint8_t *suffix = dnsmsg_name_suffix(q->lname, q->qname_len,
	    text_len, &rule_len);
	FUZZ_CHECK(suffix >= q->lname &&
	    suffix + rule_len == q->lname + q->qname_len);
	FUZZ_CHECK(rule_len == text_len + 2 || suffix == q->lname);
	if (hit == 1) {
		FUZZ_CHECK(m.rule != NULL && m.category != NULL && !m.allowed);
		const uint8_t *rule = dnsmsg_name_suffix(q->lname,
		    q->qname_len, strlen(m.rule), &rule_len);
		answer_blocked(q, rule, rule_len, m.category);
	}
	/* The longest rule: the whole name (a CNAME target's at worst). */
	answer_blocked(q, q->lname, q->qname_len, "fuzz");
}

/* A canonical reply to q's question: nanswers A records. */
static size_t
canon_build(const struct dns_query *q, unsigned nanswers)
{
	static const uint8_t head[] = {
		0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0 };
	static const uint8_t rr[] = {
		0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1 };
	size_t o = sizeof(head);

	memcpy(canon, head, sizeof(head));
	canon[6] = nanswers >> 8;
	canon[7] = nanswers & 0xff;
	memcpy(canon + o, q->lname, q->qname_len);
	o += q->qname_len;
	canon[o++] = q->qtype >> 8;
	canon[o++] = q->qtype & 0xff;
	canon[o++] = q->qclass >> 8;
	canon[o++] = q->qclass & 0xff;
	for (unsigned i = 0; i < nanswers; i++) {
		memcpy(canon + o, rr, sizeof(rr));
		o += sizeof(rr);
	}
	return o;
}

static void
answer_finalize(const struct dns_query *q, size_t len, unsigned nanswers,
    size_t limit)
{
	size_t n = dnsmsg_finalize(q, canon, len, out, sizeof(out), limit);
	bool tc = len + (q->edns ? 11 : 0) > limit;

	FUZZ_CHECK(n > 0);
	ldns_pkt *p = check_answer(q, out, n, limit);
	FUZZ_CHECK(ldns_pkt_tc(p) == tc);
	FUZZ_CHECK(ldns_pkt_ancount(p) == (tc ? 0 : nanswers));
	FUZZ_CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR);
	ldns_pkt_free(p);
}

/* A stored reply for this client, over UDP and TCP. */
static void
answers_cached(const struct dns_query *q)
{
	static const unsigned sizes[] = { 1, 90 };	/* 90: over 1232 */

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = canon_build(q, sizes[i]);
		answer_finalize(q, len, sizes[i], dnsmsg_udp_limit(q));
		answer_finalize(q, len, sizes[i], DNS_MAX_MSG);
	}
}

/* The cache key and the query sent upstream for an accepted query. */
static void
check_forward(const struct dns_query *q)
{
	struct cache_key key;
	struct dns_query q2;
	uint8_t buf[DNS_UDP_PLAIN];

	cache_key_make(cache, &key, q->lname, q->qname_len, q->qtype,
	    q->qclass, q->do_bit, q->cd);
	FUZZ_CHECK(key.len == q->qname_len + 5);
	FUZZ_CHECK(cache_lookup(cache, &key, 0) == NULL);

	size_t n = dnsmsg_build_query(buf, q->id, q->lname, q->qname_len,
	    q->qtype, q->qclass, q->do_bit, q->cd);
	FUZZ_CHECK(n <= sizeof(buf));
	FUZZ_CHECK(dnsmsg_parse_query(buf, n, &q2) == DNSMSG_OK);
	FUZZ_CHECK(q2.qname_len == q->qname_len);
	FUZZ_CHECK(memcmp(q2.lname, q->lname, q->qname_len) == 0);
	FUZZ_CHECK(q2.qtype == q->qtype && q2.qclass == q->qclass);
	FUZZ_CHECK(q2.do_bit == q->do_bit && q2.cd == q->cd && q2.rd);
	FUZZ_CHECK(q2.edns && q2.udp_size == DNS_EDNS_SIZE);
}

/* What the parser reported must describe the packet it was given. */
static void
check_parsed(const uint8_t *data, size_t size, const struct dns_query *q,
    enum dnsmsg_verdict v)
{
	size_t limit = dnsmsg_udp_limit(q);

	FUZZ_CHECK(limit >= DNS_UDP_PLAIN && limit <= DNS_EDNS_SIZE);
	FUZZ_CHECK(v != DNSMSG_OK || (q->has_question && q->opcode == 0));
	if (!q->has_question)
		return;
	FUZZ_CHECK(q->qname == data + DNS_HEADER_LEN);
	FUZZ_CHECK(q->qname_len >= 1 &&
	    DNS_HEADER_LEN + (size_t)q->qname_len + 4 <= size);
	FUZZ_CHECK(q->lname[q->qname_len - 1] == 0);
	for (size_t i = 0; i < q->qname_len; i++)
		FUZZ_CHECK(q->lname[i] == q->qname[i] ||
		    q->lname[i] == q->qname[i] + 32);
}

/*
 * The COOKIE option as parsed, then as cookie_answer() makes it for the
 * answers: the client's part kept, our server cookie after it, which
 * proves the same address at the same time, and not another one.
 */
static void
check_cookie(const uint8_t *data, size_t size, struct dns_query *q)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, b;
	uint8_t client[COOKIE_CLIENT_LEN], again[COOKIE_MAX_LEN];
	uint8_t len = q->cookie_len;
	uint32_t now = (uint32_t)size * 2654435761u;

	if (len == 0)
		return;
	FUZZ_CHECK(q->edns);
	FUZZ_CHECK(len == 8 || (len >= 16 && len <= COOKIE_MAX_LEN));
	/* As on the wire: an option header of code 10 and this length. */
	bool found = false;
	for (size_t i = DNS_HEADER_LEN; i + 4 + len <= size && !found; i++)
		found = data[i] == 0 && data[i + 1] == 10 && data[i + 2] == 0 &&
		    data[i + 3] == len && memcmp(data + i + 4, q->cookie,
		    len) == 0;
	FUZZ_CHECK(found);
	memcpy(client, q->cookie, COOKIE_CLIENT_LEN);
	memcpy(&a.sin_addr, data, 4);
	b = a;
	b.sin_addr.s_addr ^= 1;
	bool proven = cookie_answer(cookie, q->cookie, &q->cookie_len,
	    (struct sockaddr *)&a, now);
	FUZZ_CHECK(q->cookie_len == COOKIE_CLIENT_LEN + COOKIE_SERVER_LEN);
	FUZZ_CHECK(memcmp(q->cookie, client, COOKIE_CLIENT_LEN) == 0);
	FUZZ_CHECK(q->cookie[COOKIE_CLIENT_LEN] == 1);
	FUZZ_CHECK(!proven || len == COOKIE_CLIENT_LEN + COOKIE_SERVER_LEN);
	memcpy(again, q->cookie, q->cookie_len);
	len = q->cookie_len;
	FUZZ_CHECK(cookie_answer(cookie, again, &len, (struct sockaddr *)&a,
	    now));
	FUZZ_CHECK(memcmp(again, q->cookie, q->cookie_len) == 0);
	FUZZ_CHECK(!cookie_answer(cookie, again, &len, (struct sockaddr *)&b,
	    now));
}

/* Names anywhere in the packet, compression pointers and all. */
static void
check_names(const uint8_t *data, size_t size)
{
	uint8_t name[DNS_MAX_NAME];
	char text[1024];

	for (size_t start = DNS_HEADER_LEN; start < size && start < 64;
	    start++) {
		size_t off = start;
		int n = dnsmsg_read_name(data, size, &off, name);
		if (n < 0)
			continue;
		FUZZ_CHECK(n >= 1 && n <= DNS_MAX_NAME);
		FUZZ_CHECK(off > start && off <= size);
		FUZZ_CHECK(name[n - 1] == 0);
		dnsmsg_name_to_text(name, (size_t)n, text, sizeof(text));
		FUZZ_CHECK(strlen(text) < sizeof(text));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_query q;

	if (size > DNS_MAX_MSG)
		return -1;	/* more than a UDP or TCP read can deliver */
	fuzz_input(data, size);
	check_names(data, size);
	enum dnsmsg_verdict v = dnsmsg_parse_query(data, size, &q);
	if (v == DNSMSG_DROP)
		return 0;
	check_parsed(data, size, &q, v);
	check_cookie(data, size, &q);
	answers_error(&q, v);
	if (v != DNSMSG_OK)
		return 0;
	answers_blocked(&q);
	check_forward(&q);
	answers_cached(&q);
	return 0;
}
