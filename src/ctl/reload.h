/* Configuration reload (SIGHUP). Weight, admin state and health-check
 * changes apply in place on both engines. Added, removed or changed
 * services and servers need an engine that can take a new configuration
 * (the bpf engine: learned state is kept, state pointing at removed
 * servers is purged); the socket engine then asks for a restart. Settings
 * that size or place the data path (engine, interfaces, API address, pin
 * directory, limits) always need a restart. A configuration that does not
 * load leaves the running one untouched. */
#ifndef IKELB_RELOAD_H
#define IKELB_RELOAD_H

struct daemon;

/* 0 applied, -1 refused or failed (logged; the old configuration runs on). */
int daemon_reload(struct daemon *d);

#endif
