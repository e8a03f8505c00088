/* BPF side only: ikelb's own IKEv2 COOKIE (RFC 7296 §2.6, format in
 * include/ikelb/cookie.h): checking the N(COOKIE) a client returns, and
 * answering an IKE_SA_INIT with one, rewritten in place and sent back out of
 * the interface it came in on (tc only; the XDP program leaves these frames
 * to tc, ikelb_admit.h). */
#ifndef IKELB_BPF_COOKIE_H
#define IKELB_BPF_COOKIE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#include "bpf/ikelb_bpf_defs.h"
#include "ikelb/cookie.h"
#include "ikelb/ike_wire.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cookie_keys);
} cookie_key_map SEC(".maps");

enum { COOKIE_NONE = 0, COOKIE_VALID = 1, COOKIE_INVALID = 2 };

/* The notify that must open the request's payloads (RFC 7296 §2.6): generic
 * header, protocol, SPI size, type, then our cookie. */
struct cookie_notify {
	__u8 next;
	__u8 crit;
	__be16 len;
	__u8 proto;
	__u8 spi_size;
	__be16 type;
	__u8 data[IKELB_COOKIE_LEN];
};

static __always_inline __u32 cookie_ike_off(const struct pkt *p, const struct ike_info *info)
{
	return p->l4off + sizeof(struct udphdr) + (info->marker ? IKE_NON_ESP_MARKER_LEN : 0);
}

/* One copy of the SipHash rounds in the program, for the check and the
 * answer alike. */
static __noinline void cookie_compute(__u8 *out, const struct pkt *p, __u64 spi_i, __u32 ver,
				      const struct cookie_keys *k)
{
	__u32 i = ver & 1;

	ikelb_cookie_make(out, &p->src, p->sport, spi_i, ver, k->key[i][0], k->key[i][1]);
}

/* ours, of a version still accepted (current or previous), for this client. */
static __noinline int cookie_ours(const struct pkt *p, __u64 spi_i, const __u8 *cookie)
{
	__u32 zero = 0;
	struct cookie_keys *k = bpf_map_lookup_elem(&cookie_key_map, &zero);
	__u8 want[IKELB_COOKIE_LEN];

	if (!k || !k->cur)
		return 0;
	__u32 ver = ike_be32(cookie);
	if (ver != k->cur && ver + 1 != k->cur)
		return 0;
	cookie_compute(want, p, spi_i, ver, k);
	__u8 diff = 0;
	for (int j = 0; j < IKELB_COOKIE_LEN; j++)
		diff |= want[j] ^ cookie[j];
	return diff == 0;
}

/* COOKIE_NONE when the first payload is not N(COOKIE) (a COOKIE notify
 * anywhere else does not count, as the RFC says), else whether it is ours. */
static __noinline int cookie_check(struct __sk_buff *skb, const struct pkt *p,
				   const struct ike_info *info)
{
	struct cookie_notify n;
	__u32 off = cookie_ike_off(p, info) + IKE_HDR_LEN;

	if (info->next_payload != IKE_PL_NOTIFY)
		return COOKIE_NONE;
	if (bpf_skb_load_bytes(skb, off, &n, sizeof(n)) < 0)
		return COOKIE_NONE;
	if (n.type != bpf_htons(IKE_NOTIFY_COOKIE))
		return COOKIE_NONE;
	if (n.len != bpf_htons(IKELB_COOKIE_NOTIFY_LEN) || n.spi_size != 0)
		return COOKIE_INVALID;
	return cookie_ours(p, info->spi_i, n.data) ? COOKIE_VALID : COOKIE_INVALID;
}

/* The answer: IKE header (SPIi copied, SPIr 0, IKE_SA_INIT, response, not
 * initiator, message id 0) and N(COOKIE) as its only payload. */
struct cookie_msg {
	__u8 ike[IKE_HDR_LEN];
	struct cookie_notify n;
};

/* Inlined: its own frame would cost 32 bytes of the 512 the deepest call
 * chain (ikelb_tc, handle_service, cookie_reply, cookie_compute) may use. */
static __always_inline int cookie_msg_make(struct cookie_msg *m, const struct pkt *p,
					   const struct ike_info *info)
{
	__u32 zero = 0;
	struct cookie_keys *k = bpf_map_lookup_elem(&cookie_key_map, &zero);

	if (!k || !k->cur)
		return -1;
	__builtin_memset(m, 0, sizeof(*m));
	ikelb_put_be32(m->ike, (__u32)(info->spi_i >> 32));
	ikelb_put_be32(m->ike + 4, (__u32)info->spi_i);
	m->ike[16] = IKE_PL_NOTIFY;
	m->ike[17] = 0x20; /* IKEv2.0 */
	m->ike[18] = IKE_EXCH_SA_INIT;
	m->ike[19] = IKE_FLAG_R;
	ikelb_put_be32(m->ike + 24, sizeof(*m));
	m->n.len = bpf_htons(IKELB_COOKIE_NOTIFY_LEN);
	m->n.type = bpf_htons(IKE_NOTIFY_COOKIE);
	cookie_compute(m->n.data, p, info->spi_i, k->cur, k);
	return 0;
}

static __always_inline __u16 csum_fold32(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* The IP header of the answer: addresses swapped, new length, fresh TTL. */
static __noinline int cookie_ip(struct __sk_buff *skb, const struct pkt *p, __u32 ulen)
{
	if (!p->v6) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, p->l3off, &ip, sizeof(ip)) < 0)
			return -1;
		__be32 a = ip.saddr;
		ip.saddr = ip.daddr;
		ip.daddr = a;
		ip.tot_len = bpf_htons(sizeof(ip) + ulen);
		ip.ttl = 64;
		ip.frag_off = 0;
		ip.check = 0;
		ip.check = csum_fold32((__u32)bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0));
		return bpf_skb_store_bytes(skb, p->l3off, &ip, sizeof(ip), BPF_F_RECOMPUTE_CSUM);
	}
	struct ipv6hdr ip6;

	if (bpf_skb_load_bytes(skb, p->l3off, &ip6, sizeof(ip6)) < 0)
		return -1;
	struct in6_addr a6 = ip6.saddr;
	ip6.saddr = ip6.daddr;
	ip6.daddr = a6;
	ip6.payload_len = bpf_htons(ulen);
	ip6.hop_limit = 64;
	return bpf_skb_store_bytes(skb, p->l3off, &ip6, sizeof(ip6), BPF_F_RECOMPUTE_CSUM);
}

/* The pseudo header's sum; addresses in either order sum alike. */
static __always_inline __s64 cookie_pseudo(const struct pkt *p, __u32 ulen)
{
	__be32 tail[2] = { bpf_htonl(ulen), bpf_htonl(IPPROTO_UDP) };

	if (!p->v6) {
		__be32 a[2] = { ikelb_addr_v4(&p->src), ikelb_addr_v4(&p->dst) };
		__s64 s = bpf_csum_diff(0, 0, a, sizeof(a), 0);
		return bpf_csum_diff(0, 0, tail, sizeof(tail), (__wsum)s);
	}
	struct ikelb_addr a6[2] = { p->src, p->dst };
	__s64 s = bpf_csum_diff(0, 0, (__be32 *)a6, sizeof(a6), 0);
	return bpf_csum_diff(0, 0, tail, sizeof(tail), (__wsum)s);
}

/* The UDP checksum, right whether the skb carries a full checksum or only
 * the pseudo-header seed of a checksum offload (CHECKSUM_PARTIAL, as from
 * a local socket over veth): the helper applies the payload difference only
 * in the first case and the pseudo-header difference in both. The payload
 * difference is new - old, with old = ~check - pseudo(old length). u still
 * carries the request's checksum. */
static __noinline int cookie_udp_csum(struct __sk_buff *skb, const struct pkt *p, __u32 ulen,
				      const struct udphdr *u, const struct cookie_msg *m)
{
	__be16 check = u->check; /* still the request's */
	__u32 off = p->l4off + offsetof(struct udphdr, check);
	__u32 oldlen = p->plen + sizeof(struct udphdr);

	if (!p->v6 && check == 0)
		return 0; /* IPv4 without checksum: stays without */
	__be32 c = check;
	__s64 d = cookie_pseudo(p, oldlen);
	d = bpf_csum_diff(0, 0, &c, sizeof(c), (__wsum)d);
	struct udphdr z = *u;
	z.check = 0;
	d = bpf_csum_diff(0, 0, (__be32 *)&z, sizeof(z), (__wsum)d);
	d = bpf_csum_diff(0, 0, (__be32 *)m, sizeof(*m), (__wsum)d);
	if (bpf_l4_csum_replace(skb, off, 0, (__u32)d, BPF_F_MARK_MANGLED_0) < 0)
		return -1;
	return bpf_l4_csum_replace(skb, off, bpf_htonl(oldlen), bpf_htonl(ulen),
				   BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4);
}

/* Rewrite the request into the answer and send it back where it came
 * from. Only plain headers (no IPv4 options, no IPv6 extension header, not
 * a fragment): anything else returns -1 and the caller drops it. */
static __noinline int cookie_reply(struct __sk_buff *skb, const struct pkt *p,
				   const struct ike_info *info)
{
	struct cookie_msg m;
	struct udphdr u;
	__u8 mac[2 * ETH_ALEN], sw[2 * ETH_ALEN];
	__u32 l4 = p->l3off + (p->v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr));

	if (p->frag != FRAG_NONE || p->l4off != l4 || cookie_msg_make(&m, p, info) < 0)
		return -1;
	__u32 mk = info->marker ? IKE_NON_ESP_MARKER_LEN : 0;
	__u32 ulen = sizeof(u) + mk + sizeof(m);
	if (bpf_skb_load_bytes(skb, p->l4off, &u, sizeof(u)) < 0 ||
	    bpf_skb_load_bytes(skb, 0, mac, sizeof(mac)) < 0)
		return -1;
	__be16 sp = u.source;
	u.source = u.dest;
	u.dest = sp;
	u.len = bpf_htons(ulen);
	if (bpf_skb_change_tail(skb, p->l4off + ulen, 0) < 0)
		return -1;
	__builtin_memcpy(sw, mac + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(sw + ETH_ALEN, mac, ETH_ALEN);
	__be32 zero = 0;
	if (bpf_skb_store_bytes(skb, 0, sw, sizeof(sw), 0) < 0 || cookie_ip(skb, p, ulen) < 0 ||
	    bpf_skb_store_bytes(skb, p->l4off, &u, sizeof(u), BPF_F_RECOMPUTE_CSUM) < 0 ||
	    (mk && bpf_skb_store_bytes(skb, p->l4off + sizeof(u), &zero, 4, BPF_F_RECOMPUTE_CSUM) < 0) ||
	    bpf_skb_store_bytes(skb, p->l4off + sizeof(u) + mk, &m, sizeof(m),
				BPF_F_RECOMPUTE_CSUM) < 0)
		return -1;
	if (cookie_udp_csum(skb, p, ulen, &u, &m) < 0)
		return -1;
	return bpf_redirect(skb->ifindex, 0);
}

#endif
