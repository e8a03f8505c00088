/* The `admission` mapping of a service: values, defaults, and every
 * error with its position. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"

#define HEAD                                                                   \
	"interfaces: [eth0]\n"                                                 \
	"services:\n"                                                          \
	"  - name: s1\n"                                                       \
	"    vip: 203.0.113.10\n"                                              \
	"    servers:\n"                                                       \
	"      - { name: a, address: 198.51.100.1 }\n"

static int load(const char *yaml, struct cfg *c, struct cfg_errors *e)
{
	memset(e, 0, sizeof(*e));
	memset(c, 0, sizeof(*c));
	return cfg_load_string("t.yaml", yaml, strlen(yaml), c, e);
}

static void admission_values(void **state)
{
	(void)state;
	struct cfg c;
	struct cfg_errors e;

	assert_int_equal(load(HEAD "    admission: { rate: 200/s, burst: 400, per_source_rate: 5, "
			      "cookie_threshold: 100/s }\n", &c, &e), 0);
	const struct cfg_admission *a = &c.services[0].admission;
	assert_true(a->enabled);
	assert_int_equal(a->rate, 200);
	assert_int_equal(a->burst, 400);
	assert_int_equal(a->per_source_rate, 5);
	assert_int_equal(a->per_source_burst, 5); /* one second's worth */
	assert_true(a->cookie);
	assert_int_equal(a->cookie_threshold, 100);
	cfg_free(&c);

	assert_int_equal(load(HEAD "    admission: { cookie_threshold: 0 }\n", &c, &e), 0);
	a = &c.services[0].admission;
	assert_true(a->enabled && a->cookie);
	assert_int_equal(a->cookie_threshold, 0);
	assert_int_equal(a->rate, 0);
	cfg_free(&c);

	assert_int_equal(load(HEAD, &c, &e), 0);
	assert_false(c.services[0].admission.enabled);
	assert_false(c.services[0].admission.cookie);
	cfg_free(&c);
}

static const struct {
	const char *yaml, *expect;
} bad[] = {
	{ HEAD "    admission: { rate: 0 }\n", "t.yaml:7:24: services[0].admission.rate: 0 is out of range 1..10000000 per second" },
	{ HEAD "    admission: { rate: fast }\n", "t.yaml:7:24: services[0].admission.rate: 'fast' is not a rate" },
	{ HEAD "    admission: { rate: 5/m }\n", "t.yaml:7:24: services[0].admission.rate: '5/m' is not a rate" },
	{ HEAD "    admission: { burst: 10 }\n", "t.yaml:7:18: services[0].admission.burst: needs rate" },
	{ HEAD "    admission: { per_source_burst: 10 }\n", "t.yaml:7:18: services[0].admission.per_source_burst: needs per_source_rate" },
	{ HEAD "    admission: {}\n", "t.yaml:7:16: services[0].admission: give rate, per_source_rate or cookie_threshold" },
	{ HEAD "    admission: { rte: 5 }\n", "t.yaml:7:18: services[0].admission: unknown key 'rte'" },
	{ HEAD "    admission: 5\n", "t.yaml:7:16: services[0].admission: expected a mapping" },
	{ HEAD "    admission: { rate: 20000000 }\n", "t.yaml:7:24: services[0].admission.rate: 20000000 is out of range" },
	{ "engine: socket\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 127.0.0.1\n"
	  "    forwarding: fullnat\n"
	  "    admission: { rate: 5 }\n"
	  "    servers:\n"
	  "      - { name: a, address: 127.0.0.2 }\n",
	  "t.yaml:6:5: services[0].admission: needs engine: bpf" },
};

static void admission_errors(void **state)
{
	(void)state;
	int failed = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cfg c;
		struct cfg_errors e;
		int rc = load(bad[i].yaml, &c, &e);
		char got[600] = "";
		if (e.n > 0)
			snprintf(got, sizeof(got), "%s", e.v[0].msg);
		if (rc != -1 || e.n != 1 || strncmp(got, bad[i].expect, strlen(bad[i].expect))) {
			fprintf(stderr, "case %zu: rc %d, %d error(s), first '%s'\n  want '%s'\n", i,
				rc, e.n, got, bad[i].expect);
			failed++;
		}
		cfg_errors_free(&e);
		cfg_free(&c);
	}
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(admission_values),
		cmocka_unit_test(admission_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
