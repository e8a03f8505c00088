/* Glue between the daemon loop and the health checker: probe results
 * become run-time health of real servers (rt_set_health). It sees only the
 * configuration, the run-time model and the loop's epoll set, not the
 * daemon. */
#ifndef IKELB_DAEMON_HEALTH_H
#define IKELB_DAEMON_HEALTH_H

#include "core/config.h"
#include "core/log.h"
#include "ctl/health.h"
#include "core/runtime.h"
#include "ctl/tcp_check.h"

/* A server of a service with tcp_ports is up only when its probe and its
 * TCP check both are (docs/tcp.md, "Health"): one health per server. */
struct dh_srv {
	uint8_t probe, tcp;          /* enum health_state of each check */
	uint8_t pushed;              /* what the runtime was last told */
};

struct daemon_health {
	struct health_checker *hc;   /* NULL when stopped */
	struct tcp_checker *tc;      /* NULL when stopped or no TCP checks */
	struct dh_srv *srv;          /* per server of every service, at base[svc] */
	int base[CFG_MAX_SERVICES];
	const struct cfg *cfg;
	const struct logger *log;
	struct runtime *rt;
	int epfd;                    /* -1 until daemon_health_watch */
};

void daemon_health_init(struct daemon_health *h, const struct cfg *cfg,
			const struct logger *log, struct runtime *rt);
/* Probes the servers of h->cfg; with an epoll set, watches the sockets.
 * 0 or a negative errno (logged). */
int daemon_health_start(struct daemon_health *h);
/* Adds the checker's sockets to epfd now and after every restart. */
int daemon_health_watch(struct daemon_health *h, int epfd);
/* Stop and start again on the (changed) configuration. */
int daemon_health_restart(struct daemon_health *h);
void daemon_health_on_fd(struct daemon_health *h);
void daemon_health_tick(struct daemon_health *h);
long daemon_health_timeout_ms(const struct daemon_health *h);
void daemon_health_stop(struct daemon_health *h);
/* 0 and *out, or -ENOENT when the server is not checked. */
int daemon_health_state(const struct daemon_health *h, int svc, int srv, struct health_info *out);

#endif
