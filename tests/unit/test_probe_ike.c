/* ike probe type: the IKE_SA_INIT probe's wire format, the reply judge,
 * and the ops the checker drives (src/ctl/probe_ike.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "ctl/probe.h"
#include "ctl/probe_ike.h"
#include "ikelb/ike_wire.h"
#include "helpers/pkt.h"
#include "ike_reply.h"

#define SPI 0x1122334455667788ULL

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void probe_structure(void **state)
{
	(void)state;
	uint8_t rnd[PROBE_IKE_RANDOM_LEN], b[512];
	for (int i = 0; i < PROBE_IKE_RANDOM_LEN; i++)
		rnd[i] = (uint8_t)(i + 1);
	size_t n = probe_ike_build(b, sizeof(b), SPI, rnd);
	assert_int_equal(n, PROBE_IKE_LEN);

	/* The shared classifier must see a new IKEv2 SA on port 500. */
	struct ike_info ii;
	assert_int_equal(ike_classify(b, b + n, (uint32_t)n, 0, &ii), IKE_C_IKEV2);
	assert_true(ike_is_new_sa(&ii));
	assert_true(ii.spi_i == SPI);
	assert_true(ii.spi_r == 0);
	assert_int_equal(ii.version, 0x20);
	assert_int_equal(ii.exch, IKE_EXCH_SA_INIT);
	assert_int_equal(ii.flags, IKE_FLAG_I);
	assert_int_equal(ii.msg_id, 0);
	assert_int_equal(ii.length, n);

	/* Payload chain: SA, KE, Nonce, Vendor ID, lengths adding up exactly. */
	static const uint8_t want[] = { 33, 34, 40, 43 };
	uint8_t next = b[16];
	size_t off = IKE_HDR_LEN;
	for (size_t k = 0; k < sizeof(want); k++) {
		assert_int_equal(next, want[k]);
		size_t plen = g16(b + off + 2);
		assert_true(plen >= 4 && off + plen <= n);
		if (next == 33) {
			const uint8_t *prop = b + off + 4;
			assert_int_equal(g16(prop + 2), plen - 4); /* one proposal fills the SA */
			assert_int_equal(prop[5], 1);              /* protocol IKE */
			assert_int_equal(prop[7], 4);              /* four transforms */
			for (int x = 0; x < 4; x++) {
				const uint8_t *tr = prop + 8 + 8 * x;
				assert_int_equal(tr[0], x == 3 ? 0 : 3);
				assert_int_equal(tr[4], x + 1);
				assert_int_equal(g16(tr + 6), PROBE_IKE_PRIVATE_ID);
			}
		} else if (next == 34) {
			assert_int_equal(g16(b + off + 4), PROBE_IKE_PRIVATE_ID);
			assert_memory_equal(b + off + 8, rnd, 32);
		} else if (next == 40) {
			assert_int_equal(plen, 36);
			assert_memory_equal(b + off + 4, rnd + 32, 32);
		} else {
			assert_memory_equal(b + off + 4, PROBE_IKE_VENDOR_ID, plen - 4);
		}
		next = b[off];
		off += plen;
	}
	assert_int_equal(next, 0);
	assert_int_equal(off, n);
	assert_true(probe_ike_spi_i(b, n) == SPI);

	assert_int_equal(probe_ike_build(b, PROBE_IKE_LEN - 1, SPI, rnd), 0);
	assert_int_equal(probe_ike_build(b, sizeof(b), 0, rnd), 0);
}

static void reply_accepts_alive_notifies(void **state)
{
	(void)state;
	uint8_t b[256];
	static const uint16_t ok[] = { 14, 17, 16390 };
	for (size_t i = 0; i < 3; i++) {
		struct probe_ike_reply r;
		size_t n = reply(b, SPI, 0, 34, IKE_FLAG_R, 0, 0, ok[i]);
		assert_int_equal(probe_ike_check_reply(b, n, SPI, &r), PROBE_IKE_ALIVE);
		assert_int_equal(r.notify, ok[i]);
		assert_true(r.expected);
		assert_true(r.spi_r == 0);
	}
	/* A status notify (N(NAT_DETECTION), 16388) before the error is skipped. */
	struct probe_ike_reply nt;
	size_t n = reply(b, SPI, 0, 34, IKE_FLAG_R, 0, 41, 14);
	b[IKE_HDR_LEN + 4] = 0;
	b[IKE_HDR_LEN + 5] = 0;
	b[IKE_HDR_LEN + 6] = 0x40;
	b[IKE_HDR_LEN + 7] = 0x04;
	assert_int_equal(probe_ike_check_reply(b, n, SPI, &nt), PROBE_IKE_ALIVE);
	assert_int_equal(nt.notify, 14);
	/* strongSwan sets only R; I|R from an odd responder is still a response. */
	n = reply(b, SPI, 0, 34, IKE_FLAG_R | IKE_FLAG_I, 0, 0, 17);
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_ALIVE);
}

/* Any well-formed IKE_SA_INIT answer is a live responder: a non-zero
 * SPIr (strongSwan before its connections are loaded; maybe Windows
 * RRAS), another error notify or none are details, not failures. */
static void reply_odd_but_alive(void **state)
{
	(void)state;
	uint8_t b[512];
	char d[128];
	struct probe_ike_reply r;
	size_t n = reply(b, SPI, 0x99, 34, IKE_FLAG_R, 0, 0, 14);
	assert_int_equal(probe_ike_check_reply(b, n, SPI, &r), PROBE_IKE_ALIVE);
	assert_true(r.spi_r == 0x99);
	probe_ike_detail(&r, d, sizeof(d));
	assert_string_equal(d, "responder SPI not zero (the server keeps state for probes)");
	n = reply(b, SPI, 0, 34, IKE_FLAG_R, 0, 0, 24);
	assert_int_equal(probe_ike_check_reply(b, n, SPI, &r), PROBE_IKE_ALIVE);
	assert_int_equal(r.notify, 24);
	assert_false(r.expected);
	probe_ike_detail(&r, d, sizeof(d));
	assert_string_equal(d, "error notify 24");
	n = reply(b, SPI, 0, 34, IKE_FLAG_R, 0, 0, 16388); /* status only */
	assert_int_equal(probe_ike_check_reply(b, n, SPI, &r), PROBE_IKE_ALIVE);
	probe_ike_detail(&r, d, sizeof(d));
	assert_string_equal(d, "no notify");
	n = reply(b, SPI, 0x99, 34, IKE_FLAG_R, 0, 0, 24);
	assert_int_equal(probe_ike_check_reply(b, n, SPI, &r), PROBE_IKE_ALIVE);
	probe_ike_detail(&r, d, sizeof(d));
	assert_string_equal(d, "responder SPI not zero (the server keeps state for probes); "
			       "error notify 24");
	n = reply(b, SPI, 0, 34, IKE_FLAG_R, 0, 0, 17);
	assert_int_equal(probe_ike_check_reply(b, n, SPI, &r), PROBE_IKE_ALIVE);
	probe_ike_detail(&r, d, sizeof(d));
	assert_string_equal(d, "");
	/* A full IKE_SA_INIT response (server accepted and made state). */
	n = pkt_ikev2_sa_init_resp(b, sizeof(b), SPI, 0x42);
	assert_true(n > 0);
	assert_int_equal(probe_ike_check_reply(b, n, SPI, &r), PROBE_IKE_ALIVE);
	assert_true(r.spi_r != 0);
}

static void reply_rejects_bad(void **state)
{
	(void)state;
	uint8_t b[512];
	size_t n;

	n = reply(b, SPI + 1, 0, 34, IKE_FLAG_R, 0, 0, 14);
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_WRONG_SPI_I);
	n = reply(b, SPI, 0, 34, IKE_FLAG_I, 0, 0, 14);
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_NOT_RESPONSE);
	n = reply(b, SPI, 0, 37, IKE_FLAG_R, 0, 0, 14);
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_WRONG_EXCHANGE);
	n = reply(b, SPI, 0, 34, IKE_FLAG_R, 1, 0, 14);
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_WRONG_MSG_ID);

	/* Truncation: every prefix of a good reply is rejected. */
	n = reply(b, SPI, 0, 34, IKE_FLAG_R, 0, 0, 14);
	for (size_t k = 0; k < n; k++)
		assert_int_not_equal(probe_ike_check_reply(b, k, SPI, NULL), PROBE_IKE_ALIVE);
	assert_int_equal(probe_ike_check_reply(b, 20, SPI, NULL), PROBE_IKE_TRUNCATED);
	assert_int_equal(probe_ike_check_reply(b, n - 1, SPI, NULL), PROBE_IKE_TRUNCATED);
	/* Datagram longer than the IKE length field. */
	assert_int_equal(probe_ike_check_reply(b, n + 1, SPI, NULL), PROBE_IKE_BAD_LENGTH);

	/* Bogus payload lengths: too short, past the end, SPI size overrun. */
	b[IKE_HDR_LEN + 3] = 3;
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_BAD_PAYLOAD);
	b[IKE_HDR_LEN + 3] = 200;
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_BAD_PAYLOAD);
	b[IKE_HDR_LEN + 3] = 8;
	b[IKE_HDR_LEN + 5] = 4;
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_BAD_PAYLOAD);
	b[IKE_HDR_LEN + 5] = 0;
	/* Chain says another payload follows but the message ends. */
	b[IKE_HDR_LEN] = 41;
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_BAD_PAYLOAD);
	b[IKE_HDR_LEN] = 0;
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_ALIVE);

	/* IKEv1 version byte. */
	b[17] = 0x10;
	assert_int_equal(probe_ike_check_reply(b, n, SPI, NULL), PROBE_IKE_BAD_VERSION);

	assert_int_equal(probe_ike_check_reply(NULL, 0, SPI, NULL), PROBE_IKE_TRUNCATED);
	assert_string_equal(probe_ike_verdict_str(PROBE_IKE_ALIVE), "alive");
}

/* Mutated replies (run under ASan in check-san): never an out-of-range
 * verdict, and never ALIVE once the SPIi no longer matches. */
static void reply_judge_survives_mutation(void **state)
{
	(void)state;
	uint8_t good[64], b[64];
	size_t n = reply(good, SPI, 0, 34, IKE_FLAG_R, 0, 41, 14);
	uint64_t x = 88172645463325252ULL;
	int alive = 0;
	for (int it = 0; it < 50000; it++) {
		memcpy(b, good, n);
		for (int k = 0; k < 3; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			b[x % n] ^= (uint8_t)(x >> 32);
		}
		size_t len = (x >> 40) % 8 ? n : (x >> 48) % (n + 1);
		enum probe_ike_verdict v = probe_ike_check_reply(b, len, SPI, NULL);
		assert_true((unsigned)v < PROBE_IKE__MAX);
		if (memcmp(b, good, 8) != 0 && len >= 28)
			assert_int_not_equal(v, PROBE_IKE_ALIVE);
		alive += v == PROBE_IKE_ALIVE;
	}
	assert_true(alive > 0); /* mutations in ignored bytes keep it alive */
}

/* The ops the checker uses: one fresh SPIi per probe names it. */
static void ops_build_and_judge(void **state)
{
	(void)state;
	const struct probe_ops *ops = probe_ike_ops();
	struct probe p = { .ops = ops };
	struct ikelb_addr a;
	uint8_t b[PROBE_MAX_LEN], r[64];
	char why[PROBE_REASON_MAX] = "";
	uint64_t id = 0, id2 = 0;
	ikelb_addr_parse("192.0.2.1", &a);
	assert_int_equal(ops->build(&p, &a, 500, b, sizeof(b), &id), PROBE_IKE_LEN);
	assert_true(id != 0);
	assert_true(ops->reply_id(b, PROBE_IKE_LEN, &a, 500) == id);
	assert_int_equal(ops->build(&p, &a, 500, b, sizeof(b), &id2), PROBE_IKE_LEN);
	assert_true(id2 != id);
	assert_int_equal(ops->build(&p, &a, 500, b, PROBE_IKE_LEN - 1, &id2), -EMSGSIZE);

	size_t n = reply(r, id, 0, 34, IKE_FLAG_R, 0, 0, IKE_NOTIFY_COOKIE);
	assert_true(ops->judge(&p, id, r, n, why, sizeof(why)));
	n = reply(r, id, 0, 34, IKE_FLAG_R, 0, 0, 24);
	/* Still a live IKE responder: alive, the notify kept as a detail. */
	assert_true(ops->judge(&p, id, r, n, why, sizeof(why)));
	assert_string_equal(why, "error notify 24");
	assert_false(ops->judge(&p, id, r, 10, why, sizeof(why)));
	assert_string_equal(why, "truncated reply");
	assert_true(ops->reply_id(r, 10, &a, 500) == 0); /* too short to name a probe */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(probe_structure),
		cmocka_unit_test(reply_accepts_alive_notifies),
		cmocka_unit_test(reply_odd_but_alive),
		cmocka_unit_test(reply_rejects_bad),
		cmocka_unit_test(reply_judge_survives_mutation),
		cmocka_unit_test(ops_build_and_judge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
