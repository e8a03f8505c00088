/* BPF side only: incremental one's complement checksum updates (RFC 1624)
 * computed in the program, shared by the XDP rewrite (ikelb_xdp.h) and the
 * tc rewrite in place (ikelb_fwd.h): no helper call per changed field. The
 * sum is byte-order independent, so words stay in network order. */
#ifndef IKELB_CSUM_H
#define IKELB_CSUM_H

#include <linux/ip.h>

#include "bpf/ikelb_bpf_defs.h"

static __always_inline __u32 csum_add16(__u32 acc, __u16 from, __u16 to)
{
	return acc + (__u16)~from + to;
}

/* nw 16-bit words `from` became `to`: at most 8 words (an IPv6 address),
 * so a __u32 accumulator cannot overflow before the fold. */
static __always_inline __u32 csum_add_words(__u32 acc, const __u16 *from, const __u16 *to, int nw)
{
	for (int i = 0; i < nw; i++)
		acc = csum_add16(acc, from[i], to[i]);
	return acc;
}

static __always_inline __u16 csum_fold16(__u32 acc)
{
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)acc;
}

/* Checksum `check` after 16-bit words `from` became `to` (nw words). */
static __always_inline __u16 csum_replace_words(__u16 check, const __u16 *from, const __u16 *to,
						int nw)
{
	return (__u16)~csum_fold16(csum_add_words((__u16)~check, from, to, nw));
}

/* A routed hop in place: *addr (ip's source or destination) := nv and
 * TTL - 1 (checked > 1 by the caller), with one header checksum update for
 * both. */
static __always_inline void csum_ip4_hop(struct iphdr *ip, __be32 *addr, __be32 nv)
{
	__u16 ow = *(__u16 *)&ip->ttl; /* TTL and protocol: one 16-bit word */
	__u32 acc = csum_add_words((__u16)~ip->check, (__u16 *)addr, (__u16 *)&nv, 2);

	*addr = nv;
	ip->ttl--;
	acc = csum_add16(acc, ow, *(__u16 *)&ip->ttl);
	ip->check = (__u16)~csum_fold16(acc);
}

/* The difference of a 16-byte address change as bpf_l4_csum_replace takes
 * it (size 0: a __wsum diff): equal to bpf_csum_diff's modulo 0xffff,
 * which is all a one's complement sum sees; one helper call less. */
static __always_inline __u32 csum_diff16(const __u8 *from, const __u8 *to)
{
	return csum_add_words(0, (const __u16 *)from, (const __u16 *)to, 8);
}

#endif
