/* Real-server health checker (ARCHITECTURE.md, Control plane;
 * docs/health.md): the rise/fall state machine and the scheduling of
 * probes per (service, server) target.
 *
 * Three parts: this checker decides when to probe and what a result means;
 * the transport (health_tx.h) owns the sockets, the per-address pacing and
 * the routing of replies; the probe types (probe.h: ike, udp) build probes
 * and judge replies. The daemon puts health_fds() into its epoll set, calls
 * health_on_readable() when one is readable and health_tick() when
 * health_next_deadline_ms() has passed. Time is always passed in by the
 * caller (milliseconds, any monotonic origin), which keeps the state machine
 * testable with a fake clock.
 *
 * State: a target starts effectively up with state UNKNOWN (a restart of
 * ikelb must not blackhole traffic before the first probes). `fall`
 * consecutive failures take it down, `rise` consecutive successes bring it
 * back; the first success of an UNKNOWN target makes it UP. The callback
 * fires only on changes of the effective up/down value. Type none is
 * always UP and sends nothing.
 *
 * Errors: functions returning int give 0 or a negative errno. */
#ifndef IKELB_CTL_HEALTH_H
#define IKELB_CTL_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/health_state.h"
#include "core/log.h"
#include "ctl/probe.h"
#include "ikelb/addr.h"

#define HEALTH_ERR_MAX PROBE_REASON_MAX

/* Probe round-trip histogram: upper bounds in ms of the finite buckets
 * (the last, +Inf, is the count); fixed so /metrics families stay small. */
#define HEALTH_RTT_BUCKETS 9
extern const uint32_t health_rtt_bounds_ms[HEALTH_RTT_BUCKETS];

/* What the checker knows of one target. */
struct health_info {
	enum health_state state;
	bool up;                 /* effective: what the data path should use */
	uint32_t ok_streak;      /* consecutive successes */
	uint32_t fail_streak;    /* consecutive failures */
	uint64_t probes_sent;
	uint64_t probes_ok;
	uint64_t probes_failed;
	bool has_rtt;
	uint32_t last_rtt_ms;    /* of the last successful probe (caller clock resolution) */
	/* Successful probes by RTT: [i] counts those <= bound i and > bound
	 * i-1; rtt_over those above the last bound; rtt_sum_ms all of them. */
	uint64_t rtt_buckets[HEALTH_RTT_BUCKETS];
	uint64_t rtt_over;
	uint64_t rtt_sum_ms;
	uint64_t last_change_ms; /* 0: never changed */
	char last_error[HEALTH_ERR_MAX]; /* "" until the first failure */
	char detail[HEALTH_ERR_MAX];     /* what the last alive answer said beyond alive */
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
 * on first use. Returns 0, -EEXIST for a duplicate (svc, srv), -EINVAL for
 * hc values the checker cannot run, or the -errno of a socket or
 * allocation failure; all logged. */
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
 * callers that check a target by other means). Returns 0 or -ENOENT. */
int health_report(struct health_checker *h, int svc_idx, int srv_idx, bool ok,
		  const char *reason, uint64_t now_ms);

/* Per-address pacing: at most max_probes to one server address per
 * window_ms (default 2 per 1000 ms, under strongSwan's cookie_threshold_ip 3). */
void health_set_pacing(struct health_checker *h, uint32_t max_probes, uint32_t window_ms);

/* Fills *out and returns 0, or -ENOENT for an unknown target. */
int health_info(const struct health_checker *h, int svc_idx, int srv_idx, struct health_info *out);
int health_count(const struct health_checker *h);
/* Target i in insertion order (0 <= i < health_count). Returns 0 or -ENOENT. */
int health_get(const struct health_checker *h, int i, int *svc_idx, int *srv_idx,
	       struct health_info *out);
void health_get_counters(const struct health_checker *h, struct health_counters *out);

#endif
