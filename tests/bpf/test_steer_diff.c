/* Differential test (ARCHITECTURE.md, "Steering"): one recorded packet sequence fed to the
 * BPF program (BPF_PROG_TEST_RUN) and to the user-space steering of the
 * socket engine (src/core/steer.c) must pick the same real server, or drop,
 * for every packet.
 *
 * The sequence (deterministic PRNG): clients of a source-ip IPv4 service,
 * an ike-persistence service with IKE SPI labels and ESP SPI ranges, and a
 * source-ip IPv6 service; several clients behind one NAT address;
 * IKE_SA_INIT (with COOKIE-style retries from a new port), the server's
 * IKE_SA_INIT response (most of the time: without it the IKE_AUTH must not
 * promote the SA), IKE_AUTH after the NAT-T float, ESP, keepalives,
 * INFORMATIONAL, the servers' protected answers; traffic of unknown flows
 * and SAs, malformed datagrams; a server of each IPv4 service going DOWN
 * mid-way (the daemon's table rebuilt) and one coming back.
 *
 * Run twice: with maglev everywhere, and with the kernel scheduler
 * (IPv4 source-ip service lc, IPv6 service wlc with unequal weights): both
 * engines count the clients they place and must pick the same server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"
#include "core/scheduler.h"
#include "core/steer.h"
#include "steer_cfg.h"

#define NAT_IKE "203.0.113.88"
#define NAT_V4 "203.0.113.77"
#define NCLIENTS 36
#define NPKTS 600

struct client {
	int svc;
	char ip[48];
	uint16_t port500, port4500;
	uint64_t spi_i, spi_r;
	uint32_t esp_spi;
	int step;
	int srv0;   /* where IKE_SA_INIT went (steer's view) */
	int labelled;
};

struct diff {
	struct tfx f;
	int sched;   /* the kernel scheduler variant (lc / wlc) */
	struct runtime rt;
	struct steer *st;
	int state[T_NSVC][T_NSRV];
	uint64_t rng;
	int pkts, same, drops, by_rule[RULE_FALLBACK + 1];
};

static uint32_t rnd(struct diff *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return (uint32_t)(d->rng >> 11);
}

/* Feed one frame to both; returns steer's server (or -1). */
static int feed(struct diff *d, int svc, const uint8_t *fr, size_t n)
{
	assert_true(n > PKT_ETH_LEN);
	const uint8_t *ip = fr + PKT_ETH_LEN;
	size_t off = pkt_udp_payload_off(ip, n - PKT_ETH_LEN);
	assert_true(off > 0);
	struct ikelb_addr client;
	t_frame_src(fr, &client);
	const uint8_t *udp = ip + off - PKT_UDP_LEN;
	uint16_t sport = (uint16_t)(udp[0] << 8 | udp[1]);
	uint16_t dport = (uint16_t)(udp[2] << 8 | udp[3]);

	int verdict = t_run(&d->f, fr, n);
	assert_true(verdict > -1000);
	int bpf = verdict == TC_ACT_SHOT ? -1 : t_dst_server(&d->f, svc);

	struct steer_result r;
	int us = steer_packet(d->st, svc, &client, sport, dport, ike_port_is_natt(dport, IKE_PORT),
			      ip + off, n - PKT_ETH_LEN - off, bpf_engine_now_s(), &r);
	d->pkts++;
	if (us == bpf)
		d->same++;
	else
		fprintf(stderr, "packet %d svc %d from %u: bpf %d (verdict %d) steer %d (%s)\n",
			d->pkts, svc, sport, bpf, verdict, us, steer_rule_name(r.rule));
	if (us < 0)
		d->drops++;
	else
		d->by_rule[r.rule]++;
	return us;
}

/* The daemon's reaction to a health change, applied to both engines: the
 * state first, the rebuilt table a little later (the data path must cope
 * with a table that still names the DOWN server). */
static void set_state(struct diff *d, int svc, int srv, int state)
{
	d->state[svc][srv] = state;
	assert_int_equal(bpf_engine_set_real_state(d->f.e, svc, srv, state), 0);
	assert_true(steer_set_state(d->st, svc, srv, state) >= 0);
	/* lc/wlc pick from the runtime's scheduler (socket engine) and the
	 * view it pushes (bpf): the daemon's admin change reaches both. */
	if (d->sched && d->f.svc[svc].scheduler != CFG_SCHED_MAGLEV) {
		static const enum cfg_server_state admin[] = { CFG_SRV_ACTIVE, CFG_SRV_DRAINING,
							       CFG_SRV_DISABLED };
		assert_int_equal(rt_set_admin(&d->rt, svc, srv, admin[state], 0), 0);
	}
}

/* rt_ops.set_sched of the runtime: the view goes to the BPF side. */
static int diff_set_sched(void *ctx, int svc, const struct rt_sched_view *v)
{
	struct diff *d = (struct diff *)((char *)ctx - offsetof(struct diff, st));
	return bpf_engine_set_sched(d->f.e, svc, v);
}

static void push_table(struct diff *d, int svc)
{
	int usable[T_NSRV];
	for (int i = 0; i < T_NSRV; i++)
		usable[i] = d->state[svc][i] == REAL_ACTIVE;
	assert_int_equal(t_maglev(&d->f, svc, usable), 0);
	uint32_t m;
	uint32_t *table = tcfg_table(&d->f.cfg, svc, d->state[svc], &m);
	assert_non_null(table);
	assert_int_equal(steer_set_table(d->st, svc, table, m), 0);
	free(table);
}

static const char *vip_of(int svc)
{
	return t_vip[svc];
}

static void client_init(struct diff *d, struct client *c, int i)
{
	memset(c, 0, sizeof(*c));
	c->srv0 = -1;
	if (i < 16) { /* ike service: 10 behind one NAT address */
		c->svc = SIKE;
		if (i < 10)
			snprintf(c->ip, sizeof(c->ip), NAT_IKE);
		else
			snprintf(c->ip, sizeof(c->ip), "203.0.113.%d", 100 + i);
		c->labelled = i % 3 != 0;
	} else if (i < 30) { /* source-ip IPv4: 5 behind one NAT address */
		c->svc = SV4;
		if (i < 21)
			snprintf(c->ip, sizeof(c->ip), NAT_V4);
		else
			snprintf(c->ip, sizeof(c->ip), "198.18.%d.%d", i, 7 + i);
	} else {
		c->svc = SV6;
		snprintf(c->ip, sizeof(c->ip), "2001:db8:300::%x", 0x10 + i);
	}
	c->port500 = (uint16_t)(20000 + i * 7);
	c->port4500 = (uint16_t)(40000 + i * 7);
	/* A label byte nobody owns, so only SPIr carries labels. */
	c->spi_i = 0x7700000000000000ULL | ((uint64_t)rnd(d) << 16) | (uint64_t)i;
}

static size_t client_next(struct diff *d, struct client *c, uint8_t *fr)
{
	const char *vip = vip_of(c->svc);
	uint8_t pl[PKT_MAX];
	size_t n;
	switch (c->step == 0 ? 0 : c->step == 1 ? 1 : 2 + (int)(rnd(d) % 6)) {
	case 0:
		return t_sa_init(fr, c->ip, c->port500, vip, c->spi_i);
	case 1:
		switch (rnd(d) % 6) {
		case 0: /* COOKIE / INVALID_KE retry from a fresh port */
			c->port500++;
			c->step = 0;
			return t_sa_init(fr, c->ip, c->port500, vip, c->spi_i);
		case 1: /* retransmission from the same port */
			c->step = 0;
			return t_sa_init(fr, c->ip, c->port500, vip, c->spi_i);
		default:
			return t_auth(fr, c->ip, c->port4500, vip, c->spi_i, c->spi_r, 80);
		}
	case 6: /* NAT rebinding: the client's NAT-T port changes */
		c->port4500 = (uint16_t)(c->port4500 + 101);
		return t_esp(fr, c->ip, c->port4500, vip, c->esp_spi);
	case 7: /* make-before-break reauthentication: new IKE SA, same ports */
		c->spi_i = 0x7700000000000000ULL | ((uint64_t)rnd(d) << 16);
		c->step = 0;
		return t_sa_init(fr, c->ip, c->port500, vip, c->spi_i);
	case 2:
	case 3:
		return t_esp(fr, c->ip, c->port4500, vip, c->esp_spi);
	case 4:
		return t_keepalive(fr, c->ip, c->port4500, vip);
	default:
		n = pkt_ikev2_informational_resp(pl, sizeof(pl), c->spi_i, c->spi_r, 2,
						 IKE_FLAG_R | IKE_FLAG_I, 1);
		return t_udp(fr, c->ip, c->port4500, vip, 4500, pl, n);
	}
}

/* The server's answer decides the SPIs the client uses next. */
static void client_learn(struct diff *d, struct client *c, int srv)
{
	if (c->step == 0 && srv >= 0) {
		c->srv0 = srv;
		if (c->svc == SIKE && c->labelled) {
			c->spi_r = T_LABEL(srv) | (rnd(d) & 0xffffff);
			c->esp_spi = T_ESP_MIN(srv) + (rnd(d) & 0xffff);
		} else {
			c->spi_r = 0x6600000000000000ULL | rnd(d);
			c->esp_spi = 0x20000000u + (rnd(d) & 0xfffffff);
		}
	}
	if (srv >= 0 || c->step > 0)
		c->step++;
}

/* A server's datagram to the client, through the BPF reply path and the
 * socket engine's steer_learn_reply. */
static void server_says(struct diff *d, const struct client *c, int srv, uint16_t vport,
			uint16_t cport, const uint8_t *pl, size_t pn)
{
	uint8_t fr[PKT_MAX];
	char real[64];
	struct ikelb_addr client;
	assert_non_null(ikelb_addr_str(&d->f.srv[c->svc][srv].addr, real, sizeof(real)));
	size_t n = t_udp(fr, real, vport, c->ip, cport, pl, pn);
	assert_int_equal(t_run(&d->f, fr, n), TC_ACT_OK);
	t_addr(c->ip, &client);
	steer_learn_reply(d->st, c->svc, &client, cport, vport, ike_port_is_natt(vport, IKE_PORT),
			  srv, pl, pn, bpf_engine_now_s());
}

/* After the client's datagram went to srv: the IKE_SA_INIT response (4 in
 * 5 times, as when the client's source was real), or now and then an
 * INFORMATIONAL request protected by the SA (a server DPD). */
static void server_answer(struct diff *d, const struct client *c, int srv, int was_init)
{
	uint8_t pl[PKT_MAX];
	size_t pn;
	if (srv < 0)
		return;
	if (was_init && c->step == 1 && rnd(d) % 5 != 0) {
		pn = pkt_ikev2_sa_init_resp(pl, sizeof(pl), c->spi_i, c->spi_r);
		server_says(d, c, srv, 500, c->port500, pl, pn);
	} else if (!was_init && c->step > 1 && rnd(d) % 6 == 0) {
		pn = pkt_ikev2_informational_resp(pl, sizeof(pl), c->spi_i, c->spi_r, 7, 0, 1);
		server_says(d, c, srv, 4500, c->port4500, pl, pn);
	}
}

/* Traffic nobody set up: fallback, or drops. */
static void noise(struct diff *d, int k)
{
	uint8_t fr[PKT_MAX], pl[8] = { 1, 2, 3 };
	char ip[48];
	snprintf(ip, sizeof(ip), "203.0.113.%d", 200 + k % 50);
	size_t n;
	int svc = k % 2 ? SIKE : SV4;
	switch (k % 4) {
	case 0:
		n = t_esp(fr, ip, (uint16_t)(5000 + k), vip_of(svc), 0x30000000u + (uint32_t)k);
		break;
	case 1:
		n = t_auth(fr, ip, (uint16_t)(5000 + k), vip_of(svc), 0x5500000000000000ULL + k,
			   0x44, 40);
		break;
	case 2:
		n = t_udp(fr, ip, (uint16_t)(5000 + k), vip_of(svc), 4500, pl, 3);
		break;
	default:
		n = t_esp(fr, ip, (uint16_t)(5000 + k), vip_of(svc), (uint32_t)(k % 200) + 1);
		break;
	}
	feed(d, svc, fr, n);
}

static void run_trace(int sched)
{
	struct diff *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	assert_int_equal(t_setup(&d->f), 0);
	d->sched = sched;
	if (sched) {
		d->f.svc[SV4].scheduler = CFG_SCHED_LC;
		d->f.svc[SV6].scheduler = CFG_SCHED_WLC;
		d->f.srv[SV6][1].weight = 300;
		assert_int_equal(t_maglev(&d->f, SV6, NULL), 0);
	}
	struct steer_opts o = { .hash_key = { 7, 9 } };
	struct rt_ops ops = tsteer_ops(&d->st);
	if (sched)
		ops.set_sched = diff_set_sched;
	assert_int_equal(rt_init(&d->rt, &d->f.cfg, &d->f.log, &ops), 0);
	d->st = steer_new(&d->rt, &o);
	assert_non_null(d->st);
	for (int s = 0; sched && s < T_NSVC; s++)
		for (int i = 0; i < T_NSRV; i++)
			assert_int_equal(rt_set_health(&d->rt, s, i, true, 0), 0);
	/* Same tables on both sides, from the same builder as the fixture. */
	for (int s = 0; s < T_NSVC; s++) {
		uint32_t m;
		uint32_t *table = tcfg_table(&d->f.cfg, s, d->state[s], &m);
		assert_non_null(table);
		assert_int_equal(steer_set_table(d->st, s, table, m), 0);
		free(table);
	}
	d->rng = 0x9e3779b97f4a7c15ULL;
	struct client cl[NCLIENTS];
	for (int i = 0; i < NCLIENTS; i++)
		client_init(d, &cl[i], i);

	uint8_t fr[PKT_MAX];
	for (int k = 0; k < NPKTS; k++) {
		if (k == 150) {
			set_state(d, SIKE, 1, REAL_DOWN);
			set_state(d, SV4, 0, REAL_DOWN);
		}
		if (k == 170) {
			push_table(d, SIKE);
			push_table(d, SV4);
		}
		if (k == 200) {
			set_state(d, SV4, 2, REAL_DRAINING);
			push_table(d, SV4);
		}
		if (k == 230) { /* evacuation: both forget the same persistence */
			long n = bpf_engine_set_evacuating(d->f.e, SV4, 2, true);
			assert_true(n >= 0);
			assert_int_equal(steer_set_evacuating(d->st, SV4, 2, true), n);
		}
		if (k == 280) {
			set_state(d, SIKE, 1, REAL_ACTIVE);
			push_table(d, SIKE);
		}
		if (k % 13 == 5) {
			noise(d, k);
			continue;
		}
		struct client *c = &cl[rnd(d) % NCLIENTS];
		size_t n = client_next(d, c, fr);
		assert_true(n > 0);
		int was_init = c->step == 0;
		int srv = feed(d, c->svc, fr, n);
		client_learn(d, c, srv);
		server_answer(d, c, srv, was_init);
	}
	printf("steer_diff (%s): %d packets, %d same server (%d dropped by both); by rule: label %d "
	       "flow %d sa %d persist %d new %d fallback %d\n",
	       sched ? "lc, wlc" : "maglev", d->pkts, d->same, d->drops, d->by_rule[RULE_LABEL], d->by_rule[RULE_FLOW],
	       d->by_rule[RULE_SA], d->by_rule[RULE_PERSIST], d->by_rule[RULE_NEW],
	       d->by_rule[RULE_FALLBACK]);
	assert_int_equal(d->same, d->pkts);
	/* The trace must exercise every rule, else the comparison proves little. */
	for (int r = RULE_LABEL; r <= RULE_FALLBACK; r++)
		assert_true(d->by_rule[r] > 0);
	assert_true(d->drops > 0);
	/* Both engines counted the same clients on each server. */
	for (int sv = 0; sched && sv < T_NSVC; sv += SV6 - SV4) {
		uint64_t total = 0;
		for (int i = 0; i < T_NSRV; i++) {
			uint32_t id = (uint32_t)bpf_engine_real_id(d->f.e, sv, i);
			uint64_t n = sched_conns(d->rt.svc[sv].sched, (size_t)i);
			assert_int_equal(bpf_engine_load_clients(d->f.e, id), n);
			total += n;
		}
		assert_true(total > 0);
	}
	steer_free(d->st);
	rt_free(&d->rt);
	t_teardown(&d->f);
	free(d);
}

static void same_server_for_every_packet(void **state)
{
	(void)state;
	run_trace(0);
}

static void same_server_with_kernel_lc(void **state)
{
	(void)state;
	run_trace(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_server_for_every_packet),
		cmocka_unit_test(same_server_with_kernel_lc),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
