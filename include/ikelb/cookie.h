/* ikelb's stateless IKEv2 COOKIE (RFC 7296 §2.6), computed identically by
 * the BPF program (which answers and checks it) and by user space (tests).
 *
 *   cookie (12 bytes) = version (4, big-endian) | SipHash-2-4(key[version & 1], m)
 *                       (8, the u64 result written big-endian)
 *   m (32 bytes)      = client address (16, struct ikelb_addr) | SPIi (8, wire order)
 *                       | client port (2, big-endian) | 0 0 | version (4, big-endian)
 *
 * Ni is left out (RFC 7296 allows it): the nonce sits behind the variable
 * SA and KE payloads, which the program would have to walk; address, port
 * and SPIi already bind the cookie to one initiator and one SA attempt, and
 * a spoofer cannot learn it without receiving at the spoofed address.
 * SipHash here is the reference algorithm for exactly 32 bytes (one
 * length block), so siphash24() in src/core/hash.c must agree with it
 * (tests/unit/test_hash.c). */
#ifndef IKELB_COOKIE_H
#define IKELB_COOKIE_H

#include <linux/types.h>
#include "ikelb/addr.h"
#include "ikelb/hash.h"

#define IKELB_COOKIE_LEN 12
#define IKELB_COOKIE_MSG_LEN 32
#define IKELB_COOKIE_NOTIFY_LEN (8 + IKELB_COOKIE_LEN) /* generic hdr + proto, spi size, type */

IKELB_HASH_INLINE __u64 ikelb_rotl64(__u64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define IKELB_SIPROUND(v0, v1, v2, v3)                                                     \
	do {                                                                               \
		v0 += v1; v1 = ikelb_rotl64(v1, 13); v1 ^= v0; v0 = ikelb_rotl64(v0, 32);  \
		v2 += v3; v3 = ikelb_rotl64(v3, 16); v3 ^= v2;                             \
		v0 += v3; v3 = ikelb_rotl64(v3, 21); v3 ^= v0;                             \
		v2 += v1; v1 = ikelb_rotl64(v1, 17); v1 ^= v2; v2 = ikelb_rotl64(v2, 32);  \
	} while (0)

/* SipHash-2-4 of exactly IKELB_COOKIE_MSG_LEN bytes. */
IKELB_HASH_INLINE __u64 ikelb_siphash32(const __u8 *m, __u64 k0, __u64 k1)
{
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;

	for (int i = 0; i < IKELB_COOKIE_MSG_LEN; i += 8) {
		__u64 w = ikelb_le64(m + i);
		v3 ^= w;
		IKELB_SIPROUND(v0, v1, v2, v3);
		IKELB_SIPROUND(v0, v1, v2, v3);
		v0 ^= w;
	}
	__u64 b = (__u64)IKELB_COOKIE_MSG_LEN << 56;
	v3 ^= b;
	IKELB_SIPROUND(v0, v1, v2, v3);
	IKELB_SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		IKELB_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

IKELB_HASH_INLINE void ikelb_put_be32(__u8 *p, __u32 v)
{
	p[0] = (__u8)(v >> 24);
	p[1] = (__u8)(v >> 16);
	p[2] = (__u8)(v >> 8);
	p[3] = (__u8)v;
}

/* The cookie for (client, port, SPIi) under version ver and key (k0, k1). */
IKELB_HASH_INLINE void ikelb_cookie_make(__u8 out[IKELB_COOKIE_LEN], const struct ikelb_addr *client,
					 __u16 port, __u64 spi_i, __u32 ver, __u64 k0, __u64 k1)
{
	__u8 m[IKELB_COOKIE_MSG_LEN];

	for (int i = 0; i < 16; i++)
		m[i] = client->b[i];
	ikelb_put_be32(m + 16, (__u32)(spi_i >> 32));
	ikelb_put_be32(m + 20, (__u32)spi_i);
	ikelb_put_be32(m + 24, (__u32)port << 16);
	ikelb_put_be32(m + 28, ver);
	__u64 h = ikelb_siphash32(m, k0, k1);
	ikelb_put_be32(out, ver);
	ikelb_put_be32(out + 4, (__u32)(h >> 32));
	ikelb_put_be32(out + 8, (__u32)h);
}

#endif
