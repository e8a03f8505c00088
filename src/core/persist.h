/* User-space state tables (DESIGN.md §3.4): source-ip persistence, IKE SA
 * (SPIi) and client flow tables of the socket engine and the daemon's
 * mirror/sweeper. One generic bounded table with a fixed key length:
 *
 *  - capacity fixed at creation, every entry preallocated: memory is
 *    bounded and known up front (persist_bytes);
 *  - chained hashing (SipHash-2-4 with a per-table secret key, so clients
 *    cannot choose colliding keys) + an intrusive doubly linked LRU list,
 *    both by 32-bit index: O(1) get / put / delete;
 *  - idle timeout: an entry whose idle time (now - last_seen) has reached
 *    `timeout` is absent: get/put reclaim it, persist_expire sweeps them;
 *  - full table: put evicts the least recently used entry (counted).
 *
 * Time is whatever unit the caller uses (ms or s), passed in explicitly;
 * it must not go backwards between calls on one table (persist_expire
 * relies on LRU order being last_seen order). timeout 0 = never expires.
 *
 * Bytes per entry (docs/state.md): 32-byte header + key rounded up to 8,
 * plus one 4-byte bucket per power-of-two >= capacity:
 *   client (16-byte key) 48 + 4..8,  spi (8) 40 + 4..8,  flow (36) 72 + 4..8.
 * Not thread-safe: one owner or the caller's lock.
 */
#ifndef IKELB_PERSIST_H
#define IKELB_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ikelb/addr.h"

#define PERSIST_KEY_MAX 64
#define PERSIST_CAPACITY_MAX (1u << 30)

/* Keys. Build them with the helpers (which zero any slack) so equal
 * logical keys are equal bytes. */
struct persist_key_client {     /* source-ip: client address under the mask */
	struct ikelb_addr addr;
};
struct persist_key_spi {        /* IKE SA, one table per service */
	uint64_t spi_i;         /* as read from the wire, any byte order, consistently */
};
struct persist_key_flow {       /* client (ip, port) -> (vip, port) */
	struct ikelb_addr client;
	struct ikelb_addr vip;
	uint16_t cport;         /* host order */
	uint16_t vport;
};
_Static_assert(sizeof(struct persist_key_client) == 16, "persist_key_client");
_Static_assert(sizeof(struct persist_key_spi) == 8, "persist_key_spi");
_Static_assert(sizeof(struct persist_key_flow) == 36, "persist_key_flow");

/* bits4 applies to IPv4(-mapped) clients (0..32), bits6 to IPv6 (0..128). */
void persist_key_client_make(struct persist_key_client *k, const struct ikelb_addr *client,
			     int bits4, int bits6);
void persist_key_flow_make(struct persist_key_flow *k, const struct ikelb_addr *client,
			   uint16_t cport, const struct ikelb_addr *vip, uint16_t vport);

struct persist_opts {
	uint32_t capacity;   /* 1..PERSIST_CAPACITY_MAX entries */
	uint32_t key_len;    /* 1..PERSIST_KEY_MAX, e.g. sizeof(struct persist_key_flow) */
	uint64_t timeout;    /* idle timeout in the caller's time unit, 0 = none */
	uint64_t hash_key[2];/* SipHash key for buckets; {0,0} = random (getrandom) */
};

struct persist_value {
	uint32_t server;     /* server index in the service */
	uint32_t user;       /* caller's field (e.g. flags, SNAT pool slot) */
	uint64_t last_seen;
};

struct persist_stats {
	uint64_t hits, misses, inserts, updates, deletes, evictions, expirations;
	uint32_t size, capacity;
};

struct persist_table;

struct persist_table *persist_new(const struct persist_opts *o); /* NULL: bad opts / ENOMEM */
void persist_free(struct persist_table *t);

/* Hit: 0, fills *out (may be NULL) and touches the entry (last_seen = now,
 * most recently used). Miss or expired: -ENOENT (an expired entry is
 * reclaimed and counted). */
int persist_get(struct persist_table *t, const void *key, uint64_t now,
		struct persist_value *out);
/* Like get but neither touches nor reclaims nor counts (API listing). */
int persist_peek(const struct persist_table *t, const void *key, uint64_t now,
		 struct persist_value *out);
/* Insert or overwrite; the entry becomes most recently used with
 * last_seen = now. Returns 0 updated, 1 inserted, 2 inserted after evicting
 * the least recently used live entry. */
int persist_put(struct persist_table *t, const void *key, uint32_t server, uint32_t user,
		uint64_t now);
int persist_del(struct persist_table *t, const void *key); /* 0 or -ENOENT */
/* Delete every entry of `server` (it was removed); returns how many. */
size_t persist_del_server(struct persist_table *t, uint32_t server);
/* Reclaim up to `max` expired entries (0 = no limit), oldest first;
 * O(number reclaimed). Returns how many. */
size_t persist_expire(struct persist_table *t, uint64_t now, size_t max);

void persist_set_timeout(struct persist_table *t, uint64_t timeout);
uint64_t persist_timeout(const struct persist_table *t);
uint32_t persist_size(const struct persist_table *t);
uint32_t persist_capacity(const struct persist_table *t);
uint32_t persist_key_len(const struct persist_table *t);
void persist_get_stats(const struct persist_table *t, struct persist_stats *st);
/* Bytes allocated for the whole table / per entry (buckets included). */
size_t persist_bytes(const struct persist_table *t);
double persist_bytes_per_entry(const struct persist_table *t);

/* Iterate live (unexpired at `now`) entries, most recently used first,
 * without touching them. The entry just returned may be deleted with
 * persist_del during iteration; other modifications end the iteration's
 * validity. */
struct persist_iter {
	const struct persist_table *t;
	uint32_t next;
	uint64_t now;
};
void persist_iter_init(struct persist_iter *it, const struct persist_table *t, uint64_t now);
/* true and fills *key (points into the table) and *v, false at the end. */
bool persist_iter_next(struct persist_iter *it, const void **key, struct persist_value *v);

#endif
