#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ikelb/cookie.h"
#include "ikelb/hash.h"
#include "ikelb/ike_wire.h"

/* SipHash-2-4 reference vectors (paper appendix / reference vectors.h):
 * key 00..0f, message 00..len-1, output as little-endian bytes.
 * Also reproduced with `openssl mac -macopt size:8 ... SIPHASH`. */
static const struct {
	size_t len;
	uint8_t out[8];
} sip_vec[] = {
	{ 0, { 0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72 } },
	{ 1, { 0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74 } },
	{ 7, { 0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab } },
	{ 8, { 0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93 } },
	{ 15, { 0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1 } },
	{ 32, { 0xce, 0x7c, 0xf2, 0x72, 0x2f, 0x51, 0x27, 0x71 } },
	{ 63, { 0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95 } },
};

static void siphash_reference_vectors(void **state)
{
	(void)state;
	uint8_t key[16], msg[64];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	uint64_t k0 = ikelb_le64(key), k1 = ikelb_le64(key + 8);
	for (size_t v = 0; v < sizeof(sip_vec) / sizeof(sip_vec[0]); v++) {
		uint64_t h = siphash24(msg, sip_vec[v].len, k0, k1);
		assert_int_equal(h, ikelb_le64(sip_vec[v].out));
	}
}

/* The BPF-side SipHash of the COOKIE (include/ikelb/cookie.h) is the
 * reference algorithm: the 32-byte vector, and the cookie's layout. */
static void cookie_siphash_matches_reference(void **state)
{
	(void)state;
	uint8_t key[16], msg[32], c[IKELB_COOKIE_LEN], m2[32];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 32; i++)
		msg[i] = (uint8_t)i;
	uint64_t k0 = ikelb_le64(key), k1 = ikelb_le64(key + 8);
	assert_int_equal(ikelb_siphash32(msg, k0, k1), siphash24(msg, 32, k0, k1));
	assert_int_equal(ikelb_siphash32(msg, k0, k1), ikelb_le64(sip_vec[5].out));

	struct ikelb_addr a;
	assert_int_equal(ikelb_addr_parse("198.18.0.7", &a), 0);
	ikelb_cookie_make(c, &a, 4500, 0x0102030405060708ULL, 7, k0, k1);
	memset(m2, 0, sizeof(m2));
	memcpy(m2, a.b, 16);
	for (int i = 0; i < 8; i++)
		m2[16 + i] = (uint8_t)(i + 1);
	m2[24] = 4500 >> 8;
	m2[25] = 4500 & 0xff;
	m2[31] = 7;
	uint64_t h = siphash24(m2, 32, k0, k1);
	assert_int_equal(ike_be32(c), 7);
	assert_int_equal(ike_be64(c + 4), h);
}

/* Client hash as documented in hash.h; values from an independent Python
 * implementation of that text. The BPF program must reproduce these. */
static void client_hash_pinned_values(void **state)
{
	(void)state;
	struct ikelb_addr v4, v6;
	assert_int_equal(ikelb_addr_parse("198.51.100.7", &v4), 0);
	assert_int_equal(ikelb_addr_parse("2001:db8::1", &v6), 0);
	assert_int_equal(ikelb_hash_addr(&v4, 0, 0), 0xbf670431fff7e7b7ULL);
	assert_int_equal(ikelb_hash_addr(&v4, 500, 0x1234), 0xfd07dc5502a2f5ecULL);
	assert_int_equal(ikelb_hash_addr(&v6, 4500, 0xdeadbeef), 0x4afb13c0f479f198ULL);
	assert_int_equal(ikelb_hash_u64(0x0102030405060708ULL, 0), 0xd302f1222623e556ULL);
	assert_int_equal(ikelb_hash_u64(0, 42), 0x39f376d9695ebc5eULL);
}

static void client_hash_depends_on_inputs(void **state)
{
	(void)state;
	struct ikelb_addr a, b;
	ikelb_addr_parse("203.0.113.1", &a);
	ikelb_addr_parse("203.0.113.2", &b);
	assert_true(ikelb_hash_addr(&a, 0, 1) != ikelb_hash_addr(&b, 0, 1));
	assert_true(ikelb_hash_addr(&a, 0, 1) != ikelb_hash_addr(&a, 0, 2));
	assert_true(ikelb_hash_addr(&a, 0, 1) != ikelb_hash_addr(&a, 500, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(siphash_reference_vectors),
		cmocka_unit_test(cookie_siphash_matches_reference),
		cmocka_unit_test(client_hash_pinned_values),
		cmocka_unit_test(client_hash_depends_on_inputs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
