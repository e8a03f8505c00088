/* The decision log's token bucket: a burst, then `rate` per second, the
 * rest counted as dropped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/ratelimit.h"

static void burst_then_rate(void **state)
{
	(void)state;
	struct rl_bucket b;
	int taken = 0;
	rl_init(&b, 50, 50, 1000);
	for (int i = 0; i < 200; i++)
		taken += rl_take(&b, 1000);
	assert_int_equal(taken, 50);
	assert_int_equal(b.dropped, 150);
	taken = 0;
	for (int i = 0; i < 200; i++)
		taken += rl_take(&b, 1500); /* half a second: 25 more */
	assert_int_equal(taken, 25);
	taken = 0;
	for (int i = 0; i < 200; i++)
		taken += rl_take(&b, 100000); /* long idle: the bucket holds burst only */
	assert_int_equal(taken, 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(burst_then_rate) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
