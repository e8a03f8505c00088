/* Weighted Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and
 * Reliable Software Network Load Balancer", NSDI 2016, §3.4).
 *
 * Every ikelb node must build the same table from the same servers, so the
 * table depends only on the backends' key bytes, weights, M and the seed:
 * backends are processed in order of their key bytes (memcmp, then length),
 * never in input order. Table entries are indexes into the caller's array.
 *
 * Permutation of backend i (key bytes K_i), as in the paper:
 *   offset_i = SipHash-2-4(K_i; k0 = seed, k1 = MAGLEV_K1_OFFSET) % M
 *   skip_i   = SipHash-2-4(K_i; k0 = seed, k1 = MAGLEV_K1_SKIP) % (M - 1) + 1
 *   perm_i[j] = (offset_i + j * skip_i) % M
 * Weights: each round every backend with weight w earns w credit; a backend
 * whose credit reaches w_max takes its next free preferred slot and pays
 * w_max. So the heaviest backend takes one slot per round and the others
 * proportionally fewer; with equal weights this is the unweighted algorithm.
 * Backends with weight 0 are left out.
 */
#ifndef IKELB_MAGLEV_H
#define IKELB_MAGLEV_H

#include <stddef.h>
#include <stdint.h>
#include "ikelb/addr.h"

#define MAGLEV_EMPTY UINT32_MAX           /* slot value when no backend has weight */
#define MAGLEV_DEFAULT_SIZE 65537u
#define MAGLEV_MAX_SIZE 16777213u         /* largest prime < 2^24: 64 MiB table */
#define MAGLEV_KEY_MAX 96                 /* longest key accepted */
#define MAGLEV_K1_OFFSET 0x6d61676c65762d6fULL /* "maglev-o" */
#define MAGLEV_K1_SKIP 0x6d61676c65762d73ULL   /* "maglev-s" */

struct maglev_backend {
	const void *key;   /* stable identity bytes, e.g. from maglev_server_key() */
	size_t key_len;    /* 1..MAGLEV_KEY_MAX */
	uint32_t weight;   /* 0 = excluded */
};

/* Key for a configured real server: its name, a NUL, then the 16 address
 * bytes. Writes at most `len` bytes and returns the key length, or 0 if
 * `len` is too small (needs strlen(name) + 17 <= MAGLEV_KEY_MAX). */
size_t maglev_server_key(const char *name, const struct ikelb_addr *addr, void *out, size_t len);

/* Fill table[0..m-1]. Returns 0; -EINVAL when m is not a prime in
 * [3, MAGLEV_MAX_SIZE], a key is empty/too long/NULL, two backends share a
 * key, or more backends have weight than m has slots; -ENOMEM.
 * When no backend has weight every slot is MAGLEV_EMPTY (and 0 is returned).
 * The table is untouched on error. */
int maglev_build(const struct maglev_backend *b, size_t n, uint32_t m, uint64_t seed,
		 uint32_t *table);

static inline uint32_t maglev_lookup(const uint32_t *table, uint32_t m, uint64_t hash)
{
	return table[hash % m];
}

int maglev_is_prime(uint32_t m);
/* Smallest prime >= v, 0 if above MAGLEV_MAX_SIZE. */
uint32_t maglev_prime_at_least(uint64_t v);
/* Table size for n servers: smallest prime >= max(100 * n,
 * MAGLEV_DEFAULT_SIZE); the configuration's default and every tool's. */
uint32_t maglev_default_size(size_t n);

#endif
