/*
 * rp_format: a report's rows as a table, CSV or JSON. See report.h.
 *
 * Every string here may come from an attacker: query names are theirs,
 * and the database can be written by the service user. So the table (and
 * every message) shows each control character escaped, a terminal never
 * receives one; CSV cells that a spreadsheet would run as a formula are
 * prefixed with '; JSON is written by jansson.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rp_internal.h"

/* ---- escaping for terminals ---- */

/* The code point of the UTF-8 sequence at s, and its length; 0 if bad. */
static size_t
utf8_decode(const unsigned char *s, uint32_t *cp)
{
	size_t n, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		*cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		*cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		*cp = s[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and beyond Unicode are not text. */
	if ((n == 2 && *cp < 0x80) || (n == 3 && *cp < 0x800) ||
	    (n == 4 && *cp < 0x10000) || *cp > 0x10ffff ||
	    (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * What a terminal would act on or that would change how a line reads:
 * C0 and C1 controls, DEL, and the line separators and direction
 * overrides of Unicode.
 */
static bool
is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c ||
	    cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * s with every control character and every byte that is not UTF-8 written
 * as \xHH (bytes) or \uHHHH (other code points); a new string, or NULL
 * when out of memory. *width: its columns, one per code point.
 */
static char *
escape_text(const char *s, size_t *width)
{
	size_t len = strlen(s), o = 0, w = 0;
	char *out = malloc(len * 6 + 1);	/* worst: a byte as \u0080 */

	if (out == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; ) {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);

		if (n == 0) {
			o += (size_t)sprintf(out + o, "\\x%02x", *p);
			w += 4;
			p++;
			continue;
		}
		if (!is_control(cp)) {
			memcpy(out + o, p, n);
			o += n;
			w++;
		} else if (cp < 0x80) {
			o += (size_t)sprintf(out + o, "\\x%02x", cp);
			w += 4;
		} else {
			o += (size_t)sprintf(out + o, "\\u%04x", cp);
			w += 6;
		}
		p += n;
	}
	out[o] = '\0';
	if (width != NULL)
		*width = w;
	return out;
}

/* A cell as text, for the table and CSV; NULL for SQL NULL. */
static const char *
cell_plain(const struct report_column *c, const struct report_cell *v,
    bool table, char *buf, size_t len)
{
	switch (c->type) {
	case REPORT_T_INT:
		snprintf(buf, len, "%" PRId64, v->num);
		return buf;
	case REPORT_T_BOOL:
		if (table)
			return v->num ? "yes" : "no";
		return v->num ? "1" : "0";
	default:
		return v->text;
	}
}

/* ---- table ---- */

static int
table_write(const struct report_rows *r, FILE *out)
{
	size_t n = (r->nrows + 1) * r->ncols, *width, *cw;
	char **cells, buf[32], *title;
	int rc = -1;

	cells = calloc(n, sizeof(*cells));
	cw = calloc(n, sizeof(*cw));
	width = calloc(r->ncols, sizeof(*width));
	if (cells == NULL || cw == NULL || width == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		size_t row = i / r->ncols, c = i % r->ncols;
		const char *v = row == 0 ? r->cols[c].name :
		    cell_plain(&r->cols[c], report_cell(r, row - 1, c), true,
		    buf, sizeof(buf));

		if ((cells[i] = escape_text(v ? v : "-", &cw[i])) == NULL)
			goto out;
		if (cw[i] > width[c])
			width[c] = cw[i];
	}
	if ((title = escape_text(r->title, NULL)) == NULL)
		goto out;
	fprintf(out, "%s\n", title);
	free(title);
	for (size_t i = 0; i < n; i++) {
		size_t c = i % r->ncols;
		int pad = (int)(width[c] - cw[i]);
		bool last = c + 1 == r->ncols;

		if (r->cols[c].type == REPORT_T_INT)
			fprintf(out, "%*s%s", pad, "", cells[i]);
		else
			fprintf(out, "%s%*s", cells[i], last ? 0 : pad, "");
		fputs(last ? "\n" : "  ", out);
	}
	rc = 0;
out:
	for (size_t i = 0; cells != NULL && i < n; i++)
		free(cells[i]);
	free(cells);
	free(cw);
	free(width);
	return rc;
}

/* ---- CSV ---- */

/*
 * One cell, RFC 4180. A cell that begins with = + - @ tab or CR is what a
 * spreadsheet runs as a formula (CWE-1236): a ' before it keeps it text.
 */
static void
csv_field(const char *v, FILE *out)
{
	bool formula, quote;

	if (v == NULL)
		return;
	formula = v[0] != '\0' && strchr("=+-@\t\r", v[0]) != NULL;
	quote = strpbrk(v, ",\"\r\n") != NULL;
	if (quote)
		putc('"', out);
	if (formula)
		putc('\'', out);
	for (; *v; v++) {
		if (*v == '"')
			putc('"', out);
		putc(*v, out);
	}
	if (quote)
		putc('"', out);
}

static int
csv_write(const struct report_rows *r, FILE *out)
{
	char buf[32];

	for (size_t row = 0; row <= r->nrows; row++)
		for (size_t c = 0; c < r->ncols; c++) {
			csv_field(row == 0 ? r->cols[c].name :
			    cell_plain(&r->cols[c], report_cell(r, row - 1, c),
			    false, buf, sizeof(buf)), out);
			fputs(c + 1 == r->ncols ? "\r\n" : ",", out);
		}
	return 0;
}

/* ---- JSON ---- */

/* A JSON string of s; bytes that are not UTF-8 become U+FFFD. */
static json_t *
json_text(const char *s)
{
	json_t *j = json_string(s);
	size_t o = 0;
	char *fixed;

	if (j != NULL)
		return j;
	if ((fixed = malloc(strlen(s) * 3 + 1)) == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; ) {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);

		if (n == 0) {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		} else {
			memcpy(fixed + o, p, n);
			o += n;
			p += n;
		}
	}
	fixed[o] = '\0';
	j = json_string(fixed);
	free(fixed);
	return j;
}

static json_t *
json_cell(const struct report_column *c, const struct report_cell *v)
{
	switch (c->type) {
	case REPORT_T_INT:
		return json_integer(v->num);
	case REPORT_T_BOOL:
		return json_boolean(v->num != 0);
	default:
		return v->text != NULL ? json_text(v->text) : json_null();
	}
}

/* Row i as one object, with period_rows_lost. */
static json_t *
json_row(const struct report_rows *r, size_t i)
{
	json_t *obj = json_object();

	if (obj == NULL)
		return NULL;
	for (size_t c = 0; c < r->ncols; c++)
		if (json_object_set_new(obj, r->cols[c].name,
		    json_cell(&r->cols[c], report_cell(r, i, c))) == -1)
			goto fail;
	if (json_object_set_new(obj, "period_rows_lost",
	    json_integer(r->rows_lost)) == -1)
		goto fail;
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

/* An array of objects, one to a line, as jansson writes each. */
static int
json_write(const struct report_rows *r, FILE *out)
{
	fputs("[", out);
	for (size_t i = 0; i < r->nrows; i++) {
		json_t *obj = json_row(r, i);
		int rc;

		if (obj == NULL)
			return -1;
		fputs(i ? ",\n  " : "\n  ", out);
		rc = json_dumpf(obj, out, 0);
		json_decref(obj);
		if (rc == -1)
			return -1;
	}
	fputs(r->nrows ? "\n]\n" : "]\n", out);
	return 0;
}

/* ---- the writers ---- */

int
report_write(const struct report_rows *r, enum report_format f, FILE *out)
{
	int rc;

	switch (f) {
	case REPORT_CSV:
		rc = csv_write(r, out);
		break;
	case REPORT_JSON:
		rc = json_write(r, out);
		break;
	default:
		rc = table_write(r, out);
		break;
	}
	return rc == 0 && !ferror(out) ? 0 : -1;
}

char *
report_write_buffer(const struct report_rows *r, enum report_format f,
    size_t *len)
{
	char *buf = NULL;
	FILE *m = open_memstream(&buf, len);
	int rc;

	if (m == NULL)
		return NULL;
	rc = report_write(r, f, m);
	if (fclose(m) != 0 || rc == -1) {
		free(buf);
		return NULL;
	}
	return buf;
}

void
report_write_warnings(const struct report_rows *r, const char *prefix,
    FILE *out)
{
	for (size_t i = 0; i < r->ngaps && i < REPORT_GAPS_SHOWN; i++) {
		const struct report_gap *g = &r->gaps[i];
		char *reason = escape_text(g->reason ? g->reason : "", NULL);

		fprintf(out, "%s: warning: %" PRId64 " rows were lost between"
		    " %s and %s (%s)\n", prefix, g->rows, g->from, g->to,
		    reason ? reason : "?");
		free(reason);
	}
	if (r->ngaps > REPORT_GAPS_SHOWN)
		fprintf(out, "%s: warning: and %zu more gaps\n", prefix,
		    r->ngaps - REPORT_GAPS_SHOWN);
	if (r->rows_lost > 0)
		fprintf(out, "%s: warning: %" PRId64 " rows in this period"
		    " were never logged: the counts are too low\n", prefix,
		    r->rows_lost);
}
