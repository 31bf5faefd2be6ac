/*
 * blocklist: the public API: loading (the readers in bl_yaml.c and
 * bl_import.c feed bl_loader.c's bookkeeping), matching, the summary.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blocklist.h"
#include "bl_import.h"
#include "bl_internal.h"
#include "bl_loader.h"
#include "bl_yaml.h"

/* The names that stop browsers and devices from bypassing this resolver
 * with their own encrypted DNS. */
static const struct {
	const char	*site;
	const char	*domain;
} builtin_dns_bypass[] = {
	{ "Firefox DNS-over-HTTPS canary", "use-application-dns.net" },
	{ "iCloud Private Relay", "mask.icloud.com" },
	{ "iCloud Private Relay", "mask-h2.icloud.com" },
};

static int
load_builtin(struct bl_loader *l)
{
	uint32_t cat, file, oi = BL_NONE;
	const char *site = NULL;
	struct bl_name nm;
	char why[BL_WHY_MAX];

	cat = bl_category_get(l, "dns-bypass", "Names that make browsers and "
	    "devices bypass this resolver with their own encrypted DNS", true);
	if (cat == BL_NONE)
		return -1;
	l->bl->cats[cat].builtin = true;
	if ((file = bl_file_add(l, BL_BUILTIN_FILE, BL_FILE_BUILTIN, cat)) ==
	    BL_NONE)
		return -1;
	for (size_t i = 0; i < sizeof(builtin_dns_bypass) /
	    sizeof(builtin_dns_bypass[0]); i++) {
		const char *d = builtin_dns_bypass[i].domain;

		if (site == NULL || strcmp(site, builtin_dns_bypass[i].site)) {
			site = builtin_dns_bypass[i].site;
			if ((oi = bl_origin_add(l, cat, file, site)) == BL_NONE)
				return -1;
		}
		if (bl_name_parse(d, strlen(d), BL_NAME_ENTRY, &nm, why) == -1 ||
		    bl_entry_add(l, &nm, oi, 0, 0) == -1)
			return -1;
	}
	return 0;
}

static struct blocklist *
load_finish(struct bl_loader *l)
{
	if (!l->failed && bl_index_finish(&l->bl->ix) == -1)
		bl_loader_oom(l, "blocklist");
	if (l->failed) {
		blocklist_free(l->bl);
		return NULL;
	}
	return l->bl;
}

/* The category called name, or BL_NONE. */
static uint32_t
category_find(const struct blocklist *bl, const char *name)
{
	for (size_t i = 0; i < bl->ncats; i++)
		if (strcmp(bl->cats[i].name, name) == 0)
			return (uint32_t)i;
	return BL_NONE;
}

/* Compile policy cp into p: its networks, and its categories as a mask
 * over the categories loaded (a name not loaded is an error). */
static int
policy_compile(struct bl_loader *l, const struct config *cfg,
    const struct config_policy *cp, struct bl_policy *p)
{
	struct blocklist *bl = l->bl;
	size_t words = (bl->ncats + 63) / 64 + 1;
	uint32_t cat;

	p->name = strdup(cp->name);
	p->nets = reallocarray(NULL, cp->nnets + 1, sizeof(*p->nets));
	p->mask = calloc(words, sizeof(*p->mask));
	if (p->name == NULL || p->nets == NULL || p->mask == NULL)
		return -1;
	if (cp->nnets > 0)	/* a policy of clients: names only has none */
		memcpy(p->nets, cp->nets, cp->nnets * sizeof(*p->nets));
	p->nnets = cp->nnets;
	for (size_t i = 0; i < cp->ncategories; i++) {
		const struct config_policy_category *c = &cp->categories[i];

		if ((cat = category_find(bl, c->name)) == BL_NONE) {
			diag_error(l->d, cfg->path, c->line, c->col, "policy "
			    "\"%s\": no category \"%s\" in the blocklists",
			    cp->name, c->name);
			l->failed = true;
			continue;
		}
		p->mask[cat / 64] |= UINT64_C(1) << (cat % 64);
	}
	return 0;
}

static void
load_policies(struct bl_loader *l, const struct config *cfg)
{
	struct blocklist *bl = l->bl;

	if (cfg->npolicies == 0)
		return;
	if ((bl->policies = calloc(cfg->npolicies, sizeof(*bl->policies))) ==
	    NULL) {
		bl_loader_oom(l, cfg->path);
		return;
	}
	for (size_t i = 0; i < cfg->npolicies; i++, bl->npolicies++)
		if (policy_compile(l, cfg, &cfg->policies[i],
		    &bl->policies[i]) == -1) {
			bl_loader_oom(l, cfg->path);
			bl->npolicies++;
			return;
		}
}

struct blocklist *
blocklist_load(const struct config *cfg, struct diag *d)
{
	struct bl_loader l;

	if (bl_loader_init(&l, d) == -1) {
		diag_error(d, "blocklist", 0, 0, "out of memory");
		return NULL;
	}
	l.cache_dir = cfg->blocklist.cache_dir;
	for (size_t i = 0; i < cfg->blocklist.nfiles; i++)
		if (bl_yaml_load(&l, cfg->blocklist.files[i]) == -1)
			l.failed = true;
	/* After the files, so that a file's entry for the same name wins. */
	if (cfg->blocklist.dns_bypass && load_builtin(&l) == -1)
		l.failed = true;
	load_policies(&l, cfg);
	return load_finish(&l);
}

struct blocklist *
blocklist_load_file(const char *path, struct diag *d)
{
	struct bl_loader l;

	if (bl_loader_init(&l, d) == -1) {
		diag_error(d, path, 0, 0, "out of memory");
		return NULL;
	}
	if (bl_yaml_load(&l, path) == -1)
		l.failed = true;
	return load_finish(&l);
}

/* True when the record at off is a block entry of a category that mask
 * (NULL: every category) leaves out. */
static bool
masked_out(const struct blocklist *bl, const uint64_t *mask, uint32_t off)
{
	uint32_t oi, line, cat;

	if (mask == NULL)
		return false;
	bl_index_record(&bl->ix, off, &oi, &line);
	cat = bl->origins[oi].category;
	return cat != BL_NONE && !(mask[cat / 64] >> (cat % 64) & 1);
}

/* Look up every suffix of nm, longest first; the first hit that mask
 * lets apply decides. */
static int
match(const struct blocklist *bl, const uint64_t *mask,
    const struct bl_name *nm, struct blocklist_match *m)
{
	uint32_t h[BL_NAME_LABELS_MAX + 1], off = 0, oi, line;
	bool maybe[BL_NAME_LABELS_MAX + 1];
	const struct bl_origin *o;
	const char *rule;
	size_t i;

	if (m != NULL)
		memset(m, 0, sizeof(*m));
	if (nm->first_good >= nm->n)
		return 0;
	bl_name_hashes(nm, h);
	/* Fetch what the suffixes need at once instead of one by one. */
	for (i = nm->first_good; i < nm->n; i++)
		bl_index_prefetch_filter(&bl->ix, h[i]);
	for (i = nm->first_good; i < nm->n; i++) {
		maybe[i] = bl_index_maybe(&bl->ix, h[i]);
		if (maybe[i])
			bl_index_prefetch(&bl->ix, h[i]);
	}
	for (i = nm->first_good; i < nm->n && off == 0; i++)
		if (maybe[i] && (off = bl_index_find(&bl->ix, h[i],
		    nm->text + nm->start[i])) != 0 && masked_out(bl, mask, off))
			off = 0;
	if (off == 0)
		return 0;
	rule = bl_index_record(&bl->ix, off, &oi, &line);
	o = &bl->origins[oi];
	if (m != NULL) {
		m->allowed = o->category == BL_NONE;
		m->rule = rule;
		m->category = o->category == BL_NONE ? NULL :
		    bl->cats[o->category].name;
		m->site = o->site;
		m->file = bl->files[o->file].path;
		m->line = line;
	}
	return o->category == BL_NONE ? 0 : 1;
}

/* The category mask of policy p; NULL for the default (every one). */
static const uint64_t *
policy_mask(const struct blocklist *bl, int p)
{
	return p >= 0 && (size_t)p < bl->npolicies ? bl->policies[p].mask :
	    NULL;
}

int
blocklist_match_wire_policy(const struct blocklist *bl, int p,
    const uint8_t *qname, size_t qname_len, struct blocklist_match *m)
{
	struct bl_name nm;

	if (bl_name_from_wire(qname, qname_len, &nm) == -1) {
		if (m != NULL)
			memset(m, 0, sizeof(*m));
		return 0;
	}
	return match(bl, policy_mask(bl, p), &nm, m);
}

int
blocklist_match_wire(const struct blocklist *bl, const uint8_t *qname,
    size_t qname_len, struct blocklist_match *m)
{
	return blocklist_match_wire_policy(bl, BLOCKLIST_POLICY_DEFAULT, qname,
	    qname_len, m);
}

int
blocklist_match_name_policy(const struct blocklist *bl, int p,
    const char *name, struct blocklist_match *m)
{
	struct bl_name nm;
	char why[BL_WHY_MAX];

	if (bl_name_parse(name, strlen(name), BL_NAME_QUERY, &nm, why) == -1) {
		if (m != NULL)
			memset(m, 0, sizeof(*m));
		return -1;
	}
	return match(bl, policy_mask(bl, p), &nm, m);
}

int
blocklist_match_name(const struct blocklist *bl, const char *name,
    struct blocklist_match *m)
{
	return blocklist_match_name_policy(bl, BLOCKLIST_POLICY_DEFAULT, name,
	    m);
}

int
blocklist_policy_of(const struct blocklist *bl, const struct sockaddr *client)
{
	for (size_t i = 0; i < bl->npolicies; i++)
		for (size_t j = 0; j < bl->policies[i].nnets; j++)
			if (cidr_contains(&bl->policies[i].nets[j], client))
				return (int)i;
	return BLOCKLIST_POLICY_DEFAULT;
}

const char *
blocklist_policy_name(const struct blocklist *bl, int p)
{
	return p >= 0 && (size_t)p < bl->npolicies ? bl->policies[p].name :
	    NULL;
}

size_t
blocklist_npolicies(const struct blocklist *bl)
{
	return bl->npolicies;
}

size_t
blocklist_nsources(const struct blocklist *bl)
{
	return bl->nsources;
}

void
blocklist_source(const struct blocklist *bl, size_t i,
    struct blocklist_source *out)
{
	const struct bl_source *s = &bl->sources[i];

	out->url = s->url;
	out->path = s->path;
	out->format = s->format;
	out->sha256 = s->sha256;
	out->refresh_s = s->refresh_s;
	out->max_bytes = s->max_bytes;
}

int
blocklist_list_check(const char *path, const char *format, size_t *names,
    struct diag *d)
{
	struct bl_loader l;
	int fmt = bl_import_format_parse(format), rc = -1;
	uint32_t cat;
	FILE *f;

	*names = 0;
	if (fmt == -1 || bl_loader_init(&l, d) == -1) {
		diag_error(d, path, 0, 0, fmt == -1 ? "unknown format" :
		    "out of memory");
		return -1;
	}
	if ((f = fopen(path, "r")) == NULL)
		diag_error(d, path, 0, 0, "cannot open: %s", strerror(errno));
	else if ((cat = bl_category_get(&l, "check", NULL, false)) !=
	    BL_NONE && bl_import_read(&l, f, path, (enum bl_import_format)fmt,
	    cat) == 0 && !l.failed) {
		*names = l.bl->files[0].entries + l.bl->files[0].duplicates;
		rc = 0;
	}
	if (f != NULL)
		fclose(f);
	bl_state_free(l.bl);
	return rc;
}

size_t
blocklist_size(const struct blocklist *bl)
{
	return bl->ix.count;
}

/* "s" unless n is 1, for counts in the summary. */
static const char *
plural(size_t n)
{
	return n == 1 ? "" : "s";
}

static const char *
plural_y(size_t n)
{
	return n == 1 ? "y" : "ies";
}

static void
summary_file(const struct blocklist *bl, const struct bl_file *f, FILE *out)
{
	fprintf(out, "  %s", f->path);
	if (bl_file_is_import(f))
		fprintf(out, " (%s list for %s)", bl_import_format_name(
		    (enum bl_import_format)(f->kind - BL_FILE_HOSTS)),
		    bl->cats[f->category].name);
	fprintf(out, ": %zu entr%s", f->entries, plural_y(f->entries));
	if (f->duplicates > 0)
		fprintf(out, ", %zu duplicate%s skipped", f->duplicates,
		    plural(f->duplicates));
	if (f->warnings > 0)
		fprintf(out, ", %zu warning%s", f->warnings,
		    plural(f->warnings));
	fputc('\n', out);
}

static void
summary_category(const struct bl_category *c, FILE *out)
{
	size_t n = c->site_entries + c->imported;

	fprintf(out, "  %s%s: %zu entr%s (%zu site%s with %zu name%s, "
	    "%zu imported)\n", c->name, c->builtin ? " (built-in)" : "", n,
	    plural_y(n), c->nsites, plural(c->nsites), c->site_entries,
	    plural(c->site_entries), c->imported);
}

void
blocklist_print_summary(const struct blocklist *bl, FILE *out)
{
	size_t warnings = 0;

	for (size_t i = 0; i < bl->nfiles; i++)
		warnings += bl->files[i].warnings;
	fprintf(out, "blocklist: %zu entr%s (%zu blocked name%s, %zu "
	    "allowed), %zu warning%s\n", bl->ix.count, plural_y(bl->ix.count),
	    bl->nblock, plural(bl->nblock), bl->nallow, warnings,
	    plural(warnings));
	fprintf(out, "files:\n");
	for (size_t i = 0; i < bl->nfiles; i++)
		summary_file(bl, &bl->files[i], out);
	fprintf(out, "categories:\n");
	for (size_t i = 0; i < bl->ncats; i++)
		summary_category(&bl->cats[i], out);
	fprintf(out, "allow: %zu entr%s\n", bl->nallow, plural_y(bl->nallow));
}

void
blocklist_free(struct blocklist *bl)
{
	bl_state_free(bl);
}
