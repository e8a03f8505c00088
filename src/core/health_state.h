/* The health of one real server, one enum for the checker and the run-time
 * state (ARCHITECTURE.md, Control plane). UNKNOWN counts as up: a restart
 * must not blackhole traffic before the first probes return. */
#ifndef IKELB_CORE_HEALTH_STATE_H
#define IKELB_CORE_HEALTH_STATE_H

enum health_state { HEALTH_UNKNOWN = 0, HEALTH_UP = 1, HEALTH_DOWN = 2 };

/* "unknown", "up", "down"; "?" for a value outside the enum. */
const char *health_state_name(enum health_state s);

#endif
