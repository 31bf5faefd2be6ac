/* ratelimit: what its unit test needs to see of the table. */
#ifndef DNSWARDEN_RATELIMIT_INTERNAL_H
#define DNSWARDEN_RATELIMIT_INTERNAL_H

#include <stdint.h>
#include <sys/socket.h>

struct ratelimit;

/* The table slot of client's bucket (and of its connection count). */
uint32_t	ratelimit_slot(const struct ratelimit *rl,
		    const struct sockaddr *client);

#endif
