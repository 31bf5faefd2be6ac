/*
 * blocklist_test: loading blocklist files (sites, imports, allow, the
 * built-in dns-bypass category), the errors and warnings they give with
 * their file:line:column, and matching names in text and wire format.
 * Runs in blocklist/ so that testdata/ paths are relative.
 */
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "blocklist.h"
#include "bl_index.h"
#include "bl_name.h"

static struct blocklist *
load(const char *path, struct diag *d)
{
	diag_init(d);
	return blocklist_load_file(path, d);
}

static struct blocklist *
load_ok(const char *path)
{
	struct diag d;
	struct blocklist *bl = load(path, &d);

	if (bl == NULL || d.errors != 0)
		fprintf(stderr, "%s", diag_text(&d));
	CHECK(bl != NULL);
	diag_free(&d);
	return bl;
}

/* Match name as text; returns the result, m filled. */
static int
match(const struct blocklist *bl, const char *name, struct blocklist_match *m)
{
	return blocklist_match_name(bl, name, m);
}

/* name in wire format from dotted text (no escapes), into w; its length. */
static size_t
wire(const char *name, uint8_t *w)
{
	size_t n = 0;

	while (*name != '\0') {
		size_t l = strcspn(name, ".");

		w[n++] = (uint8_t)l;
		memcpy(w + n, name, l);
		n += l;
		name += l;
		if (*name == '.')
			name++;
	}
	w[n++] = 0;
	return n;
}

static void
test_subdomains_and_label_boundaries(void)
{
	struct blocklist *bl = load_ok("testdata/basic.yaml");
	struct blocklist_match m;

	if (bl == NULL)
		return;
	CHECK_INT(match(bl, "backpage.com", &m), 1);
	CHECK_STR(m.rule, "backpage.com");
	CHECK_STR(m.category, "test-sex");
	CHECK_STR(m.site, "Backpage");
	CHECK_STR(m.file, "testdata/basic.yaml");
	CHECK_INT(m.line, 7);
	CHECK(!m.allowed);
	CHECK_INT(match(bl, "www.backpage.com", &m), 1);
	CHECK_STR(m.rule, "backpage.com");
	CHECK_INT(match(bl, "a.b.c.d.backpage.com", NULL), 1);
	CHECK_INT(match(bl, "notbackpage.com", &m), 0);
	CHECK(m.rule == NULL && !m.allowed);
	CHECK_INT(match(bl, "backpage.com.evil.example", NULL), 0);
	CHECK_INT(match(bl, "backpage.co", NULL), 0);
	CHECK_INT(match(bl, "com", NULL), 0);
	CHECK_INT(match(bl, "ackpage.com", NULL), 0);
	CHECK_INT(match(bl, "wild.example", NULL), 1);	/* "*." stripped */
	CHECK_INT(match(bl, "x.wild.example", &m), 1);
	CHECK_STR(m.rule, "wild.example");
	CHECK_INT(match(bl, "_under_score.example", NULL), 1);
	CHECK_INT(match(bl, "www.0-9.example", NULL), 1);
	CHECK_INT(match(bl, "-odd-.example", NULL), 1);
	blocklist_free(bl);
}

static void
test_case_and_trailing_dot(void)
{
	struct blocklist *bl = load_ok("testdata/basic.yaml");
	struct blocklist_match m;

	if (bl == NULL)
		return;
	CHECK_INT(match(bl, "WWW.BackPage.COM.", &m), 1);
	CHECK_STR(m.rule, "backpage.com");
	CHECK_INT(match(bl, "mixed.example.org", &m), 1);
	CHECK_STR(m.rule, "mixed.example.org");	/* stored lower case */
	CHECK_INT(match(bl, "MIXED.EXAMPLE.ORG.", NULL), 1);
	CHECK_INT(match(bl, "backpage.com..", NULL), -1);
	CHECK_INT(match(bl, "", NULL), -1);
	CHECK_INT(match(bl, ".", NULL), 0);
	CHECK_INT(match(bl, "a..backpage.com", NULL), -1);
	blocklist_free(bl);
}

static void
test_allow_most_specific_wins(void)
{
	struct blocklist *bl = load_ok("testdata/basic.yaml");
	struct blocklist_match m;

	if (bl == NULL)
		return;
	CHECK_INT(match(bl, "x.corp.example", &m), 1);
	CHECK_STR(m.rule, "corp.example");
	/* allow a.corp.example under a block of corp.example */
	CHECK_INT(match(bl, "a.corp.example", &m), 0);
	CHECK(m.allowed);
	CHECK_STR(m.rule, "a.corp.example");
	CHECK(m.category == NULL && m.site == NULL);
	CHECK_STR(m.file, "testdata/basic.yaml");
	CHECK_INT(m.line, 16);
	CHECK_INT(match(bl, "z.a.corp.example", &m), 0);
	CHECK(m.allowed);
	/* block b.a.corp.example under the allow of a.corp.example */
	CHECK_INT(match(bl, "b.a.corp.example", &m), 1);
	CHECK(!m.allowed);
	CHECK_STR(m.rule, "b.a.corp.example");
	CHECK_INT(match(bl, "y.b.a.corp.example", NULL), 1);
	/* the same name blocked and allowed: the exception wins */
	CHECK_INT(match(bl, "exact.example", &m), 0);
	CHECK(m.allowed);
	CHECK_INT(m.line, 17);
	CHECK_INT(blocklist_size(bl), 10);
	blocklist_free(bl);
}

static void
test_wire_matching(void)
{
	struct blocklist *bl = load_ok("testdata/basic.yaml");
	struct blocklist_match m;
	uint8_t w[300];
	size_t n;

	if (bl == NULL)
		return;
	n = wire("www.backpage.com", w);
	CHECK_INT(blocklist_match_wire(bl, w, n, &m), 1);
	CHECK_STR(m.rule, "backpage.com");
	CHECK_STR(m.site, "Backpage");
	n = wire("WWW.BACKPAGE.COM", w);	/* lowered anyway */
	CHECK_INT(blocklist_match_wire(bl, w, n, NULL), 1);
	n = wire("notbackpage.com", w);
	CHECK_INT(blocklist_match_wire(bl, w, n, &m), 0);
	CHECK(m.rule == NULL);
	n = wire("q.a.corp.example", w);
	CHECK_INT(blocklist_match_wire(bl, w, n, &m), 0);
	CHECK(m.allowed);
	CHECK_INT(blocklist_match_wire(bl, (const uint8_t *)"", 1, &m), 0);
	/* labels no entry can hold still leave their suffixes matchable */
	memcpy(w, "\003a.b\010backpage\003com\000", 18);
	CHECK_INT(blocklist_match_wire(bl, w, 18, NULL), 1);
	memcpy(w, "\002\000x\010backpage\003com\000", 17);
	CHECK_INT(blocklist_match_wire(bl, w, 17, NULL), 1);
	memcpy(w, "\010backpage\003c.m\000", 14);
	CHECK_INT(blocklist_match_wire(bl, w, 14, NULL), 0);
	/* malformed: no root label, compression pointer, label over 63 */
	n = wire("www.backpage.com", w);
	CHECK_INT(blocklist_match_wire(bl, w, n - 1, NULL), 0);
	memcpy(w, "\003www\300\014", 6);
	CHECK_INT(blocklist_match_wire(bl, w, 6, &m), 0);
	CHECK(m.rule == NULL);
	memset(w, 'a', sizeof(w));
	w[0] = 64;
	w[65] = 0;
	CHECK_INT(blocklist_match_wire(bl, w, 66, NULL), 0);
	blocklist_free(bl);
}

static void
test_idn_entries(void)
{
	struct blocklist *bl = load_ok("testdata/idn.yaml");
	struct blocklist_match m;

	if (bl == NULL)
		return;
	CHECK_INT(match(bl, "xn--bcher-kva.example", &m), 1);
	CHECK_STR(m.rule, "xn--bcher-kva.example");
	CHECK_STR(m.site, "Bücher");
	CHECK_INT(match(bl, "www.bücher.example", NULL), 1);
	CHECK_INT(match(bl, "münchen.example", &m), 1);
	CHECK_STR(m.rule, "xn--mnchen-3ya.example");
	/* U+3002 separates labels like '.' (RFC 3490 3.1) */
	CHECK_INT(match(bl, "xn--fsqu00a.xn--0zwm56d", &m), 1);
	CHECK_STR(m.rule, "xn--fsqu00a.xn--0zwm56d");
	CHECK_INT(match(bl, "例子.测试", NULL), 1);
	/* Capitals are folded as UTS #46 maps them, Ü to ü too. */
	CHECK_INT(match(bl, "xn--bcher-kva.upper.example", &m), 1);
	CHECK_STR(m.rule, "xn--bcher-kva.upper.example");
	CHECK_INT(match(bl, "bücher.upper.example", NULL), 1);
	CHECK_INT(match(bl, "xn--bcher-2pa.upper.example", NULL), 0);
	CHECK_INT(match(bl, "\xff.example", NULL), -1);	/* bad UTF-8 */
	CHECK_INT(match(bl, "b\xc3.example", NULL), -1);	/* truncated */
	CHECK_INT(match(bl, "\xc0\xae.example", NULL), -1);	/* overlong */
	blocklist_free(bl);
}

/*
 * An entry in capitals blocks what a browser sends for it: libidn2's
 * IDNA2008 with UTS #46 mapping, non-transitional (as browsers now do).
 * "BÜCHER.example" and "bücher.example" both block xn--bcher-kva.example.
 */
static void
test_idn_uts46_mapping(void)
{
	struct blocklist *lower = load_ok("testdata/idn.yaml");
	struct blocklist *upper = load_ok("testdata/idn-upper.yaml");
	struct blocklist_match m;

	if (lower == NULL || upper == NULL)
		goto out;
	CHECK_INT(match(lower, "xn--bcher-kva.example", &m), 1);
	CHECK_STR(m.rule, "xn--bcher-kva.example");
	CHECK_INT(match(upper, "xn--bcher-kva.example", &m), 1);
	CHECK_STR(m.rule, "xn--bcher-kva.example");
	CHECK_INT(match(upper, "www.xn--bcher-kva.example", NULL), 1);
	/* A lookup in capitals is mapped the same way. */
	CHECK_INT(match(upper, "BÜCHER.example", NULL), 1);
	/* Non-transitional: ß stays ß (xn--fa-hia), not "fass". */
	CHECK_INT(match(upper, "xn--fa-hia.example", &m), 1);
	CHECK_STR(m.rule, "xn--fa-hia.example");
	CHECK_INT(match(upper, "fass.example", NULL), 0);
	/* Full-width letters map to plain ASCII. */
	CHECK_INT(match(upper, "full.example", &m), 1);
	CHECK_STR(m.rule, "full.example");
out:
	blocklist_free(lower);
	blocklist_free(upper);
}

static void
test_invalid_entries_are_errors(void)
{
	struct diag d;
	struct blocklist *bl = load("testdata/bad-entries.yaml", &d);

	CHECK(bl == NULL);
	CHECK_INT(d.errors, 8);
	CHECK_STR(diag_text(&d),
	    "testdata/bad-entries.yaml:7:13: invalid domain name "
	    "\"a..b.example\": empty label\n"
	    "testdata/bad-entries.yaml:8:13: invalid domain name "
	    "\"spaced name.example\": character 0x20 not allowed\n"
	    "testdata/bad-entries.yaml:9:13: invalid domain name "
	    "\"slash/example.com\": character '/' not allowed\n"
	    "testdata/bad-entries.yaml:10:13: invalid domain name "
	    "\"port.example:80\": character ':' not allowed\n"
	    "testdata/bad-entries.yaml:11:13: invalid domain name "
	    "\"mid.*.example\": a wildcard is only allowed as a leading "
	    "\"*.\"\n"
	    "testdata/bad-entries.yaml:12:13: invalid domain name \".\": "
	    "empty name\n"
	    "testdata/bad-entries.yaml:13:13: invalid domain name \"aaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example"
	    "\": label longer than 63 characters\n"
	    "testdata/bad-entries.yaml:16:5: invalid domain name "
	    "\".leading.example\": empty label\n");
	diag_free(&d);
}

static void
test_structure_errors(void)
{
	struct diag d;
	struct blocklist *bl = load("testdata/bad-structure.yaml", &d);
	const char *f = "testdata/bad-structure.yaml";
	char want[2048];

	CHECK(bl == NULL);
	CHECK_INT(d.errors, 11);
	snprintf(want, sizeof(want),
	    "%s:20:1: unknown key \"extra\" in a blocklist with categories: "
	    "and allow: (expected categories, allow)\n"
	    "%s:3:5: unknown key \"colour\" in a category (expected name, "
	    "description, sites, import)\n"
	    "%s:6:18: expected a list of domain names, found a scalar\n"
	    "%s:7:9: missing \"name\"\n"
	    "%s:10:9: unknown key \"url\" in a site (expected name, domains)\n"
	    "%s:12:17: cannot open testdata/missing.txt: No such file or "
	    "directory\n"
	    "%s:13:47: unknown format \"csv\" (expected hosts, domains, "
	    "adblock, dnsmasq or rpz)\n"
	    "%s:14:5: expected a category (a mapping), found a scalar\n"
	    "%s:15:11: empty \"name\"\n"
	    "%s:18:5: duplicate key \"name\" (first at line 17)\n"
	    "%s:17:5: warning: category ok has no sites and no import\n"
	    "%s:19:8: expected a list of domain names, found a mapping\n",
	    f, f, f, f, f, f, f, f, f, f, f, f);
	CHECK_STR(diag_text(&d), want);
	diag_free(&d);
}

static void
test_control_characters_stay_out_of_messages(void)
{
	struct diag d;
	struct blocklist *bl = load("testdata/bad-text.yaml", &d);
	const char *f = "testdata/bad-text.yaml";
	const char *c = "testdata/lists/ctrl.txt";
	char want[2048];

	CHECK(bl == NULL);
	CHECK_INT(d.errors, 5);
	snprintf(want, sizeof(want),
	    "%s:5:15: \"name\" holds control characters\n"
	    "%s:8:19: invalid domain name \"new?line.example\": character "
	    "0x0a not allowed\n"
	    "%s:8:40: invalid domain name \"esc?[31m.example\": character "
	    "0x1b not allowed\n"
	    "%s:10:17: cannot import testdata/lists: not a regular file\n"
	    "%s:1:1: warning: invalid domain name \"evil?[2J.example\": "
	    "character 0x1b not allowed; skipped\n"
	    "%s:2:1: warning: invalid domain name \"bell?.example\": "
	    "character 0x07 not allowed; skipped\n"
	    "%s:1:1: no name could be read in domains format from 2 rules\n",
	    f, f, f, f, c, c, c);
	CHECK_STR(diag_text(&d), want);
	diag_free(&d);
}

static void
test_name_limits(void)
{
	struct bl_name nm;
	char name[300], why[BL_WHY_MAX];

	/* 63-byte label fine, 64 not */
	memset(name, 'a', 63);
	strcpy(name + 63, ".example");
	CHECK_INT(bl_name_parse(name, strlen(name), BL_NAME_ENTRY, &nm, why),
	    0);
	memset(name, 'a', 64);
	strcpy(name + 64, ".example");
	CHECK_INT(bl_name_parse(name, strlen(name), BL_NAME_ENTRY, &nm, why),
	    -1);
	/* 253 characters fine (254 with the trailing dot), 254 not */
	for (int i = 0; i < 253; i++)
		name[i] = i % 2 ? '.' : 'a';
	strcpy(name + 253, ".");
	CHECK_INT(bl_name_parse(name, 254, BL_NAME_ENTRY, &nm, why), 0);
	CHECK_INT(nm.textlen, 253);
	CHECK_INT(nm.n, 127);
	CHECK_INT(bl_name_parse(name, 253, BL_NAME_ENTRY, &nm, why), 0);
	name[253] = 'a';
	name[254] = 'a';
	CHECK_INT(bl_name_parse(name, 255, BL_NAME_ENTRY, &nm, why), -1);
	CHECK_STR(why, "name longer than 253 characters");
	/* "*." only in front, and "*" alone is no name */
	CHECK_INT(bl_name_parse("*.a.example", 11, BL_NAME_ENTRY, &nm, why), 0);
	CHECK_STR(nm.text, "a.example");
	CHECK_INT(bl_name_parse("*", 1, BL_NAME_ENTRY, &nm, why), -1);
	CHECK_INT(bl_name_parse("*.", 2, BL_NAME_ENTRY, &nm, why), -1);
	CHECK_STR(why, "empty name");
	CHECK_INT(bl_name_parse("*.*.a", 5, BL_NAME_ENTRY, &nm, why), -1);
}

/*
 * bl_name_entry_simple() against bl_name_parse(): the same text and hash
 * for every plain name, 0 for every other, whether valid or not.
 */
static void
check_simple(const char *s, size_t len, bool plain)
{
	struct bl_name nm;
	uint32_t h[BL_NAME_LABELS_MAX + 1], fast = 0;
	char out[BL_NAME_TEXT_MAX + 1 + 8], why[BL_WHY_MAX];
	size_t n = bl_name_entry_simple(s, len, out, &fast);
	int parsed = bl_name_parse(s, len, BL_NAME_ENTRY, &nm, why);

	CHECK(plain ? n > 0 : n == 0);
	if (n == 0)
		return;
	CHECK_INT(parsed, 0);
	CHECK_INT(n, nm.textlen);
	CHECK_STR(out, nm.text);
	bl_name_hashes(&nm, h);
	CHECK_INT(fast, h[0]);
	CHECK_INT(bl_name_text_hash(out, n), h[0]);
}

static void
test_simple_names(void)
{
	static const struct {
		const char *s;
		bool plain;
	} cases[] = {
		{ "example.com", true }, { "WWW.Example.COM.", true },
		{ "a", true }, { "a.", true }, { "_dmarc.x-y.example", true },
		/* labels around the 8-byte words the hash reads */
		{ "abcdefg.abcdefgh.abcdefghi.abcdefghijklmnop.q", true },
		{ "abcdefghijklmnopq.r", true },
		{ "", false }, { ".", false }, { ".a", false }, { "a..b", false },
		{ "a..", false }, { "a b", false }, { "with/slash.example", false },
		/* valid, but for the full parser */
		{ "*.wild.example", false }, { "b\xc3\xbc" "cher.example", false },
		{ "a\xe3\x80\x82" "example", false },
	};
	char name[300];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_simple(cases[i].s, strlen(cases[i].s), cases[i].plain);
	memset(name, 'A', 63);
	strcpy(name + 63, ".example");
	check_simple(name, strlen(name), true);
	memset(name, 'a', 64);
	strcpy(name + 64, ".example");
	check_simple(name, strlen(name), false);
	for (int i = 0; i < 253; i++)
		name[i] = i % 2 ? '.' : 'a';
	name[253] = '.';
	check_simple(name, 254, true);	/* 253 and a trailing dot */
	name[253] = 'a';
	name[254] = 'a';
	check_simple(name, 255, false);
}

/* Index records "nI.example" for i in [from, to) with origin and line i. */
static void
index_add_range(struct bl_index *ix, int from, int to)
{
	char text[BL_NAME_TEXT_MAX + 1 + 8];
	uint32_t h, slot;
	int bad = 0;

	for (int i = from; i < to; i++) {
		snprintf(text, sizeof(text), "n%d.example", i);
		bl_name_entry_simple(text, strlen(text), text, &h);
		bad += bl_index_add(ix, h, text, strlen(text), (uint32_t)i,
		    (uint32_t)i, &slot) != 0;
	}
	CHECK_INT(bad, 0);
}

/* Every record in [0, n) found, with origin i, or i + 1000000 for those
 * replaced (i % 3 == 0 below replaced). */
static void
index_check(const struct bl_index *ix, int n, int replaced)
{
	char text[BL_NAME_TEXT_MAX + 1 + 8];
	uint32_t h, off, origin, line;
	int bad = 0;

	for (int i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "n%d.example", i);
		bl_name_entry_simple(text, strlen(text), text, &h);
		if (!bl_index_maybe(ix, h) ||
		    (off = bl_index_find(ix, h, text)) == 0) {
			bad++;
			continue;
		}
		bl_index_record(ix, off, &origin, &line);
		bad += origin != (uint32_t)i + (i < replaced && i % 3 == 0 ?
		    1000000 : 0) || line != (uint32_t)i;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(ix->count, n);
}

/*
 * The index past what was reserved for it: slots doubled while adding,
 * the arena grown, replaced records skipped when the slots are rehashed,
 * and the rehash bl_index_finish() does when the load is far off.
 */
static void
test_index_growth(void)
{
	struct bl_index ix;
	char text[BL_NAME_TEXT_MAX + 1 + 8];
	uint32_t h, slot;

	bl_index_init(&ix);
	CHECK_INT(bl_index_reserve(&ix, 10, 100), 0);
	index_add_range(&ix, 0, 5000);
	for (int i = 0; i < 5000; i += 3) {
		snprintf(text, sizeof(text), "n%d.example", i);
		bl_name_entry_simple(text, strlen(text), text, &h);
		CHECK_INT(bl_index_add(&ix, h, text, strlen(text), 7, 7, &slot),
		    1);
		CHECK_INT(bl_index_replace(&ix, slot, (uint32_t)i + 1000000,
		    (uint32_t)i), 0);
	}
	/* a reservation that rehashes what is there, replaced ones left out */
	CHECK_INT(bl_index_reserve(&ix, 20000, 4 << 20), 0);
	index_add_range(&ix, 5000, 6000);
	CHECK_INT(bl_index_finish(&ix), 0);	/* load 0.2: rehashed */
	CHECK(ix.count * 100 >= (size_t)ix.nslots * 50);
	index_check(&ix, 6000, 5000);
	snprintf(text, sizeof(text), "n6000.example");
	bl_name_entry_simple(text, strlen(text), text, &h);
	CHECK_INT(bl_index_find(&ix, h, text), 0);
	bl_index_free(&ix);

	/* nothing at all */
	CHECK_INT(bl_index_finish(&ix), 0);
	CHECK_INT(bl_index_find(&ix, h, text), 0);
	bl_index_free(&ix);
}

/* Write text to dir/name; returns 0 or -1. */
static int
write_file(const char *dir, const char *name, const char *text, size_t len)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	n = fwrite(text, 1, len, f);
	return fclose(f) == 0 && n == len ? 0 : -1;
}

/* Load dir/list.yaml importing dir/list.txt (format fmt) holding text. */
static struct blocklist *
load_import(const char *dir, const char *fmt, const char *text, size_t len,
    struct diag *d)
{
	char yaml[256], path[512];

	snprintf(yaml, sizeof(yaml), "categories:\n  - name: c\n    import:\n"
	    "      - { file: list.txt, format: %s }\n", fmt);
	diag_init(d);
	if (write_file(dir, "list.yaml", yaml, strlen(yaml)) == -1 ||
	    write_file(dir, "list.txt", text, len) == -1) {
		CHECK(!"cannot write the test files");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/list.yaml", dir);
	return blocklist_load_file(path, d);
}

/* Empty files, no final newline, nothing but blank lines and comments. */
static void
test_import_short_files(const char *dir)
{
	static const struct {
		const char *fmt, *text;
		size_t entries;
	} cases[] = {
		{ "domains", "", 0 },
		{ "hosts", "", 0 },
		{ "domains", "\n\n\r\n# only a comment", 0 },
		{ "domains", "a.example\nlast.example", 2 },
		{ "hosts", "0.0.0.0 a.example\n0.0.0.0 last.example", 2 },
		{ "domains", "last.example", 1 },
		{ "domains", "\xef\xbb\xbflast.example\r\n", 1 },
	};
	struct blocklist_match m;
	struct blocklist *bl;
	struct diag d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bl = load_import(dir, cases[i].fmt, cases[i].text,
		    strlen(cases[i].text), &d);
		CHECK(bl != NULL);
		CHECK_STR(diag_text(&d), "");
		diag_free(&d);
		if (bl == NULL)
			continue;
		CHECK_INT(blocklist_size(bl), cases[i].entries);
		if (cases[i].entries > 0) {
			CHECK_INT(match(bl, "www.last.example", &m), 1);
			CHECK_INT(m.line, cases[i].entries);
		}
		blocklist_free(bl);
	}
}

/*
 * An import with many more names than lines: one hosts line longer than
 * the read buffer holding more names, and longer ones, than the first
 * reservation has room for, then a bad name and a normal line.
 */
static void
test_import_past_the_estimate(const char *dir)
{
	const int n = 40000;
	size_t cap = (size_t)n * 40 + 256, len;
	char *text = malloc(cap), name[64], want[512];
	struct blocklist_match m;
	struct blocklist *bl;
	struct diag d;
	int missing = 0;

	if (text == NULL)
		return;
	len = (size_t)snprintf(text, cap, "0.0.0.0");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len,
		    i % 100 ? " N%d.Example" : " b\xc3\xbc" "cher%d.example", i);
	len += (size_t)snprintf(text + len, cap - len,
	    " bad..example\n0.0.0.0 after.example\n");
	bl = load_import(dir, "hosts", text, len, &d);
	free(text);
	CHECK(bl != NULL);
	snprintf(want, sizeof(want), "%s/list.txt:1:%zu: warning: invalid "
	    "domain name \"bad..example\": empty label; skipped\n", dir,
	    len - strlen("bad..example\n0.0.0.0 after.example\n") + 1);
	CHECK_STR(diag_text(&d), want);
	diag_free(&d);
	if (bl == NULL)
		return;
	CHECK_INT(blocklist_size(bl), n + 1);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), i % 100 ? "x.n%d.example" :
		    "x.b\xc3\xbc" "cher%d.example", i);
		missing += match(bl, name, &m) != 1 || m.line != 1;
	}
	CHECK_INT(missing, 0);
	CHECK_INT(match(bl, "after.example", &m), 1);
	CHECK_INT(m.line, 2);
	CHECK_INT(match(bl, "n40000.example", NULL), 0);
	blocklist_free(bl);
}

static void
test_import_files(void)
{
	char dir[] = "/tmp/blocklist_test.XXXXXX", path[512];

	if (mkdtemp(dir) == NULL) {
		CHECK(!"mkdtemp failed");
		return;
	}
	test_import_short_files(dir);
	test_import_past_the_estimate(dir);
	snprintf(path, sizeof(path), "%s/list.yaml", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/list.txt", dir);
	unlink(path);
	rmdir(dir);
}

static void
test_text_show(void)
{
	char out[BL_SHOW_MAX], big[200];

	/* UTF-8 kept; C1 controls (here U+009B, CSI) and stray bytes not */
	CHECK_STR(bl_text_show("b\xc3\xbc\xc2\x9b\xff", 6, out),
	    "b\xc3\xbc???");
	CHECK(bl_text_printable("b\xc3\xbc" "cher"));
	CHECK(!bl_text_printable("a\x7f"));
	CHECK(!bl_text_printable("\xc2\x85"));
	memset(big, 'x', sizeof(big));
	bl_text_show(big, sizeof(big), out);
	CHECK_INT(strlen(out), BL_SHOW_MAX - 8 + 3);
	CHECK(strcmp(out + strlen(out) - 3, "...") == 0);
}

static void
test_imports(void)
{
	struct diag d;
	struct blocklist *bl = load("testdata/imports.yaml", &d);
	struct blocklist_match m;
	const char *h = "testdata/lists/hosts-list.txt";
	const char *dl = "testdata/lists/domains-list.txt";
	char want[2048];

	CHECK(bl != NULL);
	CHECK_INT(d.errors, 0);
	CHECK_INT(d.warnings, 8);
	snprintf(want, sizeof(want),
	    "%s:9:9: warning: invalid domain name \"bad..example\": empty "
	    "label; skipped\n"
	    "%s:10:1: warning: expected an address and names (hosts format); "
	    "line skipped\n"
	    "%s:12:1: warning: address without names; line skipped\n"
	    "%s:6:5: warning: expected one name a line (domains format); "
	    "line skipped\n"
	    "%s:7:1: warning: invalid domain name \"with/slash.example\": "
	    "character '/' not allowed; skipped\n"
	    "%s:10:1: warning: invalid domain name \"??.example\": invalid "
	    "UTF-8; skipped\n"
	    "testdata/imports.yaml:10:19: warning: hosts-two.example is "
	    "already in category imported (%s:6); kept there\n"
	    "testdata/imports.yaml:10:38: warning: domains-one.example is "
	    "already in category imported (%s:3); kept there\n",
	    h, h, h, dl, dl, dl, h, dl);
	CHECK_STR(diag_text(&d), want);
	diag_free(&d);
	if (bl == NULL)
		return;
	CHECK_INT(blocklist_size(bl), 11);
	/* hosts format: several names a line, tabs, "::", comments */
	CHECK_INT(match(bl, "www.hosts-one.example", &m), 1);
	CHECK_STR(m.rule, "hosts-one.example");
	CHECK_STR(m.category, "imported");
	CHECK(m.site == NULL);
	CHECK_STR(m.file, h);
	CHECK_INT(m.line, 5);
	CHECK_INT(match(bl, "hosts-three.example", &m), 1);
	CHECK_INT(m.line, 6);
	CHECK_INT(match(bl, "tab.example", NULL), 1);
	CHECK_INT(match(bl, "v6.example", NULL), 1);
	CHECK_INT(match(bl, "good-after-bad.example", NULL), 1);
	CHECK_INT(match(bl, "under_score.example", NULL), 1);
	CHECK_INT(match(bl, "junk.example", NULL), 0);
	CHECK_INT(match(bl, "localhost", NULL), 0);
	CHECK_INT(match(bl, "ip6-loopback", NULL), 0);
	CHECK_INT(match(bl, "0.0.0.0", NULL), 0);
	CHECK_INT(match(bl, "comment", NULL), 0);
	/* domains format: CRLF, trailing dot, case, "*.", indentation */
	CHECK_INT(match(bl, "domains-two.example", &m), 1);
	CHECK_STR(m.file, dl);
	CHECK_INT(m.line, 4);
	CHECK_INT(match(bl, "x.wild.domains.example", NULL), 1);
	CHECK_INT(match(bl, "indented.example", NULL), 1);
	CHECK_INT(match(bl, "name.example", NULL), 0);
	/* the first category keeps a name listed in two */
	CHECK_INT(match(bl, "hosts-two.example", &m), 1);
	CHECK_STR(m.category, "imported");
	blocklist_free(bl);
}

/* Names that must (1) or must not (0) be blocked, and allowed ones (2). */
static void
check_names(const struct blocklist *bl, const char *const *names,
    const int *want, size_t n)
{
	struct blocklist_match m;

	for (size_t i = 0; i < n; i++) {
		int r = match(bl, names[i], &m);
		int got = r == 1 ? 1 : m.allowed ? 2 : 0;

		if (got != want[i])
			fprintf(stderr, "%s: got %d, want %d\n", names[i], got,
			    want[i]);
		CHECK_INT(got, want[i]);
	}
}

/*
 * adblock, dnsmasq and rpz lists with what public ones carry: a byte
 * order mark, CRLF, comments of each kind, upper case, Unicode names,
 * allow rules, and rules that are not about names (one warning each).
 */
static void
test_formats(void)
{
	static const char *const names[] = {
		/* adblock */
		"www.ads.adblock.example", "tracker.adblock.example",
		"xn--bcher-kva.adblock.example", "ok.ads.adblock.example",
		"pipe.adblock.example", "trailing.adblock.example",
		"x.star.adblock.example", "bare.adblock.example",
		"path.adblock.example", "third.adblock.example",
		"example.com", "wildcard.adblock.example",
		/* dnsmasq */
		"ads.dnsmasq.example", "x.track.dnsmasq.example",
		"a.dnsmasq.example", "b.dnsmasq.example",
		"local.dnsmasq.example", "ok.ads.dnsmasq.example",
		"fwd.dnsmasq.example", "dot.dnsmasq.example",
		"xn--bcher-kva.dnsmasq.example",
		/* rpz */
		"bad.rpz.example", "x.wild.rpz.example", "ok.bad.rpz.example",
		"upper.rpz.example", "xn--bcher-kva.rpz.example",
		"nodata.rpz.example", "drop.rpz.example", "local.rpz.example",
		"outside.other", "rpz.test", "bad.rpz.example.rpz.test",
	};
	static const int want[] = {
		1, 1, 1, 2, 1, 1, 1, 1, 0, 0, 0, 0,
		1, 1, 1, 1, 1, 2, 0, 1, 1,
		1, 1, 2, 1, 1, 0, 0, 0, 0, 0, 0,
	};
	const char *a = "testdata/lists/adblock.txt";
	const char *dm = "testdata/lists/dnsmasq.conf";
	const char *r = "testdata/lists/rpz.zone";
	struct blocklist_match m;
	struct diag d;
	struct blocklist *bl = load("testdata/formats.yaml", &d);
	char want_text[2048];

	CHECK(bl != NULL);
	snprintf(want_text, sizeof(want_text),
	    "%s:18:3: warning: invalid domain name \"bad..adblock.example\": "
	    "empty label; skipped\n"
	    "%s: warning: 5 rules that are not about DNS names (cosmetic, "
	    "path, wildcard or modifier rules) skipped, the first at line 10\n"
	    "%s: warning: 2 rules that are not about DNS names (other "
	    "options, or forwarding to a server) skipped, the first at line "
	    "7\n"
	    "%s:15:1: warning: record outside the zone; skipped\n"
	    "%s:16:1: warning: cannot read the record: Syntax error, value "
	    "expected; skipped\n"
	    "%s: warning: 4 rules that are not about DNS names (actions "
	    "other than CNAME . and rpz-passthru.) skipped, the first at "
	    "line 11\n", a, a, dm, r, r, r);
	CHECK_STR(diag_text(&d), want_text);
	diag_free(&d);
	if (bl == NULL)
		return;
	CHECK_INT(sizeof(names) / sizeof(names[0]), sizeof(want) /
	    sizeof(want[0]));
	check_names(bl, names, want, sizeof(want) / sizeof(want[0]));
	CHECK_INT(blocklist_size(bl), 8 + 8 + 5);
	CHECK_INT(match(bl, "tracker.adblock.example", &m), 1);
	CHECK_STR(m.rule, "tracker.adblock.example");
	CHECK_STR(m.file, a);
	CHECK_INT(m.line, 5);
	CHECK(m.site == NULL);
	CHECK_INT(match(bl, "ok.ads.dnsmasq.example", &m), 0);
	CHECK(m.allowed);
	CHECK_STR(m.file, dm);
	CHECK_INT(m.line, 6);
	CHECK_INT(match(bl, "upper.rpz.example", &m), 1);
	CHECK_INT(m.line, 9);
	blocklist_free(bl);
}

/* A list read in the wrong format is an error naming the right one. */
static void
test_wrong_format(void)
{
	struct diag d;
	struct blocklist *bl = load("testdata/wrong-format.yaml", &d);
	const char *t = diag_text(&d);

	CHECK(bl == NULL);
	CHECK_INT(d.errors, 4);
	CHECK(strstr(t, "testdata/lists/hosts-list.txt:2:1: no name could be "
	    "read in adblock format; the list looks like hosts format\n"));
	CHECK(strstr(t, "testdata/lists/adblock.txt:1:1: no name could be "
	    "read in hosts format; the list looks like adblock format\n"));
	CHECK(strstr(t, "testdata/lists/dnsmasq.conf:2:1: no name could be "
	    "read in domains format; the list looks like dnsmasq format\n"));
	CHECK(strstr(t, "testdata/lists/rpz.zone:1:1: no name could be "
	    "read in dnsmasq format; the list looks like rpz format\n"));
	diag_free(&d);
	blocklist_free(bl);
}

/* A policy's mask passes over block entries of the categories it leaves
 * out, falling back to less specific ones; allow entries always apply. */
static void
test_policies(void)
{
	struct config *cfg = config_default();
	struct config_policy_category adult = { "adult", 1, 1 },
	    sex = { "commercial-sex", 1, 1 }, typo = { "adlut", 7, 9 };
	struct config_policy pol[3] = {
		{ .name = "sex-only", .categories = &sex, .ncategories = 1 },
		{ .name = "adult-only", .categories = &adult,
		    .ncategories = 1 },
		{ .name = "none" },
	};
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct blocklist_match m;
	struct blocklist *bl;
	struct diag d;
	char *files[] = { "testdata/policy.yaml" };

	if (cfg == NULL)
		return;
	cfg->blocklist.files = files;
	cfg->blocklist.nfiles = 1;
	cfg->policies = pol;
	cfg->npolicies = 3;
	struct cidr net;
	const char *why;

	CHECK(cidr_parse("10.1.0.0/16", &net, &why) == 0);
	pol[1].nets = &net;
	pol[1].nnets = 1;
	diag_init(&d);
	bl = blocklist_load(cfg, &d);
	CHECK(bl != NULL);
	CHECK_STR(diag_text(&d), "");
	diag_free(&d);
	if (bl != NULL) {
		CHECK_INT(blocklist_npolicies(bl), 3);
		CHECK_INT(blocklist_match_name_policy(bl, 0, "www.x.example.com",
		    &m), 1);
		CHECK_STR(m.rule, "example.com");
		CHECK_INT(blocklist_match_name_policy(bl, 1, "www.x.example.com",
		    &m), 1);
		CHECK_STR(m.rule, "x.example.com");
		CHECK_INT(blocklist_match_name_policy(bl, 1, "example.com", &m),
		    0);
		CHECK_INT(blocklist_match_name_policy(bl, 2, "www.x.example.com",
		    &m), 0);
		CHECK_INT(blocklist_match_name_policy(bl, 2,
		    "mask.icloud.com", &m), 0);
		CHECK_INT(blocklist_match_name_policy(bl,
		    BLOCKLIST_POLICY_DEFAULT, "mask.icloud.com", &m), 1);
		CHECK_INT(blocklist_match_name_policy(bl, 0, "ok.example.com",
		    &m), 0);
		CHECK(m.allowed);
		inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
		CHECK_INT(blocklist_policy_of(bl, (struct sockaddr *)&sin), 1);
		CHECK_STR(blocklist_policy_name(bl, 1), "adult-only");
		inet_pton(AF_INET, "10.2.2.3", &sin.sin_addr);
		CHECK_INT(blocklist_policy_of(bl, (struct sockaddr *)&sin),
		    BLOCKLIST_POLICY_DEFAULT);
		CHECK(blocklist_policy_name(bl, BLOCKLIST_POLICY_DEFAULT) ==
		    NULL);
	}
	blocklist_free(bl);
	/* A category no blocklist defines is an error at its place. */
	pol[2].categories = &typo;
	pol[2].ncategories = 1;
	diag_init(&d);
	bl = blocklist_load(cfg, &d);
	CHECK(bl == NULL);
	CHECK_STR(diag_text(&d), "(defaults):7:9: policy \"none\": no category "
	    "\"adlut\" in the blocklists\n");
	diag_free(&d);
	cfg->blocklist.files = NULL;
	cfg->blocklist.nfiles = 0;
	cfg->policies = NULL;
	cfg->npolicies = 0;
	config_free(cfg);
}

static void
test_import_warnings_are_capped(void)
{
	struct diag d;
	struct blocklist *bl = load("testdata/junk.yaml", &d);
	const char *last;

	CHECK(bl != NULL);
	CHECK_INT(d.errors, 0);
	CHECK_INT(d.warnings, 21);
	CHECK(strstr(diag_text(&d), "testdata/lists/junk.txt:21:1: warning: "
	    "invalid domain name \"junk20..example\": empty label; "
	    "skipped\n") != NULL);
	CHECK(strstr(diag_text(&d), "junk21..") == NULL);
	last = strstr(diag_text(&d), "testdata/lists/junk.txt: warning: 5 "
	    "more warnings not shown\n");
	CHECK(last != NULL && last[strlen(last) - 1] == '\n' &&
	    strchr(last, '\n')[1] == '\0');
	diag_free(&d);
	if (bl != NULL) {
		CHECK_INT(match(bl, "fine.example", NULL), 1);
		CHECK_INT(match(bl, "last.example", NULL), 1);
	}
	blocklist_free(bl);
}

static void
test_import_warnings_keep_line_order(void)
{
	struct diag d;
	struct blocklist *bl = load("testdata/order.yaml", &d);
	struct blocklist_match m;
	const char *f = "testdata/lists/order.txt";
	char want[1024];

	CHECK(bl != NULL);
	snprintf(want, sizeof(want),
	    "%s:1:1: warning: invalid domain name \"bad1..example\": empty "
	    "label; skipped\n"
	    "%s:5:1: warning: dup.example is already in category a "
	    "(testdata/order.yaml:5); kept there\n"
	    "%s:30:1: warning: invalid domain name \"bad30..example\": empty "
	    "label; skipped\n"
	    "%s:31:1: warning: dup.example is already in category a "
	    "(testdata/order.yaml:5); kept there\n", f, f, f, f);
	CHECK_STR(diag_text(&d), want);
	diag_free(&d);
	if (bl == NULL)
		return;
	CHECK_INT(blocklist_size(bl), 29);
	CHECK_INT(match(bl, "n29.example", &m), 1);
	CHECK_INT(m.line, 29);
	CHECK_INT(match(bl, "n32.example", &m), 1);
	CHECK_INT(m.line, 32);
	CHECK_STR(m.category, "b");
	blocklist_free(bl);
}

static void
test_duplicates(void)
{
	struct diag d;
	struct blocklist *bl = load("testdata/dup-category.yaml", &d);
	struct blocklist_match m;

	CHECK(bl != NULL);
	CHECK_INT(d.errors, 0);
	CHECK_STR(diag_text(&d), "testdata/dup-category.yaml:11:19: warning: "
	    "shared.example is already in category first "
	    "(testdata/dup-category.yaml:5); kept there\n");
	diag_free(&d);
	if (bl == NULL)
		return;
	CHECK_INT(match(bl, "shared.example", &m), 1);
	CHECK_STR(m.category, "first");
	CHECK_STR(m.site, "One");
	CHECK_INT(match(bl, "same.example", &m), 1);
	CHECK_STR(m.site, "One");
	CHECK_INT(match(bl, "four.example", &m), 1);
	CHECK_STR(m.category, "first");
	CHECK_INT(blocklist_size(bl), 3);
	blocklist_free(bl);
}

static struct blocklist *
load_cfg(const char *file, bool dns_bypass, struct diag *d)
{
	char *files[1] = { (char *)file };
	struct config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.blocklist.files = file ? files : NULL;
	cfg.blocklist.nfiles = file ? 1 : 0;
	cfg.blocklist.dns_bypass = dns_bypass;
	diag_init(d);
	return blocklist_load(&cfg, d);
}

static void
test_dns_bypass_builtin(void)
{
	struct diag d;
	struct blocklist *bl;
	struct blocklist_match m;

	bl = load_cfg("testdata/basic.yaml", true, &d);
	CHECK(bl != NULL && d.errors == 0 && d.warnings == 0);
	diag_free(&d);
	if (bl == NULL)
		return;
	CHECK_INT(match(bl, "use-application-dns.net", &m), 1);
	CHECK_STR(m.category, "dns-bypass");
	CHECK_STR(m.file, "(built-in)");
	CHECK_STR(m.site, "Firefox DNS-over-HTTPS canary");
	CHECK_INT(match(bl, "mask.icloud.com", &m), 1);
	CHECK_STR(m.site, "iCloud Private Relay");
	CHECK_INT(match(bl, "mask-h2.icloud.com", &m), 1);
	CHECK_STR(m.rule, "mask-h2.icloud.com");
	CHECK_INT(match(bl, "icloud.com", NULL), 0);
	CHECK_INT(match(bl, "backpage.com", NULL), 1);
	blocklist_free(bl);

	bl = load_cfg("testdata/basic.yaml", false, &d);
	CHECK(bl != NULL);
	diag_free(&d);
	if (bl != NULL) {
		CHECK_INT(match(bl, "use-application-dns.net", NULL), 0);
		CHECK_INT(match(bl, "mask.icloud.com", NULL), 0);
	}
	blocklist_free(bl);

	/* an allow entry wins over the built-in like over any entry */
	bl = load_cfg("testdata/allow-icloud.yaml", true, &d);
	CHECK(bl != NULL && d.errors == 0);
	diag_free(&d);
	if (bl != NULL) {
		CHECK_INT(match(bl, "mask.icloud.com", &m), 0);
		CHECK(m.allowed);
		CHECK_STR(m.file, "testdata/allow-icloud.yaml");
		CHECK_INT(match(bl, "mask-h2.icloud.com", NULL), 1);
	}
	blocklist_free(bl);

	/* ... and the most specific entry still decides */
	bl = load_cfg("testdata/allow-parent.yaml", true, &d);
	CHECK(bl != NULL && d.errors == 0);
	diag_free(&d);
	if (bl != NULL) {
		CHECK_INT(match(bl, "www.icloud.com", &m), 0);
		CHECK(m.allowed);
		CHECK_INT(match(bl, "mask.icloud.com", NULL), 1);
	}
	blocklist_free(bl);

	/* the built-in alone, no files */
	bl = load_cfg(NULL, true, &d);
	CHECK(bl != NULL);
	diag_free(&d);
	if (bl != NULL)
		CHECK_INT(blocklist_size(bl), 3);
	blocklist_free(bl);
}

static void
test_load_errors_fail_whole_load(void)
{
	struct diag d;
	struct blocklist *bl;

	bl = load_cfg("testdata/bad-entries.yaml", true, &d);
	CHECK(bl == NULL);
	CHECK_INT(d.errors, 8);
	diag_free(&d);
	bl = load("testdata/does-not-exist.yaml", &d);
	CHECK(bl == NULL);
	CHECK_STR(diag_text(&d), "testdata/does-not-exist.yaml: cannot open: "
	    "No such file or directory\n");
	diag_free(&d);
}

static void
test_sample_file(void)
{
	static const struct {
		const char *site, *name;
	} sites[] = {
		{ "Backpage", "backpage.com" },
		{ "Craigslist", "craigslist.org" },
		{ "My Provider Guide", "myproviderguide.com" },
		{ "Adult Friend Finder", "adultfriendfinder.com" },
		{ "Find Hot Escorts", "findhotescorts.com" },
		{ "TNA Board", "tnaboard.com" },
		{ "Hot Local Escorts", "hotlocalescorts.com" },
		{ "Naughty Reviews", "naughtyreviews.com" },
		{ "Erotic Mugshots", "eroticmugshots.com" },
		{ "Sexy Escorts USA", "sexyescortsusa.com" },
		{ "Call Me 2nite", "callme2nite.com" },
		{ "The Erotic Review", "theeroticreview.com" },
		{ "Friend 4rent", "friend4rent.ca" },
		{ "Sex Finder", "sexfinder.com" },
		{ "EroticMP", "eroticmp.com" },
		{ "RubMaps", "rubmaps.com" },
	};
	struct diag d;
	struct blocklist *bl = load("sample-sites.yaml", &d);
	struct blocklist_match m;
	char www[300];

	CHECK(bl != NULL);
	CHECK_INT(d.errors, 0);
	CHECK_INT(d.warnings, 0);
	diag_free(&d);
	if (bl == NULL)
		return;
	for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		snprintf(www, sizeof(www), "www.%s", sites[i].name);
		CHECK_INT(match(bl, www, &m), 1);
		CHECK_STR(m.site, sites[i].site);
		CHECK_STR(m.category, "commercial-sex");
		CHECK_STR(m.rule, sites[i].name);
	}
	CHECK_INT(match(bl, "london.craigslist.co.uk", NULL), 1);
	CHECK_INT(match(bl, "rubmaps.ch", NULL), 1);
	CHECK_INT(match(bl, "ter.com", NULL), 0);	/* commented out */
	CHECK_INT(match(bl, "example.com", NULL), 0);
	blocklist_free(bl);
}

static void
test_summary(void)
{
	struct diag d;
	struct blocklist *bl = load_cfg("testdata/imports.yaml", true, &d);
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	diag_free(&d);
	if (bl == NULL || (f = open_memstream(&text, &len)) == NULL) {
		CHECK(bl != NULL);
		blocklist_free(bl);
		return;
	}
	blocklist_print_summary(bl, f);
	fclose(f);
	CHECK_STR(text,
	    "blocklist: 14 entries (14 blocked names, 0 allowed), 8 warnings\n"
	    "files:\n"
	    "  testdata/imports.yaml: 0 entries, 2 duplicates skipped, "
	    "2 warnings\n"
	    "  testdata/lists/hosts-list.txt (hosts list for imported): "
	    "7 entries, 3 warnings\n"
	    "  testdata/lists/domains-list.txt (domains list for imported): "
	    "4 entries, 1 duplicate skipped, 3 warnings\n"
	    "  (built-in): 3 entries\n"
	    "categories:\n"
	    "  imported: 11 entries (0 sites with 0 names, 11 imported)\n"
	    "  other: 0 entries (1 site with 0 names, 0 imported)\n"
	    "  dns-bypass (built-in): 3 entries (2 sites with 3 names, "
	    "0 imported)\n"
	    "allow: 0 entries\n");
	free(text);
	blocklist_free(bl);
}

int
main(void)
{
	RUN(test_subdomains_and_label_boundaries);
	RUN(test_case_and_trailing_dot);
	RUN(test_allow_most_specific_wins);
	RUN(test_wire_matching);
	RUN(test_idn_entries);
	RUN(test_idn_uts46_mapping);
	RUN(test_invalid_entries_are_errors);
	RUN(test_structure_errors);
	RUN(test_control_characters_stay_out_of_messages);
	RUN(test_name_limits);
	RUN(test_simple_names);
	RUN(test_index_growth);
	RUN(test_text_show);
	RUN(test_imports);
	RUN(test_formats);
	RUN(test_wrong_format);
	RUN(test_policies);
	RUN(test_import_warnings_are_capped);
	RUN(test_import_warnings_keep_line_order);
	RUN(test_import_files);
	RUN(test_duplicates);
	RUN(test_dns_bypass_builtin);
	RUN(test_load_errors_fail_whole_load);
	RUN(test_sample_file);
	RUN(test_summary);
	UNIT_DONE();
}
