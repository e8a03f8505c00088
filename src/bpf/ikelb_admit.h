/* BPF side only: admission control for new IKE SAs (docs/security.md,
 * "Admission"). A new SA is an IKE_SA_INIT request (or IKEv1 first phase-1
 * message) with SPIr 0 whose SPIi is in neither SA table: retransmits, the
 * retry after a server's own COOKIE or INVALID_KE, and every packet of
 * established SAs (and ESP, keepalives) pass untouched. For a new SA, in
 * this order: ikelb's COOKIE (IKEv2, opt-in: over cookie_threshold per
 * second an INIT without a valid cookie is answered with one, and consumes
 * no other bucket), then the per-source bucket, then the service's. */
#ifndef IKELB_BPF_ADMIT_H
#define IKELB_BPF_ADMIT_H

#include "bpf/ikelb_bpf_defs.h"
#include "bpf/ikelb_cookie.h"
#include "bpf/ikelb_steer.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IKELB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct admit_value);
} admit_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, IKELB_ADMIT_SOURCES);
	__type(key, struct admit_src_key);
	__type(value, __u64);
} admit_src_map SEC(".maps");

enum { ADMIT_PASS = 0, ADMIT_DROP = 1, ADMIT_COOKIE = 2 };

/* GCRA (maps.h, admit_bucket): 1 when admitted. Plain loads and stores:
 * CPUs racing on one bucket may each admit one message more than the rate,
 * never fewer. */
static __always_inline int gcra(__u64 *tat, __u64 interval, __u64 tau, __u64 now)
{
	if (!interval)
		return 1;
	__u64 t = *tat;
	if (t < now)
		t = now;
	if (t - now > tau)
		return 0;
	*tat = t + interval;
	return 1;
}

/* The admission settings of a service that has any, for a message that
 * could open an SA; 0 otherwise. Also what the XDP program asks. */
static __always_inline struct admit_value *admit_cfg(const struct ctx *c)
{
	if (!ike_is_new_sa(&c->info))
		return 0;
	__u32 id = c->svc_id;
	struct admit_value *a = bpf_map_lookup_elem(&admit_map, &id);
	return a && (a->flags & ADMIT_F_ON) ? a : 0;
}

static __always_inline int admit_source(const struct admit_value *a, const struct ctx *c, __u64 now)
{
	struct admit_src_key k = { .svc_id = c->svc_id, .client = c->fk.client };

	if (!a->src_interval_ns)
		return 1;
	__u64 *tat = bpf_map_lookup_elem(&admit_src_map, &k);
	if (tat)
		return gcra(tat, a->src_interval_ns, a->src_tau_ns, now);
	__u64 first = now + a->src_interval_ns;
	bpf_map_update_elem(&admit_src_map, &k, &first, BPF_ANY);
	return 1;
}

/* ADMIT_PASS, ADMIT_DROP (counted by reason) or ADMIT_COOKIE (the caller
 * answers with a cookie). */
static __noinline int admit(struct __sk_buff *skb, const struct pkt *p, const struct ctx *c)
{
	struct admit_value *a = admit_cfg(c);

	if (!a)
		return ADMIT_PASS;
	struct sa_key k = { .svc_id = c->svc_id, .spi_i = c->info.spi_i };
	if (bpf_map_lookup_elem(&sa_map, &k) || bpf_map_lookup_elem(&halfopen_map, &k))
		return ADMIT_PASS;
	__u64 now = bpf_ktime_get_ns();
	if ((a->flags & ADMIT_F_COOKIE) && c->info.cls == IKE_C_IKEV2) {
		int v = cookie_check(skb, p, &c->info);
		if (v == COOKIE_VALID) {
			ctx_ctr(c, SVC_CTR_COOKIE_VALID, p->len);
		} else {
			if (v == COOKIE_INVALID)
				ctx_ctr(c, SVC_CTR_COOKIE_INVALID, p->len);
			if ((a->flags & ADMIT_F_COOKIE_ALWAYS) ||
			    !gcra(&a->cookie.tat_ns, a->cookie.interval_ns, a->cookie.tau_ns, now))
				return ADMIT_COOKIE;
		}
	}
	if (!admit_source(a, c, now)) {
		ctx_ctr(c, SVC_CTR_DROP(IKE_DROP_ADMIT_SOURCE), p->len);
		return ADMIT_DROP;
	}
	if (!gcra(&a->svc.tat_ns, a->svc.interval_ns, a->svc.tau_ns, now)) {
		ctx_ctr(c, SVC_CTR_DROP(IKE_DROP_ADMIT_SERVICE), p->len);
		return ADMIT_DROP;
	}
	return ADMIT_PASS;
}

/* tc: the verdict for a datagram admit() did not pass; -1 = go on. */
static __always_inline int admit_verdict(struct __sk_buff *skb, const struct pkt *p,
					 const struct ctx *c)
{
	int v = admit(skb, p, c);

	if (v == ADMIT_PASS)
		return -1;
	if (v == ADMIT_COOKIE) {
		int rc = cookie_reply(skb, p, &c->info);
		if (rc >= 0) {
			ctx_ctr(c, SVC_CTR_COOKIE_SENT, p->len);
			return rc;
		}
		/* cannot be answered (IP options, fragment): a cookieless
		 * INIT over the threshold is not forwarded either */
		ctx_ctr(c, SVC_CTR_DROP(IKE_DROP_ADMIT_SERVICE), p->len);
	}
	return TC_ACT_SHOT;
}

#endif
