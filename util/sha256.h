/*
 * sha256: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), enough for the
 * attempt log's client pseudonyms without pulling in a crypto library.
 */
#ifndef DNSWARDEN_SHA256_H
#define DNSWARDEN_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN	32
#define SHA256_BLOCK_LEN	64

struct sha256 {
	uint32_t	h[8];
	uint64_t	len;		/* bytes hashed so far */
	uint8_t		buf[SHA256_BLOCK_LEN];
	size_t		nbuf;
};

/* Start a new hash in ctx. */
void	sha256_init(struct sha256 *ctx);

/* Hash len more bytes of data. */
void	sha256_update(struct sha256 *ctx, const void *data, size_t len);

/* Finish the hash and write the digest into out; ctx is then spent. */
void	sha256_final(struct sha256 *ctx, uint8_t out[SHA256_DIGEST_LEN]);

/* out = HMAC-SHA256(key, msg). */
void	hmac_sha256(const void *key, size_t keylen, const void *msg,
	    size_t msglen, uint8_t out[SHA256_DIGEST_LEN]);

#endif
