/* BPF side only: header rewrites (dnat, reply source NAT), FIB lookup +
 * redirect, and recording into the IP fragment table.
 *
 * Forwarding choice (fwd): we ask the FIB for the next hop toward the
 * rewritten destination. On success the address, TTL / hop limit and both
 * MACs are written in place (direct packet access, one IPv4 header
 * checksum update computed here, ikelb_csum.h) and the packet is
 * bpf_redirect'ed to the egress device (cheaper than the kernel's
 * forwarding path; ARCHITECTURE.md, "Packet path"). Any other result (no
 * neighbour entry yet, no route, needs fragmentation, TTL about to expire)
 * returns TC_ACT_OK with only the address rewritten: the kernel then
 * routes it itself (ARP/ND resolution, ICMP errors), which needs
 * net.ipv4.ip_forward / net.ipv6.conf.all.forwarding = 1. */
#ifndef IKELB_FWD_H
#define IKELB_FWD_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <stddef.h>

#include "bpf/ikelb_bpf_defs.h"
#include "bpf/ikelb_csum.h"

#define IKELB_IP4_DADDR_OFF offsetof(struct iphdr, daddr)
#define IKELB_IP4_SADDR_OFF offsetof(struct iphdr, saddr)
#define IKELB_IP4_CSUM_OFF offsetof(struct iphdr, check)
#define IKELB_IP6_SADDR_OFF offsetof(struct ipv6hdr, saddr)
#define IKELB_IP6_DADDR_OFF offsetof(struct ipv6hdr, daddr)
#define IKELB_UDP_CSUM_OFF offsetof(struct udphdr, check)

/* The pseudo-header part of the L4 checksum after the source (is_dst 0)
 * or destination address became *to. Left to bpf_l4_csum_replace because
 * only the kernel sees the skb's checksum state: on CHECKSUM_PARTIAL
 * (sockets of this host on a veth) the field holds the uncomplemented
 * pseudo-header sum, on CHECKSUM_COMPLETE skb->csum changes too
 * (inet_proto_csum_replace4), and tc cannot tell which. Non-first
 * fragments and raw ESP have no pseudo-header sum. A zero IPv4 UDP
 * checksum ("none") stays 0 (BPF_F_MARK_MANGLED_0). IPv6: the difference
 * is computed here (csum_diff16), not with bpf_csum_diff. */
static __always_inline int l4_csum_addr(struct __sk_buff *skb, const struct pkt *p, int is_dst,
					const struct ikelb_addr *to)
{
	/* where parse_l4 found the checksum; m0: UDP's 0 means "none", a zero
	 * TCP checksum is a value like any other */
	__u32 l4csum = p->l4off + p->l4csum;
	__u64 m0 = p->l4csum_m0;
	const struct ikelb_addr *from = is_dst ? &p->dst : &p->src;

	if (p->frag == FRAG_LATER || p->proto == IPPROTO_ESP)
		return 0;
	if (!p->v6)
		return bpf_l4_csum_replace(skb, l4csum, ikelb_addr_v4(from), ikelb_addr_v4(to),
					   BPF_F_PSEUDO_HDR | m0 | sizeof(__be32));
	return bpf_l4_csum_replace(skb, l4csum, 0, csum_diff16(from->b, to->b),
				   BPF_F_PSEUDO_HDR | m0);
}

/* The slow shape (the packet is not forwarded by us: no FIB answer, TTL
 * about to expire): the address alone, with helpers, which need no linear
 * headers. */
static __always_inline int rewrite_addr(struct __sk_buff *skb, const struct pkt *p, int is_dst,
					const struct ikelb_addr *to)
{
	if (l4_csum_addr(skb, p, is_dst, to) < 0)
		return -1;
	if (!p->v6) {
		__be32 from = ikelb_addr_v4(is_dst ? &p->dst : &p->src);
		__be32 nv = ikelb_addr_v4(to);
		__u32 off = p->l3off + (is_dst ? IKELB_IP4_DADDR_OFF : IKELB_IP4_SADDR_OFF);

		if (bpf_l3_csum_replace(skb, p->l3off + IKELB_IP4_CSUM_OFF, from, nv, sizeof(nv)) < 0)
			return -1;
		return bpf_skb_store_bytes(skb, off, &nv, sizeof(nv), 0);
	}
	__u32 off = p->l3off + (is_dst ? IKELB_IP6_DADDR_OFF : IKELB_IP6_SADDR_OFF);

	return bpf_skb_store_bytes(skb, off, to->b, 16, 0);
}

/* fwd's last argument: what to rewrite and svc_id in one register (BPF
 * functions take at most 5 arguments). DNAT and SNAT are routed hops (TTL
 * - 1), DSR an L2 hop toward the real server with the VIP kept. */
#define FWD_DSR 0
#define FWD_DNAT 1 /* destination := to */
#define FWD_SNAT 2 /* source := to (replies) */
#define FWD_ARG(mode, svc_id) (((__u32)(mode) << 30) | ((svc_id) & 0x3fffffff))

/* The linear area holds the Ethernet header and `l3` bytes of IP header:
 * pulled in once when not (rare: a non-linear skb whose headers are in
 * its fragments). */
static __always_inline int fwd_linear(struct __sk_buff *skb, __u32 l3)
{
	if ((void *)(long)skb->data + IKELB_ETH_HLEN + l3 <= (void *)(long)skb->data_end)
		return 0;
	return bpf_skb_pull_data(skb, IKELB_ETH_HLEN + l3) < 0 ? -1 : 0;
}

/* IPv4 in place: address and TTL changed, one header checksum update for
 * both (IP options, if any, stay as they are). */
static __always_inline int fwd_ip4(struct __sk_buff *skb, __u32 mode, const struct ikelb_addr *to,
				   struct ethhdr **ethp)
{
	if (fwd_linear(skb, sizeof(struct iphdr)) < 0)
		return -1;
	struct ethhdr *eth = (void *)(long)skb->data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > (void *)(long)skb->data_end)
		return -1;
	*ethp = eth;
	if (mode == FWD_DSR)
		return 0;
	csum_ip4_hop(ip, mode == FWD_DNAT ? &ip->daddr : &ip->saddr, ikelb_addr_v4(to));
	return 0;
}

static __always_inline int fwd_ip6(struct __sk_buff *skb, __u32 mode, const struct ikelb_addr *to,
				   struct ethhdr **ethp)
{
	if (fwd_linear(skb, sizeof(struct ipv6hdr)) < 0)
		return -1;
	struct ethhdr *eth = (void *)(long)skb->data;
	struct ipv6hdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > (void *)(long)skb->data_end)
		return -1;
	*ethp = eth;
	if (mode == FWD_DSR)
		return 0;
	__builtin_memcpy(mode == FWD_DNAT ? &ip->daddr : &ip->saddr, to->b, 16);
	ip->hop_limit--;
	return 0;
}

/* The FIB answered: rewrite in place (direct packet access) and redirect.
 * The L4 checksum goes first: its helper may reallocate the head, which
 * invalidates packet pointers, so they are derived after it. */
static __always_inline int fwd_rewrite(struct __sk_buff *skb, const struct pkt *p, __u32 mode,
				       const struct ikelb_addr *to, const struct bpf_fib_lookup *f)
{
	struct ethhdr *eth = 0;

	if (mode != FWD_DSR && l4_csum_addr(skb, p, mode == FWD_DNAT, to) < 0)
		return -1;
	if ((p->v6 ? fwd_ip6(skb, mode, to, &eth) : fwd_ip4(skb, mode, to, &eth)) < 0 || !eth)
		return -1;
	__builtin_memcpy(eth->h_dest, f->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, f->smac, ETH_ALEN);
	return 0;
}

/* Forward p toward the real server (DNAT, DSR: `to`) or a reply toward
 * its client (SNAT, source `to`). The FIB is asked first, from the
 * addresses the packet will carry: on success the rewrite is done in
 * place and the packet redirected; on any other answer (no neighbour, no
 * route, needs fragmentation, TTL about to expire) only the address is
 * rewritten and the kernel routes the packet itself (TC_ACT_OK). */
static __noinline int fwd(struct __sk_buff *skb, const struct pkt *p, const struct ikelb_addr *to,
			  __u32 mode_svc)
{
	__u32 mode = mode_svc >> 30;
	__u32 svc_id = mode_svc & 0x3fffffff;
	const struct ikelb_addr *src = mode == FWD_SNAT ? to : &p->src;
	const struct ikelb_addr *dst = mode == FWD_SNAT ? &p->dst : to;
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
	if (rc != BPF_FIB_LKUP_RET_SUCCESS || (mode != FWD_DSR && p->ttl <= 1)) {
		ctr_add(svc_id, SVC_CTR_FIB_PASS, p->len);
		if (mode != FWD_DSR && rewrite_addr(skb, p, mode == FWD_DNAT, to) < 0)
			return TC_ACT_SHOT;
		return TC_ACT_OK;
	}
	if (fwd_rewrite(skb, p, mode, to, &f) < 0)
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
	return fwd(skb, p, &ra, FWD_ARG((svc_flags & SVC_F_DSR) ? FWD_DSR : FWD_DNAT, svc_id));
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
