/*
 * cookie: DNS Cookies (RFC 7873) with server cookies in the RFC 9018
 * format: version 1, three reserved octets, a 32-bit Unix time stamp, and
 * SipHash-2-4 (OpenSSL's) over the client cookie, those eight octets and
 * the client's address, keyed with a secret of the process. A client that
 * returns a valid server cookie has proven it receives what is sent to its
 * address: a forged source address cannot do that.
 */
#ifndef DNSWARDEN_COOKIE_H
#define DNSWARDEN_COOKIE_H

#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COOKIE_SECRET_LEN	16
#define COOKIE_CLIENT_LEN	8
#define COOKIE_SERVER_LEN	16	/* RFC 9018 */
#define COOKIE_MAX_LEN		40	/* client cookie and the longest server
					   cookie RFC 7873 allows (32) */
#define COOKIE_MAX_AGE		3600	/* seconds a server cookie is valid */
#define COOKIE_MAX_AHEAD	300	/* clock skew allowed, seconds */
#define COOKIE_RENEW_AGE	1800	/* older: the answer gets a new one */

/* One event loop's cookie maker: the secret and a SipHash context. */
struct cookie;

/*
 * A cookie maker keyed with secret (copied). NULL when out of memory or
 * when libcrypto has no SipHash.
 */
struct cookie	*cookie_new(const uint8_t secret[COOKIE_SECRET_LEN]);

/* Release ck; NULL is fine. */
void		 cookie_free(struct cookie *ck);

/*
 * The server cookie for client cookie `client` from address peer at now
 * (Unix seconds), written to out. RFC 9018 section 4: version 1, reserved
 * octets as given (zero for a new cookie), time stamp, hash.
 */
void		 cookie_make(struct cookie *ck,
		    const uint8_t client[COOKIE_CLIENT_LEN],
		    const uint8_t reserved[3], uint32_t stamp,
		    const struct sockaddr *peer, uint8_t out[COOKIE_SERVER_LEN]);

/*
 * Is server (len octets) a server cookie this secret made for client at
 * peer, stamped no more than COOKIE_MAX_AGE seconds before now and no
 * more than COOKIE_MAX_AHEAD after (serial arithmetic, RFC 1982)?
 */
bool		 cookie_valid(struct cookie *ck,
		    const uint8_t client[COOKIE_CLIENT_LEN],
		    const uint8_t *server, size_t len,
		    const struct sockaddr *peer, uint32_t now);

/*
 * Turn the COOKIE option of a query (cookie, *len octets: the client
 * cookie, then any server cookie; *len 8 or 16..40) into the one its
 * answer carries (RFC 7873 5.2.3-5.2.5): the client cookie and a server
 * cookie of ours, the same one when it was valid and is not yet
 * COOKIE_RENEW_AGE old, a new one otherwise. *len becomes 24. Returns
 * true when the query's server cookie was valid, that is when the
 * client's address is proven.
 */
bool		 cookie_answer(struct cookie *ck, uint8_t cookie[COOKIE_MAX_LEN],
		    uint8_t *len, const struct sockaddr *peer, uint32_t now);

#endif
