/* Which state tables a configuration can use (cfg_uses_persist_table,
 * cfg_uses_tcp_table): the bpf engine creates the others at
 * CFG_UNUSED_TABLE_ENTRIES slots instead of max_clients / max_flows, and
 * a reload that would need one is refused (src/ctl/reload.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"

static void load(const char *svc2, struct cfg *c)
{
	char y[1024];
	struct cfg_errors e = { 0 };

	snprintf(y, sizeof(y),
		 "interfaces: [eth0]\n"
		 "services:\n"
		 "  - name: a\n"
		 "    vip: 203.0.113.10\n"
		 "    persistence: { mode: ike }\n"
		 "    servers: [{ name: a1, address: 198.51.100.1 }]\n"
		 "%s", svc2);
	assert_int_equal(cfg_load_string("t.yaml", y, strlen(y), c, &e), 0);
	cfg_errors_free(&e);
}

static void ike_only_uses_neither(void **state)
{
	(void)state;
	struct cfg c;

	load("", &c);
	assert_false(cfg_uses_persist_table(&c));
	assert_false(cfg_uses_tcp_table(&c));
	cfg_free(&c);
}

/* source-ip is the default mode: a service that does not say uses it. */
static void default_mode_uses_persistence(void **state)
{
	(void)state;
	struct cfg c;

	load("  - name: b\n"
	     "    vip: 203.0.113.11\n"
	     "    servers: [{ name: b1, address: 198.51.100.2 }]\n", &c);
	assert_true(cfg_uses_persist_table(&c));
	assert_false(cfg_uses_tcp_table(&c));
	cfg_free(&c);
}

static void tcp_ports_use_the_tcp_table(void **state)
{
	(void)state;
	struct cfg c;

	load("  - name: b\n"
	     "    vip: 203.0.113.11\n"
	     "    tcp_ports: [443]\n"
	     "    persistence: { mode: ike }\n"
	     "    servers: [{ name: b1, address: 198.51.100.2 }]\n", &c);
	assert_false(cfg_uses_persist_table(&c));
	assert_true(cfg_uses_tcp_table(&c));
	cfg_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ike_only_uses_neither),
		cmocka_unit_test(default_mode_uses_persistence),
		cmocka_unit_test(tcp_ports_use_the_tcp_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
