/* log: see log.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static bool verbose;

void
log_set_verbose(bool v)
{
	verbose = v;
}

bool
log_verbose(void)
{
	return verbose;
}

bool
log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms,
    unsigned long *was_suppressed)
{
	uint64_t sec = now_ms / 1000;

	*was_suppressed = 0;
	if (sec != rl->sec) {
		*was_suppressed = rl->suppressed;
		rl->sec = sec;
		rl->lines = 0;
		rl->suppressed = 0;
	}
	if (rl->lines >= rl->per_s) {
		rl->suppressed++;
		return false;
	}
	rl->lines++;
	return true;
}

static void
vlog(const char *prefix, const char *fmt, va_list ap, int errnum)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* One fprintf per line so lines from the writer thread never mix. */
	if (errnum)
		fprintf(stderr, "dnswarden: %s%s: %s\n", prefix, msg,
		    strerror(errnum));
	else
		fprintf(stderr, "dnswarden: %s%s\n", prefix, msg);
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap, saved);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap, 0);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vlog("debug: ", fmt, ap, 0);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal: ", fmt, ap, saved);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(1);
}
