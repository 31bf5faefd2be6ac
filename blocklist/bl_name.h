/*
 * bl_name: domain names as the blocklist stores and matches them. Text is
 * lower case without a trailing dot; internationalised labels are turned
 * into their ASCII "xn--" form by libidn2 (IDNA2008 with UTS #46 mapping,
 * as browsers do).
 *
 * Private to the blocklist module.
 */
#ifndef DNSWARDEN_BL_NAME_H
#define DNSWARDEN_BL_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BL_NAME_TEXT_MAX	253	/* characters, without trailing dot */
#define BL_NAME_LABELS_MAX	127
#define BL_LABEL_MAX		63
#define BL_WHY_MAX		128

enum bl_name_mode {
	/* A blocklist entry: letters, digits, '-', '_'; "*." prefix stripped. */
	BL_NAME_ENTRY,
	/* A name to look up: any printable ASCII in a label. */
	BL_NAME_QUERY,
};

/*
 * A name split into labels. text is NUL-terminated and followed by at
 * least 8 zero bytes so that bl_name_hashes() may read whole words.
 * Labels [first_good, n) contain only entry characters; suffixes that
 * include an earlier label can never equal an entry.
 */
struct bl_name {
	char	 text[BL_NAME_TEXT_MAX + 1 + 8 + 2];
	size_t	 textlen;
	uint8_t	 start[BL_NAME_LABELS_MAX + 1];	/* label offsets in text */
	uint8_t	 len[BL_NAME_LABELS_MAX + 1];
	size_t	 n;
	size_t	 first_good;
};

/*
 * Parse the len bytes at s (UTF-8) into out. Returns 0, or -1 with a
 * message in why (BL_WHY_MAX bytes). Upper-case ASCII is lowered; a label
 * with non-ASCII characters is mapped (case folded, normalised) and
 * encoded as UTS #46 says, so "BÜCHER" gives "xn--bcher-kva".
 */
int	bl_name_parse(const char *s, size_t len, enum bl_name_mode mode,
	    struct bl_name *out, char *why);

/*
 * Fill out from a DNS wire-format name (lowering ASCII letters). Returns
 * 0, or -1 when the wire name is malformed (label over 63 bytes, no root
 * label within len, over 255 bytes).
 */
int	bl_name_from_wire(const uint8_t *wire, size_t len, struct bl_name *out);

/*
 * The hash of every suffix of nm that starts at a label in
 * [nm->first_good, nm->n): h[i] for the suffix starting at label i. The
 * same suffix gives the same hash whatever name it came from.
 */
void	bl_name_hashes(const struct bl_name *nm, uint32_t *h);

/* The whole-name hash of an entry's text (len bytes): h[0] of
 * bl_name_hashes() for the name it was parsed from. */
uint32_t bl_name_text_hash(const char *text, size_t len);

/*
 * The fast path for the plain names nearly all of an imported list is
 * made of: s (len bytes) holding only ASCII letters, digits, '-' and '_'
 * in labels of 1 to 63 bytes, at most 253 in all, and perhaps a trailing
 * dot. Writes the text as bl_name_parse() would (lower case, no trailing
 * dot) to out (BL_NAME_TEXT_MAX + 1 + 8 bytes; zero bytes follow the
 * text) and its hash (h[0] of bl_name_hashes()) to *hash. Returns the
 * text's length, or 0 when the name is not plain: bl_name_parse() then
 * decides, and explains what is wrong.
 */
size_t	bl_name_entry_simple(const char *s, size_t len, char *out,
	    uint32_t *hash);

/*
 * Length of the printable character at s (at most len bytes): printable
 * ASCII or valid UTF-8 from U+00A0 on. 0 for a control character (C0,
 * DEL, C1), a lone byte of invalid UTF-8 or len 0.
 */
size_t	bl_text_printable_len(const char *s, size_t len);

/* True if the string s holds only printable characters. */
bool	bl_text_printable(const char *s);

/*
 * s (len bytes) made safe to quote in a message: printable characters
 * kept, every other byte as '?', cut with "..." past 80 bytes. Written
 * to out (BL_SHOW_MAX bytes); returns out.
 */
#define BL_SHOW_MAX	88
const char *bl_text_show(const char *s, size_t len, char *out);

#endif
