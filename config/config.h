/*
 * config: the dnswarden.yaml configuration, parsed with libyaml into an
 * immutable struct. A reload builds a new struct beside the old one and the
 * caller swaps pointers when it loaded without error.
 */
#ifndef DNSWARDEN_CONFIG_H
#define DNSWARDEN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "netaddr.h"

#include "build_config.h"

/* meson's <prefix>/<sysconfdir>/dnswarden: /etc/dnswarden with --sysconfdir=/etc. */
#define CONFIG_DEFAULT_PATH	DNSWARDEN_SYSCONFDIR "/dnswarden.yaml"
#define CONFIG_CONTROL_SOCKET	"/run/dnswarden/control.sock"
/* server.user by default; nobody (with a warning) if it does not exist. */
#define CONFIG_USER_DEFAULT	"dnswarden"
/* The most upstream queries one UDP socket (one source port) may carry. */
#define UPSTREAM_SOCKET_QUERIES_MAX	64

enum client_identity {
	CLIENT_IDENTITY_ADDRESS,	/* log the client address as text */
	CLIENT_IDENTITY_NAME,		/* log the clients: name, else the address */
	CLIENT_IDENTITY_PSEUDONYM,	/* log a keyed hash of the address */
};

struct config_listen {
	struct netaddr	addr;
	char		text[64];	/* as written, for messages */
};

/* The longest tls_name: a host name (253) or an address. */
#define CONFIG_TLS_NAME_MAX	253

struct config_upstream {
	struct netaddr	addr;
	char		text[64];	/* "127.0.0.1:53", for messages and logs */
	/* DNS over TLS (RFC 7858) when not empty: the name the server's
	 * certificate must carry. */
	char		tls_name[CONFIG_TLS_NAME_MAX + 1];
};

struct config_client {
	struct cidr	net;
	char	       *name;
};

/* A category a policy applies, as written (checked against the blocklist
 * when it loads). */
struct config_policy_category {
	char		*name;
	unsigned	 line, col;
};

/* policies: the categories that apply to some clients. */
struct config_policy {
	char				*name;
	struct cidr			*nets;	/* networks, clients: names resolved */
	size_t				 nnets;
	struct config_policy_category	*categories;
	size_t				 ncategories;
};

/* CPUs to run on (server.cpus, http.cpus); n 0: wherever the kernel
 * puts them. */
struct config_cpus {
	unsigned	*cpu;
	size_t		 n;
};

/* Who may read what in the web console (http:); see http/http.h. */
enum http_role {
	HTTP_ROLE_NONE,
	HTTP_ROLE_ADMIN,
	HTTP_ROLE_SECURITY,
	HTTP_ROLE_HR,
	HTTP_ROLE_METRICS,
};

#define CONFIG_SHA256_LEN	32

struct config_http_user {
	char		*name;
	enum http_role	 role;
	char		*password;	/* crypt(3) hash; NULL: password_file
					   missing, no login yet */
};

struct config_http_token {
	char		*name;
	enum http_role	 role;
	uint8_t		 sha256[CONFIG_SHA256_LEN];	/* of the token */
};

/* http: the web console; nlisten 0 means no web server at all. */
struct config_http {
	struct config_listen		*listen;
	size_t				 nlisten;
	char				*tls_cert;	/* absolute; NULL: no TLS */
	char				*tls_key;
	unsigned			 session_minutes;
	struct config_http_user		*users;
	size_t				 nusers;
	struct config_http_token	*tokens;
	size_t				 ntokens;
	struct config_cpus		 cpus;	/* console and audit threads */
	bool				 cpus_rest; /* cpus not given: the
						   ones server.cpus left */
	unsigned			 nice;	/* their nice, above the loops' */
};

/* http.nice by default: the console yields to the DNS loops. */
#define CONFIG_HTTP_NICE_DEFAULT	10

/* Longest log.central.instance. */
#define CONFIG_INSTANCE_MAX	64

struct config {
	char	*path;			/* the file loaded, as given */
	char	*dir;			/* its directory, for relative paths */

	struct {
		struct config_listen	*listen;
		size_t			 nlisten;
		struct cidr		*allow;		/* allow_clients */
		size_t			 nallow;
		char			*user;		/* drop to this user when root */
		unsigned		 threads;	/* event loops, >= 1 */
		unsigned		 rate_limit_qps;	/* 0: off */
		unsigned		 rate_limit_burst;
		unsigned		 tcp_max_connections;
		unsigned		 tcp_idle_timeout_ms;
		unsigned		 tcp_max_connections_per_client;
		unsigned		 tcp_write_timeout_ms;	/* answers unread */
		unsigned		 tcp_max_lifetime_ms;	/* any connection */
		unsigned		 max_outstanding;	/* upstream queries in flight */
		unsigned		 max_waiters;	/* clients per merged question */
		char			*control_socket; /* absolute; NULL: none */
		struct config_cpus	 cpus;	/* every thread but the
						   console's if http.cpus */
	} server;

	struct config_upstream	*upstreams;
	size_t			 nupstreams;
	unsigned		 upstream_timeout_ms;	/* per try */
	unsigned		 upstream_queries_per_socket;	/* UDP */
	char			*tls_ca_file;	/* NULL: the system store */
	unsigned		 tls_max_connections;	/* per TLS upstream */
	unsigned		 tls_idle_timeout_ms;

	struct {
		unsigned	max_entries;
		size_t		max_bytes;	/* memory bound for stored answers */
		uint32_t	max_ttl;	/* seconds */
		uint32_t	max_negative_ttl; /* seconds, RFC 2308 cap */
	} cache;

	struct {
		char		**files;	/* absolute paths */
		size_t		  nfiles;
		bool		  dns_bypass;	/* built-in dns-bypass category */
		uint32_t	  blocked_ttl;	/* SOA TTL of the blocked answer */
		char		 *cache_dir;	/* downloaded lists; absolute */
		unsigned	  download_timeout_ms;	/* one url: download */
	} blocklist;

	struct {
		char			*database;	/* absolute path; NULL: no log */
		unsigned		 retention_days;	/* 0: keep forever */
		bool			 all_queries;
		enum client_identity	 client_identity;
		char			*pseudonym_key;	/* secret for pseudonyms */
		char			*pseudonym_key_file; /* where it was read */
		unsigned		 queue_size;	/* rows waiting for the writer */
		bool			 required;	/* refuse to serve without it */
		/* log.central: ship every attempt to PostgreSQL (central/). */
		char			*central_conninfo; /* libpq string;
							      NULL: off */
		char			*central_instance; /* default: host
							      name */
		char			*central_read_conninfo; /* the console
					   reads with it; NULL: conninfo's */
	} log;

	struct config_client	*clients;
	size_t			 nclients;

	struct config_policy	*policies;	/* first match wins */
	size_t			 npolicies;
	struct config_http	 http;
};

/*
 * Load and validate the configuration at path. Errors and warnings go to d
 * as "file:line:column: message". Returns a new config (free with
 * config_free()), or NULL when there was any error.
 */
struct config	*config_load(const char *path, struct diag *d);

/*
 * config_load() for the commands that only read the attempt log or talk
 * to the daemon (report, log, ctl): a configuration holding only log: and
 * clients: (or server.control_socket) is enough, with no upstreams, and a
 * log.pseudonym_key_file it cannot read is no error (log.pseudonym_key
 * stays NULL then).
 */
struct config	*config_load_reader(const char *path, struct diag *d);

/*
 * config_load() reading "system" upstreams from resolv_conf instead of
 * /etc/resolv.conf (for tests; NULL means the default).
 */
struct config	*config_load_resolv(const char *path, const char *resolv_conf,
		    struct diag *d);

/* A configuration with every default and no file behind it (for tests). */
struct config	*config_default(void);

/* Release cfg and everything it owns; NULL is fine. */
void		 config_free(struct config *cfg);

/*
 * The name given to addr by the clients: section (first match in file
 * order), or NULL. The string is owned by cfg.
 */
const char	*config_client_name(const struct config *cfg,
		    const struct sockaddr *addr);

/* True if a and b name the same CPUs in the same order. */
bool		 config_cpus_equal(const struct config_cpus *a,
		    const struct config_cpus *b);

/* True if addr matches server.allow_clients. */
bool		 config_client_allowed(const struct config *cfg,
		    const struct sockaddr *addr);

#endif
