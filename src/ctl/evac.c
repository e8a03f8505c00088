/* Evacuation workers: one thread per evacuated server with a vici
 * endpoint; REDIRECT every IKE SA, count what is left, repeat for
 * stragglers, until the charon has none (or time runs out). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "engine/engine.h"
#include "ctl/evac.h"
#include "ctl/vici.h"

#define EVAC_SLOTS (EVAC_MAX * 2) /* running + cancelled ones not yet joined */

struct evac_job {
	int svc, srv;
	bool cancelled;       /* replaced or enabled: invisible, joined later */
	bool has_thread;
	char label[128], uri[VICI_URI_MAX], gateway[64];
	pthread_t th;
	pthread_mutex_t mu;   /* guards info and stop */
	pthread_cond_t cv;    /* wakes a sleeping worker to stop */
	bool stop, finished;
	struct evac_info info;
	const struct logger *log;
};

struct evac {
	const struct logger *log;
	struct evac_job *job[EVAC_SLOTS];
};

const char *evac_phase_name(enum evac_phase p)
{
	static const char *const n[] = { "none", "drain-only", "redirecting", "done", "failed" };
	return p <= EVAC_FAILED ? n[p] : "?";
}

/* ------------------------------------------------------------ worker */

static bool should_stop(struct evac_job *j)
{
	pthread_mutex_lock(&j->mu);
	bool s = j->stop;
	pthread_mutex_unlock(&j->mu);
	return s;
}

/* Sleeps ms unless told to stop. */
static void nap(struct evac_job *j, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&j->mu);
	while (!j->stop && pthread_cond_timedwait(&j->cv, &j->mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&j->mu);
}

static void finish(struct evac_job *j, enum evac_phase p, const char *error)
{
	pthread_mutex_lock(&j->mu);
	j->info.phase = p;
	j->info.ended_ms = clock_mono_ms();
	if (error)
		snprintf(j->info.error, sizeof(j->info.error), "%s", error);
	pthread_mutex_unlock(&j->mu);
	if (p == EVAC_DONE)
		log_notice(j->log, "evacuate %s: done, no IKE SA left (%.1f s)", j->label,
			   (double)(j->info.ended_ms - j->info.started_ms) / 1000.0);
	else
		log_err(j->log, "evacuate %s: %s (the server stays drained)", j->label, error);
}

/* vici redirect of every IKE SA to the VIP: SAs matched, or a negative
 * errno with why in err. "No matching SAs" is 0, not an error. */
static long redirect_all(struct evac_job *j, int fd, struct vici_buf *resp, char *err,
			 size_t errsz)
{
	struct vici_buf req = { 0 };
	char ok[8], n[24], msg[200];
	/* charon wants a selector (5.9: "missing redirect selector"): every
	 * peer of the VIP's family, which is every client of a dnat/dsr VIP. */
	vici_add_kv(&req, "peer-ip", strchr(j->gateway, ':') ? "::/0" : "0.0.0.0/0");
	vici_add_kv(&req, "gateway", j->gateway);
	int rc = vici_call(fd, "redirect", &req, EVAC_CALL_MS, resp, err, errsz);
	vici_buf_free(&req);
	if (rc < 0)
		return rc;
	long matches = vici_get(resp->p, resp->len, "matches", n, sizeof(n)) == 0 ? atol(n) : 0;
	if (vici_get(resp->p, resp->len, "success", ok, sizeof(ok)) == 0 && strcmp(ok, "yes") &&
	    matches == 0 && vici_get(resp->p, resp->len, "errmsg", msg, sizeof(msg)) == 0 &&
	    !strstr(msg, "no matching")) {
		snprintf(err, errsz, "vici: redirect refused: %s", msg);
		return -EPERM;
	}
	return matches;
}

/* The charon's IKE SAs (vici stats: ikesas.total), or a negative errno. */
static long count_sas(int fd, struct vici_buf *resp, char *err, size_t errsz)
{
	char n[24];
	int rc = vici_call(fd, "stats", NULL, EVAC_CALL_MS, resp, err, errsz);
	if (rc < 0)
		return rc;
	if (vici_get(resp->p, resp->len, "ikesas.total", n, sizeof(n)) < 0) {
		snprintf(err, errsz, "vici: stats without ikesas.total");
		return -EBADMSG;
	}
	return atol(n);
}

/* One round on a connected fd: redirect when due, then count. 1 when no
 * SA is left, 0 to go on, or a negative errno. */
static int round_trip(struct evac_job *j, int fd, uint64_t *last_redirect, char *err,
		      size_t errsz)
{
	struct vici_buf resp = { 0 };
	uint64_t now = clock_mono_ms();
	long rc = 0;
	if (!*last_redirect || now - *last_redirect >= EVAC_REDIRECT_EVERY_S * 1000ull) {
		rc = redirect_all(j, fd, &resp, err, errsz);
		if (rc > 0)
			log_notice(j->log, "evacuate %s: REDIRECT to %s requested for %ld IKE SAs",
				   j->label, j->gateway, rc);
		*last_redirect = now;
		if (rc >= 0) {
			pthread_mutex_lock(&j->mu);
			j->info.redirected += (uint64_t)rc;
			pthread_mutex_unlock(&j->mu);
		}
	}
	if (rc >= 0)
		rc = count_sas(fd, &resp, err, errsz);
	vici_buf_free(&resp);
	if (rc < 0)
		return (int)rc;
	pthread_mutex_lock(&j->mu);
	j->info.sas_left = rc;
	pthread_mutex_unlock(&j->mu);
	return rc == 0;
}

static void *worker(void *arg)
{
	struct evac_job *j = arg;
	char err[256] = "";
	uint64_t last_redirect = 0, t0 = clock_mono_ms();
	int fd = -1, fails = 0;

	while (!should_stop(j)) {
		if (fd < 0)
			fd = vici_connect(j->uri, EVAC_CALL_MS, err, sizeof(err));
		/* A dead endpoint fails at once; a broken connection is
		 * retried a few times (charon restarting). */
		int rc = fd < 0 ? fd : round_trip(j, fd, &last_redirect, err, sizeof(err));
		if (rc == 1) {
			finish(j, EVAC_DONE, NULL);
			break;
		}
		if (rc < 0 && (!last_redirect || ++fails >= 3 || rc == -EOPNOTSUPP || rc == -EPERM)) {
			finish(j, EVAC_FAILED, err);
			break;
		}
		if (rc < 0 && fd >= 0) {
			close(fd);
			fd = -1;
		} else if (rc == 0) {
			fails = 0;
		}
		if (clock_mono_ms() - t0 > EVAC_TIMEOUT_S * 1000ull) {
			snprintf(err, sizeof(err), "timed out after %d s with %lld IKE SAs left",
				 EVAC_TIMEOUT_S, (long long)j->info.sas_left);
			finish(j, EVAC_FAILED, err);
			break;
		}
		nap(j, EVAC_POLL_MS);
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&j->mu);
	j->finished = true;
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* ------------------------------------------------------------- the set */

struct evac *evac_new(const struct logger *log)
{
	struct evac *ev = calloc(1, sizeof(*ev));
	if (ev)
		ev->log = log;
	return ev;
}

static void job_stop(struct evac_job *j)
{
	pthread_mutex_lock(&j->mu);
	j->stop = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

static void job_free(struct evac_job *j)
{
	if (j->has_thread)
		pthread_join(j->th, NULL);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
}

/* Frees cancelled jobs whose worker has ended, without waiting. */
static void reap(struct evac *ev)
{
	for (int i = 0; i < EVAC_SLOTS; i++) {
		struct evac_job *j = ev->job[i];
		if (!j || !j->cancelled)
			continue;
		pthread_mutex_lock(&j->mu);
		bool done = !j->has_thread || j->finished;
		pthread_mutex_unlock(&j->mu);
		if (done) {
			job_free(j);
			ev->job[i] = NULL;
		}
	}
}

static struct evac_job *find(struct evac *ev, int svc, int srv)
{
	for (int i = 0; i < EVAC_SLOTS; i++)
		if (ev->job[i] && !ev->job[i]->cancelled && ev->job[i]->svc == svc &&
		    ev->job[i]->srv == srv)
			return ev->job[i];
	return NULL;
}

void evac_cancel(struct evac *ev, int svc, int srv)
{
	struct evac_job *j = ev ? find(ev, svc, srv) : NULL;
	if (j) {
		job_stop(j);
		j->cancelled = true;
	}
	if (ev)
		reap(ev);
}

void evac_cancel_all(struct evac *ev)
{
	for (int i = 0; ev && i < EVAC_SLOTS; i++)
		if (ev->job[i] && !ev->job[i]->cancelled) {
			job_stop(ev->job[i]);
			ev->job[i]->cancelled = true;
		}
	if (ev)
		reap(ev);
}

static int free_slot(struct evac *ev)
{
	int running = 0, slot = -1;
	for (int i = 0; i < EVAC_SLOTS; i++) {
		if (!ev->job[i])
			slot = slot < 0 ? i : slot;
		else if (!ev->job[i]->cancelled)
			running++;
	}
	return running >= EVAC_MAX ? -1 : slot;
}

int evac_start(struct evac *ev, int svc, int srv, const char *label, const char *uri,
	       const char *gateway, uint64_t forgotten, char *err, size_t errsz)
{
	if (uri && *uri && vici_uri_check(uri, err, errsz) < 0)
		return -EINVAL;
	evac_cancel(ev, svc, srv);
	int slot = free_slot(ev);
	struct evac_job *j = slot < 0 ? NULL : calloc(1, sizeof(*j));
	if (!j) {
		snprintf(err, errsz, "too many evacuations at once (%d)", EVAC_MAX);
		return slot < 0 ? -ENOSPC : -ENOMEM;
	}
	*j = (struct evac_job){ .svc = svc, .srv = srv, .log = ev->log };
	snprintf(j->label, sizeof(j->label), "%s", label);
	snprintf(j->uri, sizeof(j->uri), "%s", uri ? uri : "");
	snprintf(j->gateway, sizeof(j->gateway), "%s", gateway);
	j->info = (struct evac_info){ .phase = *j->uri ? EVAC_REDIRECTING : EVAC_DRAIN_ONLY,
				      .sas_left = -1, .forgotten = forgotten,
				      .started_ms = clock_mono_ms() };
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	if (*j->uri) {
		int rc = pthread_create(&j->th, NULL, worker, j);
		if (rc) {
			snprintf(err, errsz, "cannot start the vici worker: %s", strerror(rc));
			j->has_thread = false;
			job_free(j);
			return -rc;
		}
		j->has_thread = true;
	}
	ev->job[slot] = j;
	return 0;
}

void evac_after_reload(struct evac *ev, const struct cfg *cfg, struct engine *eng)
{
	for (int i = 0; ev && i < EVAC_SLOTS; i++) {
		struct evac_job *j = ev->job[i];
		char now[sizeof(j->label)] = "";
		if (!j || j->cancelled)
			continue;
		if (j->svc < cfg->nservices && j->srv < cfg->services[j->svc].nservers)
			snprintf(now, sizeof(now), "%s/%s", cfg->services[j->svc].name,
				 cfg->services[j->svc].servers[j->srv].name);
		if (!strcmp(now, j->label) && eng->ops && eng->ops->set_evacuating &&
		    eng->ops->set_evacuating(eng, j->svc, j->srv, true) >= 0)
			continue;
		log_notice(ev->log, "evacuate %s: forgotten after the reload (run it again)",
			   j->label);
		job_stop(j);
		j->cancelled = true;
	}
	if (ev)
		reap(ev);
}

int evac_get(struct evac *ev, int svc, int srv, struct evac_info *out)
{
	struct evac_job *j = ev ? find(ev, svc, srv) : NULL;
	if (!j)
		return -ENOENT;
	pthread_mutex_lock(&j->mu);
	*out = j->info;
	pthread_mutex_unlock(&j->mu);
	return 0;
}

void evac_free(struct evac *ev)
{
	if (!ev)
		return;
	for (int i = 0; i < EVAC_SLOTS; i++)
		if (ev->job[i])
			job_stop(ev->job[i]);
	for (int i = 0; i < EVAC_SLOTS; i++)
		if (ev->job[i])
			job_free(ev->job[i]);
	free(ev);
}
