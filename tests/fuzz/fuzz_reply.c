/*
 * fuzz_reply: a reply from an upstream, through what the frontend does
 * with one that matched its query: dnsmsg_parse_reply(),
 * dnsmsg_canonicalize(), cache_insert(); and then a later cache hit:
 * cache_lookup(), cache_entry_name_off(), cache_entry_copy() and
 * dnsmsg_finalize() for a client asking the same question in its own
 * spelling, over UDP and over TCP.
 *
 * The reply's ID is what the upstream code matches and the answer
 * replaces, so its bits choose the rest: the client's EDNS, DO, CD and
 * letter case, and how many seconds pass before the hit.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "cache.h"
#include "dnsmsg.h"
#include "fuzz_util.h"

#define MAX_TTL		86400
#define MAX_NEG_TTL	3600
#define NOW_MS		1000000
#define TAG(bits)	(0x7a600000u | (bits))	/* what the frontend stores */

static uint8_t	copy[DNS_MAX_MSG];
static uint8_t	out[DNS_MAX_MSG + 512];		/* as the frontend's */

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

/*
 * The open finding (docs/fuzzing.md) that this input exhibits, if any:
 * checks that it breaks are made with CHECK_OR_OPEN, which fails only
 * when there is none (or under FUZZ_STRICT=1) and otherwise stops
 * checking the input.
 */
static const char *open_issue;

#define CHECK_OR_OPEN(cond) do {					\
	if (!(cond)) {							\
		if (open_issue == NULL)					\
			fuzz_fail(__FILE__, __LINE__, #cond);		\
		fuzz_open_finding(__FILE__, __LINE__, #cond, open_issue); \
		return;							\
	}								\
} while (0)

/* The layout of a reply, walked independently of dnsmsg.c. */
struct shape {
	size_t	end;		/* where the last record ends */
	bool	rdata_ok;	/* every rdata of a type checked, and good */
	uint8_t	via_ptr[DNS_MAX_MSG];	/* 1: read as part of a name through
					 * a compression pointer */
};

/* Skip the name at *off, marking what its pointers make us read. */
static int
shape_name(const uint8_t *pkt, size_t len, size_t *off, struct shape *s)
{
	size_t pos = *off;
	bool jumped = false;

	for (int hops = 0; ; ) {
		if (pos >= len)
			return -1;
		uint8_t l = pkt[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++hops > 64)
				return -1;
			if (jumped)
				s->via_ptr[pos] = s->via_ptr[pos + 1] = 1;
			else
				*off = pos + 2;
			jumped = true;
			pos = (size_t)(l & 0x3f) << 8 | pkt[pos + 1];
			continue;
		}
		if (l > 63 || pos + 1 + l > len)
			return -1;
		if (jumped)
			memset(s->via_ptr + pos, 1, 1 + (size_t)l);
		if (l == 0) {
			if (!jumped)
				*off = pos + 1;
			return 0;
		}
		pos += 1 + (size_t)l;
	}
}

static bool
shape_read(const struct shape *s, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (s->via_ptr[i])
			return true;
	return false;
}

/*
 * Whether the rdata is well formed, for the few types checked here; also
 * marks the names in it. dnsmsg.c passes rdata through unread, so a reply
 * with bad rdata is relayed as it came, and ldns reads such rdata in ways
 * that depend on what follows the record (it does not always stop at the
 * rdata length). Replies with other types or bad rdata are left out of
 * the comparisons with ldns.
 */
static bool
shape_rdata(const uint8_t *pkt, size_t end, uint16_t type, size_t rdata,
    struct shape *s)
{
	size_t off = rdata;

	switch (type) {
	case DNS_TYPE_A:
		return end - rdata == 4;
	case DNS_TYPE_AAAA:
		return end - rdata == 16;
	case 16:			/* TXT: character-strings */
		while (off < end)
			off += 1 + pkt[off];
		return off == end && end > rdata;
	case DNS_TYPE_OPT:
		return true;
	case DNS_TYPE_NS:
	case DNS_TYPE_CNAME:
	case 12:			/* PTR */
	case DNS_TYPE_DNAME:
		return shape_name(pkt, end, &off, s) == 0 && off == end;
	case 15:			/* MX */
		off += 2;
		return off < end && shape_name(pkt, end, &off, s) == 0 &&
		    off == end;
	case DNS_TYPE_SOA:
		return shape_name(pkt, end, &off, s) == 0 &&
		    shape_name(pkt, end, &off, s) == 0 && off + 20 == end;
	default:
		return false;
	}
}

/* Walk a reply that dnsmsg_parse_reply() accepted (without TC). */
static void
shape_walk(const uint8_t *pkt, size_t len, struct shape *s)
{
	size_t off = DNS_HEADER_LEN;
	unsigned n = rd16(pkt + 6) + rd16(pkt + 8) + rd16(pkt + 10);

	memset(s->via_ptr, 0, len);
	s->rdata_ok = true;
	FUZZ_CHECK(shape_name(pkt, len, &off, s) == 0);
	off += 4;
	for (unsigned i = 0; i < n; i++) {
		FUZZ_CHECK(shape_name(pkt, len, &off, s) == 0);
		FUZZ_CHECK(off + 10 <= len);
		uint16_t type = rd16(pkt + off);
		uint16_t rdlen = rd16(pkt + off + 8);
		off += 10;
		FUZZ_CHECK(off + rdlen <= len);
		if (!shape_rdata(pkt, off + rdlen, type, off, s))
			s->rdata_ok = false;
		off += rdlen;
	}
	s->end = off;
}

static struct shape shape;

/*
 * Which open finding, if any, the reply (walked into shape) exhibits. The
 * forwarder rewrites bytes in place (the header for each client, TTLs
 * when capping and counting down, the OPT record removed); a name that
 * reads any of them through a compression pointer changes or breaks.
 */
static const char *
shape_open_issue(const struct shape *s, size_t len, const struct dns_reply *r)
{
	if (shape_read(s, 0, DNS_HEADER_LEN))
		return "reply-pointer-into-header";
	for (size_t i = 0; i < r->nttls; i++)
		if (shape_read(s, r->ttl_off[i], r->ttl_off[i] + 4u))
			return "reply-pointer-into-ttl";
	if (r->opt_start != 0 && shape_read(s, r->opt_start, len))
		return "reply-pointer-past-opt";
	/* Kept in the cache; the client's OPT is appended after them. */
	if (s->end != len)
		return "reply-trailing-bytes";
	return NULL;
}

static uint64_t
fnv(uint64_t h, const uint8_t *p, size_t n)
{
	while (n-- > 0)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

/* Hash one name (decompressed, lower case) into *h; -1 if unreadable. */
static int
names_add(const uint8_t *pkt, size_t len, size_t *off, uint64_t *h)
{
	uint8_t name[DNS_MAX_NAME];
	int n = dnsmsg_read_name(pkt, len, off, name);

	if (n < 0)
		return -1;
	*h = fnv(*h, name, (size_t)n);
	return 0;
}

/*
 * A hash of the names a client reads in the reply, OPT left out: the
 * question, each owner and type, the names in NS, CNAME, PTR, DNAME, MX
 * and SOA rdata. Rewriting the reply must not change it. 0 if a name
 * cannot be read, or runs past its rdata (bad rdata is relayed as it
 * came; what it reads beyond is not the forwarder's doing).
 */
static uint64_t
names_hash(const uint8_t *pkt, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t off = DNS_HEADER_LEN;
	unsigned n = rd16(pkt + 6) + rd16(pkt + 8) + rd16(pkt + 10);

	if (names_add(pkt, len, &off, &h) == -1)
		return 0;
	off += 4;
	for (unsigned i = 0; i < n; i++) {
		uint64_t rh = h;
		if (names_add(pkt, len, &off, &rh) == -1 || off + 10 > len)
			return 0;
		uint16_t type = rd16(pkt + off);
		size_t rdata = off + 10, end = rdata + rd16(pkt + off + 8);
		if (end > len)
			return 0;
		off = end;
		if (type == DNS_TYPE_OPT)
			continue;
		rh = fnv(rh, pkt + rdata - 10, 2);
		size_t p = rdata;
		switch (type) {
		case 15:		/* MX */
			p += 2;
			/* FALLTHROUGH */
		case DNS_TYPE_NS:
		case DNS_TYPE_CNAME:
		case 12:		/* PTR */
		case DNS_TYPE_DNAME:
			if (p >= end || names_add(pkt, end, &p, &rh) == -1)
				return 0;
			break;
		case DNS_TYPE_SOA:
			if (names_add(pkt, end, &p, &rh) == -1 ||
			    names_add(pkt, end, &p, &rh) == -1)
				return 0;
			break;
		}
		h = rh;
	}
	return h;
}

/* What the walk reported must lie inside the packet. */
static void
check_parsed(size_t len, const struct dns_reply *r)
{
	FUZZ_CHECK(r->qname_len >= 1 && r->qname[r->qname_len - 1] == 0);
	FUZZ_CHECK(r->question_end == DNS_HEADER_LEN + r->qname_len + 4u);
	FUZZ_CHECK(r->question_end <= len);
	FUZZ_CHECK(r->opt_start == 0 ||
	    (r->opt_start >= r->question_end && r->opt_start < r->opt_end &&
	    r->opt_end <= len));
	FUZZ_CHECK(r->nttls <= DNSMSG_MAX_TTLS);
	for (size_t i = 0; i < r->nttls; i++)
		FUZZ_CHECK(r->ttl_off[i] > r->question_end &&
		    r->ttl_off[i] + 4u <= len);
	FUZZ_CHECK(r->nnames <= DNSMSG_MAX_NAMES);
	FUZZ_CHECK(!r->names_overflow || r->nnames == DNSMSG_MAX_NAMES);
	for (size_t i = 0; i < r->nnames; i++)
		FUZZ_CHECK(r->name_off[i] > DNS_HEADER_LEN &&
		    r->name_off[i] < len);	/* may be a parent of the qname */
	FUZZ_CHECK(r->min_ttl == UINT32_MAX || r->min_ttl <= 0x7fffffff);
}

/* Is name (n bytes) the question's or one of the names r noted? */
static bool
name_noted(const uint8_t *pkt, size_t len, const struct dns_reply *r,
    const uint8_t *name, int n)
{
	uint8_t other[DNS_MAX_NAME];

	if (n == 1 || (n == r->qname_len && memcmp(name, r->qname, n) == 0))
		return true;	/* the root: "the owner" in SVCB; the question */
	for (size_t i = 0; i < r->nnames; i++) {
		size_t off = r->name_off[i];
		int m = dnsmsg_read_name(pkt, len, &off, other);
		if (m == n && memcmp(name, other, (size_t)n) == 0)
			return true;
	}
	return false;
}

/*
 * Blocking fails closed: every name in the answer section a client would
 * follow (owners, CNAME and DNAME targets, SRV, SVCB and HTTPS targets)
 * is among those the frontend checks against the list, or the reply is
 * flagged as too big to check. Walked here independently of dnsmsg.c.
 */
static void
check_names_noted(const uint8_t *pkt, size_t len, const struct dns_reply *r)
{
	uint8_t name[DNS_MAX_NAME];
	size_t off = r->question_end;

	if (r->names_overflow)
		return;
	for (unsigned i = 0; i < rd16(pkt + 6); i++) {
		int n = dnsmsg_read_name(pkt, len, &off, name);
		FUZZ_CHECK(n > 0 && off + 10 <= len);
		FUZZ_CHECK(name_noted(pkt, len, r, name, n));
		uint16_t type = rd16(pkt + off);
		size_t rdata = off + 10, end = rdata + rd16(pkt + off + 8);
		size_t at = rdata;
		off = end;
		switch (type) {
		case DNS_TYPE_SRV:
			at += 4;
			/* FALLTHROUGH */
		case DNS_TYPE_SVCB:
		case DNS_TYPE_HTTPS:
			at += 2;
			/* FALLTHROUGH */
		case DNS_TYPE_CNAME:
		case DNS_TYPE_DNAME:
			n = dnsmsg_read_name(pkt, end, &at, name);
			FUZZ_CHECK(n > 0);
			FUZZ_CHECK(name_noted(pkt, len, r, name, n));
			break;
		default:
			break;
		}
	}
}

/* A record appended to a reply: an A, or the OPT a client gets. */
static const uint8_t rr_a[] = { 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 127, 0, 0, 1 };
static const uint8_t rr_opt[] = { 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0 };

/*
 * ldns parses the reply with rr appended. ldns alone is lenient with a
 * last record that is cut short or too long, and how lenient depends on
 * what follows it; comparing packets with the same record appended keeps
 * that out of the comparison.
 */
static bool
ldns_parses_with(const uint8_t *pkt, size_t len, const uint8_t *rr,
    size_t rrlen)
{
	static uint8_t buf[DNS_MAX_MSG + 16];
	uint16_t arcount = rd16(pkt + 10);
	ldns_pkt *p = NULL;

	if (arcount == UINT16_MAX)
		return false;
	memcpy(buf, pkt, len);
	memcpy(buf + len, rr, rrlen);
	buf[10] = (arcount + 1) >> 8;
	buf[11] = (arcount + 1) & 0xff;
	ldns_status st = ldns_wire2pkt(&p, buf, len + rrlen);
	ldns_pkt_free(p);
	return st == LDNS_STATUS_OK;
}

/* The cache's form: no OPT, every TTL capped, and still a valid reply. */
static void
check_canonical(const uint8_t *pkt, size_t len, size_t before,
    size_t opt_len, const struct dns_reply *r, bool ldns_ok, uint64_t names)
{
	struct dns_reply r2;

	FUZZ_CHECK(len == before - opt_len);
	FUZZ_CHECK(r->opt_start == 0 && r->opt_end == 0);
	for (size_t i = 0; i < r->nttls; i++) {
		FUZZ_CHECK(r->ttl_off[i] + 4u <= len);
		FUZZ_CHECK(r->too_many_rrs ||
		    rd32(pkt + r->ttl_off[i]) <= MAX_TTL);
	}
	CHECK_OR_OPEN(dnsmsg_parse_reply(pkt, len, &r2) == 0);
	CHECK_OR_OPEN(r2.opt_start == 0);
	CHECK_OR_OPEN(r2.nttls == r->nttls);
	CHECK_OR_OPEN(r2.nnames == r->nnames);
	CHECK_OR_OPEN(memcmp(r2.name_off, r->name_off,
	    2 * r->nnames) == 0);
	CHECK_OR_OPEN(!ldns_ok ||
	    ldns_parses_with(pkt, len, rr_a, sizeof(rr_a)));
	CHECK_OR_OPEN(names == 0 || names_hash(pkt, len) == names);
}

/* The client's query for the reply's question, in its own spelling. */
static size_t
client_query(const struct dns_reply *r, uint16_t bits, uint8_t *buf)
{
	static const uint8_t opt[] = { 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0 };
	size_t o = DNS_HEADER_LEN;

	memset(buf, 0, DNS_HEADER_LEN);
	buf[0] = 0xab;
	buf[1] = 0xcd;
	buf[2] = 0x01;					/* RD */
	buf[3] = (bits & 4) ? 0x10 : 0;			/* CD */
	buf[5] = 1;
	memcpy(buf + o, r->qname, r->qname_len);
	/* Upper-case some letters, as a client (or DNS 0x20) may. */
	for (size_t i = 0; i < r->qname_len; i++)
		if (buf[o + i] >= 'a' && buf[o + i] <= 'z' &&
		    ((bits >> 3) + i) % 3 == 0)
			buf[o + i] -= 32;
	o += r->qname_len;
	buf[o++] = r->qtype >> 8;
	buf[o++] = r->qtype & 0xff;
	buf[o++] = r->qclass >> 8;
	buf[o++] = r->qclass & 0xff;
	if (bits & 1) {
		buf[11] = 1;
		memcpy(buf + o, opt, sizeof(opt));
		if (bits & 2)
			buf[o + 7] = 0x80;		/* DO */
		o += sizeof(opt);
	}
	return o;
}

/* The stored reply finalized for one client; must parse as a reply. */
static void
check_finalize(const struct dns_query *q, const uint8_t *pkt, size_t len,
    size_t limit, bool ldns_ok, uint64_t names)
{
	struct dns_reply r;
	size_t n = dnsmsg_finalize(q, pkt, len, out, sizeof(out), limit);

	FUZZ_CHECK(n > 0 && n <= limit);
	FUZZ_CHECK(rd16(out) == q->id);
	FUZZ_CHECK(memcmp(out + DNS_HEADER_LEN, q->qname, q->qname_len) == 0);
	CHECK_OR_OPEN(dnsmsg_parse_reply(out, n, &r) == 0);
	/* What does not fit is cut at a record's end: the records kept are
	 * the stored ones up to there, byte for byte. */
	size_t qend = DNS_HEADER_LEN + q->qname_len + 4;
	size_t extra = q->edns ? 11 : 0;
	FUZZ_CHECK(n >= qend + extra && n - extra <= len);
	FUZZ_CHECK(memcmp(out + qend, pkt + qend, n - extra - qend) == 0);
	for (int i = 0; i < 3; i++)
		FUZZ_CHECK(rd16(out + 6 + 2 * i) - (i == 2 && q->edns) <=
		    rd16(pkt + 6 + 2 * i));
	if (r.tc)
		return;		/* a client reads nothing more */
	CHECK_OR_OPEN(r.opt_start != 0 || !q->edns);
	/* Cut without TC: only additional or optional authority records. */
	if (n - extra < len)
		FUZZ_CHECK(rd16(out + 6) == rd16(pkt + 6));
	else
		CHECK_OR_OPEN(names == 0 || names_hash(out, n) == names);
	if (ldns_ok) {
		ldns_pkt *p = NULL;
		ldns_status st = ldns_wire2pkt(&p, out, n);
		ldns_pkt_free(p);
		CHECK_OR_OPEN(st == LDNS_STATUS_OK);
	}
}

/* A later hit on the entry, as answer_from_cache() makes it. */
static void
check_hit(struct cache *c, const struct cache_key *key,
    const struct dns_reply *r, size_t len, uint16_t bits, bool ldns_ok,
    uint64_t names)
{
	uint64_t now = NOW_MS + (uint64_t)(bits >> 8) * 1000;
	struct cache_entry *e = cache_lookup(c, key, now);
	uint8_t qbuf[DNS_HEADER_LEN + DNS_MAX_NAME + 4 + 11];
	struct dns_query q;
	size_t n, i;

	if (e == NULL)
		return;
	FUZZ_CHECK(cache_entry_tag(e) == TAG(bits));
	cache_entry_set_tag(e, TAG(bits) ^ 1);
	FUZZ_CHECK(cache_entry_tag(e) == (TAG(bits) ^ 1));
	FUZZ_CHECK(cache_entry_nnames(e) == r->nnames);
	for (i = 0; i < r->nnames; i++)
		FUZZ_CHECK(cache_entry_name_off(e, i) == r->name_off[i]);
	n = cache_entry_copy(e, now, copy, sizeof(copy));
	FUZZ_CHECK(n == len);
	FUZZ_CHECK(cache_entry_copy(e, now, copy, len - 1) == 0);
	n = cache_entry_copy(e, now, copy, sizeof(copy));

	size_t qlen = client_query(r, bits, qbuf);
	enum dnsmsg_verdict v = dnsmsg_parse_query(qbuf, qlen, &q);
	if (r->qtype == DNS_TYPE_AXFR || r->qtype == DNS_TYPE_IXFR) {
		FUZZ_CHECK(v == DNSMSG_NOTIMP);
		return;
	}
	FUZZ_CHECK(v == DNSMSG_OK);
	check_finalize(&q, copy, n, dnsmsg_udp_limit(&q), ldns_ok, names);
	check_finalize(&q, copy, n, DNS_MAX_MSG, ldns_ok, names);
}

/*
 * The same answer under other questions, in a cache of 4 entries: the
 * oldest go, with hits in between reordering them. All go in, or none.
 */
static void
check_evictions(struct cache *c, const uint8_t *pkt, size_t len,
    const struct dns_reply *r, bool stored)
{
	struct cache_key key;

	for (uint16_t i = 0; i < 8; i++) {
		cache_key_make(c, &key, r->qname, r->qname_len,
		    (uint16_t)(r->qtype + 1 + i), r->qclass, false, false);
		FUZZ_CHECK(cache_insert(c, &key, pkt, len, r, NOW_MS + i, i) ==
		    stored);
		FUZZ_CHECK(cache_count(c) <= 4);
		cache_key_make(c, &key, r->qname, r->qname_len,
		    (uint16_t)(r->qtype + 1 + i / 2), r->qclass, false, false);
		const struct cache_entry *e = cache_lookup(c, &key, NOW_MS + i);
		FUZZ_CHECK(e == NULL || cache_entry_tag(e) == i / 2u);
	}
	FUZZ_CHECK(cache_count(c) == (stored ? 4 : 0));
	FUZZ_CHECK(cache_evictions(c) == (stored ? 4 : 0));
}

static void
check_cache(const uint8_t *pkt, size_t len, const struct dns_reply *r,
    bool ldns_ok, uint64_t names)
{
	struct cache_limits lim = { 4, 1 << 20, MAX_TTL, MAX_NEG_TTL };
	struct cache *c = cache_new(&lim, 0x5eed);
	struct cache_key key;
	uint16_t bits = rd16(pkt);

	FUZZ_CHECK(c != NULL);
	cache_key_make(c, &key, r->qname, r->qname_len, r->qtype, r->qclass,
	    (bits & 3) == 3, (bits & 4) != 0);
	bool stored = cache_insert(c, &key, pkt, len, r, NOW_MS, TAG(bits));
	FUZZ_CHECK(!stored || (!r->tc && !r->too_many_rrs &&
	    r->rcode != DNS_RCODE_SERVFAIL));
	/* The same answer again replaces the first. */
	FUZZ_CHECK(cache_insert(c, &key, pkt, len, r, NOW_MS, TAG(bits)) ==
	    stored);
	FUZZ_CHECK(cache_count(c) == (stored ? 1 : 0));
	FUZZ_CHECK(cache_bytes(c) <= lim.max_bytes);
	check_hit(c, &key, r, len, bits, ldns_ok, names);
	/* Nothing outlives max_ttl. */
	FUZZ_CHECK(cache_lookup(c, &key, NOW_MS + (MAX_TTL + 1) * 1000ULL) ==
	    NULL);
	FUZZ_CHECK(cache_count(c) == 0 && cache_bytes(c) == 0);
	check_evictions(c, pkt, len, r, stored);
	cache_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_reply r;

	if (size > DNS_MAX_MSG)
		return -1;	/* more than a UDP or TCP read can deliver */
	fuzz_input(data, size);
	uint8_t *pkt = malloc(size ? size : 1);
	FUZZ_CHECK(pkt != NULL);
	memcpy(pkt, data, size);
	if (dnsmsg_parse_reply(pkt, size, &r) < 0) {
		free(pkt);
		return 0;
	}
	check_parsed(size, &r);
	if (!r.tc)
		check_names_noted(pkt, size, &r);
	open_issue = NULL;
	bool ldns_ok = false;
	uint64_t names = 0;
	if (!r.tc) {		/* nothing read past the question */
		shape_walk(pkt, size, &shape);
		open_issue = shape_open_issue(&shape, size, &r);
		ldns_ok = shape.rdata_ok &&
		    ldns_parses_with(pkt, size, rr_a, sizeof(rr_a));
		names = names_hash(pkt, size);
	}
	size_t opt_len = r.opt_end - r.opt_start;
	/* Bytes after the last record are cut (reply-trailing-bytes). */
	size_t kept = r.msg_end != 0 && r.msg_end < size ? r.msg_end : size;
	if (!r.tc)
		FUZZ_CHECK(kept == shape.end);
	size_t len = dnsmsg_canonicalize(pkt, size, &r, MAX_TTL);
	check_canonical(pkt, len, kept, opt_len, &r, ldns_ok, names);
	/* From here on: what ldns makes of the reply with the client's OPT. */
	ldns_ok = ldns_ok && ldns_parses_with(pkt, len, rr_opt, sizeof(rr_opt));
	check_cache(pkt, len, &r, ldns_ok, names);
	free(pkt);
	return 0;
}
