/*
 * bl_import: reading external lists in the line formats (hosts, domains,
 * adblock, dnsmasq; rpz is read by bl_rpz.c). Public lists carry junk, so
 * a line that cannot be read is a warning and is skipped, not an error;
 * rules of a format that are not about DNS names (an adblock list's
 * cosmetic rules, a dnsmasq file's other options) are counted and named
 * in one warning. A list with rules of which not one name could be read
 * is an error that names the format the list looks like.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl_import.h"
#include "bl_rpz.h"

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
	uint32_t	 origin;
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
	uint32_t		 allow_origin;	/* BL_NONE until needed */
	enum bl_import_format	 fmt;
	struct bl_import_counts	 n;
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
		    p->origin, p->line, p->col) == -1)
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

/* The origin of the list's allow rules, made when the first is read. */
static uint32_t
import_allow_origin(struct ifile *f)
{
	if (f->allow_origin == BL_NONE)
		f->allow_origin = bl_origin_add(f->l, BL_NONE, f->file, NULL);
	return f->allow_origin;
}

/* Queue the name in t, blocked, or allowed when allow. Returns 0 (a bad
 * name is a warning), or -1 when out of memory. */
static int
import_name(struct ifile *f, const struct token *t, bool allow)
{
	struct pending *p = queue_tail(f);

	if (p == NULL)
		return -1;
	p->origin = allow ? import_allow_origin(f) : f->origin;
	if (p->origin == BL_NONE)
		return -1;
	p->len = bl_name_entry_simple(t->s, t->len, p->text, &p->hash);
	if (p->len == 0 && import_name_full(f, t, p) == -1)
		return 0;
	if (name_is_ignored(p->text))
		return 0;
	f->n.names++;
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
		if (import_name(f, &t, false) == -1)
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
	return import_name(f, &t, false);
}


/* A rule of the list that dnswarden does not apply, at the current line:
 * counted for the one warning the file gets. */
static void
import_skip(struct ifile *f)
{
	if (f->n.skipped++ == 0)
		f->n.first_skipped = f->line;
}

/* True for an adblock cosmetic (element hiding or scriptlet) rule, which
 * says what a browser hides on a page, not which names to block. */
static bool
adblock_is_cosmetic(const char *line, size_t n)
{
	static const char *const marks[] = {
		"##", "#@#", "#?#", "#@?#", "#$#", "#@$#", "#%#", "#@%#",
	};

	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (memmem(line, n, marks[i], strlen(marks[i])) != NULL)
			return true;
	return false;
}

/* The modifiers after '$' that keep a rule a plain block or allow for
 * every client and type of query. */
static bool
adblock_modifiers_ok(const char *s, size_t n)
{
	while (n > 0) {
		const char *comma = memchr(s, ',', n);
		size_t len = comma ? (size_t)(comma - s) : n;

		if (!(len == 9 && memcmp(s, "important", 9) == 0) &&
		    !(len == 3 && memcmp(s, "all", 3) == 0))
			return false;
		s += len;
		n -= len;
		if (comma != NULL)
			s++, n--;
	}
	return true;
}

/* What follows "name^" in an adblock rule (e + n bytes): nothing, a '|',
 * modifiers that change nothing, and then perhaps a comment. */
static bool
adblock_tail_ok(const char *e, size_t n)
{
	size_t p = 0, m;

	if (p < n && e[p] == '|')
		p++;
	if (p < n && e[p] == '$') {
		m = ++p;
		while (p < n && !is_space(e[p]))
			p++;
		if (!adblock_modifiers_ok(e + m, p - m))
			return false;
	}
	while (p < n && is_space(e[p]))
		p++;
	return p == n || e[p] == '#' || e[p] == '!';
}

/* The characters that end a name in an adblock rule, having a meaning
 * of their own there. */
static const bool adblock_special[256] = {
	['^'] = true, ['$'] = true, ['|'] = true, ['/'] = true, [':'] = true,
	['?'] = true, ['&'] = true, ['='] = true, ['*'] = true, ['\\'] = true,
	['#'] = true, ['!'] = true, [' '] = true, ['\t'] = true, ['\0'] = true,
};

/* The length of the name at the start of s (n bytes). */
static size_t
adblock_name_len(const char *s, size_t n)
{
	size_t p = 0;

	while (p < n && !adblock_special[(unsigned char)s[p]])
		p++;
	return p;
}

/*
 * "||name^" (or "@@||name^", an exception) with what may follow it. The
 * name runs to the first character that cannot be in one; a '*' inside
 * it, a path, or no '^' after it make a rule for URLs, not names.
 */
static int
adblock_anchor(struct ifile *f, const char *line, size_t n, size_t col,
    bool allow)
{
	struct token t = { .s = line, .col = col };
	size_t p = adblock_name_len(line, n);

	/* "*." in front is the same rule (bl_name strips it). */
	if (p == 0 && n > 2 && line[0] == '*' && line[1] == '.')
		p = 2 + adblock_name_len(line + 2, n - 2);
	if (p == 0 || p == n || line[p] != '^' ||
	    !adblock_tail_ok(line + p + 1, n - p - 1)) {
		import_skip(f);
		return 0;
	}
	t.len = p;
	return import_name(f, &t, allow);
}

/*
 * adblock: "||name^" blocks name and the names below it, "@@||name^"
 * allows them; "!" and "#" start comments, "[Adblock Plus 2.0]" is a
 * header. A line that is only a name blocks it, as in AdGuard's DNS
 * filters. Everything else is a rule for browsers: skipped, counted.
 */
static int
adblock_line(struct ifile *f, const char *line, size_t n)
{
	size_t col = 1;
	bool allow = false;
	struct token t, extra;
	size_t pos = 0;

	while (n > 0 && is_space(line[0]))
		line++, n--, col++;
	while (n > 0 && is_space(line[n - 1]))
		n--;
	if (n == 0 || line[0] == '!' || line[0] == '[' ||
	    (line[0] == '#' && !adblock_is_cosmetic(line, n)))
		return 0;
	f->n.rules++;
	if (n >= 2 && line[0] == '@' && line[1] == '@')
		line += 2, n -= 2, col += 2, allow = true;
	if (n > 2 && line[0] == '|' && line[1] == '|')
		return adblock_anchor(f, line + 2, n - 2, col + 2, allow);
	if (!allow && !adblock_is_cosmetic(line, n) &&
	    token_next(line, n, &pos, &t) && !token_next(line, n, &pos,
	    &extra) && adblock_name_len(t.s, t.len) == t.len) {
		t.col += col - 1;
		return import_name(f, &t, false);
	}
	import_skip(f);
	return 0;
}

/* The names of a dnsmasq "/a/b/" list, at s (n bytes, after the first
 * '/'); each blocked, or allowed when allow. */
static int
dnsmasq_names(struct ifile *f, const char *s, size_t n, size_t col,
    bool allow)
{
	struct token t;

	while (n > 0) {
		const char *slash = memchr(s, '/', n);
		size_t len = slash ? (size_t)(slash - s) : n;

		t.s = s, t.len = len, t.col = col;
		/* "/.example.com/" is written for "example.com" too. */
		if (len > 1 && s[0] == '.')
			t.s++, t.len--, t.col++;
		if (len > 0 && import_name(f, &t, allow) == -1)
			return -1;
		if (slash == NULL)
			break;
		s += len + 1, n -= len + 1, col += len + 1;
	}
	return 0;
}

/*
 * dnsmasq: "address=/name/..." and "local=/name/" answer locally, and so
 * do "server=/name/" without a server: blocked. "server=/name/#" sends
 * the names to the usual servers: allowed. Other options, and servers
 * that forward names elsewhere, are not blocks: skipped, counted.
 */
static int
dnsmasq_line(struct ifile *f, const char *line, size_t n)
{
	static const char *const keys[] = { "address=/", "local=/",
	    "server=/" };
	size_t col = 1, k, klen = 0, last;
	const char *names, *target;

	while (n > 0 && is_space(line[0]))
		line++, n--, col++;
	while (n > 0 && is_space(line[n - 1]))
		n--;
	if (n == 0)
		return 0;
	f->n.rules++;
	for (k = 0; k < 3; k++)
		if (n > (klen = strlen(keys[k])) &&
		    memcmp(line, keys[k], klen) == 0)
			break;
	if (k == 3 || (last = (size_t)((const char *)memrchr(line, '/', n) -
	    line)) < klen) {
		import_skip(f);
		return 0;
	}
	names = line + klen;
	target = line + last + 1;
	if (k == 2 && n - last - 1 > 0 &&
	    !(n - last - 1 == 1 && target[0] == '#')) {
		import_skip(f);		/* forwarded elsewhere */
		return 0;
	}
	return dnsmasq_names(f, names, last - klen, col + klen,
	    k == 2 && n - last - 1 == 1);
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

/* Drop a '#' comment from the line, for the formats that have them. In
 * dnsmasq's, '#' is also a value ("server=/name/#"): a comment there
 * starts the line or follows a blank. */
static size_t
strip_comment(const char *line, size_t n, bool after_blank)
{
	const char *hash = line;

	while ((hash = memchr(hash, '#', n - (size_t)(hash - line))) != NULL) {
		if (!after_blank || hash == line || is_space(hash[-1]))
			return (size_t)(hash - line);
		hash++;
	}
	return n;
}

/* True when line[0..n) holds something other than blanks. */
static bool
has_text(const char *line, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_space(line[i]))
			return true;
	return false;
}

static int
format_line(struct ifile *f, const char *line, size_t n)
{
	if (f->fmt == BL_IMPORT_ADBLOCK)
		return adblock_line(f, line, n);
	n = strip_comment(line, n, f->fmt == BL_IMPORT_DNSMASQ);
	if (f->fmt == BL_IMPORT_DNSMASQ)
		return dnsmasq_line(f, line, n);
	if (has_text(line, n))
		f->n.rules++;
	return f->fmt == BL_IMPORT_HOSTS ? hosts_line(f, line, n) :
	    domains_line(f, line, n);
}

/* Read every line; 0, or -1 after recording an error. */
static int
import_lines(struct ifile *f, const char *path)
{
	char *line;
	size_t n;
	int rc = 0, more = 0;

	while (rc == 0 && (more = import_line(f, &line, &n)) == 1) {
		if (++f->line == 1 && n >= 3 &&
		    memcmp(line, "\xef\xbb\xbf", 3) == 0)
			line += 3, n -= 3;	/* UTF-8 byte order mark */
		if (f->n.rules == 0)
			f->n.first_rule = f->line;
		rc = format_line(f, line, n);
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

static const char *const format_names[BL_IMPORT_NFORMATS] = {
	[BL_IMPORT_HOSTS] = "hosts", [BL_IMPORT_DOMAINS] = "domains",
	[BL_IMPORT_ADBLOCK] = "adblock", [BL_IMPORT_DNSMASQ] = "dnsmasq",
	[BL_IMPORT_RPZ] = "rpz",
};

const char *
bl_import_format_name(enum bl_import_format fmt)
{
	return fmt < BL_IMPORT_NFORMATS ? format_names[fmt] : "unknown";
}

int
bl_import_format_parse(const char *name)
{
	for (int i = 0; i < BL_IMPORT_NFORMATS; i++)
		if (strcmp(name, format_names[i]) == 0)
			return i;
	return -1;
}

/* The format one line of a list is written in, or -1 if it says nothing
 * (blank, a comment, or a name alone, which fits several). */
static int
sniff_line(const char *line, size_t n)
{
	struct token t, u;
	size_t pos = 0;

	if (!token_next(line, n, &pos, &t) || t.s[0] == '#' || t.s[0] == ';')
		return -1;
	if (t.s[0] == '!' || t.s[0] == '[' || (t.len > 2 &&
	    (memcmp(t.s, "||", 2) == 0 || memcmp(t.s, "@@", 2) == 0)))
		return BL_IMPORT_ADBLOCK;
	if (memmem(t.s, t.len, "=/", 2) != NULL)
		return BL_IMPORT_DNSMASQ;
	if (t.s[0] == '$' || memmem(line, n, " CNAME ", 7) != NULL ||
	    memmem(line, n, "\tCNAME\t", 7) != NULL ||
	    memmem(line, n, " SOA ", 5) != NULL)
		return BL_IMPORT_RPZ;
	if (!token_next(line, n, &pos, &u))
		return BL_IMPORT_DOMAINS;
	return token_is_address(&t) ? BL_IMPORT_HOSTS : -1;
}

/* The format the start of the list (the first 64 KiB) looks like, by the
 * lines that say; -1 when none does. */
static int
import_sniff(int fd)
{
	char buf[65536];
	size_t votes[BL_IMPORT_NFORMATS] = { 0 }, n, best = 0;
	ssize_t got = pread(fd, buf, sizeof(buf), 0);
	int fmt = -1;

	for (size_t p = 0; got > 0 && p < (size_t)got; p += n + 1) {
		const char *nl = memchr(buf + p, '\n', (size_t)got - p);
		int v;

		n = nl ? (size_t)(nl - buf - p) : (size_t)got - p;
		if ((v = sniff_line(buf + p, n)) >= 0)
			votes[v]++;
	}
	for (int i = 0; i < BL_IMPORT_NFORMATS; i++)
		if (votes[i] > best)
			best = votes[i], fmt = i;
	return fmt;
}

/* What a list read in full says: the skipped rules in one warning, and
 * an error when it had rules but no name came from them. */
static int
import_verdict(struct bl_loader *l, uint32_t file, const char *path,
    enum bl_import_format fmt, const struct bl_import_counts *n, int fd)
{
	int looks;

	if (n->rules > 0 && n->names == 0) {
		looks = import_sniff(fd);
		if (looks >= 0 && looks != (int)fmt)
			diag_error(l->d, path, n->first_rule, 1, "no name "
			    "could be read in %s format; the list looks like "
			    "%s format", bl_import_format_name(fmt),
			    bl_import_format_name((enum bl_import_format)
			    looks));
		else
			diag_error(l->d, path, n->first_rule, 1, "no name "
			    "could be read in %s format from %zu rule%s",
			    bl_import_format_name(fmt), n->rules,
			    n->rules == 1 ? "" : "s");
		l->failed = true;
		return -1;
	}
	if (n->skipped > 0)
		bl_file_note(l, file, "%zu rule%s that %s not about DNS names "
		    "(%s) skipped, the first at line %zu", n->skipped,
		    n->skipped == 1 ? "" : "s", n->skipped == 1 ? "is" : "are",
		    fmt == BL_IMPORT_ADBLOCK ? "cosmetic, path, wildcard or "
		    "modifier rules" : fmt == BL_IMPORT_DNSMASQ ? "other "
		    "options, or forwarding to a server" : "actions other than "
		    "CNAME . and rpz-passthru.", n->first_skipped);
	return 0;
}

/* A line format's list, read from f's descriptor. */
static int
import_read_lines(struct ifile *f, const char *path)
{
	size_t lines, bytes;
	int rc;

	if ((f->buf = malloc(f->cap)) == NULL) {
		bl_loader_oom(f->l, path);
		return -1;
	}
	/* A record is its name, a NUL and two varints, usually 4 bytes: a
	 * line's length plus 8 covers a domains list (a hosts list needs
	 * less), and what is not used costs nothing. */
	import_count(f, &lines, &bytes);
	if (bl_index_reserve(&f->l->bl->ix, lines, bytes + lines * 8) == -1) {
		free(f->buf);
		bl_loader_oom(f->l, path);
		return -1;
	}
	rc = import_lines(f, path);
	free(f->buf);
	return rc;
}

int
bl_import_read(struct bl_loader *l, FILE *fp, const char *path,
    enum bl_import_format fmt, uint32_t cat)
{
	/* Read through the descriptor: stdio would copy every byte once
	 * more, and its line reading costs more than the names. */
	struct ifile f = { .l = l, .fd = fileno(fp), .cap = READ_SIZE,
	    .fmt = fmt, .allow_origin = BL_NONE };
	int rc;

	f.file = bl_file_add(l, path, bl_import_file_kind(fmt), cat);
	if (f.file == BL_NONE ||
	    (f.origin = bl_origin_add(l, cat, f.file, NULL)) == BL_NONE)
		return -1;
	if (fmt == BL_IMPORT_RPZ)
		rc = bl_rpz_read(l, fp, path, f.file, f.origin, &f.n);
	else
		rc = import_read_lines(&f, path);
	if (rc == 0)
		rc = import_verdict(l, f.file, path, fmt, &f.n, f.fd);
	bl_file_done(l, f.file);
	return rc;
}
