/* Map keys and values shared by the BPF program (ikelb.bpf.c) and the
 * daemon (src/engine/bpf_engine.c). Fixed-width, explicitly padded: this
 * layout is what pinned maps keep across daemon restarts, so changing it
 * means bumping IKELB_MAP_ABI (the engine then recreates the pinned maps:
 * their key/value sizes no longer match). Byte sizes are asserted at compile
 * time and documented in docs/state.md. */
#ifndef IKELB_MAPS_H
#define IKELB_MAPS_H

#include <linux/types.h>
#include "ikelb/addr.h"
#include "ikelb/ike_wire.h"

#define IKELB_MAP_ABI 5
#define IKELB_MAX_SERVICES 32
#define IKELB_MAX_REALS 4096      /* all services together */
#define IKELB_MAX_SVC_PORTS 640   /* (vip, port, proto): 32 services x (16 UDP + 4 TCP) */
#define IKELB_MAX_LABELS 4096
#define IKELB_MAX_ESP_PREFIXES 16384 /* a [min, max] range is at most 62 prefixes */
#define IKELB_MAX_LOCAL_ADDRS 256
#define IKELB_MAX_FRAGS 16384
#define IKELB_FRAG_TIMEOUT_S 30   /* like the kernel's ipfrag_time */
#define IKELB_REAL_NONE 0xffffffffu /* empty Maglev slot */
#define IKELB_MAX_IFACES 64       /* iface_map: interfaces the programs run on */

/* iface_map (HASH ifindex -> roles). A reply (source = a real server's
 * address:port) is believed only where servers are (docs/security.md):
 * on an interface with both roles (the list form of `interfaces:`, one-arm)
 * its L2 source must also be the neighbour the kernel uses toward that
 * server. An interface missing from the map has both roles. */
#define IFACE_R_PUBLIC 0x1        /* clients reach the VIPs here */
#define IFACE_R_SERVERS 0x2       /* real servers are reached here */
#define IFACE_R_BOTH (IFACE_R_PUBLIC | IFACE_R_SERVERS)

/* svc_value.flags */
#define SVC_F_PERSIST_IKE 0x01    /* persistence: ike (else source-ip) */
#define SVC_F_DSR 0x02            /* forwarding: dsr (else dnat) */
#define SVC_F_ESP_LABELS 0x04     /* some real has an ESP SPI range */

/* real_value.state */
#define REAL_ACTIVE 0     /* gets new clients */
#define REAL_DRAINING 1   /* keeps its clients, no new ones */
#define REAL_DOWN 2       /* health down or disabled: nothing */

/* real_value.flags */
#define REAL_F_IN_USE 0x01 /* slot allocated; a zeroed ARRAY slot is unused */
/* Being evacuated (docs/operations.md): a message opening a new SA is not
 * placed by its client's flow or persistence, so a client that follows
 * the server's REDIRECT lands elsewhere; its current SA is untouched. */
#define REAL_F_EVACUATING 0x02

/* The rule that placed a client datagram (ARCHITECTURE.md, "Steering"),
 * in the order the rules are tried. One numbering for the BPF program and
 * the user-space steering; SVC_CTR_STEER(rule) is its counter. */
enum ikelb_rule {
	RULE_NONE = 0,     /* dropped */
	RULE_LABEL,
	RULE_FLOW,
	RULE_SA,
	RULE_PERSIST,
	RULE_NEW,
	RULE_FALLBACK,
	RULE__MAX
};

/* Per-service counters: svc_ctr_map is a PERCPU_ARRAY indexed by svc_id
 * whose value is struct svc_ctrs, all counters of the service in one block,
 * so that a forwarded datagram (RX, its class, its rule, FWD) pays one map
 * lookup, not one per counter. Drop reasons reuse enum ike_drop at
 * SVC_CTR_DROP(reason), IKE_DROP_SLOTS of them. */
#define IKE_DROP_SLOTS 32
#define IKE_DROP_MASK (IKE_DROP_SLOTS - 1)

enum svc_ctr {
	SVC_CTR_RX = 0,          /* client->VIP datagrams seen (incl. non-first fragments) */
	SVC_CTR_FWD,             /* forwarded to a real server */
	SVC_CTR_REPLY,           /* server->client replies rewritten (dnat) */
	SVC_CTR_IKEV2,
	SVC_CTR_IKEV1,
	SVC_CTR_KEEPALIVE,
	SVC_CTR_ESP,
	SVC_CTR_FRAGMENT,        /* non-first IP fragments forwarded (both directions) */
	SVC_CTR_STEER_LABEL,     /* steering decisions: SVC_CTR_STEER(enum ikelb_rule) */
	SVC_CTR_STEER_FLOW,
	SVC_CTR_STEER_SA,
	SVC_CTR_STEER_PERSIST,
	SVC_CTR_STEER_NEW,
	SVC_CTR_STEER_FALLBACK,
	SVC_CTR_HALFOPEN_FULL,   /* a half-open insert found its table at capacity (it evicted) */
	SVC_CTR_FIB_PASS,        /* no FIB result / neighbour: handed to the kernel */
	SVC_CTR_COOKIE_SENT,     /* IKE_SA_INITs answered with ikelb's own N(COOKIE) */
	SVC_CTR_COOKIE_VALID,    /* IKE_SA_INITs that returned a valid ikelb cookie */
	SVC_CTR_COOKIE_INVALID,  /* ... a COOKIE notify that is not (or no longer) ours */
	SVC_CTR_ESP_RAW,         /* raw ESP (IP protocol 50) to the VIP, also counted as ESP */
	SVC_CTR_TCP_RX,          /* client -> VIP:tcp_port segments seen (docs/tcp.md) */
	SVC_CTR_TCP_FWD,         /* ... forwarded to a real server */
	SVC_CTR_TCP_NEW,         /* SYNs placed on a server: new connections */
	SVC_CTR_TCP_REPLY,       /* server -> client segments rewritten (dnat) */
	SVC_CTR_TCP_DROP,        /* TCP segments dropped; the reason counts too */
	SVC_CTR_ALL_FULL,        /* a new client dropped: every active server at max_clients */
	SVC_CTR_DROP_BASE,       /* + enum ike_drop */
	SVC_CTR__MAX = SVC_CTR_DROP_BASE + IKE_DROP_SLOTS,
};

/* The mask keeps even a reason the classifier never returns inside this
 * service's counters instead of the next service's. */
#define SVC_CTR_DROP(reason) (SVC_CTR_DROP_BASE + ((reason) & IKE_DROP_MASK))

#define SVC_CTR_STEER(rule) (SVC_CTR_STEER_LABEL - RULE_LABEL + (rule))

struct ctr {
	__u64 packets;
	__u64 bytes;
};

/* svc_ctr_map value (per CPU), indexed by enum svc_ctr. */
struct svc_ctrs {
	struct ctr c[SVC_CTR__MAX];
};

/* real_reply_map (key real_id * REAL_CTR__MAX + index): what tells a dnat
 * server whose replies leave past ikelb (src/ctl/bypass.c). IKE messages,
 * not all datagrams, stand for requests: idle clients' NAT keepalives get
 * no answer by design. */
enum real_ctr {
	REAL_CTR_REPLY = 0,   /* dnat replies rewritten back to the VIP */
	REAL_CTR_IKE = 1,     /* IKE messages forwarded to the server */
	REAL_CTR__MAX = 2,
};

/* The kernel scheduler (docs/config.md, "Schedulers"; src/bpf/ikelb_sched.h).
 * svc_sched_map (ARRAY, index svc_id), written by the daemon: the kind and
 * the first IKELB_SCHED_MAX servers of the service with their comparison
 * weight (lc: the slow-start ramp alone, wlc: weight x ramp; 0 = takes no
 * new clients) and, for rr/wrr, a cycle of positions into real_id[] that
 * rr_cursor_map (ARRAY u64 per service, atomic) walks. */
#define IKELB_SCHED_MAX 64
#define IKELB_SCHED_SEQ 256
#define SCHED_K_MAGLEV 0  /* the Maglev table (maglev, sh, fo) */
#define SCHED_K_RR 1      /* rr, wrr: seq[] */
#define SCHED_K_LC 2      /* lc, wlc: fewest clients per unit of weight */

struct svc_sched {
	__u32 kind;           /* SCHED_K_* */
	__u32 n;              /* servers in real_id[] */
	__u32 seq_len;        /* entries in seq[] (rr/wrr), <= IKELB_SCHED_SEQ */
	__u32 pad;
	__u32 real_id[IKELB_SCHED_MAX];
	__u32 weight[IKELB_SCHED_MAX];
	__u8 seq[IKELB_SCHED_SEQ];
};

/* real_load_map (ARRAY, key real_id * REAL_LOAD__MAX + index, __s64): the
 * clients a server holds, for lc and max_clients. One writer per slot, so
 * no update is lost: the data path adds 1 to PLACED for every new client it
 * places (a new half-open entry under rule new); the daemon, after each
 * table walk, writes ADJ = walked clients - PLACED as read before the walk
 * (LRU evictions and expiries are invisible to BPF), and MAX (max_clients,
 * 0 = no limit). Clients = PLACED + ADJ. */
enum real_load {
	REAL_LOAD_PLACED = 0,
	REAL_LOAD_ADJ = 1,
	REAL_LOAD_MAX = 2,
	REAL_LOAD__MAX = 3,
};

/* svc_map: (vip, port, proto) -> service. */
struct svc_key {
	struct ikelb_addr vip;
	__u16 port;   /* host order */
	__u8 proto;   /* IPPROTO_UDP, IPPROTO_TCP for tcp_ports; IPPROTO_ESP with port 0:
		       * the VIP's raw ESP */
	__u8 pad;
};

struct svc_value {
	__u32 svc_id;
	__u32 maglev_off;     /* offset of this service's table in maglev_map */
	__u32 maglev_size;    /* prime; 0 = no table (new clients dropped NO_SERVER) */
	__u32 persist_timeout_s; /* persist_map and sa_map idle timeout, 0 = none */
	__u32 flow_timeout_s;    /* flow_map idle timeout, 0 = none */
	__u8 flags;           /* SVC_F_* */
	__u8 natt;            /* RFC 3948 framing on this port */
	__u8 netmask;         /* IPv4 source-ip persistence prefix */
	__u8 netmask6;        /* IPv6 prefix */
	__u64 spi_mask;       /* IKE SPI label mask, 0 = none */
	__u64 hash_seed;      /* cfg maglev_seed: client hash (include/ikelb/hash.h) */
};

/* vip_map: VIP -> svc_id of the first service on it. Lets packets without
 * a UDP port (non-first fragments) and broken headers be counted. */

/* reals_map (ARRAY, index real_id). Pinned: it also remembers which id
 * belongs to which (service, address) so ids are stable across restarts. */
struct real_value {
	struct ikelb_addr addr;
	__u32 svc_id;
	__u8 state;           /* REAL_* */
	__u8 flags;           /* REAL_F_* */
	__u8 pad[2];
};

/* rev_map: (real addr, port, proto) -> (vip, port) for dnat replies. */
struct rev_key {
	struct ikelb_addr addr;
	__u16 port;
	__u8 proto;           /* IPPROTO_UDP or IPPROTO_TCP */
	__u8 pad;
};

struct rev_value {
	struct ikelb_addr vip;
	__u16 port;
	__u8 natt;            /* RFC 3948 framing on this port */
	__u8 pad;
	__u32 svc_id;
	__u32 real_id;        /* the replying server: replies teach flows */
};

/* label_map (HASH): (svc_id, IKE SPI & spi_mask) -> real_id. */
struct label_key {
	__u32 svc_id;
	__u32 pad;
	__u64 label;
};

/* esp_lpm_map (LPM_TRIE) -> real_id: ESP SPI ranges [spi_min, spi_max] of
 * each real server, decomposed into prefixes. prefixlen counts svc_id's 32
 * bits too (32 + SPI prefix length). */
struct esp_lpm_key {
	__u32 prefixlen;
	__u32 svc_id_be;      /* big-endian so the trie matches it first */
	__u32 spi_be;
};

/* State tables (LRU_HASH). All values carry the real server and the last
 * time the entry was used (CLOCK_MONOTONIC seconds: bpf_ktime_get_coarse_ns()
 * / 1e9 in the kernel, which lags by up to a tick, and
 * clock_gettime(CLOCK_MONOTONIC) in the daemon: a value the daemon wrote
 * may be a second ahead of the program, which reads it as idle 0). The
 * data path ignores entries idle longer than the service timeout; the
 * daemon sweeps them. */
struct state_value {
	__u32 real_id;
	__u32 last_seen_s;
};

/* halfopen_map value: starts like state_value (the sweep and lookups read
 * those 8 bytes) and adds the SPIr the server chose in its IKE_SA_INIT
 * response (0 until that response passed ikelb). Only a client message
 * carrying exactly this SPIr promotes the SA (docs/state.md, "Rules"). */
struct halfopen_value {
	__u32 real_id;
	__u32 last_seen_s;
	__u64 spi_r;
};

/* Table statistics (not pinned: they count what this program instance
 * did). tbl_ctr_map, PERCPU_ARRAY index enum ikelb_table: new keys written
 * (BPF_NOEXIST succeeded) and keys the data path deleted. tbl_fill_map,
 * ARRAY: the shared fill estimate behind SVC_CTR_HALFOPEN_FULL; the daemon
 * writes capacity at load and fill after every sweep walk. */
enum ikelb_table { TBL_PERSIST = 0, TBL_SA, TBL_HALFOPEN, TBL_FLOW, TBL__MAX };

struct tbl_ctr {
	__u64 inserts;
	__u64 deletes;
};

struct tbl_fill {
	__s64 fill;           /* entries, as far as inserts and deletes tell */
	__s64 capacity;       /* max_entries */
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

/* tcp_conn_map (LRU_HASH, struct flow_key -> struct state_value): one
 * entry per TCP connection to a tcp_port (client address and port, VIP
 * port), so a connection never moves while its client's persistence entry
 * is evicted or the Maglev table changes (docs/tcp.md). Its own table: a
 * SYN flood evicts only TCP connections, never IKE state. */

/* frag_map (LRU_HASH): the first fragment (which carries the UDP and IKE
 * headers) is steered normally and records its choice under the IP
 * identification, so later fragments follow it.
 * Hint entries (hint FRAG_HINT, id 0): where the client's last IKE message
 * to this VIP went. A later fragment that overtook its first one (the
 * path reordered them) follows it: the datagram is almost always the
 * IKE_AUTH right after that message (docs/steering.md, "IP fragments"). */
struct frag_key {
	struct ikelb_addr src;
	struct ikelb_addr dst;
	__u32 id;             /* IPv4 id or IPv6 fragment id; 0 in a hint */
	__u32 hint;           /* 0, or FRAG_HINT */
};

#define FRAG_HINT 1

#define FRAG_K_DNAT 1     /* rewrite destination to addr */
#define FRAG_K_DSR 2      /* L2 toward addr (the real server) */
#define FRAG_K_REPLY 3    /* rewrite source to addr (the VIP) */

struct frag_value {
	struct ikelb_addr addr;
	__u32 svc_id;
	__u32 real_id;        /* IKELB_REAL_NONE for replies */
	__u32 last_seen_s;
	__u8 kind;            /* FRAG_K_* */
	__u8 pad[3];
};

/* The decision log (docs/api.md, "Decision log"; not pinned, off at every
 * load). While declog_on (ARRAY, 1 entry, set by the daemon) is non-zero,
 * each placement that does not repeat a known flow or label puts one
 * declog_event into declog_ring (RINGBUF); a full ring counts in
 * declog_drop_map (PERCPU_ARRAY, 1 entry). IKELB_RULE_LOGGED is the one
 * test: the socket engine applies it to the same decisions. */
#define IKELB_DECLOG_RING_BYTES (256 * 1024)
#define IKELB_RULE_LOGGED(rule) ((rule) != RULE_FLOW && (rule) != RULE_LABEL)

struct declog_event {
	struct ikelb_addr client;
	__u64 spi_i;          /* 0 for ESP and keepalives */
	__u32 svc_id;
	__u32 real_id;
	__u16 cport;          /* host order */
	__u16 vport;
	__u8 rule;            /* enum ikelb_rule */
	__u8 pad[3];
};

/* Admission control for new IKE SAs (docs/security.md, "Admission").
 * admit_map (ARRAY, index svc_id): what the daemon configured and the
 * buckets' state. Each bucket is a GCRA (virtual scheduling): tat_ns is the
 * theoretical arrival time of the next conforming message; one is admitted
 * when tat - now <= tau_ns, then tat += interval_ns (= 1 s / rate; tau =
 * (burst - 1) * interval). interval_ns 0 = no limit. Refill is implicit in
 * bpf_ktime_get_ns(): no timers. Not pinned: a reload or restart starts
 * with full buckets. */
#define ADMIT_F_ON 0x1            /* some limit or the cookie is configured */
#define ADMIT_F_COOKIE 0x2        /* answer IKE_SA_INIT with N(COOKIE) over the threshold */
#define ADMIT_F_COOKIE_ALWAYS 0x4 /* cookie_threshold 0: every new IKE_SA_INIT */
#define IKELB_ADMIT_SOURCES 65536 /* admit_src_map entries (LRU) */

struct admit_bucket {
	__u64 tat_ns;
	__u64 interval_ns;
	__u64 tau_ns;
};

struct admit_value {
	struct admit_bucket svc;     /* rate / burst: new SAs of the service */
	struct admit_bucket cookie;  /* cookie_threshold: cookieless INITs let through */
	__u64 src_interval_ns;       /* per_source_rate, per_source_burst: the */
	__u64 src_tau_ns;            /* per-source buckets in admit_src_map */
	__u32 flags;                 /* ADMIT_F_* */
	__u32 pad;
};

/* admit_src_map (LRU_HASH) -> __u64 tat_ns of that source's bucket. */
struct admit_src_key {
	__u32 svc_id;
	__u32 pad;
	struct ikelb_addr client;
};

/* cookie_key_map (ARRAY, 1 entry): the secrets behind ikelb's COOKIE
 * (include/ikelb/cookie.h). Version v uses key[v & 1]; the current and the
 * previous version are accepted. The daemon writes a fresh key under
 * cur + 1 every IKELB_COOKIE_ROTATE_S; cur 0 = no key yet (no cookie
 * answered). */
#define IKELB_COOKIE_ROTATE_S 60

struct cookie_keys {
	__u32 cur;
	__u32 pad;
	__u64 key[2][2];             /* SipHash k0, k1 */
};

#ifndef __bpf__
_Static_assert(sizeof(struct admit_value) == 72, "admit_value");
_Static_assert(sizeof(struct admit_src_key) == 24, "admit_src_key");
_Static_assert(sizeof(struct cookie_keys) == 40, "cookie_keys");
_Static_assert(sizeof(struct declog_event) == 40, "declog_event");
_Static_assert(sizeof(struct svc_key) == 20, "svc_key");
_Static_assert(sizeof(struct svc_value) == 40, "svc_value");
_Static_assert(sizeof(struct real_value) == 24, "real_value");
_Static_assert(sizeof(struct rev_key) == 20, "rev_key");
_Static_assert(sizeof(struct rev_value) == 28, "rev_value");
_Static_assert(sizeof(struct label_key) == 16, "label_key");
_Static_assert(sizeof(struct esp_lpm_key) == 12, "esp_lpm_key");
_Static_assert(sizeof(struct persist_key) == 24, "persist_key");
_Static_assert(sizeof(struct sa_key) == 16, "sa_key");
_Static_assert(sizeof(struct flow_key) == 24, "flow_key");
_Static_assert(sizeof(struct state_value) == 8, "state_value");
_Static_assert(sizeof(struct halfopen_value) == 16, "halfopen_value");
_Static_assert(__builtin_offsetof(struct halfopen_value, last_seen_s) ==
		       __builtin_offsetof(struct state_value, last_seen_s),
	       "halfopen_value starts as state_value: state walks read both alike");
_Static_assert(sizeof(struct tbl_ctr) == 16, "tbl_ctr");
_Static_assert(sizeof(struct tbl_fill) == 16, "tbl_fill");
_Static_assert(sizeof(struct frag_key) == 40, "frag_key");
_Static_assert(sizeof(struct frag_value) == 32, "frag_value");
_Static_assert(SVC_CTR__MAX == 58, "svc_ctr");
_Static_assert(sizeof(struct svc_ctrs) == 16 * SVC_CTR__MAX, "svc_ctrs");
_Static_assert(sizeof(struct svc_sched) == 16 + 8 * IKELB_SCHED_MAX + IKELB_SCHED_SEQ, "svc_sched");
_Static_assert(IKELB_SCHED_MAX <= 256, "seq[] holds positions as __u8");
_Static_assert(IKE_DROP__MAX <= IKE_DROP_SLOTS, "a counter per drop reason");
_Static_assert((IKE_DROP_SLOTS & IKE_DROP_MASK) == 0, "IKE_DROP_MASK is a mask");
_Static_assert(SVC_CTR_STEER(RULE_FALLBACK) == SVC_CTR_STEER_FALLBACK, "one counter per rule");
#endif

#endif
