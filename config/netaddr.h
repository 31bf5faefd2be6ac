/*
 * netaddr: socket addresses and CIDR networks as they are written in the
 * configuration ("127.0.0.1:53", "[::1]:5353", "10.0.0.0/8").
 */
#ifndef DNSWARDEN_NETADDR_H
#define DNSWARDEN_NETADDR_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct netaddr {
	struct sockaddr_storage	ss;
	socklen_t		len;
};

struct cidr {
	sa_family_t	family;		/* AF_INET or AF_INET6 */
	uint8_t		prefix;		/* prefix length in bits */
	uint8_t		addr[16];	/* network, host bits zeroed */
};

/*
 * Parse "ADDR", "ADDR:PORT" (IPv4) or "[ADDR]:PORT" / "ADDR" (IPv6). Port
 * defaults to default_port when absent. Returns 0, or -1 with *why set to a
 * static message.
 */
int	netaddr_parse(const char *s, uint16_t default_port, struct netaddr *out,
	    const char **why);

/* Parse "ADDR/LEN" or a bare address (full-length prefix). 0 or -1 + *why. */
int	cidr_parse(const char *s, struct cidr *out, const char **why);

/*
 * cidr_parse() that also sets *hostbits when the address had bits set past
 * the prefix ("10.1.2.3/8"); they are zeroed in out either way, and the
 * caller may warn about them.
 */
int	cidr_parse_hostbits(const char *s, struct cidr *out, bool *hostbits,
	    const char **why);

/* True if sa (AF_INET or AF_INET6) lies within c. IPv4-mapped IPv6
 * addresses are matched against IPv4 networks. */
bool	cidr_contains(const struct cidr *c, const struct sockaddr *sa);

/* Write "1.2.3.4:53" or "[::1]:53" into buf (at least 64 bytes). */
void	netaddr_format(const struct sockaddr *sa, char *buf, size_t len);

/* Write only the address ("1.2.3.4", "::1") into buf (at least 48 bytes). */
void	netaddr_format_host(const struct sockaddr *sa, char *buf, size_t len);

/* Write "10.0.0.0/8" or "fc00::/7" into buf (at least 64 bytes). */
void	cidr_format(const struct cidr *c, char *buf, size_t len);

/* True if a and b have the same family, address and port. */
bool	netaddr_equal(const struct sockaddr *a, const struct sockaddr *b);

#endif
