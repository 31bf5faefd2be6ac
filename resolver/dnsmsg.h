/*
 * dnsmsg: DNS wire format on the hot path. Only what the forwarder needs is
 * parsed: the header and question of a client's query (plus its OPT
 * record), and one walk over an upstream reply to find TTLs, the negative
 * TTL, CNAME targets and the OPT record. Answers are assembled here too:
 * error answers, the blocked answer, and the final copy of a stored reply
 * for one client (its ID, its question case, its EDNS, its size limit).
 */
#ifndef DNSWARDEN_DNSMSG_H
#define DNSWARDEN_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN		12
#define DNS_MAX_NAME		255
#define DNS_MAX_MSG		65535
#define DNS_UDP_PLAIN		512	/* RFC 1035 limit without EDNS */
#define DNS_EDNS_SIZE		1232	/* what we advertise and serve at most */

#define DNS_TYPE_A		1
#define DNS_TYPE_NS		2
#define DNS_TYPE_CNAME		5
#define DNS_TYPE_SOA		6
#define DNS_TYPE_AAAA		28
#define DNS_TYPE_OPT		41
#define DNS_TYPE_DNAME		39
#define DNS_TYPE_IXFR		251
#define DNS_TYPE_AXFR		252
#define DNS_CLASS_IN		1

#define DNS_RCODE_NOERROR	0
#define DNS_RCODE_FORMERR	1
#define DNS_RCODE_SERVFAIL	2
#define DNS_RCODE_NXDOMAIN	3
#define DNS_RCODE_NOTIMP	4
#define DNS_RCODE_REFUSED	5
#define DNS_RCODE_BADVERS	16	/* extended: needs OPT */

#define DNS_EDE_BLOCKED		15
#define DNS_COOKIE_MAX		40	/* client (8) and server (8..32) cookie */
#define DNS_EDE_PROHIBITED	18
#define DNS_EDE_NO_REACHABLE_AUTHORITY	22
#define DNS_EDE_NETWORK_ERROR	23

/* A client's query, parsed. Pointers point into the packet given. */
struct dns_query {
	uint16_t	 id;
	uint8_t		 opcode;
	bool		 rd, cd, ad;
	bool		 has_question;	/* qname/qtype/qclass are valid */
	const uint8_t	*qname;		/* as the client spelled it */
	uint8_t		 qname_len;	/* wire length, root label included */
	/*
	 * The first COOKIE option (RFC 7873) as received, 0 if none; the
	 * frontend replaces it with the one the answer carries (client
	 * cookie and our server cookie), which every answer built from q
	 * then includes in its OPT record.
	 */
	uint8_t		 cookie_len;
	uint8_t		 lname[DNS_MAX_NAME];	/* lower-case copy */
	uint16_t	 qtype, qclass;
	bool		 edns;		/* the query carried an OPT record */
	bool		 do_bit;
	uint8_t		 edns_version;
	uint16_t	 udp_size;	/* as the client advertised */
	uint8_t		 cookie[DNS_COOKIE_MAX];	/* cookie_len bytes */
};

enum dnsmsg_verdict {
	DNSMSG_OK,		/* a query to answer */
	DNSMSG_DROP,		/* too short, or a response: say nothing */
	DNSMSG_FORMERR,
	DNSMSG_NOTIMP,		/* opcode other than QUERY, zone transfers */
	DNSMSG_BADVERS,		/* EDNS version other than 0 */
};

/*
 * Parse a query received from a client. Fills q as far as it got (id and
 * opcode whenever the header was there, the question when it parsed) and
 * returns what to do with it. EDNS options that overrun the OPT record,
 * and a COOKIE option of a length RFC 7873 5.2.2 does not allow (other
 * than 8 or 16 to 40), are FORMERR.
 */
enum dnsmsg_verdict dnsmsg_parse_query(const uint8_t *pkt, size_t len,
	    struct dns_query *q);

/* Largest UDP answer this client accepts (512 without EDNS). */
size_t	dnsmsg_udp_limit(const struct dns_query *q);

/*
 * Read the (possibly compressed) name at *off in pkt into out, lower-cased,
 * in wire format. Advances *off past the name as written. Returns the wire
 * length (at most 255), or -1 if the name is malformed or loops.
 */
int	dnsmsg_read_name(const uint8_t *pkt, size_t len, size_t *off,
	    uint8_t out[DNS_MAX_NAME]);

/* Write a wire name as text, lower case, no trailing dot ("." for the
 * root), bytes outside [-_a-z0-9*] as \DDD. out must hold 1024 bytes. */
void	dnsmsg_name_to_text(const uint8_t *name, size_t len, char *out,
	    size_t outlen);

/*
 * The label suffix of the wire name (len bytes) whose text form has
 * text_len characters, e.g. "backpage.com" (12) in www.backpage.com:
 * where a matched blocklist rule sits in the name. Returns a pointer into
 * name and sets *suffix_len; the whole name if no suffix has that length.
 */
const uint8_t *dnsmsg_name_suffix(const uint8_t *name, size_t len,
	    size_t text_len, size_t *suffix_len);

#define DNSMSG_MAX_TTLS		512
#define DNSMSG_MAX_NAMES	64
#define DNS_TYPE_SRV		33
#define DNS_TYPE_SVCB		64
#define DNS_TYPE_HTTPS		65

/* What one walk over an upstream reply found. */
struct dns_reply {
	uint16_t	id;
	uint8_t		rcode;		/* header rcode */
	uint8_t		ext_rcode;	/* upper bits from OPT */
	bool		tc;
	uint16_t	ancount;
	uint8_t		qname[DNS_MAX_NAME];	/* lower case */
	uint8_t		qname_len;
	uint16_t	qtype, qclass;
	size_t		question_end;
	bool		over_tcp;	/* set by the caller: came whole, over
					   TCP (see cache_entry_whole()) */
	size_t		msg_end;	/* end of the last record */
	size_t		opt_start, opt_end;	/* OPT RR span; 0 if none */
	uint32_t	min_ttl;	/* over every RR but OPT; UINT32_MAX if none */
	bool		has_soa;	/* SOA in the authority section */
	uint32_t	neg_ttl;	/* min(SOA TTL, SOA MINIMUM) */
	size_t		nttls;		/* TTL field offsets, every RR but OPT */
	uint16_t	ttl_off[DNSMSG_MAX_TTLS];
	bool		too_many_rrs;	/* more RRs than ttl_off holds */
	/*
	 * The names in the answer section a client may follow, other than
	 * the question's: owner names, CNAME and DNAME targets, and the
	 * targets of SRV, SVCB and HTTPS records. Each is the offset of
	 * its first label (leading compression pointers followed), once
	 * each. Read one with dnsmsg_read_name().
	 */
	size_t		nnames;
	uint16_t	name_off[DNSMSG_MAX_NAMES];
	bool		names_overflow;	/* more names than name_off holds:
					 * the reply cannot be checked */
	bool		has_alias;	/* a CNAME or DNAME in the answer */
};

/*
 * Walk an upstream reply. Returns 0 when it is a well-formed response with
 * exactly one question, -1 otherwise (the reply is then dropped). Names
 * whose compression pointers lead into the header, a TTL or past the OPT
 * record (bytes the forwarder rewrites) make it malformed.
 */
int	dnsmsg_parse_reply(const uint8_t *pkt, size_t len, struct dns_reply *r);

/*
 * Only the header and the question of an upstream reply, the part
 * dnsmsg_parse_reply() checks first (and all it checks when TC is set):
 * for a datagram that was cut short or whose try is gone. Sets id, rcode,
 * tc, qname, qname_len, qtype, qclass and question_end; 0, or -1 when pkt
 * is not a response with one question.
 */
int	dnsmsg_parse_reply_question(const uint8_t *pkt, size_t len,
	    struct dns_reply *r);

/*
 * An error reply without a question (some servers answer FORMERR, NOTIMP
 * or REFUSED so): returns 0 and sets *id and *rcode when pkt is a header
 * with QR set, no records and one of those rcodes; -1 otherwise.
 */
int	dnsmsg_parse_bare_error(const uint8_t *pkt, size_t len, uint16_t *id,
	    uint8_t *rcode);

/*
 * Build the query sent upstream into buf (at least 512 bytes): RD set, CD
 * as the client's, the lower-case question, an OPT record advertising
 * DNS_EDNS_SIZE with DO as the client's. Returns its length.
 */
size_t	dnsmsg_build_query(uint8_t *buf, uint16_t id, const uint8_t *lname,
	    size_t lname_len, uint16_t qtype, uint16_t qclass, bool do_bit,
	    bool cd);

/*
 * Rewrite an upstream reply into the form kept in the cache: the OPT record
 * removed, every TTL capped at max_ttl. Returns the new length (the packet
 * is changed in place). r must describe pkt and is updated.
 */
size_t	dnsmsg_canonicalize(uint8_t *pkt, size_t len, struct dns_reply *r,
	    uint32_t max_ttl);

/*
 * Build the answer for one client from a canonical reply: the client's ID,
 * flags and question spelling, OPT when the client sent EDNS. A reply over
 * limit is cut after its last whole RRset that fits, optional records
 * first (additional, then a positive answer's NS records); TC is set only
 * when answer records, or authority records a negative answer or a
 * referral needs, are left out (RFC 2181 section 9). Returns the length
 * written to out (cap must be at least len + 64), or 0 if the reply does
 * not fit the query.
 */
size_t	dnsmsg_finalize(const struct dns_query *q, const uint8_t *canon,
	    size_t len, uint8_t *out, size_t cap, size_t limit);

/*
 * An answer without records: the client's question (when it had one) and
 * rcode; with OPT (and an Extended DNS Error when ede_code >= 0) if the
 * client sent EDNS. Returns the length (out must hold 512 + 300 bytes).
 */
size_t	dnsmsg_build_error(const struct dns_query *q, uint8_t rcode,
	    int ede_code, const char *ede_text, uint8_t *out, size_t cap);

/*
 * The blocked answer: NXDOMAIN, question echoed, RA, an SOA for the
 * blocked name (owner = rule, TTL and MINIMUM = ttl) in the authority
 * section, and EDE 15 with a text naming the category when the client sent
 * EDNS. rule is the matched entry in wire format. An answer larger than
 * limit (very long names over UDP) is sent truncated, with TC, so the
 * client asks again over TCP. Returns the length.
 */
size_t	dnsmsg_build_blocked(const struct dns_query *q, const uint8_t *rule,
	    size_t rule_len, const char *category, uint32_t ttl, uint8_t *out,
	    size_t cap, size_t limit);

/*
 * The lower-case wire form of a plain text name ("www.Example.com", a
 * trailing dot optional; no escapes) into out (cap bytes). Returns its
 * length with the root label, or -1 if it is no valid name.
 */
int	dnsmsg_name_from_text(const char *text, uint8_t *out, size_t cap);

#endif
