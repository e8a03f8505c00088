// SPDX-License-Identifier: GPL-2.0
/* ikelb fast path: tc clsact ingress program for IKEv2 / ESP-in-UDP
 * virtual services (DESIGN.md §2, §3), and an optional XDP program in
 * front of it for the dnat hot path (src/bpf/ikelb_xdp.h; bpf.attach:
 * xdp). Both share every map. One pass per UDP datagram:
 * classify (include/ikelb/ike_wire.h), choose the real server in the §3.2 order
 * (label, flow, IKE SA, source-ip persistence, new client, fallback),
 * record state, rewrite and forward (src/bpf/ikelb_fwd.h). */
#include "bpf/ikelb_bpf_defs.h"
#include "bpf/ikelb_parse.h"
#include "bpf/ikelb_fwd.h"
#include "bpf/ikelb_steer.h"
#include "bpf/ikelb_xdp.h"
#include "ikelb/ike_wire.h"
#include "ikelb/hash.h"

char LICENSE[] SEC("license") = "GPL";

/* Copy the first bytes of the UDP payload and classify them. */
static __noinline void classify(struct __sk_buff *skb, const struct pkt *p, int natt,
				struct ike_info *info)
{
	__u8 buf[IKELB_PEEK_LEN];
	__u32 n = p->present;

	__builtin_memset(buf, 0, sizeof(buf));
	if (n > IKELB_PEEK_LEN)
		n = IKELB_PEEK_LEN;
	if (n > p->plen)
		n = p->plen;
	if (n > 0) {
		/* n is 1..32 already; the barrier stops clang from folding the
		 * mask away, so the verifier sees a non-zero bounded size. */
		__u32 m = n - 1;
		asm volatile("" : "+r"(m));
		m = (m & (IKELB_PEEK_LEN - 1)) + 1;
		if (bpf_skb_load_bytes(skb, p->l4off + sizeof(struct udphdr), buf, m) < 0) {
			ike_drop(info, IKE_DROP_MALFORMED_IP);
			return;
		}
	}
	ike_classify(buf, buf + n, p->plen, natt, info);
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

static __noinline int handle_service(struct __sk_buff *skb, const struct pkt *p,
				     const struct svc_value *svc)
{
	struct ctx c;

	__builtin_memset(&c, 0, sizeof(c));
	c.svc_id = svc->svc_id;
	ctr_add(c.svc_id, SVC_CTR_RX, p->len);
	classify(skb, p, svc->natt, &c.info);
	if (c.info.cls == IKE_C_DROP) {
		ctr_add(c.svc_id, SVC_CTR_DROP(c.info.drop), p->len);
		return TC_ACT_SHOT;
	}
	ctr_add(c.svc_id, SVC_CTR_IKEV2 + c.info.cls - IKE_C_IKEV2, p->len);

	c.now = now_s();
	c.is_ike = c.info.cls == IKE_C_IKEV2 || c.info.cls == IKE_C_IKEV1;
	c.ike_mode = !!(svc->flags & SVC_F_PERSIST_IKE);
	c.fk.svc_id = c.svc_id;
	c.fk.cport = p->sport;
	c.fk.vport = p->dport;
	c.fk.client = p->src;

	if (steer(svc, &c) < 0) {
		ctr_add(c.svc_id, SVC_CTR_DROP(IKE_DROP_NO_SERVER), p->len);
		return TC_ACT_SHOT;
	}
	learn(svc, &c);
	ctr_add(c.svc_id, SVC_CTR_STEER(c.rule), p->len);
	ctr_add(c.svc_id, SVC_CTR_FWD, p->len);
	real_ctr_add(c.real_id, p->len);
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
	if (rc == PARSE_BAD) {
		__u32 *sid = bpf_map_lookup_elem(&vip_map, &p.dst);
		if (!sid)
			return TC_ACT_OK;
		ctr_add(*sid, SVC_CTR_RX, p.len);
		ctr_add(*sid, SVC_CTR_DROP(IKE_DROP_MALFORMED_IP), p.len);
		return TC_ACT_SHOT;
	}
	if (p.frag == FRAG_LATER)
		return handle_frag_later(skb, &p);

	struct svc_key sk;
	__builtin_memset(&sk, 0, sizeof(sk));
	sk.vip = p.dst;
	sk.port = p.dport;
	sk.proto = IPPROTO_UDP;
	struct svc_value *svc = bpf_map_lookup_elem(&svc_map, &sk);
	if (svc)
		return handle_service(skb, &p, svc);
	return handle_reply(skb, &p);
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

	struct svc_key sk;
	__builtin_memset(&sk, 0, sizeof(sk));
	sk.vip = p.dst;
	sk.port = p.dport;
	sk.proto = IPPROTO_UDP;
	struct svc_value *svc = bpf_map_lookup_elem(&svc_map, &sk);
	if (!svc || (svc->flags & SVC_F_DSR))
		return XDP_PASS;
	return xdp_service(x, &p, &h, svc);
}
