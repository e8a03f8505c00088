/* Run-time state of services and real servers: what the admin asked for
 * (state, weight) and what health checking found, combined into the
 * effective state the engines act on. Changes rebuild the service's
 * scheduling table; existing clients keep their server (persistence). */
#ifndef IKELB_RUNTIME_H
#define IKELB_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/log.h"

struct engine;
struct sched;

enum rt_health { RT_HEALTH_UNKNOWN = 0, RT_HEALTH_UP = 1, RT_HEALTH_DOWN = 2 };

struct rt_server {
	enum cfg_server_state admin; /* active / draining / disabled */
	uint32_t weight;
	enum rt_health health;
	int effective;               /* REAL_ACTIVE / REAL_DRAINING / REAL_DOWN */
	uint64_t transitions;        /* effective state changes */
	uint64_t down_events;        /* health up -> down */
	uint64_t last_change_ms;     /* CLOCK_MONOTONIC */
};

struct rt_service {
	struct rt_server *servers;
	struct sched *sched;
	uint64_t table_builds;
};

struct runtime {
	const struct cfg *cfg;
	const struct logger *log;
	struct engine *eng;
	struct rt_service svc[CFG_MAX_SERVICES];
};

int rt_init(struct runtime *rt, const struct cfg *cfg, const struct logger *log, struct engine *eng);
void rt_free(struct runtime *rt);
/* Push every service's table and server states to the engine. */
int rt_sync_all(struct runtime *rt, uint64_t now_ms);

/* Find "NAME" (unique across services) or "SERVICE/NAME". Returns 0 and
 * the indexes, -1 not found, -2 ambiguous. */
int rt_find_server(const struct runtime *rt, const char *spec, int *svc, int *srv);

int rt_set_admin(struct runtime *rt, int svc, int srv, enum cfg_server_state st, uint64_t now_ms);
int rt_set_weight(struct runtime *rt, int svc, int srv, uint32_t weight, uint64_t now_ms);
void rt_set_health(struct runtime *rt, int svc, int srv, bool up, uint64_t now_ms);
/* Before rt_sync_all: take over a known health (configuration reload). */
void rt_restore_health(struct runtime *rt, int svc, int srv, enum rt_health h);

const char *rt_health_name(enum rt_health h);
const char *rt_effective_name(int eff);

#endif
