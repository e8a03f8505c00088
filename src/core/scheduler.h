/* Schedulers: how a new client is placed on a real server (ARCHITECTURE.md,
 * "Steering", rules 5 and 6). One `struct sched` per service, owned by the
 * runtime, holds its view of the servers (config order = index) and the
 * service's Maglev table, which is kept for every scheduler kind because the
 * fallback rule always uses it.
 *
 * Only servers that are SCHED_SRV_ACTIVE with weight > 0 get new clients;
 * draining and down servers never do. Not thread-safe: one owner (or the
 * caller's lock) per scheduler.
 *
 *   maglev  table[key_hash % M]  (caller's key: ikelb_hash_addr() of the
 *           masked client for source-ip persistence, ikelb_hash_u64(SPIi)
 *           for ike persistence; both with the service's seed)
 *   sh      table[ikelb_hash_addr(client, 0, seed) % M]: weighted source hash
 *   rr      round robin over eligible servers
 *   wrr     smooth weighted round robin (nginx): exact proportions every
 *           sum(weights) picks
 *   lc      fewest active connections, ties -> lowest index
 *   wlc     fewest connections per weight (compared as c_i*w_j < c_j*w_i),
 *           ties -> lowest index
 *   fo      first eligible server in config order (ordered failover)
 */
#ifndef IKELB_SCHEDULER_H
#define IKELB_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>
#include "core/config.h"
#include "ikelb/addr.h"

/* Same values as REAL_ACTIVE/REAL_DRAINING/REAL_DOWN in include/ikelb/maps.h. */
enum sched_state {
	SCHED_SRV_ACTIVE = 0,   /* gets new clients */
	SCHED_SRV_DRAINING = 1, /* keeps its clients, gets no new ones */
	SCHED_SRV_DOWN = 2,     /* health down or disabled */
};

/* Slow start (runtime.c): a returning server's weight is scaled by
 * ramp / SCHED_RAMP_FULL. */
#define SCHED_RAMP_FULL 1024u
/* sched_pick: no server with room, though some eligible one is full. */
#define SCHED_ALL_FULL (-2)

struct sched_server {
	char name[CFG_NAME_MAX];  /* with addr: the server's Maglev identity */
	struct ikelb_addr addr;
	uint32_t weight;          /* 0 = no new clients */
	enum sched_state state;
	uint32_t ramp;            /* slow start: 1..SCHED_RAMP_FULL, 0 = full weight */
	uint32_t max_clients;     /* 0 = no limit; a full server takes no new client */
};

struct sched;

/* maglev_size: prime (0 = MAGLEV_DEFAULT_SIZE); seed: cfg.maglev_seed.
 * NULL on bad arguments or no memory. Starts with no servers. */
struct sched *sched_new(enum cfg_sched kind, uint32_t maglev_size, uint64_t seed);
void sched_free(struct sched *s);

/* Replace the server view (n <= CFG_MAX_SERVERS). Connection counts carry
 * over for servers with the same name and address. Returns 1 if the Maglev
 * table changed (copy it to the BPF map), 0 if not, -errno on error (the old
 * view is kept). The table is rebuilt only if some server's effective weight
 * (weight when active, else 0) or identity changed. */
int sched_update(struct sched *s, const struct sched_server *v, size_t n);
/* Change one server; same return convention as sched_update. */
int sched_set_state(struct sched *s, size_t idx, enum sched_state st);
int sched_set_weight(struct sched *s, size_t idx, uint32_t weight);

/* Pick a server for a new client: index, -1 when none is eligible, or
 * SCHED_ALL_FULL. A kind whose choice is full (max_clients) falls back to
 * the least loaded server with room (wlc). `client` is needed by sh only
 * (may be NULL otherwise). */
int sched_pick(struct sched *s, const struct ikelb_addr *client, uint64_t key_hash);
/* 1 when server idx is at its max_clients. */
int sched_full(const struct sched *s, size_t idx);
/* The wlc pick over servers with room: the fallback after a full one. */
int sched_pick_room(const struct sched *s);
/* Weight after slow start (what Maglev and wrr use; 0 when not eligible). */
uint32_t sched_eff_weight(const struct sched *s, size_t idx);

/* What a kernel scheduler needs (rt_ops.set_sched): per server the weight
 * lc/wlc compare clients by (lc: the ramp alone, wlc and the fallback of
 * the other kinds: weight x ramp; 0 = takes no new clients), and for rr/wrr
 * a cycle of server indexes below `limit` (rr: each eligible one once;
 * wrr: smooth weighted round robin over weights scaled to fit max_seq).
 * weight has sched_nservers entries; returns the cycle's length. */
uint32_t sched_kernel_view(const struct sched *s, uint32_t *weight, uint8_t *seq, size_t max_seq,
			   size_t limit);

/* Maglev lookup regardless of kind (the fallback rule): index or -1. */
int sched_lookup_hash(const struct sched *s, uint64_t hash);

/* Active connections, for lc/wlc. dec saturates at 0; bad idx is ignored. */
void sched_conn_inc(struct sched *s, size_t idx);
void sched_conn_dec(struct sched *s, size_t idx);
/* Reconciliation from the engine's tables (clients it holds). */
void sched_conn_set(struct sched *s, size_t idx, uint64_t n);
uint64_t sched_conns(const struct sched *s, size_t idx);

/* The Maglev table (*m entries, MAGLEV_EMPTY slots when no server is
 * eligible); valid until the next sched_update/sched_set_*. generation
 * increases by one at every rebuild. */
const uint32_t *sched_maglev_table(const struct sched *s, uint32_t *m);
uint64_t sched_generation(const struct sched *s);
int sched_has_eligible(const struct sched *s);

size_t sched_nservers(const struct sched *s);
enum cfg_sched sched_kind(const struct sched *s);

#endif
