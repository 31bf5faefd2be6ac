/*
 * unit.h: the few macros the C unit tests use. A failed CHECK prints where
 * and what, and the test binary exits non-zero at the end. A test that
 * cannot run here says so with SKIP(why): it is counted and shown, and a
 * binary with skips and no failures exits 77, which meson (and
 * scripts/test.sh after it) report as SKIP, never as a pass.
 */
#ifndef DNSWARDEN_UNIT_H
#define DNSWARDEN_UNIT_H

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failures;
static int unit_checks;
static int unit_skips;

/* Leave the current test function (void) unrun, saying why. */
#define SKIP(why) do {							\
	unit_skips++;							\
	fprintf(stderr, "%s:%d: SKIP: %s\n", __FILE__, __LINE__, (why));\
	return;								\
} while (0)

#define CHECK(cond) do {						\
	unit_checks++;							\
	if (!(cond)) {							\
		unit_failures++;					\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
	}								\
} while (0)

#define CHECK_INT(a, b) do {						\
	long long unit_a = (long long)(a), unit_b = (long long)(b);	\
	unit_checks++;							\
	if (unit_a != unit_b) {						\
		unit_failures++;					\
		fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n",\
		    __FILE__, __LINE__, #a, #b, unit_a, unit_b);	\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *unit_sa = (a), *unit_sb = (b);			\
	unit_checks++;							\
	if (unit_sa == NULL || unit_sb == NULL ||			\
	    strcmp(unit_sa, unit_sb) != 0) {				\
		unit_failures++;					\
		fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n",\
		    __FILE__, __LINE__, #a, #b,				\
		    unit_sa ? unit_sa : "(null)",			\
		    unit_sb ? unit_sb : "(null)");			\
	}								\
} while (0)

#define RUN(fn) do {							\
	int unit_before = unit_failures, unit_skipped = unit_skips;	\
	fn();								\
	fprintf(stderr, "%s %s\n",					\
	    unit_failures != unit_before ? "FAIL" :			\
	    unit_skips != unit_skipped ? "SKIP" : "ok  ", #fn);		\
} while (0)

/* An address for a test: IPv6 when the text holds a colon, else IPv4; port 0. */
static inline struct sockaddr_storage
unit_addr(const char *text)
{
	struct sockaddr_storage ss = { 0 };

	if (strchr(text, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, text, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, text, &a->sin_addr);
	}
	return ss;
}

/* Ends main(): the summary line and the exit status (77: skipped). */
#define UNIT_DONE() do {						\
	fprintf(stderr, "%d checks, %d failed, %d tests skipped\n",	\
	    unit_checks, unit_failures, unit_skips);			\
	return unit_failures ? 1 : unit_skips ? 77 : 0;			\
} while (0)

#endif
