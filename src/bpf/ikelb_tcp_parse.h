/* BPF side only: the TCP header of a segment to or from a tcp_port
 * (docs/tcp.md), read like the UDP one in ikelb_parse.h. */
#ifndef IKELB_TCP_PARSE_H
#define IKELB_TCP_PARSE_H

#include "bpf/ikelb_bpf_defs.h"

#define IKELB_TCP_HLEN 20
#define IKELB_TCP_CSUM_OFF 16 /* offsetof(struct tcphdr, check) */
#define IKELB_TCP_FLAGS_OFF 13
#define IKELB_TCP_SYN 0x02
#define IKELB_TCP_RST 0x04
#define IKELB_TCP_ACK 0x10

/* ip_payload: bytes after the IP (and IPv6 fragment) header. Ports into
 * p; the header must fit what is here, its data offset be sane. */
static __always_inline int tcp_parse(struct __sk_buff *skb, struct pkt *p, __u32 ip_payload)
{
	__u8 h[IKELB_TCP_FLAGS_OFF];

	if (ip_payload < IKELB_TCP_HLEN || bpf_skb_load_bytes(skb, p->l4off, h, sizeof(h)) < 0)
		return PARSE_BAD;
	p->sport = (__u16)(h[0] << 8 | h[1]);
	p->dport = (__u16)(h[2] << 8 | h[3]);
	__u32 doff = (__u32)(h[12] >> 4) * 4;
	if (doff < IKELB_TCP_HLEN || doff > ip_payload)
		return PARSE_BAD;
	p->plen = ip_payload - doff;
	p->present = p->plen;
	return PARSE_OK;
}

/* The segment's flags byte; 0 when unreadable (then nothing is a SYN). */
static __always_inline __u8 tcp_flags(struct __sk_buff *skb, const struct pkt *p)
{
	__u8 fl = 0;

	if (bpf_skb_load_bytes(skb, p->l4off + IKELB_TCP_FLAGS_OFF, &fl, 1) < 0)
		return 0;
	return fl;
}

#endif
