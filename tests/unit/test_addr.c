#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ikelb/addr.h"

static void parse_v4_roundtrip(void **state)
{
	(void)state;
	struct ikelb_addr a;
	char buf[IKELB_ADDR_STRLEN];
	assert_int_equal(ikelb_addr_parse("198.51.100.7", &a), 0);
	assert_true(ikelb_addr_is_v4(&a));
	assert_string_equal(ikelb_addr_str(&a, buf, sizeof(buf)), "198.51.100.7");
}

static void parse_v6_roundtrip(void **state)
{
	(void)state;
	struct ikelb_addr a;
	char buf[IKELB_ADDR_STRLEN];
	assert_int_equal(ikelb_addr_parse("2001:db8::1", &a), 0);
	assert_false(ikelb_addr_is_v4(&a));
	assert_string_equal(ikelb_addr_str(&a, buf, sizeof(buf)), "2001:db8::1");
}

static void parse_rejects_garbage(void **state)
{
	(void)state;
	struct ikelb_addr a;
	assert_int_equal(ikelb_addr_parse("198.51.100.256", &a), -1);
	assert_int_equal(ikelb_addr_parse("", &a), -1);
	assert_int_equal(ikelb_addr_parse("vpn1", &a), -1);
}

static void mask_v4_and_v6(void **state)
{
	(void)state;
	struct ikelb_addr a, b;
	char buf[IKELB_ADDR_STRLEN];
	ikelb_addr_parse("203.0.113.77", &a);
	ikelb_addr_mask(&a, 24);
	assert_string_equal(ikelb_addr_str(&a, buf, sizeof(buf)), "203.0.113.0");
	ikelb_addr_parse("203.0.113.77", &a);
	ikelb_addr_mask(&a, 28);
	assert_string_equal(ikelb_addr_str(&a, buf, sizeof(buf)), "203.0.113.64");
	ikelb_addr_parse("2001:db8:1:2:3:4:5:6", &b);
	ikelb_addr_mask(&b, 64);
	assert_string_equal(ikelb_addr_str(&b, buf, sizeof(buf)), "2001:db8:1:2::");
}

static void prefix_parse(void **state)
{
	(void)state;
	struct ikelb_addr a;
	int bits;
	assert_int_equal(ikelb_prefix_parse("198.51.100.0/24", &a, &bits), 0);
	assert_int_equal(bits, 24);
	assert_int_equal(ikelb_prefix_parse("2001:db8::/48", &a, &bits), 0);
	assert_int_equal(bits, 48);
	assert_int_equal(ikelb_prefix_parse("198.51.100.0/33", &a, &bits), -1);
	assert_int_equal(ikelb_prefix_parse("198.51.100.0/", &a, &bits), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_v4_roundtrip),
		cmocka_unit_test(parse_v6_roundtrip),
		cmocka_unit_test(parse_rejects_garbage),
		cmocka_unit_test(mask_v4_and_v6),
		cmocka_unit_test(prefix_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
