/* Run-time state of services and real servers (ARCHITECTURE.md, "Control
 * plane"): what the admin asked for (state, weight) and what health checking
 * found, combined by one rule (rt_effective) into the effective state the
 * engines act on. The runtime owns each service's scheduler: it rebuilds the
 * Maglev table on changes and pushes tables and states through the caller's
 * rt_ops, and engines that place new clients themselves (the socket engine,
 * through steer) pick from it with rt_pick. Existing clients keep their
 * server (persistence).
 *
 * Threads: one control thread calls everything but rt_pick / rt_conn_*,
 * which engine threads may call concurrently; the runtime must outlive every
 * engine that picks from it. */
#ifndef IKELB_CORE_RUNTIME_H
#define IKELB_CORE_RUNTIME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/health_state.h"
#include "core/log.h"
#include "ikelb/addr.h"

struct sched;

/* Where the runtime's decisions go (the engine, through an adapter: core
 * knows no engine). Both return 0 or a negative value; the callee copies
 * the table. state is REAL_ACTIVE / REAL_DRAINING / REAL_DOWN. */
/* What a kernel scheduler needs of one service (sched_kernel_view), per
 * server in configuration order. */
struct rt_sched_view {
	enum cfg_sched kind;
	int n;
	const uint32_t *weight;      /* what lc/wlc compare by; 0 = no new clients */
	const uint32_t *max_clients; /* 0 = no limit */
	const uint8_t *seq;          /* rr/wrr: the cycle, server indexes */
	uint32_t seq_len;
};

struct rt_ops {
	void *ctx;
	int (*set_table)(void *ctx, int svc, const uint32_t *table, uint32_t m);
	int (*set_server_state)(void *ctx, int svc, int srv, int state);
	/* May be NULL (an engine that picks through rt_pick). Called after
	 * every change of states, weights or slow-start ramps. */
	int (*set_sched)(void *ctx, int svc, const struct rt_sched_view *v);
};

struct rt_server {
	enum cfg_server_state admin; /* active / draining / disabled */
	uint32_t weight;
	/* What the configuration file said. admin/weight differ from these
	 * when the API overrode them; a reload keeps such an override unless
	 * the file changed that very setting (rt_reload_server). */
	enum cfg_server_state file_admin;
	uint32_t file_weight;
	bool init_down;              /* cfg_server.init_down */
	enum health_state health;
	int effective;               /* rt_effective(admin, health, init_down) */
	uint64_t transitions;        /* effective state changes */
	uint64_t down_events;        /* health up -> down */
	uint64_t last_change_ms;     /* CLOCK_MONOTONIC */
	/* Slow start: a server back from DOWN ramps its weight (ramp /
	 * SCHED_RAMP_FULL) over cfg_server.slow_start_ms from ramp_start_ms;
	 * ramp 0 = full weight. */
	uint32_t ramp;
	uint64_t ramp_start_ms;
};

struct rt_service {
	struct rt_server *servers;
	struct sched *sched;
	uint64_t table_builds;
};

struct runtime {
	const struct cfg *cfg;
	const struct logger *log;
	struct rt_ops ops;
	/* Guards the schedulers against engine threads in rt_pick. On the
	 * heap so a runtime may be copied to a new place (reload). */
	pthread_mutex_t *mu;
	struct rt_service svc[CFG_MAX_SERVICES];
};

/* The one rule: REAL_DOWN when disabled or health down, REAL_DRAINING when
 * draining or (init_down) health still unknown, else REAL_ACTIVE. An
 * unknown server is DRAINING, not DOWN: after a restart with pinned state
 * its existing clients keep their flows (the data path only drops state
 * pointing at DOWN servers), but no new client lands on a server that has
 * not answered a probe yet. */
int rt_effective(enum cfg_server_state admin, enum health_state health, bool init_down);

/* 0, -EINVAL (bad ops or configuration) or -ENOMEM, logged. Talks to no
 * engine yet: rt_sync_all does. */
int rt_init(struct runtime *rt, const struct cfg *cfg, const struct logger *log,
	    const struct rt_ops *ops);
void rt_free(struct runtime *rt);
/* Push every service's table and server states through ops. */
int rt_sync_all(struct runtime *rt);

/* Find "NAME" (unique across services) or "SERVICE/NAME". Returns 0 and
 * the indexes, -ENOENT not found, -EEXIST ambiguous. */
int rt_find_server(const struct runtime *rt, const char *spec, int *svc, int *srv);

/* 0 or a negative errno (logged). */
int rt_set_admin(struct runtime *rt, int svc, int srv, enum cfg_server_state st, uint64_t now_ms);
int rt_set_weight(struct runtime *rt, int svc, int srv, uint32_t weight, uint64_t now_ms);
int rt_set_health(struct runtime *rt, int svc, int srv, bool up, uint64_t now_ms);
/* Before rt_sync_all: take over a known health (configuration reload). */
int rt_restore_health(struct runtime *rt, int svc, int srv, enum health_state h);

/* Reload of one server that stays: `file` is the new file's entry, `old`
 * what ran before (its file_* the previous file). A setting the new file
 * did not change keeps the running value (an API drain or weight
 * survives); one it changed wins. Applies it to rt's server [svc][srv]
 * and writes what happened to msg ("" when nothing). Returns the number
 * of lines worth reporting (0 or 1), or a negative errno. */
int rt_reload_server(struct runtime *rt, int svc, int srv, const struct rt_server *old,
		     const struct cfg_server *file, uint64_t now_ms, char *msg, size_t len);

/* Any thread: a new client's server from the service's scheduler (index,
 * or -1 when none is eligible), and the active connection counts lc/wlc
 * place by. */
int rt_pick(struct runtime *rt, int svc, const struct ikelb_addr *client);
void rt_conn_inc(struct runtime *rt, int svc, int srv);
void rt_conn_dec(struct runtime *rt, int svc, int srv);
/* Any thread: server at its max_clients; the least loaded server with
 * room (the fallback past a full one), or -1. */
bool rt_full(struct runtime *rt, int svc, int srv);
int rt_pick_room(struct runtime *rt, int svc);
/* Control thread: the service's Maglev table (*m entries), valid until the
 * next change. */
const uint32_t *rt_maglev_table(const struct runtime *rt, int svc, uint32_t *m);

const char *rt_effective_name(int eff);

/* Every second (daemon timer): advance slow-start ramps, pushing tables
 * and scheduler views that changed. 0 or a negative errno. */
int rt_tick(struct runtime *rt, uint64_t now_ms);
/* The weight new clients see now (slow start applied; 0 when the server
 * takes none), and the seconds of slow start left (0 = none). */
uint32_t rt_effective_weight(const struct runtime *rt, int svc, int srv);
uint32_t rt_slow_start_left_s(const struct runtime *rt, int svc, int srv, uint64_t now_ms);
/* Clients the engine's tables hold (reconciliation, socket engine). */
void rt_conn_set(struct runtime *rt, int svc, int srv, uint64_t n);

#endif
