#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/lru_table.h"

static const uint64_t HKEY[2] = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

static struct lru_table *mk(uint32_t cap, uint32_t key_len, uint64_t timeout)
{
	struct lru_opts o = { .capacity = cap, .key_len = key_len, .timeout = timeout,
				  .hash_key = { HKEY[0], HKEY[1] } };
	struct lru_table *t = lru_new(&o);
	assert_non_null(t);
	return t;
}

static struct lru_key_spi spi(uint64_t v)
{
	struct lru_key_spi k = { .spi_i = v };
	return k;
}

static void get_put_delete(void **state)
{
	(void)state;
	struct lru_table *t = mk(16, sizeof(struct lru_key_spi), 0);
	struct lru_key_spi a = spi(0x1111), b = spi(0x2222);
	struct lru_value v;
	assert_int_equal(lru_get(t, &a, 1, &v), -ENOENT);
	assert_int_equal(lru_put(t, &a, 3, 77, 1), 1);
	assert_int_equal(lru_put(t, &b, 4, 0, 2), 1);
	assert_int_equal(lru_get(t, &a, 5, &v), 0);
	assert_int_equal(v.server, 3);
	assert_int_equal(v.user, 77);
	assert_int_equal(v.last_seen, 5); /* get touches */
	assert_int_equal(lru_put(t, &a, 9, 1, 6), 0); /* overwrite */
	assert_int_equal(lru_get(t, &a, 6, &v), 0);
	assert_int_equal(v.server, 9);
	assert_int_equal(lru_size(t), 2);
	assert_int_equal(lru_del(t, &a), 0);
	assert_int_equal(lru_del(t, &a), -ENOENT);
	assert_int_equal(lru_get(t, &a, 7, &v), -ENOENT);
	assert_int_equal(lru_get(t, &b, 7, &v), 0);
	assert_int_equal(v.server, 4);
	assert_int_equal(lru_size(t), 1);
	struct lru_stats st;
	lru_get_stats(t, &st);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.inserts, 2);
	assert_int_equal(st.updates, 1);
	assert_int_equal(st.deletes, 1);
	assert_int_equal(st.size, 1);
	lru_free(t);
}

/* Alive while idle < timeout; gone when idle == timeout. */
static void expiry_at_exact_boundary(void **state)
{
	(void)state;
	struct lru_table *t = mk(8, 8, 300);
	struct lru_key_spi a = spi(1), b = spi(2);
	struct lru_value v;
	lru_put(t, &a, 1, 0, 1000);
	lru_put(t, &b, 2, 0, 1000);
	assert_int_equal(lru_peek(t, &a, 1299, &v), 0);
	assert_int_equal(lru_peek(t, &a, 1300, &v), -ENOENT);
	assert_int_equal(lru_get(t, &a, 1299, &v), 0); /* touch: now idle from 1299 */
	assert_int_equal(lru_get(t, &a, 1598, &v), 0);
	assert_int_equal(lru_get(t, &b, 1300, &v), -ENOENT); /* reclaimed */
	assert_int_equal(lru_size(t), 1);
	assert_int_equal(lru_get(t, &a, 1898, &v), -ENOENT);
	struct lru_stats st;
	lru_get_stats(t, &st);
	assert_int_equal(st.expirations, 2);
	assert_int_equal(lru_size(t), 0);

	/* sweeper: oldest first, exact boundary, bounded batch */
	for (uint64_t i = 0; i < 6; i++) {
		struct lru_key_spi k = spi(100 + i);
		lru_put(t, &k, 0, 0, 2000 + i);
	}
	assert_int_equal(lru_expire(t, 2301, 0), 2);   /* 2000, 2001 */
	assert_int_equal(lru_expire(t, 2305, 1), 1);   /* batch limit */
	assert_int_equal(lru_expire(t, 2305, 0), 3);   /* 2003..2005 */
	assert_int_equal(lru_size(t), 0);
	/* put over an expired entry is an insert, not an update */
	lru_put(t, &a, 1, 0, 3000);
	assert_int_equal(lru_put(t, &a, 2, 0, 3300), 1);
	lru_get_stats(t, &st);
	assert_int_equal(st.updates, 0);
	assert_int_equal(st.expirations, 9);
	/* timeout 0: never */
	lru_set_timeout(t, 0);
	lru_put(t, &a, 1, 0, 0);
	assert_int_equal(lru_get(t, &a, UINT64_MAX, &v), 0);
	lru_free(t);
}

static void lru_eviction_order(void **state)
{
	(void)state;
	struct lru_table *t = mk(3, 8, 0);
	struct lru_key_spi k[5];
	for (int i = 0; i < 5; i++)
		k[i] = spi((uint64_t)i + 1);
	lru_put(t, &k[0], 0, 0, 1);
	lru_put(t, &k[1], 1, 0, 2);
	lru_put(t, &k[2], 2, 0, 3);
	assert_int_equal(lru_get(t, &k[0], 4, NULL), 0); /* protects k0 */
	assert_int_equal(lru_put(t, &k[3], 3, 0, 5), 2); /* evicts k1 */
	assert_int_equal(lru_peek(t, &k[1], 5, NULL), -ENOENT);
	assert_int_equal(lru_peek(t, &k[0], 5, NULL), 0);
	assert_int_equal(lru_put(t, &k[4], 4, 0, 6), 2); /* evicts k2 */
	assert_int_equal(lru_peek(t, &k[2], 6, NULL), -ENOENT);
	assert_int_equal(lru_peek(t, &k[0], 6, NULL), 0);
	assert_int_equal(lru_peek(t, &k[3], 6, NULL), 0);
	assert_int_equal(lru_peek(t, &k[4], 6, NULL), 0);
	struct lru_stats st;
	lru_get_stats(t, &st);
	assert_int_equal(st.evictions, 2);
	/* an expired tail is reclaimed as an expiration, not an eviction */
	lru_set_timeout(t, 10);
	assert_int_equal(lru_put(t, &k[1], 1, 0, 14), 1); /* k0 (4) idle 10 */
	lru_get_stats(t, &st);
	assert_int_equal(st.evictions, 2);
	assert_int_equal(st.expirations, 1);
	lru_free(t);
}

static void capacity_bound(void **state)
{
	(void)state;
	uint32_t cap = 1000;
	struct lru_table *t = mk(cap, 8, 0);
	for (uint64_t i = 0; i < 2 * cap; i++) {
		struct lru_key_spi k = spi(i);
		assert_true(lru_put(t, &k, (uint32_t)i, 0, i) > 0);
		assert_true(lru_size(t) <= cap);
	}
	assert_int_equal(lru_size(t), cap);
	struct lru_stats st;
	lru_get_stats(t, &st);
	assert_int_equal(st.evictions, cap);
	assert_int_equal(st.inserts, 2 * cap);
	/* exactly the newest cap entries survive */
	for (uint64_t i = 0; i < 2 * cap; i++) {
		struct lru_key_spi k = spi(i);
		assert_int_equal(lru_peek(t, &k, 0, NULL), i < cap ? -ENOENT : 0);
	}
	lru_free(t);
}

static void netmask_keying(void **state)
{
	(void)state;
	struct lru_table *t = mk(64, sizeof(struct lru_key_client), 3600);
	struct ikelb_addr c1, c2, c3, v6a, v6b;
	ikelb_addr_parse("203.0.113.10", &c1);
	ikelb_addr_parse("203.0.113.200", &c2);
	ikelb_addr_parse("198.51.100.10", &c3);
	ikelb_addr_parse("2001:db8:1:2::1", &v6a);
	ikelb_addr_parse("2001:db8:1:2::99", &v6b);
	struct lru_key_client k1, k2, k3, k6a, k6b;
	lru_key_client_make(&k1, &c1, 24, 64);
	lru_key_client_make(&k2, &c2, 24, 64);
	lru_key_client_make(&k3, &c3, 24, 64);
	lru_key_client_make(&k6a, &v6a, 24, 64);
	lru_key_client_make(&k6b, &v6b, 24, 64);
	assert_int_equal(lru_put(t, &k1, 5, 0, 1), 1);
	struct lru_value v;
	assert_int_equal(lru_get(t, &k2, 2, &v), 0); /* same /24 */
	assert_int_equal(v.server, 5);
	assert_int_equal(lru_get(t, &k3, 2, &v), -ENOENT);
	lru_put(t, &k6a, 7, 0, 3);
	assert_int_equal(lru_get(t, &k6b, 4, &v), 0); /* same /64 */
	assert_int_equal(v.server, 7);
	/* /32: distinct */
	lru_key_client_make(&k1, &c1, 32, 128);
	lru_key_client_make(&k2, &c2, 32, 128);
	assert_memory_not_equal(&k1, &k2, sizeof(k1));
	/* flow keys: ports matter */
	struct lru_key_flow f1, f2;
	lru_key_flow_make(&f1, &c1, 4500, &c3, 4500);
	lru_key_flow_make(&f2, &c1, 4501, &c3, 4500);
	assert_memory_not_equal(&f1, &f2, sizeof(f1));
	lru_free(t);
}

static void iterator_and_del_server(void **state)
{
	(void)state;
	struct lru_table *t = mk(16, 8, 100);
	for (uint64_t i = 0; i < 6; i++) {
		struct lru_key_spi k = spi(i);
		lru_put(t, &k, (uint32_t)(i % 2), (uint32_t)i, 10 * i);
	}
	/* at now = 105 the entry from time 0 is expired: 5 live, newest first */
	struct lru_iter it;
	const void *key;
	struct lru_value v;
	uint64_t expect = 5;
	int n = 0;
	lru_iter_init(&it, t, 105);
	while (lru_iter_next(&it, &key, &v)) {
		struct lru_key_spi k;
		memcpy(&k, key, sizeof(k));
		assert_int_equal(k.spi_i, expect);
		assert_int_equal(v.user, expect);
		assert_int_equal(v.last_seen, 10 * expect);
		expect--;
		n++;
		if (v.server == 1) /* deleting the current entry is allowed */
			assert_int_equal(lru_del(t, key), 0);
	}
	assert_int_equal(n, 5);
	assert_int_equal(lru_size(t), 3); /* 0 (expired, not reclaimed), 2, 4 */
	assert_int_equal(lru_del_server(t, 0), 3);
	assert_int_equal(lru_size(t), 0);
	lru_iter_init(&it, t, 105);
	assert_false(lru_iter_next(&it, &key, &v));
	lru_free(t);
}

static void bad_options(void **state)
{
	(void)state;
	struct lru_opts o = { .capacity = 0, .key_len = 8 };
	assert_null(lru_new(&o));
	o.capacity = 4;
	o.key_len = 0;
	assert_null(lru_new(&o));
	o.key_len = LRU_KEY_MAX + 1;
	assert_null(lru_new(&o));
	assert_null(lru_new(NULL));
	o.key_len = 8; /* random hash key path */
	struct lru_table *t = lru_new(&o);
	assert_non_null(t);
	struct lru_key_spi k = spi(9);
	assert_int_equal(lru_put(t, &k, 1, 0, 0), 1);
	assert_int_equal(lru_get(t, &k, 0, NULL), 0);
	lru_free(t);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void one_million_flows(void **state)
{
	(void)state;
	const uint32_t n = 1u << 20;
	struct lru_table *t = mk(n, sizeof(struct lru_key_flow), 300);
	struct ikelb_addr vip, c;
	ikelb_addr_parse("198.51.100.1", &vip);
	ikelb_addr_parse("198.18.0.0", &c);
	double t0 = now_s();
	for (uint32_t i = 0; i < n; i++) {
		struct lru_key_flow k;
		c.b[13] = (uint8_t)(i >> 16);
		c.b[14] = (uint8_t)(i >> 8);
		c.b[15] = (uint8_t)i;
		lru_key_flow_make(&k, &c, (uint16_t)(1024 + (i & 7)), &vip, 4500);
		assert_int_equal(lru_put(t, &k, i & 15, 0, 1), 1);
	}
	double t1 = now_s();
	uint32_t found = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct lru_key_flow k;
		struct lru_value v;
		c.b[13] = (uint8_t)(i >> 16);
		c.b[14] = (uint8_t)(i >> 8);
		c.b[15] = (uint8_t)i;
		lru_key_flow_make(&k, &c, (uint16_t)(1024 + (i & 7)), &vip, 4500);
		if (lru_get(t, &k, 2, &v) == 0 && v.server == (i & 15))
			found++;
	}
	double t2 = now_s();
	assert_int_equal(found, n);
	assert_int_equal(lru_size(t), n);
	printf("  flow table %u entries: insert %.3f s (%.0f ns/op), lookup %.3f s (%.0f ns/op), "
	       "%.1f bytes/entry, %.1f MiB\n",
	       n, t1 - t0, (t1 - t0) * 1e9 / n, t2 - t1, (t2 - t1) * 1e9 / n,
	       lru_bytes_per_entry(t), lru_bytes(t) / 1048576.0);
	lru_free(t);
	struct lru_table *c16 = mk(n, sizeof(struct lru_key_client), 1);
	struct lru_table *s8 = mk(n, sizeof(struct lru_key_spi), 1);
	printf("  client table %.1f bytes/entry, spi table %.1f bytes/entry (capacity %u)\n",
	       lru_bytes_per_entry(c16), lru_bytes_per_entry(s8), n);
	lru_free(c16);
	lru_free(s8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(get_put_delete),
		cmocka_unit_test(expiry_at_exact_boundary),
		cmocka_unit_test(lru_eviction_order),
		cmocka_unit_test(capacity_bound),
		cmocka_unit_test(netmask_keying),
		cmocka_unit_test(iterator_and_del_server),
		cmocka_unit_test(bad_options),
		cmocka_unit_test(one_million_flows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
