/*
 * yamlutil: loading a YAML file with libyaml's document API and reporting
 * problems at a node's position, shared by the configuration and blocklist
 * loaders.
 */
#ifndef DNSWARDEN_YAMLUTIL_H
#define DNSWARDEN_YAMLUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "diag.h"

/*
 * Parse the file at path into doc. Returns 0 (free doc with
 * yaml_document_delete()), or -1 with a "file:line:column: message" in d
 * (syntax errors, unreadable file, empty document).
 */
int	yamlutil_load_file(const char *path, yaml_document_t *doc,
	    struct diag *d);

/* Same from a memory buffer; name is used in messages (fuzzing, tests). */
int	yamlutil_load_buffer(const char *name, const unsigned char *buf,
	    size_t len, yaml_document_t *doc, struct diag *d);

/* Record an error at node n's start (1-based line and column). */
void	yamlutil_error(struct diag *d, const char *file, const yaml_node_t *n,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Same as a warning. */
void	yamlutil_warn(struct diag *d, const char *file, const yaml_node_t *n,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The scalar's text (NUL-terminated, owned by doc), or NULL if n is not a
 * scalar. */
const char *yamlutil_scalar(const yaml_node_t *n);

/*
 * Typed scalar readers: return 0 and store the value, or -1 after recording
 * "expected ..." at n in d. Booleans accept true/false/yes/no/on/off;
 * integers must be decimal within [min, max].
 */
int	yamlutil_get_bool(struct diag *d, const char *file, const yaml_node_t *n,
	    bool *out);
int	yamlutil_get_uint(struct diag *d, const char *file, const yaml_node_t *n,
	    unsigned long long min, unsigned long long max,
	    unsigned long long *out);
int	yamlutil_get_string(struct diag *d, const char *file,
	    const yaml_node_t *n, const char **out);

/* True if n is absent or a plain null scalar ("", "~", "null"). */
bool	yamlutil_is_null(const yaml_node_t *n);

/* What n is, for messages: "a mapping", "a list", "a scalar" or "null". */
const char *yamlutil_kind(const yaml_node_t *n);

/*
 * Record "duplicate key" at every key of mapping map that repeats an
 * earlier one (libyaml keeps both). Quadratic: meant for the short
 * mappings of hand-written files. Returns the number of duplicates.
 */
int	yamlutil_check_duplicates(struct diag *d, const char *file,
	    yaml_document_t *doc, const yaml_node_t *map);

#endif
