/* ratelimit: see ratelimit.h. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "ratelimit.h"
#include "ratelimit_internal.h"

#define SLOTS		65536	/* 1.5 MB; a large office has far fewer hosts */
#define MILLI		1000	/* tokens are counted in thousandths */
#define STRIPES		256	/* locks; event loops rarely meet on one */

struct bucket {
	uint8_t		key[16];
	uint64_t	last_ms;
	uint64_t	tokens;		/* thousandths of a query */
};

struct ratelimit {
	_Atomic unsigned	qps, burst;
	uint64_t		seed;
	pthread_mutex_t		lock[STRIPES];
	struct bucket		slot[SLOTS];
	_Atomic uint32_t	conns[SLOTS];	/* open TCP connections */
};

struct ratelimit *
ratelimit_new(unsigned qps, unsigned burst, uint64_t seed)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
	rl->seed = seed;
	for (size_t i = 0; i < STRIPES; i++)
		pthread_mutex_init(&rl->lock[i], NULL);
	ratelimit_set(rl, qps, burst);
	return rl;
}

void
ratelimit_set(struct ratelimit *rl, unsigned qps, unsigned burst)
{
	atomic_store_explicit(&rl->qps, qps, memory_order_relaxed);
	atomic_store_explicit(&rl->burst, burst > 0 ? burst : 1,
	    memory_order_relaxed);
}

/* IPv4 and IPv4-mapped by address, IPv6 by /64. */
static void
client_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return;
	}
	const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
		memcpy(key, a + 12, 4);
		return;
	}
	memcpy(key, a, 8);
	key[15] = 6;	/* keep v6 /64s apart from v4 addresses */
}

uint32_t
ratelimit_slot(const struct ratelimit *rl, const struct sockaddr *client)
{
	uint8_t key[16];

	client_key(client, key);
	return hash_bytes(key, 16, rl->seed) % SLOTS;
}

bool
ratelimit_allow(struct ratelimit *rl, const struct sockaddr *client,
    uint64_t now_ms)
{
	uint8_t key[16];
	unsigned qps = atomic_load_explicit(&rl->qps, memory_order_relaxed);
	uint64_t cap = (uint64_t)atomic_load_explicit(&rl->burst,
	    memory_order_relaxed) * MILLI;
	bool ok;

	if (qps == 0)
		return true;
	client_key(client, key);
	uint32_t h = hash_bytes(key, 16, rl->seed);
	struct bucket *b = &rl->slot[h % SLOTS];
	pthread_mutex_t *lock = &rl->lock[(h % SLOTS) % STRIPES];

	pthread_mutex_lock(lock);
	/* Another address takes the slot over with its budget as it is. */
	if (memcmp(b->key, key, 16) != 0)
		memcpy(b->key, key, 16);
	if (b->last_ms == 0) {
		b->tokens = cap;
		b->last_ms = now_ms ? now_ms : 1;
	} else if (now_ms > b->last_ms) {
		/* qps tokens a second is qps thousandths a millisecond. */
		b->tokens += (now_ms - b->last_ms) * qps;
		if (b->tokens > cap)
			b->tokens = cap;
		b->last_ms = now_ms;
	}
	ok = b->tokens >= MILLI;
	if (ok)
		b->tokens -= MILLI;
	pthread_mutex_unlock(lock);
	return ok;
}

bool
ratelimit_conn_acquire(struct ratelimit *rl, const struct sockaddr *client,
    unsigned max, uint32_t *slot)
{
	uint32_t i = ratelimit_slot(rl, client);

	if (atomic_fetch_add(&rl->conns[i], 1) >= max) {
		atomic_fetch_sub(&rl->conns[i], 1);
		return false;
	}
	*slot = i;
	return true;
}

void
ratelimit_conn_release(struct ratelimit *rl, uint32_t slot)
{
	atomic_fetch_sub(&rl->conns[slot % SLOTS], 1);
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	for (size_t i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&rl->lock[i]);
	free(rl);
}
