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

/*
 * Names wait in a short queue between parsing and insertion so that the
 * CPU fetches their (random) index slots while the next lines are parsed:
 * without it, a large import spends most of its time waiting for memory.
 */
#define QUEUE_LEN	16

struct pending {
	uint32_t	 hash;
	size_t		 line;
	size_t		 col;
	size_t		 len;
	char		 text[BL_NAME_TEXT_MAX + 1];
};

/* One imported file being read. */
struct ifile {
	struct bl_loader	*l;
	uint32_t		 file;
	uint32_t		 origin;
	size_t			 line;
	struct pending		 queue[QUEUE_LEN];
	size_t			 qhead;
	size_t			 qlen;
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
	/* Every ignored name starts with one of these: skip the rest fast. */
	if (strchr("0bil", name[0]) == NULL)
		return false;
	for (size_t i = 0; i < sizeof(ignored_names) /
	    sizeof(ignored_names[0]); i++)
		if (strcmp(name, ignored_names[i]) == 0)
			return true;
	return false;
}

/* Insert queued names, oldest first, until keep are left. */
static int
queue_flush(struct ifile *f, size_t keep)
{
	while (f->qlen > keep) {
		struct pending *p = &f->queue[f->qhead];

		f->qhead = (f->qhead + 1) % QUEUE_LEN;
		f->qlen--;
		if (bl_entry_add_text(f->l, p->text, p->len, p->hash,
		    f->origin, p->line, p->col) == -1)
			return -1;
	}
	return 0;
}

static int
queue_push(struct ifile *f, const struct bl_name *nm, size_t col)
{
	uint32_t h[BL_NAME_LABELS_MAX + 1];
	struct pending *p;

	if (f->qlen == QUEUE_LEN && queue_flush(f, QUEUE_LEN - 1) == -1)
		return -1;
	bl_name_hashes(nm, h);
	if (f->l->bl->ix.nslots > 0)
		bl_index_prefetch(&f->l->bl->ix, h[0]);
	p = &f->queue[(f->qhead + f->qlen++) % QUEUE_LEN];
	p->hash = h[0];
	p->line = f->line;
	p->col = col;
	p->len = nm->textlen;
	memcpy(p->text, nm->text, nm->textlen + 1);
	return 0;
}

/* A warning about the current line, after the names queued before it so
 * that messages stay in file order. */
static void
import_warn(struct ifile *f, size_t col, const char *msg)
{
	if (queue_flush(f, 0) == -1)
		return;
	bl_file_warn(f->l, f->file, f->line, col, "%s", msg);
}

static int
import_name(struct ifile *f, const struct token *t)
{
	struct bl_name nm;
	char why[BL_WHY_MAX], show[BL_SHOW_MAX], msg[256];

	if (bl_name_parse(t->s, t->len, BL_NAME_ENTRY, &nm, why) == -1) {
		snprintf(msg, sizeof(msg), "invalid domain name \"%s\": %s; "
		    "skipped", bl_text_show(t->s, t->len, show), why);
		import_warn(f, t->col, msg);
		return 0;
	}
	if (name_is_ignored(nm.text))
		return 0;
	return queue_push(f, &nm, t->col);
}

static int
hosts_line(struct ifile *f, const char *line, size_t n)
{
	struct token t;
	size_t pos = 0, names = 0;

	if (!token_next(line, n, &pos, &t))
		return 0;
	if (!token_is_address(&t)) {
		import_warn(f, t.col, "expected an address and names (hosts "
		    "format); line skipped");
		return 0;
	}
	while (token_next(line, n, &pos, &t)) {
		names++;
		if (import_name(f, &t) == -1)
			return -1;
	}
	if (names == 0)
		import_warn(f, 1, "address without names; line skipped");
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
		import_warn(f, extra.col, "expected one name a line (domains "
		    "format); line skipped");
		return 0;
	}
	return import_name(f, &t);
}

/*
 * The number of lines in fp, which is rewound; 0 if it cannot be. One
 * name a line is the usual case: reserving that much index at once saves
 * growing it step by step and shrinking it at the end, each a pass of
 * random memory accesses over every entry.
 */
static size_t
count_lines(FILE *fp)
{
	char buf[65536];
	size_t n, lines = 0;

	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		for (char *p = buf; (p = memchr(p, '\n',
		    (size_t)(buf + n - p))) != NULL; p++)
			lines++;
	if (ferror(fp) || fseek(fp, 0, SEEK_SET) == -1) {
		clearerr(fp);
		return 0;
	}
	return lines + 1;
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
	if (bl_index_reserve(&l->bl->ix, count_lines(fp)) == -1) {
		bl_loader_oom(l, path);
		return -1;
	}
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
	if (rc == 0)
		rc = queue_flush(&f, 0);
	if (rc == 0 && ferror(fp)) {
		diag_error(l->d, path, 0, 0, "read error: %s", strerror(errno));
		l->failed = true;
		rc = -1;
	}
	free(buf);
	bl_file_done(l, f.file);
	return rc;
}
