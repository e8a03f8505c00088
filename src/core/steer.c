/* User-space steering decision; the rules are documented in steer.h. */
#include "core/steer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ikelb/hash.h"
#include "core/maglev.h"
#include "core/lru_table.h"
#include "core/scheduler.h"

struct steer_srv {
	int state;            /* REAL_* */
	bool has_label;
	bool has_esp;
	uint64_t label;
	uint32_t esp_min, esp_max;
};

struct steer_svc {
	enum cfg_persist_mode mode;
	enum cfg_sched kind;
	int netmask, netmask6;
	uint64_t spi_mask;
	uint64_t seed;
	uint64_t persist_to, flow_to; /* seconds, 0 = none */
	bool esp_labels;
	int n;
	uint32_t base;        /* global id of server 0 */
	struct steer_srv *srv;
	uint32_t *table;
	uint32_t m;
	struct sched *sched;
	uint64_t pkts[SVC_CTR__MAX];
	uint64_t bytes[SVC_CTR__MAX];
};

enum { T_PERSIST, T_SA, T_HALFOPEN, T_FLOW, T__MAX };

struct steer {
	int nsvc;
	struct steer_svc svc[CFG_MAX_SERVICES];
	struct lru_table *t[T__MAX];
	bool mixed_timeouts[T__MAX]; /* services disagree: sweep needs a full pass */
};

static uint64_t svc_timeout(const struct steer_svc *s, int table)
{
	return table == T_FLOW ? s->flow_to : s->persist_to;
}

/* ------------------------------------------------------------------ setup */

static int svc_set_table(struct steer_svc *s, const uint32_t *table, uint32_t m)
{
	if (!table || m == 0)
		return -EINVAL;
	uint32_t *nt = malloc((size_t)m * sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	memcpy(nt, table, (size_t)m * sizeof(*nt));
	free(s->table);
	s->table = nt;
	s->m = m;
	return 0;
}

static int svc_init(struct steer_svc *s, const struct cfg_service *cs, uint64_t seed, uint32_t base)
{
	s->mode = cs->persistence.mode;
	s->kind = cs->scheduler;
	s->netmask = cs->persistence.netmask;
	s->netmask6 = cs->persistence.netmask6;
	s->spi_mask = cs->spi_mask;
	s->seed = seed;
	s->persist_to = cs->persistence.timeout_s;
	s->flow_to = cs->persistence.flow_timeout_s;
	s->n = cs->nservers;
	s->base = base;
	s->srv = calloc(s->n ? (size_t)s->n : 1, sizeof(*s->srv));
	struct sched_server *v = calloc(s->n ? (size_t)s->n : 1, sizeof(*v));
	s->sched = sched_new(cs->scheduler, cs->maglev_size, seed);
	int rc = -1;
	if (!s->srv || !v || !s->sched)
		goto out;
	for (int i = 0; i < s->n; i++) {
		const struct cfg_server *c = &cs->servers[i];
		struct steer_srv *d = &s->srv[i];
		d->state = (int)sched_state_from_cfg(c->state, 1);
		d->has_label = c->has_spi_label && cs->spi_mask;
		d->label = c->spi_label;
		d->has_esp = c->has_esp_range;
		d->esp_min = c->esp_spi_min;
		d->esp_max = c->esp_spi_max;
		s->esp_labels |= d->has_esp;
		memcpy(v[i].name, c->name, sizeof(v[i].name));
		v[i].addr = c->addr;
		v[i].weight = c->weight;
		v[i].state = (enum sched_state)d->state;
	}
	if (sched_update(s->sched, v, (size_t)s->n) < 0)
		goto out;
	uint32_t m;
	const uint32_t *t = sched_maglev_table(s->sched, &m);
	rc = svc_set_table(s, t, m);
out:
	free(v);
	return rc;
}

static struct lru_table *table_new(uint32_t cap, uint32_t key_len, const uint64_t hk[2])
{
	struct lru_opts o = { .capacity = cap ? cap : 1, .key_len = key_len,
				  .timeout = 0, .hash_key = { hk[0], hk[1] } };
	return lru_new(&o);
}

/* An entry is live while its idle time is at most its service's timeout
 * (the BPF program's `now - last_seen > timeout` means stale). persist
 * hides entries whose idle time has reached the table timeout, so the table
 * timeout is the longest service timeout + 1 (0 if any service has none):
 * persist never drops an entry some service still considers live; shorter
 * service timeouts are applied by lookups and by a full pass in
 * steer_expire. */
static void set_table_timeouts(struct steer *st)
{
	for (int t = 0; t < T__MAX; t++) {
		uint64_t mx = 0;
		bool none = false, mixed = false;
		for (int i = 0; i < st->nsvc; i++) {
			uint64_t to = svc_timeout(&st->svc[i], t);
			if (i && to != svc_timeout(&st->svc[0], t))
				mixed = true;
			if (to == 0)
				none = true;
			if (to > mx)
				mx = to;
		}
		lru_set_timeout(st->t[t], none ? 0 : mx + 1);
		st->mixed_timeouts[t] = mixed;
	}
}

struct steer *steer_new(const struct cfg *cfg, const struct steer_opts *o)
{
	if (!cfg || cfg->nservices < 0 || cfg->nservices > CFG_MAX_SERVICES)
		return NULL;
	struct steer *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	struct steer_opts d = { 0 };
	if (o)
		d = *o;
	uint32_t clients = d.max_clients ? d.max_clients : cfg->max_clients;
	uint32_t half = d.max_halfopen ? d.max_halfopen : cfg->max_halfopen;
	uint32_t flows = d.max_flows ? d.max_flows : cfg->max_flows;
	st->t[T_PERSIST] = table_new(clients, sizeof(struct persist_key), d.hash_key);
	st->t[T_SA] = table_new(clients, sizeof(struct sa_key), d.hash_key);
	st->t[T_HALFOPEN] = table_new(half, sizeof(struct sa_key), d.hash_key);
	st->t[T_FLOW] = table_new(flows, sizeof(struct flow_key), d.hash_key);
	for (int t = 0; t < T__MAX; t++)
		if (!st->t[t])
			goto fail;
	uint32_t base = 0;
	for (int i = 0; i < cfg->nservices; i++) {
		st->nsvc = i + 1;
		if (svc_init(&st->svc[i], &cfg->services[i], cfg->maglev_seed, base) < 0)
			goto fail;
		base += (uint32_t)cfg->services[i].nservers;
	}
	set_table_timeouts(st);
	return st;
fail:
	steer_free(st);
	return NULL;
}

void steer_free(struct steer *st)
{
	if (!st)
		return;
	for (int i = 0; i < st->nsvc; i++) {
		free(st->svc[i].srv);
		free(st->svc[i].table);
		sched_free(st->svc[i].sched);
	}
	for (int t = 0; t < T__MAX; t++)
		lru_free(st->t[t]);
	free(st);
}

static struct steer_svc *svc_get(const struct steer *st, int svc)
{
	if (!st || svc < 0 || svc >= st->nsvc)
		return NULL;
	return (struct steer_svc *)&st->svc[svc];
}

int steer_set_table(struct steer *st, int svc, const uint32_t *table, uint32_t m)
{
	struct steer_svc *s = svc_get(st, svc);
	return s ? svc_set_table(s, table, m) : -EINVAL;
}

long steer_set_state(struct steer *st, int svc, int srv, int state)
{
	struct steer_svc *s = svc_get(st, svc);
	if (!s || srv < 0 || srv >= s->n || state < REAL_ACTIVE || state > REAL_DOWN)
		return -EINVAL;
	s->srv[srv].state = state;
	if (sched_set_state(s->sched, (size_t)srv, (enum sched_state)state) < 0)
		return -ENOMEM;
	if (state != REAL_DOWN)
		return 0;
	long n = 0;
	for (int t = 0; t < T__MAX; t++)
		n += (long)lru_del_server(st->t[t], s->base + (uint32_t)srv);
	return n;
}

int steer_set_weight(struct steer *st, int svc, int srv, uint32_t weight)
{
	struct steer_svc *s = svc_get(st, svc);
	if (!s || srv < 0 || srv >= s->n)
		return -EINVAL;
	int rc = sched_set_weight(s->sched, (size_t)srv, weight);
	return rc < 0 ? rc : 0;
}

int steer_server_state(const struct steer *st, int svc, int srv)
{
	const struct steer_svc *s = svc_get(st, svc);
	if (!s || srv < 0 || srv >= s->n)
		return -EINVAL;
	return s->srv[srv].state;
}

/* ------------------------------------------------------------------ keys */

static void key_persist(struct persist_key *k, int svc, const struct steer_svc *s,
			const struct ikelb_addr *client)
{
	memset(k, 0, sizeof(*k));
	k->svc_id = (uint32_t)svc;
	k->client = *client;
	ikelb_addr_mask(&k->client, ikelb_addr_is_v4(client) ? s->netmask : s->netmask6);
}

static void key_sa(struct sa_key *k, int svc, uint64_t spi_i)
{
	memset(k, 0, sizeof(*k));
	k->svc_id = (uint32_t)svc;
	k->spi_i = spi_i;
}

static void key_flow(struct flow_key *k, int svc, const struct ikelb_addr *client, uint16_t cport,
		     uint16_t vport)
{
	memset(k, 0, sizeof(*k));
	k->svc_id = (uint32_t)svc;
	k->cport = cport;
	k->vport = vport;
	k->client = *client;
}

/* ------------------------------------------------------------------ rules */

/* Server of a live entry (idle at most the service timeout, server not
 * DOWN), touching it; -1 otherwise. Entries of dead servers are deleted on
 * sight; idle ones are left for steer_expire or a new decision (as in the
 * BPF program's state_use). */
static int lookup(struct steer *st, int t, const struct steer_svc *s, const void *key,
		  uint64_t now)
{
	struct lru_value v;
	if (lru_peek(st->t[t], key, now, &v) < 0)
		return -1;
	uint64_t to = svc_timeout(s, t);
	if (to && now - v.last_seen > to)
		return -1;
	uint32_t idx = v.server - s->base;
	if (v.server < s->base || idx >= (uint32_t)s->n || s->srv[idx].state == REAL_DOWN) {
		lru_del(st->t[t], key);
		return -1;
	}
	lru_get(st->t[t], key, now, NULL);
	return (int)idx;
}

/* Make the entry say (srv, now). Returns lru_put's code. */
static int put(struct steer *st, int t, const struct steer_svc *s, const void *key, int srv,
	       uint64_t now)
{
	return lru_put(st->t[t], key, s->base + (uint32_t)srv, 0, now);
}

static int usable(const struct steer_svc *s, int srv)
{
	return srv >= 0 && srv < s->n && s->srv[srv].state != REAL_DOWN;
}

/* Labels are unique per service (config validation), so the first match is
 * the only one. */
static int rule_label(const struct steer_svc *s, const struct ike_info *in)
{
	if (in->cls == IKE_C_IKEV2 && s->spi_mask) {
		uint64_t spi = ike_server_spi(in);
		for (int i = 0; spi && i < s->n; i++)
			if (s->srv[i].has_label && ike_spi_has_label(spi, s->spi_mask, s->srv[i].label))
				return usable(s, i) ? i : -1;
	} else if (in->cls == IKE_C_ESP && s->esp_labels) {
		for (int i = 0; i < s->n; i++)
			if (s->srv[i].has_esp && in->esp_spi >= s->srv[i].esp_min &&
			    in->esp_spi <= s->srv[i].esp_max)
				return usable(s, i) ? i : -1;
	}
	return -1;
}

static int is_ike(const struct ike_info *in)
{
	return in->cls == IKE_C_IKEV2 || in->cls == IKE_C_IKEV1;
}

/* Maglev slot for hash, probing up to 4 following slots whose server is
 * unusable (the table may lag a state change), like the BPF maglev_pick.
 * need_active: new clients only go to ACTIVE servers; fallback traffic may
 * go to DRAINING ones. */
static int table_pick(const struct steer_svc *s, uint64_t hash, int need_active)
{
	if (!s->table || s->m == 0)
		return -1;
	uint32_t slot = (uint32_t)(hash % s->m);
	for (int k = 0; k < 4; k++) {
		uint32_t i = s->table[slot];
		if (i != MAGLEV_EMPTY && i < (uint32_t)s->n && s->srv[i].state != REAL_DOWN &&
		    (!need_active || s->srv[i].state == REAL_ACTIVE))
			return (int)i;
		slot = slot + 1 >= s->m ? 0 : slot + 1;
	}
	return -1;
}

/* The address the client hash covers: under the netmask for source-ip
 * persistence, whole for ike persistence. */
static struct ikelb_addr hash_addr_of(const struct steer_svc *s, const struct ikelb_addr *client)
{
	struct ikelb_addr a = *client;
	if (s->mode == CFG_PERSIST_SOURCE_IP)
		ikelb_addr_mask(&a, ikelb_addr_is_v4(&a) ? s->netmask : s->netmask6);
	return a;
}

/* New client. maglev and sh use the daemon's table with the same key as the
 * BPF program; the others need per-pick state and use steer's scheduler. */
static int schedule(const struct steer_svc *s, const struct ikelb_addr *client,
		    const struct ike_info *in)
{
	if (s->kind == CFG_SCHED_MAGLEV || s->kind == CFG_SCHED_SH) {
		struct ikelb_addr ha = hash_addr_of(s, client);
		uint64_t h = s->mode == CFG_PERSIST_IKE ? ikelb_hash_u64(in->spi_i, s->seed)
							: ikelb_hash_addr(&ha, 0, s->seed);
		return table_pick(s, h, 1);
	}
	int i = sched_pick(s->sched, client, 0);
	return i >= 0 && i < s->n && s->srv[i].state == REAL_ACTIVE ? i : -1;
}

/* Rules 1-6: the server, or -1 when none is usable. */
static int decide(struct steer *st, int svc, const struct steer_svc *s,
		  const struct ikelb_addr *client, const struct flow_key *fk,
		  const struct ike_info *in, uint64_t now, enum ikelb_rule *rule)
{
	int srv;
	*rule = RULE_LABEL;
	if ((srv = rule_label(s, in)) >= 0)
		return srv;
	*rule = RULE_FLOW;
	if ((srv = lookup(st, T_FLOW, s, fk, now)) >= 0)
		return srv;
	if (is_ike(in)) {
		/* Both modes: source-ip keeps half-open SAs here too. */
		struct sa_key k;
		key_sa(&k, svc, in->spi_i);
		*rule = RULE_SA;
		if ((srv = lookup(st, T_SA, s, &k, now)) >= 0)
			return srv;
		if ((srv = lookup(st, T_HALFOPEN, s, &k, now)) >= 0)
			return srv;
	}
	if (s->mode == CFG_PERSIST_SOURCE_IP) {
		struct persist_key pk;
		key_persist(&pk, svc, s, client);
		*rule = RULE_PERSIST;
		if ((srv = lookup(st, T_PERSIST, s, &pk, now)) >= 0)
			return srv;
	}
	if (is_ike(in) && ike_is_new_sa(in)) {
		*rule = RULE_NEW;
		return schedule(s, client, in);
	}
	*rule = RULE_FALLBACK;
	/* ike mode placed the SA by its SPIi: hashing it again finds the
	 * server statelessly (restart, another node, NAT rebinding) for as long
	 * as the Maglev table is unchanged. ESP carries no SPIi. */
	if (s->mode == CFG_PERSIST_IKE && is_ike(in))
		return table_pick(s, ikelb_hash_u64(in->spi_i, s->seed), 0);
	struct ikelb_addr ha = hash_addr_of(s, client);
	return table_pick(s, ikelb_hash_addr(&ha, 0, s->seed), 0);
}

/* After the choice, as the BPF program's learn(): an IKE_SA_INIT (SPIr 0)
 * only writes the bounded half-open table, so a flood of them cannot evict
 * established clients' state; the first message with SPIr (IKE_AUTH)
 * promotes the SA: flow entry (ESP and keepalives follow), SA entry (ike)
 * or persistence (source-ip); later IKE keeps them fresh. The half-open
 * entry is dropped when the SA entry was created or moved (ike) or when it
 * steered the promotion (source-ip). Fallback decisions write nothing. */
static void learn(struct steer *st, int svc, struct steer_svc *s, const struct ikelb_addr *client,
		  const struct flow_key *fk, const struct ike_info *in, int srv,
		  enum ikelb_rule rule, uint64_t now)
{
	if (rule == RULE_FALLBACK || !is_ike(in))
		return;
	struct sa_key k;
	key_sa(&k, svc, in->spi_i);
	if (in->spi_r == 0) {
		if (ike_is_new_sa(in) && put(st, T_HALFOPEN, s, &k, srv, now) == 2)
			s->pkts[SVC_CTR_HALFOPEN_FULL]++;
		return;
	}
	if (rule != RULE_FLOW)
		put(st, T_FLOW, s, fk, srv, now);
	if (s->mode == CFG_PERSIST_IKE) {
		struct lru_value v;
		int had = lru_peek(st->t[T_SA], &k, now, &v) == 0 &&
			  v.server == s->base + (uint32_t)srv;
		put(st, T_SA, s, &k, srv, now);
		if (!had)
			lru_del(st->t[T_HALFOPEN], &k);
		return;
	}
	if (rule == RULE_SA)
		lru_del(st->t[T_HALFOPEN], &k);
	if (rule != RULE_PERSIST) {
		struct persist_key pk;
		key_persist(&pk, svc, s, client);
		put(st, T_PERSIST, s, &pk, srv, now);
	}
}

static int steer_drop(struct steer_svc *s, struct steer_result *r, int reason, size_t len)
{
	r->server = -1;
	r->rule = RULE_NONE;
	r->drop = reason;
	s->pkts[SVC_CTR_DROP_BASE + reason]++;
	s->bytes[SVC_CTR_DROP_BASE + reason] += len;
	return -1;
}

static void count_class(struct steer_svc *s, const struct ike_info *in, size_t len)
{
	static const int ctr[IKE_C__MAX] = {
		[IKE_C_IKEV2] = SVC_CTR_IKEV2, [IKE_C_IKEV1] = SVC_CTR_IKEV1,
		[IKE_C_KEEPALIVE] = SVC_CTR_KEEPALIVE, [IKE_C_ESP] = SVC_CTR_ESP,
	};
	if (in->cls > IKE_C_DROP && in->cls < IKE_C__MAX) {
		s->pkts[ctr[in->cls]]++;
		s->bytes[ctr[in->cls]] += len;
	}
}

int steer_packet(struct steer *st, int svc, const struct ikelb_addr *client, uint16_t cport,
		 uint16_t vport, int natt, const uint8_t *payload, size_t len, uint64_t now,
		 struct steer_result *r)
{
	struct steer_svc *s = svc_get(st, svc);
	if (!s || !client || !r || (!payload && len))
		return -1;
	struct ike_info *in = &r->info;
	static const uint8_t empty[1];
	const uint8_t *p = payload ? payload : empty;

	s->pkts[SVC_CTR_RX]++;
	s->bytes[SVC_CTR_RX] += len;
	if (len > UINT32_MAX)
		return steer_drop(s, r, IKE_DROP_MALFORMED_IP, len);
	if (ike_classify(p, p + len, (uint32_t)len, natt, in) == IKE_C_DROP)
		return steer_drop(s, r, in->drop & 15, len);
	count_class(s, in, len);

	struct flow_key fk;
	key_flow(&fk, svc, client, cport, vport);
	enum ikelb_rule rule;
	int srv = decide(st, svc, s, client, &fk, in, now, &rule);
	if (srv < 0)
		return steer_drop(s, r, IKE_DROP_NO_SERVER, len);
	learn(st, svc, s, client, &fk, in, srv, rule, now);

	s->pkts[SVC_CTR_STEER(rule)]++;
	s->bytes[SVC_CTR_STEER(rule)] += len;
	r->server = srv;
	r->rule = rule;
	r->drop = IKE_DROP_NONE;
	return srv;
}

void steer_learn_reply(struct steer *st, int svc, const struct ikelb_addr *client,
		       uint16_t cport, uint16_t vport, int natt, int srv, const uint8_t *payload,
		       size_t len, uint64_t now)
{
	struct steer_svc *s = svc_get(st, svc);
	struct ike_info in;

	if (!s || !client || !payload || srv < 0 || srv >= s->n || len > UINT32_MAX)
		return;
	if (ike_classify(payload, payload + len, (uint32_t)len, natt, &in) == IKE_C_DROP)
		return;
	if (ike_is_phase1(&in))
		return;
	struct flow_key fk;
	key_flow(&fk, svc, client, cport, vport);
	put(st, T_FLOW, s, &fk, srv, now);
}

/* ------------------------------------------------------------------ upkeep */

/* Every key starts with the 32-bit service id (include/ikelb/maps.h layouts). */
static uint32_t key_svc(const void *key)
{
	uint32_t v;
	memcpy(&v, key, sizeof(v));
	return v;
}

static long expire_mixed(struct steer *st, int t, uint64_t now)
{
	struct lru_iter it;
	const void *key;
	struct lru_value v;
	long n = 0;
	lru_iter_init(&it, st->t[t], now);
	while (lru_iter_next(&it, &key, &v)) {
		uint32_t svc = key_svc(key);
		if (svc >= (uint32_t)st->nsvc)
			continue;
		uint64_t to = svc_timeout(&st->svc[svc], t);
		if (to && now - v.last_seen > to && lru_del(st->t[t], key) == 0)
			n++;
	}
	return n;
}

long steer_expire(struct steer *st, uint64_t now)
{
	if (!st)
		return 0;
	long n = 0;
	for (int t = 0; t < T__MAX; t++) {
		n += (long)lru_expire(st->t[t], now, 0);
		if (st->mixed_timeouts[t])
			n += expire_mixed(st, t, now);
	}
	return n;
}

void steer_count(struct steer *st, int svc, int ctr, uint64_t bytes)
{
	struct steer_svc *s = svc_get(st, svc);
	if (!s || ctr < 0 || ctr >= SVC_CTR__MAX)
		return;
	s->pkts[ctr]++;
	s->bytes[ctr] += bytes;
}

void steer_counters(const struct steer *st, int svc, uint64_t pkts[SVC_CTR__MAX],
		    uint64_t bytes[SVC_CTR__MAX])
{
	const struct steer_svc *s = svc_get(st, svc);
	for (int i = 0; i < SVC_CTR__MAX; i++) {
		pkts[i] = s ? s->pkts[i] : 0;
		bytes[i] = s ? s->bytes[i] : 0;
	}
}

static void count_table(const struct steer *st, int t, int svc, uint64_t now, uint64_t *out)
{
	const struct steer_svc *s = &st->svc[svc];
	uint64_t to = svc_timeout(s, t);
	struct lru_iter it;
	const void *key;
	struct lru_value v;
	lru_iter_init(&it, st->t[t], now);
	while (lru_iter_next(&it, &key, &v)) {
		uint32_t idx = v.server - s->base;
		if (key_svc(key) != (uint32_t)svc || idx >= (uint32_t)s->n)
			continue;
		if (!to || now - v.last_seen <= to)
			out[idx]++;
	}
}

void steer_server_counts(const struct steer *st, int svc, uint64_t now, uint64_t *clients,
			 uint64_t *flows)
{
	const struct steer_svc *s = svc_get(st, svc);
	if (!s)
		return;
	memset(clients, 0, (size_t)s->n * sizeof(*clients));
	memset(flows, 0, (size_t)s->n * sizeof(*flows));
	count_table(st, T_PERSIST, svc, now, clients);
	count_table(st, T_SA, svc, now, clients);
	count_table(st, T_HALFOPEN, svc, now, clients);
	count_table(st, T_FLOW, svc, now, flows);
}

void steer_conn_inc(struct steer *st, int svc, int srv)
{
	struct steer_svc *s = svc_get(st, svc);
	if (s && srv >= 0)
		sched_conn_inc(s->sched, (size_t)srv);
}

void steer_conn_dec(struct steer *st, int svc, int srv)
{
	struct steer_svc *s = svc_get(st, svc);
	if (s && srv >= 0)
		sched_conn_dec(s->sched, (size_t)srv);
}

int steer_nservers(const struct steer *st, int svc)
{
	const struct steer_svc *s = svc_get(st, svc);
	return s ? s->n : -EINVAL;
}

const char *steer_rule_name(enum ikelb_rule r)
{
	static const char *const names[] = { "drop", "label", "flow", "sa", "persist", "new",
					     "fallback" };
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}
