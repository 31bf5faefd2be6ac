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
#include <unistd.h>

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

/* Read the list at path (shown in messages as name) into category cat. */
static void
import_open(struct yfile *y, const yaml_node_t *at, const char *path,
    const char *name, enum bl_import_format fmt, uint32_t cat)
{
	FILE *f;

	/* A FIFO or a device would block or never end: only files. */
	if ((f = fileopen_read(path)) == NULL && (errno == EINVAL ||
	    errno == EISDIR))
		yamlutil_error(y->l->d, y->path, at, "cannot import %s: not "
		    "a regular file", path);
	else if (f == NULL)
		yamlutil_error(y->l->d, y->path, at, "cannot open %s: %s",
		    path, strerror(errno));
	else {
		bl_import_read(y->l, f, name, fmt, cat);
		fclose(f);
	}
}

/* A duration: a number of seconds, or with a unit s, m, h or d. */
static int
duration_parse(const char *s, unsigned *out)
{
	char *end;
	unsigned long long v;
	unsigned mult = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno != 0 || s[0] == '-')
		return -1;
	if (*end == 'm')
		mult = 60;
	else if (*end == 'h')
		mult = 3600;
	else if (*end == 'd')
		mult = 86400;
	else if (*end != 's' && *end != '\0')
		return -1;
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v == 0 || v > 366ULL * 86400 / mult)
		return -1;
	*out = (unsigned)(v * mult);
	return 0;
}

/* "https://..." or "http://...", printable, no spaces. */
static bool
url_ok(const char *u)
{
	return (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) ==
	    0) && strpbrk(u, " \t") == NULL;
}

static bool
sha256_ok(const char *h)
{
	size_t i;

	for (i = 0; h[i] != '\0'; i++)
		if (!strchr("0123456789abcdefABCDEF", h[i]))
			return false;
	return i == 64;
}

/* The url: settings in v[2..5] (refresh, sha256, max_bytes) into src. */
static int
import_url_settings(struct yfile *y, const yaml_node_t *n, yaml_node_t **v,
    struct bl_source *src)
{
	const char *s;
	unsigned long long mb;
	char *end;

	src->refresh_s = 86400;
	if (v[3] != NULL && ((s = node_text(y, n, v[3], "refresh")) == NULL ||
	    duration_parse(s, &src->refresh_s) == -1)) {
		yamlutil_error(y->l->d, y->path, v[3], "refresh: expected a "
		    "duration such as 30m, 24h or 7d");
		return -1;
	}
	if (v[4] != NULL && ((s = node_text(y, n, v[4], "sha256")) == NULL ||
	    !sha256_ok(s))) {
		yamlutil_error(y->l->d, y->path, v[4], "sha256: expected 64 hex "
		    "digits");
		return -1;
	}
	src->sha256 = v[4] ? (char *)yamlutil_scalar(v[4]) : NULL;
	if (v[5] != NULL && ((s = node_text(y, n, v[5], "max_bytes")) ==
	    NULL || (mb = strtoull(s, &end, 10)) == 0 || *end != '\0')) {
		yamlutil_error(y->l->d, y->path, v[5], "max_bytes: expected a "
		    "positive number of bytes");
		return -1;
	}
	src->max_bytes = v[5] ? mb : 0;
	return 0;
}

/*
 * A url: import: registered as a source for the fetcher, and read from
 * its last good copy in cache_dir. Without one yet the list is empty, and
 * says so: start-up never waits for the network.
 */
static void
import_url(struct yfile *y, const yaml_node_t *n, yaml_node_t **v,
    enum bl_import_format fmt, uint32_t cat)
{
	struct bl_source src = { .format = bl_import_format_name(fmt) };
	const char *url = node_text(y, n, v[1], "url");
	uint64_t h = 14695981039346656037ULL;
	char *path;

	if (url == NULL || import_url_settings(y, n, v, &src) == -1)
		return;
	if (!url_ok(url)) {
		yamlutil_error(y->l->d, y->path, v[1], "url: expected an http:// "
		    "or https:// URL");
		return;
	}
	if (y->l->cache_dir == NULL) {
		yamlutil_error(y->l->d, y->path, v[1], "url: imports need "
		    "blocklist.cache_dir");
		return;
	}
	for (const char *p = url; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	if (asprintf(&path, "%s/%016llx.list", y->l->cache_dir,
	    (unsigned long long)h) == -1) {
		bl_loader_oom(y->l, y->path);
		return;
	}
	src.url = (char *)url;
	src.path = path;
	if (bl_source_add(y->l, &src) != BL_NONE) {
		if (access(path, F_OK) == 0)
			import_open(y, v[1], path, url, fmt, cat);
		else
			bl_file_warn(y->l, y->file, node_line(v[1]),
			    node_col(v[1]), "%s: not downloaded yet; empty "
			    "until the first download (dnswarden update-lists)",
			    url);
	}
	free(path);
}

static void
yaml_import(struct yfile *y, const yaml_node_t *n, uint32_t cat)
{
	static const char *const keys[] = { "file", "url", "format",
	    "refresh", "sha256", "max_bytes" };
	yaml_node_t *v[6];
	enum bl_import_format fmt;
	const char *file;
	char *path;

	if (node_fields(y, n, "an import", keys, v, 6) == -1 ||
	    import_format(y, n, v[2], &fmt) == -1)
		return;
	if ((v[0] == NULL) == (v[1] == NULL)) {
		yamlutil_error(y->l->d, y->path, n, "an import needs either "
		    "\"file\" or \"url\"");
		return;
	}
	if (v[1] != NULL) {
		import_url(y, n, v, fmt, cat);
		return;
	}
	for (int i = 3; i < 6; i++)
		if (v[i] != NULL) {
			yamlutil_error(y->l->d, y->path, v[i], "\"%s\" is for "
			    "url: imports only", keys[i]);
			return;
		}
	if ((file = node_text(y, n, v[0], "file")) == NULL)
		return;
	if ((path = import_path(y, file)) == NULL) {
		bl_loader_oom(y->l, y->path);
		return;
	}
	import_open(y, v[0], path, path, fmt, cat);
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
