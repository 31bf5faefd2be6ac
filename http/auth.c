/*
 * auth: who is asking. People log in with a password checked by crypt(3)
 * and get a session cookie and a CSRF token; programs send a bearer token
 * whose SHA-256 is in the configuration. Secrets are compared in constant
 * time, an unknown user costs as much as a wrong password, and an address
 * that keeps failing is locked out for a while (429).
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "http_internal.h"

#define SESSION_COOKIE	"dw_session"

/* Checked when the user is unknown, so that the answer takes as long. */
static const char dummy_hash[] =
    "$y$j9T$NR2HxGZQknT9VmpNvPjhk1$73jxVzvbmexe8qV7Awy5F0M2kpqRF/TKR.qVBlWaxJB";

static const char *const role_names[] = {
	[HTTP_ROLE_NONE] = "", [HTTP_ROLE_ADMIN] = "admin",
	[HTTP_ROLE_SECURITY] = "security", [HTTP_ROLE_HR] = "hr",
	[HTTP_ROLE_METRICS] = "metrics",
};

const char *
http_role_name(enum http_role role)
{
	return (unsigned)role < sizeof(role_names) / sizeof(role_names[0]) ?
	    role_names[role] : "";
}

int
http_random_hex(char *out, size_t n)
{
	unsigned char	buf[64];

	if (n > sizeof(buf) || RAND_bytes(buf, (int)n) != 1)
		return -1;
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", buf[i]);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* ---- lock-out ---- */

static struct http_lock *
lock_find(struct http_auth *a, const char *addr, bool create, int64_t now_ms)
{
	struct http_lock	*oldest = &a->locks[0];

	for (size_t i = 0; i < HTTP_LOCKS_MAX; i++) {
		struct http_lock *l = &a->locks[i];

		if (strcmp(l->addr, addr) == 0 && l->addr[0] != '\0')
			return l;
		if (l->last_ms < oldest->last_ms)
			oldest = l;
	}
	if (!create)
		return NULL;
	/* Full: forget the address that failed longest ago. */
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->addr, sizeof(oldest->addr), "%s", addr);
	oldest->last_ms = now_ms;
	return oldest;
}

bool
http_lock_allows(struct http_auth *a, const char *addr, int64_t now_ms)
{
	struct http_lock *l = lock_find(a, addr, false, now_ms);

	return l == NULL || now_ms >= l->until_ms;
}

void
http_lock_failed(struct http_auth *a, const char *addr, int64_t now_ms)
{
	struct http_lock	*l = lock_find(a, addr, true, now_ms);
	int64_t			 wait = HTTP_LOCK_BASE_MS;

	if (now_ms - l->last_ms > HTTP_LOCK_FORGET_MS)
		l->failures = 0;
	l->failures++;
	l->last_ms = now_ms;
	if (l->failures < HTTP_LOCK_AFTER)
		return;
	for (unsigned i = HTTP_LOCK_AFTER; i < l->failures &&
	    wait < HTTP_LOCK_MAX_MS; i++)
		wait *= 2;
	l->until_ms = now_ms + (wait < HTTP_LOCK_MAX_MS ? wait :
	    HTTP_LOCK_MAX_MS);
}

void
http_lock_reset(struct http_auth *a, const char *addr)
{
	struct http_lock *l = lock_find(a, addr, false, 0);

	if (l != NULL)
		memset(l, 0, sizeof(*l));
}

/* ---- sessions ---- */

struct http_session *
http_session_new(struct http_auth *a, const char *user, enum http_role role,
    int64_t now_ms, unsigned minutes)
{
	struct http_session	*s = NULL;

	for (size_t i = 0; i < HTTP_SESSIONS_MAX; i++) {
		struct http_session *t = &a->sessions[i];

		if (t->id[0] == '\0' || t->expires_ms <= now_ms) {
			s = t;
			break;
		}
	}
	if (s == NULL)
		return NULL;
	memset(s, 0, sizeof(*s));
	if (http_random_hex(s->id, HTTP_HEX_ID / 2) == -1 ||
	    http_random_hex(s->csrf, HTTP_HEX_ID / 2) == -1) {
		memset(s, 0, sizeof(*s));
		return NULL;
	}
	snprintf(s->user, sizeof(s->user), "%s", user);
	s->role = role;
	s->expires_ms = now_ms + (int64_t)minutes * 60000;
	return s;
}

struct http_session *
http_session_find(struct http_auth *a, const char *id, int64_t now_ms)
{
	struct http_session	*found = NULL;

	if (strlen(id) != HTTP_HEX_ID)
		return NULL;
	/* Every slot is compared, so the time says nothing of the id. */
	for (size_t i = 0; i < HTTP_SESSIONS_MAX; i++) {
		struct http_session *s = &a->sessions[i];

		if (CRYPTO_memcmp(s->id, id, HTTP_HEX_ID) == 0 &&
		    s->id[0] != '\0' && s->expires_ms > now_ms)
			found = s;
	}
	return found;
}

/* ---- identifying a request ---- */

bool
http_cookie_get(const char *header, const char *name, char *out, size_t len)
{
	size_t	nlen = strlen(name);

	while (header != NULL && *header != '\0') {
		header += strspn(header, " \t;");
		size_t	vlen, plen = strcspn(header, ";");

		if (plen > nlen && strncmp(header, name, nlen) == 0 &&
		    header[nlen] == '=') {
			vlen = plen - nlen - 1;
			if (vlen >= len)
				return false;
			memcpy(out, header + nlen + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		header += plen;
	}
	return false;
}

static void
auth_token(struct http_req *r, const char *token)
{
	const struct config	*cfg = r->h->cfg;
	unsigned char		 md[EVP_MAX_MD_SIZE];
	unsigned int		 mdlen = 0;

	if (EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) !=
	    1 || mdlen != CONFIG_SHA256_LEN)
		return;
	for (size_t i = 0; i < cfg->http.ntokens; i++)
		if (CRYPTO_memcmp(md, cfg->http.tokens[i].sha256,
		    CONFIG_SHA256_LEN) == 0) {
			r->user = cfg->http.tokens[i].name;
			r->role = cfg->http.tokens[i].role;
		}
}

void
http_auth_identify(struct http_req *r)
{
	struct evkeyvalq	*hd = evhttp_request_get_input_headers(r->req);
	const char		*authz = evhttp_find_header(hd, "Authorization");
	char			 id[HTTP_HEX_ID + 2];

	r->role = HTTP_ROLE_NONE;
	if (authz != NULL && strncasecmp(authz, "Bearer ", 7) == 0) {
		auth_token(r, authz + 7);
		return;
	}
	if (!http_cookie_get(evhttp_find_header(hd, "Cookie"), SESSION_COOKIE, id,
	    sizeof(id)))
		return;
	if ((r->session = http_session_find(&r->h->auth, id, r->now_ms)) ==
	    NULL)
		return;
	r->user = r->session->user;
	r->role = r->session->role;
}

bool
http_auth_csrf_ok(struct http_req *r)
{
	const char *t = evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), "X-CSRF-Token");

	return t != NULL && r->session != NULL && strlen(t) == HTTP_HEX_ID &&
	    CRYPTO_memcmp(t, r->session->csrf, HTTP_HEX_ID) == 0;
}

/* ---- login and logout ---- */

/* The user of name, or NULL. Names are not secret; hashes are. */
static const struct config_http_user *
user_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->http.nusers; i++)
		if (strcmp(cfg->http.users[i].name, name) == 0)
			return &cfg->http.users[i];
	return NULL;
}

static bool
password_ok(const char *hash, const char *password)
{
	struct crypt_data	*cd = calloc(1, sizeof(*cd));
	const char		*out;
	bool			 ok;

	if (cd == NULL)
		return false;
	out = crypt_rn(password, hash, cd, sizeof(*cd));
	ok = out != NULL && out[0] != '*' && strlen(out) == strlen(hash) &&
	    CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

int
http_login_parse(const char *buf, size_t len, char *user, size_t ulen,
    char *pw, size_t pwlen)
{
	json_t	*j, *u, *p;
	int	 rc = -1;

	if (len == 0 || len > HTTP_MAX_BODY)
		return -1;
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	if (j == NULL)
		return -1;
	u = json_object_get(j, "user");
	p = json_object_get(j, "password");
	if (json_is_string(u) && json_is_string(p) &&
	    json_string_length(u) < ulen && json_string_length(p) < pwlen &&
	    strlen(json_string_value(u)) == json_string_length(u) &&
	    strlen(json_string_value(p)) == json_string_length(p)) {
		snprintf(user, ulen, "%s", json_string_value(u));
		snprintf(pw, pwlen, "%s", json_string_value(p));
		rc = 0;
	}
	json_decref(j);
	return rc;
}

/* {"user": "...", "password": "..."} from the body; 0 or -1. */
static int
login_body(struct http_req *r, char *user, size_t ulen, char *pw,
    size_t pwlen)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(r->req);
	size_t		 len = evbuffer_get_length(in);

	if (len == 0 || len > HTTP_MAX_BODY)
		return -1;
	return http_login_parse((const char *)evbuffer_pullup(in, -1), len,
	    user, ulen, pw, pwlen);
}

static void
login_reply(struct http_req *r, const struct http_session *s)
{
	char	cookie[256];
	json_t	*j;
	char	*text;

	snprintf(cookie, sizeof(cookie), SESSION_COOKIE "=%s; HttpOnly; "
	    "SameSite=Strict; Path=/; Max-Age=%u%s", s->id,
	    r->h->cfg->http.session_minutes * 60, r->h->tls ? "; Secure" : "");
	http_header(r, "Set-Cookie", cookie);
	j = json_pack("{s:s, s:s, s:s}", "user", s->user, "role",
	    http_role_name(s->role), "csrf", s->csrf);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (text != NULL)
		http_reply_json(r, 200, text);
	else
		http_reply_error(r, 500, "out of memory");
	free(text);
	json_decref(j);
}

void
http_api_login(struct http_req *r)
{
	const struct config_http_user	*u;
	struct http_session		*s;
	char				 user[128], pw[1024];
	bool				 ok;

	if (!http_lock_allows(&r->h->auth, r->remote, r->now_ms)) {
		http_header(r, "Retry-After", "60");
		http_reply_error(r, 429, "too many failed logins from this"
		    " address; try again later");
		return;
	}
	if (login_body(r, user, sizeof(user), pw, sizeof(pw)) == -1) {
		http_reply_error(r, 400, "expected {\\\"user\\\": ...,"
		    " \\\"password\\\": ...}");
		return;
	}
	u = user_find(r->h->cfg, user);
	ok = password_ok(u && u->password ? u->password : dummy_hash, pw) &&
	    u != NULL && u->password != NULL;
	explicit_bzero(pw, sizeof(pw));
	if (!ok) {
		http_lock_failed(&r->h->auth, r->remote, r->now_ms);
		http_audit_as(r, http_text_ok(user, strlen(user)) ? user : "?",
		    u ? u->role : HTTP_ROLE_NONE, "login failed", "");
		http_reply_error(r, 401, "wrong user name or password");
		return;
	}
	http_lock_reset(&r->h->auth, r->remote);
	s = http_session_new(&r->h->auth, u->name, u->role, r->now_ms,
	    r->h->cfg->http.session_minutes);
	if (s == NULL) {
		http_reply_error(r, 503, "too many sessions open");
		return;
	}
	r->user = s->user;
	r->role = s->role;
	http_audit(r, "login", "");
	login_reply(r, s);
}

void
http_api_logout(struct http_req *r)
{
	if (r->session == NULL) {
		http_reply_error(r, 400, "a token has no session to end");
		return;
	}
	http_audit(r, "logout", "");
	http_header(r, "Set-Cookie", SESSION_COOKIE "=; HttpOnly; "
	    "SameSite=Strict; Path=/; Max-Age=0");
	memset(r->session, 0, sizeof(*r->session));
	r->session = NULL;
	http_reply_json(r, 200, "{\"ok\": true}");
}
