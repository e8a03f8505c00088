/* BPF side only: TCP services beside the UDP ones (a service's tcp_ports,
 * e.g. SSTP on 443; docs/tcp.md). One hook in ikelb_tc: a parsed TCP
 * segment comes to tcp_handle. A segment to VIP:tcp_port is placed by
 *   1 its connection (tcp_conn_map, 5-tuple): a connection never moves;
 *   2 the client's source-ip persistence entry, the one IKE writes, so a
 *     client's SSTP and IKE share a server;
 *   3 the Maglev table at hash(client under the netmask): the server IKE
 *     in source-ip mode would pick for that client (a SYN needs an ACTIVE
 *     server: rule new; any other segment takes any live one: fallback),
 * then forwarded like UDP (dnat rewrite with incremental checksums, or dsr).
 * Server -> client segments (dnat) get the VIP as source, believed only
 * where the servers are (reply_genuine), as UDP replies are. */
#ifndef IKELB_TCP_H
#define IKELB_TCP_H

#include "bpf/ikelb_bpf_defs.h"
#include "bpf/ikelb_tcp_parse.h"
#include "bpf/ikelb_fwd.h"
#include "bpf/ikelb_steer.h"
#include "ikelb/hash.h"

/* ikelb.bpf.c: a reply is believed only from where the servers are. */
static __always_inline int reply_genuine(struct __sk_buff *skb, const struct pkt *p);

static __always_inline int tcp_drop(__u32 svc_id, const struct pkt *p, __u32 reason)
{
	ctr_add(svc_id, SVC_CTR_TCP_DROP, p->len);
	ctr_add(svc_id, SVC_CTR_DROP(reason), p->len);
	return TC_ACT_SHOT;
}

/* Source-ip persistence from an established connection (a segment that
 * is not a SYN, on a known connection): created when the client has none,
 * refreshed while it points where the connection is, never moved (IKE's
 * vouched messages own it). Keeps an SSTP-only client on its server. */
static __always_inline void tcp_persist_touch(const struct svc_value *svc, struct ctx *c)
{
	struct persist_key pk;

	persist_key_make(&pk, svc, c);
	struct state_value *v = bpf_map_lookup_elem(&persist_map, &pk);
	if (v) {
		if (v->real_id == c->real_id)
			state_touch(v, c->now);
		return;
	}
	struct state_value nv = { .real_id = c->real_id, .last_seen_s = c->now };
	if (bpf_map_update_elem(&persist_map, &pk, &nv, BPF_NOEXIST) == 0)
		tbl_inserted(TBL_PERSIST);
}

/* The connection's server (rule flow), else persistence, else Maglev. */
static __always_inline struct real_value *tcp_steer(const struct svc_value *svc, struct ctx *c,
						    int syn)
{
	struct real_value *r;

	/* TBL__MAX: the connection table is not one of the table statistics' */
	c->rule = RULE_FLOW;
	r = state_use(&tcp_conn_map, &c->fk, c, svc->persist_timeout_s, TBL__MAX);
	if (r)
		return r;
	if (!c->ike_mode) {
		struct persist_key pk;

		persist_key_make(&pk, svc, c);
		c->rule = RULE_PERSIST;
		r = state_use(&persist_map, &pk, c, svc->persist_timeout_s, TBL_PERSIST);
		if (r)
			return r;
	}
	struct ikelb_addr ha = c->fk.client;
	ikelb_addr_mask(&ha, ikelb_addr_is_v4(&ha) ? svc->netmask : svc->netmask6);
	__u64 h = ikelb_hash_addr(&ha, 0, svc->hash_seed);
	if (syn) {
		c->rule = RULE_NEW;
		return maglev_pick(svc, c, h, 1);
	}
	c->rule = RULE_FALLBACK;
	return maglev_pick(svc, c, h, 0);
}

/* Client -> VIP:tcp_port. */
static __noinline int tcp_service(struct __sk_buff *skb, const struct pkt *p,
				  const struct svc_value *svc)
{
	__u8 fl = tcp_flags(skb, p);
	int syn = (fl & (IKELB_TCP_SYN | IKELB_TCP_ACK)) == IKELB_TCP_SYN;
	struct ctx c;

	if (ctx_init(&c, svc, p) < 0)
		return TC_ACT_OK;
	c.now = now_s();
	ctx_ctr(&c, SVC_CTR_TCP_RX, p->len);
	if (p->ttl <= 1 && !(svc->flags & SVC_F_DSR)) {
		/* the kernel drops it and sends time exceeded */
		tcp_drop(c.svc_id, p, IKE_DROP_TTL_EXPIRED);
		return TC_ACT_OK;
	}
	struct real_value *r = tcp_steer(svc, &c, syn);
	if (!r)
		return tcp_drop(c.svc_id, p, IKE_DROP_NO_SERVER);
	c.raddr = r->addr;
	if (c.rule != RULE_FLOW && !(fl & IKELB_TCP_RST)) {
		state_put(&tcp_conn_map, &c.fk, c.real_id, c.now, TBL__MAX);
		declog(&c);
	}
	if (syn && c.rule != RULE_FLOW)
		ctx_ctr(&c, SVC_CTR_TCP_NEW, p->len);
	if (!syn && !c.ike_mode && c.rule == RULE_FLOW)
		tcp_persist_touch(svc, &c);
	ctx_ctr(&c, SVC_CTR_TCP_FWD, p->len);
	real_ctr_add(c.real_id, p->len);
	if (p->frag == FRAG_FIRST)
		frag_record(p, (svc->flags & SVC_F_DSR) ? FRAG_K_DSR : FRAG_K_DNAT, &c.raddr,
			    c.svc_id, c.real_id);
	return to_real(skb, p, svc->flags, &c.raddr, c.svc_id);
}

/* Server -> client (dnat): the source (real, tcp_port) becomes the VIP,
 * unless the segment is for ikelb itself (its TCP health checks). */
static __noinline int tcp_reply(struct __sk_buff *skb, const struct pkt *p)
{
	struct rev_key rk;

	__builtin_memset(&rk, 0, sizeof(rk));
	rk.addr = p->src;
	rk.port = p->sport;
	rk.proto = IPPROTO_TCP;
	struct rev_value *rv = bpf_map_lookup_elem(&rev_map, &rk);
	if (!rv) {
		/* The VIP as a source from the public side is a spoof (dnat: the
		 * VIP never sends through ikelb; dsr: only the servers do). */
		struct svc_value *svc = svc_find_proto(&p->src, p->sport, IPPROTO_TCP);
		if (!svc || ((svc->flags & SVC_F_DSR) && reply_genuine(skb, p)))
			return TC_ACT_OK;
		return tcp_drop(svc->svc_id, p, IKE_DROP_SPOOFED_REPLY);
	}
	if (bpf_map_lookup_elem(&local_addr_map, &p->dst))
		return TC_ACT_OK;
	struct ikelb_addr vip = rv->vip;
	__u32 svc_id = rv->svc_id;

	if (!reply_genuine(skb, p))
		return tcp_drop(svc_id, p, IKE_DROP_SPOOFED_REPLY);
	if (p->ttl <= 1) {
		tcp_drop(svc_id, p, IKE_DROP_TTL_EXPIRED);
		return TC_ACT_OK; /* the kernel drops it and sends time exceeded */
	}
	ctr_add(svc_id, SVC_CTR_TCP_REPLY, p->len);
	if (p->frag == FRAG_FIRST)
		frag_record(p, FRAG_K_REPLY, &vip, svc_id, IKELB_REAL_NONE);
	return fwd(skb, p, &vip, FWD_ARG(FWD_SNAT, svc_id));
}

/* The hook: every parsed TCP segment (not a later fragment). */
static __always_inline int tcp_handle(struct __sk_buff *skb, const struct pkt *p)
{
	struct svc_value *svc = svc_find_proto(&p->dst, p->dport, IPPROTO_TCP);

	if (svc)
		return tcp_service(skb, p, svc);
	return tcp_reply(skb, p);
}

#endif
