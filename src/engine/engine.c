#include "engine/engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sock_engine.h"

int engine_open(struct engine *e, const struct cfg *cfg, const struct logger *log,
		const struct engine_open_opts *o)
{
	bool flush = o && o->flush_state;

	memset(e, 0, sizeof(*e));
	if (cfg->engine == CFG_ENGINE_BPF)
		return bpf_adapter_open(e, cfg, log, flush);
	if (!o || !o->rt) {
		log_err(log, "socket engine: no runtime to schedule new clients with");
		return -EINVAL;
	}
	/* User-space state dies with the process: nothing to flush. */
	return sock_engine_open(o->rt, log, e) < 0 ? -EINVAL : 0;
}

int engine_reconfigure(struct engine *e, const struct cfg *cfg)
{
	if (!e->ops->reconfigure)
		return -EOPNOTSUPP;
	int rc = e->ops->reconfigure(e, cfg);
	return rc < 0 ? rc : 0;
}

static int rt_set_table(void *ctx, int svc, const uint32_t *table, uint32_t m)
{
	struct engine *e = ctx;
	return e->ops->set_table(e, svc, table, m);
}

static int rt_set_server_state(void *ctx, int svc, int srv, int state)
{
	struct engine *e = ctx;
	return e->ops->set_server_state(e, svc, srv, state);
}

static int rt_set_sched(void *ctx, int svc, const struct rt_sched_view *v)
{
	struct engine *e = ctx;
	return e->ops->set_sched ? e->ops->set_sched(e, svc, v) : 0;
}

struct rt_ops eng_rt_ops(struct engine *e)
{
	return (struct rt_ops){ .ctx = e, .set_table = rt_set_table,
				.set_server_state = rt_set_server_state, .set_sched = rt_set_sched };
}

int eng_stats_alloc(struct eng_stats *st, const struct cfg *cfg)
{
	memset(st, 0, sizeof(*st));
	st->nsvc = cfg->nservices;
	for (int i = 0; i < cfg->nservices; i++) {
		int n = cfg->services[i].nservers;
		st->srv[i] = calloc(n > 0 ? (size_t)n : 1, sizeof(*st->srv[i]));
		if (!st->srv[i]) {
			eng_stats_free(st);
			return -ENOMEM;
		}
	}
	return 0;
}

void eng_stats_free(struct eng_stats *st)
{
	for (int i = 0; i < CFG_MAX_SERVICES; i++) {
		free(st->srv[i]);
		st->srv[i] = NULL;
	}
}
