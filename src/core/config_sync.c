/* The `sync` mapping: state sync between ikelb nodes (docs/ha.md). */
#include "core/config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sync_keys[] = { "listen", "peers", "key_file", "interval",
					 "max_rate", "refresh", NULL };

int cfg_parse_host_port(const char *s, struct ikelb_addr *a, uint16_t *port)
{
	char host[64];
	const char *colon, *h = s;
	size_t hl;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	uint64_t p;
	if (ikelb_addr_parse(host, a) < 0 || cfg_parse_u64(colon + 1, &p) < 0 || p == 0 ||
	    p > 65535)
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

static void host_port(struct cfg_ctx *x, yaml_node_t *n, const char *what, struct ikelb_addr *a,
		      uint16_t *port)
{
	const char *s = cfg_want_scalar(x, n, what);
	if (s && cfg_parse_host_port(s, a, port) < 0)
		cfg_err(x, n, "%s: '%s' is not \"address:port\" (IPv6 as \"[addr]:port\")", what, s);
}

static void parse_peers(struct cfg_ctx *x, yaml_node_t *m, struct cfg_sync *s)
{
	yaml_node_t *seq = cfg_get(x, m, "peers");
	char what[CFG_PATH_MAX];

	if (!seq) {
		cfg_err(x, m, "sync: missing required key 'peers'");
		return;
	}
	if (!cfg_want_seq(x, seq, "sync.peers"))
		return;
	int n = cfg_seq_len(seq);
	if (n < 1 || n > CFG_MAX_SYNC_PEERS) {
		cfg_err(x, seq, "sync.peers: needs 1..%d entries, got %d", CFG_MAX_SYNC_PEERS, n);
		return;
	}
	for (int i = 0; i < n; i++)
		host_port(x, cfg_seq_item(x, seq, i), cfg_pathf(what, sizeof(what), "sync.peers[%d]", i),
			  &s->peers[i], &s->peer_ports[i]);
	s->npeers = n;
}

void cfg_parse_sync(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c)
{
	yaml_node_t *m = cfg_get(x, root, "sync");
	struct cfg_sync *s = &c->sync;
	uint64_t v;

	s->interval_ms = 200;
	s->max_rate = 2000;
	s->refresh_s = 60;
	if (!m || !cfg_want_map(x, m, "sync"))
		return;
	cfg_check_keys(x, m, "sync", sync_keys);
	s->enabled = true;
	/* The socket engine's tables live in its workers: nothing to walk. */
	if (x->engine_ok && c->engine != CFG_ENGINE_BPF)
		cfg_err(x, m, "sync: needs engine: bpf (the %s engine cannot share its state)",
			cfg_engine_name(c->engine));
	yaml_node_t *l = cfg_get(x, m, "listen");
	if (l)
		host_port(x, l, "sync.listen", &s->listen, &s->listen_port);
	else
		cfg_err(x, m, "sync: missing required key 'listen'");
	parse_peers(x, m, s);
	if (cfg_get_str(x, m, "sync", "key_file", s->key_file, sizeof(s->key_file)) == 0)
		cfg_err(x, m, "sync: missing required key 'key_file'");
	else if (s->key_file[0] && s->key_file[0] != '/')
		cfg_err(x, cfg_get(x, m, "key_file"), "sync.key_file: '%s' is not an absolute path",
			s->key_file);
	if (cfg_get_duration(x, m, "sync", "interval", 10, 10000, &v) > 0)
		s->interval_ms = (uint32_t)v;
	if (cfg_get_uint(x, m, "sync", "max_rate", 10, 1000000, &v) > 0)
		s->max_rate = (uint32_t)v;
	if (cfg_get_duration(x, m, "sync", "refresh", 1000, 3600000, &v) > 0)
		s->refresh_s = (uint32_t)(v / 1000);
}
