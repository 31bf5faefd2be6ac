/*
 * bl_import: reading external lists in hosts format ("0.0.0.0 name ...")
 * or domains format (one name a line). Public lists carry junk, so a line
 * that cannot be read is a warning and is skipped, not an error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl_import.h"

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

/*
 * The file is read this much at a time into one buffer and parsed where
 * it lies. Reading it whole would add its size to the peak resident size
 * (twice during a reload), and mapping it would let anyone truncating it
 * meanwhile crash the daemon with SIGBUS. A longer line grows the buffer.
 */
#define READ_SIZE	(256 * 1024)

struct pending {
	uint32_t	 hash;
	size_t		 line;
	size_t		 col;
	size_t		 len;
	char		 text[BL_NAME_TEXT_MAX + 1 + 8];
};

/* One imported file being read. */
struct ifile {
	struct bl_loader	*l;
	int			 fd;
	uint32_t		 file;
	uint32_t		 origin;
	size_t			 line;
	char			*buf;
	size_t			 cap;
	size_t			 have;		/* bytes in buf */
	size_t			 pos;		/* where the next line starts */
	bool			 eof;
	struct pending		 queue[QUEUE_LEN];
	size_t			 qhead;
	size_t			 qlen;
};

struct token {
	const char	*s;
	size_t		 len;
	size_t		 col;	/* 1-based */
};

static const bool space[256] = {
	[' '] = true, ['\t'] = true, ['\r'] = true, ['\n'] = true,
	['\v'] = true, ['\f'] = true,
};

static bool
is_space(char c)
{
	return space[(unsigned char)c];
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

	/* The addresses nearly every line has, without inet_pton(). */
	if ((t->len == 7 && memcmp(t->s, "0.0.0.0", 7) == 0) ||
	    (t->len == 9 && memcmp(t->s, "127.0.0.1", 9) == 0))
		return true;
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

/* The queue entry the next name is parsed into, room made for it; it is
 * queued only when import_name() counts it in. */
static struct pending *
queue_tail(struct ifile *f)
{
	if (f->qlen == QUEUE_LEN && queue_flush(f, QUEUE_LEN - 1) == -1)
		return NULL;
	return &f->queue[(f->qhead + f->qlen) % QUEUE_LEN];
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

/* The names bl_name_entry_simple() leaves: IDN, "*.", and bad ones. Fills
 * p and returns 0, or returns -1 after a warning. */
static int
import_name_full(struct ifile *f, const struct token *t, struct pending *p)
{
	uint32_t h[BL_NAME_LABELS_MAX + 1];
	struct bl_name nm;
	char why[BL_WHY_MAX], show[BL_SHOW_MAX], msg[256];

	if (bl_name_parse(t->s, t->len, BL_NAME_ENTRY, &nm, why) == -1) {
		snprintf(msg, sizeof(msg), "invalid domain name \"%s\": %s; "
		    "skipped", bl_text_show(t->s, t->len, show), why);
		import_warn(f, t->col, msg);
		return -1;
	}
	bl_name_hashes(&nm, h);
	p->hash = h[0];
	p->len = nm.textlen;
	memcpy(p->text, nm.text, nm.textlen + 1);
	return 0;
}

static int
import_name(struct ifile *f, const struct token *t)
{
	struct pending *p = queue_tail(f);

	if (p == NULL)
		return -1;
	p->len = bl_name_entry_simple(t->s, t->len, p->text, &p->hash);
	if (p->len == 0 && import_name_full(f, t, p) == -1)
		return 0;
	if (name_is_ignored(p->text))
		return 0;
	if (f->l->bl->ix.nslots > 0)
		bl_index_prefetch(&f->l->bl->ix, p->hash);
	p->line = f->line;
	p->col = t->col;
	f->qlen++;
	return 0;
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

/* The newlines in p[0..n), eight bytes at a time. */
static size_t
newlines(const char *p, size_t n)
{
	const uint64_t ones = UINT64_C(0x0101010101010101), low7 = ones * 0x7f;
	uint64_t w;
	size_t count = 0, i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		w ^= ones * '\n';
		/* Bit 7 of each byte: 1 where the byte is now zero. */
		w = ~(((w & low7) + low7) | w) & ~low7;
		count += (size_t)(((w >> 7) * ones) >> 56);
	}
	for (; i < n; i++)
		count += p[i] == '\n';
	return count;
}

/*
 * Count the lines and bytes of the file (read from offset 0, the file
 * offset left alone) into *lines and *bytes, so that the index and arena
 * are sized once: growing them step by step would rehash every entry and
 * fault in fresh memory along the way. On a read error the counts stop
 * there; reading the lines meets the error again and reports it.
 */
static void
import_count(struct ifile *f, size_t *lines, size_t *bytes)
{
	off_t off = 0;
	ssize_t got;

	*lines = 1;
	*bytes = 0;
	for (;;) {
		got = pread(f->fd, f->buf, f->cap, off);
		if (got == -1 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		*lines += newlines(f->buf, (size_t)got);
		off += got;
	}
	*bytes = (size_t)off;
}

/* Keep the start of a line not read whole, and read more after it. */
static int
import_fill(struct ifile *f)
{
	ssize_t got;
	char *b;

	memmove(f->buf, f->buf + f->pos, f->have - f->pos);
	f->have -= f->pos;
	f->pos = 0;
	if (f->have == f->cap) {
		if ((b = realloc(f->buf, f->cap * 2)) == NULL)
			return -1;
		f->buf = b;
		f->cap *= 2;
	}
	do
		got = read(f->fd, f->buf + f->have, f->cap - f->have);
	while (got == -1 && errno == EINTR);
	if (got == -1)
		return -1;
	f->eof = got == 0;
	f->have += (size_t)got;
	return 0;
}

/* The next line, without its newline, in *line and *n. Returns 1, 0 at
 * the end of the file, or -1 (read error or out of memory: errno). */
static int
import_line(struct ifile *f, char **line, size_t *n)
{
	char *nl;

	for (;;) {
		*line = f->buf + f->pos;
		if ((nl = memchr(*line, '\n', f->have - f->pos)) != NULL) {
			*n = (size_t)(nl - *line);
			f->pos += *n + 1;
			return 1;
		}
		if (f->eof) {	/* the last line may lack its newline */
			*n = f->have - f->pos;
			f->pos = f->have;
			return *n > 0 ? 1 : 0;
		}
		if (import_fill(f) == -1)
			return -1;
	}
}

/* Read every line; 0, or -1 after recording an error. */
static int
import_lines(struct ifile *f, const char *path, enum bl_import_format fmt)
{
	char *line, *hash;
	size_t n;
	int rc = 0, more = 0;

	while (rc == 0 && (more = import_line(f, &line, &n)) == 1) {
		if (++f->line == 1 && n >= 3 &&
		    memcmp(line, "\xef\xbb\xbf", 3) == 0)
			line += 3, n -= 3;	/* UTF-8 byte order mark */
		if ((hash = memchr(line, '#', n)) != NULL)
			n = (size_t)(hash - line);
		rc = fmt == BL_IMPORT_HOSTS ? hosts_line(f, line, n) :
		    domains_line(f, line, n);
	}
	if (rc == 0)
		rc = queue_flush(f, 0);
	if (rc == 0 && more == -1) {
		diag_error(f->l->d, path, 0, 0, "read error: %s",
		    strerror(errno));
		f->l->failed = true;
		rc = -1;
	}
	return rc;
}

int
bl_import_read(struct bl_loader *l, FILE *fp, const char *path,
    enum bl_import_format fmt, uint32_t cat)
{
	/* Read through the descriptor: stdio would copy every byte once
	 * more, and its line reading costs more than the names. */
	struct ifile f = { .l = l, .fd = fileno(fp), .cap = READ_SIZE };
	size_t lines, bytes;
	int rc;

	f.file = bl_file_add(l, path, fmt == BL_IMPORT_HOSTS ? BL_FILE_HOSTS :
	    BL_FILE_DOMAINS, cat);
	if (f.file == BL_NONE ||
	    (f.origin = bl_origin_add(l, cat, f.file, NULL)) == BL_NONE)
		return -1;
	if ((f.buf = malloc(f.cap)) == NULL) {
		bl_loader_oom(l, path);
		return -1;
	}
	/* A record is its name, a NUL and two varints, usually 4 bytes: a
	 * line's length plus 8 covers a domains list (a hosts list needs
	 * less), and what is not used costs nothing. */
	import_count(&f, &lines, &bytes);
	if (bl_index_reserve(&l->bl->ix, lines, bytes + lines * 8) == -1) {
		free(f.buf);
		bl_loader_oom(l, path);
		return -1;
	}
	rc = import_lines(&f, path, fmt);
	free(f.buf);
	bl_file_done(l, f.file);
	return rc;
}
