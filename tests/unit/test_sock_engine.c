/* End to end through the socket engine on loopback, unprivileged: VIP
 * 127.0.0.1 on two free high ports (the first mapped to port-500 framing),
 * two "real servers" = UDP sockets on 127.0.0.2 and 127.0.0.3 on the same
 * port numbers, snat pool 127.0.0.11/12. Every wait is a bounded poll. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/sock_engine.h"
#include "helpers/pkt.h"
#include "ikelb/ike_wire.h"
#include "steer_cfg.h"

#define NSRV 2
#define WAIT_MS 2000

struct tb {
	struct cfg cfg;
	struct logger log;
	FILE *logf;
	struct engine eng;
	struct runtime rt;
	uint16_t port[2];          /* [0] port-500 framing, [1] NAT-T */
	int srv[NSRV][2];          /* server sockets per port */
	uint8_t buf[PKT_MAX];
};

static int udp_bound(const char *ip, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, ip, &a.sin_addr);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &l);
	return ntohs(a.sin_port);
}

/* Two free port numbers on which both server addresses can bind too. */
static void pick_ports(struct tb *t)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		int ok = 1;
		for (int p = 0; p < 2 && ok; p++) {
			int fd = udp_bound("127.0.0.1", 0);
			assert_true(fd >= 0);
			t->port[p] = local_port(fd);
			close(fd);
			for (int s = 0; s < NSRV && ok; s++) {
				char ip[32];
				snprintf(ip, sizeof(ip), "127.0.0.%d", 2 + s);
				t->srv[s][p] = udp_bound(ip, t->port[p]);
				ok = t->srv[s][p] >= 0;
			}
		}
		if (ok && t->port[0] != t->port[1])
			return;
		for (int s = 0; s < NSRV; s++)
			for (int p = 0; p < 2; p++)
				if (t->srv[s][p] >= 0)
					close(t->srv[s][p]);
	}
	fail_msg("no free port pair");
}

static struct tb *tb_start(uint32_t max_flows, int workers)
{
	struct tb *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	memset(t->srv, 0xff, sizeof(t->srv));
	pick_ports(t);
	assert_int_equal(tcfg_build(&t->cfg, "127.0.0.1", t->port[0], t->port[1], NSRV,
				    "127.0.0.%d", 2), 0);
	struct cfg_service *cs = &t->cfg.services[0];
	cs->forwarding = CFG_FWD_FULLNAT;
	cs->persistence.mode = CFG_PERSIST_IKE;
	cs->snat_pool[0] = tcfg_addr("127.0.0.11");
	cs->snat_pool[1] = tcfg_addr("127.0.0.12");
	cs->nsnat_pool = 2;
	log_init(&t->log, LOG_LVL_INFO);
	t->logf = tmpfile();
	assert_non_null(t->logf);
	t->log.out = t->logf;
	struct sock_engine_opts o = { .workers = workers, .ike_port = t->port[0],
				      .max_flows = max_flows, .max_clients = 4096,
				      .max_halfopen = 1024 };
	struct rt_ops ops = eng_rt_ops(&t->eng);
	assert_int_equal(rt_init(&t->rt, &t->cfg, &t->log, &ops), 0);
	assert_int_equal(sock_engine_open_opts(&t->rt, &t->log, &o, &t->eng), 0);
	return t;
}

static void tb_stop(struct tb *t)
{
	t->eng.ops->close(&t->eng, false);
	rt_free(&t->rt);
	for (int s = 0; s < NSRV; s++)
		for (int p = 0; p < 2; p++)
			close(t->srv[s][p]);
	fclose(t->logf);
	cfg_free(&t->cfg);
	free(t);
}

static int client_sock(void)
{
	int fd = udp_bound("127.0.0.1", 0);
	assert_true(fd >= 0);
	return fd;
}

/* A client on its own loopback address 127.0.1.(c+1). */
static int client_sock_at(int c)
{
	char a[32];
	snprintf(a, sizeof(a), "127.0.1.%d", c + 1);
	int fd = udp_bound(a, 0);
	assert_true(fd >= 0);
	return fd;
}

static void send_vip(struct tb *t, int fd, int port_idx, const void *p, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(t->port[port_idx]) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(sendto(fd, p, n, 0, (struct sockaddr *)&a, sizeof(a)), (ssize_t)n);
}

struct got {
	int srv;                 /* -1: nothing within the wait */
	struct sockaddr_in from; /* upstream source as the server sees it */
	uint8_t data[PKT_MAX];
	ssize_t len;
};

/* First datagram reaching any server socket of port port_idx. */
static void server_recv(struct tb *t, int port_idx, int wait_ms, struct got *g)
{
	struct pollfd pf[NSRV];
	for (int s = 0; s < NSRV; s++)
		pf[s] = (struct pollfd){ .fd = t->srv[s][port_idx], .events = POLLIN };
	g->srv = -1;
	if (poll(pf, NSRV, wait_ms) <= 0)
		return;
	for (int s = 0; s < NSRV; s++) {
		if (!(pf[s].revents & POLLIN))
			continue;
		socklen_t l = sizeof(g->from);
		g->len = recvfrom(pf[s].fd, g->data, sizeof(g->data), 0,
				  (struct sockaddr *)&g->from, &l);
		g->srv = s;
		return;
	}
}

static uint64_t ctr(struct tb *t, int c)
{
	struct eng_stats st;
	assert_int_equal(eng_stats_alloc(&st, &t->cfg), 0);
	assert_int_equal(t->eng.ops->read_stats(&t->eng, &st), 0);
	uint64_t v = st.svc[0].pkts[c];
	eng_stats_free(&st);
	return v;
}

/* Send one datagram and expect it, unchanged, at one server. */
static int forward_one(struct tb *t, int fd, int port_idx, size_t n, struct got *g)
{
	send_vip(t, fd, port_idx, t->buf, n);
	server_recv(t, port_idx, WAIT_MS, g);
	assert_true(g->srv >= 0);
	assert_int_equal(g->len, (ssize_t)n);
	assert_memory_equal(g->data, t->buf, n);
	return g->srv;
}

static void full_lifecycle(void **state)
{
	(void)state;
	struct tb *t = tb_start(0, 1);
	enum { NC = 8 };
	int used[NSRV][2] = { { 0 } }; /* [server][pool address] clients seen */
	int per_srv[NSRV] = { 0 };
	for (int c = 0; c < NC; c++) {
		int s500 = client_sock_at(c), s4500 = client_sock_at(c);
		uint64_t spi = 0x1000000000000000ULL * (uint64_t)(c + 1) + 0x1234;
		struct got g;
		int srv = forward_one(t, s500, 0,
				      pkt_ikev2_sa_init_req(t->buf, sizeof(t->buf), spi), &g);
		used[srv][ntohl(g.from.sin_addr.s_addr) - 0x7f00000bu]++;
		struct in_addr src500 = g.from.sin_addr;
		/* The server answers the upstream source; the client hears it from
		 * VIP:port. */
		size_t rn = pkt_ikev2_sa_init_resp(t->buf, sizeof(t->buf), spi, 0xbeef00 + c);
		assert_int_equal(sendto(t->srv[srv][0], t->buf, rn, 0, (struct sockaddr *)&g.from,
					sizeof(g.from)), (ssize_t)rn);
		struct pollfd pf = { .fd = s500, .events = POLLIN };
		assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
		uint8_t rb[PKT_MAX];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		assert_int_equal(recvfrom(s500, rb, sizeof(rb), 0, (struct sockaddr *)&from, &fl),
				 (ssize_t)rn);
		assert_memory_equal(rb, t->buf, rn);
		assert_int_equal(ntohs(from.sin_port), t->port[0]);
		assert_int_equal(from.sin_addr.s_addr, htonl(0x7f000001));
		/* IKE_AUTH, ESP and a keepalive on the NAT-T port follow. */
		assert_int_equal(forward_one(t, s4500, 1,
					     pkt_ikev2_auth_natt(t->buf, sizeof(t->buf), spi,
								 0xbeef00 + c, 1, 100), &g), srv);
		/* After the NAT-T float the server must see the same source
		 * address as for IKE_SA_INIT: one client, one pool address. */
		assert_int_equal(g.from.sin_addr.s_addr, src500.s_addr);
		struct sockaddr_in up = g.from;
		assert_int_equal(forward_one(t, s4500, 1,
					     pkt_esp(t->buf, sizeof(t->buf), 0xc0000100u + c, 1, 64),
					     &g), srv);
		assert_int_equal(g.from.sin_port, up.sin_port); /* same upstream socket */
		assert_int_equal(forward_one(t, s4500, 1, pkt_natt_keepalive(t->buf, sizeof(t->buf)),
					     &g), srv);
		per_srv[srv]++;
		close(s500);
		close(s4500);
	}
	/* ike persistence spreads the clients over both servers, and each
	 * server's clients take both pool addresses in turn. */
	for (int s = 0; s < NSRV; s++) {
		assert_true(per_srv[s] > 0);
		assert_true(used[s][0] > 0 && used[s][1] > 0);
		assert_true(used[s][0] - used[s][1] <= 1 && used[s][1] - used[s][0] <= 1);
	}
	assert_int_equal(ctr(t, SVC_CTR_FWD), NC * 4);
	assert_int_equal(ctr(t, SVC_CTR_REPLY), NC);
	assert_int_equal(ctr(t, SVC_CTR_STEER_NEW), NC);
	assert_int_equal(ctr(t, SVC_CTR_STEER_SA), NC);
	assert_int_equal(ctr(t, SVC_CTR_STEER_FLOW), 2 * NC);
	assert_int_equal(sock_engine_flows(&t->eng), 2 * NC);

	/* The fullnat warning names K and the per-IP limits. */
	char logbuf[8192] = "";
	fflush(t->logf);
	rewind(t->logf);
	size_t ln = fread(logbuf, 1, sizeof(logbuf) - 1, t->logf);
	logbuf[ln] = 0;
	assert_non_null(strstr(logbuf, "fullnat"));
	assert_non_null(strstr(logbuf, "K=2"));
	assert_non_null(strstr(logbuf, "more than 10 simultaneous handshakes"));
	tb_stop(t);
}

static void malformed_not_forwarded(void **state)
{
	(void)state;
	struct tb *t = tb_start(0, 1);
	int fd = client_sock();
	uint8_t junk[3] = { 1, 2, 3 };
	send_vip(t, fd, 1, junk, sizeof(junk));
	size_t n = pkt_ikev2_sa_init_req(t->buf, sizeof(t->buf), 0x77);
	t->buf[17] = 0x30; /* IKE version 3 */
	send_vip(t, fd, 0, t->buf, n);
	n = pkt_esp(t->buf, sizeof(t->buf), 7, 1, 16); /* reserved SPI */
	send_vip(t, fd, 1, t->buf, n);
	struct got g;
	server_recv(t, 0, 300, &g);
	assert_int_equal(g.srv, -1);
	server_recv(t, 1, 300, &g);
	assert_int_equal(g.srv, -1);
	assert_int_equal(ctr(t, SVC_CTR_DROP_BASE + IKE_DROP_TOO_SHORT), 1);
	assert_int_equal(ctr(t, SVC_CTR_DROP_BASE + IKE_DROP_BAD_VERSION), 1);
	assert_int_equal(ctr(t, SVC_CTR_DROP_BASE + IKE_DROP_RESERVED_SPI), 1);
	assert_int_equal(ctr(t, SVC_CTR_RX), 3);
	assert_int_equal(ctr(t, SVC_CTR_FWD), 0);
	assert_int_equal(sock_engine_flows(&t->eng), 0);
	close(fd);
	tb_stop(t);
}

static void flow_limit_refuses(void **state)
{
	(void)state;
	struct tb *t = tb_start(3, 1);
	int fds[5];
	for (int i = 0; i < 5; i++) {
		fds[i] = client_sock();
		size_t n = pkt_ikev2_sa_init_req(t->buf, sizeof(t->buf), 0x5000u + (uint64_t)i);
		send_vip(t, fds[i], 0, t->buf, n);
	}
	int got = 0;
	struct got g;
	for (;;) {
		server_recv(t, 0, 500, &g);
		if (g.srv < 0)
			break;
		got++;
	}
	assert_int_equal(got, 3);
	assert_int_equal(sock_engine_flows(&t->eng), 3);
	assert_int_equal(ctr(t, SVC_CTR_DROP_BASE + IKE_DROP_TABLE_FULL), 2);
	/* Sweeping far in the future frees them; the refused client gets in. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	assert_true(t->eng.ops->sweep(&t->eng, (uint64_t)ts.tv_sec + 1000000) >= 3);
	assert_int_equal(sock_engine_flows(&t->eng), 0);
	size_t n = pkt_ikev2_sa_init_req(t->buf, sizeof(t->buf), 0x5004);
	send_vip(t, fds[4], 0, t->buf, n);
	server_recv(t, 0, WAIT_MS, &g);
	assert_true(g.srv >= 0);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	tb_stop(t);
}

/* IKE_SA_INIT as sent after a NAT-T float: non-ESP marker first. */
static size_t sa_init_natt(uint8_t *buf, size_t cap, uint64_t spi)
{
	size_t n = pkt_ikev2_sa_init_req(buf + 4, cap - 4, spi);
	memset(buf, 0, 4);
	return n ? n + 4 : 0;
}

static void sweep_and_server_down(void **state)
{
	(void)state;
	struct tb *t = tb_start(0, 1);
	int fd = client_sock();
	struct got g;
	size_t n = pkt_ikev2_auth_natt(t->buf, sizeof(t->buf), 0x99, 0x98, 1, 40);
	int srv = forward_one(t, fd, 1, n, &g);   /* unknown SA: fallback, no flow state */
	assert_int_equal(ctr(t, SVC_CTR_STEER_FALLBACK), 1);
	n = sa_init_natt(t->buf, sizeof(t->buf), 0xabc);
	srv = forward_one(t, fd, 1, n, &g);       /* new SA on the NAT-T port */
	assert_int_equal(ctr(t, SVC_CTR_STEER_NEW), 1);
	assert_int_equal(sock_engine_flows(&t->eng), 1);

	/* The server goes down (the daemon sends the state and a new table):
	 * the flow's socket closes and the next datagram goes to the other
	 * server through a new socket. */
	int states[NSRV] = { REAL_ACTIVE, REAL_ACTIVE };
	states[srv] = REAL_DOWN;
	uint32_t m;
	uint32_t *table = tcfg_table(&t->cfg, 0, states, &m);
	assert_non_null(table);
	assert_int_equal(t->eng.ops->set_server_state(&t->eng, 0, srv, REAL_DOWN), 0);
	assert_int_equal(t->eng.ops->set_table(&t->eng, 0, table, m), 0);
	free(table);
	assert_int_equal(sock_engine_flows(&t->eng), 0);
	n = pkt_esp(t->buf, sizeof(t->buf), 0xc0001111u, 2, 50);
	assert_int_equal(forward_one(t, fd, 1, n, &g), 1 - srv);

	/* Idle flows expire at the sweep. */
	n = sa_init_natt(t->buf, sizeof(t->buf), 0xabd);
	assert_int_equal(forward_one(t, fd, 1, n, &g), 1 - srv);
	assert_int_equal(sock_engine_flows(&t->eng), 1);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	assert_int_equal(t->eng.ops->sweep(&t->eng, (uint64_t)ts.tv_sec), 0);
	assert_int_equal(sock_engine_flows(&t->eng), 1);
	uint64_t later = (uint64_t)ts.tv_sec + t->cfg.services[0].persistence.flow_timeout_s + 2;
	/* the upstream socket (an IKE_SA_INIT leaves no steering flow, only a
	 * half-open SA that lives as long as persistence) */
	assert_true(t->eng.ops->sweep(&t->eng, later) >= 1);
	assert_int_equal(sock_engine_flows(&t->eng), 0);
	close(fd);
	tb_stop(t);
}

/* A train of n ESP datagrams of one flow, all `len` bytes but the last
 * (`last`), back to back in buf; returns the total. Datagram k has
 * sequence number seq0 + k, so order and boundaries can be checked. */
static size_t esp_train(uint8_t *buf, size_t cap, uint32_t spi, uint32_t seq0, int n, size_t len,
			size_t last, size_t *seg)
{
	size_t off = 0;
	for (int k = 0; k < n; k++) {
		size_t l = pkt_esp(buf + off, cap - off, spi, seq0 + (uint32_t)k,
				   k == n - 1 ? last : len);
		if (k == 0)
			*seg = l;
		off += l;
	}
	return off;
}

/* Send buf as one UDP_SEGMENT (GSO) send of seg-byte datagrams. */
static void send_gso(int fd, const struct sockaddr_in *to, const uint8_t *buf, size_t n,
		     size_t seg)
{
	int gs = (int)seg;
	assert_int_equal(setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gs, sizeof(gs)), 0);
	assert_int_equal(sendto(fd, buf, n, 0, (const struct sockaddr *)to, sizeof(*to)),
			 (ssize_t)n);
	gs = 0;
	assert_int_equal(setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gs, sizeof(gs)), 0);
}

/* n datagrams on fd, each the next piece of want (segments of seg). */
static void expect_train(int fd, const uint8_t *want, size_t total, size_t seg)
{
	uint8_t rb[PKT_MAX];
	for (size_t off = 0; off < total; off += seg) {
		size_t l = total - off < seg ? total - off : seg;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
		assert_int_equal(recv(fd, rb, sizeof(rb), 0), (ssize_t)l);
		assert_memory_equal(rb, want + off, l);
	}
}

/* Trains of datagrams (a GSO send arrives at a UDP_GRO socket as one
 * buffer) keep their datagram boundaries and order through the engine,
 * both ways, and each datagram is counted. */
static void gro_trains_keep_datagrams(void **state)
{
	(void)state;
	struct tb *t = tb_start(0, 1);
	int s500 = client_sock_at(0), s4500 = client_sock_at(0);
	uint64_t spi = 0x5100000000000077ULL;
	struct got g;
	int srv = forward_one(t, s500, 0, pkt_ikev2_sa_init_req(t->buf, sizeof(t->buf), spi), &g);
	size_t rn = pkt_ikev2_sa_init_resp(t->buf, sizeof(t->buf), spi, 0xbeef42);
	assert_int_equal(sendto(t->srv[srv][0], t->buf, rn, 0, (struct sockaddr *)&g.from,
				sizeof(g.from)), (ssize_t)rn);
	struct pollfd pf = { .fd = s500, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
	assert_true(recv(s500, t->buf, sizeof(t->buf), 0) > 0);
	assert_int_equal(forward_one(t, s4500, 1, pkt_ikev2_auth_natt(t->buf, sizeof(t->buf), spi,
								      0xbeef42, 1, 100), &g), srv);
	struct sockaddr_in up = g.from;
	uint64_t fwd0 = ctr(t, SVC_CTR_FWD), rep0 = ctr(t, SVC_CTR_REPLY);

	static uint8_t train[16384];
	size_t seg, n = esp_train(train, sizeof(train), 0xc0005100u, 1, 10, 96, 40, &seg);
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(t->port[1]) };
	inet_pton(AF_INET, "127.0.0.1", &vip.sin_addr);
	send_gso(s4500, &vip, train, n, seg);
	expect_train(t->srv[srv][1], train, n, seg);
	assert_int_equal(ctr(t, SVC_CTR_FWD), fwd0 + 10);

	/* The server answers with a train too: the client gets datagrams
	 * from VIP:port. */
	n = esp_train(train, sizeof(train), 0xd0005100u, 1, 5, 80, 80, &seg);
	send_gso(t->srv[srv][1], &up, train, n, seg);
	expect_train(s4500, train, n, seg);
	assert_int_equal(ctr(t, SVC_CTR_REPLY), rep0 + 5);
	close(s500);
	close(s4500);
	tb_stop(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_lifecycle),
		cmocka_unit_test(malformed_not_forwarded),
		cmocka_unit_test(flow_limit_refuses),
		cmocka_unit_test(sweep_and_server_down),
		cmocka_unit_test(gro_trains_keep_datagrams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
