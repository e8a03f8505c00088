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

#include "core/clock.h"
#include "core/config.h"
#include "ctl/api.h"
#include "ctl/bypass.h"
#include "ctl/caps.h"
#include "ctl/daemon_health.h"
#include "ctl/lock.h"
#include "ctl/reload.h"
#include "ctl/server_state.h"
#include "ctl/service.h"
#include "ctl/sync.h"
#include "core/runtime.h"
#include "ctl/view.h"
#include "engine/engine.h"

#define SWEEP_EVERY_S 5

struct daemon {
	struct daemon_opts opts;
	struct cfg cfg;
	struct logger log;
	struct engine eng;        /* eng.ops is NULL until the engine is open */
	struct runtime rt;
	struct daemon_health health;
	struct api *api;
	struct sync *sync;        /* NULL: no state sync configured */
	struct lock_set lock;     /* one daemon per data path */
	struct ctl_view view;     /* what the API sees */
	struct ctl_cmd cmd;       /* what the API may do */
	struct eng_stats stats;   /* last read, refreshed on demand */
	struct bypass bypass;     /* servers whose replies leave past ikelb */
	struct evac *evac;        /* evacuations and their vici workers */
	sigset_t signals;         /* handled through sigfd */
	int epfd, sigfd, timerfd;
	int eng_evfd;             /* the engine's event fd (it owns it), or -1 */
	bool stopping;
	bool keep_forwarding;     /* leave the data path attached on exit */
	bool reexec;              /* on exit, exec the executable again (same PID) */
	bool state_loaded;        /* the server-state file was read: saving is safe */
	struct service_exe exe;   /* the file this process runs, to see upgrades */
	uint64_t swept;           /* idle state entries expired */
	struct ctl_reload_info last_reload;
};

static int reload(struct daemon *d, struct ctl_reload_result *res);

/* ---- the API's view and commands ---- */

static const struct eng_stats *view_stats(void *ctx)
{
	struct daemon *d = ctx;
	if (d->eng.ops && d->eng.ops->read_stats) {
		int rc = d->eng.ops->read_stats(&d->eng, &d->stats);
		if (rc < 0)
			log_warn(&d->log, "cannot read the engine's counters (%s); "
				 "reporting the last ones", strerror(-rc));
	}
	return &d->stats;
}

static int view_health(void *ctx, int svc, int srv, struct health_info *out)
{
	struct daemon *d = ctx;
	return daemon_health_state(&d->health, svc, srv, out);
}

/* API-set states and weights outlive the process through the server-state
 * file. Not before it was read: that would overwrite the saved overrides
 * with the file's values. A failed save is logged and changes nothing. */
static void save_state(struct daemon *d)
{
	if (d->state_loaded)
		sstate_save(d->cfg.server_state_file, &d->cfg, &d->rt, &d->log);
}

static int view_lookup(void *ctx, const struct lk_query *q, lk_cb cb, void *cbctx)
{
	struct daemon *d = ctx;
	if (!d->eng.ops || !d->eng.ops->lookup)
		return -EOPNOTSUPP;
	return d->eng.ops->lookup(&d->eng, q, cb, cbctx);
}

static int cmd_decision_log(void *ctx, bool on)
{
	struct daemon *d = ctx;
	if (!d->eng.ops || !d->eng.ops->set_decision_log)
		return -EOPNOTSUPP;
	return d->eng.ops->set_decision_log(&d->eng, on);
}

static int cmd_set_admin(void *ctx, int svc, int srv, enum cfg_server_state st)
{
	struct daemon *d = ctx;
	if (rt_set_admin(&d->rt, svc, srv, st, clock_mono_ms()) < 0)
		return -EIO;
	save_state(d);
	if (st == CFG_SRV_ACTIVE && evac_get(d->evac, svc, srv, &(struct evac_info){ 0 }) == 0) {
		/* enabled again: no longer evacuating */
		evac_cancel(d->evac, svc, srv);
		if (d->eng.ops->set_evacuating)
			d->eng.ops->set_evacuating(&d->eng, svc, srv, false);
	}
	return 0;
}

static int cmd_evacuate(void *ctx, int svc, int srv, char *err, size_t errsz)
{
	struct daemon *d = ctx;
	const struct cfg_service *s = &d->cfg.services[svc];
	char vip[IKELB_ADDR_STRLEN], label[2 * CFG_NAME_MAX + 2];
	if (!d->eng.ops || !d->eng.ops->set_evacuating) {
		snprintf(err, errsz, "the %s engine cannot evacuate", d->view.engine_name);
		return -EOPNOTSUPP;
	}
	if (rt_set_admin(&d->rt, svc, srv, CFG_SRV_DRAINING, clock_mono_ms()) < 0) {
		snprintf(err, errsz, "engine update failed (see the daemon log)");
		return -EIO;
	}
	save_state(d);
	long n = d->eng.ops->set_evacuating(&d->eng, svc, srv, true);
	if (n < 0) {
		snprintf(err, errsz, "engine: forgetting persistence failed: %s", strerror((int)-n));
		return (int)n;
	}
	snprintf(label, sizeof(label), "%s/%s", s->name, s->servers[srv].name);
	return evac_start(d->evac, svc, srv, label, s->servers[srv].vici,
			  ikelb_addr_str(&s->vip, vip, sizeof(vip)), (uint64_t)n, err, errsz);
}

static int view_evac(void *ctx, int svc, int srv, struct evac_info *out)
{
	return evac_get(((struct daemon *)ctx)->evac, svc, srv, out);
}

static int cmd_set_weight(void *ctx, int svc, int srv, uint32_t weight)
{
	struct daemon *d = ctx;
	if (rt_set_weight(&d->rt, svc, srv, weight, clock_mono_ms()) < 0)
		return -EIO;
	save_state(d);
	return 0;
}

static void cmd_shutdown(void *ctx, bool keep_forwarding)
{
	struct daemon *d = ctx;
	d->keep_forwarding = keep_forwarding;
	d->stopping = true;
}

static int cmd_reload(void *ctx, struct ctl_reload_result *out)
{
	return reload(ctx, out);
}

static int view_sync_stats(void *ctx, struct sync_stats *out)
{
	struct daemon *d = ctx;
	if (!d->sync)
		return -ENOENT;
	sync_get_stats(d->sync, out);
	return 0;
}

static void view_init(struct daemon *d)
{
	d->view = (struct ctl_view){
		.cfg = &d->cfg, .rt = &d->rt, .log = &d->log, .engine_name = "none",
		.config_path = d->opts.config_path, .started_ms = clock_mono_ms(),
		.expired = &d->swept, .now_ms = clock_mono_ms, .stats = view_stats,
		.health = view_health, .last_reload = &d->last_reload, .lookup = view_lookup,
		.sync_stats = view_sync_stats, .bypass = &d->bypass, .evac = view_evac, .ctx = d,
	};
	d->cmd = (struct ctl_cmd){ .set_admin = cmd_set_admin, .set_weight = cmd_set_weight,
				   .shutdown = cmd_shutdown, .reload = cmd_reload,
				   .set_decision_log = cmd_decision_log, .evacuate = cmd_evacuate,
				   .ctx = d };
}

/* ---- the loop ---- */

static int ep_add(struct daemon *d, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	int rc = -errno;
	log_err(&d->log, "epoll_ctl: %s", strerror(errno));
	return rc;
}

/* Signals arrive through a signalfd, so they are handled in the loop like
 * any other event, never inside a handler. Blocked before any engine
 * starts threads: threads inherit the mask, and a thread without it
 * would take SIGHUP's default action and end the process. */
static int setup_signals(struct daemon *d)
{
	sigset_t *set = &d->signals;
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, set, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		int rc = -errno;
		log_err(&d->log, "cannot set up signal handling: %s", strerror(errno));
		return rc;
	}
	return 0;
}

static int setup_fds(struct daemon *d)
{
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	int rc;

	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->sigfd = signalfd(-1, &d->signals, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->epfd < 0 || d->sigfd < 0 || d->timerfd < 0 ||
	    timerfd_settime(d->timerfd, 0, &its, NULL) < 0) {
		rc = -errno;
		log_err(&d->log, "cannot create the event loop: %s", strerror(errno));
		return rc;
	}
	if ((rc = ep_add(d, d->sigfd)) < 0 || (rc = ep_add(d, d->timerfd)) < 0 ||
	    (rc = ep_add(d, api_fd(d->api))) < 0)
		return rc;
	if (d->sync && (rc = sync_watch(d->sync, d->epfd)) < 0)
		return rc;
	/* Registered once: the engine keeps this fd from open to close, a
	 * reload (reconfigure) included. */
	d->eng_evfd = d->eng.ops->event_fd ? d->eng.ops->event_fd(&d->eng) : -1;
	if (d->eng_evfd >= 0 && (rc = ep_add(d, d->eng_evfd)) < 0)
		return rc;
	return daemon_health_watch(&d->health, d->epfd);
}

/* STATUS= for systemctl status: one line, what an operator checks first. */
static void notify_status(struct daemon *d, const char *state)
{
	int total = 0, up = 0;
	for (int i = 0; i < d->cfg.nservices; i++)
		for (int j = 0; j < d->cfg.services[i].nservers; j++, total++)
			up += d->rt.svc[i].servers[j].effective != REAL_DOWN;
	service_notify(&d->log, "%sSTATUS=%s: %d service(s), %d/%d server(s) up, last reload %s",
		       state, d->eng.ops ? d->eng.ops->name : "none", d->cfg.nservices, up, total,
		       !d->last_reload.at ? "none" : d->last_reload.ok ? "applied" : "refused");
}

/* Re-executing reads the configuration again: a file that does not load
 * keeps this image running (as a refused reload would) instead of ending
 * in a new image that cannot start. */
static int reexec_request(struct daemon *d, const char *why)
{
	struct cfg probe = { 0 };
	struct cfg_errors errs = { 0 };
	int rc = cfg_load_file(d->opts.config_path, &probe, &errs);
	for (int i = 0; i < errs.n; i++)
		log_err(&d->log, "%s", errs.v[i].msg);
	cfg_errors_free(&errs);
	cfg_free(&probe);
	if (rc < 0) {
		log_err(&d->log, "%s: %s does not load; not re-executing", why,
			d->opts.config_path);
		d->last_reload = (struct ctl_reload_info){ .at = (int64_t)time(NULL), .ok = false };
		snprintf(d->last_reload.message, sizeof(d->last_reload.message),
			 "%s does not load; not re-executing", d->opts.config_path);
		notify_status(d, "READY=1\n");
		return -EINVAL;
	}
	log_notice(&d->log, "%s: re-executing, data path left running", why);
	d->reexec = d->keep_forwarding = d->stopping = true;
	return 0;
}

/* The answer to a reload that re-executes: the new image reads the file. */
static int reexec_on_reload(struct daemon *d, struct ctl_reload_result *res)
{
	memset(res, 0, sizeof(*res));
	int rc = reexec_request(d, "reload: the executable changed on disk");
	res->ok = rc == 0;
	if (rc == 0) {
		res->nchanges = 1;
		snprintf(res->changes[0], sizeof(res->changes[0]),
			 "the executable changed on disk: re-executing it, data path left running");
	} else {
		res->nerrors = 1;
		snprintf(res->errors[0], sizeof(res->errors[0]), "%s", d->last_reload.message);
	}
	return rc;
}

/* SIGHUP and POST /v1/reload. */
static int reload(struct daemon *d, struct ctl_reload_result *res)
{
	const struct reload_target t = {
		.config_path = d->opts.config_path, .log = &d->log, .cfg = &d->cfg, .rt = &d->rt,
		.stats = &d->stats, .eng = &d->eng, .health = &d->health, .res = res,
	};
	service_notify_reloading(&d->log);
	/* A package upgrade renamed a new file over the executable: run it.
	 * READY=1 comes from the new image, or from reexec_request. */
	if (service_exe_changed(&d->exe))
		return reexec_on_reload(d, res);
	/* A failed reload keeps the running configuration; reload_config
	 * logged why, and the daemon runs on. */
	int rc = reload_config(&t);
	if (rc < 0)
		log_notice(&d->log, "reload: not applied");
	else
		save_state(d); /* the file may have taken over overridden settings */
	if (rc >= 0)
		evac_after_reload(d->evac, &d->cfg, &d->eng);
	if (rc >= 0 && bypass_init(&d->bypass, &d->cfg) < 0)
		log_warn(&d->log, "out of memory: reply bypass detection is off");
	reload_note(&d->last_reload, res);
	notify_status(d, "READY=1\n");
	return rc;
}

static void on_sighup(struct daemon *d)
{
	struct ctl_reload_result *res = malloc(sizeof(*res));
	if (!res) {
		log_err(&d->log, "reload: out of memory");
		return;
	}
	reload(d, res);
	free(res);
}

static void on_signal(struct daemon *d)
{
	struct signalfd_siginfo si;
	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			on_sighup(d);
			break;
		case SIGUSR1:
			service_notify_reloading(&d->log);
			reexec_request(d, "SIGUSR1");
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

/* Every second: the per-server counters alone (no table walk), for the
 * reply bypass detection. A failed read skips the second. */
static void check_bypass(struct daemon *d)
{
	if (!d->eng.ops || !d->eng.ops->read_counters ||
	    d->eng.ops->read_counters(&d->eng, &d->stats) < 0)
		return;
	bypass_tick(&d->bypass, &d->cfg, &d->rt, &d->stats, &d->log);
}

static void on_timer(struct daemon *d, uint64_t *last_sweep_s)
{
	uint64_t ticks;
	while (read(d->timerfd, &ticks, sizeof(ticks)) == sizeof(ticks))
		;
	check_bypass(d);
	if (rt_tick(&d->rt, clock_mono_ms()) < 0)
		log_warn(&d->log, "slow start: pushing a ramp step to the engine failed");
	uint64_t now_s = clock_mono_s();
	if (now_s - *last_sweep_s < SWEEP_EVERY_S)
		return;
	long n = d->eng.ops->sweep(&d->eng, now_s);
	if (n < 0)
		log_warn(&d->log, "expiring idle state failed: %s", strerror((int)-n));
	else if (n > 0) {
		d->swept += (uint64_t)n;
		log_debug(&d->log, "expired %ld idle state entries", n);
	}
	*last_sweep_s = now_s;
}

static void run_api(struct daemon *d)
{
	if (api_run(d->api) < 0)
		log_debug(&d->log, "api: libmicrohttpd could not run its event loop");
}

static long next_timeout_ms(struct daemon *d)
{
	long to = daemon_health_timeout_ms(&d->health);
	long at = api_timeout_ms(d->api);
	if (at >= 0 && (to < 0 || at < to))
		to = at;
	return to < 0 ? 1000 : to;
}

static int loop(struct daemon *d)
{
	uint64_t last_sweep = clock_mono_s();
	int api = api_fd(d->api);

	while (!d->stopping) {
		struct epoll_event ev[16];
		int n = epoll_wait(d->epfd, ev, 16, (int)next_timeout_ms(d));
		if (n < 0 && errno != EINTR) {
			int rc = -errno;
			log_err(&d->log, "epoll_wait: %s", strerror(errno));
			return rc;
		}
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			if (fd == d->sigfd)
				on_signal(d);
			else if (fd == d->timerfd)
				on_timer(d, &last_sweep);
			else if (fd == api)
				run_api(d);
			else if (fd == d->eng_evfd)
				d->eng.ops->drain_events(&d->eng);
			else if (sync_on_fd(d->sync, fd))
				continue;
			else
				daemon_health_on_fd(&d->health);
		}
		run_api(d);
		daemon_health_tick(&d->health);
	}
	return 0;
}

/* ---- start and stop ---- */

static void cleanup(struct daemon *d)
{
	daemon_health_stop(&d->health);
	evac_free(d->evac); /* joins its workers: each within one vici call */
	d->evac = NULL;
	sync_stop(d->sync);
	d->sync = NULL;
	api_stop(d->api);
	d->api = NULL;
	if (d->eng.ops)
		d->eng.ops->close(&d->eng, d->keep_forwarding);
	d->eng.ops = NULL;
	lock_release(&d->lock);
	rt_free(&d->rt);
	eng_stats_free(&d->stats);
	bypass_free(&d->bypass);
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
	return rc < 0 ? -EINVAL : 0;
}

/* The engine has the configuration from engine_open; the model then pushes
 * the per-server states and tables it derived, and forwarding starts. */
static int start_engine(struct daemon *d)
{
	/* The runtime before the engine: the socket engine places new
	 * clients with the runtime's schedulers. */
	const struct rt_ops ops = eng_rt_ops(&d->eng);
	int rc = rt_init(&d->rt, &d->cfg, &d->log, &ops);
	if (rc < 0)
		return rc;
	const struct engine_open_opts eo = { .flush_state = d->opts.flush_state, .rt = &d->rt };
	if ((rc = engine_open(&d->eng, &d->cfg, &d->log, &eo)) < 0)
		return rc;
	d->view.engine_name = d->eng.ops->name;
	/* Drains and weights of the previous process, before the engine gets
	 * its first tables: a drained server takes no new client meanwhile. */
	sstate_load(d->cfg.server_state_file, &d->cfg, &d->rt, &d->log, clock_mono_ms());
	d->state_loaded = true;
	if (rt_sync_all(&d->rt) < 0) {
		log_err(&d->log, "cannot program the engine with the configuration");
		return -EIO;
	}
	if (d->eng.ops->start && (rc = d->eng.ops->start(&d->eng)) < 0) {
		log_err(&d->log, "cannot start the %s engine", d->eng.ops->name);
		return rc;
	}
	return 0;
}

static int start(struct daemon *d)
{
	char err[256] = "";
	int rc = setup_signals(d);

	if (rc == 0)
		rc = load_config(d);
	if (rc < 0)
		return rc;
	if (eng_stats_alloc(&d->stats, &d->cfg) < 0 || bypass_init(&d->bypass, &d->cfg) < 0 ||
	    !(d->evac = evac_new(&d->log))) {
		log_err(&d->log, "out of memory");
		return -ENOMEM;
	}
	if ((rc = lock_take(&d->lock, &d->cfg, err, sizeof(err))) < 0) {
		log_err(&d->log, "%s", err);
		return rc;
	}
	/* The API first: it refuses to start when another daemon answers on
	 * it, before this one touches the data path. Requests wait in the
	 * listen queue until the loop runs. */
	d->api = api_start(&d->cfg, &d->view, &d->cmd, err, sizeof(err));
	if (!d->api) {
		log_err(&d->log, "api: %s", err);
		return -EADDRINUSE;
	}
	/* Capabilities are per thread and the socket engine's workers are
	 * threads: drop before they exist (its binds need at most the kept
	 * CAP_NET_BIND_SERVICE). The bpf engine attaches first. */
	bool early = d->cfg.engine == CFG_ENGINE_SOCKET;
	if ((early && (rc = caps_drop(&d->cfg, &d->log)) < 0) || (rc = start_engine(d)) < 0)
		return rc;
	if ((rc = daemon_health_start(&d->health)) < 0)
		return rc;
	/* After the engine: peers' entries are written into its tables. */
	if ((rc = sync_start(&d->sync, &d->cfg, &d->eng, &d->log)) < 0)
		return rc;
	if ((rc = setup_fds(d)) < 0)
		return rc;
	return early ? 0 : caps_drop(&d->cfg, &d->log);
}

/* A re-exec keeps the data path (keep_forwarding) and returns only when
 * exec failed: the process then exits non-zero, systemd's Restart=
 * starts it again, and the attached filter forwards in between. */
static int finish(struct daemon *d, int rc)
{
	bool reexec = rc == 0 && d->reexec;
	if (!reexec)
		service_notify(&d->log, "STOPPING=1");
	save_state(d); /* every change was saved already; this covers a lost write */
	cleanup(d);
	if (reexec)
		rc = service_reexec(d->opts.argv, &d->log);
	else
		log_notice(&d->log, "stopped");
	free(d);
	return rc == 0 ? 0 : 1;
}

int daemon_run(const struct daemon_opts *opts)
{
	struct daemon *d = calloc(1, sizeof(*d));
	if (!d) {
		fprintf(stderr, "ikelb: out of memory\n");
		return 1;
	}
	d->opts = *opts;
	d->epfd = d->sigfd = d->timerfd = d->eng_evfd = -1;
	log_init(&d->log, opts->log_level);
	service_log_to_journal(&d->log);
	service_exe_record(&d->exe, &d->log);
	daemon_health_init(&d->health, &d->cfg, &d->log, &d->rt);
	view_init(d);

	int rc = start(d);
	if (rc == 0) {
		log_notice(&d->log, "running: engine %s, %d service(s), api %s", d->eng.ops->name,
			   d->cfg.nservices, d->cfg.api_listen);
		/* The data path is attached and the API's socket listens: its
		 * requests are answered as soon as the loop runs. */
		notify_status(d, "READY=1\n");
		rc = loop(d);
	}
	return finish(d, rc);
}
