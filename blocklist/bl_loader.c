/*
 * bl_loader: the bookkeeping the readers of every format share while a
 * blocklist loads: files, categories, origins and the rules for names
 * that appear twice.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bl_loader.h"

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

void
bl_file_warn(struct bl_loader *l, uint32_t fi, size_t line, size_t col,
    const char *fmt, ...)
{
	struct bl_file *f = &l->bl->files[fi];
	char *msg;
	va_list ap;
	int n;

	if (++f->warnings > BL_WARN_SHOWN && bl_file_is_import(f))
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
bl_file_note(struct bl_loader *l, uint32_t fi, const char *fmt, ...)
{
	struct bl_file *f = &l->bl->files[fi];
	char *msg;
	va_list ap;
	int n;

	f->warnings++;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	diag_warn(l->d, f->path, 0, 0, "%s", n == -1 ? "(out of memory)" :
	    msg);
	if (n != -1)
		free(msg);
}

void
bl_file_done(struct bl_loader *l, uint32_t fi)
{
	struct bl_file *f = &l->bl->files[fi];

	if (f->warnings > BL_WARN_SHOWN && bl_file_is_import(f))
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

uint32_t
bl_source_add(struct bl_loader *l, const struct bl_source *src)
{
	struct blocklist *bl = l->bl;
	struct bl_source *s;

	for (size_t i = 0; i < bl->nsources; i++)
		if (strcmp(bl->sources[i].url, src->url) == 0)
			return (uint32_t)i;
	if ((s = array_grow(bl->sources, bl->nsources, sizeof(*s))) == NULL)
		goto oom;
	bl->sources = s;
	s = &bl->sources[bl->nsources];
	*s = *src;
	s->url = strdup(src->url);
	s->path = strdup(src->path);
	s->sha256 = src->sha256 ? strdup(src->sha256) : NULL;
	bl->nsources++;
	if (s->url == NULL || s->path == NULL || (src->sha256 != NULL &&
	    s->sha256 == NULL))
		goto oom;
	return (uint32_t)(bl->nsources - 1);
oom:
	bl_loader_oom(l, src->url);
	return BL_NONE;
}

int
bl_loader_init(struct bl_loader *l, struct diag *d)
{
	memset(l, 0, sizeof(*l));
	l->d = d;
	if ((l->bl = calloc(1, sizeof(*l->bl))) == NULL)
		return -1;
	bl_index_init(&l->bl->ix);
	return 0;
}

void
bl_state_free(struct blocklist *bl)
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
	for (size_t i = 0; i < bl->npolicies; i++) {
		free(bl->policies[i].name);
		free(bl->policies[i].nets);
		free(bl->policies[i].mask);
	}
	free(bl->policies);
	for (size_t i = 0; i < bl->nsources; i++) {
		free(bl->sources[i].url);
		free(bl->sources[i].path);
		free(bl->sources[i].sha256);
	}
	free(bl->sources);
	free(bl);
}
