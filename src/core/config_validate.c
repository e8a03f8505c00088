/* Cross checks of a parsed configuration: engine/forwarding combinations,
 * uniqueness (service names, VIP:port, server names, addresses, SPI labels),
 * ESP SPI range overlaps and Maglev table size. Only values that parsed
 * cleanly take part, so one typo yields one message. */
#include "core/config_int.h"

#include <stdio.h>
#include <string.h>

#define CFG_DEFAULT_SPI_MASK 0xff00000000000000ull

static yaml_node_t *srv_node(struct cfg_ctx *x, struct cfg_svc_state *st, int i)
{
	return cfg_seq_item(x, cfg_get(x, st->node, "servers"), i);
}

/* Prefer the key's value for the mark, fall back to the object itself. */
static yaml_node_t *at_key(struct cfg_ctx *x, yaml_node_t *map, const char *key)
{
	yaml_node_t *n = cfg_get(x, map, key);
	return n ? n : map;
}

static void check_forwarding(struct cfg_ctx *x, const struct cfg *c, struct cfg_service *s,
			     struct cfg_svc_state *st, const char *path)
{
	yaml_node_t *fn = cfg_get(x, st->node, "forwarding");
	const char *fwd = cfg_forwarding_name(s->forwarding);

	if (x->engine_ok && st->fwd_ok) {
		if (c->engine == CFG_ENGINE_BPF && s->forwarding == CFG_FWD_FULLNAT)
			cfg_err(x, fn, "%s.forwarding: fullnat needs engine: socket (the bpf engine "
				       "rewrites packets in flight and keeps no upstream sockets to "
				       "relay from); use dnat or dsr, or set engine: socket", path);
		else if (c->engine == CFG_ENGINE_SOCKET && s->forwarding != CFG_FWD_FULLNAT)
			cfg_err(x, fn ? fn : st->node,
				"%s.forwarding: %s%s%s needs engine: bpf (the socket engine "
				"terminates UDP in user space and can only relay, i.e. fullnat); "
				"set forwarding: fullnat, or engine: bpf", path,
				fn ? "" : "defaults to ", fwd, fn ? "" : ", which");
	}
	yaml_node_t *pk = cfg_get_key(x, st->node, "snat_pool");
	if (pk && st->fwd_ok && s->forwarding != CFG_FWD_FULLNAT)
		cfg_err(x, pk, "%s.snat_pool: only used with forwarding: fullnat (%s keeps the "
			       "client's source address)", path, fwd);
}

static void check_server_unique(struct cfg_ctx *x, struct cfg_service *s,
				struct cfg_svc_state *st, const char *path)
{
	char ab[IKELB_ADDR_STRLEN];

	for (int j = 0; j < s->nservers; j++) {
		struct cfg_server *b = &s->servers[j];
		yaml_node_t *bn = srv_node(x, st, j);
		for (int i = 0; i < j; i++) {
			struct cfg_server *a = &s->servers[i];
			if (st->srv[i].name_ok && st->srv[j].name_ok && !strcmp(a->name, b->name)) {
				cfg_err(x, at_key(x, bn, "name"), "%s.servers[%d].name: server '%s' "
					"is already defined at line %d", path, j, b->name, a->line);
				break;
			}
		}
		for (int i = 0; i < j; i++) {
			struct cfg_server *a = &s->servers[i];
			if (st->srv[i].addr_ok && st->srv[j].addr_ok &&
			    ikelb_addr_eq(&a->addr, &b->addr)) {
				cfg_err(x, at_key(x, bn, "address"), "%s.servers[%d].address: %s is "
					"already used by server '%s'", path, j,
					ikelb_addr_str(&b->addr, ab, sizeof(ab)), a->name);
				break;
			}
		}
	}
}

/* Without spi_mask a label is the top byte of the SPI (strongSwan's usual
 * layout); a full 64-bit value inside that byte is accepted as well. */
static bool resolve_label(struct cfg_ctx *x, struct cfg_service *s, struct cfg_svc_state *st,
			  struct cfg_server *r, yaml_node_t *ln, const char *what)
{
	uint64_t v = r->spi_label;

	if (st->mask_given && s->spi_mask == 0) {
		cfg_err(x, ln, "%s: needs a non-zero spi_mask on the service (it is 0)", what);
		return false;
	}
	if (!st->mask_given && v <= 0xff)
		v <<= 56;
	if (!st->mask_given && (v & ~CFG_DEFAULT_SPI_MASK)) {
		cfg_err(x, ln, "%s: 0x%llx does not fit without spi_mask: a label is then one "
			       "byte (0x01..0xff) placed in the top byte of the SPI; set spi_mask "
			       "for other layouts", what, (unsigned long long)r->spi_label);
		return false;
	}
	if (st->mask_given && (v & ~s->spi_mask)) {
		cfg_err(x, ln, "%s: 0x%016llx has bits outside spi_mask 0x%016llx", what,
			(unsigned long long)v, (unsigned long long)s->spi_mask);
		return false;
	}
	if (v == 0) {
		cfg_err(x, ln, "%s: must not be 0 (a zero label cannot be told apart from the "
			       "zero responder SPI of a new IKE_SA_INIT)", what);
		return false;
	}
	r->spi_label = v;
	return true;
}

static void check_labels(struct cfg_ctx *x, struct cfg_service *s, struct cfg_svc_state *st,
			 const char *path)
{
	char what[CFG_PATH_MAX];
	bool any = false;

	for (int i = 0; i < s->nservers; i++)
		any |= s->servers[i].has_spi_label && st->srv[i].label_ok;
	if (!any || !st->mask_ok)
		return;
	if (!st->mask_given)
		s->spi_mask = CFG_DEFAULT_SPI_MASK;
	for (int j = 0; j < s->nservers; j++) {
		struct cfg_server *b = &s->servers[j];
		if (!b->has_spi_label || !st->srv[j].label_ok)
			continue;
		yaml_node_t *ln = cfg_get(x, srv_node(x, st, j), "spi_label");
		cfg_pathf(what, sizeof(what), "%s.servers[%d].spi_label", path, j);
		st->srv[j].label_ok = resolve_label(x, s, st, b, ln, what);
		for (int i = 0; st->srv[j].label_ok && i < j; i++) {
			struct cfg_server *a = &s->servers[i];
			if (a->has_spi_label && st->srv[i].label_ok && a->spi_label == b->spi_label) {
				cfg_err(x, ln, "%s: label 0x%016llx is already used by server '%s'", what,
					(unsigned long long)b->spi_label, a->name);
				st->srv[j].label_ok = false;
			}
		}
	}
}

static void check_esp_ranges(struct cfg_ctx *x, struct cfg_service *s,
			     struct cfg_svc_state *st, const char *path)
{
	for (int j = 0; j < s->nservers; j++) {
		struct cfg_server *b = &s->servers[j];
		if (!b->has_esp_range || !st->srv[j].esp_ok)
			continue;
		for (int i = 0; i < j; i++) {
			struct cfg_server *a = &s->servers[i];
			if (!a->has_esp_range || !st->srv[i].esp_ok || a->esp_spi_min > b->esp_spi_max ||
			    b->esp_spi_min > a->esp_spi_max)
				continue;
			cfg_err(x, at_key(x, srv_node(x, st, j), "esp_spi_min"),
				"%s.servers[%d]: ESP SPI range 0x%x..0x%x overlaps server '%s' "
				"(0x%x..0x%x)", path, j, b->esp_spi_min, b->esp_spi_max, a->name,
				a->esp_spi_min, a->esp_spi_max);
			break;
		}
	}
}

static void check_maglev(struct cfg_ctx *x, struct cfg_service *s, struct cfg_svc_state *st,
			 const char *path)
{
	uint64_t need = (uint64_t)s->nservers * 100;

	if (!st->maglev_given) {
		s->maglev_size = maglev_default_size((size_t)s->nservers);
		return;
	}
	if (s->maglev_size >= need)
		return;
	cfg_err(x, cfg_get(x, st->node, "maglev_size"),
		"%s.maglev_size: %u is too small for %d servers: Maglev spreads clients evenly "
		"only with at least 100 slots per server (hint: use %u, or omit maglev_size)", path,
		s->maglev_size, s->nservers, maglev_prime_at_least(need));
}

static void check_vip_ports(struct cfg_ctx *x, struct cfg *c)
{
	char ab[IKELB_ADDR_STRLEN];

	for (int j = 0; j < c->nservices; j++) {
		struct cfg_service *b = &c->services[j];
		if (!x->svc[j].vip_ok || !x->svc[j].ports_ok)
			continue;
		for (int i = 0; i < j; i++) {
			struct cfg_service *a = &c->services[i];
			if (!x->svc[i].vip_ok || !x->svc[i].ports_ok || !ikelb_addr_eq(&a->vip, &b->vip))
				continue;
			for (int p = 0; p < b->nports; p++)
				for (int q = 0; q < a->nports; q++) {
					if (a->ports[q] != b->ports[p])
						continue;
					bool v4 = ikelb_addr_is_v4(&b->vip);
					cfg_err(x, at_key(x, x->svc[j].node, "ports"),
						"services[%d].ports: %s%s%s:%u of service '%s' is already "
						"used by service '%s' (line %d)", j, v4 ? "" : "[",
						ikelb_addr_str(&b->vip, ab, sizeof(ab)), v4 ? "" : "]",
						b->ports[p], b->name, a->name, a->line);
				}
		}
	}
}

static void check_service_names(struct cfg_ctx *x, struct cfg *c)
{
	for (int j = 0; j < c->nservices; j++)
		for (int i = 0; i < j; i++) {
			if (!x->svc[i].name_ok || !x->svc[j].name_ok ||
			    strcmp(c->services[i].name, c->services[j].name))
				continue;
			cfg_err(x, at_key(x, x->svc[j].node, "name"), "services[%d].name: service '%s' "
				"is already defined at line %d", j, c->services[j].name,
				c->services[i].line);
			break;
		}
}

/* The kernel's rr/wrr/lc/wlc scan a bounded list (maps.h, svc_sched). */
static void check_sched(struct cfg_ctx *x, const struct cfg *c, struct cfg_service *s,
			struct cfg_svc_state *st, const char *path)
{
	bool scan = s->scheduler == CFG_SCHED_RR || s->scheduler == CFG_SCHED_WRR ||
		    s->scheduler == CFG_SCHED_LC || s->scheduler == CFG_SCHED_WLC;

	if (x->engine_ok && c->engine == CFG_ENGINE_BPF && scan && s->nservers > IKELB_SCHED_MAX)
		cfg_err(x, at_key(x, st->node, "scheduler"),
			"%s.scheduler: %s on the bpf engine takes at most %d servers (the kernel "
			"scans them for each new client); this service has %d: use maglev or "
			"split the service", path, cfg_sched_name(s->scheduler), IKELB_SCHED_MAX,
			s->nservers);
}

void cfg_validate(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c)
{
	char path[CFG_PATH_MAX];

	if (root->type != YAML_MAPPING_NODE)
		return;
	if (x->engine_ok && c->engine == CFG_ENGINE_BPF && !cfg_get(x, root, "interfaces"))
		cfg_err(x, root, "interfaces: required with engine: bpf (the BPF program is "
				 "attached to these interfaces)");
	for (int i = 0; i < c->nservices; i++) {
		struct cfg_svc_state *st = &x->svc[i];
		if (!st->node || st->node->type != YAML_MAPPING_NODE)
			continue;
		cfg_pathf(path, sizeof(path), "services[%d]", i);
		check_forwarding(x, c, &c->services[i], st, path);
		cfg_check_admission(x, c, &c->services[i], st->node, path);
		if (!st->servers_ok)
			continue;
		check_server_unique(x, &c->services[i], st, path);
		check_labels(x, &c->services[i], st, path);
		check_esp_ranges(x, &c->services[i], st, path);
		check_maglev(x, &c->services[i], st, path);
		check_sched(x, c, &c->services[i], st, path);
	}
	check_service_names(x, c);
	check_vip_ports(x, c);
	cfg_check_tcp(x, c);
}
