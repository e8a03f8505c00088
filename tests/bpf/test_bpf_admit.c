/* Admission control and ikelb's COOKIE in the BPF data path
 * (docs/security.md, "Admission"): the service and per-source buckets,
 * the answer's bytes, valid / invalid / expired cookies, a cookie that is
 * not the first payload, and established SAs untouched by an empty bucket. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"
#include "ikelb/cookie.h"

#define CLIENT "198.18.0.7"
#define CLIENT6 "2001:db8:300::7"

#define assert_fwd(v) do { int v_ = (v); assert_true(v_ == TC_ACT_OK || v_ == TC_ACT_REDIRECT); } while (0)

static struct tfx fx;

static int start_with(void **state, struct cfg_admission a)
{
	memset(&fx, 0, sizeof(fx));
	log_init(&fx.log, LOG_LVL_WARN);
	t_cfg_build(&fx);
	fx.svc[SV4].admission = a;
	fx.svc[SV6].admission = a;
	if (t_start(&fx) != 0)
		return -1;
	*state = &fx;
	return 0;
}

static int setup_rate(void **state)
{
	return start_with(state, (struct cfg_admission){ .enabled = true, .rate = 1, .burst = 3 });
}

static int setup_source(void **state)
{
	return start_with(state, (struct cfg_admission){
		.enabled = true, .per_source_rate = 1, .per_source_burst = 2 });
}

static int setup_cookie(void **state)
{
	return start_with(state, (struct cfg_admission){ .enabled = true, .cookie = true });
}

/* The cookie the program must compute for (client, port, SPIi). */
static void want_cookie(struct tfx *f, const char *client, uint16_t port, uint64_t spi_i,
			int back, uint8_t out[IKELB_COOKIE_LEN])
{
	struct cookie_keys k;
	struct ikelb_addr a;
	uint32_t zero = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_engine_map_fd(f->e, "cookie_key_map"), &zero, &k), 0);
	assert_true(k.cur != 0);
	t_addr(client, &a);
	uint32_t v = k.cur - (uint32_t)back;
	ikelb_cookie_make(out, &a, port, spi_i, v, k.key[v & 1][0], k.key[v & 1][1]);
}

/* IKE_SA_INIT with N(COOKIE) inserted as payload number `pos` (0 = first,
 * 1 = after the SA payload). */
static size_t init_with_cookie(uint8_t *fr, const char *src, uint16_t sport, const char *dst,
			       uint64_t spi_i, const uint8_t *cookie, int pos)
{
	uint8_t pl[PKT_MAX], out[PKT_MAX];
	size_t n = pkt_ikev2_sa_init_req(pl, sizeof(pl), spi_i);
	size_t at = IKE_HDR_LEN;
	uint8_t *np = &pl[16];

	if (pos == 1) {
		np = &pl[at];
		at += (size_t)pl[at + 2] << 8 | pl[at + 3];
	}
	memcpy(out, pl, at);
	uint8_t *nt = out + at;
	nt[0] = *np;
	nt[1] = 0;
	nt[2] = 0;
	nt[3] = IKELB_COOKIE_NOTIFY_LEN;
	nt[4] = 0;
	nt[5] = 0;
	nt[6] = IKE_NOTIFY_COOKIE >> 8;
	nt[7] = IKE_NOTIFY_COOKIE & 0xff;
	memcpy(nt + 8, cookie, IKELB_COOKIE_LEN);
	memcpy(nt + IKELB_COOKIE_NOTIFY_LEN, pl + at, n - at);
	out[pos == 1 ? IKE_HDR_LEN : 16] = IKE_PL_NOTIFY;
	n += IKELB_COOKIE_NOTIFY_LEN;
	out[24] = (uint8_t)(n >> 24);
	out[25] = (uint8_t)(n >> 16);
	out[26] = (uint8_t)(n >> 8);
	out[27] = (uint8_t)n;
	return t_udp(fr, src, sport, dst, 500, out, n);
}

static int halfopen_has(struct tfx *f, int s, uint64_t spi_i)
{
	struct sa_key k = { .svc_id = (uint32_t)s, .spi_i = spi_i };
	struct halfopen_value v;
	return bpf_map_lookup_elem(bpf_engine_map_fd(f->e, "halfopen_map"), &k, &v) == 0;
}

/* Burst 3 at 1/s: three new SAs pass, the next are dropped and counted;
 * a retransmit (its SA half-open), an established client's IKE and ESP
 * still pass with the bucket empty. */
static void service_bucket(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	char ip[32];

	for (int i = 0; i < 5; i++) {
		snprintf(ip, sizeof(ip), "198.18.1.%d", i + 1);
		size_t n = t_sa_init(fr, ip, 500, t_vip[SV4], 0x1000 + (uint64_t)i);
		int v = t_run(f, fr, n);
		if (i < 3)
			assert_fwd(v);
		else
			assert_int_equal(v, TC_ACT_SHOT);
	}
	assert_int_equal(t_drop(f, SV4, IKE_DROP_ADMIT_SERVICE), 2);
	size_t n = t_sa_init(fr, "198.18.1.1", 500, t_vip[SV4], 0x1000);
	assert_fwd(t_run(f, fr, n)); /* retransmit */
	int srv = t_dst_server(f, SV4);
	assert_true(srv >= 0);
	assert_fwd(t_init_resp(f, SV4, srv, "198.18.1.1", 500, 0x1000, 0x2000));
	n = t_auth(fr, "198.18.1.1", 4500, t_vip[SV4], 0x1000, 0x2000, 200);
	assert_fwd(t_run(f, fr, n));
	n = t_esp(fr, "198.18.1.1", 4500, t_vip[SV4], 0xc0001234);
	assert_fwd(t_run(f, fr, n));
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_int_equal(t_drop(f, SV4, IKE_DROP_ADMIT_SERVICE), 2);
	/* other services have no admission */
	for (int i = 0; i < 5; i++) {
		n = t_sa_init(fr, "198.18.2.1", 500, t_vip[SDSR], 0x3000 + (uint64_t)i);
		assert_fwd(t_run(f, fr, n));
	}
	/* XDP leaves new SAs of a service with admission to tc */
	n = t_sa_init(fr, "198.18.1.9", 500, t_vip[SV4], 0x4000);
	assert_int_equal(t_run_xdp(f, fr, n), XDP_PASS);
}

static void source_bucket(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];

	for (int i = 0; i < 3; i++) {
		size_t n = t_sa_init(fr, CLIENT, (uint16_t)(500 + i), t_vip[SV4], 0x5000 + (uint64_t)i);
		int v = t_run(f, fr, n);
		if (i < 2)
			assert_fwd(v);
		else
			assert_int_equal(v, TC_ACT_SHOT);
	}
	assert_int_equal(t_drop(f, SV4, IKE_DROP_ADMIT_SOURCE), 1);
	size_t n = t_sa_init(fr, "198.18.0.8", 500, t_vip[SV4], 0x5100);
	assert_fwd(t_run(f, fr, n));
	assert_int_equal(t_drop(f, SV4, IKE_DROP_ADMIT_SERVICE), 0);
}

/* The answer, parsed: addresses and ports swapped, checksums right, IKE
 * header and N(COOKIE) as RFC 7296 §2.6 has them. */
static void check_answer(struct tfx *f, const char *client, uint16_t cport, const char *vip,
			 uint16_t vport, uint64_t spi_i, int marker)
{
	const uint8_t *o = f->out;
	struct ikelb_addr s, d, ws, wd;
	uint8_t want[IKELB_COOKIE_LEN];
	uint8_t mac_src[] = PKT_MAC_SRC, mac_dst[] = PKT_MAC_DST;

	assert_memory_equal(o, mac_src, 6);
	assert_memory_equal(o + 6, mac_dst, 6);
	t_frame_src(o, &s);
	t_frame_dst(o, &d);
	t_addr(vip, &ws);
	t_addr(client, &wd);
	assert_true(ikelb_addr_eq(&s, &ws) && ikelb_addr_eq(&d, &wd));
	assert_true(t_frame_csum_ok(o, f->out_len));
	int v6 = (o[PKT_ETH_LEN] >> 4) == 6;
	const uint8_t *u = o + PKT_ETH_LEN + (v6 ? PKT_IP6_LEN : PKT_IP4_LEN);
	assert_int_equal(u[0] << 8 | u[1], vport);
	assert_int_equal(u[2] << 8 | u[3], cport);
	size_t mk = marker ? 4 : 0;
	assert_int_equal(u[4] << 8 | u[5], 8 + mk + 48);
	assert_int_equal(f->out_len, (size_t)(u - o) + 8 + mk + 48);
	const uint8_t *h = u + 8 + mk;
	assert_true(ike_be64(h) == spi_i);
	assert_true(ike_be64(h + 8) == 0);
	assert_int_equal(h[16], IKE_PL_NOTIFY);
	assert_int_equal(h[17], 0x20);
	assert_int_equal(h[18], IKE_EXCH_SA_INIT);
	assert_int_equal(h[19], IKE_FLAG_R);
	assert_int_equal(ike_be32(h + 20), 0);
	assert_int_equal(ike_be32(h + 24), 48);
	const uint8_t *nt = h + IKE_HDR_LEN;
	assert_int_equal(nt[0], 0);
	assert_int_equal(nt[2] << 8 | nt[3], IKELB_COOKIE_NOTIFY_LEN);
	assert_int_equal(nt[4], 0);
	assert_int_equal(nt[5], 0);
	assert_int_equal(nt[6] << 8 | nt[7], IKE_NOTIFY_COOKIE);
	want_cookie(f, client, cport, spi_i, 0, want);
	assert_memory_equal(nt + 8, want, IKELB_COOKIE_LEN);
}

static void cookie_answer_bytes(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];

	size_t n = t_sa_init(fr, CLIENT, 500, t_vip[SV4], 0xabcdef0011223344ULL);
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	check_answer(f, CLIENT, 500, t_vip[SV4], 500, 0xabcdef0011223344ULL, 0);
	n = t_sa_init_natt(fr, CLIENT, 4501, t_vip[SV4], 0x77);
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	check_answer(f, CLIENT, 4501, t_vip[SV4], 4500, 0x77, 1);
	n = t_sa_init(fr, CLIENT6, 500, t_vip[SV6], 0x66);
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	check_answer(f, CLIENT6, 500, t_vip[SV6], 500, 0x66, 0);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_COOKIE_SENT), 2);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_FWD), 0);
	assert_false(halfopen_has(f, SV4, 0x77));
}

static void cookie_valid_invalid_expired(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], c[IKELB_COOKIE_LEN];

	want_cookie(f, CLIENT, 500, 0x99, 0, c);
	size_t n = init_with_cookie(fr, CLIENT, 500, t_vip[SV4], 0x99, c, 0);
	assert_fwd(t_run(f, fr, n));
	assert_true(t_dst_server(f, SV4) >= 0);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_COOKIE_VALID), 1);
	assert_true(halfopen_has(f, SV4, 0x99));
	/* the rest of its SA passes the gate untouched */
	int srv = t_dst_server(f, SV4);
	assert_fwd(t_init_resp(f, SV4, srv, CLIENT, 500, 0x99, 0x1999));
	n = t_auth(fr, CLIENT, 4500, t_vip[SV4], 0x99, 0x1999, 200);
	assert_fwd(t_run(f, fr, n));
	assert_int_equal(t_dst_server(f, SV4), srv);
	n = t_esp(fr, CLIENT, 4500, t_vip[SV4], 0xc0005678);
	assert_fwd(t_run(f, fr, n));
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_COOKIE_SENT), 0);
	/* the server's own COOKIE on the retry: its SA is half-open, it passes */
	c[5] ^= 1;
	n = init_with_cookie(fr, CLIENT, 500, t_vip[SV4], 0x99, c, 0);
	assert_fwd(t_run(f, fr, n));
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_COOKIE_INVALID), 0);
	/* a wrong cookie for a new SA: counted, answered with a good one */
	n = init_with_cookie(fr, CLIENT, 500, t_vip[SV4], 0x9a, c, 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	check_answer(f, CLIENT, 500, t_vip[SV4], 500, 0x9a, 0);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_COOKIE_INVALID), 1);
	/* another port or address: not this client's cookie */
	want_cookie(f, CLIENT, 500, 0x9b, 0, c);
	n = init_with_cookie(fr, CLIENT, 501, t_vip[SV4], 0x9b, c, 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_COOKIE_INVALID), 2);
	/* one rotation: still valid; two: expired */
	assert_int_equal(bpf_engine_cookie_tick(f->e, bpf_engine_now_s() + IKELB_COOKIE_ROTATE_S), 0);
	n = init_with_cookie(fr, CLIENT, 500, t_vip[SV4], 0x9b, c, 0);
	assert_fwd(t_run(f, fr, n));
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_COOKIE_VALID), 2);
	want_cookie(f, CLIENT, 500, 0x9c, 1, c);
	assert_int_equal(bpf_engine_cookie_tick(f->e, bpf_engine_now_s() + 2 * IKELB_COOKIE_ROTATE_S), 0);
	n = init_with_cookie(fr, CLIENT, 500, t_vip[SV4], 0x9c, c, 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_COOKIE_INVALID), 3);
	assert_false(halfopen_has(f, SV4, 0x9c));
}

/* RFC 7296 §2.6: the COOKIE notify must be the first payload. */
static void cookie_not_first(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], c[IKELB_COOKIE_LEN];

	want_cookie(f, CLIENT, 500, 0xa1, 0, c);
	size_t n = init_with_cookie(fr, CLIENT, 500, t_vip[SV4], 0xa1, c, 1);
	assert_int_equal(t_run(f, fr, n), TC_ACT_REDIRECT);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_COOKIE_VALID), 0);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_COOKIE_SENT), 1);
	assert_false(halfopen_has(f, SV4, 0xa1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(service_bucket, setup_rate, t_cm_teardown),
		cmocka_unit_test_setup_teardown(source_bucket, setup_source, t_cm_teardown),
		cmocka_unit_test_setup_teardown(cookie_answer_bytes, setup_cookie, t_cm_teardown),
		cmocka_unit_test_setup_teardown(cookie_valid_invalid_expired, setup_cookie,
						t_cm_teardown),
		cmocka_unit_test_setup_teardown(cookie_not_first, setup_cookie, t_cm_teardown),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
