/* BPF data path, the forwarded bytes (ikelb_fwd.h, fwd): with a FIB
 * answer a datagram to a dnat VIP leaves rewritten in place, byte by
 * byte: destination = the real server, TTL / hop limit - 1, both MACs from
 * the FIB, a valid IPv4 header checksum and UDP checksum, every other byte
 * as it came. IPv4 and IPv6; odd shapes (IP options, a payload shorter
 * than the 32-byte peek, UDP checksum 0) and a reply (source rewritten)
 * take the same path. One engine for the whole group: each test uses its
 * own client. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bpf_test_util.h"

#define VIP4 "203.0.113.10"
#define VIP6 "2001:db8:100::10"
#define GW_MAC_LAST 0xfe /* next hop toward the clients (replies) */

static int group_setup(void **state)
{
	if (t_route_all() != 0)
		return -1;
	return t_cm_setup(state);
}

static int group_teardown(void **state)
{
	t_cm_teardown(state);
	return t_route_servers(0);
}

/* ikr0's MAC (an ioctl: /sys shows the namespace it was mounted in). */
static void ikr0_mac(uint8_t mac[6])
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "ikr0");
	assert_int_equal(ioctl(fd, SIOCGIFHWADDR, &ifr), 0);
	close(fd);
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
}

/* Ethernet: next hop's MAC (02:00:00:00:fam:last), ikr0's as source, the
 * EtherType kept. */
static void check_l2(const uint8_t *in, const uint8_t *out, uint8_t fam, uint8_t last)
{
	const uint8_t dmac[6] = { 2, 0, 0, 0, fam, last };
	uint8_t smac[6];

	ikr0_mac(smac);
	assert_memory_equal(out, dmac, 6);
	assert_memory_equal(out + 6, smac, 6);
	assert_memory_equal(out + 12, in + 12, 2);
}

/* Every byte after the MACs equal except the n_ch (offset, length) pairs
 * in ch, and the byte at ttl one less. */
struct t_span {
	size_t off, len;
};

static void check_rest(const uint8_t *in, const uint8_t *out, size_t n, const struct t_span *ch,
		       int n_ch, size_t ttl)
{
	uint8_t tmp[PKT_MAX + 64];

	memcpy(tmp, out, n);
	for (int i = 0; i < n_ch; i++)
		memcpy(tmp + ch[i].off, in + ch[i].off, ch[i].len);
	assert_int_equal(out[ttl], in[ttl] - 1);
	tmp[ttl] = in[ttl];
	assert_memory_equal(tmp + 12, in + 12, n - 12);
}

/* The UDP header of an output frame (IPv4 with options too). */
static const uint8_t *out_udp(const uint8_t *fr, size_t *ulen)
{
	const uint8_t *ip = fr + PKT_ETH_LEN;
	size_t hl = (ip[0] >> 4) == 6 ? PKT_IP6_LEN : (size_t)(ip[0] & 15) * 4;
	const uint8_t *u = ip + hl;

	*ulen = (size_t)u[4] << 8 | u[5];
	return u;
}

/* Client -> VIP (dnat) forwarded in place to the chosen server of svc:
 * changed are the destination, TTL / hop limit, the IPv4 header checksum
 * and the UDP checksum (both valid), nothing else. */
static void check_dnat(struct tfx *f, int svc, const uint8_t *in, size_t n)
{
	int srv = t_dst_server(f, svc);
	size_t ulen;

	assert_true(srv >= 0);
	assert_int_equal(f->out_len, n);
	const uint8_t *u = out_udp(f->out, &ulen);
	size_t uo = (size_t)(u - f->out);

	assert_true(t_udp_csum_ok(f->out + PKT_ETH_LEN, u, ulen));
	if (svc == SV6) {
		const struct t_span ch[] = { { PKT_ETH_LEN + 24, 16 }, { uo + 6, 2 } };

		check_l2(in, f->out, 6, (uint8_t)(0x11 + srv));
		assert_memory_equal(f->out + PKT_ETH_LEN + 24, f->srv[svc][srv].addr.b, 16);
		check_rest(in, f->out, n, ch, 2, PKT_ETH_LEN + 7);
		return;
	}
	const struct t_span ch[] = { { PKT_ETH_LEN + 16, 4 }, { PKT_ETH_LEN + 10, 2 }, { uo + 6, 2 } };

	check_l2(in, f->out, 3, (uint8_t)(0x11 + srv));
	assert_true(t_ip4_csum_ok(f->out + PKT_ETH_LEN));
	assert_memory_equal(f->out + PKT_ETH_LEN + 16, f->srv[svc][srv].addr.b + 12, 4);
	check_rest(in, f->out, n, ch, 3, PKT_ETH_LEN + 8);
}

static void esp_in_udp_v4(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_esp(fr, "198.18.0.1", 4500, VIP4, 0xc0ffee01);

	assert_true(t_frame_csum_ok(fr, n));
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	check_dnat(f, SV4, fr, n);
}

static void esp_in_udp_v6(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_esp(fr, "2001:db8:300::1", 4500, VIP6, 0xc0ffee02);

	assert_true(t_frame_csum_ok(fr, n));
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	check_dnat(f, SV6, fr, n);
}

static void ike_sa_init_v4_v6(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, "198.18.0.2", 500, VIP4, 0x1234567890abcdefULL);

	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	check_dnat(f, SV4, fr, n);
	n = t_sa_init(fr, "2001:db8:300::2", 500, VIP6, 0x2234567890abcdefULL);
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	check_dnat(f, SV6, fr, n);
}

/* 1 byte of payload: the peek is not in the frame as a whole, so it takes
 * bpf_skb_load_bytes; forwarded the same. */
static void keepalive_short_peek(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	uint64_t ka = t_ctr(f, SV4, SVC_CTR_KEEPALIVE);
	size_t n = t_keepalive(fr, "198.18.0.3", 4500, VIP4);

	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_KEEPALIVE), ka + 1);
	check_dnat(f, SV4, fr, n);
}

/* IPv4 header with 4 bytes of options (NOPs): the update covers the
 * fixed part; the options stay and the checksum over all 24 bytes holds. */
static void ip_options_v4(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], op[PKT_MAX];
	size_t n = t_esp(fr, "198.18.0.4", 4500, VIP4, 0xc0ffee04);
	uint8_t *ip = op + PKT_ETH_LEN;

	memcpy(op, fr, PKT_ETH_LEN + PKT_IP4_LEN);
	memset(ip + PKT_IP4_LEN, 1, 4);
	memcpy(ip + PKT_IP4_LEN + 4, fr + PKT_ETH_LEN + PKT_IP4_LEN, n - PKT_ETH_LEN - PKT_IP4_LEN);
	n += 4;
	ip[0] = 0x46;
	ip[2] = (uint8_t)((n - PKT_ETH_LEN) >> 8);
	ip[3] = (uint8_t)(n - PKT_ETH_LEN);
	ip[10] = ip[11] = 0;
	uint16_t c = (uint16_t)~t_fold(t_sum(ip, 24, 0));

	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	assert_true(t_ip4_csum_ok(ip));
	assert_int_equal(t_run(f, op, n), TC_ACT_REDIRECT);
	check_dnat(f, SV4, op, n);
	assert_memory_equal(f->out + PKT_ETH_LEN + PKT_IP4_LEN, ip + PKT_IP4_LEN, 4);
}

/* An IPv4 UDP checksum of 0 means "none" and stays 0. */
static void udp_csum_zero_v4(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_esp(fr, "198.18.0.5", 4500, VIP4, 0xc0ffee05);
	size_t uo = PKT_ETH_LEN + PKT_IP4_LEN;

	fr[uo + 6] = fr[uo + 7] = 0;
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	assert_int_equal(f->out[uo + 6], 0);
	assert_int_equal(f->out[uo + 7], 0);
	check_dnat(f, SV4, fr, n);
}

/* Server -> client: the source becomes the VIP, routed toward the
 * clients' gateway, checksums valid. */
static void reply_v4(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	char real[INET6_ADDRSTRLEN];
	size_t n, ulen;

	n = t_esp(fr, "198.18.0.6", 4500, VIP4, 0xc0ffee06);
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	int srv = t_dst_server(f, SV4);
	assert_true(srv >= 0);
	assert_non_null(inet_ntop(AF_INET, f->srv[SV4][srv].addr.b + 12, real, sizeof(real)));
	n = t_esp(fr, real, 4500, "198.18.0.6", 0x0eef0c06);
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	assert_int_equal(f->out_len, n);
	check_l2(fr, f->out, 3, GW_MAC_LAST);
	assert_true(t_ip4_csum_ok(f->out + PKT_ETH_LEN));
	const uint8_t *u = out_udp(f->out, &ulen);
	assert_true(t_udp_csum_ok(f->out + PKT_ETH_LEN, u, ulen));
	struct ikelb_addr vip;
	t_frame_src(f->out, &vip);
	assert_true(ikelb_addr_eq(&vip, &f->svc[SV4].vip));
	const struct t_span ch[] = { { PKT_ETH_LEN + 12, 4 }, { PKT_ETH_LEN + 10, 2 },
				     { (size_t)(u - f->out) + 6, 2 } };
	check_rest(fr, f->out, n, ch, 3, PKT_ETH_LEN + 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(esp_in_udp_v4),
		cmocka_unit_test(esp_in_udp_v6),
		cmocka_unit_test(ike_sa_init_v4_v6),
		cmocka_unit_test(keepalive_short_peek),
		cmocka_unit_test(ip_options_v4),
		cmocka_unit_test(udp_csum_zero_v4),
		cmocka_unit_test(reply_v4),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
