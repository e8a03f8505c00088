/* BPF side only: the skb-independent part of the fast path, shared by the
 * tc and XDP programs of src/bpf/ikelb.bpf.c: the service lookup, the
 * decision (ARCHITECTURE.md, "Steering": label, flow, IKE SA, source-ip
 * persistence, new client, fallback) and the state it learns. Nothing here
 * reads or writes packet bytes. */
#ifndef IKELB_BPF_STEER_H
#define IKELB_BPF_STEER_H

#include "bpf/ikelb_bpf_defs.h"
#include "ikelb/ike_wire.h"
#include "ikelb/hash.h"

/* Everything the decision needs, on the stack once. */
struct ctx {
	struct flow_key fk;
	struct ike_info info;
	struct ikelb_addr raddr; /* the chosen real server's address */
	__u32 svc_id;
	__u32 now;         /* set by steer() */
	__u32 real_id;
	__u32 rule;        /* enum ikelb_rule */
	/* Bytes, not ints: room for ctrs without growing the stack of the
	 * handle_service -> cookie chain, which is at the 512-byte limit. */
	__u8 is_ike;       /* set by steer() */
	__u8 ike_mode;
	__u8 full;         /* a new client skipped a server at max_clients */
	__u8 pad;
	struct svc_ctrs *ctrs; /* the service's counters on this CPU, or 0 */
};

/* Needs struct ctx. */
#include "bpf/ikelb_sched.h"

/* The service on (vip, port, proto), or 0. */
static __always_inline struct svc_value *svc_find_proto(const struct ikelb_addr *vip, __u16 port,
							__u8 proto)
{
	struct svc_key sk;

	__builtin_memset(&sk, 0, sizeof(sk));
	sk.vip = *vip;
	sk.port = port;
	sk.proto = proto;
	return bpf_map_lookup_elem(&svc_map, &sk);
}

/* The UDP service on (vip, port), or 0. */
static __always_inline struct svc_value *svc_find(const struct ikelb_addr *vip, __u16 port)
{
	return svc_find_proto(vip, port, IPPROTO_UDP);
}

/* The service a parsed datagram is addressed to; 0 for anything else,
 * replies from real servers included. */
static __always_inline struct svc_value *svc_lookup(const struct pkt *p)
{
	return svc_find(&p->dst, p->dport);
}

/* Before classification, which tc and XDP read from different places:
 * c->info is the classifier's to fill, now and is_ike steer()'s. */
static __always_inline int ctx_init(struct ctx *c, const struct svc_value *svc,
				    const struct pkt *p)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->svc_id = svc->svc_id;
	c->ctrs = svc_ctrs_get(c->svc_id);
	/* Only an svc_id past the array (never written by the daemon) has no
	 * block. Failing here, once, keeps c->ctrs non-null for the verifier:
	 * a maybe-null pointer would fork every later path in two. */
	if (!c->ctrs)
		return -1;
	c->ike_mode = !!(svc->flags & SVC_F_PERSIST_IKE);
	c->fk.svc_id = c->svc_id;
	c->fk.cport = p->sport;
	c->fk.vport = p->dport;
	c->fk.client = p->src;
	return 0;
}

/* A counter of the packet's service, through the block ctx_init looked up
 * (non-null once ctx_init succeeded). */
static __always_inline void ctx_ctr(const struct ctx *c, __u32 idx, __u32 bytes)
{
	ctrs_inc(c->ctrs, idx, bytes);
}

/* The class counter of a datagram the classifier kept. */
static __always_inline void ctr_class(const struct ctx *c, __u32 len)
{
	ctx_ctr(c, SVC_CTR_IKEV2 + c->info.cls - IKE_C_IKEV2, len);
}

/* The counter of a datagram steer() could not place. */
static __always_inline __u32 steer_drop_ctr(const struct ctx *c)
{
	return c->full ? SVC_CTR_ALL_FULL : SVC_CTR_DROP(IKE_DROP_NO_SERVER);
}

/* The rule that placed a forwarded datagram, and its server. */
static __always_inline void ctr_steered(const struct ctx *c, __u32 len)
{
	ctx_ctr(c, SVC_CTR_STEER(c->rule), len);
	ctx_ctr(c, SVC_CTR_FWD, len);
	real_ctr_add(c->real_id, len);
	if (c->info.cls == IKE_C_IKEV2 || c->info.cls == IKE_C_IKEV1)
		real_reply_add(c->real_id, REAL_CTR_IKE, len);
}

/* Table statistics (maps.h, tbl_*): a new key was written. Returns 1 when
 * the fill estimate says the table was already at capacity, i.e. the LRU
 * evicted some other entry to make room. */
static __always_inline int tbl_inserted(__u32 tbl)
{
	struct tbl_ctr *tc = bpf_map_lookup_elem(&tbl_ctr_map, &tbl);
	struct tbl_fill *tf = bpf_map_lookup_elem(&tbl_fill_map, &tbl);

	if (tc)
		tc->inserts++;
	if (!tf || tf->capacity <= 0)
		return 0;
	if (__sync_fetch_and_add(&tf->fill, 1) < tf->capacity)
		return 0;
	__sync_fetch_and_add(&tf->fill, -1); /* full: one in, one evicted */
	return 1;
}

/* Delete a key, counted so the daemon can tell deletes from evictions. */
static __always_inline void tbl_del(void *map, void *key, __u32 tbl)
{
	if (bpf_map_delete_elem(map, key) != 0)
		return;
	struct tbl_ctr *tc = bpf_map_lookup_elem(&tbl_ctr_map, &tbl);
	struct tbl_fill *tf = bpf_map_lookup_elem(&tbl_fill_map, &tbl);

	if (tc)
		tc->deletes++;
	if (tf)
		__sync_fetch_and_add(&tf->fill, -1);
}

/* Idle seconds of an entry last used at `last`. The program's clock is
 * CLOCK_MONOTONIC_COARSE (now_s), which lags the daemon's CLOCK_MONOTONIC
 * by up to a tick: an entry the daemon wrote (HA sync, restore) can carry
 * a last_seen a second ahead of `now`. That is fresh, not 2^32 - 1 seconds
 * idle: an unsigned difference would expire it and move the client. */
static __always_inline __u32 state_idle(__u32 now, __u32 last)
{
	__s32 d = (__s32)(now - last);

	return d > 0 ? (__u32)d : 0;
}

static __always_inline int state_expired(__u32 now, __u32 last, __u32 timeout)
{
	return timeout && state_idle(now, last) > timeout;
}

/* last_seen = now, unless it already is (no write: the ESP path stays
 * read-only) or is ahead of this clock (kept, not set back). */
static __always_inline void state_touch(struct state_value *v, __u32 now)
{
	if ((__s32)(now - v->last_seen_s) > 0)
		v->last_seen_s = now;
}

/* Look up a state entry; returns its real server when the entry is fresh
 * and the server alive. Entries pointing to a dead or foreign server are
 * deleted; idle ones are ignored (the daemon sweeps them, or a new decision
 * overwrites them). Refreshes last_seen at most once a second. Every state
 * value starts with struct state_value (halfopen_value too). */
static __always_inline struct real_value *state_use(void *map, void *key, struct ctx *c,
						    __u32 timeout, __u32 tbl)
{
	struct state_value *v = bpf_map_lookup_elem(map, key);

	if (!v)
		return 0;
	if (state_expired(c->now, v->last_seen_s, timeout))
		return 0;
	__u32 id = v->real_id;
	struct real_value *r = real_get(id, c->svc_id, 0);
	if (!r) {
		tbl_del(map, key, tbl);
		return 0;
	}
	state_touch(v, c->now);
	c->real_id = id;
	return r;
}

/* Make the entry say (real, now); returns 0 when it already did, 1 when it
 * was created or moved, 2 when creating it evicted another (tbl_inserted),
 * -1 on failure. A new key goes in with BPF_NOEXIST so that only a real
 * insert is counted. */
static __always_inline int state_put(void *map, void *key, __u32 real_id, __u32 now, __u32 tbl)
{
	struct state_value *v = bpf_map_lookup_elem(map, key);

	if (v && v->real_id == real_id) {
		state_touch(v, now);
		return 0;
	}
	struct state_value nv = { .real_id = real_id, .last_seen_s = now };
	if (v)
		return bpf_map_update_elem(map, key, &nv, BPF_ANY) == 0 ? 1 : -1;
	if (bpf_map_update_elem(map, key, &nv, BPF_NOEXIST) != 0)
		return -1;
	return 1 + tbl_inserted(tbl);
}

/* state_put for an established SA's own messages: creates or refreshes,
 * but leaves an entry owned by another server alone. After a REDIRECT the
 * client's new SA (on another server) owns its flow and persistence; the
 * old SA's last messages (DELETE) must not take them back. */
static __always_inline void state_keep(void *map, void *key, __u32 real_id, __u32 now,
				       __u32 timeout, __u32 tbl)
{
	struct state_value *v = bpf_map_lookup_elem(map, key);

	if (!v || state_expired(now, v->last_seen_s, timeout)) {
		state_put(map, key, real_id, now, tbl);
		return;
	}
	if (v->real_id == real_id)
		state_touch(v, now);
}

static __always_inline void persist_key_make(struct persist_key *k, const struct svc_value *svc,
					     const struct ctx *c)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->svc_id = c->svc_id;
	k->client = c->fk.client;
	ikelb_addr_mask(&k->client, ikelb_addr_is_v4(&k->client) ? svc->netmask : svc->netmask6);
}

/* Maglev slot for hash h; probes a few following slots when the slot's
 * server has just gone down and the daemon has not rebuilt the table yet. */
static __always_inline struct real_value *maglev_pick(const struct svc_value *svc, struct ctx *c,
						      __u64 h, int need_active)
{
	__u32 m = svc->maglev_size;

	if (!m)
		return 0;
	__u32 slot = h % m;
	for (int i = 0; i < 4; i++) {
		__u32 idx = svc->maglev_off + slot;
		__u32 *id = bpf_map_lookup_elem(&maglev_map, &idx);
		if (id) {
			__u32 rid = *id;
			struct real_value *r = real_get(rid, c->svc_id, need_active);
			if (r && need_active && real_full(c, rid))
				r = 0;
			if (r) {
				c->real_id = rid;
				return r;
			}
		}
		slot = slot + 1 >= m ? 0 : slot + 1;
	}
	return 0;
}

/* Rule new: the service's scheduler (ikelb_sched.h); the Maglev kinds
 * through the table, and past a full server to the least loaded one. */
static __always_inline struct real_value *steer_new(const struct svc_value *svc, struct ctx *c,
						    __u64 h)
{
	if (sched_kind_of(c->svc_id) == SCHED_K_MAGLEV) {
		struct real_value *r = maglev_pick(svc, c, h, 1);
		if (r || !c->full || sched_new(c, 1) < 0)
			return r;
	} else if (sched_new(c, 0) < 0) {
		return 0;
	}
	c->full = 0;
	return real_get(c->real_id, c->svc_id, 1);
}

/* Rule label: the server-chosen SPI names the server. */
static __always_inline struct real_value *steer_label(const struct svc_value *svc, struct ctx *c)
{
	__u32 *id = 0;

	if (svc->spi_mask && c->info.cls == IKE_C_IKEV2) {
		__u64 spi = ike_server_spi(&c->info);
		if (!spi)
			return 0;
		struct label_key lk = { .svc_id = c->svc_id, .label = spi & svc->spi_mask };
		id = bpf_map_lookup_elem(&label_map, &lk);
	} else if ((svc->flags & SVC_F_ESP_LABELS) && c->info.cls == IKE_C_ESP) {
		struct esp_lpm_key ek = {
			.prefixlen = 64,
			.svc_id_be = bpf_htonl(c->svc_id),
			.spi_be = bpf_htonl(c->info.esp_spi),
		};
		id = bpf_map_lookup_elem(&esp_lpm_map, &ek);
	}
	if (!id)
		return 0;
	__u32 rid = *id;
	struct real_value *r = real_get(rid, c->svc_id, 0);
	if (r)
		c->real_id = rid;
	return r;
}

/* Rule sa: IKE SA by SPIi (established, then half-open). */
static __always_inline struct real_value *steer_sa(const struct svc_value *svc, struct ctx *c)
{
	struct sa_key k = { .svc_id = c->svc_id, .spi_i = c->info.spi_i };
	struct real_value *r = state_use(&sa_map, &k, c, svc->persist_timeout_s, TBL_SA);

	if (r)
		return r;
	return state_use(&halfopen_map, &k, c, svc->persist_timeout_s, TBL_HALFOPEN);
}

static __always_inline struct real_value *steer_any(const struct svc_value *svc, struct ctx *c)
{
	struct real_value *r;

	c->rule = RULE_LABEL;
	r = steer_label(svc, c);
	if (r)
		return r;
	if (c->is_ike) {
		/* Before the flow: a client re-establishing from the same
		 * address and ports (REDIRECT, docs/operations.md "evacuate")
		 * must reach the server of its new SA, and its old SA's last
		 * messages the old server. Both modes: source-ip keeps
		 * half-open SAs here too, until their IKE_AUTH earns them
		 * persistence (see learn()). */
		c->rule = RULE_SA;
		r = steer_sa(svc, c);
		if (r)
			return r;
	}
	/* A new SA from a client of an evacuating server is placed afresh. */
	int fresh = c->is_ike && ike_is_new_sa(&c->info);

	c->rule = RULE_FLOW;
	r = state_use(&flow_map, &c->fk, c, svc->flow_timeout_s, TBL_FLOW);
	if (r && !(fresh && (r->flags & REAL_F_EVACUATING)))
		return r;
	if (!c->ike_mode) {
		struct persist_key pk;

		persist_key_make(&pk, svc, c);
		c->rule = RULE_PERSIST;
		r = state_use(&persist_map, &pk, c, svc->persist_timeout_s, TBL_PERSIST);
		if (r && !(fresh && (r->flags & REAL_F_EVACUATING)))
			return r;
	}
	struct ikelb_addr ha = c->fk.client;
	if (!c->ike_mode)
		ikelb_addr_mask(&ha, ikelb_addr_is_v4(&ha) ? svc->netmask : svc->netmask6);
	if (c->is_ike && ike_is_new_sa(&c->info)) {
		__u64 h = c->ike_mode ? ikelb_hash_u64(c->info.spi_i, svc->hash_seed)
				      : ikelb_hash_addr(&ha, 0, svc->hash_seed);
		c->rule = RULE_NEW;
		return steer_new(svc, c, h);
	}
	c->rule = RULE_FALLBACK;
	/* ike mode placed the SA by its SPIi: hashing it again finds the
	 * server statelessly (restart, another node, NAT rebinding) for as long
	 * as the Maglev table is unchanged. ESP carries no SPIi. */
	if (c->ike_mode && c->is_ike)
		return maglev_pick(svc, c, ikelb_hash_u64(c->info.spi_i, svc->hash_seed), 0);
	return maglev_pick(svc, c, ikelb_hash_addr(&ha, 0, svc->hash_seed), 0);
}

/* Separate BPF function (own stack frame), for a classified datagram that
 * was not dropped: 0 with c->real_id / c->raddr set, -1 when no server can
 * take the packet (c->full: every active one is at max_clients). */
static __noinline int steer(const struct svc_value *svc, struct ctx *c)
{
	c->now = now_s();
	c->is_ike = c->info.cls == IKE_C_IKEV2 || c->info.cls == IKE_C_IKEV1;

	struct real_value *r = steer_any(svc, c);

	if (!r)
		return -1;
	c->raddr = r->addr;
	return 0;
}

/* An IKE_SA_INIT request opens (or refreshes) its half-open entry. A new
 * or moved entry starts without SPIr: the server it goes to has answered
 * nothing yet. Returns 1 when it wrote one. */
static __always_inline int halfopen_open(struct sa_key *k, struct ctx *c)
{
	struct halfopen_value *v = bpf_map_lookup_elem(&halfopen_map, k);

	if (v && v->real_id == c->real_id) {
		state_touch((struct state_value *)v, c->now); /* same first 8 bytes */
		return 0;
	}
	struct halfopen_value nv = { .real_id = c->real_id, .last_seen_s = c->now };
	if (v)
		return bpf_map_update_elem(&halfopen_map, k, &nv, BPF_ANY) == 0;
	if (bpf_map_update_elem(&halfopen_map, k, &nv, BPF_NOEXIST) != 0)
		return 0;
	if (tbl_inserted(TBL_HALFOPEN))
		ctx_ctr(c, SVC_CTR_HALFOPEN_FULL, 0);
	return 1;
}

/* May a client message with SPIr != 0 write state? Only when something
 * vouches for it (docs/security.md): the server's SPI label (trusted,
 * stateless); state the client already earned (its SA in the established
 * table, which both modes keep, whatever steered the message, so a spoofed
 * source with a live flow cannot plant new SPIs in ike mode; source-ip:
 * also its flow or persistence); or, to promote a half-open SA, exactly the
 * SPIr the server chose in its IKE_SA_INIT response (recorded by
 * reply_learn). A spoofer never sees that response. dsr: the response does
 * not pass ikelb, so any SPIr promotes, as before. */
static __always_inline int vouched(const struct svc_value *svc, struct ctx *c,
				   struct sa_key *k)
{
	if (c->rule == RULE_LABEL || bpf_map_lookup_elem(&sa_map, k))
		return 1;
	if (!c->ike_mode && c->rule != RULE_SA)
		return 1;
	if (svc->flags & SVC_F_DSR)
		return 1;
	struct halfopen_value *h = bpf_map_lookup_elem(&halfopen_map, k);
	return h && h->spi_r == c->info.spi_r;
}

/* The decision log: one event per placement IKELB_RULE_LOGGED keeps, while
 * the daemon has the log on. Here, at the top of learn(), because both
 * programs call learn() exactly once for a datagram they forward (XDP only
 * when it finishes the packet, else tc does), which keeps one event per
 * decision. A full ring loses the event and counts it. */
static __always_inline void declog(const struct ctx *c)
{
	__u32 zero = 0;

	if (!IKELB_RULE_LOGGED(c->rule))
		return; /* ESP and the rest of a flow: no lookup per packet */
	__u32 *on = bpf_map_lookup_elem(&declog_on, &zero);
	if (!on || !*on)
		return;
	if (c->rule == RULE_SA) {
		/* An established SA's message on the flow it owns repeats a
		 * known placement: IKE goes by its SA before its flow. */
		struct state_value *f = bpf_map_lookup_elem(&flow_map, &c->fk);

		if (f && f->real_id == c->real_id)
			return;
	}
	struct declog_event *ev = bpf_ringbuf_reserve(&declog_ring, sizeof(*ev), 0);
	if (!ev) {
		__u64 *d = bpf_map_lookup_elem(&declog_drop_map, &zero);
		if (d)
			(*d)++;
		return;
	}
	ev->client = c->fk.client;
	ev->spi_i = c->info.spi_i;
	ev->svc_id = c->svc_id;
	ev->real_id = c->real_id;
	ev->cport = c->fk.cport;
	ev->vport = c->fk.vport;
	ev->rule = (__u8)c->rule;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	bpf_ringbuf_submit(ev, 0);
}

/* After the choice: learn state so later packets follow (ARCHITECTURE.md,
 * "State tables").
 * An IKE_SA_INIT (SPIr still 0) is spoofable and cheap to flood, so it
 * only ever writes the bounded half-open table: established clients' flow,
 * SA and persistence entries cannot be evicted by it. A vouched message
 * with SPIr (IKE_AUTH carrying the server's SPIr) promotes the SA: flow
 * entry so ESP and keepalives follow, SA entry (both modes) and persistence
 * (source-ip). Later IKE messages keep them fresh. Fallback decisions and
 * unvouched messages write nothing. */
static __noinline void learn(const struct svc_value *svc, struct ctx *c)
{
	declog(c);
	if (c->rule == RULE_FALLBACK || !c->is_ike)
		return;
	struct sa_key k = { .svc_id = c->svc_id, .spi_i = c->info.spi_i };
	if (c->info.spi_r == 0) {
		/* A client the scheduler placed counts on its server at once,
		 * so the next one already sees it (maps.h, real_load). */
		if (ike_is_new_sa(&c->info) && halfopen_open(&k, c) && c->rule == RULE_NEW)
			real_placed(c->real_id);
		return;
	}
	if (!vouched(svc, c, &k))
		return;
	/* Both modes keep the established SA by SPIi: ike mode steers by it,
	 * source-ip mode so SAs can be counted and looked up per server. A new
	 * or moved SA entry ends its half-open one. */
	int moved = state_put(&sa_map, &k, c->real_id, c->now, TBL_SA) > 0;
	if (moved)
		tbl_del(&halfopen_map, &k, TBL_HALFOPEN);
	/* An SA that was already established only keeps its entries. */
	int keep = c->rule == RULE_SA && !moved;

	if (c->rule != RULE_FLOW && ike_teaches_flow(&c->info)) {
		if (keep)
			state_keep(&flow_map, &c->fk, c->real_id, c->now, svc->flow_timeout_s,
				   TBL_FLOW);
		else
			state_put(&flow_map, &c->fk, c->real_id, c->now, TBL_FLOW);
	}
	if (c->ike_mode)
		return;
	if (c->rule != RULE_PERSIST) {
		struct persist_key pk;

		persist_key_make(&pk, svc, c);
		if (keep)
			state_keep(&persist_map, &pk, c->real_id, c->now,
				   svc->persist_timeout_s, TBL_PERSIST);
		else
			state_put(&persist_map, &pk, c->real_id, c->now, TBL_PERSIST);
	}
}

#endif
