/* BPF side only: header rewrites (dnat, reply source NAT), FIB lookup +
 * redirect, and recording into the IP fragment table.
 *
 * Forwarding choice: after a rewrite we ask the FIB for the next hop. On
 * success we decrement TTL / hop limit, set both MACs and bpf_redirect to
 * the egress device (cheaper than the kernel's forwarding path;
 * ARCHITECTURE.md, "Packet path"). Any other result (no neighbour entry
 * yet, no route, needs fragmentation, TTL about to expire) returns
 * TC_ACT_OK with the rewritten packet: the kernel then routes it itself
 * (ARP/ND resolution, ICMP errors), which needs net.ipv4.ip_forward /
 * net.ipv6.conf.all.forwarding = 1. */
#ifndef IKELB_FWD_H
#define IKELB_FWD_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <stddef.h>

#include "bpf/ikelb_bpf_defs.h"

#define IKELB_IP4_DADDR_OFF offsetof(struct iphdr, daddr)
#define IKELB_IP4_SADDR_OFF offsetof(struct iphdr, saddr)
#define IKELB_IP4_CSUM_OFF offsetof(struct iphdr, check)
#define IKELB_IP6_SADDR_OFF offsetof(struct ipv6hdr, saddr)
#define IKELB_IP6_DADDR_OFF offsetof(struct ipv6hdr, daddr)
#define IKELB_UDP_CSUM_OFF offsetof(struct udphdr, check)

/* Replace the source (is_dst 0) or destination address with *to, fixing
 * the IPv4 header checksum and the UDP checksum (pseudo-header). Non-first
 * fragments have no UDP header. A zero IPv4 UDP checksum ("none") stays 0
 * (BPF_F_MARK_MANGLED_0). */
static __noinline int rewrite_addr(struct __sk_buff *skb, const struct pkt *p, int is_dst,
					const struct ikelb_addr *to)
{
	int l4 = p->frag != FRAG_LATER && p->proto != IPPROTO_ESP; /* no pseudo-header sum */
	/* where parse_l4 found the checksum; m0: UDP's 0 means "none", a zero
	 * TCP checksum is a value like any other */
	__u32 l4csum = p->l4off + p->l4csum;
	__u64 m0 = p->l4csum_m0;

	if (!p->v6) {
		__be32 from = ikelb_addr_v4(is_dst ? &p->dst : &p->src);
		__be32 nv = ikelb_addr_v4(to);
		__u32 off = p->l3off + (is_dst ? IKELB_IP4_DADDR_OFF : IKELB_IP4_SADDR_OFF);

		if (l4 && bpf_l4_csum_replace(skb, l4csum, from, nv,
					      BPF_F_PSEUDO_HDR | m0 | sizeof(nv)) < 0)
			return -1;
		if (bpf_l3_csum_replace(skb, p->l3off + IKELB_IP4_CSUM_OFF, from, nv, sizeof(nv)) < 0)
			return -1;
		return bpf_skb_store_bytes(skb, off, &nv, sizeof(nv), 0);
	}

	struct ikelb_addr from6 = is_dst ? p->dst : p->src;
	struct ikelb_addr to6 = *to;
	__u32 off = p->l3off + (is_dst ? IKELB_IP6_DADDR_OFF : IKELB_IP6_SADDR_OFF);

	if (l4) {
		__s64 diff = bpf_csum_diff((__be32 *)from6.b, 16, (__be32 *)to6.b, 16, 0);

		if (bpf_l4_csum_replace(skb, l4csum, 0, diff, BPF_F_PSEUDO_HDR | m0) < 0)
			return -1;
	}
	return bpf_skb_store_bytes(skb, off, to6.b, 16, 0);
}

/* Routed hop: TTL / hop limit - 1. Returns -1 when it would expire, so the
 * kernel handles the packet (and sends the ICMP error). The old value is
 * the parser's (p->ttl; IPv4: the word is TTL + protocol, p->proto): one helper
 * call less per packet than reading it back. */
static __always_inline int dec_ttl(struct __sk_buff *skb, const struct pkt *p)
{
	if (p->ttl <= 1)
		return -1;
	if (p->v6) {
		__u8 hl = p->ttl - 1;

		return bpf_skb_store_bytes(skb, p->l3off + offsetof(struct ipv6hdr, hop_limit), &hl, 1, 0);
	}
	__u8 ow[2] = { p->ttl, p->proto }, nw[2] = { p->ttl - 1, p->proto };
	__be16 oldw, neww;
	__u32 off = p->l3off + offsetof(struct iphdr, ttl);

	__builtin_memcpy(&oldw, ow, sizeof(oldw));
	__builtin_memcpy(&neww, nw, sizeof(neww));
	if (bpf_l3_csum_replace(skb, p->l3off + IKELB_IP4_CSUM_OFF, oldw, neww, sizeof(neww)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &neww, sizeof(neww), 0);
}

/* fib_forward's last argument: routed flag and svc_id in one register
 * (BPF functions take at most 5 arguments). */
#define FIB_ARG(routed, svc_id) (((__u32)(routed) << 31) | ((svc_id) & 0x7fffffff))

/* FIB lookup toward `dst` (the packet's destination, or the real server for
 * dsr), then set MACs and redirect. routed: decrement TTL (dnat and replies
 * are routed hops; dsr is an L2 hop). */
static __noinline int fib_forward(struct __sk_buff *skb, const struct pkt *p,
				  const struct ikelb_addr *src, const struct ikelb_addr *dst,
				  __u32 routed_svc)
{
	int routed = routed_svc >> 31;
	__u32 svc_id = routed_svc & 0x7fffffff;
	struct bpf_fib_lookup f;

	__builtin_memset(&f, 0, sizeof(f));
	f.ifindex = skb->ifindex;
	f.l4_protocol = p->proto;
	f.tot_len = p->ip_len;
	if (p->frag != FRAG_LATER) {
		f.sport = bpf_htons(p->sport);
		f.dport = bpf_htons(p->dport);
	}
	if (!p->v6) {
		f.family = IKELB_AF_INET;
		f.ipv4_src = ikelb_addr_v4(src);
		f.ipv4_dst = ikelb_addr_v4(dst);
	} else {
		f.family = IKELB_AF_INET6;
		__builtin_memcpy(f.ipv6_src, src->b, 16);
		__builtin_memcpy(f.ipv6_dst, dst->b, 16);
	}
	long rc = bpf_fib_lookup(skb, &f, sizeof(f), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS || (routed && dec_ttl(skb, p) < 0)) {
		ctr_add(svc_id, SVC_CTR_FIB_PASS, p->len);
		return TC_ACT_OK;
	}
	/* Both MACs in one store: the FIB result holds them the other way round. */
	__u8 macs[2 * ETH_ALEN];

	__builtin_memcpy(macs, f.dmac, ETH_ALEN);
	__builtin_memcpy(macs + ETH_ALEN, f.smac, ETH_ALEN);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(f.ifindex, 0);
}

/* Client -> real server, after the choice: dnat rewrites the destination
 * and routes; dsr keeps the VIP and only changes the L2 next hop. */
static __always_inline int to_real(struct __sk_buff *skb, const struct pkt *p, __u8 svc_flags,
				   const struct ikelb_addr *real, __u32 svc_id)
{
	struct ikelb_addr ra = *real;

	if (ikelb_addr_is_v4(&ra) == p->v6) {
		ctr_add(svc_id, SVC_CTR_DROP(IKE_DROP_NO_SERVER), p->len);
		return TC_ACT_SHOT; /* family mismatch: refused by the engine, defensive */
	}
	if (svc_flags & SVC_F_DSR)
		return fib_forward(skb, p, &p->src, &ra, FIB_ARG(0, svc_id));
	if (rewrite_addr(skb, p, 1, &ra) < 0)
		return TC_ACT_SHOT;
	return fib_forward(skb, p, &p->src, &ra, FIB_ARG(1, svc_id));
}

/* The datagram all fragments of p belong to. */
static __always_inline void frag_key_make(struct frag_key *k, const struct pkt *p)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->src = p->src;
	k->dst = p->dst;
	k->id = p->frag_id;
}

/* frag_record's kind | FRAG_REC_HINT: the client's hint entry (maps.h,
 * frag_key), not this datagram's. */
#define FRAG_REC_HINT 0x80

/* First fragment: where its later fragments go (handle_frag_later). */
static __noinline void frag_record(const struct pkt *p, __u8 kind, const struct ikelb_addr *addr,
					__u32 svc_id, __u32 real_id)
{
	struct frag_key k;
	struct frag_value v;

	frag_key_make(&k, p);
	if (kind & FRAG_REC_HINT) {
		k.id = 0;
		k.hint = FRAG_HINT;
		kind &= ~FRAG_REC_HINT;
	}
	__builtin_memset(&v, 0, sizeof(v));
	v.addr = *addr;
	v.svc_id = svc_id;
	v.real_id = real_id;
	v.last_seen_s = now_s();
	v.kind = kind;
	bpf_map_update_elem(&frag_map, &k, &v, BPF_ANY);
}

#endif
