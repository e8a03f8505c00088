/* BPF data path edge cases (docs/bpf-engine.md): IPv6 with IPv4-mapped
 * addresses never matches IPv4 services or state; an 802.1Q-tagged frame
 * is left alone; a datagram whose TTL / hop limit would expire is left to
 * the kernel and never counted as forwarded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"

#define CLIENT "203.0.113.77"
#define CLIENT6 "2001:db8:300::77"

/* IPv4 lives in ikelb's addresses as ::ffff:a.b.c.d, so an IPv6 packet to
 * ::ffff:VIP matched the IPv4 service (and one from ::ffff:server its
 * replies). Dropped and counted where it was aimed at a VIP; else not ours. */
static void v4mapped_dropped(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	char mapped_vip[64], mapped_srv[64];

	snprintf(mapped_vip, sizeof(mapped_vip), "::ffff:%s", t_vip[SV4]);
	snprintf(mapped_srv, sizeof(mapped_srv), "::ffff:%s", t_real[SV4][1]);
	size_t n = t_sa_init(fr, CLIENT6, 500, mapped_vip, 0x4242);
	assert_int_equal(fr[12] << 8 | fr[13], 0x86dd);
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_V4MAPPED), 1);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_FWD), 0);
	assert_int_equal(t_map_count(f, "halfopen_map", sizeof(struct sa_key)), 0);
	assert_int_equal(t_run_xdp(f, fr, n), XDP_PASS); /* tc drops it */

	/* a mapped source toward the IPv6 VIP */
	n = t_sa_init(fr, "::ffff:198.18.0.1", 500, t_vip[SV6], 0x4343);
	assert_int_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_drop(f, SV6, IKE_DROP_V4MAPPED), 1);

	/* "a reply" of the IPv4 server: not reverse-translated */
	uint8_t ka = 0xff;
	n = t_udp(fr, mapped_srv, 4500, CLIENT6, 4500, &ka, 1);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_memory_equal(f->out, fr, n);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_REPLY), 0);
}

/* 802.1Q in the frame: not ours, untouched by tc and XDP (docs: tags must
 * be stripped before; a tag the kernel took out into the skb is checked
 * too, skb->vlan_present, which BPF_PROG_TEST_RUN cannot set). */
static void vlan_untouched(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], tagged[PKT_MAX + 4];
	size_t n = t_sa_init(fr, CLIENT, 500, t_vip[SV4], 0x4444);

	memcpy(tagged, fr, 12);
	tagged[12] = 0x81;
	tagged[13] = 0x00;
	tagged[14] = 0x00;
	tagged[15] = 0x64; /* VLAN 100 */
	memcpy(tagged + 16, fr + 12, n - 12);
	assert_int_equal(t_run(f, tagged, n + 4), TC_ACT_OK);
	assert_int_equal(f->out_len, n + 4);
	assert_memory_equal(f->out, tagged, n + 4);
	assert_int_equal(t_run_xdp(f, tagged, n + 4), XDP_PASS);
	assert_memory_equal(f->out, tagged, n + 4);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_RX), 0);
	assert_int_equal(t_map_count(f, "halfopen_map", sizeof(struct sa_key)), 0);
}

/* TTL 1 (IPv4) / hop limit 1 (IPv6) toward a dnat VIP: the routed hop
 * would expire it. Left to the kernel untouched (ICMP time exceeded),
 * counted ttl_expired, never forwarded, no state; also for replies. */
static void ttl_one_not_forwarded(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	const struct {
		int s;
		const char *client;
		size_t ttl_off;
	} cases[] = { { SV4, CLIENT, PKT_ETH_LEN + 8 }, { SV6, CLIENT6, PKT_ETH_LEN + 7 } };

	for (size_t i = 0; i < 2; i++) {
		int s = cases[i].s;
		size_t n = t_sa_init(fr, cases[i].client, 500, t_vip[s], 0x4545 + i);
		fr[cases[i].ttl_off] = 1;
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_memory_equal(f->out, fr, n);
		assert_int_equal(t_drop(f, s, IKE_DROP_TTL_EXPIRED), 1);
		assert_int_equal(t_ctr(f, s, SVC_CTR_FWD), 0);
		assert_int_equal(t_ctr(f, s, SVC_CTR_STEER_NEW), 0);
		assert_int_equal(t_map_count(f, "halfopen_map", sizeof(struct sa_key)), 0);
		/* and a server's reply with TTL 1 */
		uint8_t ka = 0xff;
		n = t_udp(fr, t_real[s][0], 4500, cases[i].client, 4500, &ka, 1);
		fr[cases[i].ttl_off] = 1;
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_memory_equal(f->out, fr, n);
		assert_int_equal(t_drop(f, s, IKE_DROP_TTL_EXPIRED), 2);
		assert_int_equal(t_ctr(f, s, SVC_CTR_REPLY), 0);
	}
	/* dsr is an L2 hop: TTL 1 is forwarded as it is */
	size_t n = t_sa_init(fr, CLIENT, 500, t_vip[SDSR], 0x4747);
	fr[PKT_ETH_LEN + 8] = 1;
	assert_int_not_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_ctr(f, SDSR, SVC_CTR_FWD), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(v4mapped_dropped, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(vlan_untouched, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(ttl_one_not_forwarded, t_cm_setup, t_cm_teardown),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
