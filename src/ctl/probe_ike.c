/* ike probe type: builder and reply judge (RFC 7296 §3), and the ops
 * that let the checker use them. See probe_ike.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "ctl/probe.h"
#include "ctl/probe_ike.h"
#include "ikelb/ike_payload.h"
#include "ikelb/ike_wire.h"

#define PROP_HDR_LEN 8
#define XFORM_LEN 8
#define NTRANSFORMS 4
#define KE_DATA_LEN 32
#define NONCE_LEN 32
#define VID_LEN (sizeof(PROBE_IKE_VENDOR_ID) - 1)

static void probe_ike_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void probe_ike_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint8_t *probe_ike_put_hdr(uint8_t *p, uint8_t next, size_t len)
{
	p[0] = next;
	p[1] = 0; /* critical bit clear: let the server skip what it ignores */
	probe_ike_put16(p + 2, (uint16_t)len);
	return p + IKE_GEN_HDR_LEN;
}

/* One proposal, transforms ENCR, PRF, INTEG, DH, all with the private-use
 * ID: no server without a private agreement can select it, so it answers
 * NO_PROPOSAL_CHOSEN before doing any DH work. */
static uint8_t *probe_ike_put_sa(uint8_t *p)
{
	static const uint8_t types[NTRANSFORMS] = { 1, 2, 3, 4 }; /* ENCR PRF INTEG DH */
	size_t prop_len = PROP_HDR_LEN + NTRANSFORMS * XFORM_LEN;

	p = probe_ike_put_hdr(p, IKE_PL_KE, IKE_GEN_HDR_LEN + prop_len);
	p[0] = 0; /* last proposal */
	p[1] = 0;
	probe_ike_put16(p + 2, (uint16_t)prop_len);
	p[4] = 1; /* proposal number */
	p[5] = 1; /* protocol IKE */
	p[6] = 0; /* SPI size: 0 in IKE_SA_INIT */
	p[7] = NTRANSFORMS;
	p += PROP_HDR_LEN;
	for (int i = 0; i < NTRANSFORMS; i++) {
		p[0] = i == NTRANSFORMS - 1 ? 0 : 3; /* 3 = more transforms */
		p[1] = 0;
		probe_ike_put16(p + 2, XFORM_LEN);
		p[4] = types[i];
		p[5] = 0;
		probe_ike_put16(p + 6, PROBE_IKE_PRIVATE_ID);
		p += XFORM_LEN;
	}
	return p;
}

size_t probe_ike_build(uint8_t *buf, size_t cap, uint64_t spi_i,
			      const uint8_t rnd[PROBE_IKE_RANDOM_LEN])
{
	if (!buf || !rnd || cap < PROBE_IKE_LEN || spi_i == 0)
		return 0;
	uint8_t *p = buf;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(spi_i >> (56 - 8 * i));
	memset(p + 8, 0, 8); /* SPIr */
	p[16] = IKE_PL_SA;
	p[17] = 0x20; /* IKEv2.0 */
	p[18] = IKE_EXCH_SA_INIT;
	p[19] = IKE_FLAG_I;
	probe_ike_put32(p + 20, 0);
	probe_ike_put32(p + 24, PROBE_IKE_LEN);
	p += IKE_HDR_LEN;

	p = probe_ike_put_sa(p);

	p = probe_ike_put_hdr(p, IKE_PL_NONCE, IKE_GEN_HDR_LEN + 4 + KE_DATA_LEN);
	probe_ike_put16(p, PROBE_IKE_PRIVATE_ID); /* DH group of the proposal */
	probe_ike_put16(p + 2, 0);
	memcpy(p + 4, rnd, KE_DATA_LEN);
	p += 4 + KE_DATA_LEN;

	p = probe_ike_put_hdr(p, IKE_PL_VENDOR, IKE_GEN_HDR_LEN + NONCE_LEN);
	memcpy(p, rnd + KE_DATA_LEN, NONCE_LEN);
	p += NONCE_LEN;

	/* Names the probe in the server's log ("received unknown vendor ID"). */
	p = probe_ike_put_hdr(p, IKE_PL_NONE, IKE_GEN_HDR_LEN + VID_LEN);
	memcpy(p, PROBE_IKE_VENDOR_ID, VID_LEN);
	p += VID_LEN;

	return (size_t)(p - buf);
}

uint64_t probe_ike_spi_i(const uint8_t *buf, size_t len)
{
	return len >= IKE_HDR_LEN ? ike_be64(buf) : 0;
}

static enum probe_ike_verdict probe_ike_check_header(const uint8_t *b, size_t len, uint64_t spi_i)
{
	if (len < IKE_HDR_LEN)
		return PROBE_IKE_TRUNCATED;
	if (b[17] >> 4 != 2)
		return PROBE_IKE_BAD_VERSION;
	uint32_t ike_len = ike_be32(b + 24);
	if (ike_len > len)
		return PROBE_IKE_TRUNCATED;
	if (ike_len != len)
		return PROBE_IKE_BAD_LENGTH;
	if (ike_be64(b) != spi_i)
		return PROBE_IKE_WRONG_SPI_I;
	if (!(b[19] & IKE_FLAG_R))
		return PROBE_IKE_NOT_RESPONSE;
	if (b[18] != IKE_EXCH_SA_INIT)
		return PROBE_IKE_WRONG_EXCHANGE;
	if (ike_be32(b + 20) != 0)
		return PROBE_IKE_WRONG_MSG_ID;
	return PROBE_IKE_ALIVE;
}

static bool probe_ike_alive_notify(uint16_t t)
{
	return t == IKE_NOTIFY_NO_PROPOSAL_CHOSEN || t == IKE_NOTIFY_INVALID_KE_PAYLOAD ||
	       t == IKE_NOTIFY_COOKIE;
}

/* The notifies a reply carries: the first liveness one and the first other
 * error (-1: none). */
struct probe_ike_notifies {
	int alive, error;
};

/* Walks the whole payload chain; false when it is malformed. */
static bool probe_ike_walk(const uint8_t *buf, size_t len, struct probe_ike_notifies *nf)
{
	struct ike_pl_iter it;
	struct ike_pl pl;
	int r;

	ike_pl_begin(&it, buf, (uint32_t)len);
	while ((r = ike_pl_next(&it, &pl)) > 0) {
		if (pl.type != IKE_PL_NOTIFY)
			continue;
		int t = ike_notify_type(&pl);
		if (t < 0)
			return false;
		if (probe_ike_alive_notify((uint16_t)t) && nf->alive < 0)
			nf->alive = t;
		else if (t < IKE_NOTIFY_STATUS_MIN && nf->error < 0)
			nf->error = t;
	}
	return r == 0;
}

/* Walks the whole chain first so a liveness notify followed by garbage is
 * still judged malformed: we only trust well-formed messages. */
enum probe_ike_verdict probe_ike_check_reply(const uint8_t *buf, size_t len, uint64_t spi_i,
					     struct probe_ike_reply *out)
{
	if (!buf)
		return PROBE_IKE_TRUNCATED;
	enum probe_ike_verdict v = probe_ike_check_header(buf, len, spi_i);
	if (v != PROBE_IKE_ALIVE)
		return v;
	struct probe_ike_notifies nf = { -1, -1 };
	if (!probe_ike_walk(buf, len, &nf))
		return PROBE_IKE_BAD_PAYLOAD;
	if (out) {
		out->spi_r = ike_be64(buf + 8);
		out->notify = nf.alive >= 0 ? nf.alive : nf.error;
		out->expected = nf.alive >= 0;
	}
	return PROBE_IKE_ALIVE;
}

void probe_ike_detail(const struct probe_ike_reply *r, char *buf, size_t cap)
{
	const char *sep = "";
	int n = 0;
	buf[0] = 0;
	if (r->spi_r) {
		n = snprintf(buf, cap, "responder SPI not zero (the server keeps state for probes)");
		sep = "; ";
	}
	if (n < 0 || (size_t)n >= cap || r->expected)
		return;
	if (r->notify < 0)
		snprintf(buf + n, cap - (size_t)n, "%sno notify", sep);
	else
		snprintf(buf + n, cap - (size_t)n, "%serror notify %d", sep, r->notify);
}

const char *probe_ike_verdict_str(enum probe_ike_verdict v)
{
	static const char *const names[PROBE_IKE__MAX] = {
		[PROBE_IKE_ALIVE] = "alive",
		[PROBE_IKE_TRUNCATED] = "truncated reply",
		[PROBE_IKE_BAD_LENGTH] = "IKE length != datagram length",
		[PROBE_IKE_BAD_VERSION] = "not IKEv2",
		[PROBE_IKE_WRONG_SPI_I] = "wrong initiator SPI",
		[PROBE_IKE_NOT_RESPONSE] = "R flag not set",
		[PROBE_IKE_WRONG_EXCHANGE] = "not IKE_SA_INIT",
		[PROBE_IKE_WRONG_MSG_ID] = "message id not 0",
		[PROBE_IKE_BAD_PAYLOAD] = "malformed payload chain",
	};
	if ((unsigned)v >= PROBE_IKE__MAX)
		return "?";
	return names[v];
}

/* ---- ops for the checker ---- */

static int probe_ike_init(struct probe *p, const struct cfg_health *hc, const struct logger *log)
{
	(void)p;
	(void)hc;
	(void)log; /* the probe is fixed: nothing configured to check or copy */
	return 0;
}

/* A fresh SPIi per probe names it: replies to older probes are strays. */
static int probe_ike_build_op(const struct probe *p, const struct ikelb_addr *to, uint16_t port,
			      uint8_t *buf, size_t cap, uint64_t *id)
{
	(void)p;
	(void)to;
	(void)port;
	uint8_t rnd[8 + PROBE_IKE_RANDOM_LEN];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return errno ? -errno : -EIO;
	uint64_t spi = ike_be64(rnd);
	if (!spi)
		spi = 1;
	size_t n = probe_ike_build(buf, cap, spi, rnd + 8);
	if (!n)
		return -EMSGSIZE;
	*id = spi;
	return (int)n;
}

static uint64_t probe_ike_reply_id(const uint8_t *buf, size_t len, const struct ikelb_addr *from,
				   uint16_t port)
{
	(void)from;
	(void)port;
	return probe_ike_spi_i(buf, len);
}

static bool probe_ike_judge(const struct probe *p, uint64_t id, const uint8_t *buf, size_t len,
			    char *reason, size_t cap)
{
	(void)p;
	struct probe_ike_reply r;
	enum probe_ike_verdict v = probe_ike_check_reply(buf, len, id, &r);
	if (v == PROBE_IKE_ALIVE) {
		probe_ike_detail(&r, reason, cap);
		return true;
	}
	snprintf(reason, cap, "%s", probe_ike_verdict_str(v));
	return false;
}

const struct probe_ops *probe_ike_ops(void)
{
	static const struct probe_ops ops = {
		.name = "ike",
		.init = probe_ike_init,
		.build = probe_ike_build_op,
		.reply_id = probe_ike_reply_id,
		.judge = probe_ike_judge,
	};
	return &ops;
}
