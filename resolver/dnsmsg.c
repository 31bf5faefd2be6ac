/* dnsmsg: see dnsmsg.h. */
#include <stdio.h>
#include <string.h>

#include "dnsmsg.h"

#define FLAG_QR		0x8000
#define FLAG_AA		0x0400
#define FLAG_TC		0x0200
#define FLAG_RD		0x0100
#define FLAG_RA		0x0080
#define FLAG_AD		0x0020
#define FLAG_CD		0x0010
#define OPT_DO		0x8000
#define EDNS_OPT_EDE	15
#define EDNS_OPT_COOKIE	10

static inline uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static inline void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static inline void
wr32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static inline uint8_t
lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/*
 * An uncompressed name at off (questions never use compression in
 * practice, and refusing it keeps the client's spelling a simple span).
 */
static int
read_plain_name(const uint8_t *pkt, size_t len, size_t off, uint8_t *lname)
{
	size_t n = 0;

	for (;;) {
		if (off >= len)
			return -1;
		uint8_t l = pkt[off];
		if (l > 63 || n + 1 + l > DNS_MAX_NAME || off + 1 + l > len)
			return -1;
		lname[n++] = l;
		off++;
		for (uint8_t i = 0; i < l; i++)
			lname[n++] = lower(pkt[off++]);
		if (l == 0)
			return (int)n;
	}
}

/*
 * Is a name segment reached through a compression pointer safe to read in
 * a reply we keep? The forwarder rewrites the header (ID, flags, counts),
 * every TTL, and drops the OPT record (moving what follows it), so a name
 * that points into any of those would change under us.
 */
static bool
reply_target_ok(const struct dns_reply *r, size_t from, size_t to)
{
	if (from < DNS_HEADER_LEN || (r->opt_start != 0 && to > r->opt_start))
		return false;
	for (size_t i = 0; i < r->nttls; i++)
		if (from < (size_t)r->ttl_off[i] + 4 && r->ttl_off[i] < to)
			return false;
	return true;
}

/* dnsmsg_read_name(), checking pointer targets against r when given. */
static int
read_name(const uint8_t *pkt, size_t len, size_t *off,
    uint8_t out[DNS_MAX_NAME], const struct dns_reply *r)
{
	size_t pos = *off, n = 0, end = 0, start = *off;
	int jumps = 0;

	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t l = pkt[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len)
				return -1;
			/* A pointer reached through a pointer is read from
			 * there too: the same rules as for a label. */
			if (r != NULL && jumps > 0 &&
			    !reply_target_ok(r, pos, pos + 2))
				return -1;
			if (++jumps > 64)
				return -1;
			if (end == 0)
				end = pos + 2;
			size_t target = (size_t)(l & 0x3f) << 8 | pkt[pos + 1];
			/* Pointers must go backwards; that alone rules out loops. */
			if (target >= pos)
				return -1;
			pos = target;
			continue;
		}
		if (l > 63 || n + 1 + l > DNS_MAX_NAME || pos + 1 + l > len)
			return -1;
		/* What a pointer leads to must lie wholly before this name
		 * (not run on into its own record) and outside what we
		 * rewrite. */
		if (r != NULL && jumps > 0 && (pos + 1 + l > start ||
		    !reply_target_ok(r, pos, pos + 1 + l)))
			return -1;
		out[n++] = l;
		pos++;
		for (uint8_t i = 0; i < l; i++)
			out[n++] = lower(pkt[pos++]);
		if (l == 0)
			break;
	}
	*off = end ? end : pos;
	return (int)n;
}

int
dnsmsg_read_name(const uint8_t *pkt, size_t len, size_t *off,
    uint8_t out[DNS_MAX_NAME])
{
	return read_name(pkt, len, off, out, NULL);
}

void
dnsmsg_name_to_text(const uint8_t *name, size_t len, char *out, size_t outlen)
{
	size_t o = 0, i = 0;

	if (len <= 1 || name[0] == 0) {
		snprintf(out, outlen, ".");
		return;
	}
	while (i < len && name[i] != 0 && o + 5 < outlen) {
		uint8_t l = name[i++];
		if (o > 0)
			out[o++] = '.';
		for (uint8_t j = 0; j < l && i < len && o + 5 < outlen; j++) {
			uint8_t c = lower(name[i++]);
			if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			    c == '-' || c == '_' || c == '*')
				out[o++] = (char)c;
			else
				o += snprintf(out + o, outlen - o, "\\%03u", c);
		}
	}
	out[o] = '\0';
}

const uint8_t *
dnsmsg_name_suffix(const uint8_t *name, size_t len, size_t text_len,
    size_t *suffix_len)
{
	size_t want = text_len + 2, off = 0;	/* first length byte, root */

	while (off < len && name[off] != 0) {
		if (len - off == want) {
			*suffix_len = want;
			return name + off;
		}
		off += 1 + name[off];
	}
	*suffix_len = len;
	return name;
}

/* Skip one RR at *off (name, fixed part, rdata); fills its fields. */
struct rr_view {
	size_t		start;		/* first byte of the owner name */
	size_t		fixed;		/* type, class, ttl, rdlength */
	uint16_t	type, class;
	uint32_t	ttl;
	size_t		rdata;		/* first rdata byte */
	uint16_t	rdlen;
};

static int
rr_next(const uint8_t *pkt, size_t len, size_t *off, struct rr_view *rr,
    const struct dns_reply *r)
{
	uint8_t scratch[DNS_MAX_NAME];

	rr->start = *off;
	if (read_name(pkt, len, off, scratch, r) < 0)
		return -1;
	if (*off + 10 > len)
		return -1;
	rr->fixed = *off;
	rr->type = rd16(pkt + *off);
	rr->class = rd16(pkt + *off + 2);
	rr->ttl = rd32(pkt + *off + 4);
	rr->rdlen = rd16(pkt + *off + 8);
	rr->rdata = *off + 10;
	if (rr->rdata + rr->rdlen > len)
		return -1;
	*off = rr->rdata + rr->rdlen;
	return 0;
}

static enum dnsmsg_verdict
parse_opt(const uint8_t *pkt, const struct rr_view *rr, struct dns_query *q)
{
	if (q->edns)
		return DNSMSG_FORMERR;	/* RFC 6891: more than one OPT */
	if (pkt[rr->start] != 0)
		return DNSMSG_FORMERR;	/* OPT owner must be the root */
	q->edns = true;
	q->udp_size = rr->class;
	q->edns_version = (rr->ttl >> 16) & 0xff;
	q->do_bit = (rr->ttl & OPT_DO) != 0;
	if (q->edns_version != 0)
		return DNSMSG_BADVERS;	/* its options may mean other things */

	size_t o = rr->rdata, end = rr->rdata + rr->rdlen;
	while (o < end) {
		if (end - o < 4)
			return DNSMSG_FORMERR;
		uint16_t code = rd16(pkt + o), olen = rd16(pkt + o + 2);
		o += 4;
		if (olen > end - o)
			return DNSMSG_FORMERR;
		/* Only the first COOKIE counts (RFC 7873 5.2). */
		if (code == EDNS_OPT_COOKIE && q->cookie_len == 0) {
			if (olen != 8 && (olen < 16 || olen > DNS_COOKIE_MAX))
				return DNSMSG_FORMERR;
			memcpy(q->cookie, pkt + o, olen);
			q->cookie_len = (uint8_t)olen;
		}
		o += olen;
	}
	return DNSMSG_OK;
}

enum dnsmsg_verdict
dnsmsg_parse_query(const uint8_t *pkt, size_t len, struct dns_query *q)
{
	memset(q, 0, offsetof(struct dns_query, lname));
	q->edns = false;
	q->do_bit = false;
	q->edns_version = 0;
	q->udp_size = 0;
	if (len < DNS_HEADER_LEN)
		return DNSMSG_DROP;
	uint16_t flags = rd16(pkt + 2);
	q->id = rd16(pkt);
	q->opcode = (flags >> 11) & 0xf;
	q->rd = (flags & FLAG_RD) != 0;
	q->cd = (flags & FLAG_CD) != 0;
	q->ad = (flags & FLAG_AD) != 0;
	if (flags & FLAG_QR)
		return DNSMSG_DROP;	/* never answer an answer: no loops */
	/*
	 * Only QUERY is served. Another opcode's sections may not even be
	 * laid out as a question: the answer is its header alone.
	 */
	if (q->opcode != 0)
		return DNSMSG_NOTIMP;
	if (rd16(pkt + 4) != 1 || rd16(pkt + 6) != 0 || rd16(pkt + 8) != 0)
		return DNSMSG_FORMERR;

	int n = read_plain_name(pkt, len, DNS_HEADER_LEN, q->lname);
	if (n < 0 || DNS_HEADER_LEN + (size_t)n + 4 > len)
		return DNSMSG_FORMERR;
	q->qname = pkt + DNS_HEADER_LEN;
	q->qname_len = (uint8_t)n;
	q->qtype = rd16(pkt + DNS_HEADER_LEN + n);
	q->qclass = rd16(pkt + DNS_HEADER_LEN + n + 2);
	q->has_question = true;

	size_t off = DNS_HEADER_LEN + (size_t)n + 4;
	uint16_t arcount = rd16(pkt + 10);
	for (uint16_t i = 0; i < arcount; i++) {
		struct rr_view rr;
		if (rr_next(pkt, len, &off, &rr, NULL) < 0)
			return DNSMSG_FORMERR;
		if (rr.type == DNS_TYPE_OPT) {
			enum dnsmsg_verdict v = parse_opt(pkt, &rr, q);
			if (v != DNSMSG_OK)
				return v;
		}
	}
	if (q->qtype == DNS_TYPE_AXFR || q->qtype == DNS_TYPE_IXFR)
		return DNSMSG_NOTIMP;	/* a forwarder does no zone transfers */
	return DNSMSG_OK;
}

size_t
dnsmsg_udp_limit(const struct dns_query *q)
{
	if (!q->edns || q->udp_size <= DNS_UDP_PLAIN)
		return DNS_UDP_PLAIN;
	return q->udp_size < DNS_EDNS_SIZE ? q->udp_size : DNS_EDNS_SIZE;
}

static int
reply_section_rr(const uint8_t *pkt, struct dns_reply *r,
    const struct rr_view *rr, int section)
{
	if (rr->type == DNS_TYPE_OPT) {
		if (section != 3 || r->opt_start)
			return -1;
		r->opt_start = rr->start;
		r->opt_end = rr->rdata + rr->rdlen;
		r->ext_rcode = rr->ttl >> 24;
		return 0;
	}
	if (r->nttls < DNSMSG_MAX_TTLS)
		r->ttl_off[r->nttls++] = (uint16_t)(rr->fixed + 4);
	else
		r->too_many_rrs = true;
	uint32_t ttl = rr->ttl > 0x7fffffff ? 0 : rr->ttl;	/* RFC 2181 8 */
	if (ttl < r->min_ttl)
		r->min_ttl = ttl;
	if (section == 2 && rr->type == DNS_TYPE_SOA) {
		/* MINIMUM is the last 4 bytes of the SOA rdata. */
		if (rr->rdlen < 22)
			return -1;
		uint32_t min = rd32(pkt + rr->rdata + rr->rdlen - 4);
		r->has_soa = true;
		r->neg_ttl = ttl < min ? ttl : min;
	}
	return 0;
}

/* Where the name at off really begins: past its leading pointers. The
 * name was read already, so every pointer is known to go backwards. */
static size_t
name_first_label(const uint8_t *pkt, size_t off)
{
	while ((pkt[off] & 0xc0) == 0xc0)
		off = (size_t)(pkt[off] & 0x3f) << 8 | pkt[off + 1];
	return off;
}

/*
 * Note a name a client may follow, unless it is the question's, the root
 * or noted already. No copy: an offset each, so a miss stays cheap.
 */
static void
reply_note_name(const uint8_t *pkt, struct dns_reply *r, size_t off)
{
	off = name_first_label(pkt, off);
	if (off == DNS_HEADER_LEN || pkt[off] == 0)
		return;
	for (size_t i = 0; i < r->nnames; i++)
		if (r->name_off[i] == off)
			return;
	if (r->nnames == DNSMSG_MAX_NAMES) {
		r->names_overflow = true;
		return;
	}
	r->name_off[r->nnames++] = (uint16_t)off;
}

/*
 * The names of one answer record that a client follows: its owner, and
 * the target of an alias (CNAME, DNAME) or of a service binding (SRV,
 * SVCB, HTTPS, whose TargetName follows a 16-bit priority). The rdata
 * names were read by reply_rdata_names() already.
 */
static void
reply_answer_names(const uint8_t *pkt, struct dns_reply *r,
    const struct rr_view *rr)
{
	reply_note_name(pkt, r, rr->start);
	switch (rr->type) {
	case DNS_TYPE_CNAME:
	case DNS_TYPE_DNAME:
		r->has_alias = true;
		reply_note_name(pkt, r, rr->rdata);
		break;
	case DNS_TYPE_SVCB:
	case DNS_TYPE_HTTPS:
		reply_note_name(pkt, r, rr->rdata + 2);
		break;
	case DNS_TYPE_SRV:
		reply_note_name(pkt, r, rr->rdata + 6);
		break;
	default:
		break;
	}
}

/*
 * Check the names inside the rdata of the types that may be compressed
 * (RFC 3597 section 4) or commonly are: their pointers must be as safe as
 * an owner name's, and they must fill the rdata exactly.
 */
static int
reply_rdata_names(const uint8_t *pkt, size_t len, const struct dns_reply *r,
    const struct rr_view *rr)
{
	uint8_t scratch[DNS_MAX_NAME];
	size_t off = rr->rdata, end = rr->rdata + rr->rdlen;
	int names = 1;
	size_t before = 0, after = 0;

	switch (rr->type) {
	case DNS_TYPE_NS:
	case DNS_TYPE_CNAME:
	case 12:			/* PTR */
	case DNS_TYPE_DNAME:
		break;
	case 15:			/* MX: preference, exchange */
		before = 2;
		break;
	case DNS_TYPE_SRV:		/* priority, weight, port, target */
		before = 6;
		break;
	case DNS_TYPE_SVCB:		/* priority, target, parameters */
	case DNS_TYPE_HTTPS:
		before = 2;
		after = SIZE_MAX;	/* the parameters are not read */
		break;
	case DNS_TYPE_SOA:		/* MNAME, RNAME, five numbers */
		names = 2;
		after = 20;
		break;
	default:
		return 0;
	}
	if (before > rr->rdlen)
		return -1;
	off += before;
	for (int i = 0; i < names; i++)
		if (read_name(pkt, end, &off, scratch, r) < 0)
			return -1;
	if (after == SIZE_MAX)
		return 0;
	return off + after == end ? 0 : -1;
}

int
dnsmsg_parse_reply_question(const uint8_t *pkt, size_t len,
    struct dns_reply *r)
{
	/* Not the whole struct: the arrays are filled as far as used. */
	memset(r, 0, offsetof(struct dns_reply, ttl_off));
	r->min_ttl = UINT32_MAX;
	r->too_many_rrs = false;
	r->nnames = 0;
	r->names_overflow = false;
	r->has_alias = false;
	if (len < DNS_HEADER_LEN)
		return -1;
	uint16_t flags = rd16(pkt + 2);
	if (!(flags & FLAG_QR) || ((flags >> 11) & 0xf) != 0 ||
	    rd16(pkt + 4) != 1)
		return -1;
	r->id = rd16(pkt);
	r->rcode = flags & 0xf;
	r->tc = (flags & FLAG_TC) != 0;
	int n = read_plain_name(pkt, len, DNS_HEADER_LEN, r->qname);
	if (n < 0 || DNS_HEADER_LEN + (size_t)n + 4 > len)
		return -1;
	r->qname_len = (uint8_t)n;
	r->qtype = rd16(pkt + DNS_HEADER_LEN + n);
	r->qclass = rd16(pkt + DNS_HEADER_LEN + n + 2);
	r->question_end = DNS_HEADER_LEN + (size_t)n + 4;
	return 0;
}

int
dnsmsg_parse_reply(const uint8_t *pkt, size_t len, struct dns_reply *r)
{
	if (dnsmsg_parse_reply_question(pkt, len, r) == -1)
		return -1;
	if (r->tc)
		return 0;	/* the rest may be cut anywhere; retried over TCP */

	uint16_t count[3] = { rd16(pkt + 6), rd16(pkt + 8), rd16(pkt + 10) };
	size_t off = r->question_end;
	r->ancount = count[0];
	for (int s = 0; s < 3; s++) {
		for (uint16_t i = 0; i < count[s]; i++) {
			struct rr_view rr;
			/* The TTL is noted before the rdata is read: a
			 * name there may not point back into it either.
			 * The OPT record must come last (we send no TSIG):
			 * removing it then moves nothing that is kept. */
			if (r->opt_start != 0 ||
			    rr_next(pkt, len, &off, &rr, r) < 0 ||
			    reply_section_rr(pkt, r, &rr, s + 1) < 0 ||
			    reply_rdata_names(pkt, len, r, &rr) < 0)
				return -1;
			if (s == 0)
				reply_answer_names(pkt, r, &rr);
		}
	}
	r->msg_end = off;	/* bytes after the records are not kept */
	return 0;
}

int
dnsmsg_parse_bare_error(const uint8_t *pkt, size_t len, uint16_t *id,
    uint8_t *rcode)
{
	if (len < DNS_HEADER_LEN)
		return -1;
	uint16_t flags = rd16(pkt + 2);
	uint8_t rc = flags & 0xf;
	if (!(flags & FLAG_QR) || rd16(pkt + 4) != 0 || rd16(pkt + 6) != 0 ||
	    rd16(pkt + 8) != 0 || (rc != DNS_RCODE_FORMERR &&
	    rc != DNS_RCODE_NOTIMP && rc != DNS_RCODE_REFUSED &&
	    rc != DNS_RCODE_SERVFAIL))
		return -1;
	*id = rd16(pkt);
	*rcode = rc;
	return 0;
}

size_t
dnsmsg_build_query(uint8_t *buf, uint16_t id, const uint8_t *lname,
    size_t lname_len, uint16_t qtype, uint16_t qclass, bool do_bit, bool cd)
{
	size_t o = DNS_HEADER_LEN;

	wr16(buf, id);
	wr16(buf + 2, FLAG_RD | (cd ? FLAG_CD : 0));
	wr16(buf + 4, 1);
	wr16(buf + 6, 0);
	wr16(buf + 8, 0);
	wr16(buf + 10, 1);
	memcpy(buf + o, lname, lname_len);
	o += lname_len;
	wr16(buf + o, qtype);
	wr16(buf + o + 2, qclass);
	o += 4;
	buf[o++] = 0;			/* OPT: root owner */
	wr16(buf + o, DNS_TYPE_OPT);
	wr16(buf + o + 2, DNS_EDNS_SIZE);
	wr32(buf + o + 4, do_bit ? OPT_DO : 0);
	wr16(buf + o + 8, 0);
	return o + 10;
}

size_t
dnsmsg_canonicalize(uint8_t *pkt, size_t len, struct dns_reply *r,
    uint32_t max_ttl)
{
	if (r->msg_end != 0 && len > r->msg_end)
		len = r->msg_end;
	if (r->opt_start) {
		size_t cut = r->opt_end - r->opt_start;
		memmove(pkt + r->opt_start, pkt + r->opt_end, len - r->opt_end);
		len -= cut;
		wr16(pkt + 10, rd16(pkt + 10) - 1);
		for (size_t i = 0; i < r->nttls; i++)
			if (r->ttl_off[i] > r->opt_start)
				r->ttl_off[i] -= (uint16_t)cut;
		r->opt_start = r->opt_end = 0;
	}
	for (size_t i = 0; i < r->nttls; i++) {
		uint32_t ttl = rd32(pkt + r->ttl_off[i]);
		if (ttl > 0x7fffffff)
			ttl = 0;
		if (ttl > max_ttl)
			ttl = max_ttl;
		wr32(pkt + r->ttl_off[i], ttl);
	}
	if (r->min_ttl != UINT32_MAX && r->min_ttl > max_ttl)
		r->min_ttl = max_ttl;
	return len;
}

/* The OPT record of an answer to q without EDE: its length. */
static size_t
opt_size(const struct dns_query *q)
{
	return 11 + (q->cookie_len ? 4 + (size_t)q->cookie_len : 0);
}

/*
 * Append an OPT record (with an EDE option when ede_code >= 0, and q's
 * COOKIE option when it has one). Returns its length, 0 if it does not
 * fit.
 */
static size_t
put_opt(const struct dns_query *q, uint8_t ext_rcode, int ede_code,
    const char *ede_text, uint8_t *p, size_t room)
{
	size_t tlen = ede_text ? strlen(ede_text) : 0;
	if (tlen > 200)
		tlen = 200;
	size_t edelen = ede_code >= 0 ? 4 + 2 + tlen : 0;
	size_t optlen = edelen + opt_size(q) - 11;

	if (room < 11 + optlen)
		return 0;
	p[0] = 0;
	wr16(p + 1, DNS_TYPE_OPT);
	wr16(p + 3, DNS_EDNS_SIZE);
	wr32(p + 5, (uint32_t)ext_rcode << 24 | (q->do_bit ? OPT_DO : 0));
	wr16(p + 9, (uint16_t)optlen);
	if (ede_code >= 0) {
		wr16(p + 11, EDNS_OPT_EDE);
		wr16(p + 13, (uint16_t)(2 + tlen));
		wr16(p + 15, (uint16_t)ede_code);
		memcpy(p + 17, ede_text, tlen);
	}
	if (q->cookie_len) {
		uint8_t *c = p + 11 + edelen;
		wr16(c, EDNS_OPT_COOKIE);
		wr16(c + 2, q->cookie_len);
		memcpy(c + 4, q->cookie, q->cookie_len);
	}
	return 11 + optlen;
}

static size_t	build_blocked_full(const struct dns_query *, const uint8_t *,
		    size_t, const char *, uint32_t, uint8_t *, size_t);

/*
 * The flags of an answer to q: QR, the opcode and RD copied (RFC 1035
 * 4.1.1); RA and CD (and AD, which the callers add) are defined for QUERY
 * only (RFC 1035, RFC 4035 3.2), so an answer to any other opcode has
 * none of them.
 */
static uint16_t
answer_flags(const struct dns_query *q, uint8_t rcode)
{
	uint16_t flags = FLAG_QR | (uint16_t)(q->opcode << 11) |
	    (q->rd ? FLAG_RD : 0) | (rcode & 0xf);

	if (q->opcode == 0)
		flags |= FLAG_RA | (q->cd ? FLAG_CD : 0);
	return flags;
}

/* Header and question for an answer of our own making. */
static size_t
put_header_question(const struct dns_query *q, uint8_t rcode, uint8_t *out)
{
	uint16_t flags = answer_flags(q, rcode);
	size_t o = DNS_HEADER_LEN;

	wr16(out, q->id);
	wr16(out + 2, flags);
	wr16(out + 4, q->has_question ? 1 : 0);
	wr16(out + 6, 0);
	wr16(out + 8, 0);
	wr16(out + 10, 0);
	if (q->has_question) {
		memcpy(out + o, q->qname, q->qname_len);
		o += q->qname_len;
		wr16(out + o, q->qtype);
		wr16(out + o + 2, q->qclass);
		o += 4;
	}
	return o;
}

size_t
dnsmsg_build_error(const struct dns_query *q, uint8_t rcode, int ede_code,
    const char *ede_text, uint8_t *out, size_t cap)
{
	size_t o = put_header_question(q, rcode, out);

	if (q->edns) {
		size_t n = put_opt(q, rcode >> 4, ede_code, ede_text, out + o,
		    cap - o);
		if (n) {
			o += n;
			wr16(out + 10, 1);
		}
	}
	return o;
}

/* Header, question, OPT, TC: what fits when the answer does not. */
static size_t
put_truncated(const struct dns_query *q, uint8_t rcode, uint8_t *out,
    size_t cap)
{
	size_t o = put_header_question(q, rcode, out);

	wr16(out + 2, rd16(out + 2) | FLAG_TC);
	size_t n = q->edns ? put_opt(q, 0, -1, NULL, out + o, cap - o) : 0;
	if (n) {
		o += n;
		wr16(out + 10, 1);
	}
	return o;
}

size_t
dnsmsg_build_blocked(const struct dns_query *q, const uint8_t *rule,
    size_t rule_len, const char *category, uint32_t ttl, uint8_t *out,
    size_t cap, size_t limit)
{
	size_t n = build_blocked_full(q, rule, rule_len, category, ttl, out,
	    cap);

	return n <= limit ? n : put_truncated(q, DNS_RCODE_NXDOMAIN, out, cap);
}

static size_t
build_blocked_full(const struct dns_query *q, const uint8_t *rule,
    size_t rule_len, const char *category, uint32_t ttl, uint8_t *out,
    size_t cap)
{
	static const uint8_t mname[] = "\x09" "dnswarden" "\x07" "invalid";
	static const uint8_t rname[] = "\x0a" "hostmaster" "\x09" "dnswarden"
	    "\x07" "invalid";
	size_t o = put_header_question(q, DNS_RCODE_NXDOMAIN, out);
	size_t rdlen = sizeof(mname) + sizeof(rname) + 20;

	if (o + rule_len + 10 + rdlen > cap)
		return o;
	memcpy(out + o, rule, rule_len);
	o += rule_len;
	wr16(out + o, DNS_TYPE_SOA);
	wr16(out + o + 2, DNS_CLASS_IN);
	wr32(out + o + 4, ttl);
	wr16(out + o + 8, (uint16_t)rdlen);
	o += 10;
	memcpy(out + o, mname, sizeof(mname));	/* sizeof counts the root */
	o += sizeof(mname);
	memcpy(out + o, rname, sizeof(rname));
	o += sizeof(rname);
	wr32(out + o, 1);		/* serial */
	wr32(out + o + 4, 3600);	/* refresh */
	wr32(out + o + 8, 600);		/* retry */
	wr32(out + o + 12, 86400);	/* expire */
	wr32(out + o + 16, ttl);	/* minimum: the negative TTL */
	o += 20;
	wr16(out + 8, 1);
	if (q->edns) {
		char text[128];
		snprintf(text, sizeof(text), "blocked by dnswarden: category %s",
		    category ? category : "unknown");
		size_t n = put_opt(q, 0, DNS_EDE_BLOCKED, text, out + o, cap - o);
		if (n) {
			o += n;
			wr16(out + 10, 1);
		}
	}
	return o;
}

/*
 * Truncation: an answer larger than the client takes is cut as NSD and
 * Unbound (with minimal responses) cut theirs, keeping whole RRsets (an
 * RRset with the RRSIGs over it that follow it) in order: first what is
 * optional goes (the additional section, then authority records a client
 * does not need), and TC is set only when the answer section, or an
 * authority record the answer needs, does not fit (RFC 2181 section 9).
 * The cut is a prefix of the reply: compression pointers only point
 * backwards, so what is kept reads the same.
 */

/* One RRset as it lies in a reply, from where the walk stood to end. */
struct rrset_span {
	size_t		end;
	uint16_t	n;		/* RRs, RRSIGs included */
	uint16_t	type;		/* for an RRSIG alone: the type covered */
};

/* The RRset at *off, at most left RRs long; -1 if the reply is broken. */
static int
rrset_next(const uint8_t *pkt, size_t len, size_t off, unsigned left,
    struct rrset_span *sp)
{
	uint8_t first[DNS_MAX_NAME], owner[DNS_MAX_NAME];
	int first_len = -1;
	uint16_t type = 0, class = 0;

	sp->n = 0;
	while (sp->n < left) {
		size_t at = off;
		int n = read_name(pkt, len, &at, owner, NULL);
		if (n < 0 || at + 10 > len)
			return -1;
		uint16_t t = rd16(pkt + at), c = rd16(pkt + at + 2);
		uint16_t rdlen = rd16(pkt + at + 8);
		if (at + 10 + rdlen > len)
			return -1;
		/* An RRSIG counts as the type it covers. */
		if (t == 46 && rdlen >= 2)
			t = rd16(pkt + at + 10);
		if (first_len == -1) {
			memcpy(first, owner, (size_t)n);
			first_len = n;
			type = t;
			class = c;
		} else if (n != first_len || memcmp(owner, first, (size_t)n) ||
		    t != type || c != class)
			break;
		off = at + 10 + rdlen;
		sp->n++;
	}
	sp->end = off;
	sp->type = type;
	return sp->n > 0 ? 0 : -1;
}

/*
 * Does what is left of the authority section from off (left RRs) hold a
 * record the answer needs? In a positive answer only the zone's NS RRset
 * is optional; in any other (negative answers, referrals) all is needed.
 */
static bool
authority_needed(const uint8_t *pkt, size_t len, size_t off, unsigned left,
    bool positive)
{
	struct rrset_span sp;

	if (!positive)
		return true;
	for (; left > 0; left -= sp.n, off = sp.end)
		if (rrset_next(pkt, len, off, left, &sp) == -1 ||
		    sp.type != DNS_TYPE_NS)
			return true;
	return false;
}

/*
 * Where to cut the canonical reply pkt (len bytes, question ending at
 * qend) so that its records end within room: the offset, with the records
 * kept per section in kept[] and *tc set as above.
 */
static size_t
reply_fit(const uint8_t *pkt, size_t len, size_t qend, size_t room,
    uint16_t kept[3], bool *tc)
{
	uint16_t count[3] = { rd16(pkt + 6), rd16(pkt + 8), rd16(pkt + 10) };
	bool noerror = (pkt[3] & 0xf) == DNS_RCODE_NOERROR;
	bool positive = noerror && count[0] > 0, ns = false, soa = false;
	size_t off = qend;
	struct rrset_span sp;

	*tc = false;
	kept[0] = kept[1] = kept[2] = 0;
	for (int s = 0; s < 3; s++) {
		for (unsigned left = count[s]; left > 0; left -= sp.n) {
			if (rrset_next(pkt, len, off, left, &sp) == -1 ||
			    sp.end > room) {
				/* A referral is no use without its glue. */
				*tc = s == 0 || (s == 1 && authority_needed(pkt,
				    len, off, left, positive)) || (s == 2 &&
				    kept[2] == 0 && noerror && !positive &&
				    ns && !soa);
				return off;
			}
			ns |= s == 1 && sp.type == DNS_TYPE_NS;
			soa |= s == 1 && sp.type == DNS_TYPE_SOA;
			kept[s] += sp.n;
			off = sp.end;
		}
	}
	return off;
}

size_t
dnsmsg_finalize(const struct dns_query *q, const uint8_t *canon, size_t len,
    uint8_t *out, size_t cap, size_t limit)
{
	size_t qend = DNS_HEADER_LEN + q->qname_len + 4;
	size_t extra = q->edns ? opt_size(q) : 0;

	if (len < qend || len + extra > cap)
		return 0;
	uint16_t up = rd16(canon + 2);
	/* AD only for clients that asked for DNSSEC data (RFC 6840 5.8). */
	uint16_t flags = answer_flags(q, up & 0xf) |
	    ((q->do_bit || q->ad) ? (up & FLAG_AD) : 0);
	memcpy(out, canon, len);
	if (len + extra > limit) {
		uint16_t kept[3];
		bool tc;
		len = reply_fit(canon, len, qend, limit - extra, kept, &tc);
		wr16(out + 6, kept[0]);
		wr16(out + 8, kept[1]);
		wr16(out + 10, kept[2]);
		if (tc)
			flags |= FLAG_TC;
	}
	wr16(out, q->id);
	wr16(out + 2, flags);
	memcpy(out + DNS_HEADER_LEN, q->qname, q->qname_len);
	if (q->edns) {
		len += put_opt(q, 0, -1, NULL, out + len, cap - len);
		wr16(out + 10, rd16(out + 10) + 1);
	}
	return len;
}

int
dnsmsg_name_from_text(const char *text, uint8_t *out, size_t cap)
{
	size_t len = strlen(text), o = 0;

	if (len > 0 && text[len - 1] == '.')
		len--;
	if (len == 0) {			/* "." or "": the root */
		if (cap < 1 || text[0] == '\0')
			return -1;
		out[0] = 0;
		return 1;
	}
	for (size_t i = 0; i <= len; ) {
		size_t l = strcspn(text + i, ".");
		if (i + l > len)
			l = len - i;
		if (l == 0 || l > 63 || o + 1 + l + 1 > cap ||
		    o + 1 + l + 1 > DNS_MAX_NAME)
			return -1;
		out[o++] = (uint8_t)l;
		for (size_t j = 0; j < l; j++) {
			unsigned char ch = (unsigned char)text[i + j];
			if (ch <= ' ' || ch >= 0x7f || ch == '\\')
				return -1;
			out[o++] = ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
		}
		i += l + 1;
	}
	out[o++] = 0;
	return (int)o;
}
