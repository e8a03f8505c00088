/* The `socket` mapping: worker threads and receive moderation of the
 * socket engine (docs/socket-engine.md). The bpf engine ignores it. */
#include "core/config_int.h"

static const char *const socket_keys[] = { "workers", "coalesce_usecs", NULL };

void cfg_parse_socket(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c)
{
	yaml_node_t *m = cfg_get(x, root, "socket");
	uint64_t v;

	if (!m || !cfg_want_map(x, m, "socket"))
		return;
	cfg_check_keys(x, m, "socket", socket_keys);
	if (cfg_get_uint(x, m, "socket", "workers", 0, CFG_SOCK_MAX_WORKERS, &v) > 0)
		c->sock_workers = (uint32_t)v;
	if (cfg_get_uint(x, m, "socket", "coalesce_usecs", 0, CFG_SOCK_MAX_COALESCE_US, &v) > 0)
		c->sock_coalesce_us = (uint32_t)v;
}
