/* udpio: see udpio.h. */
#include <sys/uio.h>
#include <errno.h>
#include <string.h>

#include "udpio.h"

#define CMSG_ROOM	CMSG_SPACE(sizeof(struct in6_pktinfo))

/* Room for one datagram's destination address, aligned for cmsghdr. */
union cmsg_room {
	char		buf[CMSG_ROOM];
	struct cmsghdr	align;
};

int
udpio_want_dst(int fd, sa_family_t family)
{
	int on = 1;

	if (family == AF_INET)
		return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
	return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
}

static void
dst_from_cmsg(struct msghdr *mh, struct udpio_dst *dst)
{
	dst->set = false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL;
	    c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			memcpy(&dst->pi.v4, CMSG_DATA(c), sizeof(dst->pi.v4));
			/* Reply from the address asked, on any interface. */
			dst->pi.v4.ipi_ifindex = 0;
			dst->family = AF_INET;
			dst->set = true;
		} else if (c->cmsg_level == IPPROTO_IPV6 &&
		    c->cmsg_type == IPV6_PKTINFO) {
			memcpy(&dst->pi.v6, CMSG_DATA(c), sizeof(dst->pi.v6));
			dst->family = AF_INET6;
			dst->set = true;
		}
	}
}

size_t
udpio_recv(struct udpio *io, int fd)
{
	struct mmsghdr mm[UDPIO_BATCH];
	struct iovec iov[UDPIO_BATCH];
	union cmsg_room ctl[UDPIO_BATCH];

	for (size_t i = 0; i < UDPIO_BATCH; i++) {
		iov[i].iov_base = io->inbuf[i];
		iov[i].iov_len = UDPIO_MSG_MAX;
		memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
		mm[i].msg_hdr.msg_name = &io->in[i].peer;
		mm[i].msg_hdr.msg_namelen = sizeof(io->in[i].peer);
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_control = ctl[i].buf;
		mm[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
	}
	int n = recvmmsg(fd, mm, UDPIO_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		struct udpio_msg *m = &io->in[i];
		m->buf = io->inbuf[i];
		m->len = mm[i].msg_len;
		m->truncated = (mm[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
		m->peerlen = mm[i].msg_hdr.msg_namelen;
		dst_from_cmsg(&mm[i].msg_hdr, &m->dst);
	}
	return (size_t)n;
}

/* Fill mh to send iov to peer, from dst when known. */
static void
msghdr_fill(struct msghdr *mh, struct iovec *iov, void *ctlbuf,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct udpio_dst *dst)
{
	memset(mh, 0, sizeof(*mh));
	mh->msg_name = (void *)peer;
	mh->msg_namelen = peerlen;
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	if (dst == NULL || !dst->set)
		return;
	mh->msg_control = ctlbuf;
	struct cmsghdr *c;
	if (dst->family == AF_INET) {
		mh->msg_controllen = CMSG_SPACE(sizeof(dst->pi.v4));
		c = CMSG_FIRSTHDR(mh);
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(dst->pi.v4));
		memcpy(CMSG_DATA(c), &dst->pi.v4, sizeof(dst->pi.v4));
	} else {
		mh->msg_controllen = CMSG_SPACE(sizeof(dst->pi.v6));
		c = CMSG_FIRSTHDR(mh);
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(dst->pi.v6));
		memcpy(CMSG_DATA(c), &dst->pi.v6, sizeof(dst->pi.v6));
	}
}

int
udpio_send(int fd, const uint8_t *pkt, size_t len,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct udpio_dst *dst)
{
	struct msghdr mh;
	struct iovec iov = { (void *)pkt, len };
	union {
		char		buf[CMSG_ROOM];
		struct cmsghdr	align;
	} ctl;

	msghdr_fill(&mh, &iov, ctl.buf, peer, peerlen, dst);
	return sendmsg(fd, &mh, MSG_DONTWAIT) == -1 ? -1 : 0;
}

int
udpio_queue(struct udpio *io, int fd, const uint8_t *pkt, size_t len,
    const struct sockaddr *peer, socklen_t peerlen,
    const struct udpio_dst *dst)
{
	if (len > UDPIO_MSG_MAX || (io->nout > 0 && io->outfd != fd))
		return udpio_send(fd, pkt, len, peer, peerlen, dst);
	if (io->nout == UDPIO_BATCH)
		udpio_flush(io);
	struct udpio_msg *m = &io->out[io->nout];
	memcpy(io->outbuf[io->nout], pkt, len);
	m->buf = io->outbuf[io->nout];
	m->len = len;
	memcpy(&m->peer, peer, peerlen);
	m->peerlen = peerlen;
	if (dst)
		m->dst = *dst;
	else
		m->dst.set = false;
	io->outfd = fd;
	io->nout++;
	return 0;
}

size_t
udpio_flush(struct udpio *io)
{
	struct mmsghdr mm[UDPIO_BATCH];
	struct iovec iov[UDPIO_BATCH];
	union cmsg_room ctl[UDPIO_BATCH];
	size_t sent = 0, failed = 0, n = io->nout;

	for (size_t i = 0; i < n; i++) {
		struct udpio_msg *m = &io->out[i];
		iov[i].iov_base = m->buf;
		iov[i].iov_len = m->len;
		msghdr_fill(&mm[i].msg_hdr, &iov[i], ctl[i].buf,
		    (struct sockaddr *)&m->peer, m->peerlen, &m->dst);
	}
	while (sent < n) {
		int r = sendmmsg(io->outfd, mm + sent, (unsigned)(n - sent),
		    MSG_DONTWAIT);
		if (r <= 0) {
			if (r == -1 && errno == EINTR)
				continue;
			/* Skip the datagram that failed; send the rest. */
			sent++;
			failed++;
			continue;
		}
		sent += (size_t)r;
	}
	io->nout = 0;
	return failed;
}
