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

/* An index into svc_sched's arrays the verifier can bound: the barrier
 * keeps clang from dropping the mask after an earlier range check on
 * another copy of the register. */
static __always_inline __u32 sched_pos(__u32 i)
{
	asm volatile("" : "+r"(i));
	return i & SCHED_POS_MASK;
}

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

/* The scans run under bpf_loop: the verifier checks a callback once
 * instead of every iteration of every path (the unrolled scan alone
 * exceeded its budget). Their state is scalars only. */
struct sched_scan {
	__u32 svc_id;
	__u32 n;        /* lc: servers; rr: cycle length */
	__u64 start;    /* rr: cursor */
	__s64 bn;       /* lc: best's clients and weight */
	__u64 bw;
	__s32 best;     /* position in real_id[], -1 none */
	__s32 full;     /* a usable server was skipped for being full */
};

/* Position i of the list may take a new client; *n gets its clients. */
static __always_inline int sched_usable(const struct svc_sched *ss, __u32 i, struct sched_scan *x,
					__s64 *n)
{
	__u32 p = sched_pos(i);
	__u32 rid = ss->real_id[p];
	__s64 max;

	if (!ss->weight[p] || !real_get(rid, x->svc_id, 1))
		return 0;
	*n = real_clients(rid, &max);
	if (max > 0 && *n >= max) {
		x->full = 1;
		return 0;
	}
	return 1;
}

/* lc/wlc, and the fallback of every kind: fewest clients per unit of
 * weight (n_i * w_b < n_b * w_i, no division), ties to the first. */
static int sched_lc_step(__u32 i, void *arg)
{
	struct sched_scan *x = arg;
	__u32 k = x->svc_id;
	struct svc_sched *ss = bpf_map_lookup_elem(&svc_sched_map, &k);
	__s64 cn;

	if (!ss || i >= x->n || i >= IKELB_SCHED_MAX)
		return 1;
	if (!sched_usable(ss, i, x, &cn))
		return 0;
	__u64 w = ss->weight[sched_pos(i)];
	if (x->best < 0 || (__u64)cn * x->bw < (__u64)x->bn * w) {
		x->best = (__s32)i;
		x->bn = cn;
		x->bw = w;
	}
	return 0;
}

/* rr/wrr: the next entry of the cycle that can take the client. */
static int sched_rr_step(__u32 i, void *arg)
{
	struct sched_scan *x = arg;
	__u32 k = x->svc_id;
	struct svc_sched *ss = bpf_map_lookup_elem(&svc_sched_map, &k);
	__s64 cn;

	if (!ss || i >= x->n || !x->n)
		return 1;
	__u32 at = (__u32)((x->start + i) % x->n);

	asm volatile("" : "+r"(at));
	__u32 pos = ss->seq[at & (IKELB_SCHED_SEQ - 1)];
	if (pos < ss->n && sched_usable(ss, pos, x, &cn)) {
		x->best = (__s32)pos;
		return 1;
	}
	return 0;
}

static __always_inline int sched_found(const struct svc_sched *ss, struct sched_scan *x,
				       struct ctx *c)
{
	c->full |= x->full;
	if (x->best < 0)
		return -1;
	c->real_id = ss->real_id[sched_pos((__u32)x->best)];
	return 0;
}

static __always_inline int sched_lc(const struct svc_sched *ss, struct ctx *c)
{
	struct sched_scan x = { .svc_id = c->svc_id, .n = ss->n, .bw = 1, .best = -1 };

	bpf_loop(IKELB_SCHED_MAX, sched_lc_step, &x, 0);
	return sched_found(ss, &x, c);
}

static __always_inline int sched_rr(const struct svc_sched *ss, struct ctx *c)
{
	__u32 k = c->svc_id;
	__u64 *cur = bpf_map_lookup_elem(&rr_cursor_map, &k);
	__u32 len = ss->seq_len;

	if (!cur || !len || len > IKELB_SCHED_SEQ)
		return -1;
	struct sched_scan x = { .svc_id = c->svc_id, .n = len, .best = -1 };
	x.start = __sync_fetch_and_add(cur, 1);
	bpf_loop(len < IKELB_SCHED_MAX ? len : IKELB_SCHED_MAX, sched_rr_step, &x, 0);
	return sched_found(ss, &x, c);
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
