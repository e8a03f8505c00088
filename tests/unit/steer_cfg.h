/* Configurations built in code for the steering and socket engine tests
 * (test_steer.c, test_steer_diff.c, test_sock_engine.c). Header-only so it
 * is not linked into unrelated test binaries. */
#ifndef IKELB_TEST_STEER_CFG_H
#define IKELB_TEST_STEER_CFG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/runtime.h"
#include "core/scheduler.h"
#include "core/steer.h"

/* One service "vpn" on vip with ports {p500, p4500} and n servers named
 * s0..s(n-1) at addr_fmt % (first + i). The caller adjusts fields and frees
 * with cfg_free (servers/services are heap-allocated like the loader's). */
static inline int tcfg_build(struct cfg *c, const char *vip, uint16_t p500, uint16_t p4500,
			     int n, const char *addr_fmt, int first)
{
	cfg_defaults(c);
	c->maglev_seed = 0x1c3e5eedULL;
	c->services = calloc(1, sizeof(*c->services));
	if (!c->services)
		return -1;
	c->nservices = 1;
	struct cfg_service *s = &c->services[0];
	cfg_service_defaults(s);
	snprintf(s->name, sizeof(s->name), "vpn");
	if (ikelb_addr_parse(vip, &s->vip) < 0)
		return -1;
	s->ports[0] = p500;
	s->ports[1] = p4500;
	s->nports = 2;
	s->maglev_size = 1009;
	s->servers = calloc((size_t)n, sizeof(*s->servers));
	if (!s->servers)
		return -1;
	s->nservers = n;
	for (int i = 0; i < n; i++) {
		char ip[64];
		cfg_server_defaults(&s->servers[i]);
		/* These configurations steer at once; init_state is tested
		 * in test_sched.c. */
		s->servers[i].init_down = false;
		snprintf(s->servers[i].name, sizeof(s->servers[i].name), "s%d", i);
		snprintf(ip, sizeof(ip), addr_fmt, first + i);
		if (ikelb_addr_parse(ip, &s->servers[i].addr) < 0)
			return -1;
	}
	return 0;
}

static inline int tcfg_noop_table(void *ctx, int svc, const uint32_t *t, uint32_t m)
{
	(void)ctx, (void)svc, (void)t, (void)m;
	return 0;
}

static inline int tcfg_noop_state(void *ctx, int svc, int srv, int state)
{
	(void)ctx, (void)svc, (void)srv, (void)state;
	return 0;
}

/* A runtime for tests that only read it: no engine behind it. */
static inline int tcfg_rt_init(struct runtime *rt, const struct cfg *c, const struct logger *log)
{
	const struct rt_ops ops = { .set_table = tcfg_noop_table,
				    .set_server_state = tcfg_noop_state };
	return rt_init(rt, c, log, &ops);
}

static inline struct ikelb_addr tcfg_addr(const char *s)
{
	struct ikelb_addr a;
	memset(&a, 0, sizeof(a));
	if (ikelb_addr_parse(s, &a) < 0)
		abort();
	return a;
}

/* The Maglev table the daemon would push for service svc with the given
 * per-server REAL_* states (NULL = all active). Caller frees. */
static inline uint32_t *tcfg_table(const struct cfg *c, int svc, const int *states, uint32_t *m)
{
	const struct cfg_service *cs = &c->services[svc];
	struct sched *s = sched_new(CFG_SCHED_MAGLEV, cs->maglev_size, c->maglev_seed);
	struct sched_server *v = calloc((size_t)cs->nservers, sizeof(*v));
	uint32_t *out = NULL;
	if (!s || !v)
		goto done;
	for (int i = 0; i < cs->nservers; i++) {
		snprintf(v[i].name, sizeof(v[i].name), "%s", cs->servers[i].name);
		v[i].addr = cs->servers[i].addr;
		v[i].weight = cs->servers[i].weight;
		v[i].state = states ? (enum sched_state)states[i] : SCHED_SRV_ACTIVE;
	}
	if (sched_update(s, v, (size_t)cs->nservers) < 0)
		goto done;
	const uint32_t *t = sched_maglev_table(s, m);
	out = malloc((size_t)*m * sizeof(*out));
	if (out)
		memcpy(out, t, (size_t)*m * sizeof(*out));
done:
	free(v);
	sched_free(s);
	return out;
}

/* Runtime callbacks that program a steer directly, as the socket engine's
 * engine ops do; ctx is a struct steer ** that may still point at NULL
 * while the runtime is built before the steer. */
static inline int tsteer_set_table(void *ctx, int svc, const uint32_t *t, uint32_t m)
{
	struct steer **st = ctx;
	return *st ? steer_set_table(*st, svc, t, m) : 0;
}

static inline int tsteer_set_state(void *ctx, int svc, int srv, int state)
{
	struct steer **st = ctx;
	long rc = *st ? steer_set_state(*st, svc, srv, state) : 0;
	return rc < 0 ? (int)rc : 0;
}

static inline struct rt_ops tsteer_ops(struct steer **st)
{
	return (struct rt_ops){ .ctx = st, .set_table = tsteer_set_table,
				.set_server_state = tsteer_set_state };
}

#endif
