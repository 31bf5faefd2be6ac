/*
 * bl_rpz: reading a response policy zone (RPZ) file as an imported list,
 * with ldns's zone file parser. Private to the blocklist module.
 */
#ifndef DNSWARDEN_BL_RPZ_H
#define DNSWARDEN_BL_RPZ_H

#include <stdio.h>

#include "bl_loader.h"

/* What reading an imported list found, for the verdict on the list as a
 * whole (bl_import.c). */
struct bl_import_counts {
	size_t	rules;		/* lines (records) not blank nor comments */
	size_t	names;		/* names read from them */
	size_t	skipped;	/* rules of the format not applied */
	size_t	first_skipped;	/* the line of the first of those */
	size_t	first_rule;	/* the line of the first rule */
};

/*
 * Read the RPZ zone file f (named path, not read from yet) as file index
 * file, blocking into origin block (its category's): "name CNAME ."
 * blocks name, "*.name CNAME ." the names below it (an entry blocks both,
 * see docs/blocklist.md), "name CNAME rpz-passthru." allows name. Owner
 * names are taken relative to the zone's SOA owner. Other actions and
 * triggers are counted in n->skipped; records that do not parse are
 * warnings. Returns 0 or -1 (out of memory, recorded).
 */
int	bl_rpz_read(struct bl_loader *l, FILE *f, const char *path,
	    uint32_t file, uint32_t block, struct bl_import_counts *n);

#endif
