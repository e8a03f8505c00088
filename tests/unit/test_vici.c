/* vici client (src/ctl/vici.c): encoding against the protocol README's
 * example, the parser on every truncation and on corrupted bytes, URIs,
 * and a command against a fake charon on a socketpair (answer, unknown
 * command, events skipped, silence). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctl/vici.h"

/* The README's example message: key1 = value1, section1 { sub-section {
 * key2 = value2 } list1 = [ item1, item2 ] }. */
static const uint8_t example[] = {
	3, 4, 'k', 'e', 'y', '1', 0, 6, 'v', 'a', 'l', 'u', 'e', '1',
	1, 8, 's', 'e', 'c', 't', 'i', 'o', 'n', '1',
	1, 11, 's', 'u', 'b', '-', 's', 'e', 'c', 't', 'i', 'o', 'n',
	3, 4, 'k', 'e', 'y', '2', 0, 6, 'v', 'a', 'l', 'u', 'e', '2',
	2,
	4, 5, 'l', 'i', 's', 't', '1',
	5, 0, 5, 'i', 't', 'e', 'm', '1',
	5, 0, 5, 'i', 't', 'e', 'm', '2',
	6,
	2,
};

static void encodes_like_the_readme(void **state)
{
	(void)state;
	struct vici_buf b = { 0 };
	vici_add_kv(&b, "key1", "value1");
	vici_add_section(&b, "section1");
	vici_add_section(&b, "sub-section");
	vici_add_kv(&b, "key2", "value2");
	vici_end_section(&b);
	assert_int_equal(b.err, 0);
	/* the list is not built by the client; compare up to it */
	assert_memory_equal(b.p, example, b.len);
	vici_buf_free(&b);
}

static void gets_values_by_path(void **state)
{
	(void)state;
	char v[16];
	assert_int_equal(vici_get(example, sizeof(example), "key1", v, sizeof(v)), 0);
	assert_string_equal(v, "value1");
	assert_int_equal(vici_get(example, sizeof(example), "section1.sub-section.key2", v,
				  sizeof(v)), 0);
	assert_string_equal(v, "value2");
	assert_int_equal(vici_get(example, sizeof(example), "key2", v, sizeof(v)), -ENOENT);
	assert_int_equal(vici_get(example, sizeof(example), "section1.key2", v, sizeof(v)),
			 -ENOENT);
	assert_int_equal(vici_get(example, sizeof(example), "key1", v, 6), -ENOSPC);
}

/* Every proper prefix that cuts an element, and every single-byte
 * corruption, is refused or parsed without reading past the end (ASan in
 * make check-san); none crashes. Prefixes ending on an element boundary
 * inside a section are unbalanced: refused too. */
static void truncated_and_corrupt_input(void **state)
{
	(void)state;
	char v[16];
	for (size_t n = 1; n < sizeof(example); n++) {
		uint8_t *cut = malloc(n); /* exact size: ASan sees any overread */
		assert_non_null(cut);
		memcpy(cut, example, n);
		int rc = vici_check(cut, n);
		if (n != 14) /* only "key1 = value1" alone is a whole message */
			assert_int_equal(rc, -EBADMSG);
		else
			assert_int_equal(rc, 0);
		free(cut);
	}
	int refused = 0;
	for (size_t i = 0; i < sizeof(example); i++) {
		for (int bit = 0; bit < 8; bit++) {
			uint8_t *m = malloc(sizeof(example));
			assert_non_null(m);
			memcpy(m, example, sizeof(example));
			m[i] ^= (uint8_t)(1u << bit);
			int rc = vici_get(m, sizeof(example), "key1", v, sizeof(v));
			assert_true(rc == 0 || rc == -ENOENT || rc == -EBADMSG || rc == -ENOSPC);
			refused += rc == -EBADMSG;
			free(m);
		}
	}
	assert_true(refused > 0);
	assert_int_equal(vici_check((const uint8_t *)"\x02", 1), -EBADMSG); /* end at top */
	assert_int_equal(vici_check((const uint8_t *)"\x05\x00\x00", 3), -EBADMSG); /* item */
	assert_int_equal(vici_check((const uint8_t *)"\x09", 1), -EBADMSG);
	assert_int_equal(vici_check(NULL, 0), 0);
}

static void packet_framing(void **state)
{
	(void)state;
	struct vici_buf p = { 0 };
	const uint8_t msg[] = { 3, 1, 'k', 0, 1, 'v' };
	assert_int_equal(vici_packet(&p, VICI_CMD_REQUEST, "stats", msg, sizeof(msg)), 0);
	const uint8_t want[] = { 0, 0, 0, 13, 0, 5, 's', 't', 'a', 't', 's', 3, 1, 'k', 0, 1, 'v' };
	assert_int_equal(p.len, sizeof(want));
	assert_memory_equal(p.p, want, sizeof(want));
	vici_buf_free(&p);
	char long_name[300];
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	vici_add_kv(&p, long_name, "v");
	assert_int_equal(p.err, -EINVAL);
	vici_buf_free(&p);
}

static void uris(void **state)
{
	(void)state;
	char err[160];
	assert_int_equal(vici_uri_check("unix:///run/x/charon.vici", err, sizeof(err)), 0);
	assert_int_equal(vici_uri_check("tcp://198.51.100.11:4502", err, sizeof(err)), 0);
	assert_int_equal(vici_uri_check("tcp://[2001:db8::1]:4502", err, sizeof(err)), 0);
	assert_int_equal(vici_uri_check("unix://relative", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "absolute path"));
	assert_int_equal(vici_uri_check("tcp://198.51.100.11", err, sizeof(err)), -EINVAL);
	assert_int_equal(vici_uri_check("tcp://vpn.example:4502", err, sizeof(err)), -EINVAL);
	assert_int_equal(vici_uri_check("tcp://198.51.100.11:99999", err, sizeof(err)), -EINVAL);
	assert_int_equal(vici_uri_check("http://x", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unix:///PATH or tcp://ADDR:PORT"));
}

/* The fake charon: writes canned segments to its end of a socketpair. */
static void fake_send(int fd, enum vici_packet t, const char *name, const uint8_t *m, size_t n)
{
	struct vici_buf p = { 0 };
	assert_int_equal(vici_packet(&p, t, name, m, n), 0);
	assert_int_equal(write(fd, p.p, p.len), (ssize_t)p.len);
	vici_buf_free(&p);
}

static void call_against_fake_charon(void **state)
{
	(void)state;
	int sv[2];
	char err[160], v[16];
	struct vici_buf resp = { 0 };
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

	/* an event first (skipped), then the answer */
	struct vici_buf m = { 0 };
	vici_add_kv(&m, "success", "yes");
	vici_add_kv(&m, "matches", "3");
	fake_send(sv[1], VICI_EVENT, "log", example, sizeof(example));
	fake_send(sv[1], VICI_CMD_RESPONSE, NULL, m.p, m.len);
	struct vici_buf req = { 0 };
	vici_add_kv(&req, "gateway", "198.51.100.1");
	assert_int_equal(vici_call(sv[0], "redirect", &req, 2000, &resp, err, sizeof(err)), 0);
	assert_int_equal(vici_get(resp.p, resp.len, "matches", v, sizeof(v)), 0);
	assert_string_equal(v, "3");
	/* what the client sent: the named request with its argument */
	uint8_t got[64];
	ssize_t n = read(sv[1], got, sizeof(got));
	assert_true(n > 13);
	assert_int_equal(got[4], VICI_CMD_REQUEST);
	assert_int_equal(got[5], 8);
	assert_memory_equal(got + 6, "redirect", 8);

	fake_send(sv[1], VICI_CMD_UNKNOWN, NULL, NULL, 0);
	assert_int_equal(vici_call(sv[0], "redirect", &req, 2000, &resp, err, sizeof(err)),
			 -EOPNOTSUPP);
	assert_non_null(strstr(err, "5.4"));
	assert_true(read(sv[1], got, sizeof(got)) > 0);

	/* silence: the deadline, not a hang */
	assert_int_equal(vici_call(sv[0], "stats", NULL, 200, &resp, err, sizeof(err)),
			 -ETIMEDOUT);
	assert_non_null(strstr(err, "no answer in time"));
	assert_true(read(sv[1], got, sizeof(got)) > 0);

	/* a malformed answer, then a closed connection */
	const uint8_t bad[] = { 3, 9, 'x' };
	fake_send(sv[1], VICI_CMD_RESPONSE, NULL, bad, sizeof(bad));
	assert_int_equal(vici_call(sv[0], "stats", NULL, 2000, &resp, err, sizeof(err)), -EBADMSG);
	close(sv[1]);
	assert_true(vici_call(sv[0], "stats", NULL, 2000, &resp, err, sizeof(err)) < 0);
	close(sv[0]);
	vici_buf_free(&m);
	vici_buf_free(&req);
	vici_buf_free(&resp);
}

static void connect_errors_are_clear(void **state)
{
	(void)state;
	char err[200];
	int fd = vici_connect("unix:///nonexistent-ikelb-test/charon.vici", 500, err, sizeof(err));
	assert_true(fd < 0);
	assert_non_null(strstr(err, "connect"));
	assert_non_null(strstr(err, "unix:///nonexistent-ikelb-test/charon.vici"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encodes_like_the_readme),
		cmocka_unit_test(gets_values_by_path),
		cmocka_unit_test(truncated_and_corrupt_input),
		cmocka_unit_test(packet_framing),
		cmocka_unit_test(uris),
		cmocka_unit_test(call_against_fake_charon),
		cmocka_unit_test(connect_errors_are_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
