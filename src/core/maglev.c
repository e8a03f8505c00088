/* Weighted Maglev table builder; the algorithm and its determinism rules
 * are described in maglev.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ikelb/hash.h"
#include "core/maglev.h"

struct mg_perm {
	uint32_t idx;      /* caller's backend index */
	uint32_t weight;
	uint32_t offset;
	uint32_t skip;
	uint32_t next;     /* position j in the permutation */
	uint64_t credit;
	const uint8_t *key;
	size_t key_len;
};

int maglev_is_prime(uint32_t m)
{
	if (m < 2)
		return 0;
	if (m % 2 == 0)
		return m == 2;
	for (uint32_t d = 3; (uint64_t)d * d <= m; d += 2)
		if (m % d == 0)
			return 0;
	return 1;
}

uint32_t maglev_prime_at_least(uint64_t v)
{
	for (; v <= MAGLEV_MAX_SIZE; v++)
		if (maglev_is_prime((uint32_t)v))
			return (uint32_t)v;
	return 0;
}

/* 100 slots per server keep each server's share within about 1% of its
 * weight (paper §5.3); below MAGLEV_DEFAULT_SIZE a bigger table costs
 * nothing worth saving. 100 * n is never prime, so "> 100n" and ">= 100n"
 * pick the same size. */
uint32_t maglev_default_size(size_t n)
{
	uint64_t want = (uint64_t)n * 100;
	return maglev_prime_at_least(want > MAGLEV_DEFAULT_SIZE ? want : MAGLEV_DEFAULT_SIZE);
}

size_t maglev_server_key(const char *name, const struct ikelb_addr *addr, void *out, size_t len)
{
	size_t nl = strnlen(name, MAGLEV_KEY_MAX);
	size_t need = nl + 1 + sizeof(addr->b);
	if (need > len || need > MAGLEV_KEY_MAX)
		return 0;
	uint8_t *o = out;
	memcpy(o, name, nl);
	o[nl] = 0;
	memcpy(o + nl + 1, addr->b, sizeof(addr->b));
	return need;
}

static int mg_key_cmp(const struct mg_perm *a, const struct mg_perm *b)
{
	size_t l = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c = memcmp(a->key, b->key, l);
	if (c)
		return c;
	return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static int mg_qsort_cmp(const void *a, const void *b)
{
	return mg_key_cmp(a, b);
}

/* Collect weighted backends, sorted by key so input order cannot matter. */
static int mg_collect(const struct maglev_backend *b, size_t n, uint32_t m, uint64_t seed,
		      struct mg_perm *p, size_t *np, uint32_t *wmax)
{
	size_t k = 0;
	*wmax = 0;
	for (size_t i = 0; i < n; i++) {
		if (!b[i].key || b[i].key_len == 0 || b[i].key_len > MAGLEV_KEY_MAX)
			return -EINVAL;
		if (b[i].weight == 0)
			continue;
		struct mg_perm *e = &p[k++];
		e->idx = (uint32_t)i;
		e->weight = b[i].weight;
		e->key = b[i].key;
		e->key_len = b[i].key_len;
		e->offset = (uint32_t)(siphash24(e->key, e->key_len, seed, MAGLEV_K1_OFFSET) % m);
		e->skip = (uint32_t)(siphash24(e->key, e->key_len, seed, MAGLEV_K1_SKIP) % (m - 1)) + 1;
		e->next = 0;
		e->credit = 0;
		if (e->weight > *wmax)
			*wmax = e->weight;
	}
	if (k > m)
		return -EINVAL;
	qsort(p, k, sizeof(*p), mg_qsort_cmp);
	for (size_t i = 1; i < k; i++)
		if (mg_key_cmp(&p[i - 1], &p[i]) == 0)
			return -EINVAL;
	*np = k;
	return 0;
}

/* Next free slot in e's permutation; one exists while the table has room. */
static uint32_t mg_next_slot(struct mg_perm *e, const uint32_t *table, uint32_t m)
{
	for (;;) {
		uint32_t c = (uint32_t)(((uint64_t)e->offset + (uint64_t)e->next * e->skip) % m);
		e->next++;
		if (table[c] == MAGLEV_EMPTY)
			return c;
	}
}

static void mg_fill(struct mg_perm *p, size_t k, uint32_t wmax, uint32_t m, uint32_t *table)
{
	uint32_t filled = 0;
	while (filled < m) {
		for (size_t i = 0; i < k && filled < m; i++) {
			struct mg_perm *e = &p[i];
			e->credit += e->weight;
			if (e->credit < wmax)
				continue;
			e->credit -= wmax;
			table[mg_next_slot(e, table, m)] = e->idx;
			filled++;
		}
	}
}

int maglev_build(const struct maglev_backend *b, size_t n, uint32_t m, uint64_t seed,
		 uint32_t *table)
{
	if (!table || (n && !b) || m < 3 || m > MAGLEV_MAX_SIZE || !maglev_is_prime(m) ||
	    n > UINT32_MAX - 1)
		return -EINVAL;
	struct mg_perm *p = calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	size_t k = 0;
	uint32_t wmax = 0;
	int rc = mg_collect(b, n, m, seed, p, &k, &wmax);
	if (rc == 0) {
		for (uint32_t i = 0; i < m; i++)
			table[i] = MAGLEV_EMPTY;
		if (k)
			mg_fill(p, k, wmax, m, table);
	}
	free(p);
	return rc;
}
