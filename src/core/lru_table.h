/* A bounded LRU table with idle timeout and fixed key length: the
 * user-space state tables (ARCHITECTURE.md, "State tables") of steering
 * (persistence, IKE SA, half-open, flow) and the socket engine's flow and
 * source-binding indexes are all one of these:
 *
 *  - capacity fixed at creation, every entry preallocated: memory is
 *    bounded and known up front (lru_bytes);
 *  - chained hashing (SipHash-2-4 with a per-table secret key, so clients
 *    cannot choose colliding keys) + an intrusive doubly linked LRU list,
 *    both by 32-bit index: O(1) get / put / delete;
 *  - idle timeout: an entry whose idle time (now - last_seen) has reached
 *    `timeout` is absent: get/put reclaim it, lru_expire sweeps them;
 *  - full table: put evicts the least recently used entry (counted).
 *
 * Time is whatever unit the caller uses (ms or s), passed in explicitly;
 * it must not go backwards between calls on one table (lru_expire
 * relies on LRU order being last_seen order). timeout 0 = never expires.
 *
 * Bytes per entry (docs/state.md): 32-byte header + key rounded up to 8,
 * plus one 4-byte bucket per power-of-two >= capacity:
 *   client (16-byte key) 48 + 4..8,  spi (8) 40 + 4..8,  flow (36) 72 + 4..8.
 * Not thread-safe: one owner or the caller's lock.
 */
#ifndef IKELB_CORE_LRU_TABLE_H
#define IKELB_CORE_LRU_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ikelb/addr.h"

#define LRU_KEY_MAX 64
#define LRU_CAPACITY_MAX (1u << 30)

/* Keys. Build them with the helpers (which zero any slack) so equal
 * logical keys are equal bytes. */
struct lru_key_client {     /* source-ip: client address under the mask */
	struct ikelb_addr addr;
};
struct lru_key_spi {        /* IKE SA, one table per service */
	uint64_t spi_i;         /* as read from the wire, any byte order, consistently */
};
struct lru_key_flow {       /* client (ip, port) -> (vip, port) */
	struct ikelb_addr client;
	struct ikelb_addr vip;
	uint16_t cport;         /* host order */
	uint16_t vport;
};
_Static_assert(sizeof(struct lru_key_client) == 16, "lru_key_client");
_Static_assert(sizeof(struct lru_key_spi) == 8, "lru_key_spi");
_Static_assert(sizeof(struct lru_key_flow) == 36, "lru_key_flow");

/* bits4 applies to IPv4(-mapped) clients (0..32), bits6 to IPv6 (0..128). */
void lru_key_client_make(struct lru_key_client *k, const struct ikelb_addr *client,
			     int bits4, int bits6);
void lru_key_flow_make(struct lru_key_flow *k, const struct ikelb_addr *client,
			   uint16_t cport, const struct ikelb_addr *vip, uint16_t vport);

struct lru_opts {
	uint32_t capacity;   /* 1..LRU_CAPACITY_MAX entries */
	uint32_t key_len;    /* 1..LRU_KEY_MAX, e.g. sizeof(struct lru_key_flow) */
	uint64_t timeout;    /* idle timeout in the caller's time unit, 0 = none */
	uint64_t hash_key[2];/* SipHash key for buckets; {0,0} = random (getrandom) */
};

struct lru_value {
	uint32_t server;     /* server index in the service */
	uint32_t user;       /* caller's field (e.g. flags, SNAT pool slot) */
	uint64_t last_seen;
};

struct lru_stats {
	uint64_t hits, misses, inserts, updates, deletes, evictions, expirations;
	uint32_t size, capacity;
};

struct lru_table;

struct lru_table *lru_new(const struct lru_opts *o); /* NULL: bad opts / ENOMEM */
void lru_free(struct lru_table *t);

/* Hit: 0, fills *out (may be NULL) and touches the entry (last_seen = now,
 * most recently used). Miss or expired: -ENOENT (an expired entry is
 * reclaimed and counted). */
int lru_get(struct lru_table *t, const void *key, uint64_t now,
		struct lru_value *out);
/* Like get but neither touches nor reclaims nor counts (API listing). */
int lru_peek(const struct lru_table *t, const void *key, uint64_t now,
		 struct lru_value *out);
/* Insert or overwrite; the entry becomes most recently used with
 * last_seen = now. Returns 0 updated, 1 inserted, 2 inserted after evicting
 * the least recently used live entry. */
int lru_put(struct lru_table *t, const void *key, uint32_t server, uint32_t user,
		uint64_t now);
int lru_del(struct lru_table *t, const void *key); /* 0 or -ENOENT */
/* Delete every entry of `server` (it was removed); returns how many. */
size_t lru_del_server(struct lru_table *t, uint32_t server);
/* Reclaim up to `max` expired entries (0 = no limit), oldest first;
 * O(number reclaimed). Returns how many. */
size_t lru_expire(struct lru_table *t, uint64_t now, size_t max);

void lru_set_timeout(struct lru_table *t, uint64_t timeout);
uint32_t lru_size(const struct lru_table *t);
void lru_get_stats(const struct lru_table *t, struct lru_stats *st);
/* Bytes allocated for the whole table / per entry (buckets included). */
size_t lru_bytes(const struct lru_table *t);
double lru_bytes_per_entry(const struct lru_table *t);

/* Iterate live (unexpired at `now`) entries, most recently used first,
 * without touching them. The entry just returned may be deleted with
 * lru_del during iteration; other modifications end the iteration's
 * validity. */
struct lru_iter {
	const struct lru_table *t;
	uint32_t next;
	uint64_t now;
};
void lru_iter_init(struct lru_iter *it, const struct lru_table *t, uint64_t now);
/* true and fills *key (points into the table) and *v, false at the end. */
bool lru_iter_next(struct lru_iter *it, const void **key, struct lru_value *v);

#endif
