/* Internals of the bpf engine, shared by bpf_engine.c (load, pin, attach),
 * bpf_sync.c (configuration maps) and bpf_state.c (sweep, counters). */
#ifndef IKELB_BPF_ENGINE_INT_H
#define IKELB_BPF_ENGINE_INT_H

#include <stddef.h>

#include "engine/bpf_engine.h"

#define BPF_ENGINE_TC_HANDLE 0x1ce
#define BPF_ENGINE_TC_PRIO 1

struct ikelb_bpf;

struct bpfe_svc {
	struct svc_value val;    /* as last written to svc_map (maglev_size included) */
	struct ikelb_addr vip;
	uint16_t ports[CFG_MAX_PORTS];
	uint16_t ike_port;
	int nports;
	uint16_t tcp_ports[CFG_MAX_TCP_PORTS];
	int ntcp_ports;
	uint32_t maglev_room;     /* cfg maglev_size: slots reserved at maglev_off */
	int nservers;
	uint32_t *real_ids;      /* nservers entries */
	struct ikelb_addr *addrs;
	struct svc_sched sched;  /* as last written to svc_sched_map */
	bool sched_set;
};

/* One state table's statistics (docs/state.md, "Pressure"): entries from
 * the last walk, deletes the daemon made, and the eviction count derived
 * at each walk from the BPF insert / delete counters. */
struct bpfe_tbl {
	uint64_t capacity;
	uint64_t entries;
	uint64_t inserts;
	uint64_t daemon_deletes;
	uint64_t evictions;
	int64_t base;            /* -(entries a reused pinned map had at load) */
};

struct bpf_engine {
	struct ikelb_bpf *skel;
	const struct logger *log;
	char pin_dir[256];
	uint32_t maglev_cap;
	int ncpu;
	int ifindex[CFG_MAX_INTERFACES];
	int nif;
	enum cfg_bpf_attach attach;             /* from the cfg given to open */
	int xdp_ifindex[CFG_MAX_INTERFACES];
	uint32_t xdp_flags[CFG_MAX_INTERFACES]; /* XDP_FLAGS_DRV_MODE or _SKB_MODE */
	int nxdp;
	int nsvc;
	struct bpfe_svc svc[IKELB_MAX_SERVICES];
	struct bpfe_tbl tbl[TBL__MAX];
	uint32_t cookie_ver;       /* cookie_key_map's current version, 0 = none yet */
	uint32_t cookie_rotated_s; /* when it was written (bpf_engine_now_s) */
};

/* bpf_sync.c */
void bpfe_svc_free(struct bpfe_svc *s);

/* Replace the whole content of a hash / LPM map with keys[i] -> vals[i]. */
int bpfe_map_replace(int fd, const void *keys, const void *vals, size_t n, size_t ksz,
		     size_t vsz);

/* bpf_admit.c: admit_map from cfg; the first COOKIE secret */
int bpfe_admit_sync(struct bpf_engine *e, const struct cfg *cfg);

/* bpf_state.c */
int bpfe_read_reals(struct bpf_engine *e, struct real_value *reals);
/* After load: each table's capacity into tbl_fill_map (the BPF side's
 * "table at capacity" test). */
int bpfe_tbl_init(struct bpf_engine *e);

/* bpf_esp.c: the VIP's raw ESP entry in svc_map (bpf/ikelb_esp.h), held
 * by the first service on each VIP. */
void bpfe_esp_entry(const struct bpfe_svc *es, struct svc_key *k, struct svc_value *v);
/* After es->val changed: rewrite the entry when es holds it. */
int bpfe_esp_refresh(int svc_fd, const struct bpfe_svc *es);

/* Called for each (key, value) of a walk: < 0 ends it with that error,
 * > 0 ends it without one, 0 goes on. */
typedef int (*bpfe_walk_fn)(void *ctx, const void *key, const void *val);

/* Every entry of the map at fd, read in batches (bpf_walk.c): 0 when
 * all were seen, else what fn returned to end the walk. */
int bpfe_batch_walk(int fd, size_t ksz, size_t vsz, bpfe_walk_fn fn, void *ctx);

#endif
