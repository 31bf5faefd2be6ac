/*
 * config_cpus: server.cpus and http.cpus. Checked against the CPUs the
 * process may use, so that "dnswarden check" finds a CPU the machine (or
 * the unit's CPUAffinity=) does not have before the daemon would only
 * warn about it at start.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_cpus.h"
#include "thread.h"
#include "yamlutil.h"

/* The largest CPU number accepted at all (CPU_SETSIZE - 1). */
#define CONFIG_CPU_MAX		1023

static bool
config_cpu_seen(const struct config_cpus *c, unsigned cpu)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->cpu[i] == cpu)
			return true;
	return false;
}

/* One item: a CPU number; false after a message. */
static bool
config_cpu_check(struct diag *d, const char *file, const yaml_node_t *item,
    const char *key, const struct config_cpus *c, unsigned long long cpu)
{
	char	allowed[256];
	long	ncpus = sysconf(_SC_NPROCESSORS_CONF);

	if (ncpus > 0 && cpu >= (unsigned long long)ncpus) {
		yamlutil_error(d, file, item, "%s: CPU %llu is out of range:"
		    " this machine has CPUs 0-%ld", key, cpu, ncpus - 1);
		return false;
	}
	if (!thread_cpu_allowed((unsigned)cpu)) {
		yamlutil_error(d, file, item, "%s: CPU %llu is not one this"
		    " process may run on (%s)", key, cpu,
		    thread_cpus_allowed_text(allowed, sizeof(allowed)));
		return false;
	}
	if (config_cpu_seen(c, (unsigned)cpu)) {
		yamlutil_error(d, file, item, "%s: CPU %llu is listed twice",
		    key, cpu);
		return false;
	}
	return true;
}

void
config_cpus_parse(struct config_cpus *out, yaml_document_t *doc,
    yaml_node_t *v, const char *file, const char *key, struct diag *d)
{
	unsigned long long	 cpu;
	size_t			 n;

	config_cpus_free(out);
	if (yamlutil_is_null(v))
		return;
	if (v->type != YAML_SEQUENCE_NODE) {
		yamlutil_error(d, file, v, "%s: expected a list of CPU numbers,"
		    " found %s", key, yamlutil_kind(v));
		return;
	}
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n == 0)
		return;
	if ((out->cpu = calloc(n, sizeof(*out->cpu))) == NULL) {
		yamlutil_error(d, file, v, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(doc,
		    v->data.sequence.items.start[i]);

		if (yamlutil_get_uint(d, file, item, 0, CONFIG_CPU_MAX,
		    &cpu) == -1 || !config_cpu_check(d, file, item, key, out,
		    cpu))
			continue;
		out->cpu[out->n++] = (unsigned)cpu;
	}
}

int
config_cpus_rest(struct config_cpus *out, const struct config_cpus *taken)
{
	long	ncpus = sysconf(_SC_NPROCESSORS_CONF);
	size_t	max = ncpus > 0 ? (size_t)ncpus : CONFIG_CPU_MAX + 1;

	if ((out->cpu = calloc(max, sizeof(*out->cpu))) == NULL)
		return -1;
	if ((out->n = thread_cpus_rest(taken->cpu, taken->n, out->cpu,
	    max)) == 0)
		config_cpus_free(out);
	return 0;
}

void
config_cpus_free(struct config_cpus *c)
{
	free(c->cpu);
	memset(c, 0, sizeof(*c));
}
