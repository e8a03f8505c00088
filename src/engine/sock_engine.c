/* Socket engine: setup, control operations and teardown. The data path is
 * in sock_relay.c, the upstream flows in sock_flow.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/sockaddr.h"
#include "engine/sock_int.h"

static struct sock_engine *impl(struct engine *e)
{
	return e->impl;
}

/* ------------------------------------------------------------ control ops */

static int op_set_table(struct engine *eng, int svc, const uint32_t *table, uint32_t size)
{
	struct sock_engine *e = impl(eng);
	pthread_mutex_lock(&e->mu);
	int rc = steer_set_table(e->steer, svc, table, size);
	pthread_mutex_unlock(&e->mu);
	return rc < 0 ? -1 : 0;
}

static long op_set_evacuating(struct engine *eng, int svc, int srv, bool on)
{
	struct sock_engine *e = impl(eng);
	pthread_mutex_lock(&e->mu);
	long n = steer_set_evacuating(e->steer, svc, srv, on);
	pthread_mutex_unlock(&e->mu);
	return n;
}

static int op_set_server_state(struct engine *eng, int svc, int srv, int state)
{
	struct sock_engine *e = impl(eng);
	pthread_mutex_lock(&e->mu);
	long rc = steer_set_state(e->steer, svc, srv, state);
	/* The DOWN server's flows close now: their clients are re-steered by
	 * their next datagram (lc/wlc counts follow at the next sweep). */
	if (rc >= 0 && state == REAL_DOWN)
		sock_flows_close_server(e, svc, srv);
	pthread_mutex_unlock(&e->mu);
	return rc < 0 ? -1 : 0;
}

static void copy_srv_ctr(struct eng_srv_stats *out, const struct sock_srv_ctr *c)
{
	out->pkts = c->pkts;
	out->bytes = c->bytes;
	out->reply_pkts = c->reply_pkts;
	out->reply_bytes = c->reply_bytes;
}

/* The per-server counters alone: no table walk (every second). */
static int op_read_counters(struct engine *eng, struct eng_stats *st)
{
	struct sock_engine *e = impl(eng);
	pthread_mutex_lock(&e->mu);
	for (int i = 0; i < e->nsvc && i < st->nsvc; i++)
		for (int j = 0; st->srv[i] && j < e->svc[i].nsrv; j++)
			copy_srv_ctr(&st->srv[i][j], &e->svc[i].srv_ctr[j]);
	pthread_mutex_unlock(&e->mu);
	return 0;
}

/* Published by the workers after each wake (sock_relay.c). */
static void read_worker_stats(const struct sock_engine *e, struct eng_sock_stats *o)
{
	*o = (struct eng_sock_stats){ .present = true };
	for (int i = 0; e->w && i < e->nworkers; i++) {
		struct sock_worker *w = &e->w[i];
		o->wakes += atomic_load_explicit(&w->st.wakes, memory_order_relaxed);
		o->dgrams += atomic_load_explicit(&w->st.dgrams, memory_order_relaxed);
		o->waits += atomic_load_explicit(&w->st.waits, memory_order_relaxed);
		o->wait_ns += atomic_load_explicit(&w->st.wait_ns, memory_order_relaxed);
		o->sends += atomic_load_explicit(&w->st.sends, memory_order_relaxed);
	}
}

static int op_read_stats(struct engine *eng, struct eng_stats *st)
{
	struct sock_engine *e = impl(eng);
	uint64_t now = clock_mono_s();
	pthread_mutex_lock(&e->mu);
	st->nsvc = e->nsvc;
	st->not_ours = 0;
	st->decision_log_dropped = e->dlog.dropped;
	for (int i = 0; i < e->nsvc; i++) {
		struct sock_svc *s = &e->svc[i];
		steer_counters(e->steer, i, st->svc[i].pkts, st->svc[i].bytes);
		if (!st->srv[i])
			continue;
		uint64_t *cl = calloc(4 * ((size_t)s->nsrv + 1), sizeof(*cl));
		uint64_t *fl = cl + s->nsrv + 1, *sa = fl + s->nsrv + 1, *ad = sa + s->nsrv + 1;
		if (cl) {
			steer_server_counts(e->steer, i, now, cl, fl);
			if (steer_server_usage(e->steer, i, now, sa, ad) < 0)
				memset(sa, 0, 2 * ((size_t)s->nsrv + 1) * sizeof(*sa));
		}
		for (int j = 0; j < s->nsrv; j++) {
			copy_srv_ctr(&st->srv[i][j], &s->srv_ctr[j]);
			st->srv[i][j].clients = cl ? cl[j] : 0;
			st->srv[i][j].flows = cl ? fl[j] : 0;
			st->srv[i][j].sas = cl ? sa[j] : 0;
			st->srv[i][j].client_addresses = cl ? ad[j] : 0;
		}
		free(cl);
	}
	struct steer_table_stats ts[TBL__MAX];
	steer_table_stats(e->steer, ts);
	for (int t = 0; t < TBL__MAX; t++)
		st->tables[t] = (struct eng_table_stats){ ts[t].entries, ts[t].capacity,
							  ts[t].inserts, ts[t].evictions };
	st->ntables = TBL__MAX;
	pthread_mutex_unlock(&e->mu);
	read_worker_stats(e, &st->sock);
	return 0;
}

static long op_sweep(struct engine *eng, uint64_t now_s)
{
	struct sock_engine *e = impl(eng);
	pthread_mutex_lock(&e->mu);
	long n = steer_expire(e->steer, now_s) + sock_flows_expire(e, now_s);
	steer_conn_reconcile(e->steer, now_s);
	pthread_mutex_unlock(&e->mu);
	return n;
}

/* Under the engine lock, like the workers' steering: a consistent view. */
static int op_lookup(struct engine *eng, const struct lk_query *q, lk_cb cb, void *ctx)
{
	struct sock_engine *e = impl(eng);
	pthread_mutex_lock(&e->mu);
	int n = steer_query(e->steer, q, clock_mono_s(), cb, ctx);
	pthread_mutex_unlock(&e->mu);
	return n;
}

static int op_set_decision_log(struct engine *eng, bool on)
{
	struct sock_engine *e = impl(eng);
	pthread_mutex_lock(&e->mu);
	declog_switched(e->log, &e->dlog, e->log_decisions, on, clock_mono_ms());
	e->log_decisions = on;
	pthread_mutex_unlock(&e->mu);
	return 0;
}

static void engine_free(struct sock_engine *e);

static void op_close(struct engine *eng, bool keep_state)
{
	(void)keep_state; /* user-space state dies with the process */
	struct sock_engine *e = impl(eng);
	if (!e)
		return;
	engine_free(e);
	eng->impl = NULL;
}

static const struct engine_ops sock_ops = {
	.name = "socket",
	.set_table = op_set_table,
	.set_server_state = op_set_server_state,
	.set_evacuating = op_set_evacuating,
	.read_stats = op_read_stats,
	.read_counters = op_read_counters,
	.lookup = op_lookup,
	.set_decision_log = op_set_decision_log,
	.sweep = op_sweep,
	.close = op_close,
};

uint32_t sock_engine_flows(struct engine *eng)
{
	struct sock_engine *e = impl(eng);
	pthread_mutex_lock(&e->mu);
	uint32_t n = sock_flows_live(e);
	pthread_mutex_unlock(&e->mu);
	return n;
}

/* ------------------------------------------------------------------ setup */

static int listener_open(struct sock_engine *e, const struct cfg_service *cs, uint16_t port,
			 bool reuseport)
{
	char ab[IKELB_ADDR_STRLEN];
	int v4 = ikelb_addr_is_v4(&cs->vip);
	int fd = socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	int one = 1, rcvbuf = 4 << 20;
	/* FREEBIND: the VIP may be added to an interface after ikelb starts. */
	if (v4 ? setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one))
	       : setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)))
		goto fail;
	if (!v4 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	/* Best effort (capped by net.core.rmem_max): absorbs bursts of ESP. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	sock_gro_enable(fd);
	struct sockaddr_storage ss;
	socklen_t len;
	len = ikelb_sockaddr_from_addr(&cs->vip, port, &ss);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		goto fail;
	return fd;
fail:
	log_err(e->log, "socket engine: service %s: cannot listen on %s port %u: %s", cs->name,
		ikelb_addr_str(&cs->vip, ab, sizeof(ab)), port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int listeners_open(struct sock_engine *e)
{
	uint32_t n = 0;
	for (int i = 0; i < e->nsvc; i++)
		n += (uint32_t)e->cfg->services[i].nports;
	n *= (uint32_t)e->nworkers;
	e->lst = calloc(n ? n : 1, sizeof(*e->lst));
	if (!e->lst)
		return -1;
	for (int w = 0; w < e->nworkers; w++) {
		for (int i = 0; i < e->nsvc; i++) {
			const struct cfg_service *cs = &e->cfg->services[i];
			for (int p = 0; p < cs->nports; p++) {
				struct sock_listener *l = &e->lst[e->nlst];
				l->fd = listener_open(e, cs, cs->ports[p], e->nworkers > 1);
				if (l->fd < 0)
					return -1;
				l->svc = i;
				l->worker = w;
				l->port = cs->ports[p];
				l->natt = (uint8_t)ike_port_is_natt(
					cs->ports[p], e->ike_port ? e->ike_port : cs->ike_port);
				l->vip = cs->vip;
				e->nlst++;
			}
		}
	}
	return 0;
}

/* Flows need one descriptor each: raise the soft limit to the hard one and
 * cap the flow table by what remains. */
static uint32_t flow_capacity(struct sock_engine *e, uint32_t want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = { rl.rlim_max, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	uint64_t reserve = SOCK_FD_RESERVE + (uint64_t)e->nlst + 2ULL * (uint64_t)e->nworkers;
	uint64_t avail = rl.rlim_cur > reserve ? rl.rlim_cur - reserve : 1;
	if (avail < want) {
		log_warn(e->log, "socket engine: RLIMIT_NOFILE is %llu: at most %llu upstream flows "
				 "instead of max_flows %u (raise LimitNOFILE / ulimit -n)",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)avail, want);
		return (uint32_t)avail;
	}
	return want;
}

/* Full NAT makes every client look like one of K addresses to the servers,
 * so the servers' per-source-IP limits apply to all clients together. */
static void warn_fullnat(struct sock_engine *e, const struct cfg_service *cs)
{
	char pool[256] = "";
	size_t off = 0;
	int k = cs->nsnat_pool;
	for (int i = 0; i < k && off < sizeof(pool) - IKELB_ADDR_STRLEN - 2; i++) {
		char ab[IKELB_ADDR_STRLEN];
		off += (size_t)snprintf(pool + off, sizeof(pool) - off, "%s%s", i ? " " : "",
					ikelb_addr_str(&cs->snat_pool[i], ab, sizeof(ab)));
	}
	int kk = k ? k : 1;
	log_warn(e->log,
		 "service %s: fullnat: real servers see ikelb's address%s (%s), not the clients'; "
		 "K=%d source address%s. The servers' per-source-IP limits now apply to all "
		 "clients together: strongSwan asks for COOKIEs once 3 IKE SAs from one IP are "
		 "half-open and drops handshakes beyond 5 (charon.cookie_threshold_ip / "
		 "block_threshold), so with K=%d more than %d simultaneous handshakes per server "
		 "are throttled (COOKIE round trips from %d); Windows RRAS allows 10 IKE SAs per "
		 "source IP by default, i.e. %d clients per server. Add snat_pool addresses or "
		 "raise the servers' limits; dnat keeps the client addresses",
		 cs->name, k > 1 ? "es" : "", k ? pool : "kernel-chosen", kk, k > 1 ? "es" : "",
		 kk, 5 * kk, 3 * kk, 10 * kk);
}

static int svc_setup(struct sock_engine *e, int i)
{
	const struct cfg_service *cs = &e->cfg->services[i];
	struct sock_svc *s = &e->svc[i];
	if (cs->forwarding != CFG_FWD_FULLNAT) {
		log_err(e->log, "service %s: the socket engine only does forwarding: fullnat "
				"(%s needs the bpf engine)",
			cs->name, cfg_forwarding_name(cs->forwarding));
		return -1;
	}
	s->cs = cs;
	s->nsrv = cs->nservers;
	s->flow_to = cs->persistence.flow_timeout_s;
	size_t n = cs->nservers ? (size_t)cs->nservers : 1;
	s->pool_next = calloc(n, sizeof(*s->pool_next));
	s->srv_ctr = calloc(n, sizeof(*s->srv_ctr));
	if (!s->pool_next || !s->srv_ctr)
		return -1;
	for (int j = 0; j < cs->nservers; j++) {
		/* Servers sharing pool addresses start at different slots. */
		s->pool_next[j] = (uint32_t)j;
	}
	warn_fullnat(e, cs);
	return 0;
}

static int workers_start(struct sock_engine *e)
{
	e->w = calloc((size_t)e->nworkers, sizeof(*e->w));
	if (!e->w)
		return -1;
	for (int i = 0; i < e->nworkers; i++) {
		struct sock_worker *w = &e->w[i];
		w->e = e;
		w->idx = i;
		w->epfd = w->wakefd = -1;
		sock_mod_init(&w->mod, e->cfg->sock_coalesce_us, SOCK_BATCH);
	}
	for (int i = 0; i < e->nworkers; i++) {
		struct sock_worker *w = &e->w[i];
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->rxbuf = malloc((size_t)SOCK_BATCH * SOCK_BUF);
		if (w->epfd < 0 || w->wakefd < 0 || !w->rxbuf)
			return -1;
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SOCK_EV(SOCK_EV_WAKE, 0, 0) };
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) < 0)
			return -1;
	}
	for (uint32_t i = 0; i < e->nlst; i++) {
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.u64 = SOCK_EV(SOCK_EV_LISTENER, 0, i) };
		if (epoll_ctl(e->w[e->lst[i].worker].epfd, EPOLL_CTL_ADD, e->lst[i].fd, &ev) < 0)
			return -1;
	}
	for (int i = 0; i < e->nworkers; i++) {
		if (pthread_create(&e->w[i].th, NULL, sock_worker_main, &e->w[i]) != 0)
			return -1;
		e->w[i].started = true;
	}
	return 0;
}

static void read_worker_stats(const struct sock_engine *e, struct eng_sock_stats *o);

/* At stop: how deep the workers batched over their life (tuning aid for
 * socket.coalesce_usecs; live figures in the ikelb_socket_* metrics). */
static void log_batching(struct sock_engine *e)
{
	struct eng_sock_stats s;
	read_worker_stats(e, &s);
	if (!s.wakes)
		return;
	log_info(e->log, "socket engine: %llu datagrams in %llu wakes (%.1f per wake), "
			 "%llu sends (%.1f per send), %llu coalesce waits (%.1f ms)",
		 (unsigned long long)s.dgrams, (unsigned long long)s.wakes,
		 (double)s.dgrams / (double)s.wakes, (unsigned long long)s.sends,
		 s.sends ? (double)s.dgrams / (double)s.sends : 0.0,
		 (unsigned long long)s.waits, (double)s.wait_ns / 1e6);
}

static void engine_free(struct sock_engine *e)
{
	atomic_store(&e->stop, 1);
	for (int i = 0; e->w && i < e->nworkers; i++) {
		uint64_t one = 1;
		if (e->w[i].wakefd >= 0 && write(e->w[i].wakefd, &one, sizeof(one)) < 0)
			log_warn(e->log, "socket engine: waking worker %d: %s", i, strerror(errno));
	}
	for (int i = 0; e->w && i < e->nworkers; i++) {
		struct sock_worker *w = &e->w[i];
		if (w->started)
			pthread_join(w->th, NULL);
		if (w->epfd >= 0)
			close(w->epfd);
		if (w->wakefd >= 0)
			close(w->wakefd);
		free(w->rxbuf);
	}
	log_batching(e);
	free(e->w);
	for (uint32_t i = 0; i < e->nlst; i++)
		close(e->lst[i].fd);
	free(e->lst);
	sock_flows_free(e);
	for (int i = 0; i < CFG_MAX_SERVICES; i++) {
		free(e->svc[i].pool_next);
		free(e->svc[i].srv_ctr);
	}
	steer_free(e->steer);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

/* socket.workers, or auto: one per online CPU up to SOCK_AUTO_WORKERS,
 * the most measured (docs/performance.md, "The socket engine"). */
static int worker_count(const struct cfg *cfg)
{
	if (cfg->sock_workers > 0)
		return (int)cfg->sock_workers;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > SOCK_AUTO_WORKERS ? SOCK_AUTO_WORKERS : (int)n;
}

int sock_engine_open_opts(struct runtime *rt, const struct logger *log,
			  const struct sock_engine_opts *o, struct engine *out)
{
	const struct cfg *cfg = rt->cfg;
	struct sock_engine_opts d = { 0 };
	if (o)
		d = *o;
	struct sock_engine *e = calloc(1, sizeof(*e));
	if (!e) {
		log_err(log, "socket engine: out of memory");
		return -1;
	}
	pthread_mutex_init(&e->mu, NULL);
	e->cfg = cfg;
	e->log = log;
	e->nsvc = cfg->nservices;
	e->nworkers = d.workers > 0 ? d.workers : worker_count(cfg);
	e->ike_port = d.ike_port; /* 0: each service's ike_port */
	struct steer_opts so = { .max_clients = d.max_clients, .max_halfopen = d.max_halfopen,
				 .max_flows = d.max_flows };
	e->steer = steer_new(rt, &so);
	if (!e->steer) {
		log_err(log, "socket engine: cannot build steering state (bad config or memory)");
		goto fail;
	}
	for (int i = 0; i < e->nsvc; i++)
		if (svc_setup(e, i) < 0)
			goto fail;
	if (listeners_open(e) < 0)
		goto fail;
	uint32_t cap = flow_capacity(e, d.max_flows ? d.max_flows : cfg->max_flows);
	if (sock_flows_init(e, cap ? cap : 1) < 0) {
		log_err(log, "socket engine: cannot allocate %u flows", cap);
		goto fail;
	}
	if (workers_start(e) < 0) {
		log_err(log, "socket engine: cannot start workers: %s", strerror(errno));
		goto fail;
	}
	log_info(log, "socket engine: %u listeners, %d worker%s, up to %u flows, coalesce %u us",
		 e->nlst, e->nworkers, e->nworkers > 1 ? "s" : "", e->cap, cfg->sock_coalesce_us);
	out->ops = &sock_ops;
	out->impl = e;
	return 0;
fail:
	engine_free(e);
	return -1;
}

int sock_engine_open(struct runtime *rt, const struct logger *log, struct engine *out)
{
	return sock_engine_open_opts(rt, log, NULL, out);
}
