/* BPF data path: IPv6, IP fragments (both families, both directions), dsr,
 * and the FIB redirect path (a veth pair with permanent neighbours in
 * the test's own network namespace). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bpf_test_util.h"

#define CLIENT4 "203.0.113.77"
#define CLIENT6 "2001:db8:300::77"
#define STRANGER4 "203.0.113.79"
#define STRANGER6 "2001:db8:300::79"


/* Split an unfragmented Ethernet+IP+UDP frame into two fragments; the
 * first carries `cut` bytes of the IP payload (multiple of 8). */
static void t_fragment(const uint8_t *in, size_t len, size_t cut, uint32_t id, uint8_t *o1,
		       size_t *l1, uint8_t *o2, size_t *l2)
{
	const uint8_t *ip = in + PKT_ETH_LEN;
	int v6 = (ip[0] >> 4) == 6;
	size_t hl = v6 ? PKT_IP6_LEN : 20;
	const uint8_t *pl = ip + hl;
	size_t plen = len - PKT_ETH_LEN - hl;
	size_t fh = v6 ? 8 : 0;

	assert_true(cut % 8 == 0 && cut < plen);
	for (int k = 0; k < 2; k++) {
		uint8_t *o = k ? o2 : o1;
		size_t off = k ? cut : 0, n = k ? plen - cut : cut;
		memcpy(o, in, PKT_ETH_LEN + hl);
		uint8_t *oip = o + PKT_ETH_LEN;
		memcpy(oip + hl + fh, pl + off, n);
		if (v6) {
			uint16_t plen6 = (uint16_t)(n + 8);
			oip[4] = (uint8_t)(plen6 >> 8);
			oip[5] = (uint8_t)plen6;
			oip[6] = 44;
			uint8_t *f = oip + hl;
			f[0] = 17;
			f[1] = 0;
			uint16_t fo = (uint16_t)(off | (k ? 0 : 1));
			f[2] = (uint8_t)(fo >> 8);
			f[3] = (uint8_t)fo;
			f[4] = (uint8_t)(id >> 24);
			f[5] = (uint8_t)(id >> 16);
			f[6] = (uint8_t)(id >> 8);
			f[7] = (uint8_t)id;
		} else {
			uint16_t tot = (uint16_t)(20 + n);
			oip[2] = (uint8_t)(tot >> 8);
			oip[3] = (uint8_t)tot;
			oip[4] = (uint8_t)(id >> 8);
			oip[5] = (uint8_t)id;
			uint16_t fo = (uint16_t)((off / 8) | (k ? 0 : 0x2000));
			oip[6] = (uint8_t)(fo >> 8);
			oip[7] = (uint8_t)fo;
			oip[10] = oip[11] = 0;
			uint16_t c = (uint16_t)~t_fold(t_sum(oip, 20, 0));
			oip[10] = (uint8_t)(c >> 8);
			oip[11] = (uint8_t)c;
		}
		*(k ? l2 : l1) = PKT_ETH_LEN + hl + fh + n;
	}
}

/* Reassemble two rewritten fragments and check the UDP checksum of the
 * whole datagram (and the IPv4 header checksums of both). */
static int t_reassembled_ok(const uint8_t *f1, size_t l1, const uint8_t *f2, size_t l2)
{
	uint8_t buf[PKT_MAX * 2];
	const uint8_t *ip = f1 + PKT_ETH_LEN;
	int v6 = (ip[0] >> 4) == 6;
	size_t hl = v6 ? PKT_IP6_LEN : 20, fh = v6 ? 8 : 0;
	size_t n1 = l1 - PKT_ETH_LEN - hl - fh, n2 = l2 - PKT_ETH_LEN - hl - fh;

	if (!v6 && (!t_ip4_csum_ok(ip) || !t_ip4_csum_ok(f2 + PKT_ETH_LEN)))
		return 0;
	if (memcmp(ip + (v6 ? 8 : 12), f2 + PKT_ETH_LEN + (v6 ? 8 : 12), v6 ? 32 : 8))
		return 0; /* both fragments must carry the same addresses */
	memcpy(buf, ip, hl);
	memcpy(buf + hl, ip + hl + fh, n1);
	memcpy(buf + hl + n1, f2 + PKT_ETH_LEN + hl + fh, n2);
	const uint8_t *udp = buf + hl;
	size_t ulen = (size_t)udp[4] << 8 | udp[5];
	return ulen == n1 + n2 && t_udp_csum_ok(buf, udp, ulen);
}

static void v6_client_cycle(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	const char *vip = t_vip[SV6];
	size_t n = t_sa_init(fr, CLIENT6, 500, vip, 0x6666);

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	int srv = t_dst_server(f, SV6);
	assert_true(srv >= 0);
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	assert_int_equal(t_init_resp(f, SV6, srv, CLIENT6, 500, 0x6666, 0x7777), TC_ACT_OK);
	n = t_auth(fr, CLIENT6, 4501, vip, 0x6666, 0x7777, 500);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV6), srv);
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	n = t_esp(fr, CLIENT6, 4501, vip, 0x12345678);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV6), srv);
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	assert_int_equal(t_ctr(f, SV6, SVC_CTR_STEER_FLOW), 1);

	/* reply from the server */
	uint8_t pl[64];
	size_t pn = pkt_esp(pl, sizeof(pl), 0x87654321, 9, 32);
	n = t_udp(fr, t_real[SV6][srv], 4500, CLIENT6, 4501, pl, pn);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	struct ikelb_addr a, v;
	t_frame_src(f->out, &a);
	t_addr(vip, &v);
	assert_true(ikelb_addr_eq(&a, &v));
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	assert_int_equal(t_ctr(f, SV6, SVC_CTR_REPLY), 2); /* the IKE_SA_INIT response too */

	/* truncated IPv6 payload to the VIP */
	n = t_sa_init(fr, CLIENT6, 500, vip, 0x6666);
	fr[PKT_ETH_LEN + 4] = 0x7f;
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV6, IKE_DROP_MALFORMED_IP), 1);
}

static void fragments_follow_first(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], a[PKT_MAX], b[PKT_MAX], ra[PKT_MAX];
	size_t la, lb;
	const char *clients[2] = { CLIENT4, CLIENT6 };
	const char *strangers[2] = { STRANGER4, STRANGER6 };
	const int svcs[2] = { SV4, SV6 };

	for (int k = 0; k < 2; k++) {
		int s = svcs[k];
		size_t n = t_auth(fr, clients[k], 4500, t_vip[s], 0xf00d, 0xbeef, 1400);
		t_fragment(fr, n, 1024, 0x1234 + (uint32_t)k, a, &la, b, &lb);
		assert_int_equal(t_run(f, a, la), TC_ACT_OK);
		int srv = t_dst_server(f, s);
		assert_true(srv >= 0);
		memcpy(ra, f->out, f->out_len);
		size_t lra = f->out_len;
		assert_int_equal(t_run(f, b, lb), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, s), srv);
		assert_true(t_reassembled_ok(ra, lra, f->out, f->out_len));
		assert_int_equal(t_ctr(f, s, SVC_CTR_FRAGMENT), 1);

		/* a later fragment nobody announced, from a client never
		 * heard: counted drop */
		n = t_auth(fr, strangers[k], 4500, t_vip[s], 0xf00e, 0xbeef, 1400);
		t_fragment(fr, n, 1024, 0x9999, a, &la, b, &lb);
		assert_int_equal(t_run(f, b, lb), TC_ACT_SHOT);
		assert_int_equal(t_drop(f, s, IKE_DROP_FRAGMENT), 1);
	}

	/* a fragmented reply (IKE_AUTH response with certificates) */
	uint8_t pl[PKT_MAX];
	size_t pn = pkt_ikev2_auth_natt(pl, sizeof(pl), 0xf00d, 0xbeef, 1, 1400);
	size_t n = t_udp(fr, t_real[SV4][1], 4500, CLIENT4, 4500, pl, pn);
	t_fragment(fr, n, 1024, 0x4321, a, &la, b, &lb);
	assert_int_equal(t_run(f, a, la), TC_ACT_OK);
	memcpy(ra, f->out, f->out_len);
	size_t lra = f->out_len;
	assert_int_equal(t_run(f, b, lb), TC_ACT_OK);
	struct ikelb_addr src, vip;
	t_frame_src(f->out, &src);
	t_addr(t_vip[SV4], &vip);
	assert_true(ikelb_addr_eq(&src, &vip));
	assert_true(t_reassembled_ok(ra, lra, f->out, f->out_len));
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_REPLY), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_FRAGMENT), 2);
}

/* Reordered on the way (issue #15: Windows-sized IKE_AUTH): a later
 * fragment that overtakes its first one follows the server of the
 * client's last IKE message, in both persistence modes and families; then
 * the first fragment goes there too and the datagram reassembles. Before
 * the hint, the later fragment was a counted drop, and so was every
 * retransmission reordered the same way. */
static void fragment_overtakes_first(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], a[PKT_MAX], b[PKT_MAX], rb[PKT_MAX];
	size_t la, lb;
	const char *clients[3] = { CLIENT4, "203.0.113.78", CLIENT6 };
	const int svcs[3] = { SV4, SIKE, SV6 };

	for (int k = 0; k < 3; k++) {
		int s = svcs[k];
		uint64_t spi = 0x5150 + (uint64_t)k;
		size_t n = t_sa_init(fr, clients[k], 500, t_vip[s], spi);

		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		int srv = t_dst_server(f, s);
		assert_true(srv >= 0);
		n = t_auth(fr, clients[k], 4500, t_vip[s], spi, 0xbeef, 1400);
		t_fragment(fr, n, 1024, 0x7000 + (uint32_t)k, a, &la, b, &lb);
		assert_int_equal(t_run(f, b, lb), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, s), srv);
		memcpy(rb, f->out, f->out_len);
		size_t lrb = f->out_len;
		assert_int_equal(t_run(f, a, la), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, s), srv);
		assert_true(t_reassembled_ok(f->out, f->out_len, rb, lrb));
		assert_int_equal(t_ctr(f, s, SVC_CTR_FRAGMENT), 1);
		assert_int_equal(t_drop(f, s, IKE_DROP_FRAGMENT), 0);
	}
}

static int ifindex_of(const char *name)
{
	return (int)if_nametoindex(name);
}

/* FIB success: MACs from the neighbour table, TTL - 1 (dnat), redirect;
 * dsr keeps the VIP and the TTL. Without a neighbour: handed to the kernel
 * and counted. */
static void fib_redirect_dnat_and_dsr(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];

	assert_int_equal(system("ip link add ikt0 type veth peer name ikt1 && ip link set ikt0 up && ip link set ikt1 up && "
				"ip addr add 198.51.100.1/24 dev ikt0 && "
				"ip -6 addr add 2001:db8:200::1/64 dev ikt0 nodad && "
				"sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"),
			 0);
	int ifx = ifindex_of("ikt0");
	assert_true(ifx > 0);

	/* dsr, no neighbour yet */
	size_t n = t_sa_init(fr, CLIENT4, 500, t_vip[SDSR], 0x1);
	assert_int_equal(t_run_if(f, fr, n, ifx), TC_ACT_OK);
	assert_memory_equal(f->out, fr, n);
	assert_int_equal(t_ctr(f, SDSR, SVC_CTR_FIB_PASS), 1);

	for (int i = 0; i < T_NSRV; i++) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd),
			 "ip neigh replace %s lladdr 02:00:00:00:01:%02x dev ikt0 nud permanent && "
			 "ip neigh replace %s lladdr 02:00:00:00:03:%02x dev ikt0 nud permanent && "
			 "ip -6 neigh replace %s lladdr 02:00:00:00:02:%02x dev ikt0 nud permanent",
			 t_real[SV4][i], i, t_real[SDSR][i], i, t_real[SV6][i], i);
		assert_int_equal(system(cmd), 0);
	}
	uint8_t ifmac[6];
	{
		/* sysfs still shows the host namespace: ask the kernel */
		struct ifreq ifr;
		int sk = socket(AF_INET, SOCK_DGRAM, 0);
		assert_true(sk >= 0);
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "ikt0");
		assert_int_equal(ioctl(sk, SIOCGIFHWADDR, &ifr), 0);
		close(sk);
		memcpy(ifmac, ifr.ifr_hwaddr.sa_data, 6);
	}

	assert_int_equal(t_run_if(f, fr, n, ifx), TC_ACT_REDIRECT);
	struct ikelb_addr d, vip;
	t_frame_dst(f->out, &d);
	t_addr(t_vip[SDSR], &vip);
	assert_true(ikelb_addr_eq(&d, &vip));
	assert_int_equal(f->out[0], 0x02);
	assert_int_equal(f->out[4], 0x03);
	assert_true(f->out[5] < T_NSRV);
	assert_memory_equal(f->out + 6, ifmac, 6);
	assert_int_equal(f->out[PKT_ETH_LEN + 8], fr[PKT_ETH_LEN + 8]); /* TTL kept */
	assert_memory_equal(f->out + 12, fr + 12, n - 12);

	/* dnat v4 */
	n = t_sa_init(fr, CLIENT4, 500, t_vip[SV4], 0x2);
	assert_int_equal(t_run_if(f, fr, n, ifx), TC_ACT_REDIRECT);
	int srv = t_dst_server(f, SV4);
	assert_true(srv >= 0);
	assert_int_equal(f->out[4], 0x01);
	assert_int_equal(f->out[5], srv);
	assert_int_equal(f->out[PKT_ETH_LEN + 8], fr[PKT_ETH_LEN + 8] - 1);
	assert_true(t_frame_csum_ok(f->out, f->out_len));

	/* dnat v6 */
	n = t_sa_init(fr, CLIENT6, 500, t_vip[SV6], 0x3);
	assert_int_equal(t_run_if(f, fr, n, ifx), TC_ACT_REDIRECT);
	srv = t_dst_server(f, SV6);
	assert_true(srv >= 0);
	assert_int_equal(f->out[4], 0x02);
	assert_int_equal(f->out[5], srv);
	assert_int_equal(f->out[PKT_ETH_LEN + 7], fr[PKT_ETH_LEN + 7] - 1);
	assert_true(t_frame_csum_ok(f->out, f->out_len));

	/* TTL 1: the kernel must answer with ICMP, we pass */
	n = t_sa_init(fr, CLIENT4, 500, t_vip[SV4], 0x2);
	fr[PKT_ETH_LEN + 8] = 1;
	fr[PKT_ETH_LEN + 10] = fr[PKT_ETH_LEN + 11] = 0;
	uint16_t c = (uint16_t)~t_fold(t_sum(fr + PKT_ETH_LEN, 20, 0));
	fr[PKT_ETH_LEN + 10] = (uint8_t)(c >> 8);
	fr[PKT_ETH_LEN + 11] = (uint8_t)c;
	assert_int_equal(t_run_if(f, fr, n, ifx), TC_ACT_OK);
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	assert_int_equal(system("ip link del ikt0"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(v6_client_cycle, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(fragments_follow_first, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(fragment_overtakes_first, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(fib_redirect_dnat_and_dsr, t_cm_setup, t_cm_teardown),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
