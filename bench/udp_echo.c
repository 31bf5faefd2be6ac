/*
 * udp_echo: the floor of bench/compare.sh. Answers each DNS query on
 * 127.0.0.1:PORT with the query itself, QR set, one recvfrom and one
 * sendto per packet: what any UDP server pays before doing DNS work.
 * Exits by itself after LIFETIME seconds so it can never be left behind.
 *
 *	udp_echo PORT LIFETIME
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	unsigned char buf[4096];
	int s;

	if (argc != 3) {
		fprintf(stderr, "usage: udp_echo PORT LIFETIME\n");
		return 2;
	}
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
	    bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		perror("udp_echo");
		return 1;
	}
	alarm((unsigned)atoi(argv[2]));
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(s, buf, sizeof(buf), 0,
		    (struct sockaddr *)&from, &fromlen);

		if (n < 12)
			continue;
		buf[2] |= 0x80;
		sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, fromlen);
	}
}
