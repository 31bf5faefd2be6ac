/*
 * html: the one place the console writes HTML. Every %s argument is
 * escaped here, whatever it holds: query names, client names and sites
 * are attacker input (Pi-hole had stored XSS through query names), and a
 * page never has a reason to put unescaped text in. Markup comes only
 * from the format strings, which are constants in pages.c.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "http_html.h"

void
html_text(struct evbuffer *b, const char *s)
{
	if (s == NULL)
		return;
	for (; *s; s++) {
		switch (*s) {
		case '&':
			evbuffer_add(b, "&amp;", 5);
			break;
		case '<':
			evbuffer_add(b, "&lt;", 4);
			break;
		case '>':
			evbuffer_add(b, "&gt;", 4);
			break;
		case '"':
			evbuffer_add(b, "&quot;", 6);
			break;
		case '\'':
			evbuffer_add(b, "&#39;", 5);
			break;
		default:
			evbuffer_add(b, s, 1);
		}
	}
}

/* A query string value: everything but unreserved characters as %XX. */
void
html_url_value(struct evbuffer *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL)
			evbuffer_add(b, p, 1);
		else
			evbuffer_add_printf(b, "%%%c%c", hex[*p >> 4],
			    hex[*p & 15]);
	}
}

void
html_printf(struct evbuffer *b, const char *fmt, ...)
{
	va_list		ap;
	const char	*p;

	va_start(ap, fmt);
	while ((p = strchr(fmt, '%')) != NULL) {
		evbuffer_add(b, fmt, (size_t)(p - fmt));
		switch (p[1]) {
		case 's':
			html_text(b, va_arg(ap, const char *));
			break;
		case 'u':	/* a value inside a URL's query string */
			html_url_value(b, va_arg(ap, const char *));
			break;
		case 'd':
			evbuffer_add_printf(b, "%d", va_arg(ap, int));
			break;
		case 'L':
			evbuffer_add_printf(b, "%" PRId64,
			    va_arg(ap, int64_t));
			break;
		case '%':
			evbuffer_add(b, "%", 1);
			break;
		default:	/* a mistake in a constant: show it */
			evbuffer_add(b, p, 2);
			break;
		}
		fmt = p + 2;
	}
	evbuffer_add(b, fmt, strlen(fmt));
	va_end(ap);
}
