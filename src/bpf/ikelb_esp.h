/* BPF side only: raw ESP (IP protocol 50) to and from a VIP.
 *
 * A client that sees no NAT toward the server negotiates no UDP
 * encapsulation and sends ESP straight over IP (docs/layouts.md, "When
 * clients send raw ESP"). It carries no ports and no IKE SPIs, so it is
 * steered by what the client's IKE already taught, in this order:
 *   1 label   the server whose ESP SPI range holds the SPI
 *   2 flow    the client's IKE flow, (client, 4500 -> 4500) then 500 -> 500:
 *             without a NAT the client's source port is the VIP port
 *   4 persist source-ip persistence of the client address
 *   6 fallback source-ip only: the Maglev slot of the client address, where
 *             rule new placed the client's first IKE_SA_INIT
 * ike persistence placed the SA by its SPIi, which ESP does not carry: with
 * no label and no flow the datagram is dropped, counted esp_unknown, rather
 * than sent to a server that holds no SA for it. Raw ESP learns nothing.
 *
 * The VIP's raw ESP entry in svc_map is (VIP, port 0, IPPROTO_ESP), written
 * by user space for the first service on each VIP. Included by
 * ikelb.bpf.c after the reply checks it reuses (reply_checks). */
#ifndef IKELB_ESP_H
#define IKELB_ESP_H

#include "bpf/ikelb_bpf_defs.h"
#include "bpf/ikelb_fwd.h"
#include "bpf/ikelb_steer.h"
#include "ikelb/ike_wire.h"

#define IKELB_ESP_NATT_PORT 4500
#define IKELB_ESP_IKE_PORT 500

/* ikelb_esp_steer's answer when nothing knows the client (ike mode). */
#define ESP_UNKNOWN (-2)

static __always_inline struct svc_value *esp_svc(const struct ikelb_addr *vip)
{
	struct svc_key sk;

	__builtin_memset(&sk, 0, sizeof(sk));
	sk.vip = *vip;
	sk.proto = IPPROTO_ESP;
	return bpf_map_lookup_elem(&svc_map, &sk);
}

/* SPI and sequence number into c->info; SPI 0..255 is reserved (RFC 4303). */
static __always_inline void esp_read(struct __sk_buff *skb, const struct pkt *p,
				     struct ike_info *info)
{
	__be32 h[2];

	info->cls = IKE_C_ESP;
	if (bpf_skb_load_bytes(skb, p->l4off, h, sizeof(h)) < 0) {
		ike_drop(info, IKE_DROP_TOO_SHORT);
		return;
	}
	info->esp_spi = bpf_ntohl(h[0]);
	info->esp_seq = bpf_ntohl(h[1]);
	if (info->esp_spi <= 255)
		ike_drop(info, IKE_DROP_RESERVED_SPI);
}

/* Rule flow for raw ESP: the client's IKE flow on vport. */
static __always_inline struct real_value *esp_flow(const struct svc_value *svc, struct ctx *c,
						   __u16 vport)
{
	c->fk.cport = vport;
	c->fk.vport = vport;
	return state_use(&flow_map, &c->fk, c, svc->flow_timeout_s, TBL_FLOW);
}

static __always_inline struct real_value *esp_steer_any(const struct svc_value *svc,
							struct ctx *c)
{
	struct real_value *r;

	c->rule = RULE_LABEL;
	r = steer_label(svc, c);
	if (r)
		return r;
	c->rule = RULE_FLOW;
	r = esp_flow(svc, c, IKELB_ESP_NATT_PORT);
	if (!r)
		r = esp_flow(svc, c, IKELB_ESP_IKE_PORT);
	if (r || c->ike_mode)
		return r;
	struct persist_key pk;

	persist_key_make(&pk, svc, c);
	c->rule = RULE_PERSIST;
	r = state_use(&persist_map, &pk, c, svc->persist_timeout_s, TBL_PERSIST);
	if (r)
		return r;
	c->rule = RULE_FALLBACK;
	return maglev_pick(svc, c, ikelb_hash_addr(&pk.client, 0, svc->hash_seed), 0);
}

/* 0 with c->real_id / c->raddr set; -1 no server, ESP_UNKNOWN. */
static __noinline int esp_steer(const struct svc_value *svc, struct ctx *c)
{
	c->now = now_s();
	struct real_value *r = esp_steer_any(svc, c);

	if (r) {
		c->raddr = r->addr;
		return 0;
	}
	return c->ike_mode && c->rule == RULE_FLOW ? ESP_UNKNOWN : -1;
}

/* Client -> VIP: dnat rewrites the destination (IPv4 header checksum
 * only), dsr forwards on L2. */
static __noinline int esp_to_vip(struct __sk_buff *skb, const struct pkt *p,
				 const struct svc_value *svc)
{
	struct ctx c;

	if (ctx_init(&c, svc, p) < 0)
		return TC_ACT_OK;
	ctx_ctr(&c, SVC_CTR_RX, p->len);
	ctx_ctr(&c, SVC_CTR_ESP_RAW, p->len);
	if (ttl_expired(p, svc->flags, c.svc_id))
		return TC_ACT_OK;
	esp_read(skb, p, &c.info);
	if (c.info.cls == IKE_C_DROP) {
		ctx_ctr(&c, SVC_CTR_DROP(c.info.drop), p->len);
		return TC_ACT_SHOT;
	}
	ctr_class(&c, p->len);
	int rc = esp_steer(svc, &c);
	if (rc < 0) {
		ctx_ctr(&c, SVC_CTR_DROP(rc == ESP_UNKNOWN ? IKE_DROP_ESP_UNKNOWN
								 : IKE_DROP_NO_SERVER), p->len);
		return TC_ACT_SHOT;
	}
	/* ESP writes no state, only the decision log: with no ports, which
	 * the flow lookup borrowed. */
	c.fk.cport = 0;
	c.fk.vport = 0;
	learn(svc, &c);
	ctr_steered(&c, p->len);
	if (p->frag == FRAG_FIRST)
		frag_record(p, (svc->flags & SVC_F_DSR) ? FRAG_K_DSR : FRAG_K_DNAT, &c.raddr,
			    c.svc_id, c.real_id);
	return to_real(skb, p, svc->flags, &c.raddr, c.svc_id);
}

/* The dnat service a real server's raw ESP belongs to: the one it serves
 * IKE for (its reverse entry on 4500, else 500). */
static __always_inline struct rev_value *esp_rev(const struct pkt *p)
{
	struct rev_key rk;

	__builtin_memset(&rk, 0, sizeof(rk));
	rk.addr = p->src;
	rk.proto = IPPROTO_UDP;
	rk.port = IKELB_ESP_NATT_PORT;
	struct rev_value *rv = bpf_map_lookup_elem(&rev_map, &rk);
	if (rv)
		return rv;
	rk.port = IKELB_ESP_IKE_PORT;
	return bpf_map_lookup_elem(&rev_map, &rk);
}

/* Server -> client (dnat): the source becomes the VIP. Answers for ikelb
 * itself and a dsr VIP's own ESP from the servers' side stay untouched. */
static __noinline int esp_from_real(struct __sk_buff *skb, const struct pkt *p)
{
	struct rev_value *rv = esp_rev(p);

	if (!rv) {
		struct svc_value *svc = esp_svc(&p->src);
		if (!svc || ((svc->flags & SVC_F_DSR) && (iface_roles(skb) & IFACE_R_SERVERS)))
			return TC_ACT_OK;
		ctr_add(svc->svc_id, SVC_CTR_DROP(IKE_DROP_SPOOFED_REPLY), p->len);
		return TC_ACT_SHOT;
	}
	int rc = reply_checks(skb, p, rv);
	if (rc != REPLY_GO)
		return rc;
	struct ikelb_addr vip = rv->vip;
	__u32 svc_id = rv->svc_id;

	if (p->frag == FRAG_FIRST)
		frag_record(p, FRAG_K_REPLY, &vip, svc_id, IKELB_REAL_NONE);
	return fwd(skb, p, &vip, FWD_ARG(FWD_SNAT, svc_id));
}

/* The hook: every unfragmented or first-fragment raw ESP datagram. */
static __always_inline int esp_handle(struct __sk_buff *skb, const struct pkt *p)
{
	struct svc_value *svc = esp_svc(&p->dst);

	if (svc)
		return esp_to_vip(skb, p, svc);
	return esp_from_real(skb, p);
}

#endif
