/* Internal to the configuration loader (config*.c): the parse context and
 * the typed getters over libyaml's document tree. Not for other modules. */
#ifndef IKELB_CONFIG_INT_H
#define IKELB_CONFIG_INT_H

#include <yaml.h>

#include "core/config.h"
#include "core/maglev.h"

/* Enough for any sane file; beyond this the output stops being useful. */
#define CFG_MAX_ERRORS 200
#define CFG_PATH_MAX 96

/* What parsed cleanly, so cross checks never pile follow-on errors onto a
 * value that was already reported. */
struct cfg_srv_state {
	bool name_ok, addr_ok, label_ok, esp_ok;
};

struct cfg_svc_state {
	yaml_node_t *node;
	bool name_ok, vip_ok, ports_ok, fwd_ok, mask_ok, tcp_ok;
	bool mask_given, maglev_given, servers_ok;
	struct cfg_srv_state *srv; /* one per parsed server */
};

struct cfg_ctx {
	const char *file;
	yaml_document_t *doc;
	struct cfg_errors *errs;
	int nerr; /* errors added by this load, including suppressed ones */
	bool engine_ok;
	struct cfg_svc_state svc[CFG_MAX_SERVICES];
};

/* Name tables indexed by enum value, NULL-terminated (config.c). */
extern const char *const cfg_engine_names[];
extern const char *const cfg_fwd_names[];
extern const char *const cfg_persist_names[];
extern const char *const cfg_sched_names[];
extern const char *const cfg_health_names[];
extern const char *const cfg_state_names[];

/* Error at a node's start mark (libyaml marks are 0-based; ours 1-based). */
void cfg_err(struct cfg_ctx *x, const yaml_node_t *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void cfg_err_mark(struct cfg_ctx *x, yaml_mark_t m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void cfg_err_raw(struct cfg_errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "path.key", or "key" at the top level. */
const char *cfg_path(char *buf, size_t len, const char *path, const char *key);
/* snprintf for message paths; a path that does not fit is cut, not an error. */
const char *cfg_pathf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "250ms", "5s", "1h": the largest unit that divides exactly. */
const char *cfg_fmt_ms(char *buf, size_t len, uint64_t ms);

yaml_node_t *cfg_node(struct cfg_ctx *x, int id);
/* Value node of KEY in mapping MAP, or NULL. */
yaml_node_t *cfg_get(struct cfg_ctx *x, yaml_node_t *map, const char *key);
/* Key node of KEY in mapping MAP (for marks), or NULL. */
yaml_node_t *cfg_get_key(struct cfg_ctx *x, yaml_node_t *map, const char *key);
int cfg_seq_len(const yaml_node_t *seq);
yaml_node_t *cfg_seq_item(struct cfg_ctx *x, yaml_node_t *seq, int i);
/* Null-like plain scalar: empty, "~", "null". */
bool cfg_is_null(const yaml_node_t *n);

/* Type checks: report and return false on mismatch. */
bool cfg_want_map(struct cfg_ctx *x, yaml_node_t *n, const char *what);
bool cfg_want_seq(struct cfg_ctx *x, yaml_node_t *n, const char *what);
const char *cfg_want_scalar(struct cfg_ctx *x, yaml_node_t *n, const char *what);

/* Report unknown and duplicate keys of MAP; VALID is NULL-terminated. */
void cfg_check_keys(struct cfg_ctx *x, yaml_node_t *map, const char *path,
		    const char *const *valid);

/* Getters over MAP[KEY]: return 1 when set, 0 when the key is absent,
 * -1 after reporting an error (the output is then untouched). */
int cfg_get_uint(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		 uint64_t min, uint64_t max, uint64_t *out);
int cfg_get_u64(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		uint64_t *out); /* decimal or 0x hex, full 64-bit range */
int cfg_get_duration(struct cfg_ctx *x, yaml_node_t *map, const char *path,
		     const char *key, uint64_t min_ms, uint64_t max_ms, uint64_t *out);
/* A duration, or a plain 0 meaning "off" (*ms = 0). Same returns. */
int cfg_get_duration_or_off(struct cfg_ctx *x, yaml_node_t *map, const char *path,
			    const char *key, uint64_t min_ms, uint64_t max_ms, uint32_t *ms);
int cfg_get_enum(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		 const char *const *names, int n, int *out);
int cfg_get_str(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		char *out, size_t len);
int cfg_get_name(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		 char *out); /* CFG_NAME_MAX, [A-Za-z0-9_.-] */
int cfg_get_addr(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		 struct ikelb_addr *out);
int cfg_get_hex(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		uint8_t **out, size_t *len);
/* Scalar-node forms of the above, for sequence items. */
int cfg_node_uint(struct cfg_ctx *x, yaml_node_t *n, const char *what, uint64_t min,
		  uint64_t max, uint64_t *out);
int cfg_node_addr(struct cfg_ctx *x, yaml_node_t *n, const char *what,
		  struct ikelb_addr *out);

/* Parsing into struct cfg (config_parse.c) and cross checks (config_validate.c). */
void cfg_parse_root(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c);
/* The `sync` mapping (config_sync.c). */
void cfg_parse_sync(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c);
/* config_socket.c: the `socket` mapping (socket engine tuning). */
void cfg_parse_socket(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c);
/* A list of ports (1..65535, no repeats) at PATH.KEY into out[*n]
 * (config_tcp.c). */
void cfg_port_list(struct cfg_ctx *x, yaml_node_t *seq, const char *path, const char *key,
		   uint16_t *out, int *n);
/* `tcp_ports` of a service and its cross checks (config_tcp.c). */
void cfg_parse_tcp_ports(struct cfg_ctx *x, yaml_node_t *m, const char *path,
			 struct cfg_service *s, struct cfg_svc_state *st);
void cfg_check_tcp(struct cfg_ctx *x, const struct cfg *c);
void cfg_validate(struct cfg_ctx *x, yaml_node_t *root, struct cfg *c);
/* A service's `admission` mapping and its cross check (config_admit.c). */
void cfg_parse_admission(struct cfg_ctx *x, yaml_node_t *svc, const char *path,
			 struct cfg_admission *a);
void cfg_check_admission(struct cfg_ctx *x, const struct cfg *c, const struct cfg_service *s,
			 yaml_node_t *svc, const char *path);

#endif
