/*
 * bl_import: reading external lists in hosts format ("0.0.0.0 name ...")
 * or domains format (one name a line). Public lists carry junk, so a line
 * that cannot be read is a warning and is skipped, not an error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bl_internal.h"

/* Names in hosts files that describe the machine itself, not a site. */
static const char *const ignored_names[] = {
	"0.0.0.0", "broadcasthost", "ip6-allhosts", "ip6-allnodes",
	"ip6-allrouters", "ip6-localhost", "ip6-localnet", "ip6-loopback",
	"ip6-mcastprefix", "local", "localhost", "localhost.localdomain",
	"localhost4", "localhost4.localdomain4", "localhost6",
	"localhost6.localdomain6",
};

/* One imported file being read. */
struct ifile {
	struct bl_loader	*l;
	uint32_t		 file;
	uint32_t		 origin;
	size_t			 line;
};

struct token {
	const char	*s;
	size_t		 len;
	size_t		 col;	/* 1-based */
};

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

/* The next whitespace-separated token of line[0..n) from *pos. */
static bool
token_next(const char *line, size_t n, size_t *pos, struct token *t)
{
	size_t p = *pos;

	while (p < n && is_space(line[p]))
		p++;
	if (p == n)
		return false;
	t->s = line + p;
	t->col = p + 1;
	while (p < n && !is_space(line[p]))
		p++;
	t->len = (size_t)(line + p - t->s);
	*pos = p;
	return true;
}

/* t as printable text for a message (at most 80 bytes, others as '?'). */
static const char *
token_show(const struct token *t, char *buf, size_t size)
{
	size_t n = t->len < size - 1 ? t->len : size - 1;

	for (size_t i = 0; i < n; i++)
		buf[i] = (t->s[i] > 0x20 && t->s[i] < 0x7f) ? t->s[i] : '?';
	buf[n] = '\0';
	return buf;
}

static bool
token_is_address(const struct token *t)
{
	char buf[INET6_ADDRSTRLEN + 1];
	unsigned char addr[sizeof(struct in6_addr)];

	if (t->len >= sizeof(buf))
		return false;
	memcpy(buf, t->s, t->len);
	buf[t->len] = '\0';
	return inet_pton(AF_INET, buf, addr) == 1 ||
	    inet_pton(AF_INET6, buf, addr) == 1;
}

static bool
name_is_ignored(const char *name)
{
	for (size_t i = 0; i < sizeof(ignored_names) /
	    sizeof(ignored_names[0]); i++)
		if (strcmp(name, ignored_names[i]) == 0)
			return true;
	return false;
}

static int
import_name(struct ifile *f, const struct token *t)
{
	struct bl_name nm;
	char why[BL_WHY_MAX], show[81];

	if (bl_name_parse(t->s, t->len, BL_NAME_ENTRY, &nm, why) == -1) {
		bl_file_warn(f->l, f->file, f->line, t->col, "invalid domain "
		    "name \"%s\": %s; skipped", token_show(t, show,
		    sizeof(show)), why);
		return 0;
	}
	if (name_is_ignored(nm.text))
		return 0;
	return bl_entry_add(f->l, &nm, f->origin, f->line, t->col);
}

static int
hosts_line(struct ifile *f, const char *line, size_t n)
{
	struct token t;
	size_t pos = 0, names = 0;

	if (!token_next(line, n, &pos, &t))
		return 0;
	if (!token_is_address(&t)) {
		bl_file_warn(f->l, f->file, f->line, t.col, "expected an "
		    "address and names (hosts format); line skipped");
		return 0;
	}
	while (token_next(line, n, &pos, &t)) {
		names++;
		if (import_name(f, &t) == -1)
			return -1;
	}
	if (names == 0)
		bl_file_warn(f->l, f->file, f->line, 1, "address without "
		    "names; line skipped");
	return 0;
}

static int
domains_line(struct ifile *f, const char *line, size_t n)
{
	struct token t, extra;
	size_t pos = 0;

	if (!token_next(line, n, &pos, &t))
		return 0;
	if (token_next(line, n, &pos, &extra)) {
		bl_file_warn(f->l, f->file, f->line, extra.col, "expected one "
		    "name a line (domains format); line skipped");
		return 0;
	}
	return import_name(f, &t);
}

int
bl_import_read(struct bl_loader *l, FILE *fp, const char *path,
    enum bl_import_format fmt, uint32_t cat)
{
	struct ifile f = { .l = l };
	char *buf = NULL, *line, *hash;
	size_t cap = 0, n;
	ssize_t got;
	int rc = 0;

	f.file = bl_file_add(l, path, fmt == BL_IMPORT_HOSTS ? BL_FILE_HOSTS :
	    BL_FILE_DOMAINS, cat);
	if (f.file == BL_NONE ||
	    (f.origin = bl_origin_add(l, cat, f.file, NULL)) == BL_NONE)
		return -1;
	while (rc == 0 && (got = getline(&buf, &cap, fp)) != -1) {
		line = buf;
		n = (size_t)got;
		if (++f.line == 1 && n >= 3 && memcmp(line, "\xef\xbb\xbf", 3)
		    == 0)
			line += 3, n -= 3;	/* UTF-8 byte order mark */
		if ((hash = memchr(line, '#', n)) != NULL)
			n = (size_t)(hash - line);
		rc = fmt == BL_IMPORT_HOSTS ? hosts_line(&f, line, n) :
		    domains_line(&f, line, n);
	}
	if (rc == 0 && ferror(fp)) {
		diag_error(l->d, path, 0, 0, "read error: %s", strerror(errno));
		l->failed = true;
		rc = -1;
	}
	free(buf);
	bl_file_done(l, f.file);
	return rc;
}
