/* BPF side only: the kernel scheduler for new clients (maps.h, svc_sched
 * and real_load; docs/config.md, "Schedulers"). rr/wrr walk the daemon's
 * cycle with an atomic per-service cursor; lc/wlc scan at most
 * IKELB_SCHED_MAX servers for the fewest clients per unit of weight. Every
 * kind skips servers at max_clients; when the kind's own choice is full the
 * least loaded server with room takes the client (deterministic), and when
 * none has room c->full tells the handler to count all_full. */
#ifndef IKELB_BPF_SCHED_H
#define IKELB_BPF_SCHED_H

#include "bpf/ikelb_bpf_defs.h"

#define SCHED_POS_MASK (IKELB_SCHED_MAX - 1)
_Static_assert((IKELB_SCHED_MAX & SCHED_POS_MASK) == 0, "IKELB_SCHED_MAX is a power of two");

static __always_inline __s64 *load_slot(__u32 real_id, __u32 k)
{
	__u32 key = real_id * REAL_LOAD__MAX + k;

	return bpf_map_lookup_elem(&real_load_map, &key);
}

/* Clients of a real server (PLACED + ADJ, never below 0); *max its limit. */
static __always_inline __s64 real_clients(__u32 real_id, __s64 *max)
{
	*max = 0;
	if (real_id >= IKELB_MAX_REALS)
		return 0;
	__s64 *p = load_slot(real_id, REAL_LOAD_PLACED);
	__s64 *a = load_slot(real_id, REAL_LOAD_ADJ);
	__s64 *m = load_slot(real_id, REAL_LOAD_MAX);
	__s64 n = (p ? *p : 0) + (a ? *a : 0);

	if (m)
		*max = *m;
	return n < 0 ? 0 : n;
}

/* 1 when the server is at max_clients (and notes it in c->full). */
static __always_inline int real_full(struct ctx *c, __u32 real_id)
{
	__s64 max;
	__s64 n = real_clients(real_id, &max);

	if (max > 0 && n >= max) {
		c->full = 1;
		return 1;
	}
	return 0;
}

/* The data path placed a new client on real_id. */
static __always_inline void real_placed(__u32 real_id)
{
	if (real_id >= IKELB_MAX_REALS)
		return;
	__s64 *p = load_slot(real_id, REAL_LOAD_PLACED);
	if (p)
		__sync_fetch_and_add(p, 1);
}

/* Position i of the list may take a new client; *n gets its clients. */
static __always_inline int sched_usable(const struct svc_sched *ss, __u32 i, struct ctx *c,
					__s64 *n)
{
	__u32 rid = ss->real_id[i & SCHED_POS_MASK];
	__s64 max;

	if (!ss->weight[i & SCHED_POS_MASK] || !real_get(rid, c->svc_id, 1))
		return 0;
	*n = real_clients(rid, &max);
	if (max > 0 && *n >= max) {
		c->full = 1;
		return 0;
	}
	return 1;
}

/* lc/wlc, and the fallback of every kind: fewest clients per unit of
 * weight (n_i * w_b < n_b * w_i, no division), ties to the first. */
static __noinline int sched_lc(const struct svc_sched *ss, struct ctx *c)
{
	__u32 n = ss->n;
	__s64 bn = 0;
	__u64 bw = 1;
	int best = -1;

	for (__u32 i = 0; i < IKELB_SCHED_MAX; i++) {
		__s64 cn;

		if (i >= n)
			break;
		if (!sched_usable(ss, i, c, &cn))
			continue;
		__u64 w = ss->weight[i & SCHED_POS_MASK];
		if (best < 0 || (__u64)cn * bw < (__u64)bn * w) {
			best = (int)i;
			bn = cn;
			bw = w;
		}
	}
	if (best < 0)
		return -1;
	c->real_id = ss->real_id[best & SCHED_POS_MASK];
	return 0;
}

/* rr/wrr: the next entry of the cycle that can take the client. */
static __noinline int sched_rr(const struct svc_sched *ss, struct ctx *c)
{
	__u32 k = c->svc_id;
	__u64 *cur = bpf_map_lookup_elem(&rr_cursor_map, &k);
	__u32 len = ss->seq_len;

	if (!cur || !len || len > IKELB_SCHED_SEQ)
		return -1;
	__u64 start = __sync_fetch_and_add(cur, 1);
	for (__u32 i = 0; i < IKELB_SCHED_MAX; i++) {
		__u32 pos = ss->seq[(__u32)((start + i) % len) & (IKELB_SCHED_SEQ - 1)];
		__s64 cn;

		if (i >= len)
			break;
		if (pos < ss->n && sched_usable(ss, pos, c, &cn)) {
			c->real_id = ss->real_id[pos & SCHED_POS_MASK];
			return 0;
		}
	}
	return -1;
}

/* A new client: 0 with c->real_id set, or -1 (c->full when some active
 * server was skipped for being full). maglev_kind: the caller already
 * tried the Maglev table. */
static __always_inline int sched_new(struct ctx *c, int maglev_kind)
{
	__u32 k = c->svc_id;
	struct svc_sched *ss = bpf_map_lookup_elem(&svc_sched_map, &k);

	if (!ss)
		return -1;
	if (!maglev_kind && ss->kind == SCHED_K_RR && sched_rr(ss, c) == 0)
		return 0;
	return sched_lc(ss, c);
}

/* The kind of the service's scheduler (SCHED_K_MAGLEV without a map entry). */
static __always_inline __u32 sched_kind_of(__u32 svc_id)
{
	struct svc_sched *ss = bpf_map_lookup_elem(&svc_sched_map, &svc_id);

	return ss ? ss->kind : SCHED_K_MAGLEV;
}

#endif
