#include "ctl/daemon_health.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/clock.h"

static void on_change(void *ctx, int svc, int srv, bool up)
{
	struct daemon_health *h = ctx;
	const struct cfg_service *s = &h->cfg->services[svc];
	if (up)
		log_notice(h->log, "health: %s/%s is up", s->name, s->servers[srv].name);
	else
		log_warn(h->log, "health: %s/%s is down", s->name, s->servers[srv].name);
	rt_set_health(h->rt, svc, srv, up, clock_mono_ms());
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
}

long daemon_health_timeout_ms(const struct daemon_health *h)
{
	if (!h->hc)
		return -1;
	uint64_t next = health_next_deadline_ms(h->hc);
	if (next == UINT64_MAX)
		return -1;
	uint64_t now = clock_mono_ms();
	return next <= now ? 0 : (long)(next - now > 60000 ? 60000 : next - now);
}

void daemon_health_stop(struct daemon_health *h)
{
	health_free(h->hc);
	h->hc = NULL;
}

int daemon_health_state(const struct daemon_health *h, int svc, int srv, struct health_info *out)
{
	return h->hc && health_info(h->hc, svc, srv, out) == 0 ? 0 : -ENOENT;
}
