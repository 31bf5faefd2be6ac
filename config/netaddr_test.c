/*
 * netaddr_test: address and network parsing, formatting and matching.
 */
#include <arpa/inet.h>

#include "netaddr.h"
#include "unit.h"

/* Parse s and format it back; NULL if it did not parse. */
static const char *
roundtrip(const char *s, uint16_t port, char *buf, size_t len)
{
	struct netaddr	 na;
	const char	*why = NULL;

	if (netaddr_parse(s, port, &na, &why) == -1)
		return NULL;
	netaddr_format((struct sockaddr *)&na.ss, buf, len);
	return buf;
}

/* The reason s was rejected, or "accepted". */
static const char *
rejected(const char *s)
{
	struct netaddr	 na;
	const char	*why = NULL;

	if (netaddr_parse(s, 53, &na, &why) == 0)
		return "accepted";
	return why;
}

static struct sockaddr_storage
addr(const char *s)
{
	struct sockaddr_storage	 ss;
	struct netaddr		 na;
	const char		*why;

	memset(&ss, 0, sizeof(ss));
	if (netaddr_parse(s, 53, &na, &why) == 0)
		ss = na.ss;
	return ss;
}

static bool
contains(const char *net, const char *a)
{
	struct sockaddr_storage	 ss = addr(a);
	struct cidr		 c;
	const char		*why;

	if (cidr_parse(net, &c, &why) == -1)
		return false;
	return cidr_contains(&c, (struct sockaddr *)&ss);
}

static void
test_parse_roundtrip(void)
{
	char	buf[64];

	CHECK_STR(roundtrip("1.2.3.4:53", 0, buf, sizeof(buf)), "1.2.3.4:53");
	CHECK_STR(roundtrip("1.2.3.4", 5353, buf, sizeof(buf)),
	    "1.2.3.4:5353");
	CHECK_STR(roundtrip("127.0.0.1:65535", 53, buf, sizeof(buf)),
	    "127.0.0.1:65535");
	CHECK_STR(roundtrip("[::1]:53", 0, buf, sizeof(buf)), "[::1]:53");
	CHECK_STR(roundtrip("::1", 53, buf, sizeof(buf)), "[::1]:53");
	CHECK_STR(roundtrip("[::1]", 5300, buf, sizeof(buf)), "[::1]:5300");
	CHECK_STR(roundtrip("[2001:DB8::0:1]:853", 0, buf, sizeof(buf)),
	    "[2001:db8::1]:853");
	/* Unbracketed, the last group is address, not port (as documented). */
	CHECK_STR(roundtrip("2001:db8::1:53", 5353, buf, sizeof(buf)),
	    "[2001:db8::1:53]:5353");
	CHECK_STR(roundtrip("::ffff:10.1.2.3", 53, buf, sizeof(buf)),
	    "[::ffff:10.1.2.3]:53");
	CHECK_STR(roundtrip("[fe80::1%1]:53", 0, buf, sizeof(buf)) ?
	    "scoped" : NULL, "scoped");
}

static void
test_parse_struct(void)
{
	struct netaddr		 na;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&na.ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&na.ss;
	const char		*why;

	CHECK_INT(netaddr_parse("10.0.0.1:5353", 53, &na, &why), 0);
	CHECK_INT(sin->sin_family, AF_INET);
	CHECK_INT(ntohs(sin->sin_port), 5353);
	CHECK_INT(ntohl(sin->sin_addr.s_addr), 0x0a000001);
	CHECK_INT(na.len, sizeof(struct sockaddr_in));

	CHECK_INT(netaddr_parse("[::2]:1", 53, &na, &why), 0);
	CHECK_INT(sin6->sin6_family, AF_INET6);
	CHECK_INT(ntohs(sin6->sin6_port), 1);
	CHECK_INT(sin6->sin6_addr.s6_addr[15], 2);
	CHECK_INT(na.len, sizeof(struct sockaddr_in6));
}

static void
test_parse_bad(void)
{
	char	long_input[200];

	memset(long_input, '1', sizeof(long_input) - 1);
	long_input[sizeof(long_input) - 1] = '\0';

	CHECK_STR(rejected(""), "empty address");
	CHECK_STR(rejected("1.2.3.4:0"), "port out of range (1-65535)");
	CHECK_STR(rejected("1.2.3.4:65536"), "port out of range (1-65535)");
	CHECK_STR(rejected("1.2.3.4:99999999999"),
	    "port out of range (1-65535)");
	CHECK_STR(rejected("1.2.3.4:"), "missing port number");
	CHECK_STR(rejected("1.2.3.4:53x"), "port is not a number");
	CHECK_STR(rejected("1.2.3.4:+53"), "port is not a number");
	CHECK_STR(rejected("1.2.3.4: 53"), "port is not a number");
	CHECK_STR(rejected("1.2.3.4:-1"), "port is not a number");
	CHECK_STR(rejected("1.2.3.400:53"), "not a valid IPv4 address");
	CHECK_STR(rejected("1.2.3:53"), "not a valid IPv4 address");
	CHECK_STR(rejected("1.2.3.4 "), "not a valid IPv4 address");
	CHECK_STR(rejected("localhost:53"), "not a valid IPv4 address");
	CHECK_STR(rejected("::1:53x"), "not a valid IPv6 address");
	CHECK_STR(rejected("[::1]53"), "expected ':PORT' after ']'");
	CHECK_STR(rejected("[::1]:53]"), "port is not a number");
	CHECK_STR(rejected("[::1"), "missing ']' after IPv6 address");
	CHECK_STR(rejected("[]:53"), "not a valid IPv6 address");
	CHECK_STR(rejected("[1.2.3.4]:53"), "not a valid IPv6 address");
	CHECK_STR(rejected("[::1]:0"), "port out of range (1-65535)");
	CHECK_STR(rejected("[fe80::1%nosuchif0]:53"),
	    "unknown IPv6 scope (interface)");
	CHECK_STR(rejected(long_input), "address too long");
	CHECK(strcmp(rejected("[::1"
	    "1111111111111111111111111111111111111111111111111111111111111"
	    "]:53"), "accepted") != 0);
}

static void
test_format(void)
{
	struct sockaddr_storage	ss = addr("[2001:db8::53]:5353");
	struct sockaddr_storage	ss4 = addr("192.0.2.1:53");
	char			buf[64], small[8];

	netaddr_format_host((struct sockaddr *)&ss, buf, sizeof(buf));
	CHECK_STR(buf, "2001:db8::53");
	netaddr_format_host((struct sockaddr *)&ss4, buf, sizeof(buf));
	CHECK_STR(buf, "192.0.2.1");
	netaddr_format((struct sockaddr *)&ss4, small, sizeof(small));
	CHECK_INT(strlen(small), sizeof(small) - 1);	/* truncated, ended */
}

static void
test_equal(void)
{
	struct sockaddr_storage	a = addr("10.0.0.1:53"), b = addr("10.0.0.1");
	struct sockaddr_storage	c = addr("10.0.0.1:54"), e = addr("[::1]:53");
	struct sockaddr_storage	f = addr("::1");

	CHECK(netaddr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
	CHECK(!netaddr_equal((struct sockaddr *)&a, (struct sockaddr *)&c));
	CHECK(!netaddr_equal((struct sockaddr *)&a, (struct sockaddr *)&e));
	CHECK(netaddr_equal((struct sockaddr *)&e, (struct sockaddr *)&f));
}

static void
test_cidr_parse(void)
{
	struct cidr	 c;
	const char	*why = NULL;
	char		 buf[64];
	bool		 hostbits;

	CHECK_INT(cidr_parse("10.0.0.0/8", &c, &why), 0);
	CHECK_INT(c.family, AF_INET);
	CHECK_INT(c.prefix, 8);
	cidr_format(&c, buf, sizeof(buf));
	CHECK_STR(buf, "10.0.0.0/8");

	CHECK_INT(cidr_parse("192.0.2.7", &c, &why), 0);
	CHECK_INT(c.prefix, 32);
	CHECK_INT(cidr_parse("2001:db8::1", &c, &why), 0);
	CHECK_INT(c.family, AF_INET6);
	CHECK_INT(c.prefix, 128);

	CHECK_INT(cidr_parse_hostbits("10.1.2.3/8", &c, &hostbits, &why), 0);
	CHECK(hostbits);
	cidr_format(&c, buf, sizeof(buf));
	CHECK_STR(buf, "10.0.0.0/8");
	CHECK_INT(cidr_parse_hostbits("fc00::/7", &c, &hostbits, &why), 0);
	CHECK(!hostbits);
	CHECK_INT(cidr_parse_hostbits("fdff::1/7", &c, &hostbits, &why), 0);
	CHECK(hostbits);
	cidr_format(&c, buf, sizeof(buf));
	CHECK_STR(buf, "fc00::/7");
	CHECK_INT(cidr_parse("172.31.255.255/12", &c, &why), 0);
	cidr_format(&c, buf, sizeof(buf));
	CHECK_STR(buf, "172.16.0.0/12");
	CHECK_INT(cidr_parse("0.0.0.0/0", &c, &why), 0);
	CHECK_INT(c.prefix, 0);
}

static const char *
cidr_rejected(const char *s)
{
	struct cidr	 c;
	const char	*why = NULL;

	if (cidr_parse(s, &c, &why) == 0)
		return "accepted";
	return why;
}

static void
test_cidr_bad(void)
{
	CHECK_STR(cidr_rejected(""), "empty network");
	CHECK_STR(cidr_rejected("10.0.0.0/33"),
	    "prefix length out of range (0-32)");
	CHECK_STR(cidr_rejected("::/129"),
	    "prefix length out of range (0-128)");
	CHECK_STR(cidr_rejected("10.0.0.0/"), "missing prefix length after '/'");
	CHECK_STR(cidr_rejected("10.0.0.0/8x"), "prefix length is not a number");
	CHECK_STR(cidr_rejected("10.0.0.0/-8"),
	    "prefix length is not a number");
	CHECK_STR(cidr_rejected("10.0.0.0/0008"),
	    "prefix length is not a number");
	CHECK_STR(cidr_rejected("10.0.0.0/8/8"),
	    "prefix length is not a number");
	CHECK_STR(cidr_rejected("10.0.0/8"), "not a valid IP address");
	CHECK_STR(cidr_rejected("/8"), "not a valid IP address");
	CHECK_STR(cidr_rejected("example.com/8"), "not a valid IP address");
	CHECK_STR(cidr_rejected("10.0.0.0:53/8"), "not a valid IP address");
}

static void
test_cidr_contains(void)
{
	/* /0 holds its whole family and nothing else. */
	CHECK(contains("0.0.0.0/0", "203.0.113.9"));
	CHECK(contains("0.0.0.0/0", "::ffff:203.0.113.9"));
	CHECK(!contains("0.0.0.0/0", "2001:db8::1"));
	CHECK(contains("::/0", "2001:db8::1"));
	CHECK(!contains("::/0", "203.0.113.9"));
	CHECK(!contains("::/0", "::ffff:203.0.113.9"));

	CHECK(contains("192.0.2.1/32", "192.0.2.1"));
	CHECK(!contains("192.0.2.1/32", "192.0.2.0"));
	CHECK(!contains("192.0.2.1/32", "192.0.2.2"));
	CHECK(contains("::1/128", "::1"));
	CHECK(!contains("::1/128", "::2"));
	CHECK(!contains("::1/128", "::"));

	CHECK(contains("fc00::/7", "fc00::1"));
	CHECK(contains("fc00::/7", "fdff:ffff::1"));
	CHECK(!contains("fc00::/7", "fe00::1"));
	CHECK(!contains("fc00::/7", "fbff:ffff::1"));

	CHECK(contains("172.16.0.0/12", "172.31.255.255"));
	CHECK(!contains("172.16.0.0/12", "172.32.0.0"));
	CHECK(!contains("172.16.0.0/12", "172.15.255.255"));

	/* Dual-stack sockets show IPv4 clients as ::ffff:a.b.c.d. */
	CHECK(contains("10.0.0.0/8", "::ffff:10.1.2.3"));
	CHECK(!contains("10.0.0.0/8", "::ffff:11.1.2.3"));
	CHECK(!contains("10.0.0.0/8", "::10.1.2.3"));
	CHECK(contains("127.0.0.0/8", "::ffff:127.0.0.1"));
	CHECK(contains("::ffff:10.0.0.0/104", "10.9.9.9"));
	CHECK(contains("::ffff:10.0.0.0/104", "::ffff:10.9.9.9"));
	CHECK(!contains("::ffff:10.0.0.0/104", "11.9.9.9"));
	CHECK(contains("::ffff:0:0/96", "198.51.100.1"));
	CHECK(!contains("::/95", "198.51.100.1"));
}

static void
test_cidr_contains_other_family(void)
{
	struct sockaddr	sa;
	struct cidr	c;
	const char	*why;

	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	CHECK_INT(cidr_parse("0.0.0.0/0", &c, &why), 0);
	CHECK(!cidr_contains(&c, &sa));
}

int
main(void)
{
	RUN(test_parse_roundtrip);
	RUN(test_parse_struct);
	RUN(test_parse_bad);
	RUN(test_format);
	RUN(test_equal);
	RUN(test_cidr_parse);
	RUN(test_cidr_bad);
	RUN(test_cidr_contains);
	RUN(test_cidr_contains_other_family);
	UNIT_DONE();
}
