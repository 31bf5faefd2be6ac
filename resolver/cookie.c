/* cookie: see cookie.h. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "cookie.h"

#define COOKIE_VERSION	1
#define HASH_LEN	8

struct cookie {
	uint8_t		 secret[COOKIE_SECRET_LEN];
	EVP_MAC		*mac;
	EVP_MAC_CTX	*ctx;	/* re-keyed each time: no allocation */
};

struct cookie *
cookie_new(const uint8_t secret[COOKIE_SECRET_LEN])
{
	struct cookie *ck = calloc(1, sizeof(*ck));

	if (ck == NULL)
		return NULL;
	memcpy(ck->secret, secret, COOKIE_SECRET_LEN);
	ck->mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	ck->ctx = ck->mac ? EVP_MAC_CTX_new(ck->mac) : NULL;
	if (ck->ctx == NULL) {
		cookie_free(ck);
		return NULL;
	}
	return ck;
}

void
cookie_free(struct cookie *ck)
{
	if (ck == NULL)
		return;
	EVP_MAC_CTX_free(ck->ctx);
	EVP_MAC_free(ck->mac);
	OPENSSL_cleanse(ck->secret, sizeof(ck->secret));
	free(ck);
}

/* The client's address as hashed: 4 octets for IPv4 (mapped too), 16. */
static size_t
peer_octets(const struct sockaddr *peer, const uint8_t **addr)
{
	if (peer->sa_family == AF_INET) {
		*addr = (const uint8_t *)
		    &((const struct sockaddr_in *)peer)->sin_addr;
		return 4;
	}
	if (peer->sa_family != AF_INET6) {
		*addr = NULL;
		return 0;
	}
	const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		*addr = a->s6_addr + 12;
		return 4;
	}
	*addr = a->s6_addr;
	return 16;
}

/* SipHash-2-4 of client cookie | version, reserved, stamp | address. */
static void
cookie_hash(struct cookie *ck, const uint8_t client[COOKIE_CLIENT_LEN],
    const uint8_t head[8], const struct sockaddr *peer, uint8_t out[HASH_LEN])
{
	size_t size = HASH_LEN, outl = 0;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
		OSSL_PARAM_construct_end(),
	};
	const uint8_t *addr;
	size_t alen = peer_octets(peer, &addr);

	if (!EVP_MAC_init(ck->ctx, ck->secret, COOKIE_SECRET_LEN, params) ||
	    !EVP_MAC_update(ck->ctx, client, COOKIE_CLIENT_LEN) ||
	    !EVP_MAC_update(ck->ctx, head, 8) ||
	    (alen > 0 && !EVP_MAC_update(ck->ctx, addr, alen)) ||
	    !EVP_MAC_final(ck->ctx, out, &outl, HASH_LEN) || outl != HASH_LEN)
		/* Cannot happen with a working libcrypto; a cookie that
		 * never verifies is the safe outcome if it does. */
		memset(out, 0, HASH_LEN);
}

void
cookie_make(struct cookie *ck, const uint8_t client[COOKIE_CLIENT_LEN],
    const uint8_t reserved[3], uint32_t stamp, const struct sockaddr *peer,
    uint8_t out[COOKIE_SERVER_LEN])
{
	out[0] = COOKIE_VERSION;
	memcpy(out + 1, reserved, 3);
	out[4] = stamp >> 24;
	out[5] = (stamp >> 16) & 0xff;
	out[6] = (stamp >> 8) & 0xff;
	out[7] = stamp & 0xff;
	cookie_hash(ck, client, out, peer, out + 8);
}

/* Seconds since the stamp (negative: ahead), modulo 2^32 (RFC 1982). */
static int64_t
cookie_age(const uint8_t *server, uint32_t now)
{
	uint32_t stamp = (uint32_t)server[4] << 24 | (uint32_t)server[5] << 16 |
	    (uint32_t)server[6] << 8 | server[7];

	return (int32_t)(now - stamp);
}

bool
cookie_valid(struct cookie *ck, const uint8_t client[COOKIE_CLIENT_LEN],
    const uint8_t *server, size_t len, const struct sockaddr *peer,
    uint32_t now)
{
	uint8_t hash[HASH_LEN];

	if (len != COOKIE_SERVER_LEN || server[0] != COOKIE_VERSION)
		return false;
	int64_t age = cookie_age(server, now);
	if (age > COOKIE_MAX_AGE || age < -COOKIE_MAX_AHEAD)
		return false;
	cookie_hash(ck, client, server, peer, hash);
	return CRYPTO_memcmp(hash, server + 8, HASH_LEN) == 0;
}

bool
cookie_answer(struct cookie *ck, uint8_t cookie[COOKIE_MAX_LEN], uint8_t *len,
    const struct sockaddr *peer, uint32_t now)
{
	static const uint8_t zero[3];
	uint8_t *server = cookie + COOKIE_CLIENT_LEN;
	bool valid = *len > COOKIE_CLIENT_LEN && cookie_valid(ck, cookie,
	    server, *len - COOKIE_CLIENT_LEN, peer, now);

	if (!valid || cookie_age(server, now) >= COOKIE_RENEW_AGE)
		cookie_make(ck, cookie, zero, now, peer, server);
	*len = COOKIE_CLIENT_LEN + COOKIE_SERVER_LEN;
	return valid;
}
