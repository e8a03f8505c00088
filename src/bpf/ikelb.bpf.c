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
 * forwarding (ikelb_fwd.h), XDP frame access (ikelb_xdp.h). */
#include "bpf/ikelb_bpf_defs.h"
#include "bpf/ikelb_parse.h"
#include "bpf/ikelb_fwd.h"
#include "bpf/ikelb_steer.h"
#include "bpf/ikelb_xdp.h"
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

/* Non-first fragment: follow the first one; without it nobody can place
 * the fragment. */
static __noinline int handle_frag_later(struct __sk_buff *skb, const struct pkt *p)
{
	struct frag_key k;

	frag_key_make(&k, p);
	struct frag_value *fv = bpf_map_lookup_elem(&frag_map, &k);
	if (!fv)
		return vip_drop(p, IKE_DROP_FRAGMENT);
	struct ikelb_addr a = fv->addr;
	__u32 svc_id = fv->svc_id;
	__u8 kind = fv->kind;

	ctr_add(svc_id, SVC_CTR_FRAGMENT, p->len);
	if (kind == FRAG_K_REPLY) {
		if (rewrite_addr(skb, p, 0, &a) < 0)
			return TC_ACT_SHOT;
		return fib_forward(skb, p, &a, &p->dst, FIB_ARG(1, svc_id));
	}
	ctr_add(svc_id, SVC_CTR_RX, p->len);
	real_ctr_add(fv->real_id, p->len);
	if (kind == FRAG_K_DSR)
		return fib_forward(skb, p, &p->src, &a, FIB_ARG(0, svc_id));
	if (rewrite_addr(skb, p, 1, &a) < 0)
		return TC_ACT_SHOT;
	return fib_forward(skb, p, &p->src, &a, FIB_ARG(1, svc_id));
}

/* A server's reply names its client's flow (client ip, port toward the
 * VIP port) with certainty: only that server holds the SA. Learning from
 * replies lets ESP follow again after state was lost (restart, another
 * node, NAT rebinding) as soon as the server sends anything, and it cannot
 * be flooded from outside: the only replies a spoofer can provoke are
 * IKE_SA_INIT (and IKEv1 phase 1) responses, which teach nothing. */
static __noinline void reply_learn(struct __sk_buff *skb, const struct pkt *p,
				   const struct rev_value *rv)
{
	struct ike_info info;
	struct flow_key fk;
	__u32 real_id = rv->real_id, svc_id = rv->svc_id;
	__u16 vport = rv->port;

	if (real_id == IKELB_REAL_NONE || p->frag == FRAG_LATER)
		return;
	classify(skb, p, rv->natt, &info);
	if (info.cls == IKE_C_DROP)
		return;
	if (ike_is_phase1(&info))
		return;
	__builtin_memset(&fk, 0, sizeof(fk));
	fk.svc_id = svc_id;
	fk.cport = p->dport;
	fk.vport = vport;
	fk.client = p->dst;
	state_put(&flow_map, &fk, real_id, now_s());
}

/* Server -> client (dnat): source (real, port) becomes (VIP, port), unless
 * the datagram is for ikelb itself (health-probe answers). */
static __noinline int handle_reply(struct __sk_buff *skb, const struct pkt *p)
{
	struct rev_key rk;

	__builtin_memset(&rk, 0, sizeof(rk));
	rk.addr = p->src;
	rk.port = p->sport;
	struct rev_value *rv = bpf_map_lookup_elem(&rev_map, &rk);
	if (!rv)
		return TC_ACT_OK;
	if (bpf_map_lookup_elem(&local_addr_map, &p->dst))
		return TC_ACT_OK;
	struct ikelb_addr vip = rv->vip;
	__u32 svc_id = rv->svc_id;

	ctr_add(svc_id, SVC_CTR_REPLY, p->len);
	reply_learn(skb, p, rv);
	if (p->frag == FRAG_FIRST)
		frag_record(p, FRAG_K_REPLY, &vip, svc_id, IKELB_REAL_NONE);
	if (rewrite_addr(skb, p, 0, &vip) < 0)
		return TC_ACT_SHOT;
	return fib_forward(skb, p, &vip, &p->dst, FIB_ARG(1, svc_id));
}

/* Client -> VIP. */
static __noinline int handle_service(struct __sk_buff *skb, const struct pkt *p,
				     const struct svc_value *svc)
{
	struct ctx c;

	ctx_init(&c, svc, p);
	ctr_add(c.svc_id, SVC_CTR_RX, p->len);
	classify(skb, p, svc->natt, &c.info);
	if (c.info.cls == IKE_C_DROP) {
		ctr_add(c.svc_id, SVC_CTR_DROP(c.info.drop), p->len);
		return TC_ACT_SHOT;
	}
	ctr_class(&c, p->len);
	if (steer(svc, &c) < 0) {
		ctr_add(c.svc_id, SVC_CTR_DROP(IKE_DROP_NO_SERVER), p->len);
		return TC_ACT_SHOT;
	}
	learn(svc, &c);
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

	__builtin_memset(&p, 0, sizeof(p));
	int rc = pkt_parse(skb, &p);
	if (rc == PARSE_PASS)
		return TC_ACT_OK;
	if (rc == PARSE_BAD)
		return vip_drop(&p, IKE_DROP_MALFORMED_IP);
	if (p.frag == FRAG_LATER)
		return handle_frag_later(skb, &p);

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

	ctx_init(&c, svc, p);
	xdp_classify(x, p, h, svc->natt, &c.info);
	if (c.info.cls == IKE_C_DROP) {
		ctr_add(c.svc_id, SVC_CTR_RX, p->len);
		ctr_add(c.svc_id, SVC_CTR_DROP(c.info.drop), p->len);
		return XDP_DROP;
	}
	if (steer(svc, &c) < 0) {
		ctr_add(c.svc_id, SVC_CTR_RX, p->len);
		ctr_class(&c, p->len);
		ctr_add(c.svc_id, SVC_CTR_DROP(IKE_DROP_NO_SERVER), p->len);
		return XDP_DROP;
	}
	if (ikelb_addr_is_v4(&c.raddr) == p->v6 || xdp_fib(x, p, h, &c.raddr, &f) < 0)
		return XDP_PASS; /* tc decides again and counts (FIB_PASS etc.) */
	learn(svc, &c);
	ctr_add(c.svc_id, SVC_CTR_RX, p->len);
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
