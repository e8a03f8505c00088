/* The bpf engine's own API (bpf_engine.h) is wider than the daemon needs;
 * this adapter maps it onto engine_ops, and does what running the kernel
 * data path asks of the host (forwarding sysctls, libbpf's log hook). */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "engine/bpf_engine.h"
#include "engine/engine.h"

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
	int rc = bpf_engine_sweep(a->be, (uint32_t)clock_mono_s(), a->usage, &st);
	return rc < 0 ? rc : (long)(st.expired + st.purged);
}

static long bpf_sweep(struct engine *e, uint64_t now_s)
{
	struct bpf_adapter *a = ad(e);
	(void)now_s; /* the BPF side stamps with its own monotonic clock */
	long n = walk(a);
	if (n < 0)
		return n;
	n += (long)a->removed_unreported;
	a->removed_unreported = 0;
	return n;
}

static void read_server(struct bpf_adapter *a, int i, int j, struct eng_srv_stats *s, int *err)
{
	struct ctr c[SVC_CTR__MAX];
	int id = bpf_engine_real_id(a->be, i, j);
	if (id < 0)
		return;
	int rc = bpf_engine_real_counters(a->be, (uint32_t)id, c);
	if (rc == 0) {
		s->pkts = c[0].packets;
		s->bytes = c[0].bytes;
	} else if (!*err)
		*err = rc;
	const struct bpf_real_usage *u = &a->usage[id];
	s->clients = a->cfg->services[i].persistence.mode == CFG_PERSIST_IKE
			     ? (uint64_t)u->sa + u->halfopen
			     : u->persist;
	s->flows = u->flows;
}

/* Fills what it can read; the first error is returned, and the counters
 * it could not read keep their last values. */
static int bpf_read_stats(struct engine *e, struct eng_stats *out)
{
	struct bpf_adapter *a = ad(e);
	struct ctr c[SVC_CTR__MAX];

	/* Client counts come from a map walk, done for every read so status
	 * is exact; what it expires is reported with the next sweep(). */
	long n = walk(a);
	int err = n < 0 ? (int)n : 0;
	if (n > 0)
		a->removed_unreported += (uint64_t)n;
	for (int i = 0; i < a->cfg->nservices && i < out->nsvc; i++) {
		int rc = bpf_engine_svc_counters(a->be, i, c);
		for (int k = 0; rc == 0 && k < SVC_CTR__MAX; k++) {
			out->svc[i].pkts[k] = c[k].packets;
			out->svc[i].bytes[k] = c[k].bytes;
		}
		if (rc < 0 && !err)
			err = rc;
		for (int j = 0; j < a->cfg->services[i].nservers; j++)
			read_server(a, i, j, &out->srv[i][j], &err);
	}
	bpf_engine_table_stats(a->be, out->tables);
	out->ntables = TBL__MAX;
	return err;
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

static void adapter_free(struct bpf_adapter *a)
{
	if (a->be)
		bpf_engine_close(a->be, false);
	free(a->usage);
	free(a);
}

static void bpf_close(struct engine *e, bool keep_state)
{
	struct bpf_adapter *a = ad(e);
	/* keep_state: leave the program attached so forwarding continues on
	 * the last tables (upgrade/restart); otherwise detach. Learned state
	 * stays pinned either way for the next start. */
	if (a->attached && !keep_state)
		bpf_engine_detach(a->be);
	adapter_free(a);
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

/* Routing sysctls dnat needs: the balancer forwards between its arms.
 * Not fatal: a host may already forward, or set it by other means, and a
 * read-only /proc (containers) must not stop the daemon. */
static void write_sysctl(const struct logger *log, const char *path, const char *val)
{
	FILE *f = fopen(path, "w");
	int ok = f && fputs(val, f) >= 0;
	if (f && fclose(f) != 0)
		ok = 0;
	if (!ok)
		log_warn(log, "cannot set %s to %s: %s", path, val, strerror(errno));
}

/* libbpf warns when the clsact qdisc already exists (we reuse it on
 * purpose); everything else it says is worth seeing. libbpf takes one
 * process-wide print callback without a context pointer, so this hook is
 * the one global of the engine. */
static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	if (lvl == LIBBPF_DEBUG || strstr(fmt, "Exclusivity flag on"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Loads the program (reusing pinned state unless flush) and gives it cfg. */
static int load(struct bpf_adapter *a, const struct cfg *cfg, bool flush)
{
	int rc = bpf_engine_open(&a->be, cfg, a->log);
	if (rc == 0 && flush) {
		log_notice(a->log, "--flush-state: dropping learned state");
		bpf_engine_close(a->be, true);
		a->be = NULL;
		rc = bpf_engine_open(&a->be, cfg, a->log);
	}
	if (rc == 0)
		rc = bpf_engine_sync(a->be, cfg);
	if (rc == 0)
		rc = bpf_engine_refresh_local_addrs(a->be);
	return rc;
}

int bpf_adapter_open(struct engine *e, const struct cfg *cfg, const struct logger *log,
		     bool flush_state)
{
	libbpf_set_print(libbpf_print);
	struct bpf_adapter *a = calloc(1, sizeof(*a));
	if (!a || !(a->usage = calloc(IKELB_MAX_REALS, sizeof(*a->usage)))) {
		free(a);
		log_err(log, "bpf: out of memory");
		return -ENOMEM;
	}
	a->cfg = cfg;
	a->log = log;
	int rc = load(a, cfg, flush_state);
	if (rc < 0) {
		adapter_free(a);
		return rc;
	}
	write_sysctl(log, "/proc/sys/net/ipv4/ip_forward", "1");
	write_sysctl(log, "/proc/sys/net/ipv6/conf/all/forwarding", "1");
	e->ops = &bpf_ops;
	e->impl = a;
	return 0;
}
