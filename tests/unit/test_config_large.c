/* Configuration loader on large input: a mapping of 50 000 keys is checked
 * for duplicates in one pass (the old per-key rescan took seconds and held
 * the daemon loop on SIGHUP), a duplicate deep in a large file still names
 * its file:line:col, and a file over the size limit is refused before any
 * parsing. Times are printed as figures, not asserted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"

#define BIG_KEYS 50000

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->cap - b->len < 256) {
		b->cap = b->cap ? b->cap * 2 : 1 << 16;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	va_start(ap, fmt);
	b->len += (size_t)vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
}

static int load_timed(const struct buf *b, struct cfg *c, struct cfg_errors *e,
		      const char *what)
{
	memset(e, 0, sizeof(*e));
	uint64_t t0 = clock_mono_ms();
	int rc = cfg_load_string("t.yaml", b->p, b->len, c, e);
	print_message("  %s: %zu bytes parsed in %.3f s\n", what, b->len,
		      (double)(clock_mono_ms() - t0) / 1e3);
	return rc;
}

/* Half the keys repeat one valid key, the other half another: each of the
 * second half's first occurrence sits 25 000 entries in, which the old
 * check rescanned for every key. */
static void many_duplicate_keys(void **state)
{
	(void)state;
	struct buf b = { 0 };
	struct cfg c;
	struct cfg_errors e;

	for (int i = 0; i < BIG_KEYS / 2; i++)
		put(&b, "engine: socket\n");
	for (int i = 0; i < BIG_KEYS / 2; i++)
		put(&b, "maglev_seed: 1\n");
	assert_int_equal(load_timed(&b, &c, &e, "50000-key mapping"), -1);
	assert_true(e.n >= 2);
	assert_string_equal(e.v[0].msg, "t.yaml:2:1: duplicate key 'engine' (first given at line 1)");
	assert_string_equal(e.v[1].msg, "t.yaml:3:1: duplicate key 'engine' (first given at line 1)");
	cfg_free(&c);
	cfg_errors_free(&e);
	free(b.p);
}

/* 8 services of 1024 servers; the last server repeats 'weight'. */
static void duplicate_deep_in_large_file(void **state)
{
	(void)state;
	struct buf b = { 0 };
	struct cfg c;
	struct cfg_errors e;
	int line = 2;

	put(&b, "engine: socket\nservices:\n");
	for (int s = 0; s < 8; s++) {
		put(&b, "  - name: s%d\n    vip: 127.0.%d.1\n    ports: [%d]\n"
			"    forwarding: fullnat\n    servers:\n", s, s + 1, 10500 + s);
		line += 5;
		for (int i = 0; i < 1024; i++, line++)
			put(&b, "      - { name: r%d, address: 10.%d.%d.%d%s }\n", i, s, i / 250,
			    i % 250 + 1, s == 7 && i == 1023 ? ", weight: 1, weight: 2" : "");
	}
	assert_int_equal(load_timed(&b, &c, &e, "8x1024 servers"), -1);
	assert_int_equal(e.n, 1);
	b.p[b.len - 1] = 0; /* the column of the second 'weight' on the last line */
	int col = (int)(strrchr(b.p, 'w') - strrchr(b.p, '\n'));
	char want[160];
	snprintf(want, sizeof(want),
		 "t.yaml:%d:%d: services[7].servers[1023]: duplicate key 'weight' "
		 "(first given at line %d)", line, col, line);
	assert_string_equal(e.v[0].msg, want);
	cfg_free(&c);
	cfg_errors_free(&e);
	free(b.p);
}

/* Over 1 MiB is refused by size, before libyaml sees a byte. */
static void oversized_file_refused(void **state)
{
	(void)state;
	char path[] = "/tmp/ikelb-big-XXXXXX";
	int fd = mkstemp(path);
	struct cfg c;
	struct cfg_errors e = { 0 };
	char line[64];

	assert_true(fd >= 0);
	memset(line, '#', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	for (int i = 0; i < (1 << 20) / (int)sizeof(line) + 1; i++)
		assert_int_equal(write(fd, line, sizeof(line)), (ssize_t)sizeof(line));
	close(fd);
	assert_int_equal(cfg_load_file(path, &c, &e), -1);
	unlink(path);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.v[0].msg, "bytes is larger than the 1048576-byte (1 MiB) "
					   "limit on a configuration file"));
	cfg_free(&c);
	cfg_errors_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(many_duplicate_keys),
		cmocka_unit_test(duplicate_deep_in_large_file),
		cmocka_unit_test(oversized_file_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
