/* bpf engine: the kernel scheduler's maps (maps.h, svc_sched and
 * real_load): the runtime's view of each service, and the reconciliation
 * of the data path's client counts with the state tables after each walk. */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "engine/bpf_engine_int.h"
#include "bpf/ikelb.skel.h"

static uint32_t kernel_kind(enum cfg_sched k)
{
	switch (k) {
	case CFG_SCHED_RR:
	case CFG_SCHED_WRR:
		return SCHED_K_RR;
	case CFG_SCHED_LC:
	case CFG_SCHED_WLC:
		return SCHED_K_LC;
	default:
		return SCHED_K_MAGLEV;
	}
}

static int load_write(struct bpf_engine *e, uint32_t real_id, uint32_t k, int64_t v)
{
	uint32_t key = real_id * REAL_LOAD__MAX + k;
	int fd = bpf_map__fd(e->skel->maps.real_load_map);

	return bpf_map_update_elem(fd, &key, &v, BPF_ANY) < 0 ? -errno : 0;
}

static int64_t load_read(struct bpf_engine *e, uint32_t real_id, uint32_t k)
{
	uint32_t key = real_id * REAL_LOAD__MAX + k;
	int fd = bpf_map__fd(e->skel->maps.real_load_map);
	int64_t v = 0;

	return bpf_map_lookup_elem(fd, &key, &v) < 0 ? 0 : v;
}

/* The rr cursor restarts with a new cycle, as the runtime's rr does after
 * a change (both engines then hand out the same sequence). */
static int cursor_reset(struct bpf_engine *e, int svc)
{
	uint32_t key = (uint32_t)svc;
	uint64_t zero = 0;
	int fd = bpf_map__fd(e->skel->maps.rr_cursor_map);

	return bpf_map_update_elem(fd, &key, &zero, BPF_ANY) < 0 ? -errno : 0;
}

int bpf_engine_set_sched(struct bpf_engine *e, int svc, const struct rt_sched_view *v)
{
	if (svc < 0 || svc >= e->nsvc || v->n != e->svc[svc].nservers ||
	    v->seq_len > IKELB_SCHED_SEQ)
		return -EINVAL;
	struct bpfe_svc *es = &e->svc[svc];
	struct svc_sched ss;
	uint32_t key = (uint32_t)svc;
	int n = v->n < IKELB_SCHED_MAX ? v->n : IKELB_SCHED_MAX;

	memset(&ss, 0, sizeof(ss));
	ss.kind = kernel_kind(v->kind);
	ss.n = (uint32_t)n;
	ss.seq_len = v->seq_len;
	for (int i = 0; i < n; i++) {
		ss.real_id[i] = es->real_ids[i];
		ss.weight[i] = v->weight[i];
	}
	memcpy(ss.seq, v->seq, v->seq_len);
	for (int i = 0; i < v->n; i++) {
		int err = load_write(e, es->real_ids[i], REAL_LOAD_MAX, v->max_clients[i]);
		if (err)
			return err;
	}
	bool new_cycle = !es->sched_set || ss.kind != es->sched.kind ||
			 ss.seq_len != es->sched.seq_len || memcmp(ss.seq, es->sched.seq, ss.seq_len);
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.svc_sched_map), &key, &ss, BPF_ANY) < 0) {
		int err = -errno;
		log_err(e->log, "bpf: scheduler of service %d: %s", svc, strerror(-err));
		return err;
	}
	es->sched = ss;
	es->sched_set = true;
	return new_cycle ? cursor_reset(e, svc) : 0;
}

int bpf_engine_load_placed(struct bpf_engine *e, int64_t *placed)
{
	for (int i = 0; i < e->nsvc; i++)
		for (int j = 0; j < e->svc[i].nservers; j++) {
			uint32_t id = e->svc[i].real_ids[j];
			placed[id] = load_read(e, id, REAL_LOAD_PLACED);
		}
	return 0;
}

/* Clients of a server in the tables: what a new client adds to (one
 * half-open SA, then its SA in ike mode or its address in source-ip). */
static int64_t walked(const struct cfg_service *cs, const struct bpf_real_usage *u)
{
	return (int64_t)u->halfopen + (cs->persistence.mode == CFG_PERSIST_IKE ? u->sa : u->persist);
}

int bpf_engine_load_reconcile(struct bpf_engine *e, const struct cfg *cfg, const int64_t *placed,
			      const struct bpf_real_usage *usage)
{
	int err = 0;
	for (int i = 0; i < e->nsvc && i < cfg->nservices; i++)
		for (int j = 0; j < e->svc[i].nservers; j++) {
			uint32_t id = e->svc[i].real_ids[j];
			int rc = load_write(e, id, REAL_LOAD_ADJ,
					    walked(&cfg->services[i], &usage[id]) - placed[id]);
			if (rc && !err)
				err = rc;
		}
	return err;
}

int64_t bpf_engine_load_clients(struct bpf_engine *e, uint32_t real_id)
{
	if (real_id >= IKELB_MAX_REALS)
		return 0;
	int64_t n = load_read(e, real_id, REAL_LOAD_PLACED) + load_read(e, real_id, REAL_LOAD_ADJ);
	return n < 0 ? 0 : n;
}
