/* BPF side only: helpers of the XDP hot path (ARCHITECTURE.md, "Packet
 * path"; the program is ikelb_xdp in ikelb.bpf.c). It forwards only what it
 * can finish alone: an unfragmented IPv4 (no options) or IPv6 (no extension
 * header) UDP datagram to a dnat service VIP:port, without trailing bytes
 * after the UDP datagram, whose chosen real server has a complete FIB
 * answer (route + neighbour, TTL > 1). Everything else (replies,
 * fragments, dsr, broken IP/UDP headers, no neighbour yet, ...) returns
 * XDP_PASS with the frame untouched and the tc program, always attached
 * too, decides exactly as without XDP.
 *
 * The FIB lookup runs after the choice but before learn() and the
 * counters: a packet handed to tc has written no state and counted nothing,
 * so tc counts it once. steer() itself only refreshes last_seen and deletes
 * entries of dead servers, which tc would do the same way.
 *
 * XDP cannot see an skb's CHECKSUM_PARTIAL state: on a veth fed by sockets
 * of the same host the UDP checksum it updates is only the pseudo-header
 * part and the receiver rejects the datagram (docs/bpf-engine.md, "tc vs
 * XDP, measured"). Wire traffic carries finished checksums. */
#ifndef IKELB_XDP_H
#define IKELB_XDP_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include "bpf/ikelb_bpf_defs.h"
#include "bpf/ikelb_csum.h"
#include "ikelb/ike_wire.h"

/* Headers of the datagram in the frame (direct packet access). */
struct xdp_hdrs {
	void *l3;   /* struct iphdr (no options) or struct ipv6hdr, as p->v6 says */
	void *end;  /* frame end */
	struct udphdr *udp;
};

/* The verifier cannot tie p->v6 to which header was bounds-checked, so the
 * IPv6 users check the (longer) header again; it always holds. */
static __always_inline struct ipv6hdr *xdp_ip6(const struct xdp_hdrs *h)
{
	struct ipv6hdr *ip = h->l3;

	return (void *)(ip + 1) > h->end ? 0 : ip;
}

enum { XP_PASS = 0, XP_OK = 1 };

static __always_inline int xdp_parse_udp(struct udphdr *u, void *end, __u32 ip_payload,
					 struct pkt *p)
{
	if ((void *)(u + 1) > end)
		return XP_PASS;
	__u32 ulen = bpf_ntohs(u->len);
	/* Anything but "the UDP datagram fills the IP payload and the IP
	 * datagram the frame" is tc's to judge (padding, truncation). */
	if (ulen < sizeof(*u) || ulen != ip_payload || p->ip_len + IKELB_ETH_HLEN != p->len)
		return XP_PASS;
	p->sport = bpf_ntohs(u->source);
	p->dport = bpf_ntohs(u->dest);
	p->plen = ulen - sizeof(*u);
	p->present = p->plen;
	return XP_OK;
}

static __always_inline int xdp_parse(struct xdp_md *x, struct pkt *p, struct xdp_hdrs *h)
{
	void *data = (void *)(long)x->data;
	void *end = (void *)(long)x->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return XP_PASS;
	p->len = (__u32)(end - data);
	h->end = end;
	p->l3off = IKELB_ETH_HLEN;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->version != 4 ||
		    ip->ihl != 5 || (ip->frag_off & bpf_htons(IKELB_IP4_MF | IKELB_IP4_OFFMASK)))
			return XP_PASS;
		__u32 tot = bpf_ntohs(ip->tot_len);
		if (tot < sizeof(*ip))
			return XP_PASS;
		ikelb_addr_from_v4(&p->src, ip->saddr);
		ikelb_addr_from_v4(&p->dst, ip->daddr);
		p->ip_len = tot;
		p->l4off = IKELB_ETH_HLEN + sizeof(*ip);
		h->l3 = ip;
		h->udp = (void *)(ip + 1);
		return xdp_parse_udp(h->udp, end, tot - sizeof(*ip), p);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->nexthdr != IPPROTO_UDP || ip->version != 6)
			return XP_PASS;
		p->v6 = 1;
		__builtin_memcpy(p->src.b, &ip->saddr, 16);
		__builtin_memcpy(p->dst.b, &ip->daddr, 16);
		if (pkt_v4mapped(p))
			return XP_PASS; /* tc drops and counts it */
		__u32 pl = bpf_ntohs(ip->payload_len);
		p->ip_len = sizeof(*ip) + pl;
		p->l4off = IKELB_ETH_HLEN + sizeof(*ip);
		h->l3 = ip;
		h->udp = (void *)(ip + 1);
		return xdp_parse_udp(h->udp, end, pl, p);
	}
	return XP_PASS;
}

/* dnat: destination = real server, IP and UDP checksums updated; an IPv4
 * UDP checksum of 0 ("none") stays 0, a computed 0 is sent as 0xffff. Then
 * TTL / hop limit - 1 (checked > 1 by the caller). */
static __always_inline int xdp_rewrite_dnat(const struct pkt *p, const struct xdp_hdrs *h,
					    const struct ikelb_addr *real)
{
	struct udphdr *u = h->udp;

	if ((void *)(u + 1) > h->end)
		return -1;
	if (!p->v6) {
		struct iphdr *ip = h->l3;
		__be32 nv = ikelb_addr_v4(real);
		__u16 *ov16 = (__u16 *)&ip->daddr, *nv16 = (__u16 *)&nv;

		if (u->check) {
			__u16 c = csum_replace_words(u->check, ov16, nv16, 2);
			u->check = c ? c : 0xffff;
		}
		csum_ip4_hop(ip, &ip->daddr, nv);
		return 0;
	}
	struct ipv6hdr *ip = xdp_ip6(h);
	if (!ip)
		return -1;
	__u16 c = csum_replace_words(u->check, (__u16 *)&ip->daddr, (const __u16 *)real->b, 8);
	u->check = c ? c : 0xffff;
	__builtin_memcpy(&ip->daddr, real->b, 16);
	ip->hop_limit--;
	return 0;
}

/* FIB answer for client -> real; 0 with f filled when the packet can be
 * redirected now. */
static __always_inline int xdp_fib(struct xdp_md *x, const struct pkt *p, const struct xdp_hdrs *h,
				   const struct ikelb_addr *real, struct bpf_fib_lookup *f)
{
	__builtin_memset(f, 0, sizeof(*f));
	f->ifindex = x->ingress_ifindex;
	f->l4_protocol = IPPROTO_UDP;
	f->tot_len = p->ip_len;
	f->sport = bpf_htons(p->sport);
	f->dport = bpf_htons(p->dport);
	if (!p->v6) {
		struct iphdr *ip = h->l3;

		if (ip->ttl <= 1)
			return -1;
		f->family = IKELB_AF_INET;
		f->tos = ip->tos;
		f->ipv4_src = ikelb_addr_v4(&p->src);
		f->ipv4_dst = ikelb_addr_v4(real);
	} else {
		struct ipv6hdr *ip = xdp_ip6(h);

		if (!ip || ip->hop_limit <= 1)
			return -1;
		f->family = IKELB_AF_INET6;
		__builtin_memcpy(f->ipv6_src, p->src.b, 16);
		__builtin_memcpy(f->ipv6_dst, real->b, 16);
	}
	return bpf_fib_lookup(x, f, sizeof(*f), 0) == BPF_FIB_LKUP_RET_SUCCESS ? 0 : -1;
}

/* Classify the payload in place: ike_classify bounds every read by the
 * frame end, which equals the datagram end here (xdp_parse_udp). */
static __always_inline void xdp_classify(struct xdp_md *x, const struct pkt *p,
					 const struct xdp_hdrs *h, int natt, struct ike_info *info)
{
	const __u8 *pl = (const __u8 *)(h->udp + 1);
	const __u8 *end = (const __u8 *)(long)x->data_end;

	ike_classify(pl, end, p->plen, natt, info);
}

#endif
