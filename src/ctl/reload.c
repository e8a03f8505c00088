#include "ctl/reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/daemon.h"
#include "ctl/daemon_health.h"

enum shape { SHAPE_SAME, SHAPE_NEW, SHAPE_RESTART };

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* What needs a restart, whatever the engine: these size or place the
 * data path or the API. *why names the first difference. */
static bool needs_restart(const struct cfg *a, const struct cfg *b, const char **why)
{
	if (a->engine != b->engine)
		*why = "engine";
	else if (!str_eq(a->api_listen, b->api_listen))
		*why = "api.listen";
	else if (!str_eq(a->bpf_pin_dir, b->bpf_pin_dir))
		*why = "bpf.pin_dir";
	else if (a->bpf_attach != b->bpf_attach)
		*why = "bpf.attach";
	else if (a->max_clients != b->max_clients || a->max_flows != b->max_flows ||
		 a->max_halfopen != b->max_halfopen)
		*why = "limits";
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
	    a->ike_port != b->ike_port || a->forwarding != b->forwarding ||
	    memcmp(&a->persistence, &b->persistence, sizeof(a->persistence)) ||
	    a->scheduler != b->scheduler || a->maglev_size != b->maglev_size ||
	    a->spi_mask != b->spi_mask || a->nsnat_pool != b->nsnat_pool ||
	    memcmp(a->snat_pool, b->snat_pool, sizeof(a->snat_pool)) ||
	    a->nservers != b->nservers)
		return false;
	for (int j = 0; j < a->nservers; j++)
		if (!server_same(&a->servers[j], &b->servers[j]))
			return false;
	return true;
}

static enum shape compare(const struct cfg *a, const struct cfg *b, const char **why)
{
	if (needs_restart(a, b, why))
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

/* Weights and admin states come from the file again: a reload makes the
 * running state what the configuration says (API changes are not saved). */
static int apply_in_place(struct daemon *d, struct cfg *nc)
{
	uint64_t now = daemon_now_ms();
	int rc = 0, n = 0;

	for (int i = 0; i < nc->nservices; i++) {
		for (int j = 0; j < nc->services[i].nservers; j++) {
			const struct cfg_server *s = &nc->services[i].servers[j];
			struct rt_server *r = &d->rt.svc[i].servers[j];
			if (r->weight != s->weight) {
				rc |= rt_set_weight(&d->rt, i, j, s->weight, now);
				n++;
			}
			if (r->admin != s->state) {
				rc |= rt_set_admin(&d->rt, i, j, s->state, now);
				n++;
			}
		}
	}
	bool health = take_health(&d->cfg, nc);
	if (health) {
		daemon_health_stop(d);
		if (daemon_health_start(d) < 0 || daemon_health_add_fds(d) < 0)
			rc = -1;
	}
	log_notice(&d->log, "reload: %d weight/state change(s)%s", n,
		   health ? ", health checks restarted" : "");
	return rc ? -1 : 0;
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

/* Health of servers that stay (same service and server name, same
 * address) carries over, so a reload does not resurrect a dead server. */
static void carry_health(struct runtime *nrt, const struct cfg *nc, const struct runtime *ort,
			 const struct cfg *oc)
{
	int k, m;
	for (int i = 0; i < nc->nservices; i++)
		for (int j = 0; j < nc->services[i].nservers; j++)
			if (find_server(oc, nc->services[i].name, &nc->services[i].servers[j], &k, &m))
				rt_restore_health(nrt, i, j, ort->svc[k].servers[m].health);
}

static int apply_new_shape(struct daemon *d, struct cfg *nc)
{
	struct runtime nrt;
	struct eng_stats nst;

	if (!d->eng.ops->reconfigure) {
		log_err(&d->log, "reload: the %s engine cannot add, remove or change services or "
				 "servers at run time; restart ikelb", d->eng.ops->name);
		return -1;
	}
	if (eng_stats_alloc(&nst, nc) < 0)
		return -1;
	if (d->eng.ops->reconfigure(&d->eng, nc) < 0) {
		log_err(&d->log, "reload: the engine refused the new configuration; "
				 "keeping the running one");
		d->eng.ops->reconfigure(&d->eng, &d->cfg);
		eng_stats_free(&nst);
		return -1;
	}
	/* Point of no return: the engine runs the new configuration. */
	daemon_health_stop(d);
	struct rt_ops ops = eng_rt_ops(&d->eng);
	if (rt_init(&nrt, nc, &d->log, &ops) < 0) {
		eng_stats_free(&nst);
		return -1;
	}
	carry_health(&nrt, nc, &d->rt, &d->cfg);
	rt_free(&d->rt);
	eng_stats_free(&d->stats);
	cfg_free(&d->cfg);
	d->cfg = *nc;
	memset(nc, 0, sizeof(*nc));
	d->rt = nrt;
	d->rt.cfg = &d->cfg;
	d->stats = nst;
	int rc = rt_sync_all(&d->rt);
	if (daemon_health_start(d) < 0 || daemon_health_add_fds(d) < 0)
		rc = -1;
	log_notice(&d->log, "reload: now %d service(s)%s", d->cfg.nservices,
		   rc ? " (with errors, see above)" : "");
	return rc;
}

int daemon_reload(struct daemon *d)
{
	struct cfg nc;
	struct cfg_errors errs = { 0 };
	const char *why = NULL;
	int rc;

	log_notice(&d->log, "reload: reading %s", d->opts.config_path);
	rc = cfg_load_file(d->opts.config_path, &nc, &errs);
	for (int i = 0; i < errs.n; i++)
		log_err(&d->log, "%s", errs.v[i].msg);
	cfg_errors_free(&errs);
	if (rc < 0) {
		log_err(&d->log, "reload: configuration invalid; keeping the running one");
		cfg_free(&nc);
		return -1;
	}
	switch (compare(&d->cfg, &nc, &why)) {
	case SHAPE_RESTART:
		log_err(&d->log, "reload: '%s' changed, which needs a restart; "
				 "keeping the running configuration", why);
		rc = -1;
		break;
	case SHAPE_SAME:
		rc = apply_in_place(d, &nc);
		break;
	default:
		rc = apply_new_shape(d, &nc);
	}
	cfg_free(&nc);
	return rc;
}
