/* BPF data path against spoofed traffic (docs/security.md): replies
 * believed only where the servers are, half-open SAs promoted only with
 * the SPIr the server answered, replies to unestablished SAs teaching
 * nothing, and a half-open table at capacity that leaves established
 * state alone while its pressure is counted. Each test failed before the
 * defence it names existed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <net/if.h>

#include "bpf_test_util.h"

#define VICTIM "203.0.113.77"
#define FAKE "198.18.9.9"
#define PUB_IF "ikp0"    /* public side only */
#define ARM_IF "iks0"    /* one arm: clients and servers */
#define SRV_MAC(i) "02:00:00:00:01:0" #i

/* Forwarded, by the kernel (TC_ACT_OK) or by the program's redirect: the
 * servers' subnet is routed in this namespace, the clients' is not. */
#define assert_fwd(v) do { int v_ = (v); assert_true(v_ == TC_ACT_OK || v_ == TC_ACT_REDIRECT); } while (0)

static int sa_get(struct tfx *f, const char *map, int s, uint64_t spi_i,
		  struct halfopen_value *v)
{
	struct sa_key k = { .svc_id = (uint32_t)s, .spi_i = spi_i };
	memset(v, 0, sizeof(*v));
	return bpf_map_lookup_elem(bpf_engine_map_fd(f->e, map), &k, v);
}

/* A real client: IKE_SA_INIT, the server's answer, IKE_AUTH from the
 * floated port. Returns its server. */
static int establish(struct tfx *f, int s, const char *ip, uint16_t cport, uint64_t spi_i,
		     uint64_t spi_r)
{
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, ip, 500, t_vip[s], spi_i);
	assert_fwd(t_run(f, fr, n));
	int srv = t_dst_server(f, s);
	assert_true(srv >= 0);
	assert_fwd(t_init_resp(f, s, srv, ip, 500, spi_i, spi_r));
	n = t_auth(fr, ip, cport, t_vip[s], spi_i, spi_r, 200);
	assert_fwd(t_run(f, fr, n));
	assert_int_equal(t_dst_server(f, s), srv);
	return srv;
}

static size_t from_server(uint8_t *fr, int s, int srv, uint16_t sport, const char *client,
			  uint16_t cport, const void *pl, size_t pn)
{
	return t_udp(fr, t_real[s][srv], sport, client, cport, pl, pn);
}

/* Defect 1: a 1-byte datagram from the public side claiming another
 * server's address:4500 was taken as that server's reply: the victim's
 * flow moved and the datagram reached it from the VIP. */
static void spoofed_reply_from_public_side(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], ka = 0xff;
	struct state_value before, after;
	int pub = (int)if_nametoindex(PUB_IF);

	assert_int_equal(bpf_engine_set_iface_roles(f->e, pub, IFACE_R_PUBLIC), 0);
	int srv = establish(f, SV4, VICTIM, 4500, 0x1001, 0x2002);
	assert_int_equal(t_flow_get(f, SV4, VICTIM, 4500, 4500, &before), 0);
	size_t n = from_server(fr, SV4, (srv + 1) % T_NSRV, 4500, VICTIM, 4500, &ka, 1);
	assert_int_equal(t_run_if(f, fr, n, pub), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_SPOOFED_REPLY), 1);
	assert_int_equal(t_flow_get(f, SV4, VICTIM, 4500, 4500, &after), 0);
	assert_int_equal(after.real_id, before.real_id);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_REPLY), 1); /* the IKE_SA_INIT response only */

	/* the VIP itself as the source, from the public side */
	n = t_udp(fr, t_vip[SV4], 4500, VICTIM, 4500, &ka, 1);
	assert_int_equal(t_run_if(f, fr, n, pub), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_SPOOFED_REPLY), 2);

	/* the same datagram from the servers' side is a reply */
	n = from_server(fr, SV4, srv, 4500, VICTIM, 4500, &ka, 1);
	assert_fwd(t_run(f, fr, n));
	struct ikelb_addr src, vip;
	t_frame_src(f->out, &src);
	t_addr(t_vip[SV4], &vip);
	assert_true(ikelb_addr_eq(&src, &vip));
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_REPLY), 2);
}

static struct ctr real_ctr(struct tfx *f, int s, int srv, int idx)
{
	struct ctr c[REAL_CTR__MAX];
	int id = bpf_engine_real_id(f->e, s, srv);
	assert_true(id >= 0);
	assert_int_equal(bpf_engine_real_replies(f->e, (uint32_t)id, c), 0);
	return c[idx];
}

/* The per-server reply counter behind the bypass warning (src/ctl/bypass.c)
 * counts a server's genuine replies only, and its IKE-request counter IKE
 * messages only (keepalives expect no answer). */
static void reply_counter_per_server(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], ka = 0xff;
	int pub = (int)if_nametoindex(PUB_IF);

	assert_int_equal(bpf_engine_set_iface_roles(f->e, pub, IFACE_R_PUBLIC), 0);
	int srv = establish(f, SV4, VICTIM, 4500, 0x3001, 0x4002);
	int other = (srv + 1) % T_NSRV;
	assert_int_equal(real_ctr(f, SV4, srv, REAL_CTR_REPLY).packets, 1); /* SA_INIT resp */
	assert_int_equal(real_ctr(f, SV4, srv, REAL_CTR_IKE).packets, 2);   /* SA_INIT, AUTH */
	size_t n = t_keepalive(fr, VICTIM, 4500, t_vip[SV4]);
	assert_fwd(t_run(f, fr, n));
	assert_int_equal(real_ctr(f, SV4, srv, REAL_CTR_IKE).packets, 2);

	n = from_server(fr, SV4, srv, 4500, VICTIM, 4500, &ka, 1);
	assert_int_equal(t_run_if(f, fr, n, pub), TC_ACT_SHOT); /* spoofed: not counted */
	assert_int_equal(real_ctr(f, SV4, srv, REAL_CTR_REPLY).packets, 1);
	assert_fwd(t_run(f, fr, n));
	struct ctr c = real_ctr(f, SV4, srv, REAL_CTR_REPLY);
	assert_int_equal(c.packets, 2);
	assert_true(c.bytes > 0);
	assert_int_equal(real_ctr(f, SV4, other, REAL_CTR_REPLY).packets, 0);
	assert_int_equal(real_ctr(f, SV4, other, REAL_CTR_IKE).packets, 0);
}

/* One arm: clients and servers on one interface. A reply is believed only
 * from the MAC the kernel uses toward that server. */
static void one_arm_reply_needs_server_neighbour(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], ka = 0xff;
	static const uint8_t good[6] = { 2, 0, 0, 0, 1, 1 }, bad[6] = { 2, 0, 0, 0, 9, 9 };
	int arm = (int)if_nametoindex(ARM_IF);

	assert_int_equal(bpf_engine_set_iface_roles(f->e, arm, IFACE_R_BOTH), 0);
	size_t n = from_server(fr, SV4, 1, 4500, VICTIM, 4500, &ka, 1);
	memcpy(fr + 6, good, 6);
	assert_int_not_equal(t_run_if(f, fr, n, arm), TC_ACT_SHOT);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_REPLY), 1);
	memcpy(fr + 6, bad, 6);
	assert_int_equal(t_run_if(f, fr, n, arm), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_SPOOFED_REPLY), 1);
	/* the neighbour of another server is not this server's */
	memcpy(fr + 6, (const uint8_t[6]){ 2, 0, 0, 0, 1, 2 }, 6);
	assert_int_equal(t_run_if(f, fr, n, arm), TC_ACT_SHOT);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_REPLY), 1);
}

/* Defect 2: IKE_SA_INIT and then any message with SPIr != 0 from the same
 * spoofed source was promoted. Only the SPIr the server answered does. */
static void fake_auth_not_promoted(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	struct halfopen_value h;
	struct state_value v;
	const int svcs[2] = { SIKE, SV4 };

	for (int i = 0; i < 2; i++) {
		int s = svcs[i];
		uint64_t spi = 0x7700000000000100ULL + (uint64_t)i, spi_r = 0x7700000000abcdefULL;
		size_t n = t_sa_init(fr, FAKE, 500, t_vip[s], spi);
		assert_fwd(t_run(f, fr, n));
		int srv = t_dst_server(f, s);
		/* no answer yet: an IKE_AUTH with any SPIr promotes nothing */
		n = t_auth(fr, FAKE, 4500, t_vip[s], spi, spi_r, 100);
		assert_fwd(t_run(f, fr, n));
		assert_int_not_equal(t_flow_get(f, s, FAKE, 4500, 4500, &v), 0);
		/* the server answers (to wherever the source says) */
		assert_fwd(t_init_resp(f, s, srv, FAKE, 500, spi, spi_r));
		assert_int_equal(sa_get(f, "halfopen_map", s, spi, &h), 0);
		assert_true(h.spi_r == spi_r);
		/* a guessed SPIr still promotes nothing */
		n = t_auth(fr, FAKE, 4500, t_vip[s], spi, spi_r ^ 1, 100);
		assert_fwd(t_run(f, fr, n));
		assert_int_not_equal(t_flow_get(f, s, FAKE, 4500, 4500, &v), 0);
		assert_int_not_equal(sa_get(f, "sa_map", s, spi, &h), 0);
		assert_int_equal(t_map_count(f, "persist_map", sizeof(struct persist_key)), 0);
		/* the answered SPIr does */
		n = t_auth(fr, FAKE, 4500, t_vip[s], spi, spi_r, 100);
		assert_fwd(t_run(f, fr, n));
		assert_int_equal(t_dst_server(f, s), srv);
		assert_int_equal(t_flow_get(f, s, FAKE, 4500, 4500, &v), 0);
		assert_int_equal(v.real_id, bpf_engine_real_id(f->e, s, srv));
		assert_int_not_equal(sa_get(f, "halfopen_map", s, spi, &h), 0);
	}
	assert_int_equal(sa_get(f, "sa_map", SIKE, 0x7700000000000100ULL, &h), 0);
	assert_int_equal(t_map_count(f, "persist_map", sizeof(struct persist_key)), 1);
}

/* An IKE header + `extra` zero bytes, as a server sends it. */
static size_t ike_msg(uint8_t *pl, uint64_t spi_i, uint64_t spi_r, uint8_t np, uint8_t ver,
		      uint8_t exch, uint8_t flags, size_t extra)
{
	memset(pl, 0, IKE_HDR_LEN + extra);
	pkt_ike_hdr(pl, spi_i, spi_r, np, ver, exch, flags, 1, (uint32_t)(IKE_HDR_LEN + extra));
	return IKE_HDR_LEN + extra;
}

/* Defect 2, the reply side: answers to SAs that are not established go
 * out in the clear and teach nothing (a spoofed IKEv1 Main Mode provoked
 * strongSwan's INFORMATIONAL, which taught a flow); protected ones do. */
static void unestablished_answers_teach_nothing(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], pl[PKT_MAX];
	struct state_value v;
	struct halfopen_value h;

	size_t pn = pkt_ikev1_main_mode1(pl, sizeof(pl), 0x5151, 0);
	size_t n = t_udp(fr, FAKE, 500, t_vip[SV4], 500, pl, pn);
	assert_fwd(t_run(f, fr, n));
	int srv = t_dst_server(f, SV4);
	assert_true(srv >= 0);
	struct {
		uint64_t spi_r;
		uint8_t np, ver, exch, flags;
	} clear[] = {
		{ 0, IKE_PL_NOTIFY, 0x10, 5, 0 },            /* IKEv1 INFORMATIONAL */
		{ 0x6262, IKE_PL_SA, 0x10, 2, 0 },           /* IKEv1 Main Mode answer */
		{ 0x6262, IKE_PL_NOTIFY, 0x10, 5, 0 },       /* IKEv1 INFORMATIONAL, SA named */
		{ 0x6363, IKE_PL_NOTIFY, 0x20, IKE_EXCH_INFORMATIONAL, IKE_FLAG_R },
		{ 0x6363, IKE_PL_NOTIFY, 0x20, IKE_EXCH_AUTH, IKE_FLAG_R }, /* error, clear */
	};
	for (size_t i = 0; i < sizeof(clear) / sizeof(clear[0]); i++) {
		pn = ike_msg(pl, 0x5151, clear[i].spi_r, clear[i].np, clear[i].ver, clear[i].exch,
			     clear[i].flags, 12);
		n = from_server(fr, SV4, srv, 500, FAKE, 500, pl, pn);
		assert_fwd(t_run(f, fr, n));
		assert_int_not_equal(t_flow_get(f, SV4, FAKE, 500, 500, &v), 0);
	}
	/* the Main Mode answer named the responder cookie */
	assert_int_equal(sa_get(f, "halfopen_map", SV4, 0x5151, &h), 0);
	assert_true(h.spi_r == 0x6262);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_REPLY), 5);

	/* protected: IKEv2 SK, IKEv1 encrypted */
	pn = pkt_ikev2_informational_resp(pl, sizeof(pl), 0x5151, 0x6363, 2, IKE_FLAG_R, 0);
	n = from_server(fr, SV4, srv, 500, FAKE, 500, pl, pn);
	assert_fwd(t_run(f, fr, n));
	assert_int_equal(t_flow_get(f, SV4, FAKE, 500, 500, &v), 0);
	pn = ike_msg(pl, 0x5252, 0x6464, 8, 0x10, 32, IKEV1_FLAG_E, 12); /* Quick Mode */
	n = from_server(fr, SV4, srv, 500, FAKE, 501, pl, pn);
	assert_fwd(t_run(f, fr, n));
	assert_int_equal(t_flow_get(f, SV4, FAKE, 501, 500, &v), 0);
}

/* Defect 3: a full half-open table evicted silently and nothing said so.
 * Small tables, pinned to one CPU (LRU maps keep per-CPU free lists, so
 * the eviction point is exact only on one CPU); every fake client sends
 * the three datagrams of the report: IKE_SA_INIT (answered by the server),
 * IKE_AUTH with a guessed SPIr, IKEv1 Main Mode (answered in the clear). */
static void halfopen_full_leaves_established(void **state)
{
	(void)state;
	static struct tfx f;
	uint8_t fr[PKT_MAX], pl[PKT_MAX];
	struct state_value v;
	cpu_set_t one;
	const int nest = 4, nfake = 600;

	CPU_ZERO(&one);
	CPU_SET(0, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	memset(&f, 0, sizeof(f));
	log_init(&f.log, LOG_LVL_WARN);
	t_cfg_build(&f);
	f.cfg.max_clients = 16;
	f.cfg.max_flows = 16;
	f.cfg.max_halfopen = 64;
	assert_int_equal(t_start(&f), 0);

	int where[2][4];
	for (int i = 0; i < nest; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", 100 + i);
		where[0][i] = establish(&f, SIKE, ip, 4500, 0x7700000000000001ULL + (uint64_t)i, 0x77aa);
		where[1][i] = establish(&f, SV4, ip, 4501, 0x7700000000001001ULL + (uint64_t)i, 0x77bb);
	}
	size_t flows = t_map_count(&f, "flow_map", sizeof(struct flow_key));
	assert_int_equal(flows, 2 * nest);
	for (int i = 0; i < nfake; i++) {
		char ip[32];
		int s = i % 2 ? SIKE : SV4;
		uint64_t spi = 0x5500000000000000ULL + (uint64_t)i;
		snprintf(ip, sizeof(ip), "198.18.%d.%d", 20 + i / 200, 1 + i % 200);
		size_t n = t_sa_init(fr, ip, 500, t_vip[s], spi);
		assert_fwd(t_run(&f, fr, n));
		assert_fwd(t_init_resp(&f, s, t_dst_server(&f, s), ip, 500, spi, 0x99));
		n = t_auth(fr, ip, 4500, t_vip[s], spi, 0x98, 100);
		assert_fwd(t_run(&f, fr, n));
		size_t pn = pkt_ikev1_main_mode1(pl, sizeof(pl), spi + 0x1000000, 0);
		n = t_udp(fr, ip, 500, t_vip[s], 500, pl, pn);
		assert_fwd(t_run(&f, fr, n));
		pn = ike_msg(pl, spi + 0x1000000, 0, IKE_PL_NOTIFY, 0x10, 5, 0, 12);
		n = from_server(fr, s, t_dst_server(&f, s), 500, ip, 500, pl, pn);
		assert_fwd(t_run(&f, fr, n));
	}
	/* every established entry is still there, on its server */
	assert_int_equal(t_map_count(&f, "flow_map", sizeof(struct flow_key)), flows);
	/* both persistence modes keep the established SA (lookups, counts) */
	assert_int_equal(t_map_count(&f, "sa_map", sizeof(struct sa_key)), 2 * nest);
	assert_int_equal(t_map_count(&f, "persist_map", sizeof(struct persist_key)), nest);
	for (int i = 0; i < nest; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", 100 + i);
		assert_int_equal(t_flow_get(&f, SIKE, ip, 4500, 4500, &v), 0);
		assert_int_equal(v.real_id, bpf_engine_real_id(f.e, SIKE, where[0][i]));
		assert_int_equal(t_flow_get(&f, SV4, ip, 4501, 4500, &v), 0);
		assert_int_equal(v.real_id, bpf_engine_real_id(f.e, SV4, where[1][i]));
	}
	/* and the pressure is visible */
	uint64_t full = t_ctr(&f, SIKE, SVC_CTR_HALFOPEN_FULL) + t_ctr(&f, SV4, SVC_CTR_HALFOPEN_FULL);
	struct eng_table_stats ts[TBL__MAX];
	assert_int_equal(bpf_engine_sweep(f.e, bpf_engine_now_s(), NULL, NULL), 0);
	bpf_engine_table_stats(f.e, ts);
	uint64_t ho_inserts = 2 * nest + 2 * (uint64_t)nfake; /* IKEv2 and IKEv1 fakes */
	assert_int_equal(ts[TBL_HALFOPEN].capacity, 64);
	assert_int_equal(ts[TBL_HALFOPEN].inserts, ho_inserts);
	assert_int_equal(ts[TBL_HALFOPEN].entries, 64);
	/* promotions deleted 2 * nest; the rest went in and was evicted */
	assert_int_equal(ts[TBL_HALFOPEN].evictions, ho_inserts - 2 * nest - 64);
	assert_int_equal(full, ts[TBL_HALFOPEN].evictions);
	assert_int_equal(ts[TBL_FLOW].entries, flows);
	assert_int_equal(ts[TBL_FLOW].evictions, 0);
	assert_int_equal(ts[TBL_SA].inserts, 2 * nest); /* both modes keep SAs */
	assert_int_equal(ts[TBL_SA].capacity, 16);
	t_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(spoofed_reply_from_public_side, t_cm_setup,
						t_cm_teardown),
		cmocka_unit_test_setup_teardown(one_arm_reply_needs_server_neighbour, t_cm_setup,
						t_cm_teardown),
		cmocka_unit_test_setup_teardown(fake_auth_not_promoted, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(reply_counter_per_server, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(unestablished_answers_teach_nothing, t_cm_setup,
						t_cm_teardown),
		cmocka_unit_test(halfopen_full_leaves_established),
	};
	if (t_netns() != 0)
		return 1;
	/* ikp0: a public-side interface; iks0: one arm, the servers' MACs as
	 * permanent neighbours, forwarding on (bpf_fib_lookup needs it). */
	if (system("ip link add " PUB_IF " type veth peer name ikp1 && ip link set " PUB_IF " up && "
		   "ip link add " ARM_IF " type veth peer name iks1 && ip link set " ARM_IF " up && "
		   "ip addr add 198.51.100.1/24 dev " ARM_IF " && "
		   "ip neigh replace 198.51.100.11 lladdr " SRV_MAC(0) " dev " ARM_IF " nud permanent && "
		   "ip neigh replace 198.51.100.12 lladdr " SRV_MAC(1) " dev " ARM_IF " nud permanent && "
		   "ip neigh replace 198.51.100.13 lladdr " SRV_MAC(2) " dev " ARM_IF " nud permanent && "
		   "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.forwarding=1") != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
