/*
 * bl_internal: the loaded blocklist's state, shared by the public API
 * (blocklist.c) and the loader (bl_loader.c) that fills it. Private to
 * the blocklist module.
 */
#ifndef DNSWARDEN_BL_INTERNAL_H
#define DNSWARDEN_BL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bl_index.h"
#include "bl_name.h"
#include "diag.h"
#include "netaddr.h"

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
	BL_FILE_BUILTIN,
	/* Imported lists, one kind per enum bl_import_format, same order. */
	BL_FILE_HOSTS,
	BL_FILE_DOMAINS,
	BL_FILE_ADBLOCK,
	BL_FILE_DNSMASQ,
	BL_FILE_RPZ,
};

struct bl_file {
	char		*path;
	enum bl_file_kind kind;
	uint32_t	 category;	/* imports: the category fed */
	size_t		 entries;	/* entries now in the index from here */
	size_t		 duplicates;	/* entries skipped as already present */
	size_t		 warnings;
};

/* Imported lists, whose warnings are capped (see bl_file_warn()). */
static inline bool
bl_file_is_import(const struct bl_file *f)
{
	return f->kind >= BL_FILE_HOSTS;
}

/* A policy of the configuration, its categories as a bit set over cats. */
struct bl_policy {
	char		*name;
	struct cidr	*nets;
	size_t		 nnets;
	uint64_t	*mask;		/* (ncats + 63) / 64 words */
};

/* A url: import: where its downloads are kept, and how to fetch them. */
struct bl_source {
	char		*url;
	char		*path;		/* the last good copy, in cache_dir */
	char		*sha256;	/* pinned digest (hex), or NULL */
	const char	*format;	/* static */
	unsigned	 refresh_s;
	uint64_t	 max_bytes;	/* 0: the default */
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
	struct bl_policy	*policies;	/* first match wins */
	size_t			 npolicies;
	struct bl_source	*sources;	/* url: imports, each URL once */
	size_t			 nsources;
};

#endif
