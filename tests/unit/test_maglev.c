#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/maglev.h"

#define SEED 0x1b873593cc9e2d51ULL

/* N servers named vpnI at 198.18.(I/256).(I%256), keys built as in sched. */
struct fleet {
	size_t n;
	uint8_t (*keys)[MAGLEV_KEY_MAX];
	struct maglev_backend *b;
};

static void fleet_init(struct fleet *f, size_t n)
{
	f->n = n;
	f->keys = calloc(n, sizeof(*f->keys));
	f->b = calloc(n, sizeof(*f->b));
	assert_non_null(f->keys);
	assert_non_null(f->b);
	for (size_t i = 0; i < n; i++) {
		char name[32], ip[32];
		struct ikelb_addr a;
		snprintf(name, sizeof(name), "vpn%zu", i);
		snprintf(ip, sizeof(ip), "198.18.%zu.%zu", i / 256, i % 256);
		assert_int_equal(ikelb_addr_parse(ip, &a), 0);
		f->b[i].key = f->keys[i];
		f->b[i].key_len = maglev_server_key(name, &a, f->keys[i], MAGLEV_KEY_MAX);
		assert_true(f->b[i].key_len > 0);
		f->b[i].weight = 1;
	}
}

static void fleet_free(struct fleet *f)
{
	free(f->keys);
	free(f->b);
}

static uint32_t *build(const struct fleet *f, uint32_t m, uint64_t seed)
{
	uint32_t *t = malloc(m * sizeof(*t));
	assert_non_null(t);
	assert_int_equal(maglev_build(f->b, f->n, m, seed, t), 0);
	return t;
}

/* Largest |share - weight share| / weight share over servers with weight. */
static double max_deviation(const struct fleet *f, const uint32_t *t, uint32_t m)
{
	uint64_t *cnt = calloc(f->n, sizeof(*cnt));
	uint64_t wsum = 0;
	assert_non_null(cnt);
	for (uint32_t i = 0; i < m; i++) {
		assert_true(t[i] < f->n);
		assert_true(f->b[t[i]].weight > 0);
		cnt[t[i]]++;
	}
	for (size_t i = 0; i < f->n; i++)
		wsum += f->b[i].weight;
	double worst = 0;
	for (size_t i = 0; i < f->n; i++) {
		if (!f->b[i].weight)
			continue;
		double expect = (double)m * f->b[i].weight / (double)wsum;
		double d = fabs((double)cnt[i] - expect) / expect;
		if (d > worst)
			worst = d;
	}
	free(cnt);
	return worst;
}

static uint32_t size_for(size_t n)
{
	return n <= 600 ? 65537 : 100003;
}

static const size_t sizes[] = { 2, 3, 10, 100, 1000 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void balance_equal_weights(void **state)
{
	(void)state;
	printf("  %-6s %-7s %-14s\n", "N", "M", "max deviation");
	for (size_t k = 0; k < NSIZES; k++) {
		struct fleet f;
		fleet_init(&f, sizes[k]);
		uint32_t m = size_for(sizes[k]);
		uint32_t *t = build(&f, m, SEED);
		double d = max_deviation(&f, t, m);
		printf("  %-6zu %-7u %.4f%%\n", sizes[k], m, d * 100);
		assert_true(d <= 0.01);
		free(t);
		fleet_free(&f);
	}
}

static void balance_weighted(void **state)
{
	(void)state;
	static const uint32_t w3[] = { 1, 2, 3 };
	struct fleet f;
	fleet_init(&f, 3);
	for (int i = 0; i < 3; i++)
		f.b[i].weight = w3[i];
	uint32_t *t = build(&f, 65537, SEED);
	double d = max_deviation(&f, t, 65537);
	printf("  weights 1:2:3 max deviation %.4f%%\n", d * 100);
	assert_true(d <= 0.01);
	free(t);
	fleet_free(&f);

	/* Mixed weights over a larger fleet. */
	fleet_init(&f, 100);
	for (size_t i = 0; i < 100; i++)
		f.b[i].weight = 50 + (uint32_t)(i % 4) * 50; /* 50,100,150,200 */
	t = build(&f, 65537, SEED);
	d = max_deviation(&f, t, 65537);
	printf("  100 servers weights 50..200 max deviation %.4f%%\n", d * 100);
	assert_true(d <= 0.01);
	free(t);
	fleet_free(&f);
}

static double moved_fraction(const uint32_t *a, const uint32_t *b, uint32_t m)
{
	uint32_t moved = 0;
	for (uint32_t i = 0; i < m; i++)
		moved += a[i] != b[i];
	return (double)moved / m;
}

static void disruption_remove_and_restore(void **state)
{
	(void)state;
	printf("  %-6s %-7s %-10s %-10s\n", "N", "M", "moved", "bound 1/N+1%");
	for (size_t k = 0; k < NSIZES; k++) {
		size_t n = sizes[k];
		uint32_t m = size_for(n);
		struct fleet f;
		fleet_init(&f, n);
		uint32_t *before = build(&f, m, SEED);
		f.b[n / 2].weight = 0; /* server goes down: indexes stay */
		uint32_t *after = build(&f, m, SEED);
		double moved = moved_fraction(before, after, m);
		double bound = 1.0 / n + 0.01;
		printf("  %-6zu %-7u %.4f%%   %.4f%%\n", n, m, moved * 100, bound * 100);
		assert_true(moved <= bound);
		for (uint32_t i = 0; i < m; i++)
			assert_true(after[i] != n / 2);
		f.b[n / 2].weight = 1;
		uint32_t *back = build(&f, m, SEED);
		assert_memory_equal(before, back, m * sizeof(*before));
		free(before);
		free(after);
		free(back);
		fleet_free(&f);
	}
}

/* Removing a server from the array (not just weight 0) changes indexes;
 * compare by identity. */
static void disruption_removed_from_array(void **state)
{
	(void)state;
	size_t n = 10;
	struct fleet f;
	fleet_init(&f, n);
	uint32_t *before = build(&f, 65537, SEED);
	size_t gone = 3;
	memmove(&f.b[gone], &f.b[gone + 1], (n - gone - 1) * sizeof(f.b[0]));
	f.n = n - 1;
	uint32_t *after = build(&f, 65537, SEED);
	uint32_t moved = 0;
	for (uint32_t i = 0; i < 65537; i++) {
		size_t old_id = before[i];
		size_t new_id = after[i] >= gone ? after[i] + 1 : after[i];
		assert_true(new_id != gone);
		moved += old_id != new_id;
	}
	assert_true((double)moved / 65537 <= 1.0 / n + 0.01);
	free(before);
	free(after);
	fleet_free(&f);
}

static void deterministic_any_order(void **state)
{
	(void)state;
	size_t n = 50;
	struct fleet f, g;
	fleet_init(&f, n);
	fleet_init(&g, n);
	for (size_t i = 0; i < n; i++) /* g = f reversed, with varied weights */
		f.b[i].weight = 1 + (uint32_t)(i % 5);
	for (size_t i = 0; i < n; i++)
		g.b[i] = f.b[n - 1 - i];
	uint32_t *tf = build(&f, 65537, SEED);
	uint32_t *tg = build(&g, 65537, SEED);
	for (uint32_t i = 0; i < 65537; i++)
		assert_int_equal(tf[i], n - 1 - tg[i]);
	/* and rebuilding gives the same table */
	uint32_t *tf2 = build(&f, 65537, SEED);
	assert_memory_equal(tf, tf2, 65537 * sizeof(*tf));
	free(tf);
	free(tg);
	free(tf2);
	free(g.keys);
	free(g.b);
	fleet_free(&f);
}

static void seed_changes_table(void **state)
{
	(void)state;
	struct fleet f;
	fleet_init(&f, 10);
	uint32_t *a = build(&f, 65537, SEED);
	uint32_t *b = build(&f, 65537, SEED + 1);
	double moved = moved_fraction(a, b, 65537);
	assert_true(moved > 0.5); /* unrelated tables differ in ~90% of slots */
	free(a);
	free(b);
	fleet_free(&f);
}

static void zero_weights(void **state)
{
	(void)state;
	struct fleet f;
	fleet_init(&f, 4);
	f.b[0].weight = 0;
	f.b[2].weight = 0;
	uint32_t *t = build(&f, 65537, SEED);
	for (uint32_t i = 0; i < 65537; i++)
		assert_true(t[i] == 1 || t[i] == 3);
	free(t);
	for (int i = 0; i < 4; i++)
		f.b[i].weight = 0;
	t = build(&f, 65537, SEED);
	for (uint32_t i = 0; i < 65537; i++)
		assert_int_equal(t[i], MAGLEV_EMPTY);
	free(t);
	uint32_t small[7];
	assert_int_equal(maglev_build(NULL, 0, 7, SEED, small), 0);
	for (int i = 0; i < 7; i++)
		assert_int_equal(small[i], MAGLEV_EMPTY);
	fleet_free(&f);
}

static void bad_input(void **state)
{
	(void)state;
	struct fleet f;
	fleet_init(&f, 3);
	uint32_t *t = malloc(65536 * sizeof(*t));
	t[0] = 12345;
	assert_int_equal(maglev_build(f.b, 3, 65536, SEED, t), -EINVAL);
	assert_int_equal(maglev_build(f.b, 3, 65535, SEED, t), -EINVAL);
	assert_int_equal(maglev_build(f.b, 3, 1, SEED, t), -EINVAL);
	assert_int_equal(t[0], 12345); /* untouched on error */
	/* more weighted backends than slots */
	assert_int_equal(maglev_build(f.b, 3, 2, SEED, t), -EINVAL);
	/* duplicate key */
	f.b[1] = f.b[0];
	assert_int_equal(maglev_build(f.b, 3, 65537, SEED, t), -EINVAL);
	f.b[1].key = NULL;
	assert_int_equal(maglev_build(f.b, 3, 65537, SEED, t), -EINVAL);
	assert_int_equal(maglev_is_prime(65537), 1);
	assert_int_equal(maglev_is_prime(100003), 1);
	assert_int_equal(maglev_is_prime(65539), 1);
	assert_int_equal(maglev_is_prime(65541), 0); /* 3 * 21847 */
	assert_int_equal(maglev_build(f.b, 3, 65541, SEED, t), -EINVAL);
	assert_int_equal(maglev_default_size(10), 65537);
	assert_int_equal(maglev_default_size(1000), 100003);
	free(t);
	fleet_free(&f);
}

static void lookup_uses_modulo(void **state)
{
	(void)state;
	uint32_t t[5] = { 10, 11, 12, 13, 14 };
	assert_int_equal(maglev_lookup(t, 5, 7), 12);
	assert_int_equal(maglev_lookup(t, 5, UINT64_MAX), 10); /* 2^64-1 = 0 mod 5 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(balance_equal_weights),
		cmocka_unit_test(balance_weighted),
		cmocka_unit_test(disruption_remove_and_restore),
		cmocka_unit_test(disruption_removed_from_array),
		cmocka_unit_test(deterministic_any_order),
		cmocka_unit_test(seed_changes_table),
		cmocka_unit_test(zero_weights),
		cmocka_unit_test(bad_input),
		cmocka_unit_test(lookup_uses_modulo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
