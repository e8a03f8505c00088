/* libFuzzer target for include/ikelb/ike_wire.h.
 *
 * Input: byte 0 selects the framing and the UDP length the classifier is
 * told; the rest is the UDP payload present in memory (libFuzzer hands us
 * an exact-size heap buffer, so ASan flags any read past `end`).
 *   bit 0      natt (RFC 3948 framing) when set, port 500 framing when clear
 *   bits 1..2  0: plen == bytes present
 *              1: plen a little larger (first IP fragment)
 *              2: plen near 2^32 (no wrap in plen - marker)
 *              3: plen smaller than bytes present (must be MALFORMED_IP)
 *   bits 3..7  amount for variants 1..3
 * Each result is checked against the invariants of the classifier's
 * contract and against a reference model written with byte counts instead
 * of pointers; any disagreement aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ikelb/ike_wire.h"

#define FUZZ_CHECK(c)           \
	do {                    \
		if (!(c))       \
			abort(); \
	} while (0)

struct fuzz_ref {
	int cls;
	int drop;
	int marker;
};

static uint32_t fuzz_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static struct fuzz_ref fuzz_ref_out(int cls, int drop, int marker)
{
	struct fuzz_ref r = { cls, drop, marker };
	return r;
}

static struct fuzz_ref fuzz_ref_hdr(const uint8_t *h, size_t have, uint32_t len, int marker)
{
	if (len < IKE_HDR_LEN || have < IKE_HDR_LEN)
		return fuzz_ref_out(IKE_C_DROP, IKE_DROP_TOO_SHORT, marker);
	int major = h[17] >> 4;
	if (major != 1 && major != 2)
		return fuzz_ref_out(IKE_C_DROP, IKE_DROP_BAD_VERSION, marker);
	if (fuzz_rd32(h + 24) != len)
		return fuzz_ref_out(IKE_C_DROP, IKE_DROP_LEN_MISMATCH, marker);
	if (!(h[0] | h[1] | h[2] | h[3] | h[4] | h[5] | h[6] | h[7]))
		return fuzz_ref_out(IKE_C_DROP, IKE_DROP_ZERO_SPI, marker);
	return fuzz_ref_out(major == 2 ? IKE_C_IKEV2 : IKE_C_IKEV1, IKE_DROP_NONE, marker);
}

static struct fuzz_ref fuzz_ref_classify(const uint8_t *d, size_t n, uint32_t plen, int natt)
{
	if (plen < n)
		return fuzz_ref_out(IKE_C_DROP, IKE_DROP_MALFORMED_IP, 0);
	if (!natt)
		return fuzz_ref_hdr(d, n, plen, 0);
	if (plen == 1) {
		if (n == 0)
			return fuzz_ref_out(IKE_C_DROP, IKE_DROP_TOO_SHORT, 0);
		if (d[0] != 0xff)
			return fuzz_ref_out(IKE_C_DROP, IKE_DROP_BAD_KEEPALIVE, 0);
		return fuzz_ref_out(IKE_C_KEEPALIVE, IKE_DROP_NONE, 0);
	}
	if (plen < 4 || n < 4)
		return fuzz_ref_out(IKE_C_DROP, IKE_DROP_TOO_SHORT, 0);
	if (fuzz_rd32(d) == 0)
		return fuzz_ref_hdr(d + 4, n - 4, plen - 4, 1);
	if (plen < 8 || n < 8)
		return fuzz_ref_out(IKE_C_DROP, IKE_DROP_TOO_SHORT, 0);
	if (fuzz_rd32(d) < 256)
		return fuzz_ref_out(IKE_C_DROP, IKE_DROP_RESERVED_SPI, 0);
	return fuzz_ref_out(IKE_C_ESP, IKE_DROP_NONE, 0);
}

static uint32_t fuzz_plen(uint8_t sel, size_t n)
{
	uint32_t amount = sel >> 3;
	switch ((sel >> 1) & 3) {
	case 1:
		return (uint32_t)n + 1 + amount * 47;
	case 2:
		return 0xffffffffu - amount;
	case 3:
		return n > amount ? (uint32_t)(n - 1 - amount) : (uint32_t)n;
	default:
		return (uint32_t)n;
	}
}

static void fuzz_check_ike(const struct ike_info *i, const uint8_t *p, size_t n,
			   uint32_t plen, int natt)
{
	const uint8_t *h = p + (i->marker ? IKE_NON_ESP_MARKER_LEN : 0);
	FUZZ_CHECK(!i->marker || natt);
	FUZZ_CHECK(n >= IKE_HDR_LEN + (size_t)(i->marker ? 4 : 0));
	FUZZ_CHECK(i->length == plen - (i->marker ? 4u : 0u));
	FUZZ_CHECK(i->spi_i != 0 && i->spi_i == ike_be64(h));
	FUZZ_CHECK(i->spi_r == ike_be64(h + 8));
	FUZZ_CHECK(i->msg_id == fuzz_rd32(h + 20));
	FUZZ_CHECK(i->version == h[17] && i->exch == h[18] && i->flags == h[19]);
	FUZZ_CHECK(i->next_payload == h[16]);
	FUZZ_CHECK((i->version >> 4) == (i->cls == IKE_C_IKEV2 ? 2 : 1));
	FUZZ_CHECK(i->esp_spi == 0 && i->esp_seq == 0);
}

static void fuzz_check(int c, const struct ike_info *i, const uint8_t *p, size_t n,
		       uint32_t plen, int natt)
{
	FUZZ_CHECK(c == i->cls && c >= IKE_C_DROP && c < IKE_C__MAX);
	FUZZ_CHECK((i->drop != IKE_DROP_NONE) == (c == IKE_C_DROP));
	/* The classifier produces only these; the rest are the callers'. */
	FUZZ_CHECK(i->drop <= IKE_DROP_MALFORMED_IP);
	FUZZ_CHECK(i->pad == 0);
	if (plen < n)
		FUZZ_CHECK(i->drop == IKE_DROP_MALFORMED_IP);
	switch (c) {
	case IKE_C_IKEV1:
	case IKE_C_IKEV2:
		fuzz_check_ike(i, p, n, plen, natt);
		break;
	case IKE_C_KEEPALIVE:
		FUZZ_CHECK(natt && plen == 1 && n == 1 && p[0] == 0xff && !i->marker);
		break;
	case IKE_C_ESP:
		FUZZ_CHECK(natt && n >= ESP_HDR_LEN && plen >= ESP_HDR_LEN && !i->marker);
		FUZZ_CHECK(i->esp_spi >= 256 && i->esp_spi == fuzz_rd32(p));
		FUZZ_CHECK(i->esp_seq == fuzz_rd32(p + 4));
		break;
	default:
		break;
	}
	if (ike_is_new_sa(i))
		FUZZ_CHECK((c == IKE_C_IKEV1 || c == IKE_C_IKEV2) && i->spi_r == 0);
	if (ike_server_spi(i) != 0)
		FUZZ_CHECK(c == IKE_C_IKEV2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	int natt = sel & 1;
	uint32_t plen = fuzz_plen(sel, n);
	struct ike_info i;

	int c = ike_classify(p, p + n, plen, natt, &i);
	fuzz_check(c, &i, p, n, plen, natt);

	struct fuzz_ref r = fuzz_ref_classify(p, n, plen, natt);
	FUZZ_CHECK(r.cls == c && r.drop == i.drop && r.marker == i.marker);
	return 0;
}
