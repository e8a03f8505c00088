/* Lookups and honest counts on the steering tables (steer.h), for the
 * socket engine: read-only, so a lookup or a status read never expires or
 * refreshes an entry (the 1 s sweep, steer_expire, is the only remover). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/steer_int.h"
#include "ikelb/hash.h"

struct walk {
	const struct steer *st;
	const struct lk_query *q;
	uint64_t now;
	lk_cb cb;
	void *ctx;
	int found;
	int stop;
};

static const enum lk_table tbl_of[T__MAX] = {
	[T_PERSIST] = LK_T_PERSIST, [T_SA] = LK_T_SA, [T_HALFOPEN] = LK_T_HALFOPEN,
	[T_FLOW] = LK_T_FLOW,
};

static uint32_t key_svc(const void *key)
{
	uint32_t v;
	memcpy(&v, key, sizeof(v)); /* every key starts with the service id */
	return v;
}

static uint64_t tbl_timeout(const struct steer_svc *s, int t)
{
	return t == T_FLOW ? s->flow_to : s->persist_to;
}

/* Server index of a live entry of table t, -1 for stale or dead ones
 * (which the data path ignores too). */
static int live_server(const struct steer *st, int t, const void *key, const struct lru_value *v,
		       uint64_t now)
{
	uint32_t svc = key_svc(key);
	if (svc >= (uint32_t)st->nsvc)
		return -1;
	const struct steer_svc *s = &st->svc[svc];
	uint32_t idx = v->server - s->base;
	uint64_t to = tbl_timeout(s, t);
	if (v->server < s->base || idx >= (uint32_t)s->n || s->srv[idx].state == REAL_DOWN)
		return -1;
	if (to && now - v->last_seen > to)
		return -1;
	return (int)idx;
}

static void fill(struct lk_entry *e, int t, const void *key, const struct lru_value *v,
		 const struct steer_svc *s, uint64_t now)
{
	memset(e, 0, sizeof(*e));
	e->svc = (int)key_svc(key);
	e->table = tbl_of[t];
	e->rule = t == T_FLOW ? RULE_FLOW : t == T_PERSIST ? RULE_PERSIST : RULE_SA;
	e->idle_s = (int64_t)(now - v->last_seen);
	e->expires_in = lk_expires_in(now - v->last_seen, tbl_timeout(s, t));
	if (t == T_FLOW) {
		const struct flow_key *k = key;
		e->client = k->client;
		e->cport = k->cport;
		e->vport = k->vport;
	} else if (t == T_PERSIST) {
		e->client = ((const struct persist_key *)key)->client;
	} else {
		e->spi = ((const struct sa_key *)key)->spi_i;
	}
}

static void emit(struct walk *w, const struct lk_entry *e)
{
	w->found++;
	if (!w->stop && w->cb(w->ctx, e))
		w->stop = 1;
}

/* Every live entry of table t the query selects. */
static void walk_table(struct walk *w, int t)
{
	struct lru_iter it;
	const void *key;
	struct lru_value v;
	struct lk_entry e;

	lru_iter_init(&it, w->st->t[t], w->now);
	while (!w->stop && lru_iter_next(&it, &key, &v)) {
		int srv = live_server(w->st, t, key, &v, w->now);
		if (srv < 0 || !lk_match_filter(w->q, (int)key_svc(key), srv))
			continue;
		fill(&e, t, key, &v, &w->st->svc[key_svc(key)], w->now);
		e.srv = srv;
		if (w->q->kind == LK_Q_ADDR &&
		    (!ikelb_addr_eq(&e.client, &w->q->addr) ||
		     (w->q->port >= 0 && e.cport != (uint16_t)w->q->port)))
			continue;
		emit(w, &e);
	}
}

/* One entry looked up by key (no iteration). */
static void peek(struct walk *w, int t, const void *key)
{
	struct lru_value v;
	struct lk_entry e;
	if (lru_peek(w->st->t[t], key, w->now, &v) < 0)
		return;
	int srv = live_server(w->st, t, key, &v, w->now);
	if (srv < 0)
		return;
	fill(&e, t, key, &v, &w->st->svc[key_svc(key)], w->now);
	e.srv = srv;
	emit(w, &e);
}

static void stateless(struct walk *w, int svc, int srv, enum ikelb_rule rule,
		      enum lk_table table)
{
	struct lk_entry e = { .svc = svc, .srv = srv, .table = table, .rule = rule,
			      .client = w->q->addr, .spi = w->q->spi, .idle_s = -1,
			      .expires_in = -1 };
	if (srv >= 0)
		emit(w, &e);
}

static int label_of(const struct steer_svc *s, const struct lk_query *q)
{
	for (int i = 0; i < s->n; i++) {
		if (q->esp && s->srv[i].has_esp && q->spi >= s->srv[i].esp_min &&
		    q->spi <= s->srv[i].esp_max)
			return i;
		if (!q->esp && s->spi_mask && s->srv[i].has_label &&
		    ike_spi_has_label(q->spi, s->spi_mask, s->srv[i].label))
			return i;
	}
	return -1;
}

static void query_svc(struct walk *w, int svc)
{
	const struct steer_svc *s = &w->st->svc[svc];

	if (w->q->kind == LK_Q_SPI) {
		/* SPIi state first (what a lookup by SPIi means), then the
		 * label the same bits would have as a server-chosen SPI. */
		if (!w->q->esp) {
			struct sa_key k;
			steer_key_sa(&k, svc, w->q->spi);
			peek(w, T_SA, &k);
			peek(w, T_HALFOPEN, &k);
		}
		stateless(w, svc, label_of(s, w->q), RULE_LABEL, LK_T_LABEL);
		return;
	}
	if (s->mode == CFG_PERSIST_SOURCE_IP) {
		struct persist_key pk;
		steer_key_persist(&pk, svc, s, &w->q->addr);
		peek(w, T_PERSIST, &pk);
	}
}

int steer_query(const struct steer *st, const struct lk_query *q, uint64_t now, lk_cb cb,
		void *ctx)
{
	struct walk w = { .st = st, .q = q, .now = now, .cb = cb, .ctx = ctx };
	if (!st || !q || !cb)
		return -EINVAL;
	if (q->kind == LK_Q_ALL) {
		for (int t = 0; t < T__MAX; t++)
			walk_table(&w, t);
		return w.found;
	}
	if (q->kind == LK_Q_ADDR)
		walk_table(&w, T_FLOW);
	for (int i = 0; i < st->nsvc; i++)
		if (lk_match_filter(q, i, -1))
			query_svc(&w, i);
	/* Nothing remembers the client: rule 6 would place its datagrams (by
	 * address; IKE of ike services by SPIi). */
	for (int i = 0; !w.found && i < st->nsvc; i++) {
		const struct steer_svc *s = &st->svc[i];
		struct ikelb_addr ha = steer_hash_addr(s, &q->addr);
		uint64_t h = ikelb_hash_addr(&ha, 0, s->seed);
		if (q->kind == LK_Q_SPI)
			h = ikelb_hash_u64(q->spi, s->seed);
		if (lk_match_filter(q, i, -1) &&
		    (q->kind == LK_Q_ADDR || (!q->esp && s->mode == CFG_PERSIST_IKE)))
			stateless(&w, i, steer_fallback_pick(s, h), RULE_FALLBACK, LK_T_NONE);
	}
	return w.found;
}

/* ---- honest counts ---- */

struct addr_pair {
	uint32_t srv;
	struct ikelb_addr a;
};

static int pair_cmp(const void *x, const void *y)
{
	const struct addr_pair *a = x, *b = y;
	if (a->srv != b->srv)
		return a->srv < b->srv ? -1 : 1;
	return memcmp(&a->a, &b->a, sizeof(a->a));
}

/* Distinct client addresses per server, from the live flows of svc. */
static int count_addresses(const struct steer *st, int svc, uint64_t now, uint64_t *out)
{
	size_t n = 0, cap = 64;
	struct addr_pair *p = malloc(cap * sizeof(*p));
	struct lru_iter it;
	const void *key;
	struct lru_value v;

	if (!p)
		return -ENOMEM;
	lru_iter_init(&it, st->t[T_FLOW], now);
	while (lru_iter_next(&it, &key, &v)) {
		int srv = live_server(st, T_FLOW, key, &v, now);
		if (srv < 0 || key_svc(key) != (uint32_t)svc)
			continue;
		if (n == cap) {
			struct addr_pair *np = realloc(p, 2 * cap * sizeof(*p));
			if (!np) {
				free(p);
				return -ENOMEM;
			}
			p = np;
			cap *= 2;
		}
		p[n].srv = (uint32_t)srv;
		p[n++].a = ((const struct flow_key *)key)->client;
	}
	qsort(p, n, sizeof(*p), pair_cmp);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || pair_cmp(&p[i - 1], &p[i]))
			out[p[i].srv]++;
	free(p);
	return 0;
}

int steer_server_usage(const struct steer *st, int svc, uint64_t now, uint64_t *sas,
		       uint64_t *addresses)
{
	const struct steer_svc *s = steer_svc_get(st, svc);
	struct lru_iter it;
	const void *key;
	struct lru_value v;

	if (!s)
		return -EINVAL;
	memset(sas, 0, (size_t)s->n * sizeof(*sas));
	memset(addresses, 0, (size_t)s->n * sizeof(*addresses));
	lru_iter_init(&it, st->t[T_SA], now);
	while (lru_iter_next(&it, &key, &v)) {
		int srv = live_server(st, T_SA, key, &v, now);
		if (srv >= 0 && key_svc(key) == (uint32_t)svc)
			sas[srv]++;
	}
	return count_addresses(st, svc, now, addresses);
}
