/* Steering state: the four tables shared by all services, what the
 * decision looks up and learns, and their expiry and counts (rules in
 * steer.h). */
#include <errno.h>
#include <string.h>

#include "core/runtime.h"
#include "core/steer_int.h"

static uint64_t svc_timeout(const struct steer_svc *s, int table)
{
	return table == T_FLOW ? s->flow_to : s->persist_to;
}

static struct lru_table *table_new(uint32_t cap, uint32_t key_len, const uint64_t hk[2])
{
	struct lru_opts o = { .capacity = cap ? cap : 1, .key_len = key_len,
				  .timeout = 0, .hash_key = { hk[0], hk[1] } };
	return lru_new(&o);
}

/* An entry is live while its idle time is at most its service's timeout
 * (the BPF program's `now - last_seen > timeout` means stale). An lru_table
 * hides entries whose idle time has reached the table timeout, so the table
 * timeout is the longest service timeout + 1 (0 if any service has none):
 * the table never drops an entry some service still considers live; shorter
 * service timeouts are applied by lookups and by a full pass in
 * steer_expire. */
void steer_set_table_timeouts(struct steer *st)
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

int steer_tables_new(struct steer *st, const struct cfg *cfg, const struct steer_opts *o)
{
	uint32_t clients = o->max_clients ? o->max_clients : cfg->max_clients;
	uint32_t half = o->max_halfopen ? o->max_halfopen : cfg->max_halfopen;
	uint32_t flows = o->max_flows ? o->max_flows : cfg->max_flows;
	st->t[T_PERSIST] = table_new(clients, sizeof(struct persist_key), o->hash_key);
	st->t[T_SA] = table_new(clients, sizeof(struct sa_key), o->hash_key);
	st->t[T_HALFOPEN] = table_new(half, sizeof(struct sa_key), o->hash_key);
	st->t[T_FLOW] = table_new(flows, sizeof(struct flow_key), o->hash_key);
	for (int t = 0; t < T__MAX; t++)
		if (!st->t[t])
			return -ENOMEM;
	return 0;
}

void steer_tables_free(struct steer *st)
{
	for (int t = 0; t < T__MAX; t++)
		lru_free(st->t[t]);
}

long steer_purge_server(struct steer *st, const struct steer_svc *s, int srv)
{
	long n = 0;
	for (int t = 0; t < T__MAX; t++)
		n += (long)lru_del_server(st->t[t], s->base + (uint32_t)srv);
	return n;
}

void steer_key_persist(struct persist_key *k, int svc, const struct steer_svc *s,
		       const struct ikelb_addr *client)
{
	memset(k, 0, sizeof(*k));
	k->svc_id = (uint32_t)svc;
	k->client = *client;
	ikelb_addr_mask(&k->client, ikelb_addr_is_v4(client) ? s->netmask : s->netmask6);
}

void steer_key_sa(struct sa_key *k, int svc, uint64_t spi_i)
{
	memset(k, 0, sizeof(*k));
	k->svc_id = (uint32_t)svc;
	k->spi_i = spi_i;
}

void steer_key_flow(struct flow_key *k, int svc, const struct ikelb_addr *client,
		    uint16_t cport, uint16_t vport)
{
	memset(k, 0, sizeof(*k));
	k->svc_id = (uint32_t)svc;
	k->cport = cport;
	k->vport = vport;
	k->client = *client;
}

/* Server of a live entry (idle at most the service timeout, server not
 * DOWN), touching it; -1 otherwise. Entries of dead servers are deleted on
 * sight; idle ones are left for steer_expire or a new decision (as in the
 * BPF program's state_use). */
int steer_lookup(struct steer *st, int t, const struct steer_svc *s, const void *key,
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

/* ike mode: the SA entry says (srv, now); a created or moved entry ends
 * the half-open one (the BPF program: state_put(&sa_map) > 0). */
static bool learn_sa(struct steer *st, const struct steer_svc *s, const struct sa_key *k, int srv,
		     uint64_t now)
{
	struct lru_value v;
	int had = lru_peek(st->t[T_SA], k, now, &v) == 0 && v.server == s->base + (uint32_t)srv;
	put(st, T_SA, s, k, srv, now);
	if (!had)
		lru_del(st->t[T_HALFOPEN], k);
	return !had;
}

/* put, or with keep (an already established SA's own message) only create
 * or refresh: an entry another server owns stays (the BPF state_keep). */
static void put_or_keep(struct steer *st, int t, const struct steer_svc *s, const void *key,
			int srv, uint64_t now, bool keep)
{
	struct lru_value v;
	if (keep && lru_peek(st->t[t], key, now, &v) == 0 && v.server != s->base + (uint32_t)srv)
		return;
	put(st, t, s, key, srv, now);
}

int steer_is_ike(const struct ike_info *in)
{
	return in->cls == IKE_C_IKEV2 || in->cls == IKE_C_IKEV1;
}

/* The half-open entry's record of the server's SPIr (the BPF program
 * keeps all 64 bits in struct halfopen_value; an lru_table entry has a
 * 32-bit user field): a fold of it, never 0, which means "no answer yet". */
static uint32_t spi_tag(uint64_t spi)
{
	uint32_t t = (uint32_t)(spi ^ (spi >> 32));
	return t ? t : 1;
}

/* An IKE_SA_INIT request (re)opens its half-open entry, keeping the
 * server's recorded SPIr while the entry stays on the same server.
 * Returns 1 when the entry is new or moved. */
static int halfopen_open(struct steer *st, struct steer_svc *s, const struct sa_key *k, int srv,
			 uint64_t now)
{
	struct lru_value v;
	uint32_t gid = s->base + (uint32_t)srv;
	bool same = lru_peek(st->t[T_HALFOPEN], k, now, &v) == 0 && v.server == gid;
	int rc = lru_put(st->t[T_HALFOPEN], k, gid, same ? v.user : 0, now);
	if (rc == 2)
		s->pkts[SVC_CTR_HALFOPEN_FULL]++;
	return rc >= 0 && !same;
}

/* As the BPF program's vouched(): may a message with SPIr write state? */
static bool vouched(struct steer *st, const struct steer_svc *s, const struct sa_key *k,
		    const struct ike_info *in, enum ikelb_rule rule, uint64_t now)
{
	struct lru_value v;
	if (rule == RULE_LABEL || lru_peek(st->t[T_SA], k, now, &v) == 0)
		return true;
	if (s->mode != CFG_PERSIST_IKE && rule != RULE_SA)
		return true;
	return lru_peek(st->t[T_HALFOPEN], k, now, &v) == 0 && v.user == spi_tag(in->spi_r);
}

/* After the choice, as the BPF program's learn(): an IKE_SA_INIT (SPIr 0)
 * only writes the bounded half-open table, so a flood of them cannot evict
 * established clients' state; a vouched message with SPIr (IKE_AUTH with
 * the SPIr the server answered) promotes the SA: flow entry (ESP and
 * keepalives follow), SA entry (both modes: ike steers by it, source-ip
 * counts and looks it up) and persistence (source-ip); later IKE keeps
 * them fresh. The half-open entry is dropped when the SA entry was created
 * or moved. Fallback decisions and unvouched messages write nothing. */
void steer_learn(struct steer *st, int svc, struct steer_svc *s, const struct ikelb_addr *client,
		 const struct flow_key *fk, const struct ike_info *in, int srv,
		 enum ikelb_rule rule, uint64_t now)
{
	if (rule == RULE_FALLBACK || !steer_is_ike(in))
		return;
	struct sa_key k;
	steer_key_sa(&k, svc, in->spi_i);
	if (in->spi_r == 0) {
		/* As the BPF learn(): a placed client counts at once (lc,
		 * max_clients); steer_conn_reconcile corrects from the tables. */
		if (ike_is_new_sa(in) && halfopen_open(st, s, &k, srv, now) && rule == RULE_NEW)
			rt_conn_inc(st->rt, svc, srv);
		return;
	}
	if (!vouched(st, s, &k, in, rule, now))
		return;
	/* Both modes keep the established SA (as the BPF program does); one
	 * that was already established only keeps its entries. */
	bool keep = !learn_sa(st, s, &k, srv, now) && rule == RULE_SA;
	if (rule != RULE_FLOW && ike_teaches_flow(in))
		put_or_keep(st, T_FLOW, s, fk, srv, now, keep);
	if (s->mode == CFG_PERSIST_IKE)
		return;
	if (rule != RULE_PERSIST) {
		struct persist_key pk;
		steer_key_persist(&pk, svc, s, client);
		put_or_keep(st, T_PERSIST, s, &pk, srv, now, keep);
	}
}

/* The server answered an IKE_SA_INIT with its SPIr (reply_learn's
 * halfopen_answered in the BPF program). */
static void halfopen_answered(struct steer *st, const struct steer_svc *s, int svc,
			      const struct ike_info *in, int srv, uint64_t now)
{
	struct sa_key k;
	struct lru_value v;
	if (!in->spi_r || (in->cls == IKE_C_IKEV2 && ike_is_request(in)))
		return;
	steer_key_sa(&k, svc, in->spi_i);
	if (lru_peek(st->t[T_HALFOPEN], &k, now, &v) == 0 && v.server == s->base + (uint32_t)srv)
		lru_put(st->t[T_HALFOPEN], &k, v.server, spi_tag(in->spi_r), v.last_seen);
}

void steer_learn_reply(struct steer *st, int svc, const struct ikelb_addr *client,
		       uint16_t cport, uint16_t vport, int natt, int srv, const uint8_t *payload,
		       size_t len, uint64_t now)
{
	struct steer_svc *s = steer_svc_get(st, svc);
	struct ike_info in;

	if (!s || !client || !payload || srv < 0 || srv >= s->n || len > UINT32_MAX)
		return;
	if (ike_classify(payload, payload + len, (uint32_t)len, natt, &in) == IKE_C_DROP)
		return;
	if (ike_is_phase1(&in)) {
		halfopen_answered(st, s, svc, &in, srv, now);
		return;
	}
	if (steer_is_ike(&in) && !ike_is_protected(&in))
		return;
	struct flow_key fk;
	steer_key_flow(&fk, svc, client, cport, vport);
	/* creates or refreshes, never moves (the BPF reply_learn) */
	put_or_keep(st, T_FLOW, s, &fk, srv, now, true);
	if (steer_is_ike(&in) && s->mode == CFG_PERSIST_IKE) {
		struct sa_key k;
		steer_key_sa(&k, svc, in.spi_i);
		learn_sa(st, s, &k, srv, now);
	}
}

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
	const struct steer_svc *s = steer_svc_get(st, svc);
	if (!s)
		return;
	memset(clients, 0, (size_t)s->n * sizeof(*clients));
	memset(flows, 0, (size_t)s->n * sizeof(*flows));
	count_table(st, T_PERSIST, svc, now, clients);
	if (s->mode == CFG_PERSIST_IKE) /* source-ip counts addresses, not its SAs */
		count_table(st, T_SA, svc, now, clients);
	count_table(st, T_HALFOPEN, svc, now, clients);
	count_table(st, T_FLOW, svc, now, flows);
}


_Static_assert((int)T_PERSIST == (int)TBL_PERSIST && (int)T_SA == (int)TBL_SA &&
	       (int)T_HALFOPEN == (int)TBL_HALFOPEN && (int)T_FLOW == (int)TBL_FLOW &&
	       (int)T__MAX == (int)TBL__MAX, "tables in the BPF maps' order");

void steer_table_stats(const struct steer *st, struct steer_table_stats out[TBL__MAX])
{
	for (int t = 0; t < T__MAX; t++) {
		struct lru_stats ls;
		lru_get_stats(st->t[t], &ls);
		out[t] = (struct steer_table_stats){ ls.size, ls.capacity, ls.inserts, ls.evictions };
	}
}
