/*
 * bl_import: reading the external lists a blocklist YAML file imports.
 * Private to the blocklist module.
 */
#ifndef DNSWARDEN_BL_IMPORT_H
#define DNSWARDEN_BL_IMPORT_H

#include <stdio.h>

#include "bl_loader.h"

/* The formats of imported lists (see docs/blocklist.md). */
enum bl_import_format {
	BL_IMPORT_HOSTS,	/* "0.0.0.0 name ..." */
	BL_IMPORT_DOMAINS,	/* one name a line */
	BL_IMPORT_ADBLOCK,	/* "||name^" blocks, "@@||name^" allows */
	BL_IMPORT_DNSMASQ,	/* "server=/name/", "address=/name/..." */
	BL_IMPORT_RPZ,		/* a response policy zone file */
	BL_IMPORT_NFORMATS,
};

/* The format's name as written in a blocklist ("hosts", ...). */
const char *bl_import_format_name(enum bl_import_format fmt);

/* The format called name; -1 if none is. */
int	bl_import_format_parse(const char *name);

/* The file kind a list of format fmt is recorded as. */
static inline enum bl_file_kind
bl_import_file_kind(enum bl_import_format fmt)
{
	return (enum bl_file_kind)(BL_FILE_HOSTS + (int)fmt);
}

/*
 * Read an imported list from f (a regular file, already open and not read
 * from, named path) into category cat; allow rules of the format become
 * allow entries. Bad lines are warnings; a list with rules of which not
 * one name could be read is an error naming the format it looks like.
 * Returns 0 or -1 (that error, read error, out of memory). f stays open.
 */
int	bl_import_read(struct bl_loader *l, FILE *f, const char *path,
	    enum bl_import_format fmt, uint32_t cat);

#endif
