/* BPF data path, persistence `ike`: clients behind one NAT address spread
 * by SPIi, half-open -> established SA, flows learned from IKE, SPI labels
 * (IKE and ESP), draining and down servers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"

#define NAT "203.0.113.88"
#define VIP "203.0.113.20"


static int sa_lookup(struct tfx *f, const char *map, uint64_t spi_i, struct state_value *v)
{
	struct sa_key k;
	memset(&k, 0, sizeof(k));
	k.svc_id = SIKE;
	k.spi_i = spi_i;
	struct halfopen_value hv; /* the larger of the two values */
	int rc = bpf_map_lookup_elem(bpf_engine_map_fd(f->e, map), &k, &hv);
	memcpy(v, &hv, sizeof(*v)); /* both start with real_id, last_seen_s */
	return rc;
}

/* SPIs with a label byte nobody owns, so label steering stays out of the
 * way of the state rules tested here. */
#define SPI(i) (0x7700000000000000ULL | (uint64_t)(i) * 0x10001ULL)

/* Many clients behind one NAT address: each IKE SA is placed by its SPIi,
 * so they spread over the servers; each client's IKE_AUTH on 4500 (its own
 * NAT port) follows its SA and teaches the flow, ESP follows the flow. */
static void nat_clients_spread_and_follow(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	int where[32], seen[T_NSRV] = { 0 };
	struct state_value v;

	for (int i = 0; i < 32; i++) {
		size_t n = t_sa_init(fr, NAT, (uint16_t)(10000 + i), VIP, SPI(i + 1));
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		where[i] = t_dst_server(f, SIKE);
		assert_true(where[i] >= 0);
		seen[where[i]]++;
		assert_int_equal(sa_lookup(f, "halfopen_map", SPI(i + 1), &v), 0);
		assert_int_equal(v.real_id, bpf_engine_real_id(f->e, SIKE, where[i]));
	}
	for (int s = 0; s < T_NSRV; s++)
		assert_true(seen[s] > 0);
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_STEER_NEW), 32);

	for (int i = 0; i < 32; i++) {
		uint16_t port = (uint16_t)(20000 + i);
		assert_int_equal(t_init_resp(f, SIKE, where[i], NAT, (uint16_t)(10000 + i), SPI(i + 1),
					     0x0123456789abcdefULL), TC_ACT_OK);
		size_t n = t_auth(fr, NAT, port, VIP, SPI(i + 1), 0x0123456789abcdefULL, 600);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, SIKE), where[i]);
		assert_true(t_frame_csum_ok(f->out, f->out_len));
		/* promoted */
		assert_int_equal(sa_lookup(f, "sa_map", SPI(i + 1), &v), 0);
		assert_int_not_equal(sa_lookup(f, "halfopen_map", SPI(i + 1), &v), 0);
		n = t_esp(fr, NAT, port, VIP, 0x00abcd00 + (uint32_t)i);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, SIKE), where[i]);
		n = t_keepalive(fr, NAT, port, VIP);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, SIKE), where[i]);
	}
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_STEER_SA), 32);
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_STEER_FLOW), 64);
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_STEER_FALLBACK), 0);
}

/* A reauthentication (new IKE_SA_INIT, new SPIi) from a flow that has a
 * live server stays there: the flow rule comes before the new-client rule.
 * (strongSwan reauthenticates from its current ports, here the 4500 flow
 * the IKE_AUTH established.) */
static void reauth_from_flow_stays(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, NAT, 3333, VIP, SPI(1));

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	int srv = t_dst_server(f, SIKE);
	assert_int_equal(t_init_resp(f, SIKE, srv, NAT, 3333, SPI(1), 0x99), TC_ACT_OK);
	n = t_auth(fr, NAT, 3333, VIP, SPI(1), 0x99, 100);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SIKE), srv);
	for (int i = 2; i < 20; i++) {
		n = t_sa_init_natt(fr, NAT, 3333, VIP, SPI(i));
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, SIKE), srv);
	}
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_STEER_NEW), 1);
}

/* Server-chosen SPIs name the server, whatever the state says. */
static void labels_steer_ike_and_esp(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];

	for (int s = 0; s < T_NSRV; s++) {
		/* IKE_AUTH whose SPIr carries server s's label, unknown SPIi */
		size_t n = t_auth(fr, NAT, 4500, VIP, SPI(100 + s), T_LABEL(s) | 0x1234, 300);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, SIKE), s);
		/* ESP whose SPI is in server s's range, from an unknown flow */
		n = t_esp(fr, "198.18.5.5", (uint16_t)(7000 + s), VIP, T_ESP_MIN(s) + 0x77);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, SIKE), s);
		n = t_esp(fr, "198.18.5.5", (uint16_t)(7000 + s), VIP, T_ESP_MAX(s));
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, SIKE), s);
	}
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_STEER_LABEL), 3 * T_NSRV);
	/* the labelled IKE message taught its flow and SA */
	struct state_value v;
	assert_int_equal(sa_lookup(f, "sa_map", SPI(101), &v), 0);
	assert_int_equal(v.real_id, bpf_engine_real_id(f->e, SIKE, 1));
	/* a label of a DOWN server is ignored */
	assert_int_equal(bpf_engine_set_real_state(f->e, SIKE, 2, REAL_DOWN), 0);
	size_t n = t_esp(fr, "198.18.5.6", 7100, VIP, T_ESP_MIN(2) + 1);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_not_equal(t_dst_server(f, SIKE), 2);
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_STEER_FALLBACK), 1);
}

/* Draining: existing clients stay, new ones go elsewhere. */
static void draining_keeps_clients(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	int where[24];

	for (int i = 0; i < 24; i++) {
		size_t n = t_sa_init(fr, NAT, (uint16_t)(11000 + i), VIP, SPI(i + 1));
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		where[i] = t_dst_server(f, SIKE);
	}
	int usable[T_NSRV] = { 1, 0, 1 };
	assert_int_equal(bpf_engine_set_real_state(f->e, SIKE, 1, REAL_DRAINING), 0);
	assert_int_equal(t_maglev(f, SIKE, usable), 0);
	for (int i = 0; i < 24; i++) {
		size_t n = t_auth(fr, NAT, (uint16_t)(21000 + i), VIP, SPI(i + 1), 0x42, 100);
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_equal(t_dst_server(f, SIKE), where[i]);
	}
	for (int i = 0; i < 24; i++) {
		size_t n = t_sa_init(fr, "198.18.9.9", (uint16_t)(12000 + i), VIP, SPI(500 + i));
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		assert_int_not_equal(t_dst_server(f, SIKE), 1);
	}
}

/* Down: state pointing to the server is dropped; IKE_SA_INIT is placed
 * anew, ESP of that flow falls back (never to the dead server). */
static void down_reschedules(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	uint64_t spi = 0;
	int victim = -1;
	uint16_t port = 0;

	for (int i = 0; i < 16 && victim < 0; i++) {
		size_t n = t_sa_init(fr, NAT, (uint16_t)(13000 + i), VIP, SPI(i + 1));
		assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
		if (t_dst_server(f, SIKE) == 0) {
			victim = 0;
			spi = SPI(i + 1);
			port = (uint16_t)(13000 + i);
		}
	}
	assert_int_equal(victim, 0);
	size_t n = t_auth(fr, NAT, port, VIP, spi, 0x99, 100);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SIKE), 0);

	/* the engine purges the state; the data path would ignore it anyway */
	assert_int_equal(bpf_engine_set_real_state(f->e, SIKE, 0, REAL_DOWN), 0);
	struct state_value v;
	assert_int_not_equal(sa_lookup(f, "sa_map", spi, &v), 0);
	n = t_esp(fr, NAT, port, VIP, 0x00aa0001);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_not_equal(t_dst_server(f, SIKE), 0);
	n = t_sa_init(fr, NAT, port, VIP, spi + 1);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_true(t_dst_server(f, SIKE) > 0);
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_DROP_BASE + IKE_DROP_NO_SERVER), 0);
}

/* Down without purge (daemon not yet swept): the data path ignores and
 * deletes the stale entries itself. */
static void down_stale_state_ignored(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	int fd = bpf_engine_map_fd(f->e, "reals_map");
	uint32_t id = (uint32_t)bpf_engine_real_id(f->e, SIKE, 1);
	struct real_value rv;
	struct flow_key fk;
	struct state_value sv = { .real_id = id, .last_seen_s = bpf_engine_now_s() };

	memset(&fk, 0, sizeof(fk));
	fk.svc_id = SIKE;
	fk.cport = 5555;
	fk.vport = 4500;
	t_addr(NAT, &fk.client);
	assert_int_equal(bpf_map_update_elem(bpf_engine_map_fd(f->e, "flow_map"), &fk, &sv, 0), 0);
	size_t n = t_esp(fr, NAT, 5555, VIP, 0x00bb0001);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SIKE), 1);

	assert_int_equal(bpf_map_lookup_elem(fd, &id, &rv), 0);
	rv.state = REAL_DOWN;
	assert_int_equal(bpf_map_update_elem(fd, &id, &rv, 0), 0);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_not_equal(t_dst_server(f, SIKE), 1);
	assert_int_not_equal(bpf_map_lookup_elem(bpf_engine_map_fd(f->e, "flow_map"), &fk, &sv), 0);
}

/* IKEv1 Main Mode first message also creates state (cookie = SPIi). */
static void ikev1_new_sa(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX], pl[PKT_MAX];
	size_t pn = pkt_ikev1_main_mode1(pl, sizeof(pl), 0x5a5a5a5a5a5a5a5aULL, 0);
	size_t n = t_udp(fr, NAT, 500, VIP, 500, pl, pn);
	struct state_value v;

	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_true(t_dst_server(f, SIKE) >= 0);
	assert_int_equal(t_ctr(f, SIKE, SVC_CTR_IKEV1), 1);
	assert_int_equal(sa_lookup(f, "halfopen_map", 0x5a5a5a5a5a5a5a5aULL, &v), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(nat_clients_spread_and_follow, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(reauth_from_flow_stays, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(labels_steer_ike_and_esp, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(draining_keeps_clients, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(down_reschedules, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(down_stale_state_ignored, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(ikev1_new_sa, t_cm_setup, t_cm_teardown),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
