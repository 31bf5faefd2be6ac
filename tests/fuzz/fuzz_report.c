/*
 * fuzz_report: what a URL or a command line gives the report library, and
 * what a database gives its writers. The input is lines: the first ones
 * "name=value" options for report_opts_set() until a line "--", then text
 * cells of a result that goes through every writer.
 *
 * Beyond not crashing or leaking: finished options have since before
 * until; the table has no control character but its newlines; no CSV
 * cell starts with a character a spreadsheet runs as a formula; the JSON
 * reads back as one object per row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report.h"
#include "fuzz_util.h"

#define MAX_ROWS	32

static const struct report_column cols[] = {
	{ "text", REPORT_T_TEXT }, { "n", REPORT_T_INT },
	{ "flag", REPORT_T_BOOL },
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	setenv("TZ", "UTC", 1);
	return 0;
}

/* Options from the lines up to "--"; returns where the cells begin. */
static char *
fuzz_opts(char *p, char *end, bool attempts)
{
	struct report_opts o;
	char err[256];

	report_opts_init(&o, attempts ? REPORT_ATTEMPTS : REPORT_COUNTS);
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *eq;

		if (nl == NULL)
			nl = end;
		*nl = '\0';
		/* A "--" on the last line leaves no cells: never past end. */
		if (strcmp(p, "--") == 0)
			return nl < end ? nl + 1 : end;
		if ((eq = strchr(p, '=')) != NULL) {
			*eq = '\0';
			if (report_opts_set(&o, p, eq + 1, err, sizeof(err)) ==
			    -1)
				FUZZ_CHECK(err[0] != '\0');
		}
		p = nl + 1;
	}
	if (report_opts_finish(&o, err, sizeof(err)) == 0)
		FUZZ_CHECK(o.since < o.until);
	else
		FUZZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
	return end;
}

static void
check_table(const char *t, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];

		FUZZ_CHECK(c == '\n' || (c >= 0x20 && c != 0x7f));
		/* C1 controls in UTF-8: C2 80 .. C2 9F. */
		if (c == 0xc2 && i + 1 < len)
			FUZZ_CHECK((unsigned char)t[i + 1] < 0x80 ||
			    (unsigned char)t[i + 1] > 0x9f);
	}
}

/* Every field's first byte, outside and inside quotes. */
static void
check_csv(const char *t, size_t len)
{
	bool start = true, quoted = false;

	for (size_t i = 0; i < len; i++) {
		char c = t[i];

		if (start) {
			start = false;
			if (c == '"') {
				quoted = true;
				if (i + 1 < len)
					FUZZ_CHECK(strchr("=+-@\t\r",
					    t[i + 1]) == NULL || t[i + 1] == '\0');
				continue;
			}
			FUZZ_CHECK(c == '\0' || strchr("=+-@\t\r", c) == NULL ||
			    (c == '\r' && i + 1 < len && t[i + 1] == '\n'));
		}
		if (quoted) {
			if (c == '"' && i + 1 < len && t[i + 1] == '"')
				i++;
			else if (c == '"')
				quoted = false;
			continue;
		}
		if (c == ',' || c == '\n')
			start = true;
	}
}

static void
fuzz_writers(char *p, char *end)
{
	struct report_rows *r = calloc(1, sizeof(*r));
	char *buf;
	size_t len;
	json_t *j;

	FUZZ_CHECK(r != NULL && p <= end);
	r->cols = cols;
	r->ncols = 3;
	r->cells = calloc(MAX_ROWS * 3, sizeof(*r->cells));
	FUZZ_CHECK(r->cells != NULL);
	snprintf(r->title, sizeof(r->title), "%.*s", (int)(end - p), p);
	while (p < end && r->nrows < MAX_ROWS) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		struct report_cell *row = r->cells + r->nrows * 3;

		if (nl == NULL)
			nl = end;
		*nl = '\0';
		row[0].text = strdup(p);
		row[1].num = (int64_t)(nl - p) - 8;
		row[2].num = (nl - p) & 1;
		r->nrows++;
		p = nl + 1;
	}
	buf = report_write_buffer(r, REPORT_TABLE, &len);
	FUZZ_CHECK(buf != NULL);
	check_table(buf, len);
	free(buf);
	buf = report_write_buffer(r, REPORT_CSV, &len);
	FUZZ_CHECK(buf != NULL);
	check_csv(buf, len);
	free(buf);
	buf = report_write_buffer(r, REPORT_JSON, &len);
	FUZZ_CHECK(buf != NULL);
	j = json_loadb(buf, len, 0, NULL);
	FUZZ_CHECK(j != NULL && json_is_array(j) &&
	    json_array_size(j) == r->nrows);
	json_decref(j);
	free(buf);
	report_write_warnings(r, "fuzz", stderr);
	report_rows_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *cells;

	if (text == NULL || size == 0) {
		free(text);
		return 0;
	}
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	cells = fuzz_opts(text, text + size - 1, data[0] & 1);
	fuzz_writers(cells, text + size - 1);
	free(text);
	return 0;
}
