/* frontend: see frontend.h. */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "cache.h"
#include "cookie.h"
#include "dnsmsg.h"
#include "frontend.h"
#include "log.h"
#include "clock.h"
#include "ratelimit.h"
#include "udpio.h"
#include "upstream.h"

#define UDP_ROUNDS		4	/* recvmmsg batches per wakeup */
#define TCP_OUT_HIGH		(256 * 1024)	/* stop reading above this */
#define UDP_RCVBUF		(4 * 1024 * 1024)	/* bursts of queries */
#define TCP_BACKLOG		1024	/* bursts of connects are not retried */
#define TCP_MAX_PENDING		64	/* queries one connection may have open */
#define REQUESTS_PER_OUTSTANDING 4	/* waiting clients per upstream query */
#define POLICY_SLOTS		256	/* clients whose policy is kept */
#define DEBUG_LINES_PER_S	50	/* -v: query lines per second and thread */

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

struct tcp_conn;

/* Where an answer goes. */
struct client {
	enum transport		 transport;
	int			 fd;		/* UDP socket */
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;
	struct udpio_dst	 dst;		/* UDP: answer from here */
	struct tcp_conn		*conn;		/* TCP connection */
	int			 policy;	/* blocklist_policy_of() peer */
	bool			 verified;	/* peer proven: TCP, or a valid
						   server cookie */
};

/* A query waiting for the upstream; freed only by request_free(). */
struct request {
	struct upstream_waiter	 w;
	struct frontend		*fe;
	TAILQ_ENTRY(request)	 conn_entry;
	struct client		 cl;
	struct dns_query	 q;
	uint8_t			 qname[DNS_MAX_NAME];	/* client's spelling */
	uint64_t		 start_us;
};
TAILQ_HEAD(requests, request);

struct tcp_conn {
	TAILQ_ENTRY(tcp_conn)	 entry;
	struct frontend		*fe;
	struct bufferevent	*bev;
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;
	struct requests		 reqs;
	unsigned		 npending;	/* reqs waiting upstream */
	uint64_t		 partial_since_ms; /* a message began; 0: none */
	bool			 eof;	/* client finished sending */
	uint32_t		 rl_slot;	/* counted in fe->rl */
	struct event		*life_ev;	/* tcp_max_lifetime_ms */
};

struct listener {
	struct frontend		*fe;
	struct config_listen	 addr;
	bool			 wildcard;	/* bound to 0.0.0.0 or :: */
	int			 udp_fd;
	struct event		*udp_ev;
	struct evconnlistener	*tcp;
	struct event		*resume_ev;	/* accepts paused on EMFILE */
};

/* The policy of one client address, valid while gen is fe->bl_gen. */
struct policy_slot {
	uint8_t		 addr[16];
	uint32_t	 gen;		/* 0: empty */
	sa_family_t	 family;
	int16_t		 policy;
};

struct frontend {
	struct event_base	*base;
	const struct config	*cfg;
	const struct blocklist	*bl;
	struct attemptlog	*attempts;	/* the attempt log, or NULL */
	struct counters		*ctr;
	struct cache		*cache;
	struct upstream		*up;
	struct ratelimit	*rl;
	struct listener		*listeners;
	size_t			 nlisteners;
	TAILQ_HEAD(, tcp_conn)	 conns;
	unsigned		 nconns;
	size_t			 nrequests;	/* clients waiting upstream */
	uint32_t		 bl_gen;	/* bumped when bl changes; never 0 */
	bool			 udp_batching;	/* answers go to io's queue */
	struct event		*flush_ev;	/* sends what upstream answers
						   queued, once per loop pass */
	bool			 flush_active;
	struct udpio		*io;
	struct cookie		*cookie;	/* DNS Cookies */
	struct policy_slot	 policies[POLICY_SLOTS];
	bool			 verbose;	/* -v: a line per query */
	struct log_ratelimit	 debug_rl;	/* ... at most this many */
	uint8_t			 in[DNS_MAX_MSG];
	uint8_t			 tmp[DNS_MAX_MSG];
	uint8_t			 out[DNS_MAX_MSG + 512];
};

static void	tcp_conn_free(struct tcp_conn *);
static void	udp_flush_cb(evutil_socket_t, short, void *);
static void	upstream_done_cb(void *, const struct cache_key *, uint8_t *,
		    size_t, struct dns_reply *, const char *,
		    enum upstream_fail, struct upstream_waiters *);

static struct cache_limits
cache_limits_of(const struct config *cfg)
{
	struct cache_limits lim = {
		.max_entries = cfg->cache.max_entries,
		.max_bytes = cfg->cache.max_bytes,
		.max_ttl = cfg->cache.max_ttl,
		.max_negative_ttl = cfg->cache.max_negative_ttl,
	};
	return lim;
}

struct frontend *
frontend_new(struct event_base *base, const struct config *cfg,
    const struct blocklist *bl, struct ratelimit *rl,
    struct attemptlog *attempts, struct counters *ctr)
{
	struct frontend *fe = calloc(1, sizeof(*fe));
	struct cache_limits lim = cache_limits_of(cfg);
	uint64_t seed;

	if (fe == NULL)
		return NULL;
	fe->base = base;
	fe->cfg = cfg;
	fe->bl = bl;
	fe->bl_gen = 1;
	fe->attempts = attempts;
	fe->ctr = ctr;
	fe->verbose = log_verbose();
	fe->debug_rl.per_s = DEBUG_LINES_PER_S;
	TAILQ_INIT(&fe->conns);
	arc4random_buf(&seed, sizeof(seed));
	fe->io = calloc(1, sizeof(*fe->io));
	fe->flush_ev = event_new(base, -1, 0, udp_flush_cb, fe);
	fe->cache = cache_new(&lim, seed);
	fe->up = upstream_new(base, cfg, ctr, upstream_done_cb, fe);
	fe->rl = rl;
	/* A secret of its own until frontend_set_cookie_secret(). */
	uint8_t secret[COOKIE_SECRET_LEN];
	arc4random_buf(secret, sizeof(secret));
	fe->cookie = cookie_new(secret);
	explicit_bzero(secret, sizeof(secret));
	if (fe->io == NULL || fe->flush_ev == NULL || fe->cache == NULL ||
	    fe->up == NULL || fe->cookie == NULL) {
		frontend_free(fe);
		return NULL;
	}
	return fe;
}

/* ---- sending answers ---- */

static void
tcp_send(struct tcp_conn *c, const uint8_t *pkt, size_t len)
{
	uint8_t lenbuf[2] = { len >> 8, len & 0xff };
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add(out, lenbuf, 2);
	evbuffer_add(out, pkt, len);
	/* A client that sends without reading must not fill our memory. */
	if (evbuffer_get_length(out) > TCP_OUT_HIGH)
		bufferevent_disable(c->bev, EV_READ);
}

static void
client_send(struct frontend *fe, const struct client *cl, const uint8_t *pkt,
    size_t len)
{
	if (cl->transport == TRANSPORT_TCP) {
		tcp_send(cl->conn, pkt, len);
		return;
	}
	/*
	 * Answers made in an upstream callback are queued too, and sent by
	 * flush_ev once every reply that arrived in this pass of the loop
	 * has been handled: one sendmmsg() for them all.
	 */
	if (!fe->udp_batching && !fe->flush_active) {
		event_active(fe->flush_ev, EV_TIMEOUT, 0);
		fe->flush_active = true;
	}
	int r = udpio_queue(fe->io, cl->fd, pkt, len,
	    (const struct sockaddr *)&cl->peer, cl->peerlen, &cl->dst);
	if (r == -1)
		fe->ctr->dropped++;	/* socket buffer full: like a lost packet */
}

static void
udp_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct frontend *fe = arg;

	fe->flush_active = false;
	fe->ctr->dropped += udpio_flush(fe->io);
}

static void
answer_error(struct frontend *fe, const struct client *cl,
    const struct dns_query *q, uint8_t rcode, int ede, const char *text)
{
	size_t n = dnsmsg_build_error(q, rcode, ede, text, fe->out,
	    sizeof(fe->out));

	if (rcode == DNS_RCODE_SERVFAIL)
		fe->ctr->servfail++;
	client_send(fe, cl, fe->out, n);
}

static const char *
rcode_text(uint8_t rcode)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL",
	    "NXDOMAIN", "NOTIMP", "REFUSED" };

	return rcode < sizeof(names) / sizeof(names[0]) ? names[rcode] :
	    "rcode";
}

/*
 * Within the budget of lines per second: true, after saying how many
 * lines the last flood held back.
 */
static bool
query_debug_pass(struct frontend *fe)
{
	unsigned long held;
	bool pass = log_ratelimit_pass(&fe->debug_rl, now_ms_monotonic(),
	    &held);

	if (held > 0)
		log_debug("suppressed %lu query lines (more than %u a second)",
		    held, fe->debug_rl.per_s);
	return pass;
}

/*
 * -v: what was decided for q, one line. No client address: the journal
 * keeps lines longer than log.retention_days, and log.client_identity
 * may promise less than an address; the policy tells clients apart.
 */
static void
query_debug_write(struct frontend *fe, const struct client *cl,
    const struct dns_query *q, const char *what, const char *detail)
{
	static const struct { uint16_t t; const char *name; } types[] = {
		{ 1, "A" }, { 2, "NS" }, { 5, "CNAME" }, { 6, "SOA" },
		{ 12, "PTR" }, { 15, "MX" }, { 16, "TXT" }, { 28, "AAAA" },
		{ 33, "SRV" }, { 64, "SVCB" }, { 65, "HTTPS" }, { 255, "ANY" },
	};
	char name[1024], type[16];
	const char *policy;

	dnsmsg_name_to_text(q->lname, q->qname_len, name, sizeof(name));
	snprintf(type, sizeof(type), "TYPE%u", q->qtype);	/* RFC 3597 */
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].t == q->qtype)
			snprintf(type, sizeof(type), "%s", types[i].name);
	policy = blocklist_policy_name(fe->bl, cl->policy);
	log_debug("query %s %s%s%s: %s%s%s", name, type,
	    policy ? " policy " : "", policy ? policy : "", what,
	    detail ? " " : "", detail ? detail : "");
}

/* Within the budget: the line; over it, only counted. */
static void
query_debug(struct frontend *fe, const struct client *cl,
    const struct dns_query *q, const char *what, const char *detail)
{
	if (query_debug_pass(fe))
		query_debug_write(fe, cl, q, what, detail);
}

static void
answer_debug(struct frontend *fe, const struct client *cl,
    const struct dns_query *q, uint8_t rcode, bool cached,
    const struct blocklist_match *m, const char *upstream)
{
	char detail[512];

	/* A flood's lines are counted before anything is formatted. */
	if (!query_debug_pass(fe))
		return;
	if (m != NULL)
		snprintf(detail, sizeof(detail), "by %s (%s)%s", m->rule,
		    m->category, cached ? " in a cached answer" : "");
	else if (cached)
		snprintf(detail, sizeof(detail), "%s", rcode_text(rcode));
	else if (upstream != NULL)
		snprintf(detail, sizeof(detail), "%s %s %s",
		    rcode == DNS_RCODE_SERVFAIL ? "no answer from" : "to",
		    upstream, rcode_text(rcode));
	else
		snprintf(detail, sizeof(detail), "%s", rcode_text(rcode));
	query_debug_write(fe, cl, q, m != NULL ? "blocked" : cached ?
	    "cached" : rcode == DNS_RCODE_SERVFAIL ? "failed" : "forwarded",
	    detail);
}

/*
 * The answer to q as decided: with -v, a debug line; for
 * log.all_queries, one row of the attempt log (table queries), stamped
 * with the query's arrival. m: the block entry that matched, or NULL.
 */
static void
answer_record(struct frontend *fe, const struct client *cl,
    const struct dns_query *q, uint8_t rcode, bool cached,
    const struct blocklist_match *m, const char *upstream, uint64_t start_us)
{
	bool blocked = m != NULL;

	if (__builtin_expect(fe->verbose, 0))
		answer_debug(fe, cl, q, rcode, cached, m, upstream);
	if (fe->attempts == NULL || !fe->cfg->log.all_queries)
		return;
	uint32_t took_us = (uint32_t)(now_us_monotonic() - start_us);
	struct query_event ev = {
		.ts_ms = now_ms_wall() - took_us / 1000,
		.client = (const struct sockaddr *)&cl->peer,
		.qname = q->lname,
		.qname_len = q->qname_len,
		.qtype = q->qtype,
		.rcode = rcode,
		.cached = cached,
		.blocked = blocked,
		.upstream = upstream,
		.duration_us = took_us,
		.transport = cl->transport,
		.verified = cl->verified,
		.policy = blocklist_policy_name(fe->bl, cl->policy),
	};
	attemptlog_append_query(fe->attempts, &ev);
}

/* Send a canonical reply to one client, cut to what it accepts. */
static void
answer_reply(struct frontend *fe, const struct client *cl,
    const struct dns_query *q, const uint8_t *canon, size_t len)
{
	size_t limit = cl->transport == TRANSPORT_TCP ? DNS_MAX_MSG :
	    dnsmsg_udp_limit(q);
	size_t n = dnsmsg_finalize(q, canon, len, fe->out, sizeof(fe->out),
	    limit);

	if (n == 0) {
		answer_error(fe, cl, q, DNS_RCODE_SERVFAIL, -1, NULL);
		return;
	}
	if (fe->out[2] & 0x02)
		fe->ctr->truncated++;
	client_send(fe, cl, fe->out, n);
}

/* ---- blocking ---- */

/*
 * The blocked answer. Its SOA must own an ancestor of the name asked
 * (RFC 2308) for caches downstream to keep it: the rule when the name
 * itself matched, the name asked when a CNAME target did.
 */
static void
answer_blocked(struct frontend *fe, const struct client *cl,
    const struct dns_query *q, const struct blocklist_match *m,
    bool via_cname)
{
	size_t owner_len = q->qname_len;
	const uint8_t *owner = via_cname ? q->lname :
	    dnsmsg_name_suffix(q->lname, q->qname_len, strlen(m->rule),
	    &owner_len);
	size_t limit = cl->transport == TRANSPORT_TCP ? DNS_MAX_MSG :
	    dnsmsg_udp_limit(q);
	size_t n = dnsmsg_build_blocked(q, owner, owner_len, m->category,
	    fe->cfg->blocklist.blocked_ttl, fe->out, sizeof(fe->out), limit);
	struct attempt a = {
		.ts_ms = now_ms_wall(),
		.client = (const struct sockaddr *)&cl->peer,
		.qname = q->lname,
		.qname_len = q->qname_len,
		.qtype = q->qtype,
		.transport = cl->transport,
		.verified = cl->verified,
		.policy = blocklist_policy_name(fe->bl, cl->policy),
		.match = m,
	};

	fe->ctr->blocked++;
	counters_category_blocked(fe->ctr, m->category);
	attemptlog_append(fe->attempts, &a);
	client_send(fe, cl, fe->out, n);
}

/* ---- the query path ---- */

static void
request_free(struct request *req)
{
	struct tcp_conn *c = req->cl.transport == TRANSPORT_TCP ?
	    req->cl.conn : NULL;

	upstream_cancel(&req->w);
	req->fe->nrequests--;
	if (c != NULL) {
		TAILQ_REMOVE(&c->reqs, req, conn_entry);
		/* Queries held back by the per-connection limit may go on. */
		if (c->npending-- == TCP_MAX_PENDING && !c->eof)
			bufferevent_trigger(c->bev, EV_READ,
			    BEV_TRIG_IGNORE_WATERMARKS |
			    BEV_TRIG_DEFER_CALLBACKS);
	}
	free(req);
}

static void
query_forward(struct frontend *fe, const struct client *cl,
    const struct dns_query *q, const struct cache_key *key, uint64_t start)
{
	struct request *req;

	/* Shed load rather than grow without bound. */
	if (fe->nrequests >= (size_t)fe->cfg->server.max_outstanding *
	    REQUESTS_PER_OUTSTANDING || (req = malloc(sizeof(*req))) == NULL) {
		fe->ctr->overload_dropped++;
		answer_error(fe, cl, q, DNS_RCODE_SERVFAIL, -1, NULL);
		return;
	}
	req->fe = fe;
	req->cl = *cl;
	req->q = *q;
	memcpy(req->qname, q->qname, q->qname_len);
	req->q.qname = req->qname;
	req->start_us = start;
	req->w.uq = NULL;
	req->w.whole = cl->transport == TRANSPORT_TCP;
	fe->nrequests++;
	if (cl->transport == TRANSPORT_TCP) {
		TAILQ_INSERT_TAIL(&cl->conn->reqs, req, conn_entry);
		cl->conn->npending++;
	}
	fe->ctr->cache_misses++;
	/* When every upstream fails at once, req is answered and freed
	 * inside upstream_submit(): it must not be touched after. */
	if (upstream_submit(fe->up, key, q->lname, q->qname_len, q->qtype,
	    q->qclass, q->do_bit, q->cd, &req->w) == -1) {
		fe->ctr->overload_dropped++;
		answer_error(fe, cl, q, DNS_RCODE_SERVFAIL, -1, NULL);
		request_free(req);
	}
}

/*
 * Is the answer to q blocked by the list of the moment: its name, or any
 * name in the reply a client would follow (n offsets into pkt, see struct
 * dns_reply's name_off)? Fills m and *via_cname (true when a name other
 * than the question's matched).
 */
static bool
answer_is_blocked(const struct frontend *fe, int policy,
    const struct dns_query *q, const uint8_t *pkt, size_t len,
    const uint16_t *offs, size_t n, struct blocklist_match *m,
    bool *via_cname)
{
	uint8_t name[DNS_MAX_NAME];

	*via_cname = false;
	if (blocklist_match_wire_policy(fe->bl, policy, q->lname,
	    q->qname_len, m) == 1)
		return true;
	for (size_t i = 0; i < n; i++) {
		size_t off = offs[i];
		int nlen = dnsmsg_read_name(pkt, len, &off, name);
		if (nlen > 0 && blocklist_match_wire_policy(fe->bl, policy,
		    name, (size_t)nlen, m) == 1)
			return *via_cname = true;
	}
	return false;
}

/*
 * The policy of the client at peer, kept per address in a small table so
 * that a client's queries scan the policies' networks once per reload.
 * Without policies: the default, at no cost.
 */
static int
client_policy(struct frontend *fe, const struct sockaddr_storage *peer)
{
	const uint8_t *a;
	size_t alen;
	uint32_t h = 2166136261u;
	struct policy_slot *slot;

	if (blocklist_npolicies(fe->bl) == 0)
		return BLOCKLIST_POLICY_DEFAULT;
	if (peer->ss_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)peer)->
		    sin_addr;
		alen = 4;
	} else {
		a = (const uint8_t *)&((const struct sockaddr_in6 *)peer)->
		    sin6_addr;
		alen = 16;
	}
	for (size_t i = 0; i < alen; i++)
		h = (h ^ a[i]) * 16777619u;
	slot = &fe->policies[h % POLICY_SLOTS];
	if (slot->gen == fe->bl_gen && slot->family == peer->ss_family &&
	    memcmp(slot->addr, a, alen) == 0)
		return slot->policy;
	slot->policy = (int16_t)blocklist_policy_of(fe->bl,
	    (const struct sockaddr *)peer);
	slot->gen = fe->bl_gen;
	slot->family = peer->ss_family;
	memcpy(slot->addr, a, alen);
	return slot->policy;
}

static void
answer_blocked_logged(struct frontend *fe, const struct client *cl,
    const struct dns_query *q, const struct blocklist_match *m,
    bool via_cname, bool cached, uint64_t start)
{
	if (via_cname)
		fe->ctr->blocked_cname++;
	answer_blocked(fe, cl, q, m, via_cname);
	answer_record(fe, cl, q, DNS_RCODE_NXDOMAIN, cached, m, NULL, start);
}

/*
 * A hit is served without asking the blocklist when the entry was checked
 * against the list in force (its tag is the list's generation); after a
 * reload the first hit checks the name and its CNAME targets again.
 */
static bool
answer_from_cache(struct frontend *fe, const struct client *cl,
    const struct dns_query *q, const struct cache_key *key, uint64_t start)
{
	uint64_t now = now_ms_monotonic();
	struct cache_entry *e = cache_lookup(fe->cache, key, now);
	struct blocklist_match m;
	size_t len;

	if (e == NULL)
		return false;
	/* Over TCP only a reply that came whole: ask again otherwise. */
	if (cl->transport == TRANSPORT_TCP && !cache_entry_whole(e))
		return false;
	len = cache_entry_copy(e, now, fe->tmp, sizeof(fe->tmp));
	if (cache_entry_tag(e) != fe->bl_gen) {
		uint16_t offs[DNSMSG_MAX_NAMES];
		size_t n = cache_entry_nnames(e);
		bool via_cname;
		for (size_t i = 0; i < n && i < DNSMSG_MAX_NAMES; i++)
			offs[i] = cache_entry_name_off(e, i);
		if (answer_is_blocked(fe, cl->policy, q, fe->tmp, len, offs,
		    n, &m, &via_cname)) {
			answer_blocked_logged(fe, cl, q, &m, via_cname, true,
			    start);
			return true;
		}
		/* The tag says "clean for every client": a policy that
		 * leaves categories out cannot say it alone. */
		if (cl->policy == BLOCKLIST_POLICY_DEFAULT ||
		    !answer_is_blocked(fe, BLOCKLIST_POLICY_DEFAULT, q, fe->tmp,
		    len, offs, n, &m, &via_cname))
			cache_entry_set_tag(e, fe->bl_gen);
	}
	fe->ctr->cache_hits++;
	answer_reply(fe, cl, q, fe->tmp, len);
	answer_record(fe, cl, q, fe->tmp[3] & 0xf, true, NULL, NULL, start);
	return true;
}

/*
 * A query with a COOKIE option: its answer carries our server cookie, and
 * a valid one proves the client's address (RFC 7873, RFC 9018). A query
 * without one, or with one we did not make, is answered all the same.
 */
static void
query_cookie(struct frontend *fe, struct client *cl, struct dns_query *q)
{
	bool had_server = q->cookie_len > COOKIE_CLIENT_LEN;
	uint32_t now = (uint32_t)(now_ms_wall() / 1000);

	if (cookie_answer(fe->cookie, q->cookie, &q->cookie_len,
	    (const struct sockaddr *)&cl->peer, now)) {
		fe->ctr->cookies_valid++;
		cl->verified = true;
	} else if (had_server) {
		fe->ctr->cookies_invalid++;
	}
}

static void
query_process(struct frontend *fe, struct client *cl,
    const uint8_t *pkt, size_t len)
{
	struct dns_query q;
	struct blocklist_match m;
	struct cache_key key;
	/* Only log.all_queries reads the start time: no clock otherwise. */
	uint64_t start = fe->cfg->log.all_queries ? now_us_monotonic() : 0;
	enum dnsmsg_verdict v = dnsmsg_parse_query(pkt, len, &q);

	fe->ctr->queries++;
	if (v == DNSMSG_DROP) {
		fe->ctr->dropped++;
		return;
	}
	/* A forged UDP source cannot be told from a real one; TCP's
	 * handshake, or a server cookie returned, proves the address. */
	cl->verified = cl->transport == TRANSPORT_TCP;
	if (q.cookie_len > 0)
		query_cookie(fe, cl, &q);
	cl->policy = client_policy(fe, &cl->peer);
	if (!config_client_allowed(fe->cfg, (struct sockaddr *)&cl->peer)) {
		fe->ctr->refused++;
		if (__builtin_expect(fe->verbose, 0))
			query_debug(fe, cl, &q, "refused:", "client not in "
			    "allow_clients");
		answer_error(fe, cl, &q, DNS_RCODE_REFUSED, DNS_EDE_PROHIBITED,
		    "client not in allow_clients");
		return;
	}
	/*
	 * UDP is limited before parsing, silently (an answer to a forged
	 * source would reflect). A TCP client's address is real: it is told
	 * REFUSED, and its connection stays usable once it slows down.
	 */
	if (cl->transport == TRANSPORT_TCP && !ratelimit_allow(fe->rl,
	    (const struct sockaddr *)&cl->peer, now_ms_monotonic())) {
		fe->ctr->ratelimited++;
		answer_error(fe, cl, &q, DNS_RCODE_REFUSED, -1, NULL);
		return;
	}
	switch (v) {
	case DNSMSG_FORMERR:
		fe->ctr->formerr++;
		answer_error(fe, cl, &q, DNS_RCODE_FORMERR, -1, NULL);
		return;
	case DNSMSG_NOTIMP:
		fe->ctr->notimp++;
		answer_error(fe, cl, &q, DNS_RCODE_NOTIMP, -1, NULL);
		return;
	case DNSMSG_BADVERS:
		answer_error(fe, cl, &q, DNS_RCODE_BADVERS, -1, NULL);
		return;
	default:
		break;
	}
	cache_key_make(fe->cache, &key, q.lname, q.qname_len, q.qtype,
	    q.qclass, q.do_bit, q.cd);
	if (answer_from_cache(fe, cl, &q, &key, start))
		return;
	if (blocklist_match_wire_policy(fe->bl, cl->policy, q.lname,
	    q.qname_len, &m) == 1) {
		answer_blocked_logged(fe, cl, &q, &m, false, false, start);
		return;
	}
	if (__builtin_expect(fe->verbose, 0) && m.allowed)
		query_debug(fe, cl, &q, "allowed by", m.rule);
	query_forward(fe, cl, &q, &key, start);
}

/*
 * A reply blocked for clients of the default policy: is it for req's
 * client too? Its policy may leave the category out (m and *via_cname
 * then hold its own match).
 */
static bool
waiter_blocked(const struct frontend *fe, const struct request *req,
    const uint8_t *reply, size_t len, const struct dns_reply *r,
    const struct blocklist_match *m, struct blocklist_match *wm,
    bool *wvia)
{
	if (req->cl.policy == BLOCKLIST_POLICY_DEFAULT) {
		*wm = *m;
		return true;
	}
	return answer_is_blocked(fe, req->cl.policy, &req->q, reply, len,
	    r->name_off, r->nnames, wm, wvia);
}

/*
 * Every upstream failed: SERVFAIL, with EDE 22 or 23 naming the last one
 * tried (failed: "ADDR (why)", NULL when none was) for clients with EDNS.
 */
static void
answer_upstream_failed(struct frontend *fe, struct request *req,
    const char *failed, enum upstream_fail why)
{
	char text[160];

	snprintf(text, sizeof(text), "upstream %s", failed ? failed : "none");
	answer_error(fe, &req->cl, &req->q, DNS_RCODE_SERVFAIL,
	    failed ? upstream_fail_ede(why) : -1, failed ? text : NULL);
	answer_record(fe, &req->cl, &req->q, DNS_RCODE_SERVFAIL, false, NULL,
	    failed, req->start_us);
}

/* One answer from upstream (or none) for every client waiting on it. */
static void
upstream_done_cb(void *arg, const struct cache_key *key, uint8_t *reply,
    size_t len, struct dns_reply *r, const char *from,
    enum upstream_fail why, struct upstream_waiters *waiters)
{
	struct frontend *fe = arg;
	struct upstream_waiter *w;
	struct blocklist_match m, wm;
	bool blocked = false, via_cname = false, wvia;
	char failed[128] = "";

	/* Which upstream failed and how: in the EDE text and the log row. */
	if (reply == NULL && from != NULL && why != UPSTREAM_FAIL_NONE)
		snprintf(failed, sizeof(failed), "%s (%s)", from,
		    upstream_fail_text(why));
	if (reply != NULL && r->names_overflow) {
		/* Too many names to check: never served (nor kept) as
		 * clean; nor logged as an attempt, which it may not be. */
		fe->ctr->reply_unchecked++;
		reply = NULL;
	}
	if (reply != NULL) {
		/* The names' offsets lie before the OPT record, which is
		 * all that canonicalizing moves. */
		len = dnsmsg_canonicalize(reply, len, r, fe->cfg->cache.max_ttl);
		/* Checked against the list of now: a reload may have come
		 * while the question was out. */
		struct request *first = TAILQ_EMPTY(waiters) ? NULL :
		    container_of(TAILQ_FIRST(waiters), struct request, w);
		if (first != NULL)
			blocked = answer_is_blocked(fe, BLOCKLIST_POLICY_DEFAULT,
			    &first->q, reply, len, r->name_off, r->nnames, &m,
			    &via_cname);
		cache_insert(fe->cache, key, reply, len, r, now_ms_monotonic(),
		    blocked || first == NULL ? 0 : fe->bl_gen);
		fe->ctr->cache_evictions = cache_evictions(fe->cache);
	}
	while ((w = TAILQ_FIRST(waiters)) != NULL) {
		struct request *req = container_of(w, struct request, w);
		TAILQ_REMOVE(waiters, w, entry);
		w->uq = NULL;
		wvia = via_cname;
		/* The policies of now: a reload may have come meanwhile. */
		req->cl.policy = client_policy(fe, &req->cl.peer);
		if (reply == NULL) {
			answer_upstream_failed(fe, req, failed[0] != '\0' ?
			    failed : NULL, why);
		} else if (blocked && waiter_blocked(fe, req, reply, len, r,
		    &m, &wm, &wvia)) {
			answer_blocked_logged(fe, &req->cl, &req->q, &wm,
			    wvia, false, req->start_us);
		} else {
			answer_reply(fe, &req->cl, &req->q, reply, len);
			answer_record(fe, &req->cl, &req->q, reply[3] & 0xf,
			    false, NULL, from, req->start_us);
		}
		request_free(req);
	}
}

/* ---- UDP ---- */

/*
 * One datagram as recvmmsg() gave it: every step before the query itself
 * (size, rate limit), then query_process(). cl carries the socket; the
 * peer and destination are the datagram's. Inlined: udp_read_cb() runs
 * it per message, frontend_feed_udp() once.
 */
static inline __attribute__((always_inline)) void
udp_message(struct frontend *fe, struct client *cl, const struct udpio_msg *m,
    uint64_t now)
{
	fe->ctr->queries_udp++;
	if (m->truncated) {
		fe->ctr->dropped++;
		return;
	}
	if (!ratelimit_allow(fe->rl, (const struct sockaddr *)&m->peer, now)) {
		fe->ctr->ratelimited++;
		return;
	}
	memcpy(&cl->peer, &m->peer, m->peerlen);
	cl->peerlen = m->peerlen;
	cl->dst = m->dst;
	query_process(fe, cl, m->buf, m->len);
}

static void
udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	struct frontend *fe = l->fe;
	struct client cl = { .transport = TRANSPORT_UDP, .fd = fd };
	size_t n = UDPIO_BATCH;

	/* A few batches, then back to the loop so TCP and timers run too. */
	for (int round = 0; round < UDP_ROUNDS && n == UDPIO_BATCH; round++) {
		n = udpio_recv(fe->io, fd);
		uint64_t now = now_ms_monotonic();
		fe->udp_batching = true;
		/* The batch's cache misses go upstream together. */
		upstream_cork(fe->up);
		for (size_t i = 0; i < n; i++)
			udp_message(fe, &cl, &fe->io->in[i], now);
		upstream_uncork(fe->up);
		fe->udp_batching = false;
		fe->ctr->dropped += udpio_flush(fe->io);
	}
}

void
frontend_feed_udp(struct frontend *fe, const uint8_t *pkt, size_t len,
    const struct sockaddr *peer, socklen_t peerlen,
    frontend_answer_fn answer, void *arg)
{
	struct client cl = { .transport = TRANSPORT_UDP, .fd = -1 };
	struct udpio_msg m = {
		.buf = (uint8_t *)pkt,
		.len = len,
		.truncated = len > UDPIO_MSG_MAX,	/* as MSG_TRUNC */
		.peerlen = peerlen,
	};
	struct udpio *io = fe->io;

	if (peerlen > sizeof(m.peer))
		return;
	memcpy(&m.peer, peer, peerlen);
	if (m.truncated)
		m.len = UDPIO_MSG_MAX;
	/* Whatever an upstream callback queued for a real socket goes first. */
	fe->ctr->dropped += udpio_flush(io);
	fe->udp_batching = true;
	udp_message(fe, &cl, &m, now_ms_monotonic());
	fe->udp_batching = false;
	/* What udpio_flush() would have sent: hand it over instead. */
	for (size_t i = 0; i < io->nout && answer != NULL; i++)
		answer(arg, io->out[i].buf, io->out[i].len);
	io->nout = 0;
}

/* ---- TCP ---- */

static void
tcp_conn_free(struct tcp_conn *c)
{
	struct frontend *fe = c->fe;
	struct request *req;

	c->eof = true;		/* nothing more is read from it */
	while ((req = TAILQ_FIRST(&c->reqs)) != NULL)
		request_free(req);
	TAILQ_REMOVE(&fe->conns, c, entry);
	fe->nconns--;
	ratelimit_conn_release(fe->rl, c->rl_slot);
	event_free(c->life_ev);
	bufferevent_free(c->bev);
	free(c);
}

static unsigned	tcp_timeout_ms(const struct tcp_conn *);

/*
 * The read (idle) timeout, and the write timeout: answers the client does
 * not read within it end the connection, which would otherwise hold its
 * slot for ever once reading stops at TCP_OUT_HIGH.
 */
static void
tcp_set_timeout(struct tcp_conn *c)
{
	unsigned ms = tcp_timeout_ms(c);
	unsigned wms = c->fe->cfg->server.tcp_write_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct timeval wtv = { wms / 1000, (wms % 1000) * 1000 };

	bufferevent_set_timeouts(c->bev, &tv, &wtv);
}

/* The idle timeout in force for c now, in milliseconds. */
static unsigned
tcp_timeout_ms(const struct tcp_conn *c)
{
	const struct config *cfg = c->fe->cfg;
	unsigned ms = cfg->server.tcp_idle_timeout_ms;
	unsigned max = cfg->server.tcp_max_connections;

	/* Shorter while the connection table fills (RFC 7766 6.2.3). */
	if (c->fe->nconns * 4 >= max * 3)
		ms /= 5;
	else if (c->fe->nconns * 2 >= max)
		ms /= 2;
	return ms;
}

/*
 * True when c has sent part of a message for longer than the idle
 * timeout: the read timeout restarts with every byte, so a client that
 * drips a message byte by byte is caught here.
 */
static bool
tcp_message_overdue(struct tcp_conn *c, bool partial)
{
	if (!partial) {
		c->partial_since_ms = 0;
		return false;
	}
	uint64_t now = now_ms_monotonic();
	if (c->partial_since_ms == 0) {
		c->partial_since_ms = now;
		return false;
	}
	return now - c->partial_since_ms > tcp_timeout_ms(c);
}

static void
tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *c = arg;
	struct frontend *fe = c->fe;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t lenbuf[2];
	bool partial = false;

	/* Pipelined queries are taken up to TCP_MAX_PENDING open at once. */
	while (c->npending < TCP_MAX_PENDING) {
		size_t have = evbuffer_get_length(in);
		if (have < 2) {
			partial = have > 0;
			break;
		}
		evbuffer_copyout(in, lenbuf, 2);
		size_t mlen = (size_t)lenbuf[0] << 8 | lenbuf[1];
		if (have < 2 + mlen) {
			partial = true;	/* the rest comes later, or times out */
			break;
		}
		evbuffer_drain(in, 2);
		evbuffer_remove(in, fe->in, mlen);
		c->partial_since_ms = 0;
		struct client cl = { .transport = TRANSPORT_TCP, .conn = c,
		    .peerlen = c->peerlen };
		memcpy(&cl.peer, &c->peer, c->peerlen);
		fe->ctr->queries_tcp++;
		query_process(fe, &cl, fe->in, mlen);
		if (!(bufferevent_get_enabled(bev) & EV_READ))
			break;		/* output full: wait for the client */
	}
	if (tcp_message_overdue(c, partial)) {
		fe->ctr->tcp_timeouts++;
		tcp_conn_free(c);
		return;
	}
	tcp_set_timeout(c);
}

static void
tcp_write_cb(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *c = arg;

	if (c->eof) {
		if (TAILQ_EMPTY(&c->reqs))
			tcp_conn_free(c);
		return;
	}
	if (!(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		tcp_read_cb(bev, c);	/* queries already buffered */
	}
}

static void
tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_conn *c = arg;

	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_WRITING))
		c->fe->ctr->tcp_write_timeouts++;
	else if (what & BEV_EVENT_TIMEOUT)
		c->fe->ctr->tcp_timeouts++;
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    (!TAILQ_EMPTY(&c->reqs) ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)) {
		/* Half-closed: answer what was asked, then close. */
		c->eof = true;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	tcp_conn_free(c);
}

/* A connection past its maximum age goes, whatever it is doing. */
static void
tcp_lifetime_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_conn *c = arg;

	c->fe->ctr->tcp_lifetime_closed++;
	tcp_conn_free(c);
}

/*
 * May a connection from sa be served? Not from outside allow_clients
 * (it would hold a slot it cannot use), not past tcp_max_connections,
 * not past the client's own share. Counts the refusal; on success the
 * client's count in fe->rl includes it (*slot).
 */
static bool
tcp_conn_admit(struct frontend *fe, const struct sockaddr *sa,
    socklen_t salen, uint32_t *slot)
{
	const struct config *cfg = fe->cfg;

	if (salen > (socklen_t)sizeof(struct sockaddr_storage) ||
	    !config_client_allowed(cfg, sa)) {
		fe->ctr->tcp_refused_client++;
		return false;
	}
	if (fe->nconns >= cfg->server.tcp_max_connections) {
		fe->ctr->tcp_refused++;
		return false;
	}
	if (!ratelimit_conn_acquire(fe->rl, sa,
	    cfg->server.tcp_max_connections_per_client, slot)) {
		fe->ctr->tcp_client_limit++;
		return false;
	}
	return true;
}

/* A connection on fd from sa, as accepted; fd is closed on failure. */
static int
tcp_conn_new(struct frontend *fe, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen)
{
	unsigned life = fe->cfg->server.tcp_max_lifetime_ms;
	struct timeval tv = { life / 1000, (life % 1000) * 1000 };
	struct tcp_conn *c = NULL;
	uint32_t slot;

	if (!tcp_conn_admit(fe, sa, salen, &slot)) {
		close(fd);
		return -1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->life_ev = evtimer_new(fe->base, tcp_lifetime_cb, c)) == NULL ||
	    (c->bev = bufferevent_socket_new(fe->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		fe->ctr->tcp_refused++;
		ratelimit_conn_release(fe->rl, slot);
		if (c != NULL && c->life_ev != NULL)
			event_free(c->life_ev);
		free(c);
		close(fd);
		return -1;
	}
	c->fe = fe;
	c->rl_slot = slot;
	memcpy(&c->peer, sa, (size_t)salen);
	c->peerlen = salen;
	TAILQ_INIT(&c->reqs);
	TAILQ_INSERT_TAIL(&fe->conns, c, entry);
	fe->nconns++;
	fe->ctr->tcp_accepted++;
	bufferevent_setcb(c->bev, tcp_read_cb, tcp_write_cb, tcp_event_cb, c);
	tcp_set_timeout(c);
	evtimer_add(c->life_ev, &tv);
	bufferevent_enable(c->bev, EV_READ);
	return 0;
}

static void
tcp_accept_cb(struct evconnlistener *el, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;

	tcp_conn_new(l->fe, fd, sa, (socklen_t)salen);
}

int
frontend_adopt_tcp(struct frontend *fe, int fd, const struct sockaddr *peer,
    socklen_t peerlen)
{
	if (evutil_make_socket_nonblocking(fd) == -1) {
		close(fd);
		return -1;
	}
	return tcp_conn_new(fe, fd, peer, peerlen);
}

static void
tcp_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	evconnlistener_enable(l->tcp);
}

/* Out of file descriptors: pause accepting for a second, don't spin. */
static void
tcp_accept_error_cb(struct evconnlistener *el, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = { 1, 0 };

	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
	    errno == ENOMEM) {
		log_warnx("accept on %s: %s; pausing TCP accepts for 1 s",
		    l->addr.text, strerror(errno));
		evconnlistener_disable(el);
		evtimer_add(l->resume_ev, &tv);
	}
}

/* ---- sockets ---- */

static int
socket_bind(const struct config_listen *a, int type, bool reuseport)
{
	int fd, on = 1;
	int family = a->addr.ss.ss_family;

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	/*
	 * TCP only: a restart must not wait for old connections in
	 * TIME_WAIT. On UDP, SO_REUSEADDR would let another socket bind the
	 * port beside ours and take queries.
	 */
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (const struct sockaddr *)&a->addr.ss, a->addr.len) == -1 ||
	    (type == SOCK_STREAM && listen(fd, TCP_BACKLOG) == -1)) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * The default receive buffer holds about 256 queries: a burst, or a few
 * milliseconds of the loop being busy, and the kernel drops the rest. As
 * root the system maximum does not apply (SO_RCVBUFFORCE).
 */
static void
udp_grow_rcvbuf(int fd)
{
	int size = UDP_RCVBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size,
	    sizeof(size)) == -1)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

/* One line saying why addr cannot be bound, with what to do about it. */
static void
log_bind_error(const struct config_listen *a, const char *proto)
{
	int e = errno;
	in_port_t port = ntohs(((const struct sockaddr_in *)&a->addr.ss)->sin_port);

	if (e == EADDRINUSE)
		log_warnx("cannot listen on %s (%s): address already in use: is "
		    "another dnswarden or DNS server running?", a->text, proto);
	else if (e == EACCES && port < 1024)
		log_warnx("cannot listen on %s (%s): permission denied: ports "
		    "below 1024 need root or CAP_NET_BIND_SERVICE", a->text,
		    proto);
	else if (e == EADDRNOTAVAIL)
		log_warnx("cannot listen on %s (%s): no such local address: is "
		    "it configured on this machine yet?", a->text, proto);
	else
		log_warnx("cannot listen on %s (%s): %s", a->text, proto,
		    strerror(e));
}

int
frontend_listen_check(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->server.nlisten; i++) {
		const struct config_listen *a = &cfg->server.listen[i];
		for (int t = 0; t < 2; t++) {
			int type = t == 0 ? SOCK_DGRAM : SOCK_STREAM;
			int fd = socket(a->addr.ss.ss_family, type | SOCK_CLOEXEC,
			    0), on = 1;
			if (fd == -1)
				continue;
			if (a->addr.ss.ss_family == AF_INET6)
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
				    sizeof(on));
			if (bind(fd, (const struct sockaddr *)&a->addr.ss,
			    a->addr.len) == -1) {
				log_bind_error(a, t == 0 ? "udp" : "tcp");
				close(fd);
				return -1;
			}
			close(fd);
		}
	}
	return 0;
}

static int
listener_open(struct frontend *fe, struct listener *l, bool reuseport)
{
	int tfd;

	l->fe = fe;
	l->udp_fd = socket_bind(&l->addr, SOCK_DGRAM, reuseport);
	if (l->udp_fd == -1) {
		log_bind_error(&l->addr, "udp");
		return -1;
	}
	udp_grow_rcvbuf(l->udp_fd);
	if (l->wildcard &&
	    udpio_want_dst(l->udp_fd, l->addr.addr.ss.ss_family) == -1)
		log_warn("IP_PKTINFO on %s", l->addr.text);
	l->udp_ev = event_new(fe->base, l->udp_fd, EV_READ | EV_PERSIST,
	    udp_read_cb, l);
	if (l->udp_ev == NULL || event_add(l->udp_ev, NULL) == -1)
		return -1;
	tfd = socket_bind(&l->addr, SOCK_STREAM, reuseport);
	if (tfd == -1) {
		log_bind_error(&l->addr, "tcp");
		return -1;
	}
	l->tcp = evconnlistener_new(fe->base, tcp_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE, -1, tfd);
	if (l->tcp == NULL) {
		close(tfd);
		return -1;
	}
	evconnlistener_set_error_cb(l->tcp, tcp_accept_error_cb);
	l->resume_ev = evtimer_new(fe->base, tcp_resume_cb, l);
	return l->resume_ev ? 0 : -1;
}

static bool
is_wildcard(const struct netaddr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(
	    &((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

int
frontend_listen(struct frontend *fe, bool reuseport)
{
	const struct config *cfg = fe->cfg;

	fe->listeners = calloc(cfg->server.nlisten, sizeof(*fe->listeners));
	if (fe->listeners == NULL)
		return -1;
	for (size_t i = 0; i < cfg->server.nlisten; i++) {
		struct listener *l = &fe->listeners[i];
		l->addr = cfg->server.listen[i];
		l->wildcard = is_wildcard(&l->addr.addr);
		l->udp_fd = -1;
		fe->nlisteners++;
		if (listener_open(fe, l, reuseport) == -1)
			return -1;
		log_info("listening on %s (udp, tcp)", l->addr.text);
	}
	return 0;
}

static bool
listen_changed(const struct frontend *fe, const struct config *cfg)
{
	if (cfg->server.nlisten != fe->nlisteners)
		return true;
	for (size_t i = 0; i < fe->nlisteners; i++)
		if (!netaddr_equal((struct sockaddr *)&cfg->server.listen[i].addr.ss,
		    (struct sockaddr *)&fe->listeners[i].addr.addr.ss))
			return true;
	return false;
}

void
frontend_reconfigure(struct frontend *fe, const struct config *cfg,
    const struct blocklist *bl)
{
	struct cache_limits lim = cache_limits_of(cfg);

	if (listen_changed(fe, cfg))
		log_warnx("server.listen changed: restart dnswarden to rebind");
	fe->cfg = cfg;
	fe->bl = bl;
	if (++fe->bl_gen == 0)
		fe->bl_gen = 1;
	cache_set_limits(fe->cache, &lim);
	fe->ctr->cache_evictions = cache_evictions(fe->cache);
	upstream_reconfigure(fe->up, cfg);
}

void
frontend_set_attemptlog(struct frontend *fe, struct attemptlog *attempts)
{
	fe->attempts = attempts;
}

size_t
frontend_upstream_stats(const struct frontend *fe, struct upstream_stats *out,
    size_t max)
{
	return upstream_get_stats(fe->up, out, max);
}

struct cache *
frontend_cache(struct frontend *fe)
{
	return fe->cache;
}

struct upstream *
frontend_upstream(struct frontend *fe)
{
	return fe->up;
}

void
frontend_free(struct frontend *fe)
{
	struct tcp_conn *c;

	if (fe == NULL)
		return;
	while ((c = TAILQ_FIRST(&fe->conns)) != NULL)
		tcp_conn_free(c);
	/* UDP clients still waiting get SERVFAIL: we are going away. */
	upstream_free(fe->up);
	if (fe->io != NULL)
		udpio_flush(fe->io);
	if (fe->flush_ev != NULL)
		event_free(fe->flush_ev);
	for (size_t i = 0; i < fe->nlisteners; i++) {
		struct listener *l = &fe->listeners[i];
		if (l->udp_ev)
			event_free(l->udp_ev);
		if (l->udp_fd != -1)
			close(l->udp_fd);
		if (l->tcp)
			evconnlistener_free(l->tcp);
		if (l->resume_ev)
			event_free(l->resume_ev);
	}
	free(fe->listeners);
	cache_free(fe->cache);
	cookie_free(fe->cookie);
	free(fe->io);
	free(fe);
}

int
frontend_set_cookie_secret(struct frontend *fe,
    const uint8_t secret[COOKIE_SECRET_LEN])
{
	struct cookie *ck = cookie_new(secret);

	if (ck == NULL)
		return -1;
	cookie_free(fe->cookie);
	fe->cookie = ck;
	return 0;
}
