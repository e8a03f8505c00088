/* The reply bypass detection (src/ctl/bypass.c) on made-up counters: a
 * dnat server with IKE requests and no replies for a whole window, its
 * health up, is flagged; a reply clears it; the other cases never flag. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/bypass.h"
#include "steer_cfg.h"

struct fx {
	struct cfg cfg;
	struct logger log;
	struct runtime rt;
	struct eng_stats st;
	struct bypass b;
	/* the last line logged, its level and its IKELB_SERVER field */
	char msg[512], server[64];
	enum log_level lvl;
	int lines;
};

static int sink(void *ctx, enum log_level lvl, const char *msg, const struct log_field *f, int n)
{
	struct fx *x = ctx;
	x->lvl = lvl;
	x->lines++;
	snprintf(x->msg, sizeof(x->msg), "%s", msg);
	x->server[0] = '\0';
	for (int i = 0; i < n; i++)
		if (!strcmp(f[i].key, "IKELB_SERVER"))
			snprintf(x->server, sizeof(x->server), "%s", f[i].value);
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	log_init(&f->log, LOG_LVL_INFO);
	f->log.sink = sink;
	f->log.sink_ctx = f;
	assert_int_equal(tcfg_build(&f->cfg, "203.0.113.1", 500, 4500, 2, "198.51.100.%d", 11), 0);
	assert_int_equal(tcfg_rt_init(&f->rt, &f->cfg, &f->log), 0);
	for (int j = 0; j < 2; j++)
		f->rt.svc[0].servers[j].health = HEALTH_UP;
	assert_int_equal(eng_stats_alloc(&f->st, &f->cfg), 0);
	assert_int_equal(bypass_init(&f->b, &f->cfg), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	bypass_free(&f->b);
	rt_free(&f->rt);
	eng_stats_free(&f->st);
	cfg_free(&f->cfg);
	free(f);
	return 0;
}

/* seconds ticks; each adds req IKE requests and rep replies to server j. */
static void run(struct fx *f, int j, int seconds, int req, int rep)
{
	for (int t = 0; t < seconds; t++) {
		f->st.srv[0][j].ike_pkts += (uint64_t)req;
		f->st.srv[0][j].reply_pkts += (uint64_t)rep;
		bypass_tick(&f->b, &f->cfg, &f->rt, &f->st, &f->log);
	}
}

static void flags_after_a_window_then_clears(void **state)
{
	struct fx *f = *state;
	run(f, 0, BYPASS_WINDOW_S, 1, 0);
	assert_false(bypass_flagged(&f->b, 0, 0)); /* the window is not full yet */
	run(f, 0, 1, 1, 0);
	assert_true(bypass_flagged(&f->b, 0, 0));
	assert_false(bypass_flagged(&f->b, 0, 1)); /* no requests there */
	assert_int_equal(f->lines, 1);
	assert_int_equal(f->lvl, LOG_LVL_WARN);
	assert_string_equal(f->server, "s0");
	assert_non_null(strstr(f->msg, "server s0: 10 IKE requests in 10 s and no reply"));
	run(f, 0, 3, 1, 0);
	assert_true(bypass_flagged(&f->b, 0, 0));
	run(f, 0, 1, 1, 1); /* one reply comes back: routed through ikelb again */
	assert_false(bypass_flagged(&f->b, 0, 0));
	assert_int_equal(f->lines, 2);
	assert_int_equal(f->lvl, LOG_LVL_NOTICE);
	assert_string_equal(f->msg, "service vpn server s0: replies come back through ikelb again");
	char w[128];
	bypass_warning("vpn1", w, sizeof(w));
	assert_string_equal(w, "replies from vpn1 bypass ikelb (check its default gateway)");
}

static void replies_or_few_requests_do_not_flag(void **state)
{
	struct fx *f = *state;
	run(f, 0, 30, 5, 5);
	assert_false(bypass_flagged(&f->b, 0, 0));
	/* BYPASS_MIN_REQUESTS - 1 in each window: NAT keepalives are not requests */
	run(f, 1, 30, 0, 0);
	f->st.srv[0][1].ike_pkts += BYPASS_MIN_REQUESTS - 1;
	run(f, 1, 1, 0, 0);
	assert_false(bypass_flagged(&f->b, 0, 1));
	f->st.srv[0][1].ike_pkts += 1;
	run(f, 1, 1, 0, 0);
	assert_true(bypass_flagged(&f->b, 0, 1));
}

/* A server the health check does not call up is the health check's
 * business; without a health check the traffic alone decides. */
static void health_decides_when_checked(void **state)
{
	struct fx *f = *state;
	f->rt.svc[0].servers[0].health = HEALTH_UNKNOWN;
	run(f, 0, 20, 2, 0);
	assert_false(bypass_flagged(&f->b, 0, 0));
	f->rt.svc[0].servers[0].health = HEALTH_UP;
	run(f, 0, 1, 2, 0);
	assert_true(bypass_flagged(&f->b, 0, 0));
	f->rt.svc[0].servers[0].health = HEALTH_DOWN;
	run(f, 0, 1, 2, 0);
	assert_false(bypass_flagged(&f->b, 0, 0));
	f->cfg.services[0].health.type = CFG_HEALTH_NONE;
	run(f, 0, 1, 2, 0);
	assert_true(bypass_flagged(&f->b, 0, 0));
}

/* dsr replies bypass ikelb by design, fullnat replies cannot. */
static void only_dnat(void **state)
{
	struct fx *f = *state;
	f->cfg.services[0].forwarding = CFG_FWD_DSR;
	run(f, 0, 20, 2, 0);
	assert_false(bypass_flagged(&f->b, 0, 0));
	f->cfg.services[0].forwarding = CFG_FWD_FULLNAT;
	run(f, 0, 20, 2, 0);
	assert_false(bypass_flagged(&f->b, 0, 0));
}

/* Counters that go back (a new engine) start a new window, and a shape
 * other than the detector's (a reload not yet applied) is ignored. */
static void counter_reset_and_shape(void **state)
{
	struct fx *f = *state;
	run(f, 0, 5, 0, 3);
	f->st.srv[0][0].reply_pkts = 0;
	run(f, 0, BYPASS_WINDOW_S, 1, 0);
	assert_false(bypass_flagged(&f->b, 0, 0));
	run(f, 0, 1, 1, 0);
	assert_true(bypass_flagged(&f->b, 0, 0));
	f->b.nsrv[0] = 3;
	f->st.srv[0][0].reply_pkts += 1;
	bypass_tick(&f->b, &f->cfg, &f->rt, &f->st, &f->log);
	f->b.nsrv[0] = 2;
	assert_true(bypass_flagged(&f->b, 0, 0));
	assert_false(bypass_flagged(&f->b, 0, 2));
	assert_false(bypass_flagged(NULL, 0, 0));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(flags_after_a_window_then_clears),
		T(replies_or_few_requests_do_not_flag),
		T(health_decides_when_checked),
		T(only_dnat),
		T(counter_reset_and_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
