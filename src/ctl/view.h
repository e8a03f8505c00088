/* What the API and the reports get of the daemon: a read-only view of the
 * model and a small set of commands. They never hold the daemon itself, so
 * they cannot reach the engine, the health checker or the configuration
 * file behind the model's back, and tests can drive them with fakes. */
#ifndef IKELB_CTL_VIEW_H
#define IKELB_CTL_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "ctl/bypass.h"
#include "ctl/evac.h"
#include "core/log.h"
#include "ctl/health.h"
#include "ctl/sync.h"
#include "core/runtime.h"
#include "engine/engine.h"

#define CTL_RELOAD_LINES 64
#define CTL_RELOAD_LINE 512

/* What one reload did: a line per change, or why it was refused (for a
 * file that does not load, one "file:line:col: message" per problem).
 * Lines past CTL_RELOAD_LINES are counted, not kept. */
struct ctl_reload_result {
	bool ok;
	int nchanges, nerrors;
	char changes[CTL_RELOAD_LINES][CTL_RELOAD_LINE];
	char errors[CTL_RELOAD_LINES][CTL_RELOAD_LINE];
};

/* The last reload, for /v1/status. */
struct ctl_reload_info {
	int64_t at;                     /* unix time; 0: none yet */
	bool ok;
	int changes;
	char message[CTL_RELOAD_LINE];  /* the first error when refused */
};

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
	const struct ctl_reload_info *last_reload; /* NULL: none yet */
	/* The engine's read-only lookup (engine_ops.lookup); NULL: none. */
	int (*lookup)(void *ctx, const struct lk_query *q, lk_cb cb, void *cbctx);
	void *ctx;
	/* State sync counters: 0 and *out, -ENOENT when sync is off. May be
	 * NULL (no sync at all). */
	int (*sync_stats)(void *ctx, struct sync_stats *out);
	/* Servers whose replies leave past ikelb (ctl/bypass.h); NULL: none. */
	const struct bypass *bypass;
	/* 0 and the server's evacuation (ctl/evac.h), -ENOENT: none. May be
	 * NULL. */
	int (*evac)(void *ctx, int svc, int srv, struct evac_info *out);
};

/* Commands return 0 or a negative errno; the provider logs engine errors. */
struct ctl_cmd {
	int (*set_admin)(void *ctx, int svc, int srv, enum cfg_server_state st);
	int (*set_weight)(void *ctx, int svc, int srv, uint32_t weight);
	void (*shutdown)(void *ctx, bool keep_forwarding);
	/* What SIGHUP does, synchronously: 0 applied, or a negative errno
	 * with the reasons in out->errors. */
	int (*reload)(void *ctx, struct ctl_reload_result *out);
	/* The engine's decision log on/off: 0, or -EOPNOTSUPP (an engine without one). */
	int (*set_decision_log)(void *ctx, bool on);
	/* Drain, forget persistence, REDIRECT over vici (docs/operations.md,
	 * "Evacuate"): 0 once started (progress through view.evac), or a
	 * negative errno with why in err (-EOPNOTSUPP: the engine cannot). */
	int (*evacuate)(void *ctx, int svc, int srv, char *err, size_t errsz);
	void *ctx;
};

#endif
