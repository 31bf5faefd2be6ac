/*
 * upstream_test: the forwarder against fake upstream servers on loopback,
 * with a clock the test moves. Each fake server is a UDP socket and a TCP
 * listener on one port of 127.0.0.1; it sees what the forwarder sends
 * (source port, ID, question) and answers what a test tells it to: the
 * answer, a forgery, a late reply, a truncated one. Time passes only when
 * a test says so (clock_move() and upstream_expire()), as in Unbound's
 * replay tests: no test sleeps, and none depends on the machine's speed.
 */
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cache.h"
#include "config.h"
#include "counters.h"
#include "testpkt.h"
#include "upstream.h"
#include "upstream_internal.h"
#include "unit.h"

#define TIMEOUT_MS	1000	/* upstream_timeout_ms of the tests */
#define WAIT_MS		5000	/* for loopback I/O; reached only on a bug */
#define MAX_SERVERS	2

struct fake {
	int		 udp, tcp;	/* bound to the same port */
	uint16_t	 port;
};

/* A query as a fake server received it. */
struct seen {
	uint16_t		 id;
	char			 qname[256];	/* presentation form, "a.test." */
	uint16_t		 qtype;
	struct sockaddr_in	 from;		/* the forwarder's socket */
};

struct env {
	struct event_base	*base;
	struct config		*cfg;
	struct cache		*cache;
	struct counters		 ctr;
	struct upstream		*up;
	struct fake		 fake[MAX_SERVERS];
	uint64_t		 now;		/* the moved clock */
	bool			 random_fails;
	/* What the done callback saw, last call. */
	uint64_t		 ndone;
	bool			 answered;	/* a reply, not a failure */
	char			 from[64];
	uint8_t			 rcode;
	enum upstream_fail	 why;
	unsigned		 nwaiters;
	bool			 waited_out;	/* run_until() gave up */
};

/* ---- the clock and randomness given to the upstream ---- */

static uint64_t
clock_now(void *arg)
{
	return ((struct env *)arg)->now;
}

static void
clock_move(struct env *e, uint64_t ms)
{
	e->now += ms;
	upstream_expire(e->up);
}

static int
random_get(void *arg, void *buf, size_t len)
{
	if (((struct env *)arg)->random_fails) {
		errno = ENOSYS;
		return -1;
	}
	return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

/* ---- fake servers ---- */

static void
fake_open(struct fake *f)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int one = 1;

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	/* A port free for both protocols: TCP first, then UDP on it. */
	for (;;) {
		f->tcp = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(f->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		sin.sin_port = 0;
		if (bind(f->tcp, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    listen(f->tcp, 4) == -1) {
			perror("fake tcp");
			exit(1);
		}
		getsockname(f->tcp, (struct sockaddr *)&sin, &len);
		f->udp = socket(AF_INET, SOCK_DGRAM, 0);
		if (bind(f->udp, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			break;
		close(f->udp);
		close(f->tcp);
	}
	f->port = ntohs(sin.sin_port);
}

static void
fake_close(struct fake *f)
{
	close(f->udp);
	close(f->tcp);
}

static bool
readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static void
seen_parse(const uint8_t *pkt, size_t len, struct seen *q)
{
	ldns_pkt *p = NULL;

	memset(q, 0, sizeof(*q));
	if (ldns_wire2pkt(&p, pkt, len) != LDNS_STATUS_OK ||
	    ldns_pkt_qdcount(p) != 1)
		return;
	ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	char *name = ldns_rdf2str(ldns_rr_owner(rr));
	q->id = ldns_pkt_id(p);
	snprintf(q->qname, sizeof(q->qname), "%s", name);
	q->qtype = ldns_rr_get_type(rr);
	free(name);
	ldns_pkt_free(p);
}

/*
 * The next query the fake got over UDP, into q; false when none came. The
 * forwarder has sent it before upstream_submit() or upstream_uncork()
 * returns, but on a loaded machine the kernel may hand it over a little
 * later: wait for it.
 */
static bool
fake_recv(struct fake *f, struct seen *q)
{
	uint8_t buf[4096];
	socklen_t flen = sizeof(q->from);
	struct sockaddr_in from;
	ssize_t n;

	if (!readable(f->udp, WAIT_MS))
		return false;
	n = recvfrom(f->udp, buf, sizeof(buf), 0, (struct sockaddr *)&from,
	    &flen);
	if (n <= 0)
		return false;
	seen_parse(buf, (size_t)n, q);
	q->from = from;
	return true;
}

/* Nothing has come to the fake (yet: a check that cannot wait). */
static bool
fake_quiet(struct fake *f)
{
	return !readable(f->udp, 0);
}

/* The answer to q (one A record), with its ID and flags as given. */
static size_t
reply_make(const struct seen *q, uint16_t id, const char *qname, bool tc,
    uint8_t *out, size_t cap)
{
	char rr[300];
	const char *answer[] = { rr, NULL };

	snprintf(rr, sizeof(rr), "%s 300 IN A 192.0.2.1", qname);
	size_t len = testpkt_reply(qname, q->qtype, LDNS_RCODE_NOERROR,
	    tc ? NULL : answer, NULL, true, out, cap);
	out[0] = id >> 8;
	out[1] = id & 0xff;
	if (tc)
		out[2] |= 0x02;
	return len;
}

/* Send pkt from the fake's port to where q came from. */
static void
fake_send(struct fake *f, const struct seen *q, const uint8_t *pkt,
    size_t len)
{
	sendto(f->udp, pkt, len, 0, (const struct sockaddr *)&q->from,
	    sizeof(q->from));
}

static void
fake_answer(struct fake *f, const struct seen *q)
{
	uint8_t pkt[512];
	size_t len = reply_make(q, q->id, q->qname, false, pkt, sizeof(pkt));

	fake_send(f, q, pkt, len);
}

/* ---- the forwarder ---- */

static void
done_cb(void *arg, const struct cache_key *key, uint8_t *reply, size_t len,
    struct dns_reply *r, const char *from, enum upstream_fail why,
    struct upstream_waiters *waiters)
{
	struct env *e = arg;
	struct upstream_waiter *w;

	e->ndone++;
	e->why = why;
	e->answered = reply != NULL;
	snprintf(e->from, sizeof(e->from), "%s", from ? from : "");
	e->rcode = reply != NULL ? r->rcode : 0;
	e->nwaiters = 0;
	while ((w = TAILQ_FIRST(waiters)) != NULL) {
		TAILQ_REMOVE(waiters, w, entry);
		w->uq = NULL;
		e->nwaiters++;
	}
}

static struct config *
config_make(struct env *e, size_t nservers, unsigned timeout_ms,
    unsigned per_socket)
{
	struct config *cfg = config_default();

	cfg->upstreams = calloc(nservers, sizeof(cfg->upstreams[0]));
	cfg->nupstreams = nservers;
	for (size_t i = 0; i < nservers; i++) {
		struct sockaddr_in *sin =
		    (struct sockaddr_in *)&cfg->upstreams[i].addr.ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(e->fake[i].port);
		inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
		cfg->upstreams[i].addr.len = sizeof(*sin);
		snprintf(cfg->upstreams[i].text, sizeof(cfg->upstreams[i].text),
		    "127.0.0.1:%u", e->fake[i].port);
	}
	cfg->upstream_timeout_ms = timeout_ms;
	cfg->upstream_queries_per_socket = per_socket;
	return cfg;
}

static struct env *
env_new(size_t nservers, unsigned per_socket, bool random_fails)
{
	struct env *e = calloc(1, sizeof(*e));
	struct cache_limits lim = { .max_entries = 16, .max_bytes = 65536,
	    .max_ttl = 86400, .max_negative_ttl = 3600 };
	struct upstream_sys sys = { clock_now, random_get, e };

	e->base = event_base_new();
	for (size_t i = 0; i < nservers; i++)
		fake_open(&e->fake[i]);
	e->cfg = config_make(e, nservers, TIMEOUT_MS, per_socket);
	e->cache = cache_new(&lim, 1);
	e->now = 1000000;
	e->random_fails = random_fails;
	e->up = upstream_new(e->base, e->cfg, &e->ctr, done_cb, e);
	if (e->base == NULL || e->cache == NULL || e->up == NULL) {
		fprintf(stderr, "env_new: out of memory\n");
		exit(1);
	}
	upstream_set_sys(e->up, &sys);
	return e;
}

static void
env_free(struct env *e)
{
	upstream_free(e->up);
	for (size_t i = 0; i < e->cfg->nupstreams; i++)
		fake_close(&e->fake[i]);
	config_free(e->cfg);
	cache_free(e->cache);
	event_base_free(e->base);
	free(e);
}

/* Ask for name/A on behalf of w, a client over UDP. */
static int
ask(struct env *e, const char *name, struct upstream_waiter *w)
{
	ldns_rdf *d = ldns_dname_new_frm_str(name);
	struct cache_key key;
	int r;

	w->whole = false;

	ldns_dname2canonical(d);
	cache_key_make(e->cache, &key, ldns_rdf_data(d), ldns_rdf_size(d),
	    LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, false, false);
	r = upstream_submit(e->up, &key, ldns_rdf_data(d), ldns_rdf_size(d),
	    LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, false, false, w);
	ldns_rdf_deep_free(d);
	return r;
}

static void
give_up_cb(evutil_socket_t fd, short what, void *arg)
{
	((struct env *)arg)->waited_out = true;
}

/*
 * Run the loop until *counter reaches want: the forwarder handles what the
 * fakes sent. Real time plays no part in what it decides (its clock is
 * ours); the guard only ends a test that would otherwise hang.
 */
static void
run_until(struct env *e, const uint64_t *counter, uint64_t want)
{
	struct event *guard = evtimer_new(e->base, give_up_cb, e);
	struct timeval tv = { WAIT_MS / 1000, 0 };

	e->waited_out = false;
	evtimer_add(guard, &tv);
	while (*counter < want && !e->waited_out)
		event_base_loop(e->base, EVLOOP_ONCE);
	event_free(guard);
	if (e->waited_out)
		fprintf(stderr, "run_until: gave up waiting\n");
}

/* Run the loop until fd is readable (the forwarder wrote to a fake). */
static bool
run_until_readable(struct env *e, int fd)
{
	for (int i = 0; i < WAIT_MS && !readable(fd, 0); i++) {
		event_base_loop(e->base, EVLOOP_NONBLOCK);
		readable(fd, 1);
	}
	return readable(fd, 0);
}

/* ---- tests ---- */

/* A question goes to the first server from a random port above 1023 and
 * its answer comes back to the waiter, named after the server. */
static void
test_answer(void)
{
	struct env *e = env_new(1, 16, false);
	struct upstream_waiter w;
	struct seen q;

	CHECK_INT(ask(e, "www.example.test.", &w), 0);
	CHECK_INT(upstream_inflight(e->up), 1);
	CHECK(fake_recv(&e->fake[0], &q));
	CHECK_STR(q.qname, "www.example.test.");
	CHECK_INT(q.qtype, LDNS_RR_TYPE_A);
	CHECK(ntohs(q.from.sin_port) >= 1024);
	fake_answer(&e->fake[0], &q);
	run_until(e, &e->ndone, 1);
	CHECK_INT(e->ndone, 1);
	CHECK(e->answered);
	CHECK_INT(e->nwaiters, 1);
	CHECK_STR(e->from, e->cfg->upstreams[0].text);
	CHECK_INT(e->ctr.upstream_queries, 1);
	CHECK_INT(e->ctr.forged_replies, 0);
	CHECK_INT(upstream_inflight(e->up), 0);
	env_free(e);
}

/*
 * The first server says nothing: one timeout later by the clock, and not a
 * millisecond sooner, the try moves to the second server, from another
 * port. The first server's answer, late now, is not taken; the second's
 * is.
 */
static void
test_failover_on_timeout(void)
{
	struct env *e = env_new(2, 16, false);
	struct upstream_waiter w;
	struct seen q0, q1;

	CHECK_INT(ask(e, "slow.example.test.", &w), 0);
	CHECK(fake_recv(&e->fake[0], &q0));
	clock_move(e, TIMEOUT_MS - 1);
	CHECK_INT(e->ctr.upstream_timeouts, 0);
	CHECK(fake_quiet(&e->fake[1]));
	clock_move(e, 1);
	CHECK_INT(e->ctr.upstream_timeouts, 1);
	CHECK(fake_recv(&e->fake[1], &q1));
	CHECK_STR(q1.qname, "slow.example.test.");
	CHECK(q1.from.sin_port != q0.from.sin_port);
	CHECK_INT(e->ndone, 0);

	/* The socket the first try had closed with it: nothing takes this. */
	fake_answer(&e->fake[0], &q0);
	fake_answer(&e->fake[1], &q1);
	run_until(e, &e->ndone, 1);
	CHECK(e->answered);
	CHECK_STR(e->from, e->cfg->upstreams[1].text);
	CHECK_INT(e->ctr.upstream_queries, 2);
	env_free(e);
}

/* Every server silent: the waiter hears of the failure after one timeout
 * a server, and nothing is left in flight. */
static void
test_all_servers_time_out(void)
{
	struct env *e = env_new(2, 16, false);
	struct upstream_waiter w;
	struct seen q;

	CHECK_INT(ask(e, "gone.example.test.", &w), 0);
	clock_move(e, TIMEOUT_MS);
	CHECK_INT(e->ndone, 0);
	clock_move(e, TIMEOUT_MS);
	CHECK_INT(e->ndone, 1);
	CHECK(!e->answered);
	CHECK_INT(e->nwaiters, 1);
	CHECK_INT(e->ctr.upstream_timeouts, 2);
	CHECK(fake_recv(&e->fake[0], &q));
	CHECK(fake_recv(&e->fake[1], &q));
	CHECK_INT(upstream_inflight(e->up), 0);
	env_free(e);
}

/*
 * Replies that are not the answer are counted as forged and change
 * nothing: another ID, another question under the right ID, one too short
 * for a header. The answer that follows is taken.
 */
static void
test_forged_replies(void)
{
	struct env *e = env_new(1, 16, false);
	struct upstream_waiter w;
	uint8_t pkt[512];
	struct seen q;
	size_t len;

	CHECK_INT(ask(e, "www.example.test.", &w), 0);
	CHECK(fake_recv(&e->fake[0], &q));
	len = reply_make(&q, (uint16_t)(q.id + 1), q.qname, false, pkt,
	    sizeof(pkt));
	fake_send(&e->fake[0], &q, pkt, len);
	run_until(e, &e->ctr.forged_replies, 1);
	len = reply_make(&q, q.id, "www.example-forged.test.", false, pkt,
	    sizeof(pkt));
	fake_send(&e->fake[0], &q, pkt, len);
	run_until(e, &e->ctr.forged_replies, 2);
	fake_send(&e->fake[0], &q, pkt, 5);
	run_until(e, &e->ctr.forged_replies, 3);
	CHECK_INT(e->ctr.forged_replies, 3);
	CHECK_INT(e->ndone, 0);
	fake_answer(&e->fake[0], &q);
	run_until(e, &e->ndone, 1);
	CHECK(e->answered);
	CHECK_INT(e->ctr.forged_replies, 3);
	env_free(e);
}

/*
 * A try that timed out keeps its place on a shared socket while others
 * wait there: its server's late reply is counted late, not forged, and a
 * reply under its ID that asks another question is forged.
 */
static void
test_late_and_forged_after_timeout(void)
{
	struct env *e = env_new(2, 16, false);
	struct upstream_waiter w1, w2;
	uint8_t pkt[512];
	struct seen q1, q2, q1b;
	size_t len;

	CHECK_INT(ask(e, "one.example.test.", &w1), 0);
	e->now += TIMEOUT_MS / 2;	/* no expiry: one.example is not due */
	CHECK_INT(ask(e, "two.example.test.", &w2), 0);
	CHECK(fake_recv(&e->fake[0], &q1));
	CHECK(fake_recv(&e->fake[0], &q2));
	CHECK(q1.from.sin_port == q2.from.sin_port);	/* shared */
	clock_move(e, TIMEOUT_MS / 2);	/* one.example times out */
	CHECK_INT(e->ctr.upstream_timeouts, 1);
	CHECK(fake_recv(&e->fake[1], &q1b));
	CHECK_STR(q1b.qname, "one.example.test.");

	fake_answer(&e->fake[0], &q1);	/* late */
	run_until(e, &e->ctr.upstream_late, 1);
	CHECK_INT(e->ctr.upstream_late, 1);
	len = reply_make(&q1, q1.id, "other.example.test.", false, pkt,
	    sizeof(pkt));
	fake_send(&e->fake[0], &q1, pkt, len);
	run_until(e, &e->ctr.forged_replies, 1);
	CHECK_INT(e->ctr.forged_replies, 1);
	CHECK_INT(e->ndone, 0);

	fake_answer(&e->fake[0], &q2);
	fake_answer(&e->fake[1], &q1b);
	run_until(e, &e->ndone, 2);
	CHECK_INT(e->ndone, 2);
	CHECK_INT(e->ctr.upstream_late, 1);
	CHECK_INT(e->ctr.forged_replies, 1);
	env_free(e);
}

/* Two clients asking the same question share one try and one answer. */
static void
test_merge(void)
{
	struct env *e = env_new(1, 16, false);
	struct upstream_waiter w1, w2;
	struct seen q;

	CHECK_INT(ask(e, "same.example.test.", &w1), 0);
	CHECK_INT(ask(e, "same.example.test.", &w2), 0);
	CHECK_INT(e->ctr.merged, 1);
	CHECK_INT(upstream_inflight(e->up), 1);
	CHECK(fake_recv(&e->fake[0], &q));
	CHECK(fake_quiet(&e->fake[0]));	/* asked once */
	fake_answer(&e->fake[0], &q);
	run_until(e, &e->ndone, 1);
	CHECK_INT(e->ndone, 1);
	CHECK_INT(e->nwaiters, 2);
	env_free(e);
}

static int
port_count(const struct seen *q, size_t n, uint16_t port)
{
	int c = 0;

	for (size_t i = 0; i < n; i++)
		c += q[i].from.sin_port == port;
	return c;
}

/*
 * A socket takes at most upstream_queries_per_socket tries, each under an
 * ID no other try on it has, and only for one timeout after it opened:
 * six questions sent together at four a socket go out from two ports, four
 * and two; a question after the timeout gets a port of its own.
 */
static void
test_socket_sharing_limits(void)
{
	struct env *e = env_new(1, 4, false);
	struct upstream_waiter w[7];
	char name[64];
	struct seen q[7];
	size_t n = 0;

	upstream_cork(e->up);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "q%d.example.test.", i);
		CHECK_INT(ask(e, name, &w[i]), 0);
	}
	CHECK(fake_quiet(&e->fake[0]));	/* held back while corked */
	upstream_uncork(e->up);
	while (n < 6 && fake_recv(&e->fake[0], &q[n]))
		n++;
	CHECK_INT(n, 6);
	CHECK(fake_quiet(&e->fake[0]));
	CHECK_INT(e->ctr.upstream_sockets, 2);
	CHECK_INT(port_count(q, n, q[0].from.sin_port), 4);
	CHECK_INT(port_count(q, n, q[5].from.sin_port), 2);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			CHECK(q[i].from.sin_port != q[j].from.sin_port ||
			    q[i].id != q[j].id);

	/* The second socket has room, but is a timeout old. */
	e->now += TIMEOUT_MS + 1;
	CHECK_INT(ask(e, "late.example.test.", &w[6]), 0);
	CHECK(fake_recv(&e->fake[0], &q[6]));
	CHECK_INT(e->ctr.upstream_sockets, 3);
	CHECK(q[6].from.sin_port != q[5].from.sin_port);
	for (size_t i = 0; i < 7; i++)
		fake_answer(&e->fake[0], &q[i]);
	run_until(e, &e->ndone, 7);
	CHECK_INT(e->ndone, 7);
	CHECK_INT(e->ctr.upstream_late + e->ctr.forged_replies, 0);
	env_free(e);
}

/*
 * Take the forwarder's TCP connection to f, read the one query on it (its
 * question into tq) and answer it. False when no query came.
 */
static bool
fake_tcp_answer(struct env *e, struct fake *f, struct seen *tq)
{
	uint8_t pkt[512], lenbuf[2];
	size_t len;
	int c;

	if (!run_until_readable(e, f->tcp) ||
	    (c = accept(f->tcp, NULL, NULL)) == -1)
		return false;
	if (!run_until_readable(e, c) ||
	    recv(c, lenbuf, 2, MSG_WAITALL) != 2 ||
	    (len = (size_t)lenbuf[0] << 8 | lenbuf[1]) > sizeof(pkt) ||
	    recv(c, pkt, len, MSG_WAITALL) != (ssize_t)len) {
		close(c);
		return false;
	}
	seen_parse(pkt, len, tq);
	len = reply_make(tq, tq->id, tq->qname, false, pkt + 2,
	    sizeof(pkt) - 2);
	pkt[0] = len >> 8;
	pkt[1] = len & 0xff;
	send(c, pkt, len + 2, 0);
	run_until(e, &e->ndone, e->ndone + 1);
	close(c);
	return true;
}

/*
 * A truncated answer is asked again over TCP, of the same server, for the
 * same question; the answer over TCP is the one the waiter gets.
 */
static void
test_tcp_on_truncation(void)
{
	struct env *e = env_new(1, 16, false);
	struct upstream_waiter w;
	uint8_t pkt[512];
	struct seen q, tq;
	size_t len;

	CHECK_INT(ask(e, "big.example.test.", &w), 0);
	CHECK(fake_recv(&e->fake[0], &q));
	len = reply_make(&q, q.id, q.qname, true, pkt, sizeof(pkt));
	fake_send(&e->fake[0], &q, pkt, len);
	run_until(e, &e->ctr.upstream_tcp, 1);
	CHECK_INT(e->ctr.upstream_tcp, 1);
	CHECK(fake_tcp_answer(e, &e->fake[0], &tq));
	CHECK_STR(tq.qname, "big.example.test.");
	CHECK_INT(tq.qtype, LDNS_RR_TYPE_A);
	CHECK_INT(e->ndone, 1);
	CHECK(e->answered);
	CHECK_STR(e->from, e->cfg->upstreams[0].text);
	CHECK_INT(e->ctr.upstream_queries, 2);
	env_free(e);
}

/*
 * A server that ignores the EDNS size asked for and sends more than the
 * forwarder reads of a datagram: the reply, cut short, cannot be checked
 * whole, so its question (which survived the cut) is asked over TCP.
 */
static void
test_oversized_datagram_over_tcp(void)
{
	struct env *e = env_new(1, 16, false);
	static char rrs[300][64];
	const char *answer[301];
	struct upstream_waiter w;
	static uint8_t pkt[8192];
	struct seen q, tq;
	size_t len;

	for (int i = 0; i < 300; i++) {
		snprintf(rrs[i], sizeof(rrs[i]), "huge.example.test. 300 IN A "
		    "198.51.%d.%d", i / 250, i % 250 + 1);
		answer[i] = rrs[i];
	}
	answer[300] = NULL;
	CHECK_INT(ask(e, "huge.example.test.", &w), 0);
	CHECK(fake_recv(&e->fake[0], &q));
	len = testpkt_reply(q.qname, q.qtype, LDNS_RCODE_NOERROR, answer,
	    NULL, true, pkt, sizeof(pkt));
	CHECK(len > 4096);
	pkt[0] = q.id >> 8;
	pkt[1] = q.id & 0xff;
	fake_send(&e->fake[0], &q, pkt, len);
	run_until(e, &e->ctr.upstream_tcp, 1);
	CHECK_INT(e->ctr.upstream_tcp, 1);
	CHECK(fake_tcp_answer(e, &e->fake[0], &tq));
	CHECK_STR(tq.qname, "huge.example.test.");
	CHECK(e->answered);
	CHECK_INT(e->ctr.forged_replies, 0);
	env_free(e);
}

/*
 * A server that refuses or fails (SERVFAIL, REFUSED) and one whose port is
 * closed (the ICMP error comes back on the connected socket) are left at
 * once, not after the timeout: the clock does not move here.
 */
static void
test_errors_fail_over_at_once(void)
{
	struct env *e = env_new(2, 16, false);
	struct upstream_waiter w1, w2;
	uint8_t pkt[512];
	struct seen q, q1;
	size_t len;

	CHECK_INT(ask(e, "fail.example.test.", &w1), 0);
	CHECK(fake_recv(&e->fake[0], &q));
	len = testpkt_reply(q.qname, q.qtype, LDNS_RCODE_SERVFAIL, NULL, NULL,
	    true, pkt, sizeof(pkt));
	pkt[0] = q.id >> 8;
	pkt[1] = q.id & 0xff;
	fake_send(&e->fake[0], &q, pkt, len);
	run_until(e, &e->ctr.upstream_errors, 1);
	CHECK(fake_recv(&e->fake[1], &q1));
	fake_answer(&e->fake[1], &q1);
	run_until(e, &e->ndone, 1);
	CHECK(e->answered);
	CHECK_STR(e->from, e->cfg->upstreams[1].text);

	close(e->fake[0].udp);		/* the port is closed now */
	e->fake[0].udp = -1;
	CHECK_INT(ask(e, "closed.example.test.", &w2), 0);
	run_until(e, &e->ctr.upstream_errors, 2);
	CHECK_INT(e->ctr.upstream_errors, 2);
	CHECK(fake_recv(&e->fake[1], &q1));
	CHECK_STR(q1.qname, "closed.example.test.");
	fake_answer(&e->fake[1], &q1);
	run_until(e, &e->ndone, 2);
	CHECK(e->answered);
	CHECK_INT(e->ctr.upstream_timeouts, 0);
	env_free(e);
}

/*
 * Load shedding: past server.max_outstanding questions in flight, or
 * server.max_waiters clients on one question, upstream_submit() refuses
 * (the frontend answers SERVFAIL) and sends nothing.
 */
static void
test_limits(void)
{
	struct env *e = env_new(1, 16, false);
	struct upstream_waiter w[4];

	e->cfg->server.max_outstanding = 2;
	e->cfg->server.max_waiters = 2;
	CHECK_INT(ask(e, "a.example.test.", &w[0]), 0);
	CHECK_INT(ask(e, "b.example.test.", &w[1]), 0);
	CHECK_INT(ask(e, "c.example.test.", &w[2]), -1);
	CHECK_INT(upstream_inflight(e->up), 2);
	CHECK_INT(ask(e, "a.example.test.", &w[2]), 0);
	CHECK_INT(ask(e, "a.example.test.", &w[3]), -1);
	CHECK_INT(e->ctr.upstream_queries, 2);
	upstream_cancel(&w[2]);
	CHECK_INT(ask(e, "a.example.test.", &w[3]), 0);
	env_free(e);
}

/*
 * A reload shortens the timeout: the try in flight waits no longer than
 * the new timeout from the reload. Hundreds of reloads, each with a new
 * timeout, leave the daemon running (libevent's common timeouts, which
 * the tries once waited on, end at 256 and the 257th was fatal()).
 */
static void
test_reload_timeouts(void)
{
	struct env *e = env_new(1, 16, false);
	struct config *cfgs[300];
	struct upstream_waiter w;

	CHECK_INT(ask(e, "reload.example.test.", &w), 0);
	for (int i = 0; i < 300; i++) {
		cfgs[i] = config_make(e, 1, 3490 - (unsigned)i * 10, 16);
		upstream_reconfigure(e->up, cfgs[i]);
	}
	/* The last reload's timeout is 500 ms, the try's was 1000. */
	clock_move(e, 499);
	CHECK_INT(e->ctr.upstream_timeouts, 0);
	clock_move(e, 1);
	CHECK_INT(e->ctr.upstream_timeouts, 1);
	CHECK_INT(e->ndone, 1);
	CHECK(!e->answered);
	upstream_reconfigure(e->up, e->cfg);
	for (int i = 0; i < 300; i++)
		config_free(cfgs[i]);
	env_free(e);
}

/*
 * No random bytes for an ID or a port: the try does not go out with a
 * number a forger could guess, the query fails (SERVFAIL for its client)
 * and the daemon goes on; once randomness is back, queries are answered.
 */
static void
test_no_randomness(void)
{
	struct env *e = env_new(2, 16, true);
	struct upstream_waiter w1, w2;
	struct seen q;

	CHECK_INT(ask(e, "rnd.example.test.", &w1), 0);
	CHECK_INT(e->ndone, 1);
	CHECK(!e->answered);
	CHECK_INT(e->ctr.upstream_errors, 2);
	CHECK_INT(e->ctr.upstream_queries, 0);
	CHECK(fake_quiet(&e->fake[0]));
	CHECK(fake_quiet(&e->fake[1]));
	CHECK_INT(upstream_inflight(e->up), 0);

	e->random_fails = false;
	CHECK_INT(ask(e, "rnd.example.test.", &w2), 0);
	CHECK(fake_recv(&e->fake[0], &q));
	fake_answer(&e->fake[0], &q);
	run_until(e, &e->ndone, 2);
	CHECK(e->answered);
	env_free(e);
}

/* An error answer with q's ID and question and the given rcode. */
static void
fake_answer_rcode(struct fake *f, const struct seen *q, uint8_t rcode)
{
	uint8_t pkt[512];
	size_t len = testpkt_reply(q->qname, q->qtype, rcode, NULL, NULL, true,
	    pkt, sizeof(pkt));

	pkt[0] = q->id >> 8;
	pkt[1] = q->id & 0xff;
	fake_send(f, q, pkt, len);
}

static struct upstream_stats
stats_of(struct env *e, size_t i)
{
	struct upstream_stats st[MAX_SERVERS];

	memset(st, 0, sizeof(st));
	CHECK_INT(upstream_get_stats(e->up, st, MAX_SERVERS),
	    e->cfg->nupstreams);
	return st[i];
}

/*
 * Each upstream's health: a timeout at the first and a REFUSED from the
 * second are counted where they happened, the failure reaches the waiter
 * with the last server and why, three in a row make a server failing,
 * and an answer makes it healthy again with its time in the histogram.
 */
static void
test_health(void)
{
	struct env *e = env_new(2, 16, false);
	struct upstream_waiter w;
	struct upstream_stats s0, s1;
	struct seen q;
	char name[64];

	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "h%d.example.test.", i);
		CHECK_INT(ask(e, name, &w), 0);
		CHECK(fake_recv(&e->fake[0], &q));
		clock_move(e, TIMEOUT_MS);
		CHECK(fake_recv(&e->fake[1], &q));
		fake_answer_rcode(&e->fake[1], &q, LDNS_RCODE_REFUSED);
		run_until(e, &e->ndone, (uint64_t)i + 1);
		CHECK(!e->answered);
		CHECK_STR(e->from, e->cfg->upstreams[1].text);
		CHECK_INT(e->why, UPSTREAM_FAIL_REFUSED);
		s0 = stats_of(e, 0);
		CHECK_INT(s0.failing, i == 2);
	}
	s0 = stats_of(e, 0);
	s1 = stats_of(e, 1);
	CHECK_STR(s0.addr, e->cfg->upstreams[0].text);
	CHECK_INT(s0.queries, 3);
	CHECK_INT(s0.timeouts, 3);
	CHECK_INT(s0.answers, 0);
	CHECK_INT(s0.last_fail, UPSTREAM_FAIL_TIMEOUT);
	CHECK_INT(s1.queries, 3);
	CHECK_INT(s1.refused, 3);
	CHECK_INT(s1.timeouts, 0);
	CHECK(s1.failing);

	/* The second answers now: healthy, and its answer time is kept. */
	CHECK_INT(ask(e, "ok.example.test.", &w), 0);
	CHECK(fake_recv(&e->fake[0], &q));
	clock_move(e, TIMEOUT_MS);
	CHECK(fake_recv(&e->fake[1], &q));
	fake_answer(&e->fake[1], &q);
	run_until(e, &e->ndone, 4);
	CHECK(e->answered);
	CHECK_INT(e->why, UPSTREAM_FAIL_NONE);
	s1 = stats_of(e, 1);
	CHECK(!s1.failing);
	CHECK_INT(s1.answers, 1);
	CHECK_INT(s1.consecutive, 0);
	CHECK(upstream_stats_quantile_us(&s1, 0.5) > 0);
	CHECK(stats_of(e, 0).failing);
	env_free(e);
}

/*
 * The log lines of a flapping upstream: one a UPSTREAM_LOG_INTERVAL_MS, and
 * a change held back by the interval said by the first try after it that
 * shows it, so that the last line is the upstream's state.
 */
static void
test_health_log_rate(void)
{
	const uint64_t iv = UPSTREAM_LOG_INTERVAL_MS;
	struct upstream_stats s = { .addr = "192.0.2.1:53" };
	struct upstream_stats sum[2] = { 0 };
	uint64_t logged = 0;
	size_t n = 0;

	for (int i = 0; i < UPSTREAM_FAILING_AFTER; i++)
		upstream_stats_fail(&s, UPSTREAM_FAIL_TIMEOUT, &logged, 1000);
	CHECK(s.failing);
	CHECK_INT(logged, 1000);		/* "is failing" */
	CHECK(s.logged_failing);
	upstream_stats_answer(&s, 2500, &logged, 2000);
	CHECK(!s.failing);
	CHECK_INT(logged, 1000);		/* within the interval: held */
	CHECK(s.logged_failing);
	CHECK_INT(s.failed_run, UPSTREAM_FAILING_AFTER);
	/* The next answer after the interval says it answers again. */
	upstream_stats_answer(&s, 2500, &logged, 1000 + iv);
	CHECK_INT(logged, 1000 + iv);
	CHECK(!s.logged_failing);
	/* Failing again within the interval: held, then said by the next
	 * failure after it. */
	for (int i = 0; i < UPSTREAM_FAILING_AFTER; i++)
		upstream_stats_fail(&s, UPSTREAM_FAIL_NETWORK, &logged,
		    1001 + iv);
	CHECK(s.failing);
	CHECK_INT(logged, 1000 + iv);
	CHECK(!s.logged_failing);
	upstream_stats_fail(&s, UPSTREAM_FAIL_NETWORK, &logged, 1000 + 2 * iv);
	CHECK_INT(logged, 1000 + 2 * iv);
	CHECK(s.logged_failing);
	/* A flap within the interval (an answer, failing again) leaves the
	 * log's "is failing" true: nothing to say. */
	upstream_stats_answer(&s, 2500, &logged, 1001 + 2 * iv);
	for (int i = 0; i < UPSTREAM_FAILING_AFTER; i++)
		upstream_stats_fail(&s, UPSTREAM_FAIL_NETWORK, &logged,
		    1000 + 4 * iv);
	CHECK_INT(logged, 1000 + 2 * iv);
	CHECK(s.logged_failing);
	CHECK_INT(upstream_fail_ede(UPSTREAM_FAIL_NETWORK), 23);
	CHECK_INT(upstream_fail_ede(UPSTREAM_FAIL_TIMEOUT), 22);
	CHECK_INT(upstream_fail_ede(UPSTREAM_FAIL_REFUSED), 22);
	/* Two loops' views add up; failing if either sees it so. */
	upstream_stats_merge(sum, &n, 2, &s);
	s.failing = false;
	upstream_stats_merge(sum, &n, 2, &s);
	CHECK_INT(n, 1);
	CHECK_INT(sum[0].timeouts, 6);
	CHECK_INT(sum[0].errors, 14);
	CHECK_INT(sum[0].answers, 6);
	CHECK(sum[0].failing);
	CHECK_INT(upstream_stats_quantile_us(&sum[0], 0.99), 3000);
}

int
main(void)
{
	RUN(test_answer);
	RUN(test_failover_on_timeout);
	RUN(test_all_servers_time_out);
	RUN(test_forged_replies);
	RUN(test_late_and_forged_after_timeout);
	RUN(test_merge);
	RUN(test_socket_sharing_limits);
	RUN(test_tcp_on_truncation);
	RUN(test_oversized_datagram_over_tcp);
	RUN(test_errors_fail_over_at_once);
	RUN(test_limits);
	RUN(test_reload_timeouts);
	RUN(test_no_randomness);
	RUN(test_health);
	RUN(test_health_log_rate);
	UNIT_DONE();
}
