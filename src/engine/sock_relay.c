/* Worker loop of the socket engine: epoll over the VIP listeners, the
 * upstream flow sockets and a wake-up eventfd. Client datagrams are read in
 * recvmmsg batches outside the lock (listeners live as long as the engine),
 * then steered and forwarded under e->mu, runs of datagrams for the same
 * flow in one sendmmsg. Replies are read from the flow socket and relayed
 * to the client from the VIP:port listener in one sendmmsg. Both ways a
 * received message may be a GRO train of datagrams: each is steered on its
 * own, and a run goes out as GSO trains again (sock_gso.c). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "engine/sock_int.h"

#define SOCK_MAX_ROUNDS 4 /* batches per ready socket before serving others */

static void prep_rx(struct sock_worker *w)
{
	for (int i = 0; i < SOCK_BATCH; i++) {
		w->iov[i].iov_base = w->rxbuf + (size_t)i * SOCK_BUF;
		w->iov[i].iov_len = SOCK_BUF;
		memset(&w->msgs[i].msg_hdr, 0, sizeof(w->msgs[i].msg_hdr));
		w->msgs[i].msg_hdr.msg_iov = &w->iov[i];
		w->msgs[i].msg_hdr.msg_iovlen = 1;
		w->msgs[i].msg_hdr.msg_name = &w->names[i];
		w->msgs[i].msg_hdr.msg_namelen = sizeof(w->names[i]);
		w->msgs[i].msg_hdr.msg_control = w->ctl[i].buf;
		w->msgs[i].msg_hdr.msg_controllen = sizeof(w->ctl[i].buf);
	}
}

/* Datagram `k` of received message i: its start and length. A message is
 * one datagram, or a GRO train of segments of `seg` bytes (the last may be
 * shorter). */
static uint32_t msg_segs(const struct sock_worker *w, int i, uint32_t *seg)
{
	uint32_t len = w->msgs[i].msg_len;
	uint32_t g = sock_gro_size(&w->msgs[i].msg_hdr);
	*seg = g && g < len ? g : (len ? len : 1);
	return len ? (len + *seg - 1) / *seg : 1;
}

/* Datagrams of one flow waiting to go upstream together. */
struct sock_run {
	uint32_t conn;
	int srv;
	int n;
	struct iovec d[SOCK_RUN_MAX];
};

static void run_flush(struct sock_engine *e, struct sock_worker *w, struct sock_run *run)
{
	if (run->n == 0)
		return;
	struct sock_conn *c = &e->conns[run->conn];
	struct sock_svc *s = &e->svc[c->svc];
	bool sent[SOCK_RUN_MAX];
	w->sends++;
	/* Unsent datagrams (socket buffer full, ICMP error pending) are lost
	 * like on any UDP hop; IKE retransmits. */
	sock_send_dgrams(c->fd, run->d, run->n, NULL, 0, &w->gso_off, sent);
	for (int i = 0; i < run->n; i++) {
		if (!sent[i])
			continue;
		steer_count(e->steer, c->svc, SVC_CTR_FWD, run->d[i].iov_len);
		s->srv_ctr[c->srv].pkts++;
		s->srv_ctr[c->srv].bytes += run->d[i].iov_len;
	}
	run->n = 0;
}

static bool run_is_flow(const struct sock_engine *e, const struct sock_run *run,
			const struct ikelb_addr *client, uint16_t cport, int srv)
{
	const struct sock_conn *c = &e->conns[run->conn];
	return run->n && run->srv == srv && c->cport == cport && ikelb_addr_eq(&c->client, client);
}

/* A placement worth a line (IKELB_RULE_LOGGED): new clients and clients
 * found by their SA or address again (a flow or label decision repeats for
 * every datagram). */
static void log_decision(struct sock_engine *e, const struct sock_listener *l,
			 const struct ikelb_addr *client, uint16_t cport, int srv,
			 const struct steer_result *r)
{
	if (!IKELB_RULE_LOGGED(r->rule) || r->repeat)
		return;
	const struct cfg_service *cs = &e->cfg->services[l->svc];
	const struct declog_rec rec = { .client = client, .cport = cport,
					.spi_i = r->info.spi_i, .service = cs->name,
					.server = cs->servers[srv].name, .rule = r->rule };
	declog_line(e->log, &e->dlog, clock_mono_ms(), &rec);
}

/* One client datagram: steered, then added to the run of its flow. */
static void client_dgram(struct sock_engine *e, struct sock_worker *w, uint32_t li,
			 struct sock_run *run, const struct ikelb_addr *client, uint16_t cport,
			 uint8_t *buf, uint32_t len, uint64_t now)
{
	const struct sock_listener *l = &e->lst[li];
	struct steer_result r;
	int srv = steer_packet(e->steer, l->svc, client, cport, l->port, l->natt, buf, len, now,
			       &r);
	if (srv < 0)
		return;
	if (e->log_decisions)
		log_decision(e, l, client, cport, srv, &r);
	if (!run_is_flow(e, run, client, cport, srv) || run->n == SOCK_RUN_MAX) {
		/* Flush first: getting the flow may re-create a socket. */
		run_flush(e, w, run);
		struct sock_conn *c = sock_flow_get(e, w, li, client, cport, srv, now);
		if (!c) {
			steer_count(e->steer, l->svc, SVC_CTR_DROP(IKE_DROP_TABLE_FULL), len);
			return;
		}
		run->conn = (uint32_t)(c - e->conns);
		run->srv = srv;
	}
	run->d[run->n].iov_base = buf; /* same flow, same server: same socket */
	run->d[run->n++].iov_len = len;
}

/* Returns the datagrams the batch held. */
static uint32_t handle_client_batch(struct sock_engine *e, struct sock_worker *w, uint32_t li,
				    int n, uint64_t now)
{
	uint32_t dgrams = 0;
	const struct sock_listener *l = &e->lst[li];
	struct sock_run run = { .n = 0 };
	for (int i = 0; i < n; i++) {
		struct ikelb_addr client;
		uint16_t cport;
		if (ikelb_sockaddr_to_addr(&w->names[i], &client, &cport) < 0)
			continue;
		if (w->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
			steer_count(e->steer, l->svc, SVC_CTR_RX, w->msgs[i].msg_len);
			steer_count(e->steer, l->svc, SVC_CTR_DROP(IKE_DROP_MALFORMED_IP), 0);
			continue;
		}
		uint32_t seg, len = w->msgs[i].msg_len;
		uint32_t nseg = msg_segs(w, i, &seg);
		uint8_t *b = w->iov[i].iov_base;
		dgrams += nseg;
		for (uint32_t k = 0; k < nseg; k++) {
			uint32_t dl = len - k * seg < seg ? len - k * seg : seg;
			client_dgram(e, w, li, &run, &client, cport, b + (size_t)k * seg, dl, now);
		}
	}
	run_flush(e, w, &run);
	return dgrams;
}

/* What one wake handled, for the moderation (sock_mod.h). */
struct sock_wake {
	uint32_t dgrams;
	bool full; /* a socket had more than SOCK_MAX_ROUNDS batches waiting */
};

static void on_listener(struct sock_engine *e, struct sock_worker *w, uint32_t li,
			struct sock_wake *wk)
{
	const struct sock_listener *l = &e->lst[li];
	for (int round = 0; round < SOCK_MAX_ROUNDS; round++) {
		prep_rx(w);
		int n = recvmmsg(l->fd, w->msgs, SOCK_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		uint64_t now = clock_mono_s();
		pthread_mutex_lock(&e->mu);
		wk->dgrams += handle_client_batch(e, w, li, n, now);
		pthread_mutex_unlock(&e->mu);
		if (n < SOCK_BATCH)
			return;
	}
	wk->full = true;
}

/* Send a run of replies to the flow's client from its VIP:port listener. */
static void reply_flush(struct sock_engine *e, struct sock_worker *w, const struct sock_conn *c,
			struct sock_run *run, const struct sockaddr_storage *to, socklen_t tolen)
{
	bool sent[SOCK_RUN_MAX];
	struct sock_srv_ctr *sc = &e->svc[c->svc].srv_ctr[c->srv];
	w->sends++;
	sock_send_dgrams(e->lst[c->lst].fd, run->d, run->n, to, tolen, &w->gso_off, sent);
	for (int i = 0; i < run->n; i++) {
		if (!sent[i])
			continue;
		steer_count(e->steer, c->svc, SVC_CTR_REPLY, run->d[i].iov_len);
		sc->reply_pkts++;
		sc->reply_bytes += run->d[i].iov_len;
	}
	run->n = 0;
}

/* n received messages (datagrams or GRO trains) of the flow's server:
 * each datagram teaches the steering (SPIr, labels), then all go to the
 * client. */
static uint32_t relay_replies(struct sock_engine *e, struct sock_worker *w,
			      const struct sock_conn *c, int n, uint64_t now)
{
	uint32_t dgrams = 0;
	struct sockaddr_storage to;
	socklen_t tolen = ikelb_sockaddr_from_addr(&c->client, c->cport, &to);
	struct sock_run run = { .n = 0 };
	for (int i = 0; i < n; i++) {
		uint32_t seg, len = w->msgs[i].msg_len;
		uint32_t nseg = msg_segs(w, i, &seg);
		uint8_t *b = w->iov[i].iov_base;
		dgrams += nseg;
		for (uint32_t k = 0; k < nseg; k++) {
			uint32_t dl = len - k * seg < seg ? len - k * seg : seg;
			steer_learn_reply(e->steer, c->svc, &c->client, c->cport, c->vport,
					  e->lst[c->lst].natt, c->srv, b + (size_t)k * seg, dl, now);
			if (run.n == SOCK_RUN_MAX)
				reply_flush(e, w, c, &run, &to, tolen);
			run.d[run.n].iov_base = b + (size_t)k * seg;
			run.d[run.n++].iov_len = dl;
		}
	}
	reply_flush(e, w, c, &run, &to, tolen);
	return dgrams;
}

/* Replies of one flow, relayed from VIP:port to the client. Under the lock
 * because the sweeper may close the flow's socket. */
static void on_conn(struct sock_engine *e, struct sock_worker *w, uint64_t u,
		    struct sock_wake *wk)
{
	int round;
	uint32_t idx = SOCK_EV_IDX(u);
	pthread_mutex_lock(&e->mu);
	for (round = 0; round < SOCK_MAX_ROUNDS; round++) {
		if (idx >= e->cap)
			break;
		struct sock_conn *c = &e->conns[idx];
		if (c->fd < 0 || (c->gen & 0x3fffffffu) != SOCK_EV_GEN(u))
			break; /* closed or re-used since epoll reported it */
		prep_rx(w);
		int n = recvmmsg(c->fd, w->msgs, SOCK_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break; /* EAGAIN, or ECONNREFUSED (server port closed), now cleared */
		uint64_t now = clock_mono_s();
		wk->dgrams += relay_replies(e, w, c, n, now);
		sock_flow_touch(e, c, now);
		if (n < SOCK_BATCH)
			break;
	}
	pthread_mutex_unlock(&e->mu);
	if (round == SOCK_MAX_ROUNDS)
		wk->full = true;
}

static void wake_events(struct sock_engine *e, struct sock_worker *w,
			const struct epoll_event *ev, int n, struct sock_wake *wk)
{
	for (int i = 0; i < n && !atomic_load(&e->stop); i++) {
		uint64_t u = ev[i].data.u64;
		switch (SOCK_EV_TYPE(u)) {
		case SOCK_EV_LISTENER:
			on_listener(e, w, SOCK_EV_IDX(u), wk);
			break;
		case SOCK_EV_CONN:
			on_conn(e, w, u, wk);
			break;
		default: {
			uint64_t v;
			if (read(w->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
			break;
		}
		}
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The moderation's wait: datagrams queue in the sockets meanwhile. */
static void mod_wait(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL),
			       .tv_nsec = (long)(ns % 1000000000ULL) };
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

static void publish_stats(struct sock_worker *w)
{
	atomic_store_explicit(&w->st.wakes, w->mod.wakes, memory_order_relaxed);
	atomic_store_explicit(&w->st.dgrams, w->mod.dgrams, memory_order_relaxed);
	atomic_store_explicit(&w->st.waits, w->mod.waits, memory_order_relaxed);
	atomic_store_explicit(&w->st.wait_ns, w->mod.wait_ns, memory_order_relaxed);
	atomic_store_explicit(&w->st.sends, w->sends, memory_order_relaxed);
}

void *sock_worker_main(void *arg)
{
	struct sock_worker *w = arg;
	struct sock_engine *e = w->e;
	struct epoll_event ev[64];

	/* The default 50 us timer slack would stretch every moderation wait
	 * past its bound. */
	if (w->mod.max_ns)
		(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	while (!atomic_load(&e->stop)) {
		int n = epoll_wait(w->epfd, ev, 64, 1000);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		struct sock_wake wk = { 0 };
		wake_events(e, w, ev, n, &wk);
		uint64_t wait = sock_mod_after_wake(&w->mod, now_ns(), wk.dgrams, wk.full);
		publish_stats(w);
		if (wait && !atomic_load(&e->stop))
			mod_wait(wait);
	}
	return NULL;
}
