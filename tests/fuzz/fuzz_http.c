/*
 * fuzz_http: the console's parsing of what a client sends before any
 * handler runs. Each input is taken, in turn, as: the query string
 * (http_params_parse: percent-decoding, UTF-8, NUL, limits), with the
 * parameter checks and the dates and counts the API takes; the whole
 * request target as evhttp hands it over (http_target_parse: evhttp's
 * URI parser, the path check, the query); a Cookie header
 * (http_cookie_get); and a login body (http_login_parse, through
 * jansson). Invariants: every value that gets through is NUL-free text
 * that http_text_ok() accepts, within the size limits; a path begins with
 * '/'; a cookie value and a login's fields fit their buffers and hold no
 * NUL.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "http_internal.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = { "by", "since", "until", "top",
	    "format", "tz", NULL };
	struct http_params	 p;
	const char		*why, *bad;
	char			*q;
	int64_t			 ms;
	long			 n;

	if ((q = malloc(size + 1)) == NULL)
		return 0;
	memcpy(q, data, size);
	q[size] = '\0';
	if (http_params_parse(q, &p, &why) == 0) {
		FUZZ_CHECK(p.n <= HTTP_PARAMS_MAX);
		for (size_t i = 0; i < p.n; i++) {
			FUZZ_CHECK(p.key[i][0] != '\0');
			FUZZ_CHECK(http_text_ok(p.key[i], strlen(p.key[i])));
			FUZZ_CHECK(http_text_ok(p.value[i],
			    strlen(p.value[i])));
			FUZZ_CHECK(strlen(p.value[i]) <= HTTP_PARAM_LEN);
			FUZZ_CHECK(http_param(&p, p.key[i]) == p.value[i]);
			(void)http_parse_time(p.value[i], i & 1, &ms);
			(void)http_parse_count(p.value[i], 0, 1000, &n);
		}
		(void)http_params_allow(&p, allowed, &bad);
	} else
		FUZZ_CHECK(why != NULL);
	(void)http_parse_time(q, false, &ms);

	/* The request target. */
	struct evhttp_uri	*u;
	const char		*path;

	if (http_target_parse(q, &u, &path, &p, &why) == 0) {
		FUZZ_CHECK(path != NULL && path[0] == '/');
		FUZZ_CHECK(http_text_ok(path, strlen(path)));
		FUZZ_CHECK(p.n <= HTTP_PARAMS_MAX);
	} else
		FUZZ_CHECK(why != NULL);
	if (u != NULL)
		evhttp_uri_free(u);

	/* A Cookie header, for the session cookie. */
	char	id[HTTP_HEX_ID + 2];

	if (http_cookie_get(q, "dw_session", id, sizeof(id)))
		FUZZ_CHECK(strlen(id) < sizeof(id) && strchr(id, ';') == NULL);

	/* A login body (the bytes as sent: NULs included). */
	char	user[65], pw[257];

	if (http_login_parse((const char *)data, size, user, sizeof(user), pw,
	    sizeof(pw)) == 0) {
		FUZZ_CHECK(size <= HTTP_MAX_BODY);
		FUZZ_CHECK(strlen(user) < sizeof(user) &&
		    strlen(pw) < sizeof(pw));
	}
	free(q);
	return 0;
}
