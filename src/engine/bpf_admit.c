/* The bpf engine's admission control (docs/security.md, "Admission"):
 * each service's buckets into admit_map, and the COOKIE secrets in
 * cookie_key_map, generated with getrandom and rotated every
 * IKELB_COOKIE_ROTATE_S (the previous secret stays valid one period). */
#include "engine/bpf_engine_int.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/ikelb.skel.h"
#include "core/log.h"

#define NS_PER_S 1000000000ull

/* GCRA parameters of `rate` per second with `burst` back to back. */
static struct admit_bucket bucket(uint32_t rate, uint32_t burst)
{
	struct admit_bucket b = { 0 };

	if (!rate)
		return b;
	b.interval_ns = NS_PER_S / rate;
	b.tau_ns = (uint64_t)(burst ? burst - 1 : 0) * b.interval_ns;
	return b;
}

static struct admit_value admit_value_make(const struct cfg_admission *a)
{
	struct admit_value v = { 0 };

	if (!a->enabled)
		return v;
	v.flags = ADMIT_F_ON;
	v.svc = bucket(a->rate, a->burst);
	struct admit_bucket src = bucket(a->per_source_rate, a->per_source_burst);
	v.src_interval_ns = src.interval_ns;
	v.src_tau_ns = src.tau_ns;
	if (a->cookie) {
		v.flags |= ADMIT_F_COOKIE;
		if (a->cookie_threshold)
			v.cookie = bucket(a->cookie_threshold, a->cookie_threshold);
		else
			v.flags |= ADMIT_F_COOKIE_ALWAYS;
	}
	return v;
}

static int key_new(struct cookie_keys *k, uint32_t ver)
{
	uint64_t r[2];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -errno ? -errno : -EIO;
	memcpy(k->key[ver & 1], r, sizeof(r));
	explicit_bzero(r, sizeof(r));
	return 0;
}

static int keys_write(struct bpf_engine *e, struct cookie_keys *k)
{
	uint32_t zero = 0;
	int rc = bpf_map_update_elem(bpf_map__fd(e->skel->maps.cookie_key_map), &zero, k, BPF_ANY);

	explicit_bzero(k, sizeof(*k));
	return rc < 0 ? -errno : 0;
}

/* A fresh current key, the previous one kept for cookies already out. */
static int cookie_rotate(struct bpf_engine *e, uint32_t now_s)
{
	struct cookie_keys k;
	uint32_t zero = 0;

	memset(&k, 0, sizeof(k));
	if (e->cookie_ver && bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.cookie_key_map),
						 &zero, &k) < 0)
		return -errno;
	uint32_t ver = e->cookie_ver + 1;
	if (!ver)
		ver = 1; /* 0 means "no key" */
	int rc = key_new(&k, ver);
	k.cur = ver;
	if (rc == 0)
		rc = keys_write(e, &k);
	explicit_bzero(&k, sizeof(k));
	if (rc == 0) {
		e->cookie_ver = ver;
		e->cookie_rotated_s = now_s;
	}
	return rc;
}

int bpfe_admit_sync(struct bpf_engine *e, const struct cfg *cfg)
{
	int fd = bpf_map__fd(e->skel->maps.admit_map);

	for (uint32_t i = 0; i < IKELB_MAX_SERVICES; i++) {
		struct admit_value v = { 0 };
		if (i < (uint32_t)cfg->nservices)
			v = admit_value_make(&cfg->services[i].admission);
		if (bpf_map_update_elem(fd, &i, &v, BPF_ANY) < 0)
			return -errno;
	}
	if (e->cookie_ver)
		return 0;
	int rc = cookie_rotate(e, bpf_engine_now_s());
	if (rc < 0)
		log_err(e->log, "bpf: cookie secret: %s", strerror(-rc));
	return rc;
}

int bpf_engine_cookie_tick(struct bpf_engine *e, uint32_t now_s)
{
	if (e->cookie_ver && now_s - e->cookie_rotated_s < IKELB_COOKIE_ROTATE_S)
		return 0;
	int rc = cookie_rotate(e, now_s);
	if (rc < 0)
		log_warn(e->log, "bpf: cookie secret rotation: %s", strerror(-rc));
	return rc;
}
