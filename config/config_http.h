/*
 * config_http: the http: section of dnswarden.yaml (the web console),
 * parsed apart from config.c because it is a world of its own: users,
 * password hashes, token digests. Private to config/.
 */
#ifndef DNSWARDEN_CONFIG_HTTP_H
#define DNSWARDEN_CONFIG_HTTP_H

#include <yaml.h>

#include "config.h"

/*
 * Fill cfg->http from the mapping at node v of doc (file names messages).
 * Every problem goes to d as file:line:column; the walk goes on.
 */
void	config_http_parse(struct config *cfg, yaml_document_t *doc,
	    yaml_node_t *v, const char *file, struct diag *d);

/* Release what cfg->http owns and zero it. */
void	config_http_free(struct config *cfg);

#endif
