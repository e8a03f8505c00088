/* The logger: level filtering, structured fields reaching a sink, and the
 * stream as the fallback when the sink fails (journald gone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/log.h"

struct seen {
	int calls, fail;
	enum log_level lvl;
	char msg[256];
	char fields[256];
};

static int sink(void *ctx, enum log_level lvl, const char *msg, const struct log_field *f, int n)
{
	struct seen *s = ctx;
	s->calls++;
	s->lvl = lvl;
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
	s->fields[0] = 0;
	for (int i = 0; i < n; i++) {
		size_t k = strlen(s->fields);
		snprintf(s->fields + k, sizeof(s->fields) - k, "%s=%s;", f[i].key, f[i].value);
	}
	return s->fail ? -1 : 0;
}

static void fields_reach_the_sink(void **state)
{
	(void)state;
	struct logger l;
	struct seen s = { 0 };
	log_init(&l, LOG_LVL_INFO);
	l.sink = sink;
	l.sink_ctx = &s;
	const struct log_field f[] = { { "IKELB_SERVICE", "vpn" }, { "IKELB_SERVER", "vpn1" } };
	log_fields(&l, LOG_LVL_NOTICE, f, 2, "server %s: %s", "vpn1", "down");
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.lvl, LOG_LVL_NOTICE);
	assert_string_equal(s.msg, "server vpn1: down");
	assert_string_equal(s.fields, "IKELB_SERVICE=vpn;IKELB_SERVER=vpn1;");
	log_msg(&l, LOG_LVL_WARN, "plain %d", 7);
	assert_int_equal(s.calls, 2);
	assert_string_equal(s.fields, "");
	log_msg(&l, LOG_LVL_DEBUG, "filtered");
	assert_int_equal(s.calls, 2);
}

static void failed_sink_falls_back_to_the_stream(void **state)
{
	(void)state;
	struct logger l;
	struct seen s = { .fail = 1 };
	char buf[512] = "";
	FILE *out = fmemopen(buf, sizeof(buf), "w");
	assert_non_null(out);
	log_init(&l, LOG_LVL_INFO);
	l.prefix = 1;
	l.out = out;
	l.sink = sink;
	l.sink_ctx = &s;
	log_notice(&l, "kept %s", "anyway");
	fclose(out);
	assert_int_equal(s.calls, 1);
	assert_string_equal(buf, "<5>ikelb: kept anyway\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fields_reach_the_sink),
		cmocka_unit_test(failed_sink_falls_back_to_the_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
