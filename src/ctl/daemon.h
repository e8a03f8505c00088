/* The ikelb daemon: owns the configuration, the engine, the run-time model,
 * health checking and the API, and runs one epoll loop over all of them.
 * Single-threaded control plane: no locks around the model. */
#ifndef IKELB_DAEMON_H
#define IKELB_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/log.h"
#include "core/runtime.h"
#include "engine/engine.h"

struct api;
struct health_checker;

struct daemon_opts {
	const char *config_path;
	bool flush_state;  /* start with empty learned state */
	enum log_level log_level;
};

struct daemon {
	struct daemon_opts opts;
	struct cfg cfg;
	struct logger log;
	struct engine eng;
	bool have_engine;
	struct runtime rt;
	struct health_checker *health;
	struct api *api;
	struct eng_stats stats;   /* last read, refreshed on demand */
	int epfd, sigfd, timerfd;
	bool stopping;
	bool keep_forwarding;     /* leave the data path attached on exit */
	uint64_t started_ms;
	uint64_t swept;           /* idle state entries expired */
};

uint64_t daemon_now_ms(void);
int daemon_run(const struct daemon_opts *opts);
/* Refresh d->stats from the engine. */
int daemon_read_stats(struct daemon *d);

#endif
