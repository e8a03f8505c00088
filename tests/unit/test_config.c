/* Configuration loader: the issue's example and the shipped examples parse
 * to exact values, defaults apply, durations parse, and every broken
 * configuration yields its one precise "file:line:col: message". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/maglev.h"
#include "config_bad_cases.h"

#define ISSUE_EXAMPLE                                                                  \
	"engine: bpf\n"                                                                \
	"interfaces: [eth0]\n"                                                         \
	"api: { listen: \"unix:/run/ikelb/api.sock\" }\n"                              \
	"services:\n"                                                                  \
	"  - name: aovpn\n"                                                            \
	"    vip: 203.0.113.10\n"                                                      \
	"    ports: [500, 4500]\n"                                                     \
	"    forwarding: dnat\n"                                                       \
	"    persistence: { mode: source-ip, timeout: 1h, netmask: 32 }\n"             \
	"    scheduler: maglev\n"                                                      \
	"    health: { type: ike, interval: 5s, timeout: 2s, rise: 2, fall: 3 }\n"     \
	"    servers:\n"                                                               \
	"      - { name: vpn1, address: 198.19.0.11, weight: 100 }\n"                  \
	"      - { name: vpn2, address: 198.19.0.12, weight: 100, spi_label: \"0x02\",\n"          \
	"          vici: \"tcp://198.19.0.12:4502\" }\n"

/* Repo-relative path: $IKELB_SRCDIR, else the root this file was compiled
 * from (make builds from the root, so __FILE__ is "tests/unit/..."). */
static const char *src_path(char *buf, size_t len, const char *rel)
{
	const char *root = getenv("IKELB_SRCDIR");
	const char *me = __FILE__;
	const char *tail = strstr(me, "tests/unit/test_config.c");

	if (root && *root)
		snprintf(buf, len, "%s/%s", root, rel);
	else
		snprintf(buf, len, "%.*s%s", (int)(tail ? tail - me : 0), me, rel);
	return buf;
}

static int load(const char *yaml, struct cfg *c, struct cfg_errors *e)
{
	memset(e, 0, sizeof(*e));
	return cfg_load_string("t.yaml", yaml, strlen(yaml), c, e);
}

static void dump_errors(const struct cfg_errors *e)
{
	for (int i = 0; i < e->n; i++)
		print_message("  error: %s\n", e->v[i].msg);
}

static void addr_is(const struct ikelb_addr *a, const char *want)
{
	char buf[IKELB_ADDR_STRLEN];
	assert_string_equal(ikelb_addr_str(a, buf, sizeof(buf)), want);
}

static void issue_example_exact(void **state)
{
	(void)state;
	struct cfg c;
	struct cfg_errors e;
	int rc = load(ISSUE_EXAMPLE, &c, &e);
	dump_errors(&e);
	assert_int_equal(rc, 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(c.engine, CFG_ENGINE_BPF);
	assert_int_equal(c.ninterfaces, 1);
	assert_string_equal(c.interfaces[0], "eth0");
	assert_string_equal(c.api_listen, "unix:/run/ikelb/api.sock");
	assert_int_equal(c.nservices, 1);
	const struct cfg_service *s = &c.services[0];
	assert_string_equal(s->name, "aovpn");
	addr_is(&s->vip, "203.0.113.10");
	assert_int_equal(s->nports, 2);
	assert_int_equal(s->ports[0], 500);
	assert_int_equal(s->ports[1], 4500);
	assert_int_equal(s->forwarding, CFG_FWD_DNAT);
	assert_int_equal(s->persistence.mode, CFG_PERSIST_SOURCE_IP);
	assert_int_equal(s->persistence.timeout_s, 3600);
	assert_int_equal(s->persistence.netmask, 32);
	assert_int_equal(s->scheduler, CFG_SCHED_MAGLEV);
	assert_int_equal(s->health.type, CFG_HEALTH_IKE);
	assert_int_equal(s->health.interval_ms, 5000);
	assert_int_equal(s->health.timeout_ms, 2000);
	assert_int_equal(s->health.rise, 2);
	assert_int_equal(s->health.fall, 3);
	assert_int_equal(s->line, 5);
	assert_int_equal(s->nservers, 2);
	assert_string_equal(s->servers[0].name, "vpn1");
	addr_is(&s->servers[0].addr, "198.19.0.11");
	assert_int_equal(s->servers[0].weight, 100);
	assert_false(s->servers[0].has_spi_label);
	assert_string_equal(s->servers[0].vici, "");
	assert_string_equal(s->servers[1].vici, "tcp://198.19.0.12:4502");
	assert_int_equal(s->servers[0].line, 13);
	assert_string_equal(s->servers[1].name, "vpn2");
	addr_is(&s->servers[1].addr, "198.19.0.12");
	/* A one-byte label without spi_mask goes into the top byte. */
	assert_true(s->servers[1].has_spi_label);
	assert_true(s->servers[1].spi_label == 0x0200000000000000ull);
	assert_true(s->spi_mask == 0xff00000000000000ull);
	cfg_free(&c);
	assert_null(c.services);
	cfg_errors_free(&e);
}

static void defaults_applied(void **state)
{
	(void)state;
	struct cfg c;
	struct cfg_errors e;
	int rc = load("interfaces: [eth0]\n"
		      "services:\n"
		      "  - { name: s, vip: \"2001:db8::10\", servers: [{ name: a, address: \"2001:db8::1\" }] }\n",
		      &c, &e);
	dump_errors(&e);
	assert_int_equal(rc, 0);
	assert_int_equal(c.engine, CFG_ENGINE_BPF);
	assert_string_equal(c.api_listen, "unix:/run/ikelb/api.sock");
	assert_string_equal(c.bpf_pin_dir, "/sys/fs/bpf/ikelb");
	assert_string_equal(c.server_state_file, "/var/lib/ikelb/server-state.json");
	assert_true(c.maglev_seed == 0);
	assert_int_equal(c.max_clients, 1048576);
	assert_int_equal(c.max_flows, 1048576);
	assert_int_equal(c.max_halfopen, 65536);
	assert_int_equal(c.sock_workers, 0); /* auto */
	assert_int_equal(c.sock_coalesce_us, CFG_SOCK_COALESCE_DEFAULT_US);
	const struct cfg_service *s = &c.services[0];
	addr_is(&s->vip, "2001:db8::10");
	assert_int_equal(s->nports, 2);
	assert_int_equal(s->ports[0], 500);
	assert_int_equal(s->ports[1], 4500);
	assert_int_equal(s->forwarding, CFG_FWD_DNAT);
	assert_int_equal(s->persistence.mode, CFG_PERSIST_SOURCE_IP);
	assert_int_equal(s->persistence.timeout_s, 3600);
	assert_int_equal(s->persistence.netmask, 32);
	assert_int_equal(s->persistence.netmask6, 128);
	assert_int_equal(s->persistence.flow_timeout_s, 300);
	assert_int_equal(s->scheduler, CFG_SCHED_MAGLEV);
	assert_int_equal(s->maglev_size, 65537);
	assert_true(s->spi_mask == 0);
	assert_int_equal(s->nsnat_pool, 0);
	assert_int_equal(s->health.type, CFG_HEALTH_IKE);
	assert_int_equal(s->health.interval_ms, 5000);
	assert_int_equal(s->health.timeout_ms, 2000);
	assert_int_equal(s->health.rise, 2);
	assert_int_equal(s->health.fall, 3);
	assert_int_equal(s->health.port, 0);
	assert_null(s->health.send);
	assert_int_equal(s->servers[0].weight, 100);
	assert_int_equal(s->servers[0].state, CFG_SRV_ACTIVE);
	assert_false(s->servers[0].has_esp_range);
	cfg_free(&c);
	cfg_errors_free(&e);
}

static void every_field_set(void **state)
{
	(void)state;
	struct cfg c;
	struct cfg_errors e;
	int rc = load("engine: socket\n"
		      "api: { listen: \"[::1]:9480\" }\n"
		      "bpf: { pin_dir: /sys/fs/bpf/lb2 }\n"
		      "maglev_seed: 0xffffffffffffffff\n"
		      "limits: { max_clients: 1000, max_flows: 2000, max_halfopen: 300 }\n"
		      "socket: { workers: 2, coalesce_usecs: 0 }\n"
		      "server_state_file: \"\"\n"
		      "services:\n"
		      "  - name: u.v-w_1\n"
		      "    vip: 198.51.100.10\n"
		      "    ports: [4500]\n"
		      "    forwarding: fullnat\n"
		      "    snat_pool: [198.51.100.200, 198.51.100.201]\n"
		      "    persistence: { mode: ike, timeout: 1d, netmask: 24, netmask6: 64, flow_timeout: 90 }\n"
		      "    scheduler: wlc\n"
		      "    maglev_size: 101\n"
		      "    spi_mask: 0x00ff000000000000\n"
		      "    health: { type: udp, interval: 250ms, timeout: 100ms, rise: 1, fall: 100,\n"
		      "              port: 4501, send: \"0xDEad01\", expect: \"02\" }\n"
		      "    servers:\n"
		      "      - { name: x, address: 198.51.100.1, weight: 0, state: disabled,\n"
		      "          spi_label: 0x0001000000000000, esp_spi_min: 256, esp_spi_max: 0x1ff }\n",
		      &c, &e);
	dump_errors(&e);
	assert_int_equal(rc, 0);
	assert_int_equal(c.engine, CFG_ENGINE_SOCKET);
	assert_int_equal(c.ninterfaces, 0);
	assert_string_equal(c.api_listen, "[::1]:9480");
	assert_int_equal(c.api_idle_timeout_ms, 10000); /* loopback TCP: no token needed */
	assert_string_equal(c.api_token_file, "");
	assert_string_equal(c.bpf_pin_dir, "/sys/fs/bpf/lb2");
	assert_string_equal(c.server_state_file, ""); /* off */
	assert_true(c.maglev_seed == UINT64_MAX);
	assert_int_equal(c.max_clients, 1000);
	assert_int_equal(c.max_flows, 2000);
	assert_int_equal(c.max_halfopen, 300);
	assert_int_equal(c.sock_workers, 2);
	assert_int_equal(c.sock_coalesce_us, 0); /* moderation off */
	const struct cfg_service *s = &c.services[0];
	assert_string_equal(s->name, "u.v-w_1");
	assert_int_equal(s->nports, 1);
	assert_int_equal(s->ports[0], 4500);
	assert_int_equal(s->forwarding, CFG_FWD_FULLNAT);
	assert_int_equal(s->nsnat_pool, 2);
	addr_is(&s->snat_pool[1], "198.51.100.201");
	assert_int_equal(s->persistence.mode, CFG_PERSIST_IKE);
	assert_int_equal(s->persistence.timeout_s, 86400);
	assert_int_equal(s->persistence.netmask, 24);
	assert_int_equal(s->persistence.netmask6, 64);
	assert_int_equal(s->persistence.flow_timeout_s, 90);
	assert_int_equal(s->scheduler, CFG_SCHED_WLC);
	assert_int_equal(s->maglev_size, 101);
	/* An explicit mask takes the label as the full 64-bit value. */
	assert_true(s->spi_mask == 0x00ff000000000000ull);
	assert_true(s->servers[0].spi_label == 0x0001000000000000ull);
	assert_int_equal(s->health.type, CFG_HEALTH_UDP);
	assert_int_equal(s->health.interval_ms, 250);
	assert_int_equal(s->health.timeout_ms, 100);
	assert_int_equal(s->health.rise, 1);
	assert_int_equal(s->health.fall, 100);
	assert_int_equal(s->health.port, 4501);
	assert_int_equal(s->health.send_len, 3);
	assert_memory_equal(s->health.send, "\xde\xad\x01", 3);
	assert_int_equal(s->health.expect_len, 1);
	assert_int_equal(s->health.expect[0], 2);
	assert_int_equal(s->servers[0].weight, 0);
	assert_int_equal(s->servers[0].state, CFG_SRV_DISABLED);
	assert_true(s->servers[0].has_esp_range);
	assert_int_equal(s->servers[0].esp_spi_min, 256);
	assert_int_equal(s->servers[0].esp_spi_max, 511);
	cfg_free(&c);
	cfg_errors_free(&e);
}

static void durations_table(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int rc;
		uint64_t ms;
	} t[] = {
		{ "250ms", 0, 250 }, { "90s", 0, 90000 }, { "5m", 0, 300000 },
		{ "1h", 0, 3600000 }, { "1d", 0, 86400000 }, { "30", 0, 30000 },
		{ "0", 0, 0 }, { "0ms", 0, 0 }, { "007s", 0, 7000 },
		{ "213503982334d", 0, 213503982334ull * 86400000 }, /* largest that fits */
		{ "213503982335d", -1, 0 }, { "18446744073709551615ms", 0, UINT64_MAX },
		{ "18446744073709551616ms", -1, 0 }, { "18446744073709552s", -1, 0 },
		{ "", -1, 0 }, { "-5s", -1, 0 }, { "+5s", -1, 0 }, { "5 s", -1, 0 },
		{ " 5s", -1, 0 }, { "5s ", -1, 0 }, { "10 parsecs", -1, 0 }, { "5S", -1, 0 },
		{ "1h30m", -1, 0 }, { "1.5s", -1, 0 }, { "s", -1, 0 }, { "ms", -1, 0 },
		{ "5us", -1, 0 }, { "0x10s", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t ms = 12345;
		int rc = cfg_parse_duration_ms(t[i].s, &ms);
		if (rc != t[i].rc)
			fail_msg("duration '%s': rc %d, want %d", t[i].s, rc, t[i].rc);
		if (rc == 0 && ms != t[i].ms)
			fail_msg("duration '%s': %llu ms, want %llu", t[i].s, (unsigned long long)ms,
				 (unsigned long long)t[i].ms);
		if (rc != 0)
			assert_true(ms == 12345); /* untouched on error */
	}
	assert_int_equal(cfg_parse_duration_ms(NULL, &(uint64_t){ 0 }), -1);
}

static int check_one_error(const char *name, const struct cfg_errors *e, const char *expect)
{
	if (e->n == 1 && strstr(e->v[0].msg, expect))
		return 0;
	print_error("case %s: want exactly one error containing\n  %s\ngot %d:\n", name, expect,
		    e->n);
	dump_errors(e);
	return -1;
}

static void bad_inline_table(void **state)
{
	(void)state;
	int bad = 0, n = (int)(sizeof(cfg_bad_cases) / sizeof(cfg_bad_cases[0]));
	assert_true(n >= 25);
	for (int i = 0; i < n; i++) {
		struct cfg c;
		struct cfg_errors e;
		int rc = load(cfg_bad_cases[i].yaml, &c, &e);
		if (rc != -1 || check_one_error(cfg_bad_cases[i].name, &e, cfg_bad_cases[i].expect))
			bad++;
		cfg_free(&c);
		cfg_errors_free(&e);
	}
	assert_int_equal(bad, 0);
}

/* "# expect: LINE:COL: message" on the first line of configs/bad/NAME.yaml. */
static int check_bad_file(const char *dir, const char *fn)
{
	char path[512], first[600], expect[700];
	struct cfg c;
	struct cfg_errors e = { 0 };
	int ret = -1;

	if (snprintf(path, sizeof(path), "%s/%s", dir, fn) >= (int)sizeof(path))
		return -1;
	FILE *f = fopen(path, "r");
	if (!f || !fgets(first, sizeof(first), f) || strncmp(first, "# expect: ", 10)) {
		print_error("%s: no '# expect: ' first line\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	first[strcspn(first, "\n")] = 0;
	if (snprintf(expect, sizeof(expect), "%s:%s", path, first + 10) >= (int)sizeof(expect))
		return -1;
	if (cfg_load_file(path, &c, &e) == -1)
		ret = check_one_error(fn, &e, expect);
	cfg_free(&c);
	cfg_errors_free(&e);
	return ret;
}

static void bad_config_files(void **state)
{
	(void)state;
	char dir[512];
	int files = 0, bad = 0;
	DIR *d = opendir(src_path(dir, sizeof(dir), "tests/unit/configs/bad"));

	if (!d)
		fail_msg("cannot open %s (run from the repo root or set IKELB_SRCDIR)", dir);
	for (struct dirent *de; (de = readdir(d));) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".yaml"))
			continue;
		files++;
		bad += check_bad_file(dir, de->d_name) != 0;
	}
	closedir(d);
	assert_true(files >= 25);
	assert_int_equal(bad, 0);
}

static void all_errors_reported(void **state)
{
	(void)state;
	struct cfg c;
	struct cfg_errors e;
	int rc = load("interfaces: [eth0]\n"
		      "services:\n"
		      "  - name: s1\n"
		      "    vip: 203.0.113.10\n"
		      "    servers:\n"
		      "      - { name: a, address: 198.51.100.1, weight: 70000 }\n"
		      "      - { name: a, address: 198.51.100.2 }\n"
		      "    ports: [0]\n",
		      &c, &e);
	assert_int_equal(rc, -1);
	dump_errors(&e);
	assert_int_equal(e.n, 3);
	/* Sorted by position although found in different passes. */
	assert_non_null(strstr(e.v[0].msg, "t.yaml:6:51: services[0].servers[0].weight: 70000 is "
					   "out of range 0..65535"));
	assert_non_null(strstr(e.v[1].msg, "t.yaml:7:17: services[0].servers[1].name: server 'a' "
					   "is already defined at line 6"));
	assert_non_null(strstr(e.v[2].msg, "t.yaml:8:13: services[0].ports[0]: 0 is out of range"));
	assert_int_equal(e.v[2].line, 8);
	assert_int_equal(e.v[2].col, 13);
	cfg_free(&c);
	cfg_errors_free(&e);
}

static void error_flood_is_capped(void **state)
{
	(void)state;
	size_t cap = 64 * 1024, o = 0;
	char *y = malloc(cap);
	struct cfg c;
	struct cfg_errors e;

	assert_non_null(y);
	o += (size_t)snprintf(y + o, cap - o, "interfaces: [eth0]\nservices:\n"
					       "  - name: s\n    vip: 203.0.113.10\n    servers:\n");
	for (int i = 0; i < 300; i++)
		o += (size_t)snprintf(y + o, cap - o,
				      "      - { name: s%d, address: 198.51.100.1, weight: -%d }\n", i, i);
	assert_true(o < cap);
	assert_int_equal(load(y, &c, &e), -1);
	assert_int_equal(e.n, 200);
	assert_non_null(strstr(e.v[199].msg, "further errors suppressed"));
	free(y);
	cfg_free(&c);
	cfg_errors_free(&e);
}

static void example_files_parse(void **state)
{
	(void)state;
	static const char *const ex[] = { "examples/aovpn.yaml", "examples/carrier-nat.yaml",
					  "examples/socket-fullnat.yaml" };
	struct cfg c[3];
	char path[512];

	for (int i = 0; i < 3; i++) {
		struct cfg_errors e = { 0 };
		int rc = cfg_load_file(src_path(path, sizeof(path), ex[i]), &c[i], &e);
		dump_errors(&e);
		assert_int_equal(rc, 0);
		cfg_errors_free(&e);
	}
	assert_int_equal(c[0].services[0].nservers, 3);
	assert_int_equal(c[0].services[0].servers[2].state, CFG_SRV_DRAINING);
	const struct cfg_service *cg = &c[1].services[0];
	assert_int_equal(cg->persistence.mode, CFG_PERSIST_IKE);
	assert_true(cg->spi_mask == 0xff00000000000000ull);
	assert_true(cg->servers[2].spi_label == 0x0300000000000000ull);
	assert_int_equal(cg->servers[1].esp_spi_min, 0xc2000000u);
	assert_int_equal(cg->servers[1].esp_spi_max, 0xc2ffffffu);
	assert_int_equal(c[2].engine, CFG_ENGINE_SOCKET);
	assert_int_equal(c[2].services[0].forwarding, CFG_FWD_FULLNAT);
	assert_int_equal(c[2].services[0].nsnat_pool, 2);
	for (int i = 0; i < 3; i++)
		cfg_free(&c[i]);
}

static void maglev_default_grows_with_servers(void **state)
{
	(void)state;
	size_t cap = 64 * 1024, o = 0;
	char *y = malloc(cap);
	struct cfg c;
	struct cfg_errors e;

	assert_non_null(y);
	o += (size_t)snprintf(y + o, cap - o, "interfaces: [eth0]\nservices:\n"
					       "  - name: s\n    vip: \"2001:db8::1\"\n    servers:\n");
	for (int i = 0; i < 700; i++)
		o += (size_t)snprintf(y + o, cap - o, "      - { name: s%d, address: \"2001:db8:1::%x\" }\n",
				      i, i + 1);
	assert_true(o < cap);
	int rc = load(y, &c, &e);
	dump_errors(&e);
	assert_int_equal(rc, 0);
	assert_int_equal(c.services[0].nservers, 700);
	assert_int_equal(c.services[0].maglev_size, 70001); /* smallest prime >= 70000 */
	assert_int_equal(maglev_default_size(3), 65537);
	assert_true(maglev_is_prime(65537) && !maglev_is_prime(65535) && !maglev_is_prime(1));
	free(y);
	cfg_free(&c);
	cfg_errors_free(&e);
}

static void missing_file_reported(void **state)
{
	(void)state;
	struct cfg c;
	struct cfg_errors e = { 0 };
	assert_int_equal(cfg_load_file("/nonexistent/ikelb.yaml", &c, &e), -1);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.v[0].msg, "/nonexistent/ikelb.yaml: cannot open: No such file or directory");
	assert_int_equal(c.nservices, 0);
	cfg_free(&c);
	cfg_errors_free(&e);
}

/* init_state: down unless the service or the server says up; the server's
 * own setting wins over its service's. */
static void init_state_per_service_and_server(void **state)
{
	(void)state;
	struct cfg c;
	struct cfg_errors e;
	const char *yaml = "interfaces: [eth0]\n"
			   "services:\n"
			   "  - name: a\n"
			   "    vip: 203.0.113.10\n"
			   "    servers:\n"
			   "      - { name: a1, address: 198.51.100.1 }\n"
			   "      - { name: a2, address: 198.51.100.2, init_state: up }\n"
			   "  - name: b\n"
			   "    vip: 203.0.113.11\n"
			   "    init_state: up\n"
			   "    servers:\n"
			   "      - { name: b1, address: 198.51.100.3 }\n"
			   "      - { name: b2, address: 198.51.100.4, init_state: down }\n";
	int rc = load(yaml, &c, &e);
	dump_errors(&e);
	assert_int_equal(rc, 0);
	assert_true(c.services[0].servers[0].init_down);
	assert_false(c.services[0].servers[1].init_down);
	assert_false(c.services[1].servers[0].init_down);
	assert_true(c.services[1].servers[1].init_down);
	cfg_free(&c);
	cfg_errors_free(&e);

	yaml = "interfaces: [eth0]\n"
	       "services:\n"
	       "  - name: a\n"
	       "    vip: 203.0.113.10\n"
	       "    init_state: later\n"
	       "    servers:\n"
	       "      - { name: a1, address: 198.51.100.1 }\n";
	assert_int_equal(load(yaml, &c, &e), -1);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.v[0].msg,
			    "t.yaml:5:17: services[0].init_state: 'later' is not one of: down, up");
	cfg_free(&c);
	cfg_errors_free(&e);
}

/* Capacity and slow start: per server, slow_start inherited from the
 * service and overridden (0 turns it off); the kernel's scan bound. */
static void capacity_and_slow_start(void **state)
{
	(void)state;
	struct cfg c;
	struct cfg_errors e;
	const char *yaml = "interfaces: [eth0]\n"
			   "services:\n"
			   "  - name: a\n"
			   "    vip: 203.0.113.10\n"
			   "    scheduler: wlc\n"
			   "    slow_start: 1m\n"
			   "    servers:\n"
			   "      - { name: a1, address: 198.51.100.1, max_clients: 500 }\n"
			   "      - { name: a2, address: 198.51.100.2, slow_start: 10s }\n"
			   "      - { name: a3, address: 198.51.100.3, slow_start: 0 }\n";
	int rc = load(yaml, &c, &e);
	dump_errors(&e);
	assert_int_equal(rc, 0);
	assert_int_equal(c.services[0].slow_start_ms, 60000);
	assert_int_equal(c.services[0].servers[0].max_clients, 500);
	assert_int_equal(c.services[0].servers[0].slow_start_ms, 60000);
	assert_int_equal(c.services[0].servers[1].max_clients, 0);
	assert_int_equal(c.services[0].servers[1].slow_start_ms, 10000);
	assert_int_equal(c.services[0].servers[2].slow_start_ms, 0);
	cfg_free(&c);
	cfg_errors_free(&e);

	char big[16384] = "interfaces: [eth0]\n"
			  "services:\n"
			  "  - name: a\n"
			  "    vip: 203.0.113.10\n"
			  "    scheduler: lc\n"
			  "    servers:\n";
	for (int i = 0; i <= IKELB_SCHED_MAX; i++) {
		size_t n = strlen(big);
		snprintf(big + n, sizeof(big) - n, "      - { name: s%d, address: 198.51.100.%d }\n",
			 i, i + 1);
	}
	assert_int_equal(load(big, &c, &e), -1);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.v[0].msg, "t.yaml:5:16: services[0].scheduler: lc on the bpf "
					   "engine takes at most 64 servers"));
	cfg_free(&c);
	cfg_errors_free(&e);
}

/* A TCP API without a token must be loopback: an address, not a name
 * that merely starts like one. */
static void api_loopback_classified(void **state)
{
	(void)state;
	static const char *const yes[] = { "unix:/run/x.sock", "127.0.0.1:80", "127.9.9.9:1",
					   "[::1]:8080", "localhost:80" };
	static const char *const no[] = { "0.0.0.0:8080", "10.0.0.1:80", "127.example.com:80",
					  "[::]:80", "[::2]:80", "localhost.evil:80", "128.0.0.1:80" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(cfg_api_loopback(yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(cfg_api_loopback(no[i]));
}

/* interfaces: the list form gives every interface both roles; the map
 * form names the public side and the servers' side (docs/security.md). */
static void interface_roles(void **state)
{
	(void)state;
	static const char *const svc =
		"services:\n  - { name: s, vip: 203.0.113.10, servers: [{ name: a, address: 198.51.100.1 }] }\n";
	char y[512];
	struct cfg c;
	struct cfg_errors e;

	snprintf(y, sizeof(y), "interfaces: [eth0, eth1]\n%s", svc);
	assert_int_equal(load(y, &c, &e), 0);
	assert_int_equal(c.ninterfaces, 2);
	assert_int_equal(c.interface_roles[0], CFG_IF_PUBLIC | CFG_IF_SERVERS);
	assert_int_equal(c.interface_roles[1], CFG_IF_PUBLIC | CFG_IF_SERVERS);
	cfg_free(&c);
	cfg_errors_free(&e);

	snprintf(y, sizeof(y), "interfaces: { public: [eth0, eth2], servers: [eth1, eth2] }\n%s", svc);
	assert_int_equal(load(y, &c, &e), 0);
	dump_errors(&e);
	assert_int_equal(c.ninterfaces, 3);
	assert_string_equal(c.interfaces[1], "eth2");
	assert_int_equal(c.interface_roles[0], CFG_IF_PUBLIC);
	assert_int_equal(c.interface_roles[1], CFG_IF_PUBLIC | CFG_IF_SERVERS); /* one arm */
	assert_int_equal(c.interface_roles[2], CFG_IF_SERVERS);
	cfg_free(&c);
	cfg_errors_free(&e);

	static const char *const bad[] = {
		"interfaces: { public: [eth0] }\n",                       /* servers missing */
		"interfaces: { public: [eth0], servers: [eth1], x: [a] }\n", /* unknown key */
		"interfaces: { public: [eth0, eth0], servers: [eth1] }\n", /* twice in a role */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(y, sizeof(y), "%s%s", bad[i], svc);
		assert_int_equal(load(y, &c, &e), -1);
		assert_true(e.n >= 1);
		cfg_free(&c);
		cfg_errors_free(&e);
	}
}

static void enum_names(void **state)
{
	(void)state;
	assert_string_equal(cfg_engine_name(CFG_ENGINE_SOCKET), "socket");
	assert_string_equal(cfg_forwarding_name(CFG_FWD_DSR), "dsr");
	assert_string_equal(cfg_forwarding_name((enum cfg_forwarding)9), "?");
	assert_string_equal(cfg_sched_name(CFG_SCHED_FO), "fo");
	assert_string_equal(cfg_sched_name(CFG_SCHED_WLC), "wlc");
	assert_string_equal(cfg_persist_name(CFG_PERSIST_SOURCE_IP), "source-ip");
	assert_string_equal(cfg_health_name(CFG_HEALTH_NONE), "none");
	assert_string_equal(cfg_server_state_name(CFG_SRV_DRAINING), "draining");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(issue_example_exact),
		cmocka_unit_test(defaults_applied),
		cmocka_unit_test(every_field_set),
		cmocka_unit_test(durations_table),
		cmocka_unit_test(bad_inline_table),
		cmocka_unit_test(bad_config_files),
		cmocka_unit_test(all_errors_reported),
		cmocka_unit_test(error_flood_is_capped),
		cmocka_unit_test(example_files_parse),
		cmocka_unit_test(maglev_default_grows_with_servers),
		cmocka_unit_test(missing_file_reported),
		cmocka_unit_test(init_state_per_service_and_server),
		cmocka_unit_test(capacity_and_slow_start),
		cmocka_unit_test(enum_names),
		cmocka_unit_test(api_loopback_classified),
		cmocka_unit_test(interface_roles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
