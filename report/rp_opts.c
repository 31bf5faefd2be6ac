/*
 * rp_opts: a report's options, its time zone and its dates. See report.h.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "calendar.h"
#include "rp_internal.h"

#define RP_ZONEINFO	"/usr/share/zoneinfo/"

static const char *const by_names[] = {
	[REPORT_BY_TOTAL] = NULL, [REPORT_BY_DAY] = "day",
	[REPORT_BY_WEEK] = "week", [REPORT_BY_MONTH] = "month",
	[REPORT_BY_CLIENT] = "client", [REPORT_BY_CATEGORY] = "category",
	[REPORT_BY_SITE] = "site", [REPORT_BY_DOMAIN] = "domain",
	[REPORT_BY_POLICY] = "policy", [REPORT_BY_INSTANCE] = "instance",
};
#define BY_LIST	"day, week, month, client, category, site, domain, policy," \
	" instance"

static const char *const format_names[] = {
	[REPORT_TABLE] = "table", [REPORT_CSV] = "csv", [REPORT_JSON] = "json",
};

void
report_opts_init(struct report_opts *o, enum report_kind kind)
{
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->limit = REPORT_LOG_LIMIT;
	o->until = RP_TIME_MAX;
}

static int
name_index(const char *s, const char *const names[], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/* A whole number from min up. */
static int
parse_count(const char *s, int64_t min, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min ||
	    !isdigit((unsigned char)s[0]))
		return -1;
	*out = v;
	return 0;
}

/* Copy value into dst (REPORT_ARG_MAX bytes); -1 when it does not fit. */
static int
opt_copy(char *dst, const char *value)
{
	return snprintf(dst, REPORT_ARG_MAX, "%s", value) < REPORT_ARG_MAX ?
	    0 : -1;
}

/*
 * --before ID, or NAME:ID (the instance and id columns of a central
 * log's row: ids are per instance there).
 */
static int
before_parse(struct report_opts *o, const char *value)
{
	const char *colon = strrchr(value, ':');

	o->before_instance[0] = '\0';
	if (colon == NULL)
		return parse_count(value, 1, &o->before);
	if (colon == value || (size_t)(colon - value) >= REPORT_ARG_MAX)
		return -1;
	memcpy(o->before_instance, value, (size_t)(colon - value));
	o->before_instance[colon - value] = '\0';
	return parse_count(colon + 1, 1, &o->before);
}

/* A value for an option of counts (by, top) or of attempts. */
static int
opts_set_kind(struct report_opts *o, const char *name, const char *value,
    int *known)
{
	int64_t n;
	int i;

	*known = 1;
	if (o->kind == REPORT_COUNTS && strcmp(name, "by") == 0) {
		if ((i = name_index(value, by_names, sizeof(by_names) /
		    sizeof(by_names[0]))) < 0)
			return -1;
		o->by = (enum report_by)i;
	} else if (o->kind == REPORT_COUNTS && strcmp(name, "top") == 0) {
		if (parse_count(value, 1, &n) == -1 || n > LONG_MAX)
			return -1;
		o->top = (long)n;
	} else if (o->kind == REPORT_ATTEMPTS && strcmp(name, "limit") == 0) {
		if (parse_count(value, 0, &n) == -1 || n > LONG_MAX)
			return -1;
		o->limit = (long)n;
	} else if (o->kind == REPORT_ATTEMPTS && strcmp(name, "before") == 0)
		return before_parse(o, value);
	else if (o->kind == REPORT_ATTEMPTS && strcmp(name, "client") == 0)
		return value[0] == '\0' ? -1 : opt_copy(o->client, value);
	else if (o->kind == REPORT_ATTEMPTS && strcmp(name, "site") == 0)
		return value[0] == '\0' ? -1 : opt_copy(o->site, value);
	else if (o->kind == REPORT_ATTEMPTS && strcmp(name, "category") == 0)
		return value[0] == '\0' ? -1 : opt_copy(o->category, value);
	else if (o->kind == REPORT_ATTEMPTS && strcmp(name, "rule") == 0)
		return value[0] == '\0' ? -1 : opt_copy(o->rule, value);
	else
		*known = 0;
	return 0;
}

int
report_opts_set(struct report_opts *o, const char *name, const char *value,
    char *err, size_t errlen)
{
	int known = 1, rc = 0, i;

	if (strcmp(name, "since") == 0)
		rc = opt_copy(o->since_arg, value);
	else if (strcmp(name, "until") == 0)
		rc = opt_copy(o->until_arg, value);
	else if (strcmp(name, "tz") == 0)
		rc = opt_copy(o->tz, value);
	else if (strcmp(name, "instance") == 0)
		rc = value[0] == '\0' ? -1 : opt_copy(o->instance, value);
	else if (strcmp(name, "format") == 0) {
		if ((i = name_index(value, format_names, 3)) < 0)
			rc = -1;
		else
			o->format = (enum report_format)i;
	} else
		rc = opts_set_kind(o, name, value, &known);
	if (!known) {
		snprintf(err, errlen, "%s: unknown option", name);
		return -1;
	}
	if (rc == -1) {
		/* The value may be anything: never echo it raw. */
		snprintf(err, errlen, "%s: invalid value%s", name,
		    strcmp(name, "by") == 0 ? " (one of " BY_LIST ")" :
		    strcmp(name, "format") == 0 ? " (table, csv or json)" : "");
		return -1;
	}
	return 0;
}

/* ---- zones ---- */

/* "Z", "+02:00", "+0200", "-05" or "": the offset east of UTC, seconds. */
static int
parse_offset(const char *s, long *off)
{
	int hh, mm = 0, n = 0;

	*off = 0;
	if (*s == '\0' || strcmp(s, "Z") == 0 || strcmp(s, "z") == 0)
		return 0;
	if (*s != '+' && *s != '-')
		return -1;
	if (!(sscanf(s + 1, "%2d:%2d%n", &hh, &mm, &n) == 2 && n == 5) &&
	    !(sscanf(s + 1, "%2d%2d%n", &hh, &mm, &n) == 2 && n == 4) &&
	    !(sscanf(s + 1, "%2d%n", &hh, &n) == 1 && n == 2 && (mm = 0, 1)))
		return -1;
	if (s[1 + n] != '\0' || hh > 23 || mm > 59 ||
	    !isdigit((unsigned char)s[1]))
		return -1;
	*off = (*s == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
	return 0;
}

/* A zoneinfo name: letters, digits, "_+-/", no "..", a TZif file. */
static bool
zone_name_ok(const char *s)
{
	char path[sizeof(RP_ZONEINFO) + REPORT_ARG_MAX], magic[4];
	bool ok = false;
	int fd;

	if (s[0] == '\0' || s[0] == '/' || strstr(s, "..") != NULL)
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && strchr("_+-/", *p) == NULL)
			return false;
	snprintf(path, sizeof(path), RP_ZONEINFO "%s", s);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	ok = read(fd, magic, 4) == 4 && memcmp(magic, "TZif", 4) == 0;
	close(fd);
	return ok;
}

/* The local zone is UTC when it is at offset 0 summer and winter. */
static bool
local_is_utc(void)
{
	time_t jan = 1767225600, jul = 1782864000;	/* 2026-01-01, -07-01 */
	struct tm a, b;

	if (localtime_r(&jan, &a) == NULL || localtime_r(&jul, &b) == NULL)
		return false;
	return a.tm_gmtoff == 0 && b.tm_gmtoff == 0 && a.tm_zone != NULL &&
	    (strcmp(a.tm_zone, "UTC") == 0 || strcmp(a.tm_zone, "GMT") == 0);
}

int
rp_tz_parse(const char *value, struct rp_tz *tz, char *err, size_t errlen)
{
	memset(tz, 0, sizeof(*tz));
	if (strcasecmp(value, "UTC") == 0 || strcasecmp(value, "Z") == 0) {
		tz->kind = RP_TZ_UTC;
	} else if (value[0] == '+' || value[0] == '-') {
		if (parse_offset(value, &tz->offset) == -1)
			goto bad;
		tz->kind = tz->offset == 0 ? RP_TZ_UTC : RP_TZ_FIXED;
	} else if (value[0] == '\0' || strcmp(value, "local") == 0) {
		tzset();
		tz->kind = local_is_utc() ? RP_TZ_UTC : RP_TZ_LOCAL;
		if (tz->kind == RP_TZ_LOCAL)
			snprintf(tz->label, sizeof(tz->label), "local time,"
			    " %s/%s", tzname[0], tzname[1]);
	} else if (zone_name_ok(value)) {
		setenv("TZ", value, 1);
		tzset();
		tz->kind = RP_TZ_LOCAL;
		snprintf(tz->label, sizeof(tz->label), "%s", value);
	} else
		goto bad;
	if (tz->kind == RP_TZ_UTC)
		snprintf(tz->label, sizeof(tz->label), "UTC");
	else if (tz->kind == RP_TZ_FIXED)
		snprintf(tz->label, sizeof(tz->label), "UTC%c%02ld:%02ld",
		    tz->offset < 0 ? '-' : '+', labs(tz->offset) / 3600,
		    labs(tz->offset) / 60 % 60);
	return 0;
bad:
	snprintf(err, errlen, "tz: unknown time zone (UTC, local, an offset"
	    " such as +05:30, or a name such as Europe/Berlin)");
	return -1;
}

void
rp_tz_modifier(const struct rp_tz *tz, char *buf, size_t len)
{
	if (tz->kind == RP_TZ_FIXED)
		snprintf(buf, len, ", '%+ld seconds'", tz->offset);
	else if (tz->kind == RP_TZ_LOCAL)
		snprintf(buf, len, ", 'localtime'");
	else
		buf[0] = '\0';
}

void
rp_time_format(int64_t ms, const struct rp_tz *tz, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	long off = 0;
	struct tm tm;
	size_t n;

	if (ms < 0 || (tz->kind == RP_TZ_LOCAL ? localtime_r(&t, &tm) :
	    gmtime_r(&t, &tm)) == NULL) {
		snprintf(buf, len, "%" PRId64, ms);
		return;
	}
	if (tz->kind == RP_TZ_FIXED) {
		t += tz->offset;
		gmtime_r(&t, &tm);
		off = tz->offset;
	} else if (tz->kind == RP_TZ_LOCAL)
		off = tm.tm_gmtoff;
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (ms % 1000 != 0)
		n += (size_t)snprintf(buf + n, len - n, ".%03d",
		    (int)(ms % 1000));
	if (tz->kind == RP_TZ_UTC)
		snprintf(buf + n, len - n, "Z");
	else
		snprintf(buf + n, len - n, "%c%02ld:%02ld", off < 0 ? '-' : '+',
		    labs(off) / 3600, labs(off) / 60 % 60);
}

/* ---- dates ---- */

/* The "HH:MM[:SS[.fff]]" after the date; *len set to the length read. */
static int
parse_clock(const char *s, struct tm *tm, int *msec, int *len)
{
	int n = 0, frac = 0, digits = 0;

	if (sscanf(s, "%2d:%2d%n", &tm->tm_hour, &tm->tm_min, &n) != 2 ||
	    n != 5)
		return -1;
	if (s[n] == ':') {
		int m = 0;

		if (sscanf(s + n + 1, "%2d%n", &tm->tm_sec, &m) != 1 || m != 2)
			return -1;
		n += 3;
		if (s[n] == '.' || s[n] == ',') {
			for (n++; isdigit((unsigned char)s[n]); n++, digits++)
				if (digits < 3)
					frac = frac * 10 + (s[n] - '0');
			if (digits == 0)
				return -1;
			for (; digits < 3; digits++)
				frac *= 10;
		}
	}
	if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
		return -1;
	*msec = frac;
	*len = n;
	return 0;
}

/* tm (a wall-clock time in zone tz) as Unix seconds. */
static int
zone_to_unix(struct tm *tm, const struct rp_tz *tz, time_t *t)
{
	if (tz->kind == RP_TZ_LOCAL) {
		tm->tm_isdst = -1;
		errno = 0;
		*t = mktime(tm);
		return *t == (time_t)-1 && errno != 0 ? -1 : 0;
	}
	if ((*t = timegm(tm)) == (time_t)-1 && errno == EOVERFLOW)
		return -1;
	if (tz->kind == RP_TZ_FIXED)
		*t -= tz->offset;
	return 0;
}

int
rp_parse_when(const char *s, bool until, const struct rp_tz *tz,
    int64_t *ms)
{
	struct tm tm;
	int n = 0, msec = 0, clock_len = 0;
	long off = 0;
	bool date_only, zoned = false;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &n) != 3 || n != 10 || !isdigit((unsigned char)s[0]) ||
	    tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > cal_days_in_month(tm.tm_year, tm.tm_mon))
		return -1;
	date_only = s[10] == '\0';
	if (!date_only) {
		if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
			return -1;
		if (parse_clock(s + 11, &tm, &msec, &clock_len) == -1 ||
		    parse_offset(s + 11 + clock_len, &off) == -1)
			return -1;
		zoned = s[11 + clock_len] != '\0';
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if (date_only && until)
		tm.tm_mday++;		/* the end of that day, in the zone */
	if (zoned) {
		if ((t = timegm(&tm)) == (time_t)-1 && errno == EOVERFLOW)
			return -1;
		t -= off;
	} else if (zone_to_unix(&tm, tz, &t) == -1)
		return -1;
	*ms = (int64_t)t * 1000 + msec;
	return 0;
}

int
report_opts_finish(struct report_opts *o, char *err, size_t errlen)
{
	struct rp_tz tz;

	if (rp_tz_parse(o->tz, &tz, err, errlen) == -1)
		return -1;
	o->since = 0;
	o->until = RP_TIME_MAX;
	if (o->since_arg[0] != '\0' &&
	    rp_parse_when(o->since_arg, false, &tz, &o->since) == -1) {
		snprintf(err, errlen, "since: not a date (YYYY-MM-DD or"
		    " YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])");
		return -1;
	}
	if (o->until_arg[0] != '\0' &&
	    rp_parse_when(o->until_arg, true, &tz, &o->until) == -1) {
		snprintf(err, errlen, "until: not a date (YYYY-MM-DD or"
		    " YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])");
		return -1;
	}
	if (o->since >= o->until) {
		snprintf(err, errlen, "since must be before until");
		return -1;
	}
	return 0;
}

const char *
rp_by_name(enum report_by by)
{
	return by_names[by];
}
