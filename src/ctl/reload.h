/* Configuration reload (SIGHUP, POST /v1/reload). Weight, admin state and
 * health-check changes apply in place on both engines; a weight or admin
 * state set through the API survives unless the file changed that setting
 * of that server (rt_reload_server). Added, removed or changed
 * services and servers need an engine that can take a new configuration
 * (the bpf engine: learned state is kept, state pointing at removed
 * servers is purged); the socket engine then asks for a restart. Settings
 * that size or place the data path (engine, interfaces, API address, pin
 * directory, limits) always need a restart. A configuration that does not
 * load leaves the running one untouched. */
#ifndef IKELB_RELOAD_H
#define IKELB_RELOAD_H

#include "core/config.h"
#include "core/log.h"
#include "ctl/daemon_health.h"
#include "core/runtime.h"
#include "ctl/view.h"
#include "engine/engine.h"

/* The parts of the daemon a reload replaces or drives. */
struct reload_target {
	const char *config_path;
	const struct logger *log;
	struct cfg *cfg;              /* the running configuration */
	struct runtime *rt;
	struct eng_stats *stats;
	struct engine *eng;
	struct daemon_health *health;
	struct ctl_reload_result *res; /* filled by reload_config */
};

/* 0 applied, or a negative errno: refused or failed (logged; the old
 * configuration runs on). */
int reload_config(const struct reload_target *t);
/* Remember res as the last reload (now) for /v1/status. */
void reload_note(struct ctl_reload_info *last, const struct ctl_reload_result *res);

#endif
