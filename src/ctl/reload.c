#include "ctl/reload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdarg.h>

#include "core/clock.h"

enum shape { SHAPE_SAME, SHAPE_NEW, SHAPE_RESTART };

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* A kernel state table the running bpf engine created at its minimum size
 * because no service could use it (cfg_uses_*_table) that the new
 * configuration needs: only a restart creates it at full size. The socket
 * engine sizes its user-space tables for every mode, so it reloads such a
 * change. */
static bool table_needs_restart(const struct cfg *a, const struct cfg *b, const char **why,
				const char **hint)
{
	if (a->engine != CFG_ENGINE_BPF)
		return false;
	if (!cfg_uses_persist_table(a) && cfg_uses_persist_table(b)) {
		*why = "persistence.mode";
		*hint = " (source-ip: the persistence table was created at its minimum size, "
			"no service used it)";
	} else if (!cfg_uses_tcp_table(a) && cfg_uses_tcp_table(b)) {
		*why = "tcp_ports";
		*hint = " (the TCP connection table was created at its minimum size, "
			"no service had tcp_ports)";
	} else {
		return false;
	}
	return true;
}

/* What needs a restart, whatever the engine: these size or place the
 * data path or the API. *why names the first difference, *hint may say
 * more. */
static bool needs_restart(const struct cfg *a, const struct cfg *b, const char **why,
			  const char **hint)
{
	*hint = "";
	if (table_needs_restart(a, b, why, hint))
		return true;
	if (a->engine != b->engine)
		*why = "engine";
	else if (!str_eq(a->api_listen, b->api_listen))
		*why = "api.listen";
	else if (!str_eq(a->api_token_file, b->api_token_file))
		*why = "api.token_file";
	else if (a->api_idle_timeout_ms != b->api_idle_timeout_ms)
		*why = "api.idle_timeout";
	else if (!str_eq(a->bpf_pin_dir, b->bpf_pin_dir))
		*why = "bpf.pin_dir";
	else if (a->bpf_attach != b->bpf_attach)
		*why = "bpf.attach";
	else if (!str_eq(a->server_state_file, b->server_state_file))
		*why = "server_state_file";
	else if (a->max_clients != b->max_clients || a->max_flows != b->max_flows ||
		 a->max_halfopen != b->max_halfopen)
		*why = "limits";
	else if (a->sock_workers != b->sock_workers || a->sock_coalesce_us != b->sock_coalesce_us)
		*why = "socket";
	else if (a->ninterfaces != b->ninterfaces ||
		 memcmp(a->interfaces, b->interfaces, sizeof(a->interfaces)))
		*why = "interfaces";
	else
		return false;
	return true;
}

static bool server_same(const struct cfg_server *a, const struct cfg_server *b)
{
	return str_eq(a->name, b->name) && ikelb_addr_eq(&a->addr, &b->addr) &&
	       a->has_spi_label == b->has_spi_label && a->spi_label == b->spi_label &&
	       a->has_esp_range == b->has_esp_range && a->esp_spi_min == b->esp_spi_min &&
	       a->esp_spi_max == b->esp_spi_max;
}

/* Same services and servers, so only weights, admin states and health
 * settings may differ. */
static bool service_same(const struct cfg_service *a, const struct cfg_service *b)
{
	if (!str_eq(a->name, b->name) || !ikelb_addr_eq(&a->vip, &b->vip) ||
	    a->nports != b->nports || memcmp(a->ports, b->ports, sizeof(a->ports)) ||
	    a->ntcp_ports != b->ntcp_ports ||
	    memcmp(a->tcp_ports, b->tcp_ports, sizeof(a->tcp_ports)) ||
	    a->ike_port != b->ike_port || a->forwarding != b->forwarding ||
	    memcmp(&a->persistence, &b->persistence, sizeof(a->persistence)) ||
	    a->scheduler != b->scheduler || a->maglev_size != b->maglev_size ||
	    a->spi_mask != b->spi_mask || a->nsnat_pool != b->nsnat_pool ||
	    memcmp(a->snat_pool, b->snat_pool, sizeof(a->snat_pool)) ||
	    memcmp(&a->admission, &b->admission, sizeof(a->admission)) ||
	    a->nservers != b->nservers)
		return false;
	/* Capacity and slow start live in the configuration the runtime
	 * reads: a change takes the new-shape path (state carried over). */
	for (int j = 0; j < a->nservers; j++)
		if (!server_same(&a->servers[j], &b->servers[j]) ||
		    a->servers[j].max_clients != b->servers[j].max_clients ||
		    a->servers[j].slow_start_ms != b->servers[j].slow_start_ms)
			return false;
	return true;
}

static enum shape compare(const struct cfg *a, const struct cfg *b, const char **why,
			  const char **hint)
{
	if (needs_restart(a, b, why, hint))
		return SHAPE_RESTART;
	if (a->nservices != b->nservices || a->maglev_seed != b->maglev_seed)
		return SHAPE_NEW;
	for (int i = 0; i < a->nservices; i++)
		if (!service_same(&a->services[i], &b->services[i]))
			return SHAPE_NEW;
	return SHAPE_SAME;
}

static bool health_same(const struct cfg_health *a, const struct cfg_health *b)
{
	return a->type == b->type && a->interval_ms == b->interval_ms &&
	       a->timeout_ms == b->timeout_ms && a->rise == b->rise && a->fall == b->fall &&
	       a->port == b->port && a->send_len == b->send_len &&
	       a->expect_len == b->expect_len &&
	       (!a->send_len || !memcmp(a->send, b->send, a->send_len)) &&
	       (!a->expect_len || !memcmp(a->expect, b->expect, a->expect_len));
}

/* Health settings move into the running configuration by swapping, so the
 * new configuration's cfg_free releases the old payload buffers. The
 * engines never read them. */
static bool take_health(struct cfg *cur, struct cfg *nc)
{
	bool changed = false;
	for (int i = 0; i < cur->nservices; i++) {
		struct cfg_health *a = &cur->services[i].health, *b = &nc->services[i].health;
		if (health_same(a, b))
			continue;
		struct cfg_health t = *a;
		*a = *b;
		*b = t;
		changed = true;
	}
	return changed;
}

/* A line for the caller (the API's "changes"), also logged. */
static void change(const struct reload_target *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void change(const struct reload_target *t, const char *fmt, ...)
{
	struct ctl_reload_result *r = t->res;
	char line[CTL_RELOAD_LINE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_notice(t->log, "reload: %s", line);
	if (r->nchanges < CTL_RELOAD_LINES)
		snprintf(r->changes[r->nchanges], CTL_RELOAD_LINE, "%s", line);
	r->nchanges++;
}

/* Why the reload was refused, for the caller (the daemon log has it too). */
static void refuse(const struct reload_target *t, const char *msg)
{
	struct ctl_reload_result *r = t->res;
	if (r->nerrors < CTL_RELOAD_LINES)
		snprintf(r->errors[r->nerrors], CTL_RELOAD_LINE, "%s", msg);
	r->nerrors++;
}

/* One server that stays: the file's admin state and weight against what
 * ran (rt_reload_server keeps API overrides the file did not touch). */
static int reload_server(const struct reload_target *t, struct runtime *rt, int svc, int srv,
			 const struct rt_server *old, const struct cfg_server *file)
{
	char msg[CTL_RELOAD_LINE - 64];
	int rc = rt_reload_server(rt, svc, srv, old, file, clock_mono_ms(), msg, sizeof(msg));
	if (rc > 0)
		change(t, "%s/%s %s", rt->cfg->services[svc].name, file->name, msg);
	return rc < 0 ? rc : 0;
}

/* Same services and servers: weights and admin states in place. What the
 * operator set through the API survives unless the file changed it. */
static int apply_in_place(const struct reload_target *t, struct cfg *nc)
{
	int rc = 0, n0 = t->res->nchanges;

	for (int i = 0; i < nc->nservices; i++) {
		for (int j = 0; j < nc->services[i].nservers; j++) {
			const struct rt_server old = t->rt->svc[i].servers[j];
			if (reload_server(t, t->rt, i, j, &old, &nc->services[i].servers[j]) < 0)
				rc = -EIO;
		}
	}
	int n = t->res->nchanges - n0;
	bool health = take_health(t->cfg, nc);
	if (health && daemon_health_restart(t->health) < 0)
		rc = -EIO;
	if (health)
		change(t, "health checks restarted");
	log_notice(t->log, "reload: %d weight/state change(s)%s%s", n,
		   health ? ", health checks restarted" : "", rc ? " (with errors, see above)" : "");
	return rc;
}

/* The same server (name, address, labels) in service `svc` of c. */
static bool find_server(const struct cfg *c, const char *svc, const struct cfg_server *srv,
			int *k, int *m)
{
	for (*k = 0; *k < c->nservices; (*k)++) {
		if (!str_eq(c->services[*k].name, svc))
			continue;
		for (*m = 0; *m < c->services[*k].nservers; (*m)++)
			if (server_same(&c->services[*k].servers[*m], srv))
				return true;
		return false; /* service names are unique */
	}
	return false;
}

/* Servers that stay (same service and server name, same address) keep
 * their health, so a reload does not resurrect a dead server, and what the
 * API set (reload_server). New servers start unknown. */
static int carry_over(const struct reload_target *t, struct runtime *nrt, const struct cfg *nc)
{
	const struct cfg *oc = t->cfg;
	int k, m, rc = 0;
	for (int i = 0; i < nc->nservices; i++) {
		for (int j = 0; j < nc->services[i].nservers; j++) {
			const struct cfg_server *s = &nc->services[i].servers[j];
			if (!find_server(oc, nc->services[i].name, s, &k, &m)) {
				change(t, "%s/%s added (health %s)", nc->services[i].name, s->name,
				       health_state_name(nrt->svc[i].servers[j].health));
				continue;
			}
			const struct rt_server *old = &t->rt->svc[k].servers[m];
			rt_restore_health(nrt, i, j, old->health);
			if (reload_server(t, nrt, i, j, old, s) < 0)
				rc = -EIO;
		}
	}
	for (int i = 0; i < oc->nservices; i++)
		for (int j = 0; j < oc->services[i].nservers; j++)
			if (!find_server(nc, oc->services[i].name, &oc->services[i].servers[j], &k, &m))
				change(t, "%s/%s removed", oc->services[i].name,
				       oc->services[i].servers[j].name);
	return rc;
}

/* The engine takes nc first; only when it has are the model and the
 * counters rebuilt for it. */
static int engine_take(const struct reload_target *t, const struct cfg *nc)
{
	int rc = engine_reconfigure(t->eng, nc);
	if (rc == -EOPNOTSUPP) {
		log_err(t->log, "reload: the %s engine cannot add, remove or change services or "
				"servers at run time; restart ikelb", t->eng->ops->name);
		refuse(t, "the engine cannot add, remove or change services or servers at run "
			  "time; restart ikelb");
		return rc;
	}
	if (rc < 0) {
		log_err(t->log, "reload: the engine refused the new configuration; "
				"keeping the running one");
		refuse(t, "the engine refused the new configuration (see the daemon log)");
		if (engine_reconfigure(t->eng, t->cfg) < 0)
			log_err(t->log, "reload: the engine did not take the running configuration "
					"back either; restart ikelb");
	}
	return rc;
}

/* After the engine runs nc: the model, counters and checks follow. */
static int switch_model(const struct reload_target *t, struct cfg *nc, struct runtime *nrt,
			struct eng_stats *nst)
{
	int crc = carry_over(t, nrt, nc);
	rt_free(t->rt);
	eng_stats_free(t->stats);
	cfg_free(t->cfg);
	*t->cfg = *nc;
	memset(nc, 0, sizeof(*nc));
	*t->rt = *nrt;
	t->rt->cfg = t->cfg;
	*t->stats = *nst;
	int rc = rt_sync_all(t->rt) < 0 || crc < 0 ? -EIO : 0;
	if (daemon_health_start(t->health) < 0)
		rc = -EIO;
	log_notice(t->log, "reload: now %d service(s)%s", t->cfg->nservices,
		   rc ? " (with errors, see above)" : "");
	return rc;
}

static int apply_new_shape(const struct reload_target *t, struct cfg *nc)
{
	struct runtime nrt;
	struct eng_stats nst;

	if (eng_stats_alloc(&nst, nc) < 0) {
		log_err(t->log, "reload: out of memory");
		return -ENOMEM;
	}
	int rc = engine_take(t, nc);
	if (rc < 0) {
		eng_stats_free(&nst);
		return rc;
	}
	/* Point of no return: the engine runs the new configuration. */
	daemon_health_stop(t->health);
	const struct rt_ops ops = eng_rt_ops(t->eng);
	if (rt_init(&nrt, nc, t->log, &ops) < 0) {
		log_err(t->log, "reload: out of memory building the new model; restart ikelb");
		eng_stats_free(&nst);
		return -ENOMEM;
	}
	return switch_model(t, nc, &nrt, &nst);
}

static int load(const struct reload_target *t, struct cfg *nc)
{
	struct cfg_errors errs = { 0 };
	int rc = cfg_load_file(t->config_path, nc, &errs);
	for (int i = 0; i < errs.n; i++) {
		log_err(t->log, "%s", errs.v[i].msg);
		refuse(t, errs.v[i].msg);
	}
	if (rc < 0 && !errs.n)
		refuse(t, "cannot load the configuration file (see the daemon log)");
	cfg_errors_free(&errs);
	if (rc < 0)
		log_err(t->log, "reload: configuration invalid; keeping the running one");
	return rc < 0 ? -EINVAL : 0;
}

static int reload_shape(const struct reload_target *t, struct cfg *nc)
{
	const char *why = NULL, *hint = "";
	char msg[CTL_RELOAD_LINE];

	switch (compare(t->cfg, nc, &why, &hint)) {
	case SHAPE_RESTART:
		log_err(t->log, "reload: '%s' changed, which needs a restart%s; "
				"keeping the running configuration", why, hint);
		snprintf(msg, sizeof(msg), "'%s' changed, which needs a restart%s", why, hint);
		refuse(t, msg);
		return -EPERM;
	case SHAPE_SAME:
		return apply_in_place(t, nc);
	default:
		return apply_new_shape(t, nc);
	}
}

int reload_config(const struct reload_target *t)
{
	struct cfg nc;

	memset(t->res, 0, sizeof(*t->res));
	log_notice(t->log, "reload: reading %s", t->config_path);
	int rc = load(t, &nc);
	if (rc == 0)
		rc = reload_shape(t, &nc);
	cfg_free(&nc);
	t->res->ok = rc == 0;
	if (rc < 0 && !t->res->nerrors)
		refuse(t, "applied with errors (see the daemon log)");
	return rc;
}

void reload_note(struct ctl_reload_info *last, const struct ctl_reload_result *res)
{
	last->at = (int64_t)time(NULL);
	last->ok = res->ok;
	last->changes = res->nchanges;
	snprintf(last->message, sizeof(last->message), "%s",
		 res->nerrors ? res->errors[0] : res->ok ? "applied" : "not applied");
}
