#include "ctl/tcp_check.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sockaddr.h"

struct tcpc_target {
	int svc, srv;
	struct sockaddr_storage sa;
	socklen_t salen;
	int fd;                 /* connect in flight, else -1 */
	uint64_t started_ms, next_ms, polled_ms;
	uint32_t interval_ms, timeout_ms, rise, fall;
	uint32_t ok_streak, fail_streak;
	struct tcpc_info info;
};

struct tcp_checker {
	struct tcpc_target *t;
	int n, cap;
	const struct logger *log;
	tcpc_change_cb cb;
	void *ctx;
};

struct tcp_checker *tcpc_new(const struct logger *log, tcpc_change_cb cb, void *ctx)
{
	struct tcp_checker *c = calloc(1, sizeof(*c));

	if (c)
		*c = (struct tcp_checker){ .log = log, .cb = cb, .ctx = ctx };
	return c;
}

static void target_close(struct tcpc_target *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

void tcpc_free(struct tcp_checker *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n; i++)
		target_close(&c->t[i]);
	free(c->t);
	free(c);
}

int tcpc_add(struct tcp_checker *c, int svc, int srv, const struct ikelb_addr *addr,
	     uint16_t port, const struct cfg_health *hc)
{
	if (c->n == c->cap) {
		int cap = c->cap ? c->cap * 2 : 16;
		struct tcpc_target *nt = realloc(c->t, (size_t)cap * sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		c->t = nt;
		c->cap = cap;
	}
	struct tcpc_target *t = &c->t[c->n];
	memset(t, 0, sizeof(*t));
	t->svc = svc;
	t->srv = srv;
	t->fd = -1;
	t->salen = ikelb_sockaddr_from_addr(addr, port, &t->sa);
	t->interval_ms = hc->interval_ms;
	t->timeout_ms = hc->timeout_ms;
	t->rise = hc->rise;
	t->fall = hc->fall;
	c->n++;
	return 0;
}

/* The rise/fall machine of docs/health.md: the first success of an
 * unknown target makes it up at once. */
static void target_result(struct tcp_checker *c, struct tcpc_target *t, bool ok,
			  const char *why)
{
	enum health_state before = t->info.state;

	target_close(t);
	t->info.checks++;
	if (ok) {
		t->info.ok++;
		t->fail_streak = 0;
		t->ok_streak++;
		if (before == HEALTH_UNKNOWN || (before == HEALTH_DOWN && t->ok_streak >= t->rise))
			t->info.state = HEALTH_UP;
	} else {
		t->info.failed++;
		t->ok_streak = 0;
		t->fail_streak++;
		snprintf(t->info.last_error, sizeof(t->info.last_error), "%s", why);
		if (before != HEALTH_DOWN && t->fail_streak >= t->fall)
			t->info.state = HEALTH_DOWN;
	}
	if (t->info.state != before && c->cb)
		c->cb(c->ctx, t->svc, t->srv, t->info.state == HEALTH_UP);
}

static void target_start(struct tcp_checker *c, struct tcpc_target *t, uint64_t now_ms)
{
	t->next_ms = now_ms + t->interval_ms;
	t->started_ms = t->polled_ms = now_ms;
	t->fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0) {
		target_result(c, t, false, strerror(errno));
		return;
	}
	/* Reset on close: no TIME_WAIT on ikelb, nothing left half-open on
	 * the server. */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	(void)setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (connect(t->fd, (struct sockaddr *)&t->sa, t->salen) == 0)
		target_result(c, t, true, "");
	else if (errno != EINPROGRESS)
		target_result(c, t, false, strerror(errno));
}

static void target_poll(struct tcp_checker *c, struct tcpc_target *t, uint64_t now_ms)
{
	struct pollfd pfd = { .fd = t->fd, .events = POLLOUT };
	int err = 0;
	socklen_t el = sizeof(err);

	t->polled_ms = now_ms;
	if (poll(&pfd, 1, 0) == 1) {
		if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		target_result(c, t, err == 0, err ? strerror(err) : "");
	} else if (now_ms - t->started_ms >= t->timeout_ms) {
		target_result(c, t, false, "timeout");
	}
}

void tcpc_tick(struct tcp_checker *c, uint64_t now_ms)
{
	for (int i = 0; i < c->n; i++) {
		struct tcpc_target *t = &c->t[i];
		if (t->fd >= 0)
			target_poll(c, t, now_ms);
		else if (now_ms >= t->next_ms)
			target_start(c, t, now_ms);
	}
}

uint64_t tcpc_next_deadline_ms(const struct tcp_checker *c)
{
	uint64_t next = UINT64_MAX;

	for (int i = 0; c && i < c->n; i++) {
		const struct tcpc_target *t = &c->t[i];
		uint64_t at = t->fd >= 0 ? t->polled_ms + TCPC_POLL_MS : t->next_ms;
		if (at < next)
			next = at;
	}
	return next;
}

int tcpc_info(const struct tcp_checker *c, int svc, int srv, struct tcpc_info *out)
{
	for (int i = 0; c && i < c->n; i++)
		if (c->t[i].svc == svc && c->t[i].srv == srv) {
			*out = c->t[i].info;
			return 0;
		}
	return -ENOENT;
}
