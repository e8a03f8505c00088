/* Health checker: targets, probe scheduling and the rise/fall state
 * machine. See health.h for the contract and docs/health.md for the admin
 * view; sockets and pacing are in health_tx.c, probe formats in probe_*.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "ctl/health.h"
#include "ctl/health_tx.h"
#include "ikelb/hash.h"
#include "ikelb/ike_wire.h"

#define HC_FIRST_SPREAD_MS 1000 /* first probes spread over up to this */
#define HC_PACED_JITTER_MS 50   /* keeps postponed probes from re-bursting */
#define HC_RETRY_MS 100         /* after a probe could not be built or tracked */

struct hc_target {
	int svc, srv;
	struct ikelb_addr addr;
	uint16_t port;
	struct probe probe;
	uint32_t interval_ms, timeout_ms, rise, fall;
	int peer;         /* transport pacing peer, -1 for type none */
	bool outstanding;
	uint64_t id;      /* of the outstanding probe (IKE: SPIi) */
	uint64_t sent_ms, deadline_ms, next_ms; /* next_ms 0: not scheduled yet */
	struct health_info st;
};

struct health_checker {
	const struct logger *log;
	health_change_cb cb;
	void *cb_ctx;
	struct htx *tx;
	struct hc_target *t;
	int nt, capt;
	uint64_t rnd_seed, rnd_ctr;
	uint64_t paced;
};

/* Jitter only, nothing secret: a counter through the core's 64-bit hash,
 * seeded once, is random enough. */
static uint64_t hc_rand(struct health_checker *h)
{
	return ikelb_hash_u64(++h->rnd_ctr, h->rnd_seed);
}

static bool hc_probing(const struct hc_target *t)
{
	return t->probe.ops != NULL;
}

/* ---- state machine ---- */

/* Applies one result to s; returns true when the effective up changed or
 * an unknown target was confirmed up. */
static bool hc_apply(struct health_info *s, const struct hc_target *t, bool ok,
		     const char *reason)
{
	bool was = s->up;
	if (ok) {
		snprintf(s->detail, sizeof(s->detail), "%s", reason ? reason : "");
		s->probes_ok++;
		s->ok_streak++;
		s->fail_streak = 0;
		if (s->state == HEALTH_UNKNOWN) {
			/* A change the runtime must hear of: under init_state
			 * down an unknown server takes no new clients. */
			s->state = HEALTH_UP;
			s->up = true;
			return true;
		} else if (!s->up && s->ok_streak >= t->rise)
			s->up = true;
	} else {
		s->probes_failed++;
		s->fail_streak++;
		s->ok_streak = 0;
		snprintf(s->last_error, sizeof(s->last_error), "%s", reason ? reason : "failed");
		if (s->up && s->fail_streak >= t->fall)
			s->up = false;
	}
	if (s->up == was)
		return false;
	s->state = s->up ? HEALTH_UP : HEALTH_DOWN;
	return true;
}

static void hc_record(struct health_checker *h, struct hc_target *t, bool ok,
		      const char *reason, uint64_t now_ms)
{
	struct health_info *s = &t->st;
	char ab[IKELB_ADDR_STRLEN];
	ikelb_addr_str(&t->addr, ab, sizeof(ab));
	if (!hc_apply(s, t, ok, reason)) {
		if (!ok)
			log_debug(h->log, "health: %s port %u (service %d server %d): %s", ab,
				  t->port, t->svc, t->srv, s->last_error);
		return;
	}
	s->last_change_ms = now_ms;
	if (s->up)
		log_notice(h->log, "health: %s port %u (service %d server %d) is UP after %u successes",
			   ab, t->port, t->svc, t->srv, s->ok_streak);
	else
		log_notice(h->log, "health: %s port %u (service %d server %d) is DOWN after %u failures, last: %s",
			   ab, t->port, t->svc, t->srv, s->fail_streak, s->last_error);
	if (h->cb)
		h->cb(h->cb_ctx, t->svc, t->srv, s->up);
}

const uint32_t health_rtt_bounds_ms[HEALTH_RTT_BUCKETS] = { 1, 5, 10, 25, 50, 100, 250, 500,
							     1000 };

static void rtt_observe(struct health_info *st, uint64_t rtt)
{
	int i = 0;
	while (i < HEALTH_RTT_BUCKETS && rtt > health_rtt_bounds_ms[i])
		i++;
	if (i < HEALTH_RTT_BUCKETS)
		st->rtt_buckets[i]++;
	else
		st->rtt_over++;
	st->rtt_sum_ms += rtt;
}

static void hc_finish(struct health_checker *h, struct hc_target *t, bool ok,
		      const char *reason, uint64_t now_ms)
{
	if (t->outstanding) {
		htx_forget(h->tx, t->id);
		t->outstanding = false;
		if (ok) {
			uint64_t rtt = now_ms >= t->sent_ms ? now_ms - t->sent_ms : 0;
			t->st.has_rtt = true;
			t->st.last_rtt_ms = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
			rtt_observe(&t->st, rtt);
		}
	}
	hc_record(h, t, ok, reason, now_ms);
}

/* The transport found the probe this reply answers. */
static void hc_on_reply(void *ctx, const struct htx_probe *p, const uint8_t *buf, size_t len,
			uint64_t now_ms)
{
	struct health_checker *h = ctx;
	struct hc_target *t = &h->t[p->slot];
	if (!t->outstanding || t->id != p->id)
		return; /* cannot happen: the transport tracks only outstanding probes */
	char reason[HEALTH_ERR_MAX] = "";
	bool ok = t->probe.ops->judge(&t->probe, t->id, buf, len, reason, sizeof(reason));
	hc_finish(h, t, ok, reason, now_ms);
}

/* ---- setup ---- */

struct health_checker *health_new(const struct logger *log, health_change_cb cb, void *ctx)
{
	struct health_checker *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->log = log;
	h->cb = cb;
	h->cb_ctx = ctx;
	h->tx = htx_new(log, hc_on_reply, h);
	if (!h->tx) {
		free(h);
		return NULL;
	}
	if (getrandom(&h->rnd_seed, sizeof(h->rnd_seed), 0) != sizeof(h->rnd_seed))
		h->rnd_seed = (uint64_t)getpid(); /* jitter needs no secret seed */
	return h;
}

void health_free(struct health_checker *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->nt; i++)
		probe_fini(&h->t[i].probe);
	htx_free(h->tx);
	free(h->t);
	free(h);
}

void health_set_pacing(struct health_checker *h, uint32_t max_probes, uint32_t window_ms)
{
	htx_set_pacing(h->tx, max_probes, window_ms);
}

static int hc_find(const struct health_checker *h, int svc, int srv)
{
	for (int i = 0; i < h->nt; i++)
		if (h->t[i].svc == svc && h->t[i].srv == srv)
			return i;
	return -1;
}

/* config_parse.c guarantees these for the daemon, but the checker is also
 * fed hand-made cfg_health (tests, lab tools), and a zero interval would
 * spin health_tick while a zero rise or fall would flap on every probe. */
static int hc_check_timing(const struct logger *log, const struct cfg_health *hc)
{
	if (hc->type == CFG_HEALTH_NONE)
		return 0;
	if (!hc->interval_ms || !hc->timeout_ms || !hc->rise || !hc->fall) {
		log_err(log, "health: interval, timeout, rise and fall must be > 0");
		return -EINVAL;
	}
	return 0;
}

static int hc_grow(struct health_checker *h)
{
	if (h->nt < h->capt)
		return htx_reserve(h->tx, (uint32_t)h->nt + 1);
	int n = h->capt ? 2 * h->capt : 16;
	struct hc_target *t = realloc(h->t, (size_t)n * sizeof(*t));
	if (!t)
		return -ENOMEM;
	h->t = t;
	h->capt = n;
	return htx_reserve(h->tx, (uint32_t)h->nt + 1);
}

static void hc_target_init(struct hc_target *t, int svc, int srv, const struct ikelb_addr *addr,
			   uint16_t port, const struct cfg_health *hc)
{
	memset(t, 0, sizeof(*t));
	t->svc = svc;
	t->srv = srv;
	t->addr = *addr;
	t->port = port ? port : hc->port ? hc->port : IKE_PORT;
	t->interval_ms = hc->interval_ms;
	t->timeout_ms = hc->timeout_ms;
	t->rise = hc->rise;
	t->fall = hc->fall;
	t->peer = -1;
	t->st.up = true;
	t->st.state = hc->type == CFG_HEALTH_NONE ? HEALTH_UP : HEALTH_UNKNOWN;
}

int health_add_target(struct health_checker *h, int svc_idx, int srv_idx,
		      const struct ikelb_addr *addr, uint16_t port, const struct cfg_health *hc)
{
	if (!h || !addr || !hc)
		return -EINVAL;
	int rc = hc_check_timing(h->log, hc);
	if (rc < 0)
		return rc;
	if (hc_find(h, svc_idx, srv_idx) >= 0) {
		log_err(h->log, "health: service %d server %d added twice", svc_idx, srv_idx);
		return -EEXIST;
	}
	if ((rc = hc_grow(h)) < 0) {
		log_err(h->log, "health: %s", strerror(-rc));
		return rc;
	}
	struct hc_target *t = &h->t[h->nt];
	hc_target_init(t, svc_idx, srv_idx, addr, port, hc);
	if ((rc = probe_init(&t->probe, hc, h->log)) < 0)
		return rc;
	if (hc_probing(t) && (t->peer = htx_add_peer(h->tx, addr)) < 0) {
		rc = t->peer;
		probe_fini(&t->probe);
		return rc;
	}
	h->nt++;
	return 0;
}

int health_fds(const struct health_checker *h, int fds[2])
{
	return htx_fds(h->tx, fds);
}

/* ---- scheduling ---- */

/* interval ±10 %, so many targets do not drift into one burst. */
static uint64_t hc_next_probe_ms(struct health_checker *h, const struct hc_target *t,
				 uint64_t now_ms)
{
	uint64_t jit = t->interval_ms / 10;
	return now_ms + t->interval_ms - jit + (jit ? hc_rand(h) % (2 * jit + 1) : 0);
}

static void hc_send_probe(struct health_checker *h, struct hc_target *t, uint64_t now_ms)
{
	uint64_t at = htx_pace_at(h->tx, t->peer, now_ms);
	if (at > now_ms) {
		h->paced++;
		t->next_ms = at + hc_rand(h) % HC_PACED_JITTER_MS;
		return;
	}
	uint8_t buf[PROBE_MAX_LEN];
	struct htx_probe p = { .ops = t->probe.ops, .peer = t->peer, .port = t->port,
			       .slot = (int)(t - h->t) };
	int len = t->probe.ops->build(&t->probe, &t->addr, t->port, buf, sizeof(buf), &p.id);
	if (len <= 0 || htx_track(h->tx, &p) < 0) {
		/* Rare: no randomness, or a udp probe to the same peer is in flight. */
		t->next_ms = now_ms + HC_RETRY_MS;
		return;
	}
	t->outstanding = true;
	t->id = p.id;
	t->sent_ms = now_ms;
	t->deadline_ms = now_ms + t->timeout_ms;
	t->next_ms = hc_next_probe_ms(h, t, now_ms);
	t->st.probes_sent++;
	int rc = htx_send(h->tx, &p, buf, (size_t)len, now_ms);
	if (rc < 0) {
		char reason[HEALTH_ERR_MAX];
		snprintf(reason, sizeof(reason), "send: %s", strerror(-rc));
		hc_finish(h, t, false, reason, now_ms);
	}
}

void health_tick(struct health_checker *h, uint64_t now_ms)
{
	for (int i = 0; i < h->nt; i++) {
		struct hc_target *t = &h->t[i];
		if (!hc_probing(t))
			continue;
		if (t->outstanding && now_ms >= t->deadline_ms)
			hc_finish(h, t, false, "timeout", now_ms);
		if (!t->next_ms) {
			uint32_t spread = t->interval_ms < HC_FIRST_SPREAD_MS ? t->interval_ms
									   : HC_FIRST_SPREAD_MS;
			t->next_ms = now_ms + hc_rand(h) % spread;
		}
		if (!t->outstanding && now_ms >= t->next_ms)
			hc_send_probe(h, t, now_ms);
	}
}

uint64_t health_next_deadline_ms(const struct health_checker *h)
{
	uint64_t d = UINT64_MAX;
	for (int i = 0; i < h->nt; i++) {
		const struct hc_target *t = &h->t[i];
		if (!hc_probing(t))
			continue;
		/* An unscheduled target needs a tick now to get its first time. */
		uint64_t x = t->outstanding ? t->deadline_ms : t->next_ms;
		if (x < d)
			d = x;
	}
	return d;
}

void health_on_readable(struct health_checker *h, uint64_t now_ms)
{
	htx_on_readable(h->tx, now_ms);
}

/* ---- queries ---- */

int health_report(struct health_checker *h, int svc_idx, int srv_idx, bool ok,
		  const char *reason, uint64_t now_ms)
{
	int i = hc_find(h, svc_idx, srv_idx);
	if (i < 0)
		return -ENOENT;
	hc_finish(h, &h->t[i], ok, reason, now_ms);
	return 0;
}

int health_info(const struct health_checker *h, int svc_idx, int srv_idx, struct health_info *out)
{
	int i = hc_find(h, svc_idx, srv_idx);
	if (i < 0)
		return -ENOENT;
	*out = h->t[i].st;
	return 0;
}

int health_count(const struct health_checker *h)
{
	return h->nt;
}

int health_get(const struct health_checker *h, int i, int *svc_idx, int *srv_idx,
	       struct health_info *out)
{
	if (i < 0 || i >= h->nt)
		return -ENOENT;
	if (svc_idx)
		*svc_idx = h->t[i].svc;
	if (srv_idx)
		*srv_idx = h->t[i].srv;
	if (out)
		*out = h->t[i].st;
	return 0;
}

void health_get_counters(const struct health_checker *h, struct health_counters *out)
{
	struct htx_counters c;
	htx_get_counters(h->tx, &c);
	out->stray_replies = c.stray_replies;
	out->send_errors = c.send_errors;
	out->paced = h->paced;
}
