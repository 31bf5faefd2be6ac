/*
 * fuzz_http: the console's parsing of what a client sends before any
 * handler runs: the query string (http_params_parse: percent-decoding,
 * UTF-8, NUL, limits), the parameter checks, and the dates and counts
 * the API takes. Invariants: every value that gets through is NUL-free
 * text that http_text_ok() accepts, within the size limits.
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
	free(q);
	return 0;
}
