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

/*
 * As hash_more(), with another result: the bytes after the last whole
 * word are read by two loads that may overlap, not copied by a memcpy()
 * of their length. For keys of a few short strings each (the attempt
 * log's clients and rules), where that copy took half the time; the
 * resolver's names keep hash_more().
 */
static inline uint64_t
hash_more_short(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t w = 0;
	uint32_t lo, hi;

	h ^= len * 0x9e3779b97f4a7c15ULL;
	for (; len > 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	if (len == 8 || (len > 0 && p != data)) {
		/* The last 8 bytes, some of them hashed already. */
		memcpy(&w, p + len - 8, 8);
	} else if (len >= 4) {
		memcpy(&lo, p, 4);
		memcpy(&hi, p + len - 4, 4);
		w = lo | (uint64_t)hi << 32;
	} else if (len > 0)
		w = p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16;
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
