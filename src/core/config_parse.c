/* YAML tree -> struct cfg, field by field. Checks that need only values of
 * the same object (ranges, address family against the VIP, timeout below
 * interval) live here; checks across objects are in config_validate.c. */
#include "core/config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (86400ull * 1000)

static const char *const root_keys[] = { "engine", "interfaces", "api", "bpf", "maglev_seed",
					 "limits", "server_state_file", "services", "sync", "socket",
					 NULL };
static const char *const api_keys[] = { "listen", "idle_timeout", "token_file", NULL };
static const char *const bpf_keys[] = { "pin_dir", "attach", NULL };
static const char *const bpf_attach_names[] = { "tc", "xdp", NULL };
static const char *const limit_keys[] = { "max_clients", "max_flows", "max_halfopen", NULL };
static const char *const svc_keys[] = { "name", "vip", "ports", "forwarding", "persistence",
					"scheduler", "maglev_size", "spi_mask", "snat_pool", "ike_port",
					"tcp_ports", "health", "init_state", "slow_start", "servers", "admission", NULL };
static const char *const if_role_keys[] = { "public", "servers", NULL };
static const char *const persist_keys[] = { "mode", "timeout", "netmask", "netmask6",
					    "flow_timeout", NULL };
static const char *const health_keys[] = { "type", "interval", "timeout", "rise", "fall",
					   "port", "send", "expect", "tcp_check", NULL };
static const char *const srv_keys[] = { "name", "address", "weight", "state", "spi_label",
					"esp_spi_min", "esp_spi_max", "init_state", "vici", "max_clients",
					"slow_start", NULL };
static const char *const init_state_names[] = { "down", "up", NULL };

/* init_state at PATH into *down; untouched when absent or wrong. */
static void parse_init_state(struct cfg_ctx *x, yaml_node_t *m, const char *path, bool *down)
{
	int e;
	if (cfg_get_enum(x, m, path, "init_state", init_state_names, 2, &e) > 0)
		*down = e == 0;
}

/* Mapping at MAP[KEY] with its keys checked, or NULL (absent or reported). */
static yaml_node_t *sub_map(struct cfg_ctx *x, yaml_node_t *map, const char *path,
			    const char *key, const char *const *valid, char *sub, size_t len)
{
	yaml_node_t *n = cfg_get(x, map, key);
	cfg_path(sub, len, path, key);
	if (!n || !cfg_want_map(x, n, sub))
		return NULL;
	cfg_check_keys(x, n, sub, valid);
	return n;
}

/* Sequence at MAP[KEY] with 1..max items, or NULL (absent or reported). */
static yaml_node_t *sub_seq(struct cfg_ctx *x, yaml_node_t *map, const char *path,
			    const char *key, int max, char *sub, size_t len)
{
	yaml_node_t *n = cfg_get(x, map, key);
	cfg_path(sub, len, path, key);
	if (!n || !cfg_want_seq(x, n, sub))
		return NULL;
	int cnt = cfg_seq_len(n);
	if (cnt == 0 || cnt > max) {
		cfg_err(x, n, "%s: needs 1..%d entries, got %d", sub, max, cnt);
		return NULL;
	}
	return n;
}

static bool ifname_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= 16 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || (unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

/* One interface name of a role list; an interface named by both lists of
 * the map form gets both roles (one arm). */
static void add_interface(struct cfg_ctx *x, yaml_node_t *n, const char *what, uint8_t role,
			  struct cfg *c)
{
	const char *s = cfg_want_scalar(x, n, what);
	if (!s)
		return;
	if (!ifname_ok(s)) {
		cfg_err(x, n, "%s: '%s' is not a valid interface name (1..15 characters, "
			      "no '/', ':' or spaces)", what, s);
		return;
	}
	for (int j = 0; j < c->ninterfaces; j++) {
		if (strcmp(c->interfaces[j], s))
			continue;
		if (c->interface_roles[j] & role)
			cfg_err(x, n, "%s: interface '%s' is listed twice", what, s);
		c->interface_roles[j] |= role;
		return;
	}
	if (c->ninterfaces >= CFG_MAX_INTERFACES) {
		cfg_err(x, n, "%s: more than %d interfaces", what, CFG_MAX_INTERFACES);
		return;
	}
	c->interface_roles[c->ninterfaces] = role;
	snprintf(c->interfaces[c->ninterfaces++], CFG_NAME_MAX, "%s", s);
}

static void parse_if_list(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
			  uint8_t role, struct cfg *c)
{
	char what[CFG_PATH_MAX];
	yaml_node_t *seq = sub_seq(x, map, path, key, CFG_MAX_INTERFACES, what, sizeof(what));
	if (!seq)
		return;
	for (int i = 0; i < cfg_seq_len(seq); i++) {
		char item[CFG_PATH_MAX];
		cfg_pathf(item, sizeof(item), "%s[%d]", what, i);
		add_interface(x, cfg_seq_item(x, seq, i), item, role, c);
	}
}

/* interfaces: [eth0, eth1] (each carries clients and servers) or
 * interfaces: { public: [eth0], servers: [eth1] }. */
static void parse_interfaces(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c)
{
	yaml_node_t *n = cfg_get(x, root, "interfaces");

	if (!n || n->type != YAML_MAPPING_NODE) {
		parse_if_list(x, root, "", "interfaces", CFG_IF_PUBLIC | CFG_IF_SERVERS, c);
		return;
	}
	cfg_check_keys(x, n, "interfaces", if_role_keys);
	for (int i = 0; if_role_keys[i]; i++) {
		if (!cfg_get(x, n, if_role_keys[i]))
			cfg_err(x, n, "interfaces.%s: required in the map form", if_role_keys[i]);
		else
			parse_if_list(x, n, "interfaces", if_role_keys[i],
				      i ? CFG_IF_SERVERS : CFG_IF_PUBLIC, c);
	}
}

static bool listen_ok(const char *s)
{
	if (!strncmp(s, "unix:", 5))
		return s[5] == '/' && strlen(s + 5) < 108; /* sun_path */
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		return false;
	char host[128];
	size_t hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 1 || port > 65535)
		return false;
	struct ikelb_addr a;
	if (host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = 0;
		return ikelb_addr_parse(host + 1, &a) == 0 && !ikelb_addr_is_v4(&a);
	}
	for (char *p = host; *p; p++)
		if (!(*p == '.' || *p == '-' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return false;
	return true;
}

/* A TCP listener reachable from other hosts would let anyone stop the
 * data path (POST /v1/shutdown): it needs a bearer token. Loopback without
 * one is allowed (the daemon warns at startup). */
static void parse_api_access(struct cfg_ctx *x, yaml_node_t *m, struct cfg *c)
{
	cfg_get_duration(x, m, "api", "idle_timeout", 1000, 3600000, &c->api_idle_timeout_ms);
	if (cfg_get_str(x, m, "api", "token_file", c->api_token_file,
			sizeof(c->api_token_file)) > 0 && c->api_token_file[0] != '/')
		cfg_err(x, cfg_get(x, m, "token_file"), "api.token_file: '%s' is not an absolute path",
			c->api_token_file);
	if (!listen_ok(c->api_listen) || c->api_token_file[0] || cfg_api_loopback(c->api_listen))
		return;
	cfg_err(x, cfg_get(x, m, "listen"),
		"api.listen: TCP listener %s is reachable from other hosts; set api.token_file "
		"(a bearer token) or listen on unix:/path or 127.0.0.1", c->api_listen);
}

static void parse_api_bpf(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c)
{
	char what[CFG_PATH_MAX];
	yaml_node_t *m = sub_map(x, root, "", "api", api_keys, what, sizeof(what));
	if (m && cfg_get_str(x, m, "api", "listen", c->api_listen, sizeof(c->api_listen)) > 0 &&
	    !listen_ok(c->api_listen))
		cfg_err(x, cfg_get(x, m, "listen"),
			"api.listen: '%s' is not \"unix:/absolute/path\" or \"host:port\" "
			"(IPv6 as \"[addr]:port\")", c->api_listen);
	if (m)
		parse_api_access(x, m, c);
	m = sub_map(x, root, "", "bpf", bpf_keys, what, sizeof(what));
	if (m && cfg_get_str(x, m, "bpf", "pin_dir", c->bpf_pin_dir, sizeof(c->bpf_pin_dir)) > 0 &&
	    c->bpf_pin_dir[0] != '/')
		cfg_err(x, cfg_get(x, m, "pin_dir"), "bpf.pin_dir: '%s' is not an absolute path",
			c->bpf_pin_dir);
	int attach;
	if (m && cfg_get_enum(x, m, "bpf", "attach", bpf_attach_names, 2, &attach) > 0)
		c->bpf_attach = (enum cfg_bpf_attach)attach;
}

static void parse_limits(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c)
{
	char what[CFG_PATH_MAX];
	uint64_t v;
	yaml_node_t *m = sub_map(x, root, "", "limits", limit_keys, what, sizeof(what));
	if (!m)
		return;
	if (cfg_get_uint(x, m, "limits", "max_clients", 16, 1u << 28, &v) > 0)
		c->max_clients = (uint32_t)v;
	if (cfg_get_uint(x, m, "limits", "max_flows", 16, 1u << 28, &v) > 0)
		c->max_flows = (uint32_t)v;
	if (cfg_get_uint(x, m, "limits", "max_halfopen", 16, 1u << 24, &v) > 0)
		c->max_halfopen = (uint32_t)v;
}

/* "" turns the server-state file off; anything else must not depend on
 * the daemon's working directory. */
static void parse_state_file(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c)
{
	char *p = c->server_state_file;
	yaml_node_t *n = cfg_get(x, root, "server_state_file");
	/* Only a quoted "" is empty on purpose; a bare key stays an error. */
	if (n && n->type == YAML_SCALAR_NODE && !n->data.scalar.length &&
	    (n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
	     n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE)) {
		p[0] = 0;
		return;
	}
	if (cfg_get_str(x, root, "", "server_state_file", p, sizeof(c->server_state_file)) > 0 &&
	    p[0] && p[0] != '/')
		cfg_err(x, cfg_get(x, root, "server_state_file"),
			"server_state_file: '%s' is not an absolute path (\"\" turns it off)", p);
}

static void parse_ports(struct cfg_ctx *x, yaml_node_t *m, const char *path,
			struct cfg_service *s, struct cfg_svc_state *st)
{
	char what[CFG_PATH_MAX];
	int e0 = x->nerr;
	yaml_node_t *seq = sub_seq(x, m, path, "ports", CFG_MAX_PORTS, what, sizeof(what));

	if (!seq) {
		st->ports_ok = !cfg_get(x, m, "ports");
		return;
	}
	cfg_port_list(x, seq, path, "ports", s->ports, &s->nports);
	st->ports_ok = x->nerr == e0;
}

static void parse_persistence(struct cfg_ctx *x, yaml_node_t *svc, const char *path,
			      struct cfg_persistence *p)
{
	char sub[CFG_PATH_MAX];
	uint64_t v;
	int mode;
	yaml_node_t *m = sub_map(x, svc, path, "persistence", persist_keys, sub, sizeof(sub));
	if (!m)
		return;
	if (cfg_get_enum(x, m, sub, "mode", cfg_persist_names, 2, &mode) > 0)
		p->mode = (enum cfg_persist_mode)mode;
	static const char *const secs[] = { "timeout", "flow_timeout" };
	for (int i = 0; i < 2; i++) {
		if (cfg_get_duration(x, m, sub, secs[i], 1000, 30 * DAY_MS, &v) <= 0)
			continue;
		if (v % 1000)
			cfg_err(x, cfg_get(x, m, secs[i]), "%s.%s: must be a whole number of seconds",
				sub, secs[i]);
		else if (i == 0)
			p->timeout_s = (uint32_t)(v / 1000);
		else
			p->flow_timeout_s = (uint32_t)(v / 1000);
	}
	if (cfg_get_uint(x, m, sub, "netmask", 0, 32, &v) > 0)
		p->netmask = (int)v;
	if (cfg_get_uint(x, m, sub, "netmask6", 0, 128, &v) > 0)
		p->netmask6 = (int)v;
}

static void parse_health(struct cfg_ctx *x, yaml_node_t *svc, const char *path,
			 struct cfg_health *h)
{
	char sub[CFG_PATH_MAX];
	uint64_t v;
	int type, ti = 0, tt = 0;
	yaml_node_t *m = sub_map(x, svc, path, "health", health_keys, sub, sizeof(sub));
	if (!m)
		return;
	int rt = cfg_get_enum(x, m, sub, "type", cfg_health_names, 3, &type);
	if (rt > 0)
		h->type = (enum cfg_health_type)type;
	if ((ti = cfg_get_duration(x, m, sub, "interval", 100, 3600000, &v)) > 0)
		h->interval_ms = (uint32_t)v;
	if ((tt = cfg_get_duration(x, m, sub, "timeout", 100, 3600000, &v)) > 0)
		h->timeout_ms = (uint32_t)v;
	if (ti >= 0 && tt >= 0 && h->timeout_ms >= h->interval_ms) {
		yaml_node_t *at = cfg_get(x, m, tt ? "timeout" : "interval");
		char a[32], b[32];
		cfg_err(x, at, "%s.timeout: %s must be shorter than the interval (%s), so one "
			       "probe ends before the next starts", sub,
			cfg_fmt_ms(a, sizeof(a), h->timeout_ms), cfg_fmt_ms(b, sizeof(b), h->interval_ms));
	}
	if (cfg_get_uint(x, m, sub, "rise", 1, 100, &v) > 0)
		h->rise = (uint32_t)v;
	if (cfg_get_uint(x, m, sub, "fall", 1, 100, &v) > 0)
		h->fall = (uint32_t)v;
	if (cfg_get_uint(x, m, sub, "port", 1, 65535, &v) > 0)
		h->port = (uint16_t)v;
	int rs = cfg_get_hex(x, m, sub, "send", &h->send, &h->send_len);
	int re = cfg_get_hex(x, m, sub, "expect", &h->expect, &h->expect_len);
	if (rt < 0) {
		/* type already reported; send/expect cannot be judged without it */
	} else if (h->type != CFG_HEALTH_UDP) {
		if (rs > 0)
			cfg_err(x, cfg_get_key(x, m, "send"), "%s.send: only used with type: udp", sub);
		if (re > 0)
			cfg_err(x, cfg_get_key(x, m, "expect"), "%s.expect: only used with type: udp",
				sub);
	} else if (rs == 0) {
		cfg_err(x, m, "%s: type udp needs 'send' (the probe payload, as hex)", sub);
	}
}

static void parse_spi(struct cfg_ctx *x, yaml_node_t *m, const char *path,
		      struct cfg_server *r, struct cfg_srv_state *st)
{
	uint64_t v, lo = 0, hi = 0;
	int rl = cfg_get_u64(x, m, path, "spi_label", &v);
	if (rl > 0) {
		r->has_spi_label = true;
		r->spi_label = v;
	}
	st->label_ok = rl >= 0;
	int a = cfg_get_uint(x, m, path, "esp_spi_min", 256, UINT32_MAX, &lo);
	int b = cfg_get_uint(x, m, path, "esp_spi_max", 256, UINT32_MAX, &hi);
	if (a < 0 || b < 0)
		return;
	if (a != b) {
		const char *given = a ? "esp_spi_min" : "esp_spi_max";
		cfg_err(x, cfg_get_key(x, m, given), "%s.%s: give both esp_spi_min and esp_spi_max "
			"or neither", path, given);
		return;
	}
	if (a && lo > hi) {
		cfg_err(x, cfg_get(x, m, "esp_spi_min"),
			"%s.esp_spi_min: 0x%llx is above esp_spi_max 0x%llx", path,
			(unsigned long long)lo, (unsigned long long)hi);
		return;
	}
	r->has_esp_range = a > 0;
	r->esp_spi_min = (uint32_t)lo;
	r->esp_spi_max = (uint32_t)hi;
	st->esp_ok = true;
}

static void parse_server(struct cfg_ctx *x, yaml_node_t *m, const char *path,
			 const struct cfg_service *s, const struct cfg_svc_state *sst,
			 struct cfg_server *r, struct cfg_srv_state *st)
{
	uint64_t v;
	int state;
	char ab[IKELB_ADDR_STRLEN];

	cfg_server_defaults(r);
	r->line = (int)m->start_mark.line + 1;
	if (!cfg_want_map(x, m, path))
		return;
	cfg_check_keys(x, m, path, srv_keys);
	int rn = cfg_get_name(x, m, path, "name", r->name);
	if (rn == 0)
		cfg_err(x, m, "%s: missing required key 'name'", path);
	st->name_ok = rn > 0;
	int ra = cfg_get_addr(x, m, path, "address", &r->addr);
	if (ra == 0)
		cfg_err(x, m, "%s: missing required key 'address'", path);
	st->addr_ok = ra > 0;
	if (st->addr_ok && sst->vip_ok) {
		yaml_node_t *an = cfg_get(x, m, "address");
		if (ikelb_addr_is_v4(&r->addr) != ikelb_addr_is_v4(&s->vip)) {
			cfg_err(x, an, "%s.address: %s is %s but the service VIP is %s", path,
				ikelb_addr_str(&r->addr, ab, sizeof(ab)),
				ikelb_addr_is_v4(&r->addr) ? "IPv4" : "IPv6",
				ikelb_addr_is_v4(&s->vip) ? "IPv4" : "IPv6");
			st->addr_ok = false;
		} else if (ikelb_addr_eq(&r->addr, &s->vip)) {
			cfg_err(x, an, "%s.address: is the service VIP itself", path);
			st->addr_ok = false;
		}
	}
	if (cfg_get_uint(x, m, path, "weight", 0, CFG_WEIGHT_MAX, &v) > 0)
		r->weight = (uint32_t)v;
	if (cfg_get_enum(x, m, path, "state", cfg_state_names, 3, &state) > 0)
		r->state = (enum cfg_server_state)state;
	r->init_down = s->init_down;
	parse_init_state(x, m, path, &r->init_down);
	if (cfg_get_uint(x, m, path, "max_clients", 0, UINT32_MAX, &v) > 0)
		r->max_clients = (uint32_t)v;
	r->slow_start_ms = s->slow_start_ms;
	cfg_get_duration_or_off(x, m, path, "slow_start", 1000, 3600000, &r->slow_start_ms);
	parse_spi(x, m, path, r, st);
	/* the charon's vici socket, for `ikelb server evacuate` */
	if (cfg_get_str(x, m, path, "vici", r->vici, sizeof(r->vici)) > 0 &&
	    strncmp(r->vici, "unix:///", 8) && (strncmp(r->vici, "tcp://", 6) || !strchr(r->vici + 6, ':')))
		cfg_err(x, cfg_get(x, m, "vici"), "%s.vici: '%s' is not unix:///PATH or tcp://ADDR:PORT",
			path, r->vici);
}

static void parse_servers(struct cfg_ctx *x, yaml_node_t *m, const char *path,
			  struct cfg_service *s, struct cfg_svc_state *st)
{
	char what[CFG_PATH_MAX];
	yaml_node_t *seq = sub_seq(x, m, path, "servers", CFG_MAX_SERVERS, what, sizeof(what));

	if (!seq) {
		if (!cfg_get(x, m, "servers"))
			cfg_err(x, m, "%s: missing required key 'servers'", path);
		return;
	}
	int n = cfg_seq_len(seq);
	s->servers = calloc((size_t)n, sizeof(*s->servers));
	st->srv = calloc((size_t)n, sizeof(*st->srv));
	if (!s->servers || !st->srv) {
		cfg_err(x, seq, "%s: out of memory", what);
		return;
	}
	s->nservers = n;
	for (int i = 0; i < n; i++) {
		cfg_pathf(what, sizeof(what), "%s.servers[%d]", path, i);
		parse_server(x, cfg_seq_item(x, seq, i), what, s, st, &s->servers[i], &st->srv[i]);
	}
	st->servers_ok = true;
}

static void parse_snat_pool(struct cfg_ctx *x, yaml_node_t *m, const char *path,
			    struct cfg_service *s, const struct cfg_svc_state *st)
{
	char what[CFG_PATH_MAX];
	struct ikelb_addr a;
	yaml_node_t *seq = sub_seq(x, m, path, "snat_pool", CFG_MAX_SNAT_POOL, what,
				   sizeof(what));
	if (!seq)
		return;
	for (int i = 0; i < cfg_seq_len(seq); i++) {
		yaml_node_t *n = cfg_seq_item(x, seq, i);
		cfg_pathf(what, sizeof(what), "%s.snat_pool[%d]", path, i);
		if (cfg_node_addr(x, n, what, &a) < 0)
			continue;
		bool dup = false;
		for (int j = 0; j < s->nsnat_pool; j++)
			dup |= ikelb_addr_eq(&s->snat_pool[j], &a);
		if (st->vip_ok && ikelb_addr_is_v4(&a) != ikelb_addr_is_v4(&s->vip))
			cfg_err(x, n, "%s: address family differs from the service VIP", what);
		else if (dup)
			cfg_err(x, n, "%s: address is listed twice", what);
		else
			s->snat_pool[s->nsnat_pool++] = a;
	}
}

static void parse_service_scalars(struct cfg_ctx *x, yaml_node_t *m, const char *path,
				  struct cfg_service *s, struct cfg_svc_state *st)
{
	uint64_t v;
	int e;

	int rn = cfg_get_name(x, m, path, "name", s->name);
	if (rn == 0)
		cfg_err(x, m, "%s: missing required key 'name'", path);
	st->name_ok = rn > 0;
	int rv = cfg_get_addr(x, m, path, "vip", &s->vip);
	if (rv == 0)
		cfg_err(x, m, "%s: missing required key 'vip'", path);
	st->vip_ok = rv > 0;
	if (st->vip_ok && (!memcmp(s->vip.b, (uint8_t[16]){ 0 }, 16) ||
			   (ikelb_addr_is_v4(&s->vip) && ikelb_addr_v4(&s->vip) == 0))) {
		cfg_err(x, cfg_get(x, m, "vip"), "%s.vip: the unspecified address cannot be a VIP",
			path);
		st->vip_ok = false;
	}
	int rf = cfg_get_enum(x, m, path, "forwarding", cfg_fwd_names, 3, &e);
	if (rf > 0)
		s->forwarding = (enum cfg_forwarding)e;
	st->fwd_ok = rf >= 0;
	if (cfg_get_enum(x, m, path, "scheduler", cfg_sched_names, 7, &e) > 0)
		s->scheduler = (enum cfg_sched)e;
	int rm = cfg_get_uint(x, m, path, "maglev_size", 101, 1000003, &v);
	if (rm > 0 && !maglev_is_prime((uint32_t)v))
		cfg_err(x, cfg_get(x, m, "maglev_size"),
			"%s.maglev_size: %llu is not prime (Maglev needs a prime table size; "
			"e.g. 65537, 131071, 262147)", path, (unsigned long long)v);
	else if (rm > 0)
		s->maglev_size = (uint32_t)v;
	st->maglev_given = rm != 0;
	int rs = cfg_get_u64(x, m, path, "spi_mask", &v);
	if (rs > 0)
		s->spi_mask = v;
	st->mask_given = rs != 0;
	st->mask_ok = rs >= 0;
}

/* A relay on unprivileged ports (e.g. 10500/14500) still needs to know
 * which port carries bare IKE and which RFC 3948 framing. */
static void parse_ike_port(struct cfg_ctx *x, yaml_node_t *m, const char *path,
			   struct cfg_service *s)
{
	uint64_t v;
	if (cfg_get_uint(x, m, path, "ike_port", 1, 65535, &v) <= 0)
		return;
	s->ike_port = (uint16_t)v;
	for (int i = 0; i < s->nports; i++)
		if (s->ports[i] == s->ike_port)
			return;
	cfg_err(x, cfg_get(x, m, "ike_port"), "%s.ike_port: %llu is not one of the service's ports",
		path, (unsigned long long)v);
}

static void parse_service(struct cfg_ctx *x, yaml_node_t *m, int idx, struct cfg_service *s,
			  struct cfg_svc_state *st)
{
	char path[CFG_PATH_MAX];

	cfg_pathf(path, sizeof(path), "services[%d]", idx);
	cfg_service_defaults(s);
	s->line = (int)m->start_mark.line + 1;
	st->node = m;
	if (!cfg_want_map(x, m, path))
		return;
	cfg_check_keys(x, m, path, svc_keys);
	parse_service_scalars(x, m, path, s, st);
	parse_ports(x, m, path, s, st);
	parse_ike_port(x, m, path, s);
	cfg_parse_tcp_ports(x, m, path, s, st);
	parse_persistence(x, m, path, &s->persistence);
	parse_snat_pool(x, m, path, s, st);
	parse_health(x, m, path, &s->health);
	cfg_parse_admission(x, m, path, &s->admission);
	parse_init_state(x, m, path, &s->init_down);
	cfg_get_duration_or_off(x, m, path, "slow_start", 1000, 3600000, &s->slow_start_ms);
	parse_servers(x, m, path, s, st);
}

static void parse_services(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c)
{
	char what[CFG_PATH_MAX];
	yaml_node_t *seq = sub_seq(x, root, "", "services", CFG_MAX_SERVICES, what,
				   sizeof(what));
	if (!seq) {
		if (!cfg_get(x, root, "services"))
			cfg_err(x, root, "missing required key 'services'");
		return;
	}
	int n = cfg_seq_len(seq);
	c->services = calloc((size_t)n, sizeof(*c->services));
	if (!c->services) {
		cfg_err(x, seq, "services: out of memory");
		return;
	}
	c->nservices = n;
	for (int i = 0; i < n; i++)
		parse_service(x, cfg_seq_item(x, seq, i), i, &c->services[i], &x->svc[i]);
}

void cfg_parse_root(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c)
{
	uint64_t v;
	int e;

	if (!cfg_want_map(x, root, "top level"))
		return;
	cfg_check_keys(x, root, "", root_keys);
	int re = cfg_get_enum(x, root, "", "engine", cfg_engine_names, 2, &e);
	if (re > 0)
		c->engine = (enum cfg_engine)e;
	x->engine_ok = re >= 0;
	parse_interfaces(x, root, c);
	parse_api_bpf(x, root, c);
	if (cfg_get_u64(x, root, "", "maglev_seed", &v) > 0)
		c->maglev_seed = v;
	parse_limits(x, root, c);
	cfg_parse_socket(x, root, c);
	parse_state_file(x, root, c);
	parse_services(x, root, c);
	cfg_parse_sync(x, root, c);
}
