/*
 * log: messages to stderr (the daemon runs in the foreground under systemd,
 * which adds time stamps). fatal()/fatalx() are for start-up only: nothing a
 * client or an upstream sends may reach them.
 */
#ifndef DNSWARDEN_LOG_H
#define DNSWARDEN_LOG_H

#include <stdbool.h>

#include <stdint.h>

/* Show log_debug() messages (default off). */
void	log_set_verbose(bool verbose);

/* Is log_debug() on? Read once by a hot path, which then tests its copy. */
bool	log_verbose(void);

/*
 * A budget of lines per second, for debug lines a client can cause (one
 * per query): a flood must not fill the journal. One per thread; zero it
 * and set per_s before use.
 */
struct log_ratelimit {
	uint64_t	sec;		/* the second being counted */
	unsigned	per_s;		/* lines allowed per second */
	unsigned	lines;		/* lines passed in sec */
	unsigned long	suppressed;	/* lines held back in sec */
};

/*
 * May one more line be written at now_ms (any clock counting
 * milliseconds)? The first call of a new second sets *was_suppressed to
 * the lines held back in the seconds since the last line passed (0 if
 * none), for the caller to say so once.
 */
bool	log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms,
	    unsigned long *was_suppressed);

void	log_warn(const char *fmt, ...)		/* appends ": strerror(errno)" */
	    __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)		/* log_warn, then exit(1) */
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
