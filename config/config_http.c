/*
 * config_http: the http: section. Users and tokens are checked here, at
 * load time, so that "dnswarden check" finds a pasted hash cut short or a
 * role misspelt before the console refuses everyone.
 */
#include <ctype.h>
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_cpus.h"
#include "config_http.h"
#include "yamlutil.h"

#define HTTP_DEFAULT_PORT	8053
#define HTTP_NAME_MAX		64

/* One load of the section: where messages go. */
struct http_parse {
	struct config	*cfg;
	yaml_document_t	*doc;
	const char	*file;
	struct diag	*d;
};

static const char *const role_names[] = {
	[HTTP_ROLE_ADMIN] = "admin",
	[HTTP_ROLE_SECURITY] = "security",
	[HTTP_ROLE_HR] = "hr",
	[HTTP_ROLE_METRICS] = "metrics",
};

static yaml_node_t *
hp_node(struct http_parse *hp, int id)
{
	return yaml_document_get_node(hp->doc, id);
}

static void
hp_oom(struct http_parse *hp, const yaml_node_t *n)
{
	yamlutil_error(hp->d, hp->file, n, "out of memory");
}

/* The value of key in mapping map, or NULL. */
static yaml_node_t *
hp_get(struct http_parse *hp, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t	*p;
	const char		*k;

	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	    p++) {
		k = yamlutil_scalar(hp_node(hp, p->key));
		if (k != NULL && strcmp(k, key) == 0)
			return hp_node(hp, p->value);
	}
	return NULL;
}

/* Every key of map must be one of keys (NULL-terminated); false if not. */
static bool
hp_known_keys(struct http_parse *hp, yaml_node_t *map, const char *where,
    const char *const keys[])
{
	yaml_node_pair_t	*p;
	bool			 ok = true;

	if (yamlutil_check_duplicates(hp->d, hp->file, hp->doc, map) > 0)
		ok = false;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	    p++) {
		yaml_node_t	*kn = hp_node(hp, p->key);
		const char	*k = yamlutil_scalar(kn);
		size_t		 i;

		for (i = 0; k != NULL && keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (k == NULL || keys[i] == NULL) {
			yamlutil_error(hp->d, hp->file, kn,
			    "unknown key \"%s\" in %s", k ? k : "?", where);
			ok = false;
		}
	}
	return ok;
}

/* A required string key of an entry; NULL after a message. */
static const char *
hp_string(struct http_parse *hp, yaml_node_t *map, const char *key,
    const char *where)
{
	yaml_node_t	*v = hp_get(hp, map, key);
	const char	*s;

	if (v == NULL) {
		yamlutil_error(hp->d, hp->file, map, "%s has no \"%s\"", where,
		    key);
		return NULL;
	}
	if (yamlutil_get_string(hp->d, hp->file, v, &s) == -1)
		return NULL;
	if (s[0] == '\0') {
		yamlutil_error(hp->d, hp->file, v, "%s must not be empty", key);
		return NULL;
	}
	return s;
}

static void
key_listen(struct http_parse *hp, yaml_node_t *v)
{
	struct config_http	*h = &hp->cfg->http;
	size_t			 i, n;

	if (!yamlutil_is_null(v) && v->type != YAML_SEQUENCE_NODE) {
		yamlutil_error(hp->d, hp->file, v, "expected a list, found %s",
		    yamlutil_kind(v));
		return;
	}
	n = yamlutil_is_null(v) ? 0 : (size_t)(v->data.sequence.items.top -
	    v->data.sequence.items.start);
	if (n > 0 && (h->listen = calloc(n, sizeof(*h->listen))) == NULL) {
		hp_oom(hp, v);
		return;
	}
	for (i = 0; i < n; i++) {
		yaml_node_t		*item = hp_node(hp,
					    v->data.sequence.items.start[i]);
		struct config_listen	*l = &h->listen[h->nlisten];
		const char		*s, *why;
		size_t			 j;

		if (yamlutil_get_string(hp->d, hp->file, item, &s) == -1)
			continue;
		if (netaddr_parse(s, HTTP_DEFAULT_PORT, &l->addr, &why) == -1) {
			yamlutil_error(hp->d, hp->file, item,
			    "bad address \"%s\": %s", s, why);
			continue;
		}
		for (j = 0; j < h->nlisten; j++)
			if (netaddr_equal((struct sockaddr *)&l->addr.ss,
			    (struct sockaddr *)&h->listen[j].addr.ss))
				break;
		if (j < h->nlisten) {
			yamlutil_error(hp->d, hp->file, item,
			    "duplicate listen address \"%s\"", s);
			continue;
		}
		snprintf(l->text, sizeof(l->text), "%s", s);
		h->nlisten++;
	}
}

static char *
hp_path(struct http_parse *hp, const char *s, yaml_node_t *v)
{
	char	*out;

	if (s[0] == '/')
		out = strdup(s);
	else if (asprintf(&out, "%s/%s", hp->cfg->dir, s) == -1)
		out = NULL;
	if (out == NULL)
		hp_oom(hp, v);
	return out;
}

static void
key_tls(struct http_parse *hp, yaml_node_t *v)
{
	static const char *const keys[] = { "cert", "key", NULL };
	struct config_http	*h = &hp->cfg->http;
	const char		*cert, *key;

	if (yamlutil_is_null(v))
		return;
	if (v->type != YAML_MAPPING_NODE) {
		yamlutil_error(hp->d, hp->file, v,
		    "expected a mapping with cert and key, found %s",
		    yamlutil_kind(v));
		return;
	}
	if (!hp_known_keys(hp, v, "http.tls", keys))
		return;
	cert = hp_string(hp, v, "cert", "http.tls");
	key = hp_string(hp, v, "key", "http.tls");
	if (cert == NULL || key == NULL)
		return;
	h->tls_cert = hp_path(hp, cert, v);
	h->tls_key = hp_path(hp, key, v);
}

static enum http_role
hp_role(struct http_parse *hp, yaml_node_t *map, const char *where)
{
	const char	*s = hp_string(hp, map, "role", where);

	if (s == NULL)
		return HTTP_ROLE_NONE;
	for (size_t i = 1; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strcmp(s, role_names[i]) == 0)
			return (enum http_role)i;
	yamlutil_error(hp->d, hp->file, hp_get(hp, map, "role"),
	    "unknown role \"%s\": expected admin, security, hr or metrics", s);
	return HTTP_ROLE_NONE;
}

/* Names are shown in the audit trail and compared byte for byte. */
static bool
hp_name_ok(struct http_parse *hp, yaml_node_t *map, const char *name)
{
	size_t	 len = strlen(name);

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (!isalnum(*p) && strchr("._@-", *p) == NULL)
			len = 0;
	if (len == 0 || len > HTTP_NAME_MAX) {
		yamlutil_error(hp->d, hp->file, hp_get(hp, map, "name"),
		    "bad name \"%s\": use 1 to %d letters, digits, '.', '_',"
		    " '@' or '-'", name, HTTP_NAME_MAX);
		return false;
	}
	for (size_t i = 0; i < hp->cfg->http.nusers; i++)
		if (strcmp(hp->cfg->http.users[i].name, name) == 0)
			goto dup;
	for (size_t i = 0; i < hp->cfg->http.ntokens; i++)
		if (strcmp(hp->cfg->http.tokens[i].name, name) == 0)
			goto dup;
	return true;
dup:
	yamlutil_error(hp->d, hp->file, hp_get(hp, map, "name"),
	    "name \"%s\" is used twice in http", name);
	return false;
}

/* A crypt(3) hash that this libxcrypt can check. */
static bool
hp_hash_ok(struct http_parse *hp, yaml_node_t *map, const char *hash)
{
	int	ok = hash[0] == '$' ? crypt_checksalt(hash) : CRYPT_SALT_INVALID;

	if (ok == CRYPT_SALT_OK || ok == CRYPT_SALT_METHOD_LEGACY)
		return true;
	yaml_node_t *at = hp_get(hp, map, "password");

	yamlutil_error(hp->d, hp->file, at ? at : hp_get(hp, map,
	    "password_file"), "password is not a crypt(3) hash this system can check%s: make"
	    " one with \"dnswarden passwd\"",
	    ok == CRYPT_SALT_METHOD_DISABLED ? " (method disabled)" : "");
	return false;
}

/*
 * The hash in the file of password_file (its first line), into buf. A
 * missing file is no error: the user cannot log in until it exists
 * (scripts/run.sh writes it on the first start; the console says so
 * when it starts). *missing is set then and NULL returned.
 */
static const char *
hp_hash_file(struct http_parse *hp, yaml_node_t *item, char *buf,
    size_t len, bool *missing)
{
	yaml_node_t	*v = hp_get(hp, item, "password_file");
	const char	*s;
	char		*path;
	FILE		*f;

	*missing = false;
	if (yamlutil_get_string(hp->d, hp->file, v, &s) == -1 ||
	    (path = hp_path(hp, s, v)) == NULL)
		return NULL;
	if ((f = fopen(path, "r")) == NULL && errno == ENOENT) {
		*missing = true;
		free(path);
		return NULL;
	}
	if (f == NULL || fgets(buf, (int)len, f) == NULL) {
		yamlutil_error(hp->d, hp->file, v, "cannot read %s: %s", path,
		    f ? "empty file" : strerror(errno));
		if (f != NULL)
			fclose(f);
		free(path);
		return NULL;
	}
	fclose(f);
	free(path);
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

static void
hp_user_add(struct http_parse *hp, yaml_node_t *item)
{
	static const char *const keys[] = { "name", "role", "password",
	    "password_file", NULL };
	struct config_http	*h = &hp->cfg->http;
	struct config_http_user	*u;
	const char		*name, *hash;
	enum http_role		 role;
	char			 buf[512];
	bool			 missing = false;

	if (!hp_known_keys(hp, item, "http.users entry", keys))
		return;
	name = hp_string(hp, item, "name", "http.users entry");
	role = hp_role(hp, item, "http.users entry");
	if ((hp_get(hp, item, "password") != NULL) ==
	    (hp_get(hp, item, "password_file") != NULL)) {
		yamlutil_error(hp->d, hp->file, item, "http.users entry needs"
		    " one of \"password\" and \"password_file\"");
		return;
	}
	if (name == NULL || role == HTTP_ROLE_NONE ||
	    !hp_name_ok(hp, item, name))
		return;
	if (hp_get(hp, item, "password") != NULL)
		hash = hp_string(hp, item, "password", "http.users entry");
	else
		hash = hp_hash_file(hp, item, buf, sizeof(buf), &missing);
	if ((hash == NULL && !missing) ||
	    (hash != NULL && !hp_hash_ok(hp, item, hash)))
		return;
	if ((u = reallocarray(h->users, h->nusers + 1, sizeof(*u))) == NULL) {
		hp_oom(hp, item);
		return;
	}
	h->users = u;
	u += h->nusers;
	u->name = strdup(name);
	u->password = hash != NULL ? strdup(hash) : NULL;
	u->role = role;
	if (u->name == NULL || (hash != NULL && u->password == NULL)) {
		free(u->name);
		free(u->password);
		hp_oom(hp, item);
		return;
	}
	h->nusers++;
}

static int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool
hp_sha256(struct http_parse *hp, yaml_node_t *map, const char *hex,
    uint8_t out[CONFIG_SHA256_LEN])
{
	if (strlen(hex) == 2 * CONFIG_SHA256_LEN) {
		size_t i;

		for (i = 0; i < CONFIG_SHA256_LEN; i++) {
			int hi = hex_digit(hex[2 * i]);
			int lo = hex_digit(hex[2 * i + 1]);

			if (hi < 0 || lo < 0)
				break;
			out[i] = (uint8_t)(hi << 4 | lo);
		}
		if (i == CONFIG_SHA256_LEN)
			return true;
	}
	yamlutil_error(hp->d, hp->file, hp_get(hp, map, "sha256"),
	    "sha256 must be 64 hex digits: make a token with"
	    " \"dnswarden token\"");
	return false;
}

static void
hp_token_add(struct http_parse *hp, yaml_node_t *item)
{
	static const char *const keys[] = { "name", "role", "sha256", NULL };
	struct config_http		*h = &hp->cfg->http;
	struct config_http_token	*t, tok = { 0 };
	const char			*name, *hex;

	if (!hp_known_keys(hp, item, "http.tokens entry", keys))
		return;
	name = hp_string(hp, item, "name", "http.tokens entry");
	tok.role = hp_role(hp, item, "http.tokens entry");
	hex = hp_string(hp, item, "sha256", "http.tokens entry");
	if (name == NULL || tok.role == HTTP_ROLE_NONE || hex == NULL ||
	    !hp_name_ok(hp, item, name) || !hp_sha256(hp, item, hex, tok.sha256))
		return;
	if ((t = reallocarray(h->tokens, h->ntokens + 1, sizeof(*t))) == NULL ||
	    (tok.name = strdup(name)) == NULL) {
		if (t != NULL)
			h->tokens = t;
		hp_oom(hp, item);
		return;
	}
	h->tokens = t;
	t[h->ntokens++] = tok;
}

/* users: and tokens:, lists of mappings. */
static void
key_entries(struct http_parse *hp, yaml_node_t *v, bool users)
{
	if (yamlutil_is_null(v))
		return;
	if (v->type != YAML_SEQUENCE_NODE) {
		yamlutil_error(hp->d, hp->file, v, "expected a list, found %s",
		    yamlutil_kind(v));
		return;
	}
	for (yaml_node_item_t *i = v->data.sequence.items.start;
	    i < v->data.sequence.items.top; i++) {
		yaml_node_t *item = hp_node(hp, *i);

		if (item->type != YAML_MAPPING_NODE) {
			yamlutil_error(hp->d, hp->file, item,
			    "expected a mapping with name, role and %s, found"
			    " %s", users ? "password" : "sha256",
			    yamlutil_kind(item));
			continue;
		}
		if (users)
			hp_user_add(hp, item);
		else
			hp_token_add(hp, item);
	}
}

static void
key_session(struct http_parse *hp, yaml_node_t *v)
{
	unsigned long long	val;

	if (yamlutil_get_uint(hp->d, hp->file, v, 1, 10080, &val) == 0)
		hp->cfg->http.session_minutes = (unsigned)val;
}

static void
key_nice(struct http_parse *hp, yaml_node_t *v)
{
	unsigned long long	val;

	if (yamlutil_get_uint(hp->d, hp->file, v, 0, 19, &val) == 0)
		hp->cfg->http.nice = (unsigned)val;
}

void
config_http_parse(struct config *cfg, yaml_document_t *doc, yaml_node_t *v,
    const char *file, struct diag *d)
{
	static const char *const keys[] = { "listen", "tls", "session_minutes",
	    "users", "tokens", "cpus", "nice", NULL };
	struct http_parse	 hp = { cfg, doc, file, d };
	yaml_node_t		*n;

	if (yamlutil_is_null(v))
		return;
	if (v->type != YAML_MAPPING_NODE) {
		yamlutil_error(d, file, v, "expected a mapping, found %s",
		    yamlutil_kind(v));
		return;
	}
	config_http_free(cfg);
	cfg->http.session_minutes = 480;
	cfg->http.nice = CONFIG_HTTP_NICE_DEFAULT;
	hp_known_keys(&hp, v, "http", keys);
	if ((n = hp_get(&hp, v, "listen")) != NULL)
		key_listen(&hp, n);
	if ((n = hp_get(&hp, v, "tls")) != NULL)
		key_tls(&hp, n);
	if ((n = hp_get(&hp, v, "session_minutes")) != NULL)
		key_session(&hp, n);
	if ((n = hp_get(&hp, v, "users")) != NULL)
		key_entries(&hp, n, true);
	if ((n = hp_get(&hp, v, "tokens")) != NULL)
		key_entries(&hp, n, false);
	if ((n = hp_get(&hp, v, "cpus")) != NULL)
		config_cpus_parse(&cfg->http.cpus, doc, n, file, "http.cpus",
		    d);
	if ((n = hp_get(&hp, v, "nice")) != NULL)
		key_nice(&hp, n);
	if (cfg->http.nlisten > 0 && cfg->http.nusers == 0 &&
	    cfg->http.ntokens == 0)
		yamlutil_warn(d, file, v, "http has no users and no tokens:"
		    " nobody can log in to the console");
}

void
config_http_free(struct config *cfg)
{
	struct config_http	*h = &cfg->http;

	for (size_t i = 0; i < h->nusers; i++) {
		free(h->users[i].name);
		if (h->users[i].password != NULL)
			explicit_bzero(h->users[i].password,
			    strlen(h->users[i].password));
		free(h->users[i].password);
	}
	for (size_t i = 0; i < h->ntokens; i++)
		free(h->tokens[i].name);
	free(h->users);
	free(h->tokens);
	free(h->listen);
	free(h->tls_cert);
	free(h->tls_key);
	config_cpus_free(&h->cpus);
	memset(h, 0, sizeof(*h));
}
