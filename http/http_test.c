/*
 * http_test: the console's pure parts: parameters, times, the lock-out
 * with a moved clock, sessions, HTML escaping.
 */
#include <stdint.h>

#include "http_html.h"
#include "http_internal.h"
#include "unit.h"

static void
test_params(void)
{
	struct http_params	 p;
	const char		*why = NULL;

	CHECK_INT(http_params_parse("by=site&since=2024-01-01&top=5", &p,
	    &why), 0);
	CHECK_INT(p.n, 3);
	CHECK_STR(http_param(&p, "by"), "site");
	CHECK_STR(http_param(&p, "since"), "2024-01-01");
	CHECK(http_param(&p, "until") == NULL);
	CHECK_INT(http_params_parse("name=a%20b+c&x=", &p, &why), 0);
	CHECK_STR(http_param(&p, "name"), "a b c");
	CHECK_STR(http_param(&p, "x"), "");
	CHECK_INT(http_params_parse("name=%00x", &p, &why), -1);
	CHECK_INT(http_params_parse("name=%ff", &p, &why), -1);
	CHECK_INT(http_params_parse("name=%c3%a9", &p, &why), 0);
	CHECK_INT(http_params_parse("name=%c0%af", &p, &why), -1);	/* overlong */
	CHECK_INT(http_params_parse("name=%0a", &p, &why), -1);
	CHECK_INT(http_params_parse("name=%4", &p, &why), -1);
	CHECK_INT(http_params_parse("name=%zz", &p, &why), -1);
	CHECK_INT(http_params_parse("a=1&a=2", &p, &why), -1);
	CHECK_INT(http_params_parse("=1", &p, &why), -1);
	CHECK_INT(http_params_parse(NULL, &p, &why), 0);
	CHECK_INT(p.n, 0);

	static const char *const allowed[] = { "by", "top", NULL };
	const char *bad = NULL;
	CHECK_INT(http_params_parse("by=day&evil=1", &p, &why), 0);
	CHECK_INT(http_params_allow(&p, allowed, &bad), -1);
	CHECK_STR(bad, "evil");

	char long_value[600];
	memset(long_value, 'a', sizeof(long_value));
	memcpy(long_value, "x=", 2);
	long_value[sizeof(long_value) - 1] = '\0';
	CHECK_INT(http_params_parse(long_value, &p, &why), -1);
}

static void
test_times(void)
{
	int64_t	ms;
	long	n;

	CHECK_INT(http_parse_time("2024-05-01", false, &ms), 0);
	CHECK_INT(ms, 1714521600000LL);
	CHECK_INT(http_parse_time("2024-05-01", true, &ms), 0);
	CHECK_INT(ms, 1714521600000LL + 86400000LL);
	CHECK_INT(http_parse_time("2024-05-01T02:00:00+02:00", false, &ms), 0);
	CHECK_INT(ms, 1714521600000LL);
	CHECK_INT(http_parse_time("2024-05-01T00:00:00.250Z", false, &ms), 0);
	CHECK_INT(ms, 1714521600250LL);
	CHECK_INT(http_parse_time("2024-02-30", false, &ms), -1);
	CHECK_INT(http_parse_time("2024-13-01", false, &ms), -1);
	CHECK_INT(http_parse_time("yesterday", false, &ms), -1);
	CHECK_INT(http_parse_time("2024-05-01T25:00", false, &ms), -1);
	CHECK_INT(http_parse_time("2024-05-01Tx", false, &ms), -1);
	CHECK_INT(http_parse_count("10", 1, 100, &n), 0);
	CHECK_INT(n, 10);
	CHECK_INT(http_parse_count("0", 1, 100, &n), -1);
	CHECK_INT(http_parse_count("-1", 0, 100, &n), -1);
	CHECK_INT(http_parse_count("1e3", 0, 10000, &n), -1);
	CHECK_INT(http_parse_count("99999999999999999999", 0, 100, &n), -1);
}

static void
test_lockout(void)
{
	static struct http_auth	a;
	int64_t			t = 1000000;

	for (int i = 0; i < HTTP_LOCK_AFTER - 1; i++) {
		CHECK(http_lock_allows(&a, "192.0.2.1", t));
		http_lock_failed(&a, "192.0.2.1", t);
	}
	CHECK(http_lock_allows(&a, "192.0.2.1", t));
	http_lock_failed(&a, "192.0.2.1", t);
	CHECK(!http_lock_allows(&a, "192.0.2.1", t));
	CHECK(http_lock_allows(&a, "192.0.2.2", t));	/* per address */
	CHECK(!http_lock_allows(&a, "192.0.2.1", t + HTTP_LOCK_BASE_MS - 1));
	CHECK(http_lock_allows(&a, "192.0.2.1", t + HTTP_LOCK_BASE_MS));
	/* The next failure doubles the wait. */
	t += HTTP_LOCK_BASE_MS;
	http_lock_failed(&a, "192.0.2.1", t);
	CHECK(!http_lock_allows(&a, "192.0.2.1", t + 2 * HTTP_LOCK_BASE_MS - 1));
	CHECK(http_lock_allows(&a, "192.0.2.1", t + 2 * HTTP_LOCK_BASE_MS));
	/* ... up to the cap. */
	for (int i = 0; i < 20; i++)
		http_lock_failed(&a, "192.0.2.1", t);
	CHECK(http_lock_allows(&a, "192.0.2.1", t + HTTP_LOCK_MAX_MS));
	/* A success forgets the failures. */
	http_lock_reset(&a, "192.0.2.1");
	CHECK(http_lock_allows(&a, "192.0.2.1", t));
}

static void
test_sessions(void)
{
	static struct http_auth	 a;
	struct http_session	*s, *f;
	char			 id[HTTP_HEX_ID + 1];

	s = http_session_new(&a, "hr1", HTTP_ROLE_HR, 1000, 1);
	CHECK(s != NULL);
	CHECK_INT(strlen(s->id), HTTP_HEX_ID);
	CHECK_INT(strlen(s->csrf), HTTP_HEX_ID);
	CHECK(strcmp(s->id, s->csrf) != 0);
	memcpy(id, s->id, sizeof(id));
	f = http_session_find(&a, id, 1000);
	CHECK(f == s);
	CHECK(http_session_find(&a, id, 1000 + 60000) == NULL);	/* expired */
	id[0] = id[0] == 'a' ? 'b' : 'a';
	CHECK(http_session_find(&a, id, 1000) == NULL);
	CHECK(http_session_find(&a, "short", 1000) == NULL);
}

static void
test_html(void)
{
	struct evbuffer	*b = evbuffer_new();
	char		 out[256];
	size_t		 n;

	html_printf(b, "<td>%s</td><a href=\"/x?c=%u\">%d %L %%</a>",
	    "<script>alert('x')&\"</script>", "a b&c<", 7, (int64_t)-3);
	n = evbuffer_remove(b, out, sizeof(out) - 1);
	out[n] = '\0';
	CHECK_STR(out, "<td>&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;"
	    "&lt;/script&gt;</td><a href=\"/x?c=a%20b%26c%3C\">7 -3 %</a>");
	evbuffer_free(b);
}

int
main(void)
{
	RUN(test_params);
	RUN(test_times);
	RUN(test_lockout);
	RUN(test_sessions);
	RUN(test_html);
	UNIT_DONE();
}
