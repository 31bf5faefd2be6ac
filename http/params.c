/*
 * params: the query string of an API request, decoded and checked before
 * any handler sees it. Everything here is attacker input: no NUL, no
 * invalid UTF-8, no control characters get through, and the sizes are
 * bounded, so a handler can put a value in SQL parameters, JSON and the
 * audit trail as it is.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calendar.h"
#include "http_internal.h"

bool
http_text_ok(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	const unsigned char	*end = p + len;

	while (p < end) {
		unsigned	c = *p, need, cp;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, cp = c & 0x07;
		else
			return false;
		if ((size_t)(end - p) <= need)
			return false;
		for (unsigned i = 1; i <= need; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
		    (cp >= 0x80 && cp < 0xa0))
			return false;
		p += need + 1;
	}
	return true;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode s[0..len) into out (cap bytes with the NUL); length or -1. */
static long
pct_decode(const char *s, size_t len, char *out, size_t cap)
{
	size_t	n = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '+')
			c = ' ';
		else if (c == '%') {
			int hi, lo;

			if (i + 2 >= len ||
			    (hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0)
				return -1;
			c = hi << 4 | lo;
			i += 2;
		}
		if (n + 1 >= cap)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return (long)n;
}

/* One "key=value" (or "key") of length len. */
static int
param_add(struct http_params *p, const char *s, size_t len, const char **why)
{
	const char	*eq = memchr(s, '=', len);
	size_t		 klen = eq ? (size_t)(eq - s) : len;
	long		 kn, vn;

	if (p->n == HTTP_PARAMS_MAX) {
		*why = "too many parameters";
		return -1;
	}
	kn = pct_decode(s, klen, p->key[p->n], sizeof(p->key[0]));
	vn = eq ? pct_decode(eq + 1, len - klen - 1, p->value[p->n],
	    sizeof(p->value[0])) : (p->value[p->n][0] = '\0', 0);
	if (kn <= 0 || vn < 0) {
		*why = kn == 0 ? "empty parameter name" :
		    "parameter too long or badly encoded";
		return -1;
	}
	if (strlen(p->key[p->n]) != (size_t)kn ||
	    strlen(p->value[p->n]) != (size_t)vn) {
		*why = "NUL byte in a parameter";
		return -1;
	}
	if (!http_text_ok(p->key[p->n], (size_t)kn) ||
	    !http_text_ok(p->value[p->n], (size_t)vn)) {
		*why = "parameter is not UTF-8 text";
		return -1;
	}
	if (http_param(p, p->key[p->n]) != NULL) {
		*why = "parameter given twice";
		return -1;
	}
	p->n++;
	return 0;
}

int
http_params_parse(const char *q, struct http_params *p, const char **why)
{
	p->n = 0;
	if (q == NULL)
		return 0;
	while (*q != '\0') {
		size_t len = strcspn(q, "&");

		if (len > 0 && param_add(p, q, len, why) == -1)
			return -1;
		q += len;
		if (*q == '&')
			q++;
	}
	return 0;
}

const char *
http_param(const struct http_params *p, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->key[i], key) == 0)
			return p->value[i];
	return NULL;
}

int
http_params_allow(const struct http_params *p, const char *const allowed[],
    const char **bad)
{
	for (size_t i = 0; i < p->n; i++) {
		size_t j;

		for (j = 0; allowed[j] != NULL; j++)
			if (strcmp(p->key[i], allowed[j]) == 0)
				break;
		if (allowed[j] == NULL) {
			*bad = p->key[i];
			return -1;
		}
	}
	return 0;
}

int
http_parse_count(const char *s, long min, long max, long *out)
{
	char	*end;
	long	 v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* n digits at s into *v; 0 or -1. */
static int
digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

/* "Z", "+HH:MM", "+HHMM", "+HH" or "": seconds east of UTC. */
static int
parse_zone(const char *s, long *off)
{
	int	hh = 0, mm = 0;
	size_t	len = strlen(s);

	*off = 0;
	if (len == 0 || strcmp(s, "Z") == 0 || strcmp(s, "z") == 0)
		return 0;
	if ((s[0] != '+' && s[0] != '-') || digits(s + 1, 2, &hh) == -1)
		return -1;
	if (len == 6 && s[3] == ':' && digits(s + 4, 2, &mm) == 0)
		;
	else if (len == 5 && digits(s + 3, 2, &mm) == 0)
		;
	else if (len != 3)
		return -1;
	if (hh > 23 || mm > 59)
		return -1;
	*off = (s[0] == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
	return 0;
}

/* "HH:MM[:SS[.fff]]" then the zone. */
static int
parse_clock(const char *s, struct tm *tm, int *msec, long *off)
{
	int	n = 5, frac = 0, nd = 0;

	if (digits(s, 2, &tm->tm_hour) == -1 || s[2] != ':' ||
	    digits(s + 3, 2, &tm->tm_min) == -1)
		return -1;
	if (s[5] == ':') {
		if (digits(s + 6, 2, &tm->tm_sec) == -1)
			return -1;
		n = 8;
		if (s[n] == '.' || s[n] == ',') {
			for (n++; isdigit((unsigned char)s[n]); n++, nd++)
				if (nd < 3)
					frac = frac * 10 + (s[n] - '0');
			if (nd == 0)
				return -1;
			for (; nd < 3; nd++)
				frac *= 10;
		}
	}
	if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
		return -1;
	*msec = frac;
	return parse_zone(s + n, off);
}

int
http_parse_time(const char *s, bool until, int64_t *ms)
{
	struct tm	tm;
	int		msec = 0;
	long		off = 0;
	time_t		t;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) < 10 || digits(s, 4, &tm.tm_year) == -1 || s[4] != '-' ||
	    digits(s + 5, 2, &tm.tm_mon) == -1 || s[7] != '-' ||
	    digits(s + 8, 2, &tm.tm_mday) == -1 || tm.tm_mon < 1 ||
	    tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > cal_days_in_month(tm.tm_year, tm.tm_mon))
		return -1;
	if (s[10] != '\0' && ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    parse_clock(s + 11, &tm, &msec, &off) == -1))
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*ms = ((int64_t)t - off) * 1000 + msec;
	if (s[10] == '\0' && until)
		*ms += 86400 * 1000LL;
	return 0;
}
