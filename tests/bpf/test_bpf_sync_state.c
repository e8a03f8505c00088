/* bpf engine, state sync (src/engine/bpf_sync_state.c): the walk lists the
 * live entries by service and server index, an applied entry steers the
 * data path, and a peer's entry never replaces a more recent local one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>

#include "bpf_test_util.h"
#include "core/sync_wire.h"
#include "engine/bpf_sync_state.h"

#define CLIENT "203.0.113.77"
#define NEWCOMER "203.0.113.88"

struct seen {
	int n[SYNC_K_FLOW + 1];
	uint32_t max_age;
};

static int collect(void *ctx, const struct eng_sync_entry *en)
{
	struct seen *s = ctx;
	assert_true(en->kind >= SYNC_K_PERSIST && en->kind <= SYNC_K_FLOW);
	assert_true(en->srv >= 0 && en->srv < T_NSRV);
	s->n[en->kind]++;
	if (en->age_s > s->max_age)
		s->max_age = en->age_s;
	return 0;
}

static void walk_lists_live_entries(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	struct seen s = { 0 };
	/* Each IKE_AUTH carries the SPIr its server answered (docs/security.md). */
	size_t n = t_sa_init(fr, CLIENT, 500, t_vip[SV4], 1);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_not_equal(t_init_resp(f, SV4, t_dst_server(f, SV4), CLIENT, 500, 1, 2),
			     TC_ACT_SHOT);
	n = t_auth(fr, CLIENT, 4500, t_vip[SV4], 1, 2, 100);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	n = t_sa_init(fr, CLIENT, 501, t_vip[SIKE], 0x77);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_not_equal(t_init_resp(f, SIKE, t_dst_server(f, SIKE), CLIENT, 501, 0x77, 0x42),
			     TC_ACT_SHOT);
	n = t_auth(fr, CLIENT, 4501, t_vip[SIKE], 0x77, 0x42, 100);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);

	assert_int_equal(bpf_engine_sync_walk(f->e, bpf_engine_now_s(), collect, &s), 0);
	assert_int_equal(s.n[SYNC_K_PERSIST], 1);
	/* The SA table is kept in both persistence modes (lookup by SPI): the
	 * source-ip client's SA and the ike client's. */
	assert_int_equal(s.n[SYNC_K_SA], 2);
	assert_int_equal(s.n[SYNC_K_HALFOPEN], 0);
	assert_int_equal(s.n[SYNC_K_FLOW], 2);
	assert_true(s.max_age <= 1);
	/* Past the flow timeout the flows are idle: not offered. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(bpf_engine_sync_walk(f->e, bpf_engine_now_s() + 400, collect, &s), 0);
	assert_int_equal(s.n[SYNC_K_FLOW], 0);
	assert_int_equal(s.n[SYNC_K_PERSIST], 1);
}

static void applied_flow_steers_and_newer_wins(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	uint32_t now = bpf_engine_now_s();
	/* Without state the newcomer's ESP goes to its hash's server. */
	size_t n = t_esp(fr, NEWCOMER, 4500, t_vip[SV4], 0xc0000001u);
	assert_int_not_equal(t_run(f, fr, n), TC_ACT_SHOT);
	int hashed = t_dst_server(f, SV4);
	assert_true(hashed >= 0);
	int other = (hashed + 1) % T_NSRV;

	struct eng_sync_entry en = { .kind = SYNC_K_FLOW, .svc = SV4, .srv = other, .age_s = 2,
				     .cport = 4500, .vport = 4500 };
	t_addr(NEWCOMER, &en.client);
	assert_int_equal(bpf_engine_sync_apply(f->e, now, &en), 1);
	n = t_esp(fr, NEWCOMER, 4500, t_vip[SV4], 0xc0000001u);
	assert_int_not_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_dst_server(f, SV4), other);

	/* An older copy (from a peer) does not replace a more recent entry. */
	en.srv = hashed;
	en.age_s = 5;
	assert_int_equal(bpf_engine_sync_apply(f->e, now, &en), 0);
	n = t_esp(fr, NEWCOMER, 4500, t_vip[SV4], 0xc0000001u);
	assert_int_not_equal(t_run(f, fr, n), TC_ACT_SHOT);
	assert_int_equal(t_dst_server(f, SV4), other);

	en.srv = T_NSRV; /* a server this node does not have */
	assert_int_equal(bpf_engine_sync_apply(f->e, now, &en), -EINVAL);
	en.srv = 0;
	en.svc = T_NSVC;
	assert_int_equal(bpf_engine_sync_apply(f->e, now, &en), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(walk_lists_live_entries, t_cm_setup, t_cm_teardown),
		cmocka_unit_test_setup_teardown(applied_flow_steers_and_newer_wins, t_cm_setup,
						t_cm_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
