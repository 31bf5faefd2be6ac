/*
 * static: the script, the style sheet and Chart.js (Debian's
 * libjs-chart.js), served from the copies embedded by assets.S.
 */
#include <string.h>

#include "http_internal.h"

extern const char http_asset_chartjs[], http_asset_chartjs_end[];
extern const char http_asset_appjs[], http_asset_appjs_end[];
extern const char http_asset_css[], http_asset_css_end[];

static const struct asset {
	const char	*path;
	const char	*type;
	const char	*start;
	const char	*end;
} assets[] = {
	{ "/static/chart.min.js", "text/javascript; charset=utf-8",
	    http_asset_chartjs, http_asset_chartjs_end },
	{ "/static/app.js", "text/javascript; charset=utf-8",
	    http_asset_appjs, http_asset_appjs_end },
	{ "/static/style.css", "text/css; charset=utf-8",
	    http_asset_css, http_asset_css_end },
};

bool
http_static(struct http_req *r)
{
	if (strcmp(r->path, "/favicon.ico") == 0) {
		/* No icon, and no 404 in every browser's console. */
		evhttp_send_reply(r->req, 204, "No Content", NULL);
		return true;
	}
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
		const struct asset	*a = &assets[i];
		struct evbuffer		*b;

		if (strcmp(r->path, a->path) != 0)
			continue;
		if ((b = evbuffer_new()) == NULL) {
			http_reply_error(r, 500, "out of memory");
			return true;
		}
		evbuffer_add_reference(b, a->start, (size_t)(a->end - a->start),
		    NULL, NULL);
		http_reply(r, 200, a->type, b);
		evbuffer_free(b);
		return true;
	}
	return false;
}
