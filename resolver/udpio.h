/*
 * udpio: batched UDP receive and send (recvmmsg/sendmmsg), keeping each
 * datagram's destination address so that answers to a socket bound to a
 * wildcard address leave from the address the client asked (IP_PKTINFO,
 * IPV6_RECVPKTINFO).
 */
#ifndef DNSWARDEN_UDPIO_H
#define DNSWARDEN_UDPIO_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UDPIO_BATCH	32
#define UDPIO_MSG_MAX	4096	/* larger queries are not DNS we answer */

/* Where a datagram arrived: the source address for its answer. */
struct udpio_dst {
	bool		set;
	sa_family_t	family;
	union {
		struct in_pktinfo	v4;
		struct in6_pktinfo	v6;
	} pi;
};

struct udpio_msg {
	uint8_t			*buf;
	size_t			 len;
	bool			 truncated;	/* larger than UDPIO_MSG_MAX */
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;
	struct udpio_dst	 dst;
};

/* Receive and send buffers for one event loop. */
struct udpio {
	struct udpio_msg	in[UDPIO_BATCH];
	uint8_t			inbuf[UDPIO_BATCH][UDPIO_MSG_MAX];
	/* Answers queued for one sendmmsg() per socket wakeup. */
	size_t			nout;
	int			outfd;
	struct udpio_msg	out[UDPIO_BATCH];
	uint8_t			outbuf[UDPIO_BATCH][UDPIO_MSG_MAX];
};

/* Ask the kernel for destination addresses on fd (wildcard sockets). */
int	udpio_want_dst(int fd, sa_family_t family);

/* Read up to UDPIO_BATCH datagrams into io->in. Returns how many (0: none
 * waiting, or an error that leaves nothing to do). */
size_t	udpio_recv(struct udpio *io, int fd);

/*
 * Queue an answer for the next udpio_flush() on fd, or send it at once if
 * it is too large for the queue or the queue belongs to another socket.
 * Returns -1 if sending failed (counted as a drop by the caller).
 */
int	udpio_queue(struct udpio *io, int fd, const uint8_t *pkt, size_t len,
	    const struct sockaddr *peer, socklen_t peerlen,
	    const struct udpio_dst *dst);

/* Send one answer now. Returns 0 or -1. */
int	udpio_send(int fd, const uint8_t *pkt, size_t len,
	    const struct sockaddr *peer, socklen_t peerlen,
	    const struct udpio_dst *dst);

/* Send everything queued. Returns the number of datagrams not sent. */
size_t	udpio_flush(struct udpio *io);

#endif
