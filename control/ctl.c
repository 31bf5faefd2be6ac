/* control: the client, "dnswarden ctl"; see control.h. */
#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"

/* A reload of large blocklists takes seconds; systemd waits 90 s. */
#define CTL_TIMEOUT_MS	120000

static int64_t
ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
ctl_connect(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(why, whylen, "%s: path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int e = errno;
		snprintf(why, whylen, "cannot connect to %s: %s%s", path,
		    strerror(e), e == ENOENT || e == ECONNREFUSED ?
		    " (is dnswarden running?)" : e == EACCES ?
		    " (run as root or in the dnswarden group)" : "");
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* Everything the daemon sends until it closes; NULL with why on failure. */
static char *
ctl_read_all(int fd, int timeout_ms, char *why, size_t whylen)
{
	int64_t end = ctl_now_ms() + timeout_ms;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *grown;
	ssize_t n;

	while (buf != NULL) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int64_t left = end - ctl_now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			snprintf(why, whylen, "no answer within %d s",
			    timeout_ms / 1000);
			break;
		}
		if (len + 1 >= cap) {
			if ((grown = realloc(buf, cap * 2)) == NULL)
				break;
			buf = grown;
			cap *= 2;
		}
		if ((n = read(fd, buf + len, cap - len - 1)) == 0) {
			buf[len] = '\0';
			return buf;
		}
		if (n < 0 && errno != EINTR) {
			snprintf(why, whylen, "read: %s", strerror(errno));
			break;
		}
		if (n > 0)
			len += (size_t)n;
	}
	if (buf == NULL)
		snprintf(why, whylen, "out of memory");
	free(buf);
	return NULL;
}

int
control_request(const char *path, const char *request, int timeout_ms,
    bool *ok, char **answer, char *why, size_t whylen)
{
	char *buf, *nl;
	int fd;

	if ((fd = ctl_connect(path, why, whylen)) == -1)
		return -1;
	if (dprintf(fd, "%s\n", request) < 0) {
		snprintf(why, whylen, "write to %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	buf = ctl_read_all(fd, timeout_ms, why, whylen);
	close(fd);
	if (buf == NULL)
		return -1;
	if ((nl = strchr(buf, '\n')) == NULL ||
	    (strncmp(buf, "ok\n", 3) != 0 && strncmp(buf, "error\n", 6) != 0)) {
		snprintf(why, whylen, "%s: not a dnswarden control socket",
		    path);
		free(buf);
		return -1;
	}
	*ok = buf[0] == 'o';
	memmove(buf, nl + 1, strlen(nl + 1) + 1);
	*answer = buf;
	return 0;
}

static void
ctl_usage(FILE *out)
{
	fprintf(out, "usage: dnswarden ctl [-c FILE] [-s SOCKET] "
	    "reload|flush [NAME]|stats|upstreams|status\n");
}

/* The socket: -s, or server.control_socket from the configuration. */
static char *
ctl_socket_path(const char *config, const char *sock)
{
	struct config *cfg;
	struct diag d;
	char *path = NULL;

	if (sock != NULL)
		return strdup(sock);
	diag_init(&d);
	cfg = config_load_reader(config, &d);
	if (cfg == NULL)
		fputs(diag_text(&d), stderr);
	diag_free(&d);
	if (cfg != NULL && cfg->server.control_socket == NULL)
		fprintf(stderr, "dnswarden ctl: %s: server.control_socket is "
		    "off\n", config);
	else if (cfg != NULL)
		path = strdup(cfg->server.control_socket);
	config_free(cfg);
	return path;
}

/* Parse argv; -1 to go on, otherwise the exit status. */
static int
ctl_parse(int argc, char **argv, const char **config, const char **sock,
    char *request, size_t len)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char arg[CONTROL_REQUEST_MAX];
	enum control_cmd cmd;
	const char *why;
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+c:s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			*config = optarg;
			break;
		case 's':
			*sock = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "dnswarden ctl: %s: unknown option or "
			    "missing value\n", argv[optind - 1]);
			ctl_usage(stderr);
			return 2;
		}
	}
	if (optind == argc || argc - optind > 2) {
		fprintf(stderr, "dnswarden ctl: %s\n", optind == argc ?
		    "no command given" : "too many arguments");
		ctl_usage(stderr);
		return 2;
	}
	snprintf(request, len, "%s%s%s", argv[optind], argc - optind == 2 ?
	    " " : "", argc - optind == 2 ? argv[optind + 1] : "");
	if (control_request_parse(request, strlen(request), &cmd, arg,
	    sizeof(arg), &why) == -1) {
		fprintf(stderr, "dnswarden ctl: %s: %s\n", request, why);
		ctl_usage(stderr);
		return 2;
	}
	return -1;
}

int
ctl_cmd(int argc, char **argv)
{
	const char *config = CONFIG_DEFAULT_PATH, *sock = NULL;
	char request[CONTROL_REQUEST_MAX + 64], why[512], *path, *answer;
	bool ok;
	int rc;

	if ((rc = ctl_parse(argc, argv, &config, &sock, request,
	    sizeof(request))) >= 0)
		return rc;
	if ((path = ctl_socket_path(config, sock)) == NULL)
		return 1;
	rc = control_request(path, request, CTL_TIMEOUT_MS, &ok, &answer, why,
	    sizeof(why));
	free(path);
	if (rc == -1) {
		fprintf(stderr, "dnswarden ctl: %s\n", why);
		return 1;
	}
	if (ok)
		fputs(answer, stdout);
	else
		fprintf(stderr, "dnswarden ctl: %s: %s", argv[optind], answer);
	free(answer);
	return ok ? 0 : 1;
}
