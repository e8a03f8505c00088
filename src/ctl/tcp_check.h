/* TCP connect checks for services with tcp_ports (docs/tcp.md, "Health"):
 * every interval a non-blocking connect to server:port; a completed
 * handshake is a success, a refusal, an error or no answer within the
 * timeout a failure; rise/fall as for the probes (docs/health.md). No
 * socket stays open between checks and nothing is sent: the connection is
 * reset right after the handshake. Results are polled from tcpc_tick (the
 * daemon calls it at tcpc_next_deadline_ms), so no epoll registration is
 * needed. Time is passed in by the caller. */
#ifndef IKELB_CTL_TCP_CHECK_H
#define IKELB_CTL_TCP_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/health_state.h"
#include "core/log.h"
#include "ikelb/addr.h"

#define TCPC_ERR_MAX 64
#define TCPC_POLL_MS 20 /* how often a connect in flight is looked at */

struct tcpc_info {
	enum health_state state;
	uint64_t checks, ok, failed;
	char last_error[TCPC_ERR_MAX];
};

/* Fires when a target's state changes to UP or DOWN. */
typedef void (*tcpc_change_cb)(void *ctx, int svc, int srv, bool up);

struct tcp_checker;

struct tcp_checker *tcpc_new(const struct logger *log, tcpc_change_cb cb, void *ctx);
void tcpc_free(struct tcp_checker *c);
/* Checks addr:port with hc's interval, timeout, rise and fall. 0 or -errno. */
int tcpc_add(struct tcp_checker *c, int svc, int srv, const struct ikelb_addr *addr,
	     uint16_t port, const struct cfg_health *hc);
void tcpc_tick(struct tcp_checker *c, uint64_t now_ms);
/* UINT64_MAX without targets. */
uint64_t tcpc_next_deadline_ms(const struct tcp_checker *c);
/* 0 and *out, or -ENOENT when (svc, srv) is not checked. */
int tcpc_info(const struct tcp_checker *c, int svc, int srv, struct tcpc_info *out);

#endif
