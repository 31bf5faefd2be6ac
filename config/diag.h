/*
 * diag: collected error and warning messages in the form
 * "file:line:column: message", for configuration and blocklist loaders.
 */
#ifndef DNSWARDEN_DIAG_H
#define DNSWARDEN_DIAG_H

#include <stddef.h>

struct diag {
	char	*text;		/* all messages, one per line, NUL-terminated */
	size_t	 len;
	size_t	 cap;
	unsigned errors;
	unsigned warnings;
};

/* Prepare an empty collection. */
void	diag_init(struct diag *d);

/*
 * Record an error at file:line:col (1-based; line 0 means "the file as a
 * whole" and prints "file: message"). The message is formatted like printf.
 */
void	diag_error(struct diag *d, const char *file, size_t line, size_t col,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Same as diag_error() but counted as a warning: "file:l:c: warning: ...". */
void	diag_warn(struct diag *d, const char *file, size_t line, size_t col,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The messages so far ("" if none); owned by d. */
const char *diag_text(const struct diag *d);

/* Release the text; d can be reused after diag_init(). */
void	diag_free(struct diag *d);

#endif
