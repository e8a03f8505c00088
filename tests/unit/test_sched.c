#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ikelb/hash.h"
#include "core/maglev.h"
#include "core/runtime.h"
#include "core/scheduler.h"

#define SEED 42

static void srv(struct sched_server *s, int i, uint32_t w, enum sched_state st)
{
	char ip[32];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "vpn%d", i);
	snprintf(ip, sizeof(ip), "198.51.100.%d", 10 + i);
	assert_int_equal(ikelb_addr_parse(ip, &s->addr), 0);
	s->weight = w;
	s->state = st;
}

/* n servers of weights w[], all active. */
static struct sched *mk(enum cfg_sched kind, const uint32_t *w, int n, struct sched_server *v)
{
	struct sched *s = sched_new(kind, 65537, SEED);
	assert_non_null(s);
	for (int i = 0; i < n; i++)
		srv(&v[i], i, w[i], SCHED_SRV_ACTIVE);
	assert_int_equal(sched_update(s, v, (size_t)n), 1);
	return s;
}

static void client(struct ikelb_addr *a, int i)
{
	char ip[32];
	snprintf(ip, sizeof(ip), "203.0.113.%d", i % 256);
	assert_int_equal(ikelb_addr_parse(ip, a), 0);
	if (i >= 256) /* more distinct clients: vary the upper bytes */
		a->b[13] = (uint8_t)(i / 256);
}

static void wrr_exact_proportions(void **state)
{
	(void)state;
	static const uint32_t w[] = { 1, 2, 3 };
	struct sched_server v[3];
	struct sched *s = mk(CFG_SCHED_WRR, w, 3, v);
	int cnt[3] = { 0 };
	int prev = -1, runs = 0;
	for (int i = 0; i < 600; i++) {
		int p = sched_pick(s, NULL, 0);
		assert_true(p >= 0 && p < 3);
		cnt[p]++;
		runs += p == prev;
		prev = p;
	}
	assert_int_equal(cnt[0], 100);
	assert_int_equal(cnt[1], 200);
	assert_int_equal(cnt[2], 300);
	/* smooth: the heaviest never gets 3 in a row (sequence c b c a b c). */
	assert_true(runs < 600 / 6 + 1);
	sched_free(s);
}

static void rr_cycles_and_skips_ineligible(void **state)
{
	(void)state;
	static const uint32_t w[] = { 1, 1, 1, 5 };
	struct sched_server v[4];
	struct sched *s = mk(CFG_SCHED_RR, w, 4, v);
	for (int i = 0; i < 8; i++)
		assert_int_equal(sched_pick(s, NULL, 0), i % 4);
	assert_int_equal(sched_set_state(s, 1, SCHED_SRV_DRAINING), 1);
	assert_int_equal(sched_set_weight(s, 3, 0), 1);
	for (int i = 0; i < 10; i++)
		assert_int_equal(sched_pick(s, NULL, 0), i % 2 ? 2 : 0);
	sched_free(s);
}

static void lc_picks_least_loaded(void **state)
{
	(void)state;
	static const uint32_t w[] = { 1, 1, 1 };
	struct sched_server v[3];
	struct sched *s = mk(CFG_SCHED_LC, w, 3, v);
	for (int i = 0; i < 5; i++)
		sched_conn_inc(s, 0);
	sched_conn_inc(s, 1);
	sched_conn_inc(s, 1);
	sched_conn_inc(s, 2);
	assert_int_equal(sched_pick(s, NULL, 0), 2);
	sched_conn_inc(s, 2);
	assert_int_equal(sched_pick(s, NULL, 0), 1); /* tie 2:2 -> lowest index */
	for (int i = 0; i < 5; i++)
		sched_conn_dec(s, 0);
	sched_conn_dec(s, 0); /* saturates at 0 */
	assert_int_equal(sched_conns(s, 0), 0);
	assert_int_equal(sched_pick(s, NULL, 0), 0);
	/* from 0,2,2: placing 30 clients with inc levels them (34 = 12+11+11,
	 * the extra one to the lowest index on ties) */
	for (int i = 0; i < 30; i++)
		sched_conn_inc(s, (size_t)sched_pick(s, NULL, 0));
	assert_int_equal(sched_conns(s, 0), 12);
	assert_int_equal(sched_conns(s, 1), 11);
	assert_int_equal(sched_conns(s, 2), 11);
	sched_free(s);
}

static void wlc_uses_conns_per_weight(void **state)
{
	(void)state;
	static const uint32_t w[] = { 1, 3 };
	struct sched_server v[2];
	struct sched *s = mk(CFG_SCHED_WLC, w, 2, v);
	for (int i = 0; i < 400; i++)
		sched_conn_inc(s, (size_t)sched_pick(s, NULL, 0));
	assert_int_equal(sched_conns(s, 0), 100);
	assert_int_equal(sched_conns(s, 1), 300);
	/* 2 conns on w=1 (2.0) vs 5 on w=3 (1.67): server 1 */
	struct sched *t = mk(CFG_SCHED_WLC, w, 2, v);
	sched_conn_inc(t, 0);
	sched_conn_inc(t, 0);
	for (int i = 0; i < 5; i++)
		sched_conn_inc(t, 1);
	assert_int_equal(sched_pick(t, NULL, 0), 1);
	sched_conn_inc(t, 1); /* 2.0 vs 2.0: tie -> index 0 */
	assert_int_equal(sched_pick(t, NULL, 0), 0);
	sched_free(s);
	sched_free(t);
}

static void fo_ordered_failover(void **state)
{
	(void)state;
	static const uint32_t w[] = { 1, 1, 1 };
	struct sched_server v[3];
	struct sched *s = mk(CFG_SCHED_FO, w, 3, v);
	for (int i = 0; i < 5; i++)
		assert_int_equal(sched_pick(s, NULL, 0), 0);
	sched_set_state(s, 0, SCHED_SRV_DOWN);
	assert_int_equal(sched_pick(s, NULL, 0), 1);
	sched_set_state(s, 1, SCHED_SRV_DRAINING);
	assert_int_equal(sched_pick(s, NULL, 0), 2);
	sched_set_state(s, 0, SCHED_SRV_ACTIVE);
	assert_int_equal(sched_pick(s, NULL, 0), 0);
	sched_free(s);
}

static void sh_stable_per_client_and_spread(void **state)
{
	(void)state;
	static const uint32_t w[] = { 1, 1, 1, 1 };
	struct sched_server v[4];
	struct sched *s = mk(CFG_SCHED_SH, w, 4, v);
	int cnt[4] = { 0 };
	for (int i = 0; i < 4000; i++) {
		struct ikelb_addr a;
		client(&a, i);
		int p = sched_pick(s, &a, 0);
		assert_true(p >= 0 && p < 4);
		assert_int_equal(sched_pick(s, &a, 12345), p); /* key_hash ignored */
		uint32_t m;
		const uint32_t *t = sched_maglev_table(s, &m);
		assert_int_equal(p, t[ikelb_hash_addr(&a, 0, SEED) % m]);
		cnt[p]++;
	}
	for (int i = 0; i < 4; i++)
		assert_true(cnt[i] > 800 && cnt[i] < 1200);
	assert_int_equal(sched_pick(s, NULL, 0), -1);
	sched_free(s);
}

static void maglev_uses_key_hash(void **state)
{
	(void)state;
	static const uint32_t w[] = { 1, 1, 2 };
	struct sched_server v[3];
	struct sched *s = mk(CFG_SCHED_MAGLEV, w, 3, v);
	uint32_t m;
	const uint32_t *t = sched_maglev_table(s, &m);
	assert_int_equal(m, 65537);
	int cnt[3] = { 0 };
	for (uint64_t k = 0; k < 40000; k++) {
		uint64_t h = ikelb_hash_u64(k, SEED);
		int p = sched_pick(s, NULL, h);
		assert_int_equal(p, (int)t[h % m]);
		assert_int_equal(sched_lookup_hash(s, h), p);
		cnt[p]++;
	}
	assert_true(cnt[2] > 18000 && cnt[2] < 22000);
	sched_free(s);
}

/* Draining and down servers get nothing new, under every scheduler. */
static void draining_and_down_get_nothing(void **state)
{
	(void)state;
	static const uint32_t w[] = { 1, 2, 3, 4 };
	for (int kind = CFG_SCHED_MAGLEV; kind <= CFG_SCHED_FO; kind++) {
		struct sched_server v[4];
		struct sched *s = mk((enum cfg_sched)kind, w, 4, v);
		sched_set_state(s, 0, SCHED_SRV_DRAINING);
		sched_set_state(s, 2, SCHED_SRV_DOWN);
		int seen[4] = { 0 };
		for (int i = 0; i < 2000; i++) {
			struct ikelb_addr a;
			client(&a, i);
			int p = sched_pick(s, &a, ikelb_hash_u64((uint64_t)i, SEED));
			assert_true(p == 1 || p == 3);
			seen[p]++;
			if (kind == CFG_SCHED_LC || kind == CFG_SCHED_WLC)
				sched_conn_inc(s, (size_t)p);
		}
		if (kind != CFG_SCHED_FO)
			assert_true(seen[1] > 0 && seen[3] > 0);
		sched_free(s);
	}
}

static void all_down_returns_minus_one(void **state)
{
	(void)state;
	static const uint32_t w[] = { 1, 1 };
	for (int kind = CFG_SCHED_MAGLEV; kind <= CFG_SCHED_FO; kind++) {
		struct sched_server v[2];
		struct sched *s = mk((enum cfg_sched)kind, w, 2, v);
		struct ikelb_addr a;
		client(&a, 1);
		assert_int_equal(sched_set_state(s, 0, SCHED_SRV_DOWN), 1);
		assert_int_equal(sched_set_state(s, 1, SCHED_SRV_DRAINING), 1);
		assert_int_equal(sched_has_eligible(s), 0);
		for (uint64_t k = 0; k < 50; k++)
			assert_int_equal(sched_pick(s, &a, k), -1);
		uint32_t m;
		const uint32_t *t = sched_maglev_table(s, &m);
		for (uint32_t i = 0; i < m; i++)
			assert_int_equal(t[i], MAGLEV_EMPTY);
		sched_free(s);
	}
	struct sched *e = sched_new(CFG_SCHED_RR, 0, SEED); /* no servers at all */
	assert_int_equal(sched_pick(e, NULL, 0), -1);
	sched_free(e);
}

static void update_rebuilds_only_when_needed(void **state)
{
	(void)state;
	static const uint32_t w[] = { 1, 1, 1 };
	struct sched_server v[3];
	struct sched *s = mk(CFG_SCHED_LC, w, 3, v);
	uint64_t g = sched_generation(s);
	sched_conn_inc(s, 2);
	/* same servers again: no rebuild, conns kept */
	assert_int_equal(sched_update(s, v, 3), 0);
	assert_int_equal(sched_generation(s), g);
	assert_int_equal(sched_conns(s, 2), 1);
	/* weight change of a down server: effective weight stays 0 */
	assert_int_equal(sched_set_state(s, 1, SCHED_SRV_DOWN), 1);
	g = sched_generation(s);
	assert_int_equal(sched_set_weight(s, 1, 7), 0);
	assert_int_equal(sched_generation(s), g);
	/* reorder: conns follow the server's identity */
	struct sched_server r[3] = { v[2], v[0], v[1] };
	assert_int_equal(sched_update(s, r, 3), 1);
	assert_int_equal(sched_conns(s, 0), 1);
	assert_int_equal(sched_conns(s, 2), 0);
	/* bad input leaves the view alone */
	r[0].state = 9;
	assert_true(sched_update(s, r, 3) < 0);
	assert_int_equal(sched_nservers(s), 3);
	assert_true(sched_set_state(s, 3, SCHED_SRV_ACTIVE) < 0);
	assert_null(sched_new(CFG_SCHED_MAGLEV, 65536, SEED));
	assert_null(sched_new((enum cfg_sched)99, 0, SEED));
	sched_free(s);
}

static void state_from_cfg(void **state)
{
	(void)state;
	/* The runtime's rule feeds the scheduler its states. */
	assert_int_equal(rt_effective(CFG_SRV_ACTIVE, HEALTH_UP, false), SCHED_SRV_ACTIVE);
	assert_int_equal(rt_effective(CFG_SRV_ACTIVE, HEALTH_DOWN, false), SCHED_SRV_DOWN);
	assert_int_equal(rt_effective(CFG_SRV_DRAINING, HEALTH_UP, false), SCHED_SRV_DRAINING);
	assert_int_equal(rt_effective(CFG_SRV_DISABLED, HEALTH_UP, false), SCHED_SRV_DOWN);
	assert_int_equal(rt_effective(CFG_SRV_ACTIVE, HEALTH_UNKNOWN, false), SCHED_SRV_ACTIVE);
	assert_int_equal(rt_effective(CFG_SRV_DRAINING, HEALTH_DOWN, false), SCHED_SRV_DOWN);
	/* init_state down: unknown keeps old clients, takes no new ones. */
	assert_int_equal(rt_effective(CFG_SRV_ACTIVE, HEALTH_UNKNOWN, true), SCHED_SRV_DRAINING);
	assert_int_equal(rt_effective(CFG_SRV_ACTIVE, HEALTH_UP, true), SCHED_SRV_ACTIVE);
	assert_int_equal(rt_effective(CFG_SRV_DISABLED, HEALTH_UNKNOWN, true), SCHED_SRV_DOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wrr_exact_proportions),
		cmocka_unit_test(rr_cycles_and_skips_ineligible),
		cmocka_unit_test(lc_picks_least_loaded),
		cmocka_unit_test(wlc_uses_conns_per_weight),
		cmocka_unit_test(fo_ordered_failover),
		cmocka_unit_test(sh_stable_per_client_and_spread),
		cmocka_unit_test(maglev_uses_key_hash),
		cmocka_unit_test(draining_and_down_get_nothing),
		cmocka_unit_test(all_down_returns_minus_one),
		cmocka_unit_test(update_rebuilds_only_when_needed),
		cmocka_unit_test(state_from_cfg),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
