/* Configuration loader: public entry points, error list, defaults, names
 * and durations. The YAML tree walk lives in config_parse.c (fields),
 * config_validate.c (cross checks) and config_yaml.c (typed getters). */
#include "core/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

/* A configuration is a few kilobytes (32 services of 1024 servers fit in
 * well under this); refusing larger files before parsing bounds the time a
 * SIGHUP can hold the daemon loop. Documented in docs/config.md. */
#define CFG_FILE_MAX (1u << 20)
/* The schema nests 5 levels; libyaml's scanner is quadratic in nesting
 * depth (40000 '[' take seconds), so deeper input is refused early. */
#define CFG_DEPTH_MAX 20

void cfg_err_raw(struct cfg_errors *e, const char *fmt, ...)
{
	if (e->n == e->cap) {
		int cap = e->cap ? e->cap * 2 : 16;
		struct cfg_error *v = realloc(e->v, (size_t)cap * sizeof(*v));
		if (!v)
			return; /* out of memory: drop the message, the load still fails */
		e->v = v;
		e->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->v[e->n].msg, sizeof(e->v[e->n].msg), fmt, ap);
	va_end(ap);
	e->v[e->n].line = e->v[e->n].col = 0;
	e->n++;
}

static void cfg_verr(struct cfg_ctx *x, yaml_mark_t m, const char *fmt, va_list ap)
{
	char msg[400];

	x->nerr++;
	if (x->nerr > CFG_MAX_ERRORS)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	int n0 = x->errs->n;
	cfg_err_raw(x->errs, "%s:%zu:%zu: %s%s", x->file, m.line + 1, m.column + 1, msg,
		    x->nerr == CFG_MAX_ERRORS ? " (further errors suppressed)" : "");
	if (x->errs->n > n0) {
		x->errs->v[n0].line = (int)m.line + 1;
		x->errs->v[n0].col = (int)m.column + 1;
	}
}

/* Stable insertion sort of this load's errors by position: parsing and the
 * cross checks run in separate passes, but a reader wants file order. */
static void cfg_sort_errors(struct cfg_errors *e, int from)
{
	for (int i = from + 1; i < e->n; i++) {
		struct cfg_error t = e->v[i];
		int j = i;
		while (j > from && (e->v[j - 1].line > t.line ||
				    (e->v[j - 1].line == t.line && e->v[j - 1].col > t.col))) {
			e->v[j] = e->v[j - 1];
			j--;
		}
		e->v[j] = t;
	}
}

void cfg_err_mark(struct cfg_ctx *x, yaml_mark_t m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cfg_verr(x, m, fmt, ap);
	va_end(ap);
}

void cfg_err(struct cfg_ctx *x, const yaml_node_t *at, const char *fmt, ...)
{
	yaml_mark_t m = { 0, 0, 0 };
	va_list ap;

	if (at)
		m = at->start_mark;
	va_start(ap, fmt);
	cfg_verr(x, m, fmt, ap);
	va_end(ap);
}

void cfg_errors_free(struct cfg_errors *e)
{
	if (!e)
		return;
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}

bool cfg_api_is_unix(const char *listen)
{
	return !strncmp(listen, "unix:", 5);
}

bool cfg_api_loopback(const char *listen)
{
	static const struct ikelb_addr v6_lo = { .b = { [15] = 1 } };
	const char *colon = strrchr(listen, ':');
	char host[64];
	struct ikelb_addr a;

	if (cfg_api_is_unix(listen))
		return true;
	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return false;
	/* An address, not a name that merely starts with "127." */
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	if (!strcmp(host, "localhost"))
		return true;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = 0;
		return ikelb_addr_parse(host + 1, &a) == 0 && ikelb_addr_eq(&a, &v6_lo);
	}
	return ikelb_addr_parse(host, &a) == 0 && ikelb_addr_is_v4(&a) &&
	       (ntohl(ikelb_addr_v4(&a)) >> 24) == 127;
}

void cfg_defaults(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->engine = CFG_ENGINE_BPF;
	snprintf(c->api_listen, sizeof(c->api_listen), "unix:/run/ikelb/api.sock");
	c->api_idle_timeout_ms = 10000;
	snprintf(c->bpf_pin_dir, sizeof(c->bpf_pin_dir), "/sys/fs/bpf/ikelb");
	snprintf(c->server_state_file, sizeof(c->server_state_file),
		 "/var/lib/ikelb/server-state.json");
	c->max_clients = 1048576;
	c->max_flows = 1048576;
	c->max_halfopen = 65536;
	c->sock_workers = 0; /* auto */
	c->sock_coalesce_us = CFG_SOCK_COALESCE_DEFAULT_US;
}

void cfg_service_defaults(struct cfg_service *s)
{
	memset(s, 0, sizeof(*s));
	s->ports[0] = 500;
	s->ports[1] = 4500;
	s->nports = 2;
	s->forwarding = CFG_FWD_DNAT;
	s->persistence.mode = CFG_PERSIST_SOURCE_IP;
	s->persistence.timeout_s = 3600;
	s->persistence.netmask = 32;
	s->persistence.netmask6 = 128;
	s->persistence.flow_timeout_s = 300;
	s->scheduler = CFG_SCHED_MAGLEV;
	s->maglev_size = MAGLEV_DEFAULT_SIZE;
	s->ike_port = 500;
	s->init_down = true;
	s->health.type = CFG_HEALTH_IKE;
	s->health.interval_ms = 5000;
	s->health.timeout_ms = 2000;
	s->health.rise = 2;
	s->health.fall = 3;
}

void cfg_server_defaults(struct cfg_server *s)
{
	memset(s, 0, sizeof(*s));
	s->weight = 100;
	s->state = CFG_SRV_ACTIVE;
	s->init_down = true;
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (int i = 0; c->services && i < c->nservices; i++) {
		struct cfg_service *s = &c->services[i];
		free(s->servers);
		free(s->health.send);
		free(s->health.expect);
	}
	free(c->services);
	c->services = NULL;
	c->nservices = 0;
}

int cfg_parse_duration_ms(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t v = 0;
	const char *p = s;

	if (!s || !isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mult)
			return -1;
		*ms = v * units[i].mult;
		return 0;
	}
	return -1;
}

/* Name tables, indexed by the enum values; config_parse.c matches against them. */
const char *const cfg_engine_names[] = { "bpf", "socket", NULL };
const char *const cfg_fwd_names[] = { "dnat", "dsr", "fullnat", NULL };
const char *const cfg_persist_names[] = { "source-ip", "ike", NULL };
const char *const cfg_sched_names[] = { "maglev", "rr", "wrr", "lc", "wlc", "sh", "fo", NULL };
const char *const cfg_health_names[] = { "ike", "udp", "none", NULL };
const char *const cfg_state_names[] = { "active", "draining", "disabled", NULL };

static const char *cfg_name_of(const char *const *names, int n, int v)
{
	return v >= 0 && v < n ? names[v] : "?";
}

const char *cfg_engine_name(enum cfg_engine e)
{
	return cfg_name_of(cfg_engine_names, 2, (int)e);
}

const char *cfg_forwarding_name(enum cfg_forwarding f)
{
	return cfg_name_of(cfg_fwd_names, 3, (int)f);
}

const char *cfg_sched_name(enum cfg_sched s)
{
	return cfg_name_of(cfg_sched_names, 7, (int)s);
}

const char *cfg_persist_name(enum cfg_persist_mode m)
{
	return cfg_name_of(cfg_persist_names, 2, (int)m);
}

bool cfg_uses_persist_table(const struct cfg *c)
{
	for (int i = 0; i < c->nservices; i++)
		if (c->services[i].persistence.mode == CFG_PERSIST_SOURCE_IP)
			return true;
	return false;
}

bool cfg_uses_tcp_table(const struct cfg *c)
{
	for (int i = 0; i < c->nservices; i++)
		if (c->services[i].ntcp_ports > 0)
			return true;
	return false;
}

const char *cfg_health_name(enum cfg_health_type t)
{
	return cfg_name_of(cfg_health_names, 3, (int)t);
}

const char *cfg_server_state_name(enum cfg_server_state s)
{
	return cfg_name_of(cfg_state_names, 3, (int)s);
}

/* Reader errors (bad UTF-8, control characters) carry a byte offset only. */
static yaml_mark_t cfg_offset_mark(const char *buf, size_t len, size_t off)
{
	yaml_mark_t m = { 0, 0, 0 };
	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			m.line++;
			m.column = 0;
		} else {
			m.column++;
		}
	}
	m.index = off;
	return m;
}

static void cfg_syntax_error(struct cfg_ctx *x, yaml_parser_t *p, const char *buf, size_t len)
{
	const char *problem = p->problem ? p->problem : "unknown problem";

	if (p->error == YAML_MEMORY_ERROR) {
		cfg_err_mark(x, p->problem_mark, "out of memory while parsing YAML");
	} else if (p->error == YAML_READER_ERROR) {
		cfg_err_mark(x, cfg_offset_mark(buf, len, p->problem_offset),
			     "YAML syntax error: %s", problem);
	} else if (p->context) {
		cfg_err_mark(x, p->problem_mark, "YAML syntax error: %s (%s at line %zu, column %zu)",
			     problem, p->context, p->context_mark.line + 1,
			     p->context_mark.column + 1);
	} else {
		cfg_err_mark(x, p->problem_mark, "YAML syntax error: %s", problem);
	}
}

/* Reject a second document rather than silently ignoring half the file. */
static void cfg_check_single_doc(struct cfg_ctx *x, yaml_parser_t *p, const char *buf,
				 size_t len)
{
	yaml_document_t more;

	if (!yaml_parser_load(p, &more)) {
		cfg_syntax_error(x, p, buf, len);
		return;
	}
	if (yaml_document_get_root_node(&more))
		cfg_err_mark(x, more.start_mark,
			     "a second YAML document ('---') is not allowed; put everything in one");
	yaml_document_delete(&more);
}

/* Event pass before building the document: stops at the first syntax error
 * or at excessive nesting before libyaml spends quadratic time on it. */
static int cfg_prescan(struct cfg_ctx *x, const char *yaml, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0, rc = 0;

	if (!yaml_parser_initialize(&p))
		return 0; /* the real load reports it */
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			cfg_syntax_error(x, &p, yaml, len);
			rc = -1;
			break;
		}
		yaml_event_type_t t = ev.type;
		if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT)
			depth++;
		else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT)
			depth--;
		if (depth > CFG_DEPTH_MAX) {
			cfg_err_mark(x, ev.start_mark, "nesting deeper than %d levels (the "
				     "configuration needs 5)", CFG_DEPTH_MAX);
			rc = -1;
		}
		yaml_event_delete(&ev);
		if (rc || t == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&p);
	return rc;
}

static void cfg_load_doc(struct cfg_ctx *x, yaml_document_t *doc, struct cfg *out)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	yaml_mark_t top = { 0, 0, 0 };

	x->doc = doc;
	if (!root || cfg_is_null(root)) {
		cfg_err_mark(x, top, "configuration is empty (expected a mapping with at least "
				     "'services')");
		return;
	}
	cfg_parse_root(x, root, out);
	cfg_validate(x, root, out);
	for (int i = 0; i < CFG_MAX_SERVICES; i++)
		free(x->svc[i].srv);
}

int cfg_load_string(const char *name, const char *yaml, size_t len, struct cfg *out,
		    struct cfg_errors *errs)
{
	struct cfg_ctx x = { .file = name ? name : "<string>", .errs = errs };
	int first = errs->n;
	yaml_parser_t p;
	yaml_document_t doc;

	cfg_defaults(out);
	if (cfg_prescan(&x, yaml, len) < 0) {
		cfg_sort_errors(errs, first);
		return -1;
	}
	if (!yaml_parser_initialize(&p)) {
		cfg_err_raw(errs, "%s: cannot initialise the YAML parser", x.file);
		return -1;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&p, &doc)) {
		cfg_syntax_error(&x, &p, yaml, len);
	} else {
		cfg_load_doc(&x, &doc, out);
		if (yaml_document_get_root_node(&doc))
			cfg_check_single_doc(&x, &p, yaml, len);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&p);
	cfg_sort_errors(errs, first);
	return x.nerr ? -1 : 0;
}

static char *cfg_read_file(const char *path, size_t *len, struct cfg_errors *errs)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t n = 0;

	if (fd < 0) {
		cfg_err_raw(errs, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		cfg_err_raw(errs, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > (off_t)CFG_FILE_MAX) {
		cfg_err_raw(errs, "%s: %lld bytes is larger than the %u-byte (1 MiB) limit on a "
			    "configuration file", path, (long long)st.st_size, CFG_FILE_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		cfg_err_raw(errs, "%s: out of memory", path);
		goto out;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			cfg_err_raw(errs, "%s: read failed: %s", path,
				    r < 0 ? strerror(errno) : "file shrank");
			free(buf);
			buf = NULL;
			goto out;
		}
		n += (size_t)r;
	}
	buf[n] = 0;
	*len = n;
out:
	close(fd);
	return buf;
}

int cfg_load_file(const char *path, struct cfg *out, struct cfg_errors *errs)
{
	size_t len = 0;
	char *buf;
	int rc;

	cfg_defaults(out);
	buf = cfg_read_file(path, &len, errs);
	if (!buf)
		return -1;
	rc = cfg_load_string(path, buf, len, out, errs);
	free(buf);
	return rc;
}
