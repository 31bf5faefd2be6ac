/*
 * yamlutil: libyaml's document API with positions. Every message carries
 * the 1-based line and column of the node it is about, since admins fix
 * configuration by jumping to "file:line:column" in an editor.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fileopen.h"
#include "yamlutil.h"

static void
yamlutil_syntax_error(struct diag *d, const char *name,
    const yaml_parser_t *p)
{
	const char	*problem;

	problem = p->problem != NULL ? p->problem : "invalid YAML";
	/*
	 * libyaml stops on a tab where it expects indentation and calls it
	 * "a character that cannot start any token"; the buffer still points
	 * at that character, so say what it is.
	 */
	if (p->error == YAML_SCANNER_ERROR && p->buffer.pointer != NULL &&
	    p->buffer.pointer < p->buffer.last && *p->buffer.pointer == '\t') {
		diag_error(d, name, p->problem_mark.line + 1,
		    p->problem_mark.column + 1,
		    "tabs are not allowed for indentation (use spaces)");
		return;
	}
	switch (p->error) {
	case YAML_MEMORY_ERROR:
		diag_error(d, name, 0, 0, "out of memory while parsing");
		break;
	case YAML_READER_ERROR:
		/* The reader has no line yet, only a byte offset. */
		if (p->problem_value != -1)
			diag_error(d, name, 0, 0, "%s (#%X) at byte offset %zu",
			    problem, (unsigned)p->problem_value,
			    p->problem_offset);
		else
			diag_error(d, name, 0, 0, "%s at byte offset %zu",
			    problem, p->problem_offset);
		break;
	default:
		if (p->context != NULL)
			diag_error(d, name, p->problem_mark.line + 1,
			    p->problem_mark.column + 1,
			    "%s (%s at line %zu, column %zu)", problem,
			    p->context, p->context_mark.line + 1,
			    p->context_mark.column + 1);
		else
			diag_error(d, name, p->problem_mark.line + 1,
			    p->problem_mark.column + 1, "%s", problem);
		break;
	}
}

/*
 * A second document ("---" after the first) would be silently ignored by
 * a single yaml_parser_load(), so look for one and refuse it.
 */
static int
yamlutil_check_single(yaml_parser_t *p, const char *name, struct diag *d)
{
	yaml_document_t	 extra;
	yaml_node_t	*root;
	int		 rc = 0;

	if (!yaml_parser_load(p, &extra)) {
		yamlutil_syntax_error(d, name, p);
		return -1;
	}
	if ((root = yaml_document_get_root_node(&extra)) != NULL) {
		yamlutil_error(d, name, root,
		    "more than one YAML document in the file");
		rc = -1;
	}
	yaml_document_delete(&extra);
	return rc;
}

static int
yamlutil_load(yaml_parser_t *p, const char *name, yaml_document_t *doc,
    struct diag *d)
{
	if (!yaml_parser_load(p, doc)) {
		yamlutil_syntax_error(d, name, p);
		return -1;
	}
	if (yaml_document_get_root_node(doc) == NULL) {
		diag_error(d, name, 0, 0, "empty file (no YAML document)");
		yaml_document_delete(doc);
		return -1;
	}
	if (yamlutil_check_single(p, name, d) == -1) {
		yaml_document_delete(doc);
		return -1;
	}
	return 0;
}

int
yamlutil_load_file(const char *path, yaml_document_t *doc, struct diag *d)
{
	yaml_parser_t	 parser;
	FILE		*f;
	int		 rc;

	if ((f = fileopen_read(path)) == NULL) {
		if (errno == EISDIR)
			diag_error(d, path, 0, 0, "is a directory, not a "
			    "YAML file");
		else
			diag_error(d, path, 0, 0, "cannot open: %s",
			    strerror(errno));
		return -1;
	}
	if (!yaml_parser_initialize(&parser)) {
		diag_error(d, path, 0, 0, "out of memory");
		fclose(f);
		return -1;
	}
	yaml_parser_set_input_file(&parser, f);
	rc = yamlutil_load(&parser, path, doc, d);
	if (rc == 0 && ferror(f)) {
		diag_error(d, path, 0, 0, "read error");
		yaml_document_delete(doc);
		rc = -1;
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

int
yamlutil_load_buffer(const char *name, const unsigned char *buf, size_t len,
    yaml_document_t *doc, struct diag *d)
{
	yaml_parser_t	parser;
	int		rc;

	if (!yaml_parser_initialize(&parser)) {
		diag_error(d, name, 0, 0, "out of memory");
		return -1;
	}
	yaml_parser_set_input_string(&parser, buf, len);
	rc = yamlutil_load(&parser, name, doc, d);
	yaml_parser_delete(&parser);
	return rc;
}

/* An error or a warning at n's position, the message formatted once. */
static void
yamlutil_vsay(struct diag *d, bool warn, const char *file,
    const yaml_node_t *n, const char *fmt, va_list ap)
{
	char	*msg;

	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	(warn ? diag_warn : diag_error)(d, file, n->start_mark.line + 1,
	    n->start_mark.column + 1, "%s",
	    msg != NULL ? msg : "(out of memory)");
	free(msg);
}

void
yamlutil_error(struct diag *d, const char *file, const yaml_node_t *n,
    const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	yamlutil_vsay(d, false, file, n, fmt, ap);
	va_end(ap);
}

void
yamlutil_warn(struct diag *d, const char *file, const yaml_node_t *n,
    const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	yamlutil_vsay(d, true, file, n, fmt, ap);
	va_end(ap);
}

const char *
yamlutil_scalar(const yaml_node_t *n)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

bool
yamlutil_is_null(const yaml_node_t *n)
{
	const char	*s;

	if (n == NULL)
		return true;
	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = yamlutil_scalar(n);
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

const char *
yamlutil_kind(const yaml_node_t *n)
{
	if (n == NULL || yamlutil_is_null(n))
		return "null";
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_SCALAR_NODE:
		return "a scalar";
	default:
		return "nothing";
	}
}

/* Describe what was found instead, quoting short scalars. */
static void
yamlutil_expected(struct diag *d, const char *file, const yaml_node_t *n,
    const char *what)
{
	const char	*s = yamlutil_scalar(n);

	if (s != NULL && !yamlutil_is_null(n))
		yamlutil_error(d, file, n, "expected %s, found \"%.40s%s\"",
		    what, s, strlen(s) > 40 ? "..." : "");
	else
		yamlutil_error(d, file, n, "expected %s, found %s", what,
		    yamlutil_kind(n));
}

int
yamlutil_get_bool(struct diag *d, const char *file, const yaml_node_t *n,
    bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	const char	*s = yamlutil_scalar(n);
	size_t		 i;

	for (i = 0; s != NULL && i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	yamlutil_expected(d, file, n, "true or false");
	return -1;
}

int
yamlutil_get_uint(struct diag *d, const char *file, const yaml_node_t *n,
    unsigned long long min, unsigned long long max, unsigned long long *out)
{
	const char		*s = yamlutil_scalar(n), *p;
	unsigned long long	 v = 0;
	bool			 big = false;

	if (s == NULL || *s == '\0' || yamlutil_is_null(n)) {
		yamlutil_expected(d, file, n, "an integer");
		return -1;
	}
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			yamlutil_expected(d, file, n, "an integer");
			return -1;
		}
		if (v > (~0ULL - 9) / 10)
			big = true;
		else
			v = v * 10 + (unsigned long long)(*p - '0');
	}
	if (big || v < min || v > max) {
		yamlutil_error(d, file, n, "%.40s is out of range (%llu-%llu)",
		    s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int
yamlutil_get_string(struct diag *d, const char *file, const yaml_node_t *n,
    const char **out)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE || yamlutil_is_null(n)) {
		yamlutil_expected(d, file, n, "a string");
		return -1;
	}
	*out = yamlutil_scalar(n);
	return 0;
}

int
yamlutil_check_duplicates(struct diag *d, const char *file,
    yaml_document_t *doc, const yaml_node_t *map)
{
	yaml_node_pair_t	*a, *b;
	yaml_node_t		*ka, *kb;
	const char		*sa, *sb;
	int			 dups = 0;

	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return 0;
	for (b = map->data.mapping.pairs.start;
	    b < map->data.mapping.pairs.top; b++) {
		kb = yaml_document_get_node(doc, b->key);
		if ((sb = yamlutil_scalar(kb)) == NULL)
			continue;
		for (a = map->data.mapping.pairs.start; a < b; a++) {
			ka = yaml_document_get_node(doc, a->key);
			if ((sa = yamlutil_scalar(ka)) == NULL ||
			    strcmp(sa, sb) != 0)
				continue;
			yamlutil_error(d, file, kb,
			    "duplicate key \"%s\" (first at line %zu)", sb,
			    ka->start_mark.line + 1);
			dups++;
			break;
		}
	}
	return dups;
}
