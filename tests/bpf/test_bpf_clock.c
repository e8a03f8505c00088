/* The program's seconds clock (now_s, CLOCK_MONOTONIC_COARSE) against
 * last_seen values the daemon writes from CLOCK_MONOTONIC (HA sync,
 * restore): the coarse clock lags by up to a tick, so such an entry can be
 * a second ahead of the program. It must read as fresh, not as idle for
 * 2^32 - 1 seconds: an expired flow would move the client. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"

#define CLIENT "203.0.113.77"
#define VIP "203.0.113.10"

static void flow_put(struct tfx *f, int srv, uint32_t last_seen)
{
	struct flow_key k;
	struct state_value v = { .real_id = (uint32_t)bpf_engine_real_id(f->e, SV4, srv),
				 .last_seen_s = last_seen };

	memset(&k, 0, sizeof(k));
	k.svc_id = SV4;
	k.cport = k.vport = 4500;
	t_addr(CLIENT, &k.client);
	assert_int_equal(bpf_map_update_elem(bpf_engine_map_fd(f->e, "flow_map"), &k, &v, BPF_ANY),
			 0);
}

/* Where an unknown client's ESP goes (source-ip: the Maglev fallback,
 * which learns nothing), then the server a flow names instead. */
static int fallback_server(struct tfx *f, uint8_t *fr, size_t *n)
{
	*n = t_esp(fr, CLIENT, 4500, VIP, 0xc0ffee01);
	assert_int_equal(t_run(f, fr, *n), TC_ACT_OK);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FALLBACK), 1);
	int fb = t_dst_server(f, SV4);
	assert_true(fb >= 0);
	return fb;
}

static void flow_ahead_of_clock_is_fresh(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n;
	int other = (fallback_server(f, fr, &n) + 1) % T_NSRV;
	uint32_t ahead = bpf_engine_now_s() + 1;
	struct state_value v;

	flow_put(f, other, ahead);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), other);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FLOW), 1);
	/* Not set back to the program's (earlier) second either. */
	assert_int_equal(t_flow_get(f, SV4, CLIENT, 4500, 4500, &v), 0);
	assert_int_equal(v.last_seen_s, ahead);
}

/* The tolerance is for clock skew, not for timeouts: a flow idle longer
 * than flow_timeout_s still expires. */
static void flow_idle_past_timeout_expires(void **state)
{
	struct tfx *f = *state;
	uint8_t fr[PKT_MAX];
	size_t n;
	int fb = fallback_server(f, fr, &n);

	flow_put(f, (fb + 1) % T_NSRV, bpf_engine_now_s() - f->svc[SV4].persistence.flow_timeout_s - 5);
	assert_int_equal(t_run(f, fr, n), TC_ACT_OK);
	assert_int_equal(t_dst_server(f, SV4), fb);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FLOW), 0);
	assert_int_equal(t_ctr(f, SV4, SVC_CTR_STEER_FALLBACK), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(flow_ahead_of_clock_is_fresh, t_cm_setup,
						t_cm_teardown),
		cmocka_unit_test_setup_teardown(flow_idle_past_timeout_expires, t_cm_setup,
						t_cm_teardown),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
