/* The socket engine (ARCHITECTURE.md, "Engines"; fullnat): a user-space UDP relay.
 * Clients send to VIP:port listening sockets; every client flow (client ip,
 * client port, VIP, port) gets an upstream UDP socket bound to an address of
 * the service's snat_pool (round-robin per real server) or kernel-chosen,
 * connected to the real server at the same port number; replies are relayed
 * to the client from the VIP:port socket. Every client datagram is steered
 * by src/core/steer.c, the user-space twin of the BPF program's decision.
 * Documented in docs/socket-engine.md.
 *
 *   struct engine e;
 *   sock_engine_open(rt, log, &e);    // binds, starts the worker thread(s)
 *   e.ops->set_table / set_server_state / read_stats / sweep   (any thread)
 *   e.ops->close(&e, false);          // stops the workers, closes sockets
 */
#ifndef IKELB_SOCK_ENGINE_H
#define IKELB_SOCK_ENGINE_H

#include <stdint.h>

#include "engine/engine.h"

struct sock_engine_opts {
	int workers;          /* worker threads, 0 = 1 (see docs/socket-engine.md) */
	uint16_t ike_port;    /* port with bare IKE framing (RFC 7296), 0 = 500;
			       * every other port uses RFC 3948 framing. Lets
			       * unprivileged tests map 500 to a high port. */
	uint32_t max_flows;   /* upstream flows, 0 = cfg->max_flows (then capped
			       * by RLIMIT_NOFILE) */
	uint32_t max_clients; /* steering tables, 0 = cfg values */
	uint32_t max_halfopen;
};

/* Opens listeners for every service of rt->cfg (all must be fullnat) and
 * starts the workers. New clients of rr/wrr/lc/wlc/fo are placed by rt's
 * schedulers; rt and its configuration must outlive the engine. 0, or -1
 * after logging why. */
int sock_engine_open(struct runtime *rt, const struct logger *log, struct engine *out);
int sock_engine_open_opts(struct runtime *rt, const struct logger *log,
			  const struct sock_engine_opts *o, struct engine *out);

/* Live upstream flows (sockets) of the engine, for tests and the API. */
uint32_t sock_engine_flows(struct engine *e);

#endif
