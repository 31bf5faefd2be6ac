/*
 * bl_loader: the bookkeeping behind loading a blocklist, shared by the
 * readers of each format (bl_yaml.c, bl_import.c): the files read, the
 * categories, the origins of entries and the rules for names that appear
 * twice. The public API (blocklist.c) starts and finishes a load; the
 * readers feed it. Private to the blocklist module.
 */
#ifndef DNSWARDEN_BL_LOADER_H
#define DNSWARDEN_BL_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "bl_internal.h"
#include "diag.h"

struct bl_loader {
	struct blocklist	*bl;
	struct diag		*d;
	bool			 failed;	/* an error was recorded */
	const char		*cache_dir;	/* url: imports; NULL: none */
};

/* Register a file read (or "(built-in)"); returns its index or BL_NONE
 * (out of memory, recorded). */
uint32_t bl_file_add(struct bl_loader *l, const char *path,
	    enum bl_file_kind kind, uint32_t category);

/* A warning about file f at line:col; imported files print only the first
 * BL_WARN_SHOWN, bl_file_done() says how many more there were. */
void	bl_file_warn(struct bl_loader *l, uint32_t f, size_t line,
	    size_t col, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));

/* A warning about file f as a whole, always shown (a summary of what the
 * capped warnings would not say). */
void	bl_file_note(struct bl_loader *l, uint32_t f, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* Finish reading file f. */
void	bl_file_done(struct bl_loader *l, uint32_t f);

/* The category called name, created if new (the first description given
 * is kept). Returns its index or BL_NONE (out of memory, recorded). */
uint32_t bl_category_get(struct bl_loader *l, const char *name,
	    const char *description, bool builtin);

/* A new origin; site is copied. Returns its index or BL_NONE. */
uint32_t bl_origin_add(struct bl_loader *l, uint32_t category, uint32_t file,
	    const char *site);

/*
 * Add the parsed name nm from origin o, written at line:col. A name
 * already present stays as it is, except that an allow entry replaces a
 * block entry; a block entry already in another category is warned about.
 * Returns 0, or -1 when out of memory (recorded).
 */
int	bl_entry_add(struct bl_loader *l, const struct bl_name *nm, uint32_t o,
	    size_t line, size_t col);

/* Same as bl_entry_add() for a name given as its text (len bytes) and
 * its whole-name hash h (from bl_name_hashes()). */
int	bl_entry_add_text(struct bl_loader *l, const char *text, size_t len,
	    uint32_t h, uint32_t o, size_t line, size_t col);

/* Record an error about the loader's state (out of memory). */
void	bl_loader_oom(struct bl_loader *l, const char *file);

/*
 * Register the url: import src (its strings are copied; a URL given
 * before keeps its first settings). Returns the source's index, or
 * BL_NONE when out of memory (recorded).
 */
uint32_t bl_source_add(struct bl_loader *l, const struct bl_source *src);

/* Start loading into a new, empty blocklist; errors go to d. Returns 0,
 * or -1 when out of memory. */
int	bl_loader_init(struct bl_loader *l, struct diag *d);

/* Release a blocklist's state (what blocklist_free() frees); NULL is
 * fine. For a load that failed, and for blocklist_free(). */
void	bl_state_free(struct blocklist *bl);

#endif
