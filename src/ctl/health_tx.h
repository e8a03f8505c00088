/* Health probe transport: the sockets probes leave from, per-address
 * pacing, and the demultiplexer that hands each reply to the probe it
 * answers (docs/health.md, "Where probes come from" and "Pacing").
 *
 * One unconnected UDP socket per address family, bound to an ephemeral
 * port (never 500 or 4500, so a reply can never look like service
 * traffic). A reply is delivered only when it names an outstanding probe
 * (probe_ops.reply_id) and comes from that probe's address and port; all
 * else is counted as a stray and can never judge a probe. Times are the
 * caller's monotonic milliseconds. */
#ifndef IKELB_CTL_HEALTH_TX_H
#define IKELB_CTL_HEALTH_TX_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "ctl/probe.h"
#include "ikelb/addr.h"

#define HTX_PACE_MAX 16 /* upper bound for the probes allowed per window */

/* An outstanding probe, as the demultiplexer needs it. */
struct htx_probe {
	uint64_t id;                 /* from probe_ops.build, never 0 */
	const struct probe_ops *ops; /* the type whose reply_id names it */
	int peer;                    /* from htx_add_peer: address and pacing */
	uint16_t port;
	int slot;                    /* the caller's, handed back with the reply */
};

struct htx_counters {
	uint64_t stray_replies; /* matched no outstanding probe, came from the wrong source, or too long */
	uint64_t send_errors;
};

/* Called for each reply to an outstanding probe (the probe stays tracked:
 * the caller ends it with htx_forget). */
typedef void (*htx_reply_fn)(void *ctx, const struct htx_probe *p, const uint8_t *buf,
			     size_t len, uint64_t now_ms);

struct htx;

/* NULL on allocation failure. */
struct htx *htx_new(const struct logger *log, htx_reply_fn fn, void *ctx);
void htx_free(struct htx *x);

/* The pacing peer of addr (one per distinct address, whatever the port or
 * service), opening the socket of its family on first use. Returns the
 * peer index, or -errno (logged). */
int htx_add_peer(struct htx *x, const struct ikelb_addr *addr);
/* Makes room to track n outstanding probes. Returns 0 or -ENOMEM. */
int htx_reserve(struct htx *x, uint32_t n);

/* At most max_probes (1..HTX_PACE_MAX) to one peer per window_ms. */
void htx_set_pacing(struct htx *x, uint32_t max_probes, uint32_t window_ms);
/* Earliest time the peer may get another probe (now_ms if allowed now). */
uint64_t htx_pace_at(const struct htx *x, int peer, uint64_t now_ms);

/* Tracks p until htx_forget. Returns 0, or -EBUSY while p->id is in use
 * (a udp probe to the same address and port in flight). */
int htx_track(struct htx *x, const struct htx_probe *p);
void htx_forget(struct htx *x, uint64_t id);
/* Sends a tracked probe and charges it to its peer's pacing. Returns 0 or
 * -errno of sendto (the caller judges the probe failed). */
int htx_send(struct htx *x, const struct htx_probe *p, const uint8_t *buf, size_t len,
	     uint64_t now_ms);

/* The sockets to watch for EPOLLIN (0, 1 or 2). Returns the count. */
int htx_fds(const struct htx *x, int fds[2]);
/* Drains the sockets (bounded per call), delivering replies to fn. */
void htx_on_readable(struct htx *x, uint64_t now_ms);
void htx_get_counters(const struct htx *x, struct htx_counters *out);

#endif
