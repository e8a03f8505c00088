/* Real-server health checking (DESIGN §3.5, docs/health.md).
 *
 * One checker object probes every (service, server) target from ikelb's own
 * address: one unconnected UDP socket per address family, bound to an
 * ephemeral port (never 500 or 4500, so a reply can never look like service
 * traffic). The daemon puts health_fds() into its epoll set, calls
 * health_on_readable() when one is readable and health_tick() when
 * health_next_deadline_ms() has passed. Time is always passed in by the
 * caller (milliseconds, any monotonic origin), which keeps the state machine
 * testable with a fake clock.
 *
 * Probe types:
 *   ike  - an IKE_SA_INIT with a random SPIi and a proposal no server accepts;
 *          alive = response with the same SPIi, R flag, SPIr 0, message id 0
 *          and a Notify NO_PROPOSAL_CHOSEN (14), INVALID_KE_PAYLOAD (17) or
 *          COOKIE (16390). The server keeps no IKE SA.
 *   udp  - send cfg_health.send, alive = reply starting with cfg_health.expect
 *          (any reply when expect is empty).
 *   none - always up, no traffic.
 *
 * State: a target starts effectively up with status UNKNOWN (a restart of
 * ikelb must not blackhole traffic before the first probes). `fall`
 * consecutive failures take it down, `rise` consecutive successes bring it
 * back; the first success of an UNKNOWN target makes it UP. The callback
 * fires only on changes of the effective up/down value. */
#ifndef IKELB_HEALTH_H
#define IKELB_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "ikelb/addr.h"
#include "core/log.h"

/* ---- IKE probe wire format (health_ike.c), pure functions ---- */

#define HEALTH_IKE_RANDOM_LEN 64 /* 32 bytes KE data + 32 bytes nonce */
#define HEALTH_IKE_PROBE_LEN 170
/* Transform ID used for ENCR, PRF, INTEG and DH: inside the private-use
 * range (RFC 7296 §3.3.2), which servers only accept by prior agreement. */
#define HEALTH_IKE_PRIVATE_ID 0xfee1
#define HEALTH_IKE_VENDOR_ID "ikelb health probe"

#define IKE_NOTIFY_NO_PROPOSAL_CHOSEN 14
#define IKE_NOTIFY_INVALID_KE_PAYLOAD 17
#define IKE_NOTIFY_COOKIE 16390

enum health_ike_verdict {
	HEALTH_IKE_ALIVE = 0,
	HEALTH_IKE_TRUNCATED,        /* shorter than a header, or length field > datagram */
	HEALTH_IKE_BAD_LENGTH,       /* length field != datagram length */
	HEALTH_IKE_BAD_VERSION,      /* not IKEv2 */
	HEALTH_IKE_WRONG_SPI_I,      /* not an answer to this probe */
	HEALTH_IKE_SPI_R_NONZERO,    /* responder created state (RFC 7296 §2.6: must be 0) */
	HEALTH_IKE_NOT_RESPONSE,     /* R flag missing */
	HEALTH_IKE_WRONG_EXCHANGE,   /* not IKE_SA_INIT */
	HEALTH_IKE_WRONG_MSG_ID,     /* message id not 0 */
	HEALTH_IKE_BAD_PAYLOAD,      /* payload chain overruns or is inconsistent */
	HEALTH_IKE_NO_NOTIFY,        /* well-formed but no liveness notify */
	HEALTH_IKE_UNEXPECTED_NOTIFY, /* an error notify other than 14/17/16390 */
	HEALTH_IKE__MAX
};

/* Writes the probe into buf (cap >= HEALTH_IKE_PROBE_LEN). spi_i must not be
 * 0; rnd supplies the KE data and nonce. Returns the length or 0. */
size_t health_ike_build_probe(uint8_t *buf, size_t cap, uint64_t spi_i,
			      const uint8_t rnd[HEALTH_IKE_RANDOM_LEN]);
/* The SPIi of any datagram long enough to carry one (read big-endian), else 0. */
uint64_t health_ike_spi_i(const uint8_t *buf, size_t len);
/* Judges a reply to the probe with initiator SPI spi_i. On ALIVE and on
 * UNEXPECTED_NOTIFY, *notify (if not NULL) receives the notify type. */
enum health_ike_verdict health_ike_check_reply(const uint8_t *buf, size_t len, uint64_t spi_i,
					       uint16_t *notify);
const char *health_ike_verdict_str(enum health_ike_verdict v);

/* ---- checker ---- */

enum health_status { HEALTH_UNKNOWN = 0, HEALTH_UP = 1, HEALTH_DOWN = 2 };

#define HEALTH_ERR_MAX 64

struct health_state {
	enum health_status status;
	bool up;                 /* effective: what the data path should use */
	uint32_t ok_streak;      /* consecutive successes */
	uint32_t fail_streak;    /* consecutive failures */
	uint64_t probes_sent;
	uint64_t probes_ok;
	uint64_t probes_failed;
	bool has_rtt;
	uint32_t last_rtt_ms;    /* of the last successful probe (caller clock resolution) */
	uint64_t last_change_ms; /* 0: never changed */
	char last_error[HEALTH_ERR_MAX]; /* "" until the first failure */
};

struct health_counters {
	uint64_t stray_replies;  /* matched no outstanding probe, or from the wrong address */
	uint64_t send_errors;
	uint64_t paced;          /* probes postponed by the per-address pacing */
};

typedef void (*health_change_cb)(void *ctx, int svc_idx, int srv_idx, bool up);

struct health_checker;

/* cb may be NULL. Returns NULL on allocation failure. */
struct health_checker *health_new(const struct logger *log, health_change_cb cb, void *ctx);
void health_free(struct health_checker *h);

/* Adds a target; probes go to addr:port (port 0: hc->port, else 500).
 * hc's send/expect bytes are copied. Opens the socket of the address family
 * on first use. Returns 0, or -1 with a logged error (socket failure,
 * duplicate (svc, srv), bad hc values). */
int health_add_target(struct health_checker *h, int svc_idx, int srv_idx,
		      const struct ikelb_addr *addr, uint16_t port, const struct cfg_health *hc);

/* The sockets to watch for EPOLLIN (0, 1 or 2 of them). Returns the count. */
int health_fds(const struct health_checker *h, int fds[2]);
/* Drains the readable sockets (bounded per call) and judges the replies. */
void health_on_readable(struct health_checker *h, uint64_t now_ms);
/* Times out overdue probes and sends due ones. */
void health_tick(struct health_checker *h, uint64_t now_ms);
/* When health_tick next has work; UINT64_MAX when there are no probing targets. */
uint64_t health_next_deadline_ms(const struct health_checker *h);

/* Feeds one probe result as if a probe had finished (used by tests, and by
 * callers that check a target by other means). Returns -1 for an unknown target. */
int health_report(struct health_checker *h, int svc_idx, int srv_idx, bool ok,
		  const char *reason, uint64_t now_ms);

/* Per-address pacing: at most max_probes to one server address per
 * window_ms (default 2 per 1000 ms, under strongSwan's cookie_threshold_ip 3). */
void health_set_pacing(struct health_checker *h, uint32_t max_probes, uint32_t window_ms);

/* Returns 0 and fills *out, or -1 for an unknown target. */
int health_state(const struct health_checker *h, int svc_idx, int srv_idx, struct health_state *out);
int health_count(const struct health_checker *h);
/* Target i in insertion order (0 <= i < health_count). Returns 0 or -1. */
int health_get(const struct health_checker *h, int i, int *svc_idx, int *srv_idx,
	       struct health_state *out);
void health_get_counters(const struct health_checker *h, struct health_counters *out);
const char *health_status_name(enum health_status s);

#endif
