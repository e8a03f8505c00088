#include "ctl/bypass.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING (BYPASS_WINDOW_S + 1)

int bypass_init(struct bypass *b, const struct cfg *cfg)
{
	bypass_free(b);
	b->nsvc = cfg->nservices;
	for (int i = 0; i < cfg->nservices; i++) {
		int n = cfg->services[i].nservers;
		b->nsrv[i] = n;
		b->srv[i] = calloc(n ? (size_t)n : 1, sizeof(*b->srv[i]));
		if (!b->srv[i]) {
			bypass_free(b);
			return -ENOMEM;
		}
	}
	return 0;
}

void bypass_free(struct bypass *b)
{
	for (int i = 0; i < CFG_MAX_SERVICES; i++)
		free(b->srv[i]);
	memset(b, 0, sizeof(*b));
}

/* Only dnat: dsr replies skip ikelb by design, fullnat replies come to
 * ikelb's own addresses whatever the server's routes. A server the health
 * check does not call up is left to the health check; one without a
 * health check is judged by its traffic alone. */
static bool eligible(const struct cfg_service *s, const struct rt_server *r)
{
	if (s->forwarding != CFG_FWD_DNAT || r->effective == REAL_DOWN)
		return false;
	return s->health.type == CFG_HEALTH_NONE || r->health == HEALTH_UP;
}

static void sample(struct bypass_srv *w, const struct eng_srv_stats *st)
{
	uint32_t last = (w->n + RING - 1) % RING;
	/* Counters that went back (a new engine, a re-created map): start over. */
	if (w->n && (st->ike_pkts < w->ike[last] || st->reply_pkts < w->replies[last]))
		w->n = 0;
	w->ike[w->n % RING] = st->ike_pkts;
	w->replies[w->n % RING] = st->reply_pkts;
	w->n++;
}

static void note(const struct logger *log, const char *svc, const char *srv, bool on,
		 uint64_t reqs)
{
	const struct log_field f[] = { { "IKELB_SERVICE", svc }, { "IKELB_SERVER", srv } };
	if (on)
		log_fields(log, LOG_LVL_WARN, f, 2,
			   "service %s server %s: %" PRIu64 " IKE requests in %d s and no reply "
			   "came back through ikelb while its health check passes: its replies "
			   "bypass ikelb (check its default gateway)",
			   svc, srv, reqs, BYPASS_WINDOW_S);
	else
		log_fields(log, LOG_LVL_NOTICE, f, 2,
			   "service %s server %s: replies come back through ikelb again", svc, srv);
}

/* The verdict on a full window: set on requests without replies, clear
 * on any reply (or when the server is no longer judged). */
static void judge(struct bypass_srv *w, bool ok, const char *svc, const char *srv,
		  const struct logger *log)
{
	bool was = w->flagged;
	if (!ok) {
		w->flagged = false;
	} else if (w->n >= RING) {
		uint32_t now = (w->n - 1) % RING, old = w->n % RING;
		uint64_t reqs = w->ike[now] - w->ike[old];
		uint64_t reps = w->replies[now] - w->replies[old];
		if (reps > 0)
			w->flagged = false;
		else if (reqs >= BYPASS_MIN_REQUESTS)
			w->flagged = true;
		if (w->flagged && !was)
			note(log, svc, srv, true, reqs);
	}
	if (was && !w->flagged)
		note(log, svc, srv, false, 0);
}

void bypass_tick(struct bypass *b, const struct cfg *cfg, const struct runtime *rt,
		 const struct eng_stats *st, const struct logger *log)
{
	if (b->nsvc != cfg->nservices || st->nsvc < cfg->nservices)
		return;
	for (int i = 0; i < cfg->nservices; i++) {
		const struct cfg_service *s = &cfg->services[i];
		if (b->nsrv[i] != s->nservers || !st->srv[i])
			continue;
		for (int j = 0; j < s->nservers; j++) {
			struct bypass_srv *w = &b->srv[i][j];
			sample(w, &st->srv[i][j]);
			judge(w, eligible(s, &rt->svc[i].servers[j]), s->name, s->servers[j].name,
			      log);
		}
	}
}

bool bypass_flagged(const struct bypass *b, int svc, int srv)
{
	if (!b || svc < 0 || svc >= b->nsvc || srv < 0 || srv >= b->nsrv[svc])
		return false;
	return b->srv[svc][srv].flagged;
}

void bypass_warning(const char *server, char *buf, size_t len)
{
	snprintf(buf, len, "replies from %s bypass ikelb (check its default gateway)", server);
}
