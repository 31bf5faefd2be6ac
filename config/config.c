/*
 * config: dnswarden.yaml into a struct config. The file is walked with
 * tables of known keys; every problem is recorded with its position and the
 * walk goes on, so one "dnswarden check" shows the admin all of them.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <libpq-fe.h>

#include "config.h"
#include "fileopen.h"
#include "config_cpus.h"
#include "config_http.h"
#include "yamlutil.h"

#define CONFIG_RESOLV_CONF	"/etc/resolv.conf"
#define CONFIG_DNS_PORT		53
#define CONFIG_DOT_PORT		853	/* RFC 7858 */
#define CONFIG_TTL_MAX		2147483647ULL	/* RFC 2181, section 8 */
#define CONFIG_PSEUDONYM_MIN	16

/* The state of one load: what is being filled and where messages go. */
struct config_parse {
	struct config		*cfg;
	yaml_document_t		*doc;
	struct diag		*d;
	const char		*file;
	const char		*resolv_conf;
	unsigned		 errors_at_start;
	bool			 upstreams_failed;	/* already reported */
	yaml_node_t		*identity_node;		/* log.client_identity */
	yaml_node_t		*pseudonym_node;	/* log.pseudonym_key */
	yaml_node_t		*policies_node;		/* read after clients: */
	yaml_node_t		*key_file_node;	/* log.pseudonym_key_file */
	bool			 reader;	/* config_load_reader() */
};

struct config_key;
typedef void (*config_key_fn)(struct config_parse *, const struct config_key *,
    yaml_node_t *);

/* One known key: how to parse it and where in struct config it goes. */
struct config_key {
	const char		*name;
	config_key_fn		 parse;
	size_t			 off;
	unsigned long long	 min, max;
	const struct config_key	*sub;		/* for sections */
	const char		*path;		/* "server.rate_limit" */
};

static void	config_walk(struct config_parse *, yaml_node_t *,
		    const struct config_key *, const char *);

static void *
config_field(struct config_parse *cp, const struct config_key *k)
{
	return (char *)cp->cfg + k->off;
}

static void
config_oom(struct config_parse *cp, const yaml_node_t *n)
{
	yamlutil_error(cp->d, cp->file, n, "out of memory");
}

/*
 * arr (n elements of size elem) with one more, zeroed, element at the end;
 * NULL, with arr untouched, when out of memory.
 */
static void *
config_grow(void *arr, size_t n, size_t elem)
{
	char	*grown;

	if ((grown = reallocarray(arr, n + 1, elem)) == NULL)
		return NULL;
	memset(grown + n * elem, 0, elem);
	return grown;
}

static yaml_node_t *
config_node(struct config_parse *cp, int id)
{
	return yaml_document_get_node(cp->doc, id);
}

/* A list, or null for an empty one; anything else is reported. */
static bool
config_is_list(struct config_parse *cp, const yaml_node_t *n)
{
	if (yamlutil_is_null(n) || n->type == YAML_SEQUENCE_NODE)
		return true;
	yamlutil_error(cp->d, cp->file, n, "expected a list, found %s",
	    yamlutil_kind(n));
	return false;
}

static size_t
config_list_len(const yaml_node_t *n)
{
	if (n == NULL || n->type != YAML_SEQUENCE_NODE)
		return 0;
	return (size_t)(n->data.sequence.items.top -
	    n->data.sequence.items.start);
}

static yaml_node_t *
config_list_item(struct config_parse *cp, const yaml_node_t *n, size_t i)
{
	return config_node(cp, n->data.sequence.items.start[i]);
}

static void
key_unsigned(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	unsigned long long	val;

	if (yamlutil_get_uint(cp->d, cp->file, v, k->min, k->max, &val) == 0)
		*(unsigned *)config_field(cp, k) = (unsigned)val;
}

static void
key_u32(struct config_parse *cp, const struct config_key *k, yaml_node_t *v)
{
	unsigned long long	val;

	if (yamlutil_get_uint(cp->d, cp->file, v, k->min, k->max, &val) == 0)
		*(uint32_t *)config_field(cp, k) = (uint32_t)val;
}

static void
key_size(struct config_parse *cp, const struct config_key *k, yaml_node_t *v)
{
	unsigned long long	val;

	if (yamlutil_get_uint(cp->d, cp->file, v, k->min, k->max, &val) == 0)
		*(size_t *)config_field(cp, k) = (size_t)val;
}

static void
key_bool(struct config_parse *cp, const struct config_key *k, yaml_node_t *v)
{
	bool	val;

	if (yamlutil_get_bool(cp->d, cp->file, v, &val) == 0)
		*(bool *)config_field(cp, k) = val;
}

/* A non-empty string of at least k->min characters. */
static void
key_string(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	const char	 *s;
	char		**field = config_field(cp, k), *copy;

	if (yamlutil_get_string(cp->d, cp->file, v, &s) == -1)
		return;
	if (s[0] == '\0') {
		yamlutil_error(cp->d, cp->file, v, "%s must not be empty",
		    k->name);
		return;
	}
	if (strlen(s) < k->min) {
		yamlutil_error(cp->d, cp->file, v,
		    "%s must be at least %llu characters long", k->name, k->min);
		return;
	}
	if ((copy = strdup(s)) == NULL) {
		config_oom(cp, v);
		return;
	}
	free(*field);
	*field = copy;
}

static void
key_section(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	config_walk(cp, v, k->sub, k->path);
}

/*
 * Paths in the file are relative to its directory. cfg->dir has no
 * symlinks (realpath), so leading "../" can be folded in lexically.
 */
static char *
config_path_resolve(const char *dir, const char *rel)
{
	char	*out;
	size_t	 dlen = strlen(dir);

	if (rel[0] == '/')
		return strdup(rel);
	for (;;) {
		if (strncmp(rel, "./", 2) == 0)
			rel += 2;
		else if (strcmp(rel, "..") == 0 || strncmp(rel, "../", 3) == 0) {
			rel += rel[2] == '/' ? 3 : 2;
			while (dlen > 1 && dir[dlen - 1] != '/')
				dlen--;
			if (dlen > 1)
				dlen--;
		} else
			break;
	}
	while (*rel == '/')
		rel++;
	if (*rel == '\0')
		rel = ".";
	if (asprintf(&out, "%.*s%s%s", (int)dlen, dir,
	    dlen == 1 && dir[0] == '/' ? "" : "/", rel) == -1)
		return NULL;
	return out;
}


static void
config_listen_add(struct config_parse *cp, yaml_node_t *item)
{
	struct config		*cfg = cp->cfg;
	struct config_listen	*l;
	struct netaddr		 na;
	const char		*s, *why;
	size_t			 i;

	if (yamlutil_get_string(cp->d, cp->file, item, &s) == -1)
		return;
	if (netaddr_parse(s, CONFIG_DNS_PORT, &na, &why) == -1) {
		yamlutil_error(cp->d, cp->file, item, "bad address \"%s\": %s",
		    s, why);
		return;
	}
	/* A second bind() to the same address would fail at start-up. */
	for (i = 0; i < cfg->server.nlisten; i++) {
		if (netaddr_equal((struct sockaddr *)&na.ss,
		    (struct sockaddr *)&cfg->server.listen[i].addr.ss)) {
			yamlutil_error(cp->d, cp->file, item,
			    "duplicate listen address \"%s\"", s);
			return;
		}
	}
	if ((l = config_grow(cfg->server.listen, cfg->server.nlisten,
	    sizeof(*l))) == NULL) {
		config_oom(cp, item);
		return;
	}
	cfg->server.listen = l;
	l += cfg->server.nlisten++;
	l->addr = na;
	snprintf(l->text, sizeof(l->text), "%s", s);
}

static void
key_listen(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	size_t	i, n = config_list_len(v);

	if (!config_is_list(cp, v))
		return;
	free(cp->cfg->server.listen);
	cp->cfg->server.listen = NULL;
	cp->cfg->server.nlisten = 0;
	if (n == 0)
		yamlutil_error(cp->d, cp->file, v, "no listen addresses");
	for (i = 0; i < n; i++)
		config_listen_add(cp, config_list_item(cp, v, i));
}

/* A network at node n; "10.1.2.3/8" works but is probably a typo. */
static int
config_cidr_parse(struct config_parse *cp, yaml_node_t *n, struct cidr *c)
{
	const char	*s, *why;
	char		 text[64];
	bool		 hostbits;

	if (yamlutil_get_string(cp->d, cp->file, n, &s) == -1)
		return -1;
	if (cidr_parse_hostbits(s, c, &hostbits, &why) == -1) {
		yamlutil_error(cp->d, cp->file, n, "bad network \"%s\": %s",
		    s, why);
		return -1;
	}
	if (hostbits) {
		cidr_format(c, text, sizeof(text));
		yamlutil_warn(cp->d, cp->file, n,
		    "\"%s\" has host bits set; using %s", s, text);
	}
	return 0;
}

static void
config_allow_add(struct config_parse *cp, yaml_node_t *item)
{
	struct config	*cfg = cp->cfg;
	struct cidr	 c, *slot;

	if (config_cidr_parse(cp, item, &c) == -1)
		return;
	if ((slot = config_grow(cfg->server.allow, cfg->server.nallow,
	    sizeof(*slot))) == NULL) {
		config_oom(cp, item);
		return;
	}
	cfg->server.allow = slot;
	slot[cfg->server.nallow++] = c;
}

static void
key_allow(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	size_t	i, n = config_list_len(v);

	if (!config_is_list(cp, v))
		return;
	free(cp->cfg->server.allow);
	cp->cfg->server.allow = NULL;
	cp->cfg->server.nallow = 0;
	if (n == 0)
		yamlutil_warn(cp->d, cp->file, v,
		    "allow_clients is empty: every query will be refused");
	for (i = 0; i < n; i++)
		config_allow_add(cp, config_list_item(cp, v, i));
}

/*
 * Returns 1 if added, 0 if it was a duplicate (warned), -1 on error.
 * tls_name is NULL for a plain upstream.
 */
static int
config_upstream_add(struct config_parse *cp, yaml_node_t *item,
    const struct netaddr *na, const char *tls_name)
{
	struct config		*cfg = cp->cfg;
	struct config_upstream	*u;
	char			 text[sizeof(u->text)];
	size_t			 i;

	netaddr_format((const struct sockaddr *)&na->ss, text, sizeof(text));
	for (i = 0; i < cfg->nupstreams; i++) {
		if (netaddr_equal((const struct sockaddr *)&na->ss,
		    (struct sockaddr *)&cfg->upstreams[i].addr.ss)) {
			yamlutil_warn(cp->d, cp->file, item,
			    "upstream %s is listed twice; using it once", text);
			return 0;
		}
	}
	if ((u = config_grow(cfg->upstreams, cfg->nupstreams,
	    sizeof(*u))) == NULL) {
		config_oom(cp, item);
		return -1;
	}
	cfg->upstreams = u;
	u += cfg->nupstreams++;
	u->addr = *na;
	memcpy(u->text, text, sizeof(u->text));
	if (tls_name != NULL)
		snprintf(u->tls_name, sizeof(u->tls_name), "%s", tls_name);
	return 1;
}

/* "nameserver ADDR" lines, the way the C library reads them. */
static void
config_upstreams_system(struct config_parse *cp, yaml_node_t *item)
{
	FILE		*f;
	char		 line[512], *word, *addr, *save;
	struct netaddr	 na;
	const char	*why;
	int		 found = 0;

	if ((f = fileopen_read(cp->resolv_conf)) == NULL) {
		yamlutil_error(cp->d, cp->file, item,
		    "\"system\": cannot read %s: %s", cp->resolv_conf,
		    strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if ((word = strtok_r(line, " \t\r\n", &save)) == NULL ||
		    strcmp(word, "nameserver") != 0)
			continue;
		if ((addr = strtok_r(NULL, " \t\r\n", &save)) == NULL ||
		    netaddr_parse(addr, CONFIG_DNS_PORT, &na, &why) == -1)
			continue;
		if (config_upstream_add(cp, item, &na, NULL) != -1)
			found++;
	}
	fclose(f);
	if (found == 0)
		yamlutil_error(cp->d, cp->file, item,
		    "\"system\": no usable nameserver in %s", cp->resolv_conf);
}

/* A tls_name: a host name or an address, nothing a log line could not show. */
static const char *
config_tls_name_check(const char *s)
{
	size_t	len = strlen(s);

	if (len == 0)
		return "tls_name must not be empty";
	if (len > CONFIG_TLS_NAME_MAX)
		return "tls_name is longer than 253 characters";
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("-._:", *s) == NULL)
			return "tls_name may hold only letters, digits and "
			    "- . _ :";
	return NULL;
}

/* "{ address: ADDR, tls_name: NAME }": DNS over TLS, port 853 by default. */
static void
config_upstream_mapping(struct config_parse *cp, yaml_node_t *item)
{
	yaml_node_pair_t	*p;
	yaml_node_t		*addr_node = NULL, *name_node = NULL, *kn;
	const char		*key, *addr = NULL, *name = NULL, *why;
	struct netaddr		 na;

	yamlutil_check_duplicates(cp->d, cp->file, cp->doc, item);
	for (p = item->data.mapping.pairs.start;
	    p < item->data.mapping.pairs.top; p++) {
		kn = config_node(cp, p->key);
		key = yamlutil_scalar(kn);
		if (key != NULL && strcmp(key, "address") == 0)
			addr_node = config_node(cp, p->value);
		else if (key != NULL && strcmp(key, "tls_name") == 0)
			name_node = config_node(cp, p->value);
		else
			yamlutil_error(cp->d, cp->file, kn,
			    "unknown key \"%s\" in upstreams entry "
			    "(expected address, tls_name)", key ? key : "?");
	}
	if (addr_node == NULL) {
		yamlutil_error(cp->d, cp->file, item,
		    "upstreams entry has no \"address\"");
		return;
	}
	if (yamlutil_get_string(cp->d, cp->file, addr_node, &addr) == -1 ||
	    (name_node != NULL &&
	    yamlutil_get_string(cp->d, cp->file, name_node, &name) == -1))
		return;
	if (name != NULL && (why = config_tls_name_check(name)) != NULL) {
		yamlutil_error(cp->d, cp->file, name_node, "%s", why);
		return;
	}
	if (netaddr_parse(addr, name != NULL ? CONFIG_DOT_PORT :
	    CONFIG_DNS_PORT, &na, &why) == -1) {
		yamlutil_error(cp->d, cp->file, addr_node,
		    "bad address \"%s\": %s", addr, why);
		return;
	}
	config_upstream_add(cp, item, &na, name);
}

static void
config_upstream_parse(struct config_parse *cp, yaml_node_t *item)
{
	struct netaddr	 na;
	const char	*s, *why;

	if (item->type == YAML_MAPPING_NODE) {
		config_upstream_mapping(cp, item);
		return;
	}
	if (yamlutil_get_string(cp->d, cp->file, item, &s) == -1)
		return;
	if (strcmp(s, "system") == 0) {
		config_upstreams_system(cp, item);
		return;
	}
	if (netaddr_parse(s, CONFIG_DNS_PORT, &na, &why) == -1) {
		yamlutil_error(cp->d, cp->file, item, "bad address \"%s\": %s",
		    s, why);
		return;
	}
	config_upstream_add(cp, item, &na, NULL);
}

static void
key_upstreams(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	unsigned	before = cp->d->errors;
	size_t		i, n = config_list_len(v);

	if (config_is_list(cp, v)) {
		for (i = 0; i < n; i++)
			config_upstream_parse(cp, config_list_item(cp, v, i));
	}
	/* Don't add "no upstreams configured" on top of the real cause. */
	if (cp->d->errors != before)
		cp->upstreams_failed = true;
}

static void
config_file_add(struct config_parse *cp, yaml_node_t *item)
{
	struct config	 *cfg = cp->cfg;
	const char	 *s;
	char		 *path, **slot;
	size_t		  i;

	if (yamlutil_get_string(cp->d, cp->file, item, &s) == -1)
		return;
	if ((path = config_path_resolve(cfg->dir, s)) == NULL) {
		config_oom(cp, item);
		return;
	}
	for (i = 0; i < cfg->blocklist.nfiles; i++) {
		if (strcmp(cfg->blocklist.files[i], path) == 0) {
			yamlutil_warn(cp->d, cp->file, item,
			    "blocklist file %s is listed twice", path);
			free(path);
			return;
		}
	}
	if ((slot = config_grow(cfg->blocklist.files, cfg->blocklist.nfiles,
	    sizeof(*slot))) == NULL) {
		free(path);
		config_oom(cp, item);
		return;
	}
	cfg->blocklist.files = slot;
	slot[cfg->blocklist.nfiles++] = path;
}

static void
key_files(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	size_t	i, n = config_list_len(v);

	if (!config_is_list(cp, v))
		return;
	for (i = 0; i < n; i++)
		config_file_add(cp, config_list_item(cp, v, i));
}

static void
key_database(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	struct config	*cfg = cp->cfg;
	const char	*s;
	char		*path = NULL;

	if (!yamlutil_is_null(v)) {
		if (yamlutil_get_string(cp->d, cp->file, v, &s) == -1)
			return;
		if (s[0] != '\0' && strcmp(s, "off") != 0 &&
		    (path = config_path_resolve(cfg->dir, s)) == NULL) {
			config_oom(cp, v);
			return;
		}
	}
	free(cfg->log.database);
	cfg->log.database = path;
}

/*
 * log.central.postgresql: parsed here with libpq's own parser, so that
 * `check` names a string the shipper could not use, with its position.
 */
/* Parse s as libpq does; 0, or -1 after naming what is wrong. */
static int
conninfo_check(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v, const char *s)
{
	PQconninfoOption	*opts;
	char			*why = NULL;

	if ((opts = PQconninfoParse(s, &why)) == NULL) {
		size_t n = why ? strlen(why) : 0;

		while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == ' '))
			why[--n] = '\0';
		yamlutil_error(cp->d, cp->file, v, "log.central.%s is "
		    "not a libpq connection string: %s", k->name,
		    why && why[0] ? why : "out of memory");
		PQfreemem(why);
		return -1;
	}
	PQconninfoFree(opts);
	return 0;
}

static void
key_conninfo(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	char		**field = config_field(cp, k), *copy;
	const char	 *s;

	if (yamlutil_is_null(v)) {
		free(*field);
		*field = NULL;
		return;
	}
	if (yamlutil_get_string(cp->d, cp->file, v, &s) == -1)
		return;
	if (s[0] == '\0' || strcmp(s, "off") == 0) {
		free(*field);
		*field = NULL;
		return;
	}
	if (conninfo_check(cp, k, v, s) == -1)
		return;
	if ((copy = strdup(s)) == NULL) {
		config_oom(cp, v);
		return;
	}
	free(*field);
	*field = copy;
}

/* log.central.instance: a name for this site's rows, printable. */
static void
key_instance(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	const char	*s;

	if (yamlutil_get_string(cp->d, cp->file, v, &s) == -1)
		return;
	if (s[0] == '\0' || strlen(s) > CONFIG_INSTANCE_MAX) {
		yamlutil_error(cp->d, cp->file, v, "instance must be 1 to %d "
		    "characters long", CONFIG_INSTANCE_MAX);
		return;
	}
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			yamlutil_error(cp->d, cp->file, v, "instance must not "
			    "hold control characters");
			return;
		}
	key_string(cp, k, v);
}

static void
key_tls_ca_file(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	const char	*s;
	char		*path;

	if (yamlutil_get_string(cp->d, cp->file, v, &s) == -1)
		return;
	if (s[0] == '\0') {
		yamlutil_error(cp->d, cp->file, v,
		    "tls_ca_file must not be empty");
		return;
	}
	if ((path = config_path_resolve(cp->cfg->dir, s)) == NULL) {
		config_oom(cp, v);
		return;
	}
	free(cp->cfg->tls_ca_file);
	cp->cfg->tls_ca_file = path;
}

static void
key_identity(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	static const char *const names[] = {
		[CLIENT_IDENTITY_ADDRESS] = "address",
		[CLIENT_IDENTITY_NAME] = "name",
		[CLIENT_IDENTITY_PSEUDONYM] = "pseudonym",
	};
	const char	*s = yamlutil_scalar(v);
	size_t		 i;

	cp->identity_node = v;
	for (i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			cp->cfg->log.client_identity = (enum client_identity)i;
			return;
		}
	}
	if (s != NULL && !yamlutil_is_null(v))
		yamlutil_error(cp->d, cp->file, v,
		    "expected address, name or pseudonym, found \"%s\"", s);
	else
		yamlutil_error(cp->d, cp->file, v,
		    "expected address, name or pseudonym, found %s",
		    yamlutil_kind(v));
}

static void
key_pseudonym(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	cp->pseudonym_node = v;
	key_string(cp, k, v);
}

/*
 * A client's name is printed in reports and on terminals: a control
 * character in it (C0, DEL, or C1 in UTF-8) could rewrite the screen of
 * whoever reads them, so it is refused here rather than trusted later.
 */
static bool
config_client_name_ok(struct config_parse *cp, yaml_node_t *v, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned c = *p;
		if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			c = p[1];	/* U+0080..U+009F */
		else if (c >= 0x20 && c != 0x7f)
			continue;
		yamlutil_error(cp->d, cp->file, v, "client name contains a "
		    "control character (U+%04X)", c);
		return false;
	}
	return true;
}

/* A path key: relative to the file's directory; "off" or null: none. */
static void
key_path(struct config_parse *cp, const struct config_key *k, yaml_node_t *v)
{
	char		**field = config_field(cp, k), *path = NULL;
	const char	 *s;

	if (!yamlutil_is_null(v)) {
		if (yamlutil_get_string(cp->d, cp->file, v, &s) == -1)
			return;
		if (s[0] != '\0' && strcmp(s, "off") != 0 &&
		    (path = config_path_resolve(cp->cfg->dir, s)) == NULL) {
			config_oom(cp, v);
			return;
		}
	}
	free(*field);
	*field = path;
}

static void
key_pseudonym_file(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	cp->key_file_node = v;
	key_path(cp, k, v);
}

/*
 * The pseudonym key from log.pseudonym_key_file: its first line, at least
 * CONFIG_PSEUDONYM_MIN characters. Kept out of the configuration so that
 * those who may read the configuration (or the reports) need not see it.
 */
static void
config_read_key_file(struct config_parse *cp)
{
	struct config	*cfg = cp->cfg;
	const char	*path = cfg->log.pseudonym_key_file;
	char		 buf[1024];
	struct stat	 sb;
	size_t		 n;
	FILE		*f;

	if ((f = fopen(path, "re")) == NULL) {
		if (!cp->reader)
			yamlutil_error(cp->d, cp->file, cp->key_file_node,
			    "cannot read pseudonym_key_file %s: %s", path,
			    strerror(errno));
		return;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077) != 0 &&
	    !cp->reader)
		yamlutil_warn(cp->d, cp->file, cp->key_file_node,
		    "%s can be read by others than its owner; make it "
		    "readable by the service user only (chmod 0400)", path);
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < CONFIG_PSEUDONYM_MIN) {
		yamlutil_error(cp->d, cp->file, cp->key_file_node,
		    "%s: the key must be at least %d characters on its first "
		    "line", path, CONFIG_PSEUDONYM_MIN);
	} else if ((cfg->log.pseudonym_key = strdup(buf)) == NULL)
		config_oom(cp, cp->key_file_node);
	explicit_bzero(buf, sizeof(buf));
}

/* The "network" or "name" of a clients entry; true if it was valid. */
static bool
config_client_field(struct config_parse *cp, const char *key,
    yaml_node_t *v, struct config_client *c)
{
	const char	*s;

	if (strcmp(key, "network") == 0)
		return config_cidr_parse(cp, v, &c->net) == 0;
	if (yamlutil_get_string(cp->d, cp->file, v, &s) == -1)
		return false;
	if (!config_client_name_ok(cp, v, s))
		return false;
	if ((c->name = strdup(s)) == NULL) {
		config_oom(cp, v);
		return false;
	}
	return true;
}

/* Takes over c->name. */
static void
config_client_add(struct config_parse *cp, yaml_node_t *item,
    struct config_client *c)
{
	struct config		*cfg = cp->cfg;
	struct config_client	*slot;

	if ((slot = config_grow(cfg->clients, cfg->nclients,
	    sizeof(*slot))) == NULL) {
		free(c->name);
		config_oom(cp, item);
		return;
	}
	cfg->clients = slot;
	slot[cfg->nclients++] = *c;
}

static void
config_client_parse(struct config_parse *cp, yaml_node_t *item)
{
	struct config_client	 c = { .name = NULL };
	yaml_node_pair_t	*p;
	yaml_node_t		*kn;
	const char		*key;
	bool			 seen_net = false, seen_name = false;
	bool			*seen, ok = true;

	yamlutil_check_duplicates(cp->d, cp->file, cp->doc, item);
	for (p = item->data.mapping.pairs.start;
	    p < item->data.mapping.pairs.top; p++) {
		kn = config_node(cp, p->key);
		key = yamlutil_scalar(kn);
		if (key == NULL || (strcmp(key, "network") != 0 &&
		    strcmp(key, "name") != 0)) {
			yamlutil_error(cp->d, cp->file, kn,
			    "unknown key \"%s\" in clients entry",
			    key ? key : "?");
			ok = false;
			continue;
		}
		seen = strcmp(key, "network") == 0 ? &seen_net : &seen_name;
		if (*seen)
			continue;	/* a duplicate, reported above */
		*seen = true;
		if (!config_client_field(cp, key, config_node(cp, p->value), &c))
			ok = false;
	}
	if (!seen_net)
		yamlutil_error(cp->d, cp->file, item,
		    "clients entry has no \"network\"");
	if (!seen_name)
		yamlutil_error(cp->d, cp->file, item,
		    "clients entry has no \"name\"");
	if (ok && seen_net && seen_name)
		config_client_add(cp, item, &c);
	else
		free(c.name);
}

static void
key_clients(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	yaml_node_t	*item;
	size_t		 i, n = config_list_len(v);

	if (!config_is_list(cp, v))
		return;
	for (i = 0; i < n; i++) {
		item = config_list_item(cp, v, i);
		if (item->type != YAML_MAPPING_NODE) {
			yamlutil_error(cp->d, cp->file, item,
			    "expected a mapping with network and name, "
			    "found %s", yamlutil_kind(item));
			continue;
		}
		config_client_parse(cp, item);
	}
}

static void
key_policies(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	if (config_is_list(cp, v))
		cp->policies_node = v;
}

/* Add the networks of one entry of a policy's clients: a network, or
 * the name of clients: entries (every network of that name). */
static void
policy_client_add(struct config_parse *cp, struct config_policy *pol,
    yaml_node_t *n)
{
	struct config	*cfg = cp->cfg;
	struct cidr	 c, *slot;
	const char	*s, *why;
	bool		 hostbits, found = false;

	if (yamlutil_get_string(cp->d, cp->file, n, &s) == -1)
		return;
	for (size_t i = 0; i <= cfg->nclients; i++) {
		if (i < cfg->nclients && strcmp(cfg->clients[i].name, s) != 0)
			continue;
		if (i == cfg->nclients) {
			if (found)
				return;
			if (cidr_parse_hostbits(s, &c, &hostbits, &why) == -1) {
				yamlutil_error(cp->d, cp->file, n, "\"%s\" is "
				    "neither a network nor a name from "
				    "clients:", s);
				return;
			}
			if (config_cidr_parse(cp, n, &c) == -1)
				return;
		} else
			c = cfg->clients[i].net;
		found = true;
		if ((slot = config_grow(pol->nets, pol->nnets,
		    sizeof(*slot))) == NULL) {
			config_oom(cp, n);
			return;
		}
		pol->nets = slot;
		slot[pol->nnets++] = c;
	}
}

static void
policy_category_add(struct config_parse *cp, struct config_policy *pol,
    yaml_node_t *n)
{
	struct config_policy_category *slot;
	const char *s;

	if (yamlutil_get_string(cp->d, cp->file, n, &s) == -1)
		return;
	if ((slot = config_grow(pol->categories, pol->ncategories,
	    sizeof(*slot))) == NULL || (slot[pol->ncategories].name =
	    strdup(s)) == NULL) {
		if (slot != NULL)
			pol->categories = slot;
		config_oom(cp, n);
		return;
	}
	pol->categories = slot;
	slot[pol->ncategories].line = (unsigned)n->start_mark.line + 1;
	slot[pol->ncategories].col = (unsigned)n->start_mark.column + 1;
	pol->ncategories++;
}

/* The list at v (a node of a policy), each item given to fn. */
static void
policy_list(struct config_parse *cp, struct config_policy *pol,
    yaml_node_t *v, void (*fn)(struct config_parse *,
    struct config_policy *, yaml_node_t *))
{
	if (!config_is_list(cp, v))
		return;
	for (size_t i = 0; i < config_list_len(v); i++)
		fn(cp, pol, config_list_item(cp, v, i));
}

static void
policy_field(struct config_parse *cp, struct config_policy *pol,
    const char *key, yaml_node_t *v)
{
	const char *s;

	if (strcmp(key, "clients") == 0)
		policy_list(cp, pol, v, policy_client_add);
	else if (strcmp(key, "categories") == 0)
		policy_list(cp, pol, v, policy_category_add);
	else if (yamlutil_get_string(cp->d, cp->file, v, &s) == 0 &&
	    pol->name == NULL) {
		if (s[0] == '\0')
			yamlutil_error(cp->d, cp->file, v, "policy name must "
			    "not be empty");
		else if ((pol->name = strdup(s)) == NULL)
			config_oom(cp, v);
	}
}

static void
policy_parse(struct config_parse *cp, yaml_node_t *item,
    struct config_policy *pol)
{
	static const char *const keys[] = { "name", "clients", "categories" };
	bool seen[3] = { false };

	yamlutil_check_duplicates(cp->d, cp->file, cp->doc, item);
	for (yaml_node_pair_t *p = item->data.mapping.pairs.start;
	    p < item->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = config_node(cp, p->key);
		const char *key = yamlutil_scalar(kn);
		size_t i;

		for (i = 0; key != NULL && i < 3 && strcmp(key, keys[i]); i++)
			;
		if (key == NULL || i == 3) {
			yamlutil_error(cp->d, cp->file, kn, "unknown key \"%s\" "
			    "in policies entry (expected name, clients, "
			    "categories)", key ? key : "?");
			continue;
		}
		if (!seen[i])
			policy_field(cp, pol, key, config_node(cp, p->value));
		seen[i] = true;
	}
	for (size_t i = 0; i < 3; i++)
		if (!seen[i])
			yamlutil_error(cp->d, cp->file, item, "policies entry "
			    "has no \"%s\"", keys[i]);
}

/* policies:, read once clients: is known, whatever the order of keys. */
static void
config_policies(struct config_parse *cp, yaml_node_t *v)
{
	struct config		*cfg = cp->cfg;
	struct config_policy	*slot;

	for (size_t i = 0; v != NULL && i < config_list_len(v); i++) {
		yaml_node_t *item = config_list_item(cp, v, i);

		if (item->type != YAML_MAPPING_NODE) {
			yamlutil_error(cp->d, cp->file, item, "expected a "
			    "mapping with name, clients and categories, found "
			    "%s", yamlutil_kind(item));
			continue;
		}
		if ((slot = config_grow(cfg->policies, cfg->npolicies,
		    sizeof(*slot))) == NULL) {
			config_oom(cp, item);
			return;
		}
		cfg->policies = slot;
		slot = &cfg->policies[cfg->npolicies++];
		memset(slot, 0, sizeof(*slot));
		policy_parse(cp, item, slot);
		for (size_t j = 0; slot->name != NULL && j + 1 <
		    cfg->npolicies; j++)
			if (cfg->policies[j].name != NULL &&
			    strcmp(cfg->policies[j].name, slot->name) == 0)
				yamlutil_error(cp->d, cp->file, item, "policy "
				    "\"%s\" given twice", slot->name);
	}
}

static void
key_cache_dir(struct config_parse *cp, const struct config_key *k,
    yaml_node_t *v)
{
	struct config	*cfg = cp->cfg;
	const char	*s;
	char		*path;

	if (yamlutil_get_string(cp->d, cp->file, v, &s) == -1)
		return;
	if (s[0] == '\0') {
		yamlutil_error(cp->d, cp->file, v, "cache_dir must not be "
		    "empty");
		return;
	}
	if ((path = config_path_resolve(cfg->dir, s)) == NULL) {
		config_oom(cp, v);
		return;
	}
	free(cfg->blocklist.cache_dir);
	cfg->blocklist.cache_dir = path;
}

static void
key_http(struct config_parse *cp, const struct config_key *k, yaml_node_t *v)
{
	config_http_parse(cp->cfg, cp->doc, v, cp->file, cp->d);
}

static void
key_cpus(struct config_parse *cp, const struct config_key *k, yaml_node_t *v)
{
	config_cpus_parse(config_field(cp, k), cp->doc, v, cp->file,
	    "server.cpus", cp->d);
}

#define F(field)	offsetof(struct config, field)

static const struct config_key rate_limit_keys[] = {
	{ "qps", key_unsigned, F(server.rate_limit_qps), 0, 10000000 },
	{ "burst", key_unsigned, F(server.rate_limit_burst), 1, 10000000 },
	{ NULL }
};

static const struct config_key server_keys[] = {
	{ "listen", key_listen },
	{ "allow_clients", key_allow },
	{ "user", key_string, F(server.user) },
	{ "threads", key_unsigned, F(server.threads), 1, 64 },
	{ "rate_limit", key_section, .sub = rate_limit_keys,
	    .path = "server.rate_limit" },
	{ "tcp_max_connections", key_unsigned, F(server.tcp_max_connections),
	    1, 1000000 },
	{ "tcp_idle_timeout_ms", key_unsigned, F(server.tcp_idle_timeout_ms),
	    1, 3600000 },
	{ "tcp_max_connections_per_client", key_unsigned,
	    F(server.tcp_max_connections_per_client), 1, 1000000 },
	{ "tcp_write_timeout_ms", key_unsigned,
	    F(server.tcp_write_timeout_ms), 1, 3600000 },
	{ "tcp_max_lifetime_ms", key_unsigned, F(server.tcp_max_lifetime_ms),
	    1, 86400000 },
	{ "max_outstanding", key_unsigned, F(server.max_outstanding),
	    1, 1000000 },
	{ "max_waiters", key_unsigned, F(server.max_waiters), 1, 65535 },
	{ "control_socket", key_path, F(server.control_socket) },
	{ "cpus", key_cpus, F(server.cpus) },
	{ NULL }
};

static const struct config_key cache_keys[] = {
	{ "max_entries", key_unsigned, F(cache.max_entries), 0, UINT_MAX },
	{ "max_bytes", key_size, F(cache.max_bytes), 0, SIZE_MAX },
	{ "max_ttl", key_u32, F(cache.max_ttl), 0, CONFIG_TTL_MAX },
	{ "max_negative_ttl", key_u32, F(cache.max_negative_ttl),
	    0, CONFIG_TTL_MAX },
	{ NULL }
};

static const struct config_key blocklist_keys[] = {
	{ "files", key_files },
	{ "dns_bypass", key_bool, F(blocklist.dns_bypass) },
	{ "blocked_ttl", key_u32, F(blocklist.blocked_ttl), 0, CONFIG_TTL_MAX },
	{ "cache_dir", key_cache_dir },
	{ "download_timeout_ms", key_unsigned,
	    F(blocklist.download_timeout_ms), 100, 3600000 },
	{ NULL }
};

static const struct config_key central_keys[] = {
	{ "postgresql", key_conninfo, F(log.central_conninfo) },
	{ "instance", key_instance, F(log.central_instance) },
	{ "console_postgresql", key_conninfo, F(log.central_read_conninfo) },
	{ NULL }
};

static const struct config_key log_keys[] = {
	{ "database", key_database },
	{ "retention_days", key_unsigned, F(log.retention_days), 0, 36500 },
	{ "all_queries", key_bool, F(log.all_queries) },
	{ "client_identity", key_identity },
	{ "pseudonym_key", key_pseudonym, F(log.pseudonym_key),
	    CONFIG_PSEUDONYM_MIN },
	{ "pseudonym_key_file", key_pseudonym_file,
	    F(log.pseudonym_key_file) },
	{ "queue_size", key_unsigned, F(log.queue_size), 16, 16777216 },
	{ "required", key_bool, F(log.required) },
	{ "central", key_section, .sub = central_keys, .path = "log.central" },
	{ NULL }
};

static const struct config_key top_keys[] = {
	{ "server", key_section, .sub = server_keys, .path = "server" },
	{ "upstreams", key_upstreams },
	{ "upstream_timeout_ms", key_unsigned, F(upstream_timeout_ms),
	    10, 60000 },
	{ "upstream_queries_per_socket", key_unsigned,
	    F(upstream_queries_per_socket), 1, UPSTREAM_SOCKET_QUERIES_MAX },
	{ "tls_ca_file", key_tls_ca_file },
	{ "tls_max_connections", key_unsigned, F(tls_max_connections),
	    1, 16 },
	{ "tls_idle_timeout_ms", key_unsigned, F(tls_idle_timeout_ms),
	    100, 3600000 },
	{ "cache", key_section, .sub = cache_keys, .path = "cache" },
	{ "blocklist", key_section, .sub = blocklist_keys,
	    .path = "blocklist" },
	{ "log", key_section, .sub = log_keys, .path = "log" },
	{ "clients", key_clients },
	{ "policies", key_policies },
	{ "http", key_http },
	{ NULL }
};

#undef F

static const struct config_key *
config_key_find(const struct config_key *keys, const char *name)
{
	for (; keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

/* A null section ("log:" with nothing below) keeps every default. */
static void
config_walk(struct config_parse *cp, yaml_node_t *map,
    const struct config_key *keys, const char *where)
{
	const struct config_key	*k;
	yaml_node_pair_t	*p;
	yaml_node_t		*kn;
	const char		*name;

	if (yamlutil_is_null(map))
		return;
	if (map->type != YAML_MAPPING_NODE) {
		yamlutil_error(cp->d, cp->file, map,
		    "expected a mapping, found %s", yamlutil_kind(map));
		return;
	}
	yamlutil_check_duplicates(cp->d, cp->file, cp->doc, map);
	for (p = map->data.mapping.pairs.start;
	    p < map->data.mapping.pairs.top; p++) {
		kn = config_node(cp, p->key);
		if ((name = yamlutil_scalar(kn)) == NULL) {
			yamlutil_error(cp->d, cp->file, kn,
			    "expected a key name, found %s", yamlutil_kind(kn));
			continue;
		}
		if ((k = config_key_find(keys, name)) == NULL) {
			yamlutil_error(cp->d, cp->file, kn,
			    "unknown key \"%s\"%s%s", name,
			    where ? " in " : "", where ? where : "");
			continue;
		}
		k->parse(cp, k, config_node(cp, p->value));
	}
}

static bool
config_is_loopback(const struct sockaddr *sa)
{
	static const uint8_t	 v6_loopback[16] = { [15] = 1 };
	const uint8_t		*a;

	if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		return a[0] == 127;
	}
	a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	return memcmp(a, v6_loopback, 16) == 0;
}

static bool
config_is_wildcard(const struct sockaddr *sa)
{
	static const uint8_t	 zero[16];
	const void		*a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	return memcmp(a, zero, sa->sa_family == AF_INET ? 4 : 16) == 0;
}

/*
 * An upstream that is one of our own listen addresses (typically "system"
 * once resolv.conf points at dnswarden) sends every miss back to us.
 */
static bool
config_upstream_loops(const struct config *cfg, const struct netaddr *up)
{
	const struct sockaddr	*u = (const struct sockaddr *)&up->ss;
	const struct sockaddr	*l;
	const struct sockaddr_in *u4, *l4;
	size_t			 i;

	for (i = 0; i < cfg->server.nlisten; i++) {
		l = (const struct sockaddr *)&cfg->server.listen[i].addr.ss;
		if (netaddr_equal(u, l))
			return true;
		if (l->sa_family != u->sa_family || !config_is_wildcard(l) ||
		    !config_is_loopback(u))
			continue;
		/* sin_port and sin6_port sit at the same offset. */
		u4 = (const struct sockaddr_in *)u;
		l4 = (const struct sockaddr_in *)l;
		if (u4->sin_port == l4->sin_port)
			return true;
	}
	return false;
}

/* log.central.instance defaults to the host name. */
static void
config_central_instance(struct config_parse *cp)
{
	struct config	*cfg = cp->cfg;
	char		 host[256];

	if (cfg->log.central_conninfo == NULL ||
	    cfg->log.central_instance != NULL)
		return;
	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0') {
		diag_error(cp->d, cp->file, 0, 0, "log.central.instance is not "
		    "set and the host name cannot be read: set it");
		return;
	}
	host[sizeof(host) - 1] = '\0';
	if (strlen(host) > CONFIG_INSTANCE_MAX)
		host[CONFIG_INSTANCE_MAX] = '\0';
	if ((cfg->log.central_instance = strdup(host)) == NULL)
		diag_error(cp->d, cp->file, 0, 0, "out of memory");
}

/*
 * server.cpus without http.cpus: the console's threads (which start on
 * server.cpus) go to the CPUs it leaves, so that by default they never
 * queue a DNS answer. None left: they share, at http.nice.
 */
static void
config_http_cpus_default(struct config_parse *cp)
{
	struct config	*cfg = cp->cfg;

	if (cfg->http.cpus.n > 0 || cfg->server.cpus.n == 0)
		return;
	if (config_cpus_rest(&cfg->http.cpus, &cfg->server.cpus) == -1)
		diag_error(cp->d, cp->file, 0, 0, "out of memory");
	cfg->http.cpus_rest = cfg->http.cpus.n > 0;
}

/* Rules that involve more than one key, checked once the walk is done. */
static void
config_check(struct config_parse *cp)
{
	struct config	*cfg = cp->cfg;
	size_t		 i;

	config_http_cpus_default(cp);
	config_policies(cp, cp->policies_node);
	config_central_instance(cp);
	if (cp->pseudonym_node != NULL && cfg->log.pseudonym_key_file != NULL)
		yamlutil_error(cp->d, cp->file, cp->key_file_node,
		    "pseudonym_key and pseudonym_key_file both given; keep "
		    "pseudonym_key_file");
	else if (cfg->log.pseudonym_key_file != NULL)
		config_read_key_file(cp);
	if (cfg->nupstreams == 0 && !cp->upstreams_failed && !cp->reader)
		diag_error(cp->d, cp->file, 0, 0, "no upstreams configured");
	for (i = 0; i < cfg->nupstreams; i++) {
		if (config_upstream_loops(cfg, &cfg->upstreams[i].addr))
			diag_error(cp->d, cp->file, 0, 0,
			    "upstream %s is one of the listen addresses; "
			    "queries would loop", cfg->upstreams[i].text);
	}
	if (cfg->log.client_identity == CLIENT_IDENTITY_PSEUDONYM &&
	    cfg->log.pseudonym_key == NULL && cp->pseudonym_node == NULL &&
	    cp->key_file_node == NULL && !cp->reader)
		yamlutil_error(cp->d, cp->file, cp->identity_node,
		    "client_identity pseudonym needs log.pseudonym_key_file "
		    "(a key of at least %d characters)", CONFIG_PSEUDONYM_MIN);
	if (cfg->log.client_identity != CLIENT_IDENTITY_PSEUDONYM &&
	    (cp->pseudonym_node != NULL || cp->key_file_node != NULL))
		yamlutil_warn(cp->d, cp->file, cp->pseudonym_node ?
		    cp->pseudonym_node : cp->key_file_node,
		    "%s is unused unless client_identity is pseudonym",
		    cp->pseudonym_node ? "pseudonym_key" :
		    "pseudonym_key_file");
}

/* The file's directory, absolute and without symlinks when possible. */
static char *
config_dir_of(const char *path)
{
	char	*dir, *slash, *real, *out, cwd[PATH_MAX];

	if ((dir = strdup(path)) == NULL)
		return NULL;
	if ((slash = strrchr(dir, '/')) == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((real = realpath(dir, NULL)) != NULL) {
		free(dir);
		return real;
	}
	if (dir[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return dir;
	if (asprintf(&out, "%s/%s", cwd, dir) == -1)
		out = NULL;
	free(dir);
	return out;
}

static struct config *
config_load_mode(const char *path, const char *resolv_conf, bool reader,
    struct diag *d)
{
	struct config_parse	 cp = { .d = d, .file = path, .reader = reader };
	yaml_document_t		 doc;
	yaml_node_t		*root;
	unsigned		 before = d->errors;

	cp.resolv_conf = resolv_conf ? resolv_conf : CONFIG_RESOLV_CONF;
	if (yamlutil_load_file(path, &doc, d) == -1)
		return NULL;
	if ((cp.cfg = config_default()) == NULL) {
		diag_error(d, path, 0, 0, "out of memory");
		yaml_document_delete(&doc);
		return NULL;
	}
	free(cp.cfg->path);
	free(cp.cfg->dir);
	cp.cfg->path = strdup(path);
	cp.cfg->dir = config_dir_of(path);
	cp.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (cp.cfg->path == NULL || cp.cfg->dir == NULL)
		diag_error(d, path, 0, 0, "out of memory");
	else if (root->type != YAML_MAPPING_NODE)
		yamlutil_error(d, path, root, "expected a mapping at the top "
		    "level, found %s", yamlutil_kind(root));
	else {
		config_walk(&cp, root, top_keys, NULL);
		config_check(&cp);
	}
	yaml_document_delete(&doc);
	if (d->errors != before) {
		config_free(cp.cfg);
		return NULL;
	}
	return cp.cfg;
}

struct config *
config_load_resolv(const char *path, const char *resolv_conf,
    struct diag *d)
{
	return config_load_mode(path, resolv_conf, false, d);
}

struct config *
config_load(const char *path, struct diag *d)
{
	return config_load_mode(path, CONFIG_RESOLV_CONF, false, d);
}

struct config *
config_load_reader(const char *path, struct diag *d)
{
	return config_load_mode(path, CONFIG_RESOLV_CONF, true, d);
}

static int
config_default_lists(struct config *cfg)
{
	static const char *const listen[] = { "127.0.0.1:53", "[::1]:53" };
	static const char *const allow[] = { "127.0.0.0/8", "::1/128" };
	const char	*why;
	size_t		 i;

	cfg->server.listen = calloc(2, sizeof(*cfg->server.listen));
	cfg->server.allow = calloc(2, sizeof(*cfg->server.allow));
	if (cfg->server.listen == NULL || cfg->server.allow == NULL)
		return -1;
	for (i = 0; i < 2; i++) {
		if (netaddr_parse(listen[i], CONFIG_DNS_PORT,
		    &cfg->server.listen[i].addr, &why) == -1 ||
		    cidr_parse(allow[i], &cfg->server.allow[i], &why) == -1)
			return -1;
		snprintf(cfg->server.listen[i].text,
		    sizeof(cfg->server.listen[i].text), "%s", listen[i]);
	}
	cfg->server.nlisten = cfg->server.nallow = 2;
	return 0;
}

struct config *
config_default(void)
{
	struct config	*cfg;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return NULL;
	cfg->server.threads = 1;
	cfg->server.rate_limit_qps = 500;
	cfg->server.rate_limit_burst = 2000;
	cfg->server.tcp_max_connections = 256;
	cfg->server.tcp_idle_timeout_ms = 10000;
	cfg->server.tcp_max_connections_per_client = 16;
	cfg->server.tcp_write_timeout_ms = 10000;
	cfg->server.tcp_max_lifetime_ms = 120000;
	cfg->server.max_outstanding = 10000;
	cfg->server.max_waiters = 64;
	cfg->upstream_timeout_ms = 1500;
	cfg->upstream_queries_per_socket = 16;
	cfg->tls_max_connections = 2;
	cfg->tls_idle_timeout_ms = 10000;
	cfg->cache.max_entries = 100000;
	cfg->cache.max_bytes = 64 * 1024 * 1024;
	cfg->cache.max_ttl = 86400;
	cfg->cache.max_negative_ttl = 3600;
	cfg->blocklist.dns_bypass = true;
	cfg->blocklist.blocked_ttl = 300;
	cfg->log.retention_days = 365;
	cfg->log.client_identity = CLIENT_IDENTITY_ADDRESS;
	cfg->log.queue_size = 65536;
	cfg->http.session_minutes = 480;
	cfg->http.nice = CONFIG_HTTP_NICE_DEFAULT;
	cfg->path = strdup("(defaults)");
	cfg->dir = strdup("/etc/dnswarden");
	cfg->server.user = strdup(CONFIG_USER_DEFAULT);
	cfg->log.required = true;
	cfg->log.database = strdup("/var/lib/dnswarden/attempts.db");
	cfg->blocklist.cache_dir = strdup("/var/lib/dnswarden/lists");
	cfg->blocklist.download_timeout_ms = 60000;
	cfg->server.control_socket = strdup(CONFIG_CONTROL_SOCKET);
	if (cfg->path == NULL || cfg->dir == NULL || cfg->server.user == NULL ||
	    cfg->blocklist.cache_dir == NULL ||
	    cfg->server.control_socket == NULL ||
	    cfg->log.database == NULL || config_default_lists(cfg) == -1) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

void
config_free(struct config *cfg)
{
	size_t	i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->blocklist.nfiles; i++)
		free(cfg->blocklist.files[i]);
	for (i = 0; i < cfg->nclients; i++)
		free(cfg->clients[i].name);
	free(cfg->blocklist.files);
	free(cfg->blocklist.cache_dir);
	free(cfg->clients);
	for (i = 0; i < cfg->npolicies; i++) {
		free(cfg->policies[i].name);
		free(cfg->policies[i].nets);
		for (size_t j = 0; j < cfg->policies[i].ncategories; j++)
			free(cfg->policies[i].categories[j].name);
		free(cfg->policies[i].categories);
	}
	free(cfg->policies);
	config_http_free(cfg);
	free(cfg->server.listen);
	free(cfg->server.allow);
	free(cfg->server.user);
	free(cfg->server.control_socket);
	config_cpus_free(&cfg->server.cpus);
	free(cfg->log.pseudonym_key_file);
	free(cfg->upstreams);
	free(cfg->tls_ca_file);
	free(cfg->log.database);
	free(cfg->log.central_conninfo);
	free(cfg->log.central_instance);
	free(cfg->log.central_read_conninfo);
	if (cfg->log.pseudonym_key != NULL) {
		/* A secret: don't leave it in freed memory. */
		explicit_bzero(cfg->log.pseudonym_key,
		    strlen(cfg->log.pseudonym_key));
		free(cfg->log.pseudonym_key);
	}
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}

bool
config_cpus_equal(const struct config_cpus *a, const struct config_cpus *b)
{
	return a->n == b->n && (a->n == 0 ||
	    memcmp(a->cpu, b->cpu, a->n * sizeof(*a->cpu)) == 0);
}

const char *
config_client_name(const struct config *cfg, const struct sockaddr *addr)
{
	size_t	i;

	for (i = 0; i < cfg->nclients; i++)
		if (cidr_contains(&cfg->clients[i].net, addr))
			return cfg->clients[i].name;
	return NULL;
}

bool
config_client_allowed(const struct config *cfg, const struct sockaddr *addr)
{
	size_t	i;

	for (i = 0; i < cfg->server.nallow; i++)
		if (cidr_contains(&cfg->server.allow[i], addr))
			return true;
	return false;
}
