/* bpf engine: state sweeping, purging and counters. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "engine/bpf_engine_int.h"
#include "bpf/ikelb.skel.h"

int bpfe_read_reals(struct bpf_engine *e, struct real_value *reals)
{
	int fd = bpf_map__fd(e->skel->maps.reals_map);

	for (uint32_t id = 0; id < IKELB_MAX_REALS; id++)
		if (bpf_map_lookup_elem(fd, &id, &reals[id]) < 0)
			return -errno;
	return 0;
}

/* The state tables in enum ikelb_table order, then the fragments. */
enum scan_kind { SCAN_PERSIST = TBL_PERSIST, SCAN_SA = TBL_SA, SCAN_HALFOPEN = TBL_HALFOPEN,
		 SCAN_FLOW = TBL_FLOW, SCAN_FRAG };

struct scan {
	struct bpf_engine *e;
	const struct real_value *reals;
	enum scan_kind kind;
	uint32_t now;
	uint32_t purge_id;      /* IKELB_REAL_NONE: sweep mode */
	uint32_t kinds;         /* 1 << scan_kind of the maps to walk */
	struct bpf_real_usage *usage;
	struct bpf_sweep_stats st;
	bool readonly;          /* count only: reads must not change state */
	uint64_t kept;          /* entries of the map being scanned that stay */
	uint64_t deleted;       /* and that the daemon deleted */
};

enum verdict { KEEP, EXPIRE, PURGE };

static bool real_alive(const struct scan *sc, uint32_t id, uint32_t svc_id)
{
	if (id >= IKELB_MAX_REALS)
		return false;
	const struct real_value *r = &sc->reals[id];
	return (r->flags & REAL_F_IN_USE) && r->svc_id == svc_id && r->state != REAL_DOWN;
}

static enum verdict judge(const struct scan *sc, const void *key, const void *val)
{
	uint32_t real_id, last, svc_id, timeout;

	if (sc->kind == SCAN_FRAG) {
		const struct frag_value *fv = val;
		if (sc->purge_id != IKELB_REAL_NONE)
			return fv->real_id == sc->purge_id ? PURGE : KEEP;
		return sc->now - fv->last_seen_s > IKELB_FRAG_TIMEOUT_S ? EXPIRE : KEEP;
	}
	const struct state_value *v = val;
	memcpy(&svc_id, key, sizeof(svc_id)); /* every state key starts with svc_id */
	real_id = v->real_id;
	last = v->last_seen_s;
	if (sc->purge_id != IKELB_REAL_NONE)
		return real_id == sc->purge_id ? PURGE : KEEP;
	if (svc_id >= (uint32_t)sc->e->nsvc || !real_alive(sc, real_id, svc_id))
		return PURGE;
	const struct svc_value *sv = &sc->e->svc[svc_id].val;
	timeout = sc->kind == SCAN_FLOW ? sv->flow_timeout_s : sv->persist_timeout_s;
	return timeout && sc->now - last > timeout ? EXPIRE : KEEP;
}

static void count_usage(struct scan *sc, const void *val)
{
	const struct state_value *v = val;
	struct bpf_real_usage *u;

	if (!sc->usage || sc->kind == SCAN_FRAG || v->real_id >= IKELB_MAX_REALS)
		return;
	u = &sc->usage[v->real_id];
	switch (sc->kind) {
	case SCAN_PERSIST: u->persist++; break;
	case SCAN_SA: u->sa++; break;
	case SCAN_HALFOPEN: u->halfopen++; break;
	case SCAN_FLOW: u->flows++; break;
	default: break;
	}
}

/* Delete collected keys; expired ones are looked at again first so an entry
 * refreshed by the data path meanwhile survives. */
static void delete_keys(struct scan *sc, int fd, const uint8_t *keys, const uint8_t *why,
			size_t n, size_t ksz, size_t vsz)
{
	uint8_t val[64];

	for (size_t i = 0; i < n; i++) {
		const uint8_t *k = keys + i * ksz;
		if (why[i] == EXPIRE &&
		    (bpf_map_lookup_elem(fd, k, val) < 0 || judge(sc, k, val) == KEEP))
			continue;
		(void)vsz;
		if (bpf_map_delete_elem(fd, k) == 0) {
			sc->deleted++;
			if (why[i] == EXPIRE)
				sc->st.expired++;
			else
				sc->st.purged++;
		}
	}
}

/* One map's scan: judged entries to delete, collected first so the walk
 * never deletes under its own batch cursor. */
struct scan_walk {
	struct scan *sc;
	size_t ksz;
	uint8_t *del, *why;
	size_t ndel, cap;
};

static int scan_grow(struct scan_walk *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 256;
	uint8_t *nd = realloc(s->del, ncap * s->ksz);
	if (!nd)
		return -ENOMEM;
	s->del = nd;
	uint8_t *nw = realloc(s->why, ncap);
	if (!nw)
		return -ENOMEM;
	s->why = nw;
	s->cap = ncap;
	return 0;
}

static int scan_entry(void *ctx, const void *k, const void *v)
{
	struct scan_walk *s = ctx;
	struct scan *sc = s->sc;
	enum verdict vd = judge(sc, k, v);

	sc->st.scanned++;
	if (vd == KEEP) {
		sc->kept++;
		count_usage(sc, v);
		return 0;
	}
	if (sc->readonly)
		return 0;
	if (s->ndel == s->cap && scan_grow(s) < 0)
		return -ENOMEM;
	memcpy(s->del + s->ndel * s->ksz, k, s->ksz);
	s->why[s->ndel++] = (uint8_t)vd;
	return 0;
}

static int scan_map(struct scan *sc, int fd, size_t ksz, size_t vsz)
{
	struct scan_walk s = { .sc = sc, .ksz = ksz };
	int err = bpfe_batch_walk(fd, ksz, vsz, scan_entry, &s);

	if (!err)
		delete_keys(sc, fd, s.del, s.why, s.ndel, ksz, vsz);
	free(s.del);
	free(s.why);
	return err;
}

static uint64_t tbl_ctr_sum(struct bpf_engine *e, uint32_t t, uint64_t *deletes)
{
	struct tbl_ctr *v = calloc((size_t)e->ncpu, sizeof(*v));
	uint64_t ins = 0;

	*deletes = 0;
	if (v && bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.tbl_ctr_map), &t, v) == 0)
		for (int c = 0; c < e->ncpu; c++) {
			ins += v[c].inserts;
			*deletes += v[c].deletes;
		}
	free(v);
	return ins;
}

/* After walking table t: `kept` entries stay, the daemon deleted `deleted`.
 * Every key ever written is still there, was deleted (by the data path or
 * the daemon) or was evicted, so evictions = inserts - deletes - entries,
 * plus the entries a reused pinned map already had at load (base). The
 * data path keeps writing during the walk (and a previous daemon's filter
 * until ours replaces it), so this is exact only when the table is quiet;
 * the count never goes down. A complete walk also resets the BPF side's
 * fill estimate. */
static void tbl_walked(struct bpf_engine *e, int t, uint64_t kept, uint64_t deleted, bool full)
{
	struct bpfe_tbl *tb = &e->tbl[t];
	uint64_t bpf_del;

	tb->daemon_deletes += deleted;
	if (!full)
		return;
	tb->inserts = tbl_ctr_sum(e, (uint32_t)t, &bpf_del);
	tb->entries = kept;
	int64_t gone = (int64_t)(tb->inserts - bpf_del - tb->daemon_deletes - kept);
	if (gone - tb->base > (int64_t)tb->evictions)
		tb->evictions = (uint64_t)(gone - tb->base);
	struct tbl_fill f = { .fill = (int64_t)kept, .capacity = (int64_t)tb->capacity };
	uint32_t key = (uint32_t)t;
	bpf_map_update_elem(bpf_map__fd(e->skel->maps.tbl_fill_map), &key, &f, BPF_ANY);
}

/* Keys in a map, one syscall each: only at load, and only a reused
 * pinned map has any. */
static uint64_t map_count(int fd)
{
	uint8_t k[64], n[64];
	uint64_t c = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, n) == 0) {
		memcpy(k, n, sizeof(k));
		prev = k;
		c++;
	}
	return c;
}

int bpfe_tbl_init(struct bpf_engine *e)
{
	struct bpf_map *m[TBL__MAX] = { e->skel->maps.persist_map, e->skel->maps.sa_map,
					e->skel->maps.halfopen_map, e->skel->maps.flow_map };

	for (uint32_t t = 0; t < TBL__MAX; t++) {
		e->tbl[t].capacity = bpf_map__max_entries(m[t]);
		e->tbl[t].entries = map_count(bpf_map__fd(m[t]));
		e->tbl[t].base = -(int64_t)e->tbl[t].entries;
		struct tbl_fill f = { .fill = (int64_t)e->tbl[t].entries,
				      .capacity = (int64_t)e->tbl[t].capacity };
		if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.tbl_fill_map), &t, &f, BPF_ANY) < 0)
			return -errno;
	}
	return 0;
}

void bpf_engine_table_stats(const struct bpf_engine *e, struct eng_table_stats out[TBL__MAX])
{
	for (int t = 0; t < TBL__MAX; t++) {
		out[t].entries = e->tbl[t].entries;
		out[t].capacity = e->tbl[t].capacity;
		out[t].inserts = e->tbl[t].inserts;
		out[t].evictions = e->tbl[t].evictions;
	}
}

#define SCAN_ALL_KINDS 0xffffffffu

static int scan_kinds(struct bpf_engine *e, uint32_t now, uint32_t purge_id, uint32_t kinds,
		      struct bpf_real_usage *usage, struct bpf_sweep_stats *st, bool readonly)
{
	struct real_value *reals = calloc(IKELB_MAX_REALS, sizeof(*reals));
	struct scan sc = { .e = e, .reals = reals, .now = now, .purge_id = purge_id,
			   .kinds = kinds, .usage = usage, .readonly = readonly };
	struct {
		struct bpf_map *m;
		enum scan_kind kind;
		size_t ksz, vsz;
	} maps[] = {
		{ e->skel->maps.persist_map, SCAN_PERSIST, sizeof(struct persist_key),
		  sizeof(struct state_value) },
		{ e->skel->maps.sa_map, SCAN_SA, sizeof(struct sa_key), sizeof(struct state_value) },
		{ e->skel->maps.halfopen_map, SCAN_HALFOPEN, sizeof(struct sa_key),
		  sizeof(struct halfopen_value) },
		{ e->skel->maps.flow_map, SCAN_FLOW, sizeof(struct flow_key),
		  sizeof(struct state_value) },
		{ e->skel->maps.frag_map, SCAN_FRAG, sizeof(struct frag_key),
		  sizeof(struct frag_value) },
	};
	int err = reals ? bpfe_read_reals(e, reals) : -ENOMEM;

	if (usage)
		memset(usage, 0, IKELB_MAX_REALS * sizeof(*usage));
	for (size_t i = 0; !err && i < sizeof(maps) / sizeof(maps[0]); i++) {
		if (!(kinds & (1u << maps[i].kind)))
			continue;
		sc.kind = maps[i].kind;
		sc.kept = sc.deleted = 0;
		err = scan_map(&sc, bpf_map__fd(maps[i].m), maps[i].ksz, maps[i].vsz);
		if (!err && sc.kind < SCAN_FRAG) /* SCAN_* == TBL_* up to the fragments */
			tbl_walked(e, (int)sc.kind, sc.kept, sc.deleted, purge_id == IKELB_REAL_NONE);
	}
	free(reals);
	if (st)
		*st = sc.st;
	if (err)
		log_err(e->log, "bpf: state scan: %s", strerror(-err));
	return err;
}

static int scan_all(struct bpf_engine *e, uint32_t now, uint32_t purge_id,
		    struct bpf_real_usage *usage, struct bpf_sweep_stats *st, bool readonly)
{
	return scan_kinds(e, now, purge_id, SCAN_ALL_KINDS, usage, st, readonly);
}

int bpf_engine_sweep(struct bpf_engine *e, uint32_t now_s, struct bpf_real_usage *usage,
		     struct bpf_sweep_stats *st)
{
	return scan_all(e, now_s, IKELB_REAL_NONE, usage, st, false);
}

int bpf_engine_count(struct bpf_engine *e, uint32_t now_s, struct bpf_real_usage *usage)
{
	return scan_all(e, now_s, IKELB_REAL_NONE, usage, NULL, true);
}

int bpf_engine_purge_real(struct bpf_engine *e, uint32_t real_id)
{
	if (real_id >= IKELB_MAX_REALS)
		return -EINVAL;
	return scan_all(e, 0, real_id, NULL, NULL, false);
}

long bpf_engine_forget_persist(struct bpf_engine *e, int svc, int srv)
{
	int id = bpf_engine_real_id(e, svc, srv);
	struct bpf_sweep_stats st;

	if (id < 0)
		return -EINVAL;
	int rc = scan_kinds(e, 0, (uint32_t)id, 1u << SCAN_PERSIST, NULL, &st, false);
	return rc < 0 ? rc : (long)st.purged;
}

long bpf_engine_set_evacuating(struct bpf_engine *e, int svc, int srv, bool on)
{
	int id = bpf_engine_real_id(e, svc, srv);
	int fd = bpf_map__fd(e->skel->maps.reals_map);
	struct real_value rv;
	uint32_t key = (uint32_t)id;

	if (id < 0)
		return -EINVAL;
	if (bpf_map_lookup_elem(fd, &key, &rv) < 0)
		return -errno;
	rv.flags = (uint8_t)(on ? rv.flags | REAL_F_EVACUATING : rv.flags & ~REAL_F_EVACUATING);
	if (bpf_map_update_elem(fd, &key, &rv, BPF_ANY) < 0)
		return -errno;
	return on ? bpf_engine_forget_persist(e, svc, srv) : 0;
}

/* Sum over CPUs of a per-CPU value of n counters (one struct ctr, or a
 * service's whole block: maps.h, svc_ctrs) into out[0..n-1]. */
static int percpu_sum(struct bpf_engine *e, int fd, uint32_t key, struct ctr *out, int n)
{
	struct ctr *v = calloc((size_t)e->ncpu * (size_t)n, sizeof(*v));

	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &key, v) < 0) {
		int err = -errno;
		free(v);
		return err;
	}
	for (int i = 0; i < n; i++) {
		out[i].packets = out[i].bytes = 0;
		for (int c = 0; c < e->ncpu; c++) {
			out[i].packets += v[c * n + i].packets;
			out[i].bytes += v[c * n + i].bytes;
		}
	}
	free(v);
	return 0;
}

int bpf_engine_svc_counters(struct bpf_engine *e, int svc, struct ctr *out)
{
	if (svc < 0 || svc >= IKELB_MAX_SERVICES)
		return -EINVAL;
	return percpu_sum(e, bpf_map__fd(e->skel->maps.svc_ctr_map), (uint32_t)svc, out,
			  SVC_CTR__MAX);
}

int bpf_engine_real_counters(struct bpf_engine *e, uint32_t real_id, struct ctr *out)
{
	if (real_id >= IKELB_MAX_REALS)
		return -EINVAL;
	return percpu_sum(e, bpf_map__fd(e->skel->maps.real_ctr_map), real_id, out, 1);
}

int bpf_engine_real_replies(struct bpf_engine *e, uint32_t real_id, struct ctr *out)
{
	int fd = bpf_map__fd(e->skel->maps.real_reply_map);

	if (real_id >= IKELB_MAX_REALS)
		return -EINVAL;
	for (uint32_t i = 0; i < REAL_CTR__MAX; i++) {
		int err = percpu_sum(e, fd, real_id * REAL_CTR__MAX + i, &out[i], 1);
		if (err)
			return err;
	}
	return 0;
}
