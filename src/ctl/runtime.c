#include "ctl/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "core/maglev.h"
#include "core/scheduler.h"

static int effective_state(const struct rt_server *s)
{
	if (s->admin == CFG_SRV_DISABLED || s->health == RT_HEALTH_DOWN)
		return REAL_DOWN;
	if (s->admin == CFG_SRV_DRAINING)
		return REAL_DRAINING;
	return REAL_ACTIVE;
}

/* The engine's table for one service. Maglev and sh are the Maglev table
 * itself. fo sends every new client to the first eligible server. The bpf
 * engine has no per-packet scheduler state, so rr/wrr/lc/wlc use the
 * weighted Maglev table there (the same long-run weight shares); the socket
 * engine applies them exactly through sched_pick. */
static int push_table(struct runtime *rt, int svc)
{
	struct sched *s = rt->svc[svc].sched;
	uint32_t m;
	const uint32_t *table = sched_maglev_table(s, &m);

	if (!rt->eng)
		return 0;
	rt->svc[svc].table_builds++;
	if (sched_kind(s) != CFG_SCHED_FO)
		return rt->eng->ops->set_table(rt->eng, svc, table, m);

	uint32_t *fo = malloc((size_t)m * sizeof(*fo));
	if (!fo)
		return -1;
	int first = sched_pick(s, NULL, 0);
	for (uint32_t i = 0; i < m; i++)
		fo[i] = first < 0 ? MAGLEV_EMPTY : (uint32_t)first;
	int rc = rt->eng->ops->set_table(rt->eng, svc, fo, m);
	free(fo);
	return rc;
}

static int sched_view(struct runtime *rt, int svc)
{
	const struct cfg_service *cs = &rt->cfg->services[svc];
	struct sched_server *v = calloc((size_t)cs->nservers, sizeof(*v));
	if (!v)
		return -1;
	for (int i = 0; i < cs->nservers; i++) {
		const struct rt_server *r = &rt->svc[svc].servers[i];
		snprintf(v[i].name, sizeof(v[i].name), "%s", cs->servers[i].name);
		v[i].addr = cs->servers[i].addr;
		v[i].weight = r->weight;
		v[i].state = (enum sched_state)r->effective;
	}
	int rc = sched_update(rt->svc[svc].sched, v, (size_t)cs->nservers);
	free(v);
	return rc;
}

int rt_init(struct runtime *rt, const struct cfg *cfg, const struct logger *log, struct engine *eng)
{
	memset(rt, 0, sizeof(*rt));
	rt->cfg = cfg;
	rt->log = log;
	rt->eng = eng;
	for (int i = 0; i < cfg->nservices; i++) {
		const struct cfg_service *cs = &cfg->services[i];
		struct rt_service *rs = &rt->svc[i];
		rs->servers = calloc((size_t)cs->nservers, sizeof(*rs->servers));
		rs->sched = sched_new(cs->scheduler, cs->maglev_size, cfg->maglev_seed);
		if (!rs->servers || !rs->sched) {
			rt_free(rt);
			return -1;
		}
		for (int j = 0; j < cs->nservers; j++) {
			struct rt_server *r = &rs->servers[j];
			r->admin = cs->servers[j].state;
			r->weight = cs->servers[j].weight;
			/* Start as if up: a restarted daemon must not blackhole
			 * traffic while its first probes are in flight. */
			r->health = cs->health.type == CFG_HEALTH_NONE ? RT_HEALTH_UP : RT_HEALTH_UNKNOWN;
			r->effective = effective_state(r);
		}
		if (sched_view(rt, i) < 0) {
			rt_free(rt);
			return -1;
		}
	}
	return 0;
}

void rt_free(struct runtime *rt)
{
	for (int i = 0; i < CFG_MAX_SERVICES; i++) {
		free(rt->svc[i].servers);
		rt->svc[i].servers = NULL;
		sched_free(rt->svc[i].sched);
		rt->svc[i].sched = NULL;
	}
}

int rt_sync_all(struct runtime *rt, uint64_t now_ms)
{
	(void)now_ms;
	int rc = 0;
	for (int i = 0; i < rt->cfg->nservices; i++) {
		for (int j = 0; j < rt->cfg->services[i].nservers; j++) {
			if (rt->eng && rt->eng->ops->set_server_state(rt->eng, i, j,
								      rt->svc[i].servers[j].effective) < 0)
				rc = -1;
		}
		if (push_table(rt, i) < 0)
			rc = -1;
	}
	return rc;
}

int rt_find_server(const struct runtime *rt, const char *spec, int *svc, int *srv)
{
	const char *slash = strchr(spec, '/');
	const char *name = slash ? slash + 1 : spec;
	size_t svc_len = slash ? (size_t)(slash - spec) : 0;
	int found = 0;

	for (int i = 0; i < rt->cfg->nservices; i++) {
		const struct cfg_service *cs = &rt->cfg->services[i];
		if (slash && (strlen(cs->name) != svc_len || strncmp(cs->name, spec, svc_len)))
			continue;
		for (int j = 0; j < cs->nservers; j++) {
			if (strcmp(cs->servers[j].name, name))
				continue;
			if (found++)
				return -2;
			*svc = i;
			*srv = j;
		}
	}
	return found ? 0 : -1;
}

/* Recompute one server's effective state; on change tell the engine and
 * rebuild the table. Only the changed server's share of new placements
 * moves (Maglev); existing clients of other servers keep their state. */
static int reapply(struct runtime *rt, int svc, int srv, uint64_t now_ms)
{
	struct rt_server *r = &rt->svc[svc].servers[srv];
	const struct cfg_service *cs = &rt->cfg->services[svc];
	int eff = effective_state(r);
	int changed = eff != r->effective;

	if (changed) {
		log_notice(rt->log, "service %s server %s: %s -> %s", cs->name,
			   cs->servers[srv].name, rt_effective_name(r->effective),
			   rt_effective_name(eff));
		r->effective = eff;
		r->transitions++;
		r->last_change_ms = now_ms;
		if (rt->eng && rt->eng->ops->set_server_state(rt->eng, svc, srv, eff) < 0)
			return -1;
	}
	int rc = sched_view(rt, svc);
	if (rc < 0)
		return -1;
	if (rc > 0 || (changed && sched_kind(rt->svc[svc].sched) == CFG_SCHED_FO))
		return push_table(rt, svc);
	return 0;
}

int rt_set_admin(struct runtime *rt, int svc, int srv, enum cfg_server_state st, uint64_t now_ms)
{
	rt->svc[svc].servers[srv].admin = st;
	return reapply(rt, svc, srv, now_ms);
}

int rt_set_weight(struct runtime *rt, int svc, int srv, uint32_t weight, uint64_t now_ms)
{
	if (weight > CFG_WEIGHT_MAX)
		return -1;
	rt->svc[svc].servers[srv].weight = weight;
	/* Engines with their own per-pick schedulers (rr/wrr/lc/wlc in the
	 * socket engine) need the weight itself, not only the Maglev table. */
	if (rt->eng && rt->eng->ops->set_server_weight &&
	    rt->eng->ops->set_server_weight(rt->eng, svc, srv, weight) < 0)
		return -1;
	return reapply(rt, svc, srv, now_ms);
}

void rt_set_health(struct runtime *rt, int svc, int srv, bool up, uint64_t now_ms)
{
	struct rt_server *r = &rt->svc[svc].servers[srv];
	enum rt_health h = up ? RT_HEALTH_UP : RT_HEALTH_DOWN;
	if (r->health == h)
		return;
	if (!up)
		r->down_events++;
	r->health = h;
	reapply(rt, svc, srv, now_ms);
}

void rt_restore_health(struct runtime *rt, int svc, int srv, enum rt_health h)
{
	struct rt_server *r = &rt->svc[svc].servers[srv];
	r->health = h;
	r->effective = effective_state(r);
	sched_view(rt, svc);
}

const char *rt_health_name(enum rt_health h)
{
	switch (h) {
	case RT_HEALTH_UP: return "up";
	case RT_HEALTH_DOWN: return "down";
	default: return "unknown";
	}
}

const char *rt_effective_name(int eff)
{
	switch (eff) {
	case REAL_ACTIVE: return "active";
	case REAL_DRAINING: return "draining";
	default: return "down";
	}
}
