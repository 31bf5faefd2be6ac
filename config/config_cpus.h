/*
 * config_cpus: a list of CPU numbers (server.cpus, http.cpus), shared by
 * config.c and config_http.c. Private to config/.
 */
#ifndef DNSWARDEN_CONFIG_CPUS_H
#define DNSWARDEN_CONFIG_CPUS_H

#include <yaml.h>

#include "config.h"

/*
 * Fill out (freed first) from the list at node v of doc; key names it in
 * messages. Each CPU must be one this process may run on
 * (thread_cpu_allowed()); every problem goes to d at its item.
 */
void	config_cpus_parse(struct config_cpus *out, yaml_document_t *doc,
	    yaml_node_t *v, const char *file, const char *key, struct diag *d);

/*
 * Fill out (empty on entry) with the CPUs this process may use that are
 * not in taken; none left leaves it empty. Returns 0, or -1 out of
 * memory.
 */
int	config_cpus_rest(struct config_cpus *out,
	    const struct config_cpus *taken);

/* Release what c owns and zero it. */
void	config_cpus_free(struct config_cpus *c);

#endif
