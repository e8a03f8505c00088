/* Bounded LRU state tables; the design and byte sizes are in lru_table.h and
 * docs/state.md. Entries are addressed by 32-bit index (half the size of
 * pointers) and live in one preallocated array with a fixed stride. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ikelb/hash.h"
#include "core/lru_table.h"

#define NIL UINT32_MAX

struct pe_hdr {
	uint32_t hnext;      /* bucket chain; free list link when unused */
	uint32_t lprev;      /* LRU list, towards most recently used */
	uint32_t lnext;      /* towards least recently used */
	uint32_t hash;       /* low 32 bits of the key's SipHash */
	uint64_t last_seen;
	uint32_t server;
	uint32_t user;
	/* key bytes follow, padded to 8 */
};
_Static_assert(sizeof(struct pe_hdr) == 32, "lru entry header");

struct lru_table {
	uint8_t *ents;
	uint32_t *buckets;
	size_t stride;
	uint32_t nbuckets;   /* power of two */
	uint32_t capacity;
	uint32_t key_len;
	uint32_t size;
	uint32_t fresh;      /* entries [fresh, capacity) were never used */
	uint32_t free_head;
	uint32_t lru_head;   /* most recently used */
	uint32_t lru_tail;   /* least recently used */
	uint64_t timeout;
	uint64_t k0, k1;
	struct lru_stats st;
};

static struct pe_hdr *ent(const struct lru_table *t, uint32_t i)
{
	return (struct pe_hdr *)(t->ents + (size_t)i * t->stride);
}

static uint8_t *ent_key(const struct lru_table *t, uint32_t i)
{
	return (uint8_t *)ent(t, i) + sizeof(struct pe_hdr);
}

static int expired(const struct lru_table *t, const struct pe_hdr *e, uint64_t now)
{
	/* Idle time reaching the timeout means gone; a clock that appears to
	 * run backwards counts as no idle time. */
	return t->timeout && now > e->last_seen && now - e->last_seen >= t->timeout;
}

void lru_key_client_make(struct lru_key_client *k, const struct ikelb_addr *client,
			     int bits4, int bits6)
{
	memset(k, 0, sizeof(*k));
	k->addr = *client;
	int v4 = ikelb_addr_is_v4(client);
	int bits = v4 ? bits4 : bits6;
	int max = v4 ? 32 : 128;
	if (bits < 0)
		bits = 0;
	if (bits < max)
		ikelb_addr_mask(&k->addr, bits);
}

void lru_key_flow_make(struct lru_key_flow *k, const struct ikelb_addr *client,
			   uint16_t cport, const struct ikelb_addr *vip, uint16_t vport)
{
	memset(k, 0, sizeof(*k));
	k->client = *client;
	k->vip = *vip;
	k->cport = cport;
	k->vport = vport;
}

static void random_key(uint64_t k[2])
{
	if (getrandom(k, 2 * sizeof(uint64_t), 0) == (ssize_t)(2 * sizeof(uint64_t)))
		return;
	/* No entropy source: still unpredictable enough to vary per run. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	k[0] = ikelb_fmix64((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)k);
	k[1] = ikelb_fmix64((uint64_t)ts.tv_sec ^ k[0]);
}

struct lru_table *lru_new(const struct lru_opts *o)
{
	if (!o || o->capacity == 0 || o->capacity > LRU_CAPACITY_MAX || o->key_len == 0 ||
	    o->key_len > LRU_KEY_MAX)
		return NULL;
	struct lru_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->capacity = o->capacity;
	t->key_len = o->key_len;
	t->stride = sizeof(struct pe_hdr) + ((o->key_len + 7u) & ~7u);
	t->nbuckets = 1;
	while (t->nbuckets < o->capacity)
		t->nbuckets <<= 1;
	t->ents = calloc(o->capacity, t->stride); /* pages touched only when used */
	t->buckets = malloc((size_t)t->nbuckets * sizeof(uint32_t));
	if (!t->ents || !t->buckets) {
		lru_free(t);
		return NULL;
	}
	memset(t->buckets, 0xff, (size_t)t->nbuckets * sizeof(uint32_t));
	t->free_head = t->lru_head = t->lru_tail = NIL;
	t->timeout = o->timeout;
	uint64_t k[2] = { o->hash_key[0], o->hash_key[1] };
	if (!k[0] && !k[1])
		random_key(k);
	t->k0 = k[0];
	t->k1 = k[1];
	t->st.capacity = o->capacity;
	return t;
}

void lru_free(struct lru_table *t)
{
	if (!t)
		return;
	free(t->ents);
	free(t->buckets);
	free(t);
}

static uint32_t key_hash(const struct lru_table *t, const void *key)
{
	return (uint32_t)siphash24(key, t->key_len, t->k0, t->k1);
}

/* Index of the entry with `key`, or NIL; *prevp gets its chain predecessor. */
static uint32_t find(const struct lru_table *t, const void *key, uint32_t h, uint32_t *prevp)
{
	uint32_t prev = NIL;
	for (uint32_t i = t->buckets[h & (t->nbuckets - 1)]; i != NIL; i = ent(t, i)->hnext) {
		if (ent(t, i)->hash == h && memcmp(ent_key(t, i), key, t->key_len) == 0) {
			if (prevp)
				*prevp = prev;
			return i;
		}
		prev = i;
	}
	return NIL;
}

static void lru_unlink(struct lru_table *t, uint32_t i)
{
	struct pe_hdr *e = ent(t, i);
	if (e->lprev != NIL)
		ent(t, e->lprev)->lnext = e->lnext;
	else
		t->lru_head = e->lnext;
	if (e->lnext != NIL)
		ent(t, e->lnext)->lprev = e->lprev;
	else
		t->lru_tail = e->lprev;
}

static void lru_push_head(struct lru_table *t, uint32_t i)
{
	struct pe_hdr *e = ent(t, i);
	e->lprev = NIL;
	e->lnext = t->lru_head;
	if (t->lru_head != NIL)
		ent(t, t->lru_head)->lprev = i;
	t->lru_head = i;
	if (t->lru_tail == NIL)
		t->lru_tail = i;
}

/* Unlink entry i (chain predecessor prev) from everything and free it. */
static void remove_at(struct lru_table *t, uint32_t i, uint32_t prev)
{
	struct pe_hdr *e = ent(t, i);
	if (prev == NIL)
		t->buckets[e->hash & (t->nbuckets - 1)] = e->hnext;
	else
		ent(t, prev)->hnext = e->hnext;
	lru_unlink(t, i);
	e->hnext = t->free_head;
	t->free_head = i;
	t->size--;
}

static void remove_entry(struct lru_table *t, uint32_t i)
{
	uint32_t prev = NIL;
	find(t, ent_key(t, i), ent(t, i)->hash, &prev);
	remove_at(t, i, prev);
}

int lru_get(struct lru_table *t, const void *key, uint64_t now,
		struct lru_value *out)
{
	uint32_t prev = NIL;
	uint32_t i = find(t, key, key_hash(t, key), &prev);
	if (i != NIL && expired(t, ent(t, i), now)) {
		remove_at(t, i, prev);
		t->st.expirations++;
		i = NIL;
	}
	if (i == NIL) {
		t->st.misses++;
		return -ENOENT;
	}
	struct pe_hdr *e = ent(t, i);
	if (now > e->last_seen)
		e->last_seen = now;
	lru_unlink(t, i);
	lru_push_head(t, i);
	t->st.hits++;
	if (out)
		*out = (struct lru_value){ e->server, e->user, e->last_seen };
	return 0;
}

int lru_peek(const struct lru_table *t, const void *key, uint64_t now,
		 struct lru_value *out)
{
	uint32_t i = find(t, key, key_hash(t, key), NULL);
	if (i == NIL || expired(t, ent(t, i), now))
		return -ENOENT;
	const struct pe_hdr *e = ent(t, i);
	if (out)
		*out = (struct lru_value){ e->server, e->user, e->last_seen };
	return 0;
}

/* A free entry index, reclaiming the LRU tail when full. *evicted tells
 * whether a live entry had to go. */
static uint32_t alloc_entry(struct lru_table *t, uint64_t now, int *evicted)
{
	*evicted = 0;
	if (t->size == t->capacity) {
		uint32_t victim = t->lru_tail;
		if (expired(t, ent(t, victim), now)) {
			t->st.expirations++;
		} else {
			t->st.evictions++;
			*evicted = 1;
		}
		remove_entry(t, victim);
	}
	if (t->free_head != NIL) {
		uint32_t i = t->free_head;
		t->free_head = ent(t, i)->hnext;
		return i;
	}
	return t->fresh++;
}

int lru_put(struct lru_table *t, const void *key, uint32_t server, uint32_t user,
		uint64_t now)
{
	uint32_t h = key_hash(t, key);
	uint32_t i = find(t, key, h, NULL);
	if (i != NIL) {
		struct pe_hdr *e = ent(t, i);
		/* An expired entry was already absent: reuse it as a new one. */
		int was_expired = expired(t, e, now);
		e->server = server;
		e->user = user;
		e->last_seen = now;
		lru_unlink(t, i);
		lru_push_head(t, i);
		if (was_expired) {
			t->st.expirations++;
			t->st.inserts++;
			return 1;
		}
		t->st.updates++;
		return 0;
	}
	int evicted;
	i = alloc_entry(t, now, &evicted);
	struct pe_hdr *e = ent(t, i);
	*e = (struct pe_hdr){ .hash = h, .last_seen = now, .server = server, .user = user };
	memcpy(ent_key(t, i), key, t->key_len);
	uint32_t *b = &t->buckets[h & (t->nbuckets - 1)];
	e->hnext = *b;
	*b = i;
	lru_push_head(t, i);
	t->size++;
	t->st.inserts++;
	return evicted ? 2 : 1;
}

int lru_del(struct lru_table *t, const void *key)
{
	uint32_t prev = NIL;
	uint32_t i = find(t, key, key_hash(t, key), &prev);
	if (i == NIL)
		return -ENOENT;
	remove_at(t, i, prev);
	t->st.deletes++;
	return 0;
}

size_t lru_del_server(struct lru_table *t, uint32_t server)
{
	size_t n = 0;
	for (uint32_t i = t->lru_head, next; i != NIL; i = next) {
		next = ent(t, i)->lnext;
		if (ent(t, i)->server == server) {
			remove_entry(t, i);
			t->st.deletes++;
			n++;
		}
	}
	return n;
}

size_t lru_expire(struct lru_table *t, uint64_t now, size_t max)
{
	size_t n = 0;
	while (t->lru_tail != NIL && (max == 0 || n < max) &&
	       expired(t, ent(t, t->lru_tail), now)) {
		remove_entry(t, t->lru_tail);
		t->st.expirations++;
		n++;
	}
	return n;
}

void lru_set_timeout(struct lru_table *t, uint64_t timeout) { t->timeout = timeout; }
uint32_t lru_size(const struct lru_table *t) { return t->size; }

void lru_get_stats(const struct lru_table *t, struct lru_stats *st)
{
	*st = t->st;
	st->size = t->size;
	st->capacity = t->capacity;
}

size_t lru_bytes(const struct lru_table *t)
{
	return sizeof(*t) + (size_t)t->capacity * t->stride + (size_t)t->nbuckets * sizeof(uint32_t);
}

double lru_bytes_per_entry(const struct lru_table *t)
{
	return (double)lru_bytes(t) / (double)t->capacity;
}

void lru_iter_init(struct lru_iter *it, const struct lru_table *t, uint64_t now)
{
	it->t = t;
	it->next = t->lru_head;
	it->now = now;
}

bool lru_iter_next(struct lru_iter *it, const void **key, struct lru_value *v)
{
	const struct lru_table *t = it->t;
	while (it->next != NIL) {
		uint32_t i = it->next;
		const struct pe_hdr *e = ent(t, i);
		it->next = e->lnext;
		if (expired(t, e, it->now))
			continue;
		if (key)
			*key = ent_key(t, i);
		if (v)
			*v = (struct lru_value){ e->server, e->user, e->last_seen };
		return true;
	}
	return false;
}
