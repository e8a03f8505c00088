/* State sync between nodes. Outgoing: every interval the engine's state is
 * walked; an entry goes out when this node has not sent it yet, its server
 * changed, or it was last sent `refresh` ago (the shadow table remembers
 * what was sent), so steady traffic costs O(changes + entries/refresh),
 * not O(entries) per interval. A rate bound cuts a walk short; what was not
 * sent stays unsent in the shadow and goes with a later walk. Incoming:
 * authenticated, in-window datagrams from configured peers are applied by
 * service name and server address. A BULK_REQ (a peer restarted) clears
 * the shadow, so the next walks resend everything, paced alike. */
#include "ctl/sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/lru_table.h"
#include "core/sockaddr.h"
#include "core/sync_wire.h"
#include "ctl/sync_mac.h"

#define BULK_REQ_TRIES 5       /* one a second after start */
#define RECV_BATCH 64          /* datagrams per wakeup: the loop stays fair */
#define BULK_RESET_MIN_S 1     /* at most one resend-everything a second */

struct sync_peer {
	struct sockaddr_storage ss;
	socklen_t sl;
	struct ikelb_addr addr;
	struct sync_replay rp;
};

/* Shadow key: what identifies an entry across walks. */
struct shadow_key {
	uint8_t kind, pad;
	uint16_t svc;
	uint16_t cport, vport;
	struct ikelb_addr client;
	uint64_t spi;
};

struct sync {
	const struct cfg *cfg;
	struct engine *eng;
	const struct logger *log;
	int fd, timerfd;
	struct sync_auth auth;
	uint32_t node_id, epoch;
	uint64_t seq;
	struct sync_peer peers[CFG_MAX_SYNC_PEERS];
	int npeers;
	struct lru_table *shadow;
	struct lru_opts shadow_opts;
	struct sync_msg out;
	uint32_t budget, budget_per_tick;  /* datagrams left this interval */
	uint64_t now_s;
	uint64_t last_bulk_req_ms, last_reset_s;
	int bulk_tries;
	bool heard;                       /* some peer sent state: no more BULK_REQ */
	struct sync_stats st;
};

/* ---- sending ---- */

static int send_msg(struct sync *s, struct sync_msg *m)
{
	struct sync_hdr h = { .node_id = s->node_id, .epoch = s->epoch, .seq = ++s->seq };
	int rc = sync_msg_seal(m, &h, &s->auth);

	if (rc < 0)
		return rc;
	for (int i = 0; i < s->npeers; i++)
		if (sendto(s->fd, m->buf, m->len, MSG_DONTWAIT, (struct sockaddr *)&s->peers[i].ss,
			   s->peers[i].sl) < 0)
			s->st.send_errors++;
	s->st.sent_msgs++;
	s->st.sent_entries += m->count;
	if (s->budget)
		s->budget--;
	return 0;
}

static void flush_out(struct sync *s)
{
	if (s->out.count)
		send_msg(s, &s->out);
	sync_msg_init(&s->out, SYNC_T_STATE);
}

static void send_bulk_req(struct sync *s)
{
	struct sync_msg m;
	sync_msg_init(&m, SYNC_T_BULK_REQ);
	if (send_msg(s, &m) == 0)
		s->st.bulk_requests_sent++;
	s->bulk_tries++;
	s->last_bulk_req_ms = clock_mono_ms();
}

static void shadow_key_of(const struct eng_sync_entry *en, struct shadow_key *k)
{
	memset(k, 0, sizeof(*k));
	k->kind = en->kind;
	k->svc = (uint16_t)en->svc;
	k->cport = en->cport;
	k->vport = en->vport;
	k->client = en->client;
	k->spi = en->spi;
}

/* One walked entry: queue it when it is news for the peers. Returns 1 to
 * stop the walk when the rate bound is reached. */
static int on_walk_entry(void *ctx, const struct eng_sync_entry *en)
{
	struct sync *s = ctx;
	struct shadow_key k;
	struct lru_value v;
	struct sync_entry we = { .kind = en->kind, .age_s = en->age_s, .client = en->client,
				 .spi = en->spi, .cport = en->cport, .vport = en->vport };

	if (en->kind == SYNC_K_HALFOPEN || en->svc >= s->cfg->nservices ||
	    en->srv >= s->cfg->services[en->svc].nservers)
		return 0; /* half-open SAs are not shared: docs/ha.md */
	shadow_key_of(en, &k);
	if (lru_peek(s->shadow, &k, s->now_s, &v) == 0 && v.server == (uint32_t)en->srv)
		return 0;
	if (!s->budget) {
		s->st.deferred++;
		return 1;
	}
	const struct cfg_service *svc = &s->cfg->services[en->svc];
	snprintf(we.svc, sizeof(we.svc), "%s", svc->name);
	we.server = svc->servers[en->srv].addr;
	if (sync_msg_add(&s->out, &we) == -ENOSPC) {
		flush_out(s);
		if (sync_msg_add(&s->out, &we) < 0)
			return 0;
	}
	lru_put(s->shadow, &k, (uint32_t)en->srv, 0, s->now_s);
	return 0;
}

static void on_tick(struct sync *s)
{
	uint64_t ticks;
	while (read(s->timerfd, &ticks, sizeof(ticks)) == sizeof(ticks))
		;
	s->now_s = clock_mono_s();
	s->budget = s->budget_per_tick;
	if (!s->heard && s->bulk_tries < BULK_REQ_TRIES &&
	    clock_mono_ms() - s->last_bulk_req_ms >= 1000)
		send_bulk_req(s);
	if (!s->eng->ops || !s->eng->ops->sync_walk)
		return;
	int rc = s->eng->ops->sync_walk(s->eng, on_walk_entry, s);
	if (rc < 0)
		log_warn(s->log, "sync: walking the state failed: %s", strerror(-rc));
	flush_out(s);
}

/* ---- receiving ---- */

static int find_service(const struct cfg *c, const char *name)
{
	for (int i = 0; i < c->nservices; i++)
		if (!strcmp(c->services[i].name, name))
			return i;
	return -1;
}

static int find_server(const struct cfg_service *svc, const struct ikelb_addr *a)
{
	for (int j = 0; j < svc->nservers; j++)
		if (ikelb_addr_eq(&svc->servers[j].addr, a))
			return j;
	return -1;
}

static void apply_entry(struct sync *s, const struct sync_entry *we)
{
	int svc = find_service(s->cfg, we->svc);
	int srv = svc < 0 ? -1 : find_server(&s->cfg->services[svc], &we->server);

	if (we->kind == SYNC_K_HALFOPEN)
		return; /* reserved: nodes do not share half-open SAs */
	if (srv < 0) {
		s->st.rej_unknown_server++;
		return;
	}
	const struct eng_sync_entry en = { .kind = we->kind, .svc = svc, .srv = srv,
					   .age_s = we->age_s, .client = we->client,
					   .spi = we->spi, .cport = we->cport, .vport = we->vport };
	int rc = s->eng->ops->sync_apply(s->eng, &en);
	if (rc > 0) {
		s->st.applied++;
		/* Known to the peers now: no echo back unless it changes. */
		struct shadow_key k;
		shadow_key_of(&en, &k);
		lru_put(s->shadow, &k, (uint32_t)srv, 0, clock_mono_s());
	} else if (rc == 0) {
		s->st.kept++;
	} else {
		s->st.apply_errors++;
	}
}

static void on_state(struct sync *s, const uint8_t *buf, size_t len, const struct sync_hdr *h)
{
	struct sync_iter it;
	struct sync_entry we;
	int rc;

	s->heard = true;
	sync_iter_init(&it, buf, len, h->count);
	while ((rc = sync_iter_next(&it, &we)) > 0) {
		s->st.recv_entries++;
		apply_entry(s, &we);
	}
	if (rc < 0)
		s->st.rej_malformed++;
}

static void on_bulk_req(struct sync *s)
{
	uint64_t now = clock_mono_s();
	s->st.bulk_requests_recv++;
	if (now - s->last_reset_s < BULK_RESET_MIN_S && s->last_reset_s)
		return;
	s->last_reset_s = now;
	/* Everything is "not sent" again: a fresh shadow. */
	struct lru_table *fresh = lru_new(&s->shadow_opts);
	if (!fresh) {
		log_warn(s->log, "sync: out of memory answering a bulk request");
		return;
	}
	lru_free(s->shadow);
	s->shadow = fresh;
}

static struct sync_peer *peer_of(struct sync *s, const struct sockaddr_storage *ss)
{
	struct ikelb_addr a;
	uint16_t port;

	if (ikelb_sockaddr_to_addr(ss, &a, &port) < 0)
		return NULL;
	for (int i = 0; i < s->npeers; i++)
		if (ikelb_addr_eq(&s->peers[i].addr, &a))
			return &s->peers[i];
	return NULL;
}

static void on_datagram(struct sync *s, const uint8_t *buf, size_t len,
			const struct sockaddr_storage *from)
{
	struct sync_peer *p = peer_of(s, from);
	struct sync_hdr h;

	s->st.recv_msgs++;
	if (!p) {
		s->st.rej_peer++;
		return;
	}
	int rc = sync_open(buf, len, &s->auth, &h);
	if (rc == -EPROTONOSUPPORT)
		s->st.rej_version++;
	else if (rc == -EACCES)
		s->st.rej_auth++;
	else if (rc < 0)
		s->st.rej_malformed++;
	else if (h.node_id == s->node_id && h.epoch == s->epoch)
		s->st.rej_peer++; /* our own datagram looped back */
	else if (sync_replay_check(&p->rp, &h) < 0)
		s->st.rej_replay++;
	else if (h.type == SYNC_T_STATE)
		on_state(s, buf, len, &h);
	else if (h.type == SYNC_T_BULK_REQ)
		on_bulk_req(s);
	else
		s->st.rej_malformed++;
}

static void on_socket(struct sync *s)
{
	uint8_t buf[SYNC_MTU + 1];

	for (int i = 0; i < RECV_BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(s->fd, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		on_datagram(s, buf, (size_t)n, &from);
	}
}

/* ---- setup ---- */

static int open_socket(struct sync *s)
{
	const struct cfg_sync *c = &s->cfg->sync;
	struct sockaddr_storage ss;
	socklen_t sl = ikelb_sockaddr_from_addr(&c->listen, c->listen_port, &ss);

	s->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&ss, sl) < 0) {
		int rc = -errno;
		char a[64];
		log_err(s->log, "sync: cannot listen on %s port %u: %s",
			ikelb_addr_str(&c->listen, a, sizeof(a)), c->listen_port, strerror(errno));
		return rc;
	}
	for (int i = 0; i < c->npeers; i++) {
		s->peers[i].addr = c->peers[i];
		s->peers[i].sl = ikelb_sockaddr_from_addr(&c->peers[i], c->peer_ports[i],
							  &s->peers[i].ss);
	}
	s->npeers = c->npeers;
	return 0;
}

static int open_timer(struct sync *s)
{
	uint32_t ms = s->cfg->sync.interval_ms;
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
	struct itimerspec its = { .it_interval = t, .it_value = t };

	s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->timerfd < 0 || timerfd_settime(s->timerfd, 0, &its, NULL) < 0) {
		int rc = -errno;
		log_err(s->log, "sync: timer: %s", strerror(errno));
		return rc;
	}
	return 0;
}

/* Resending must come well before any peer would expire the entry. */
static uint32_t refresh_s(const struct cfg *cfg)
{
	uint32_t r = cfg->sync.refresh_s;
	for (int i = 0; i < cfg->nservices; i++) {
		const struct cfg_persistence *p = &cfg->services[i].persistence;
		if (p->flow_timeout_s && p->flow_timeout_s / 2 < r)
			r = p->flow_timeout_s / 2;
		if (p->timeout_s && p->timeout_s / 2 < r)
			r = p->timeout_s / 2;
	}
	return r ? r : 1;
}

static int init(struct sync *s)
{
	const struct cfg_sync *c = &s->cfg->sync;
	uint64_t cap = (uint64_t)s->cfg->max_clients + s->cfg->max_flows;
	struct lru_opts lo = { .capacity = (uint32_t)(cap > LRU_CAPACITY_MAX ? LRU_CAPACITY_MAX : cap),
			       .key_len = sizeof(struct shadow_key), .timeout = refresh_s(s->cfg) };
	int rc = sync_key_load(c->key_file, &s->auth, s->log);

	if (rc < 0 || (rc = open_socket(s)) < 0 || (rc = open_timer(s)) < 0)
		return rc;
	s->shadow_opts = lo;
	if (!(s->shadow = lru_new(&lo)))
		return -ENOMEM;
	if (getrandom(&s->node_id, sizeof(s->node_id), 0) != sizeof(s->node_id))
		s->node_id = (uint32_t)clock_mono_ms() ^ (uint32_t)getpid();
	s->epoch = (uint32_t)time(NULL);
	uint64_t per_tick = (uint64_t)c->max_rate * c->interval_ms / 1000;
	s->budget_per_tick = per_tick ? (uint32_t)per_tick : 1;
	sync_msg_init(&s->out, SYNC_T_STATE);
	return 0;
}

int sync_start(struct sync **out, const struct cfg *cfg, struct engine *eng,
	       const struct logger *log)
{
	*out = NULL;
	if (!cfg->sync.enabled)
		return 0;
	if (!eng->ops || !eng->ops->sync_walk || !eng->ops->sync_apply) {
		log_err(log, "sync: the %s engine cannot share its state",
			eng->ops ? eng->ops->name : "(none)");
		return -EOPNOTSUPP;
	}
	struct sync *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct sync){ .cfg = cfg, .eng = eng, .log = log, .fd = -1, .timerfd = -1 };
	int rc = init(s);
	if (rc < 0) {
		sync_stop(s);
		return rc;
	}
	log_notice(log, "sync: %d peer(s), every %u ms, at most %u datagrams/s, refresh %u s",
		   s->npeers, cfg->sync.interval_ms, cfg->sync.max_rate, refresh_s(cfg));
	*out = s;
	return 0;
}

int sync_watch(struct sync *s, int epfd)
{
	int fds[2] = { s->fd, s->timerfd };
	for (int i = 0; i < 2; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			int rc = -errno;
			log_err(s->log, "sync: epoll_ctl: %s", strerror(errno));
			return rc;
		}
	}
	return 0;
}

bool sync_on_fd(struct sync *s, int fd)
{
	if (!s)
		return false;
	if (fd == s->timerfd)
		on_tick(s);
	else if (fd == s->fd)
		on_socket(s);
	else
		return false;
	return true;
}

void sync_get_stats(const struct sync *s, struct sync_stats *out)
{
	if (s)
		*out = s->st;
	else
		memset(out, 0, sizeof(*out));
}

void sync_stop(struct sync *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	if (s->timerfd >= 0)
		close(s->timerfd);
	lru_free(s->shadow);
	explicit_bzero(&s->auth, sizeof(s->auth));
	free(s);
}
