/* Unit tests for DNS Cookies: the RFC 9018 test vectors (Appendix A). */
#include <arpa/inet.h>
#include <stdio.h>

#include "cookie.h"
#include "unit.h"

static void
hex(const char *s, uint8_t *out)
{
	for (size_t i = 0; s[2 * i] != '\0'; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
}

static struct cookie *
maker(const char *secret)
{
	uint8_t key[COOKIE_SECRET_LEN];

	hex(secret, key);
	return cookie_new(key);
}

/* The server cookie made for client at ip at stamp, as hex. */
static const char *
made(const char *secret, const char *client, const char *ip, uint32_t stamp)
{
	static char text[2 * COOKIE_SERVER_LEN + 1];
	static const uint8_t zero[3];
	struct cookie *ck = maker(secret);
	struct sockaddr_storage ss = unit_addr(ip);
	uint8_t c[COOKIE_CLIENT_LEN], out[COOKIE_SERVER_LEN];

	if (ck == NULL)
		return "no SipHash";
	hex(client, c);
	cookie_make(ck, c, zero, stamp, (struct sockaddr *)&ss, out);
	for (size_t i = 0; i < COOKIE_SERVER_LEN; i++)
		snprintf(text + 2 * i, 3, "%02x", out[i]);
	cookie_free(ck);
	return text;
}

static void
test_rfc9018_vectors(void)
{
	/* A.1: learning a new server cookie. */
	CHECK_STR(made("e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957",
	    "198.51.100.100", 1559731985), "010000005cf79f111f8130c3eee29480");
	/* A.2: the same client, 40 minutes later. */
	CHECK_STR(made("e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957",
	    "198.51.100.100", 1559734385), "010000005cf7a871d4a564a1442aca77");
	/* A.3: another client. */
	CHECK_STR(made("e5e973e5a6b2a43f48e7dc849e37bfcf", "fc93fc62807ddb86",
	    "203.0.113.203", 1559734700), "010000005cf7a9acf73a7810aca2381e");
	/* A.4: an IPv6 client after the secret was rolled over. */
	CHECK_STR(made("445536bcd2513298075a5d379663c962", "22681ab97d52c298",
	    "2001:db8:220:1:59de:d0f4:8769:82b8", 1559741961),
	    "010000005cf7c609a6bb79d16625507a");
}

/* A cookie (client and server, hex) judged at ip at now. */
static bool
valid(const char *secret, const char *cookie, const char *ip, uint32_t now)
{
	struct cookie *ck = maker(secret);
	struct sockaddr_storage ss = unit_addr(ip);
	uint8_t c[COOKIE_MAX_LEN];
	size_t len = strlen(cookie) / 2;
	bool ok;

	hex(cookie, c);
	ok = cookie_valid(ck, c, c + COOKIE_CLIENT_LEN, len - COOKIE_CLIENT_LEN,
	    (struct sockaddr *)&ss, now);
	cookie_free(ck);
	return ok;
}

static void
test_valid(void)
{
	const char *s1 = "e5e973e5a6b2a43f48e7dc849e37bfcf";
	const char *a1 = "2464c4abcf10c957010000005cf79f111f8130c3eee29480";
	/* A.3: reserved octets the client set are part of the hash. */
	const char *a3 = "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5";
	/* A.4: the old secret's cookie. */
	const char *a4 = "22681ab97d52c298010000005cf7c57926556bd0934c72f8";
	const char *ip6 = "2001:db8:220:1:59de:d0f4:8769:82b8";

	CHECK(valid(s1, a1, "198.51.100.100", 1559731985));
	CHECK(valid(s1, a1, "198.51.100.100", 1559731985 + 3600));
	CHECK(!valid(s1, a1, "198.51.100.100", 1559731985 + 3601));
	CHECK(valid(s1, a1, "198.51.100.100", 1559731985 - 300));
	CHECK(!valid(s1, a1, "198.51.100.100", 1559731985 - 301));
	/* Another address, or any octet changed: not ours. */
	CHECK(!valid(s1, a1, "198.51.100.101", 1559731985));
	CHECK(!valid(s1, "2464c4abcf10c957020000005cf79f111f8130c3eee29480",
	    "198.51.100.100", 1559731985));
	CHECK(!valid(s1, "2464c4abcf10c958010000005cf79f111f8130c3eee29480",
	    "198.51.100.100", 1559731985));
	CHECK(!valid(s1, "2464c4abcf10c957010000005cf79f111f8130c3eee29481",
	    "198.51.100.100", 1559731985));
	CHECK(valid(s1, a3, "203.0.113.203", 0x5cf78f71));
	CHECK(!valid(s1, a3, "203.0.113.204", 0x5cf78f71));
	CHECK(valid("dd3bdf9344b678b185a6f5cb60fca715", a4, ip6, 0x5cf7c579));
	CHECK(!valid("445536bcd2513298075a5d379663c962", a4, ip6, 0x5cf7c579));
	/* Not 16 octets: not the format we make. */
	CHECK(!valid(s1, "2464c4abcf10c957010000005cf79f111f8130c3eee294", "198.51.100.100",
	    1559731985));
	/* An hour old across the 2^32 wrap of the time stamp. */
	struct cookie *ck = maker(s1);
	struct sockaddr_storage ss = unit_addr("192.0.2.1");
	uint8_t c[COOKIE_MAX_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint8_t zero[3];
	cookie_make(ck, c, zero, 4294964696u, (struct sockaddr *)&ss, c + 8);
	CHECK(cookie_valid(ck, c, c + 8, 16, (struct sockaddr *)&ss, 1000));
	CHECK(!cookie_valid(ck, c, c + 8, 16, (struct sockaddr *)&ss, 1001));
	cookie_free(ck);
}

/* What an answer carries: RFC 7873 5.2.3 to 5.2.5. */
static void
test_answer(void)
{
	struct cookie *ck = maker("e5e973e5a6b2a43f48e7dc849e37bfcf");
	struct sockaddr_storage ss = unit_addr("198.51.100.100");
	struct sockaddr *peer = (struct sockaddr *)&ss;
	uint8_t c[COOKIE_MAX_LEN], want[24];
	uint8_t len = 8;

	/* A.1: a client cookie alone gets a server cookie, unproven. */
	hex("2464c4abcf10c957", c);
	CHECK(!cookie_answer(ck, c, &len, peer, 1559731985));
	CHECK_INT(len, 24);
	hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480", want);
	CHECK(memcmp(c, want, 24) == 0);
	/* Returned a minute later: proven, and the same cookie back. */
	CHECK(cookie_answer(ck, c, &len, peer, 1559731985 + 60));
	CHECK(memcmp(c, want, 24) == 0);
	/* A.2: 40 minutes later, proven, and a fresh one. */
	CHECK(cookie_answer(ck, c, &len, peer, 1559734385));
	hex("2464c4abcf10c957010000005cf7a871d4a564a1442aca77", want);
	CHECK(memcmp(c, want, 24) == 0);
	/* From another address: unproven, a cookie for that address. */
	ss = unit_addr("198.51.100.99");
	CHECK(!cookie_answer(ck, c, &len, peer, 1559734385));
	CHECK(memcmp(c, want, 8) == 0 && memcmp(c + 8, want + 8, 16) != 0);
	/* A 32-octet server cookie not of our making: replaced. */
	len = 40;
	memset(c + 8, 0xab, 32);
	CHECK(!cookie_answer(ck, c, &len, peer, 1559734385));
	CHECK_INT(len, 24);
	CHECK(c[8] == 1 && c[9] == 0);
	cookie_free(ck);
}

int
main(void)
{
	RUN(test_rfc9018_vectors);
	RUN(test_valid);
	RUN(test_answer);
	UNIT_DONE();
}
