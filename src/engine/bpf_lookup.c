/* bpf engine: lookups and honest counts on the pinned state maps.
 * Read-only: lookups and walks never delete or refresh an entry (the 1 s
 * sweep in bpf_state.c is the only writer on the daemon's side). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "engine/bpf_engine_int.h"
#include "bpf/ikelb.skel.h"
#include "ikelb/hash.h"

struct bwalk {
	struct bpf_engine *e;
	const struct lk_query *q;
	struct real_value *reals;
	int16_t *srv_of;          /* real_id -> server index in its service, -1 */
	uint32_t now;
	lk_cb cb;
	void *ctx;
	int found, stop;
};

static int bwalk_init(struct bwalk *w, struct bpf_engine *e, const struct lk_query *q,
		      lk_cb cb, void *ctx)
{
	*w = (struct bwalk){ .e = e, .q = q, .now = bpf_engine_now_s(), .cb = cb, .ctx = ctx };
	w->reals = calloc(IKELB_MAX_REALS, sizeof(*w->reals));
	w->srv_of = malloc(IKELB_MAX_REALS * sizeof(*w->srv_of));
	if (!w->reals || !w->srv_of)
		return -ENOMEM;
	memset(w->srv_of, 0xff, IKELB_MAX_REALS * sizeof(*w->srv_of));
	for (int i = 0; i < e->nsvc; i++)
		for (int j = 0; j < e->svc[i].nservers; j++)
			if (e->svc[i].real_ids[j] < IKELB_MAX_REALS)
				w->srv_of[e->svc[i].real_ids[j]] = (int16_t)j;
	return bpfe_read_reals(e, w->reals);
}

static void bwalk_free(struct bwalk *w)
{
	free(w->reals);
	free(w->srv_of);
}

/* Server index of a live entry (fresh, server of this service and not
 * DOWN), else -1: what the data path would ignore. */
static int live_srv(const struct bwalk *w, uint32_t svc, const struct state_value *v,
		    uint32_t timeout)
{
	if (svc >= (uint32_t)w->e->nsvc || v->real_id >= IKELB_MAX_REALS)
		return -1;
	const struct real_value *r = &w->reals[v->real_id];
	if (!(r->flags & REAL_F_IN_USE) || r->svc_id != svc || r->state == REAL_DOWN)
		return -1;
	if (timeout && w->now - v->last_seen_s > timeout)
		return -1;
	return w->srv_of[v->real_id];
}

static void emit(struct bwalk *w, const struct lk_entry *en)
{
	w->found++;
	if (!w->stop && w->cb(w->ctx, en))
		w->stop = 1;
}

/* The entry of table t (key, value), when live and selected by the query. */
static void consider(struct bwalk *w, enum lk_table t, const void *key,
		     const struct state_value *v)
{
	uint32_t svc;
	memcpy(&svc, key, sizeof(svc)); /* every state key starts with svc_id */
	if (svc >= (uint32_t)w->e->nsvc)
		return;
	const struct svc_value *sv = &w->e->svc[svc].val;
	uint32_t to = t == LK_T_FLOW ? sv->flow_timeout_s : sv->persist_timeout_s;
	int srv = live_srv(w, svc, v, to);
	if (srv < 0 || !lk_match_filter(w->q, (int)svc, srv))
		return;
	struct lk_entry en = { .svc = (int)svc, .srv = srv, .table = t,
			       .idle_s = (int64_t)(uint32_t)(w->now - v->last_seen_s) };
	en.expires_in = lk_expires_in((uint64_t)en.idle_s, to);
	if (t == LK_T_FLOW) {
		const struct flow_key *k = key;
		en.rule = RULE_FLOW;
		en.client = k->client;
		en.cport = k->cport;
		en.vport = k->vport;
		if (w->q->kind == LK_Q_ADDR &&
		    (!ikelb_addr_eq(&k->client, &w->q->addr) ||
		     (w->q->port >= 0 && k->cport != (uint16_t)w->q->port)))
			return;
	} else if (t == LK_T_PERSIST) {
		en.rule = RULE_PERSIST;
		en.client = ((const struct persist_key *)key)->client;
	} else {
		en.rule = RULE_SA;
		en.spi = ((const struct sa_key *)key)->spi_i;
	}
	emit(w, &en);
}

/* One table of a walk, as bpfe_batch_walk's context. */
struct bwalk_table {
	struct bwalk *w;
	enum lk_table t;
};

static int walk_entry(void *ctx, const void *key, const void *val)
{
	struct bwalk_table *bt = ctx;
	struct state_value v;

	if (bt->w->stop)
		return 1;
	memcpy(&v, val, sizeof(v));
	consider(bt->w, bt->t, key, &v);
	return 0;
}

static int walk_map(struct bwalk *w, struct bpf_map *m, enum lk_table t, size_t ksz)
{
	/* halfopen_map's values are longer (struct halfopen_value) but start
	 * with the same two fields as struct state_value. */
	struct bwalk_table bt = { .w = w, .t = t };
	if (w->stop)
		return 0;
	int err = bpfe_batch_walk(bpf_map__fd(m), ksz, bpf_map__value_size(m), walk_entry, &bt);
	if (err < 0)
		log_err(w->e->log, "bpf: reading %s: %s", bpf_map__name(m), strerror(-err));
	return err < 0 ? err : 0;
}

static void peek(struct bwalk *w, struct bpf_map *m, enum lk_table t, const void *key)
{
	/* Room for either value type; both start with struct state_value. */
	union {
		struct state_value s;
		struct halfopen_value h;
	} v;
	if (bpf_map_lookup_elem(bpf_map__fd(m), key, &v) == 0)
		consider(w, t, key, &v.s);
}

static void stateless(struct bwalk *w, int svc, int real_id, enum ikelb_rule rule,
		      enum lk_table t)
{
	struct lk_entry en = { .svc = svc, .table = t, .rule = rule, .client = w->q->addr,
			       .spi = w->q->spi, .idle_s = -1, .expires_in = -1 };
	if (real_id < 0 || real_id >= IKELB_MAX_REALS || w->srv_of[real_id] < 0)
		return;
	en.srv = w->srv_of[real_id];
	emit(w, &en);
}

static int label_real(struct bwalk *w, uint32_t svc)
{
	const struct svc_value *sv = &w->e->svc[svc].val;
	uint32_t id;
	if (w->q->esp) {
		struct esp_lpm_key k = { .prefixlen = 64, .svc_id_be = htobe32(svc),
					 .spi_be = htobe32((uint32_t)w->q->spi) };
		if (!(sv->flags & SVC_F_ESP_LABELS) ||
		    bpf_map_lookup_elem(bpf_map__fd(w->e->skel->maps.esp_lpm_map), &k, &id) < 0)
			return -1;
		return (int)id;
	}
	struct label_key k = { .svc_id = svc, .label = w->q->spi & sv->spi_mask };
	if (!sv->spi_mask ||
	    bpf_map_lookup_elem(bpf_map__fd(w->e->skel->maps.label_map), &k, &id) < 0)
		return -1;
	return (int)id;
}

/* Maglev slot of hash h, probing like the program's maglev_pick. */
static int maglev_real(struct bwalk *w, uint32_t svc, uint64_t h)
{
	const struct svc_value *sv = &w->e->svc[svc].val;
	int fd = bpf_map__fd(w->e->skel->maps.maglev_map);
	if (!sv->maglev_size)
		return -1;
	uint32_t slot = (uint32_t)(h % sv->maglev_size);
	for (int k = 0; k < 4; k++) {
		uint32_t idx = sv->maglev_off + slot, id;
		if (bpf_map_lookup_elem(fd, &idx, &id) == 0 && id < IKELB_MAX_REALS &&
		    w->reals[id].svc_id == svc && w->reals[id].state != REAL_DOWN)
			return (int)id;
		slot = slot + 1 >= sv->maglev_size ? 0 : slot + 1;
	}
	return -1;
}

static void query_spi(struct bwalk *w, uint32_t svc)
{
	/* SPIi state first (what a lookup by SPIi means), then the label the
	 * same bits would have as a server-chosen SPI. */
	if (!w->q->esp) {
		struct sa_key k = { .svc_id = svc, .spi_i = w->q->spi };
		peek(w, w->e->skel->maps.sa_map, LK_T_SA, &k);
		peek(w, w->e->skel->maps.halfopen_map, LK_T_HALFOPEN, &k);
	}
	stateless(w, (int)svc, label_real(w, svc), RULE_LABEL, LK_T_LABEL);
}

/* Nothing knows the SPI: ike services would place its IKE messages by
 * hashing it (rule 6). */
static void fallback_spi(struct bwalk *w, uint32_t svc)
{
	const struct svc_value *sv = &w->e->svc[svc].val;
	if (!w->q->esp && (sv->flags & SVC_F_PERSIST_IKE))
		stateless(w, (int)svc, maglev_real(w, svc, ikelb_hash_u64(w->q->spi, sv->hash_seed)),
			  RULE_FALLBACK, LK_T_NONE);
}

static struct ikelb_addr masked(const struct svc_value *sv, const struct ikelb_addr *a)
{
	struct ikelb_addr m = *a;
	ikelb_addr_mask(&m, ikelb_addr_is_v4(&m) ? sv->netmask : sv->netmask6);
	return m;
}

static void query_addr(struct bwalk *w)
{
	walk_map(w, w->e->skel->maps.flow_map, LK_T_FLOW, sizeof(struct flow_key));
	for (uint32_t i = 0; i < (uint32_t)w->e->nsvc; i++) {
		const struct svc_value *sv = &w->e->svc[i].val;
		if (!lk_match_filter(w->q, (int)i, -1) || (sv->flags & SVC_F_PERSIST_IKE))
			continue;
		struct persist_key pk = { .svc_id = i, .client = masked(sv, &w->q->addr) };
		peek(w, w->e->skel->maps.persist_map, LK_T_PERSIST, &pk);
	}
	for (uint32_t i = 0; !w->found && i < (uint32_t)w->e->nsvc; i++) {
		const struct svc_value *sv = &w->e->svc[i].val;
		struct ikelb_addr ha = (sv->flags & SVC_F_PERSIST_IKE) ? w->q->addr
								       : masked(sv, &w->q->addr);
		if (lk_match_filter(w->q, (int)i, -1))
			stateless(w, (int)i, maglev_real(w, i, ikelb_hash_addr(&ha, 0, sv->hash_seed)),
				  RULE_FALLBACK, LK_T_NONE);
	}
}

int bpf_engine_lookup(struct bpf_engine *e, const struct lk_query *q, lk_cb cb, void *ctx)
{
	struct bwalk w;
	int rc = bwalk_init(&w, e, q, cb, ctx);
	if (rc == 0 && q->kind == LK_Q_ALL) {
		walk_map(&w, e->skel->maps.flow_map, LK_T_FLOW, sizeof(struct flow_key));
		walk_map(&w, e->skel->maps.sa_map, LK_T_SA, sizeof(struct sa_key));
		walk_map(&w, e->skel->maps.halfopen_map, LK_T_HALFOPEN, sizeof(struct sa_key));
		walk_map(&w, e->skel->maps.persist_map, LK_T_PERSIST, sizeof(struct persist_key));
	} else if (rc == 0 && q->kind == LK_Q_ADDR) {
		query_addr(&w);
	} else if (rc == 0) {
		for (uint32_t i = 0; i < (uint32_t)e->nsvc; i++)
			if (lk_match_filter(q, (int)i, -1))
				query_spi(&w, i);
		for (uint32_t i = 0; !w.found && i < (uint32_t)e->nsvc; i++)
			if (lk_match_filter(q, (int)i, -1))
				fallback_spi(&w, i);
	}
	bwalk_free(&w);
	return rc < 0 ? rc : w.found;
}

/* ---- distinct client addresses per real server ---- */

struct addr_pair {
	uint32_t real;
	struct ikelb_addr a;
};

static int pair_cmp(const void *x, const void *y)
{
	const struct addr_pair *a = x, *b = y;
	if (a->real != b->real)
		return a->real < b->real ? -1 : 1;
	return memcmp(&a->a, &b->a, sizeof(a->a));
}

struct collect {
	struct addr_pair *p;
	size_t n, cap;
	int err;
	const struct bwalk *w;
};

static int collect_cb(void *ctx, const struct lk_entry *en)
{
	struct collect *c = ctx;
	if (en->table != LK_T_FLOW)
		return 0;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? 2 * c->cap : 256;
		struct addr_pair *np = realloc(c->p, ncap * sizeof(*np));
		if (!np) {
			c->err = -ENOMEM;
			return 1;
		}
		c->p = np;
		c->cap = ncap;
	}
	c->p[c->n].real = c->w->e->svc[en->svc].real_ids[en->srv];
	c->p[c->n++].a = en->client;
	return 0;
}

int bpf_engine_client_addresses(struct bpf_engine *e, uint32_t *per_real)
{
	struct lk_query q = { .kind = LK_Q_ALL, .svc = -1, .srv = -1 };
	struct collect c = { 0 };
	struct bwalk w;
	int rc = bwalk_init(&w, e, &q, collect_cb, &c);

	c.w = &w;
	memset(per_real, 0, IKELB_MAX_REALS * sizeof(*per_real));
	if (rc == 0)
		rc = walk_map(&w, e->skel->maps.flow_map, LK_T_FLOW, sizeof(struct flow_key));
	if (rc == 0 && c.err)
		rc = c.err;
	if (rc == 0) {
		if (c.n) /* qsort wants a valid pointer even for 0 items */
			qsort(c.p, c.n, sizeof(*c.p), pair_cmp);
		for (size_t i = 0; i < c.n; i++)
			if ((i == 0 || pair_cmp(&c.p[i - 1], &c.p[i])) && c.p[i].real < IKELB_MAX_REALS)
				per_real[c.p[i].real]++;
	}
	free(c.p);
	bwalk_free(&w);
	return rc;
}
