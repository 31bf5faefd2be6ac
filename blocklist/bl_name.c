/*
 * bl_name: parsing blocklist entries and query names into lower-case text
 * split into labels, libidn2 for internationalised labels, and the label
 * suffix hash the index is keyed on.
 */
#include <endian.h>
#include <stdio.h>
#include <string.h>

#include <idn2.h>

#include "bl_name.h"

/* Characters an entry may hold (after lowering); '_' appears in real lists. */
static const bool entry_char[256] = {
	['a' ... 'z'] = true, ['0' ... '9'] = true, ['-'] = true, ['_'] = true,
};

/* Entry characters lowered; 0 for any other byte. */
static const uint8_t entry_lower[256] = {
	['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd', ['e'] = 'e',
	['f'] = 'f', ['g'] = 'g', ['h'] = 'h', ['i'] = 'i', ['j'] = 'j',
	['k'] = 'k', ['l'] = 'l', ['m'] = 'm', ['n'] = 'n', ['o'] = 'o',
	['p'] = 'p', ['q'] = 'q', ['r'] = 'r', ['s'] = 's', ['t'] = 't',
	['u'] = 'u', ['v'] = 'v', ['w'] = 'w', ['x'] = 'x', ['y'] = 'y',
	['z'] = 'z',
	['A'] = 'a', ['B'] = 'b', ['C'] = 'c', ['D'] = 'd', ['E'] = 'e',
	['F'] = 'f', ['G'] = 'g', ['H'] = 'h', ['I'] = 'i', ['J'] = 'j',
	['K'] = 'k', ['L'] = 'l', ['M'] = 'm', ['N'] = 'n', ['O'] = 'o',
	['P'] = 'p', ['Q'] = 'q', ['R'] = 'r', ['S'] = 's', ['T'] = 't',
	['U'] = 'u', ['V'] = 'v', ['W'] = 'w', ['X'] = 'x', ['Y'] = 'y',
	['Z'] = 'z',
	['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4',
	['5'] = '5', ['6'] = '6', ['7'] = '7', ['8'] = '8', ['9'] = '9',
	['-'] = '-', ['_'] = '_',
};

static inline uint8_t
lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/*
 * Decode one UTF-8 sequence at s (at most len bytes). Returns its length
 * and stores the code point, or 0 for invalid UTF-8 (overlong forms,
 * surrogates and values past U+10FFFF included).
 */
static size_t
utf8_decode(const uint8_t *s, size_t len, uint32_t *cp)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t n;
	uint32_t c = s[0];

	if (c < 0x80)
		n = 1;
	else if ((c & 0xe0) == 0xc0)
		n = 2, c &= 0x1f;
	else if ((c & 0xf0) == 0xe0)
		n = 3, c &= 0x0f;
	else if ((c & 0xf8) == 0xf0)
		n = 4, c &= 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

size_t
bl_text_printable_len(const char *str, size_t len)
{
	const uint8_t *s = (const uint8_t *)str;
	uint32_t cp;
	size_t n;

	if (len == 0)
		return 0;
	if (s[0] < 0x80)
		return (s[0] >= 0x20 && s[0] != 0x7f) ? 1 : 0;
	if ((n = utf8_decode(s, len, &cp)) == 0 || cp < 0xa0)
		return 0;
	return n;
}

bool
bl_text_printable(const char *s)
{
	size_t len = strlen(s), n;

	for (size_t i = 0; i < len; i += n)
		if ((n = bl_text_printable_len(s + i, len - i)) == 0)
			return false;
	return true;
}

const char *
bl_text_show(const char *s, size_t len, char *out)
{
	size_t o = 0, n;

	for (size_t i = 0; i < len; i += n) {
		if (o >= BL_SHOW_MAX - 8) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if ((n = bl_text_printable_len(s + i, len - i)) == 0) {
			out[o++] = '?';
			n = 1;
		} else {
			memcpy(out + o, s + i, n);
			o += n;
		}
	}
	out[o] = '\0';
	return out;
}

/* Length of a label separator at s: '.' or one of the dots RFC 3490 3.1
 * treats alike (U+3002, U+FF0E, U+FF61); 0 if none. */
static size_t
separator_len(const uint8_t *s, size_t len)
{
	if (s[0] == '.')
		return 1;
	if (len >= 3 && ((s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x82) ||
	    (s[0] == 0xef && s[1] == 0xbc && s[2] == 0x8e) ||
	    (s[0] == 0xef && s[1] == 0xbd && s[2] == 0xa1)))
		return 3;
	return 0;
}

/* Check one lowered ASCII character; sets *bad when it cannot be in an
 * entry. Returns -1 with why when the mode does not allow it at all. */
static int
check_char(uint8_t c, enum bl_name_mode mode, bool *bad, char *why)
{
	if (entry_char[c])
		return 0;
	*bad = true;
	if (mode == BL_NAME_QUERY && c > 0x20 && c < 0x7f)
		return 0;
	if (c == '*')
		snprintf(why, BL_WHY_MAX,
		    "a wildcard is only allowed as a leading \"*.\"");
	else if (c > 0x20 && c < 0x7f)
		snprintf(why, BL_WHY_MAX, "character '%c' not allowed", c);
	else
		snprintf(why, BL_WHY_MAX, "character 0x%02x not allowed", c);
	return -1;
}

/* Append an ASCII label, lowered, to out->text. */
static int
add_ascii_label(const uint8_t *s, size_t len, enum bl_name_mode mode,
    struct bl_name *out, bool *bad, char *why)
{
	char *t = out->text + out->textlen;

	for (size_t i = 0; i < len; i++) {
		t[i] = (char)lower(s[i]);
		if (check_char((uint8_t)t[i], mode, bad, why) == -1)
			return -1;
	}
	out->textlen += len;
	return 0;
}

/*
 * Append a label holding non-ASCII characters in its ASCII form, as
 * browsers send it: libidn2's IDNA2008 with UTS #46 mapping
 * (non-transitional), so that "BÜCHER" and "bücher" both become
 * "xn--bcher-kva".
 */
static int
add_idn_label(const uint8_t *s, size_t len, enum bl_name_mode mode,
    struct bl_name *out, bool *bad, char *why)
{
	char label[4 * BL_LABEL_MAX + 1], *ace = NULL;
	uint32_t cp;
	size_t k, alen;
	int rc;

	if (len >= sizeof(label)) {
		snprintf(why, BL_WHY_MAX, "label longer than 63 characters "
		    "in its xn-- form");
		return -1;
	}
	for (size_t i = 0; i < len; i += k) {
		if ((k = utf8_decode(s + i, len - i, &cp)) == 0) {
			snprintf(why, BL_WHY_MAX, "invalid UTF-8");
			return -1;
		}
		if (cp < 0x80 && check_char(lower((uint8_t)cp), mode, bad,
		    why) == -1)
			return -1;
	}
	memcpy(label, s, len);
	label[len] = '\0';
	rc = idn2_to_ascii_8z(label, &ace, IDN2_NONTRANSITIONAL |
	    IDN2_NFC_INPUT);
	if (rc != IDN2_OK) {
		snprintf(why, BL_WHY_MAX, "not a valid internationalised "
		    "name: %s", idn2_strerror(rc));
		return -1;
	}
	alen = strlen(ace);
	if (alen == 0 || alen > BL_LABEL_MAX || strchr(ace, '.') != NULL) {
		snprintf(why, BL_WHY_MAX, alen > BL_LABEL_MAX ? "label longer "
		    "than 63 characters in its xn-- form" : "not one label "
		    "in its xn-- form");
		idn2_free(ace);
		return -1;
	}
	for (size_t i = 0; i < alen; i++)
		if (check_char((uint8_t)ace[i], mode, bad, why) == -1) {
			idn2_free(ace);
			return -1;
		}
	if (out->textlen + alen > BL_NAME_TEXT_MAX) {
		snprintf(why, BL_WHY_MAX, "name longer than 253 characters");
		idn2_free(ace);
		return -1;
	}
	memcpy(out->text + out->textlen, ace, alen);
	out->textlen += alen;
	idn2_free(ace);
	return 0;
}

static int
add_label(const uint8_t *s, size_t len, enum bl_name_mode mode,
    struct bl_name *out, char *why)
{
	bool ascii = true, bad = false;
	int rc;

	if (len == 0) {
		snprintf(why, BL_WHY_MAX, "empty label");
		return -1;
	}
	if (out->n == BL_NAME_LABELS_MAX) {
		snprintf(why, BL_WHY_MAX, "name longer than 253 characters");
		return -1;
	}
	if (out->n > 0)
		out->text[out->textlen++] = '.';
	out->start[out->n] = (uint8_t)out->textlen;
	for (size_t i = 0; i < len; i++)
		ascii = ascii && s[i] < 0x80;
	if (ascii && len > BL_LABEL_MAX) {
		snprintf(why, BL_WHY_MAX, "label longer than 63 characters");
		return -1;
	}
	if (ascii && out->textlen + len > BL_NAME_TEXT_MAX) {
		snprintf(why, BL_WHY_MAX, "name longer than 253 characters");
		return -1;
	}
	rc = ascii ? add_ascii_label(s, len, mode, out, &bad, why) :
	    add_idn_label(s, len, mode, out, &bad, why);
	if (rc == -1)
		return -1;
	out->len[out->n] = (uint8_t)(out->textlen - out->start[out->n]);
	if (bad)
		out->first_good = out->n + 1;
	out->n++;
	return 0;
}

static void
name_reset(struct bl_name *out)
{
	out->textlen = 0;
	out->n = 0;
	out->first_good = 0;
}

static void
name_terminate(struct bl_name *out)
{
	memset(out->text + out->textlen, 0, 9);
}

int
bl_name_parse(const char *str, size_t len, enum bl_name_mode mode,
    struct bl_name *out, char *why)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t p = 0, q, sep;

	name_reset(out);
	if (mode == BL_NAME_ENTRY && len >= 2 && s[0] == '*' && s[1] == '.')
		p = 2;
	if (len - p == 1 && s[p] == '.' && mode == BL_NAME_QUERY) {
		name_terminate(out);	/* the root */
		return 0;
	}
	if (p == len || (len - p == 1 && s[p] == '.')) {
		snprintf(why, BL_WHY_MAX, "empty name");
		return -1;
	}
	while (p < len) {
		for (q = p; q < len && (sep = separator_len(s + q, len - q)) == 0;)
			q++;
		if (add_label(s + p, q - p, mode, out, why) == -1)
			return -1;
		if (q == len)
			break;
		p = q + sep;	/* a trailing dot ends the loop here */
	}
	name_terminate(out);
	return 0;
}

int
bl_name_from_wire(const uint8_t *wire, size_t len, struct bl_name *out)
{
	size_t p = 0;

	name_reset(out);
	if (len > 255)
		len = 255;
	while (p < len && wire[p] != 0) {
		size_t l = wire[p++];
		bool bad = false;

		if (l > BL_LABEL_MAX || p + l >= len ||
		    out->n == BL_NAME_LABELS_MAX)
			return -1;
		if (out->n > 0)
			out->text[out->textlen++] = '.';
		out->start[out->n] = (uint8_t)out->textlen;
		out->len[out->n] = (uint8_t)l;
		/* A label with other bytes is never looked up: its text can be
		 * the zeros the table gives. */
		for (size_t i = 0; i < l; i++) {
			uint8_t c = entry_lower[wire[p + i]];

			out->text[out->textlen + i] = (char)c;
			bad |= c == 0;
		}
		out->textlen += l;
		if (bad)
			out->first_good = out->n + 1;
		out->n++;
		p += l;
	}
	if (p >= len)
		return -1;	/* no root label */
	name_terminate(out);
	return 0;
}

#define HASH_SEED	UINT64_C(0x243f6a8885a308d3)

static inline uint64_t
hash_mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
	return h ^ (h >> 31);
}

static inline uint32_t
hash_final(uint64_t h)
{
	h ^= h >> 29;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 32;
	return (uint32_t)h;
}

/* Fold one label (l bytes at p, readable up to 7 bytes past its end)
 * into the hash state. */
static inline uint64_t
hash_label(uint64_t acc, const char *p, size_t l)
{
	uint64_t w;

	acc = hash_mix(acc, l);
	for (size_t k = 0; k < l; k += 8) {
		memcpy(&w, p + k, sizeof(w));
		w = le64toh(w);
		if (l - k < 8)
			w &= (UINT64_C(1) << ((l - k) * 8)) - 1;
		acc = hash_mix(acc, w);
	}
	return acc;
}

void
bl_name_hashes(const struct bl_name *nm, uint32_t *h)
{
	uint64_t acc = HASH_SEED;

	for (size_t i = nm->n; i-- > nm->first_good;) {
		acc = hash_label(acc, nm->text + nm->start[i], nm->len[i]);
		h[i] = hash_final(acc);
	}
}

/* The whole-name hash of text (len bytes, zero bytes after it up to 8)
 * whose n labels start at start[]. */
static uint32_t
hash_labels(const char *text, size_t len, const uint8_t *start, size_t n)
{
	uint64_t acc = HASH_SEED;

	for (size_t i = n; i-- > 0;) {
		size_t end = i + 1 < n ? (size_t)start[i + 1] - 1 : len;

		acc = hash_label(acc, text + start[i], end - start[i]);
	}
	return hash_final(acc);
}

uint32_t
bl_name_text_hash(const char *text, size_t len)
{
	char buf[BL_NAME_TEXT_MAX + 1 + 8];
	uint8_t start[BL_NAME_LABELS_MAX + 1];
	size_t n = 1;

	if (len > BL_NAME_TEXT_MAX)
		len = BL_NAME_TEXT_MAX;
	memcpy(buf, text, len);	/* hash_label() reads whole words */
	memset(buf + len, 0, 8);
	start[0] = 0;
	for (size_t i = 0; i < len && n <= BL_NAME_LABELS_MAX; i++)
		if (buf[i] == '.')
			start[n++] = (uint8_t)(i + 1);
	return hash_labels(buf, len, start, n);
}

size_t
bl_name_entry_simple(const char *str, size_t len, char *out, uint32_t *hash)
{
	const uint8_t *s = (const uint8_t *)str;
	uint8_t start[BL_NAME_LABELS_MAX + 1];
	size_t n = 1, from = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > BL_NAME_TEXT_MAX)
		return 0;
	start[0] = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = entry_lower[s[i]];

		if (c == 0) {
			if (s[i] != '.' || i == from || i - from > BL_LABEL_MAX)
				return 0;
			c = '.';
			from = i + 1;
			start[n++] = (uint8_t)from;	/* 253 bytes: <= 127 */
		}
		out[i] = (char)c;
	}
	if (len == from || len - from > BL_LABEL_MAX)
		return 0;
	memset(out + len, 0, 8 + 1);
	*hash = hash_labels(out, len, start, n);
	return len;
}
