/* bpf engine: configuration maps (services, reals, labels, ESP ranges,
 * reverse NAT, Maglev tables, local addresses). */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "core/runtime.h"
#include "engine/bpf_engine_int.h"
#include "bpf/ikelb.skel.h"
#include "ikelb/ike_wire.h"

/* Desired content of one map, built in memory then swapped in. */
struct kv {
	uint8_t *keys;
	uint8_t *vals;
	size_t n, cap, ksz, vsz;
};

static void kv_init(struct kv *kv, size_t ksz, size_t vsz)
{
	memset(kv, 0, sizeof(*kv));
	kv->ksz = ksz;
	kv->vsz = vsz;
}

static void kv_free(struct kv *kv)
{
	free(kv->keys);
	free(kv->vals);
}

/* Returns the index of an equal key, or -1. */
static long kv_find(const struct kv *kv, const void *key)
{
	for (size_t i = 0; i < kv->n; i++)
		if (!memcmp(kv->keys + i * kv->ksz, key, kv->ksz))
			return (long)i;
	return -1;
}

static int kv_add(struct kv *kv, const void *key, const void *val)
{
	if (kv->n == kv->cap) {
		size_t cap = kv->cap ? kv->cap * 2 : 64;
		uint8_t *k = realloc(kv->keys, cap * kv->ksz);
		if (!k)
			return -ENOMEM;
		kv->keys = k;
		uint8_t *v = realloc(kv->vals, cap * kv->vsz);
		if (!v)
			return -ENOMEM;
		kv->vals = v;
		kv->cap = cap;
	}
	memcpy(kv->keys + kv->n * kv->ksz, key, kv->ksz);
	memcpy(kv->vals + kv->n * kv->vsz, val, kv->vsz);
	kv->n++;
	return 0;
}

int bpfe_map_replace(int fd, const void *keys, const void *vals, size_t n, size_t ksz, size_t vsz)
{
	uint8_t cur[64], next[64];
	const uint8_t *k = keys, *v = vals;
	bool first = true;

	(void)vsz;
	if (ksz > sizeof(cur))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (bpf_map_update_elem(fd, k + i * ksz, v + i * vsz, BPF_ANY) < 0)
			return -errno;
	/* Then drop what is no longer wanted. Restart the walk after each
	 * delete: get_next_key on a deleted key restarts anyway. */
	for (;;) {
		if (bpf_map_get_next_key(fd, first ? NULL : cur, next) < 0)
			break;
		first = false;
		memcpy(cur, next, ksz);
		bool keep = false;
		for (size_t i = 0; i < n && !keep; i++)
			keep = !memcmp(k + i * ksz, cur, ksz);
		if (!keep) {
			bpf_map_delete_elem(fd, cur);
			first = true;
		}
	}
	return 0;
}

void bpfe_svc_free(struct bpfe_svc *s)
{
	free(s->real_ids);
	free(s->addrs);
	s->real_ids = NULL;
	s->addrs = NULL;
	s->nservers = 0;
}

static int check_cfg(struct bpf_engine *e, const struct cfg *cfg)
{
	uint64_t mag = 0;
	int nreals = 0;

	if (cfg->nservices > IKELB_MAX_SERVICES) {
		log_err(e->log, "bpf: %d services, the bpf engine supports %d", cfg->nservices,
			IKELB_MAX_SERVICES);
		return -E2BIG;
	}
	for (int s = 0; s < cfg->nservices; s++) {
		const struct cfg_service *svc = &cfg->services[s];
		int v4 = ikelb_addr_is_v4(&svc->vip);

		if (svc->forwarding == CFG_FWD_FULLNAT) {
			log_err(e->log, "bpf: service %s: fullnat needs the socket engine", svc->name);
			return -EINVAL;
		}
		for (int i = 0; i < svc->nservers; i++) {
			if (ikelb_addr_is_v4(&svc->servers[i].addr) != v4) {
				log_err(e->log, "bpf: service %s: server %s is not of the VIP's "
					"address family", svc->name, svc->servers[i].name);
				return -EINVAL;
			}
		}
		mag += svc->maglev_size;
		nreals += svc->nservers;
	}
	if (mag > e->maglev_cap || nreals > IKELB_MAX_REALS) {
		log_err(e->log, "bpf: Maglev tables (%llu slots, loaded for %u) or servers (%d, "
			"max %d) too large: restart the daemon", (unsigned long long)mag,
			e->maglev_cap, nreals, IKELB_MAX_REALS);
		return -E2BIG;
	}
	return 0;
}

/* Give every configured server a real_id: the one it had (same service
 * index and address, remembered in the pinned reals_map), else the lowest
 * free one. Ids no longer used are freed and their state purged. */
static int assign_reals(struct bpf_engine *e, const struct cfg *cfg)
{
	struct real_value *old = calloc(IKELB_MAX_REALS, sizeof(*old));
	uint8_t *taken = calloc(IKELB_MAX_REALS, 1);
	int fd = bpf_map__fd(e->skel->maps.reals_map);
	int err = old && taken ? bpfe_read_reals(e, old) : -ENOMEM;

	for (int s = 0; !err && s < cfg->nservices; s++) {
		const struct cfg_service *svc = &cfg->services[s];
		struct bpfe_svc *es = &e->svc[s];

		es->real_ids = calloc(svc->nservers ? svc->nservers : 1, sizeof(uint32_t));
		es->addrs = calloc(svc->nservers ? svc->nservers : 1, sizeof(struct ikelb_addr));
		if (!es->real_ids || !es->addrs) {
			err = -ENOMEM;
			break;
		}
		es->nservers = svc->nservers;
		for (int i = 0; i < svc->nservers; i++) {
			es->addrs[i] = svc->servers[i].addr;
			es->real_ids[i] = IKELB_REAL_NONE;
			for (uint32_t id = 0; id < IKELB_MAX_REALS; id++) {
				if ((old[id].flags & REAL_F_IN_USE) && !taken[id] &&
				    old[id].svc_id == (uint32_t)s &&
				    ikelb_addr_eq(&old[id].addr, &svc->servers[i].addr)) {
					es->real_ids[i] = id;
					taken[id] = 1;
					break;
				}
			}
		}
	}
	for (int s = 0; !err && s < cfg->nservices; s++) {
		const struct cfg_service *svc = &cfg->services[s];
		struct bpfe_svc *es = &e->svc[s];
		uint32_t next = 0;

		for (int i = 0; i < svc->nservers; i++) {
			struct real_value rv = { .addr = svc->servers[i].addr, .svc_id = (uint32_t)s,
						 .flags = REAL_F_IN_USE };
			uint32_t id = es->real_ids[i];

			/* Health is not known here; the runtime pushes its verdicts. */
			bool checked = svc->health.type != CFG_HEALTH_NONE;
			rv.state = (uint8_t)rt_effective(svc->servers[i].state,
							 checked ? HEALTH_UNKNOWN : HEALTH_UP,
							 svc->servers[i].init_down);
			if (id == IKELB_REAL_NONE) {
				while (next < IKELB_MAX_REALS &&
				       (taken[next] || (old[next].flags & REAL_F_IN_USE)))
					next++;
				if (next == IKELB_MAX_REALS) {
					err = -E2BIG;
					break;
				}
				id = next;
				es->real_ids[i] = id;
				taken[id] = 1;
			} else if (old[id].state == REAL_DOWN && rv.state == REAL_ACTIVE) {
				rv.state = REAL_DOWN; /* health decides when it comes back */
			}
			if (bpf_map_update_elem(fd, &id, &rv, BPF_ANY) < 0) {
				err = -errno;
				break;
			}
		}
	}
	for (uint32_t id = 0; !err && id < IKELB_MAX_REALS; id++) {
		if ((old[id].flags & REAL_F_IN_USE) && !taken[id]) {
			struct real_value none = { 0 };
			bpf_map_update_elem(fd, &id, &none, BPF_ANY);
			bpf_engine_purge_real(e, id);
		}
	}
	free(old);
	free(taken);
	return err;
}

static struct svc_value svc_value_make(const struct cfg *cfg, int s, uint32_t off)
{
	const struct cfg_service *svc = &cfg->services[s];
	struct svc_value v = { 0 };

	v.svc_id = (uint32_t)s;
	v.maglev_off = off;
	v.persist_timeout_s = svc->persistence.timeout_s;
	v.flow_timeout_s = svc->persistence.flow_timeout_s;
	v.flags = (svc->persistence.mode == CFG_PERSIST_IKE ? SVC_F_PERSIST_IKE : 0) |
		  (svc->forwarding == CFG_FWD_DSR ? SVC_F_DSR : 0);
	for (int i = 0; i < svc->nservers; i++)
		if (svc->servers[i].has_esp_range)
			v.flags |= SVC_F_ESP_LABELS;
	v.netmask = (uint8_t)svc->persistence.netmask;
	v.netmask6 = (uint8_t)svc->persistence.netmask6;
	v.spi_mask = svc->spi_mask;
	v.hash_seed = cfg->maglev_seed;
	return v;
}

static int sync_services(struct bpf_engine *e, const struct cfg *cfg, struct bpfe_svc *old,
			  int nold)
{
	struct kv sv, vv;
	uint32_t off = 0;
	int err = 0;

	kv_init(&sv, sizeof(struct svc_key), sizeof(struct svc_value));
	kv_init(&vv, sizeof(struct ikelb_addr), sizeof(uint32_t));
	for (int s = 0; !err && s < cfg->nservices; s++) {
		const struct cfg_service *svc = &cfg->services[s];
		struct bpfe_svc *es = &e->svc[s];

		es->val = svc_value_make(cfg, s, off);
		/* Keep a live Maglev table that still sits where it was. */
		if (s < nold && old[s].val.maglev_off == off &&
		    old[s].val.maglev_size == svc->maglev_size)
			es->val.maglev_size = old[s].val.maglev_size;
		off += svc->maglev_size;
		es->maglev_room = svc->maglev_size;
		es->vip = svc->vip;
		es->nports = svc->nports;
		memcpy(es->ports, svc->ports, sizeof(es->ports));
		es->ike_port = svc->ike_port;
		for (int p = 0; !err && p < svc->nports; p++) {
			struct svc_key k = { .vip = svc->vip, .port = svc->ports[p],
					     .proto = IPPROTO_UDP };
			struct svc_value v = es->val;

			v.natt = (uint8_t)ike_port_is_natt(svc->ports[p], svc->ike_port);
			err = kv_find(&sv, &k) >= 0 ? -EEXIST : kv_add(&sv, &k, &v);
		}
		uint32_t sid = (uint32_t)s;
		if (!err && kv_find(&vv, &svc->vip) < 0)
			err = kv_add(&vv, &svc->vip, &sid);
	}
	if (err == -EEXIST)
		log_err(e->log, "bpf: two services share a VIP and port");
	if (!err)
		err = bpfe_map_replace(bpf_map__fd(e->skel->maps.svc_map), sv.keys, sv.vals, sv.n,
				       sv.ksz, sv.vsz);
	if (!err)
		err = bpfe_map_replace(bpf_map__fd(e->skel->maps.vip_map), vv.keys, vv.vals, vv.n,
				       vv.ksz, vv.vsz);
	kv_free(&sv);
	kv_free(&vv);
	return err;
}

/* Reverse NAT entries of the dnat services; built before anything is
 * written so a conflict leaves the maps untouched. */
static int rev_build(struct bpf_engine *e, const struct cfg *cfg, struct kv *kv)
{
	int err = 0;

	for (int s = 0; !err && s < cfg->nservices; s++) {
		const struct cfg_service *svc = &cfg->services[s];

		if (svc->forwarding != CFG_FWD_DNAT)
			continue;
		for (int i = 0; !err && i < svc->nservers; i++) {
			for (int p = 0; !err && p < svc->nports; p++) {
				struct rev_key k = { .addr = svc->servers[i].addr,
						     .port = svc->ports[p] };
				struct rev_value v = { .vip = svc->vip, .port = svc->ports[p],
						       .natt = (uint8_t)ike_port_is_natt(svc->ports[p],
										 svc->ike_port),
						       .svc_id = (uint32_t)s,
						       .real_id = IKELB_REAL_NONE };
				long at = kv_find(kv, &k);

				if (at >= 0 && memcmp(kv->vals + at * kv->vsz, &v, kv->vsz)) {
					log_err(e->log, "bpf: server %s port %u serves two dnat "
						"services: replies cannot be told apart",
						svc->servers[i].name, svc->ports[p]);
					err = -EEXIST;
				} else if (at < 0) {
					err = kv_add(kv, &k, &v);
				}
			}
		}
	}
	return err;
}

/* IKE SPI labels must name one server each. */
static int labels_check(struct bpf_engine *e, const struct cfg *cfg)
{
	for (int s = 0; s < cfg->nservices; s++) {
		const struct cfg_service *svc = &cfg->services[s];

		for (int i = 0; svc->spi_mask && i < svc->nservers; i++) {
			const struct cfg_server *a = &svc->servers[i];
			for (int j = 0; a->has_spi_label && j < i; j++) {
				const struct cfg_server *b = &svc->servers[j];
				if (b->has_spi_label &&
				    ((a->spi_label ^ b->spi_label) & svc->spi_mask) == 0) {
					log_err(e->log, "bpf: service %s: %s and %s have the same "
						"SPI label", svc->name, b->name, a->name);
					return -EEXIST;
				}
			}
		}
	}
	return 0;
}

/* [lo, hi] as the minimal list of aligned prefixes. */
static int esp_range_add(struct kv *kv, uint32_t svc_id, uint32_t lo, uint32_t hi, uint32_t rid)
{
	uint64_t cur = lo, end = (uint64_t)hi + 1;

	while (cur < end) {
		int bits = 0; /* host bits of the block */
		while (bits < 32 && (cur & ((1ULL << (bits + 1)) - 1)) == 0 &&
		       cur + (1ULL << (bits + 1)) <= end)
			bits++;
		struct esp_lpm_key k = { .prefixlen = 32 + 32 - bits, .svc_id_be = htonl(svc_id),
					 .spi_be = htonl((uint32_t)cur) };
		int err = kv_add(kv, &k, &rid);
		if (err)
			return err;
		cur += 1ULL << bits;
	}
	return 0;
}

static int sync_labels(struct bpf_engine *e, const struct cfg *cfg)
{
	struct kv lv, ev;
	int err = 0;

	kv_init(&lv, sizeof(struct label_key), sizeof(uint32_t));
	kv_init(&ev, sizeof(struct esp_lpm_key), sizeof(uint32_t));
	for (int s = 0; !err && s < cfg->nservices; s++) {
		const struct cfg_service *svc = &cfg->services[s];

		for (int i = 0; !err && i < svc->nservers; i++) {
			const struct cfg_server *srv = &svc->servers[i];
			uint32_t rid = e->svc[s].real_ids[i];

			if (srv->has_spi_label && svc->spi_mask) {
				struct label_key k = { .svc_id = (uint32_t)s,
						       .label = srv->spi_label & svc->spi_mask };
				err = kv_add(&lv, &k, &rid);
			}
			if (!err && srv->has_esp_range && srv->esp_spi_min <= srv->esp_spi_max)
				err = esp_range_add(&ev, (uint32_t)s, srv->esp_spi_min,
						    srv->esp_spi_max, rid);
		}
	}
	if (!err)
		err = bpfe_map_replace(bpf_map__fd(e->skel->maps.label_map), lv.keys, lv.vals, lv.n,
				       lv.ksz, lv.vsz);
	if (!err)
		err = bpfe_map_replace(bpf_map__fd(e->skel->maps.esp_lpm_map), ev.keys, ev.vals,
				       ev.n, ev.ksz, ev.vsz);
	kv_free(&lv);
	kv_free(&ev);
	return err;
}

/* rev_build runs before real ids are assigned (it may refuse the
 * configuration); name the replying server once they are. */
static void rev_fill_ids(struct bpf_engine *e, const struct cfg *cfg, struct kv *kv)
{
	for (size_t n = 0; n < kv->n; n++) {
		const struct rev_key *k = (const void *)(kv->keys + n * kv->ksz);
		struct rev_value *v = (void *)(kv->vals + n * kv->vsz);
		const struct cfg_service *svc = &cfg->services[v->svc_id];

		for (int i = 0; i < svc->nservers; i++)
			if (ikelb_addr_eq(&svc->servers[i].addr, &k->addr))
				v->real_id = e->svc[v->svc_id].real_ids[i];
	}
}

int bpf_engine_sync(struct bpf_engine *e, const struct cfg *cfg)
{
	struct bpfe_svc old[IKELB_MAX_SERVICES];
	struct kv rev;
	int nold = e->nsvc;
	int err = check_cfg(e, cfg);

	kv_init(&rev, sizeof(struct rev_key), sizeof(struct rev_value));
	if (!err)
		err = labels_check(e, cfg);
	if (!err)
		err = rev_build(e, cfg, &rev);
	if (err) {
		kv_free(&rev);
		return err;
	}
	memcpy(old, e->svc, sizeof(old));
	memset(e->svc, 0, sizeof(e->svc));
	e->nsvc = cfg->nservices;
	err = assign_reals(e, cfg);
	if (!err)
		err = sync_services(e, cfg, old, nold);
	if (!err)
		rev_fill_ids(e, cfg, &rev);
	if (!err)
		err = bpfe_map_replace(bpf_map__fd(e->skel->maps.rev_map), rev.keys, rev.vals, rev.n,
				       rev.ksz, rev.vsz);
	kv_free(&rev);
	if (!err)
		err = sync_labels(e, cfg);
	for (int s = 0; s < IKELB_MAX_SERVICES; s++)
		bpfe_svc_free(&old[s]);
	if (err)
		log_err(e->log, "bpf: configuration sync failed: %s", strerror(-err));
	return err;
}

int bpf_engine_real_id(const struct bpf_engine *e, int svc, int srv)
{
	if (svc < 0 || svc >= e->nsvc || srv < 0 || srv >= e->svc[svc].nservers)
		return -1;
	return (int)e->svc[svc].real_ids[srv];
}

static int write_svc_values(struct bpf_engine *e, int svc)
{
	struct bpfe_svc *es = &e->svc[svc];
	int fd = bpf_map__fd(e->skel->maps.svc_map);

	for (int p = 0; p < es->nports; p++) {
		struct svc_key k = { .vip = es->vip, .port = es->ports[p], .proto = IPPROTO_UDP };
		struct svc_value v = es->val;

		v.natt = (uint8_t)ike_port_is_natt(es->ports[p], es->ike_port);
		if (bpf_map_update_elem(fd, &k, &v, BPF_EXIST) < 0)
			return -errno;
	}
	return 0;
}

int bpf_engine_set_maglev(struct bpf_engine *e, int svc, const uint32_t *real_ids, uint32_t m)
{
	if (svc < 0 || svc >= e->nsvc)
		return -EINVAL;
	struct bpfe_svc *es = &e->svc[svc];
	uint32_t cap = es->maglev_room;
	int fd = bpf_map__fd(e->skel->maps.maglev_map);

	if (m > cap || (m && m < 3)) {
		log_err(e->log, "bpf: Maglev table of %u slots for service %d (room for %u)", m,
			svc, cap);
		return -EINVAL;
	}
	if (m) {
		uint32_t *keys = malloc(m * sizeof(uint32_t));
		uint32_t *vals = malloc(m * sizeof(uint32_t));
		int err = keys && vals ? 0 : -ENOMEM;

		for (uint32_t i = 0; !err && i < m; i++) {
			uint32_t id = real_ids[i];
			bool ok = id == IKELB_REAL_NONE;
			for (int j = 0; !ok && j < es->nservers; j++)
				ok = es->real_ids[j] == id;
			if (!ok)
				err = -EINVAL;
			keys[i] = es->val.maglev_off + i;
			vals[i] = id;
		}
		uint32_t count = m;
		if (!err && bpf_map_update_batch(fd, keys, vals, &count, NULL) < 0) {
			for (uint32_t i = 0; !err && i < m; i++)
				if (bpf_map_update_elem(fd, &keys[i], &vals[i], BPF_ANY) < 0)
					err = -errno;
		}
		free(keys);
		free(vals);
		if (err) {
			log_err(e->log, "bpf: Maglev table of service %d: %s", svc, strerror(-err));
			return err;
		}
	}
	es->val.maglev_size = m;
	return write_svc_values(e, svc);
}

int bpf_engine_set_maglev_servers(struct bpf_engine *e, int svc, const uint32_t *srv_idx,
				  uint32_t m)
{
	if (svc < 0 || svc >= e->nsvc)
		return -EINVAL;
	uint32_t *ids = malloc((m ? m : 1) * sizeof(uint32_t));
	if (!ids)
		return -ENOMEM;
	for (uint32_t i = 0; i < m; i++) {
		uint32_t s = srv_idx[i];
		ids[i] = s < (uint32_t)e->svc[svc].nservers ? e->svc[svc].real_ids[s]
							    : IKELB_REAL_NONE;
	}
	int err = bpf_engine_set_maglev(e, svc, ids, m);
	free(ids);
	return err;
}

int bpf_engine_set_real_state(struct bpf_engine *e, int svc, int srv, int state)
{
	int id = bpf_engine_real_id(e, svc, srv);
	int fd = bpf_map__fd(e->skel->maps.reals_map);
	struct real_value rv;
	uint32_t key = (uint32_t)id;

	if (id < 0 || state < REAL_ACTIVE || state > REAL_DOWN)
		return -EINVAL;
	if (bpf_map_lookup_elem(fd, &key, &rv) < 0)
		return -errno;
	rv.state = (uint8_t)state;
	if (bpf_map_update_elem(fd, &key, &rv, BPF_ANY) < 0)
		return -errno;
	return state == REAL_DOWN ? bpf_engine_purge_real(e, key) : 0;
}

int bpf_engine_set_local_addrs(struct bpf_engine *e, const struct ikelb_addr *a, int n)
{
	uint32_t *vals = calloc(n > 0 ? n : 1, sizeof(uint32_t));
	if (!vals)
		return -ENOMEM;
	int err = bpfe_map_replace(bpf_map__fd(e->skel->maps.local_addr_map), a, vals,
				   n > 0 ? (size_t)n : 0, sizeof(*a), sizeof(uint32_t));
	free(vals);
	return err;
}

int bpf_engine_refresh_local_addrs(struct bpf_engine *e)
{
	struct ifaddrs *ifa, *it;
	struct ikelb_addr a[IKELB_MAX_LOCAL_ADDRS];
	int n = 0;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (it = ifa; it && n < IKELB_MAX_LOCAL_ADDRS; it = it->ifa_next) {
		if (!it->ifa_addr)
			continue;
		if (it->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *sin = (const void *)it->ifa_addr;
			ikelb_addr_from_v4(&a[n++], sin->sin_addr.s_addr);
		} else if (it->ifa_addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const void *)it->ifa_addr;
			memcpy(a[n++].b, &sin6->sin6_addr, 16);
		}
	}
	freeifaddrs(ifa);
	return bpf_engine_set_local_addrs(e, a, n);
}
