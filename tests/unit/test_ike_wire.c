/* Tests for the shared IKE / ESP-in-UDP classifier (include/ikelb/ike_wire.h)
 * and the test packet builders (tests/unit/helpers/pkt.c).
 *
 * Every classification runs three times: on the caller's buffer, on a
 * malloc'd copy of exactly the bytes present (ASan flags any overread) and
 * on a copy that ends at a PROT_NONE guard page (an overread faults in any
 * build). All three must agree byte for byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ikelb/ike_wire.h"
#include "helpers/pkt.h"

/* Captured-style vectors, written out byte by byte as strongSwan sends them. */

/* IKE_SA_INIT request header: next payload SA, IKEv2, exch 34, flags I,
 * msg id 0, length 254 (the size of the pkt_ikev2_sa_init_req message). */
static const uint8_t v_sa_init_hdr[28] = {
	0x8b, 0x3c, 0x1a, 0x2d, 0x4e, 0x5f, 0x60, 0x71, /* SPIi */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* SPIr */
	0x21, 0x20, 0x22, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe,
};

/* DPD answer from the server on 4500: marker, INFORMATIONAL response (flags
 * R), msg id 2, SK payload with 8-byte IV, 1 byte ciphertext, 16-byte ICV. */
static const uint8_t v_info_resp_natt[61] = {
	0x00, 0x00, 0x00, 0x00,
	0xc4, 0x1f, 0x5a, 0x9e, 0x27, 0xb3, 0x80, 0xd2,
	0x2a, 0x5e, 0x11, 0x9c, 0x08, 0xf3, 0xa6, 0x4d,
	0x2e, 0x20, 0x25, 0x20, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x39,
	0x00, 0x00, 0x00, 0x1d,
	0x3f, 0x81, 0x0c, 0x55, 0x9a, 0x21, 0x6e, 0xd4,
	0x7b,
	0x12, 0xe9, 0x40, 0x88, 0x5c, 0xa1, 0x03, 0xfe,
	0x66, 0x2d, 0xb0, 0x19, 0xc7, 0x74, 0x8e, 0x31,
};

/* First IP fragment of a 1232-byte IKE_AUTH request on 4500 (certificates,
 * no RFC 7383 fragmentation): only 40 of its 1236 UDP payload bytes here. */
static const uint8_t v_auth_frag1[40] = {
	0x00, 0x00, 0x00, 0x00,
	0xc4, 0x1f, 0x5a, 0x9e, 0x27, 0xb3, 0x80, 0xd2,
	0x2a, 0x5e, 0x11, 0x9c, 0x08, 0xf3, 0xa6, 0x4d,
	0x2e, 0x20, 0x23, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x04, 0xd0,
	0x23, 0x00, 0x04, 0xb4, 0x3f, 0x81, 0x0c, 0x55,
};

/* IKEv1 Main Mode message 1 header: next payload SA (1), version 1.0,
 * exch 2 (Identity Protection), no flags, length 128. */
static const uint8_t v_ikev1_mm1_hdr[28] = {
	0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
};

/* UDP 198.51.100.10:4500 -> 203.0.113.1:4500, payload de ad be ef 01, and
 * the same over IPv6 2001:db8::10 -> 2001:db8::1. Produced independently
 * with scapy (IP(id=0x4b1d, ttl=64)/UDP()/Raw()). */
static const uint8_t v_udp4[] = {
	0x45, 0x00, 0x00, 0x21, 0x4b, 0x1d, 0x00, 0x00, 0x40, 0x11, 0xc9, 0x6f,
	0xc6, 0x33, 0x64, 0x0a, 0xcb, 0x00, 0x71, 0x01,
	0x11, 0x94, 0x11, 0x94, 0x00, 0x0d, 0xd7, 0xce,
	0xde, 0xad, 0xbe, 0xef, 0x01,
};
static const uint8_t v_udp6[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x11, 0x40,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	0x11, 0x94, 0x11, 0x94, 0x00, 0x0d, 0xe2, 0x8b,
	0xde, 0xad, 0xbe, 0xef, 0x01,
};

#define SPI_I 0x8b3c1a2d4e5f6071ULL
#define SPI_R 0x2a5e119c08f3a64dULL

/* Copy of n bytes ending exactly at a PROT_NONE page. */
static int classify_guarded(const uint8_t *b, size_t n, uint32_t plen, int natt,
			    struct ike_info *out)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t span = ((n + pg - 1) / pg + 1) * pg;
	uint8_t *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(mprotect(m + span - pg, pg, PROT_NONE), 0);
	uint8_t *p = m + span - pg - n;
	if (n)
		memcpy(p, b, n);
	int c = ike_classify(p, p + n, plen, natt, out);
	munmap(m, span);
	return c;
}

static int classify(const uint8_t *b, size_t n, uint32_t plen, int natt, struct ike_info *out)
{
	struct ike_info heap, guard;
	uint8_t *copy = malloc(n ? n : 1);
	assert_non_null(copy);
	if (n)
		memcpy(copy, b, n);
	memset(out, 0xa5, sizeof(*out)); /* the classifier must set every field */
	int c = ike_classify(b, b + n, plen, natt, out);
	int ch = ike_classify(copy, copy + n, plen, natt, &heap);
	free(copy);
	int cg = classify_guarded(b, n, plen, natt, &guard);
	assert_int_equal(c, out->cls);
	assert_int_equal(c, ch);
	assert_int_equal(c, cg);
	assert_memory_equal(out, &heap, sizeof(heap));
	assert_memory_equal(out, &guard, sizeof(guard));
	assert_int_equal(out->drop != IKE_DROP_NONE, c == IKE_C_DROP);
	return c;
}

static void expect_drop(const uint8_t *b, size_t n, uint32_t plen, int natt, int reason)
{
	struct ike_info i;
	assert_int_equal(classify(b, n, plen, natt, &i), IKE_C_DROP);
	assert_int_equal(i.drop, reason);
}

static size_t sa_init(uint8_t *b)
{
	size_t n = pkt_ikev2_sa_init_req(b, PKT_MAX, SPI_I);
	assert_int_equal(n, 254);
	return n;
}

/* Writes a big-endian u32 into a vector (for mutating length fields). */
static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void ikev2_sa_init_on_500(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = sa_init(b);
	assert_memory_equal(b, v_sa_init_hdr, sizeof(v_sa_init_hdr));
	assert_int_equal(classify(b, n, (uint32_t)n, 0, &i), IKE_C_IKEV2);
	assert_int_equal(i.drop, IKE_DROP_NONE);
	assert_true(i.spi_i == SPI_I);
	assert_true(i.spi_r == 0);
	assert_int_equal(i.next_payload, 33);
	assert_int_equal(i.version, 0x20);
	assert_int_equal(i.exch, IKE_EXCH_SA_INIT);
	assert_int_equal(i.flags, IKE_FLAG_I);
	assert_int_equal(i.msg_id, 0);
	assert_int_equal(i.length, 254);
	assert_int_equal(i.marker, 0);
	assert_true(ike_is_new_sa(&i));
	assert_true(ike_is_phase1(&i));
	assert_true(ike_is_request(&i));
	assert_true(ike_server_spi(&i) == 0); /* the server has not chosen yet */
}

static void ikev2_on_4500_with_marker(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = pkt_ikev2_auth_natt(b, sizeof(b), SPI_I, SPI_R, 1, 300);
	assert_int_equal(n, 4 + 28 + 4 + 8 + 300 + 16);
	assert_int_equal(classify(b, n, (uint32_t)n, 1, &i), IKE_C_IKEV2);
	assert_int_equal(i.marker, 1);
	assert_int_equal(i.length, n - 4);
	assert_int_equal(i.exch, IKE_EXCH_AUTH);
	assert_int_equal(i.next_payload, 46);
	assert_int_equal(i.msg_id, 1);
	assert_true(i.spi_i == SPI_I && i.spi_r == SPI_R);
	assert_false(ike_is_new_sa(&i));
	assert_false(ike_is_phase1(&i));
	assert_true(ike_server_spi(&i) == SPI_R);
	/* The same IKE message without the marker is ESP on 4500 (RFC 3948):
	 * the first 4 bytes of SPIi become the ESP SPI. */
	assert_int_equal(classify(b + 4, n - 4, (uint32_t)(n - 4), 1, &i), IKE_C_ESP);
	assert_int_equal(i.esp_spi, 0x8b3c1a2d);
	/* ... and with the marker on port 500 the header is misaligned: the
	 * version byte is one of SPIr's. */
	expect_drop(b, n, (uint32_t)n, 0, IKE_DROP_BAD_VERSION);
}

static void ikev2_informational_response(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = pkt_ikev2_informational_resp(b, sizeof(b), 0xc41f5a9e27b380d2ULL, SPI_R, 2,
						IKE_FLAG_R, 1);
	assert_int_equal(n, sizeof(v_info_resp_natt));
	assert_memory_equal(b, v_info_resp_natt, 4 + 28 + 4); /* marker, header, SK header */
	assert_int_equal(classify(v_info_resp_natt, n, (uint32_t)n, 1, &i), IKE_C_IKEV2);
	assert_int_equal(i.exch, IKE_EXCH_INFORMATIONAL);
	assert_int_equal(i.flags, IKE_FLAG_R);
	assert_int_equal(i.msg_id, 2);
	assert_int_equal(i.length, 57);
	assert_false(ike_is_request(&i));
	assert_false(ike_is_new_sa(&i));
	/* The original initiator answering (R|I) on 500. */
	n = pkt_ikev2_informational_resp(b, sizeof(b), SPI_I, SPI_R, 7, IKE_FLAG_R | IKE_FLAG_I, 0);
	assert_int_equal(classify(b, n, (uint32_t)n, 0, &i), IKE_C_IKEV2);
	assert_int_equal(i.flags, 0x28);
	assert_true(ike_server_spi(&i) == SPI_R);
}

static void ikev1_main_mode_on_500_and_4500(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = pkt_ikev1_main_mode1(b, sizeof(b), 0x1122334455667788ULL, 0);
	assert_int_equal(n, 128);
	assert_memory_equal(b, v_ikev1_mm1_hdr, sizeof(v_ikev1_mm1_hdr));
	assert_int_equal(classify(b, n, (uint32_t)n, 0, &i), IKE_C_IKEV1);
	assert_true(i.spi_i == 0x1122334455667788ULL);
	assert_int_equal(i.version, 0x10);
	assert_int_equal(i.exch, 2);
	assert_int_equal(i.length, 128);
	assert_true(ike_is_new_sa(&i));
	assert_true(ike_server_spi(&i) == 0); /* labels are IKEv2 only */

	n = pkt_ikev1_main_mode1(b, sizeof(b), 0x1122334455667788ULL, 1);
	assert_int_equal(n, 132);
	assert_int_equal(classify(b, n, (uint32_t)n, 1, &i), IKE_C_IKEV1);
	assert_int_equal(i.marker, 1);
	assert_int_equal(i.length, 128);
	/* A later IKEv1 message carries the responder cookie: not new. */
	b[4 + 15] = 0x01;
	assert_int_equal(classify(b, n, (uint32_t)n, 1, &i), IKE_C_IKEV1);
	assert_false(ike_is_new_sa(&i));
}

static void keepalive(void **state)
{
	(void)state;
	uint8_t b[4];
	struct ike_info i;
	assert_int_equal(pkt_natt_keepalive(b, sizeof(b)), 1);
	assert_int_equal(classify(b, 1, 1, 1, &i), IKE_C_KEEPALIVE);
	assert_false(ike_is_new_sa(&i));
	assert_true(ike_server_spi(&i) == 0);
	expect_drop(b, 1, 1, 0, IKE_DROP_TOO_SHORT); /* not on port 500 */
	expect_drop(b, 0, 1, 1, IKE_DROP_TOO_SHORT); /* promised but absent */
	expect_drop(b, 1, 2, 1, IKE_DROP_TOO_SHORT); /* 0xff but longer */
	b[0] = 0x00;
	expect_drop(b, 1, 1, 1, IKE_DROP_BAD_KEEPALIVE);
	b[0] = 0xfe;
	expect_drop(b, 1, 1, 1, IKE_DROP_BAD_KEEPALIVE);
}

static void esp(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = pkt_esp(b, sizeof(b), 0xc1a2b3c4, 0x80010107, 120);
	assert_int_equal(n, 128);
	assert_int_equal(classify(b, n, (uint32_t)n, 1, &i), IKE_C_ESP);
	assert_int_equal(i.esp_spi, 0xc1a2b3c4);
	assert_int_equal(i.esp_seq, 0x80010107);
	assert_false(ike_is_new_sa(&i));
	assert_true(ike_server_spi(&i) == 0);
	/* Header only (8 bytes) is enough. */
	assert_int_equal(classify(b, 8, 8, 1, &i), IKE_C_ESP);
}

static void reserved_spi(void **state)
{
	(void)state;
	uint8_t b[16];
	struct ike_info i;
	pkt_esp(b, sizeof(b), 1, 1, 8);
	expect_drop(b, 16, 16, 1, IKE_DROP_RESERVED_SPI);
	pkt_esp(b, sizeof(b), 255, 1, 8);
	expect_drop(b, 16, 16, 1, IKE_DROP_RESERVED_SPI);
	pkt_esp(b, sizeof(b), 256, 1, 8);
	assert_int_equal(classify(b, 16, 16, 1, &i), IKE_C_ESP);
	assert_int_equal(i.esp_spi, 256);
	pkt_esp(b, sizeof(b), 0xffffffff, 0, 8);
	assert_int_equal(classify(b, 16, 16, 1, &i), IKE_C_ESP);
	assert_int_equal(i.esp_spi, 0xffffffff);
}

static void too_short_on_4500(void **state)
{
	(void)state;
	static const uint8_t ones[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t esp8[8] = { 0xc1, 0xa2, 0xb3, 0xc4, 0, 0, 0, 1 };
	static const uint8_t zero[8] = { 0 };
	expect_drop(zero, 0, 0, 1, IKE_DROP_TOO_SHORT);
	for (uint32_t n = 2; n <= 3; n++) {
		expect_drop(ones, n, n, 1, IKE_DROP_TOO_SHORT);
		expect_drop(zero, n, n, 1, IKE_DROP_TOO_SHORT);
	}
	for (uint32_t n = 4; n <= 7; n++) {
		expect_drop(zero, n, n, 1, IKE_DROP_TOO_SHORT); /* marker, no header */
		expect_drop(esp8, n, n, 1, IKE_DROP_TOO_SHORT); /* ESP, no sequence */
		expect_drop(ones, n, n, 1, IKE_DROP_TOO_SHORT);
	}
}

static void too_short_on_500_and_after_marker(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	assert_int_equal(pkt_ikev2_auth_natt(b, sizeof(b), SPI_I, SPI_R, 1, 0), 60);
	for (uint32_t k = 0; k < IKE_HDR_LEN; k++) {
		expect_drop(v_sa_init_hdr, k, k, 0, IKE_DROP_TOO_SHORT);
		expect_drop(b, 4 + k, 4 + k, 1, IKE_DROP_TOO_SHORT);
	}
	/* Exactly a header is the shortest valid message. */
	uint8_t h[28];
	struct ike_info i;
	memcpy(h, v_sa_init_hdr, 28);
	put32(h + 24, 28);
	assert_int_equal(classify(h, 28, 28, 0, &i), IKE_C_IKEV2);
	memcpy(b + 4, h, 28);
	assert_int_equal(classify(b, 32, 32, 1, &i), IKE_C_IKEV2);
	/* ike_parse_hdr on its own also refuses a promised length below 28. */
	assert_int_equal(ike_parse_hdr(h, h + 28, 27, &i), IKE_C_DROP);
	assert_int_equal(i.drop, IKE_DROP_TOO_SHORT);
}

static void bad_version(void **state)
{
	(void)state;
	static const uint8_t bad[] = { 0x00, 0x0f, 0x30, 0x3f, 0x80, 0xf0, 0xff };
	static const uint8_t good[] = { 0x10, 0x1f, 0x20, 0x21, 0x2f };
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = sa_init(b);
	for (size_t k = 0; k < sizeof(bad); k++) {
		b[17] = bad[k];
		expect_drop(b, n, (uint32_t)n, 0, IKE_DROP_BAD_VERSION);
	}
	for (size_t k = 0; k < sizeof(good); k++) { /* the minor version is ignored */
		b[17] = good[k];
		assert_int_not_equal(classify(b, n, (uint32_t)n, 0, &i), IKE_C_DROP);
		assert_int_equal(i.version, good[k]);
	}
	/* Version is checked before length: a bad version with a bad length. */
	b[17] = 0x30;
	put32(b + 24, 1);
	expect_drop(b, n, (uint32_t)n, 0, IKE_DROP_BAD_VERSION);
}

static void length_mismatch(void **state)
{
	(void)state;
	static const uint32_t lens[] = { 253, 255, 0, 20, 27, 28, 0xffffffff, 254 + 4 };
	uint8_t b[PKT_MAX];
	size_t n = sa_init(b);
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		put32(b + 24, lens[k]);
		expect_drop(b, n, (uint32_t)n, 0, IKE_DROP_LEN_MISMATCH);
	}
	/* Behind a marker the length excludes the marker. */
	n = pkt_ikev2_auth_natt(b, sizeof(b), SPI_I, SPI_R, 1, 64);
	put32(b + 4 + 24, (uint32_t)n);
	expect_drop(b, n, (uint32_t)n, 1, IKE_DROP_LEN_MISMATCH);
	put32(b + 4 + 24, (uint32_t)n - 5);
	expect_drop(b, n, (uint32_t)n, 1, IKE_DROP_LEN_MISMATCH);
	/* Length is checked before the SPI. */
	memset(b + 4, 0, 8);
	expect_drop(b, n, (uint32_t)n, 1, IKE_DROP_LEN_MISMATCH);
}

static void zero_spi(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = pkt_ikev2_sa_init_req(b, sizeof(b), 0);
	expect_drop(b, n, (uint32_t)n, 0, IKE_DROP_ZERO_SPI);
	n = pkt_ikev1_main_mode1(b, sizeof(b), 0, 0);
	expect_drop(b, n, (uint32_t)n, 0, IKE_DROP_ZERO_SPI);
	n = pkt_ikev2_auth_natt(b, sizeof(b), 0, SPI_R, 1, 32);
	expect_drop(b, n, (uint32_t)n, 1, IKE_DROP_ZERO_SPI);
	/* Any nonzero byte makes it valid, including only the last one. */
	n = pkt_ikev2_sa_init_req(b, sizeof(b), 1);
	assert_int_equal(classify(b, n, (uint32_t)n, 0, &i), IKE_C_IKEV2);
	assert_true(i.spi_i == 1);
}

static void malformed_ip(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = sa_init(b);
	expect_drop(b, n, (uint32_t)n - 1, 0, IKE_DROP_MALFORMED_IP);
	expect_drop(b, n, 0, 1, IKE_DROP_MALFORMED_IP);
	expect_drop(b, 1, 0, 1, IKE_DROP_MALFORMED_IP);
	/* end before p */
	assert_int_equal(ike_classify(b + 4, b, 100, 1, &i), IKE_C_DROP);
	assert_int_equal(i.drop, IKE_DROP_MALFORMED_IP);
}

static void first_fragment(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = sa_init(b);
	/* Only the header of the 254-byte message present: classified. */
	assert_int_equal(classify(b, 28, (uint32_t)n, 0, &i), IKE_C_IKEV2);
	assert_int_equal(i.length, 254);
	assert_true(ike_is_new_sa(&i));
	expect_drop(b, 27, (uint32_t)n, 0, IKE_DROP_TOO_SHORT);
	expect_drop(b, 0, (uint32_t)n, 0, IKE_DROP_TOO_SHORT);

	assert_int_equal(classify(v_auth_frag1, sizeof(v_auth_frag1), 1236, 1, &i), IKE_C_IKEV2);
	assert_int_equal(i.length, 1232);
	assert_int_equal(i.exch, IKE_EXCH_AUTH);
	assert_true(ike_server_spi(&i) == SPI_R);
	assert_int_equal(classify(v_auth_frag1, 32, 1236, 1, &i), IKE_C_IKEV2);
	expect_drop(v_auth_frag1, 31, 1236, 1, IKE_DROP_TOO_SHORT);
	expect_drop(v_auth_frag1, 3, 1236, 1, IKE_DROP_TOO_SHORT);
	expect_drop(v_auth_frag1, 40, 1235, 1, IKE_DROP_LEN_MISMATCH);

	n = pkt_esp(b, sizeof(b), 0xc1a2b3c4, 9, 1400);
	assert_int_equal(classify(b, 8, (uint32_t)n, 1, &i), IKE_C_ESP);
	assert_int_equal(i.esp_seq, 9);
	expect_drop(b, 7, (uint32_t)n, 1, IKE_DROP_TOO_SHORT);
}

static void fields_big_endian(void **state)
{
	(void)state;
	uint8_t h[40];
	struct ike_info i;
	pkt_ike_hdr(h, 0, 0, 0, 0, 0, 0, 0, 0);
	for (int k = 0; k < 16; k++)
		h[k] = (uint8_t)(k + 1);
	h[16] = 0x2b;
	h[17] = 0x20;
	h[18] = IKE_EXCH_CREATE_CHILD_SA;
	h[19] = 0x28;
	h[20] = 0x0a;
	h[21] = 0x0b;
	h[22] = 0x0c;
	h[23] = 0x0d;
	put32(h + 24, 40);
	memset(h + 28, 0xee, 12);
	assert_int_equal(classify(h, 40, 40, 0, &i), IKE_C_IKEV2);
	assert_true(i.spi_i == 0x0102030405060708ULL);
	assert_true(i.spi_r == 0x090a0b0c0d0e0f10ULL);
	assert_int_equal(i.msg_id, 0x0a0b0c0d);
	assert_int_equal(i.length, 40);
	assert_int_equal(i.next_payload, 0x2b);
	assert_int_equal(i.exch, IKE_EXCH_CREATE_CHILD_SA);
	assert_int_equal(i.flags, 0x28);
	assert_int_equal(i.esp_spi, 0);
	assert_int_equal(i.pad, 0);
}

static void new_sa_detection(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = sa_init(b);
	assert_int_equal(classify(b, n, (uint32_t)n, 0, &i), IKE_C_IKEV2);
	assert_true(ike_is_new_sa(&i));

	b[19] = IKE_FLAG_R; /* a response with SPIr 0 (e.g. INVALID_KE_PAYLOAD) */
	assert_int_equal(classify(b, n, (uint32_t)n, 0, &i), IKE_C_IKEV2);
	assert_false(ike_is_new_sa(&i));

	n = pkt_ikev2_sa_init_resp(b, sizeof(b), SPI_I, SPI_R);
	assert_int_equal(classify(b, n, (uint32_t)n, 0, &i), IKE_C_IKEV2);
	assert_false(ike_is_new_sa(&i));

	n = sa_init(b);
	b[15] = 1; /* SPIr != 0 */
	assert_int_equal(classify(b, n, (uint32_t)n, 0, &i), IKE_C_IKEV2);
	assert_false(ike_is_new_sa(&i));

	n = pkt_ikev2_auth_natt(b, sizeof(b), SPI_I, 0, 1, 16); /* exch alone decides */
	assert_int_equal(classify(b, n, (uint32_t)n, 1, &i), IKE_C_IKEV2);
	assert_false(ike_is_new_sa(&i));

	n = sa_init(b);
	b[17] = 0x30;
	assert_int_equal(classify(b, n, (uint32_t)n, 0, &i), IKE_C_DROP);
	assert_false(ike_is_new_sa(&i));
}

static void server_spi_and_label(void **state)
{
	(void)state;
	uint8_t b[PKT_MAX];
	struct ike_info i;
	size_t n = pkt_ikev2_auth_natt(b, sizeof(b), SPI_I, SPI_R, 1, 16);
	assert_int_equal(classify(b, n, (uint32_t)n, 1, &i), IKE_C_IKEV2);
	uint64_t s = ike_server_spi(&i);
	assert_true(s == SPI_R);
	/* strongSwan spi_mask=0xff00000000000000 spi_label=0x2a00000000000000
	 * puts 0x2a in the first SPI byte on the wire. */
	assert_int_equal(b[4 + 8], 0x2a);
	assert_true(ike_spi_has_label(s, 0xff00000000000000ULL, 0x2a00000000000000ULL));
	assert_false(ike_spi_has_label(s, 0xff00000000000000ULL, 0x2b00000000000000ULL));
	assert_false(ike_spi_has_label(s, 0, 0));
	assert_false(ike_spi_has_label(0, 0xff00000000000000ULL, 0));
	assert_true(ike_spi_has_label(0x00ab000000000001ULL, 0xff00000000000000ULL, 0));

	/* Server-initiated SA (client is not the original initiator): the
	 * server's SPI is SPIi. */
	b[4 + 19] = IKE_FLAG_R;
	assert_int_equal(classify(b, n, (uint32_t)n, 1, &i), IKE_C_IKEV2);
	assert_true(ike_server_spi(&i) == SPI_I);
	assert_false(ike_spi_has_label(ike_server_spi(&i), 0xff00000000000000ULL,
				       0x2a00000000000000ULL));
	assert_int_equal(ike_port_is_natt(IKE_PORT, IKE_PORT), 0);
	assert_int_equal(ike_port_is_natt(IKE_NATT_PORT, IKE_PORT), 1);
	assert_int_equal(ike_port_is_natt(4501, IKE_PORT), 1);
	/* a relay with bare IKE on 10500 */
	assert_int_equal(ike_port_is_natt(10500, 10500), 0);
	assert_int_equal(ike_port_is_natt(IKE_PORT, 10500), 1);
	assert_int_equal(ike_port_is_natt(14500, 10500), 1);
}

/* Walks the generic payload chain after the IKE header: types must match
 * and the lengths must add up to the header's length field. */
static void expect_chain(const uint8_t *m, size_t n, const uint8_t *types, size_t nt)
{
	size_t off = IKE_HDR_LEN;
	uint8_t next = m[16];
	for (size_t k = 0; k < nt; k++) {
		assert_int_equal(next, types[k]);
		assert_true(off + 4 <= n);
		size_t plen = (size_t)(m[off + 2] << 8 | m[off + 3]);
		assert_true(plen >= 4);
		next = m[off];
		off += plen;
	}
	assert_int_equal(next, 0);
	assert_int_equal(off, n);
	assert_int_equal(ike_be32(m + 24), n);
}

static void builders_are_well_formed(void **state)
{
	(void)state;
	static const uint8_t v2[] = { 33, 34, 40, 41, 41, 41, 41 };
	static const uint8_t v1[] = { 1, 13, 13 };
	uint8_t b[PKT_MAX];
	size_t n = sa_init(b);
	expect_chain(b, n, v2, sizeof(v2));
	assert_int_equal(pkt_ikev2_sa_init_req(b, 253, SPI_I), 0);
	n = pkt_ikev2_sa_init_resp(b, sizeof(b), SPI_I, SPI_R);
	expect_chain(b, n, v2, sizeof(v2));
	n = pkt_ikev1_main_mode1(b, sizeof(b), 7, 0);
	expect_chain(b, n, v1, sizeof(v1));
	n = pkt_ikev2_auth_natt(b, sizeof(b), SPI_I, SPI_R, 1, 100);
	/* SK is the only outer payload; its next-payload names the first
	 * encrypted one (IDi), so the chain is checked by hand. */
	assert_int_equal(b[4 + 16], 46);
	assert_int_equal(b[4 + 28], 35);
	assert_int_equal(b[4 + 30] << 8 | b[4 + 31], n - 4 - 28);
	assert_int_equal(ike_be32(b + 4 + 24), n - 4);
	assert_int_equal(pkt_esp(b, 7, 1000, 1, 0), 0);
	assert_int_equal(pkt_natt_keepalive(b, 0), 0);
}

static void frames_match_scapy(void **state)
{
	(void)state;
	static const uint8_t pl[5] = { 0xde, 0xad, 0xbe, 0xef, 0x01 };
	uint8_t f[PKT_MAX];
	size_t n = pkt_udp_ip(f, sizeof(f), "198.51.100.10", 4500, "203.0.113.1", 4500, pl, 5);
	assert_int_equal(n, sizeof(v_udp4));
	assert_memory_equal(f, v_udp4, n);
	assert_true(pkt_ip_udp_csum_ok(f, n));
	n = pkt_udp_ip(f, sizeof(f), "2001:db8::10", 4500, "2001:db8::1", 4500, pl, 5);
	assert_int_equal(n, sizeof(v_udp6));
	assert_memory_equal(f, v_udp6, n);
	assert_true(pkt_ip_udp_csum_ok(f, n));
	f[n - 1] ^= 0x40; /* payload corruption breaks the UDP checksum */
	assert_false(pkt_ip_udp_csum_ok(f, n));

	n = pkt_udp_eth(f, sizeof(f), "198.51.100.10", 4500, "203.0.113.1", 4500, pl, 5);
	assert_int_equal(n, PKT_ETH_LEN + sizeof(v_udp4));
	assert_int_equal(f[12] << 8 | f[13], 0x0800);
	assert_memory_equal(f + PKT_ETH_LEN, v_udp4, sizeof(v_udp4));
	f[PKT_ETH_LEN + 8] = 63; /* TTL change without checksum fix */
	assert_false(pkt_ip_udp_csum_ok(f + PKT_ETH_LEN, n - PKT_ETH_LEN));
	n = pkt_udp_eth(f, sizeof(f), "2001:db8::10", 500, "2001:db8::1", 500, pl, 5);
	assert_int_equal(f[12] << 8 | f[13], 0x86dd);
	assert_int_equal(n, PKT_ETH_LEN + sizeof(v_udp6));

	assert_int_equal(pkt_udp_ip(f, sizeof(f), "198.51.100.10", 1, "2001:db8::1", 1, pl, 5), 0);
	assert_int_equal(pkt_udp_ip(f, sizeof(f), "vpn1", 1, "203.0.113.1", 1, pl, 5), 0);
	assert_int_equal(pkt_udp_ip(f, sizeof(v_udp4) - 1, "198.51.100.10", 4500, "203.0.113.1",
				    4500, pl, 5), 0);
}

/* The path a data plane takes: frame -> UDP header -> classifier. */
static void classify_through_frames(void **state)
{
	(void)state;
	uint8_t m[PKT_MAX], f[PKT_MAX];
	struct ike_info i;
	size_t mn = pkt_ikev2_auth_natt(m, sizeof(m), SPI_I, SPI_R, 1, 200);
	const char *src[] = { "198.51.100.10", "2001:db8:1::10" };
	const char *dst[] = { "203.0.113.1", "2001:db8:2::1" };
	for (int v = 0; v < 2; v++) {
		size_t n = pkt_udp_eth(f, sizeof(f), src[v], 4500, dst[v], 4500, m, mn);
		assert_true(n > 0);
		const uint8_t *ip = f + PKT_ETH_LEN;
		assert_true(pkt_ip_udp_csum_ok(ip, n - PKT_ETH_LEN));
		size_t off = pkt_udp_payload_off(ip, n - PKT_ETH_LEN);
		assert_int_equal(off, v ? PKT_IP6_LEN + PKT_UDP_LEN : PKT_IP4_LEN + PKT_UDP_LEN);
		uint32_t plen = (uint32_t)(ip[off - 4] << 8 | ip[off - 3]) - PKT_UDP_LEN;
		assert_int_equal(plen, mn);
		assert_int_equal(classify(ip + off, n - PKT_ETH_LEN - off, plen, 1, &i),
				 IKE_C_IKEV2);
		assert_true(ike_server_spi(&i) == SPI_R);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ikev2_sa_init_on_500),
		cmocka_unit_test(ikev2_on_4500_with_marker),
		cmocka_unit_test(ikev2_informational_response),
		cmocka_unit_test(ikev1_main_mode_on_500_and_4500),
		cmocka_unit_test(keepalive),
		cmocka_unit_test(esp),
		cmocka_unit_test(reserved_spi),
		cmocka_unit_test(too_short_on_4500),
		cmocka_unit_test(too_short_on_500_and_after_marker),
		cmocka_unit_test(bad_version),
		cmocka_unit_test(length_mismatch),
		cmocka_unit_test(zero_spi),
		cmocka_unit_test(malformed_ip),
		cmocka_unit_test(first_fragment),
		cmocka_unit_test(fields_big_endian),
		cmocka_unit_test(new_sa_detection),
		cmocka_unit_test(server_spi_and_label),
		cmocka_unit_test(builders_are_well_formed),
		cmocka_unit_test(frames_match_scapy),
		cmocka_unit_test(classify_through_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
