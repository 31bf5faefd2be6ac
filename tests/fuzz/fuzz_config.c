/*
 * fuzz_config: a configuration file. The input is written to a file and
 * loaded with config_load_resolv() (config_load() with the resolv.conf
 * named): whatever follows a line "#%resolv.conf" in the input becomes the
 * resolv.conf that "system" upstreams are read from. The whole input also
 * goes through yamlutil_load_buffer().
 *
 * Beyond not crashing or leaking: a configuration comes back exactly when
 * no error was recorded, every message names the file, and a loaded
 * configuration keeps the promises of config.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "yamlutil.h"
#include "fuzz_util.h"

#define RESOLV_MARK	"\n#%resolv.conf\n"

static char	 cfg_path[4096];
static char	 resolv_path[4096];
static struct sockaddr_storage probes[5];

static void
probe_set(struct sockaddr_storage *ss, const char *addr)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(53);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(53);
	} else
		abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const addrs[] = {
		"127.0.0.1", "::1", "10.1.2.3", "192.0.2.1", "::ffff:10.0.0.1",
	};

	fuzz_path(cfg_path, sizeof(cfg_path), "dnswarden.yaml");
	fuzz_path(resolv_path, sizeof(resolv_path), "resolv.conf");
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		probe_set(&probes[i], addrs[i]);
	config_free(config_default());
	return 0;
}

/*
 * Every message is one line that starts "file:" followed by a line number
 * or a space. Text quoted from the file must not bring control characters
 * (a newline that starts a fake message, terminal escapes).
 */
static void
check_messages(const struct diag *d, const char *file)
{
	const char *line = diag_text(d);
	size_t flen = strlen(file);

	FUZZ_CHECK(line != NULL);
	for (const char *p = line; *p != '\0'; p++)
		if (!FUZZ_OPEN(*p == '\n' || *p == '\t' ||
		    (unsigned char)*p >= 0x20,
		    "diag-control-chars"))
			return;
	while (*line != '\0') {
		/* A newline quoted from the file starts a line of its own. */
		if (!FUZZ_OPEN(strncmp(line, file, flen) == 0 &&
		    line[flen] == ':', "diag-control-chars"))
			return;
		char next = line[flen + 1];
		FUZZ_CHECK(next == ' ' || (next >= '1' && next <= '9'));
		const char *nl = strchr(line, '\n');
		FUZZ_CHECK(nl != NULL);
		line = nl + 1;
	}
}

static bool
terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* What config.h promises about a loaded configuration. */
static void
check_config(const struct config *cfg)
{
	FUZZ_CHECK(cfg->path != NULL && strcmp(cfg->path, cfg_path) == 0);
	FUZZ_CHECK(cfg->dir != NULL);
	FUZZ_CHECK(cfg->server.threads >= 1);
	FUZZ_CHECK(cfg->nupstreams >= 1);
	for (size_t i = 0; i < cfg->server.nlisten; i++)
		FUZZ_CHECK(terminated(cfg->server.listen[i].text,
		    sizeof(cfg->server.listen[i].text)));
	for (size_t i = 0; i < cfg->nupstreams; i++)
		FUZZ_CHECK(terminated(cfg->upstreams[i].text,
		    sizeof(cfg->upstreams[i].text)));
	for (size_t i = 0; i < cfg->blocklist.nfiles; i++)
		FUZZ_CHECK(cfg->blocklist.files[i][0] == '/');
	FUZZ_CHECK(cfg->log.database == NULL || cfg->log.database[0] == '/');
	FUZZ_CHECK(cfg->log.client_identity != CLIENT_IDENTITY_PSEUDONYM ||
	    cfg->log.pseudonym_key != NULL);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&probes[i];
		const char *name = config_client_name(cfg, sa);
		(void)config_client_allowed(cfg, sa);
		FUZZ_CHECK(name == NULL || strlen(name) <= 64 * 1024);
	}
}

static void
load_file(const uint8_t *data, size_t size)
{
	const uint8_t *mark = memmem(data, size, RESOLV_MARK,
	    strlen(RESOLV_MARK));
	size_t yaml_len = mark ? (size_t)(mark - data) : size;
	struct diag d;

	fuzz_write_file(cfg_path, data, yaml_len);
	if (mark != NULL) {
		const uint8_t *r = mark + strlen(RESOLV_MARK);
		fuzz_write_file(resolv_path, r, size - (size_t)(r - data));
	} else
		fuzz_write_file(resolv_path, "nameserver 192.0.2.53\n", 22);
	diag_init(&d);
	struct config *cfg = config_load_resolv(cfg_path, resolv_path, &d);
	FUZZ_CHECK((cfg == NULL) == (d.errors > 0));
	check_messages(&d, cfg_path);
	if (cfg != NULL)
		check_config(cfg);
	config_free(cfg);
	diag_free(&d);
}

static void
load_buffer(const uint8_t *data, size_t size)
{
	yaml_document_t doc;
	struct diag d;

	diag_init(&d);
	if (yamlutil_load_buffer("fuzz", data, size, &doc, &d) == 0) {
		FUZZ_CHECK(d.errors == 0);
		FUZZ_CHECK(yaml_document_get_root_node(&doc) != NULL);
		yaml_document_delete(&doc);
	} else
		FUZZ_CHECK(d.errors > 0);
	check_messages(&d, "fuzz");
	diag_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return -1;	/* configurations are small; keep runs fast */
	fuzz_input(data, size);
	load_file(data, size);
	load_buffer(data, size);
	return 0;
}
