/* Run-time model of services and servers; the rules are in runtime.h. */
#include "core/runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/maglev.h"
#include "core/scheduler.h"
#include "ikelb/maps.h"

int rt_effective(enum cfg_server_state admin, enum health_state health, bool init_down)
{
	if (admin == CFG_SRV_DISABLED || health == HEALTH_DOWN)
		return REAL_DOWN;
	if (admin == CFG_SRV_DRAINING || (init_down && health == HEALTH_UNKNOWN))
		return REAL_DRAINING;
	return REAL_ACTIVE;
}

static int server_eff(const struct rt_server *r)
{
	return rt_effective(r->admin, r->health, r->init_down);
}

static const char *svc_name(const struct runtime *rt, int svc)
{
	return rt->cfg->services[svc].name;
}

/* The table an engine gets. fo sends every new client to the first
 * eligible server; every other kind gets the Maglev table (the bpf engine
 * has no per-packet scheduler state, so rr/wrr/lc/wlc use the weighted
 * table there: the same long-run shares; the socket engine applies them
 * exactly through rt_pick). */
static int push_fo_table(struct runtime *rt, int svc, uint32_t m)
{
	uint32_t *fo = malloc((size_t)m * sizeof(*fo));
	if (!fo) {
		log_err(rt->log, "service %s: no memory for the failover table", svc_name(rt, svc));
		return -ENOMEM;
	}
	pthread_mutex_lock(rt->mu);
	int first = sched_pick(rt->svc[svc].sched, NULL, 0);
	pthread_mutex_unlock(rt->mu);
	for (uint32_t i = 0; i < m; i++)
		fo[i] = first < 0 ? MAGLEV_EMPTY : (uint32_t)first;
	int rc = rt->ops.set_table(rt->ops.ctx, svc, fo, m);
	free(fo);
	return rc;
}

static int push_table(struct runtime *rt, int svc)
{
	struct sched *s = rt->svc[svc].sched;
	uint32_t m;
	const uint32_t *table = sched_maglev_table(s, &m);
	int rc;

	rt->svc[svc].table_builds++;
	if (sched_kind(s) == CFG_SCHED_FO)
		rc = push_fo_table(rt, svc, m);
	else
		rc = rt->ops.set_table(rt->ops.ctx, svc, table, m);
	if (rc < 0)
		log_err(rt->log, "service %s: the engine refused the new table", svc_name(rt, svc));
	return rc < 0 ? -EIO : 0;
}

static int push_state(struct runtime *rt, int svc, int srv)
{
	int eff = rt->svc[svc].servers[srv].effective;
	if (rt->ops.set_server_state(rt->ops.ctx, svc, srv, eff) >= 0)
		return 0;
	log_err(rt->log, "service %s server %s: the engine refused state %s", svc_name(rt, svc),
		rt->cfg->services[svc].servers[srv].name, rt_effective_name(eff));
	return -EIO;
}

/* The kernel scheduler's view of the service (rt_ops.set_sched). */
static int push_sched(struct runtime *rt, int svc)
{
	const struct cfg_service *cs = &rt->cfg->services[svc];
	size_t n = cs->nservers ? (size_t)cs->nservers : 1;
	uint32_t *w = calloc(n, sizeof(*w)), *maxc = calloc(n, sizeof(*maxc));
	uint8_t seq[IKELB_SCHED_SEQ];
	int rc = -ENOMEM;

	if (!rt->ops.set_sched) {
		rc = 0;
		goto out;
	}
	if (!w || !maxc) {
		log_err(rt->log, "service %s: no memory for the scheduler view", cs->name);
		goto out;
	}
	for (int i = 0; i < cs->nservers; i++)
		maxc[i] = cs->servers[i].max_clients;
	pthread_mutex_lock(rt->mu);
	uint32_t len = sched_kernel_view(rt->svc[svc].sched, w, seq, sizeof(seq), IKELB_SCHED_MAX);
	pthread_mutex_unlock(rt->mu);
	struct rt_sched_view v = { .kind = cs->scheduler, .n = cs->nservers, .weight = w,
				   .max_clients = maxc, .seq = seq, .seq_len = len };
	rc = rt->ops.set_sched(rt->ops.ctx, svc, &v);
	if (rc < 0) {
		log_err(rt->log, "service %s: the engine refused the scheduler view", cs->name);
		rc = -EIO;
	}
out:
	free(w);
	free(maxc);
	return rc;
}

/* Give the scheduler the current weights and effective states. Returns
 * sched_update's result: 1 when the Maglev table changed. */
static int sched_view(struct runtime *rt, int svc)
{
	const struct cfg_service *cs = &rt->cfg->services[svc];
	struct sched_server *v = calloc(cs->nservers ? (size_t)cs->nservers : 1, sizeof(*v));
	if (!v) {
		log_err(rt->log, "service %s: no memory for the scheduler view", cs->name);
		return -ENOMEM;
	}
	for (int i = 0; i < cs->nservers; i++) {
		const struct rt_server *r = &rt->svc[svc].servers[i];
		snprintf(v[i].name, sizeof(v[i].name), "%s", cs->servers[i].name);
		v[i].addr = cs->servers[i].addr;
		v[i].weight = r->weight;
		v[i].state = (enum sched_state)r->effective;
		v[i].ramp = r->ramp;
		v[i].max_clients = cs->servers[i].max_clients;
	}
	pthread_mutex_lock(rt->mu);
	int rc = sched_update(rt->svc[svc].sched, v, (size_t)cs->nservers);
	pthread_mutex_unlock(rt->mu);
	free(v);
	if (rc < 0)
		log_err(rt->log, "service %s: cannot rebuild the scheduler: %s", cs->name,
			strerror(-rc));
	return rc;
}

static void server_init(struct rt_server *r, const struct cfg_server *c,
			const struct cfg_service *cs)
{
	r->admin = r->file_admin = c->state;
	r->weight = r->file_weight = c->weight;
	r->init_down = c->init_down;
	/* Unchecked servers are up by definition; checked ones start
	 * UNKNOWN, which takes no new clients under init_state down. */
	r->health = cs->health.type == CFG_HEALTH_NONE ? HEALTH_UP : HEALTH_UNKNOWN;
	r->effective = server_eff(r);
}

static int service_init(struct runtime *rt, int svc)
{
	const struct cfg_service *cs = &rt->cfg->services[svc];
	struct rt_service *rs = &rt->svc[svc];
	rs->servers = calloc(cs->nservers ? (size_t)cs->nservers : 1, sizeof(*rs->servers));
	rs->sched = sched_new(cs->scheduler, cs->maglev_size, rt->cfg->maglev_seed);
	if (!rs->servers || !rs->sched) {
		log_err(rt->log, "service %s: cannot create the scheduler", cs->name);
		return -ENOMEM;
	}
	for (int j = 0; j < cs->nservers; j++)
		server_init(&rs->servers[j], &cs->servers[j], cs);
	int rc = sched_view(rt, svc);
	return rc < 0 ? rc : 0;
}

int rt_init(struct runtime *rt, const struct cfg *cfg, const struct logger *log,
	    const struct rt_ops *ops)
{
	memset(rt, 0, sizeof(*rt));
	if (!ops || !ops->set_table || !ops->set_server_state || cfg->nservices < 0 ||
	    cfg->nservices > CFG_MAX_SERVICES) {
		log_err(log, "runtime: no engine callbacks or bad configuration");
		return -EINVAL;
	}
	rt->cfg = cfg;
	rt->log = log;
	rt->ops = *ops;
	rt->mu = malloc(sizeof(*rt->mu));
	if (!rt->mu) {
		log_err(log, "runtime: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(rt->mu, NULL);
	for (int i = 0; i < cfg->nservices; i++) {
		int rc = service_init(rt, i);
		if (rc < 0) {
			rt_free(rt);
			return rc;
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
	if (rt->mu)
		pthread_mutex_destroy(rt->mu);
	free(rt->mu);
	rt->mu = NULL;
}

int rt_sync_all(struct runtime *rt)
{
	int rc = 0;
	for (int i = 0; i < rt->cfg->nservices; i++) {
		for (int j = 0; j < rt->cfg->services[i].nservers; j++)
			if (push_state(rt, i, j) < 0)
				rc = -EIO;
		if (push_table(rt, i) < 0 || push_sched(rt, i) < 0)
			rc = -EIO;
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
				return -EEXIST;
			*svc = i;
			*srv = j;
		}
	}
	return found ? 0 : -ENOENT;
}

/* The ramp after elapsed ms of a period: grows in whole seconds from
 * 1/period_s of the weight; 0 (full) at the end. */
static uint32_t ramp_at(uint32_t period_ms, uint64_t elapsed_ms)
{
	if (elapsed_ms >= period_ms)
		return 0;
	uint64_t r = (uint64_t)SCHED_RAMP_FULL * (elapsed_ms / 1000 + 1) * 1000 / period_ms;
	if (r >= SCHED_RAMP_FULL)
		return 0;
	return r ? (uint32_t)r : 1;
}

static void note_change(struct runtime *rt, int svc, int srv, int eff, uint64_t now_ms)
{
	struct rt_server *r = &rt->svc[svc].servers[srv];
	const char *name = rt->cfg->services[svc].servers[srv].name;
	const struct log_field f[] = {
		{ "IKELB_SERVICE", svc_name(rt, svc) },
		{ "IKELB_SERVER", name },
		{ "IKELB_STATE", rt_effective_name(eff) },
	};
	log_fields(rt->log, LOG_LVL_NOTICE, f, 3, "service %s server %s: %s -> %s",
		   svc_name(rt, svc), name, rt_effective_name(r->effective), rt_effective_name(eff));
	/* Back from DOWN: slow start (rt_tick ramps it). */
	const struct cfg_server *cs = &rt->cfg->services[svc].servers[srv];
	if (r->effective == REAL_DOWN && eff == REAL_ACTIVE && cs->slow_start_ms) {
		r->ramp_start_ms = now_ms;
		r->ramp = ramp_at(cs->slow_start_ms, 0);
	} else if (eff == REAL_DOWN) {
		r->ramp = 0;
	}
	r->effective = eff;
	r->transitions++;
	r->last_change_ms = now_ms;
}

/* Recompute one server's effective state; on change tell the engine and
 * rebuild the table. Only the changed server's share of new placements
 * moves (Maglev); existing clients of other servers keep their state. */
static int reapply(struct runtime *rt, int svc, int srv, uint64_t now_ms)
{
	struct rt_server *r = &rt->svc[svc].servers[srv];
	int eff = server_eff(r);
	bool changed = eff != r->effective;

	if (changed) {
		note_change(rt, svc, srv, eff, now_ms);
		int rc = push_state(rt, svc, srv);
		if (rc < 0)
			return rc;
	}
	int rc = sched_view(rt, svc);
	if (rc < 0)
		return rc;
	if ((rc > 0 || (changed && sched_kind(rt->svc[svc].sched) == CFG_SCHED_FO)) &&
	    push_table(rt, svc) < 0)
		return -EIO;
	return push_sched(rt, svc);
}

int rt_set_admin(struct runtime *rt, int svc, int srv, enum cfg_server_state st, uint64_t now_ms)
{
	rt->svc[svc].servers[srv].admin = st;
	return reapply(rt, svc, srv, now_ms);
}

int rt_set_weight(struct runtime *rt, int svc, int srv, uint32_t weight, uint64_t now_ms)
{
	if (weight > CFG_WEIGHT_MAX) {
		log_err(rt->log, "service %s: weight %u is above %u", svc_name(rt, svc), weight,
			CFG_WEIGHT_MAX);
		return -EINVAL;
	}
	rt->svc[svc].servers[srv].weight = weight;
	return reapply(rt, svc, srv, now_ms);
}

int rt_set_health(struct runtime *rt, int svc, int srv, bool up, uint64_t now_ms)
{
	struct rt_server *r = &rt->svc[svc].servers[srv];
	enum health_state h = up ? HEALTH_UP : HEALTH_DOWN;
	if (r->health == h)
		return 0;
	if (!up)
		r->down_events++;
	r->health = h;
	return reapply(rt, svc, srv, now_ms);
}

int rt_restore_health(struct runtime *rt, int svc, int srv, enum health_state h)
{
	struct rt_server *r = &rt->svc[svc].servers[srv];
	r->health = h;
	r->effective = server_eff(r);
	int rc = sched_view(rt, svc);
	return rc < 0 ? rc : 0;
}

/* The API verb that sets admin state st, for "drain kept (set by API)". */
static const char *admin_verb(enum cfg_server_state st)
{
	return st == CFG_SRV_DRAINING ? "drain" : st == CFG_SRV_DISABLED ? "disable" : "enable";
}

/* Appends ", " and a formatted part to msg. */
static void msg_add(char *msg, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void msg_add(char *msg, size_t len, const char *fmt, ...)
{
	size_t n = strlen(msg);
	if (n && n + 2 < len) {
		memcpy(msg + n, ", ", 3);
		n += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, len - n, fmt, ap);
	va_end(ap);
}

int rt_reload_server(struct runtime *rt, int svc, int srv, const struct rt_server *old,
		     const struct cfg_server *file, uint64_t now_ms, char *msg, size_t len)
{
	struct rt_server *r = &rt->svc[svc].servers[srv];
	bool file_w = file->weight != old->file_weight, file_a = file->state != old->file_admin;
	uint32_t w = file_w ? file->weight : old->weight;
	enum cfg_server_state a = file_a ? file->state : old->admin;
	int rc = 0;

	msg[0] = 0;
	r->file_weight = file->weight;
	r->file_admin = file->state;
	r->init_down = file->init_down;
	if (file_w)
		msg_add(msg, len, "weight %u -> %u (file)", old->weight, w);
	else if (old->weight != old->file_weight)
		msg_add(msg, len, "weight %u kept (set by API)", w);
	if (file_a)
		msg_add(msg, len, "%s -> %s (file)", cfg_server_state_name(old->admin),
			cfg_server_state_name(a));
	else if (old->admin != old->file_admin)
		msg_add(msg, len, "%s kept (set by API)", admin_verb(a));
	if (r->weight != w && rt_set_weight(rt, svc, srv, w, now_ms) < 0)
		rc = -EIO;
	if (r->admin != a && rt_set_admin(rt, svc, srv, a, now_ms) < 0)
		rc = -EIO;
	/* init_state may have changed: recompute (a no-op otherwise). */
	if (server_eff(r) != r->effective && reapply(rt, svc, srv, now_ms) < 0)
		rc = -EIO;
	return rc < 0 ? rc : msg[0] != 0;
}

int rt_pick(struct runtime *rt, int svc, const struct ikelb_addr *client)
{
	pthread_mutex_lock(rt->mu);
	int i = sched_pick(rt->svc[svc].sched, client, 0);
	pthread_mutex_unlock(rt->mu);
	return i;
}

void rt_conn_inc(struct runtime *rt, int svc, int srv)
{
	pthread_mutex_lock(rt->mu);
	sched_conn_inc(rt->svc[svc].sched, (size_t)srv);
	pthread_mutex_unlock(rt->mu);
}

void rt_conn_dec(struct runtime *rt, int svc, int srv)
{
	pthread_mutex_lock(rt->mu);
	sched_conn_dec(rt->svc[svc].sched, (size_t)srv);
	pthread_mutex_unlock(rt->mu);
}

const uint32_t *rt_maglev_table(const struct runtime *rt, int svc, uint32_t *m)
{
	return sched_maglev_table(rt->svc[svc].sched, m);
}

const char *rt_effective_name(int eff)
{
	switch (eff) {
	case REAL_ACTIVE: return "active";
	case REAL_DRAINING: return "draining";
	default: return "down";
	}
}

int rt_tick(struct runtime *rt, uint64_t now_ms)
{
	int rc = 0;
	for (int i = 0; i < rt->cfg->nservices; i++) {
		bool moved = false;
		for (int j = 0; j < rt->cfg->services[i].nservers; j++) {
			struct rt_server *r = &rt->svc[i].servers[j];
			if (!r->ramp)
				continue;
			uint32_t p = rt->cfg->services[i].servers[j].slow_start_ms;
			uint32_t next = p ? ramp_at(p, now_ms - r->ramp_start_ms) : 0;
			moved |= next != r->ramp;
			r->ramp = next;
		}
		if (!moved)
			continue;
		int sv = sched_view(rt, i);
		if (sv < 0 || (sv > 0 && push_table(rt, i) < 0) || push_sched(rt, i) < 0)
			rc = -EIO;
	}
	return rc;
}

uint32_t rt_effective_weight(const struct runtime *rt, int svc, int srv)
{
	pthread_mutex_lock(rt->mu);
	uint32_t w = sched_eff_weight(rt->svc[svc].sched, (size_t)srv);
	pthread_mutex_unlock(rt->mu);
	return w;
}

uint32_t rt_slow_start_left_s(const struct runtime *rt, int svc, int srv, uint64_t now_ms)
{
	const struct rt_server *r = &rt->svc[svc].servers[srv];
	uint64_t end = r->ramp_start_ms + rt->cfg->services[svc].servers[srv].slow_start_ms;
	if (!r->ramp || now_ms >= end)
		return 0;
	return (uint32_t)((end - now_ms + 999) / 1000);
}

void rt_conn_set(struct runtime *rt, int svc, int srv, uint64_t n)
{
	pthread_mutex_lock(rt->mu);
	sched_conn_set(rt->svc[svc].sched, (size_t)srv, n);
	pthread_mutex_unlock(rt->mu);
}

bool rt_full(struct runtime *rt, int svc, int srv)
{
	pthread_mutex_lock(rt->mu);
	bool f = sched_full(rt->svc[svc].sched, (size_t)srv);
	pthread_mutex_unlock(rt->mu);
	return f;
}

int rt_pick_room(struct runtime *rt, int svc)
{
	pthread_mutex_lock(rt->mu);
	int i = sched_pick_room(rt->svc[svc].sched);
	pthread_mutex_unlock(rt->mu);
	return i;
}
