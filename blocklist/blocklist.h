/*
 * blocklist: the YAML blocklists (categories of sites with their domains,
 * imported hosts/domain lists, allow exceptions), loaded into one immutable
 * index and matched against query names.
 *
 * An entry blocks its name and every name below it, on label boundaries.
 * Matching ignores case; the most specific entry (block or allow) wins.
 * The cost of a match does not depend on the number of entries: the query's
 * label suffixes are looked up in a hash index.
 */
#ifndef DNSWARDEN_BLOCKLIST_H
#define DNSWARDEN_BLOCKLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "config.h"
#include "diag.h"

struct blocklist;

/* What matched; every pointer is owned by the blocklist and lives as long. */
struct blocklist_match {
	bool		 allowed;	/* an allow: entry matched (not blocked) */
	const char	*rule;		/* the entry, lower case, no trailing dot */
	const char	*category;	/* NULL for allow entries */
	const char	*site;		/* site display name; NULL for imports */
	const char	*file;		/* where the entry was written */
	unsigned	 line;
};

/*
 * Load every file in cfg->blocklist.files (and the built-in dns-bypass
 * category when cfg->blocklist.dns_bypass). Errors and warnings go to d.
 * Returns the list, or NULL when there was any error.
 */
struct blocklist *blocklist_load(const struct config *cfg, struct diag *d);

/*
 * Load one blocklist file only, without the built-in category (for tests
 * and fuzzing). Same return as blocklist_load().
 */
struct blocklist *blocklist_load_file(const char *path, struct diag *d);

/*
 * Match a query name in DNS wire format (length-prefixed labels ending in
 * the root label, already lower case, at most 255 bytes). Returns 1 and
 * fills m when a block entry is the most specific match, 0 otherwise (when
 * an allow entry wins, m->allowed is set and 0 is returned; m may be NULL).
 */
int		 blocklist_match_wire(const struct blocklist *bl,
		    const uint8_t *qname, size_t qname_len,
		    struct blocklist_match *m);

/*
 * Match a name given as text ("WWW.Example.com." or "example.com"),
 * including internationalised names in their ASCII (xn--) form. Same
 * return as blocklist_match_wire(); -1 if the text is not a valid name.
 */
int		 blocklist_match_name(const struct blocklist *bl,
		    const char *name, struct blocklist_match *m);

/*
 * Policies (the configuration's policies:, compiled by blocklist_load()
 * against the categories loaded): which categories apply to a client.
 * A policy is an index; BLOCKLIST_POLICY_DEFAULT, for clients that match
 * none, applies every category. Allow entries apply under every policy.
 */
#define BLOCKLIST_POLICY_DEFAULT	(-1)

/* The policy of client: the first whose networks hold it, or
 * BLOCKLIST_POLICY_DEFAULT. A scan of the policies' networks. */
int		 blocklist_policy_of(const struct blocklist *bl,
		    const struct sockaddr *client);

/* The name of policy p (owned by bl), NULL for the default. */
const char	*blocklist_policy_name(const struct blocklist *bl, int p);

/* The number of policies. */
size_t		 blocklist_npolicies(const struct blocklist *bl);

/*
 * blocklist_match_wire() for a client under policy p: block entries of a
 * category p does not apply are passed over (a less specific entry may
 * still block). Same return.
 */
int		 blocklist_match_wire_policy(const struct blocklist *bl, int p,
		    const uint8_t *qname, size_t qname_len,
		    struct blocklist_match *m);

/* blocklist_match_name() under policy p. Same return. */
int		 blocklist_match_name_policy(const struct blocklist *bl, int p,
		    const char *name, struct blocklist_match *m);

/* A url: import of the loaded blocklists (each URL once). */
struct blocklist_source {
	const char	*url;
	const char	*path;		/* its last good copy, in cache_dir */
	const char	*format;	/* "hosts", "adblock", ... */
	const char	*sha256;	/* pinned digest (hex) or NULL */
	unsigned	 refresh_s;	/* how often to download it */
	uint64_t	 max_bytes;	/* 0: the fetcher's default */
};

/* The number of url: imports, and the i-th (owned by bl, valid while bl
 * is; i < blocklist_nsources()). */
size_t		 blocklist_nsources(const struct blocklist *bl);
void		 blocklist_source(const struct blocklist *bl, size_t i,
		    struct blocklist_source *out);

/*
 * Read the list at path as format would be imported, without keeping it:
 * for a downloaded list before it replaces the last good copy. Sets
 * *names to the names read. Returns 0, or -1 when it cannot be used (a
 * list with rules but no name, an unknown format, a read error); the
 * reasons go to d.
 */
int		 blocklist_list_check(const char *path, const char *format,
		    size_t *names, struct diag *d);

/* Number of block entries plus allow entries. */
size_t		 blocklist_size(const struct blocklist *bl);

/*
 * Print the summary used by "dnswarden check": files read, entries per
 * category, allow entries.
 */
void		 blocklist_print_summary(const struct blocklist *bl, FILE *out);

/* Release bl; NULL is fine. */
void		 blocklist_free(struct blocklist *bl);

#endif
