/*
 * diag: a growable text buffer of "file:line:column: message" lines, so a
 * loader can report every problem it finds instead of stopping at the first.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

void
diag_init(struct diag *d)
{
	memset(d, 0, sizeof(*d));
}

/*
 * Make room for n more bytes plus the NUL. On allocation failure the
 * message is dropped but still counted, so callers still see the error.
 */
static int
diag_reserve(struct diag *d, size_t n)
{
	size_t	 need, cap;
	char	*p;

	need = d->len + n + 1;
	if (need <= d->cap)
		return 0;
	cap = d->cap ? d->cap : 256;
	while (cap < need)
		cap *= 2;
	if ((p = realloc(d->text, cap)) == NULL)
		return -1;
	d->text = p;
	d->cap = cap;
	return 0;
}

static void
diag_append(struct diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
diag_append(struct diag *d, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || diag_reserve(d, (size_t)n) == -1)
		return;
	va_start(ap, fmt);
	vsnprintf(d->text + d->len, d->cap - d->len, fmt, ap);
	va_end(ap);
	d->len += (size_t)n;
}

static void
diag_vadd(struct diag *d, const char *kind, const char *file, size_t line,
    size_t col, const char *fmt, va_list ap)
{
	char	*msg;

	if (vasprintf(&msg, fmt, ap) == -1)
		return;
	/*
	 * Messages quote text from the file: a newline there would forge a
	 * "file:line:column" line of its own, an escape would reach the
	 * terminal. One message, one line, printable.
	 */
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (file == NULL)
		file = "(unknown)";
	if (line == 0)
		diag_append(d, "%s: %s%s\n", file, kind, msg);
	else
		diag_append(d, "%s:%zu:%zu: %s%s\n", file, line, col, kind,
		    msg);
	free(msg);
}

void
diag_error(struct diag *d, const char *file, size_t line, size_t col,
    const char *fmt, ...)
{
	va_list	ap;

	d->errors++;
	va_start(ap, fmt);
	diag_vadd(d, "", file, line, col, fmt, ap);
	va_end(ap);
}

void
diag_warn(struct diag *d, const char *file, size_t line, size_t col,
    const char *fmt, ...)
{
	va_list	ap;

	d->warnings++;
	va_start(ap, fmt);
	diag_vadd(d, "warning: ", file, line, col, fmt, ap);
	va_end(ap);
}

const char *
diag_text(const struct diag *d)
{
	return d->text != NULL ? d->text : "";
}

void
diag_free(struct diag *d)
{
	free(d->text);
	memset(d, 0, sizeof(*d));
}
