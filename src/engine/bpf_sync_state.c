/* bpf engine: reading and writing state entries for the sync between
 * nodes. The walk reads whole maps in batches (the data path keeps no
 * change log, docs/ha.md "Finding changes"); writes go through the same
 * keys the data path uses, with last_seen set back by the entry's age. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/sync_wire.h"
#include "engine/bpf_engine_int.h"
#include "engine/bpf_sync_state.h"
#include "bpf/ikelb.skel.h"

struct sync_walk {
	struct bpf_engine *e;
	uint32_t now;
	uint8_t kind;
	int32_t *srv_of;   /* real_id -> server index in its service, -1 */
	eng_sync_cb cb;
	void *ctx;
};

static int32_t *server_index(struct bpf_engine *e)
{
	int32_t *idx = malloc(IKELB_MAX_REALS * sizeof(*idx));

	if (!idx)
		return NULL;
	for (uint32_t i = 0; i < IKELB_MAX_REALS; i++)
		idx[i] = -1;
	for (int s = 0; s < e->nsvc; s++)
		for (int j = 0; j < e->svc[s].nservers; j++)
			if (e->svc[s].real_ids[j] < IKELB_MAX_REALS)
				idx[e->svc[s].real_ids[j]] = j;
	return idx;
}

static uint32_t timeout_of(const struct sync_walk *w, uint32_t svc)
{
	const struct svc_value *sv = &w->e->svc[svc].val;
	return w->kind == SYNC_K_FLOW ? sv->flow_timeout_s : sv->persist_timeout_s;
}

/* Entry -> eng_sync_entry; false when it is idle or its server unknown. */
static bool to_entry(const struct sync_walk *w, const void *key, const struct state_value *v,
		     struct eng_sync_entry *en)
{
	uint32_t svc;

	memcpy(&svc, key, sizeof(svc)); /* every state key starts with svc_id */
	if (svc >= (uint32_t)w->e->nsvc || v->real_id >= IKELB_MAX_REALS ||
	    w->srv_of[v->real_id] < 0)
		return false;
	uint32_t age = w->now >= v->last_seen_s ? w->now - v->last_seen_s : 0;
	uint32_t to = timeout_of(w, svc);
	if (to && age >= to)
		return false;
	memset(en, 0, sizeof(*en));
	*en = (struct eng_sync_entry){ .kind = w->kind, .svc = (int)svc,
				       .srv = w->srv_of[v->real_id], .age_s = age };
	if (w->kind == SYNC_K_PERSIST) {
		en->client = ((const struct persist_key *)key)->client;
	} else if (w->kind == SYNC_K_FLOW) {
		const struct flow_key *k = key;
		en->client = k->client;
		en->cport = k->cport;
		en->vport = k->vport;
	} else {
		en->spi = ((const struct sa_key *)key)->spi_i;
	}
	return true;
}

static int walk_entry(void *ctx, const void *key, const void *val)
{
	struct sync_walk *w = ctx;
	struct eng_sync_entry en;
	struct state_value v;

	memcpy(&v, val, sizeof(v));
	return to_entry(w, key, &v, &en) ? w->cb(w->ctx, &en) : 0;
}

static int walk_map(struct sync_walk *w, int fd, size_t ksz)
{
	return bpfe_batch_walk(fd, ksz, sizeof(struct state_value), walk_entry, w);
}

/* Half-open SAs are not synced: a retransmitted IKE_SA_INIT redoes them
 * cheaply, and the server's SPIr they record (struct halfopen_value)
 * vouches only on the node that saw the server's answer. */
int bpf_engine_sync_walk(struct bpf_engine *e, uint32_t now_s, eng_sync_cb cb, void *ctx)
{
	struct sync_walk w = { .e = e, .now = now_s, .srv_of = server_index(e), .cb = cb,
			       .ctx = ctx };
	const struct {
		struct bpf_map *m;
		uint8_t kind;
		size_t ksz;
	} maps[] = {
		{ e->skel->maps.persist_map, SYNC_K_PERSIST, sizeof(struct persist_key) },
		{ e->skel->maps.sa_map, SYNC_K_SA, sizeof(struct sa_key) },
		{ e->skel->maps.flow_map, SYNC_K_FLOW, sizeof(struct flow_key) },
	};
	int err = w.srv_of ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < sizeof(maps) / sizeof(maps[0]); i++) {
		w.kind = maps[i].kind;
		err = walk_map(&w, bpf_map__fd(maps[i].m), maps[i].ksz);
	}
	free(w.srv_of);
	return err;
}

/* The map and key bytes of an entry; ksz 0 for an unknown kind. */
static struct bpf_map *key_of(struct bpf_engine *e, const struct eng_sync_entry *en,
			      uint8_t key[40], size_t *ksz)
{
	memset(key, 0, 40);
	memcpy(key, &(uint32_t){ (uint32_t)en->svc }, 4);
	*ksz = 0;
	switch (en->kind) {
	case SYNC_K_PERSIST: {
		struct persist_key *k = (void *)key;
		k->client = en->client;
		*ksz = sizeof(*k);
		return e->skel->maps.persist_map;
	}
	case SYNC_K_SA: {
		struct sa_key *k = (void *)key;
		k->spi_i = en->spi;
		*ksz = sizeof(*k);
		return e->skel->maps.sa_map;
	}
	case SYNC_K_FLOW: {
		struct flow_key *k = (void *)key;
		k->client = en->client;
		k->cport = en->cport;
		k->vport = en->vport;
		*ksz = sizeof(*k);
		return e->skel->maps.flow_map;
	}
	default:
		return NULL;
	}
}

int bpf_engine_sync_apply(struct bpf_engine *e, uint32_t now_s, const struct eng_sync_entry *en)
{
	uint8_t key[40];
	size_t ksz;

	if (en->svc < 0 || en->svc >= e->nsvc || en->srv < 0 ||
	    en->srv >= e->svc[en->svc].nservers)
		return -EINVAL;
	struct bpf_map *m = key_of(e, en, key, &ksz);
	uint32_t rid = e->svc[en->svc].real_ids[en->srv];
	if (!m || rid >= IKELB_MAX_REALS)
		return -EINVAL;
	struct state_value v = { .real_id = rid,
				 .last_seen_s = now_s > en->age_s ? now_s - en->age_s : 0 };
	struct state_value cur;
	int fd = bpf_map__fd(m);
	/* The newer entry wins: an echo of our own entry, or an older one,
	 * leaves the local entry as it is. */
	if (bpf_map_lookup_elem(fd, key, &cur) == 0 && cur.last_seen_s >= v.last_seen_s)
		return 0;
	if (bpf_map_update_elem(fd, key, &v, BPF_ANY) < 0)
		return -errno;
	return 1;
}
