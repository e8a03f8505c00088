/* The state-sync wire format (core/sync_wire.c) with the daemon's real
 * HMAC-SHA256 (ctl/sync_mac.c): round trip, authentication, version,
 * replay window, and malformed or truncated datagrams. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "core/sync_wire.h"
#include "ctl/sync_mac.h"

static void auth_init(struct sync_auth *a, const char *key)
{
	memset(a, 0, sizeof(*a));
	a->klen = strlen(key);
	memcpy(a->key, key, a->klen);
	a->mac = sync_mac_hmac_sha256;
}

static struct sync_entry entry(uint8_t kind, int i)
{
	struct sync_entry e = { .kind = kind, .age_s = 7u + (uint32_t)i, .spi = 0x1122334455667788ull + (uint64_t)i,
				.cport = (uint16_t)(4500 + i), .vport = 4500 };
	strcpy(e.svc, "aovpn");
	ikelb_addr_parse("198.51.100.11", &e.server);
	ikelb_addr_parse("203.0.113.101", &e.client);
	return e;
}

static size_t build(struct sync_msg *m, const struct sync_auth *a, uint64_t seq, int n)
{
	struct sync_hdr h = { .node_id = 42, .epoch = 1000, .seq = seq };
	sync_msg_init(m, SYNC_T_STATE);
	for (int i = 0; i < n; i++) {
		struct sync_entry e = entry((uint8_t)(1 + i % 4), i);
		assert_int_equal(sync_msg_add(m, &e), 0);
	}
	assert_int_equal(sync_msg_seal(m, &h, a), 0);
	return m->len;
}

static void round_trip(void **state)
{
	(void)state;
	struct sync_auth a;
	struct sync_msg m;
	struct sync_hdr h;
	struct sync_iter it;
	struct sync_entry e;
	auth_init(&a, "0123456789abcdef-shared");
	build(&m, &a, 5, 8);
	assert_int_equal(sync_open(m.buf, m.len, &a, &h), 0);
	assert_int_equal(h.version, SYNC_VERSION);
	assert_int_equal(h.type, SYNC_T_STATE);
	assert_int_equal(h.count, 8);
	assert_int_equal(h.node_id, 42);
	assert_int_equal(h.seq, 5);
	sync_iter_init(&it, m.buf, m.len, h.count);
	for (int i = 0; i < 8; i++) {
		struct sync_entry want = entry((uint8_t)(1 + i % 4), i);
		assert_int_equal(sync_iter_next(&it, &e), 1);
		assert_int_equal(e.kind, want.kind);
		assert_string_equal(e.svc, "aovpn");
		assert_memory_equal(&e.server, &want.server, sizeof(e.server));
		assert_int_equal(e.age_s, want.age_s);
		if (e.kind == SYNC_K_SA || e.kind == SYNC_K_HALFOPEN)
			assert_true(e.spi == want.spi);
		else
			assert_memory_equal(&e.client, &want.client, sizeof(e.client));
		if (e.kind == SYNC_K_FLOW)
			assert_int_equal(e.cport, want.cport);
	}
	assert_int_equal(sync_iter_next(&it, &e), 0);
}

static void full_datagram_stops_at_mtu(void **state)
{
	(void)state;
	struct sync_msg m;
	struct sync_entry e = entry(SYNC_K_FLOW, 0);
	int n = 0;
	sync_msg_init(&m, SYNC_T_STATE);
	while (sync_msg_add(&m, &e) == 0)
		n++;
	assert_true(n > 20);
	assert_true(m.len + SYNC_MAC_LEN <= SYNC_MTU);
	e.kind = 99;
	assert_int_equal(sync_msg_add(&m, &e), -EINVAL);
}

static void wrong_key_and_tamper_rejected(void **state)
{
	(void)state;
	struct sync_auth a, b;
	struct sync_msg m;
	struct sync_hdr h;
	auth_init(&a, "0123456789abcdef-shared");
	auth_init(&b, "0123456789abcdef-other!");
	build(&m, &a, 1, 3);
	assert_int_equal(sync_open(m.buf, m.len, &b, &h), -EACCES);
	m.buf[SYNC_HDR_LEN + 3] ^= 1;
	assert_int_equal(sync_open(m.buf, m.len, &a, &h), -EACCES);
}

static void version_and_magic(void **state)
{
	(void)state;
	struct sync_auth a;
	struct sync_msg m;
	struct sync_hdr h;
	auth_init(&a, "0123456789abcdef-shared");
	build(&m, &a, 1, 1);
	m.buf[4] = SYNC_VERSION + 1;
	assert_int_equal(sync_open(m.buf, m.len, &a, &h), -EPROTONOSUPPORT);
	m.buf[4] = SYNC_VERSION;
	m.buf[0] = 'X';
	assert_int_equal(sync_open(m.buf, m.len, &a, &h), -EBADMSG);
}

static void truncated_and_lying_counts(void **state)
{
	(void)state;
	struct sync_auth a;
	struct sync_msg m;
	struct sync_hdr h;
	struct sync_iter it;
	struct sync_entry e;
	auth_init(&a, "0123456789abcdef-shared");
	build(&m, &a, 1, 4);
	for (size_t len = 0; len < m.len; len++)
		assert_int_not_equal(sync_open(m.buf, len, &a, &h), 0);
	/* An authenticated sender that lies about the count: the walk stops. */
	sync_iter_init(&it, m.buf, m.len, 9);
	int rc, n = 0;
	while ((rc = sync_iter_next(&it, &e)) > 0)
		n++;
	assert_int_equal(n, 4);
	assert_int_equal(rc, -EBADMSG);
	sync_iter_init(&it, m.buf, m.len, 2); /* fewer: trailing bytes */
	assert_int_equal(sync_iter_next(&it, &e), 1);
	assert_int_equal(sync_iter_next(&it, &e), 1);
	assert_int_equal(sync_iter_next(&it, &e), -EBADMSG);
}

static void replay_window(void **state)
{
	(void)state;
	struct sync_replay r = { 0 };
	struct sync_hdr h = { .node_id = 1, .epoch = 100, .seq = 10 };
	assert_int_equal(sync_replay_check(&r, &h), 0);
	assert_int_equal(sync_replay_check(&r, &h), -EALREADY);
	h.seq = 12;
	assert_int_equal(sync_replay_check(&r, &h), 0);
	h.seq = 11; /* late but inside the window */
	assert_int_equal(sync_replay_check(&r, &h), 0);
	assert_int_equal(sync_replay_check(&r, &h), -EALREADY);
	h.seq = 200;
	assert_int_equal(sync_replay_check(&r, &h), 0);
	h.seq = 200 - SYNC_REPLAY_WINDOW; /* fell out of the window */
	assert_int_equal(sync_replay_check(&r, &h), -EALREADY);
	h.epoch = 99; /* an older run of the sender */
	h.seq = 500;
	assert_int_equal(sync_replay_check(&r, &h), -EALREADY);
	h.epoch = 101; /* the sender restarted: its sequence starts again */
	h.node_id = 2;
	h.seq = 1;
	assert_int_equal(sync_replay_check(&r, &h), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(full_datagram_stops_at_mtu),
		cmocka_unit_test(wrong_key_and_tamper_rejected),
		cmocka_unit_test(version_and_magic),
		cmocka_unit_test(truncated_and_lying_counts),
		cmocka_unit_test(replay_window),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
