/* Opens the configured engine. The bpf engine's own API (bpf_engine.h) is
 * wider than the daemon needs; this adapter maps it onto engine_ops. */
#include "ctl/daemon_engine.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/daemon.h"
#include "engine/bpf_engine.h"
#include "engine/sock_engine.h"

struct bpf_adapter {
	struct bpf_engine *be;
	const struct cfg *cfg;
	const struct logger *log;
	struct bpf_real_usage *usage; /* IKELB_MAX_REALS, from the last sweep */
	uint64_t removed_unreported;  /* by stats reads, for the next sweep() */
	bool attached;
};

static struct bpf_adapter *ad(struct engine *e)
{
	return e->impl;
}

static int bpf_start(struct engine *e)
{
	int rc = bpf_engine_attach(ad(e)->be, ad(e)->cfg);
	ad(e)->attached = rc == 0;
	return rc;
}

static int bpf_set_table(struct engine *e, int svc, const uint32_t *t, uint32_t m)
{
	return bpf_engine_set_maglev_servers(ad(e)->be, svc, t, m);
}

static int bpf_set_state(struct engine *e, int svc, int srv, int state)
{
	return bpf_engine_set_real_state(ad(e)->be, svc, srv, state);
}

/* One walk of the state maps: expires idle entries and counts the live
 * ones per server (a->usage). */
static long walk(struct bpf_adapter *a)
{
	struct bpf_sweep_stats st = { 0 };
	if (bpf_engine_sweep(a->be, bpf_engine_now_s(), a->usage, &st) < 0)
		return -1;
	return (long)(st.expired + st.purged);
}

static long bpf_sweep(struct engine *e, uint64_t now_s)
{
	struct bpf_adapter *a = ad(e);
	(void)now_s; /* the BPF side stamps with its own monotonic clock */
	long n = walk(a);
	if (n < 0)
		return -1;
	n += (long)a->removed_unreported;
	a->removed_unreported = 0;
	return n;
}

static int bpf_read_stats(struct engine *e, struct eng_stats *out)
{
	struct bpf_adapter *a = ad(e);
	struct ctr c[SVC_CTR__MAX];

	/* Client counts come from a map walk, done for every read so status
	 * is exact; what it expires is reported with the next sweep(). */
	long n = walk(a);
	if (n > 0)
		a->removed_unreported += (uint64_t)n;
	for (int i = 0; i < a->cfg->nservices && i < out->nsvc; i++) {
		if (bpf_engine_svc_counters(a->be, i, c) == 0) {
			for (int k = 0; k < SVC_CTR__MAX; k++) {
				out->svc[i].pkts[k] = c[k].packets;
				out->svc[i].bytes[k] = c[k].bytes;
			}
		}
		for (int j = 0; j < a->cfg->services[i].nservers; j++) {
			struct eng_srv_stats *s = &out->srv[i][j];
			int id = bpf_engine_real_id(a->be, i, j);
			if (id < 0)
				continue;
			if (bpf_engine_real_counters(a->be, (uint32_t)id, c) == 0) {
				s->pkts = c[0].packets;
				s->bytes = c[0].bytes;
			}
			const struct bpf_real_usage *u = &a->usage[id];
			s->clients = a->cfg->services[i].persistence.mode == CFG_PERSIST_IKE
					     ? (uint64_t)u->sa + u->halfopen
					     : u->persist;
			s->flows = u->flows;
		}
	}
	return 0;
}

/* The adapter reads the daemon's struct cfg in place, which reload swaps
 * in after this succeeds; the BPF side copies what it needs. */
static int bpf_reconfigure(struct engine *e, const struct cfg *cfg)
{
	int rc = bpf_engine_sync(ad(e)->be, cfg);
	if (rc == 0)
		rc = bpf_engine_refresh_local_addrs(ad(e)->be);
	return rc;
}

static void bpf_close(struct engine *e, bool keep_state)
{
	struct bpf_adapter *a = ad(e);
	/* keep_state: leave the program attached so forwarding continues on
	 * the last tables (upgrade/restart); otherwise detach. Learned state
	 * stays pinned either way for the next start. */
	if (a->attached && !keep_state)
		bpf_engine_detach(a->be);
	bpf_engine_close(a->be, false);
	free(a->usage);
	free(a);
	e->impl = NULL;
}

static const struct engine_ops bpf_ops = {
	.name = "bpf",
	.start = bpf_start,
	.set_table = bpf_set_table,
	.set_server_state = bpf_set_state,
	.read_stats = bpf_read_stats,
	.sweep = bpf_sweep,
	.reconfigure = bpf_reconfigure,
	.close = bpf_close,
};

/* Routing sysctls dnat needs: the balancer forwards between its arms. */
static void write_sysctl(const struct logger *log, const char *path, const char *val)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(val, f) < 0)
		log_warn(log, "cannot set %s to %s: %s", path, val, strerror(errno));
	if (f)
		fclose(f);
}

/* libbpf warns when the clsact qdisc already exists (we reuse it on
 * purpose); everything else it says is worth seeing. */
static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	if (lvl == LIBBPF_DEBUG || strstr(fmt, "Exclusivity flag on"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int open_bpf(struct daemon *d)
{
	libbpf_set_print(libbpf_print);
	struct bpf_adapter *a = calloc(1, sizeof(*a));
	if (!a || !(a->usage = calloc(IKELB_MAX_REALS, sizeof(*a->usage)))) {
		free(a);
		return -1;
	}
	a->cfg = &d->cfg;
	a->log = &d->log;
	if (bpf_engine_open(&a->be, &d->cfg, &d->log) < 0)
		goto fail;
	if (d->opts.flush_state) {
		log_notice(&d->log, "--flush-state: dropping learned state");
		bpf_engine_close(a->be, true);
		a->be = NULL;
		if (bpf_engine_open(&a->be, &d->cfg, &d->log) < 0)
			goto fail;
	}
	if (bpf_engine_sync(a->be, &d->cfg) < 0 || bpf_engine_refresh_local_addrs(a->be) < 0)
		goto fail;
	write_sysctl(&d->log, "/proc/sys/net/ipv4/ip_forward", "1");
	write_sysctl(&d->log, "/proc/sys/net/ipv6/conf/all/forwarding", "1");
	d->eng.ops = &bpf_ops;
	d->eng.impl = a;
	d->have_engine = true;
	return 0;
fail:
	if (a->be)
		bpf_engine_close(a->be, false);
	free(a->usage);
	free(a);
	return -1;
}

int daemon_engine_open(struct daemon *d)
{
	if (d->cfg.engine == CFG_ENGINE_BPF)
		return open_bpf(d);
	if (sock_engine_open(&d->rt, &d->log, &d->eng) < 0)
		return -1;
	d->have_engine = true;
	return 0;
}
