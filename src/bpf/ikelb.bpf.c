// SPDX-License-Identifier: GPL-2.0
/* ikelb fast path: tc clsact ingress program for IKEv2 / ESP-in-UDP
 * virtual services (ARCHITECTURE.md, "Packet path"), and an optional XDP
 * program in front of it for the dnat hot path (bpf.attach: xdp). Both
 * share every map. One pass per UDP datagram: classify
 * (include/ikelb/ike_wire.h), choose the real server in the order of
 * ARCHITECTURE.md, "Steering" (label, flow, IKE SA, source-ip persistence,
 * new client, fallback), record state, rewrite and forward.
 *
 * This file holds the programs and their per-direction handlers; the
 * headers only provide helpers: parsing and classification
 * (ikelb_parse.h), the decision and its state (ikelb_steer.h), rewrites and
 * forwarding (ikelb_fwd.h), XDP frame access (ikelb_xdp.h), raw ESP
 * (ikelb_esp.h, its own handlers behind one hook in ikelb_tc). */
#include "bpf/ikelb_bpf_defs.h"
#include "bpf/ikelb_parse.h"
#include "bpf/ikelb_fwd.h"
#include "bpf/ikelb_steer.h"
#include "bpf/ikelb_xdp.h"
#include "bpf/ikelb_admit.h"
#include "bpf/ikelb_tcp.h"
#include "ikelb/ike_wire.h"
#include "ikelb/hash.h"

char LICENSE[] SEC("license") = "GPL";

/* A datagram nobody can place (broken header, orphan fragment): dropped
 * and counted when it was meant for a VIP, else none of ours. */
static __always_inline int vip_drop(const struct pkt *p, __u32 reason)
{
	__u32 *sid = bpf_map_lookup_elem(&vip_map, &p->dst);

	if (!sid)
		return TC_ACT_OK;
	ctr_add(*sid, SVC_CTR_RX, p->len);
	ctr_add(*sid, SVC_CTR_DROP(reason), p->len);
	return TC_ACT_SHOT;
}

/* A routed hop (dnat, replies) would expire the datagram: the kernel
 * drops it and sends ICMP time exceeded; it is counted as such, never as
 * forwarded, and learns nothing. dsr is an L2 hop. */
static __always_inline int ttl_expired(const struct pkt *p, __u8 svc_flags, __u32 svc_id)
{
	if (p->ttl > 1 || (svc_flags & SVC_F_DSR))
		return 0;
	ctr_add(svc_id, SVC_CTR_DROP(IKE_DROP_TTL_EXPIRED), p->len);
	return 1;
}

/* Non-first fragment: follow the first one. One that overtook its first
 * fragment follows the client's hint (maps.h, frag_key); with neither,
 * nobody can place it. */
static __noinline int handle_frag_later(struct __sk_buff *skb, const struct pkt *p)
{
	struct frag_key k;

	frag_key_make(&k, p);
	struct frag_value *fv = bpf_map_lookup_elem(&frag_map, &k);
	if (!fv) {
		k.id = 0;
		k.hint = FRAG_HINT;
		fv = bpf_map_lookup_elem(&frag_map, &k);
	}
	if (!fv)
		return vip_drop(p, IKE_DROP_FRAGMENT);
	struct ikelb_addr a = fv->addr;
	__u32 svc_id = fv->svc_id;
	__u8 kind = fv->kind;

	ctr_add(svc_id, SVC_CTR_FRAGMENT, p->len);
	if (kind == FRAG_K_REPLY)
		return fwd(skb, p, &a, FWD_ARG(FWD_SNAT, svc_id));
	ctr_add(svc_id, SVC_CTR_RX, p->len);
	real_ctr_add(fv->real_id, p->len);
	return fwd(skb, p, &a, FWD_ARG(kind == FRAG_K_DSR ? FWD_DSR : FWD_DNAT, svc_id));
}

/* The server answered an IKE_SA_INIT (or IKEv1 phase 1) with the SPIr it
 * chose: remember it in the half-open entry, so that only a client message
 * carrying it promotes the SA (learn()). Only the server the entry points
 * at is heard. */
static __always_inline void halfopen_answered(__u32 svc_id, const struct ike_info *info,
					      __u32 real_id)
{
	struct sa_key k = { .svc_id = svc_id, .spi_i = info->spi_i };

	if (!info->spi_r || (info->cls == IKE_C_IKEV2 && ike_is_request(info)))
		return;
	struct halfopen_value *h = bpf_map_lookup_elem(&halfopen_map, &k);
	if (h && h->real_id == real_id)
		h->spi_r = info->spi_r;
}

/* ike mode: a protected reply also names its SA (a rekeyed IKE SA's new
 * SPIi is only ever seen in such messages). */
static __always_inline void reply_learn_sa(const struct svc_value *svc,
					   const struct rev_value *rv, __u64 spi_i, __u32 now)
{
	if (!svc || !(svc->flags & SVC_F_PERSIST_IKE))
		return;
	struct sa_key k = { .svc_id = rv->svc_id, .spi_i = spi_i };
	if (state_put(&sa_map, &k, rv->real_id, now, TBL_SA) > 0)
		tbl_del(&halfopen_map, &k, TBL_HALFOPEN);
}

/* A server's reply names its client's flow (client ip, port toward the
 * VIP port) with certainty: only that server holds the SA. Learning from
 * replies lets ESP follow again after state was lost (restart, another
 * node, NAT rebinding) as soon as the server sends anything. A spoofed
 * request can make a server answer in the clear (IKE_SA_INIT and IKEv1
 * phase-1 responses, errors and INFORMATIONALs about SAs it does not
 * have): those teach no flow. Only ESP, keepalives and IKE protected by
 * the SA's keys (ike_is_protected) do, which need an established SA.
 * A reply creates or refreshes a flow but never moves it: after a REDIRECT
 * the old server still answers its old SA's last messages while the flow
 * already belongs to the client's new SA elsewhere (state_keep). */
static __noinline void reply_learn(struct __sk_buff *skb, const struct pkt *p,
				   const struct rev_value *rv)
{
	struct ike_info info;
	struct flow_key fk;
	__u32 real_id = rv->real_id, svc_id = rv->svc_id, now = now_s();
	__u16 vport = rv->port;

	if (real_id == IKELB_REAL_NONE || p->frag == FRAG_LATER)
		return;
	classify(skb, p, rv->natt, &info);
	if (info.cls == IKE_C_DROP)
		return;
	int ike = info.cls == IKE_C_IKEV2 || info.cls == IKE_C_IKEV1;
	if (ike_is_phase1(&info)) {
		halfopen_answered(svc_id, &info, real_id);
		return;
	}
	if (ike && !ike_is_protected(&info))
		return;
	__builtin_memset(&fk, 0, sizeof(fk));
	fk.svc_id = svc_id;
	fk.cport = p->dport;
	fk.vport = vport;
	fk.client = p->dst;
	struct ikelb_addr vip = rv->vip;
	struct svc_value *svc = svc_find(&vip, rv->port);
	state_keep(&flow_map, &fk, real_id, now, svc ? svc->flow_timeout_s : 0, TBL_FLOW);
	if (ike)
		reply_learn_sa(svc, rv, info.spi_i, now);
}

/* Roles of the interface a packet arrived on (maps.h, iface_map). */
static __always_inline __u32 iface_roles(const struct __sk_buff *skb)
{
	__u32 ifi = skb->ifindex;
	__u32 *r = bpf_map_lookup_elem(&iface_map, &ifi);

	return r ? *r : IFACE_R_BOTH;
}

/* One arm (public and servers on one interface): a reply is believed only
 * from the L2 neighbour the kernel itself uses toward that server. Without
 * a neighbour entry yet, only the interface can be checked. */
static __noinline int reply_l2_ok(struct __sk_buff *skb, const struct pkt *p)
{
	struct bpf_fib_lookup f;
	struct ethhdr eth;

	if (PKT_LOAD(skb, 0, &eth) < 0)
		return 0;
	__builtin_memset(&f, 0, sizeof(f));
	f.ifindex = skb->ifindex;
	f.l4_protocol = IPPROTO_UDP;
	if (!p->v6) {
		f.family = IKELB_AF_INET;
		f.ipv4_dst = ikelb_addr_v4(&p->src);
	} else {
		f.family = IKELB_AF_INET6;
		__builtin_memcpy(f.ipv6_dst, p->src.b, 16);
	}
	long rc = bpf_fib_lookup(skb, &f, sizeof(f), 0);
	if (f.ifindex != skb->ifindex)
		return 0;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return 1;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	for (int i = 0; i < ETH_ALEN; i++)
		if (f.dmac[i] != eth.h_source[i])
			return 0;
	return 1;
}

/* Anything claiming a real server's address:port as its source must come
 * from where that server is (docs/security.md): else it is a spoof aimed
 * at a client (hijacking its flow, or delivered with the VIP as source). */
static __always_inline int reply_genuine(struct __sk_buff *skb, const struct pkt *p)
{
	__u32 roles = iface_roles(skb);

	if (!(roles & IFACE_R_SERVERS))
		return 0;
	return (roles & IFACE_R_PUBLIC) ? reply_l2_ok(skb, p) : 1;
}

/* A datagram from a VIP:port arriving here: a dnat VIP never sends
 * through ikelb's ingress, and a dsr VIP only from the servers' side. */
static __noinline int vip_source(struct __sk_buff *skb, const struct pkt *p)
{
	struct svc_value *svc = svc_find(&p->src, p->sport);

	if (!svc)
		return TC_ACT_OK;
	if ((svc->flags & SVC_F_DSR) && (iface_roles(skb) & IFACE_R_SERVERS))
		return TC_ACT_OK;
	ctr_add(svc->svc_id, SVC_CTR_DROP(IKE_DROP_SPOOFED_REPLY), p->len);
	return TC_ACT_SHOT;
}

/* What every dnat reply (UDP, raw ESP) passes before its source becomes
 * the VIP: not addressed to ikelb itself (probe answers), from where that
 * server really is, TTL left; then counted. REPLY_GO: rewrite it; else
 * the tc verdict to return. */
#define REPLY_GO 0x100
static __always_inline int reply_checks(struct __sk_buff *skb, const struct pkt *p,
					const struct rev_value *rv)
{
	if (bpf_map_lookup_elem(&local_addr_map, &p->dst))
		return TC_ACT_OK;
	if (!reply_genuine(skb, p)) {
		ctr_add(rv->svc_id, SVC_CTR_DROP(IKE_DROP_SPOOFED_REPLY), p->len);
		return TC_ACT_SHOT;
	}
	if (ttl_expired(p, 0, rv->svc_id))
		return TC_ACT_OK;
	ctr_add(rv->svc_id, SVC_CTR_REPLY, p->len);
	real_reply_add(rv->real_id, REAL_CTR_REPLY, p->len);
	return REPLY_GO;
}

/* Raw ESP's handlers reuse the checks above (reply_checks). */
#include "bpf/ikelb_esp.h"

/* Server -> client (dnat): source (real, port) becomes (VIP, port), unless
 * the datagram is for ikelb itself (health-probe answers). */
static __noinline int handle_reply(struct __sk_buff *skb, const struct pkt *p)
{
	struct rev_key rk;

	__builtin_memset(&rk, 0, sizeof(rk));
	rk.addr = p->src;
	rk.port = p->sport;
	rk.proto = IPPROTO_UDP;
	struct rev_value *rv = bpf_map_lookup_elem(&rev_map, &rk);
	if (!rv)
		return vip_source(skb, p);
	int rc = reply_checks(skb, p, rv);
	if (rc != REPLY_GO)
		return rc;
	struct ikelb_addr vip = rv->vip;
	__u32 svc_id = rv->svc_id;

	reply_learn(skb, p, rv);
	if (p->frag == FRAG_FIRST)
		frag_record(p, FRAG_K_REPLY, &vip, svc_id, IKELB_REAL_NONE);
	return fwd(skb, p, &vip, FWD_ARG(FWD_SNAT, svc_id));
}

/* An IKE message placed: the client's hint for later fragments that
 * overtake their first one (handle_frag_later). Not for ESP: the hot path
 * pays nothing. */
static __always_inline void frag_hint(const struct pkt *p, const struct svc_value *svc,
				      const struct ctx *c)
{
	if (c->info.cls != IKE_C_IKEV2 && c->info.cls != IKE_C_IKEV1)
		return;
	frag_record(p, FRAG_REC_HINT | ((svc->flags & SVC_F_DSR) ? FRAG_K_DSR : FRAG_K_DNAT),
		    &c->raddr, c->svc_id, c->real_id);
}

/* Client -> VIP. */
static __noinline int handle_service(struct __sk_buff *skb, const struct pkt *p,
				     const struct svc_value *svc)
{
	struct ctx c;

	if (ctx_init(&c, svc, p) < 0)
		return TC_ACT_OK;
	ctx_ctr(&c, SVC_CTR_RX, p->len);
	if (ttl_expired(p, svc->flags, c.svc_id))
		return TC_ACT_OK;
	classify(skb, p, svc->natt, &c.info);
	if (c.info.cls == IKE_C_DROP) {
		ctx_ctr(&c, SVC_CTR_DROP(c.info.drop), p->len);
		return TC_ACT_SHOT;
	}
	ctr_class(&c, p->len);
	int av = admit_verdict(skb, p, &c);
	if (av >= 0)
		return av;
	if (steer(svc, &c) < 0) {
		ctx_ctr(&c, steer_drop_ctr(&c), p->len);
		return TC_ACT_SHOT;
	}
	learn(svc, &c);
	frag_hint(p, svc, &c);
	ctr_steered(&c, p->len);
	if (p->frag == FRAG_FIRST)
		frag_record(p, (svc->flags & SVC_F_DSR) ? FRAG_K_DSR : FRAG_K_DNAT, &c.raddr,
			    c.svc_id, c.real_id);
	return to_real(skb, p, svc->flags, &c.raddr, c.svc_id);
}

SEC("tc")
int ikelb_tc(struct __sk_buff *skb)
{
	struct pkt p;

	/* A tag the device took out of the frame (VLAN offload, or the
	 * software untagging before tc): this interface is not the one the
	 * frame belongs to; the VLAN device's own filter sees it untagged. */
	if (skb->vlan_present)
		return TC_ACT_OK;
	__builtin_memset(&p, 0, sizeof(p));
	int rc = pkt_parse(skb, &p);
	if (rc == PARSE_PASS)
		return TC_ACT_OK;
	if (rc == PARSE_BAD)
		return vip_drop(&p, IKE_DROP_MALFORMED_IP);
	if (rc == PARSE_V4MAPPED)
		return vip_drop(&p, IKE_DROP_V4MAPPED);
	if (rc == PARSE_TCP)
		return tcp_handle(skb, &p);
	if (p.frag == FRAG_LATER)
		return handle_frag_later(skb, &p);
	if (p.proto == IPPROTO_ESP)
		return esp_handle(skb, &p);

	struct svc_value *svc = svc_lookup(&p);
	if (svc)
		return handle_service(skb, &p, svc);
	return handle_reply(skb, &p);
}

/* Client -> dnat VIP in XDP. Counts only what it finishes, so that tc,
 * seeing a passed frame, counts it once (ikelb_xdp.h). Inlined into the
 * program: the packet pointers in h keep their verified range (no
 * subprogram boundary in between). */
static __always_inline int xdp_service(struct xdp_md *x, const struct pkt *p, struct xdp_hdrs *h,
				       const struct svc_value *svc)
{
	struct bpf_fib_lookup f;
	struct ctx c;

	if (ctx_init(&c, svc, p) < 0)
		return XDP_PASS;
	xdp_classify(x, p, h, svc->natt, &c.info);
	if (c.info.cls == IKE_C_DROP) {
		ctx_ctr(&c, SVC_CTR_RX, p->len);
		ctx_ctr(&c, SVC_CTR_DROP(c.info.drop), p->len);
		return XDP_DROP;
	}
	if (admit_cfg(&c))
		return XDP_PASS; /* admission and cookies are tc's (ikelb_admit.h) */
	if (steer(svc, &c) < 0) {
		ctx_ctr(&c, SVC_CTR_RX, p->len);
		ctr_class(&c, p->len);
		ctx_ctr(&c, steer_drop_ctr(&c), p->len);
		return XDP_DROP;
	}
	if (ikelb_addr_is_v4(&c.raddr) == p->v6 || xdp_fib(x, p, h, &c.raddr, &f) < 0)
		return XDP_PASS; /* tc decides again and counts (FIB_PASS etc.) */
	learn(svc, &c);
	frag_hint(p, svc, &c);
	ctx_ctr(&c, SVC_CTR_RX, p->len);
	ctr_class(&c, p->len);
	ctr_steered(&c, p->len);
	struct ethhdr *eth = (void *)(long)x->data;
	if (xdp_rewrite_dnat(p, h, &c.raddr) < 0 || (void *)(eth + 1) > (void *)(long)x->data_end)
		return XDP_DROP; /* cannot happen: parsed above */
	__builtin_memcpy(eth->h_dest, f.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, f.smac, ETH_ALEN);
	return bpf_redirect(f.ifindex, 0);
}

/* bpf.attach: xdp. Forwards what it can finish (ikelb_xdp.h); XDP_PASS
 * leaves the frame to ikelb_tc above, unchanged. */
SEC("xdp")
int ikelb_xdp(struct xdp_md *x)
{
	struct xdp_hdrs h;
	struct pkt p;

	__builtin_memset(&p, 0, sizeof(p));
	__builtin_memset(&h, 0, sizeof(h));
	if (xdp_parse(x, &p, &h) != XP_OK)
		return XDP_PASS;

	struct svc_value *svc = svc_lookup(&p);
	if (!svc || (svc->flags & SVC_F_DSR))
		return XDP_PASS;
	return xdp_service(x, &p, &h, svc);
}
