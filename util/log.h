/*
 * log: messages to stderr (the daemon runs in the foreground under systemd,
 * which adds time stamps). fatal()/fatalx() are for start-up only: nothing a
 * client or an upstream sends may reach them.
 */
#ifndef DNSWARDEN_LOG_H
#define DNSWARDEN_LOG_H

#include <stdbool.h>

/* Show log_debug() messages (default off). */
void	log_set_verbose(bool verbose);

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
