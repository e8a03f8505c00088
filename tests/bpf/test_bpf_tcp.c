/* BPF data path, tcp_ports (docs/tcp.md): SYN steering, the TCP checksum
 * after the dnat rewrite (recomputed from scratch here), connections that
 * stay where they are, persistence shared with IKE, the reply rewrite and
 * the spoof checks on it, dsr, drops. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"

#define CLIENT "203.0.113.77"
#define CLIENT6 "2001:db8:300::77"
#define SSTP 443
#define T_SYN 0x02
#define T_ACK 0x10

/* Ethernet + IP + TCP (20-byte header) + plen bytes of payload, correct
 * checksums: built from a UDP frame of the same size, then turned into
 * TCP, so the IP layer comes from the shared builder. */
static size_t tcp_frame(uint8_t *fr, const char *src, uint16_t sport, const char *dst,
			uint16_t dport, uint8_t flags, size_t plen)
{
	uint8_t pl[PKT_MAX];

	memset(pl, 0xab, sizeof(pl));
	size_t n = t_udp(fr, src, sport, dst, dport, pl, plen + 12);
	assert_true(n > 0);
	uint8_t *ip = fr + PKT_ETH_LEN;
	int v6 = (ip[0] >> 4) == 6;
	size_t hl = v6 ? PKT_IP6_LEN : PKT_IP4_LEN;
	uint8_t *t = ip + hl;
	size_t tlen = n - PKT_ETH_LEN - hl;

	memset(t + 4, 0, 16);
	t[4] = 0x11; t[7] = 0x22;          /* sequence */
	t[11] = flags & T_ACK ? 0x33 : 0;  /* acknowledgement */
	t[12] = 5 << 4;
	t[13] = flags;
	t[14] = 0xff; t[15] = 0xff;        /* window */
	if (v6) {
		ip[6] = IPPROTO_TCP;
	} else {
		ip[9] = IPPROTO_TCP;
		ip[10] = ip[11] = 0;
		uint16_t c = (uint16_t)~t_fold(t_sum(ip, hl, 0));
		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
	}
	uint32_t s = v6 ? t_sum(ip + 8, 32, 0) : t_sum(ip + 12, 8, 0);
	s += IPPROTO_TCP + (uint32_t)tlen;
	uint16_t c = (uint16_t)~t_fold(t_sum(t, tlen, s));
	t[16] = (uint8_t)(c >> 8);
	t[17] = (uint8_t)c;
	return n;
}

/* IP header (IPv4) and TCP checksums of the output frame, from scratch. */
static int tcp_csum_ok(const uint8_t *fr, size_t len)
{
	const uint8_t *ip = fr + PKT_ETH_LEN;
	int v6 = (ip[0] >> 4) == 6;
	size_t hl = v6 ? PKT_IP6_LEN : PKT_IP4_LEN;
	size_t tot = v6 ? PKT_IP6_LEN + ((size_t)ip[4] << 8 | ip[5]) : ((size_t)ip[2] << 8 | ip[3]);

	if (len < PKT_ETH_LEN + tot || (v6 ? ip[6] : ip[9]) != IPPROTO_TCP)
		return 0;
	if (!v6 && !t_ip4_csum_ok(ip))
		return 0;
	uint32_t s = v6 ? t_sum(ip + 8, 32, 0) : t_sum(ip + 12, 8, 0);
	s += IPPROTO_TCP + (uint32_t)(tot - hl);
	return t_fold(t_sum(ip + hl, tot - hl, s)) == 0xffff;
}

/* The rewrite changed addresses and the checksum field only: a
 * compensation written into any other 16-bit word of the segment would
 * keep the sum right and corrupt the segment. */
static int tcp_body_same(const uint8_t *in, const uint8_t *out, size_t len)
{
	size_t hl = (in[PKT_ETH_LEN] >> 4) == 6 ? PKT_IP6_LEN : PKT_IP4_LEN;
	size_t t = PKT_ETH_LEN + hl;

	return !memcmp(in + t, out + t, 16) && !memcmp(in + t + 18, out + t + 18, len - t - 18);
}

static int tcp_setup(void **state)
{
	static struct tfx f;

	memset(&f, 0, sizeof(f));
	log_init(&f.log, LOG_LVL_WARN);
	t_cfg_build(&f);
	for (int s = 0; s < T_NSVC; s++) {
		f.svc[s].tcp_ports[0] = SSTP;
		f.svc[s].ntcp_ports = 1;
	}
	if (t_start(&f) != 0)
		return -1;
	*state = &f;
	return 0;
}

static int conn_get(struct tfx *f, int s, const char *client, uint16_t cport,
		    struct state_value *v)
{
	struct flow_key k;

	memset(&k, 0, sizeof(k));
	k.svc_id = (uint32_t)s;
	k.cport = cport;
	k.vport = SSTP;
	t_addr(client, &k.client);
	return bpf_map_lookup_elem(bpf_engine_map_fd(f->e, "tcp_conn_map"), &k, v);
}

static int persist_set(struct tfx *f, int s, const char *client, int srv)
{
	struct persist_key k;
	struct state_value v = { .real_id = (uint32_t)bpf_engine_real_id(f->e, s, srv),
				 .last_seen_s = bpf_engine_now_s() };

	memset(&k, 0, sizeof(k));
	k.svc_id = (uint32_t)s;
	t_addr(client, &k.client);
	return bpf_map_update_elem(bpf_engine_map_fd(f->e, "persist_map"), &k, &v, BPF_ANY);
}

static int persist_del(struct tfx *f, int s, const char *client)
{
	struct persist_key k;

	memset(&k, 0, sizeof(k));
	k.svc_id = (uint32_t)s;
	t_addr(client, &k.client);
	return bpf_map_delete_elem(bpf_engine_map_fd(f->e, "persist_map"), &k);
}

/* A SYN is placed on a server, rewritten with a correct TCP checksum,
 * counted as a new connection; the rest of the connection follows its
 * entry. IPv4 and IPv6. */
static void syn_steered_checksum_ok(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	struct state_value v;
	const int svcs[2] = { SV4, SV6 };
	const char *clients[2] = { CLIENT, CLIENT6 };

	for (int k = 0; k < 2; k++) {
		int s = svcs[k];
		size_t n = tcp_frame(fr, clients[k], 40000, t_vip[s], SSTP, T_SYN, 0);
		assert_true(tcp_csum_ok(fr, n));
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		int srv = t_dst_server(f, s);
		assert_true(srv >= 0);
		assert_true(tcp_csum_ok(f->out, f->out_len));
		assert_true(tcp_body_same(fr, f->out, n));
		assert_int_equal(t_ctr(f, s, SVC_CTR_TCP_NEW), 1);
		assert_int_equal(conn_get(f, s, clients[k], 40000, &v), 0);
		assert_int_equal(v.real_id, bpf_engine_real_id(f->e, s, srv));

		n = tcp_frame(fr, clients[k], 40000, t_vip[s], SSTP, T_ACK, 333);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, s), srv);
		assert_true(tcp_csum_ok(f->out, f->out_len));
		assert_true(tcp_body_same(fr, f->out, n));
		assert_int_equal(t_ctr(f, s, SVC_CTR_TCP_FWD), 2);
		assert_int_equal(t_ctr(f, s, SVC_CTR_TCP_NEW), 1);
		assert_int_equal(t_ctr(f, s, SVC_CTR_TCP_RX), 2);
		assert_int_equal(t_ctr(f, s, SVC_CTR_FWD), 0); /* UDP counters untouched */
	}
}

/* A client's IKE SA placed it (source-ip persistence): its SSTP goes to
 * the same server even when the Maglev table would say otherwise. */
static void persistence_shared_with_ike(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, CLIENT, 500, t_vip[SV4], 0x1001);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	int srv = t_dst_server(f, SV4);
	assert_true(srv >= 0);
	assert_int_equal(t_init_resp(f, SV4, srv, CLIENT, 500, 0x1001, 0x2002), TC_ACT_OK);
	n = t_auth(fr, CLIENT, 4500, t_vip[SV4], 0x1001, 0x2002, 100);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);

	/* the IKE server stops taking new clients: only persistence can
	 * still bring this client's new connection to it */
	int usable[T_NSRV] = { 1, 1, 1 };
	usable[srv] = 0;
	assert_int_equal(t_maglev(f, SV4, usable), 0);
	n = tcp_frame(fr, CLIENT, 40001, t_vip[SV4], SSTP, T_SYN, 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_PERSIST), 0); /* IKE's rules untouched */

	/* another client without persistence is scheduled over the others */
	n = tcp_frame(fr, "203.0.113.78", 40001, t_vip[SV4], SSTP, T_SYN, 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_not_equal(t_dst_server(f, SV4), srv);
}

/* A connection never moves: its persistence entry evicted and the Maglev
 * table changed, its segments still reach its server; and its next
 * connection goes there too (the established connection wrote
 * persistence back). */
static void connection_stays_put(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	struct state_value v;
	size_t n = tcp_frame(fr, CLIENT, 40002, t_vip[SV4], SSTP, T_SYN, 0);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	int srv = t_dst_server(f, SV4);
	assert_true(srv >= 0);
	persist_del(f, SV4, CLIENT);
	int usable[T_NSRV] = { 1, 1, 1 };
	usable[srv] = 0;
	assert_int_equal(t_maglev(f, SV4, usable), 0);
	n = tcp_frame(fr, CLIENT, 40002, t_vip[SV4], SSTP, T_ACK, 100);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_true(tcp_csum_ok(f->out, f->out_len));

	/* the established connection recorded persistence */
	struct persist_key pk;
	memset(&pk, 0, sizeof(pk));
	t_addr(CLIENT, &pk.client);
	assert_int_equal(bpf_map_lookup_elem(bpf_engine_map_fd(f->e, "persist_map"), &pk, &v), 0);
	assert_int_equal(v.real_id, bpf_engine_real_id(f->e, SV4, srv));
	n = tcp_frame(fr, CLIENT, 40003, t_vip[SV4], SSTP, T_SYN, 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);

	/* but existing persistence elsewhere is never moved by TCP */
	assert_int_equal(persist_set(f, SV4, CLIENT, (srv + 1) % T_NSRV), 0);
	n = tcp_frame(fr, CLIENT, 40002, t_vip[SV4], SSTP, T_ACK, 10);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_int_equal(bpf_map_lookup_elem(bpf_engine_map_fd(f->e, "persist_map"), &pk, &v), 0);
	assert_int_equal(v.real_id, bpf_engine_real_id(f->e, SV4, (srv + 1) % T_NSRV));
	(void)conn_get;
}

/* Server -> client: the source becomes the VIP with correct checksums;
 * the same segment from the public side is a spoof; so is the VIP as a
 * source there. Segments for ikelb itself (health checks) pass as they
 * are. */
static void reply_rewrite_and_spoof(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	struct ikelb_addr a, vip;
	const int svcs[2] = { SV4, SV6 };
	const char *clients[2] = { CLIENT, CLIENT6 };

	for (int k = 0; k < 2; k++) {
		int s = svcs[k];
		size_t n = tcp_frame(fr, t_real[s][1], SSTP, clients[k], 40000, T_SYN | T_ACK, 0);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		t_frame_src(f->out, &a);
		t_addr(t_vip[s], &vip);
		assert_true(ikelb_addr_eq(&a, &vip));
		assert_true(tcp_csum_ok(f->out, f->out_len));
		assert_true(tcp_body_same(fr, f->out, n));
		assert_int_equal(t_ctr(f, s, SVC_CTR_TCP_REPLY), 1);
	}
	assert_int_equal(bpf_engine_set_iface_roles(f->e, 1, IFACE_R_PUBLIC), 0);
	size_t n = tcp_frame(fr, t_real[SV4][1], SSTP, CLIENT, 40000, T_ACK, 10);
	assert_int_equal(t_run_if(f, fr, n, 1), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_SPOOFED_REPLY), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_TCP_DROP), 1);
	n = tcp_frame(fr, t_vip[SV4], SSTP, CLIENT, 40000, T_ACK, 10);
	assert_int_equal(t_run_if(f, fr, n, 1), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_SPOOFED_REPLY), 2);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_TCP_REPLY), 1);
}

/* dsr keeps the VIP as destination; no live server: counted drop; TCP
 * to other ports, and UDP to 443, is not ours. */
static void dsr_drops_and_strangers(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	struct ikelb_addr a, vip;
	size_t n = tcp_frame(fr, CLIENT, 40000, t_vip[SDSR], SSTP, T_SYN, 0);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	t_frame_dst(f->out, &a);
	t_addr(t_vip[SDSR], &vip);
	assert_true(ikelb_addr_eq(&a, &vip));
	assert_int_equal(t_ctr(f, SDSR, SVC_CTR_TCP_NEW), 1);

	for (int i = 0; i < T_NSRV; i++)
		assert_int_equal(bpf_engine_set_real_state(f->e, SV4, i, REAL_DOWN), 0);
	n = tcp_frame(fr, CLIENT, 40000, t_vip[SV4], SSTP, T_SYN, 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_NO_SERVER), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_TCP_DROP), 1);

	n = tcp_frame(fr, CLIENT, 40000, t_vip[SV4], 80, T_SYN, 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(memcmp(f->out, fr, n), 0);
	n = tcp_frame(fr, "198.18.0.1", 40000, "198.18.0.2", SSTP, T_SYN, 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(memcmp(f->out, fr, n), 0);
	uint8_t pl[8] = { 0 };
	n = t_udp(fr, CLIENT, 40000, t_vip[SV4], SSTP, pl, sizeof(pl));
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(memcmp(f->out, fr, n), 0);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_TCP_RX), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_RX), 0);
}

/* TTL 1 on a routed hop (dnat, replies): the kernel gets the segment
 * unchanged (it sends time exceeded), counted as a TCP drop. */
static void ttl_expired_counted(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], in[PKT_MAX];
	const char *src[2] = { CLIENT, t_real[SV4][0] };
	const char *dst[2] = { t_vip[SV4], CLIENT };
	const uint16_t sp[2] = { 40000, SSTP }, dp[2] = { SSTP, 40000 };

	for (int k = 0; k < 2; k++) {
		size_t n = tcp_frame(fr, src[k], sp[k], dst[k], dp[k], T_SYN, 0);
		uint8_t *ip = fr + PKT_ETH_LEN;
		ip[8] = 1;
		ip[10] = ip[11] = 0;
		uint16_t c = (uint16_t)~t_fold(t_sum(ip, PKT_IP4_LEN, 0));
		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
		memcpy(in, fr, n);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(memcmp(f->out, in, n), 0);
		assert_int_equal(t_drop(f, SV4, IKE_DROP_TTL_EXPIRED), (uint64_t)k + 1);
		assert_int_equal(t_ctr(f, SV4, SVC_CTR_TCP_DROP), (uint64_t)k + 1);
	}
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_TCP_FWD), 0);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_TCP_REPLY), 0);
}

/* A header that lies (data offset below 20 bytes) to a VIP is a counted
 * drop. */
static void malformed_dropped(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = tcp_frame(fr, CLIENT, 40000, t_vip[SV4], SSTP, T_SYN, 0);

	fr[PKT_ETH_LEN + PKT_IP4_LEN + 12] = 2 << 4;
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_MALFORMED_IP), 1);
}

/* The routed hop (FIB answer, TTL - 1) keeps the segment TCP: the IPv4
 * TTL/protocol word in the checksum update is the packet's own. */
static void routed_hop_keeps_protocol(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];

	assert_int_equal(t_route_servers(1), 0);
	size_t n = tcp_frame(fr, CLIENT, 40001, t_vip[SV4], SSTP, T_SYN, 0);
	int rc = t_run(f, fr, n);
	t_route_servers(0);
	assert_int_equal(rc, TC_ACT_REDIRECT);
	assert_true(t_dst_server(f, SV4) >= 0);
	assert_true(t_routed_ip4_ok(fr, f->out));
	assert_true(tcp_csum_ok(f->out, f->out_len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(syn_steered_checksum_ok, tcp_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(persistence_shared_with_ike, tcp_setup,
						t_cm_teardown),
		cmocka_unit_test_setup_teardown(connection_stays_put, tcp_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(reply_rewrite_and_spoof, tcp_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(dsr_drops_and_strangers, tcp_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(ttl_expired_counted, tcp_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(malformed_dropped, tcp_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(routed_hop_keeps_protocol, tcp_setup,
						t_cm_teardown),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
