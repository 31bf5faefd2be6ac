/* upstream: see upstream.h. */
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event_struct.h>

#include "hash.h"
#include "log.h"
#include "clock.h"
#include "dot.h"
#include "upstream.h"
#include "upstream_internal.h"

#define TABLE_SIZE	4096	/* buckets; chains stay short at 10k in flight */
#define PORT_TRIES	8
#define EPOLL_BATCH	64	/* readiness events taken per wake-up */
#define RECV_BATCH	8	/* datagrams taken per read of one socket */
#define RECV_SIZE	4096	/* per datagram; we advertise DNS_EDNS_SIZE */
#define CORK_SOCKETS	16	/* sockets with tries held back while corked */

struct upstream_query;

/*
 * An upstream UDP socket: one random source port, connected to one server.
 * While it is its server's current socket it takes the tries that start,
 * at most cfg->upstream_queries_per_socket of them and only for one
 * upstream timeout after it was opened, each under a random ID no other
 * try on it has had; it is closed as soon as none of them waits any more.
 * So a lone try gets a socket of its own, as before, and under load the
 * cost of a socket (socket, bind, connect, epoll_ctl, close) is shared by
 * up to that many tries, none of which waits for another. A forger still
 * has to hit one port of 64,512 and one ID of 65,536 per try waiting; what
 * changes is that a port lives for a few tries instead of one, and never
 * longer than two timeouts.
 */
struct usock {
	struct upstream		*up;
	struct usock		**home;	/* &up->cur[server] while current */
	struct usock		*dead;	/* up->dead list, closed in a batch */
	int			 fd;	/* in up->epfd; -1 once closed */
	unsigned		 limit;	/* tries it may take in all */
	uint64_t		 open_until;	/* monotonic ms: no try after */
	unsigned		 nslots;	/* tries it has taken */
	unsigned		 pending;	/* of those, tries still waiting */
	unsigned		 sent;	/* slots before this one went out */
	bool			 busy;	/* being worked on: close afterwards */
	bool			 corked;	/* in up->corked: held open */
	struct usock_slot {
		uint16_t		 id;
		uint32_t		 qhash;	/* its question's, see qhash() */
		struct upstream_query	*uq;	/* NULL once the try left */
	} slot[];
};

struct upstream_query {
	struct upstream_query	*hnext;
	struct upstream		*up;
	struct upstream_waiters	 waiters;
	unsigned		 nwaiters;
	struct cache_key	 key;
	uint8_t			 lname[DNS_MAX_NAME];
	uint8_t			 lname_len;
	uint16_t		 qtype, qclass;
	bool			 do_bit, cd;
	bool			 whole;		/* a waiter wants it over TCP */
	size_t			 server;	/* index in cfg->upstreams */
	struct netaddr		 addr;		/* the server asked now */
	char			 addr_text[64];
	uint16_t		 id;
	struct usock		*sock;		/* UDP try: its socket, */
	unsigned		 slot;		/* and its place there, */
	TAILQ_ENTRY(upstream_query) timing;	/* in up->timing */
	uint64_t		 deadline;	/* until then, by up's clock */
	struct bufferevent	*bev;		/* TCP retry */
	struct dot_query	 dq;		/* TLS try, */
	bool			 tls;		/* while on up->timing */
	uint64_t		 sent_us;	/* this try, monotonic */
	enum upstream_fail	 why;		/* the last try's failure */
	uint8_t			 qbuf[DNS_UDP_PLAIN];
	size_t			 qlen;
};

struct upstream {
	struct event_base	*base;
	const struct config	*cfg;
	struct counters		*ctr;
	upstream_done_fn	 done;
	void			*arg;
	/*
	 * The UDP sockets of the tries in flight are watched by an epoll
	 * instance of our own, itself one event in the loop: a socket then
	 * leaves the watch list by being closed, where a libevent event
	 * would cost an epoll_ctl(DEL) per socket.
	 */
	int			 epfd;
	struct event		*epev;
	struct usock		**cur;	/* current socket per configured server */
	size_t			 ncur;
	struct upstream_stats	*health;	/* per configured server */
	uint64_t		*health_logged;	/* its last log line, ms */
	size_t			 nhealth;
	bool			 in_batch;	/* working through epoll events */
	struct usock		*dead;	/* closed during the batch, to free */
	uint64_t		 warned_ms;	/* see warn_socket() */
	unsigned long		 unwarned;
	bool			 cork;	/* hold sends back until uncorked */
	struct usock		*corked[CORK_SOCKETS];	/* with tries held */
	size_t			 ncorked;
	/*
	 * The UDP tries in flight, oldest first: all wait the same timeout,
	 * so the first one is always the next to time out, and one timer
	 * serves them all.
	 */
	TAILQ_HEAD(, upstream_query) timing;
	struct event		*expire_ev;
	bool			 expire_armed;
	struct upstream_sys	 sys;		/* the clock, randomness */
	struct upstream_query	*table[TABLE_SIZE];
	size_t			 inflight;
	/* DNS over TLS: a connection pool per TLS upstream, by index in
	 * cfg->upstreams (NULL for plain ones), all made with dotctx. */
	struct dot_ctx		*dotctx;
	char			*dot_ca;	/* the tls_ca_file dotctx has */
	struct dot_upstream	**dot;
	size_t			 ndot;
	uint8_t			 rnd[256];	/* getrandom() in bulk */
	size_t			 rnd_left;
	uint8_t			 rbuf[DNS_MAX_MSG];	/* TCP */
	struct mmsghdr		 rmsg[RECV_BATCH];
	struct iovec		 riov[RECV_BATCH];
	uint8_t			 rbufs[RECV_BATCH][RECV_SIZE];
};

static void	uq_try(struct upstream_query *);
static void	uq_next_server(struct upstream_query *);

static uint64_t
sys_now_ms(void *arg)
{
	return now_ms_monotonic();
}

static int
sys_random(void *arg, void *buf, size_t len)
{
	ssize_t n = getrandom(buf, len, 0);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EIO;	/* cut short; never for 256 bytes or less */
	return -1;
}

/*
 * A random ID or port into *v. -1 when the system has no random bytes to
 * give: the try must not go out with a number a forger could guess, and
 * the daemon must not stop either (this runs on every query).
 */
static int
random16(struct upstream *up, uint16_t *v)
{
	if (up->rnd_left < 2) {
		if (up->sys.random(up->sys.arg, up->rnd, sizeof(up->rnd)) == -1)
			return -1;
		up->rnd_left = sizeof(up->rnd);
	}
	up->rnd_left -= 2;
	*v = (uint16_t)(up->rnd[up->rnd_left] << 8 |
	    up->rnd[up->rnd_left + 1]);
	return 0;
}

static void	udp_ready_cb(evutil_socket_t, short, void *);

/* Wake up when the oldest UDP try is due, unless already set to. */
static void
expire_arm(struct upstream *up, uint64_t now)
{
	struct upstream_query *first = TAILQ_FIRST(&up->timing);
	uint64_t ms;

	if (first == NULL || up->expire_armed)
		return;
	ms = first->deadline > now ? first->deadline - now : 0;
	struct timeval tv = { (time_t)(ms / 1000),
	    (suseconds_t)(ms % 1000) * 1000 };
	/* Should it fail (no memory), the next try arms it again. */
	if (event_add(up->expire_ev, &tv) == 0)
		up->expire_armed = true;
}

static void
expire_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;

	up->expire_armed = false;
	upstream_expire(up);
}

/*
 * A reloaded timeout: the tries in flight wait no longer than it from now.
 * Deadlines so stay in the order of the list, which a shorter timeout for
 * the new tries alone would break.
 */
static void
timeouts_reconfigure(struct upstream *up)
{
	uint64_t now = up->sys.now_ms(up->sys.arg);
	uint64_t latest = now + up->cfg->upstream_timeout_ms;
	struct upstream_query *uq;

	TAILQ_FOREACH(uq, &up->timing, timing)
		if (uq->deadline > latest)
			uq->deadline = latest;
	if (up->expire_armed) {
		event_del(up->expire_ev);
		up->expire_armed = false;
	}
	expire_arm(up, now);
}

static void	usock_retire(struct usock *);

/*
 * One current socket per configured server, none open yet. The sockets of
 * an older configuration take no new tries and close when theirs are over.
 * Without memory for the table every try gets a socket of its own.
 */
static void
set_current_sockets(struct upstream *up)
{
	for (size_t i = 0; i < up->ncur; i++)
		if (up->cur[i] != NULL)
			usock_retire(up->cur[i]);
	free(up->cur);
	up->ncur = up->cfg->nupstreams;
	up->cur = calloc(up->ncur ? up->ncur : 1, sizeof(up->cur[0]));
	if (up->cur == NULL)
		up->ncur = 0;
}

static bool
same_path(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The TLS context for cfg's tls_ca_file; false when it cannot be made. */
static bool
set_tls_context(struct upstream *up, bool *fresh)
{
	const char *ca = up->cfg->tls_ca_file;
	struct dot_ctx *ctx;
	char err[256], *copy = NULL;

	*fresh = false;
	if (up->dotctx != NULL && same_path(up->dot_ca, ca))
		return true;
	if ((ctx = dot_ctx_new(ca, err, sizeof(err))) == NULL ||
	    (ca != NULL && (copy = strdup(ca)) == NULL)) {
		dot_ctx_free(ctx);
		log_warnx("DNS over TLS: %s; %s", ctx ? "out of memory" : err,
		    up->dotctx ? "keeping the certificates loaded before" :
		    "every TLS upstream will fail");
		return up->dotctx != NULL;
	}
	dot_ctx_free(up->dotctx);
	free(up->dot_ca);
	up->dotctx = ctx;
	up->dot_ca = copy;
	*fresh = true;
	return true;
}

/*
 * A connection pool for each TLS upstream of up->cfg: the one it had
 * where server and name stay the same (its connections stay open), a new
 * one otherwise. Pools that are no longer wanted are freed last, failing
 * their queries over to the new configuration's upstreams.
 */
static void
set_tls_pools(struct upstream *up)
{
	const struct config *cfg = up->cfg;
	struct dot_upstream **old = up->dot, **pools = NULL;
	size_t nold = up->ndot, n = cfg->nupstreams, i, j;
	struct dot_limits lim = { cfg->tls_max_connections,
	    cfg->tls_idle_timeout_ms, cfg->upstream_timeout_ms };
	bool any = false, fresh = false, ok;

	for (i = 0; i < n; i++)
		any |= cfg->upstreams[i].tls_name[0] != '\0';
	ok = any && set_tls_context(up, &fresh);
	if (ok && (pools = calloc(n, sizeof(*pools))) == NULL)
		log_warnx("DNS over TLS: out of memory; every TLS upstream "
		    "will fail");
	for (i = 0; pools != NULL && i < n; i++) {
		const struct config_upstream *u = &cfg->upstreams[i];
		if (u->tls_name[0] == '\0')
			continue;
		for (j = 0; !fresh && j < nold; j++) {
			if (old[j] != NULL &&
			    dot_upstream_is(old[j], &u->addr, u->tls_name)) {
				pools[i] = old[j];
				old[j] = NULL;
				dot_upstream_set_limits(pools[i], &lim);
				break;
			}
		}
		if (pools[i] == NULL)
			pools[i] = dot_upstream_new(up->base, up->dotctx,
			    &u->addr, u->tls_name, u->text, &lim);
	}
	up->dot = pools;
	up->ndot = pools != NULL ? n : 0;
	for (j = 0; j < nold; j++)
		dot_upstream_free(old[j]);
	free(old);
	if (!any) {
		dot_ctx_free(up->dotctx);
		free(up->dot_ca);
		up->dotctx = NULL;
		up->dot_ca = NULL;
	}
}

/*
 * Health per configured server; what an address had before a reload it
 * keeps. Without memory the counts are not kept, the queries still go.
 */
static void
set_health(struct upstream *up)
{
	size_t n = up->cfg->nupstreams;
	struct upstream_stats *h = calloc(n ? n : 1, sizeof(*h));
	uint64_t *logged = calloc(n ? n : 1, sizeof(*logged));

	if (h == NULL || logged == NULL) {
		free(h);
		free(logged);
		n = 0;
		h = NULL;
		logged = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *addr = up->cfg->upstreams[i].text;
		snprintf(h[i].addr, sizeof(h[i].addr), "%s", addr);
		for (size_t j = 0; j < up->nhealth; j++) {
			if (strcmp(up->health[j].addr, addr) == 0) {
				h[i] = up->health[j];
				logged[i] = up->health_logged[j];
			}
		}
	}
	free(up->health);
	free(up->health_logged);
	up->health = h;
	up->health_logged = logged;
	up->nhealth = n;
}

struct upstream *
upstream_new(struct event_base *base, const struct config *cfg,
    struct counters *ctr, upstream_done_fn done, void *arg)
{
	struct upstream *up = calloc(1, sizeof(*up));

	if (up == NULL)
		return NULL;
	up->base = base;
	up->cfg = cfg;
	up->ctr = ctr;
	up->done = done;
	up->arg = arg;
	up->sys = (struct upstream_sys){ sys_now_ms, sys_random, NULL };
	TAILQ_INIT(&up->timing);
	up->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (up->epfd == -1) {
		free(up);
		return NULL;
	}
	up->epev = event_new(base, up->epfd, EV_READ | EV_PERSIST,
	    udp_ready_cb, up);
	up->expire_ev = evtimer_new(base, expire_cb, up);
	if (up->epev == NULL || up->expire_ev == NULL ||
	    event_add(up->epev, NULL) == -1) {
		if (up->epev != NULL)
			event_free(up->epev);
		if (up->expire_ev != NULL)
			event_free(up->expire_ev);
		close(up->epfd);
		free(up);
		return NULL;
	}
	set_current_sockets(up);
	set_tls_pools(up);
	set_health(up);
	for (size_t i = 0; i < RECV_BATCH; i++) {
		up->riov[i] = (struct iovec){ up->rbufs[i], RECV_SIZE };
		up->rmsg[i].msg_hdr.msg_iov = &up->riov[i];
		up->rmsg[i].msg_hdr.msg_iovlen = 1;
	}
	return up;
}

void
upstream_reconfigure(struct upstream *up, const struct config *cfg)
{
	up->cfg = cfg;
	timeouts_reconfigure(up);
	set_current_sockets(up);
	set_tls_pools(up);
	set_health(up);
}

bool
upstream_tls_stats(const struct upstream *up, size_t i, struct dot_stats *out)
{
	if (i >= up->ndot || up->dot[i] == NULL)
		return false;
	dot_upstream_stats(up->dot[i], out);
	return true;
}

struct dot_upstream *
upstream_tls_pool(struct upstream *up, size_t i)
{
	return i < up->ndot ? up->dot[i] : NULL;
}

size_t
upstream_get_stats(const struct upstream *up, struct upstream_stats *out,
    size_t max)
{
	size_t n = up->nhealth < max ? up->nhealth : max;

	memcpy(out, up->health, n * sizeof(*out));
	return n;
}

void
upstream_set_sys(struct upstream *up, const struct upstream_sys *sys)
{
	up->sys = *sys;
}

size_t
upstream_inflight(const struct upstream *up)
{
	return up->inflight;
}

static struct upstream_query **
table_slot(struct upstream *up, const struct cache_key *key)
{
	struct upstream_query **pp = &up->table[key->hash % TABLE_SIZE];

	for (; *pp != NULL; pp = &(*pp)->hnext)
		if ((*pp)->key.len == key->len &&
		    memcmp((*pp)->key.data, key->data, key->len) == 0)
			break;
	return pp;
}

/* s takes no new tries from now on. */
static void
usock_retire(struct usock *s)
{
	if (s->home != NULL) {
		*s->home = NULL;
		s->home = NULL;
	}
}

/*
 * Close s, and so take it out of up->epfd. Inside a batch of epoll events
 * one of the batch's later events may still name s: it is freed when the
 * batch is over.
 */
static void
usock_close(struct usock *s)
{
	struct upstream *up = s->up;

	usock_retire(s);
	close(s->fd);
	s->fd = -1;
	if (up->in_batch) {
		s->dead = up->dead;
		up->dead = s;
	} else
		free(s);
}

/* Close s if no try waits on it and nothing is working on it. */
static void
usock_release(struct usock *s)
{
	if (s->pending == 0 && !s->busy && !s->corked)
		usock_close(s);
}

/* The try in slot i is over on s: answered, timed out or moved on. */
static void
usock_leave(struct usock *s, unsigned i)
{
	s->slot[i].uq = NULL;
	s->pending--;
	usock_release(s);
}

/* Close whatever transport the current try uses. */
static void
uq_close_transport(struct upstream_query *uq)
{
	if (uq->sock != NULL) {
		struct usock *s = uq->sock;
		TAILQ_REMOVE(&uq->up->timing, uq, timing);
		uq->sock = NULL;
		usock_leave(s, uq->slot);
	}
	if (uq->bev) {
		bufferevent_free(uq->bev);
		uq->bev = NULL;
	}
	if (uq->tls) {
		TAILQ_REMOVE(&uq->up->timing, uq, timing);
		uq->tls = false;
		dot_query_cancel(&uq->dq);	/* a no-op once answered */
	}
}

/* The one exit of every upstream query. */
static void
uq_finish(struct upstream_query *uq, uint8_t *reply, size_t len,
    struct dns_reply *r)
{
	struct upstream *up = uq->up;
	struct upstream_query **pp = table_slot(up, &uq->key);

	uq_close_transport(uq);
	if (*pp == uq)
		*pp = uq->hnext;
	up->inflight--;
	if (reply != NULL && uq->server < up->nhealth)
		upstream_stats_answer(&up->health[uq->server],
		    now_us_monotonic() - uq->sent_us, &up->health_logged[uq->server],
		    up->sys.now_ms(up->sys.arg));
	up->done(up->arg, &uq->key, reply, len, r,
	    uq->addr_text[0] != '\0' ? uq->addr_text : NULL,
	    reply != NULL ? UPSTREAM_FAIL_NONE : uq->why, &uq->waiters);
	/* The callee answered every waiter; any left are detached. */
	struct upstream_waiter *w;
	while ((w = TAILQ_FIRST(&uq->waiters)) != NULL) {
		TAILQ_REMOVE(&uq->waiters, w, entry);
		w->uq = NULL;
	}
	free(uq);
}

/*
 * A fresh UDP socket for the tries that will share it: bound to a random
 * port (RFC 5452 section 9.2, the whole range above 1023 rather than the
 * kernel's smaller ephemeral range) and connected to the server. Being
 * connected, the kernel passes it only datagrams from that address and
 * port, and an ICMP port unreachable comes back as ECONNREFUSED on the
 * next read, so a closed port upstream fails over at once.
 */
static int
udp_socket_open(struct upstream *up, const struct netaddr *to)
{
	int family = to->ss.ss_family;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -1;
	for (int i = 0; i < PORT_TRIES; i++) {
		struct sockaddr_storage ss = { .ss_family = family };
		uint16_t r;
		socklen_t len;
		if (random16(up, &r) == -1) {
			int saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		in_port_t port = htons(1024 + r % (65536 - 1024));
		if (family == AF_INET) {
			((struct sockaddr_in *)&ss)->sin_port = port;
			len = sizeof(struct sockaddr_in);
		} else {
			((struct sockaddr_in6 *)&ss)->sin6_port = port;
			len = sizeof(struct sockaddr_in6);
		}
		if (bind(fd, (struct sockaddr *)&ss, len) == 0)
			break;
		/* Every try taken: connect() lets the kernel pick. */
	}
	if (connect(fd, (const struct sockaddr *)&to->ss, to->len) == -1) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

enum reply_kind {
	REPLY_FORGED,		/* not ours: count and keep waiting */
	REPLY_ANSWER,		/* the answer to uq; r describes it */
	REPLY_BARE_ERROR,	/* ours, an error without a question */
};

/*
 * Is this message the answer to uq? It came from uq's server: the UDP
 * socket is connected to it, the TCP one too. Forgeries are counted and
 * ignored.
 */
static enum reply_kind
reply_classify(struct upstream_query *uq, const uint8_t *pkt, size_t len,
    struct dns_reply *r)
{
	uint16_t id;
	uint8_t rcode;

	if (dnsmsg_parse_reply(pkt, len, r) == 0) {
		if (r->id != uq->id || r->qtype != uq->qtype ||
		    r->qclass != uq->qclass || r->qname_len != uq->lname_len ||
		    memcmp(r->qname, uq->lname, uq->lname_len) != 0)
			goto forged;
		return REPLY_ANSWER;
	}
	/* A refusal without the question: the ID is all we can check. */
	if (dnsmsg_parse_bare_error(pkt, len, &id, &rcode) == 0 &&
	    id == uq->id) {
		r->rcode = rcode;
		return REPLY_BARE_ERROR;
	}
forged:
	uq->up->ctr->forged_replies++;
	return REPLY_FORGED;
}

static void	uq_try_tcp(struct upstream_query *);

/* The try at uq->server failed for why: note it, go to the next server. */
static void
uq_fail(struct upstream_query *uq, enum upstream_fail why)
{
	struct upstream *up = uq->up;

	uq->why = why;
	if (uq->server < up->nhealth)
		upstream_stats_fail(&up->health[uq->server], why,
		    &up->health_logged[uq->server], up->sys.now_ms(up->sys.arg));
	uq_next_server(uq);
}

/* An error code from an upstream, as a failure. */
static enum upstream_fail
rcode_fail(uint8_t rcode)
{
	if (rcode == DNS_RCODE_REFUSED)
		return UPSTREAM_FAIL_REFUSED;
	if (rcode == DNS_RCODE_SERVFAIL)
		return UPSTREAM_FAIL_SERVFAIL;
	return UPSTREAM_FAIL_RCODE;
}

/* Decide what a matching reply means: an answer, TCP, or the next server. */
static void
uq_take_reply(struct upstream_query *uq, uint8_t *pkt, size_t len,
    struct dns_reply *r, bool over_tcp)
{
	if (r->tc) {
		if (over_tcp) {
			uq_fail(uq, UPSTREAM_FAIL_RCODE);
			return;
		}
		uq->up->ctr->upstream_tcp++;
		uq_try_tcp(uq);
		return;
	}
	if (r->rcode == DNS_RCODE_SERVFAIL || r->rcode == DNS_RCODE_REFUSED ||
	    r->rcode == DNS_RCODE_NOTIMP || r->rcode == DNS_RCODE_FORMERR) {
		uq->up->ctr->upstream_errors++;
		uq_fail(uq, rcode_fail(r->rcode));
		return;
	}
	if (!over_tcp && uq->whole) {
		/* A client over TCP joined while the UDP try was out. */
		uq->up->ctr->upstream_tcp++;
		uq_try_tcp(uq);
		return;
	}
	r->over_tcp = over_tcp;
	uq_finish(uq, pkt, len, r);
}

/* The question of a try, hashed, to know a late reply for it from a forgery. */
static uint32_t
qhash(const uint8_t *lname, size_t len, uint16_t qtype, uint16_t qclass)
{
	return hash_bytes(lname, len, (uint64_t)qtype << 16 | qclass);
}

/* An error a socket reports that says its server cannot be reached. */
static bool
peer_error(int e)
{
	return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH ||
	    e == EHOSTDOWN || e == ENETDOWN;
}

/* The tries waiting on s from slot `from` on fail there and move on to
 * their next server. */
static void
usock_move_on(struct usock *s, unsigned from)
{
	unsigned end = s->nslots;
	bool busy = s->busy;

	s->busy = true;
	for (unsigned i = from; i < end; i++) {
		struct upstream_query *uq = s->slot[i].uq;
		if (uq == NULL)
			continue;
		s->up->ctr->upstream_errors++;
		uq_fail(uq, UPSTREAM_FAIL_NETWORK);	/* leaves s */
	}
	s->busy = busy;
	usock_release(s);
}

/*
 * Every try still waiting on s moves on to its next server: the socket
 * reported an error, typically ECONNREFUSED from an ICMP port unreachable,
 * which says the server is not listening, whichever try it came for.
 */
static void
usock_fail(struct usock *s)
{
	usock_retire(s);
	usock_move_on(s, 0);
}

/* One datagram that came on s: find its try by the ID and judge it. */
static void
usock_take(struct usock *s, uint8_t *pkt, size_t len, int flags)
{
	struct upstream *up = s->up;
	struct upstream_query *uq;
	struct dns_reply r;
	unsigned i;
	uint16_t id;

	if (len < DNS_HEADER_LEN) {
		up->ctr->forged_replies++;
		return;
	}
	id = (uint16_t)(pkt[0] << 8 | pkt[1]);
	for (i = 0; i < s->nslots && s->slot[i].id != id; i++)
		;
	if (i == s->nslots) {
		up->ctr->forged_replies++;
		return;
	}
	uq = s->slot[i].uq;
	if (uq == NULL || (flags & MSG_TRUNC)) {
		/* Only the question is left to check. */
		if (dnsmsg_parse_reply_question(pkt, len, &r) == -1 ||
		    qhash(r.qname, r.qname_len, r.qtype, r.qclass) !=
		    s->slot[i].qhash) {
			up->ctr->forged_replies++;
			return;
		}
		if (uq == NULL) {
			up->ctr->upstream_late++;	/* its try gave up */
			return;
		}
		/* Past what we asked for, and cut short: ask over TCP. */
		up->ctr->upstream_tcp++;
		uq_try_tcp(uq);
		return;
	}
	switch (reply_classify(uq, pkt, len, &r)) {
	case REPLY_ANSWER:
		uq_take_reply(uq, pkt, len, &r, false);
		break;
	case REPLY_BARE_ERROR:
		up->ctr->upstream_errors++;
		uq_fail(uq, rcode_fail(r.rcode));
		break;
	case REPLY_FORGED:
		break;
	}
}

/*
 * Read what came on s, one batch; a longer queue makes epoll report s
 * again, so a flood of forgeries cannot keep us here.
 */
static void
usock_read(struct usock *s)
{
	struct upstream *up = s->up;
	int n, err = 0;

	if (s->fd == -1)		/* closed earlier in this batch */
		return;
	s->busy = true;
	n = recvmmsg(s->fd, up->rmsg, RECV_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		/* The error is reported first and only once: the answers
		 * that came before it are still queued, and still good. */
		err = errno;
		n = recvmmsg(s->fd, up->rmsg, RECV_BATCH, MSG_DONTWAIT, NULL);
	}
	for (int i = 0; i < n; i++)
		usock_take(s, up->rbufs[i], up->rmsg[i].msg_len,
		    up->rmsg[i].msg_hdr.msg_flags);
	if (peer_error(err))
		usock_fail(s);
	s->busy = false;
	usock_release(s);
}

/*
 * Sockets in up->epfd are ready. Each event names its socket; one closed
 * while the batch is worked through is freed after it.
 */
static void
udp_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *up = arg;
	struct epoll_event evs[EPOLL_BATCH];
	struct usock *s;
	int n;

	n = epoll_wait(fd, evs, EPOLL_BATCH, 0);
	up->in_batch = true;
	for (int i = 0; i < n; i++)
		usock_read(evs[i].data.ptr);
	up->in_batch = false;
	while ((s = up->dead) != NULL) {
		up->dead = s->dead;
		free(s);
	}
}

void
upstream_expire(struct upstream *up)
{
	uint64_t now = up->sys.now_ms(up->sys.arg);
	struct upstream_query *uq;

	/* A try that moves on joins the list again, due a timeout later. */
	while ((uq = TAILQ_FIRST(&up->timing)) != NULL && uq->deadline <= now) {
		up->ctr->upstream_timeouts++;
		dot_query_timeout(&uq->dq);	/* a no-op when not over TLS */
		uq_fail(uq, UPSTREAM_FAIL_TIMEOUT);
	}
	expire_arm(up, now);
}

/* The socket a try at server i is sent from: the current one, or a new
 * one. NULL with errno set when none can be opened. */
static struct usock *
usock_get(struct upstream *up, size_t i, const struct netaddr *to,
    uint64_t now)
{
	unsigned limit = up->cfg->upstream_queries_per_socket;
	struct epoll_event ev = { .events = EPOLLIN };
	struct usock *s;
	int saved;

	if (i < up->ncur && (s = up->cur[i]) != NULL) {
		if (now <= s->open_until)
			return s;
		usock_retire(s);
	}
	if (limit < 1)
		limit = 1;
	if ((s = calloc(1, sizeof(*s) + limit * sizeof(s->slot[0]))) == NULL)
		return NULL;
	s->up = up;
	s->limit = limit;
	s->open_until = now + up->cfg->upstream_timeout_ms;
	if ((s->fd = udp_socket_open(up, to)) == -1) {
		saved = errno;
		free(s);
		errno = saved;
		return NULL;
	}
	ev.data.ptr = s;
	if (epoll_ctl(up->epfd, EPOLL_CTL_ADD, s->fd, &ev) == -1) {
		saved = errno;
		log_warn("upstream epoll_ctl");
		close(s->fd);
		free(s);
		errno = saved;
		return NULL;
	}
	up->ctr->upstream_sockets++;
	if (i < up->ncur && limit > 1) {
		up->cur[i] = s;
		s->home = &up->cur[i];
	}
	return s;
}

/* uq joins s under an ID that no try on s has had. -1 when there is no
 * random ID to give it. */
static int
usock_attach(struct usock *s, struct upstream_query *uq)
{
	unsigned i;
	uint16_t id;

again:
	if (random16(s->up, &id) == -1)
		return -1;
	for (i = 0; i < s->nslots; i++)
		if (s->slot[i].id == id)
			goto again;
	s->slot[i] = (struct usock_slot){ id,
	    qhash(uq->lname, uq->lname_len, uq->qtype, uq->qclass), uq };
	s->nslots++;
	s->pending++;
	if (s->nslots == s->limit)
		usock_retire(s);
	uq->sock = s;
	uq->slot = i;
	uq->id = id;
	return 0;
}

/*
 * Send the tries on s that have not gone out yet, in one sendmmsg(). An
 * error that says the server cannot be reached (an ICMP error an earlier
 * try drew) fails every try on s, as the server would fail them; any other
 * (a full buffer, a firewall's EPERM) fails only the tries not sent.
 */
static void
usock_send(struct usock *s)
{
	struct mmsghdr mm[UPSTREAM_SOCKET_QUERIES_MAX];
	struct iovec iov[UPSTREAM_SOCKET_QUERIES_MAX];
	unsigned idx[UPSTREAM_SOCKET_QUERIES_MAX];
	unsigned n = 0, done = 0;
	int r;

	for (unsigned i = s->sent; i < s->nslots; i++) {
		struct upstream_query *uq = s->slot[i].uq;
		if (uq == NULL)
			continue;
		idx[n] = i;
		iov[n] = (struct iovec){ uq->qbuf, uq->qlen };
		mm[n] = (struct mmsghdr){ .msg_hdr = {
			.msg_iov = &iov[n], .msg_iovlen = 1 } };
		n++;
	}
	s->sent = s->nslots;
	/*
	 * sendmmsg() reports an error only for its first message. One
	 * message goes by send(): sendmmsg() costs a miss 4-7 % more there
	 * (A/B, both orders), and one a socket is the usual case.
	 */
	while (done < n) {
		if (n - done == 1)
			r = send(s->fd, iov[done].iov_base, iov[done].iov_len,
			    0) == -1 ? -1 : 1;
		else
			r = sendmmsg(s->fd, mm + done, n - done, 0);
		if (r <= 0)
			break;
		done += (unsigned)r;
	}
	s->up->ctr->upstream_queries += done;
	if (done == n)
		return;
	if (peer_error(errno))
		usock_fail(s);
	else
		usock_move_on(s, idx[done]);	/* the tries not sent */
}

/*
 * A try that could not go out (no socket: out of descriptors, say; or no
 * random bytes): said at most once a second, with how many more there
 * were, so that a busy server out of descriptors does not flood its log.
 */
static void
warn_try(struct upstream *up, const char *what, const char *server,
    uint64_t now)
{
	int saved = errno;

	if (up->warned_ms != 0 && now - up->warned_ms < 1000) {
		up->unwarned++;
		return;
	}
	errno = saved;
	if (up->unwarned > 0)
		log_warn("cannot %s to upstream %s (and %lu more times since "
		    "the last message)", what, server, up->unwarned);
	else
		log_warn("cannot %s to upstream %s", what, server);
	up->warned_ms = now;
	up->unwarned = 0;
}

static void
uq_try_udp(struct upstream_query *uq)
{
	struct upstream *up = uq->up;
	uint64_t now = up->sys.now_ms(up->sys.arg);
	struct usock *s;

	if ((s = usock_get(up, uq->server, &uq->addr, now)) == NULL) {
		/* A refused connect() is the server's fault, not ours. */
		if (!peer_error(errno))
			warn_try(up, "open a socket", uq->addr_text, now);
		up->ctr->upstream_errors++;
		uq_fail(uq, UPSTREAM_FAIL_NETWORK);
		return;
	}
	if (usock_attach(s, uq) == -1) {
		warn_try(up, "draw a random query ID", uq->addr_text, now);
		usock_release(s);	/* closed if opened for this try */
		up->ctr->upstream_errors++;
		uq_fail(uq, UPSTREAM_FAIL_NETWORK);
		return;
	}
	uq->qlen = dnsmsg_build_query(uq->qbuf, uq->id, uq->lname,
	    uq->lname_len, uq->qtype, uq->qclass, uq->do_bit, uq->cd);
	uq->deadline = now + up->cfg->upstream_timeout_ms;
	TAILQ_INSERT_TAIL(&up->timing, uq, timing);
	expire_arm(up, now);
	if (up->cork && (s->corked || up->ncorked < CORK_SOCKETS)) {
		if (!s->corked) {
			s->corked = true;
			up->corked[up->ncorked++] = s;
		}
		return;		/* sent by upstream_uncork() */
	}
	usock_send(s);
}

void
upstream_cork(struct upstream *up)
{
	up->cork = true;
}

void
upstream_uncork(struct upstream *up)
{
	size_t n = up->ncorked;

	up->cork = false;
	up->ncorked = 0;
	/*
	 * Tries moved on from a failing socket below go out at once; a
	 * socket stays open while it is still in the list.
	 */
	for (size_t i = 0; i < n; i++) {
		struct usock *s = up->corked[i];
		usock_send(s);
		s->corked = false;
		usock_release(s);
	}
}

static void
tcp_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream_query *uq = arg;
	struct upstream *up = uq->up;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t lenbuf[2];
	struct dns_reply r;

	if (evbuffer_copyout(in, lenbuf, 2) < 2)
		return;
	size_t mlen = (size_t)lenbuf[0] << 8 | lenbuf[1];
	if (evbuffer_get_length(in) < 2 + mlen)
		return;
	evbuffer_drain(in, 2);
	evbuffer_remove(in, up->rbuf, mlen);
	enum reply_kind kind = reply_classify(uq, up->rbuf, mlen, &r);
	if (kind != REPLY_ANSWER) {
		/* Over TCP there is no one else to wait for. */
		uq_fail(uq, kind == REPLY_BARE_ERROR ? rcode_fail(r.rcode) :
		    UPSTREAM_FAIL_NETWORK);
		return;
	}
	uq_take_reply(uq, up->rbuf, mlen, &r, true);
}

static void
tcp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream_query *uq = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_TIMEOUT)
		uq->up->ctr->upstream_timeouts++;
	else
		uq->up->ctr->upstream_errors++;	/* closed mid-answer, refused */
	uq_fail(uq, what & BEV_EVENT_TIMEOUT ? UPSTREAM_FAIL_TIMEOUT :
	    UPSTREAM_FAIL_NETWORK);
}

static void
uq_try_tcp(struct upstream_query *uq)
{
	struct upstream *up = uq->up;
	struct timeval tv = {
		up->cfg->upstream_timeout_ms / 1000,
		(up->cfg->upstream_timeout_ms % 1000) * 1000
	};
	uint8_t lenbuf[2] = { uq->qlen >> 8, uq->qlen & 0xff };

	uq_close_transport(uq);
	uq->bev = bufferevent_socket_new(up->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (uq->bev == NULL) {
		uq_fail(uq, UPSTREAM_FAIL_NETWORK);
		return;
	}
	bufferevent_setcb(uq->bev, tcp_read_cb, NULL, tcp_event_cb, uq);
	bufferevent_set_timeouts(uq->bev, &tv, &tv);
	bufferevent_write(uq->bev, lenbuf, 2);
	bufferevent_write(uq->bev, uq->qbuf, uq->qlen);
	bufferevent_enable(uq->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(uq->bev, (struct sockaddr *)&uq->addr.ss,
	    (int)uq->addr.len) == -1) {
		up->ctr->upstream_errors++;
		/* The bufferevent is freed in uq_next_server(). */
		uq_fail(uq, UPSTREAM_FAIL_NETWORK);
		return;
	}
	up->ctr->upstream_queries++;
	if (uq->server < up->nhealth)
		up->health[uq->server].queries++;
}

/* What a TLS upstream sent for uq, or why it failed. */
static void
tls_answer_cb(void *arg, struct dot_query *q, uint8_t *msg, size_t len,
    const char *why)
{
	struct upstream_query *uq = arg;
	struct dns_reply r;

	if (msg == NULL) {
		uq->up->ctr->upstream_errors++;
		uq_fail(uq, UPSTREAM_FAIL_NETWORK);
		return;
	}
	uq->id = q->id;		/* a re-sent query went out under another */
	enum reply_kind kind = reply_classify(uq, msg, len, &r);
	if (kind != REPLY_ANSWER) {
		/* On a connection of our own: nobody else to wait for. */
		uq_fail(uq, kind == REPLY_BARE_ERROR ? rcode_fail(r.rcode) :
		    UPSTREAM_FAIL_NETWORK);
		return;
	}
	uq_take_reply(uq, msg, len, &r, true);
}

/* A try over TLS: the query, padded (RFC 8467), on a pooled connection. */
static void
uq_try_tls(struct upstream_query *uq)
{
	struct upstream *up = uq->up;
	struct dot_upstream *du = upstream_tls_pool(up, uq->server);
	uint64_t now = up->sys.now_ms(up->sys.arg);

	uq->qlen = dnsmsg_build_query(uq->qbuf, 0, uq->lname, uq->lname_len,
	    uq->qtype, uq->qclass, uq->do_bit, uq->cd);
	uq->qlen = dot_pad_query(uq->qbuf, uq->qlen, sizeof(uq->qbuf));
	if (du == NULL || dot_send(du, &uq->dq, uq->qbuf, uq->qlen,
	    tls_answer_cb, uq) == -1) {
		up->ctr->upstream_errors++;
		uq_fail(uq, UPSTREAM_FAIL_NETWORK);
		return;
	}
	uq->id = uq->dq.id;
	up->ctr->upstream_queries++;
	uq->deadline = now + up->cfg->upstream_timeout_ms;
	TAILQ_INSERT_TAIL(&up->timing, uq, timing);
	uq->tls = true;
	expire_arm(up, now);
}

/* Start a try at uq->server: a new ID, a port that has not carried this
 * question (or a TLS connection), the same question. */
static void
uq_try(struct upstream_query *uq)
{
	struct upstream *up = uq->up;
	const struct config_upstream *u = &up->cfg->upstreams[uq->server];

	uq->addr = u->addr;
	memcpy(uq->addr_text, u->text, sizeof(uq->addr_text));
	uq->sent_us = now_us_monotonic();
	if (uq->server < up->nhealth && (u->tls_name[0] != '\0' || !uq->whole))
		up->health[uq->server].queries++;	/* TCP counts its own */
	if (u->tls_name[0] != '\0') {
		uq_try_tls(uq);		/* a stream: replies come whole */
		return;
	}
	if (!uq->whole) {
		uq_try_udp(uq);
		return;
	}
	/* Straight to TCP: a new ID, the same question. */
	if (random16(up, &uq->id) == -1) {
		warn_try(up, "draw a random query ID", uq->addr_text,
		    up->sys.now_ms(up->sys.arg));
		up->ctr->upstream_errors++;
		uq_next_server(uq);
		return;
	}
	uq->qlen = dnsmsg_build_query(uq->qbuf, uq->id, uq->lname,
	    uq->lname_len, uq->qtype, uq->qclass, uq->do_bit, uq->cd);
	up->ctr->upstream_tcp++;
	uq_try_tcp(uq);
}

static void
uq_next_server(struct upstream_query *uq)
{
	uq_close_transport(uq);
	if (++uq->server >= uq->up->cfg->nupstreams) {
		uq_finish(uq, NULL, 0, NULL);
		return;
	}
	uq_try(uq);
}

int
upstream_submit(struct upstream *up, const struct cache_key *key,
    const uint8_t *lname, size_t lname_len, uint16_t qtype, uint16_t qclass,
    bool do_bit, bool cd, struct upstream_waiter *w)
{
	struct upstream_query **pp = table_slot(up, key);
	struct upstream_query *uq = *pp;

	if (uq != NULL) {
		if (uq->nwaiters >= up->cfg->server.max_waiters)
			return -1;
		TAILQ_INSERT_TAIL(&uq->waiters, w, entry);
		uq->nwaiters++;
		w->uq = uq;
		uq->whole |= w->whole;
		up->ctr->merged++;
		return 0;
	}
	if (up->inflight >= up->cfg->server.max_outstanding ||
	    up->cfg->nupstreams == 0)
		return -1;
	if ((uq = calloc(1, sizeof(*uq))) == NULL)
		return -1;
	uq->up = up;
	TAILQ_INIT(&uq->waiters);
	uq->key = *key;
	memcpy(uq->lname, lname, lname_len);
	uq->lname_len = (uint8_t)lname_len;
	uq->qtype = qtype;
	uq->qclass = qclass;
	uq->do_bit = do_bit;
	uq->cd = cd;
	uq->whole = w->whole;
	TAILQ_INSERT_TAIL(&uq->waiters, w, entry);
	uq->nwaiters = 1;
	w->uq = uq;
	uq->hnext = *pp;
	*pp = uq;
	up->inflight++;
	uq_try(uq);
	return 0;
}

void
upstream_cancel(struct upstream_waiter *w)
{
	struct upstream_query *uq = w->uq;

	if (uq == NULL)
		return;
	/* The query goes on: its answer still fills the cache. */
	TAILQ_REMOVE(&uq->waiters, w, entry);
	uq->nwaiters--;
	w->uq = NULL;
}

void
upstream_free(struct upstream *up)
{
	if (up == NULL)
		return;
	for (size_t i = 0; i < TABLE_SIZE; i++)
		while (up->table[i] != NULL)
			uq_finish(up->table[i], NULL, 0, NULL);
	/* Every socket closed with its last try. */
	for (size_t i = 0; i < up->ndot; i++)
		dot_upstream_free(up->dot[i]);
	free(up->dot);
	dot_ctx_free(up->dotctx);
	free(up->dot_ca);
	free(up->cur);
	event_free(up->expire_ev);
	free(up->health);
	free(up->health_logged);
	event_free(up->epev);
	close(up->epfd);
	free(up);
}
