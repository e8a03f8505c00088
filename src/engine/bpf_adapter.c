/* The bpf engine's own API (bpf_engine.h) is wider than the daemon needs;
 * this adapter maps it onto engine_ops, and does what running the kernel
 * data path asks of the host (forwarding sysctls, libbpf's log hook). */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "engine/bpf_engine.h"
#include "engine/dsr_check.h"
#include "engine/bpf_sync_state.h"
#include "engine/engine.h"

struct bpf_adapter {
	struct bpf_engine *be;
	const struct cfg *cfg;
	const struct logger *log;
	struct bpf_real_usage *usage; /* IKELB_MAX_REALS, from the last walk */
	int64_t *placed;              /* IKELB_MAX_REALS: client counts before a walk */
	uint32_t *addresses;          /* IKELB_MAX_REALS: distinct client addresses */
	struct bpfe_declog *declog;
	bool attached;
};

static struct bpf_adapter *ad(struct engine *e)
{
	return e->impl;
}

/* Walk the tables (sweep: expiring idle entries) and correct the data
 * path's client counts from what the walk found (maps.h, real_load). */
static int walk_reconcile(struct bpf_adapter *a, bool expire, struct bpf_sweep_stats *st)
{
	int rc = bpf_engine_load_placed(a->be, a->placed);
	if (rc == 0)
		rc = expire ? bpf_engine_sweep(a->be, bpf_engine_now_s(), a->usage, st)
			    : bpf_engine_count(a->be, bpf_engine_now_s(), a->usage);
	if (rc == 0)
		rc = bpf_engine_load_reconcile(a->be, a->cfg, a->placed, a->usage);
	return rc;
}

static int bpf_start(struct engine *e)
{
	/* Pinned state kept from a previous run counts at once. */
	int rc = walk_reconcile(ad(e), false, NULL);
	if (rc < 0)
		log_warn(ad(e)->log, "bpf: counting the clients kept failed: %s", strerror(-rc));
	rc = bpf_engine_attach(ad(e)->be, ad(e)->cfg);
	ad(e)->attached = rc == 0;
	return rc;
}

static int bpf_set_sched(struct engine *e, int svc, const struct rt_sched_view *v)
{
	return bpf_engine_set_sched(ad(e)->be, svc, v);
}

static int bpf_set_table(struct engine *e, int svc, const uint32_t *t, uint32_t m)
{
	return bpf_engine_set_maglev_servers(ad(e)->be, svc, t, m);
}

static int bpf_set_state(struct engine *e, int svc, int srv, int state)
{
	return bpf_engine_set_real_state(ad(e)->be, svc, srv, state);
}

static long bpf_set_evacuating(struct engine *e, int svc, int srv, bool on)
{
	return bpf_engine_set_evacuating(ad(e)->be, svc, srv, on);
}

/* The 1 s sweep: the only walk that expires idle entries. */
static long bpf_sweep(struct engine *e, uint64_t now_s)
{
	struct bpf_adapter *a = ad(e);
	struct bpf_sweep_stats st = { 0 };
	(void)now_s; /* the BPF side stamps with its own monotonic clock */
	bpf_engine_cookie_tick(a->be, bpf_engine_now_s());
	int rc = walk_reconcile(a, true, &st);
	return rc < 0 ? rc : (long)(st.expired + st.purged);
}

/* The per-server counters; the real id, or -1 when it has none. */
static int read_server_ctr(struct bpf_adapter *a, int i, int j, struct eng_srv_stats *s, int *err)
{
	struct ctr c, r[REAL_CTR__MAX];
	int id = bpf_engine_real_id(a->be, i, j);
	if (id < 0)
		return -1;
	int rc = bpf_engine_real_counters(a->be, (uint32_t)id, &c);
	if (rc == 0) {
		s->pkts = c.packets;
		s->bytes = c.bytes;
		rc = bpf_engine_real_replies(a->be, (uint32_t)id, r);
	}
	if (rc == 0) {
		s->reply_pkts = r[REAL_CTR_REPLY].packets;
		s->reply_bytes = r[REAL_CTR_REPLY].bytes;
		s->ike_pkts = r[REAL_CTR_IKE].packets;
	} else if (!*err)
		*err = rc;
	return id;
}

static void read_server(struct bpf_adapter *a, int i, int j, struct eng_srv_stats *s, int *err)
{
	int id = read_server_ctr(a, i, j, s, err);
	if (id < 0)
		return;
	const struct bpf_real_usage *u = &a->usage[id];
	s->clients = a->cfg->services[i].persistence.mode == CFG_PERSIST_IKE
			     ? (uint64_t)u->sa + u->halfopen
			     : u->persist;
	s->flows = u->flows;
	s->sas = u->sa;
	s->client_addresses = a->addresses[id];
}

/* Fills what it can read; the first error is returned, and the counters
 * it could not read keep their last values. */
static int bpf_read_stats(struct engine *e, struct eng_stats *out)
{
	struct bpf_adapter *a = ad(e);
	struct ctr c[SVC_CTR__MAX];

	/* Client counts come from a read-only map walk, done for every read
	 * so status is exact; expiry is left to the sweep. */
	int err = walk_reconcile(a, false, NULL);
	int rc2 = bpf_engine_client_addresses(a->be, a->addresses);
	if (!err)
		err = rc2;
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
	out->decision_log_dropped = bpfe_declog_dropped(a->declog);
	return err;
}

static int bpf_read_counters(struct engine *e, struct eng_stats *out)
{
	struct bpf_adapter *a = ad(e);
	int err = 0;

	for (int i = 0; i < a->cfg->nservices && i < out->nsvc; i++)
		for (int j = 0; out->srv[i] && j < a->cfg->services[i].nservers; j++)
			read_server_ctr(a, i, j, &out->srv[i][j], &err);
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
	bpfe_declog_close(a->declog);
	if (a->be)
		bpf_engine_close(a->be, false);
	free(a->usage);
	free(a->placed);
	free(a->addresses);
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

static int bpf_lookup(struct engine *e, const struct lk_query *q, lk_cb cb, void *ctx)
{
	return bpf_engine_lookup(ad(e)->be, q, cb, ctx);
}

static int bpf_sync_walk(struct engine *e, eng_sync_cb cb, void *ctx)
{
	return bpf_engine_sync_walk(ad(e)->be, (uint32_t)clock_mono_s(), cb, ctx);
}

static int bpf_sync_apply(struct engine *e, const struct eng_sync_entry *en)
{
	return bpf_engine_sync_apply(ad(e)->be, (uint32_t)clock_mono_s(), en);
}

static int bpf_set_decision_log(struct engine *e, bool on)
{
	return bpfe_declog_set(ad(e)->declog, on);
}

static int bpf_event_fd(struct engine *e)
{
	return bpfe_declog_fd(ad(e)->declog);
}

static void bpf_drain_events(struct engine *e)
{
	bpfe_declog_drain(ad(e)->declog);
}

static const struct engine_ops bpf_ops = {
	.name = "bpf",
	.start = bpf_start,
	.set_table = bpf_set_table,
	.set_server_state = bpf_set_state,
	.set_evacuating = bpf_set_evacuating,
	.read_stats = bpf_read_stats,
	.read_counters = bpf_read_counters,
	.lookup = bpf_lookup,
	.set_decision_log = bpf_set_decision_log,
	.event_fd = bpf_event_fd,
	.drain_events = bpf_drain_events,
	.sweep = bpf_sweep,
	.set_sched = bpf_set_sched,
	.reconfigure = bpf_reconfigure,
	.close = bpf_close,
	.sync_walk = bpf_sync_walk,
	.sync_apply = bpf_sync_apply,
};

/* dnat forwards between the balancer's arms, so the kernel must route the
 * families the services use; only those are switched on: forwarding on
 * all IPv6 interfaces also stops them accepting router advertisements.
 * A sysctl already on is left alone and not logged; every change is
 * logged with its old value, and is not undone at stop (another user of
 * forwarding may have come since). Not fatal: the host may forward by
 * other means, and a read-only /proc (containers) must not stop the
 * daemon. */
static void sysctl_on(const struct logger *log, const char *path)
{
	char old[16] = "";
	FILE *f = fopen(path, "r");
	if (f) {
		if (!fgets(old, sizeof(old), f))
			old[0] = '\0';
		fclose(f);
		old[strcspn(old, "\n")] = '\0';
		if (!strcmp(old, "1"))
			return;
	}
	f = fopen(path, "w");
	int ok = f && fputs("1", f) >= 0;
	if (f && fclose(f) != 0)
		ok = 0;
	if (!ok)
		log_warn(log, "cannot set %s to 1: %s", path, strerror(errno));
	else
		log_notice(log, "bpf: %s: %s -> 1 (forwarding for the configured services)",
			   path, old[0] ? old : "?");
}

static void forwarding_on(const struct cfg *cfg, const struct logger *log)
{
	bool v4 = false, v6 = false;
	for (int i = 0; i < cfg->nservices; i++) {
		if (ikelb_addr_is_v4(&cfg->services[i].vip))
			v4 = true;
		else
			v6 = true;
	}
	if (v4)
		sysctl_on(log, "/proc/sys/net/ipv4/ip_forward");
	if (v6)
		sysctl_on(log, "/proc/sys/net/ipv6/conf/all/forwarding");
}

/* libbpf takes one process-wide print callback without a context pointer,
 * so the logger it writes to is the one global of the engine. */
static const struct logger *libbpf_log;

/* libbpf's messages go through the daemon's logger (prefix, level). One
 * is expected and dropped: creating the clsact qdisc that a previous run
 * left (we reuse it on purpose; bpf_tc_hook_create returns -EEXIST) makes
 * the kernel answer "Exclusivity flag on, cannot modify", which libbpf
 * prints as an argument of its "Kernel error message: %s" format. */
static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	char buf[512];
	if (lvl == LIBBPF_DEBUG)
		return 0;
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0 || strstr(buf, "Exclusivity flag on"))
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	log_msg(libbpf_log, lvl == LIBBPF_WARN ? LOG_LVL_WARN : LOG_LVL_INFO, "%s", buf);
	return n;
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
	if (rc == 0)
		rc = bpfe_declog_open(&a->declog, a->be, cfg);
	return rc;
}

int bpf_adapter_open(struct engine *e, const struct cfg *cfg, const struct logger *log,
		     bool flush_state)
{
	libbpf_log = log;
	libbpf_set_print(libbpf_print);
	struct bpf_adapter *a = calloc(1, sizeof(*a));
	if (!a || !(a->usage = calloc(IKELB_MAX_REALS, sizeof(*a->usage))) ||
	    !(a->placed = calloc(IKELB_MAX_REALS, sizeof(*a->placed))) ||
	    !(a->addresses = calloc(IKELB_MAX_REALS, sizeof(*a->addresses)))) {
		if (a) {
			free(a->usage);
			free(a->placed);
		}
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
	forwarding_on(cfg, log);
	dsr_check_host(cfg, log);
	e->ops = &bpf_ops;
	e->impl = a;
	return 0;
}
