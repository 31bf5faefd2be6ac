/* Unit tests for query validation and answer assembly. */
#include <stdio.h>

#include "dnsmsg.h"
#include "testpkt.h"
#include "unit.h"

static enum dnsmsg_verdict
parse_bytes(const uint8_t *p, size_t len, struct dns_query *q)
{
	return dnsmsg_parse_query(p, len, q);
}

static void
test_valid_query(void)
{
	uint8_t buf[512];
	struct dns_query q;
	size_t len = testpkt_query("WwW.ExAmple.ORG.", LDNS_RR_TYPE_AAAA, 777,
	    true, true, buf, sizeof(buf));

	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_OK);
	CHECK_INT(q.id, 777);
	CHECK_INT(q.qtype, DNS_TYPE_AAAA);
	CHECK_INT(q.qclass, DNS_CLASS_IN);
	CHECK(q.edns && q.do_bit);
	CHECK_INT(q.udp_size, 4096);
	CHECK_INT(dnsmsg_udp_limit(&q), DNS_EDNS_SIZE);
	CHECK_INT(q.qname_len, 17);
	CHECK(memcmp(q.lname, "\3www\7example\3org", 17) == 0);
	CHECK(memcmp(q.qname, "\3WwW\7ExAmple\3ORG", 17) == 0);

	len = testpkt_query("a.b.", LDNS_RR_TYPE_A, 1, false, false, buf, 512);
	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_OK);
	CHECK(!q.edns);
	CHECK_INT(dnsmsg_udp_limit(&q), 512);
}

static void
test_bad_queries(void)
{
	uint8_t buf[512];
	struct dns_query q;
	size_t len = testpkt_query("example.org.", LDNS_RR_TYPE_A, 9, false,
	    false, buf, sizeof(buf));
	uint8_t tmp[512];

	CHECK_INT(parse_bytes(buf, 0, &q), DNSMSG_DROP);
	CHECK_INT(parse_bytes(buf, 5, &q), DNSMSG_DROP);
	/* Header only, QDCOUNT 1: the question is missing. */
	CHECK_INT(parse_bytes(buf, 12, &q), DNSMSG_FORMERR);
	CHECK_INT(q.id, 9);
	/* Cut inside the question. */
	CHECK_INT(parse_bytes(buf, len - 2, &q), DNSMSG_FORMERR);
	/* A response sent as a query is dropped. */
	memcpy(tmp, buf, len);
	tmp[2] |= 0x80;
	CHECK_INT(parse_bytes(tmp, len, &q), DNSMSG_DROP);
	/* Two questions. */
	memcpy(tmp, buf, len);
	tmp[5] = 2;
	CHECK_INT(parse_bytes(tmp, len, &q), DNSMSG_FORMERR);
	/* No question at all. */
	tmp[5] = 0;
	CHECK_INT(parse_bytes(tmp, len, &q), DNSMSG_FORMERR);
	/* Opcode STATUS (2) and NOTIFY (4). */
	memcpy(tmp, buf, len);
	tmp[2] = (tmp[2] & 0x87) | (2 << 3);
	CHECK_INT(parse_bytes(tmp, len, &q), DNSMSG_NOTIMP);
	tmp[2] = (tmp[2] & 0x87) | (4 << 3);
	CHECK_INT(parse_bytes(tmp, len, &q), DNSMSG_NOTIMP);
	/* A compression pointer in the question (pointing at itself). */
	memcpy(tmp, buf, len);
	tmp[12] = 0xc0;
	tmp[13] = 12;
	CHECK_INT(parse_bytes(tmp, len, &q), DNSMSG_FORMERR);
	/* A label longer than 63. */
	memcpy(tmp, buf, len);
	tmp[12] = 64;
	CHECK_INT(parse_bytes(tmp, len, &q), DNSMSG_FORMERR);
	/* Zone transfers are not forwarded. */
	len = testpkt_query("example.org.", LDNS_RR_TYPE_AXFR, 9, false, false,
	    buf, sizeof(buf));
	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_NOTIMP);
}

static void
test_edns_checks(void)
{
	uint8_t buf[512], tmp[512];
	struct dns_query q;
	size_t len = testpkt_query("example.org.", LDNS_RR_TYPE_A, 9, true,
	    false, buf, sizeof(buf));

	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_OK);
	/* EDNS version 1 gets BADVERS. The version is the 2nd TTL byte. */
	memcpy(tmp, buf, len);
	tmp[len - 10 + 4 + 1] = 1;
	CHECK_INT(parse_bytes(tmp, len, &q), DNSMSG_BADVERS);
	/* Two OPT records. */
	memcpy(tmp, buf, len);
	memcpy(tmp + len, buf + len - 11, 11);
	tmp[11] = 2;
	CHECK_INT(parse_bytes(tmp, len + 11, &q), DNSMSG_FORMERR);
	/* ARCOUNT larger than what is there. */
	memcpy(tmp, buf, len);
	tmp[11] = 3;
	CHECK_INT(parse_bytes(tmp, len, &q), DNSMSG_FORMERR);
}

/*
 * A query for example.org. whose OPT carries the options opts (olen
 * bytes, as on the wire) in buf; returns its length.
 */
static size_t
query_with_options(const uint8_t *opts, size_t olen, uint8_t *buf)
{
	size_t len = testpkt_query("example.org.", LDNS_RR_TYPE_A, 9, true,
	    false, buf, 512);

	memcpy(buf + len, opts, olen);
	buf[len - 2] = (uint8_t)(olen >> 8);
	buf[len - 1] = (uint8_t)olen;
	return len + olen;
}

/* The COOKIE option (RFC 7873): taken when 8 or 16..40 bytes, the first
 * one only; FORMERR for other lengths and options that overrun. */
static void
test_cookie_option(void)
{
	uint8_t opts[128], buf[600];
	struct dns_query q;
	size_t len;

	for (size_t n = 0; n <= 41; n++) {
		opts[0] = 0;
		opts[1] = 10;
		opts[2] = 0;
		opts[3] = (uint8_t)n;
		for (size_t i = 0; i < n; i++)
			opts[4 + i] = (uint8_t)(0xa0 + i);
		len = query_with_options(opts, 4 + n, buf);
		bool ok = n == 8 || (n >= 16 && n <= 40);
		CHECK_INT(parse_bytes(buf, len, &q),
		    ok ? DNSMSG_OK : DNSMSG_FORMERR);
		if (ok) {
			CHECK_INT(q.cookie_len, n);
			CHECK(memcmp(q.cookie, opts + 4, n) == 0);
		}
	}
	/* An unknown option first, then two cookies: the first counts. */
	static const uint8_t two[] = { 0, 99, 0, 1, 7,
	    0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
	    0, 10, 0, 7, 1, 2, 3, 4, 5, 6, 7 };
	len = query_with_options(two, sizeof(two), buf);
	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_OK);
	CHECK_INT(q.cookie_len, 8);
	CHECK(memcmp(q.cookie, "\1\2\3\4\5\6\7\10", 8) == 0);
	/* An option whose length runs past the record; a stray byte. */
	static const uint8_t over[] = { 0, 99, 0, 9, 1, 2, 3 };
	len = query_with_options(over, sizeof(over), buf);
	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_FORMERR);
	len = query_with_options(over, 1, buf);
	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_FORMERR);
	/* No cookie: none in the answer either. */
	len = query_with_options(two, 5, buf);
	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_OK);
	CHECK_INT(q.cookie_len, 0);
}

/* The COOKIE option of q (as the frontend set it) in every answer. */
static void
test_cookie_in_answers(void)
{
	static const uint8_t client[] = { 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint8_t rule[] = "\7example\3org";
	uint8_t buf[600], out[2048], canon[512];
	struct dns_query q;
	size_t len = query_with_options(client, sizeof(client), buf), n;
	const char *an[] = { "example.org. 300 IN A 192.0.2.1", NULL };
	size_t clen = testpkt_reply("example.org.", LDNS_RR_TYPE_A,
	    LDNS_RCODE_NOERROR, an, NULL, false, canon, sizeof(canon));

	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_OK);
	q.cookie_len = 24;
	for (int i = 8; i < 24; i++)
		q.cookie[i] = (uint8_t)(0xc0 + i);
	for (int kind = 0; kind < 4; kind++) {
		if (kind == 0)
			n = dnsmsg_build_error(&q, DNS_RCODE_REFUSED, 18, "x",
			    out, sizeof(out));
		else if (kind == 1)
			n = dnsmsg_build_blocked(&q, rule, sizeof(rule), "c",
			    300, out, sizeof(out), 512);
		else
			n = dnsmsg_finalize(&q, canon, clen, out,
			    sizeof(out), kind == 2 ? 512 : 40);
		/* The OPT is last; its last option is the cookie. */
		CHECK(n > 28);
		CHECK(memcmp(out + n - 28, "\0\12\0\30", 4) == 0);
		CHECK(memcmp(out + n - 24, q.cookie, 24) == 0);
		ldns_pkt *p = NULL;
		CHECK(ldns_wire2pkt(&p, out, n) == LDNS_STATUS_OK);
		ldns_pkt_free(p);
	}
	CHECK(out[2] & 0x02);	/* the last one was truncated */
}

static void
test_read_name_loops(void)
{
	/* A pointer to itself and a forward pointer are both refused. */
	uint8_t pkt[32] = { 0 };
	uint8_t out[DNS_MAX_NAME];
	size_t off = 12;

	pkt[12] = 0xc0;
	pkt[13] = 12;
	CHECK_INT(dnsmsg_read_name(pkt, sizeof(pkt), &off, out), -1);
	pkt[13] = 20;
	off = 12;
	CHECK_INT(dnsmsg_read_name(pkt, sizeof(pkt), &off, out), -1);
	/* A backward pointer to "\1a\0" works. */
	pkt[2] = 1;
	pkt[3] = 'A';
	pkt[4] = 0;
	pkt[13] = 2;
	off = 12;
	CHECK_INT(dnsmsg_read_name(pkt, sizeof(pkt), &off, out), 3);
	CHECK_INT(off, 14);
	CHECK(out[1] == 'a');
}

static void
test_finalize(void)
{
	const char *an[] = { "x.example. 300 IN A 192.0.2.1", NULL };
	uint8_t canon[4096], qbuf[512], out[4200];
	struct dns_reply r;
	struct dns_query q;
	size_t len = testpkt_reply("x.example.", LDNS_RR_TYPE_A,
	    LDNS_RCODE_NOERROR, an, NULL, true, canon, sizeof(canon));

	CHECK_INT(dnsmsg_parse_reply(canon, len, &r), 0);
	CHECK(r.opt_start != 0);
	len = dnsmsg_canonicalize(canon, len, &r, 86400);
	size_t qlen = testpkt_query("X.Example.", LDNS_RR_TYPE_A, 31337, false,
	    false, qbuf, sizeof(qbuf));
	CHECK_INT(parse_bytes(qbuf, qlen, &q), DNSMSG_OK);

	size_t n = dnsmsg_finalize(&q, canon, len, out, sizeof(out), 512);
	ldns_pkt *p = NULL;
	CHECK(ldns_wire2pkt(&p, out, n) == LDNS_STATUS_OK);
	if (p) {
		CHECK_INT(ldns_pkt_id(p), 31337);
		CHECK(ldns_pkt_qr(p) && ldns_pkt_ra(p) && !ldns_pkt_tc(p));
		CHECK_INT(ldns_pkt_ancount(p), 1);
		CHECK(ldns_pkt_edns(p) == false);	/* no EDNS asked */
		char *s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(
		    ldns_pkt_question(p), 0)));
		CHECK_STR(s, "X.Example.");		/* case preserved */
		free(s);
		ldns_pkt_free(p);
	}
	/* With EDNS the answer carries OPT; too small a limit truncates. */
	qlen = testpkt_query("x.example.", LDNS_RR_TYPE_A, 5, true, true, qbuf,
	    sizeof(qbuf));
	CHECK_INT(parse_bytes(qbuf, qlen, &q), DNSMSG_OK);
	n = dnsmsg_finalize(&q, canon, len, out, sizeof(out), 512);
	p = NULL;
	CHECK(ldns_wire2pkt(&p, out, n) == LDNS_STATUS_OK);
	if (p) {
		CHECK(ldns_pkt_edns(p));
		CHECK(ldns_pkt_edns_do(p));
		ldns_pkt_free(p);
	}
	n = dnsmsg_finalize(&q, canon, len, out, sizeof(out), 40);
	p = NULL;
	CHECK(ldns_wire2pkt(&p, out, n) == LDNS_STATUS_OK);
	if (p) {
		CHECK(ldns_pkt_tc(p));
		CHECK_INT(ldns_pkt_ancount(p), 0);
		CHECK_INT(ldns_pkt_qdcount(p), 1);
		ldns_pkt_free(p);
	}
}

static void
test_blocked_answer(void)
{
	uint8_t qbuf[512], out[1024];
	struct dns_query q;
	size_t qlen = testpkt_query("WWW.Backpage.com.", LDNS_RR_TYPE_A, 99,
	    true, false, qbuf, sizeof(qbuf));

	CHECK_INT(parse_bytes(qbuf, qlen, &q), DNSMSG_OK);
	size_t rule_len;
	const uint8_t *rule = dnsmsg_name_suffix(q.lname, q.qname_len,
	    strlen("backpage.com"), &rule_len);
	CHECK(rule == q.lname + 4);
	CHECK_INT(rule_len, 14);
	/* No suffix of that length: the whole name. */
	CHECK(dnsmsg_name_suffix(q.lname, q.qname_len, 5, &rule_len) == q.lname);
	CHECK_INT(rule_len, q.qname_len);
	size_t n = dnsmsg_build_blocked(&q, rule, 14, "commercial-sex", 300,
	    out, sizeof(out), 512);
	ldns_pkt *p = NULL;
	CHECK(ldns_wire2pkt(&p, out, n) == LDNS_STATUS_OK);
	if (p == NULL)
		return;
	CHECK_INT(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	CHECK_INT(ldns_pkt_id(p), 99);
	CHECK(ldns_pkt_ra(p));
	CHECK_INT(ldns_pkt_nscount(p), 1);
	ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(p), 0);
	CHECK_INT(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
	CHECK_INT(ldns_rr_ttl(soa), 300);
	char *owner = ldns_rdf2str(ldns_rr_owner(soa));
	CHECK_STR(owner, "backpage.com.");
	free(owner);
	/* EDE 15 with the category in its text. */
	ldns_rdf *opts = ldns_pkt_edns_data(p);
	CHECK(opts != NULL);
	if (opts) {
		const uint8_t *d = ldns_rdf_data(opts);
		CHECK_INT(d[0] << 8 | d[1], 15);	/* option code EDE */
		CHECK_INT(d[4] << 8 | d[5], DNS_EDE_BLOCKED);
		size_t tl = (size_t)(d[2] << 8 | d[3]) - 2;
		CHECK(memmem(d + 6, tl, "commercial-sex", 14) != NULL);
	}
	ldns_pkt_free(p);
}

static void
test_reply_walk_rejects(void)
{
	const char *an[] = { "x.example. 300 IN A 192.0.2.1", NULL };
	uint8_t pkt[4096];
	struct dns_reply r;
	size_t len = testpkt_reply("x.example.", LDNS_RR_TYPE_A,
	    LDNS_RCODE_NOERROR, an, NULL, false, pkt, sizeof(pkt));

	CHECK_INT(dnsmsg_parse_reply(pkt, len, &r), 0);
	CHECK_INT(r.min_ttl, 300);
	CHECK_INT(dnsmsg_parse_reply(pkt, len - 3, &r), -1);	/* cut */
	pkt[2] &= 0x7f;						/* not QR */
	CHECK_INT(dnsmsg_parse_reply(pkt, len, &r), -1);
	CHECK_INT(dnsmsg_parse_reply(pkt, 4, &r), -1);
}

static void
test_bare_error(void)
{
	uint8_t pkt[12] = { 0x12, 0x34, 0x80, 0x05 };	/* QR, REFUSED */
	uint16_t id;
	uint8_t rcode;

	CHECK_INT(dnsmsg_parse_bare_error(pkt, sizeof(pkt), &id, &rcode), 0);
	CHECK_INT(id, 0x1234);
	CHECK_INT(rcode, DNS_RCODE_REFUSED);
	pkt[3] = 0x00;				/* NOERROR: not an error */
	CHECK_INT(dnsmsg_parse_bare_error(pkt, sizeof(pkt), &id, &rcode), -1);
	pkt[3] = 0x05;
	pkt[2] = 0x00;				/* a query, not a reply */
	CHECK_INT(dnsmsg_parse_bare_error(pkt, sizeof(pkt), &id, &rcode), -1);
	pkt[2] = 0x80;
	pkt[7] = 1;				/* records after all */
	CHECK_INT(dnsmsg_parse_bare_error(pkt, sizeof(pkt), &id, &rcode), -1);
	CHECK_INT(dnsmsg_parse_bare_error(pkt, 11, &id, &rcode), -1);
}

/* A reply cut after its question (a datagram read only in part): the
 * question alone still parses, the whole reply does not. */
static void
test_reply_question_only(void)
{
	static const char *answer[] = {
		"www.example.org. 300 IN A 192.0.2.1", NULL
	};
	static struct dns_reply r;
	uint8_t buf[512];
	size_t len = testpkt_reply("WWW.example.org.", LDNS_RR_TYPE_A,
	    LDNS_RCODE_NOERROR, answer, NULL, false, buf, sizeof(buf));
	size_t cut = DNS_HEADER_LEN + 17 + 4 + 5;	/* into the answer */

	CHECK(len > cut);
	CHECK_INT(dnsmsg_parse_reply(buf, cut, &r), -1);
	CHECK_INT(dnsmsg_parse_reply_question(buf, cut, &r), 0);
	CHECK_INT(r.id, 4242);
	CHECK_INT(r.qtype, DNS_TYPE_A);
	CHECK_INT(r.qclass, DNS_CLASS_IN);
	CHECK_INT(r.qname_len, 17);
	CHECK(memcmp(r.qname, "\3www\7example\3org", 17) == 0);
	CHECK_INT(r.question_end, DNS_HEADER_LEN + 17 + 4);
	/* Cut inside the question, or not a response: nothing. */
	CHECK_INT(dnsmsg_parse_reply_question(buf, DNS_HEADER_LEN + 20, &r),
	    -1);
	buf[2] &= 0x7f;
	CHECK_INT(dnsmsg_parse_reply_question(buf, cut, &r), -1);
}

/* Names that point into bytes the forwarder rewrites are refused;
 * bytes after the last record are cut. */
static void
test_reply_unsafe_pointers(void)
{
	/* An answer whose owner is c0 00: a pointer into the header. */
	static const uint8_t hdr_ptr[] = {
		0x05, 0x01, 0x81, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x03, 'w', 'w', 'w', 0x07, 'e', 'x', 'a', 'm',
		'p', 'l', 'e', 0x03, 'n', 'e', 't', 0x00, 0x00, 0x01, 0x00,
		0x01, 0xc0, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01,
		0x2c, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x01,
	};
	uint8_t pkt[128];
	struct dns_reply r;

	CHECK_INT(dnsmsg_parse_reply(hdr_ptr, sizeof(hdr_ptr), &r), -1);
	/* The same owner as c0 0c (the question): accepted. */
	memcpy(pkt, hdr_ptr, sizeof(hdr_ptr));
	pkt[34] = 0x0c;
	CHECK_INT(dnsmsg_parse_reply(pkt, sizeof(hdr_ptr), &r), 0);
	/* A pointer forward, into its own record: refused. */
	pkt[34] = 39;
	CHECK_INT(dnsmsg_parse_reply(pkt, sizeof(hdr_ptr), &r), -1);
	/* Three bytes of junk after the records are cut off. */
	pkt[34] = 0x0c;
	memset(pkt + sizeof(hdr_ptr), 0, 3);
	CHECK_INT(dnsmsg_parse_reply(pkt, sizeof(hdr_ptr) + 3, &r), 0);
	CHECK_INT(dnsmsg_canonicalize(pkt, sizeof(hdr_ptr) + 3, &r, 86400),
	    sizeof(hdr_ptr));
}

/* The header flags of an answer out[], as one 16-bit word. */
static unsigned
flags_of(const uint8_t *out)
{
	return (unsigned)(out[2] << 8 | out[3]);
}

#define F_QR	0x8000
#define F_AA	0x0400
#define F_TC	0x0200
#define F_RD	0x0100
#define F_RA	0x0080
#define F_Z	0x0040
#define F_AD	0x0020
#define F_CD	0x0010

/*
 * An unknown opcode (15, as genreport's "opcode" and "opcodeflg" tests
 * send it) and NOTIFY get NOTIMP with the opcode and RD echoed and no
 * RA, AD, CD, AA, TC or Z: those are defined for QUERY only. The header
 * stands alone: another opcode's sections need not be a question.
 */
static void
test_flags_other_opcode(void)
{
	static const uint8_t opcodes[] = { 15, 4 };
	uint8_t buf[512], out[1024];
	struct dns_query q;
	size_t len = testpkt_query("example.org.", LDNS_RR_TYPE_SOA, 77, false,
	    false, buf, sizeof(buf));

	for (size_t i = 0; i < sizeof(opcodes); i++) {
		/* Every flag a query can carry set: RD TC AA Z AD CD. */
		buf[2] = (uint8_t)(opcodes[i] << 3) | 0x07;
		buf[3] = 0x70;
		CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_NOTIMP);
		size_t n = dnsmsg_build_error(&q, DNS_RCODE_NOTIMP, -1, NULL,
		    out, sizeof(out));
		CHECK_INT(n, DNS_HEADER_LEN);
		CHECK_INT(out[0] << 8 | out[1], 77);
		CHECK_INT(flags_of(out), F_QR | opcodes[i] << 11 | F_RD |
		    DNS_RCODE_NOTIMP);
		CHECK_INT(out[4] << 8 | out[5], 0);	/* no question */
		/* Without RD asked, none echoed. */
		buf[2] = (uint8_t)(opcodes[i] << 3);
		CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_NOTIMP);
		dnsmsg_build_error(&q, DNS_RCODE_NOTIMP, -1, NULL, out,
		    sizeof(out));
		CHECK_INT(flags_of(out), F_QR | opcodes[i] << 11 |
		    DNS_RCODE_NOTIMP);
	}
}

/*
 * An answer of our own to a QUERY (FORMERR, SERVFAIL, REFUSED, blocked):
 * RA set, RD and CD as asked, never AD (we vouch for nothing), AA, TC or Z.
 */
static void
test_flags_query_error(void)
{
	uint8_t buf[512], out[1024];
	struct dns_query q;
	size_t len = testpkt_query("example.org.", LDNS_RR_TYPE_A, 78, false,
	    false, buf, sizeof(buf));

	buf[2] |= 0x06;				/* TC, AA asked: ignored */
	buf[3] = 0x70;				/* Z, AD, CD */
	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_OK);
	dnsmsg_build_error(&q, DNS_RCODE_SERVFAIL, -1, NULL, out, sizeof(out));
	CHECK_INT(flags_of(out), F_QR | F_RD | F_RA | F_CD |
	    DNS_RCODE_SERVFAIL);
	dnsmsg_build_blocked(&q, q.lname, q.qname_len, "c", 60, out,
	    sizeof(out), 512);
	CHECK_INT(flags_of(out), F_QR | F_RD | F_RA | F_CD |
	    DNS_RCODE_NXDOMAIN);
	buf[2] &= (uint8_t)~0x01;		/* RD and CD not asked */
	buf[3] = 0;
	CHECK_INT(parse_bytes(buf, len, &q), DNSMSG_OK);
	dnsmsg_build_error(&q, DNS_RCODE_REFUSED, -1, NULL, out, sizeof(out));
	CHECK_INT(flags_of(out), F_QR | F_RA | DNS_RCODE_REFUSED);
}

/*
 * A forwarded answer: RA set; RD and CD as asked; AD as upstream said,
 * but only to a client that set DO or AD (RFC 6840 5.8); upstream's AA
 * and Z are not passed on.
 */
static void
test_flags_forwarded(void)
{
	const char *an[] = { "x.example. 300 IN A 192.0.2.1", NULL };
	uint8_t canon[1024], qbuf[512], out[2048];
	struct dns_reply r;
	struct dns_query q;
	size_t len = testpkt_reply("x.example.", LDNS_RR_TYPE_A,
	    LDNS_RCODE_NOERROR, an, NULL, false, canon, sizeof(canon));
	size_t qlen = testpkt_query("x.example.", LDNS_RR_TYPE_A, 79, false,
	    false, qbuf, sizeof(qbuf));

	canon[2] |= 0x04;			/* AA from upstream */
	canon[3] |= 0x60;			/* Z, AD from upstream */
	CHECK_INT(dnsmsg_parse_reply(canon, len, &r), 0);
	len = dnsmsg_canonicalize(canon, len, &r, 86400);
	/* Plain query: no AD. */
	CHECK_INT(parse_bytes(qbuf, qlen, &q), DNSMSG_OK);
	dnsmsg_finalize(&q, canon, len, out, sizeof(out), 512);
	CHECK_INT(flags_of(out), F_QR | F_RD | F_RA);
	/* AD asked: AD passed on; CD asked: CD echoed. */
	qbuf[3] = 0x30;
	CHECK_INT(parse_bytes(qbuf, qlen, &q), DNSMSG_OK);
	dnsmsg_finalize(&q, canon, len, out, sizeof(out), 512);
	CHECK_INT(flags_of(out), F_QR | F_RD | F_RA | F_AD | F_CD);
	/* Upstream without AD: none, whatever was asked. */
	canon[3] &= (uint8_t)~0x20;
	dnsmsg_finalize(&q, canon, len, out, sizeof(out), 512);
	CHECK_INT(flags_of(out), F_QR | F_RD | F_RA | F_CD);
	/* DO asked (EDNS): AD passed on. */
	canon[3] |= 0x20;
	qlen = testpkt_query("x.example.", LDNS_RR_TYPE_A, 79, true, true,
	    qbuf, sizeof(qbuf));
	CHECK_INT(parse_bytes(qbuf, qlen, &q), DNSMSG_OK);
	dnsmsg_finalize(&q, canon, len, out, sizeof(out), 512);
	CHECK_INT(flags_of(out), F_QR | F_RD | F_RA | F_AD);
}

/* Is text (a name in wire form, lower case) among r's noted names? */
static bool
noted(const uint8_t *pkt, size_t len, const struct dns_reply *r,
    const char *wire)
{
	uint8_t name[DNS_MAX_NAME];
	size_t wlen = strlen(wire) + 1;

	for (size_t i = 0; i < r->nnames; i++) {
		size_t off = r->name_off[i];
		int n = dnsmsg_read_name(pkt, len, &off, name);
		if (n > 0 && (size_t)n == wlen && memcmp(name, wire, wlen) == 0)
			return true;
	}
	return false;
}

/* A CNAME chain of links hops from q.example to end.backpage.test. */
static size_t
chain_reply(int links, uint8_t *pkt, size_t cap)
{
	static char lines[80][160];
	const char *an[82];
	char owner[64] = "q.example.";
	int i;

	for (i = 0; i < links; i++) {
		char target[64];
		if (i == links - 1)
			snprintf(target, sizeof(target), "End.Backpage.test.");
		else
			snprintf(target, sizeof(target), "hop%d.example.", i);
		snprintf(lines[i], sizeof(lines[i]), "%s 300 IN CNAME %s",
		    owner, target);
		an[i] = lines[i];
		snprintf(owner, sizeof(owner), "%s", target);
	}
	snprintf(lines[i], sizeof(lines[i]), "%s 300 IN A 192.0.2.1", owner);
	an[i] = lines[i];
	an[i + 1] = NULL;
	return testpkt_reply("q.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR,
	    an, NULL, false, pkt, cap);
}

/* Every name a client follows is noted, however long the chain; one
 * chain too long to note is flagged, never passed as clean. */
static void
test_reply_names(void)
{
	static uint8_t pkt[16384];
	static struct dns_reply r;
	const char *end = "\3end\10backpage\4test";
	size_t len;

	for (int links = 1; links <= 20; links += links < 9 ? 8 : 11) {
		len = chain_reply(links, pkt, sizeof(pkt));
		CHECK(len > 0);
		CHECK_INT(dnsmsg_parse_reply(pkt, len, &r), 0);
		CHECK(!r.names_overflow);
		CHECK(r.has_alias);
		CHECK(noted(pkt, len, &r, end));
		CHECK(links == 1 || noted(pkt, len, &r, "\4hop0\7example"));
		/* The question's own name is checked by the caller. */
		CHECK(!noted(pkt, len, &r, "\1q\7example"));
	}
	len = chain_reply(DNSMSG_MAX_NAMES + 1, pkt, sizeof(pkt));
	CHECK_INT(dnsmsg_parse_reply(pkt, len, &r), 0);
	CHECK(r.names_overflow);

	/* DNAME: its target, the synthesized CNAME's, the A's owner. */
	const char *dname[] = {
		"example. 300 IN DNAME backpage.test.",
		"q.example. 300 IN CNAME q.backpage.test.",
		"q.backpage.test. 300 IN A 192.0.2.2", NULL };
	len = testpkt_reply("q.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR,
	    dname, NULL, false, pkt, sizeof(pkt));
	CHECK_INT(dnsmsg_parse_reply(pkt, len, &r), 0);
	CHECK(noted(pkt, len, &r, "\10backpage\4test"));
	CHECK(noted(pkt, len, &r, "\1q\10backpage\4test"));
	CHECK(noted(pkt, len, &r, "\7example"));

	/* HTTPS 1 www.backpage.test. ipv4hint=192.0.2.3, and an SVCB and
	 * an SRV with their own targets, in RFC 3597 form. */
	const char *https[] = {
		"q.example. 300 IN TYPE65 \\# 29 0001 037777770862"
		"61636b7061676504746573740000040004c0000203",
		"q.example. 300 IN TYPE64 \\# 15 0001 03737663076578"
		"616d706c6500",
		"q.example. 300 IN SRV 0 0 443 srv.example.", NULL };
	len = testpkt_reply("q.example.", 65, LDNS_RCODE_NOERROR, https,
	    NULL, false, pkt, sizeof(pkt));
	CHECK(len > 0);
	CHECK_INT(dnsmsg_parse_reply(pkt, len, &r), 0);
	CHECK(noted(pkt, len, &r, "\3www\10backpage\4test"));
	CHECK(noted(pkt, len, &r, "\3svc\7example"));
	CHECK(noted(pkt, len, &r, "\3srv\7example"));
	CHECK(!r.has_alias);
	/* An HTTPS record whose TargetName runs past its rdata: refused. */
	https[1] = NULL;
	len = testpkt_reply("q.example.", 65, LDNS_RCODE_NOERROR, https,
	    NULL, false, pkt, sizeof(pkt));
	CHECK_INT(dnsmsg_parse_reply(pkt, len, &r), 0);
	pkt[len - 27] = 0x3f;
	CHECK_INT(dnsmsg_parse_reply(pkt, len, &r), -1);
}

/* A canonical reply built from zone-file lines, for the truncation tests. */
static size_t
canon_of(const char *qname, ldns_rr_type qtype, ldns_pkt_rcode rcode,
    const char **an, const char **ns, const char **ar, uint8_t *buf,
    size_t cap)
{
	struct dns_reply r;
	size_t len = testpkt_reply_full(qname, qtype, rcode, an, ns, ar, false,
	    buf, cap);

	CHECK(len > 0);
	CHECK_INT(dnsmsg_parse_reply(buf, len, &r), 0);
	return dnsmsg_canonicalize(buf, len, &r, 86400);
}

/* Finalize canon for a query (EDNS when edns) with limit; parse it. */
static ldns_pkt *
finalize_for(const char *qname, ldns_rr_type qtype, bool edns,
    const uint8_t *canon, size_t len, size_t limit, size_t *outlen)
{
	uint8_t qbuf[512], out[8192];
	struct dns_query q;
	size_t qlen = testpkt_query(qname, qtype, 7, edns, false, qbuf,
	    sizeof(qbuf));
	ldns_pkt *p = NULL;

	CHECK_INT(parse_bytes(qbuf, qlen, &q), DNSMSG_OK);
	*outlen = dnsmsg_finalize(&q, canon, len, out, sizeof(out), limit);
	CHECK(*outlen > 0 && *outlen <= limit);
	CHECK(ldns_wire2pkt(&p, out, *outlen) == LDNS_STATUS_OK);
	return p;
}

/* How many RRs of section sec have this owner (text, lower case). */
static size_t
count_owner(ldns_rr_list *sec, const char *owner)
{
	size_t n = 0;

	for (size_t i = 0; i < ldns_rr_list_rr_count(sec); i++) {
		char *o = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(sec, i)));
		n += strcmp(o, owner) == 0;
		free(o);
	}
	return n;
}

/*
 * Eight MX records fit 512 bytes; their addresses do not all. Without
 * EDNS the client gets the whole answer and as many whole address RRsets
 * as fit, no TC (RFC 2181 section 9): what NSD sends. Before, it got an
 * empty answer with TC and had to ask again over TCP.
 */
static void
test_truncate_drops_additional_first(void)
{
	const char *an[9], *ar[17];
	char lines[25][96];
	uint8_t canon[8192];
	size_t n;

	for (int i = 0; i < 8; i++) {
		snprintf(lines[i], sizeof(lines[i]), "example.test. 300 IN MX "
		    "%d mail-exchanger-number-%d.example.test.", i, i);
		an[i] = lines[i];
		/* Two addresses each: an RRset is kept whole or not at all. */
		for (int j = 0; j < 2; j++) {
			char *l = lines[8 + 2 * i + j];
			snprintf(l, 96, "mail-exchanger-number-%d.example.test. "
			    "300 IN A 192.0.2.%d", i, 2 * i + j);
			ar[2 * i + j] = l;
		}
	}
	an[8] = NULL;
	ar[16] = NULL;
	size_t len = canon_of("example.test.", LDNS_RR_TYPE_MX,
	    LDNS_RCODE_NOERROR, an, NULL, ar, canon, sizeof(canon));
	CHECK(len > 512);
	ldns_pkt *p = finalize_for("example.test.", LDNS_RR_TYPE_MX, false,
	    canon, len, 512, &n);
	if (p == NULL)
		return;
	CHECK(!ldns_pkt_tc(p));
	CHECK_INT(ldns_pkt_ancount(p), 8);
	CHECK(ldns_pkt_arcount(p) > 0 && ldns_pkt_arcount(p) < 16);
	CHECK_INT(ldns_pkt_arcount(p) % 2, 0);
	for (int i = 0; i < 8; i++) {
		char owner[64];
		snprintf(owner, sizeof(owner),
		    "mail-exchanger-number-%d.example.test.", i);
		size_t c = count_owner(ldns_pkt_additional(p), owner);
		CHECK(c == 0 || c == 2);
	}
	ldns_pkt_free(p);
	/* With EDNS 1232 it all fits, OPT included. */
	p = finalize_for("example.test.", LDNS_RR_TYPE_MX, true, canon, len,
	    1232, &n);
	if (p) {
		CHECK(!ldns_pkt_tc(p));
		CHECK_INT(ldns_pkt_arcount(p), 16);
		CHECK(ldns_pkt_edns(p));
		ldns_pkt_free(p);
	}
}

/* A positive answer's NS RRset in authority is optional: dropped, no TC. */
static void
test_truncate_drops_optional_authority(void)
{
	const char *an[] = { "www.example.test. 300 IN TXT \"short\"", NULL };
	const char *ns[11];
	char lines[10][128];
	uint8_t canon[8192];
	size_t n;

	/* Names that do not compress against each other. */
	for (int i = 0; i < 10; i++) {
		snprintf(lines[i], sizeof(lines[i]), "example.test. 300 IN NS "
		    "a-rather-long-name-server-name.provider-%d.net.", i);
		ns[i] = lines[i];
	}
	ns[10] = NULL;
	size_t len = canon_of("www.example.test.", LDNS_RR_TYPE_TXT,
	    LDNS_RCODE_NOERROR, an, ns, NULL, canon, sizeof(canon));
	CHECK(len > 512);
	ldns_pkt *p = finalize_for("www.example.test.", LDNS_RR_TYPE_TXT,
	    false, canon, len, 512, &n);
	if (p == NULL)
		return;
	CHECK(!ldns_pkt_tc(p));
	CHECK_INT(ldns_pkt_ancount(p), 1);
	CHECK_INT(ldns_pkt_nscount(p), 0);
	ldns_pkt_free(p);
}

/*
 * A negative answer needs its authority records (SOA, NSEC proofs): when
 * they do not fit, TC, and nothing of the authority section half-sent.
 */
static void
test_truncate_needed_authority_sets_tc(void)
{
	const char *ns[] = {
		"example.test. 60 IN SOA ns1.example.test. hostmaster.example.test. 1 2 3 4 60",
		"example.test. 60 IN RRSIG SOA 13 2 60 20300101000000 20200101000000 1234 example.test. AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"a.example.test. 60 IN NSEC c.example.test. A RRSIG NSEC",
		"a.example.test. 60 IN RRSIG NSEC 13 3 60 20300101000000 20200101000000 1234 example.test. AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"example.test. 60 IN NSEC a.example.test. SOA NS RRSIG NSEC DNSKEY",
		"example.test. 60 IN RRSIG NSEC 13 2 60 20300101000000 20200101000000 1234 example.test. AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		NULL
	};
	uint8_t canon[8192];
	size_t n;
	size_t len = canon_of("b.example.test.", LDNS_RR_TYPE_A,
	    LDNS_RCODE_NXDOMAIN, NULL, ns, NULL, canon, sizeof(canon));

	CHECK(len > 300);
	ldns_pkt *p = finalize_for("b.example.test.", LDNS_RR_TYPE_A, false,
	    canon, len, 512, &n);
	if (p) {			/* it fits in 512 */
		CHECK(!ldns_pkt_tc(p));
		CHECK_INT(ldns_pkt_nscount(p), 6);
		ldns_pkt_free(p);
	}
	/* A limit that cuts through the NSEC proofs: TC, whole RRsets. */
	p = finalize_for("b.example.test.", LDNS_RR_TYPE_A, false, canon, len,
	    len - 20, &n);
	if (p) {
		CHECK(ldns_pkt_tc(p));
		CHECK_INT(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
		CHECK_INT(ldns_pkt_nscount(p), 4);	/* the SOA, one NSEC */
		CHECK_INT(count_owner(ldns_pkt_authority(p),
		    "a.example.test."), 2);	/* with its RRSIG */
		ldns_pkt_free(p);
	}
}

/*
 * The answer section does not fit: the RRsets that do are kept (a CNAME
 * chain), then TC, and nothing from the later sections.
 */
static void
test_truncate_answer_sets_tc(void)
{
	const char *an[40];
	char lines[36][160];
	uint8_t canon[16384];
	size_t n;
	int k = 0;

	for (int i = 0; i < 4; i++) {
		snprintf(lines[k], sizeof(lines[k]), "c%d.example.test. 300 IN "
		    "CNAME c%d.example.test.", i, i + 1);
		an[k] = lines[k];
		k++;
	}
	for (int i = 0; i < 30; i++, k++) {
		snprintf(lines[k], sizeof(lines[k]), "c4.example.test. 300 IN "
		    "TXT \"record %02d xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"", i);
		an[k] = lines[k];
	}
	an[k] = NULL;
	const char *ns[] = { "example.test. 300 IN NS ns1.example.test.", NULL };
	size_t len = canon_of("c0.example.test.", LDNS_RR_TYPE_TXT,
	    LDNS_RCODE_NOERROR, an, ns, NULL, canon, sizeof(canon));
	ldns_pkt *p = finalize_for("c0.example.test.", LDNS_RR_TYPE_TXT, true,
	    canon, len, 1232, &n);
	if (p == NULL)
		return;
	CHECK(ldns_pkt_tc(p));
	CHECK_INT(ldns_pkt_ancount(p), 4);	/* the CNAMEs */
	CHECK_INT(ldns_pkt_nscount(p), 0);
	CHECK(ldns_pkt_edns(p));
	ldns_pkt_free(p);
	/* Over TCP (no limit to speak of) all of it. */
	p = finalize_for("c0.example.test.", LDNS_RR_TYPE_TXT, true, canon,
	    len, DNS_MAX_MSG, &n);
	if (p) {
		CHECK(!ldns_pkt_tc(p));
		CHECK_INT(ldns_pkt_ancount(p), 34);
		CHECK_INT(ldns_pkt_nscount(p), 1);
		ldns_pkt_free(p);
	}
}

int
main(void)
{
	RUN(test_valid_query);
	RUN(test_bad_queries);
	RUN(test_edns_checks);
	RUN(test_cookie_option);
	RUN(test_cookie_in_answers);
	RUN(test_read_name_loops);
	RUN(test_finalize);
	RUN(test_blocked_answer);
	RUN(test_reply_walk_rejects);
	RUN(test_bare_error);
	RUN(test_reply_question_only);
	RUN(test_reply_unsafe_pointers);
	RUN(test_flags_other_opcode);
	RUN(test_flags_query_error);
	RUN(test_flags_forwarded);
	RUN(test_reply_names);
	RUN(test_truncate_drops_additional_first);
	RUN(test_truncate_drops_optional_authority);
	RUN(test_truncate_needed_authority_sets_tc);
	RUN(test_truncate_answer_sets_tc);
	UNIT_DONE();
}
