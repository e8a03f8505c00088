/* User-space steering decision; the rules are documented in steer.h, the
 * state tables it consults are in steer_state.c. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/maglev.h"
#include "core/runtime.h"
#include "core/scheduler.h"
#include "core/steer_int.h"
#include "ikelb/hash.h"

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

static void srv_init(struct steer_srv *d, const struct cfg_server *c, const struct rt_server *r,
		     uint64_t spi_mask)
{
	d->state = r->effective;
	d->has_label = c->has_spi_label && spi_mask;
	d->label = c->spi_label;
	d->has_esp = c->has_esp_range;
	d->esp_min = c->esp_spi_min;
	d->esp_max = c->esp_spi_max;
}

/* Service svc as the runtime sees it now: server states and Maglev table. */
static int svc_init(struct steer_svc *s, const struct runtime *rt, int svc, uint32_t base)
{
	const struct cfg_service *cs = &rt->cfg->services[svc];
	s->mode = cs->persistence.mode;
	s->kind = cs->scheduler;
	s->netmask = cs->persistence.netmask;
	s->netmask6 = cs->persistence.netmask6;
	s->spi_mask = cs->spi_mask;
	s->seed = rt->cfg->maglev_seed;
	s->persist_to = cs->persistence.timeout_s;
	s->flow_to = cs->persistence.flow_timeout_s;
	s->n = cs->nservers;
	s->base = base;
	s->srv = calloc(s->n ? (size_t)s->n : 1, sizeof(*s->srv));
	if (!s->srv)
		return -ENOMEM;
	for (int i = 0; i < s->n; i++) {
		srv_init(&s->srv[i], &cs->servers[i], &rt->svc[svc].servers[i], cs->spi_mask);
		s->esp_labels |= s->srv[i].has_esp;
	}
	uint32_t m;
	const uint32_t *t = rt_maglev_table(rt, svc, &m);
	return svc_set_table(s, t, m);
}

struct steer *steer_new(struct runtime *rt, const struct steer_opts *o)
{
	const struct cfg *cfg = rt ? rt->cfg : NULL;
	if (!cfg || cfg->nservices < 0 || cfg->nservices > CFG_MAX_SERVICES)
		return NULL;
	struct steer *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	struct steer_opts d = { 0 };
	if (o)
		d = *o;
	st->rt = rt;
	if (steer_tables_new(st, cfg, &d) < 0)
		goto fail;
	uint32_t base = 0;
	for (int i = 0; i < cfg->nservices; i++) {
		st->nsvc = i + 1;
		if (svc_init(&st->svc[i], rt, i, base) < 0)
			goto fail;
		base += (uint32_t)cfg->services[i].nservers;
	}
	steer_set_table_timeouts(st);
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
	}
	steer_tables_free(st);
	free(st);
}

struct steer_svc *steer_svc_get(const struct steer *st, int svc)
{
	if (!st || svc < 0 || svc >= st->nsvc)
		return NULL;
	return (struct steer_svc *)&st->svc[svc];
}

int steer_set_table(struct steer *st, int svc, const uint32_t *table, uint32_t m)
{
	struct steer_svc *s = steer_svc_get(st, svc);
	return s ? svc_set_table(s, table, m) : -EINVAL;
}

long steer_set_state(struct steer *st, int svc, int srv, int state)
{
	struct steer_svc *s = steer_svc_get(st, svc);
	if (!s || srv < 0 || srv >= s->n || state < REAL_ACTIVE || state > REAL_DOWN)
		return -EINVAL;
	s->srv[srv].state = state;
	return state == REAL_DOWN ? steer_purge_server(st, s, srv) : 0;
}

long steer_set_evacuating(struct steer *st, int svc, int srv, bool on)
{
	struct steer_svc *s = steer_svc_get(st, svc);
	if (!s || srv < 0 || srv >= s->n)
		return -EINVAL;
	s->srv[srv].evacuating = on;
	return on ? (long)lru_del_server(st->t[T_PERSIST], s->base + (uint32_t)srv) : 0;
}

int steer_server_state(const struct steer *st, int svc, int srv)
{
	const struct steer_svc *s = steer_svc_get(st, svc);
	if (!s || srv < 0 || srv >= s->n)
		return -EINVAL;
	return s->srv[srv].state;
}

/* ------------------------------------------------------------------ rules */

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

/* maglev/sh for a new client, as the BPF steer_new: the table's slot,
 * probing past full servers (max_clients); when one was full and no probe
 * found room, the least loaded server with room; else SCHED_ALL_FULL. */
static int table_pick_new(struct steer *st, int svc, const struct steer_svc *s, uint64_t hash)
{
	if (!s->table || s->m == 0)
		return -1;
	uint32_t slot = (uint32_t)(hash % s->m);
	bool full = false;
	for (int k = 0; k < 4; k++) {
		uint32_t i = s->table[slot];
		if (i != MAGLEV_EMPTY && i < (uint32_t)s->n && s->srv[i].state == REAL_ACTIVE) {
			if (!rt_full(st->rt, svc, (int)i))
				return (int)i;
			full = true;
		}
		slot = slot + 1 >= s->m ? 0 : slot + 1;
	}
	return full ? rt_pick_room(st->rt, svc) : -1;
}

/* New client. maglev and sh use the daemon's table with the same key as the
 * BPF program; the others need per-pick state: the runtime's scheduler.
 * SCHED_ALL_FULL when every active server is at max_clients. */
static int schedule(struct steer *st, int svc, const struct steer_svc *s,
		    const struct ikelb_addr *client, const struct ike_info *in)
{
	if (s->kind == CFG_SCHED_MAGLEV || s->kind == CFG_SCHED_SH) {
		struct ikelb_addr ha = hash_addr_of(s, client);
		uint64_t h = s->mode == CFG_PERSIST_IKE ? ikelb_hash_u64(in->spi_i, s->seed)
							: ikelb_hash_addr(&ha, 0, s->seed);
		return table_pick_new(st, svc, s, h);
	}
	int i = rt_pick(st->rt, svc, client);
	if (i == SCHED_ALL_FULL)
		return i;
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
	if (steer_is_ike(in)) {
		/* Before the flow (same-port re-establishment, REDIRECT).
		 * Both modes: source-ip keeps half-open SAs here too. */
		struct sa_key k;
		steer_key_sa(&k, svc, in->spi_i);
		*rule = RULE_SA;
		if ((srv = steer_lookup(st, T_SA, s, &k, now)) >= 0)
			return srv;
		if ((srv = steer_lookup(st, T_HALFOPEN, s, &k, now)) >= 0)
			return srv;
	}
	/* A new SA from a client of an evacuating server is placed afresh. */
	bool fresh = steer_is_ike(in) && ike_is_new_sa(in);
	*rule = RULE_FLOW;
	if ((srv = steer_lookup(st, T_FLOW, s, fk, now)) >= 0 &&
	    !(fresh && s->srv[srv].evacuating))
		return srv;
	if (s->mode == CFG_PERSIST_SOURCE_IP) {
		struct persist_key pk;
		steer_key_persist(&pk, svc, s, client);
		*rule = RULE_PERSIST;
		if ((srv = steer_lookup(st, T_PERSIST, s, &pk, now)) >= 0 &&
		    !(fresh && s->srv[srv].evacuating))
			return srv;
	}
	if (steer_is_ike(in) && ike_is_new_sa(in)) {
		*rule = RULE_NEW;
		return schedule(st, svc, s, client, in);
	}
	*rule = RULE_FALLBACK;
	/* ike mode placed the SA by its SPIi: hashing it again finds the
	 * server statelessly (restart, another node, NAT rebinding) for as long
	 * as the Maglev table is unchanged. ESP carries no SPIi. */
	if (s->mode == CFG_PERSIST_IKE && steer_is_ike(in))
		return table_pick(s, ikelb_hash_u64(in->spi_i, s->seed), 0);
	struct ikelb_addr ha = hash_addr_of(s, client);
	return table_pick(s, ikelb_hash_addr(&ha, 0, s->seed), 0);
}

static int steer_drop_ctr(struct steer_svc *s, struct steer_result *r, int reason, int ctr,
			  size_t len)
{
	r->server = -1;
	r->rule = RULE_NONE;
	r->drop = reason;
	s->pkts[ctr]++;
	s->bytes[ctr] += len;
	return -1;
}

static int steer_drop(struct steer_svc *s, struct steer_result *r, int reason, size_t len)
{
	return steer_drop_ctr(s, r, reason, SVC_CTR_DROP_BASE + reason, len);
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
	struct steer_svc *s = steer_svc_get(st, svc);
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
		return steer_drop(s, r, in->drop & IKE_DROP_MASK, len);
	count_class(s, in, len);

	struct flow_key fk;
	steer_key_flow(&fk, svc, client, cport, vport);
	enum ikelb_rule rule;
	int srv = decide(st, svc, s, client, &fk, in, now, &rule);
	if (srv < 0)
		return steer_drop_ctr(s, r, IKE_DROP_NO_SERVER,
				      srv == SCHED_ALL_FULL ? SVC_CTR_ALL_FULL
							    : SVC_CTR_DROP(IKE_DROP_NO_SERVER),
				      len);
	/* An established SA's message on its own flow repeats a known
	 * placement (IKELB_RULE_LOGGED; the BPF declog() asks the same). */
	struct lru_value fv;
	r->repeat = rule == RULE_SA && lru_peek(st->t[T_FLOW], &fk, now, &fv) == 0 &&
		    fv.server == s->base + (uint32_t)srv;
	steer_learn(st, svc, s, client, &fk, in, srv, rule, now);

	s->pkts[SVC_CTR_STEER(rule)]++;
	s->bytes[SVC_CTR_STEER(rule)] += len;
	r->server = srv;
	r->rule = rule;
	r->drop = IKE_DROP_NONE;
	return srv;
}

/* ------------------------------------------------------------------ upkeep */

void steer_count(struct steer *st, int svc, int ctr, uint64_t bytes)
{
	struct steer_svc *s = steer_svc_get(st, svc);
	if (!s || ctr < 0 || ctr >= SVC_CTR__MAX)
		return;
	s->pkts[ctr]++;
	s->bytes[ctr] += bytes;
}

void steer_counters(const struct steer *st, int svc, uint64_t pkts[SVC_CTR__MAX],
		    uint64_t bytes[SVC_CTR__MAX])
{
	const struct steer_svc *s = steer_svc_get(st, svc);
	for (int i = 0; i < SVC_CTR__MAX; i++) {
		pkts[i] = s ? s->pkts[i] : 0;
		bytes[i] = s ? s->bytes[i] : 0;
	}
}

void steer_conn_inc(struct steer *st, int svc, int srv)
{
	struct steer_svc *s = steer_svc_get(st, svc);
	if (s && srv >= 0)
		rt_conn_inc(st->rt, svc, srv);
}

void steer_conn_dec(struct steer *st, int svc, int srv)
{
	struct steer_svc *s = steer_svc_get(st, svc);
	if (s && srv >= 0)
		rt_conn_dec(st->rt, svc, srv);
}

void steer_conn_reconcile(struct steer *st, uint64_t now)
{
	uint64_t *cl = calloc(CFG_MAX_SERVERS, sizeof(*cl)), *fl = calloc(CFG_MAX_SERVERS, sizeof(*fl));
	for (int i = 0; cl && fl && i < CFG_MAX_SERVICES; i++) {
		const struct steer_svc *s = steer_svc_get(st, i);
		if (!s)
			continue;
		steer_server_counts(st, i, now, cl, fl);
		for (int j = 0; j < s->n; j++)
			rt_conn_set(st->rt, i, j, cl[j]);
	}
	free(cl);
	free(fl);
}

const char *steer_rule_name(enum ikelb_rule r)
{
	static const char *const names[] = { "drop", "label", "flow", "sa", "persist", "new",
					     "fallback" };
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

/* For lookups (steer_query.c): where rule 6 sends hash h. */
int steer_fallback_pick(const struct steer_svc *s, uint64_t h)
{
	return table_pick(s, h, 0);
}

struct ikelb_addr steer_hash_addr(const struct steer_svc *s, const struct ikelb_addr *client)
{
	return hash_addr_of(s, client);
}
