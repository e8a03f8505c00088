/* BPF side only: map definitions, parsed-packet state and counters of the
 * ikelb tc program. Map sizes marked "set by the engine" are overwritten by
 * src/engine/bpf_engine.c before load from struct cfg. */
#ifndef IKELB_BPF_DEFS_H
#define IKELB_BPF_DEFS_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "ikelb/addr.h"
#include "ikelb/maps.h"
#include "ikelb/ike_wire.h"

#define IKELB_AF_INET 2
#define IKELB_AF_INET6 10
#define IKELB_ETH_HLEN 14
#define IKELB_IP4_MF 0x2000      /* more fragments */
#define IKELB_IP4_OFFMASK 0x1fff /* fragment offset */
#define IKELB_PEEK_LEN 32 /* marker + IKE header: all ike_classify reads */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	/* + one raw ESP entry per VIP (bpf/ikelb_esp.h) */
	__uint(max_entries, IKELB_MAX_SVC_PORTS + IKELB_MAX_SERVICES);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
} svc_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IKELB_MAX_SVC_PORTS);
	__type(key, struct ikelb_addr);
	__type(value, __u32);
} vip_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IKELB_MAX_REALS);
	__type(key, __u32);
	__type(value, struct real_value);
} reals_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IKELB_MAX_REALS * 4);
	__type(key, struct rev_key);
	__type(value, struct rev_value);
} rev_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IKELB_MAX_LOCAL_ADDRS);
	__type(key, struct ikelb_addr);
	__type(value, __u32);
} local_addr_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IKELB_MAX_LABELS);
	__type(key, struct label_key);
	__type(value, __u32);
} label_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, IKELB_MAX_ESP_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct esp_lpm_key);
	__type(value, __u32);
} esp_lpm_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65537); /* set by the engine: sum of table sizes */
	__type(key, __u32);
	__type(value, __u32);
} maglev_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* set by the engine: max_clients */
	__type(key, struct persist_key);
	__type(value, struct state_value);
} persist_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* set by the engine: max_clients */
	__type(key, struct sa_key);
	__type(value, struct state_value);
} sa_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384); /* set by the engine: max_halfopen */
	__type(key, struct sa_key);
	__type(value, struct halfopen_value);
} halfopen_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* set by the engine: max_flows */
	__type(key, struct flow_key);
	__type(value, struct state_value);
} flow_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* set by the engine: max_flows */
	__type(key, struct flow_key);
	__type(value, struct state_value);
} tcp_conn_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, IKELB_MAX_FRAGS);
	__type(key, struct frag_key);
	__type(value, struct frag_value);
} frag_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IKELB_MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} iface_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TBL__MAX);
	__type(key, __u32);
	__type(value, struct tbl_ctr);
} tbl_ctr_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TBL__MAX);
	__type(key, __u32);
	__type(value, struct tbl_fill);
} tbl_fill_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IKELB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct svc_ctrs);
} svc_ctr_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IKELB_MAX_REALS);
	__type(key, __u32);
	__type(value, struct ctr);
} real_ctr_map SEC(".maps");

/* The decision log (maps.h, declog_event). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, IKELB_DECLOG_RING_BYTES);
} declog_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} declog_on SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} declog_drop_map SEC(".maps");

/* enum real_ctr per real server: dnat replies and IKE messages forwarded. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IKELB_MAX_REALS * REAL_CTR__MAX);
	__type(key, __u32);
	__type(value, struct ctr);
} real_reply_map SEC(".maps");

/* The kernel scheduler (maps.h, svc_sched / real_load; ikelb_sched.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IKELB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct svc_sched);
} svc_sched_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IKELB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u64);
} rr_cursor_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IKELB_MAX_REALS * REAL_LOAD__MAX);
	__type(key, __u32);
	__type(value, __s64);
} real_load_map SEC(".maps");

enum { FRAG_NONE = 0, FRAG_FIRST = 1, FRAG_LATER = 2 };

/* What the parser learned about one IPv4/IPv6 UDP datagram or TCP
 * segment (ikelb_tcp.h). */
struct pkt {
	struct ikelb_addr src;
	struct ikelb_addr dst;
	__u32 len;      /* skb->len */
	__u32 l3off;    /* IP header */
	__u32 l4off;    /* UDP / TCP header (not for FRAG_LATER) */
	__u32 ip_len;   /* IP datagram length from the header (incl. header) */
	__u32 plen;     /* UDP payload length from the UDP header */
	__u32 present;  /* UDP payload bytes in this skb (first fragment: fewer) */
	__u32 frag_id;
	__u16 sport;    /* host order */
	__u16 dport;
	__u8 v6;
	__u8 frag;      /* FRAG_* */
	__u8 ttl;       /* TTL / hop limit as received */
	__u8 proto;     /* IPPROTO_UDP or IPPROTO_TCP */
	__u8 l4csum;    /* L4 checksum offset in the L4 header (not for FRAG_LATER) */
	__u8 l4csum_m0; /* BPF_F_MARK_MANGLED_0 for UDP, 0 for TCP */
	__u8 pad[2];
};

/* IPv6 addresses in IPv4-mapped form (::ffff:a.b.c.d): word compares
 * without a branch per byte, which keeps the verifier's state count flat
 * (ikelb_addr_is_v4 branches per byte). */
static __always_inline int addr_v4mapped(const struct ikelb_addr *a)
{
	__u64 hi;
	__u32 mid;

	__builtin_memcpy(&hi, a->b, 8);
	__builtin_memcpy(&mid, a->b + 8, 4);
	return (hi | (__u64)(mid ^ bpf_htonl(0x0000ffff))) == 0;
}

static __always_inline int pkt_v4mapped(const struct pkt *p)
{
	return addr_v4mapped(&p->src) | addr_v4mapped(&p->dst);
}

/* A service's counter block on this CPU (maps.h, svc_ctrs), or 0. */
static __always_inline struct svc_ctrs *svc_ctrs_get(__u32 svc_id)
{
	return bpf_map_lookup_elem(&svc_ctr_map, &svc_id);
}

/* The bound keeps a computed index (class, rule) provably inside the
 * block for the verifier; constant ones fold away. The barrier makes the
 * compiler test and use the same 64-bit register (else it may bound one
 * zero-extended copy and index with another, which the verifier rejects). */
static __always_inline void ctrs_inc(struct svc_ctrs *b, __u32 idx, __u32 bytes)
{
	__u64 i = idx;

	asm volatile("" : "+r"(i));
	if (i < SVC_CTR__MAX) {
		b->c[i].packets++;
		b->c[i].bytes += bytes;
	}
}

/* For paths without a struct ctx (rare: drops, replies, fragments). */
static __always_inline void ctr_add(__u32 svc_id, __u32 idx, __u32 bytes)
{
	struct svc_ctrs *b = svc_ctrs_get(svc_id);

	if (b)
		ctrs_inc(b, idx, bytes);
}

static __always_inline void real_ctr_bump(void *map, __u32 real_id, __u32 bytes)
{
	struct ctr *c = bpf_map_lookup_elem(map, &real_id);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline void real_ctr_add(__u32 real_id, __u32 bytes)
{
	real_ctr_bump(&real_ctr_map, real_id, bytes);
}

static __always_inline void real_reply_add(__u32 real_id, __u32 idx, __u32 bytes)
{
	if (real_id < IKELB_MAX_REALS)
		real_ctr_bump(&real_reply_map, real_id * REAL_CTR__MAX + idx, bytes);
}

/* CLOCK_MONOTONIC_COARSE seconds: the jiffy-updated clock, no clocksource
 * read (kvm-clock's pvclock read was 4-9 % of the tc path's samples).
 * Seconds are all the state tables need; the clock lags the daemon's
 * CLOCK_MONOTONIC by up to a tick, which state_idle tolerates. */
static __always_inline __u32 now_s(void)
{
	return (__u32)(bpf_ktime_get_coarse_ns() / 1000000000ULL);
}

/* A real server usable by `svc_id`: allocated, of that service, not DOWN,
 * and ACTIVE when `need_active` (new clients). */
static __always_inline struct real_value *real_get(__u32 real_id, __u32 svc_id, int need_active)
{
	struct real_value *r = bpf_map_lookup_elem(&reals_map, &real_id);

	if (!r || !(r->flags & REAL_F_IN_USE) || r->svc_id != svc_id)
		return 0;
	if (r->state == REAL_DOWN)
		return 0;
	if (need_active && r->state != REAL_ACTIVE)
		return 0;
	return r;
}

#endif
