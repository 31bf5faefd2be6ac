/*
 * bl_internal: the blocklist's shared state and the loader interface used
 * by its parts (blocklist.c, bl_yaml.c, bl_import.c). Private to the
 * blocklist module.
 */
#ifndef DNSWARDEN_BL_INTERNAL_H
#define DNSWARDEN_BL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bl_index.h"
#include "bl_name.h"
#include "diag.h"

#define BL_NONE		UINT32_MAX	/* no category: an allow entry */
#define BL_BUILTIN_FILE	"(built-in)"
#define BL_WARN_SHOWN	20	/* warnings printed per imported file */

/* Where entries came from: one per site, per import and per allow list. */
struct bl_origin {
	uint32_t	 category;	/* BL_NONE for allow entries */
	uint32_t	 file;
	char		*site;		/* display name; NULL if none */
};

struct bl_category {
	char		*name;
	char		*description;	/* NULL if none given */
	bool		 builtin;
	size_t		 nsites;
	size_t		 site_entries;	/* entries from sites: lists */
	size_t		 imported;	/* entries from imported lists */
};

enum bl_file_kind {
	BL_FILE_YAML,
	BL_FILE_HOSTS,
	BL_FILE_DOMAINS,
	BL_FILE_BUILTIN,
};

struct bl_file {
	char		*path;
	enum bl_file_kind kind;
	uint32_t	 category;	/* imports: the category fed */
	size_t		 entries;	/* entries now in the index from here */
	size_t		 duplicates;	/* entries skipped as already present */
	size_t		 warnings;
};

struct blocklist {
	struct bl_index		 ix;
	struct bl_origin	*origins;
	size_t			 norigins;
	struct bl_category	*cats;
	size_t			 ncats;
	struct bl_file		*files;
	size_t			 nfiles;
	size_t			 nblock;
	size_t			 nallow;
};

struct bl_loader {
	struct blocklist	*bl;
	struct diag		*d;
	bool			 failed;	/* an error was recorded */
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

/* Read the blocklist YAML file at path into l. Returns 0 or -1. */
int	bl_yaml_load(struct bl_loader *l, const char *path);

enum bl_import_format {
	BL_IMPORT_HOSTS,
	BL_IMPORT_DOMAINS,
};

/*
 * Read an imported list from f (a regular file, already open and not read
 * from, named path) into category cat. Bad lines are warnings. Returns 0
 * or -1 (read error, out of memory). f stays open.
 */
int	bl_import_read(struct bl_loader *l, FILE *f, const char *path,
	    enum bl_import_format fmt, uint32_t cat);

#endif
