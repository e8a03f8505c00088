#include "ctl/daemon_health.h"

#include <stdint.h>
#include <sys/epoll.h>

#include "ctl/daemon.h"
#include "ctl/health.h"

static void on_change(void *ctx, int svc, int srv, bool up)
{
	struct daemon *d = ctx;
	const struct cfg_service *s = &d->cfg.services[svc];
	if (up)
		log_notice(&d->log, "health: %s/%s is up", s->name, s->servers[srv].name);
	else
		log_warn(&d->log, "health: %s/%s is down", s->name, s->servers[srv].name);
	rt_set_health(&d->rt, svc, srv, up, daemon_now_ms());
}

int daemon_health_start(struct daemon *d)
{
	d->health = health_new(&d->log, on_change, d);
	if (!d->health)
		return -1;
	for (int i = 0; i < d->cfg.nservices; i++) {
		const struct cfg_service *s = &d->cfg.services[i];
		if (s->health.type == CFG_HEALTH_NONE)
			continue;
		for (int j = 0; j < s->nservers; j++) {
			uint16_t port = s->health.port ? s->health.port : s->ike_port;
			if (health_add_target(d->health, i, j, &s->servers[j].addr, port, &s->health) < 0)
				return -1;
		}
	}
	return 0;
}

int daemon_health_add_fds(struct daemon *d)
{
	int fds[2];
	int n = d->health ? health_fds(d->health, fds) : 0;
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			return -1;
	}
	return 0;
}

void daemon_health_on_fd(struct daemon *d, int fd)
{
	(void)fd;
	if (d->health)
		health_on_readable(d->health, daemon_now_ms());
}

void daemon_health_tick(struct daemon *d)
{
	if (d->health)
		health_tick(d->health, daemon_now_ms());
}

long daemon_health_timeout_ms(struct daemon *d)
{
	if (!d->health)
		return -1;
	uint64_t next = health_next_deadline_ms(d->health);
	if (next == UINT64_MAX)
		return -1;
	uint64_t now = daemon_now_ms();
	return next <= now ? 0 : (long)(next - now > 60000 ? 60000 : next - now);
}

void daemon_health_stop(struct daemon *d)
{
	health_free(d->health);
	d->health = NULL;
}
