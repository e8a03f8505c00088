/* Map keys and values shared by the BPF program (ikelb.bpf.c) and the
 * daemon (src/engine/bpf_engine.c). Fixed-width, explicitly padded: this
 * layout is what pinned maps keep across daemon restarts, so changing it
 * means bumping IKELB_MAP_ABI. Byte sizes are asserted at compile time and
 * documented in docs/state.md. */
#ifndef IKELB_MAPS_H
#define IKELB_MAPS_H

#include <linux/types.h>
#include "ikelb_addr.h"

#define IKELB_MAP_ABI 1
#define IKELB_MAX_SERVICES 32
#define IKELB_MAX_REALS 4096      /* all services together */
#define IKELB_MAX_SVC_PORTS 64    /* (vip, port) pairs */

/* svc_value.flags */
#define SVC_F_PERSIST_IKE 0x01    /* persistence: ike (else source-ip) */
#define SVC_F_DSR 0x02            /* forwarding: dsr (else dnat) */

/* real_value.state */
#define REAL_ACTIVE 0     /* gets new clients */
#define REAL_DRAINING 1   /* keeps its clients, no new ones */
#define REAL_DOWN 2       /* health down or disabled: nothing */

/* Per-service counters, index svc_id * SVC_CTR__MAX + counter in a
 * PERCPU_ARRAY of struct ctr. Drop reasons reuse enum ike_drop at
 * SVC_CTR_DROP_BASE + reason. */
enum svc_ctr {
	SVC_CTR_RX = 0,          /* client->VIP datagrams seen */
	SVC_CTR_FWD,             /* forwarded to a real server */
	SVC_CTR_REPLY,           /* server->client replies rewritten */
	SVC_CTR_IKEV2,
	SVC_CTR_IKEV1,
	SVC_CTR_KEEPALIVE,
	SVC_CTR_ESP,
	SVC_CTR_FRAGMENT,        /* IP fragments forwarded */
	SVC_CTR_STEER_LABEL,     /* steering decisions, DESIGN.md §3.2 */
	SVC_CTR_STEER_FLOW,
	SVC_CTR_STEER_SA,
	SVC_CTR_STEER_PERSIST,
	SVC_CTR_STEER_NEW,
	SVC_CTR_STEER_FALLBACK,
	SVC_CTR_HALFOPEN_FULL,   /* half-open admission refused (not dropped: steered by hash) */
	SVC_CTR_DROP_BASE,       /* + enum ike_drop */
	SVC_CTR__MAX = SVC_CTR_DROP_BASE + 16,
};

struct ctr {
	__u64 packets;
	__u64 bytes;
};

/* svc_map: (vip, port) -> service. */
struct svc_key {
	struct ikelb_addr vip;
	__u16 port;   /* host order */
	__u8 proto;   /* IPPROTO_UDP */
	__u8 pad;
};

struct svc_value {
	__u32 svc_id;
	__u32 maglev_off;     /* offset of this service's table in maglev_map */
	__u32 maglev_size;    /* prime; 0 = no active server */
	__u32 persist_timeout_s;
	__u32 flow_timeout_s;
	__u8 flags;           /* SVC_F_* */
	__u8 natt;            /* RFC 3948 framing on this port */
	__u8 netmask;         /* IPv4 source-ip persistence prefix */
	__u8 netmask6;        /* IPv6 prefix */
	__u64 spi_mask;       /* IKE SPI label mask, 0 = none */
};

/* reals_map (ARRAY, index real_id). */
struct real_value {
	struct ikelb_addr addr;
	__u32 svc_id;
	__u8 state;           /* REAL_* */
	__u8 pad[3];
};

/* rev_map: (real addr, port) -> (vip, port) for dnat replies. */
struct rev_key {
	struct ikelb_addr addr;
	__u16 port;
	__u16 pad;
};

struct rev_value {
	struct ikelb_addr vip;
	__u16 port;
	__u16 pad;
	__u32 svc_id;
};

/* label_map (HASH): (svc_id, IKE SPI & spi_mask) -> real_id. */
struct label_key {
	__u32 svc_id;
	__u32 pad;
	__u64 label;
};

/* esp_lpm_map (LPM_TRIE): ESP SPI ranges [spi_min, spi_max] of each real
 * server, decomposed into prefixes. prefixlen counts svc_id's 32 bits too. */
struct esp_lpm_key {
	__u32 prefixlen;
	__u32 svc_id_be;      /* big-endian so the trie matches it first */
	__u32 spi_be;
};

/* State tables (LRU_HASH). All values carry the real server and the last
 * time (bpf_ktime_get_ns / 1e9 granularity is enough) the entry was used;
 * the daemon sweeps entries idle longer than the service timeout, and the
 * data path ignores them. */
struct state_value {
	__u32 real_id;
	__u32 last_seen_s;    /* CLOCK_MONOTONIC seconds */
};

/* persist_map: source-ip persistence, client address under the netmask. */
struct persist_key {
	__u32 svc_id;
	__u32 pad;
	struct ikelb_addr client;
};

/* sa_map / halfopen_map: IKE SA by initiator SPI. Half-open SAs (only
 * IKE_SA_INIT seen) live in a separate, smaller LRU so a flood of
 * IKE_SA_INITs cannot evict established clients. */
struct sa_key {
	__u32 svc_id;
	__u32 pad;
	__u64 spi_i;
};

/* flow_map: client (ip, port) toward (vip, port). */
struct flow_key {
	__u32 svc_id;
	__u16 cport;
	__u16 vport;
	struct ikelb_addr client;
};

/* Fragment tracking: the first fragment (which carries the UDP and IKE
 * headers) is steered normally and records its choice under the IP
 * identification, so later fragments follow it. */
struct frag_key {
	struct ikelb_addr src;
	struct ikelb_addr dst;
	__u32 id;             /* IPv4 id or IPv6 fragment id */
	__u32 pad;
};

#ifndef __bpf__
_Static_assert(sizeof(struct svc_key) == 20, "svc_key");
_Static_assert(sizeof(struct svc_value) == 32, "svc_value");
_Static_assert(sizeof(struct persist_key) == 24, "persist_key");
_Static_assert(sizeof(struct sa_key) == 16, "sa_key");
_Static_assert(sizeof(struct flow_key) == 24, "flow_key");
_Static_assert(sizeof(struct state_value) == 8, "state_value");
#endif

#endif
