/* bpf engine: loads the tc and XDP programs (src/bpf/ikelb.bpf.c) with its libbpf
 * skeleton, pins and reuses the state maps, attaches to interfaces and keeps
 * the configuration maps in sync with struct cfg. docs/bpf-engine.md has
 * the deployment side, docs/state.md the map layouts.
 *
 * Typical daemon use:
 *   bpf_engine_open(&e, cfg, log)          load, reuse pinned state
 *   bpf_engine_sync(e, cfg)                services, reals, labels, rev NAT
 *   bpf_engine_set_local_addrs(e, ...)     or bpf_engine_refresh_local_addrs
 *   for each service: bpf_engine_set_maglev(e, svc, table, m)
 *   bpf_engine_attach(e, cfg)
 *   loop: set_real_state / set_maglev on health changes, sweep every few s,
 *         read counters for stats
 *   bpf_engine_detach(e); bpf_engine_close(e, false)
 *
 * Services are identified by their index in cfg->services (svc_id), servers
 * by (service index, server index); each server gets a real_id (0 ..
 * IKELB_MAX_REALS-1) that stays the same across syncs and daemon restarts as
 * long as the server keeps its service index and address (the pinned
 * reals_map remembers the assignment). Functions return 0 or a negative
 * errno and log why. Not thread-safe. */
#ifndef IKELB_BPF_ENGINE_H
#define IKELB_BPF_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/lookup.h"
#include "engine/engine.h" /* struct eng_table_stats */
#include "ikelb/maps.h"

struct bpf_engine;

/* Load the program. Map sizes come from cfg (max_clients, max_flows,
 * max_halfopen, the sum of the services' maglev_size). With a non-empty
 * cfg->bpf_pin_dir (bpffs is mounted there if needed) the state maps
 * (persist, sa, halfopen, flow, frag), reals_map and the counters are pinned
 * there and reused when they already exist with the same layout and size;
 * otherwise they are recreated (state lost, logged). */
int bpf_engine_open(struct bpf_engine **out, const struct cfg *cfg, const struct logger *log);

/* Detach nothing, unpin only when `unpin`, free everything. */
void bpf_engine_close(struct bpf_engine *e, bool unpin);

/* Attach the program at tc ingress (clsact created when missing) of every
 * cfg->interfaces entry; replaces an instance left by a previous daemon.
 * With bpf.attach: xdp the XDP program goes in front of tc on the same
 * interfaces (native mode, else generic; logged). */
int bpf_engine_attach(struct bpf_engine *e, const struct cfg *cfg);
int bpf_engine_attach_ifindex(struct bpf_engine *e, int ifindex);
/* The XDP program alone on one interface; *native tells the mode used. */
int bpf_engine_attach_xdp_ifindex(struct bpf_engine *e, int ifindex, bool *native);
/* Remove our tc filter and XDP program from every interface attached by
 * this engine. */
void bpf_engine_detach(struct bpf_engine *e);

/* Fill the configuration maps from cfg: services (svc_map, vip_map),
 * reals (ids, admin state: disabled -> DOWN, draining -> DRAINING, else
 * ACTIVE), IKE SPI labels, ESP SPI ranges, reverse NAT entries. Servers no
 * longer configured are freed and the state pointing to them purged. A
 * service keeps its Maglev table when its size and offset did not change,
 * else it has none (new clients dropped) until bpf_engine_set_maglev.
 * Fails with -EINVAL on mixed address families, -EEXIST when two dnat
 * services would reverse-translate the same (real, port), -E2BIG when the
 * Maglev tables outgrow the size given at open or the reals IKELB_MAX_REALS. */
int bpf_engine_sync(struct bpf_engine *e, const struct cfg *cfg);
/* Each second: a new COOKIE secret when the current one is
 * IKELB_COOKIE_ROTATE_S old (bpf_admit.c). */
int bpf_engine_cookie_tick(struct bpf_engine *e, uint32_t now_s);

/* real_id of server `srv` of service `svc`, or -1. */
int bpf_engine_real_id(const struct bpf_engine *e, int svc, int srv);

/* Install the Maglev table of service `svc`: m entries (m = the service's
 * maglev_size, or 0 = no server for new clients). _real takes real ids,
 * _servers server indexes into cfg->services[svc].servers (what
 * maglev_build returns for the full server array); both accept
 * MAGLEV_EMPTY / IKELB_REAL_NONE as an empty slot. */
int bpf_engine_set_maglev(struct bpf_engine *e, int svc, const uint32_t *real_ids, uint32_t m);
int bpf_engine_set_maglev_servers(struct bpf_engine *e, int svc, const uint32_t *srv_idx,
				  uint32_t m);

/* The kernel scheduler (bpf_sched.c; maps.h, svc_sched / real_load): the
 * runtime's view of service svc, and max_clients of its servers. The rr
 * cursor restarts when the cycle changed. */
int bpf_engine_set_sched(struct bpf_engine *e, int svc, const struct rt_sched_view *v);
/* Reconciliation of the data path's client counts, around a table walk:
 * placed (IKELB_MAX_REALS entries) is read before the walk, reconcile
 * writes each server's correction after it from the walk's usage. */
struct bpf_real_usage;
int bpf_engine_load_placed(struct bpf_engine *e, int64_t *placed);
int bpf_engine_load_reconcile(struct bpf_engine *e, const struct cfg *cfg, const int64_t *placed,
			      const struct bpf_real_usage *usage);
/* Clients the data path counts on real_id (what lc and max_clients see). */
int64_t bpf_engine_load_clients(struct bpf_engine *e, uint32_t real_id);

/* Health / admin state of one server: REAL_ACTIVE, REAL_DRAINING,
 * REAL_DOWN. Going DOWN also purges the state pointing to it. */
int bpf_engine_set_real_state(struct bpf_engine *e, int svc, int srv, int state);
/* Delete every persist/sa/halfopen/flow/frag entry that points to real_id. */
int bpf_engine_purge_real(struct bpf_engine *e, uint32_t real_id);
/* Deletes only the persistence entries of (svc, srv): how many, or a
 * negative errno (evacuation). */
long bpf_engine_forget_persist(struct bpf_engine *e, int svc, int srv);
/* REAL_F_EVACUATING on or off; on also forgets the persistence entries:
 * how many, or a negative errno. */
long bpf_engine_set_evacuating(struct bpf_engine *e, int svc, int srv, bool on);

/* ikelb's own addresses: replies from real servers to these are not
 * reverse-translated (health-probe answers reach the daemon). */
int bpf_engine_set_local_addrs(struct bpf_engine *e, const struct ikelb_addr *a, int n);
/* Same, with every address of this host (getifaddrs). */
int bpf_engine_refresh_local_addrs(struct bpf_engine *e);

/* Counters summed over CPUs. out has SVC_CTR__MAX entries (enum svc_ctr). */
int bpf_engine_svc_counters(struct bpf_engine *e, int svc, struct ctr *out);
int bpf_engine_real_counters(struct bpf_engine *e, uint32_t real_id, struct ctr *out);
/* enum real_ctr (dnat replies, IKE messages forwarded); out has REAL_CTR__MAX. */
int bpf_engine_real_replies(struct bpf_engine *e, uint32_t real_id, struct ctr *out);

/* Live state entries per real server, filled by bpf_engine_sweep. */
struct bpf_real_usage {
	uint32_t persist;
	uint32_t sa;
	uint32_t halfopen;
	uint32_t flows;
};

struct bpf_sweep_stats {
	uint64_t scanned;
	uint64_t expired;   /* idle longer than the service timeout */
	uint64_t purged;    /* unknown service, freed or DOWN real server */
};

/* Pressure on each state table (enum ikelb_table), as of the last walk
 * (sweep or stats read). evictions: entries the LRU dropped to admit new
 * ones, derived as inserts - deletes - entries (docs/state.md). */
void bpf_engine_table_stats(const struct bpf_engine *e, struct eng_table_stats out[TBL__MAX]);

/* Roles (IFACE_R_*) of an interface the program runs on: where replies of
 * real servers are believed. bpf_engine_attach sets them from the
 * configuration; interfaces without an entry have both roles. */
int bpf_engine_set_iface_roles(struct bpf_engine *e, int ifindex, uint32_t roles);

/* Delete entries idle longer than their service's timeout (now_s:
 * clock_gettime(CLOCK_MONOTONIC) seconds, the clock the BPF side uses) and
 * entries pointing to freed or DOWN servers. When usage is not NULL it must
 * hold IKELB_MAX_REALS entries and receives the live entries per real_id.
 * st may be NULL. */
int bpf_engine_sweep(struct bpf_engine *e, uint32_t now_s, struct bpf_real_usage *usage,
		     struct bpf_sweep_stats *st);

/* Like bpf_engine_sweep's usage, without deleting anything: for reads. */
int bpf_engine_count(struct bpf_engine *e, uint32_t now_s, struct bpf_real_usage *usage);

/* Read-only lookups (bpf_lookup.c, see core/lookup.h): cb per entry;
 * returns how many or a negative errno. */
int bpf_engine_lookup(struct bpf_engine *e, const struct lk_query *q, lk_cb cb, void *ctx);
/* Distinct client addresses of the live flows, per real_id
 * (IKELB_MAX_REALS entries). 0 or a negative errno. */
int bpf_engine_client_addresses(struct bpf_engine *e, uint32_t *per_real);

/* The decision log (bpf_declog.c, core/declog.h): the program's events
 * written as log lines. cfg is read at each event (names), so it must be
 * the one the adapter reads. open creates the ring buffer consumer (the
 * log stays off until set); fd is for epoll, drain consumes without
 * blocking; dropped counts rate-limited lines and events lost to a full
 * ring. */
struct bpfe_declog;
int bpfe_declog_open(struct bpfe_declog **out, struct bpf_engine *e, const struct cfg *cfg);
void bpfe_declog_close(struct bpfe_declog *d);
int bpfe_declog_set(struct bpfe_declog *d, bool on);
int bpfe_declog_fd(const struct bpfe_declog *d);
void bpfe_declog_drain(struct bpfe_declog *d);
uint64_t bpfe_declog_dropped(const struct bpfe_declog *d);

/* Seconds of CLOCK_MONOTONIC, for sweep. */
uint32_t bpf_engine_now_s(void);

/* For tests and tools: the program fd and map fds by name ("flow_map" ...),
 * -1 when unknown. */
int bpf_engine_prog_fd(const struct bpf_engine *e);
int bpf_engine_xdp_prog_fd(const struct bpf_engine *e);
int bpf_engine_map_fd(const struct bpf_engine *e, const char *name);

#endif
