/* What the API and the reports get of the daemon: a read-only view of the
 * model and a small set of commands. They never hold the daemon itself, so
 * they cannot reach the engine, the health checker or the configuration
 * file behind the model's back, and tests can drive them with fakes. */
#ifndef IKELB_CTL_VIEW_H
#define IKELB_CTL_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/log.h"
#include "ctl/health.h"
#include "core/runtime.h"
#include "engine/engine.h"

struct ctl_view {
	const struct cfg *cfg;
	const struct runtime *rt;
	const struct logger *log;
	const char *engine_name;   /* "none" until an engine is open */
	const char *config_path;
	uint64_t started_ms;       /* on the now_ms clock */
	const uint64_t *expired;   /* idle state entries expired so far */
	uint64_t (*now_ms)(void);
	/* Fresh counters; after a failed engine read (logged by the provider)
	 * the last good ones. Never NULL. */
	const struct eng_stats *(*stats)(void *ctx);
	/* 0 and *out, or -ENOENT when the server is not health checked. */
	int (*health)(void *ctx, int svc, int srv, struct health_info *out);
	void *ctx;
};

/* Commands return 0 or a negative errno; the provider logs engine errors. */
struct ctl_cmd {
	int (*set_admin)(void *ctx, int svc, int srv, enum cfg_server_state st);
	int (*set_weight)(void *ctx, int svc, int srv, uint32_t weight);
	void (*shutdown)(void *ctx, bool keep_forwarding);
	void *ctx;
};

#endif
