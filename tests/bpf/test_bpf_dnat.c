/* BPF data path, IPv4 dnat with source-ip persistence: new clients, port
 * following, flows, replies, malformed input, traffic that is not ours. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"

#define CLIENT "203.0.113.77"
#define VIP "203.0.113.10"


static int persist_lookup(struct tfx *f, int svc, const char *client, struct state_value *v)
{
	struct persist_key k;
	memset(&k, 0, sizeof(k));
	k.svc_id = (uint32_t)svc;
	t_addr(client, &k.client);
	return bpf_map_lookup_elem(bpf_engine_map_fd(f->e, "persist_map"), &k, v);
}

/* The whole client life cycle: IKE_SA_INIT on 500 is placed and only
 * recorded as half-open (a flood of them must not evict anyone); IKE_AUTH
 * on 4500 (port float, new source port) follows the half-open SA and earns
 * persistence and the 4500 flow; ESP and keepalives follow the flow. */
static void sa_init_auth_esp_keepalive(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	struct state_value v;
	size_t n = t_sa_init(fr, CLIENT, 500, VIP, 0x1111222233334444ULL);

	assert_true(n > 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK); /* no route in the test netns */
	assert_int_equal(f->out_len, n);
	int srv = t_dst_server(f, SV4);
	assert_true(srv >= 0);
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	assert_int_not_equal(persist_lookup(f, SV4, CLIENT, &v), 0);
	assert_int_not_equal(t_flow_get(f, SV4, CLIENT, 500, 500, &v), 0);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_NEW), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_IKEV2), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_FIB_PASS), 1);

	/* the server answers with its SPIr, which the IKE_AUTH must carry */
	assert_int_equal(t_init_resp(f, SV4, srv, CLIENT, 500, 0x1111222233334444ULL,
				     0x5555666677778888ULL), TC_ACT_OK);
	assert_int_not_equal(t_flow_get(f, SV4, CLIENT, 500, 500, &v), 0); /* teaches no flow */
	n = t_auth(fr, CLIENT, 34567, VIP, 0x1111222233334444ULL, 0x5555666677778888ULL, 900);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_SA), 1);
	assert_int_equal(persist_lookup(f, SV4, CLIENT, &v), 0);
	assert_int_equal(v.real_id, bpf_engine_real_id(f->e, SV4, srv));
	assert_int_equal(t_flow_get(f, SV4, CLIENT, 34567, 4500, &v), 0);
	assert_int_equal(v.real_id, bpf_engine_real_id(f->e, SV4, srv));

	n = t_esp(fr, CLIENT, 34567, VIP, 0xc0ffee01);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	n = t_keepalive(fr, CLIENT, 34567, VIP);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FLOW), 2);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_ESP), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_KEEPALIVE), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_FWD), 4);

	struct ctr rc;
	assert_int_equal(bpf_engine_real_counters(f->e, (uint32_t)bpf_engine_real_id(f->e, SV4, srv),
						  &rc), 0);
	assert_int_equal(rc.packets, 4);
}

/* The new-client choice is the Maglev slot of the masked client hash, the
 * same function the socket engine uses. */
static void new_client_follows_maglev_hash(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	struct ikelb_addr c;
	int seen[T_NSRV] = { 0 };

	for (int i = 0; i < 24; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.18.%d.%d", i / 200, 1 + i % 200);
		size_t n = t_sa_init(fr, ip, 500, VIP, 0x1000 + (uint64_t)i);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		int got = t_dst_server(f, SV4);
		assert_true(got >= 0);
		seen[got]++;
		t_addr(ip, &c);
		uint64_t h = ikelb_hash_addr(&c, 0, f->cfg.maglev_seed);
		/* rebuild the table the fixture installed */
		struct maglev_backend b[T_NSRV];
		uint8_t keys[T_NSRV][MAGLEV_KEY_MAX];
		uint32_t table[T_MAGLEV];
		for (int s = 0; s < T_NSRV; s++) {
			b[s].key = keys[s];
			b[s].key_len = maglev_server_key(f->srv[SV4][s].name, &f->srv[SV4][s].addr,
							 keys[s], sizeof(keys[s]));
			b[s].weight = 100;
		}
		assert_int_equal(maglev_build(b, T_NSRV, T_MAGLEV, f->cfg.maglev_seed, table), 0);
		assert_int_equal((int)table[h % T_MAGLEV], got);
	}
	for (int s = 0; s < T_NSRV; s++)
		assert_true(seen[s] > 0);
}

/* A new IKE_SA_INIT from a client with persistence stays on its server
 * (make-before-break reauthentication), even from another source port. */
static void reauth_stays(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, CLIENT, 500, VIP, 0xaaaa000000000001ULL);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	int srv = t_dst_server(f, SV4);
	assert_int_equal(t_init_resp(f, SV4, srv, CLIENT, 500, 0xaaaa000000000001ULL, 0x77ULL),
			 TC_ACT_OK);
	n = t_auth(fr, CLIENT, 4500, VIP, 0xaaaa000000000001ULL, 0x77ULL, 900);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK); /* earns persistence */
	assert_int_equal(t_dst_server(f, SV4), srv);
	for (uint64_t i = 2; i < 10; i++) {
		n = t_sa_init(fr, CLIENT, (uint16_t)(40000 + i), VIP, 0xaaaa000000000000ULL + i);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, SV4), srv);
	}
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_NEW), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_PERSIST), 8);
}

/* ARCHITECTURE.md, "State tables": a flood of IKE_SA_INITs (spoofable:
 * random sources and SPIs) only fills the bounded half-open table; it
 * writes no flow and no persistence entry, so it cannot evict an
 * established client's. */
static void sa_init_flood_leaves_established_state(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, CLIENT, 500, VIP, 0x5a5a000000000001ULL);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	int srv = t_dst_server(f, SV4);
	assert_int_equal(t_init_resp(f, SV4, srv, CLIENT, 500, 0x5a5a000000000001ULL, 0x42ULL),
			 TC_ACT_OK);
	n = t_auth(fr, CLIENT, 4500, VIP, 0x5a5a000000000001ULL, 0x42ULL, 300);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	size_t flows = t_map_count(f, "flow_map", sizeof(struct flow_key));
	size_t persist = t_map_count(f, "persist_map", sizeof(struct persist_key));
	assert_int_equal(flows, 1);
	assert_int_equal(persist, 1);
	for (int i = 0; i < 3000; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.18.%d.%d", 10 + i / 250, 1 + i % 250);
		n = t_sa_init(fr, ip, (uint16_t)(1024 + i), VIP, 0x6b00000000000000ULL + (uint64_t)i);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	}
	assert_int_equal(t_map_count(f, "flow_map", sizeof(struct flow_key)), flows);
	assert_int_equal(t_map_count(f, "persist_map", sizeof(struct persist_key)), persist);
	assert_true(t_map_count(f, "halfopen_map", sizeof(struct sa_key)) > 0);
	n = t_esp(fr, CLIENT, 4500, VIP, 0xc0000042);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FLOW), 1);
}

/* A server's reply teaches its client's flow (state lost, ESP must follow
 * again); an IKE_SA_INIT response teaches nothing (spoofers can provoke
 * those). */
static void reply_teaches_flow(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], pl[PKT_MAX];
	struct state_value v;
	int srv = 1;
	const char *real = t_real[SV4][srv];

	size_t pn = pkt_ikev2_sa_init_resp(pl, sizeof(pl), 0x1234, 0x5678);
	size_t n = t_udp(fr, real, 500, CLIENT, 500, pl, pn);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_not_equal(t_flow_get(f, SV4, CLIENT, 500, 500, &v), 0);

	pn = pkt_esp(pl, sizeof(pl), 0xc0000777u, 9, 64);
	n = t_udp(fr, real, 4500, CLIENT, 34567, pl, pn);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_flow_get(f, SV4, CLIENT, 34567, 4500, &v), 0);
	assert_int_equal(v.real_id, bpf_engine_real_id(f->e, SV4, srv));

	n = t_esp(fr, CLIENT, 34567, VIP, 0xc0000888u);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FLOW), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FALLBACK), 0);
}

/* ESP of an unknown flow: Maglev by client address, no state written. */
static void unknown_esp_fallback(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	struct state_value v;
	size_t n = t_esp(fr, CLIENT, 4500, VIP, 0x01020304);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_true(t_dst_server(f, SV4) >= 0);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FALLBACK), 1);
	assert_int_not_equal(persist_lookup(f, SV4, CLIENT, &v), 0);
	assert_int_not_equal(t_flow_get(f, SV4, CLIENT, 4500, 4500, &v), 0);
	/* and a later IKE_SA_INIT from the same client lands where the
	 * fallback sent its ESP (same hash, same table) */
	int fb = t_dst_server(f, SV4);
	n = t_sa_init(fr, CLIENT, 500, VIP, 77);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), fb);
}

static void reply_source_rewritten(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], pl[PKT_MAX];
	size_t pn = pkt_ikev2_sa_init_resp(pl, sizeof(pl), 0x1234, 0x5678);
	size_t n = t_udp(fr, "198.51.100.12", 500, CLIENT, 500, pl, pn);
	struct ikelb_addr a, vip;

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	t_frame_src(f->out, &a);
	t_addr(VIP, &vip);
	assert_true(ikelb_addr_eq(&a, &vip));
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_REPLY), 1);
	assert_memory_equal(f->out + 14 + 20, fr + 14 + 20, 4); /* ports kept */

	/* zero UDP checksum ("none") stays zero */
	fr[14 + 20 + 6] = fr[14 + 20 + 7] = 0;
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(f->out[14 + 20 + 6], 0);
	assert_int_equal(f->out[14 + 20 + 7], 0);
	assert_true(t_ip4_csum_ok(f->out + 14));

	/* a health-probe answer to ikelb's own address is left alone */
	struct ikelb_addr local;
	t_addr("198.51.100.1", &local);
	assert_int_equal(bpf_engine_set_local_addrs(f->e, &local, 1), 0);
	n = t_udp(fr, "198.51.100.12", 500, "198.51.100.1", 41000, pl, pn);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_memory_equal(f->out, fr, n);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_REPLY), 2);
}

static void not_ours_untouched(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], pl[PKT_MAX];
	size_t pn = pkt_ikev2_sa_init_req(pl, sizeof(pl), 99);
	const struct {
		const char *src, *dst;
		uint16_t sport, dport;
	} c[] = {
		{ CLIENT, "203.0.113.99", 500, 500 },   /* other address */
		{ CLIENT, VIP, 500, 501 },              /* VIP, other port */
		{ "198.51.100.12", CLIENT, 501, 500 },  /* real, other port */
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t n = t_udp(fr, c[i].src, c[i].sport, c[i].dst, c[i].dport, pl, pn);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(f->out_len, n);
		assert_memory_equal(f->out, fr, n);
	}
	/* ARP-sized non-IP frame */
	memset(fr, 0, 60);
	fr[12] = 0x08;
	fr[13] = 0x06;
	assert_int_equal(t_run(f, fr, 60), TC_ACT_OK);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_RX), 0);
}

static void malformed_counted(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], pl[64];
	size_t n;

	memset(pl, 0, sizeof(pl));
	n = t_udp(fr, CLIENT, 500, VIP, 500, pl, 10); /* short IKE */
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_TOO_SHORT), 1);

	pkt_ike_hdr(pl, 1, 0, 33, 0x30, 34, 0x08, 0, 28); /* version 3 */
	n = t_udp(fr, CLIENT, 500, VIP, 500, pl, 28);
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_BAD_VERSION), 1);

	pkt_ike_hdr(pl, 1, 0, 33, 0x20, 34, 0x08, 0, 40); /* length 40 in 28 */
	n = t_udp(fr, CLIENT, 500, VIP, 500, pl, 28);
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_LEN_MISMATCH), 1);

	pkt_ike_hdr(pl, 0, 0, 33, 0x20, 34, 0x08, 0, 28); /* SPIi 0 */
	n = t_udp(fr, CLIENT, 500, VIP, 500, pl, 28);
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_ZERO_SPI), 1);

	n = t_esp(fr, CLIENT, 4500, VIP, 200); /* reserved SPI */
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_RESERVED_SPI), 1);

	pl[0] = 0x00; /* 1 byte, not 0xFF */
	n = t_udp(fr, CLIENT, 4500, VIP, 4500, pl, 1);
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_BAD_KEEPALIVE), 1);

	/* UDP length larger than the IP payload */
	n = t_sa_init(fr, CLIENT, 500, VIP, 5);
	fr[14 + 20 + 4] = 0x7f;
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	/* IP total length beyond the frame */
	n = t_sa_init(fr, CLIENT, 500, VIP, 5);
	fr[14 + 2] = 0x7f;
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	/* truncated UDP header */
	n = t_sa_init(fr, CLIENT, 500, VIP, 5);
	fr[14 + 2] = 0;
	fr[14 + 3] = 24;
	assert_int_equal(t_run(f, fr, 14 + 24), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_MALFORMED_IP), 3);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_FWD), 0);
	/* the same garbage to a non-VIP is not ours */
	n = t_sa_init(fr, CLIENT, 500, "203.0.113.99", 5);
	fr[14 + 20 + 4] = 0x7f;
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_MALFORMED_IP), 3);
}

static void no_server_counted(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, CLIENT, 500, VIP, 5);

	assert_int_equal(bpf_engine_set_maglev(f->e, SV4, NULL, 0), 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_NO_SERVER), 1);
}

/* Ethernet minimum-size padding after a keepalive must not break it. */
static void padded_keepalive(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_keepalive(fr, CLIENT, 4500, VIP);

	memset(fr + n, 0, 60 - n);
	assert_int_equal(t_run(f, fr, 60), TC_ACT_OK);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_KEEPALIVE), 1);
	assert_true(t_dst_server(f, SV4) >= 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(sa_init_auth_esp_keepalive, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(new_client_follows_maglev_hash, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(reauth_stays, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(reply_teaches_flow, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(sa_init_flood_leaves_established_state, t_cm_setup,
						t_cm_teardown),
		cmocka_unit_test_setup_teardown(unknown_esp_fallback, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(reply_source_rewritten, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(not_ours_untouched, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(malformed_counted, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(no_server_counted, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(padded_keepalive, t_cm_setup, t_cm_teardown),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
