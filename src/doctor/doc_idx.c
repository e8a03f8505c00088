/* A u64 -> index hash (open addressing, linear probing) and array growth,
 * for the doctor's SA and ESP tables. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doc_int.h"

#define EMPTY 0

static uint64_t stored(uint64_t key)
{
	return key ? key : ~(uint64_t)0;
}

static size_t slot_of(uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

int doc_idx_find(const struct doc_idx *x, uint64_t key)
{
	if (!x->cap)
		return -1;
	uint64_t k = stored(key);
	for (size_t s = slot_of(k, x->cap);; s = (s + 1) & (x->cap - 1)) {
		if (x->keys[s] == EMPTY)
			return -1;
		if (x->keys[s] == k)
			return (int)x->vals[s];
	}
}

static void insert(struct doc_idx *x, uint64_t k, uint32_t val)
{
	size_t s = slot_of(k, x->cap);
	while (x->keys[s] != EMPTY && x->keys[s] != k)
		s = (s + 1) & (x->cap - 1);
	if (x->keys[s] == EMPTY)
		x->used++;
	x->keys[s] = k;
	x->vals[s] = val;
}

static int rehash(struct doc_idx *x, size_t cap)
{
	struct doc_idx n = { calloc(cap, sizeof(uint64_t)), calloc(cap, sizeof(uint32_t)), cap, 0 };
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return -ENOMEM;
	}
	for (size_t s = 0; s < x->cap; s++)
		if (x->keys[s] != EMPTY)
			insert(&n, x->keys[s], x->vals[s]);
	doc_idx_free(x);
	*x = n;
	return 0;
}

int doc_idx_put(struct doc_idx *x, uint64_t key, uint32_t val)
{
	if ((x->used + 1) * 2 > x->cap && rehash(x, x->cap ? x->cap * 2 : 64) < 0)
		return -ENOMEM;
	insert(x, stored(key), val);
	return 0;
}

void doc_idx_free(struct doc_idx *x)
{
	free(x->keys);
	free(x->vals);
	memset(x, 0, sizeof(*x));
}

/* arr with room for `need` elements (doubling), or NULL (arr untouched). */
void *doc_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return arr;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *p = realloc(arr, n * elem);
	if (p)
		*cap = n;
	return p;
}
