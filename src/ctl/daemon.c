#include "ctl/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "ctl/api.h"
#include "ctl/daemon_engine.h"
#include "ctl/daemon_health.h"
#include "ctl/reload.h"

#define SWEEP_EVERY_S 5

uint64_t daemon_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int daemon_read_stats(struct daemon *d)
{
	if (!d->have_engine || !d->eng.ops->read_stats)
		return 0;
	return d->eng.ops->read_stats(&d->eng, &d->stats);
}

static int ep_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int setup_fds(struct daemon *d)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->epfd < 0 || d->sigfd < 0 || d->timerfd < 0)
		return -1;
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	timerfd_settime(d->timerfd, 0, &its, NULL);
	if (ep_add(d->epfd, d->sigfd) < 0 || ep_add(d->epfd, d->timerfd) < 0)
		return -1;
	if (d->api && ep_add(d->epfd, api_fd(d->api)) < 0)
		return -1;
	return daemon_health_add_fds(d);
}

static void on_signal(struct daemon *d)
{
	struct signalfd_siginfo si;
	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			daemon_reload(d);
			break;
		case SIGUSR2:
			log_notice(&d->log, "SIGUSR2: stopping, data path left running");
			d->keep_forwarding = true;
			d->stopping = true;
			break;
		default:
			log_notice(&d->log, "signal %u: stopping", si.ssi_signo);
			d->stopping = true;
		}
	}
}

static void on_timer(struct daemon *d, uint64_t *last_sweep_s)
{
	uint64_t ticks;
	while (read(d->timerfd, &ticks, sizeof(ticks)) == sizeof(ticks))
		;
	uint64_t now_s = daemon_now_ms() / 1000;
	if (d->have_engine && now_s - *last_sweep_s >= SWEEP_EVERY_S) {
		long n = d->eng.ops->sweep(&d->eng, now_s);
		if (n > 0) {
			d->swept += (uint64_t)n;
			log_debug(&d->log, "expired %ld idle state entries", n);
		}
		*last_sweep_s = now_s;
	}
}

static int loop(struct daemon *d)
{
	uint64_t last_sweep = daemon_now_ms() / 1000;
	int api = d->api ? api_fd(d->api) : -1;

	while (!d->stopping) {
		struct epoll_event ev[16];
		long to = daemon_health_timeout_ms(d);
		long at = d->api ? api_timeout_ms(d->api) : -1;
		if (at >= 0 && (to < 0 || at < to))
			to = at;
		int n = epoll_wait(d->epfd, ev, 16, to < 0 ? 1000 : (int)to);
		if (n < 0 && errno != EINTR) {
			log_err(&d->log, "epoll_wait: %s", strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			if (fd == d->sigfd)
				on_signal(d);
			else if (fd == d->timerfd)
				on_timer(d, &last_sweep);
			else if (fd == api)
				api_run(d->api);
			else
				daemon_health_on_fd(d, fd);
		}
		if (d->api)
			api_run(d->api);
		daemon_health_tick(d);
	}
	return 0;
}

static void cleanup(struct daemon *d)
{
	daemon_health_stop(d);
	api_stop(d->api);
	d->api = NULL;
	if (d->have_engine)
		d->eng.ops->close(&d->eng, d->keep_forwarding);
	d->have_engine = false;
	rt_free(&d->rt);
	eng_stats_free(&d->stats);
	cfg_free(&d->cfg);
	for (int *fd = &d->epfd; fd <= &d->timerfd; fd++)
		if (*fd >= 0)
			close(*fd);
}

static int load_config(struct daemon *d)
{
	struct cfg_errors errs = { 0 };
	int rc = cfg_load_file(d->opts.config_path, &d->cfg, &errs);
	for (int i = 0; i < errs.n; i++)
		log_err(&d->log, "%s", errs.v[i].msg);
	cfg_errors_free(&errs);
	return rc;
}

static int start(struct daemon *d)
{
	char err[256] = "";

	if (load_config(d) < 0)
		return -1;
	if (eng_stats_alloc(&d->stats, &d->cfg) < 0)
		return -1;
	/* The API first: it refuses to start when another daemon answers on
	 * it, before this one touches the data path. Requests wait in the
	 * listen queue until the loop runs. */
	d->api = api_start(d, d->cfg.api_listen, err, sizeof(err));
	if (!d->api) {
		log_err(&d->log, "api: %s", err);
		return -1;
	}
	/* The runtime before the engine: the socket engine picks from its
	 * schedulers. */
	struct rt_ops ops = eng_rt_ops(&d->eng);
	if (rt_init(&d->rt, &d->cfg, &d->log, &ops) < 0 || daemon_engine_open(d) < 0)
		return -1;
	if (rt_sync_all(&d->rt) < 0) {
		log_err(&d->log, "cannot program the engine with the configuration");
		return -1;
	}
	if (d->eng.ops->start && d->eng.ops->start(&d->eng) < 0) {
		log_err(&d->log, "cannot start the %s engine", d->eng.ops->name);
		return -1;
	}
	if (daemon_health_start(d) < 0)
		return -1;
	return setup_fds(d);
}

int daemon_run(const struct daemon_opts *opts)
{
	struct daemon *d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	d->opts = *opts;
	d->epfd = d->sigfd = d->timerfd = -1;
	d->started_ms = daemon_now_ms();
	log_init(&d->log, opts->log_level);

	int rc = start(d);
	if (rc == 0) {
		log_notice(&d->log, "running: engine %s, %d service(s), api %s", d->eng.ops->name,
			   d->cfg.nservices, d->cfg.api_listen);
		rc = loop(d);
	}
	cleanup(d);
	log_notice(&d->log, "stopped");
	free(d);
	return rc == 0 ? 0 : 1;
}
