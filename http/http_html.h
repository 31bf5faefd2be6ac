/*
 * http_html: writing HTML with every value escaped. Private to http/.
 */
#ifndef DNSWARDEN_HTTP_HTML_H
#define DNSWARDEN_HTTP_HTML_H

#include <event2/buffer.h>

/* s with & < > " ' as entities (NULL writes nothing). */
void	html_text(struct evbuffer *b, const char *s);

/* s percent-encoded for a URL's query string. */
void	html_url_value(struct evbuffer *b, const char *s);

/*
 * fmt with its conversions: %s a string, HTML-escaped; %u a string,
 * percent-encoded (then safe in an attribute too); %d an int; %L an
 * int64_t; %% a percent sign. Nothing else is converted, so no argument
 * can reach the page unescaped.
 */
void	html_printf(struct evbuffer *b, const char *fmt, ...);

#endif
