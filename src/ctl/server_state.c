#include "ctl/server_state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ikelb/addr.h"

#define ADDR_LEN 64

/* ---- save ---- */

static json_t *entry_json(const struct cfg_service *cs, const struct cfg_server *c,
			  const struct rt_server *r)
{
	char addr[ADDR_LEN];
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I}", "service", cs->name, "server",
			 c->name, "address", ikelb_addr_str(&c->addr, addr, sizeof(addr)), "admin",
			 cfg_server_state_name(r->admin), "weight", (json_int_t)r->weight,
			 "file_admin", cfg_server_state_name(r->file_admin), "file_weight",
			 (json_int_t)r->file_weight);
}

/* Only overrides: a server that runs with the file's values needs no entry,
 * and an absent entry lets the file speak after a restart. */
static json_t *state_json(const struct cfg *cfg, const struct runtime *rt)
{
	json_t *list = json_array();
	json_t *root = json_pack("{s:i, s:I, s:o}", "version", SSTATE_VERSION, "saved_at",
				 (json_int_t)time(NULL), "servers", list);
	for (int i = 0; root && i < cfg->nservices; i++) {
		const struct cfg_service *cs = &cfg->services[i];
		for (int j = 0; j < cs->nservers; j++) {
			const struct rt_server *r = &rt->svc[i].servers[j];
			if (r->admin == r->file_admin && r->weight == r->file_weight)
				continue;
			if (json_array_append_new(list, entry_json(cs, &cs->servers[j], r)) < 0) {
				json_decref(root);
				return NULL;
			}
		}
	}
	return root;
}

#define PATH_LEN (sizeof(((struct cfg *)0)->server_state_file) + 8)

/* The directory part of path into dir: "." for a bare name, "/" for
 * "/f.json". */
static void dir_of(const char *path, char *dir, size_t len)
{
	snprintf(dir, len, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, len, ".");
	else
		slash[slash == dir] = 0;
}

/* The file's directory, created 0755 when missing (StateDirectory= does it
 * under systemd; `ikelb run` by hand may be the first user). */
static int ensure_dir(const char *path)
{
	char dir[PATH_LEN];
	dir_of(path, dir, sizeof(dir));
	if (mkdir(dir, 0755) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The rename reaches the disk with the directory; best effort, the rename
 * is done either way. */
static void sync_dir(const char *path)
{
	char dir[PATH_LEN];
	dir_of(path, dir, sizeof(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

/* The file is either the old one or the new one, never half written, even
 * across a power cut: tmp file in the same directory (same file system),
 * fsync, rename, fsync of the directory. */
static int write_atomic(const char *path, const char *text)
{
	char tmp[PATH_LEN];
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fchmod(fd, 0644) < 0 ? -errno : write_all(fd, text, strlen(text));
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	sync_dir(path);
	return 0;
}

int sstate_save(const char *path, const struct cfg *cfg, const struct runtime *rt,
		const struct logger *log)
{
	if (!path[0])
		return 0;
	json_t *root = state_json(cfg, rt);
	char *text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
	json_decref(root);
	int rc = text ? ensure_dir(path) : -ENOMEM;
	if (rc == 0)
		rc = write_atomic(path, text);
	free(text);
	if (rc < 0)
		log_warn(log, "server-state: cannot write %s: %s; API-set states and weights "
			 "will not survive a restart", path, strerror(-rc));
	return rc;
}

/* ---- load ---- */

/* The parsed file, or NULL (logged) when there is nothing to use. */
static json_t *read_file(const char *path, const struct logger *log, int *rc)
{
	json_error_t err;
	FILE *f = fopen(path, "re");
	if (!f) {
		*rc = -errno;
		if (errno == ENOENT)
			log_info(log, "server-state: %s does not exist yet; starting from the "
				 "configuration file", path);
		else
			log_warn(log, "server-state: cannot read %s: %s; ignored", path,
				 strerror(errno));
		return NULL;
	}
	json_t *root = json_loadf(f, 0, &err);
	fclose(f);
	if (!root) {
		*rc = -EINVAL;
		log_warn(log, "server-state: %s:%d: %s; ignored", path, err.line, err.text);
		return NULL;
	}
	json_int_t v = json_integer_value(json_object_get(root, "version"));
	if (!json_is_object(root) || v != SSTATE_VERSION ||
	    !json_is_array(json_object_get(root, "servers"))) {
		*rc = -EPROTO;
		log_warn(log, "server-state: %s: not a version %d server-state file; ignored",
			 path, SSTATE_VERSION);
		json_decref(root);
		return NULL;
	}
	return root;
}

/* One saved entry, checked. */
struct saved {
	const char *service, *server, *address;
	enum cfg_server_state admin, file_admin;
	uint32_t weight, file_weight;
};

static int admin_parse(const char *s, enum cfg_server_state *out)
{
	for (int i = CFG_SRV_ACTIVE; s && i <= CFG_SRV_DISABLED; i++)
		if (strcmp(s, cfg_server_state_name((enum cfg_server_state)i)) == 0) {
			*out = (enum cfg_server_state)i;
			return 0;
		}
	return -EINVAL;
}

static int saved_parse(json_t *e, struct saved *s)
{
	const char *a, *fa;
	json_int_t w, fw;
	if (json_unpack(e, "{s:s, s:s, s:s, s:s, s:I, s:s, s:I}", "service", &s->service, "server",
			&s->server, "address", &s->address, "admin", &a, "weight", &w,
			"file_admin", &fa, "file_weight", &fw) < 0 ||
	    admin_parse(a, &s->admin) < 0 || admin_parse(fa, &s->file_admin) < 0 || w < 0 ||
	    w > 65535 || fw < 0 || fw > 65535)
		return -EINVAL;
	s->weight = (uint32_t)w;
	s->file_weight = (uint32_t)fw;
	return 0;
}

/* The saved server in the running configuration: same service, same name,
 * same address (a name given to another machine is another server). */
static int saved_find(const struct cfg *cfg, const struct saved *s, int *svc, int *srv)
{
	struct ikelb_addr addr;
	if (ikelb_addr_parse(s->address, &addr) < 0)
		return -EINVAL;
	for (int i = 0; i < cfg->nservices; i++) {
		const struct cfg_service *cs = &cfg->services[i];
		if (strcmp(cs->name, s->service) != 0)
			continue;
		for (int j = 0; j < cs->nservers; j++)
			if (strcmp(cs->servers[j].name, s->server) == 0 &&
			    ikelb_addr_eq(&cs->servers[j].addr, &addr)) {
				*svc = i;
				*srv = j;
				return 0;
			}
	}
	return -ENOENT;
}

struct load_ctx {
	const char *path;
	const struct cfg *cfg;
	struct runtime *rt;
	const struct logger *log;
	uint64_t now_ms;
};

/* The weight override, unless the file changed the weight since the save. */
static int apply_weight(const struct load_ctx *x, const struct saved *s, int svc, int srv)
{
	uint32_t now_file = x->cfg->services[svc].servers[srv].weight;
	if (s->weight == s->file_weight)
		return 0;
	if (now_file != s->file_weight) {
		log_notice(x->log, "server-state: %s/%s weight %u from %s not applied: the file "
			   "changed it (%u -> %u), the file wins", s->service, s->server, s->weight,
			   x->path, s->file_weight, now_file);
		return 0;
	}
	if (rt_set_weight(x->rt, svc, srv, s->weight, x->now_ms) < 0)
		return -EIO;
	log_notice(x->log, "server-state: %s/%s weight %u kept from %s", s->service, s->server,
		   s->weight, x->path);
	return 1;
}

/* The admin override, by the same rule. */
static int apply_admin(const struct load_ctx *x, const struct saved *s, int svc, int srv)
{
	enum cfg_server_state now_file = x->cfg->services[svc].servers[srv].state;
	if (s->admin == s->file_admin)
		return 0;
	if (now_file != s->file_admin) {
		log_notice(x->log, "server-state: %s/%s %s from %s not applied: the file changed "
			   "it (%s -> %s), the file wins", s->service, s->server,
			   cfg_server_state_name(s->admin), x->path,
			   cfg_server_state_name(s->file_admin), cfg_server_state_name(now_file));
		return 0;
	}
	if (rt_set_admin(x->rt, svc, srv, s->admin, x->now_ms) < 0)
		return -EIO;
	log_notice(x->log, "server-state: %s/%s %s kept from %s", s->service, s->server,
		   cfg_server_state_name(s->admin), x->path);
	return 1;
}

static int apply_entry(const struct load_ctx *x, json_t *e, size_t idx)
{
	struct saved s;
	int svc, srv;
	if (saved_parse(e, &s) < 0) {
		log_warn(x->log, "server-state: %s: entry %zu is malformed; ignored", x->path, idx);
		return 0;
	}
	if (saved_find(x->cfg, &s, &svc, &srv) < 0) {
		log_notice(x->log, "server-state: %s/%s (%s) from %s is no longer configured; "
			   "ignored", s.service, s.server, s.address, x->path);
		return 0;
	}
	int w = apply_weight(x, &s, svc, srv), a = apply_admin(x, &s, svc, srv);
	return w < 0 || a < 0 ? -EIO : w + a;
}

int sstate_load(const char *path, const struct cfg *cfg, struct runtime *rt,
		const struct logger *log, uint64_t now_ms)
{
	if (!path[0])
		return 0;
	int rc = 0, n = 0;
	json_t *root = read_file(path, log, &rc);
	if (!root)
		return rc == -ENOENT ? 0 : rc;
	const struct load_ctx x = { path, cfg, rt, log, now_ms };
	json_t *list = json_object_get(root, "servers"), *e;
	size_t i;
	json_array_foreach(list, i, e) {
		int k = apply_entry(&x, e, i);
		if (k < 0)
			rc = k;
		else
			n += k;
	}
	json_decref(root);
	return rc < 0 ? rc : n;
}
