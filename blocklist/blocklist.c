/*
 * blocklist: the public API (loading, matching, the summary) and the
 * bookkeeping the YAML and import readers share: files, categories,
 * origins and the rules for names that appear twice.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "blocklist.h"
#include "bl_internal.h"

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

/* Grow an array of n elements to hold n + 1 (capacity: powers of two). */
static void *
array_grow(void *p, size_t n, size_t size)
{
	if (n >= 8 && (n & (n - 1)) != 0)
		return p;
	return reallocarray(p, n < 8 ? 8 : n * 2, size);
}

void
bl_loader_oom(struct bl_loader *l, const char *file)
{
	diag_error(l->d, file, 0, 0, "out of memory");
	l->failed = true;
}

uint32_t
bl_file_add(struct bl_loader *l, const char *path, enum bl_file_kind kind,
    uint32_t category)
{
	struct blocklist *bl = l->bl;
	struct bl_file *f = array_grow(bl->files, bl->nfiles, sizeof(*f));

	if (f == NULL) {
		bl_loader_oom(l, path);
		return BL_NONE;
	}
	bl->files = f;
	f = &bl->files[bl->nfiles];
	memset(f, 0, sizeof(*f));
	if ((f->path = strdup(path)) == NULL) {
		bl_loader_oom(l, path);
		return BL_NONE;
	}
	f->kind = kind;
	f->category = category;
	return (uint32_t)bl->nfiles++;
}

static bool
file_is_import(const struct bl_file *f)
{
	return f->kind == BL_FILE_HOSTS || f->kind == BL_FILE_DOMAINS;
}

void
bl_file_warn(struct bl_loader *l, uint32_t fi, size_t line, size_t col,
    const char *fmt, ...)
{
	struct bl_file *f = &l->bl->files[fi];
	char *msg;
	va_list ap;
	int n;

	if (++f->warnings > BL_WARN_SHOWN && file_is_import(f))
		return;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	diag_warn(l->d, f->path, line, col, "%s", n == -1 ? "(out of memory)" :
	    msg);
	if (n != -1)
		free(msg);
}

void
bl_file_done(struct bl_loader *l, uint32_t fi)
{
	struct bl_file *f = &l->bl->files[fi];

	if (f->warnings > BL_WARN_SHOWN && file_is_import(f))
		diag_warn(l->d, f->path, 0, 0, "%zu more warnings not shown",
		    f->warnings - BL_WARN_SHOWN);
}

uint32_t
bl_category_get(struct bl_loader *l, const char *name,
    const char *description, bool builtin)
{
	struct blocklist *bl = l->bl;
	struct bl_category *c;

	for (size_t i = 0; i < bl->ncats; i++) {
		c = &bl->cats[i];
		if (strcmp(c->name, name) != 0)
			continue;
		if (c->description == NULL && description != NULL &&
		    (c->description = strdup(description)) == NULL)
			goto oom;
		return (uint32_t)i;
	}
	if ((c = array_grow(bl->cats, bl->ncats, sizeof(*c))) == NULL)
		goto oom;
	bl->cats = c;
	c = &bl->cats[bl->ncats];
	memset(c, 0, sizeof(*c));
	c->builtin = builtin;
	if ((c->name = strdup(name)) == NULL)
		goto oom;
	bl->ncats++;
	if (description != NULL && (c->description = strdup(description)) ==
	    NULL)
		goto oom;
	return (uint32_t)(bl->ncats - 1);
oom:
	bl_loader_oom(l, name);
	return BL_NONE;
}

uint32_t
bl_origin_add(struct bl_loader *l, uint32_t category, uint32_t file,
    const char *site)
{
	struct blocklist *bl = l->bl;
	struct bl_origin *o = array_grow(bl->origins, bl->norigins,
	    sizeof(*o));

	if (o == NULL)
		goto oom;
	bl->origins = o;
	o = &bl->origins[bl->norigins];
	o->category = category;
	o->file = file;
	o->site = NULL;
	if (site != NULL && (o->site = strdup(site)) == NULL)
		goto oom;
	if (category != BL_NONE && site != NULL)
		bl->cats[category].nsites++;
	return (uint32_t)bl->norigins++;
oom:
	bl_loader_oom(l, bl->files[file].path);
	return BL_NONE;
}

/* Count (delta +1) or uncount (-1) an entry of origin oi; the counters
 * are size_t, so -1 is added as its modular equivalent. */
static void
entry_count(struct blocklist *bl, uint32_t oi, int d)
{
	const struct bl_origin *o = &bl->origins[oi];
	size_t delta = d > 0 ? 1 : SIZE_MAX;
	struct bl_category *c;

	bl->files[o->file].entries += delta;
	if (o->category == BL_NONE) {
		bl->nallow += delta;
		return;
	}
	bl->nblock += delta;
	c = &bl->cats[o->category];
	if (o->site != NULL)
		c->site_entries += delta;
	else
		c->imported += delta;
}

/* The name is in the index already (slot): apply the duplicate rules. */
static int
entry_duplicate(struct bl_loader *l, const char *text, uint32_t oi,
    size_t line, size_t col, uint32_t slot)
{
	struct blocklist *bl = l->bl;
	const struct bl_origin *o = &bl->origins[oi], *old;
	uint32_t old_oi, old_line;

	bl_index_record(&bl->ix, bl->ix.slots[slot].off, &old_oi, &old_line);
	old = &bl->origins[old_oi];
	bl->files[o->file].duplicates++;
	if (o->category == BL_NONE && old->category != BL_NONE) {
		/* An exception wins over a block entry for the same name. */
		if (bl_index_replace(&bl->ix, slot, oi, (uint32_t)line) == -1) {
			bl_loader_oom(l, bl->files[o->file].path);
			return -1;
		}
		entry_count(bl, old_oi, -1);
		entry_count(bl, oi, +1);
		bl->files[o->file].duplicates--;
		return 0;
	}
	if (o->category == BL_NONE || old->category == BL_NONE ||
	    o->category == old->category ||
	    bl->files[o->file].kind == BL_FILE_BUILTIN)
		return 0;
	bl_file_warn(l, o->file, line, col, "%s is already in category %s "
	    "(%s:%u); kept there", text, bl->cats[old->category].name,
	    bl->files[old->file].path, old_line);
	return 0;
}

int
bl_entry_add_text(struct bl_loader *l, const char *text, size_t len,
    uint32_t h, uint32_t oi, size_t line, size_t col)
{
	struct blocklist *bl = l->bl;
	uint32_t slot;
	int rc;

	rc = bl_index_add(&bl->ix, h, text, len, oi,
	    line > UINT32_MAX ? UINT32_MAX : (uint32_t)line, &slot);
	if (rc == -1) {
		bl_loader_oom(l, bl->files[bl->origins[oi].file].path);
		return -1;
	}
	if (rc == 1)
		return entry_duplicate(l, text, oi, line, col, slot);
	entry_count(bl, oi, +1);
	return 0;
}

int
bl_entry_add(struct bl_loader *l, const struct bl_name *nm, uint32_t oi,
    size_t line, size_t col)
{
	uint32_t h[BL_NAME_LABELS_MAX + 1];

	bl_name_hashes(nm, h);
	return bl_entry_add_text(l, nm->text, nm->textlen, h[0], oi, line,
	    col);
}

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

static int
loader_init(struct bl_loader *l, struct diag *d)
{
	memset(l, 0, sizeof(*l));
	l->d = d;
	if ((l->bl = calloc(1, sizeof(*l->bl))) == NULL)
		return -1;
	bl_index_init(&l->bl->ix);
	return 0;
}

struct blocklist *
blocklist_load(const struct config *cfg, struct diag *d)
{
	struct bl_loader l;

	if (loader_init(&l, d) == -1) {
		diag_error(d, "blocklist", 0, 0, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < cfg->blocklist.nfiles; i++)
		if (bl_yaml_load(&l, cfg->blocklist.files[i]) == -1)
			l.failed = true;
	/* After the files, so that a file's entry for the same name wins. */
	if (cfg->blocklist.dns_bypass && load_builtin(&l) == -1)
		l.failed = true;
	return load_finish(&l);
}

struct blocklist *
blocklist_load_file(const char *path, struct diag *d)
{
	struct bl_loader l;

	if (loader_init(&l, d) == -1) {
		diag_error(d, path, 0, 0, "out of memory");
		return NULL;
	}
	if (bl_yaml_load(&l, path) == -1)
		l.failed = true;
	return load_finish(&l);
}

/* Look up every suffix of nm, longest first; the first hit decides. */
static int
match(const struct blocklist *bl, const struct bl_name *nm,
    struct blocklist_match *m)
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
		if (maybe[i])
			off = bl_index_find(&bl->ix, h[i],
			    nm->text + nm->start[i]);
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

int
blocklist_match_wire(const struct blocklist *bl, const uint8_t *qname,
    size_t qname_len, struct blocklist_match *m)
{
	struct bl_name nm;

	if (bl_name_from_wire(qname, qname_len, &nm) == -1) {
		if (m != NULL)
			memset(m, 0, sizeof(*m));
		return 0;
	}
	return match(bl, &nm, m);
}

int
blocklist_match_name(const struct blocklist *bl, const char *name,
    struct blocklist_match *m)
{
	struct bl_name nm;
	char why[BL_WHY_MAX];

	if (bl_name_parse(name, strlen(name), BL_NAME_QUERY, &nm, why) == -1) {
		if (m != NULL)
			memset(m, 0, sizeof(*m));
		return -1;
	}
	return match(bl, &nm, m);
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
	static const char *const kind[] = {
		[BL_FILE_HOSTS] = "hosts", [BL_FILE_DOMAINS] = "domains",
	};

	fprintf(out, "  %s", f->path);
	if (file_is_import(f))
		fprintf(out, " (%s list for %s)", kind[f->kind],
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
	if (bl == NULL)
		return;
	bl_index_free(&bl->ix);
	for (size_t i = 0; i < bl->norigins; i++)
		free(bl->origins[i].site);
	free(bl->origins);
	for (size_t i = 0; i < bl->ncats; i++) {
		free(bl->cats[i].name);
		free(bl->cats[i].description);
	}
	free(bl->cats);
	for (size_t i = 0; i < bl->nfiles; i++)
		free(bl->files[i].path);
	free(bl->files);
	free(bl);
}
