/* Unit tests for the answer cache: TTLs, negative answers, eviction, keys. */
#include <stdio.h>

#include "cache.h"
#include "dnsmsg.h"
#include "testpkt.h"
#include "unit.h"

static const struct cache_limits lim = {
	.max_entries = 3, .max_bytes = 1 << 20, .max_ttl = 86400,
	.max_negative_ttl = 3600,
};

/* Parse and canonicalize a reply built by ldns; returns its length. */
static size_t
reply(const char *qname, ldns_rr_type t, ldns_pkt_rcode rc, const char **an,
    const char **ns, uint8_t *buf, struct dns_reply *r, uint32_t max_ttl)
{
	size_t len = testpkt_reply(qname, t, rc, an, ns, true, buf, 4096);

	if (len == 0 || dnsmsg_parse_reply(buf, len, r) != 0)
		return 0;
	return dnsmsg_canonicalize(buf, len, r, max_ttl);
}

static uint32_t
first_ttl(const uint8_t *pkt, size_t len)
{
	ldns_pkt *p = NULL;
	uint32_t ttl = 0;

	if (ldns_wire2pkt(&p, pkt, len) != LDNS_STATUS_OK)
		return 0;
	if (ldns_pkt_ancount(p) > 0)
		ttl = ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 0));
	else if (ldns_pkt_nscount(p) > 0)
		ttl = ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_authority(p), 0));
	ldns_pkt_free(p);
	return ttl;
}

static void
key_for(struct cache *c, struct cache_key *k, const char *name, uint16_t t,
    bool do_bit, bool cd)
{
	uint8_t wire[DNS_MAX_NAME];
	ldns_rdf *d = ldns_dname_new_frm_str(name);
	size_t n = ldns_rdf_size(d);

	memcpy(wire, ldns_rdf_data(d), n);
	for (size_t i = 0; i < n; i++)
		if (wire[i] >= 'A' && wire[i] <= 'Z')
			wire[i] += 32;
	ldns_rdf_deep_free(d);
	cache_key_make(c, k, wire, n, t, DNS_CLASS_IN, do_bit, cd);
}

static void
test_ttl_decrement(void)
{
	struct cache *c = cache_new(&lim, 1);
	const char *an[] = { "a.example. 300 IN A 192.0.2.1", NULL };
	uint8_t buf[4096], out[4096];
	struct dns_reply r;
	struct cache_key k;
	size_t len = reply("a.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an,
	    NULL, buf, &r, 86400);

	CHECK(len > 0);
	CHECK(r.opt_start == 0);	/* OPT removed before storing */
	key_for(c, &k, "a.example.", DNS_TYPE_A, false, false);
	CHECK(cache_insert(c, &k, buf, len, &r, 10000, 0));
	const struct cache_entry *e = cache_lookup(c, &k, 10000);
	CHECK(e != NULL);
	CHECK_INT(first_ttl(out, cache_entry_copy(e, 10000, out, sizeof(out))),
	    300);
	e = cache_lookup(c, &k, 10000 + 42500);
	CHECK(e != NULL);
	CHECK_INT(first_ttl(out, cache_entry_copy(e, 52500, out, sizeof(out))),
	    258);
	/* Gone once the TTL has run out. */
	CHECK(cache_lookup(c, &k, 10000 + 300000) == NULL);
	CHECK_INT(cache_count(c), 0);
	cache_free(c);
}

static void
test_max_ttl_and_zero(void)
{
	struct cache *c = cache_new(&lim, 1);
	const char *big[] = { "b.example. 604800 IN A 192.0.2.2", NULL };
	const char *zero[] = { "z.example. 0 IN A 192.0.2.3", NULL };
	uint8_t buf[4096], out[4096];
	struct dns_reply r;
	struct cache_key k;
	size_t len = reply("b.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR,
	    big, NULL, buf, &r, 86400);

	key_for(c, &k, "b.example.", DNS_TYPE_A, false, false);
	CHECK(cache_insert(c, &k, buf, len, &r, 0, 0));
	const struct cache_entry *e = cache_lookup(c, &k, 0);
	CHECK(e != NULL);
	if (e)
		CHECK_INT(first_ttl(out, cache_entry_copy(e, 0, out, 4096)),
		    86400);
	CHECK(cache_lookup(c, &k, 86400 * 1000ULL) == NULL);

	len = reply("z.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, zero,
	    NULL, buf, &r, 86400);
	key_for(c, &k, "z.example.", DNS_TYPE_A, false, false);
	CHECK(!cache_insert(c, &k, buf, len, &r, 0, 0));	/* TTL 0: not kept */
	CHECK(cache_lookup(c, &k, 0) == NULL);
	cache_free(c);
}

static void
test_negative(void)
{
	struct cache *c = cache_new(&lim, 1);
	const char *soa[] = { "example. 900 IN SOA ns.example. h.example. "
	    "1 3600 600 86400 60", NULL };
	uint8_t buf[4096], out[4096];
	struct dns_reply r;
	struct cache_key k;
	size_t len = reply("nx.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN,
	    NULL, soa, buf, &r, 86400);

	CHECK(r.has_soa);
	CHECK_INT(r.neg_ttl, 60);	/* min(SOA TTL, MINIMUM), RFC 2308 */
	key_for(c, &k, "nx.example.", DNS_TYPE_A, false, false);
	CHECK(cache_insert(c, &k, buf, len, &r, 0, 0));
	const struct cache_entry *e = cache_lookup(c, &k, 59000);
	CHECK(e != NULL);
	if (e) {
		size_t n = cache_entry_copy(e, 59000, out, sizeof(out));
		CHECK_INT(out[3] & 0xf, DNS_RCODE_NXDOMAIN);
		CHECK_INT(first_ttl(out, n), 900 - 59);
	}
	CHECK(cache_lookup(c, &k, 60000) == NULL);

	/* NODATA is negative too; without an SOA nothing is kept. */
	len = reply("nodata.example.", LDNS_RR_TYPE_AAAA, LDNS_RCODE_NOERROR,
	    NULL, soa, buf, &r, 86400);
	key_for(c, &k, "nodata.example.", DNS_TYPE_AAAA, false, false);
	CHECK(cache_insert(c, &k, buf, len, &r, 0, 0));
	len = reply("nosoa.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NXDOMAIN,
	    NULL, NULL, buf, &r, 86400);
	key_for(c, &k, "nosoa.example.", DNS_TYPE_A, false, false);
	CHECK(!cache_insert(c, &k, buf, len, &r, 0, 0));
	len = reply("sf.example.", LDNS_RR_TYPE_A, LDNS_RCODE_SERVFAIL,
	    NULL, soa, buf, &r, 86400);
	key_for(c, &k, "sf.example.", DNS_TYPE_A, false, false);
	CHECK(!cache_insert(c, &k, buf, len, &r, 0, 0));
	cache_free(c);
}

static void
test_eviction_lru(void)
{
	struct cache *c = cache_new(&lim, 1);
	const char *names[] = { "e1.example.", "e2.example.", "e3.example.",
	    "e4.example." };
	struct cache_key k[4];
	uint8_t buf[4096];
	struct dns_reply r;

	for (int i = 0; i < 4; i++) {
		char rr[128];
		snprintf(rr, sizeof(rr), "%s 300 IN A 192.0.2.%d", names[i], i);
		const char *an[] = { rr, NULL };
		size_t len = reply(names[i], LDNS_RR_TYPE_A,
		    LDNS_RCODE_NOERROR, an, NULL, buf, &r, 86400);
		key_for(c, &k[i], names[i], DNS_TYPE_A, false, false);
		CHECK(cache_insert(c, &k[i], buf, len, &r, 0, 0));
		if (i == 2)	/* touch e1: e2 becomes the oldest */
			CHECK(cache_lookup(c, &k[0], 0) != NULL);
	}
	CHECK_INT(cache_count(c), 3);
	CHECK_INT(cache_evictions(c), 1);
	CHECK(cache_lookup(c, &k[0], 0) != NULL);
	CHECK(cache_lookup(c, &k[1], 0) == NULL);	/* least recently used */
	CHECK(cache_lookup(c, &k[2], 0) != NULL);
	CHECK(cache_lookup(c, &k[3], 0) != NULL);

	/* A byte limit evicts too. */
	struct cache_limits small = lim;
	small.max_bytes = cache_bytes(c) / 2;
	cache_set_limits(c, &small);
	CHECK(cache_count(c) < 3);
	CHECK(cache_bytes(c) <= small.max_bytes);
	cache_free(c);
}

static void
test_key_bits(void)
{
	struct cache *c = cache_new(&lim, 1);
	const char *an[] = { "k.example. 300 IN A 192.0.2.9", NULL };
	uint8_t buf[4096];
	struct dns_reply r;
	struct cache_key plain, with_do, with_cd, upper, aaaa;
	size_t len = reply("k.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an,
	    NULL, buf, &r, 86400);

	key_for(c, &plain, "k.example.", DNS_TYPE_A, false, false);
	key_for(c, &with_do, "k.example.", DNS_TYPE_A, true, false);
	key_for(c, &with_cd, "k.example.", DNS_TYPE_A, false, true);
	key_for(c, &upper, "K.EXAMPLE.", DNS_TYPE_A, false, false);
	key_for(c, &aaaa, "k.example.", DNS_TYPE_AAAA, false, false);
	CHECK(cache_insert(c, &plain, buf, len, &r, 0, 0));
	CHECK(cache_lookup(c, &with_do, 0) == NULL);
	CHECK(cache_lookup(c, &with_cd, 0) == NULL);
	CHECK(cache_lookup(c, &aaaa, 0) == NULL);
	CHECK(cache_lookup(c, &upper, 0) != NULL);	/* case does not count */
	CHECK(cache_lookup(c, &plain, 0) != NULL);
	cache_free(c);
}

static void
test_name_offsets(void)
{
	struct cache *c = cache_new(&lim, 1);
	const char *an[] = { "w.example. 300 IN CNAME x.Target.example.",
	    "x.target.example. 300 IN A 192.0.2.7", NULL };
	uint8_t buf[4096], copy[4096], name[DNS_MAX_NAME];
	struct dns_reply r;
	struct cache_key k;
	size_t len = reply("w.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an,
	    NULL, buf, &r, 86400);

	/* The owner of the CNAME is the question's; the A's is the target. */
	CHECK_INT(r.nnames, 1);
	key_for(c, &k, "w.example.", DNS_TYPE_A, false, false);
	CHECK(cache_insert(c, &k, buf, len, &r, 0, 0));
	const struct cache_entry *e = cache_lookup(c, &k, 0);
	CHECK(e != NULL);
	if (e) {
		CHECK_INT(cache_entry_nnames(e), 1);
		size_t n = cache_entry_copy(e, 0, copy, sizeof(copy));
		size_t off = cache_entry_name_off(e, 0);
		CHECK(n == len);
		CHECK_INT(dnsmsg_read_name(copy, n, &off, name), 18);
		CHECK(memcmp(name, "\1x\6target\7example", 18) == 0);
	}
	/* A reply whose names were not all noted is not kept. */
	r.names_overflow = true;
	key_for(c, &k, "v.example.", DNS_TYPE_A, false, false);
	CHECK(!cache_insert(c, &k, buf, len, &r, 0, 0));
	cache_free(c);
}

static void
test_tag(void)
{
	struct cache *c = cache_new(&lim, 1);
	const char *an[] = { "t.example. 300 IN A 192.0.2.9", NULL };
	uint8_t buf[4096];
	struct dns_reply r;
	struct cache_key k;
	size_t len = reply("t.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an,
	    NULL, buf, &r, 86400);

	key_for(c, &k, "t.example.", DNS_TYPE_A, false, false);
	CHECK(cache_insert(c, &k, buf, len, &r, 0, 7));
	struct cache_entry *e = cache_lookup(c, &k, 0);
	CHECK(e != NULL);
	if (e) {
		CHECK_INT(cache_entry_tag(e), 7);
		cache_entry_set_tag(e, 8);
	}
	e = cache_lookup(c, &k, 0);
	CHECK(e != NULL && cache_entry_tag(e) == 8);
	cache_free(c);
}

/* With many entries, hits near the front do not reorder; eviction still
 * takes the least recently used of the older ones. */
static void
test_lru_large(void)
{
	struct cache_limits big = lim;
	struct cache *c;
	struct cache_key k[64];
	uint8_t buf[4096];
	struct dns_reply r;

	big.max_entries = 64;
	c = cache_new(&big, 1);
	for (int i = 0; i < 64; i++) {
		char name[32], rr[96];
		snprintf(name, sizeof(name), "n%d.example.", i);
		snprintf(rr, sizeof(rr), "%s 300 IN A 192.0.2.1", name);
		const char *an[] = { rr, NULL };
		size_t len = reply(name, LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an,
		    NULL, buf, &r, 86400);
		key_for(c, &k[i], name, DNS_TYPE_A, false, false);
		CHECK(cache_insert(c, &k[i], buf, len, &r, 0, 0));
	}
	/* n0 is the oldest; a hit saves it, so n1 goes first. */
	CHECK(cache_lookup(c, &k[0], 0) != NULL);
	char rr[] = "x.example. 300 IN A 192.0.2.1";
	const char *an[] = { rr, NULL };
	struct cache_key kx;
	size_t len = reply("x.example.", LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an,
	    NULL, buf, &r, 86400);
	key_for(c, &kx, "x.example.", DNS_TYPE_A, false, false);
	CHECK(cache_insert(c, &kx, buf, len, &r, 0, 0));
	CHECK(cache_lookup(c, &k[0], 0) != NULL);
	CHECK(cache_lookup(c, &k[1], 0) == NULL);
	CHECK_INT(cache_count(c), 64);
	cache_free(c);
}

/* Store an A answer for name; the key goes to k. */
static void
insert_a(struct cache *c, struct cache_key *k, const char *name)
{
	char rr[128];
	uint8_t buf[4096];
	struct dns_reply r;

	snprintf(rr, sizeof(rr), "%s 300 IN A 192.0.2.1", name);
	const char *an[] = { rr, NULL };
	size_t len = reply(name, LDNS_RR_TYPE_A, LDNS_RCODE_NOERROR, an, NULL,
	    buf, &r, 86400);
	key_for(c, k, name, DNS_TYPE_A, false, false);
	CHECK(cache_insert(c, k, buf, len, &r, 0, 0));
}

/* "ctl flush NAME" takes NAME and the names below it, on label
 * boundaries; without a name everything goes. */
static void
test_flush(void)
{
	struct cache_limits big = lim;
	struct cache *c;
	struct cache_key k[5];
	static const uint8_t example[] = "\7example\0";
	static const uint8_t sub[] = "\3sub\7example\0";

	big.max_entries = 16;
	c = cache_new(&big, 1);
	insert_a(c, &k[0], "example.");
	insert_a(c, &k[1], "www.example.");
	insert_a(c, &k[2], "a.sub.example.");
	insert_a(c, &k[3], "notexample.");
	insert_a(c, &k[4], "example.org.");
	CHECK_INT(cache_flush(c, sub, sizeof(sub) - 1), 1);
	CHECK(cache_lookup(c, &k[2], 0) == NULL);
	CHECK(cache_lookup(c, &k[1], 0) != NULL);
	CHECK_INT(cache_flush(c, example, sizeof(example) - 1), 2);
	CHECK(cache_lookup(c, &k[0], 0) == NULL);
	CHECK(cache_lookup(c, &k[1], 0) == NULL);
	CHECK(cache_lookup(c, &k[3], 0) != NULL);
	CHECK(cache_lookup(c, &k[4], 0) != NULL);
	CHECK_INT(cache_count(c), 2);
	CHECK_INT(cache_flush(c, NULL, 0), 2);
	CHECK_INT(cache_count(c), 0);
	CHECK_INT(cache_bytes(c), 0);
	cache_free(c);
}

int
main(void)
{
	RUN(test_ttl_decrement);
	RUN(test_max_ttl_and_zero);
	RUN(test_negative);
	RUN(test_eviction_lru);
	RUN(test_key_bits);
	RUN(test_name_offsets);
	RUN(test_tag);
	RUN(test_lru_large);
	RUN(test_flush);
	UNIT_DONE();
}
