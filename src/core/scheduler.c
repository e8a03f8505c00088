/* Per-service schedulers; behaviour of each kind is documented in scheduler.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ikelb/hash.h"
#include "core/maglev.h"
#include "core/scheduler.h"
#include "ikelb/maps.h"

_Static_assert(SCHED_SRV_ACTIVE == REAL_ACTIVE && SCHED_SRV_DRAINING == REAL_DRAINING &&
		       SCHED_SRV_DOWN == REAL_DOWN,
	       "sched states must match the BPF map states");
#ifdef IKELB_REAL_NONE
_Static_assert(MAGLEV_EMPTY == IKELB_REAL_NONE, "empty Maglev slot must match the BPF map");
#endif

struct sched_slot {
	struct sched_server srv;
	uint64_t conns;
	int64_t wrr_cur;     /* smooth WRR current weight */
};

struct sched {
	enum cfg_sched kind;
	uint64_t seed;
	uint32_t m;
	uint32_t *table;
	uint64_t generation;
	struct sched_slot *v;
	size_t n;
	size_t rr_next;
	int has_eligible;
};

static int eligible(const struct sched_server *s)
{
	return s->state == SCHED_SRV_ACTIVE && s->weight > 0;
}

static uint32_t ramp_of(const struct sched_server *s)
{
	return s->ramp && s->ramp < SCHED_RAMP_FULL ? s->ramp : SCHED_RAMP_FULL;
}

static uint32_t eff_weight(const struct sched_server *s)
{
	if (!eligible(s))
		return 0;
	uint64_t w = (uint64_t)s->weight * ramp_of(s) / SCHED_RAMP_FULL;
	return w ? (uint32_t)w : 1;
}

/* What lc (weighted = 0) or wlc compare clients by. */
static uint64_t lc_weight(const struct sched_server *s, int weighted)
{
	if (!eligible(s))
		return 0;
	return weighted ? (uint64_t)s->weight * ramp_of(s) : ramp_of(s);
}

static int slot_full(const struct sched_slot *e)
{
	return e->srv.max_clients && e->conns >= e->srv.max_clients;
}

static int same_identity(const struct sched_server *a, const struct sched_server *b)
{
	return strncmp(a->name, b->name, CFG_NAME_MAX) == 0 && ikelb_addr_eq(&a->addr, &b->addr);
}

struct sched *sched_new(enum cfg_sched kind, uint32_t maglev_size, uint64_t seed)
{
	if ((unsigned)kind > CFG_SCHED_FO)
		return NULL;
	if (maglev_size == 0)
		maglev_size = MAGLEV_DEFAULT_SIZE;
	if (maglev_size > MAGLEV_MAX_SIZE || !maglev_is_prime(maglev_size) || maglev_size < 3)
		return NULL;
	struct sched *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->table = malloc((size_t)maglev_size * sizeof(*s->table));
	if (!s->table) {
		free(s);
		return NULL;
	}
	for (uint32_t i = 0; i < maglev_size; i++)
		s->table[i] = MAGLEV_EMPTY;
	s->kind = kind;
	s->seed = seed;
	s->m = maglev_size;
	return s;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	free(s->table);
	free(s->v);
	free(s);
}

/* Build the Maglev table of slots v[0..n-1] into s->table. */
static int rebuild(struct sched *s, const struct sched_slot *v, size_t n)
{
	uint8_t (*keys)[MAGLEV_KEY_MAX] = calloc(n ? n : 1, sizeof(*keys));
	struct maglev_backend *b = calloc(n ? n : 1, sizeof(*b));
	int rc = -ENOMEM;
	if (!keys || !b)
		goto out;
	int any = 0;
	for (size_t i = 0; i < n; i++) {
		b[i].key = keys[i];
		b[i].key_len = maglev_server_key(v[i].srv.name, &v[i].srv.addr, keys[i],
						 MAGLEV_KEY_MAX);
		b[i].weight = eff_weight(&v[i].srv);
		any |= b[i].weight > 0;
	}
	rc = maglev_build(b, n, s->m, s->seed, s->table);
	if (rc == 0) {
		s->generation++;
		s->has_eligible = any;
	}
out:
	free(keys);
	free(b);
	return rc;
}

static int table_inputs_differ(const struct sched_slot *old, size_t on,
			       const struct sched_server *v, size_t n)
{
	if (on != n)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (!same_identity(&old[i].srv, &v[i]) || eff_weight(&old[i].srv) != eff_weight(&v[i]))
			return 1;
	return 0;
}

static uint64_t carried_conns(const struct sched *s, size_t i, const struct sched_server *srv)
{
	if (i < s->n && same_identity(&s->v[i].srv, srv))
		return s->v[i].conns;
	for (size_t j = 0; j < s->n; j++)
		if (same_identity(&s->v[j].srv, srv))
			return s->v[j].conns;
	return 0;
}

int sched_update(struct sched *s, const struct sched_server *v, size_t n)
{
	if (!s || (n && !v) || n > CFG_MAX_SERVERS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned)v[i].state > SCHED_SRV_DOWN || v[i].weight > CFG_WEIGHT_MAX ||
		    strnlen(v[i].name, CFG_NAME_MAX) == CFG_NAME_MAX)
			return -EINVAL;
	struct sched_slot *nv = calloc(n ? n : 1, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		nv[i].srv = v[i];
		nv[i].conns = carried_conns(s, i, &v[i]);
	}
	int changed = table_inputs_differ(s->v, s->n, v, n);
	if (changed) {
		int rc = rebuild(s, nv, n);
		if (rc < 0) {
			free(nv);
			return rc;
		}
	}
	free(s->v);
	s->v = nv;
	s->n = n;
	/* Weights may have moved: restart smooth WRR and RR from a clean state
	 * so proportions hold exactly from here on. */
	s->rr_next = 0;
	return changed;
}

static int update_one(struct sched *s, size_t idx, enum sched_state st, uint32_t w)
{
	if (!s || idx >= s->n)
		return -EINVAL;
	struct sched_server *v = malloc(s->n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		v[i] = s->v[i].srv;
	v[idx].state = st;
	v[idx].weight = w;
	int rc = sched_update(s, v, s->n);
	free(v);
	return rc;
}

int sched_set_state(struct sched *s, size_t idx, enum sched_state st)
{
	if (!s || idx >= s->n)
		return -EINVAL;
	return update_one(s, idx, st, s->v[idx].srv.weight);
}

int sched_set_weight(struct sched *s, size_t idx, uint32_t weight)
{
	if (!s || idx >= s->n)
		return -EINVAL;
	return update_one(s, idx, s->v[idx].srv.state, weight);
}

int sched_lookup_hash(const struct sched *s, uint64_t hash)
{
	if (!s || !s->has_eligible)
		return -1;
	uint32_t i = maglev_lookup(s->table, s->m, hash);
	return i == MAGLEV_EMPTY || i >= s->n ? -1 : (int)i;
}

static int pick_rr(struct sched *s)
{
	for (size_t k = 0; k < s->n; k++) {
		size_t i = (s->rr_next + k) % s->n;
		if (eligible(&s->v[i].srv) && !slot_full(&s->v[i])) {
			s->rr_next = (i + 1) % s->n;
			return (int)i;
		}
	}
	return -1;
}

/* nginx smooth weighted round robin: every pick adds each weight to its
 * current value, takes the largest and lowers it by the total. */
static int pick_wrr(struct sched *s)
{
	int best = -1;
	int64_t total = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct sched_slot *e = &s->v[i];
		if (!eligible(&e->srv)) {
			e->wrr_cur = 0;
			continue;
		}
		e->wrr_cur += eff_weight(&e->srv);
		total += eff_weight(&e->srv);
		if (best < 0 || e->wrr_cur > s->v[best].wrr_cur)
			best = (int)i;
	}
	if (best >= 0)
		s->v[best].wrr_cur -= total;
	return best;
}

/* Fewest clients per unit of lc_weight (c_i * w_b < c_b * w_i, no
 * division), ties to the lowest index; full servers skipped. The BPF
 * sched_lc compares the same way. */
static int pick_lc(const struct sched *s, int weighted)
{
	int best = -1;
	uint64_t bw = 1;
	for (size_t i = 0; i < s->n; i++) {
		const struct sched_slot *e = &s->v[i];
		uint64_t w = lc_weight(&e->srv, weighted);
		if (!w || slot_full(e))
			continue;
		if (best < 0 || (unsigned __int128)e->conns * bw <
					(unsigned __int128)s->v[best].conns * w) {
			best = (int)i;
			bw = w;
		}
	}
	return best;
}

int sched_pick_room(const struct sched *s)
{
	return s ? pick_lc(s, 1) : -1;
}

int sched_full(const struct sched *s, size_t idx)
{
	return s && idx < s->n && slot_full(&s->v[idx]);
}

uint32_t sched_eff_weight(const struct sched *s, size_t idx)
{
	return s && idx < s->n ? eff_weight(&s->v[idx].srv) : 0;
}

/* Some eligible server, all of them full. */
static int all_full(const struct sched *s)
{
	int any = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (!eligible(&s->v[i].srv))
			continue;
		if (!slot_full(&s->v[i]))
			return 0;
		any = 1;
	}
	return any;
}

static int pick_fo(const struct sched *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (eligible(&s->v[i].srv))
			return (int)i;
	return -1;
}

static int pick_kind(struct sched *s, const struct ikelb_addr *client, uint64_t key_hash)
{
	switch (s->kind) {
	case CFG_SCHED_MAGLEV:
		return sched_lookup_hash(s, key_hash);
	case CFG_SCHED_SH:
		if (!client)
			return -1;
		return sched_lookup_hash(s, ikelb_hash_addr(client, 0, s->seed));
	case CFG_SCHED_RR:
		return pick_rr(s);
	case CFG_SCHED_WRR:
		return pick_wrr(s);
	case CFG_SCHED_LC:
		return pick_lc(s, 0);
	case CFG_SCHED_WLC:
		return pick_lc(s, 1);
	case CFG_SCHED_FO:
		return pick_fo(s);
	}
	return -1;
}

int sched_pick(struct sched *s, const struct ikelb_addr *client, uint64_t key_hash)
{
	if (!s)
		return -1;
	int i = pick_kind(s, client, key_hash);
	if (i >= 0 && slot_full(&s->v[i]))
		i = pick_lc(s, 1);
	if (i < 0 && all_full(s))
		return SCHED_ALL_FULL;
	return i;
}

void sched_conn_inc(struct sched *s, size_t idx)
{
	if (s && idx < s->n)
		s->v[idx].conns++;
}

void sched_conn_dec(struct sched *s, size_t idx)
{
	if (s && idx < s->n && s->v[idx].conns > 0)
		s->v[idx].conns--;
}

void sched_conn_set(struct sched *s, size_t idx, uint64_t n)
{
	if (s && idx < s->n)
		s->v[idx].conns = n;
}

uint64_t sched_conns(const struct sched *s, size_t idx)
{
	return s && idx < s->n ? s->v[idx].conns : 0;
}

const uint32_t *sched_maglev_table(const struct sched *s, uint32_t *m)
{
	if (m)
		*m = s ? s->m : 0;
	return s ? s->table : NULL;
}

uint64_t sched_generation(const struct sched *s) { return s ? s->generation : 0; }
int sched_has_eligible(const struct sched *s) { return s && s->has_eligible; }
size_t sched_nservers(const struct sched *s) { return s ? s->n : 0; }
enum cfg_sched sched_kind(const struct sched *s) { return s->kind; }

/* The smooth weighted round robin of pick_wrr, written out: weights scaled
 * down (each at least 1) when their sum exceeds max_seq. */
static uint32_t wrr_cycle(const uint32_t *w, size_t n, uint8_t *seq, size_t max_seq)
{
	uint64_t sum = 0, k = 0;
	for (size_t i = 0; i < n; i++) {
		sum += w[i];
		k += w[i] > 0;
	}
	if (!sum || k > max_seq)
		return 0;
	uint32_t sw[256];
	int64_t cur[256] = { 0 };
	int64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		sw[i] = w[i];
		if (w[i] && sum > max_seq) {
			uint64_t v = (uint64_t)w[i] * (max_seq - k) / sum;
			sw[i] = v ? (uint32_t)v : 1;
		}
		total += sw[i];
	}
	for (int64_t t = 0; t < total; t++) {
		size_t best = n;
		for (size_t i = 0; i < n; i++) {
			if (!sw[i])
				continue;
			cur[i] += sw[i];
			if (best == n || cur[i] > cur[best])
				best = i;
		}
		cur[best] -= total;
		seq[t] = (uint8_t)best;
	}
	return (uint32_t)total;
}

uint32_t sched_kernel_view(const struct sched *s, uint32_t *weight, uint8_t *seq, size_t max_seq,
			   size_t limit)
{
	size_t n = s->n < limit ? s->n : limit;
	uint32_t len = 0, w[256];

	if (n > 256)
		n = 256;
	for (size_t i = 0; i < s->n; i++)
		weight[i] = (uint32_t)lc_weight(&s->v[i].srv, s->kind != CFG_SCHED_LC);
	if (s->kind == CFG_SCHED_RR) {
		for (size_t i = 0; i < n && len < max_seq; i++)
			if (eligible(&s->v[i].srv))
				seq[len++] = (uint8_t)i;
	} else if (s->kind == CFG_SCHED_WRR) {
		for (size_t i = 0; i < n; i++)
			w[i] = eff_weight(&s->v[i].srv);
		len = wrr_cycle(w, n, seq, max_seq);
	}
	return len;
}
