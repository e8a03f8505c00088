/* The interface the daemon drives, implemented by the bpf engine (kernel
 * data path) and the socket engine (user-space relay). Both take the same
 * decisions (same classifier, same tables); this interface only carries
 * control-plane operations, never packets. */
#ifndef IKELB_ENGINE_H
#define IKELB_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/lookup.h"
#include "core/log.h"
#include "core/runtime.h"
#include "ikelb/maps.h" /* enum svc_ctr, REAL_* states: one numbering for both engines */

struct eng_svc_stats {
	uint64_t pkts[SVC_CTR__MAX];
	uint64_t bytes[SVC_CTR__MAX];
};

struct eng_srv_stats {
	uint64_t pkts;     /* client->server datagrams forwarded */
	uint64_t bytes;
	uint64_t reply_pkts;  /* server->client datagrams relayed back (dnat, fullnat) */
	uint64_t reply_bytes;
	uint64_t ike_pkts;    /* IKE messages among pkts (bpf engine; 0: not counted) */
	uint64_t clients;  /* live persistence/SA entries pointing at it */
	uint64_t flows;    /* live flow entries pointing at it */
	uint64_t sas;      /* established IKE SAs (SA table, both persistence modes) */
	uint64_t client_addresses; /* distinct client addresses of its live flows */
};

/* One state table (enum ikelb_table: persistence, established SAs,
 * half-open SAs, flows), all services together. */
struct eng_table_stats {
	uint64_t entries;    /* live entries at the last walk */
	uint64_t capacity;
	uint64_t inserts;    /* new keys written */
	uint64_t evictions;  /* entries dropped to admit new ones (table full) */
};

/* Socket engine only (present): wakes of its workers, datagrams they
 * handled, moderation waits and their total time, send calls. */
struct eng_sock_stats {
	bool present;
	uint64_t wakes, dgrams, waits, wait_ns, sends;
};

struct eng_stats {
	int nsvc;
	int ntables;         /* TBL__MAX when tables[] is filled, else 0 */
	struct eng_table_stats tables[TBL__MAX];
	struct eng_svc_stats svc[CFG_MAX_SERVICES];
	struct eng_srv_stats *srv[CFG_MAX_SERVICES]; /* [svc][server index] */
	uint64_t not_ours; /* packets that were not for a service (passed) */
	uint64_t decision_log_dropped; /* decision log lines lost: over the rate limit,
					* or (bpf) the ring buffer full */
	struct eng_sock_stats sock;
};

struct engine;

/* One state entry as the engines and the sync module exchange it: local
 * service and server indexes, the age in seconds (clocks differ between
 * nodes). kind is enum sync_kind (core/sync_wire.h). */
struct eng_sync_entry {
	uint8_t kind;
	int svc, srv;
	uint32_t age_s;
	struct ikelb_addr client;  /* persist (masked), flow */
	uint64_t spi;              /* sa, halfopen */
	uint16_t cport, vport;     /* flow */
};

typedef int (*eng_sync_cb)(void *ctx, const struct eng_sync_entry *en);

struct engine_ops {
	const char *name;
	/* Called once the tables are programmed: start forwarding (attach).
	 * May be NULL. */
	int (*start)(struct engine *e);
	/* The Maglev (or scheduler) table of one service: server indexes. */
	int (*set_table)(struct engine *e, int svc, const uint32_t *table, uint32_t size);
	/* The kernel scheduler's view of one service (core/runtime.h). NULL
	 * when the engine places new clients through rt_pick. */
	int (*set_sched)(struct engine *e, int svc, const struct rt_sched_view *v);
	/* REAL_ACTIVE / REAL_DRAINING / REAL_DOWN. DOWN also purges state
	 * pointing at the server so its clients reconnect elsewhere. */
	int (*set_server_state)(struct engine *e, int svc, int srv, int state);
	int (*read_stats)(struct engine *e, struct eng_stats *st);
	/* Only the per-server pkts/bytes/reply_* counters, without the walks
	 * read_stats does for client counts: cheap enough for every second
	 * (src/ctl/bypass.c). Other fields are left alone. */
	int (*read_counters)(struct engine *e, struct eng_stats *st);
	/* Log each placement decision (client, SPI, service, server, rule),
	 * rate-limited, or stop (core/declog.h). 0 or a negative errno. */
	int (*set_decision_log)(struct engine *e, bool on);
	/* Events the engine cannot wait for itself (bpf: the decision log's
	 * ring buffer): an fd for the daemon's epoll, readable when there is
	 * something to drain, valid from open to close (reconfigure keeps
	 * it); drain_events handles what is there without blocking. NULL, or
	 * -1, when the engine has none. */
	int (*event_fd)(struct engine *e);
	void (*drain_events)(struct engine *e);
	/* Where clients went (core/lookup.h): cb for every entry answering q.
	 * Read-only: never expires, refreshes or deletes state. Returns the
	 * number of entries or a negative errno. */
	int (*lookup)(struct engine *e, const struct lk_query *q, lk_cb cb, void *ctx);
	/* Expire idle state; now = CLOCK_MONOTONIC seconds. Returns entries removed.
	 * The only operation that removes idle state: reads never do. */
	long (*sweep)(struct engine *e, uint64_t now_s);
	/* Take a new configuration with other services or servers (SIGHUP
	 * reload). The engine must not keep pointers into the old one. NULL
	 * when the engine can only take weight/state changes at run time. */
	int (*reconfigure)(struct engine *e, const struct cfg *cfg);
	/* keep_state: leave pinned maps / programs so forwarding continues. */
	void (*close)(struct engine *e, bool keep_state);
	/* State sync between nodes (src/ctl/sync.c, docs/ha.md). NULL when the
	 * engine cannot share its state. sync_walk calls cb for every live
	 * persistence, SA, half-open and flow entry (a non-zero return stops
	 * the walk and is returned); sync_apply writes one entry from a peer:
	 * 1 written, 0 kept (the local entry is as recent), or a negative errno. */
	int (*sync_walk)(struct engine *e, eng_sync_cb cb, void *ctx);
	int (*sync_apply)(struct engine *e, const struct eng_sync_entry *en);
	/* Evacuation (docs/operations.md) on: a new SA of the server's clients
	 * is not placed by their flow or persistence (REAL_F_EVACUATING), and
	 * its source-ip persistence entries are forgotten. Flows and SA entries
	 * stay: they carry each client's current SA until it moves. Returns
	 * entries forgotten (0 for off) or a negative errno. NULL: unsupported. */
	long (*set_evacuating)(struct engine *e, int svc, int srv, bool on);
};

struct engine {
	const struct engine_ops *ops;
	void *impl;
};

struct runtime;

struct engine_open_opts {
	bool flush_state;  /* drop learned state kept from a previous run */
	/* The socket engine places new clients with the runtime's schedulers
	 * (one scheduler per service, owned by the runtime). */
	struct runtime *rt;
};

/* Opens the engine cfg->engine names and gives it the whole configuration:
 * afterwards only per-server states and tables reach it through ops, and
 * a new configuration only through engine_reconfigure. cfg must stay at
 * the same address while the engine is open (reload swaps its content).
 * 0 or a negative errno, logged. o may be NULL. */
int engine_open(struct engine *e, const struct cfg *cfg, const struct logger *log,
		const struct engine_open_opts *o);
/* 0, -EOPNOTSUPP when the engine cannot take a new shape at run time, or
 * another negative errno. */
int engine_reconfigure(struct engine *e, const struct cfg *cfg);

/* Adapters of the two engines onto engine_ops (bpf_adapter.c,
 * sock_engine.c). */
int bpf_adapter_open(struct engine *e, const struct cfg *cfg, const struct logger *log,
		     bool flush_state);
/* The runtime's callbacks driving engine e (set_table, set_server_state). */
struct rt_ops eng_rt_ops(struct engine *e);

int eng_stats_alloc(struct eng_stats *st, const struct cfg *cfg);
void eng_stats_free(struct eng_stats *st);

#endif
