/* hash: the one hash function of the resolver's tables. */
#ifndef DNSWARDEN_HASH_H
#define DNSWARDEN_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A 64-bit multiply-xorshift hash over 8-byte words: a few cycles for a
 * typical name. hash_more() folds len bytes into the running state h,
 * for keys of several parts; hash_bytes() hashes one key and mixes the
 * result down to 32 bits. The seed is random per process so that clients
 * cannot choose names that collide.
 */
static inline uint64_t
hash_more(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	h ^= len * 0x9e3779b97f4a7c15ULL;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		p += 8;
		len -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, p, len);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	return h;
}

static inline uint32_t
hash_bytes(const void *data, size_t len, uint64_t seed)
{
	uint64_t h = hash_more(seed, data, len);

	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 32;
	return (uint32_t)h;
}

#endif
