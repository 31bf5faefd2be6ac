/*
 * bl_yaml: reading a blocklist YAML file (categories with sites and
 * imports, allow entries). Every problem in the file itself is an error at
 * the node's line and column; reading goes on after one so that "dnswarden
 * check" reports them all at once.
 */

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "bl_import.h"
#include "bl_yaml.h"
#include "fileopen.h"
#include "yamlutil.h"

#define CATEGORY_NAME_MAX	64

/* One YAML file being read. */
struct yfile {
	struct bl_loader	*l;
	yaml_document_t		 doc;
	const char		*path;
	char			*dir;		/* for relative import paths */
	uint32_t		 file;
	uint32_t		 allow_origin;	/* BL_NONE until needed */
};

static yaml_node_t *
node_at(struct yfile *y, int index)
{
	return yaml_document_get_node(&y->doc, index);
}

static size_t
node_line(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

static size_t
node_col(const yaml_node_t *n)
{
	return n->start_mark.column + 1;
}

static void
unknown_key(struct yfile *y, const yaml_node_t *k, const char *key,
    const char *what, const char *const *names, size_t count)
{
	char expected[128] = "";

	for (size_t i = 0; i < count; i++) {
		strncat(expected, i ? ", " : "", sizeof(expected) -
		    strlen(expected) - 1);
		strncat(expected, names[i], sizeof(expected) -
		    strlen(expected) - 1);
	}
	char show[BL_SHOW_MAX];

	if (key == NULL)
		yamlutil_error(y->l->d, y->path, k, "expected a key in %s, "
		    "found %s", what, yamlutil_kind(k));
	else
		yamlutil_error(y->l->d, y->path, k, "unknown key \"%s\" in %s "
		    "(expected %s)", bl_text_show(key, strlen(key), show), what,
		    expected);
}

/*
 * Check that n is a mapping whose keys are all among names (count of
 * them) and store each value in vals (NULL when absent). Unknown and
 * repeated keys are errors, but the known ones are still stored so that
 * reading goes on. Returns 0, or -1 when n is not a mapping.
 */
static int
node_fields(struct yfile *y, const yaml_node_t *n, const char *what,
    const char *const *names, yaml_node_t **vals, size_t count)
{
	memset(vals, 0, count * sizeof(*vals));
	if (n->type != YAML_MAPPING_NODE) {
		yamlutil_error(y->l->d, y->path, n, "expected %s (a mapping), "
		    "found %s", what, yamlutil_kind(n));
		return -1;
	}
	yamlutil_check_duplicates(y->l->d, y->path, &y->doc, n);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	    p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_at(y, p->key);
		const char *key = yamlutil_scalar(k);
		size_t i;

		for (i = 0; key != NULL && i < count; i++)
			if (strcmp(key, names[i]) == 0)
				break;
		if (key == NULL || i == count)
			unknown_key(y, k, key, what, names, count);
		else if (vals[i] == NULL)	/* repeats reported above */
			vals[i] = node_at(y, p->value);
	}
	return 0;
}

/*
 * The items of sequence n (a YAML null counts as an empty list). Returns
 * the count, or -1 after an error "expected a list of what".
 */
static ssize_t
node_items(struct yfile *y, const yaml_node_t *n, const char *what,
    yaml_node_item_t **items)
{
	*items = NULL;
	if (yamlutil_is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE) {
		yamlutil_error(y->l->d, y->path, n, "expected a list of %s, "
		    "found %s", what, yamlutil_kind(n));
		return -1;
	}
	*items = n->data.sequence.items.start;
	return n->data.sequence.items.top - n->data.sequence.items.start;
}

/* A required non-empty string field. */
static const char *
node_text(struct yfile *y, const yaml_node_t *parent, const yaml_node_t *n,
    const char *key)
{
	const char *s;

	if (n == NULL) {
		yamlutil_error(y->l->d, y->path, parent, "missing \"%s\"", key);
		return NULL;
	}
	if (yamlutil_get_string(y->l->d, y->path, n, &s) == -1)
		return NULL;
	if (*s == '\0') {
		yamlutil_error(y->l->d, y->path, n, "empty \"%s\"", key);
		return NULL;
	}
	/* Names and paths end up in messages, logs and reports. */
	if (!bl_text_printable(s)) {
		yamlutil_error(y->l->d, y->path, n, "\"%s\" holds control "
		    "characters", key);
		return NULL;
	}
	return s;
}

/* One domain name entry (n) from origin oi. */
static void
yaml_entry(struct yfile *y, const yaml_node_t *n, uint32_t oi)
{
	struct bl_name nm;
	char why[BL_WHY_MAX], show[BL_SHOW_MAX];
	const char *s;

	if (yamlutil_get_string(y->l->d, y->path, n, &s) == -1)
		return;
	if (bl_name_parse(s, strlen(s), BL_NAME_ENTRY, &nm, why) == -1) {
		yamlutil_error(y->l->d, y->path, n, "invalid domain name "
		    "\"%s\": %s", bl_text_show(s, strlen(s), show), why);
		return;
	}
	bl_entry_add(y->l, &nm, oi, node_line(n), node_col(n));
}

static void
yaml_site(struct yfile *y, const yaml_node_t *n, uint32_t cat)
{
	static const char *const keys[] = { "name", "domains" };
	yaml_node_t *v[2];
	yaml_node_item_t *items;
	const char *name;
	ssize_t count;
	uint32_t oi;

	if (node_fields(y, n, "a site", keys, v, 2) == -1 ||
	    (name = node_text(y, n, v[0], "name")) == NULL)
		return;
	if (v[1] == NULL) {
		yamlutil_error(y->l->d, y->path, n, "site \"%s\" has no "
		    "\"domains\"", name);
		return;
	}
	if ((count = node_items(y, v[1], "domain names", &items)) == -1 ||
	    (oi = bl_origin_add(y->l, cat, y->file, name)) == BL_NONE)
		return;
	if (count == 0)
		bl_file_warn(y->l, y->file, node_line(v[1]), node_col(v[1]),
		    "site \"%s\" has no domains", name);
	for (ssize_t i = 0; i < count; i++)
		yaml_entry(y, node_at(y, items[i]), oi);
}

/* The path of an import: absolute, or relative to the YAML file's
 * directory (without a "./" in front when that is the current one). */
static char *
import_path(struct yfile *y, const char *file)
{
	char *p;

	if (file[0] == '/' || strcmp(y->dir, ".") == 0)
		return strdup(file);
	if (asprintf(&p, "%s/%s", y->dir, file) == -1)
		return NULL;
	return p;
}

static int
import_format(struct yfile *y, const yaml_node_t *parent,
    const yaml_node_t *n, enum bl_import_format *fmt)
{
	const char *s = node_text(y, parent, n, "format");
	int f;

	if (s == NULL)
		return -1;
	if ((f = bl_import_format_parse(s)) == -1) {
		yamlutil_error(y->l->d, y->path, n, "unknown format \"%s\" "
		    "(expected hosts, domains, adblock, dnsmasq or rpz)", s);
		return -1;	/* s is printable: node_text() checked */
	}
	*fmt = (enum bl_import_format)f;
	return 0;
}

static void
yaml_import(struct yfile *y, const yaml_node_t *n, uint32_t cat)
{
	static const char *const keys[] = { "file", "format" };
	yaml_node_t *v[2];
	enum bl_import_format fmt;
	const char *file;
	char *path;
	FILE *f;

	if (node_fields(y, n, "an import", keys, v, 2) == -1 ||
	    (file = node_text(y, n, v[0], "file")) == NULL ||
	    import_format(y, n, v[1], &fmt) == -1)
		return;
	if ((path = import_path(y, file)) == NULL) {
		bl_loader_oom(y->l, y->path);
		return;
	}
	/* A FIFO or a device would block or never end: only files. */
	if ((f = fileopen_read(path)) == NULL && (errno == EINVAL ||
	    errno == EISDIR))
		yamlutil_error(y->l->d, y->path, v[0], "cannot import %s: not "
		    "a regular file", path);
	else if (f == NULL)
		yamlutil_error(y->l->d, y->path, v[0], "cannot open %s: %s",
		    path, strerror(errno));
	else {
		bl_import_read(y->l, f, path, fmt, cat);
		fclose(f);
	}
	free(path);
}

static int
category_name_check(struct yfile *y, const yaml_node_t *n, const char *s)
{
	const char *why = NULL;

	if (strlen(s) > CATEGORY_NAME_MAX)
		why = "longer than 64 bytes";
	if (why == NULL)
		return 0;
	yamlutil_error(y->l->d, y->path, n, "invalid category name: %s", why);
	return -1;
}

/* The sites: or import: list of category cat; each item read by fn. */
static void
category_list(struct yfile *y, const yaml_node_t *n, uint32_t cat,
    const char *what, void (*fn)(struct yfile *, const yaml_node_t *,
    uint32_t))
{
	yaml_node_item_t *items;
	ssize_t count = node_items(y, n, what, &items);

	for (ssize_t i = 0; i < count; i++)
		fn(y, node_at(y, items[i]), cat);
}

static void
yaml_category(struct yfile *y, const yaml_node_t *n)
{
	static const char *const keys[] = {
		"name", "description", "sites", "import",
	};
	yaml_node_t *v[4];
	const char *name, *desc = NULL;
	uint32_t cat;

	if (node_fields(y, n, "a category", keys, v, 4) == -1 ||
	    (name = node_text(y, n, v[0], "name")) == NULL ||
	    category_name_check(y, v[0], name) == -1)
		return;
	if (v[1] != NULL &&
	    yamlutil_get_string(y->l->d, y->path, v[1], &desc) == -1)
		return;
	if ((cat = bl_category_get(y->l, name, desc, false)) == BL_NONE)
		return;
	if (v[2] == NULL && v[3] == NULL)
		bl_file_warn(y->l, y->file, node_line(n), node_col(n),
		    "category %s has no sites and no import", name);
	if (v[2] != NULL)
		category_list(y, v[2], cat, "sites", yaml_site);
	if (v[3] != NULL)
		category_list(y, v[3], cat, "imports", yaml_import);
}

static void
yaml_allow(struct yfile *y, const yaml_node_t *n)
{
	yaml_node_item_t *items;
	ssize_t count = node_items(y, n, "domain names", &items);

	if (count > 0 && (y->allow_origin = bl_origin_add(y->l, BL_NONE,
	    y->file, NULL)) == BL_NONE)
		return;
	for (ssize_t i = 0; i < count; i++)
		yaml_entry(y, node_at(y, items[i]), y->allow_origin);
}

static void
yaml_root(struct yfile *y)
{
	static const char *const keys[] = { "categories", "allow" };
	yaml_node_t *root = yaml_document_get_root_node(&y->doc), *v[2];
	yaml_node_item_t *items;
	ssize_t count;

	if (root == NULL || node_fields(y, root, "a blocklist with "
	    "categories: and allow:", keys, v, 2) == -1)
		return;
	if (v[0] != NULL &&
	    (count = node_items(y, v[0], "categories", &items)) > 0)
		for (ssize_t i = 0; i < count; i++)
			yaml_category(y, node_at(y, items[i]));
	if (v[1] != NULL)
		yaml_allow(y, v[1]);
}

int
bl_yaml_load(struct bl_loader *l, const char *path)
{
	struct yfile y = { .l = l, .path = path, .allow_origin = BL_NONE };
	unsigned errors = l->d->errors;
	char *copy;

	if ((copy = strdup(path)) == NULL ||
	    (y.dir = strdup(dirname(copy))) == NULL) {
		free(copy);
		bl_loader_oom(l, path);
		return -1;
	}
	free(copy);
	if ((y.file = bl_file_add(l, path, BL_FILE_YAML, BL_NONE)) ==
	    BL_NONE || yamlutil_load_file(path, &y.doc, l->d) == -1) {
		free(y.dir);
		return -1;
	}
	yaml_root(&y);
	bl_file_done(l, y.file);
	yaml_document_delete(&y.doc);
	free(y.dir);
	return l->d->errors > errors ? -1 : 0;
}
