/* BPF side only: Ethernet / IPv4 / IPv6 / UDP parsing into struct pkt and
 * the IKE classification of its payload. Headers and the payload peek are
 * copied into fixed-size stack buffers: straight from the linear area
 * (direct packet access, no helper call) when they are in it, else with
 * bpf_skb_load_bytes, which also reads non-linear skbs. Parsing never
 * changes the skb (no bpf_skb_pull_data), so packets that are not ours
 * leave exactly as they came. */
#ifndef IKELB_PARSE_H
#define IKELB_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <stddef.h>

#include "bpf/ikelb_bpf_defs.h"
#include "ikelb/ike_wire.h"

/* PARSE_V4MAPPED: IPv6 with an IPv4-mapped (::ffff:a.b.c.d) address. Our
 * addresses hold IPv4 in that form, so such a packet would match IPv4
 * services, replies and state: never ours. */
/* PARSE_TCP: a TCP segment (not a later fragment) parsed like PARSE_OK.
 * The protocol travels in the return value, a register whose value the
 * verifier knows on each path, so UDP and TCP paths never mix there. */
enum { PARSE_PASS = 0, PARSE_OK = 1, PARSE_BAD = 2, PARSE_V4MAPPED = 3, PARSE_TCP = 4 };

#include "bpf/ikelb_tcp_parse.h" /* after the PARSE_* results it returns */

#define IKELB_IP6_FRAG_NH 44

/* Direct reads start below this offset: bounds the variable offset for
 * the verifier (headers and the peek are always within the first ~100
 * bytes). */
#define IKELB_DPA_MAX_OFF 0x400

/* *to = the sizeof(*to) bytes at offset off. The typed copy keeps the
 * header's alignment, so clang emits word loads, not byte loads. */
#define PKT_LOAD(skb, off, to)                                                             \
	({                                                                                 \
		__u32 o_ = (off);                                                          \
		void *d_ = (void *)(long)(skb)->data;                                      \
		int r_ = 0;                                                                \
		if (o_ < IKELB_DPA_MAX_OFF &&                                              \
		    d_ + o_ + sizeof(*(to)) <= (void *)(long)(skb)->data_end)              \
			*(to) = *(__typeof__(to))(d_ + o_);                                \
		else                                                                       \
			r_ = bpf_skb_load_bytes((skb), o_, (to), sizeof(*(to)));           \
		r_;                                                                        \
	})

struct ikelb_ip6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;  /* offset << 3 | M */
	__be32 id;
};

#ifndef IPPROTO_ESP
#define IPPROTO_ESP 50
#endif

/* Raw ESP (bpf/ikelb_esp.h): no ports; the payload is the ESP packet. Its
 * SPI and sequence number must be in the first (or only) fragment. */
static __always_inline int parse_esp(struct pkt *p, __u32 ip_payload)
{
	if (ip_payload < ESP_HDR_LEN)
		return PARSE_BAD;
	p->plen = ip_payload;
	p->present = ip_payload;
	return PARSE_OK;
}

/* The transport protocols we read: UDP, TCP for tcp_ports, and raw ESP
 * toward VIPs. */
static __always_inline int l4_ours(__u8 proto)
{
	return proto == IPPROTO_UDP || proto == IPPROTO_TCP || proto == IPPROTO_ESP;
}

/* ip_payload: bytes after the IP (and IPv6 fragment) header according to
 * the IP header. */
static __always_inline int parse_udp(struct __sk_buff *skb, struct pkt *p, __u32 ip_payload)
{
	struct udphdr u;

	if (ip_payload < sizeof(u) || PKT_LOAD(skb, p->l4off, &u) < 0)
		return PARSE_BAD;
	p->sport = bpf_ntohs(u.source);
	p->dport = bpf_ntohs(u.dest);
	__u32 ulen = bpf_ntohs(u.len);
	if (ulen < sizeof(u))
		return PARSE_BAD;
	/* Unfragmented: the UDP length must fit the IP payload (trailing
	 * Ethernet padding is ignored). First fragment: the datagram goes on
	 * in later fragments, so it must be longer than what is here. */
	if (p->frag == FRAG_NONE && ulen > ip_payload)
		return PARSE_BAD;
	if (p->frag == FRAG_FIRST && ulen <= ip_payload)
		return PARSE_BAD;
	p->plen = ulen - sizeof(u);
	p->present = p->frag == FRAG_NONE ? p->plen : ip_payload - sizeof(u);
	return PARSE_OK;
}

/* The transport after the IP header: UDP, or TCP for tcp_ports. Where
 * its checksum is, and whether 0 means "none", go into p for the rewrite
 * (ikelb_fwd.h), which then needs no branch of its own. */
static __always_inline int parse_l4(struct __sk_buff *skb, struct pkt *p, __u32 ip_payload,
				    __u8 proto)
{
	if (proto == IPPROTO_ESP)
		return parse_esp(p, ip_payload);
	if (proto == IPPROTO_TCP) {
		p->l4csum = IKELB_TCP_CSUM_OFF;
		int rc = tcp_parse(skb, p, ip_payload);
		return rc == PARSE_OK ? PARSE_TCP : rc;
	}
	p->l4csum = offsetof(struct udphdr, check);
	p->l4csum_m0 = BPF_F_MARK_MANGLED_0;
	return parse_udp(skb, p, ip_payload);
}

static __always_inline int parse_v4(struct __sk_buff *skb, struct pkt *p)
{
	struct iphdr ip;

	if (PKT_LOAD(skb, p->l3off, &ip) < 0)
		return PARSE_PASS;
	__u8 proto = ip.protocol;
	if (!l4_ours(proto))
		return PARSE_PASS;
	p->proto = proto;
	ikelb_addr_from_v4(&p->src, ip.saddr);
	ikelb_addr_from_v4(&p->dst, ip.daddr);
	p->ttl = ip.ttl;
	if (ip.version != 4 || ip.ihl < 5)
		return PARSE_BAD;
	__u32 hl = ip.ihl * 4;
	__u32 tot = bpf_ntohs(ip.tot_len);
	if (tot < hl || tot > p->len - p->l3off)
		return PARSE_BAD;
	p->ip_len = tot;
	p->frag_id = bpf_ntohs(ip.id);
	__u16 fo = bpf_ntohs(ip.frag_off);
	if (fo & IKELB_IP4_OFFMASK) {
		p->frag = FRAG_LATER;
		return PARSE_OK;
	}
	if (fo & IKELB_IP4_MF)
		p->frag = FRAG_FIRST;
	p->l4off = p->l3off + hl;
	return parse_l4(skb, p, tot - hl, proto);
}

static __always_inline int parse_v6(struct __sk_buff *skb, struct pkt *p)
{
	struct ipv6hdr ip;

	if (PKT_LOAD(skb, p->l3off, &ip) < 0)
		return PARSE_PASS;
	/* Only UDP, TCP or ESP directly or behind one fragment header; other
	 * extension headers are not ours (documented limit). */
	__u8 nh = ip.nexthdr;
	if (!l4_ours(nh) && nh != IKELB_IP6_FRAG_NH)
		return PARSE_PASS;
	p->proto = nh;
	p->v6 = 1;
	__builtin_memcpy(p->src.b, &ip.saddr, 16);
	__builtin_memcpy(p->dst.b, &ip.daddr, 16);
	p->ttl = ip.hop_limit;
	if (ip.version != 6)
		return PARSE_BAD;
	if (pkt_v4mapped(p))
		return PARSE_V4MAPPED;
	__u32 pl = bpf_ntohs(ip.payload_len);
	if (pl > p->len - p->l3off - sizeof(ip))
		return PARSE_BAD;
	p->ip_len = sizeof(ip) + pl;
	p->l4off = p->l3off + sizeof(ip);
	if (nh == IKELB_IP6_FRAG_NH) {
		struct ikelb_ip6_frag fh;

		if (pl < sizeof(fh) || PKT_LOAD(skb, p->l4off, &fh) < 0)
			return PARSE_BAD;
		nh = fh.nexthdr;
		if (!l4_ours(nh))
			return PARSE_PASS;
		p->proto = nh;
		__u16 fo = bpf_ntohs(fh.frag_off);
		p->frag_id = bpf_ntohl(fh.id);
		if (fo & 0xfff8) {
			p->frag = FRAG_LATER;
			return PARSE_OK;
		}
		if (fo & 1)
			p->frag = FRAG_FIRST;
		p->l4off += sizeof(fh);
		pl -= sizeof(fh);
	}
	return parse_l4(skb, p, pl, nh);
}

/* PARSE_PASS: not an IPv4/IPv6 UDP packet we can read (p->dst unset).
 * PARSE_BAD, PARSE_V4MAPPED: p->dst is set so the caller can count the
 * drop when it was meant for a VIP. */
static __always_inline int pkt_parse(struct __sk_buff *skb, struct pkt *p)
{
	__be16 proto;

	p->len = skb->len;
	p->l3off = IKELB_ETH_HLEN;
	if (PKT_LOAD(skb, 12, &proto) < 0)
		return PARSE_PASS;
	if (proto == bpf_htons(ETH_P_IP))
		return parse_v4(skb, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_v6(skb, p);
	return PARSE_PASS;
}

/* The peek in one piece: 32 bytes straight from the linear area. */
struct peek {
	__u64 w[IKELB_PEEK_LEN / 8];
};

/* Copy the first bytes of the UDP payload and classify them. A datagram
 * with fewer than IKELB_PEEK_LEN bytes in the linear area (keepalives,
 * non-linear skbs) takes bpf_skb_load_bytes for exactly what is there;
 * otherwise the whole peek is copied directly and only its first n bytes
 * are read (ike_classify stops at buf + n). */
static __noinline void classify(struct __sk_buff *skb, const struct pkt *p, int natt,
				struct ike_info *info)
{
	struct peek buf;
	__u32 n = p->present;
	__u32 off = p->l4off + sizeof(struct udphdr);
	void *d = (void *)(long)skb->data;
	int rc = 0;

	if (n > IKELB_PEEK_LEN)
		n = IKELB_PEEK_LEN;
	if (n > p->plen)
		n = p->plen;
	if (off < IKELB_DPA_MAX_OFF && d + off + sizeof(buf) <= (void *)(long)skb->data_end) {
		buf = *(struct peek *)(d + off);
	} else {
		__builtin_memset(&buf, 0, sizeof(buf));
		if (n > 0) {
			/* n is 1..32 already; the barrier stops clang from
			 * folding the mask away, so the verifier sees a
			 * non-zero bounded size. */
			__u32 m = n - 1;
			asm volatile("" : "+r"(m));
			m = (m & (IKELB_PEEK_LEN - 1)) + 1;
			rc = bpf_skb_load_bytes(skb, off, &buf, m);
		}
	}
	if (rc < 0)
		ike_drop(info, IKE_DROP_MALFORMED_IP);
	else
		ike_classify((const __u8 *)&buf, (const __u8 *)&buf + n, p->plen, natt, info);
	/* R0 at exit must not be a stack pointer (the verifier refuses it),
	 * and clang may leave one there in a void function. Returning a value
	 * the callers test instead costs ~100k verifier steps. */
	asm volatile("r0 = 0" ::: "r0");
}

#endif
