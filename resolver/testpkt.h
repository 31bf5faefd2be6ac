/*
 * testpkt: building test messages with ldns, for the unit tests of the
 * wire-format code (an independent implementation to check ours against).
 */
#ifndef DNSWARDEN_TESTPKT_H
#define DNSWARDEN_TESTPKT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

/* p in wire form into out (0 if it does not fit); frees p. */
static inline size_t
testpkt_wire(ldns_pkt *p, uint8_t *out, size_t cap)
{
	uint8_t *wire = NULL;
	size_t len = 0;

	if (ldns_pkt2wire(&wire, p, &len) != LDNS_STATUS_OK || len > cap)
		len = 0;
	else
		memcpy(out, wire, len);
	free(wire);
	ldns_pkt_free(p);
	return len;
}

/* The records in lines (zone-file lines, NULL-terminated; NULL: none)
 * into section of p. */
static inline void
testpkt_push(ldns_pkt *p, ldns_pkt_section section, const char **lines)
{
	for (int i = 0; lines != NULL && lines[i] != NULL; i++) {
		ldns_rr *rr = NULL;
		if (ldns_rr_new_frm_str(&rr, lines[i], 0, NULL, NULL) ==
		    LDNS_STATUS_OK)
			ldns_pkt_push_rr(p, section, rr);
	}
}

/*
 * A reply to qname/qtype with rcode, answer and authority records given as
 * zone-file lines (NULL-terminated arrays, either may be NULL), EDNS when
 * edns. Writes the wire form into out; returns its length.
 */
static inline size_t testpkt_reply_full(const char *, ldns_rr_type,
    ldns_pkt_rcode, const char **, const char **, const char **, bool,
    uint8_t *, size_t);

static inline size_t
testpkt_reply(const char *qname, ldns_rr_type qtype, ldns_pkt_rcode rcode,
    const char **answer, const char **authority, bool edns, uint8_t *out,
    size_t cap)
{
	return testpkt_reply_full(qname, qtype, rcode, answer, authority, NULL,
	    edns, out, cap);
}

/* testpkt_reply() with an additional section too. */
static inline size_t
testpkt_reply_full(const char *qname, ldns_rr_type qtype, ldns_pkt_rcode rcode,
    const char **answer, const char **authority, const char **additional,
    bool edns, uint8_t *out, size_t cap)
{
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str(qname), qtype,
	    LDNS_RR_CLASS_IN, LDNS_RD);

	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_id(p, 4242);
	ldns_pkt_set_rcode(p, rcode);
	testpkt_push(p, LDNS_SECTION_ANSWER, answer);
	testpkt_push(p, LDNS_SECTION_AUTHORITY, authority);
	testpkt_push(p, LDNS_SECTION_ADDITIONAL, additional);
	if (edns)
		ldns_pkt_set_edns_udp_size(p, 1232);
	return testpkt_wire(p, out, cap);
}

/* A query for qname/qtype with id; EDNS (udp size, DO) when edns. */
static inline size_t
testpkt_query(const char *qname, ldns_rr_type qtype, uint16_t id, bool edns,
    bool do_bit, uint8_t *out, size_t cap)
{
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str(qname), qtype,
	    LDNS_RR_CLASS_IN, LDNS_RD);

	ldns_pkt_set_id(p, id);
	if (edns) {
		ldns_pkt_set_edns_udp_size(p, 4096);
		ldns_pkt_set_edns_do(p, do_bit);
	}
	return testpkt_wire(p, out, cap);
}

#endif
