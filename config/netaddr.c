/*
 * netaddr: numeric socket addresses and CIDR networks. Only inet_pton()
 * forms are accepted; names are never resolved, so loading the
 * configuration cannot block on DNS (we may be the system's resolver).
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

/* Longest text inet_pton() accepts plus a scope name, with room to spare. */
#define NETADDR_HOST_MAX	(INET6_ADDRSTRLEN + IF_NAMESIZE + 2)

static const uint8_t v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Decimal digits only: strtoul() would take signs, spaces and "0x". */
static int
netaddr_port_parse(const char *s, uint16_t *port, const char **why)
{
	unsigned long	 v = 0;
	const char	*p;

	if (*s == '\0') {
		*why = "missing port number";
		return -1;
	}
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			*why = "port is not a number";
			return -1;
		}
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535) {
			*why = "port out of range (1-65535)";
			return -1;
		}
	}
	if (v == 0) {
		*why = "port out of range (1-65535)";
		return -1;
	}
	*port = (uint16_t)v;
	return 0;
}

static int
netaddr_scope_parse(const char *s, uint32_t *scope)
{
	char		*end;
	unsigned long	 v;

	if (*s >= '0' && *s <= '9') {
		v = strtoul(s, &end, 10);
		if (*end != '\0' || v > UINT32_MAX)
			return -1;
		*scope = (uint32_t)v;
		return 0;
	}
	if ((*scope = if_nametoindex(s)) == 0)
		return -1;
	return 0;
}

static int
netaddr_v6_fill(char *host, uint16_t port, struct netaddr *out,
    const char **why)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&out->ss;
	char			*pct;
	uint32_t		 scope = 0;

	if ((pct = strchr(host, '%')) != NULL) {
		*pct = '\0';
		if (netaddr_scope_parse(pct + 1, &scope) == -1) {
			*why = "unknown IPv6 scope (interface)";
			return -1;
		}
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
		*why = "not a valid IPv6 address";
		return -1;
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_scope_id = scope;
	out->len = sizeof(*sin6);
	return 0;
}

static int
netaddr_v4_fill(const char *host, uint16_t port, struct netaddr *out,
    const char **why)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
		*why = "not a valid IPv4 address";
		return -1;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	out->len = sizeof(*sin);
	return 0;
}

/* "[V6]" or "[V6]:PORT". */
static int
netaddr_parse_bracketed(const char *s, uint16_t port, struct netaddr *out,
    const char **why)
{
	char		 host[NETADDR_HOST_MAX];
	const char	*close;
	size_t		 n;

	if ((close = strchr(s, ']')) == NULL) {
		*why = "missing ']' after IPv6 address";
		return -1;
	}
	n = (size_t)(close - (s + 1));
	if (n == 0 || n >= sizeof(host)) {
		*why = "not a valid IPv6 address";
		return -1;
	}
	memcpy(host, s + 1, n);
	host[n] = '\0';
	if (close[1] == ':') {
		if (netaddr_port_parse(close + 2, &port, why) == -1)
			return -1;
	} else if (close[1] != '\0') {
		*why = "expected ':PORT' after ']'";
		return -1;
	}
	return netaddr_v6_fill(host, port, out, why);
}

int
netaddr_parse(const char *s, uint16_t default_port, struct netaddr *out,
    const char **why)
{
	char		 host[NETADDR_HOST_MAX];
	const char	*colon;
	uint16_t	 port = default_port;
	size_t		 n;

	if (s == NULL || *s == '\0') {
		*why = "empty address";
		return -1;
	}
	if (*s == '[')
		return netaddr_parse_bracketed(s, port, out, why);
	if (strlen(s) >= sizeof(host)) {
		*why = "address too long";
		return -1;
	}
	colon = strchr(s, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		/* Two colons: a bare IPv6 address, which cannot carry a port. */
		strcpy(host, s);
		return netaddr_v6_fill(host, port, out, why);
	}
	if (colon == NULL)
		return netaddr_v4_fill(s, port, out, why);
	n = (size_t)(colon - s);
	memcpy(host, s, n);
	host[n] = '\0';
	if (netaddr_port_parse(colon + 1, &port, why) == -1)
		return -1;
	return netaddr_v4_fill(host, port, out, why);
}

/* Clear every bit past the prefix; report whether any was set. */
static bool
cidr_mask(struct cidr *c)
{
	size_t	 bytes = c->family == AF_INET ? 4 : 16;
	size_t	 i, full = c->prefix / 8, rest = c->prefix % 8;
	bool	 had = false;
	uint8_t	 keep;

	for (i = full; i < bytes; i++) {
		keep = i == full && rest ? (uint8_t)(0xff << (8 - rest)) : 0;
		if (c->addr[i] & ~keep)
			had = true;
		c->addr[i] &= keep;
	}
	return had;
}

static int
cidr_prefix_parse(const char *s, unsigned max, uint8_t *prefix,
    const char **why)
{
	unsigned	 v = 0;
	const char	*p;

	if (*s == '\0') {
		*why = "missing prefix length after '/'";
		return -1;
	}
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || p - s >= 3) {
			*why = "prefix length is not a number";
			return -1;
		}
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > max) {
		*why = max == 32 ? "prefix length out of range (0-32)" :
		    "prefix length out of range (0-128)";
		return -1;
	}
	*prefix = (uint8_t)v;
	return 0;
}

int
cidr_parse_hostbits(const char *s, struct cidr *out, bool *hostbits,
    const char **why)
{
	char		 host[INET6_ADDRSTRLEN + 1];
	const char	*slash;
	size_t		 n;

	*hostbits = false;
	if (s == NULL || *s == '\0') {
		*why = "empty network";
		return -1;
	}
	slash = strchr(s, '/');
	n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(host)) {
		*why = "not a valid IP address";
		return -1;
	}
	memcpy(host, s, n);
	host[n] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		out->prefix = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		out->prefix = 128;
	} else {
		*why = "not a valid IP address";
		return -1;
	}
	if (slash != NULL && cidr_prefix_parse(slash + 1, out->prefix,
	    &out->prefix, why) == -1)
		return -1;
	*hostbits = cidr_mask(out);
	return 0;
}

int
cidr_parse(const char *s, struct cidr *out, const char **why)
{
	bool	hostbits;

	return cidr_parse_hostbits(s, out, &hostbits, why);
}

static bool
cidr_prefix_equal(const uint8_t *net, const uint8_t *a, unsigned prefix)
{
	unsigned	full = prefix / 8, rest = prefix % 8;
	uint8_t		mask;

	if (memcmp(net, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (net[full] & mask) == (a[full] & mask);
}

/*
 * A client is compared in its IPv4 form whenever it has one, so the answer
 * does not depend on whether it arrived on an IPv4 socket or as
 * ::ffff:a.b.c.d on a dual-stack one. IPv6 networks then see IPv4 clients
 * only through their ::ffff:0:0/96 form, so "::/0" does not admit them.
 */
bool
cidr_contains(const struct cidr *c, const struct sockaddr *sa)
{
	uint8_t	v4[4], v6[16];
	bool	is_v4;

	if (sa->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		is_v4 = true;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(v6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		is_v4 = memcmp(v6, v4mapped_prefix, 12) == 0;
		if (is_v4)
			memcpy(v4, v6 + 12, 4);
	} else
		return false;

	if (c->family == AF_INET)
		return is_v4 && cidr_prefix_equal(c->addr, v4, c->prefix);
	if (c->family != AF_INET6)
		return false;
	if (!is_v4)
		return cidr_prefix_equal(c->addr, v6, c->prefix);
	if (c->prefix < 96 || memcmp(c->addr, v4mapped_prefix, 12) != 0)
		return false;
	memcpy(v6, v4mapped_prefix, 12);
	memcpy(v6 + 12, v4, 4);
	return cidr_prefix_equal(c->addr, v6, c->prefix);
}

void
netaddr_format_host(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in6	*sin6;
	char				 ifname[IF_NAMESIZE];
	size_t				 n;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (sa->sa_family == AF_INET) {
		if (inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    buf, len) == NULL)
			snprintf(buf, len, "?");
		return;
	}
	if (sa->sa_family != AF_INET6) {
		snprintf(buf, len, "?");
		return;
	}
	sin6 = (const struct sockaddr_in6 *)sa;
	if (inet_ntop(AF_INET6, &sin6->sin6_addr, buf, len) == NULL) {
		snprintf(buf, len, "?");
		return;
	}
	if (sin6->sin6_scope_id == 0)
		return;
	n = strlen(buf);
	if (if_indextoname(sin6->sin6_scope_id, ifname) != NULL)
		snprintf(buf + n, len - n, "%%%s", ifname);
	else
		snprintf(buf + n, len - n, "%%%u", sin6->sin6_scope_id);
}

void
netaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char		host[NETADDR_HOST_MAX];
	unsigned	port;

	netaddr_format_host(sa, host, sizeof(host));
	if (sa->sa_family == AF_INET) {
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
		snprintf(buf, len, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
	} else if (len > 0)
		snprintf(buf, len, "%s", host);
}

bool
netaddr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	const struct sockaddr_in	*a4, *b4;
	const struct sockaddr_in6	*a6, *b6;

	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		a4 = (const struct sockaddr_in *)a;
		b4 = (const struct sockaddr_in *)b;
		return a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		a6 = (const struct sockaddr_in6 *)a;
		b6 = (const struct sockaddr_in6 *)b;
		return a6->sin6_port == b6->sin6_port &&
		    a6->sin6_scope_id == b6->sin6_scope_id &&
		    memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0;
	}
	return false;
}

void
cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char	host[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, host, sizeof(host)) == NULL)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%s/%u", host, (unsigned)c->prefix);
}
