/*
 * bl_import: reading the external lists a blocklist YAML file imports.
 * Private to the blocklist module.
 */
#ifndef DNSWARDEN_BL_IMPORT_H
#define DNSWARDEN_BL_IMPORT_H

#include <stdio.h>

#include "bl_loader.h"

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
