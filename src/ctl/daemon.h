/* The ikelb daemon: owns the configuration, the engine, the run-time model,
 * health checking and the API, and runs one epoll loop over all of them.
 * Single-threaded control plane: no locks around the model. The parts get
 * narrow interfaces (ctl/view.h for the API, struct daemon_health, struct
 * reload_target), never the daemon itself. */
#ifndef IKELB_DAEMON_H
#define IKELB_DAEMON_H

#include <stdbool.h>

#include "core/log.h"

struct daemon_opts {
	const char *config_path;
	bool flush_state;  /* start with empty learned state */
	enum log_level log_level;
	char **argv;       /* this process's arguments, for a re-exec */
};

/* Runs until a signal or the API stops it. The process exit code. */
int daemon_run(const struct daemon_opts *opts);

#endif
