/* Steering rules of ARCHITECTURE.md, "Steering" (src/core/steer.c), one test per rule,
 * with packets built by tests/unit/helpers/pkt.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ikelb/hash.h"
#include "ikelb/ike_wire.h"
#include "core/maglev.h"
#include "helpers/pkt.h"
#include "core/scheduler.h"
#include "core/steer.h"
#include "steer_cfg.h"

#define P500 500
#define P4500 4500

struct fx {
	struct cfg cfg;
	struct logger log;
	struct runtime rt;
	struct steer *st;
	uint8_t buf[PKT_MAX];
	struct steer_result r;
};

static struct fx *fx_new(int n, enum cfg_persist_mode mode, enum cfg_sched kind)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(tcfg_build(&f->cfg, "198.51.100.1", P500, P4500, n, "198.51.100.%d", 10), 0);
	f->cfg.services[0].persistence.mode = mode;
	f->cfg.services[0].scheduler = kind;
	return f;
}

static void fx_start(struct fx *f, uint32_t halfopen)
{
	struct steer_opts o = { .max_clients = 4096, .max_halfopen = halfopen ? halfopen : 1024,
				.max_flows = 4096, .hash_key = { 1, 2 } };
	struct rt_ops ops = tsteer_ops(&f->st);
	log_init(&f->log, LOG_LVL_ERR);
	assert_int_equal(rt_init(&f->rt, &f->cfg, &f->log, &ops), 0);
	f->st = steer_new(&f->rt, &o);
	assert_non_null(f->st);
}

static void fx_free(struct fx *f)
{
	steer_free(f->st);
	rt_free(&f->rt);
	cfg_free(&f->cfg);
	free(f);
}

/* Independent expectation: the service's Maglev table built by sched. */
static int expect_hash(struct fx *f, uint64_t h)
{
	const struct cfg_service *cs = &f->cfg.services[0];
	struct sched *s = sched_new(CFG_SCHED_MAGLEV, cs->maglev_size, f->cfg.maglev_seed);
	struct sched_server v[8];
	assert_true(cs->nservers <= 8);
	for (int i = 0; i < cs->nservers; i++) {
		memset(&v[i], 0, sizeof(v[i]));
		snprintf(v[i].name, sizeof(v[i].name), "%s", cs->servers[i].name);
		v[i].addr = cs->servers[i].addr;
		v[i].weight = cs->servers[i].weight;
		v[i].state = SCHED_SRV_ACTIVE;
	}
	assert_true(sched_update(s, v, (size_t)cs->nservers) >= 0);
	int r = sched_lookup_hash(s, h);
	sched_free(s);
	return r;
}

/* What the daemon does on a state change: new state, rebuilt table. */
static void set_state(struct fx *f, int srv, int st, long purged)
{
	assert_int_equal(steer_set_state(f->st, 0, srv, st), purged);
	const struct cfg_service *cs = &f->cfg.services[0];
	struct sched *s = sched_new(CFG_SCHED_MAGLEV, cs->maglev_size, f->cfg.maglev_seed);
	struct sched_server v[8];
	for (int i = 0; i < cs->nservers; i++) {
		memset(&v[i], 0, sizeof(v[i]));
		snprintf(v[i].name, sizeof(v[i].name), "%s", cs->servers[i].name);
		v[i].addr = cs->servers[i].addr;
		v[i].weight = cs->servers[i].weight;
		v[i].state = (enum sched_state)steer_server_state(f->st, 0, i);
	}
	assert_true(sched_update(s, v, (size_t)cs->nservers) >= 0);
	uint32_t m;
	const uint32_t *t = sched_maglev_table(s, &m);
	assert_int_equal(steer_set_table(f->st, 0, t, m), 0);
	sched_free(s);
}

static int send_pkt(struct fx *f, const char *ip, uint16_t cport, uint16_t vport, size_t len,
		    uint64_t now)
{
	struct ikelb_addr a = tcfg_addr(ip);
	return steer_packet(f->st, 0, &a, cport, vport, ike_port_is_natt(vport, IKE_PORT), f->buf, len, now,
			    &f->r);
}

static int sa_init(struct fx *f, const char *ip, uint16_t cport, uint64_t spi, uint64_t now)
{
	size_t n = pkt_ikev2_sa_init_req(f->buf, sizeof(f->buf), spi);
	assert_true(n > 0);
	return send_pkt(f, ip, cport, P500, n, now);
}

/* Server srv answers the IKE_SA_INIT of (ip, cport) with its SPIr: only
 * an IKE_AUTH carrying that SPIr promotes the SA. */
static void answer(struct fx *f, const char *ip, uint16_t cport, uint64_t spi_i, uint64_t spi_r,
		   int srv, uint64_t now)
{
	struct ikelb_addr a = tcfg_addr(ip);
	uint8_t pl[512];
	size_t n = pkt_ikev2_sa_init_resp(pl, sizeof(pl), spi_i, spi_r);
	assert_true(n > 0);
	steer_learn_reply(f->st, 0, &a, cport, P500, 0, srv, pl, n, now);
}

static int auth(struct fx *f, const char *ip, uint16_t cport, uint64_t spi_i, uint64_t spi_r,
		uint64_t now)
{
	size_t n = pkt_ikev2_auth_natt(f->buf, sizeof(f->buf), spi_i, spi_r, 1, 64);
	assert_true(n > 0);
	return send_pkt(f, ip, cport, P4500, n, now);
}

static int esp(struct fx *f, const char *ip, uint16_t cport, uint32_t spi, uint64_t now)
{
	size_t n = pkt_esp(f->buf, sizeof(f->buf), spi, 1, 80);
	assert_true(n > 0);
	return send_pkt(f, ip, cport, P4500, n, now);
}

static int keepalive(struct fx *f, const char *ip, uint16_t cport, uint64_t now)
{
	size_t n = pkt_natt_keepalive(f->buf, sizeof(f->buf));
	return send_pkt(f, ip, cport, P4500, n, now);
}

static uint64_t ctr(struct fx *f, int c)
{
	uint64_t p[SVC_CTR__MAX], b[SVC_CTR__MAX];
	steer_counters(f->st, 0, p, b);
	return p[c];
}

/* Rule 5 + 3 + 2 + 4 (source-ip): IKE_SA_INIT schedules by the masked
 * client hash and is only half-open; IKE_AUTH from the floated port follows
 * the half-open SA and earns persistence and the flow; ESP and keepalives
 * follow the flow; the client's next IKE SA follows persistence. */
static void source_ip_lifecycle(void **state)
{
	(void)state;
	struct fx *f = fx_new(3, CFG_PERSIST_SOURCE_IP, CFG_SCHED_MAGLEV);
	fx_start(f, 0);
	struct ikelb_addr c = tcfg_addr("203.0.113.7");
	int want = expect_hash(f, ikelb_hash_addr(&c, 0, f->cfg.maglev_seed));
	assert_true(want >= 0);

	assert_int_equal(sa_init(f, "203.0.113.7", 500, 0x1111, 10), want);
	assert_int_equal(f->r.rule, RULE_NEW);
	answer(f, "203.0.113.7", 500, 0x1111, 0x2222, want, 10);
	assert_int_equal(auth(f, "203.0.113.7", 4500, 0x1111, 0x2222, 11), want);
	assert_int_equal(f->r.rule, RULE_SA);
	assert_int_equal(esp(f, "203.0.113.7", 4500, 0xc0000001, 12), want);
	assert_int_equal(f->r.rule, RULE_FLOW);
	assert_int_equal(keepalive(f, "203.0.113.7", 4500, 13), want);
	assert_int_equal(f->r.rule, RULE_FLOW);
	/* Another IKE SA of the same client IP (make-before-break): persistence. */
	assert_int_equal(sa_init(f, "203.0.113.7", 501, 0x3333, 14), want);
	assert_int_equal(f->r.rule, RULE_PERSIST);
	assert_int_equal(ctr(f, SVC_CTR_STEER_NEW), 1);
	assert_int_equal(ctr(f, SVC_CTR_STEER_SA), 1);
	assert_int_equal(ctr(f, SVC_CTR_STEER_PERSIST), 1);
	assert_int_equal(ctr(f, SVC_CTR_STEER_FLOW), 2);
	assert_int_equal(ctr(f, SVC_CTR_RX), 5);
	assert_int_equal(ctr(f, SVC_CTR_IKEV2), 3);
	assert_int_equal(ctr(f, SVC_CTR_ESP), 1);
	assert_int_equal(ctr(f, SVC_CTR_KEEPALIVE), 1);
	fx_free(f);
}

/* Netmask /24: neighbours share one server and one persistence entry. */
static void source_ip_netmask(void **state)
{
	(void)state;
	struct fx *f = fx_new(4, CFG_PERSIST_SOURCE_IP, CFG_SCHED_MAGLEV);
	f->cfg.services[0].persistence.netmask = 24;
	fx_start(f, 0);
	struct ikelb_addr net = tcfg_addr("203.0.113.0");
	int want = expect_hash(f, ikelb_hash_addr(&net, 0, f->cfg.maglev_seed));
	assert_int_equal(sa_init(f, "203.0.113.5", 500, 0xa1, 1), want);
	assert_int_equal(f->r.rule, RULE_NEW);
	answer(f, "203.0.113.5", 500, 0xa1, 0xb2, want, 1);
	assert_int_equal(auth(f, "203.0.113.5", 4500, 0xa1, 0xb2, 1), want); /* persistence */
	for (int i = 6; i < 40; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", i);
		assert_int_equal(sa_init(f, ip, 500, 0xa100u + (uint64_t)i, 2), want);
		assert_int_equal(f->r.rule, RULE_PERSIST);
	}
	fx_free(f);
}

/* Rule 5 + 3 (ike): clients behind one NAT address are spread by SPIi; the
 * IKE_AUTH from the floated port finds the half-open SA and establishes it. */
static void ike_mode_spreads_nat_clients(void **state)
{
	(void)state;
	struct fx *f = fx_new(3, CFG_PERSIST_IKE, CFG_SCHED_MAGLEV);
	fx_start(f, 0);
	int seen[3] = { 0 };
	for (int i = 0; i < 60; i++) {
		uint64_t spi = 0x5000000000000000ULL + (uint64_t)i * 0x9e3779b9ULL;
		int want = expect_hash(f, ikelb_hash_u64(spi, f->cfg.maglev_seed));
		uint16_t port = (uint16_t)(20000 + i);
		assert_int_equal(sa_init(f, "198.18.0.1", port, spi, 5), want);
		assert_int_equal(f->r.rule, RULE_NEW);
		answer(f, "198.18.0.1", port, spi, 0x77, want, 5);
		/* NAT-T float: new source port toward 4500. */
		assert_int_equal(auth(f, "198.18.0.1", (uint16_t)(port + 1000), spi, 0x77, 6), want);
		assert_int_equal(f->r.rule, RULE_SA);
		assert_int_equal(esp(f, "198.18.0.1", (uint16_t)(port + 1000), 0xc1000000u + i, 7),
				 want);
		assert_int_equal(f->r.rule, RULE_FLOW);
		seen[want]++;
	}
	for (int i = 0; i < 3; i++)
		assert_true(seen[i] > 5);
	fx_free(f);
}

/* A flood of IKE_SA_INITs fills the half-open table but cannot evict the
 * established SA, and is counted. */
static void halfopen_flood_keeps_established(void **state)
{
	(void)state;
	struct fx *f = fx_new(3, CFG_PERSIST_IKE, CFG_SCHED_MAGLEV);
	fx_start(f, 16);
	int srv = sa_init(f, "198.18.1.1", 500, 0xabcdef, 1);
	assert_true(srv >= 0);
	answer(f, "198.18.1.1", 500, 0xabcdef, 0x99, srv, 1);
	assert_int_equal(auth(f, "198.18.1.1", 4500, 0xabcdef, 0x99, 2), srv); /* establishes */
	for (int i = 0; i < 200; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.18.2.%d", i % 250 + 1);
		assert_true(sa_init(f, ip, (uint16_t)(1000 + i), 0x7000000000ULL + (uint64_t)i, 3) >= 0);
	}
	assert_true(ctr(f, SVC_CTR_HALFOPEN_FULL) >= 180);
	/* Same SA from a new port (NAT rebinding): still the SA rule. */
	assert_int_equal(auth(f, "198.18.1.1", 4501, 0xabcdef, 0x99, 4), srv);
	assert_int_equal(f->r.rule, RULE_SA);
	/* A half-open SA that was flooded out falls back (no state), to the
	 * server its SPIi hashes to: where it was placed. */
	int fb = auth(f, "198.18.2.1", 3000, 0x7000000000ULL, 0x55, 5);
	assert_int_equal(f->r.rule, RULE_FALLBACK);
	assert_int_equal(fb, expect_hash(f, ikelb_hash_u64(0x7000000000ULL, f->cfg.maglev_seed)));
	fx_free(f);
}

/* Rule 1: IKE SPI labels and ESP SPI ranges win over everything, unless the
 * labelled server is DOWN. */
static void labels(void **state)
{
	(void)state;
	struct fx *f = fx_new(3, CFG_PERSIST_IKE, CFG_SCHED_MAGLEV);
	struct cfg_service *cs = &f->cfg.services[0];
	cs->spi_mask = 0xff00000000000000ULL;
	for (int i = 0; i < 3; i++) {
		cs->servers[i].has_spi_label = true;
		cs->servers[i].spi_label = (uint64_t)(i + 1) << 56;
		cs->servers[i].has_esp_range = true;
		cs->servers[i].esp_spi_min = 0xc0000000u + (uint32_t)i * 0x1000000u;
		cs->servers[i].esp_spi_max = 0xc0ffffffu + (uint32_t)i * 0x1000000u;
	}
	fx_start(f, 0);
	/* Unknown SA, responder SPI labelled for s2 (index 1). */
	assert_int_equal(auth(f, "203.0.113.50", 4500, 0x1234, 0x02000000deadbeefULL, 1), 1);
	assert_int_equal(f->r.rule, RULE_LABEL);
	/* The label wrote the flow: a keepalive of that flow follows. */
	assert_int_equal(keepalive(f, "203.0.113.50", 4500, 2), 1);
	assert_int_equal(f->r.rule, RULE_FLOW);
	/* ESP with s3's SPI from that same flow: the label beats the flow. */
	assert_int_equal(esp(f, "203.0.113.50", 4500, 0xc2000042u, 3), 2);
	assert_int_equal(f->r.rule, RULE_LABEL);
	/* Server-initiated SA (I flag clear): the initiator SPI carries it. */
	size_t n = pkt_ikev2_informational_resp(f->buf, sizeof(f->buf), 0x0300000000000001ULL,
						0x55, 2, IKE_FLAG_R, 1);
	assert_int_equal(send_pkt(f, "203.0.113.51", 4500, P4500, n, 4), 2);
	assert_int_equal(f->r.rule, RULE_LABEL);
	/* s2 down: its label no longer steers; the flow to it is purged too. */
	assert_true(steer_set_state(f->st, 0, 1, REAL_DOWN) >= 1);
	int r = auth(f, "203.0.113.50", 4500, 0x1234, 0x02000000deadbeefULL, 5);
	assert_true(r == 0 || r == 2);
	assert_int_not_equal(f->r.rule, RULE_LABEL);
	assert_int_equal(esp(f, "203.0.113.60", 4500, 0xc1000001u, 6) == 1, 0);
	assert_int_equal(ctr(f, SVC_CTR_STEER_LABEL), 3);
	fx_free(f);
}

/* Rule 6: traffic of unknown flows is hashed on the client address and
 * leaves no state; IKE of an unknown SA too, hashed on its SPIi in ike
 * mode (how it was placed). */
static void fallback_no_state(void **state)
{
	(void)state;
	struct fx *f = fx_new(3, CFG_PERSIST_IKE, CFG_SCHED_MAGLEV);
	fx_start(f, 0);
	for (int i = 1; i < 30; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", i);
		struct ikelb_addr c = tcfg_addr(ip);
		int want = expect_hash(f, ikelb_hash_addr(&c, 0, f->cfg.maglev_seed));
		assert_int_equal(esp(f, ip, 4500, 0x1000u + i, 1), want);
		assert_int_equal(f->r.rule, RULE_FALLBACK);
		assert_int_equal(auth(f, ip, 4500, 0xfeed0000u + i, 0x1, 1),
				 expect_hash(f, ikelb_hash_u64(0xfeed0000u + i, f->cfg.maglev_seed)));
		assert_int_equal(f->r.rule, RULE_FALLBACK);
		assert_int_equal(keepalive(f, ip, 4500, 1), want);
		assert_int_equal(f->r.rule, RULE_FALLBACK); /* the IKE wrote no flow */
	}
	uint64_t cl[3], fl[3];
	steer_server_counts(f->st, 0, 1, cl, fl);
	assert_int_equal(cl[0] + cl[1] + cl[2] + fl[0] + fl[1] + fl[2], 0);
	assert_int_equal(ctr(f, SVC_CTR_STEER_FALLBACK), 29 * 3);
	fx_free(f);
}

/* A server's reply teaches its client's flow; an IKE_SA_INIT response
 * (which a spoofer can provoke) teaches nothing. */
static void reply_teaches_flow(void **state)
{
	(void)state;
	struct fx *f = fx_new(3, CFG_PERSIST_IKE, CFG_SCHED_MAGLEV);
	fx_start(f, 0);
	struct ikelb_addr c = tcfg_addr("203.0.113.44");
	int fb = expect_hash(f, ikelb_hash_addr(&c, 0, f->cfg.maglev_seed));
	int other = (fb + 1) % 3;
	uint8_t pl[512];
	size_t n = pkt_ikev2_sa_init_resp(pl, sizeof(pl), 0x1, 0x2);
	steer_learn_reply(f->st, 0, &c, 40000, P500, 0, other, pl, n, 1);
	n = pkt_esp(pl, sizeof(pl), 0xc0000001u, 1, 40);
	steer_learn_reply(f->st, 0, &c, 40001, P4500, 1, other, pl, n, 1);
	assert_true(sa_init(f, "203.0.113.44", 40000, 0x77, 2) >= 0);
	assert_int_not_equal(f->r.rule, RULE_FLOW); /* the SA_INIT response taught nothing */
	assert_int_equal(esp(f, "203.0.113.44", 40001, 0x9999, 2), other); /* learned */
	assert_int_equal(f->r.rule, RULE_FLOW);
	fx_free(f);
}

/* Evacuation (the BPF test_bpf_evac.c, same story): a client of an
 * evacuating server re-establishing from its current ports (REDIRECT) gets
 * its new SA placed elsewhere, IKE_AUTH and ESP follow the new SA, the old
 * SA's DELETE still reaches the old server, and neither that nor the old
 * server's answer takes the flow back. Draining alone keeps it. */
static void evacuation_moves_redirected_client(void **state)
{
	(void)state;
	const char *c = "203.0.113.45";
	struct fx *f = fx_new(3, CFG_PERSIST_SOURCE_IP, CFG_SCHED_MAGLEV);
	fx_start(f, 0);
	int old = sa_init(f, c, 500, 0xa1, 1);
	assert_true(old >= 0);
	answer(f, c, 500, 0xa1, 0xa2, old, 1);
	assert_int_equal(auth(f, c, 4500, 0xa1, 0xa2, 1), old);
	set_state(f, old, REAL_DRAINING, 0);
	size_t n = pkt_ikev2_sa_init_req(f->buf + 4, sizeof(f->buf) - 4, 0xb1);
	memset(f->buf, 0, 4);
	assert_int_equal(send_pkt(f, c, 4500, P4500, n + 4, 2), old); /* drained: stays */
	assert_int_equal(steer_set_evacuating(f->st, 0, old, true), 1); /* its persistence */
	n = pkt_ikev2_sa_init_req(f->buf + 4, sizeof(f->buf) - 4, 0xc1);
	memset(f->buf, 0, 4);
	int now = send_pkt(f, c, 4500, P4500, n + 4, 3);
	assert_true(now >= 0 && now != old);
	assert_int_equal(f->r.rule, RULE_NEW);
	struct ikelb_addr a = tcfg_addr(c);
	uint8_t pl[512];
	n = pkt_ikev2_sa_init_resp(pl, sizeof(pl), 0xc1, 0xc2);
	steer_learn_reply(f->st, 0, &a, 4500, P4500, 0, now, pl, n, 3);
	assert_int_equal(auth(f, c, 4500, 0xc1, 0xc2, 3), now);
	assert_int_equal(esp(f, c, 4500, 0x1234, 3), now);
	assert_int_equal(auth(f, c, 4500, 0xa1, 0xa2, 4), old); /* the old SA's DELETE */
	n = pkt_esp(pl, sizeof(pl), 0x4321, 1, 40);
	steer_learn_reply(f->st, 0, &a, 4500, P4500, 1, old, pl, n, 4); /* its last ESP */
	assert_int_equal(esp(f, c, 4500, 0x1234, 4), now);
	assert_int_equal(f->r.rule, RULE_FLOW);
	fx_free(f);
}

/* DOWN purges and re-places clients; DRAINING keeps existing clients and
 * takes no new ones; nothing eligible: counted NO_SERVER drop. */
static void draining_and_down(void **state)
{
	(void)state;
	struct fx *f = fx_new(2, CFG_PERSIST_SOURCE_IP, CFG_SCHED_MAGLEV);
	fx_start(f, 0);
	int a = sa_init(f, "203.0.113.1", 500, 0x10, 1);
	assert_true(a >= 0);
	set_state(f, a, REAL_DRAINING, 0);
	assert_int_equal(sa_init(f, "203.0.113.1", 500, 0x10, 2), a); /* retry: half-open SA */
	assert_int_equal(f->r.rule, RULE_SA);
	answer(f, "203.0.113.1", 500, 0x10, 0x20, a, 2);
	assert_int_equal(auth(f, "203.0.113.1", 4500, 0x10, 0x20, 3), a); /* earns persistence */
	assert_int_equal(f->r.rule, RULE_SA);
	for (int i = 2; i < 40; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", i);
		assert_int_equal(sa_init(f, ip, 500, 0x100u + i, 4), 1 - a);
	}
	uint64_t cl[2], fl[2];
	steer_server_counts(f->st, 0, 5, cl, fl);
	assert_int_equal(cl[a], 1);
	assert_int_equal(fl[a], 1);   /* its 4500 flow: IKE_SA_INITs learn no flows */
	assert_int_equal(cl[1 - a], 38); /* half-open */
	/* DOWN: state purged, the client moves to the other server. */
	set_state(f, a, REAL_DOWN, 3); /* persistence, SA (both modes) + flow */
	assert_int_equal(esp(f, "203.0.113.1", 4500, 0x999, 6), 1 - a);
	assert_int_equal(sa_init(f, "203.0.113.1", 500, 0x10, 7), 1 - a);
	assert_int_equal(f->r.rule, RULE_NEW);
	/* Everything down. */
	assert_true(steer_set_state(f->st, 0, 1 - a, REAL_DOWN) > 0); /* table not rebuilt: probes */
	assert_int_equal(sa_init(f, "203.0.113.99", 500, 0x77, 8), -1);
	assert_int_equal(f->r.drop, IKE_DROP_NO_SERVER);
	assert_int_equal(ctr(f, SVC_CTR_DROP_BASE + IKE_DROP_NO_SERVER), 1);
	fx_free(f);
}

/* Malformed payloads are counted by classifier reason and never steered. */
static void malformed_counted(void **state)
{
	(void)state;
	struct fx *f = fx_new(2, CFG_PERSIST_IKE, CFG_SCHED_MAGLEV);
	fx_start(f, 0);
	struct { size_t len; uint8_t fill; uint16_t port; int reason; } cases[] = {
		{ 10, 0x22, P500, IKE_DROP_TOO_SHORT },
		{ 1, 0x00, P4500, IKE_DROP_BAD_KEEPALIVE },
		{ 8, 0x00, P4500, IKE_DROP_TOO_SHORT }, /* marker + short IKE */
		{ 3, 0x11, P4500, IKE_DROP_TOO_SHORT },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(f->buf, cases[i].fill, cases[i].len);
		assert_int_equal(send_pkt(f, "203.0.113.1", 4500, cases[i].port, cases[i].len, 1), -1);
		assert_int_equal(f->r.drop, cases[i].reason);
	}
	size_t n = pkt_ikev2_sa_init_req(f->buf, sizeof(f->buf), 0x42);
	f->buf[17] = 0x30; /* version 3 */
	assert_int_equal(send_pkt(f, "203.0.113.1", 500, P500, n, 1), -1);
	assert_int_equal(f->r.drop, IKE_DROP_BAD_VERSION);
	n = pkt_ikev2_sa_init_req(f->buf, sizeof(f->buf), 0x42);
	assert_int_equal(send_pkt(f, "203.0.113.1", 500, P500, n - 1, 1), -1);
	assert_int_equal(f->r.drop, IKE_DROP_LEN_MISMATCH);
	n = pkt_esp(f->buf, sizeof(f->buf), 200, 1, 16);
	assert_int_equal(send_pkt(f, "203.0.113.1", 4500, P4500, n, 1), -1);
	assert_int_equal(f->r.drop, IKE_DROP_RESERVED_SPI);
	assert_int_equal(ctr(f, SVC_CTR_DROP_BASE + IKE_DROP_TOO_SHORT), 3);
	assert_int_equal(ctr(f, SVC_CTR_DROP_BASE + IKE_DROP_RESERVED_SPI), 1);
	assert_int_equal(ctr(f, SVC_CTR_RX), 7);
	assert_int_equal(ctr(f, SVC_CTR_STEER_NEW) + ctr(f, SVC_CTR_STEER_FALLBACK), 0);
	fx_free(f);
}

/* Idle timeouts: an entry idle exactly `timeout` seconds is still used
 * (BPF: stale when now - last_seen > timeout); one second more and it is
 * ignored; steer_expire removes it. */
static void idle_timeouts(void **state)
{
	(void)state;
	struct fx *f = fx_new(4, CFG_PERSIST_SOURCE_IP, CFG_SCHED_MAGLEV);
	f->cfg.services[0].persistence.flow_timeout_s = 30;
	f->cfg.services[0].persistence.timeout_s = 100;
	fx_start(f, 0);
	int a = sa_init(f, "203.0.113.9", 500, 0x10, 1000);
	assert_true(a >= 0);
	answer(f, "203.0.113.9", 500, 0x10, 0x20, a, 1000);
	assert_int_equal(auth(f, "203.0.113.9", 4500, 0x10, 0x20, 1000), a);
	assert_int_equal(esp(f, "203.0.113.9", 4500, 0x500, 1030), a);
	assert_int_equal(f->r.rule, RULE_FLOW); /* idle 30 = timeout: live */
	assert_int_equal(esp(f, "203.0.113.9", 4500, 0x500, 1061), a);
	assert_int_equal(f->r.rule, RULE_PERSIST); /* flow idle 31: stale */
	/* the flow, and the SA entry (kept in both modes, last used by the
	 * IKE_AUTH); persistence (refreshed by ESP at 1061) is idle 100 */
	assert_int_equal(steer_expire(f->st, 1161), 2);
	assert_int_equal(steer_expire(f->st, 1162), 1); /* persistence idle 101 */
	uint64_t cl[4], fl[4];
	steer_server_counts(f->st, 0, 1162, cl, fl);
	assert_int_equal(cl[a] + fl[a], 0);
	fx_free(f);
}

static int first_cb(void *ctx, const struct lk_entry *e)
{
	struct lk_entry *first = ctx;
	if (first->svc < 0)
		*first = *e;
	return 0;
}

static int query(struct fx *f, const struct lk_query *q, struct lk_entry *e, uint64_t now)
{
	e->svc = -1;
	return steer_query(f->st, q, now, first_cb, e);
}

/* Lookups: four clients behind one NAT address (source-ip) are one
 * persistence entry but four flows and four SAs; every one is found, by
 * address, address:port and SPIi; an unknown address gets the fallback;
 * counts are honest; nothing is refreshed by reading. */
static void lookup_nat_clients(void **state)
{
	(void)state;
	struct fx *f = fx_new(2, CFG_PERSIST_SOURCE_IP, CFG_SCHED_MAGLEV);
	fx_start(f, 0);
	int a = -1;
	for (int i = 0; i < 4; i++) {
		a = sa_init(f, "198.18.0.1", (uint16_t)(1000 + i), 0x100u + (unsigned)i, 10);
		/* The server's answer vouches for the IKE_AUTH (docs/security.md). */
		answer(f, "198.18.0.1", (uint16_t)(1000 + i), 0x100u + (unsigned)i, 0x200, a, 10);
		assert_int_equal(auth(f, "198.18.0.1", (uint16_t)(2000 + i), 0x100u + (unsigned)i,
				      0x200, 10), a);
	}
	struct lk_query q = { .kind = LK_Q_ADDR, .port = -1, .svc = -1, .srv = -1 };
	struct lk_entry e;
	assert_int_equal(ikelb_addr_parse("198.18.0.1", &q.addr), 0);
	assert_int_equal(query(f, &q, &e, 20), 4 + 1); /* 4 flows + persistence */
	assert_int_equal(e.rule, RULE_FLOW);
	assert_int_equal(e.srv, a);
	assert_int_equal(e.idle_s, 10);
	assert_int_equal(e.expires_in, (int64_t)f->cfg.services[0].persistence.flow_timeout_s - 10);
	q.port = 2002;
	assert_int_equal(query(f, &q, &e, 20), 1 + 1);
	assert_int_equal(e.cport, 2002);
	struct lk_query qs = { .kind = LK_Q_SPI, .spi = 0x102, .port = -1, .svc = -1, .srv = -1 };
	assert_int_equal(query(f, &qs, &e, 20), 1);
	assert_int_equal(e.table, LK_T_SA);
	assert_int_equal(e.srv, a);
	assert_int_equal(ikelb_addr_parse("192.0.2.77", &q.addr), 0);
	q.port = -1;
	assert_int_equal(query(f, &q, &e, 20), 1);
	assert_int_equal(e.rule, RULE_FALLBACK);
	uint64_t sas[2], addrs[2], cl[2], fl[2];
	assert_int_equal(steer_server_usage(f->st, 0, 20, sas, addrs), 0);
	assert_int_equal(sas[a], 4);
	assert_int_equal(addrs[a], 1);
	steer_server_counts(f->st, 0, 20, cl, fl);
	assert_int_equal(cl[a], 1); /* the NAT address: what source-ip persists */
	struct lk_query all = { .kind = LK_Q_ALL, .port = -1, .svc = -1, .srv = 1 - a };
	assert_int_equal(query(f, &all, &e, 20), 0);
	all.srv = a;
	assert_int_equal(query(f, &all, &e, 20), 4 + 4 + 1);
	/* reading refreshed nothing: the flows still expire on time */
	assert_int_equal(query(f, &q, &e, 20 + 400), 1);
	assert_true(steer_expire(f->st, 10 + f->cfg.services[0].persistence.flow_timeout_s + 1) >= 4);
	fx_free(f);
}

/* rr is exact: new clients cycle over the active servers; lc follows the
 * connection counts the socket engine reports. */
static void rr_and_lc_exact(void **state)
{
	(void)state;
	struct fx *f = fx_new(3, CFG_PERSIST_IKE, CFG_SCHED_RR);
	fx_start(f, 0);
	for (int i = 0; i < 9; i++)
		assert_int_equal(sa_init(f, "203.0.113.1", (uint16_t)(100 + i), 0x100u + i, 1), i % 3);
	assert_int_equal(rt_set_admin(&f->rt, 0, 1, CFG_SRV_DRAINING, 0), 0);
	int got[3] = { 0 };
	for (int i = 0; i < 10; i++)
		got[sa_init(f, "203.0.113.2", (uint16_t)(200 + i), 0x200u + i, 1)]++;
	assert_int_equal(got[1], 0);
	assert_int_equal(got[0], 5);
	/* Weights reach steering through the runtime's scheduler alone. */
	assert_int_equal(rt_set_weight(&f->rt, 0, 2, 0, 0), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sa_init(f, "203.0.113.2", (uint16_t)(300 + i), 0x280u + i, 1), 0);
	fx_free(f);

	f = fx_new(3, CFG_PERSIST_IKE, CFG_SCHED_LC);
	fx_start(f, 0);
	steer_conn_inc(f->st, 0, 0);
	steer_conn_inc(f->st, 0, 1);
	assert_int_equal(sa_init(f, "203.0.113.3", 1, 0x300, 1), 2);
	steer_conn_inc(f->st, 0, 2);
	steer_conn_inc(f->st, 0, 2);
	steer_conn_dec(f->st, 0, 1);
	assert_int_equal(sa_init(f, "203.0.113.3", 2, 0x301, 1), 1);
	fx_free(f);
}

/* IKEv1: the first Main Mode message creates state like IKE_SA_INIT. */
static void ikev1_new_sa(void **state)
{
	(void)state;
	struct fx *f = fx_new(3, CFG_PERSIST_IKE, CFG_SCHED_MAGLEV);
	fx_start(f, 0);
	size_t n = pkt_ikev1_main_mode1(f->buf, sizeof(f->buf), 0xc00c1e, 0);
	int want = expect_hash(f, ikelb_hash_u64(0xc00c1e, f->cfg.maglev_seed));
	assert_int_equal(send_pkt(f, "203.0.113.4", 500, P500, n, 1), want);
	assert_int_equal(f->r.rule, RULE_NEW);
	assert_int_equal(ctr(f, SVC_CTR_IKEV1), 1);
	n = pkt_ikev1_main_mode1(f->buf, sizeof(f->buf), 0xc00c1e, 1);
	assert_int_equal(send_pkt(f, "203.0.113.4", 4500, P4500, n, 2), want);
	assert_int_equal(f->r.rule, RULE_SA);
	fx_free(f);
}

/* An IKEv1 Main Mode message (exch 2) with both cookies: clear on 500
 * (messages 3-4) or encrypted behind the non-ESP marker on 4500 (5-6, after
 * the NAT-T float). */
static size_t ikev1_mm(uint8_t *buf, uint64_t ci, uint64_t cr, int encrypted, uint8_t flags_r)
{
	size_t off = encrypted ? 4 : 0, len = 28 + 32;

	memset(buf, 0, off + len);
	pkt_ike_hdr(buf + off, ci, cr, encrypted ? 5 : 0, 0x10, 2,
		    (uint8_t)((encrypted ? IKEV1_FLAG_E : 0) | flags_r), 0, (uint32_t)(encrypted ? len : 28));
	return off + (encrypted ? len : 28);
}

/* Main Mode message 3 (clear, on 500) is vouched by the responder cookie
 * the server chose, but only message 5 (encrypted, on 4500 after the
 * float) teaches the flow: one flow per client, none left on 500. */
static void ikev1_one_flow_after_float(void **state)
{
	(void)state;
	struct fx *f = fx_new(2, CFG_PERSIST_IKE, CFG_SCHED_MAGLEV);
	fx_start(f, 0);
	struct ikelb_addr a = tcfg_addr("203.0.113.4");
	size_t n = pkt_ikev1_main_mode1(f->buf, sizeof(f->buf), 0xc00c1e, 0);
	int srv = send_pkt(f, "203.0.113.4", 500, P500, n, 1);
	assert_true(srv >= 0);
	uint8_t pl[128];
	n = ikev1_mm(pl, 0xc00c1e, 0xfeed, 0, 0); /* message 2 from the server */
	steer_learn_reply(f->st, 0, &a, 500, P500, 0, srv, pl, n, 1);
	n = ikev1_mm(f->buf, 0xc00c1e, 0xfeed, 0, 0);
	assert_int_equal(send_pkt(f, "203.0.113.4", 500, P500, n, 2), srv);
	uint64_t cl[2], fl[2];
	steer_server_counts(f->st, 0, 2, cl, fl);
	assert_int_equal(fl[srv], 0); /* message 3: the SA, no port-500 flow */
	n = ikev1_mm(f->buf, 0xc00c1e, 0xfeed, 1, 0);
	assert_int_equal(send_pkt(f, "203.0.113.4", 4500, P4500, n, 3), srv);
	steer_server_counts(f->st, 0, 3, cl, fl);
	assert_int_equal(fl[srv], 1);
	assert_int_equal(fl[1 - srv], 0);
	assert_int_equal(esp(f, "203.0.113.4", 4500, 0x999, 4), srv);
	assert_int_equal(f->r.rule, RULE_FLOW);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(source_ip_lifecycle),
		cmocka_unit_test(source_ip_netmask),
		cmocka_unit_test(ike_mode_spreads_nat_clients),
		cmocka_unit_test(halfopen_flood_keeps_established),
		cmocka_unit_test(labels),
		cmocka_unit_test(fallback_no_state),
		cmocka_unit_test(reply_teaches_flow),
		cmocka_unit_test(draining_and_down),
		cmocka_unit_test(malformed_counted),
		cmocka_unit_test(idle_timeouts),
		cmocka_unit_test(rr_and_lc_exact),
		cmocka_unit_test(ikev1_new_sa),
		cmocka_unit_test(ikev1_one_flow_after_float),
		cmocka_unit_test(evacuation_moves_redirected_client),
		cmocka_unit_test(lookup_nat_clients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
