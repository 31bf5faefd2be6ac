/*
 * al_record: the attempt log's record format (see al_internal.h) turned
 * into sink rows: names and addresses as text, client names and
 * pseudonyms (with a small cache, since most rows come from clients seen a
 * moment ago), type and rcode mnemonics. Writer thread only.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "al_internal.h"


/* v in decimal at o, no printf; returns the end. */
static char *
al_put_uint(char *o, unsigned v)
{
	char digits[10];
	int n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*o++ = digits[--n];
	return o;
}

/* Presentation format, lower case, no trailing dot; "." for the root. */
static size_t
al_format_qname(const uint8_t *wire, size_t len, char *out)
{
	size_t i = 0, o = 0;

	while (i < len && wire[i] != 0) {
		size_t lab = wire[i++];

		if (lab > 63 || lab > len - i)
			break;		/* not from a valid packet: stop */
		if (o > 0)
			out[o++] = '.';
		for (size_t j = 0; j < lab; j++, i++) {
			uint8_t c = wire[i];
			int plain = al_plain_char(c);

			if (plain >= 0)
				out[o++] = (char)plain;
			else if (c == '.' || c == '\\') {
				out[o++] = '\\';
				out[o++] = (char)c;
			} else {
				out[o++] = '\\';
				out[o++] = (char)('0' + c / 100);
				out[o++] = (char)('0' + c / 10 % 10);
				out[o++] = (char)('0' + c % 10);
			}
		}
	}
	if (o == 0)
		out[o++] = '.';
	return o;
}

static size_t
al_addr_len(uint8_t flags)
{
	return flags & AL_F_INET ? 4 : flags & AL_F_INET6 ? 16 : 0;
}

/* The address as text in out (AL_CLIENT_TEXT bytes); returns its length. */
static size_t
al_format_addr(uint8_t flags, const uint8_t *a, char *out)
{
	char *o = out;

	if (flags & AL_F_INET) {
		for (int i = 0; i < 4; i++) {
			if (i > 0)
				*o++ = '.';
			o = al_put_uint(o, a[i]);
		}
		*o = '\0';
		return (size_t)(o - out);
	}
	if (!(flags & AL_F_INET6) ||
	    inet_ntop(AF_INET6, a, out, AL_CLIENT_TEXT) == NULL)
		memcpy(out, "unknown", sizeof("unknown"));
	return strlen(out);
}

static const char *
al_client_name(const struct al_settings *set, uint8_t flags,
    const uint8_t *a)
{
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	const struct sockaddr *sa;

	if (flags & AL_F_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, a, 4);
		sa = (const struct sockaddr *)&sin;
	} else if (flags & AL_F_INET6) {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		memcpy(&sin6.sin6_addr, a, 16);
		sa = (const struct sockaddr *)&sin6;
	} else
		return NULL;
	for (size_t i = 0; i < set->nclients; i++)
		if (cidr_contains(&set->clients[i].net, sa))
			return set->clients[i].name;
	return NULL;
}

/* out: ATTEMPTLOG_PSEUDONYM_LEN hex digits and a NUL. */
static void
al_pseudonym(const uint8_t *key, size_t keylen, const char *addr,
    size_t addrlen, char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t mac[EVP_MAX_MD_SIZE];

	/* HMAC() fails only without memory; then no pseudonym is better
	 * than one that could be undone. */
	if (HMAC(EVP_sha256(), key, (int)keylen, (const uint8_t *)addr,
	    addrlen, mac, NULL) == NULL) {
		memset(out, '0', ATTEMPTLOG_PSEUDONYM_LEN);
		out[ATTEMPTLOG_PSEUDONYM_LEN] = '\0';
		return;
	}
	for (int i = 0; i < ATTEMPTLOG_PSEUDONYM_LEN / 2; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 0xf];
	}
	out[ATTEMPTLOG_PSEUDONYM_LEN] = '\0';
}

int
attemptlog_pseudonym(const char *key, const char *addr, char *out)
{
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	const struct sockaddr *sa;
	const uint8_t *bytes;
	char text[AL_CLIENT_TEXT];
	uint8_t flag;
	size_t n;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	out[0] = '\0';
	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sa = (const struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sa = (const struct sockaddr *)&sin6;
	} else
		return -1;
	al_addr_bytes(sa, &bytes, &flag);
	n = al_format_addr(flag, bytes, text);
	al_pseudonym((const uint8_t *)key, strlen(key), text, n, out);
	return 0;
}

/* Format a client per log.client_identity into c. */
static void
al_client_fill(const struct al_settings *set, struct al_client *c,
    uint8_t flags, const uint8_t *a)
{
	char addr[AL_CLIENT_TEXT];
	size_t n = al_format_addr(flags, a, addr);

	c->family = flags;
	if (flags != 0)
		memcpy(c->addr, a, al_addr_len(flags));
	c->name = al_client_name(set, flags, a);
	c->namelen = c->name != NULL ? strlen(c->name) : 0;
	switch (set->identity) {
	case CLIENT_IDENTITY_NAME:
		if (c->name != NULL) {
			c->textlen = 0;		/* the name is the client */
			break;
		}
		memcpy(c->text, addr, n + 1);
		c->textlen = (uint8_t)n;
		break;
	case CLIENT_IDENTITY_PSEUDONYM:
		al_pseudonym(set->key, set->keylen, addr, n, c->text);
		c->textlen = ATTEMPTLOG_PSEUDONYM_LEN;
		break;
	default:
		memcpy(c->text, addr, n + 1);
		c->textlen = (uint8_t)n;
		break;
	}
}

/* The client's cache entry, formatted now if it was not there. */
static const struct al_client *
al_client_get(struct al_writer *w, uint8_t flags, const uint8_t *a)
{
	size_t alen = al_addr_len(flags);
	uint32_t h = 2166136261u;	/* FNV-1a */
	struct al_client *c;

	if (alen == 0) {
		c = &w->clients[0];
		if (c->family != 0 || c->textlen == 0)
			al_client_fill(w->set, c, 0, NULL);
		return c;
	}
	for (size_t i = 0; i < alen; i++)
		h = (h ^ a[i]) * 16777619u;
	c = &w->clients[1 + h % (AL_CLIENT_CACHE - 1)];
	if (c->family != flags || memcmp(c->addr, a, alen) != 0)
		al_client_fill(w->set, c, flags, a);
	return c;
}

/* Copy n bytes to the batch's text. */
static struct sink_str
al_text_put(struct al_writer *w, const char *s, size_t n)
{
	struct sink_str out = { w->text + w->textlen, n };

	memcpy(w->text + w->textlen, s, n);
	w->textlen += n;
	return out;
}

static void
al_format_client(struct al_writer *w, uint8_t flags, const uint8_t *a,
    struct sink_str *client, struct sink_str *name)
{
	const struct al_client *c = al_client_get(w, flags, a);

	name->s = c->name;
	name->len = c->namelen;
	if (c->name != NULL && w->set->identity == CLIENT_IDENTITY_NAME)
		*client = *name;	/* stable: w->set outlives the batch */
	else
		*client = al_text_put(w, c->text, c->textlen);
}

static struct sink_str
al_format_qtype(struct al_writer *w, uint16_t qtype)
{
	const ldns_rr_descriptor *d = ldns_rr_descript(qtype);
	const char *name = NULL;
	struct sink_str out;

	if (d != NULL && d->_type == qtype && d->_name != NULL)
		name = d->_name;
	/* Query-only types have no RR descriptor in ldns. */
	switch (qtype) {
	case 251:
		name = "IXFR";
		break;
	case 252:
		name = "AXFR";
		break;
	case 253:
		name = "MAILB";
		break;
	case 254:
		name = "MAILA";
		break;
	case 255:
		name = "ANY";
		break;
	}
	if (name != NULL)
		return (struct sink_str){ name, strlen(name) };
	out = al_text_put(w, "TYPE", 4);
	out.len = (size_t)(al_put_uint(w->text + w->textlen, qtype) -
	    out.s);
	w->textlen += out.len - 4;
	return out;
}

static struct sink_str
al_format_rcode(struct al_writer *w, uint8_t rcode)
{
	static const struct sink_str names[] = {
		{ "NOERROR", 7 }, { "FORMERR", 7 }, { "SERVFAIL", 8 },
		{ "NXDOMAIN", 8 }, { "NOTIMP", 6 }, { "REFUSED", 7 },
		{ "YXDOMAIN", 8 }, { "YXRRSET", 7 }, { "NXRRSET", 7 },
		{ "NOTAUTH", 7 }, { "NOTZONE", 7 },
	};
	struct sink_str out;

	if (rcode < sizeof(names) / sizeof(names[0]))
		return names[rcode];
	out = al_text_put(w, "RCODE", 5);
	out.len = (size_t)(al_put_uint(w->text + w->textlen, rcode) -
	    out.s);
	w->textlen += out.len - 5;
	return out;
}

static struct sink_str
al_transport_text(uint8_t flags)
{
	return flags & AL_F_TCP ? (struct sink_str){ "tcp", 3 } :
	    (struct sink_str){ "udp", 3 };
}

/* The wire qname at p as text in the batch's text. */
static struct sink_str
al_format_name(struct al_writer *w, const uint8_t *p, size_t len)
{
	struct sink_str out = { w->text + w->textlen, 0 };

	out.len = al_format_qname(p, len, w->text + w->textlen);
	w->textlen += out.len;
	return out;
}

static void
al_format_attempt(struct al_writer *w, struct sink_attempt *row,
    const uint8_t *rec)
{
	const struct al_attempt_hdr *h = (const struct al_attempt_hdr *)rec;
	const uint8_t *p = rec + sizeof(*h);

	row->ts_ms = h->ts_ms;
	al_format_client(w, h->flags & (AL_F_INET | AL_F_INET6), p,
	    &row->client, &row->client_name);
	p += al_addr_len(h->flags);
	row->qname = al_format_name(w, p, h->qname_len);
	p += h->qname_len;
	if (h->flags & AL_F_RULE_TAIL) {
		row->rule.s = row->qname.s + row->qname.len - h->rule_len;
		row->rule.len = h->rule_len;
	} else {
		row->rule = (struct sink_str){ (const char *)p, h->rule_len };
		p += h->rule_len;
	}
	row->category = (struct sink_str){ (const char *)p, h->category_len };
	p += h->category_len;
	row->site = (struct sink_str){ NULL, 0 };
	if (h->flags & AL_F_SITE)
		row->site = (struct sink_str){ (const char *)p, h->site_len };
	p += h->site_len;
	row->policy = (struct sink_str){ NULL, 0 };
	if (h->flags & AL_F_POLICY)
		row->policy = (struct sink_str){ (const char *)p + 1, *p };
	row->qtype = al_format_qtype(w, h->qtype);
	row->transport = al_transport_text(h->flags);
	row->verified = (h->flags & AL_F_VERIFIED) != 0;
}

static void
al_format_query(struct al_writer *w, struct sink_query *row,
    const uint8_t *rec)
{
	const struct al_query_hdr *h = (const struct al_query_hdr *)rec;
	const uint8_t *p = rec + sizeof(*h);

	row->ts_ms = h->ts_ms;
	al_format_client(w, h->flags & (AL_F_INET | AL_F_INET6), p,
	    &row->client, &row->client_name);
	p += al_addr_len(h->flags);
	row->qname = al_format_name(w, p, h->qname_len);
	p += h->qname_len;
	row->upstream = (struct sink_str){ NULL, 0 };
	if (h->flags & AL_F_UPSTREAM)
		row->upstream = (struct sink_str){ (const char *)p,
		    h->upstream_len };
	p += h->upstream_len;
	row->policy = (struct sink_str){ NULL, 0 };
	if (h->policy_len > 0)
		row->policy = (struct sink_str){ (const char *)p,
		    h->policy_len };
	row->verified = h->verified;
	row->qtype = al_format_qtype(w, h->qtype);
	row->rcode = al_format_rcode(w, h->rcode);
	row->cached = (h->flags & AL_F_CACHED) != 0;
	row->blocked = (h->flags & AL_F_BLOCKED) != 0;
	row->duration_us = h->duration_us;
	row->transport = al_transport_text(h->flags);
}

/* Room in the batch's text for one more row of any length. */
static bool
al_text_room(const struct al_writer *w)
{
	return AL_TEXT_SIZE - w->textlen >= AL_ROW_TEXT;
}


void
al_format_attempts(struct al_writer *w, const struct al_ring *r, size_t *n,
    struct al_pos *end)
{
	struct al_pos pos = { NULL, 0 };
	size_t i;

	if (*n > 0)
		pos = r->head;
	for (i = 0; i < *n && al_text_room(w); i++) {
		al_format_attempt(w, &w->attempts[i], al_ring_peek(&pos));
		al_ring_skip(&pos);
	}
	*n = i;
	*end = pos;
}

void
al_format_queries(struct al_writer *w, const struct al_ring *r, size_t *n,
    struct al_pos *end)
{
	struct al_pos pos = { NULL, 0 };
	size_t i;

	if (*n > 0)
		pos = r->head;
	for (i = 0; i < *n && al_text_room(w); i++) {
		al_format_query(w, &w->queries[i], al_ring_peek(&pos));
		al_ring_skip(&pos);
	}
	*n = i;
	*end = pos;
}
