/* The runtime's reload rules (rt_reload_server): what the operator set
 * through the API survives a reload unless the file changed that very
 * setting; and init_state: a server whose health is unknown takes no new
 * clients until its first probe succeeds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/runtime.h"
#include "core/scheduler.h"
#include "ikelb/maps.h"
#include "steer_cfg.h"

#define NSRV 3

struct fx {
	struct cfg cfg;
	struct logger log;
	struct runtime rt;
	int pushed[NSRV]; /* last state the "engine" got per server */
};

static int fx_table(void *ctx, int svc, const uint32_t *t, uint32_t m)
{
	(void)ctx, (void)svc, (void)t, (void)m;
	return 0;
}

static int fx_state(void *ctx, int svc, int srv, int state)
{
	struct fx *f = ctx;
	(void)svc;
	f->pushed[srv] = state;
	return 0;
}

/* Three servers s0..s2, health checked; init_down as given. */
static struct fx *fx_new(bool init_down)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	log_init(&f->log, LOG_LVL_ERR);
	assert_int_equal(tcfg_build(&f->cfg, "203.0.113.1", 500, 4500, NSRV, "198.51.100.%d", 11),
			 0);
	for (int i = 0; i < NSRV; i++)
		f->cfg.services[0].servers[i].init_down = init_down;
	/* Placement by client address, so rt_pick spreads the clients. */
	f->cfg.services[0].scheduler = CFG_SCHED_SH;
	const struct rt_ops ops = { .ctx = f, .set_table = fx_table, .set_server_state = fx_state };
	assert_int_equal(rt_init(&f->rt, &f->cfg, &f->log, &ops), 0);
	for (int i = 0; i < NSRV; i++)
		assert_int_equal(rt_set_health(&f->rt, 0, i, true, 1), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	rt_free(&f->rt);
	cfg_free(&f->cfg);
	free(f);
}

static struct rt_server *srv(struct fx *f, int i)
{
	return &f->rt.svc[0].servers[i];
}

/* Reload server i against file entry `file`; returns the message. */
static const char *reload_one(struct fx *f, int i, const struct cfg_server *file)
{
	static char msg[256];
	const struct rt_server old = *srv(f, i);
	assert_true(rt_reload_server(&f->rt, 0, i, &old, file, 2, msg, sizeof(msg)) >= 0);
	return msg;
}

/* Every server against the unchanged file. */
static void reload_all(struct fx *f)
{
	for (int i = 0; i < NSRV; i++)
		reload_one(f, i, &f->cfg.services[0].servers[i]);
}

static void drain_kept_on_unchanged_file(void **state)
{
	(void)state;
	struct fx *f = fx_new(true);
	assert_int_equal(rt_set_admin(&f->rt, 0, 1, CFG_SRV_DRAINING, 1), 0);
	assert_int_equal(f->pushed[1], REAL_DRAINING);
	const char *m = reload_one(f, 1, &f->cfg.services[0].servers[1]);
	assert_string_equal(m, "drain kept (set by API)");
	assert_int_equal(srv(f, 1)->admin, CFG_SRV_DRAINING);
	assert_int_equal(srv(f, 1)->effective, REAL_DRAINING);
	assert_int_equal(f->pushed[1], REAL_DRAINING);
	/* An untouched server reports nothing. */
	assert_string_equal(reload_one(f, 0, &f->cfg.services[0].servers[0]), "");
	fx_free(f);
}

static void kept_when_another_servers_weight_changes(void **state)
{
	(void)state;
	struct fx *f = fx_new(true);
	assert_int_equal(rt_set_admin(&f->rt, 0, 1, CFG_SRV_DRAINING, 1), 0);
	assert_int_equal(rt_set_weight(&f->rt, 0, 1, 7, 1), 0);
	f->cfg.services[0].servers[0].weight = 50; /* the new file */
	assert_string_equal(reload_one(f, 0, &f->cfg.services[0].servers[0]),
			    "weight 100 -> 50 (file)");
	assert_string_equal(reload_one(f, 1, &f->cfg.services[0].servers[1]),
			    "weight 7 kept (set by API), drain kept (set by API)");
	assert_int_equal(srv(f, 0)->weight, 50);
	assert_int_equal(srv(f, 1)->weight, 7);
	assert_int_equal(srv(f, 1)->effective, REAL_DRAINING);
	/* A second unchanged reload still keeps it. */
	reload_all(f);
	assert_int_equal(srv(f, 1)->admin, CFG_SRV_DRAINING);
	fx_free(f);
}

static void file_wins_for_the_setting_it_changed(void **state)
{
	(void)state;
	struct fx *f = fx_new(true);
	assert_int_equal(rt_set_admin(&f->rt, 0, 1, CFG_SRV_DRAINING, 1), 0);
	assert_int_equal(rt_set_weight(&f->rt, 0, 1, 7, 1), 0);
	struct cfg_server file = f->cfg.services[0].servers[1];
	file.weight = 50;
	assert_string_equal(reload_one(f, 1, &file), "weight 7 -> 50 (file), drain kept (set by API)");
	assert_int_equal(srv(f, 1)->weight, 50);
	assert_int_equal(srv(f, 1)->admin, CFG_SRV_DRAINING);
	/* Now the file changes the state: it wins, and it is no override. */
	file.state = CFG_SRV_DISABLED;
	assert_string_equal(reload_one(f, 1, &file), "draining -> disabled (file)");
	assert_int_equal(srv(f, 1)->effective, REAL_DOWN);
	assert_int_equal(f->pushed[1], REAL_DOWN);
	assert_string_equal(reload_one(f, 1, &file), "");
	fx_free(f);
}

static void new_server_waits_for_its_first_probe(void **state)
{
	(void)state;
	struct fx *f = fx_new(true);
	/* A server as a reload adds it: health unknown. */
	assert_int_equal(rt_restore_health(&f->rt, 0, 2, HEALTH_UNKNOWN), 0);
	assert_int_equal(rt_sync_all(&f->rt), 0);
	assert_int_equal(f->pushed[2], REAL_DRAINING); /* old clients stay, no new ones */
	struct ikelb_addr c;
	for (int i = 0; i < 200; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", i + 1);
		assert_int_equal(ikelb_addr_parse(ip, &c), 0);
		assert_int_not_equal(rt_pick(&f->rt, 0, &c), 2);
	}
	assert_int_equal(rt_set_health(&f->rt, 0, 2, true, 3), 0);
	assert_int_equal(f->pushed[2], REAL_ACTIVE);
	int got = 0;
	for (int i = 0; i < 200; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", i + 1);
		assert_int_equal(ikelb_addr_parse(ip, &c), 0);
		got += rt_pick(&f->rt, 0, &c) == 2;
	}
	assert_true(got > 0);
	fx_free(f);
}

static void init_state_up_takes_clients_at_once(void **state)
{
	(void)state;
	struct fx *f = fx_new(false);
	assert_int_equal(rt_restore_health(&f->rt, 0, 2, HEALTH_UNKNOWN), 0);
	assert_int_equal(srv(f, 2)->effective, REAL_ACTIVE);
	/* Turning init_state to down by reload applies at once. */
	struct cfg_server file = f->cfg.services[0].servers[2];
	file.init_down = true;
	reload_one(f, 2, &file);
	assert_int_equal(srv(f, 2)->effective, REAL_DRAINING);
	assert_int_equal(f->pushed[2], REAL_DRAINING);
	fx_free(f);
}

struct sched_rec {
	int calls;
	uint32_t weight[NSRV];
	uint32_t maxc[NSRV];
};

static int rec_sched(void *ctx, int svc, const struct rt_sched_view *v)
{
	struct sched_rec *r = ctx;
	(void)svc;
	r->calls++;
	for (int i = 0; i < v->n && i < NSRV; i++) {
		r->weight[i] = v->weight[i];
		r->maxc[i] = v->max_clients[i];
	}
	return 0;
}

static int rec_table(void *ctx, int svc, const uint32_t *t, uint32_t m)
{
	(void)ctx, (void)svc, (void)t, (void)m;
	return 0;
}

static int rec_state(void *ctx, int svc, int srv, int state)
{
	(void)ctx, (void)svc, (void)srv, (void)state;
	return 0;
}

/* Slow start: a server back from disabled ramps its effective weight in
 * whole seconds from ~1/period to full, the kernel's lc weight with it;
 * one that never went down does not ramp. max_clients reaches the engine. */
static void slow_start_ramps_after_down(void **state)
{
	(void)state;
	struct cfg cfg;
	struct logger log;
	struct runtime rt;
	struct sched_rec rec = { 0 };

	log_init(&log, LOG_LVL_ERR);
	assert_int_equal(tcfg_build(&cfg, "203.0.113.1", 500, 4500, NSRV, "198.51.100.%d", 11), 0);
	cfg.services[0].scheduler = CFG_SCHED_LC;
	for (int i = 0; i < NSRV; i++) {
		cfg.services[0].servers[i].init_down = false;
		cfg.services[0].servers[i].slow_start_ms = 10000;
	}
	cfg.services[0].servers[2].max_clients = 7;
	const struct rt_ops ops = { .ctx = &rec, .set_table = rec_table,
				    .set_server_state = rec_state, .set_sched = rec_sched };
	assert_int_equal(rt_init(&rt, &cfg, &log, &ops), 0);
	for (int i = 0; i < NSRV; i++)
		assert_int_equal(rt_set_health(&rt, 0, i, true, 1000), 0);
	assert_int_equal(rt_sync_all(&rt), 0);
	assert_int_equal(rec.maxc[2], 7);
	assert_int_equal(rt_effective_weight(&rt, 0, 1), 100);
	assert_int_equal(rec.weight[1], SCHED_RAMP_FULL);

	assert_int_equal(rt_set_admin(&rt, 0, 1, CFG_SRV_DISABLED, 2000), 0);
	assert_int_equal(rt_effective_weight(&rt, 0, 1), 0);
	assert_int_equal(rec.weight[1], 0);
	assert_int_equal(rt_set_admin(&rt, 0, 1, CFG_SRV_ACTIVE, 5000), 0);
	uint32_t w0 = rt_effective_weight(&rt, 0, 1);
	assert_true(w0 >= 9 && w0 <= 10); /* 1 s of 10: a tenth */
	assert_int_equal(rt_slow_start_left_s(&rt, 0, 1, 5000), 10);
	assert_true(rec.weight[1] > 0 && rec.weight[1] < SCHED_RAMP_FULL / 5);
	uint32_t last = w0;
	for (uint64_t t = 6000; t <= 14000; t += 1000) {
		assert_int_equal(rt_tick(&rt, t), 0);
		uint32_t w = rt_effective_weight(&rt, 0, 1);
		assert_true(w > last);
		last = w;
	}
	assert_int_equal(last, 100);  /* t = 14 s: the last step is full */
	assert_int_equal(rt_tick(&rt, 15000), 0);
	assert_int_equal(rt_effective_weight(&rt, 0, 1), 100);
	assert_int_equal(rt_slow_start_left_s(&rt, 0, 1, 15000), 0);
	assert_int_equal(rec.weight[1], SCHED_RAMP_FULL);
	/* Never down: full weight all along. */
	assert_int_equal(rt_effective_weight(&rt, 0, 0), 100);
	rt_free(&rt);
	cfg_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(drain_kept_on_unchanged_file),
		cmocka_unit_test(kept_when_another_servers_weight_changes),
		cmocka_unit_test(file_wins_for_the_setting_it_changed),
		cmocka_unit_test(new_server_waits_for_its_first_probe),
		cmocka_unit_test(init_state_up_takes_clients_at_once),
		cmocka_unit_test(slow_start_ramps_after_down),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
