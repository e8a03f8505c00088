/* `tcp_ports`: TCP services beside the UDP ones on the same VIP, servers,
 * persistence and scheduler (SSTP on 443 beside IKEv2; docs/tcp.md). */
#include "core/config_int.h"

#include <stdio.h>

static const char *const tcp_check_names[] = { "none", "connect", NULL };

/* health.tcp_check: connect (default) or none; only with tcp_ports. */
static void parse_tcp_check(struct cfg_ctx *x, yaml_node_t *m, const char *path,
			    struct cfg_service *s)
{
	char sub[CFG_PATH_MAX];
	yaml_node_t *h = cfg_get(x, m, "health");
	int e;

	s->tcp_check = s->ntcp_ports > 0;
	if (!h || h->type != YAML_MAPPING_NODE || !cfg_get(x, h, "tcp_check"))
		return;
	cfg_path(sub, sizeof(sub), path, "health");
	if (cfg_get_enum(x, h, sub, "tcp_check", tcp_check_names, 2, &e) <= 0)
		return;
	if (!s->ntcp_ports)
		cfg_err(x, cfg_get(x, h, "tcp_check"), "%s.tcp_check: only with tcp_ports", sub);
	s->tcp_check = e == 1 && s->ntcp_ports > 0;
}

void cfg_port_list(struct cfg_ctx *x, yaml_node_t *seq, const char *path, const char *key,
		   uint16_t *out, int *n)
{
	char what[CFG_PATH_MAX];
	uint64_t v;

	*n = 0;
	for (int i = 0; i < cfg_seq_len(seq); i++) {
		yaml_node_t *item = cfg_seq_item(x, seq, i);
		cfg_pathf(what, sizeof(what), "%s.%s[%d]", path, key, i);
		if (cfg_node_uint(x, item, what, 1, 65535, &v) < 0)
			continue;
		bool dup = false;
		for (int j = 0; j < *n; j++)
			dup |= out[j] == v;
		if (dup)
			cfg_err(x, item, "%s: port %llu is listed twice", what, (unsigned long long)v);
		else
			out[(*n)++] = (uint16_t)v;
	}
}

void cfg_parse_tcp_ports(struct cfg_ctx *x, yaml_node_t *m, const char *path,
			 struct cfg_service *s, struct cfg_svc_state *st)
{
	char what[CFG_PATH_MAX];
	int e0 = x->nerr;
	yaml_node_t *seq = cfg_get(x, m, "tcp_ports");

	st->tcp_ok = true;
	s->ntcp_ports = 0;
	if (!seq) {
		parse_tcp_check(x, m, path, s);
		return;
	}
	cfg_path(what, sizeof(what), path, "tcp_ports");
	if (!cfg_want_seq(x, seq, what)) {
		st->tcp_ok = false;
		return;
	}
	if (cfg_seq_len(seq) > CFG_MAX_TCP_PORTS) {
		cfg_err(x, seq, "%s: at most %d ports, got %d", what, CFG_MAX_TCP_PORTS,
			cfg_seq_len(seq));
		st->tcp_ok = false;
		return;
	}
	cfg_port_list(x, seq, path, "tcp_ports", s->tcp_ports, &s->ntcp_ports);
	st->tcp_ok = x->nerr == e0;
	parse_tcp_check(x, m, path, s);
}

/* The socket engine relays UDP from its own sockets (fullnat): a TCP
 * relay there would hide the client address from the server, which is
 * what SSTP and IKE persistence on one server need, so it is refused. */
static void check_engine(struct cfg_ctx *x, const struct cfg *c, int i)
{
	yaml_node_t *n = cfg_get(x, x->svc[i].node, "tcp_ports");

	if (!x->engine_ok || c->engine != CFG_ENGINE_SOCKET || !c->services[i].ntcp_ports)
		return;
	cfg_err(x, n, "services[%d].tcp_ports: needs engine: bpf (the socket engine relays "
		      "UDP only; a TCP relay would hide the client's address from the server); "
		      "remove tcp_ports or set engine: bpf", i);
}

static void check_unique(struct cfg_ctx *x, const struct cfg *c, int j)
{
	char ab[IKELB_ADDR_STRLEN];
	const struct cfg_service *b = &c->services[j];

	for (int i = 0; i < j; i++) {
		const struct cfg_service *a = &c->services[i];
		if (!x->svc[i].vip_ok || !x->svc[i].tcp_ok || !ikelb_addr_eq(&a->vip, &b->vip))
			continue;
		for (int p = 0; p < b->ntcp_ports; p++)
			for (int q = 0; q < a->ntcp_ports; q++) {
				if (a->tcp_ports[q] != b->tcp_ports[p])
					continue;
				cfg_err(x, cfg_get(x, x->svc[j].node, "tcp_ports"),
					"services[%d].tcp_ports: TCP %s port %u of service '%s' is "
					"already used by service '%s' (line %d)", j,
					ikelb_addr_str(&b->vip, ab, sizeof(ab)), b->tcp_ports[p],
					b->name, a->name, a->line);
			}
	}
}

void cfg_check_tcp(struct cfg_ctx *x, const struct cfg *c)
{
	for (int j = 0; j < c->nservices; j++) {
		if (!x->svc[j].node || !x->svc[j].tcp_ok || !c->services[j].ntcp_ports)
			continue;
		check_engine(x, c, j);
		if (x->svc[j].vip_ok)
			check_unique(x, c, j);
	}
}
