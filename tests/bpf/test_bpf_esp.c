/* BPF data path, raw ESP (IP protocol 50, src/bpf/ikelb_esp.h): steered
 * like the rest of the client's SA (label, flow, persistence, fallback),
 * dnat rewrites the destination with only the IPv4 header checksum, dsr
 * keeps the VIP, replies get the VIP as source, unknown clients in ike
 * mode are a counted drop, XDP leaves it to tc. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"

#define CLIENT "203.0.113.77"
#define VIP "203.0.113.10"
#define VIP_IKE "203.0.113.20"
#define VIP_DSR "203.0.113.30"
#define VIP6 "2001:db8:100::10"
#define CLIENT6 "2001:db8:300::77"
#define ESP_LEN 64

/* Ethernet + IP (protocol 50) + ESP header + ESP_LEN bytes: the UDP frame
 * builder's output with the UDP header cut out and the IP header fixed. */
static size_t t_raw_esp(uint8_t *buf, const char *src, const char *dst, uint32_t spi)
{
	uint8_t pl[PKT_MAX];
	size_t pn = pkt_esp(pl, sizeof(pl), spi, 7, ESP_LEN);
	size_t n = t_udp(buf, src, 4500, dst, 4500, pl, pn);
	uint8_t *ip = buf + PKT_ETH_LEN;
	int v6 = (ip[0] >> 4) == 6;
	size_t hl = v6 ? PKT_IP6_LEN : PKT_IP4_LEN;

	assert_true(pn > 0 && n > 0);
	memmove(ip + hl, ip + hl + PKT_UDP_LEN, n - PKT_ETH_LEN - hl - PKT_UDP_LEN);
	n -= PKT_UDP_LEN;
	if (v6) {
		uint16_t pl6 = (uint16_t)(n - PKT_ETH_LEN - PKT_IP6_LEN);
		ip[4] = (uint8_t)(pl6 >> 8);
		ip[5] = (uint8_t)pl6;
		ip[6] = 50;
		return n;
	}
	uint16_t tot = (uint16_t)(n - PKT_ETH_LEN);
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[9] = 50;
	ip[10] = ip[11] = 0;
	uint16_t c = (uint16_t)~t_fold(t_sum(ip, PKT_IP4_LEN, 0));
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	return n;
}

/* The ESP bytes (header and body) after the IP header are untouched. */
static void esp_payload_kept(const struct tfx *f, const uint8_t *in, size_t n)
{
	size_t hl = (in[PKT_ETH_LEN] >> 4) == 6 ? PKT_IP6_LEN : PKT_IP4_LEN;

	assert_int_equal(f->out_len, n);
	assert_memory_equal(f->out + PKT_ETH_LEN + hl, in + PKT_ETH_LEN + hl,
			    n - PKT_ETH_LEN - hl);
	if (hl == PKT_IP4_LEN)
		assert_true(t_ip4_csum_ok(f->out + PKT_ETH_LEN));
}

/* A client without NAT: IKE_SA_INIT 500 -> 500, the server's answer, then
 * IKE_AUTH from 4500 (MOBIKE's port switch) earns the flow. */
static int client_up(struct tfx *f, int s, const char *client, const char *vip, uint64_t spi_i)
{
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, client, 500, vip, spi_i);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	int srv = t_dst_server(f, s);
	if (f->svc[s].forwarding == CFG_FWD_DSR)
		srv = 0; /* the destination stays the VIP: use a fixed server */
	if (f->svc[s].forwarding != CFG_FWD_DSR)
		assert_int_equal(t_init_resp(f, s, srv, client, 500, spi_i, 0x77), TC_ACT_OK);
	n = t_auth(fr, client, 4500, vip, spi_i, 0x77, 300);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	return srv;
}

static void dnat_follows_flow(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	int srv = client_up(f, SV4, CLIENT, VIP, 0x1001);
	size_t n = t_raw_esp(fr, CLIENT, VIP, 0xc0ffee01);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK); /* no route in the test netns */
	assert_int_equal(t_dst_server(f, SV4), srv);
	esp_payload_kept(f, fr, n);
	assert_int_equal(f->out[PKT_ETH_LEN + 9], 50);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_ESP_RAW), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_ESP), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FLOW), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_FWD), 3);
}

/* The routed hop (FIB answer, TTL - 1) keeps the packet ESP: the IPv4
 * TTL/protocol word in the checksum update is the packet's own. */
static void dnat_routed_hop_keeps_protocol(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	int srv = client_up(f, SV4, CLIENT, VIP, 0x1002);
	size_t n = t_raw_esp(fr, CLIENT, VIP, 0xc0ffee02);

	assert_int_equal(t_route_servers(1), 0);
	int rc = t_run(f, fr, n);
	t_route_servers(0);
	assert_int_equal(rc, TC_ACT_REDIRECT);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_true(t_routed_ip4_ok(fr, f->out));
}

/* source-ip: no flow (its IKE went elsewhere, state expired) but the
 * persistence entry names the server. */
static void dnat_follows_persistence(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	int srv = client_up(f, SV4, CLIENT, VIP, 0x1002);
	struct flow_key k;

	memset(&k, 0, sizeof(k));
	k.svc_id = SV4;
	k.cport = k.vport = 4500;
	t_addr(CLIENT, &k.client);
	assert_int_equal(bpf_map_delete_elem(bpf_engine_map_fd(f->e, "flow_map"), &k), 0);
	size_t n = t_raw_esp(fr, CLIENT, VIP, 0xc0ffee02);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_PERSIST), 1);
}

/* source-ip, nothing known: the Maglev slot of the client address, where
 * that client's IKE_SA_INIT goes too. Learns nothing. */
static void unknown_source_ip_fallback(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_raw_esp(fr, CLIENT, VIP, 0xc0ffee03);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	int got = t_dst_server(f, SV4);
	assert_true(got >= 0);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FALLBACK), 1);
	assert_int_equal(t_map_count(f, "flow_map", sizeof(struct flow_key)), 0);
	assert_int_equal(t_map_count(f, "persist_map", sizeof(struct persist_key)), 0);
	n = t_sa_init(fr, CLIENT, 500, VIP, 0x1003);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), got);
}

/* ike mode: the ESP SPI range names the server; without a label or a
 * flow nothing can (the SA was placed by its SPIi): a counted drop. */
static void ike_mode_label_and_unknown(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_raw_esp(fr, CLIENT, VIP_IKE, T_ESP_MIN(2) + 5);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SIKE), 2);
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_STEER_LABEL), 1);

	n = t_raw_esp(fr, CLIENT, VIP_IKE, 0xd0000001);
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SIKE, IKE_DROP_ESP_UNKNOWN), 1);
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_FWD), 1);
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_ESP_RAW), 2);

	/* once the client's IKE flow exists, its raw ESP follows it */
	uint64_t spi_r = T_LABEL(1) | 0x99;
	n = t_auth(fr, CLIENT, 4500, VIP_IKE, 0x2001, spi_r, 300);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SIKE), 1);
	n = t_raw_esp(fr, CLIENT, VIP_IKE, 0xd0000001);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SIKE), 1);
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_STEER_FLOW), 1);
}

/* dsr: the VIP stays the destination, nothing in the IP header changes. */
static void dsr_keeps_vip(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];

	client_up(f, SDSR, CLIENT, VIP_DSR, 0x3001);
	size_t n = t_raw_esp(fr, CLIENT, VIP_DSR, 0xc0ffee04);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_memory_equal(f->out + PKT_ETH_LEN, fr + PKT_ETH_LEN, n - PKT_ETH_LEN);
	assert_int_equal(t_ctr(f, SDSR, SVC_CTR_ESP_RAW), 1);
	assert_int_equal(t_ctr(f, SDSR, SVC_CTR_STEER_FLOW), 1);
	assert_int_equal(t_ctr(f, SDSR, SVC_CTR_FIB_PASS), 3);

	/* the server's own raw ESP from the VIP, on the servers' side: not a
	 * spoof, left to the kernel */
	n = t_raw_esp(fr, VIP_DSR, CLIENT, 0xc0ffee05);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_memory_equal(f->out, fr, n);
	assert_int_equal(t_drop(f, SDSR, IKE_DROP_SPOOFED_REPLY), 0);
}

/* A dnat server's raw ESP to its client leaves with the VIP as source. */
static void dnat_reply_source_rewritten(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	struct ikelb_addr a, vip;
	size_t n = t_raw_esp(fr, "198.51.100.12", CLIENT, 0xc0ffee06);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	t_frame_src(f->out, &a);
	t_addr(VIP, &vip);
	assert_true(ikelb_addr_eq(&a, &vip));
	esp_payload_kept(f, fr, n);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_REPLY), 1);

	/* from the public side it is a spoof */
	assert_int_equal(bpf_engine_set_iface_roles(f->e, 1, IFACE_R_PUBLIC), 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_SPOOFED_REPLY), 1);
}

static void malformed_and_not_ours(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_raw_esp(fr, CLIENT, VIP, 200); /* reserved SPI */

	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_RESERVED_SPI), 1);

	/* shorter than an ESP header: the IP length says 6 bytes */
	n = t_raw_esp(fr, CLIENT, VIP, 0xc0ffee07);
	fr[PKT_ETH_LEN + 2] = 0;
	fr[PKT_ETH_LEN + 3] = PKT_IP4_LEN + 6;
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_MALFORMED_IP), 1);

	/* ESP between two other hosts: untouched, uncounted */
	n = t_raw_esp(fr, CLIENT, "203.0.113.99", 0xc0ffee08);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_memory_equal(f->out, fr, n);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_RX), 2);
}

/* The XDP program passes raw ESP unchanged; tc then handles it. */
static void xdp_passes_to_tc(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_raw_esp(fr, CLIENT, VIP, 0xc0ffee09);

	assert_int_equal(t_run_xdp(f, fr, n), XDP_PASS);
	assert_memory_equal(f->out, fr, n);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_RX), 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_true(t_dst_server(f, SV4) >= 0);
}

/* A fragmented raw ESP datagram: the first fragment is steered (its ESP
 * header is there), the later one follows it to the same server. */
static void fragments_follow(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], later[PKT_MAX];
	int srv = client_up(f, SV4, CLIENT, VIP, 0x1004);
	size_t n = t_raw_esp(fr, CLIENT, VIP, 0xc0ffee0b);
	uint8_t *ip = fr + PKT_ETH_LEN;

	/* later fragment: the same header, offset 8 bytes (1 unit), last */
	memcpy(later, fr, n);
	later[PKT_ETH_LEN + 6] = 0x00;
	later[PKT_ETH_LEN + 7] = 0x01;
	ip[6] = 0x20; /* MF on the first */
	for (int k = 0; k < 2; k++) {
		uint8_t *h = k ? later + PKT_ETH_LEN : ip;
		h[10] = h[11] = 0;
		uint16_t c = (uint16_t)~t_fold(t_sum(h, PKT_IP4_LEN, 0));
		h[10] = (uint8_t)(c >> 8);
		h[11] = (uint8_t)c;
	}
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_int_equal(t_run(f, later, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_true(t_ip4_csum_ok(f->out + PKT_ETH_LEN));
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_FRAGMENT), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_ESP_RAW), 1);
}

/* IPv6: ESP as the next header, dnat rewrites the destination. */
static void ipv6_dnat(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_raw_esp(fr, CLIENT6, VIP6, 0xc0ffee0a);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_true(t_dst_server(f, SV6) >= 0);
	esp_payload_kept(f, fr, n);
	assert_int_equal(t_ctr(f, SV6, SVC_CTR_ESP_RAW), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(dnat_follows_flow, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(dnat_routed_hop_keeps_protocol, t_cm_setup,
						t_cm_teardown),
		cmocka_unit_test_setup_teardown(dnat_follows_persistence, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(unknown_source_ip_fallback, t_cm_setup,
						t_cm_teardown),
		cmocka_unit_test_setup_teardown(ike_mode_label_and_unknown, t_cm_setup,
						t_cm_teardown),
		cmocka_unit_test_setup_teardown(dsr_keeps_vip, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(dnat_reply_source_rewritten, t_cm_setup,
						t_cm_teardown),
		cmocka_unit_test_setup_teardown(malformed_and_not_ours, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(xdp_passes_to_tc, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(fragments_follow, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(ipv6_dnat, t_cm_setup, t_cm_teardown),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
