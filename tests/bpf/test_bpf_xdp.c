/* XDP hot path (src/bpf/ikelb_xdp.h): what it forwards itself (dnat, FIB
 * complete: rewrite, checksums, TTL, MACs, redirect, state and counters
 * exactly once), and everything it must hand to the tc program untouched
 * and without having written state or counters (no route, TTL 1, dsr,
 * fragments, replies, other traffic). Malformed service packets are
 * counted and dropped as in tc. Plus the bpf.attach config key and the
 * engine's XDP attach / detach on a veth pair. */
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <linux/if_link.h>

#include "bpf_test_util.h"

#define CLIENT4 "203.0.113.77"
#define CLIENT6 "2001:db8:300::77"

/* Run one frame through the XDP program; ifindex 0: no ingress device. */
static int x_run(struct tfx *f, const uint8_t *frame, size_t len, int ifindex)
{
	struct xdp_md ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.data_end = (uint32_t)len;
	ctx.ingress_ifindex = (uint32_t)ifindex;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (uint32_t)len,
		    .data_out = f->out, .data_size_out = sizeof(f->out), .repeat = 1);
	if (ifindex) {
		o.ctx_in = &ctx;
		o.ctx_size_in = sizeof(ctx);
	}
	if (bpf_prog_test_run_opts(bpf_engine_xdp_prog_fd(f->e), &o) != 0) {
		fprintf(stderr, "xdp test_run: %s\n", strerror(errno));
		return -1000;
	}
	f->out_len = o.data_size_out;
	return (int)o.retval;
}

/* Frame passed on unchanged, nothing learned, nothing counted. */
static void x_passed_clean(struct tfx *f, const uint8_t *fr, size_t n, int s)
{
	assert_int_equal(f->out_len, n);
	assert_memory_equal(f->out, fr, n);
	assert_int_equal(t_map_count(f, "halfopen_map", sizeof(struct sa_key)), 0);
	assert_int_equal(t_map_count(f, "flow_map", sizeof(struct flow_key)), 0);
	assert_int_equal(t_ctr(f, s, SVC_CTR_RX), 0);
	assert_int_equal(t_ctr(f, s, SVC_CTR_FWD), 0);
}

/* No route in the test netns: XDP passes, then tc decides and counts once. */
static void no_route_left_to_tc(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, CLIENT4, 500, t_vip[SV4], 0x1111);

	assert_int_equal(x_run(f, fr, n, 1), XDP_PASS);
	x_passed_clean(f, fr, n, SV4);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_map_count(f, "halfopen_map", sizeof(struct sa_key)), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_RX), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_FIB_PASS), 1);
}

/* Not ours, replies, dsr, fragments: untouched, nothing counted. */
static void others_untouched(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], pl[64];
	size_t pn = pkt_esp(pl, sizeof(pl), 0x5000, 1, 16);
	size_t n = t_udp(fr, CLIENT4, 4500, "198.18.0.1", 4500, pl, pn);

	assert_int_equal(x_run(f, fr, n, 1), XDP_PASS);
	x_passed_clean(f, fr, n, SV4);
	n = t_udp(fr, t_real[SV4][0], 4500, CLIENT4, 4500, pl, pn); /* reply */
	assert_int_equal(x_run(f, fr, n, 1), XDP_PASS);
	x_passed_clean(f, fr, n, SV4);
	n = t_sa_init(fr, CLIENT4, 500, t_vip[SDSR], 0x2222);
	assert_int_equal(x_run(f, fr, n, 1), XDP_PASS);
	x_passed_clean(f, fr, n, SDSR);
	n = t_sa_init(fr, CLIENT4, 500, t_vip[SV4], 0x3333);
	fr[PKT_ETH_LEN + 6] |= 0x20; /* MF: a first fragment */
	assert_int_equal(x_run(f, fr, n, 1), XDP_PASS);
	x_passed_clean(f, fr, n, SV4);
	n = t_sa_init(fr, CLIENT4, 500, t_vip[SV4], 0x3333);
	fr[n++] = 0; /* trailing byte after the datagram (padding): tc's */
	assert_int_equal(x_run(f, fr, n, 1), XDP_PASS);
	x_passed_clean(f, fr, n, SV4);
}

/* A broken IKE header for a service: counted and dropped as tc does. */
static void malformed_dropped(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, CLIENT4, 500, t_vip[SV4], 0);

	assert_int_equal(x_run(f, fr, n, 1), XDP_DROP);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_ZERO_SPI), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_RX), 1);
	uint8_t pl[1] = { 0x7f }; /* not a keepalive */
	n = t_udp(fr, CLIENT4, 4500, t_vip[SV4], 4500, pl, 1);
	assert_int_equal(x_run(f, fr, n, 1), XDP_DROP);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_BAD_KEEPALIVE), 1);
	assert_int_equal(t_map_count(f, "halfopen_map", sizeof(struct sa_key)), 0);
}

static void neigh_setup(uint8_t ifmac[6])
{
	assert_int_equal(system("ip link add ikt0 type veth peer name ikt1 && ip link set ikt0 up && "
				"ip link set ikt1 up && ip addr add 198.51.100.1/24 dev ikt0 && "
				"ip -6 addr add 2001:db8:200::1/64 dev ikt0 nodad && "
				"sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"),
			 0);
	for (int i = 0; i < T_NSRV; i++) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd),
			 "ip neigh replace %s lladdr 02:00:00:00:01:%02x dev ikt0 nud permanent && "
			 "ip -6 neigh replace %s lladdr 02:00:00:00:02:%02x dev ikt0 nud permanent",
			 t_real[SV4][i], i, t_real[SV6][i], i);
		assert_int_equal(system(cmd), 0);
	}
	struct ifreq ifr;
	int sk = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(sk >= 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "ikt0");
	assert_int_equal(ioctl(sk, SIOCGIFHWADDR, &ifr), 0);
	close(sk);
	memcpy(ifmac, ifr.ifr_hwaddr.sa_data, 6);
}

/* Forwarded by XDP: destination, MACs, TTL - 1, both checksums. */
static int x_forwarded(struct tfx *f, const uint8_t *fr, size_t n, int s, const uint8_t *ifmac)
{
	int v6 = s == SV6;
	int srv = t_dst_server(f, s);

	assert_true(srv >= 0);
	assert_int_equal(f->out_len, n);
	assert_int_equal(f->out[4], v6 ? 0x02 : 0x01);
	assert_int_equal(f->out[5], srv);
	assert_memory_equal(f->out + 6, ifmac, 6);
	size_t ttl = PKT_ETH_LEN + (v6 ? 7 : 8);
	assert_int_equal(f->out[ttl], fr[ttl] - 1);
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	return srv;
}

/* FIB complete: IKE_SA_INIT, IKE_AUTH and the ESP that follows the flow
 * the IKE_AUTH taught, all redirected by XDP alone; IPv6 too; a zero IPv4
 * UDP checksum stays zero; TTL 1 goes to tc untouched. */
static void fib_redirect(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], ifmac[6];

	neigh_setup(ifmac);
	int ifx = (int)if_nametoindex("ikt0");
	assert_true(ifx > 0);

	size_t n = t_sa_init(fr, CLIENT4, 500, t_vip[SV4], 0x4444);
	assert_int_equal(x_run(f, fr, n, ifx), XDP_REDIRECT);
	int srv = x_forwarded(f, fr, n, SV4, ifmac);
	assert_int_equal(t_map_count(f, "halfopen_map", sizeof(struct sa_key)), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_NEW), 1);
	/* the server's answer (tc, reply path) names the SPIr that promotes */
	assert_int_equal(t_init_resp(f, SV4, srv, CLIENT4, 500, 0x4444, 0x5555), TC_ACT_OK);

	n = t_auth(fr, CLIENT4, 4501, t_vip[SV4], 0x4444, 0x5555, 200);
	assert_int_equal(x_run(f, fr, n, ifx), XDP_REDIRECT);
	assert_int_equal(x_forwarded(f, fr, n, SV4, ifmac), srv);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_SA), 1);
	assert_int_equal(t_map_count(f, "flow_map", sizeof(struct flow_key)), 1);

	n = t_esp(fr, CLIENT4, 4501, t_vip[SV4], 0xabcdef01);
	assert_int_equal(x_run(f, fr, n, ifx), XDP_REDIRECT);
	assert_int_equal(x_forwarded(f, fr, n, SV4, ifmac), srv);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FLOW), 1);

	fr[PKT_ETH_LEN + PKT_IP4_LEN + 6] = fr[PKT_ETH_LEN + PKT_IP4_LEN + 7] = 0;
	assert_int_equal(x_run(f, fr, n, ifx), XDP_REDIRECT);
	assert_int_equal(f->out[PKT_ETH_LEN + PKT_IP4_LEN + 6], 0);
	assert_int_equal(f->out[PKT_ETH_LEN + PKT_IP4_LEN + 7], 0);
	assert_int_equal(x_forwarded(f, fr, n, SV4, ifmac), srv);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_RX), 4);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_FWD), 4);

	n = t_sa_init(fr, CLIENT6, 500, t_vip[SV6], 0x6666);
	assert_int_equal(x_run(f, fr, n, ifx), XDP_REDIRECT);
	x_forwarded(f, fr, n, SV6, ifmac);
	assert_int_equal(t_ctr(f, SV6, SVC_CTR_FWD), 1);

	n = t_sa_init(fr, CLIENT4, 500, t_vip[SV4], 0x7777);
	fr[PKT_ETH_LEN + 8] = 1;
	fr[PKT_ETH_LEN + 10] = fr[PKT_ETH_LEN + 11] = 0;
	uint16_t c = (uint16_t)~t_fold(t_sum(fr + PKT_ETH_LEN, 20, 0));
	fr[PKT_ETH_LEN + 10] = (uint8_t)(c >> 8);
	fr[PKT_ETH_LEN + 11] = (uint8_t)c;
	assert_int_equal(x_run(f, fr, n, ifx), XDP_PASS);
	assert_memory_equal(f->out, fr, n);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_RX), 4);
	assert_int_equal(system("ip link del ikt0"), 0);
}

/* bpf.attach: xdp puts the program in front of tc and detach removes both;
 * a tc-only start removes an XDP program a crashed xdp-mode daemon left. */
static void engine_attach_xdp(void **state)
{
	struct tfx *f = *state;

	assert_int_equal(system("ip link del ikt0 2>/dev/null; ip link add ikt0 type veth peer name ikt1"), 0);
	f->cfg.bpf_attach = CFG_BPF_ATTACH_XDP;
	f->cfg.ninterfaces = 1;
	snprintf(f->cfg.interfaces[0], sizeof(f->cfg.interfaces[0]), "ikt0");
	bpf_engine_close(f->e, false);
	assert_int_equal(bpf_engine_open(&f->e, &f->cfg, &f->log), 0);
	assert_int_equal(bpf_engine_attach(f->e, &f->cfg), 0);
	assert_int_equal(system("ip link show dev ikt0 | grep -q 'prog/xdp'"), 0);
	assert_int_equal(system("tc filter show dev ikt0 ingress | grep -q ikelb_tc"), 0);
	bpf_engine_detach(f->e);
	assert_int_not_equal(system("ip link show dev ikt0 | grep -q 'prog/xdp'"), 0);
	assert_int_not_equal(system("tc filter show dev ikt0 ingress | grep -q ikelb_tc"), 0);

	/* A daemon in xdp mode dies; the next one runs with tc only. */
	assert_int_equal(bpf_engine_attach(f->e, &f->cfg), 0);
	bpf_engine_close(f->e, false);
	assert_int_equal(system("ip link show dev ikt0 | grep -q 'prog/xdp'"), 0);
	f->cfg.bpf_attach = CFG_BPF_ATTACH_TC;
	assert_int_equal(bpf_engine_open(&f->e, &f->cfg, &f->log), 0);
	assert_int_equal(bpf_engine_attach(f->e, &f->cfg), 0);
	assert_int_not_equal(system("ip link show dev ikt0 | grep -q 'prog/xdp'"), 0);
	assert_int_equal(system("tc filter show dev ikt0 ingress | grep -q ikelb_tc"), 0);
	bpf_engine_detach(f->e);
	assert_int_equal(system("ip link del ikt0"), 0);
}

#define X_SVC "interfaces: [eth0]\nservices:\n  - { name: a, vip: 203.0.113.10, servers: [{ name: v, address: 198.19.0.11 }] }\n"

static int x_load(const char *y, struct cfg *c, struct cfg_errors *e)
{
	memset(e, 0, sizeof(*e));
	return cfg_load_string("t.yaml", y, strlen(y), c, e);
}

static void config_key(void **state)
{
	(void)state;
	struct cfg c;
	struct cfg_errors e;

	assert_int_equal(x_load("bpf: { attach: xdp }\n" X_SVC, &c, &e), 0);
	assert_int_equal(c.bpf_attach, CFG_BPF_ATTACH_XDP);
	cfg_free(&c);
	assert_int_equal(x_load("bpf: { attach: tc }\n" X_SVC, &c, &e), 0);
	assert_int_equal(c.bpf_attach, CFG_BPF_ATTACH_TC);
	cfg_free(&c);
	assert_int_equal(x_load(X_SVC, &c, &e), 0);
	assert_int_equal(c.bpf_attach, CFG_BPF_ATTACH_TC);
	cfg_free(&c);
	assert_int_not_equal(x_load("bpf: { attach: native }\n" X_SVC, &c, &e), 0);
	assert_true(e.n >= 1);
	assert_non_null(strstr(e.v[0].msg, "attach"));
	cfg_free(&c);
	cfg_errors_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(no_route_left_to_tc, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(others_untouched, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(malformed_dropped, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(fib_redirect, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(engine_attach_xdp, t_cm_setup, t_cm_teardown),
		cmocka_unit_test(config_key),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
