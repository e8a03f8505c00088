/* Health probe types behind one small ops struct (docs/health.md).
 *
 * The checker (health.c) asks a type to build the next probe and to judge
 * the reply; the transport (health_tx.c) asks it which probe a reply names.
 * A type knows nothing of sockets, pacing or the rise/fall machine, so a
 * new one is an ops table and a case in probe_init.
 *
 *   ike  - probe_ike.c: an IKE_SA_INIT nobody accepts, named by its SPIi.
 *   udp  - probe_udp.c: the configured payload; the reply names the probe
 *          only by its source address and port. */
#ifndef IKELB_CTL_PROBE_H
#define IKELB_CTL_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/log.h"
#include "ikelb/addr.h"

/* Largest probe any type sends: a udp payload fits one unfragmented
 * datagram on any path with an MTU of 1500. */
#define PROBE_MAX_LEN 1400
/* Longest failure reason (NUL included). */
#define PROBE_REASON_MAX 64

struct probe_ops;

/* One target's probe: its type and the bytes that type needs. */
struct probe {
	const struct probe_ops *ops; /* NULL: type none, never probed */
	uint8_t *send, *expect;      /* udp: owned copies of the configured bytes */
	size_t send_len, expect_len;
};

struct probe_ops {
	const char *name;
	/* Checks and copies what the type needs of hc. Returns 0 or -errno. */
	int (*init)(struct probe *p, const struct cfg_health *hc, const struct logger *log);
	/* Writes the next probe for to:port into buf (cap >= PROBE_MAX_LEN);
	 * *id (never 0) names it for the reply demultiplexer. Returns the
	 * length or -errno. */
	int (*build)(const struct probe *p, const struct ikelb_addr *to, uint16_t port,
		     uint8_t *buf, size_t cap, uint64_t *id);
	/* The probe id a datagram from from:port would name, 0 if none. */
	uint64_t (*reply_id)(const uint8_t *buf, size_t len, const struct ikelb_addr *from,
			     uint16_t port);
	/* true when the reply to probe id shows the server alive; otherwise
	 * the reason goes into reason[cap]; an alive answer may leave a detail
	 * there for the operator ("" when it was as expected). */
	bool (*judge)(const struct probe *p, uint64_t id, const uint8_t *buf, size_t len,
		      char *reason, size_t cap);
};

const struct probe_ops *probe_ike_ops(void);
const struct probe_ops *probe_udp_ops(void);

/* Sets p up for hc's type (p->ops stays NULL for type none). Returns 0, or
 * -EINVAL (logged) for a type or values the type cannot use, -ENOMEM. */
int probe_init(struct probe *p, const struct cfg_health *hc, const struct logger *log);
void probe_fini(struct probe *p);

/* Type i (0, 1, ...; NULL past the last) in demultiplexing order: ike
 * first, since its id is in the payload and udp's only in the source. */
const struct probe_ops *probe_type(int i);

#endif
