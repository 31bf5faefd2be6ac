/*
 * fetch_test: when a source is due (time moved, not waited for), and the
 * status file beside a copy. Downloads are tested end to end against a
 * local HTTP(S) server (tests/e2e/test_url_sources.py).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "fetch_internal.h"

static void
test_due(void)
{
	struct fetch_status st = { 0 };

	/* never tried: now */
	CHECK_INT(fetch_due(&st, 3600), 0);
	/* a success: one refresh later */
	st.fetched = st.tried = 1000;
	CHECK_INT(fetch_due(&st, 3600), 4600);
	/* a failure after it: again within 5 minutes, not before */
	st.tried = 2000;
	CHECK_INT(fetch_due(&st, 86400), 2300);
	/* a short refresh is the retry too */
	CHECK_INT(fetch_due(&st, 60), 2060);
	/* a failure close to the refresh: the refresh, not later */
	st.tried = 4500;
	CHECK_INT(fetch_due(&st, 3600), 4600);
	/* never fetched, failed: retried */
	st.fetched = 0;
	st.tried = 100;
	CHECK_INT(fetch_due(&st, 86400), 400);
}

static void
test_status_file(void)
{
	char dir[] = "/tmp/fetch_test.XXXXXX", path[256], meta[300];
	struct fetch_status st = { .fetched = 1700000000, .tried = 1700000100,
	    .names = 12345 }, back;

	if (mkdtemp(dir) == NULL) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/x.list", dir);
	CHECK_INT(fetch_status_read(path, &back), -1);
	snprintf(st.result, sizeof(st.result), "failed: HTTP 500");
	snprintf(st.etag, sizeof(st.etag), "\"abc\"");
	snprintf(st.last_modified, sizeof(st.last_modified),
	    "Thu, 03 Dec 2026 10:00:00 GMT");
	CHECK_INT(fetch_status_write(path, &st), 0);
	CHECK_INT(fetch_status_read(path, &back), 0);
	CHECK_INT(back.fetched, st.fetched);
	CHECK_INT(back.tried, st.tried);
	CHECK_INT(back.names, 12345);
	CHECK_STR(back.result, "failed: HTTP 500");
	CHECK_STR(back.etag, "\"abc\"");
	CHECK_STR(back.last_modified, st.last_modified);
	snprintf(meta, sizeof(meta), "%s.meta", path);
	unlink(meta);
	rmdir(dir);
}

int
main(void)
{
	RUN(test_due);
	RUN(test_status_file);
	UNIT_DONE();
}
