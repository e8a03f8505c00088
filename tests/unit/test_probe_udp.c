/* udp probe type (src/ctl/probe_udp.c): what it sends, which replies name
 * its probe, and how it judges them. The end-to-end checks over loopback
 * are in test_health.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "ctl/probe.h"

static struct logger quiet;

static struct cfg_health udp_hc(uint8_t *send, size_t send_len, uint8_t *expect,
				size_t expect_len)
{
	struct cfg_health hc = { .type = CFG_HEALTH_UDP, .interval_ms = 1000, .timeout_ms = 500,
				 .rise = 1, .fall = 1, .send = send, .send_len = send_len,
				 .expect = expect, .expect_len = expect_len };
	return hc;
}

static void init_copies_and_refuses_empty(void **state)
{
	(void)state;
	uint8_t ping[] = "ping", big[PROBE_MAX_LEN + 1];
	struct probe p;
	struct cfg_health hc = udp_hc(ping, 4, NULL, 0);
	assert_int_equal(probe_init(&p, &hc, &quiet), 0);
	assert_ptr_equal(p.ops, probe_udp_ops());
	assert_string_equal(p.ops->name, "udp");
	ping[0] = 'P'; /* the probe owns a copy */
	assert_memory_equal(p.send, "ping", 4);
	probe_fini(&p);

	hc = udp_hc(NULL, 0, NULL, 0);
	assert_int_equal(probe_init(&p, &hc, &quiet), -EINVAL);
	assert_null(p.ops);
	memset(big, 1, sizeof(big));
	hc = udp_hc(big, sizeof(big), NULL, 0);
	assert_int_equal(probe_init(&p, &hc, &quiet), -EINVAL);
	hc = udp_hc(ping, 4, NULL, 2); /* expect length without bytes */
	assert_int_equal(probe_init(&p, &hc, &quiet), -EINVAL);

	hc.type = CFG_HEALTH_NONE;
	assert_int_equal(probe_init(&p, &hc, &quiet), 0);
	assert_null(p.ops);
}

/* The id is the server's address and port: only a reply from exactly
 * there names the probe, whatever it carries. */
static void id_is_the_source(void **state)
{
	(void)state;
	uint8_t ping[] = "ping", b[PROBE_MAX_LEN];
	struct probe p;
	struct cfg_health hc = udp_hc(ping, 4, NULL, 0);
	struct ikelb_addr a, other, a6;
	uint64_t id = 0;
	ikelb_addr_parse("192.0.2.1", &a);
	ikelb_addr_parse("192.0.2.2", &other);
	ikelb_addr_parse("2001:db8::1", &a6);
	assert_int_equal(probe_init(&p, &hc, &quiet), 0);
	assert_int_equal(p.ops->build(&p, &a, 7000, b, sizeof(b), &id), 4);
	assert_memory_equal(b, "ping", 4);
	assert_true(id != 0);
	assert_true(p.ops->reply_id((const uint8_t *)"x", 1, &a, 7000) == id);
	assert_true(p.ops->reply_id(NULL, 0, &a, 7000) == id); /* empty datagram */
	assert_true(p.ops->reply_id(b, 4, &a, 7001) != id);
	assert_true(p.ops->reply_id(b, 4, &other, 7000) != id);
	assert_true(p.ops->reply_id(b, 4, &a6, 7000) != id);
	assert_int_equal(p.ops->build(&p, &a, 7000, b, 3, &id), -EMSGSIZE);
	probe_fini(&p);
}

static void judge_any_reply_or_expect_prefix(void **state)
{
	(void)state;
	uint8_t ping[] = "ping", pong[] = "PONG";
	char why[PROBE_REASON_MAX] = "";
	struct probe p;
	struct cfg_health hc = udp_hc(ping, 4, NULL, 0);
	assert_int_equal(probe_init(&p, &hc, &quiet), 0);
	/* No expect: any datagram, even an empty one, means alive. */
	assert_true(p.ops->judge(&p, 1, (const uint8_t *)"whatever", 8, why, sizeof(why)));
	assert_true(p.ops->judge(&p, 1, NULL, 0, why, sizeof(why)));
	probe_fini(&p);

	hc = udp_hc(ping, 4, pong, 4);
	assert_int_equal(probe_init(&p, &hc, &quiet), 0);
	assert_true(p.ops->judge(&p, 1, (const uint8_t *)"PONG!", 5, why, sizeof(why)));
	assert_false(p.ops->judge(&p, 1, (const uint8_t *)"PON", 3, why, sizeof(why)));
	assert_string_equal(why, "reply does not match expect");
	why[0] = 0;
	assert_false(p.ops->judge(&p, 1, (const uint8_t *)"ping", 4, why, sizeof(why)));
	assert_string_equal(why, "reply does not match expect");
	probe_fini(&p);
}

int main(void)
{
	log_init(&quiet, LOG_LVL_ERR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_copies_and_refuses_empty),
		cmocka_unit_test(id_is_the_source),
		cmocka_unit_test(judge_any_reply_or_expect_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
