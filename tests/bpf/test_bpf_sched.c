/* The kernel scheduler (src/bpf/ikelb_sched.h) through BPF_PROG_TEST_RUN,
 * driven by the daemon's runtime as in production (rt_ops -> engine):
 * lc picks the least loaded, wlc honours weights, rr/wrr cycle as the
 * runtime's own scheduler does, full servers are skipped (every kind,
 * maglev included), all_full is counted while established clients keep
 * going, and the daemon's reconciliation corrects the data path's counts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"
#include "core/runtime.h"
#include "core/scheduler.h"

#define VIP "203.0.113.10"

struct sfx {
	struct tfx f;
	struct runtime rt;
	int next;    /* client counter: each new client its own address */
};

static int op_table(void *ctx, int svc, const uint32_t *t, uint32_t m)
{
	return bpf_engine_set_maglev_servers(((struct sfx *)ctx)->f.e, svc, t, m);
}

static int op_state(void *ctx, int svc, int srv, int st)
{
	return bpf_engine_set_real_state(((struct sfx *)ctx)->f.e, svc, srv, st);
}

static int op_sched(void *ctx, int svc, const struct rt_sched_view *v)
{
	return bpf_engine_set_sched(((struct sfx *)ctx)->f.e, svc, v);
}

/* Engine for SV4 with scheduler kind, weights w (NULL: 100 each) and
 * max_clients maxc (NULL: none), programmed by a runtime. */
static void start(struct sfx *x, enum cfg_sched kind, const uint32_t *w, const uint32_t *maxc)
{
	memset(x, 0, sizeof(*x));
	log_init(&x->f.log, LOG_LVL_WARN);
	t_cfg_build(&x->f);
	x->f.svc[SV4].scheduler = kind;
	for (int i = 0; i < T_NSRV; i++) {
		x->f.srv[SV4][i].weight = w ? w[i] : 100;
		x->f.srv[SV4][i].max_clients = maxc ? maxc[i] : 0;
	}
	assert_int_equal(t_start(&x->f), 0);
	const struct rt_ops ops = { .ctx = x, .set_table = op_table, .set_server_state = op_state,
				    .set_sched = op_sched };
	assert_int_equal(rt_init(&x->rt, &x->f.cfg, &x->f.log, &ops), 0);
	assert_int_equal(rt_sync_all(&x->rt), 0);
}

static void stop(struct sfx *x)
{
	rt_free(&x->rt);
	t_teardown(&x->f);
}

/* A new client's IKE_SA_INIT: its server, or -1 when dropped. */
static int new_client(struct sfx *x)
{
	uint8_t fr[PKT_MAX];
	char ip[32];
	int k = ++x->next;

	snprintf(ip, sizeof(ip), "203.0.113.%d", 100 + k % 100);
	size_t n = t_sa_init(fr, k < 100 ? ip : "203.0.113.250", (uint16_t)(1000 + k), VIP,
			     0x5c00000000000000ULL + (uint64_t)k);
	int v = t_run(&x->f, fr, n);
	return v == TC_ACT_SHOT ? -1 : t_dst_server(&x->f, SV4);
}

static int64_t clients(struct sfx *x, int srv)
{
	return bpf_engine_load_clients(x->f.e, (uint32_t)bpf_engine_real_id(x->f.e, SV4, srv));
}

/* What the daemon's reconciliation would write for a walk that found n
 * clients on srv. */
static void set_clients(struct sfx *x, int srv, int64_t n)
{
	uint32_t id = (uint32_t)bpf_engine_real_id(x->f.e, SV4, srv);
	uint32_t kp = id * REAL_LOAD__MAX + REAL_LOAD_PLACED, ka = kp + 1;
	int fd = bpf_engine_map_fd(x->f.e, "real_load_map");
	int64_t placed = 0, adj;

	assert_int_equal(bpf_map_lookup_elem(fd, &kp, &placed), 0);
	adj = n - placed;
	assert_int_equal(bpf_map_update_elem(fd, &ka, &adj, BPF_ANY), 0);
}

static void lc_fills_the_least_loaded(void **state)
{
	(void)state;
	struct sfx x;
	int got[T_NSRV] = { 0 };

	start(&x, CFG_SCHED_LC, NULL, NULL);
	set_clients(&x, 0, 5);
	set_clients(&x, 1, 2);
	for (int i = 0; i < 8; i++) {
		int s = new_client(&x);
		assert_true(s >= 0);
		got[s]++;
	}
	/* 5/2/0 + 8 new ends level at 5/5/5: none to the busiest. */
	assert_int_equal(got[0], 0);
	assert_int_equal(got[1], 3);
	assert_int_equal(got[2], 5);
	for (int i = 0; i < T_NSRV; i++)
		assert_int_equal(clients(&x, i), 5);
	assert_int_equal(t_ctr(&x.f, SV4, SVC_CTR_STEER_NEW), 8);
	stop(&x);
}

/* A server back from disabled gets the new clients until it is level. */
static void lc_refills_a_returning_server(void **state)
{
	(void)state;
	struct sfx x;
	int got[T_NSRV] = { 0 };

	start(&x, CFG_SCHED_LC, NULL, NULL);
	assert_int_equal(rt_set_admin(&x.rt, SV4, 1, CFG_SRV_DISABLED, 0), 0);
	for (int i = 0; i < 12; i++)
		assert_int_not_equal(new_client(&x), 1);
	assert_int_equal(clients(&x, 0) + clients(&x, 2), 12);
	assert_int_equal(rt_set_admin(&x.rt, SV4, 1, CFG_SRV_ACTIVE, 0), 0);
	for (int i = 0; i < 6; i++)
		got[new_client(&x)]++;
	assert_int_equal(got[1], 6);
	stop(&x);
}

static void wlc_honours_weights(void **state)
{
	(void)state;
	struct sfx x;
	const uint32_t w[T_NSRV] = { 100, 200, 100 };
	int got[T_NSRV] = { 0 };

	start(&x, CFG_SCHED_WLC, w, NULL);
	for (int i = 0; i < 40; i++)
		got[new_client(&x)]++;
	assert_int_equal(got[0], 10);
	assert_int_equal(got[1], 20);
	assert_int_equal(got[2], 10);
	stop(&x);
}

/* rr and wrr hand out the runtime scheduler's own sequence. */
static void rr_and_wrr_cycle(void **state)
{
	(void)state;
	const enum cfg_sched kinds[] = { CFG_SCHED_RR, CFG_SCHED_WRR };
	const uint32_t w[T_NSRV] = { 1, 3, 2 };

	for (size_t k = 0; k < 2; k++) {
		struct sfx x;
		start(&x, kinds[k], w, NULL);
		struct sched *ref = sched_new(kinds[k], T_MAGLEV, x.f.cfg.maglev_seed);
		struct sched_server v[T_NSRV];
		memset(v, 0, sizeof(v));
		for (int i = 0; i < T_NSRV; i++) {
			memcpy(v[i].name, x.f.srv[SV4][i].name, sizeof(v[i].name));
			v[i].addr = x.f.srv[SV4][i].addr;
			v[i].weight = w[i];
		}
		assert_true(sched_update(ref, v, T_NSRV) >= 0);
		int got[T_NSRV] = { 0 };
		for (int i = 0; i < 24; i++) {
			int s = new_client(&x);
			assert_int_equal(s, sched_pick(ref, NULL, 0));
			got[s]++;
		}
		if (kinds[k] == CFG_SCHED_RR)
			assert_true(got[0] == 8 && got[1] == 8 && got[2] == 8);
		else
			assert_true(got[0] == 4 && got[1] == 12 && got[2] == 8);
		sched_free(ref);
		stop(&x);
	}
}

/* Every kind skips a full server, maglev included; when all are full new
 * clients are dropped and counted, an established one keeps its server. */
static void full_servers_skipped_then_all_full(void **state)
{
	(void)state;
	const enum cfg_sched kinds[] = { CFG_SCHED_MAGLEV, CFG_SCHED_LC, CFG_SCHED_RR };
	const uint32_t maxc[T_NSRV] = { 2, 3, 1 };

	for (size_t k = 0; k < 3; k++) {
		struct sfx x;
		int got[T_NSRV] = { 0 };
		start(&x, kinds[k], NULL, maxc);
		for (int i = 0; i < 6; i++) {
			int s = new_client(&x);
			assert_true(s >= 0);
			got[s]++;
		}
		for (int i = 0; i < T_NSRV; i++)
			assert_int_equal(got[i], (int)maxc[i]);
		assert_int_equal(new_client(&x), -1);
		assert_int_equal(new_client(&x), -1);
		assert_int_equal(t_ctr(&x.f, SV4, SVC_CTR_ALL_FULL), 2);
		assert_int_equal(t_drop(&x.f, SV4, IKE_DROP_NO_SERVER), 0);
		/* The first client's retransmission still reaches its server. */
		uint8_t fr[PKT_MAX];
		size_t n = t_sa_init(fr, "203.0.113.101", 1001, VIP, 0x5c00000000000001ULL);
		assert_int_equal(t_run(&x.f, fr, n), TC_ACT_OK);
		assert_true(t_dst_server(&x.f, SV4) >= 0);
		/* Room again (a client left, as the reconciliation finds). */
		set_clients(&x, 2, 0);
		assert_int_equal(new_client(&x), 2);
		stop(&x);
	}
}

/* The daemon's walk corrects what the data path cannot see (an LRU
 * eviction here): the count follows the tables. */
static void reconcile_follows_the_tables(void **state)
{
	(void)state;
	struct sfx x;
	int64_t placed[IKELB_MAX_REALS];
	static struct bpf_real_usage usage[IKELB_MAX_REALS];

	start(&x, CFG_SCHED_LC, NULL, NULL);
	for (int i = 0; i < 6; i++)
		assert_true(new_client(&x) >= 0);
	assert_int_equal(clients(&x, 0) + clients(&x, 1) + clients(&x, 2), 6);
	struct sa_key k = { .svc_id = SV4, .spi_i = 0x5c00000000000001ULL };
	int where = -1;
	struct halfopen_value hv;
	assert_int_equal(bpf_map_lookup_elem(bpf_engine_map_fd(x.f.e, "halfopen_map"), &k, &hv), 0);
	for (int i = 0; i < T_NSRV; i++)
		if (hv.real_id == (uint32_t)bpf_engine_real_id(x.f.e, SV4, i))
			where = i;
	assert_true(where >= 0);
	int64_t before = clients(&x, where);
	assert_int_equal(bpf_map_delete_elem(bpf_engine_map_fd(x.f.e, "halfopen_map"), &k), 0);
	assert_int_equal(clients(&x, where), before); /* invisible to BPF */
	assert_int_equal(bpf_engine_load_placed(x.f.e, placed), 0);
	assert_int_equal(bpf_engine_count(x.f.e, bpf_engine_now_s(), usage), 0);
	assert_int_equal(bpf_engine_load_reconcile(x.f.e, &x.f.cfg, placed, usage), 0);
	assert_int_equal(clients(&x, where), before - 1);
	assert_int_equal(clients(&x, 0) + clients(&x, 1) + clients(&x, 2), 5);
	stop(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lc_fills_the_least_loaded),
		cmocka_unit_test(lc_refills_a_returning_server),
		cmocka_unit_test(wlc_honours_weights),
		cmocka_unit_test(rr_and_wrr_cycle),
		cmocka_unit_test(full_servers_skipped_then_all_full),
		cmocka_unit_test(reconcile_follows_the_tables),
	};
	if (t_netns() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
