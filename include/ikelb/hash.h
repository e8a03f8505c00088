/* Hash functions of the ikelb core.
 *
 * Two families, for two jobs:
 *
 * 1. SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF",
 *    2012; reference test vectors in tests/unit/test_hash.c). User space
 *    only. Used where the input may be chosen by an attacker (persistence
 *    table buckets, with a secret key) and for the Maglev permutations of the
 *    backends (keyed with the cluster's maglev_seed so every node agrees).
 *
 * 2. ikelb_hash_addr / ikelb_hash_u64: the *client* hash that picks a Maglev
 *    slot (schedulers `maglev`, `sh` and the §3.2 fallback). It must be
 *    computed identically by the BPF program, so it is static inline,
 *    libc-free and uses only 64-bit xor/shift/multiply. Exact definition:
 *
 *      fmix(x) = x ^= x >> 30; x *= 0xbf58476d1ce4e5b9;
 *                x ^= x >> 27; x *= 0x94d049bb133111eb;
 *                x ^= x >> 31                   (SplitMix64 finalizer)
 *      lo  = bytes b[0..7]  of struct ikelb_addr read as little-endian u64
 *      hi  = bytes b[8..15] read as little-endian u64
 *      ikelb_hash_addr(a, port, seed):
 *            h = seed ^ 0x9e3779b97f4a7c15
 *            h = fmix(h ^ lo); h = fmix(h ^ hi); h = fmix(h ^ port)
 *      ikelb_hash_u64(v, seed):
 *            h = seed ^ 0x9e3779b97f4a7c15
 *            h = fmix(h ^ v);  h = fmix(h ^ 0x2d358dccaa6c78a5)
 *
 *    `port` is the host-order port number, 0 when the port is not part of
 *    the key (source hash / fallback hash the client address only; IPv4 is
 *    IPv4-mapped as everywhere). The Maglev slot is hash % M (u64 modulo).
 *    Pinned values are in tests/unit/test_hash.c, cross-checked against an
 *    independent Python implementation.
 */
#ifndef IKELB_HASH_H
#define IKELB_HASH_H

#include <linux/types.h>
#include "ikelb/addr.h"

#ifndef IKELB_HASH_INLINE
#ifdef __bpf__
#define IKELB_HASH_INLINE static __attribute__((always_inline)) inline
#else
#define IKELB_HASH_INLINE static inline
#endif
#endif

#define IKELB_HASH_GOLDEN 0x9e3779b97f4a7c15ULL
#define IKELB_HASH_U64_TAG 0x2d358dccaa6c78a5ULL

IKELB_HASH_INLINE __u64 ikelb_fmix64(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* Byte by byte so host endianness and alignment never matter. */
IKELB_HASH_INLINE __u64 ikelb_le64(const __u8 *p)
{
	return (__u64)p[0] | (__u64)p[1] << 8 | (__u64)p[2] << 16 | (__u64)p[3] << 24 |
	       (__u64)p[4] << 32 | (__u64)p[5] << 40 | (__u64)p[6] << 48 |
	       (__u64)p[7] << 56;
}

IKELB_HASH_INLINE __u64 ikelb_hash_addr(const struct ikelb_addr *a, __u16 port, __u64 seed)
{
	__u64 h = seed ^ IKELB_HASH_GOLDEN;
	h = ikelb_fmix64(h ^ ikelb_le64(&a->b[0]));
	h = ikelb_fmix64(h ^ ikelb_le64(&a->b[8]));
	h = ikelb_fmix64(h ^ (__u64)port);
	return h;
}

IKELB_HASH_INLINE __u64 ikelb_hash_u64(__u64 v, __u64 seed)
{
	__u64 h = seed ^ IKELB_HASH_GOLDEN;
	h = ikelb_fmix64(h ^ v);
	h = ikelb_fmix64(h ^ IKELB_HASH_U64_TAG);
	return h;
}

#ifndef __bpf__
#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 with the 128-bit key (k0, k1); k0 is key bytes 0..7 and k1 key
 * bytes 8..15, each read little-endian, as in the reference implementation. */
uint64_t siphash24(const void *data, size_t len, uint64_t k0, uint64_t k1);
#endif

#endif
