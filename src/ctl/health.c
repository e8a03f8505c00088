/* Health checker: targets, pacing, sockets and the rise/fall state machine.
 * See health.h for the contract and docs/health.md for the admin view. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl/health.h"
#include "ikelb/ike_wire.h"

#define PACE_DEFAULT_MAX 2
#define PACE_DEFAULT_WINDOW_MS 1000
#define PACE_HIST 16          /* upper bound for max_probes */
#define FIRST_SPREAD_MS 1000  /* first probes spread over up to this */
#define RECV_BATCH 256        /* datagrams per socket per health_on_readable */
#define BIND_TRIES 4
#define RX_MAX 2048

/* One distinct server address: pacing is per address, whatever the port or
 * service, because strongSwan's per-IP limits count our source address. */
struct health_peer {
	struct ikelb_addr addr;
	uint64_t sent[PACE_HIST]; /* ring of recent send times */
	uint32_t head;
};

struct health_target {
	int svc, srv;
	struct ikelb_addr addr;
	uint16_t port;
	enum cfg_health_type type;
	uint32_t interval_ms, timeout_ms, rise, fall;
	uint8_t *send, *expect;
	size_t send_len, expect_len;
	int peer;
	bool outstanding;
	uint64_t key;     /* table key of the outstanding probe (IKE: SPIi) */
	uint64_t sent_ms, deadline_ms, next_ms; /* next_ms 0: not scheduled yet */
	struct health_state st;
};

/* Outstanding probes by key: open addressing, linear probing, backward
 * shift deletion. Key 0 marks a free slot. */
struct health_slot {
	uint64_t key;
	int idx;
};

struct health_checker {
	const struct logger *log;
	health_change_cb cb;
	void *cb_ctx;
	int fd4, fd6;
	struct health_target *t;
	int nt, capt;
	struct health_peer *peers;
	int npeers, cappeers;
	struct health_slot *slots;
	uint32_t nslots; /* power of two */
	uint32_t pace_max, pace_window_ms;
	uint64_t prng;
	struct health_counters cnt;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Jitter only: not security relevant, so a PRNG seeded once is enough. */
static uint64_t prng_next(struct health_checker *h)
{
	h->prng += 0x9e3779b97f4a7c15ULL;
	return mix64(h->prng);
}

/* ---- outstanding table ---- */

static int table_grow(struct health_checker *h, uint32_t need)
{
	uint32_t n = h->nslots ? h->nslots : 16;
	while (n < 2 * need)
		n *= 2;
	if (n == h->nslots)
		return 0;
	struct health_slot *s = calloc(n, sizeof(*s));
	if (!s)
		return -1;
	for (uint32_t i = 0; i < h->nslots; i++) {
		if (!h->slots[i].key)
			continue;
		uint32_t j = (uint32_t)mix64(h->slots[i].key) & (n - 1);
		while (s[j].key)
			j = (j + 1) & (n - 1);
		s[j] = h->slots[i];
	}
	free(h->slots);
	h->slots = s;
	h->nslots = n;
	return 0;
}

static uint32_t table_find(const struct health_checker *h, uint64_t key)
{
	uint32_t m = h->nslots - 1, j = (uint32_t)mix64(key) & m;
	while (h->slots[j].key && h->slots[j].key != key)
		j = (j + 1) & m;
	return j;
}

static bool table_put(struct health_checker *h, uint64_t key, int idx)
{
	uint32_t j = table_find(h, key);
	if (h->slots[j].key)
		return false; /* key in use: another probe to the same udp peer */
	h->slots[j].key = key;
	h->slots[j].idx = idx;
	return true;
}

static int table_get(const struct health_checker *h, uint64_t key)
{
	if (!key || !h->nslots)
		return -1;
	uint32_t j = table_find(h, key);
	return h->slots[j].key ? h->slots[j].idx : -1;
}

static void table_del(struct health_checker *h, uint64_t key)
{
	uint32_t m = h->nslots - 1, j = table_find(h, key);
	if (!h->slots[j].key)
		return;
	h->slots[j].key = 0;
	/* Shift later members of the cluster back so lookups never stop early. */
	for (uint32_t k = (j + 1) & m; h->slots[k].key; k = (k + 1) & m) {
		uint32_t home = (uint32_t)mix64(h->slots[k].key) & m;
		if (((k - home) & m) >= ((k - j) & m)) {
			h->slots[j] = h->slots[k];
			h->slots[k].key = 0;
			j = k;
		}
	}
}

/* UDP replies carry no id of ours: the key is the peer address and port. */
static uint64_t udp_key(const struct ikelb_addr *a, uint16_t port)
{
	uint64_t x = port;
	for (int i = 0; i < 16; i++)
		x = mix64(x ^ ((uint64_t)a->b[i] << (8 * (i % 8))));
	return x | 1;
}

/* ---- state machine ---- */

static void record(struct health_checker *h, struct health_target *t, bool ok,
		   const char *reason, uint64_t now_ms)
{
	struct health_state *s = &t->st;
	char ab[IKELB_ADDR_STRLEN];
	bool was = s->up;

	if (ok) {
		s->probes_ok++;
		s->ok_streak++;
		s->fail_streak = 0;
		if (s->status == HEALTH_UNKNOWN)
			s->status = HEALTH_UP;
		else if (!s->up && s->ok_streak >= t->rise)
			s->up = true;
	} else {
		s->probes_failed++;
		s->fail_streak++;
		s->ok_streak = 0;
		snprintf(s->last_error, sizeof(s->last_error), "%s", reason ? reason : "failed");
		if (s->up && s->fail_streak >= t->fall)
			s->up = false;
	}
	if (s->up == was) {
		if (!ok)
			log_debug(h->log, "health: %s port %u (service %d server %d): %s",
				  ikelb_addr_str(&t->addr, ab, sizeof(ab)), t->port, t->svc,
				  t->srv, s->last_error);
		return;
	}
	s->status = s->up ? HEALTH_UP : HEALTH_DOWN;
	s->last_change_ms = now_ms;
	if (s->up)
		log_notice(h->log, "health: %s port %u (service %d server %d) is UP after %u successes",
			   ikelb_addr_str(&t->addr, ab, sizeof(ab)), t->port, t->svc, t->srv,
			   s->ok_streak);
	else
		log_notice(h->log, "health: %s port %u (service %d server %d) is DOWN after %u failures, last: %s",
			   ikelb_addr_str(&t->addr, ab, sizeof(ab)), t->port, t->svc, t->srv,
			   s->fail_streak, s->last_error);
	if (h->cb)
		h->cb(h->cb_ctx, t->svc, t->srv, s->up);
}

static void finish(struct health_checker *h, struct health_target *t, bool ok,
		   const char *reason, uint64_t now_ms)
{
	if (t->outstanding) {
		table_del(h, t->key);
		t->outstanding = false;
		if (ok) {
			uint64_t rtt = now_ms >= t->sent_ms ? now_ms - t->sent_ms : 0;
			t->st.has_rtt = true;
			t->st.last_rtt_ms = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
		}
	}
	record(h, t, ok, reason, now_ms);
}

/* ---- setup ---- */

struct health_checker *health_new(const struct logger *log, health_change_cb cb, void *ctx)
{
	struct health_checker *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->log = log;
	h->cb = cb;
	h->cb_ctx = ctx;
	h->fd4 = h->fd6 = -1;
	h->pace_max = PACE_DEFAULT_MAX;
	h->pace_window_ms = PACE_DEFAULT_WINDOW_MS;
	if (getrandom(&h->prng, sizeof(h->prng), 0) != sizeof(h->prng))
		h->prng = (uint64_t)getpid();
	return h;
}

void health_free(struct health_checker *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->nt; i++) {
		free(h->t[i].send);
		free(h->t[i].expect);
	}
	if (h->fd4 >= 0)
		close(h->fd4);
	if (h->fd6 >= 0)
		close(h->fd6);
	free(h->t);
	free(h->peers);
	free(h->slots);
	free(h);
}

void health_set_pacing(struct health_checker *h, uint32_t max_probes, uint32_t window_ms)
{
	if (max_probes < 1)
		max_probes = 1;
	if (max_probes > PACE_HIST)
		max_probes = PACE_HIST;
	h->pace_max = max_probes;
	h->pace_window_ms = window_ms;
}

/* Unconnected, ephemeral port. Ports 500 and 4500 are refused so that a
 * reply can never be mistaken for (or balanced as) service traffic. */
static int open_socket(const struct logger *log, int family)
{
	for (int tries = 0; tries < BIND_TRIES; tries++) {
		int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			log_err(log, "health: socket: %s", strerror(errno));
			return -1;
		}
		struct sockaddr_storage ss;
		socklen_t sl;
		memset(&ss, 0, sizeof(ss));
		if (family == AF_INET6) {
			int one = 1;
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			ss.ss_family = AF_INET6;
			sl = sizeof(struct sockaddr_in6);
		} else {
			ss.ss_family = AF_INET;
			sl = sizeof(struct sockaddr_in);
		}
		if (bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
		    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
			log_err(log, "health: bind: %s", strerror(errno));
			close(fd);
			return -1;
		}
		uint16_t port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
		if (port != IKE_PORT && port != IKE_NATT_PORT)
			return fd;
		close(fd); /* odd ip_local_port_range: draw again */
	}
	log_err(log, "health: could not get a source port other than 500/4500");
	return -1;
}

static int find_target(const struct health_checker *h, int svc, int srv)
{
	for (int i = 0; i < h->nt; i++)
		if (h->t[i].svc == svc && h->t[i].srv == srv)
			return i;
	return -1;
}

static int peer_index(struct health_checker *h, const struct ikelb_addr *a)
{
	for (int i = 0; i < h->npeers; i++)
		if (ikelb_addr_eq(&h->peers[i].addr, a))
			return i;
	if (h->npeers == h->cappeers) {
		int n = h->cappeers ? 2 * h->cappeers : 16;
		struct health_peer *p = realloc(h->peers, (size_t)n * sizeof(*p));
		if (!p)
			return -1;
		h->peers = p;
		h->cappeers = n;
	}
	memset(&h->peers[h->npeers], 0, sizeof(h->peers[0]));
	h->peers[h->npeers].addr = *a;
	return h->npeers++;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n, bool *fail)
{
	if (!n)
		return NULL;
	uint8_t *d = malloc(n);
	if (!d)
		*fail = true;
	else
		memcpy(d, p, n);
	return d;
}

static int check_hc(const struct logger *log, const struct cfg_health *hc)
{
	if (hc->type != CFG_HEALTH_IKE && hc->type != CFG_HEALTH_UDP && hc->type != CFG_HEALTH_NONE) {
		log_err(log, "health: unknown check type %d", (int)hc->type);
		return -1;
	}
	if (hc->type == CFG_HEALTH_NONE)
		return 0;
	if (!hc->interval_ms || !hc->timeout_ms || !hc->rise || !hc->fall) {
		log_err(log, "health: interval, timeout, rise and fall must be > 0");
		return -1;
	}
	if (hc->type == CFG_HEALTH_UDP && (!hc->send_len || !hc->send || hc->send_len > 1400 ||
					   (hc->expect_len && !hc->expect))) {
		log_err(log, "health: udp check needs 1..1400 bytes to send");
		return -1;
	}
	return 0;
}

static int ensure_socket(struct health_checker *h, const struct ikelb_addr *addr)
{
	int *fd = ikelb_addr_is_v4(addr) ? &h->fd4 : &h->fd6;
	if (*fd < 0)
		*fd = open_socket(h->log, ikelb_addr_is_v4(addr) ? AF_INET : AF_INET6);
	return *fd < 0 ? -1 : 0;
}

int health_add_target(struct health_checker *h, int svc_idx, int srv_idx,
		      const struct ikelb_addr *addr, uint16_t port, const struct cfg_health *hc)
{
	if (!h || !addr || !hc || check_hc(h->log, hc) < 0)
		return -1;
	if (find_target(h, svc_idx, srv_idx) >= 0) {
		log_err(h->log, "health: service %d server %d added twice", svc_idx, srv_idx);
		return -1;
	}
	if (hc->type != CFG_HEALTH_NONE && ensure_socket(h, addr) < 0)
		return -1;
	if (h->nt == h->capt) {
		int n = h->capt ? 2 * h->capt : 16;
		struct health_target *t = realloc(h->t, (size_t)n * sizeof(*t));
		if (!t)
			return -1;
		h->t = t;
		h->capt = n;
	}
	if (table_grow(h, (uint32_t)h->nt + 1) < 0)
		return -1;
	struct health_target *t = &h->t[h->nt];
	memset(t, 0, sizeof(*t));
	t->svc = svc_idx;
	t->srv = srv_idx;
	t->addr = *addr;
	t->port = port ? port : hc->port ? hc->port : IKE_PORT;
	t->type = hc->type;
	t->interval_ms = hc->interval_ms;
	t->timeout_ms = hc->timeout_ms;
	t->rise = hc->rise;
	t->fall = hc->fall;
	t->st.up = true;
	t->st.status = hc->type == CFG_HEALTH_NONE ? HEALTH_UP : HEALTH_UNKNOWN;
	bool fail = false;
	t->send = dup_bytes(hc->send, hc->send_len, &fail);
	t->expect = dup_bytes(hc->expect, hc->expect_len, &fail);
	t->send_len = hc->send_len;
	t->expect_len = hc->expect_len;
	t->peer = peer_index(h, addr);
	if (fail || t->peer < 0) {
		free(t->send);
		free(t->expect);
		return -1;
	}
	h->nt++;
	return 0;
}

int health_fds(const struct health_checker *h, int fds[2])
{
	int n = 0;
	if (h->fd4 >= 0)
		fds[n++] = h->fd4;
	if (h->fd6 >= 0)
		fds[n++] = h->fd6;
	return n;
}

/* ---- sending ---- */

/* Earliest time the peer may get another probe (now if allowed now). */
static uint64_t pace_allowed_at(const struct health_checker *h, const struct health_peer *p,
				uint64_t now_ms)
{
	/* The max-th most recent send must have left the window. */
	uint64_t oldest = p->sent[(p->head + PACE_HIST - h->pace_max) % PACE_HIST];
	if (!oldest)
		return now_ms;
	uint64_t at = oldest + h->pace_window_ms;
	return at > now_ms ? at : now_ms;
}

static void pace_note(struct health_peer *p, uint64_t now_ms)
{
	p->sent[p->head] = now_ms ? now_ms : 1;
	p->head = (p->head + 1) % PACE_HIST;
}

static socklen_t to_sockaddr(const struct ikelb_addr *a, uint16_t port,
			     struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ikelb_addr_is_v4(a)) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = ikelb_addr_v4(a);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	memcpy(&s6->sin6_addr, a->b, 16);
	return sizeof(*s6);
}

/* Builds the probe and picks its table key. Returns the length or 0. */
static size_t make_probe(struct health_target *t, uint8_t *buf, size_t cap, uint64_t *key)
{
	if (t->type == CFG_HEALTH_UDP) {
		*key = udp_key(&t->addr, t->port);
		memcpy(buf, t->send, t->send_len);
		return t->send_len;
	}
	uint8_t rnd[8 + HEALTH_IKE_RANDOM_LEN];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return 0;
	uint64_t spi = 0;
	for (int i = 0; i < 8; i++)
		spi = spi << 8 | rnd[i];
	if (!spi)
		spi = 1;
	*key = spi;
	return health_ike_build_probe(buf, cap, spi, rnd + 8);
}

static void send_probe(struct health_checker *h, struct health_target *t, uint64_t now_ms)
{
	struct health_peer *p = &h->peers[t->peer];
	uint64_t at = pace_allowed_at(h, p, now_ms);
	if (at > now_ms) {
		h->cnt.paced++;
		t->next_ms = at + prng_next(h) % 50; /* keep postponed probes from re-bursting */
		return;
	}
	uint8_t buf[RX_MAX];
	uint64_t key = 0;
	size_t len = make_probe(t, buf, sizeof(buf), &key);
	if (!len || !table_put(h, key, (int)(t - h->t))) {
		/* Rare: no randomness, or a udp probe to the same peer is in flight. */
		t->next_ms = now_ms + 100;
		return;
	}
	t->outstanding = true;
	t->key = key;
	t->sent_ms = now_ms;
	t->deadline_ms = now_ms + t->timeout_ms;
	uint64_t jit = t->interval_ms / 10;
	t->next_ms = now_ms + t->interval_ms - jit + (jit ? prng_next(h) % (2 * jit + 1) : 0);
	t->st.probes_sent++;
	pace_note(p, now_ms);

	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(&t->addr, t->port, &ss);
	int fd = ikelb_addr_is_v4(&t->addr) ? h->fd4 : h->fd6;
	if (sendto(fd, buf, len, 0, (struct sockaddr *)&ss, sl) < 0) {
		char reason[HEALTH_ERR_MAX];
		h->cnt.send_errors++;
		snprintf(reason, sizeof(reason), "send: %s", strerror(errno));
		finish(h, t, false, reason, now_ms);
	}
}

void health_tick(struct health_checker *h, uint64_t now_ms)
{
	for (int i = 0; i < h->nt; i++) {
		struct health_target *t = &h->t[i];
		if (t->type == CFG_HEALTH_NONE)
			continue;
		if (t->outstanding && now_ms >= t->deadline_ms)
			finish(h, t, false, "timeout", now_ms);
		if (!t->next_ms) {
			uint32_t spread = t->interval_ms < FIRST_SPREAD_MS ? t->interval_ms : FIRST_SPREAD_MS;
			t->next_ms = now_ms + prng_next(h) % spread;
		}
		if (!t->outstanding && now_ms >= t->next_ms)
			send_probe(h, t, now_ms);
	}
}

uint64_t health_next_deadline_ms(const struct health_checker *h)
{
	uint64_t d = UINT64_MAX;
	for (int i = 0; i < h->nt; i++) {
		const struct health_target *t = &h->t[i];
		if (t->type == CFG_HEALTH_NONE)
			continue;
		/* An unscheduled target needs a tick now to get its first time. */
		uint64_t x = t->outstanding ? t->deadline_ms : t->next_ms;
		if (x < d)
			d = x;
	}
	return d;
}

/* ---- receiving ---- */

static void judge(struct health_checker *h, struct health_target *t, const uint8_t *buf,
		  size_t len, uint64_t now_ms)
{
	char reason[HEALTH_ERR_MAX];
	if (t->type == CFG_HEALTH_UDP) {
		bool ok = !t->expect_len ||
			  (len >= t->expect_len && memcmp(buf, t->expect, t->expect_len) == 0);
		finish(h, t, ok, "reply does not match expect", now_ms);
		return;
	}
	uint16_t notify = 0;
	enum health_ike_verdict v = health_ike_check_reply(buf, len, t->key, &notify);
	if (v == HEALTH_IKE_UNEXPECTED_NOTIFY)
		snprintf(reason, sizeof(reason), "%s %u", health_ike_verdict_str(v), notify);
	else
		snprintf(reason, sizeof(reason), "%s", health_ike_verdict_str(v));
	finish(h, t, v == HEALTH_IKE_ALIVE, reason, now_ms);
}

static void on_datagram(struct health_checker *h, const uint8_t *buf, size_t len,
			const struct sockaddr_storage *ss, uint64_t now_ms)
{
	struct ikelb_addr from;
	uint16_t port;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		ikelb_addr_from_v4(&from, s4->sin_addr.s_addr);
		port = ntohs(s4->sin_port);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		memcpy(from.b, &s6->sin6_addr, 16);
		port = ntohs(s6->sin6_port);
	}
	/* An IKE reply names its probe by SPIi; a udp reply only by its source. */
	int i = table_get(h, health_ike_spi_i(buf, len));
	if (i < 0 || h->t[i].type != CFG_HEALTH_IKE)
		i = table_get(h, udp_key(&from, port));
	if (i < 0 || !ikelb_addr_eq(&h->t[i].addr, &from) || h->t[i].port != port) {
		/* Only the probed address may judge a probe: strays never fail one. */
		h->cnt.stray_replies++;
		return;
	}
	judge(h, &h->t[i], buf, len, now_ms);
}

static void drain(struct health_checker *h, int fd, uint64_t now_ms)
{
	uint8_t buf[RX_MAX];
	for (int n = 0; n < RECV_BATCH; n++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&ss, &sl);
		if (r < 0)
			return; /* EAGAIN, or an ICMP error we let the timeout report */
		/* MSG_TRUNC returns the real length: an oversized reply is judged
		 * on its first RX_MAX bytes with the true length, i.e. rejected. */
		size_t len = (size_t)r > sizeof(buf) ? sizeof(buf) : (size_t)r;
		if ((size_t)r > sizeof(buf)) {
			h->cnt.stray_replies++;
			continue;
		}
		on_datagram(h, buf, len, &ss, now_ms);
	}
}

void health_on_readable(struct health_checker *h, uint64_t now_ms)
{
	if (h->fd4 >= 0)
		drain(h, h->fd4, now_ms);
	if (h->fd6 >= 0)
		drain(h, h->fd6, now_ms);
}

/* ---- queries ---- */

int health_report(struct health_checker *h, int svc_idx, int srv_idx, bool ok,
		  const char *reason, uint64_t now_ms)
{
	int i = find_target(h, svc_idx, srv_idx);
	if (i < 0)
		return -1;
	finish(h, &h->t[i], ok, reason, now_ms);
	return 0;
}

int health_state(const struct health_checker *h, int svc_idx, int srv_idx, struct health_state *out)
{
	int i = find_target(h, svc_idx, srv_idx);
	if (i < 0)
		return -1;
	*out = h->t[i].st;
	return 0;
}

int health_count(const struct health_checker *h)
{
	return h->nt;
}

int health_get(const struct health_checker *h, int i, int *svc_idx, int *srv_idx,
	       struct health_state *out)
{
	if (i < 0 || i >= h->nt)
		return -1;
	if (svc_idx)
		*svc_idx = h->t[i].svc;
	if (srv_idx)
		*srv_idx = h->t[i].srv;
	if (out)
		*out = h->t[i].st;
	return 0;
}

void health_get_counters(const struct health_checker *h, struct health_counters *out)
{
	*out = h->cnt;
}

const char *health_status_name(enum health_status s)
{
	switch (s) {
	case HEALTH_UNKNOWN:
		return "unknown";
	case HEALTH_UP:
		return "up";
	case HEALTH_DOWN:
		return "down";
	}
	return "?";
}
