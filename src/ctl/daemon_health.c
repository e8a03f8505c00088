#include "ctl/daemon_health.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/clock.h"

static void push(struct daemon_health *h, int svc, int srv, bool up)
{
	const struct cfg_service *s = &h->cfg->services[svc];
	if (up)
		log_notice(h->log, "health: %s/%s is up", s->name, s->servers[srv].name);
	else
		log_warn(h->log, "health: %s/%s is down", s->name, s->servers[srv].name);
	rt_set_health(h->rt, svc, srv, up, clock_mono_ms());
}

/* Both checks of a server with a TCP check: down as soon as one is down,
 * up when both are; while one is still unknown nothing changes (a restart
 * must not take a server down before its TCP check has run). */
static void combine(struct daemon_health *h, int svc, int srv)
{
	struct dh_srv *d = &h->srv[h->base[svc] + srv];
	uint8_t c = d->probe == HEALTH_DOWN || d->tcp == HEALTH_DOWN ? HEALTH_DOWN
		    : d->probe == HEALTH_UP && d->tcp == HEALTH_UP  ? HEALTH_UP
								     : HEALTH_UNKNOWN;
	if (c == HEALTH_UNKNOWN || c == d->pushed)
		return;
	d->pushed = c;
	push(h, svc, srv, c == HEALTH_UP);
}

static void on_change(void *ctx, int svc, int srv, bool up)
{
	struct daemon_health *h = ctx;

	if (!h->cfg->services[svc].tcp_check) {
		push(h, svc, srv, up);
		return;
	}
	h->srv[h->base[svc] + srv].probe = up ? HEALTH_UP : HEALTH_DOWN;
	combine(h, svc, srv);
}

static void on_tcp_change(void *ctx, int svc, int srv, bool up)
{
	struct daemon_health *h = ctx;
	const struct cfg_service *s = &h->cfg->services[svc];

	log_info(h->log, "health: %s/%s TCP check is %s", s->name, s->servers[srv].name,
		 up ? "up" : "down");
	h->srv[h->base[svc] + srv].tcp = up ? HEALTH_UP : HEALTH_DOWN;
	combine(h, svc, srv);
}

/* TCP checks of the services with tcp_ports, on their first tcp_port. */
static int add_tcp_targets(struct daemon_health *h)
{
	int total = 0;

	for (int i = 0; i < h->cfg->nservices; i++) {
		h->base[i] = total;
		total += h->cfg->services[i].nservers;
	}
	h->srv = calloc((size_t)total + 1, sizeof(*h->srv));
	h->tc = tcpc_new(h->log, on_tcp_change, h);
	if (!h->srv || !h->tc) {
		log_err(h->log, "health: out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < h->cfg->nservices; i++) {
		const struct cfg_service *s = &h->cfg->services[i];
		if (!s->tcp_check || s->health.type == CFG_HEALTH_NONE)
			continue;
		for (int j = 0; j < s->nservers; j++)
			if (tcpc_add(h->tc, i, j, &s->servers[j].addr, s->tcp_ports[0], &s->health) < 0)
				return -ENOMEM;
	}
	return 0;
}

void daemon_health_init(struct daemon_health *h, const struct cfg *cfg,
			const struct logger *log, struct runtime *rt)
{
	*h = (struct daemon_health){ .cfg = cfg, .log = log, .rt = rt, .epfd = -1 };
}

static int add_targets(struct daemon_health *h)
{
	for (int i = 0; i < h->cfg->nservices; i++) {
		const struct cfg_service *s = &h->cfg->services[i];
		if (s->health.type == CFG_HEALTH_NONE)
			continue;
		uint16_t port = s->health.port ? s->health.port : s->ike_port;
		for (int j = 0; j < s->nservers; j++)
			if (health_add_target(h->hc, i, j, &s->servers[j].addr, port, &s->health) < 0)
				return -EINVAL; /* logged by the checker */
	}
	return 0;
}

static int watch_fds(struct daemon_health *h)
{
	int fds[2];
	int n = h->hc && h->epfd >= 0 ? health_fds(h->hc, fds) : 0;
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			int rc = -errno;
			log_err(h->log, "health: epoll_ctl: %s", strerror(errno));
			return rc;
		}
	}
	return 0;
}

int daemon_health_start(struct daemon_health *h)
{
	h->hc = health_new(h->log, on_change, h);
	if (!h->hc) {
		log_err(h->log, "health: out of memory");
		return -ENOMEM;
	}
	int rc = add_targets(h);
	if (rc == 0)
		rc = add_tcp_targets(h);
	return rc < 0 ? rc : watch_fds(h);
}

int daemon_health_watch(struct daemon_health *h, int epfd)
{
	h->epfd = epfd;
	return watch_fds(h);
}

int daemon_health_restart(struct daemon_health *h)
{
	daemon_health_stop(h);
	return daemon_health_start(h);
}

void daemon_health_on_fd(struct daemon_health *h)
{
	if (h->hc)
		health_on_readable(h->hc, clock_mono_ms());
}

void daemon_health_tick(struct daemon_health *h)
{
	if (h->hc)
		health_tick(h->hc, clock_mono_ms());
	if (h->tc)
		tcpc_tick(h->tc, clock_mono_ms());
}

long daemon_health_timeout_ms(const struct daemon_health *h)
{
	if (!h->hc)
		return -1;
	uint64_t next = health_next_deadline_ms(h->hc);
	uint64_t tnext = tcpc_next_deadline_ms(h->tc);
	if (tnext < next)
		next = tnext;
	if (next == UINT64_MAX)
		return -1;
	uint64_t now = clock_mono_ms();
	return next <= now ? 0 : (long)(next - now > 60000 ? 60000 : next - now);
}

void daemon_health_stop(struct daemon_health *h)
{
	health_free(h->hc);
	h->hc = NULL;
	tcpc_free(h->tc);
	h->tc = NULL;
	free(h->srv);
	h->srv = NULL;
}

/* The probe's view, with the TCP check's verdict over it: a server whose
 * TCP check fails shows down with that reason. */
int daemon_health_state(const struct daemon_health *h, int svc, int srv, struct health_info *out)
{
	struct tcpc_info ti;

	if (!h->hc || health_info(h->hc, svc, srv, out) != 0)
		return -ENOENT;
	if (tcpc_info(h->tc, svc, srv, &ti) != 0 || ti.state == HEALTH_UP)
		return 0;
	out->up = false;
	if (ti.state == HEALTH_DOWN || out->state == HEALTH_UP)
		out->state = ti.state;
	if (ti.state == HEALTH_DOWN)
		snprintf(out->last_error, sizeof(out->last_error), "tcp %u: %.40s",
			 h->cfg->services[svc].tcp_ports[0], ti.last_error);
	return 0;
}
