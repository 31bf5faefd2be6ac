/*
 * config_test: loading dnswarden.yaml. Error cases write a small file to a
 * temporary directory and compare the whole diagnostic text, positions
 * included, since admins navigate by them. Runs with config/ as its working
 * directory (see meson.build) for the testdata/ files.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "yamlutil.h"
#include "unit.h"

#define RESOLV		"testdata/resolv.conf"
#define RESOLV_EMPTY	"testdata/resolv-empty.conf"
#define RESOLV_SINGLE	"testdata/resolv-single.conf"

/* Replace every "<dir>/t.yaml" in src by "t.yaml", into out. */
static void
strip_dir(const char *src, const char *path, char *out, size_t len)
{
	size_t		 plen = strlen(path), o = 0;
	const char	*hit;

	while (*src != '\0' && o + 1 < len) {
		if ((hit = strstr(src, path)) == src) {
			o += (size_t)snprintf(out + o, len - o, "t.yaml");
			src += plen;
		} else
			out[o++] = *src++;
	}
	out[o < len ? o : len - 1] = '\0';
}

/*
 * Load yaml from a fresh temporary directory. The messages, with that
 * directory removed, go to msgs; the directory's real path to dir.
 */
static struct config *
load_yaml_with(const char *yaml, const char *resolv, char *msgs, size_t len,
    char *dir)
{
	char		 tmpl[] = "/tmp/config_test.XXXXXX", path[PATH_MAX];
	struct config	*cfg;
	struct diag	 d;
	FILE		*f;

	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/t.yaml", tmpl);
	if ((f = fopen(path, "w")) == NULL || fputs(yaml, f) == EOF ||
	    fclose(f) == EOF) {
		perror(path);
		exit(1);
	}
	if (dir != NULL && realpath(tmpl, dir) == NULL)
		dir[0] = '\0';
	diag_init(&d);
	cfg = config_load_resolv(path, resolv, &d);
	strip_dir(diag_text(&d), path, msgs, len);
	diag_free(&d);
	unlink(path);
	rmdir(tmpl);
	return cfg;
}

static struct config *
load_yaml(const char *yaml, char *msgs, size_t len)
{
	return load_yaml_with(yaml, RESOLV, msgs, len, NULL);
}

/* The messages loading yaml produces; the load must fail. */
static const char *
errors_of(const char *yaml, char *msgs, size_t len)
{
	struct config	*cfg;

	cfg = load_yaml(yaml, msgs, len);
	CHECK(cfg == NULL);
	config_free(cfg);
	return msgs;
}

static struct sockaddr_storage
sa(const char *s)
{
	struct sockaddr_storage	 ss;
	struct netaddr		 na;
	const char		*why;

	memset(&ss, 0, sizeof(ss));
	if (netaddr_parse(s, 53, &na, &why) == 0)
		ss = na.ss;
	else
		fprintf(stderr, "test address %s: %s\n", s, why);
	return ss;
}

static const char *
client_name(const struct config *cfg, const char *addr)
{
	struct sockaddr_storage	ss = sa(addr);

	return config_client_name(cfg, (struct sockaddr *)&ss);
}

static bool
client_allowed(const struct config *cfg, const char *addr)
{
	struct sockaddr_storage	ss = sa(addr);

	return config_client_allowed(cfg, (struct sockaddr *)&ss);
}

static void
check_full_server(const struct config *cfg)
{
	CHECK_INT(cfg->server.nlisten, 3);
	CHECK_STR(cfg->server.listen[0].text, "127.0.0.1:5353");
	CHECK_STR(cfg->server.listen[1].text, "[::1]:5353");
	CHECK_STR(cfg->server.listen[2].text, "192.0.2.1");
	CHECK_INT(ntohs(((struct sockaddr_in *)
	    &cfg->server.listen[2].addr.ss)->sin_port), 53);
	CHECK_INT(cfg->server.nallow, 4);
	CHECK_STR(cfg->server.user, "_dnswarden");
	CHECK_INT(cfg->server.threads, 4);
	CHECK_INT(cfg->server.rate_limit_qps, 0);
	CHECK_INT(cfg->server.rate_limit_burst, 10);
	CHECK_INT(cfg->server.tcp_max_connections, 512);
	CHECK_INT(cfg->server.tcp_idle_timeout_ms, 2500);
	CHECK_INT(cfg->server.max_outstanding, 2000);
	CHECK_INT(cfg->server.max_waiters, 16);
}

static void
check_full_rest(const struct config *cfg, const char *dir)
{
	char	path[PATH_MAX + 32];

	/* "system" expands in place; the duplicate in resolv.conf is dropped. */
	CHECK_INT(cfg->nupstreams, 5);
	CHECK_STR(cfg->upstreams[0].text, "127.0.0.1:5300");
	CHECK_STR(cfg->upstreams[1].text, "[2001:db8::1]:53");
	CHECK_STR(cfg->upstreams[2].text, "192.0.2.53:53");
	CHECK_STR(cfg->upstreams[3].text, "[2001:db8::53]:53");
	CHECK_STR(cfg->upstreams[4].text, "198.51.100.7:53");
	CHECK_INT(cfg->upstream_timeout_ms, 800);
	CHECK_INT(cfg->upstream_queries_per_socket, 4);
	CHECK_INT(cfg->cache.max_entries, 0);
	CHECK_INT(cfg->cache.max_bytes, 1048576);
	CHECK_INT(cfg->cache.max_ttl, 600);
	CHECK_INT(cfg->cache.max_negative_ttl, 60);
	CHECK_INT(cfg->blocklist.nfiles, 3);
	snprintf(path, sizeof(path), "%s/sites.yaml", dir);
	CHECK_STR(cfg->blocklist.files[0], path);
	CHECK_STR(cfg->blocklist.files[2], "/etc/dnswarden/local.yaml");
	CHECK(!cfg->blocklist.dns_bypass);
	CHECK_INT(cfg->blocklist.blocked_ttl, 60);
	snprintf(path, sizeof(path), "%s/var/attempts.db", dir);
	CHECK_STR(cfg->log.database, path);
	CHECK_INT(cfg->log.retention_days, 0);
	CHECK(cfg->log.all_queries);
	CHECK_INT(cfg->log.client_identity, CLIENT_IDENTITY_PSEUDONYM);
	CHECK_STR(cfg->log.pseudonym_key, "0123456789abcdef-secret");
	CHECK_INT(cfg->log.queue_size, 16);
	CHECK_INT(cfg->nclients, 3);
	CHECK_STR(cfg->clients[1].name, "head office");
}

static void
test_full(void)
{
	struct config	*cfg;
	struct diag	 d;
	char		 dir[PATH_MAX];

	if (realpath("testdata", dir) == NULL) {
		CHECK(!"testdata/ not found: run from config/");
		return;
	}
	diag_init(&d);
	cfg = config_load_resolv("testdata/full.yaml", RESOLV, &d);
	CHECK(cfg != NULL);
	CHECK_INT(d.errors, 0);
	CHECK_STR(diag_text(&d), "testdata/full.yaml:17:5: warning: "
	    "upstream 192.0.2.53:53 is listed twice; using it once\n");
	if (cfg != NULL) {
		CHECK_STR(cfg->path, "testdata/full.yaml");
		CHECK_STR(cfg->dir, dir);
		check_full_server(cfg);
		check_full_rest(cfg, dir);
	}
	config_free(cfg);
	diag_free(&d);
}

static void
check_defaults(const struct config *cfg)
{
	CHECK_INT(cfg->server.nlisten, 2);
	CHECK_STR(cfg->server.listen[0].text, "127.0.0.1:53");
	CHECK_STR(cfg->server.listen[1].text, "[::1]:53");
	CHECK_INT(cfg->server.nallow, 2);
	CHECK_STR(cfg->server.user, "dnswarden");
	CHECK(cfg->log.required);
	CHECK_INT(cfg->server.threads, 1);
	CHECK_INT(cfg->server.rate_limit_qps, 500);
	CHECK_INT(cfg->server.rate_limit_burst, 2000);
	CHECK_INT(cfg->server.tcp_max_connections, 256);
	CHECK_INT(cfg->server.tcp_idle_timeout_ms, 10000);
	CHECK_INT(cfg->server.tcp_max_connections_per_client, 16);
	CHECK_INT(cfg->server.tcp_write_timeout_ms, 10000);
	CHECK_INT(cfg->server.tcp_max_lifetime_ms, 120000);
	CHECK_INT(cfg->server.max_outstanding, 10000);
	CHECK_INT(cfg->server.max_waiters, 64);
	CHECK_INT(cfg->upstream_timeout_ms, 1500);
	CHECK_INT(cfg->upstream_queries_per_socket, 16);
	CHECK_INT(cfg->cache.max_entries, 100000);
	CHECK_INT(cfg->cache.max_bytes, 64 * 1024 * 1024);
	CHECK_INT(cfg->cache.max_ttl, 86400);
	CHECK_INT(cfg->cache.max_negative_ttl, 3600);
	CHECK_INT(cfg->blocklist.nfiles, 0);
	CHECK(cfg->blocklist.dns_bypass);
	CHECK_INT(cfg->blocklist.blocked_ttl, 300);
	CHECK_STR(cfg->log.database, "/var/lib/dnswarden/attempts.db");
	CHECK_INT(cfg->log.retention_days, 365);
	CHECK(!cfg->log.all_queries);
	CHECK_INT(cfg->log.client_identity, CLIENT_IDENTITY_ADDRESS);
	CHECK(cfg->log.pseudonym_key == NULL);
	CHECK_INT(cfg->log.queue_size, 65536);
	CHECK_INT(cfg->nclients, 0);
	CHECK(client_allowed(cfg, "127.0.0.1"));
	CHECK(client_allowed(cfg, "::1"));
	CHECK(!client_allowed(cfg, "10.0.0.1"));
}

static void
test_defaults(void)
{
	struct config	*cfg;
	char		 msgs[1024];

	cfg = config_default();
	CHECK(cfg != NULL);
	check_defaults(cfg);
	CHECK_STR(cfg->path, "(defaults)");
	CHECK_INT(cfg->nupstreams, 0);
	config_free(cfg);

	/* Only the required key: everything else as config_default(). */
	cfg = load_yaml("upstreams: [\"192.0.2.1\"]\n", msgs, sizeof(msgs));
	CHECK_STR(msgs, "");
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		check_defaults(cfg);
		CHECK_INT(cfg->nupstreams, 1);
		CHECK_STR(cfg->upstreams[0].text, "192.0.2.1:53");
	}
	config_free(cfg);

	/* Empty sections keep their defaults too. */
	cfg = load_yaml("server:\ncache:\nlog: ~\nclients: []\n"
	    "upstreams: [\"192.0.2.1\"]\n", msgs, sizeof(msgs));
	CHECK_STR(msgs, "");
	if (cfg != NULL)
		check_defaults(cfg);
	config_free(cfg);
}

static void
test_relative_paths(void)
{
	struct config	*cfg;
	char		 msgs[1024], dir[PATH_MAX], want[PATH_MAX + 64];
	char		 parent[PATH_MAX], *slash;

	cfg = load_yaml_with("upstreams: [\"192.0.2.1\"]\n"
	    "blocklist:\n  files: [a.yaml, ./lists/b.yaml, ../c.yaml, "
	    "../../d.yaml, /abs/e.yaml]\n"
	    "log: { database: db/attempts.db }\n",
	    RESOLV, msgs, sizeof(msgs), dir);
	CHECK_STR(msgs, "");
	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK_STR(cfg->dir, dir);
	CHECK_INT(cfg->blocklist.nfiles, 5);
	snprintf(want, sizeof(want), "%s/a.yaml", dir);
	CHECK_STR(cfg->blocklist.files[0], want);
	snprintf(want, sizeof(want), "%s/lists/b.yaml", dir);
	CHECK_STR(cfg->blocklist.files[1], want);
	snprintf(parent, sizeof(parent), "%s", dir);
	if ((slash = strrchr(parent, '/')) != NULL)
		*slash = '\0';
	snprintf(want, sizeof(want), "%s/c.yaml", parent);
	CHECK_STR(cfg->blocklist.files[2], want);
	CHECK(cfg->blocklist.files[3][0] == '/');
	CHECK(strstr(cfg->blocklist.files[3], "..") == NULL);
	CHECK_STR(cfg->blocklist.files[4], "/abs/e.yaml");
	snprintf(want, sizeof(want), "%s/db/attempts.db", dir);
	CHECK_STR(cfg->log.database, want);
	config_free(cfg);
}

static void
test_database_off(void)
{
	static const char *const off[] = {
		"log: { database: }\n", "log: { database: ~ }\n",
		"log: { database: null }\n", "log: { database: \"\" }\n",
		"log: { database: off }\n", "log: { database: \"off\" }\n",
	};
	struct config	*cfg;
	char		 msgs[1024], yaml[256];
	size_t		 i;

	for (i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		snprintf(yaml, sizeof(yaml), "upstreams: [192.0.2.1]\n%s",
		    off[i]);
		cfg = load_yaml(yaml, msgs, sizeof(msgs));
		CHECK_STR(msgs, "");
		CHECK(cfg != NULL && cfg->log.database == NULL);
		config_free(cfg);
	}
}

static void
test_error_unknown_key(void)
{
	char	msgs[1024];

	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nsrever:\n  threads: 2\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:2:1: unknown key \"srever\"\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n  thread: 2\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:3:3: unknown key \"thread\" in server\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  rate_limit: { qps: 5, rate: 1 }\n", msgs, sizeof(msgs)),
	    "t.yaml:3:25: unknown key \"rate\" in server.rate_limit\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nclients:\n"
	    "  - { network: 10.0.0.0/8, name: x, nmae: y }\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:3:37: unknown key \"nmae\" in clients entry\n");
	/* Control characters in a client's name: ESC, BEL, DEL, C1 CSI. */
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nclients:\n"
	    "  - { network: 10.0.0.0/8, name: \"a\\e]0;x\\a\" }\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:3:34: client name contains a control character "
	    "(U+001B)\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nclients:\n"
	    "  - network: 10.0.0.0/8\n    name: \"del\\x7f\"\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:4:11: client name contains a control character "
	    "(U+007F)\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nclients:\n"
	    "  - { network: 10.0.0.0/8, name: \"c1\\u009b2J\" }\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:3:34: client name contains a control character "
	    "(U+009B)\n");
	/* The TCP limits of issue 19, and their ranges. */
	struct config *tc = load_yaml("upstreams: [192.0.2.1]\nserver:\n"
	    "  tcp_max_connections_per_client: 3\n"
	    "  tcp_write_timeout_ms: 1500\n"
	    "  tcp_max_lifetime_ms: 60000\n", msgs, sizeof(msgs));
	CHECK(tc != NULL);
	if (tc != NULL) {
		CHECK_INT(tc->server.tcp_max_connections_per_client, 3);
		CHECK_INT(tc->server.tcp_write_timeout_ms, 1500);
		CHECK_INT(tc->server.tcp_max_lifetime_ms, 60000);
	}
	config_free(tc);
	CHECK(strstr(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  tcp_write_timeout_ms: 0\n", msgs, sizeof(msgs)),
	    "t.yaml:3:25: ") != NULL);
	/* Letters outside ASCII are names like any other. */
	struct config *cfg = load_yaml("upstreams: [192.0.2.1]\nclients:\n"
	    "  - { network: 10.0.0.0/8, name: \"Zoë's desk\" }\n",
	    msgs, sizeof(msgs));
	CHECK(cfg != NULL);
	CHECK_STR(msgs, "");
	config_free(cfg);
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\n[a]: 1\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:2:1: expected a key name, found a list\n");
}

static void
test_error_wrong_type(void)
{
	char	msgs[1024];

	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  listen: { a: 1 }\n", msgs, sizeof(msgs)),
	    "t.yaml:3:11: expected a list, found a mapping\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  threads: abc\n", msgs, sizeof(msgs)),
	    "t.yaml:3:12: expected an integer, found \"abc\"\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  threads: -1\n", msgs, sizeof(msgs)),
	    "t.yaml:3:12: expected an integer, found \"-1\"\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  threads: 65\n", msgs, sizeof(msgs)),
	    "t.yaml:3:12: 65 is out of range (1-64)\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\ncache:\n"
	    "  max_entries: 99999999999999999999999\n", msgs, sizeof(msgs)),
	    "t.yaml:3:16: 99999999999999999999999 is out of range "
	    "(0-4294967295)\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver: [a]\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:2:9: expected a mapping, found a list\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nblocklist:\n"
	    "  dns_bypass: maybe\n", msgs, sizeof(msgs)),
	    "t.yaml:3:15: expected true or false, found \"maybe\"\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  user: [root]\n", msgs, sizeof(msgs)),
	    "t.yaml:3:9: expected a string, found a list\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  user:\n", msgs, sizeof(msgs)),
	    "t.yaml:3:8: expected a string, found null\n");
	CHECK_STR(errors_of("upstreams: 192.0.2.1\n", msgs, sizeof(msgs)),
	    "t.yaml:1:12: expected a list, found a scalar\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nclients:\n"
	    "  - 10.0.0.0/8\n", msgs, sizeof(msgs)),
	    "t.yaml:3:5: expected a mapping with network and name, "
	    "found a scalar\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nlog:\n"
	    "  client_identity: hashed\n", msgs, sizeof(msgs)),
	    "t.yaml:3:20: expected address, name or pseudonym, "
	    "found \"hashed\"\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  user: \"\"\n", msgs, sizeof(msgs)),
	    "t.yaml:3:9: user must not be empty\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nlog:\n"
	    "  queue_size: 15\n", msgs, sizeof(msgs)),
	    "t.yaml:3:15: 15 is out of range (16-16777216)\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\n"
	    "upstream_queries_per_socket: 0\n", msgs, sizeof(msgs)),
	    "t.yaml:2:30: 0 is out of range (1-64)\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\n"
	    "upstream_queries_per_socket: 65\n", msgs, sizeof(msgs)),
	    "t.yaml:2:30: 65 is out of range (1-64)\n");
}

static void
test_error_address(void)
{
	char	msgs[1024];

	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  listen: [\"127.0.0.1:53\", \"127.0.0.256:53\"]\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:3:28: bad address \"127.0.0.256:53\": "
	    "not a valid IPv4 address\n");
	CHECK_STR(errors_of("upstreams:\n  - \"1.2.3.4.5\"\n  - example.com\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:2:5: bad address \"1.2.3.4.5\": "
	    "not a valid IPv4 address\n"
	    "t.yaml:3:5: bad address \"example.com\": "
	    "not a valid IPv4 address\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  listen: [\"127.0.0.1:53\", \"127.0.0.1\"]\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:3:28: duplicate listen address \"127.0.0.1\"\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  listen: []\n", msgs, sizeof(msgs)),
	    "t.yaml:3:11: no listen addresses\n");
}

static void
test_error_port(void)
{
	char	msgs[1024];

	CHECK_STR(errors_of("upstreams:\n  - 192.0.2.1:0\n"
	    "  - \"[2001:db8::1]:65536\"\n  - 192.0.2.1:dns\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:2:5: bad address \"192.0.2.1:0\": "
	    "port out of range (1-65535)\n"
	    "t.yaml:3:5: bad address \"[2001:db8::1]:65536\": "
	    "port out of range (1-65535)\n"
	    "t.yaml:4:5: bad address \"192.0.2.1:dns\": "
	    "port is not a number\n");
}

static void
test_error_cidr(void)
{
	char	msgs[1024];

	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nserver:\n"
	    "  allow_clients:\n    - 10.0.0.0/33\n    - fc00::/129\n"
	    "    - 10.0.0/8\n", msgs, sizeof(msgs)),
	    "t.yaml:4:7: bad network \"10.0.0.0/33\": "
	    "prefix length out of range (0-32)\n"
	    "t.yaml:5:7: bad network \"fc00::/129\": "
	    "prefix length out of range (0-128)\n"
	    "t.yaml:6:7: bad network \"10.0.0/8\": not a valid IP address\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nclients:\n"
	    "  - { network: \"10.0.0.0/8x\", name: a }\n", msgs, sizeof(msgs)),
	    "t.yaml:3:16: bad network \"10.0.0.0/8x\": "
	    "prefix length is not a number\n");
}

static void
test_hostbits_warning(void)
{
	struct config	*cfg;
	char		 msgs[1024];

	cfg = load_yaml("upstreams: [192.0.2.1]\nserver:\n"
	    "  allow_clients: [10.1.2.3/8]\n", msgs, sizeof(msgs));
	CHECK(cfg != NULL);
	CHECK_STR(msgs, "t.yaml:3:19: warning: \"10.1.2.3/8\" has host bits "
	    "set; using 10.0.0.0/8\n");
	if (cfg != NULL)
		CHECK(client_allowed(cfg, "10.200.0.1"));
	config_free(cfg);
}

static void
test_error_upstreams(void)
{
	char	msgs[1024];

	CHECK_STR(errors_of("server:\n  threads: 2\n", msgs, sizeof(msgs)),
	    "t.yaml: no upstreams configured\n");
	CHECK_STR(errors_of("upstreams: []\n", msgs, sizeof(msgs)),
	    "t.yaml: no upstreams configured\n");
	CHECK_STR(errors_of("upstreams:\n", msgs, sizeof(msgs)),
	    "t.yaml: no upstreams configured\n");
	CHECK(load_yaml_with("upstreams: [system]\n", RESOLV_EMPTY,
	    msgs, sizeof(msgs), NULL) == NULL);
	CHECK_STR(msgs, "t.yaml:1:13: \"system\": no usable nameserver in "
	    RESOLV_EMPTY "\n");
	CHECK(load_yaml_with("upstreams: [system]\n", "testdata/nonexistent",
	    msgs, sizeof(msgs), NULL) == NULL);
	CHECK_STR(msgs, "t.yaml:1:13: \"system\": cannot read "
	    "testdata/nonexistent: No such file or directory\n");
}

static void
test_error_loop(void)
{
	char	msgs[1024];

	CHECK_STR(errors_of("server: { listen: [\"127.0.0.1:5353\"] }\n"
	    "upstreams: [\"127.0.0.1:5353\"]\n", msgs, sizeof(msgs)),
	    "t.yaml: upstream 127.0.0.1:5353 is one of the listen addresses; "
	    "queries would loop\n");
	CHECK_STR(errors_of("server: { listen: [\"0.0.0.0:53\"] }\n"
	    "upstreams: [\"127.0.0.53\"]\n", msgs, sizeof(msgs)),
	    "t.yaml: upstream 127.0.0.53:53 is one of the listen addresses; "
	    "queries would loop\n");
}

static void
test_error_duplicate_key(void)
{
	char	msgs[1024];

	CHECK_STR(errors_of("upstreams: [192.0.2.1]\ncache:\n"
	    "  max_ttl: 60\n  max_ttl: 70\n", msgs, sizeof(msgs)),
	    "t.yaml:4:3: duplicate key \"max_ttl\" (first at line 3)\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nlog: {}\n"
	    "upstreams: [192.0.2.2]\n", msgs, sizeof(msgs)),
	    "t.yaml:3:1: duplicate key \"upstreams\" (first at line 1)\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nclients:\n"
	    "  - { network: 10.0.0.0/8, name: a, name: b }\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:3:37: duplicate key \"name\" (first at line 3)\n");
}

static void
test_error_syntax(void)
{
	char	msgs[1024];

	CHECK_STR(errors_of("upstreams: [192.0.2.1\nserver: {}\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:2:7: did not find expected ',' or ']' "
	    "(while parsing a flow sequence at line 1, column 12)\n");
	CHECK_STR(errors_of("server:\n  threads: 1\n threads: 2\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:3:2: did not find expected key "
	    "(while parsing a block mapping at line 1, column 1)\n");
	/* libyaml says "cannot start any token" for a tab: name it. */
	CHECK_STR(errors_of("server:\n\tthreads: 1\n", msgs, sizeof(msgs)),
	    "t.yaml:2:1: tabs are not allowed for indentation (use spaces)\n");
	CHECK_STR(errors_of("server:\n  listen: [\"127.0.0.1:53\"]\n  \tthreads:"
	    " 1\n", msgs, sizeof(msgs)),
	    "t.yaml:3:3: tabs are not allowed for indentation (use spaces)\n");
}

static void
test_error_file(void)
{
	struct config	*cfg;
	struct diag	 d;
	char		 msgs[1024];

	CHECK_STR(errors_of("", msgs, sizeof(msgs)),
	    "t.yaml: empty file (no YAML document)\n");
	CHECK_STR(errors_of("# only a comment\n", msgs, sizeof(msgs)),
	    "t.yaml: empty file (no YAML document)\n");
	CHECK_STR(errors_of("- upstreams\n", msgs, sizeof(msgs)),
	    "t.yaml:1:1: expected a mapping at the top level, found a list\n");
	CHECK_STR(errors_of("just text\n", msgs, sizeof(msgs)),
	    "t.yaml:1:1: expected a mapping at the top level, "
	    "found a scalar\n");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\n---\nserver: {}\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:3:1: more than one YAML document in the file\n");

	diag_init(&d);
	cfg = config_load("testdata/no-such-file.yaml", &d);
	CHECK(cfg == NULL);
	CHECK_STR(diag_text(&d), "testdata/no-such-file.yaml: cannot open: "
	    "No such file or directory\n");
	CHECK_INT(d.errors, 1);
	diag_free(&d);
}

static void
test_error_many(void)
{
	char	msgs[2048];

	CHECK_STR(errors_of(
	    "server:\n"
	    "  listen: [\"127.0.0.1:99999\"]\n"
	    "  threads: many\n"
	    "  colour: blue\n"
	    "cache:\n"
	    "  max_ttl: 1d\n"
	    "log:\n"
	    "  client_identity: pseudonym\n"
	    "  pseudonym_key: short\n"
	    "clients:\n"
	    "  - { network: 10.0.0.0/8 }\n",
	    msgs, sizeof(msgs)),
	    "t.yaml:2:12: bad address \"127.0.0.1:99999\": "
	    "port out of range (1-65535)\n"
	    "t.yaml:3:12: expected an integer, found \"many\"\n"
	    "t.yaml:4:3: unknown key \"colour\" in server\n"
	    "t.yaml:6:12: expected an integer, found \"1d\"\n"
	    "t.yaml:9:18: pseudonym_key must be at least 16 characters long\n"
	    "t.yaml:11:5: clients entry has no \"name\"\n"
	    "t.yaml: no upstreams configured\n");
}

static void
test_pseudonym(void)
{
	struct config	*cfg;
	char		 msgs[1024];

	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nlog:\n"
	    "  client_identity: pseudonym\n", msgs, sizeof(msgs)),
	    "t.yaml:3:20: client_identity pseudonym needs "
	    "log.pseudonym_key_file (a key of at least 16 characters)\n");
	cfg = load_yaml("upstreams: [192.0.2.1]\nlog:\n"
	    "  client_identity: name\n  pseudonym_key: 0123456789abcdef\n",
	    msgs, sizeof(msgs));
	CHECK(cfg != NULL);
	CHECK_STR(msgs, "t.yaml:4:18: warning: pseudonym_key is unused "
	    "unless client_identity is pseudonym\n");
	if (cfg != NULL)
		CHECK_INT(cfg->log.client_identity, CLIENT_IDENTITY_NAME);
	config_free(cfg);
}

/* A key file of mode mode holding text; its path goes to path. */
static void
key_file(const char *text, mode_t mode, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "/tmp/config_test_key.XXXXXX");
	if ((fd = mkstemp(path)) == -1 || write(fd, text, strlen(text)) == -1 ||
	    fchmod(fd, mode) == -1 || close(fd) == -1) {
		perror(path);
		exit(1);
	}
}

/*
 * log.pseudonym_key_file keeps the key out of the configuration: its
 * first line is the key, a file others may read is warned about, and a
 * reader (report, log, ctl) loads without it and without upstreams.
 */
static void
test_pseudonym_key_file(void)
{
	struct config	*cfg;
	char		 msgs[1024], yaml[512], key[64], dir[PATH_MAX];

	key_file("0123456789abcdef-secret\n", 0400, key, sizeof(key));
	snprintf(yaml, sizeof(yaml), "upstreams: [192.0.2.1]\nlog:\n"
	    "  client_identity: pseudonym\n  pseudonym_key_file: %s\n", key);
	cfg = load_yaml(yaml, msgs, sizeof(msgs));
	CHECK(cfg != NULL);
	CHECK_STR(msgs, "");
	if (cfg != NULL) {
		CHECK_STR(cfg->log.pseudonym_key, "0123456789abcdef-secret");
		CHECK_STR(cfg->log.pseudonym_key_file, key);
	}
	config_free(cfg);
	chmod(key, 0644);
	cfg = load_yaml(yaml, msgs, sizeof(msgs));
	CHECK(cfg != NULL);
	CHECK(strstr(msgs, "t.yaml:4:23: warning: ") != NULL &&
	    strstr(msgs, "can be read by others than its owner") != NULL);
	config_free(cfg);
	unlink(key);

	key_file("short\n", 0400, key, sizeof(key));
	snprintf(yaml, sizeof(yaml), "upstreams: [192.0.2.1]\nlog:\n"
	    "  client_identity: pseudonym\n  pseudonym_key_file: %s\n", key);
	CHECK(load_yaml(yaml, msgs, sizeof(msgs)) == NULL);
	CHECK(strstr(msgs, "the key must be at least 16 characters") != NULL);
	unlink(key);
	/* Gone: an error for the daemon. */
	CHECK(load_yaml(yaml, msgs, sizeof(msgs)) == NULL);
	CHECK(strstr(msgs, "t.yaml:4:23: cannot read pseudonym_key_file") !=
	    NULL);
	snprintf(yaml, sizeof(yaml), "upstreams: [192.0.2.1]\nlog:\n"
	    "  client_identity: pseudonym\n  pseudonym_key: 0123456789abcdef\n"
	    "  pseudonym_key_file: %s\n", key);
	CHECK_STR(errors_of(yaml, msgs, sizeof(msgs)), "t.yaml:5:23: "
	    "pseudonym_key and pseudonym_key_file both given; keep "
	    "pseudonym_key_file\n");

	/* The reader's file: log: and clients: only, the key unreadable. */
	char tmpl[] = "/tmp/config_test.XXXXXX", path[PATH_MAX + 16];
	struct diag d;
	FILE *f;
	CHECK(mkdtemp(tmpl) != NULL);
	snprintf(path, sizeof(path), "%s/reader.yaml", tmpl);
	f = fopen(path, "w");
	fprintf(f, "log:\n  database: db/attempts.db\n"
	    "  client_identity: pseudonym\n  pseudonym_key_file: %s\n"
	    "clients:\n  - { network: 10.1.2.0/24, name: finance }\n", key);
	fclose(f);
	diag_init(&d);
	cfg = config_load_reader(path, &d);
	CHECK_STR(diag_text(&d), "");
	diag_free(&d);
	CHECK(cfg != NULL);
	if (cfg != NULL && realpath(tmpl, dir) != NULL) {
		CHECK(cfg->log.pseudonym_key == NULL);
		CHECK_INT(cfg->nclients, 1);
		CHECK(strstr(cfg->log.database, dir) == cfg->log.database);
	}
	config_free(cfg);
	diag_init(&d);
	CHECK(config_load(path, &d) == NULL);	/* the daemon needs more */
	diag_free(&d);
	unlink(path);
	rmdir(tmpl);
}

/* server.control_socket: a path relative to the file, "off" for none. */
static void
test_control_socket(void)
{
	struct config	*cfg;
	char		 msgs[1024], dir[PATH_MAX], want[PATH_MAX + 32];

	cfg = config_default();
	CHECK(cfg != NULL && strcmp(cfg->server.control_socket,
	    "/run/dnswarden/control.sock") == 0);
	config_free(cfg);
	cfg = load_yaml_with("upstreams: [192.0.2.1]\nserver:\n"
	    "  control_socket: run/ctl.sock\n", RESOLV, msgs, sizeof(msgs),
	    dir);
	CHECK(cfg != NULL);
	snprintf(want, sizeof(want), "%s/run/ctl.sock", dir);
	if (cfg != NULL)
		CHECK_STR(cfg->server.control_socket, want);
	config_free(cfg);
	cfg = load_yaml("upstreams: [192.0.2.1]\nserver:\n"
	    "  control_socket: off\n", msgs, sizeof(msgs));
	CHECK(cfg != NULL && cfg->server.control_socket == NULL);
	config_free(cfg);
}

/*
 * server.cpus and http.cpus. main() runs the test on CPU 0 alone, so that
 * CPU 1 (if the machine has one) is outside the set the process may use.
 */
static void
test_cpus(void)
{
	struct config	*cfg;
	char		 msgs[1024], want[512], yaml[256];
	long		 ncpus = sysconf(_SC_NPROCESSORS_CONF);

	cfg = config_default();
	CHECK(cfg != NULL && cfg->server.cpus.n == 0 && cfg->http.cpus.n == 0 &&
	    cfg->http.nice == 10);
	config_free(cfg);
	cfg = load_yaml("upstreams: [192.0.2.1]\nserver:\n  cpus: [0]\n"
	    "http:\n  cpus: [0]\n  nice: 0\n", msgs, sizeof(msgs));
	CHECK(cfg != NULL && cfg->server.cpus.n == 1 &&
	    cfg->server.cpus.cpu[0] == 0 && cfg->http.cpus.n == 1 &&
	    cfg->http.nice == 0);
	if (cfg != NULL)
		CHECK(config_cpus_equal(&cfg->server.cpus, &cfg->http.cpus) &&
		    !cfg->http.cpus_rest);
	config_free(cfg);
	/* server.cpus alone takes CPU 0, all main() left: the console shares
	 * it (tests/e2e/test_threads.py has a CPU left for it). */
	cfg = load_yaml("upstreams: [192.0.2.1]\nserver:\n  cpus: [0]\n",
	    msgs, sizeof(msgs));
	CHECK(cfg != NULL && cfg->server.cpus.n == 1 &&
	    cfg->http.cpus.n == 0 && !cfg->http.cpus_rest);
	config_free(cfg);
	/* Without server.cpus nothing is worked out. */
	cfg = load_yaml("upstreams: [192.0.2.1]\n", msgs, sizeof(msgs));
	CHECK(cfg != NULL && cfg->http.cpus.n == 0 && !cfg->http.cpus_rest);
	config_free(cfg);
	snprintf(yaml, sizeof(yaml), "upstreams: [192.0.2.1]\nserver:\n"
	    "  cpus: [0, %ld, 0]\nhttp:\n  cpus: 1\n  nice: 20\n", ncpus);
	snprintf(want, sizeof(want), "t.yaml:3:13: server.cpus: CPU %ld is out"
	    " of range: this machine has CPUs 0-%ld\n"
	    "t.yaml:3:%d: server.cpus: CPU 0 is listed twice\n"
	    "t.yaml:5:9: http.cpus: expected a list of CPU numbers, found a"
	    " scalar\n"
	    "t.yaml:6:9: 20 is out of range (0-19)\n", ncpus, ncpus - 1,
	    ncpus < 10 ? 16 : 17);
	CHECK_STR(errors_of(yaml, msgs, sizeof(msgs)), want);
	if (ncpus < 2)
		SKIP("one CPU: no CPU outside the allowed set to name");
	CHECK_STR(errors_of("upstreams: [192.0.2.1]\nhttp:\n  cpus:\n"
	    "    - 1\n", msgs, sizeof(msgs)), "t.yaml:4:7: http.cpus: CPU 1"
	    " is not one this process may run on (0)\n");
}

static void
test_client_name(void)
{
	struct config	*cfg;
	char		 msgs[1024];

	cfg = load_yaml("upstreams: [192.0.2.1]\nclients:\n"
	    "  - { network: 10.1.2.0/24, name: finance }\n"
	    "  - { network: 10.1.0.0/16, name: office }\n"
	    "  - { network: \"2001:db8:1::/48\", name: lab }\n"
	    "  - { network: 192.0.2.7, name: printer }\n"
	    "  - { network: 172.16.5.5/16, name: typo }\n",
	    msgs, sizeof(msgs));
	CHECK(cfg != NULL);
	CHECK_STR(msgs, "t.yaml:7:16: warning: \"172.16.5.5/16\" has host "
	    "bits set; using 172.16.0.0/16\n");
	if (cfg == NULL)
		return;
	CHECK_STR(client_name(cfg, "10.1.2.3"), "finance");
	CHECK_STR(client_name(cfg, "::ffff:10.1.2.3"), "finance");
	CHECK_STR(client_name(cfg, "10.1.3.3"), "office");
	CHECK_STR(client_name(cfg, "[::ffff:10.1.200.1]:4000"), "office");
	CHECK_STR(client_name(cfg, "2001:db8:1:ffff::1"), "lab");
	CHECK_STR(client_name(cfg, "192.0.2.7"), "printer");
	CHECK(client_name(cfg, "192.0.2.8") == NULL);
	CHECK(client_name(cfg, "10.2.0.1") == NULL);
	CHECK_STR(client_name(cfg, "172.16.200.1"), "typo");
	CHECK(client_name(cfg, "2001:db8:2::1") == NULL);
	config_free(cfg);
}

static void
test_allow_clients(void)
{
	struct config	*cfg;
	char		 msgs[1024];

	cfg = load_yaml("upstreams: [192.0.2.1]\nserver:\n"
	    "  allow_clients: [127.0.0.0/8, \"::1/128\", 10.0.0.0/8, "
	    "\"fc00::/7\"]\n", msgs, sizeof(msgs));
	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK(client_allowed(cfg, "127.0.0.1"));
	CHECK(client_allowed(cfg, "::ffff:127.0.0.1"));
	CHECK(client_allowed(cfg, "::1"));
	CHECK(client_allowed(cfg, "10.255.255.255"));
	CHECK(client_allowed(cfg, "::ffff:10.0.0.1"));
	CHECK(client_allowed(cfg, "fd12:3456::1"));
	CHECK(!client_allowed(cfg, "11.0.0.1"));
	CHECK(!client_allowed(cfg, "::ffff:192.168.1.1"));
	CHECK(!client_allowed(cfg, "2001:db8::1"));
	config_free(cfg);

	cfg = load_yaml("upstreams: [192.0.2.1]\nserver:\n"
	    "  allow_clients: []\n", msgs, sizeof(msgs));
	CHECK(cfg != NULL);
	CHECK_STR(msgs, "t.yaml:3:18: warning: allow_clients is empty: every "
	    "query will be refused\n");
	if (cfg != NULL)
		CHECK(!client_allowed(cfg, "127.0.0.1"));
	config_free(cfg);
}

/* The shipped configuration must always load. */
static void
test_shipped(void)
{
	struct config	*cfg;
	struct diag	 d;

	diag_init(&d);
	cfg = config_load_resolv("dnswarden.yaml", RESOLV_SINGLE, &d);
	CHECK(cfg != NULL);
	CHECK_STR(diag_text(&d), "");
	if (cfg != NULL) {
		CHECK_INT(cfg->server.nlisten, 2);
		CHECK_STR(cfg->server.listen[0].text, "127.0.0.1:5353");
		CHECK(client_allowed(cfg, "192.168.1.10"));
		CHECK(client_allowed(cfg, "172.20.0.1"));
		CHECK(!client_allowed(cfg, "8.8.8.8"));
		CHECK_INT(cfg->blocklist.nfiles, 1);
		CHECK(strstr(cfg->blocklist.files[0],
		    "/blocklist/sample-sites.yaml") != NULL);
	}
	config_free(cfg);
	diag_free(&d);
}

/* yamlutil_load_buffer() is what a fuzzer drives; it must not crash. */
static void
test_load_buffer(void)
{
	static const char	 bad[] = "a: [\xff\xfe";
	yaml_document_t		 doc;
	struct diag		 d;

	diag_init(&d);
	CHECK_INT(yamlutil_load_buffer("buf", (const unsigned char *)"a: 1\n",
	    5, &doc, &d), 0);
	yaml_document_delete(&doc);
	CHECK_INT(yamlutil_load_buffer("buf", (const unsigned char *)bad,
	    sizeof(bad) - 1, &doc, &d), -1);
	CHECK_INT(d.errors, 1);
	CHECK_STR(diag_text(&d), "buf: invalid leading UTF-8 octet (#FF) "
	    "at byte offset 4\n");
	diag_free(&d);
}

/* A message quoting text with control characters stays one line. */
static void
test_diag_control_chars(void)
{
	struct diag d;

	diag_init(&d);
	diag_error(&d, "f.yaml", 2, 3, "bad \"%s\"", "a\nf.yaml:9:9: x\033[1m");
	CHECK_STR(diag_text(&d), "f.yaml:2:3: bad \"a?f.yaml:9:9: x?[1m\"\n");
	diag_free(&d);
}

int
main(void)
{
	cpu_set_t	cpu0;

	/* Before any CPU list is read (test_cpus()). */
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	sched_setaffinity(0, sizeof(cpu0), &cpu0);
	RUN(test_diag_control_chars);
	RUN(test_full);
	RUN(test_defaults);
	RUN(test_relative_paths);
	RUN(test_database_off);
	RUN(test_error_unknown_key);
	RUN(test_error_wrong_type);
	RUN(test_error_address);
	RUN(test_error_port);
	RUN(test_error_cidr);
	RUN(test_hostbits_warning);
	RUN(test_error_upstreams);
	RUN(test_error_loop);
	RUN(test_error_duplicate_key);
	RUN(test_error_syntax);
	RUN(test_error_file);
	RUN(test_error_many);
	RUN(test_pseudonym);
	RUN(test_pseudonym_key_file);
	RUN(test_control_socket);
	RUN(test_cpus);
	RUN(test_client_name);
	RUN(test_allow_clients);
	RUN(test_shipped);
	RUN(test_load_buffer);
	UNIT_DONE();
}
