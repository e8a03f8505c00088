/* BPF data path, evacuation (docs/operations.md, "Evacuate"): a client of
 * an evacuating server that re-establishes from the same address and
 * ports (what an RFC 5685 REDIRECT to the VIP makes it do) gets its new
 * SA placed on another server, follows it there with IKE and ESP, and the
 * old SA's last messages still reach the old server without taking the
 * client's flow or persistence back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"

#define CLIENT "203.0.113.7"
#define VIP "203.0.113.10"
#define SPI_A 0x7700000000000a01ULL
#define SPI_RA 0x7700000000000a02ULL
#define SPI_B 0x7700000000000b01ULL
#define SPI_RB 0x7700000000000b02ULL
#define ESP_SPI 0xc0ffee01u

/* One source-ip client with an established SA on the server it returns. */
static int establish(struct tfx *f)
{
	uint8_t fr[PKT_MAX];

	assert_int_equal(t_run(f, fr, t_sa_init(fr, CLIENT, 500, VIP, SPI_A)), TC_ACT_OK);
	int srv = t_dst_server(f, SV4);
	assert_true(srv >= 0);
	assert_int_equal(t_init_resp(f, SV4, srv, CLIENT, 500, SPI_A, SPI_RA), TC_ACT_OK);
	assert_int_equal(t_run(f, fr, t_auth(fr, CLIENT, 4500, VIP, SPI_A, SPI_RA, 300)),
			 TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	assert_int_equal(t_run(f, fr, t_esp(fr, CLIENT, 4500, VIP, ESP_SPI)), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), srv);
	return srv;
}

/* Drained (the runtime's Maglev table without it) and, with evac, evacuating. */
static void drain(struct tfx *f, int srv, bool evac)
{
	int usable[T_NSRV] = { 1, 1, 1 };

	usable[srv] = 0;
	assert_int_equal(bpf_engine_set_real_state(f->e, SV4, srv, REAL_DRAINING), 0);
	assert_int_equal(t_maglev(f, SV4, usable), 0);
	if (evac) /* forgets the one persistence entry */
		assert_int_equal(bpf_engine_set_evacuating(f->e, SV4, srv, true), 1);
}

static void redirected_client_moves(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	int old = establish(f);

	drain(f, old, true);
	/* The new SA from the client's current ports: placed afresh. */
	assert_int_equal(t_run(f, fr, t_sa_init_natt(fr, CLIENT, 4500, VIP, SPI_B)), TC_ACT_OK);
	int now = t_dst_server(f, SV4);
	assert_true(now >= 0 && now != old);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_NEW), 2);
	/* Its IKE_AUTH goes by the new SA, not the old flow; ESP follows. */
	assert_int_equal(t_init_resp(f, SV4, now, CLIENT, 4500, SPI_B, SPI_RB), TC_ACT_OK);
	assert_int_equal(t_run(f, fr, t_auth(fr, CLIENT, 4500, VIP, SPI_B, SPI_RB, 300)),
			 TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), now);
	assert_int_equal(t_run(f, fr, t_esp(fr, CLIENT, 4500, VIP, ESP_SPI + 1)), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), now);
	/* The old SA's DELETE reaches the old server... */
	assert_int_equal(t_run(f, fr, t_auth(fr, CLIENT, 4500, VIP, SPI_A, SPI_RA, 80)),
			 TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), old);
	/* ...without taking the flow back. */
	assert_int_equal(t_run(f, fr, t_esp(fr, CLIENT, 4500, VIP, ESP_SPI + 1)), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), now);
}

/* Draining alone keeps a client's new SA where its flow is (a reauth keeps
 * the client's virtual IP); evacuation is what moves it. */
static void drained_client_stays(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	int old = establish(f);

	drain(f, old, false);
	assert_int_equal(t_run(f, fr, t_sa_init_natt(fr, CLIENT, 4500, VIP, SPI_B)), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), old);
	/* evacuation off again: the flag is cleared, nothing forgotten */
	assert_int_equal(bpf_engine_set_evacuating(f->e, SV4, old, false), 0);
	assert_int_equal(t_run(f, fr, t_sa_init_natt(fr, CLIENT, 4500, VIP, SPI_B + 2)), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), old);
}

/* Established clients of an evacuating server keep working until they
 * move: flows and SA entries are not forgotten. */
static void evacuation_keeps_current_sa(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	int old = establish(f);

	drain(f, old, true);
	assert_int_equal(t_run(f, fr, t_esp(fr, CLIENT, 4500, VIP, ESP_SPI)), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), old);
	assert_int_equal(t_run(f, fr, t_auth(fr, CLIENT, 4500, VIP, SPI_A, SPI_RA, 80)),
			 TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(redirected_client_moves, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(drained_client_stays, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(evacuation_keeps_current_sa, t_cm_setup,
						t_cm_teardown),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
