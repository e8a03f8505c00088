/* bpf engine: load, pin / reuse maps, attach / detach (tc clsact ingress,
 * optionally XDP in front). */
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>

#include "core/clock.h"
#include "engine/bpf_engine_int.h"
#include "bpf/ikelb.skel.h"

/* Maps whose content must outlive the daemon: learned client state, the
 * real_id assignment and the counters. The configuration maps are rebuilt by
 * every daemon from its configuration. */
static const char *const pinned_maps[] = {
	"persist_map", "sa_map", "halfopen_map", "flow_map", "tcp_conn_map", "frag_map",
	"reals_map", "svc_ctr_map", "real_ctr_map", "real_reply_map",
};
#define NPINNED (sizeof(pinned_maps) / sizeof(pinned_maps[0]))

uint32_t bpf_engine_now_s(void)
{
	/* last_seen_s in the maps is 32-bit seconds of the same clock. */
	return (uint32_t)clock_mono_s();
}

static int pin_path(const struct bpf_engine *e, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", e->pin_dir, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The pin directory must sit on a bpffs; mount the standard one when the
 * directory is under it and nothing is mounted yet (common in containers). */
static int pin_dir_prepare(struct bpf_engine *e)
{
	struct statfs sf;
	const char *root = "/sys/fs/bpf";

	if (!strncmp(e->pin_dir, root, strlen(root)) &&
	    (statfs(root, &sf) < 0 || sf.f_type != BPF_FS_MAGIC)) {
		if (mount("bpf", root, "bpf", 0, "mode=0700") < 0) {
			log_err(e->log, "bpf: cannot mount bpffs on %s: %s", root, strerror(errno));
			return -errno;
		}
	}
	if (mkdir(e->pin_dir, 0700) < 0 && errno != EEXIST) {
		log_err(e->log, "bpf: mkdir %s: %s", e->pin_dir, strerror(errno));
		return -errno;
	}
	if (statfs(e->pin_dir, &sf) < 0 || sf.f_type != BPF_FS_MAGIC) {
		log_err(e->log, "bpf: %s is not on a bpf filesystem", e->pin_dir);
		return -ENOTDIR;
	}
	return 0;
}

static bool map_matches(const struct bpf_map *m, const struct bpf_map_info *info)
{
	return info->type == (uint32_t)bpf_map__type(m) &&
	       info->key_size == bpf_map__key_size(m) &&
	       info->value_size == bpf_map__value_size(m) &&
	       info->max_entries == bpf_map__max_entries(m) &&
	       info->map_flags == bpf_map__map_flags(m);
}

/* Before load: use the pinned map when it has the same layout and size,
 * else remove the stale pin (its state cannot be carried over). */
static int pins_reuse(struct bpf_engine *e)
{
	for (size_t i = 0; i < NPINNED; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(e->skel->obj, pinned_maps[i]);
		char path[PATH_MAX];
		struct bpf_map_info info;
		uint32_t len = sizeof(info);

		if (!m || pin_path(e, pinned_maps[i], path, sizeof(path)) < 0)
			return -EINVAL;
		int fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && map_matches(m, &info)) {
			int err = bpf_map__reuse_fd(m, fd);
			close(fd);
			if (err)
				return err;
			log_info(e->log, "bpf: reusing pinned %s", path);
			continue;
		}
		close(fd);
		log_warn(e->log, "bpf: pinned %s has another layout or size; recreating it "
			 "(its entries are lost)", path);
		if (unlink(path) < 0)
			return -errno;
	}
	return 0;
}

static int pins_create(struct bpf_engine *e)
{
	for (size_t i = 0; i < NPINNED; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(e->skel->obj, pinned_maps[i]);
		char path[PATH_MAX];

		if (!m || pin_path(e, pinned_maps[i], path, sizeof(path)) < 0)
			return -EINVAL;
		if (access(path, F_OK) == 0)
			continue; /* reused */
		int err = bpf_map__pin(m, path);
		if (err) {
			log_err(e->log, "bpf: pin %s: %s", path, strerror(-err));
			return err;
		}
	}
	return 0;
}

static uint32_t maglev_total(const struct cfg *cfg)
{
	uint64_t sum = 0;

	for (int i = 0; i < cfg->nservices; i++)
		sum += cfg->services[i].maglev_size;
	if (sum == 0)
		sum = 1; /* an ARRAY needs one entry */
	return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

static int set_sizes(struct bpf_engine *e, const struct cfg *cfg)
{
	struct ikelb_bpf *s = e->skel;
	uint32_t clients = cfg->max_clients ? cfg->max_clients : 1048576;
	uint32_t flows = cfg->max_flows ? cfg->max_flows : 1048576;
	uint32_t halfopen = cfg->max_halfopen ? cfg->max_halfopen : 65536;
	uint32_t persist = cfg_uses_persist_table(cfg) ? clients : CFG_UNUSED_TABLE_ENTRIES;
	uint32_t tcp = cfg_uses_tcp_table(cfg) ? flows : CFG_UNUSED_TABLE_ENTRIES;

	e->maglev_cap = maglev_total(cfg);
	if (bpf_map__set_max_entries(s->maps.maglev_map, e->maglev_cap) ||
	    bpf_map__set_max_entries(s->maps.persist_map, persist) ||
	    bpf_map__set_max_entries(s->maps.sa_map, clients) ||
	    bpf_map__set_max_entries(s->maps.halfopen_map, halfopen) ||
	    bpf_map__set_max_entries(s->maps.flow_map, flows) ||
	    bpf_map__set_max_entries(s->maps.tcp_conn_map, tcp))
		return -EINVAL;
	return 0;
}

int bpf_engine_open(struct bpf_engine **out, const struct cfg *cfg, const struct logger *log)
{
	struct bpf_engine *e = calloc(1, sizeof(*e));
	int err;

	*out = NULL;
	if (!e)
		return -ENOMEM;
	e->log = log;
	e->ncpu = libbpf_num_possible_cpus();
	if (e->ncpu <= 0) {
		free(e);
		return -EINVAL;
	}
	snprintf(e->pin_dir, sizeof(e->pin_dir), "%s", cfg->bpf_pin_dir);
	e->attach = cfg->bpf_attach;
	e->skel = ikelb_bpf__open();
	if (!e->skel) {
		err = -errno;
		log_err(log, "bpf: open skeleton: %s", strerror(errno));
		free(e);
		return err ? err : -EINVAL;
	}
	err = set_sizes(e, cfg);
	if (!err && e->pin_dir[0])
		err = pin_dir_prepare(e);
	if (!err && e->pin_dir[0])
		err = pins_reuse(e);
	if (!err) {
		err = ikelb_bpf__load(e->skel);
		if (err)
			log_err(log, "bpf: load program: %s (kernel log above with "
				"LIBBPF_LOG_LEVEL)", strerror(-err));
	}
	if (!err && e->pin_dir[0])
		err = pins_create(e);
	if (!err)
		err = bpfe_tbl_init(e);
	if (err) {
		bpf_engine_close(e, false);
		return err;
	}
	*out = e;
	return 0;
}

void bpf_engine_close(struct bpf_engine *e, bool unpin)
{
	if (!e)
		return;
	if (unpin && e->pin_dir[0]) {
		for (size_t i = 0; i < NPINNED; i++) {
			char path[PATH_MAX];
			if (pin_path(e, pinned_maps[i], path, sizeof(path)) == 0)
				unlink(path);
		}
		rmdir(e->pin_dir);
	}
	for (int i = 0; i < IKELB_MAX_SERVICES; i++)
		bpfe_svc_free(&e->svc[i]);
	ikelb_bpf__destroy(e->skel);
	free(e);
}

int bpf_engine_attach_ifindex(struct bpf_engine *e, int ifindex)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = BPF_ENGINE_TC_HANDLE,
			    .priority = BPF_ENGINE_TC_PRIO,
			    .prog_fd = bpf_program__fd(e->skel->progs.ikelb_tc),
			    .flags = BPF_TC_F_REPLACE);
	int err;

	if (e->nif >= CFG_MAX_INTERFACES)
		return -E2BIG;
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST) {
		log_err(e->log, "bpf: clsact on ifindex %d: %s", ifindex, strerror(-err));
		return err;
	}
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		log_err(e->log, "bpf: tc attach on ifindex %d: %s", ifindex, strerror(-err));
		return err;
	}
	for (int i = 0; i < e->nif; i++)
		if (e->ifindex[i] == ifindex)
			return 0;
	e->ifindex[e->nif++] = ifindex;
	return 0;
}

/* Native XDP first; drivers without it (or a generic program left by a
 * previous daemon) get generic mode, which still saves the tc pass only
 * partly (ARCHITECTURE.md, Lab; docs/bpf-engine.md). */
int bpf_engine_attach_xdp_ifindex(struct bpf_engine *e, int ifindex, bool *native)
{
	int fd = bpf_program__fd(e->skel->progs.ikelb_xdp);
	uint32_t flags = XDP_FLAGS_DRV_MODE;
	int err;

	if (e->nxdp >= CFG_MAX_INTERFACES)
		return -E2BIG;
	err = bpf_xdp_attach(ifindex, fd, flags, NULL);
	if (err) {
		log_info(e->log, "bpf: native XDP on ifindex %d: %s; trying generic", ifindex,
			 strerror(-err));
		flags = XDP_FLAGS_SKB_MODE;
		err = bpf_xdp_attach(ifindex, fd, flags, NULL);
	}
	if (err) {
		log_err(e->log, "bpf: XDP attach on ifindex %d: %s", ifindex, strerror(-err));
		return err;
	}
	*native = flags == XDP_FLAGS_DRV_MODE;
	for (int i = 0; i < e->nxdp; i++)
		if (e->xdp_ifindex[i] == ifindex) {
			e->xdp_flags[i] = flags;
			return 0;
		}
	e->xdp_ifindex[e->nxdp] = ifindex;
	e->xdp_flags[e->nxdp++] = flags;
	return 0;
}

/* An XDP program named like ours left by a daemon that ran with
 * bpf.attach: xdp and did not stop cleanly would keep steering with that
 * daemon's configuration maps in front of the new tc filter: remove it. */
static void xdp_stale_remove(struct bpf_engine *e, int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	static const struct {
		uint32_t flags;
		size_t off;
	} modes[] = {
		{ XDP_FLAGS_DRV_MODE, offsetof(struct bpf_xdp_query_opts, drv_prog_id) },
		{ XDP_FLAGS_SKB_MODE, offsetof(struct bpf_xdp_query_opts, skb_prog_id) },
	};

	if (bpf_xdp_query(ifindex, 0, &q) < 0)
		return;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		uint32_t id;
		memcpy(&id, (const char *)&q + modes[i].off, sizeof(id));
		int fd = id ? bpf_prog_get_fd_by_id(id) : -1;
		if (fd < 0)
			continue;
		struct bpf_prog_info info;
		uint32_t len = sizeof(info);
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    !strcmp(info.name, "ikelb_xdp") &&
		    bpf_xdp_detach(ifindex, modes[i].flags, NULL) == 0)
			log_info(e->log, "bpf: removed a previous ikelb XDP program from ifindex %d",
				 ifindex);
		close(fd);
	}
}

_Static_assert(CFG_IF_PUBLIC == IFACE_R_PUBLIC && CFG_IF_SERVERS == IFACE_R_SERVERS,
	       "one numbering of interface roles");

int bpf_engine_set_iface_roles(struct bpf_engine *e, int ifindex, uint32_t roles)
{
	uint32_t k = (uint32_t)ifindex;

	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.iface_map), &k, &roles, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int bpf_engine_attach(struct bpf_engine *e, const struct cfg *cfg)
{
	for (int i = 0; i < cfg->ninterfaces; i++) {
		unsigned idx = if_nametoindex(cfg->interfaces[i]);
		bool native = false;

		if (!idx) {
			log_err(e->log, "bpf: interface %s: %s", cfg->interfaces[i], strerror(errno));
			return -ENODEV;
		}
		/* Roles before the filter: a reply must never meet a half-set map. */
		uint32_t roles = cfg->interface_roles[i] ? cfg->interface_roles[i] : IFACE_R_BOTH;
		int err = bpf_engine_set_iface_roles(e, (int)idx, roles);
		if (!err)
			err = bpf_engine_attach_ifindex(e, (int)idx);
		if (err)
			return err;
		if (e->attach != CFG_BPF_ATTACH_XDP) {
			xdp_stale_remove(e, (int)idx);
			log_info(e->log, "bpf: attached to %s (tc ingress)", cfg->interfaces[i]);
			continue;
		}
		err = bpf_engine_attach_xdp_ifindex(e, (int)idx, &native);
		if (err)
			return err;
		log_info(e->log, "bpf: attached to %s (%s XDP + tc ingress)", cfg->interfaces[i],
			 native ? "native" : "generic");
	}
	return 0;
}

void bpf_engine_detach(struct bpf_engine *e)
{
	for (int i = 0; i < e->nxdp; i++) {
		int err = bpf_xdp_detach(e->xdp_ifindex[i], e->xdp_flags[i], NULL);
		if (err && err != -ENOENT && err != -ENODEV)
			log_warn(e->log, "bpf: XDP detach ifindex %d: %s", e->xdp_ifindex[i],
				 strerror(-err));
	}
	e->nxdp = 0;
	for (int i = 0; i < e->nif; i++) {
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = e->ifindex[i],
				    .attach_point = BPF_TC_INGRESS);
		DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = BPF_ENGINE_TC_HANDLE,
				    .priority = BPF_ENGINE_TC_PRIO);
		int err = bpf_tc_detach(&hook, &opts);
		if (err && err != -ENOENT)
			log_warn(e->log, "bpf: detach ifindex %d: %s", e->ifindex[i], strerror(-err));
	}
	e->nif = 0;
}

int bpf_engine_prog_fd(const struct bpf_engine *e)
{
	return bpf_program__fd(e->skel->progs.ikelb_tc);
}

int bpf_engine_map_fd(const struct bpf_engine *e, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(e->skel->obj, name);
	return m ? bpf_map__fd(m) : -1;
}

int bpf_engine_xdp_prog_fd(const struct bpf_engine *e)
{
	return bpf_program__fd(e->skel->progs.ikelb_xdp);
}
