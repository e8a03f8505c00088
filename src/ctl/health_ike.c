/* IKE health probe: builder and reply judge (RFC 7296 §3). Pure functions,
 * no I/O, so the unit tests and the fuzzer can drive them directly. */
#include <string.h>

#include "ctl/health.h"
#include "ikelb/ike_wire.h"

#define PL_NONE 0
#define PL_SA 33
#define PL_KE 34
#define PL_NONCE 40
#define PL_NOTIFY 41
#define PL_VENDOR 43

#define GEN_HDR_LEN 4
#define PROP_HDR_LEN 8
#define XFORM_LEN 8
#define NTRANSFORMS 4
#define KE_DATA_LEN 32
#define NONCE_LEN 32
#define VID_LEN (sizeof(HEALTH_IKE_VENDOR_ID) - 1)
/* A real reply carries a handful of payloads; this bounds the walk. */
#define MAX_PAYLOADS 32

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

static uint8_t *put_gen_hdr(uint8_t *p, uint8_t next, size_t len)
{
	p[0] = next;
	p[1] = 0; /* critical bit clear: let the server skip what it ignores */
	put16(p + 2, (uint16_t)len);
	return p + GEN_HDR_LEN;
}

/* One proposal, transforms ENCR, PRF, INTEG, DH, all with the private-use
 * ID: no server without a private agreement can select it, so it answers
 * NO_PROPOSAL_CHOSEN before doing any DH work. */
static uint8_t *put_sa(uint8_t *p)
{
	static const uint8_t types[NTRANSFORMS] = { 1, 2, 3, 4 }; /* ENCR PRF INTEG DH */
	size_t prop_len = PROP_HDR_LEN + NTRANSFORMS * XFORM_LEN;

	p = put_gen_hdr(p, PL_KE, GEN_HDR_LEN + prop_len);
	p[0] = 0; /* last proposal */
	p[1] = 0;
	put16(p + 2, (uint16_t)prop_len);
	p[4] = 1; /* proposal number */
	p[5] = 1; /* protocol IKE */
	p[6] = 0; /* SPI size: 0 in IKE_SA_INIT */
	p[7] = NTRANSFORMS;
	p += PROP_HDR_LEN;
	for (int i = 0; i < NTRANSFORMS; i++) {
		p[0] = i == NTRANSFORMS - 1 ? 0 : 3; /* 3 = more transforms */
		p[1] = 0;
		put16(p + 2, XFORM_LEN);
		p[4] = types[i];
		p[5] = 0;
		put16(p + 6, HEALTH_IKE_PRIVATE_ID);
		p += XFORM_LEN;
	}
	return p;
}

size_t health_ike_build_probe(uint8_t *buf, size_t cap, uint64_t spi_i,
			      const uint8_t rnd[HEALTH_IKE_RANDOM_LEN])
{
	if (!buf || !rnd || cap < HEALTH_IKE_PROBE_LEN || spi_i == 0)
		return 0;
	uint8_t *p = buf;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(spi_i >> (56 - 8 * i));
	memset(p + 8, 0, 8); /* SPIr */
	p[16] = PL_SA;
	p[17] = 0x20; /* IKEv2.0 */
	p[18] = IKE_EXCH_SA_INIT;
	p[19] = IKE_FLAG_I;
	put32(p + 20, 0);
	put32(p + 24, HEALTH_IKE_PROBE_LEN);
	p += IKE_HDR_LEN;

	p = put_sa(p);

	p = put_gen_hdr(p, PL_NONCE, GEN_HDR_LEN + 4 + KE_DATA_LEN);
	put16(p, HEALTH_IKE_PRIVATE_ID); /* DH group of the proposal */
	put16(p + 2, 0);
	memcpy(p + 4, rnd, KE_DATA_LEN);
	p += 4 + KE_DATA_LEN;

	p = put_gen_hdr(p, PL_VENDOR, GEN_HDR_LEN + NONCE_LEN);
	memcpy(p, rnd + KE_DATA_LEN, NONCE_LEN);
	p += NONCE_LEN;

	/* Names the probe in the server's log ("received unknown vendor ID"). */
	p = put_gen_hdr(p, PL_NONE, GEN_HDR_LEN + VID_LEN);
	memcpy(p, HEALTH_IKE_VENDOR_ID, VID_LEN);
	p += VID_LEN;

	return (size_t)(p - buf);
}

uint64_t health_ike_spi_i(const uint8_t *buf, size_t len)
{
	return len >= IKE_HDR_LEN ? get64(buf) : 0;
}

static enum health_ike_verdict check_header(const uint8_t *b, size_t len, uint64_t spi_i)
{
	if (len < IKE_HDR_LEN)
		return HEALTH_IKE_TRUNCATED;
	if (b[17] >> 4 != 2)
		return HEALTH_IKE_BAD_VERSION;
	uint32_t ike_len = get32(b + 24);
	if (ike_len > len)
		return HEALTH_IKE_TRUNCATED;
	if (ike_len != len)
		return HEALTH_IKE_BAD_LENGTH;
	if (get64(b) != spi_i)
		return HEALTH_IKE_WRONG_SPI_I;
	if (!(b[19] & IKE_FLAG_R))
		return HEALTH_IKE_NOT_RESPONSE;
	if (b[18] != IKE_EXCH_SA_INIT)
		return HEALTH_IKE_WRONG_EXCHANGE;
	if (get32(b + 20) != 0)
		return HEALTH_IKE_WRONG_MSG_ID;
	if (get64(b + 8) != 0)
		return HEALTH_IKE_SPI_R_NONZERO;
	return HEALTH_IKE_ALIVE;
}

static bool is_alive_notify(uint16_t t)
{
	return t == IKE_NOTIFY_NO_PROPOSAL_CHOSEN || t == IKE_NOTIFY_INVALID_KE_PAYLOAD ||
	       t == IKE_NOTIFY_COOKIE;
}

/* Walks the whole chain first so a liveness notify followed by garbage is
 * still judged malformed: we only trust well-formed messages. */
enum health_ike_verdict health_ike_check_reply(const uint8_t *buf, size_t len, uint64_t spi_i,
					       uint16_t *notify)
{
	if (!buf)
		return HEALTH_IKE_TRUNCATED;
	enum health_ike_verdict v = check_header(buf, len, spi_i);
	if (v != HEALTH_IKE_ALIVE)
		return v;

	uint8_t next = buf[16];
	size_t off = IKE_HDR_LEN;
	int found = -1, bad_error = -1;
	for (int n = 0; next != PL_NONE; n++) {
		if (n >= MAX_PAYLOADS || len - off < GEN_HDR_LEN)
			return HEALTH_IKE_BAD_PAYLOAD;
		size_t plen = get16(buf + off + 2);
		if (plen < GEN_HDR_LEN || plen > len - off)
			return HEALTH_IKE_BAD_PAYLOAD;
		if (next == PL_NOTIFY) {
			/* protocol id, SPI size, notify type, then SPI and data */
			if (plen < GEN_HDR_LEN + 4 || plen < (size_t)GEN_HDR_LEN + 4 + buf[off + 5])
				return HEALTH_IKE_BAD_PAYLOAD;
			uint16_t t = get16(buf + off + 6);
			if (is_alive_notify(t) && found < 0)
				found = t;
			else if (t < 16384 && bad_error < 0) /* error types are < 16384 */
				bad_error = t;
		}
		next = buf[off];
		off += plen;
	}
	if (off != len)
		return HEALTH_IKE_BAD_PAYLOAD;
	if (found >= 0) {
		if (notify)
			*notify = (uint16_t)found;
		return HEALTH_IKE_ALIVE;
	}
	if (bad_error >= 0) {
		if (notify)
			*notify = (uint16_t)bad_error;
		return HEALTH_IKE_UNEXPECTED_NOTIFY;
	}
	return HEALTH_IKE_NO_NOTIFY;
}

const char *health_ike_verdict_str(enum health_ike_verdict v)
{
	static const char *const names[HEALTH_IKE__MAX] = {
		[HEALTH_IKE_ALIVE] = "alive",
		[HEALTH_IKE_TRUNCATED] = "truncated reply",
		[HEALTH_IKE_BAD_LENGTH] = "IKE length != datagram length",
		[HEALTH_IKE_BAD_VERSION] = "not IKEv2",
		[HEALTH_IKE_WRONG_SPI_I] = "wrong initiator SPI",
		[HEALTH_IKE_SPI_R_NONZERO] = "responder SPI not zero",
		[HEALTH_IKE_NOT_RESPONSE] = "R flag not set",
		[HEALTH_IKE_WRONG_EXCHANGE] = "not IKE_SA_INIT",
		[HEALTH_IKE_WRONG_MSG_ID] = "message id not 0",
		[HEALTH_IKE_BAD_PAYLOAD] = "malformed payload chain",
		[HEALTH_IKE_NO_NOTIFY] = "no liveness notify",
		[HEALTH_IKE_UNEXPECTED_NOTIFY] = "unexpected error notify",
	};
	if ((unsigned)v >= HEALTH_IKE__MAX)
		return "?";
	return names[v];
}
