/* Typed access to libyaml's document tree for the configuration loader.
 * Every getter reports its own errors at the offending node, so callers
 * only decide what a missing key means. */
#include "core/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_HEX_MAX 1024 /* bytes; a health probe payload, not a file */
#define CFG_KEYS_MAX 32  /* longest valid-key list of any mapping */

const char *cfg_pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return buf;
}

const char *cfg_path(char *buf, size_t len, const char *path, const char *key)
{
	if (path && *path)
		return cfg_pathf(buf, len, "%s.%s", path, key);
	return cfg_pathf(buf, len, "%s", key);
}

yaml_node_t *cfg_node(struct cfg_ctx *x, int id)
{
	return yaml_document_get_node(x->doc, id);
}

static const char *cfg_key_text(struct cfg_ctx *x, const yaml_node_pair_t *p)
{
	yaml_node_t *k = cfg_node(x, p->key);
	return k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : NULL;
}

static yaml_node_pair_t *cfg_find_pair(struct cfg_ctx *x, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		const char *k = cfg_key_text(x, p);
		if (k && strcmp(k, key) == 0)
			return p;
	}
	return NULL;
}

yaml_node_t *cfg_get(struct cfg_ctx *x, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p = cfg_find_pair(x, map, key);
	return p ? cfg_node(x, p->value) : NULL;
}

yaml_node_t *cfg_get_key(struct cfg_ctx *x, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p = cfg_find_pair(x, map, key);
	return p ? cfg_node(x, p->key) : NULL;
}

int cfg_seq_len(const yaml_node_t *seq)
{
	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return 0;
	return (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *cfg_seq_item(struct cfg_ctx *x, yaml_node_t *seq, int i)
{
	return cfg_node(x, seq->data.sequence.items.start[i]);
}

bool cfg_is_null(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static const char *cfg_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a scalar";
	}
}

bool cfg_want_map(struct cfg_ctx *x, yaml_node_t *n, const char *what)
{
	if (n->type == YAML_MAPPING_NODE)
		return true;
	if (cfg_is_null(n))
		cfg_err(x, n, "%s: missing value (expected a mapping)", what);
	else
		cfg_err(x, n, "%s: expected a mapping, got %s", what, cfg_kind(n));
	return false;
}

bool cfg_want_seq(struct cfg_ctx *x, yaml_node_t *n, const char *what)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return true;
	if (cfg_is_null(n))
		cfg_err(x, n, "%s: missing value (expected a list)", what);
	else
		cfg_err(x, n, "%s: expected a list, got %s", what, cfg_kind(n));
	return false;
}

const char *cfg_want_scalar(struct cfg_ctx *x, yaml_node_t *n, const char *what)
{
	if (n->type != YAML_SCALAR_NODE) {
		cfg_err(x, n, "%s: expected a single value, got %s", what, cfg_kind(n));
		return NULL;
	}
	if (cfg_is_null(n) || !n->data.scalar.value[0]) {
		cfg_err(x, n, "%s: missing value", what);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

static void cfg_join(char *buf, size_t len, const char *const *names)
{
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; names[i] && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", names[i]);
}

/* Index of S in NAMES, or -1. */
static int cfg_index(const char *s, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void cfg_check_keys(struct cfg_ctx *x, yaml_node_t *map, const char *path,
		    const char *const *valid)
{
	char list[256];
	const char *sep = path && *path ? ": " : "";
	/* First occurrence per valid key: one pass over the mapping, so a
	 * file of many thousand keys costs linear time, not a rescan per key. */
	const yaml_node_t *first[CFG_KEYS_MAX] = { 0 };

	if (!path)
		path = "";
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = cfg_node(x, p->key);
		const char *k = cfg_key_text(x, p);
		if (!k) {
			cfg_err(x, kn, "%s%skeys must be plain names, got %s", path, sep,
				cfg_kind(kn));
			continue;
		}
		int i = cfg_index(k, valid);
		if (i < 0) {
			cfg_join(list, sizeof(list), valid);
			cfg_err(x, kn, "%s%sunknown key '%s' (valid keys: %s)", path, sep, k, list);
			continue;
		}
		const yaml_node_t *f = i < CFG_KEYS_MAX ? first[i] : NULL;
		if (i >= CFG_KEYS_MAX) /* a longer list than foreseen: slow but right */
			f = cfg_node(x, cfg_find_pair(x, map, k)->key);
		if (f && f != kn)
			cfg_err(x, kn, "%s%sduplicate key '%s' (first given at line %zu)", path,
				sep, k, f->start_mark.line + 1);
		else if (i < CFG_KEYS_MAX)
			first[i] = kn;
	}
}

int cfg_parse_u64(const char *s, uint64_t *out)
{
	int base = 10;
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!isxdigit((unsigned char)*s) || (base == 10 && !isdigit((unsigned char)*s)))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (*end)
		return -1;
	if (errno == ERANGE)
		return -2;
	*out = v;
	return 0;
}

int cfg_node_uint(struct cfg_ctx *x, yaml_node_t *n, const char *what, uint64_t min,
		  uint64_t max, uint64_t *out)
{
	const char *s = cfg_want_scalar(x, n, what);
	uint64_t v = 0;

	if (!s)
		return -1;
	int r = cfg_parse_u64(s, &v);
	bool neg = s[0] == '-' && isdigit((unsigned char)s[1]);
	if (r == -1 && !neg) {
		cfg_err(x, n, "%s: '%s' is not an integer", what, s);
		return -1;
	}
	if (neg || r == -2 || v < min || v > max) {
		cfg_err(x, n, "%s: %s is out of range %llu..%llu", what, s,
			(unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 1;
}

int cfg_get_uint(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		 uint64_t min, uint64_t max, uint64_t *out)
{
	char what[CFG_PATH_MAX];
	yaml_node_t *n = cfg_get(x, map, key);
	if (!n)
		return 0;
	return cfg_node_uint(x, n, cfg_path(what, sizeof(what), path, key), min, max, out);
}

int cfg_get_u64(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		uint64_t *out)
{
	return cfg_get_uint(x, map, path, key, 0, UINT64_MAX, out);
}

/* Largest unit that divides exactly, so limits read like the input does. */
const char *cfg_fmt_ms(char *buf, size_t len, uint64_t ms)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} u[] = { { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 } };
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		if (ms && ms % u[i].mult == 0) {
			snprintf(buf, len, "%llu%s", (unsigned long long)(ms / u[i].mult), u[i].unit);
			return buf;
		}
	snprintf(buf, len, "%llums", (unsigned long long)ms);
	return buf;
}

int cfg_get_duration(struct cfg_ctx *x, yaml_node_t *map, const char *path,
		     const char *key, uint64_t min_ms, uint64_t max_ms, uint64_t *out)
{
	char what[CFG_PATH_MAX], a[32], b[32];
	yaml_node_t *n = cfg_get(x, map, key);
	const char *s;
	uint64_t ms;

	if (!n)
		return 0;
	cfg_path(what, sizeof(what), path, key);
	if (!(s = cfg_want_scalar(x, n, what)))
		return -1;
	if (cfg_parse_duration_ms(s, &ms) < 0) {
		cfg_err(x, n, "%s: '%s' is not a duration (use e.g. 250ms, 90s, 5m, 1h, 1d)",
			what, s);
		return -1;
	}
	if (ms < min_ms || ms > max_ms) {
		cfg_err(x, n, "%s: %s is out of range %s..%s", what, s,
			cfg_fmt_ms(a, sizeof(a), min_ms), cfg_fmt_ms(b, sizeof(b), max_ms));
		return -1;
	}
	*out = ms;
	return 1;
}

int cfg_get_enum(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		 const char *const *names, int n, int *out)
{
	char what[CFG_PATH_MAX], list[128];
	yaml_node_t *node = cfg_get(x, map, key);
	const char *s;

	if (!node)
		return 0;
	cfg_path(what, sizeof(what), path, key);
	if (!(s = cfg_want_scalar(x, node, what)))
		return -1;
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 1;
		}
	cfg_join(list, sizeof(list), names);
	cfg_err(x, node, "%s: '%s' is not one of: %s", what, s, list);
	return -1;
}

int cfg_get_str(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		char *out, size_t len)
{
	char what[CFG_PATH_MAX];
	yaml_node_t *n = cfg_get(x, map, key);
	const char *s;

	if (!n)
		return 0;
	cfg_path(what, sizeof(what), path, key);
	if (!(s = cfg_want_scalar(x, n, what)))
		return -1;
	if (strlen(s) >= len) {
		cfg_err(x, n, "%s: longer than %zu characters", what, len - 1);
		return -1;
	}
	memcpy(out, s, strlen(s) + 1);
	return 1;
}

int cfg_get_name(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		 char *out)
{
	char what[CFG_PATH_MAX];
	yaml_node_t *n = cfg_get(x, map, key);
	const char *s;

	if (!n)
		return 0;
	cfg_path(what, sizeof(what), path, key);
	if (!(s = cfg_want_scalar(x, n, what)))
		return -1;
	if (strlen(s) >= CFG_NAME_MAX) {
		cfg_err(x, n, "%s: '%.20s...' is longer than %d characters", what, s,
			CFG_NAME_MAX - 1);
		return -1;
	}
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-') {
			cfg_err(x, n, "%s: '%s' may contain only letters, digits, '_', '.' and '-'",
				what, s);
			return -1;
		}
	memcpy(out, s, strlen(s) + 1);
	return 1;
}

int cfg_node_addr(struct cfg_ctx *x, yaml_node_t *n, const char *what,
		  struct ikelb_addr *out)
{
	const char *s = cfg_want_scalar(x, n, what);
	if (!s)
		return -1;
	if (ikelb_addr_parse(s, out) < 0) {
		cfg_err(x, n, "%s: '%s' is not an IPv4 or IPv6 address", what, s);
		return -1;
	}
	return 1;
}

int cfg_get_addr(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		 struct ikelb_addr *out)
{
	char what[CFG_PATH_MAX];
	yaml_node_t *n = cfg_get(x, map, key);
	if (!n)
		return 0;
	return cfg_node_addr(x, n, cfg_path(what, sizeof(what), path, key), out);
}

static int cfg_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int cfg_get_hex(struct cfg_ctx *x, yaml_node_t *map, const char *path, const char *key,
		uint8_t **out, size_t *len)
{
	char what[CFG_PATH_MAX];
	yaml_node_t *n = cfg_get(x, map, key);
	const char *s;

	if (!n)
		return 0;
	cfg_path(what, sizeof(what), path, key);
	if (!(s = cfg_want_scalar(x, n, what)))
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	size_t digits = strlen(s);
	bool ok = digits > 0 && digits % 2 == 0 && digits / 2 <= CFG_HEX_MAX;
	for (size_t i = 0; ok && i < digits; i++)
		ok = cfg_hexval(s[i]) >= 0;
	if (!ok) {
		cfg_err(x, n, "%s: not a hex byte string of 1..%d bytes (e.g. \"0x0102ff\")", what,
			CFG_HEX_MAX);
		return -1;
	}
	uint8_t *b = malloc(digits / 2);
	if (!b) {
		cfg_err(x, n, "%s: out of memory", what);
		return -1;
	}
	for (size_t i = 0; i < digits / 2; i++)
		b[i] = (uint8_t)(cfg_hexval(s[2 * i]) << 4 | cfg_hexval(s[2 * i + 1]));
	free(*out);
	*out = b;
	*len = digits / 2;
	return 1;
}

int cfg_get_duration_or_off(struct cfg_ctx *x, yaml_node_t *map, const char *path,
			    const char *key, uint64_t min_ms, uint64_t max_ms, uint32_t *ms)
{
	uint64_t v;
	yaml_node_t *n = cfg_get(x, map, key);

	if (n && n->type == YAML_SCALAR_NODE && !strcmp((const char *)n->data.scalar.value, "0")) {
		*ms = 0;
		return 1;
	}
	int rc = cfg_get_duration(x, map, path, key, min_ms, max_ms, &v);
	if (rc > 0)
		*ms = (uint32_t)v;
	return rc;
}
