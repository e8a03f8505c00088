/* Test packet builders; see pkt.h. Layouts follow RFC 7296 §3 (IKEv2
 * payloads), RFC 2408 §3 (ISAKMP), RFC 3948 (UDP encapsulation) and the
 * payload order strongSwan 5.9 uses for its first messages. */
#include "pkt.h"

#include <arpa/inet.h>
#include <string.h>

/* Writer with sticky overflow: builders append freely and check once. */
struct pkt_w {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int bad;
};

static uint8_t *pkt_w_take(struct pkt_w *w, size_t n)
{
	if (w->bad || n > w->cap - w->len) {
		w->bad = 1;
		return NULL;
	}
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

static void pkt_w_u8(struct pkt_w *w, uint8_t v)
{
	uint8_t *p = pkt_w_take(w, 1);
	if (p)
		p[0] = v;
}

static void pkt_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void pkt_put32(uint8_t *p, uint32_t v)
{
	pkt_put16(p, (uint16_t)(v >> 16));
	pkt_put16(p + 2, (uint16_t)v);
}

static void pkt_put64(uint8_t *p, uint64_t v)
{
	pkt_put32(p, (uint32_t)(v >> 32));
	pkt_put32(p + 4, (uint32_t)v);
}

static void pkt_w_u16(struct pkt_w *w, uint16_t v)
{
	uint8_t *p = pkt_w_take(w, 2);
	if (p)
		pkt_put16(p, v);
}

static void pkt_w_u32(struct pkt_w *w, uint32_t v)
{
	uint8_t *p = pkt_w_take(w, 4);
	if (p)
		pkt_put32(p, v);
}

static void pkt_w_bytes(struct pkt_w *w, const void *src, size_t n)
{
	uint8_t *p = pkt_w_take(w, n);
	if (p && n)
		memcpy(p, src, n);
}

/* Deterministic filler (nonces, key shares, ciphertext): varies with the
 * seed so different SPIs give different bytes, like real traffic. */
static void pkt_w_noise(struct pkt_w *w, size_t n, uint64_t seed)
{
	uint8_t *p = pkt_w_take(w, n);
	uint64_t x = seed * 6364136223846793005ULL + 1442695040888963407ULL;
	for (size_t i = 0; p && i < n; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		p[i] = (uint8_t)(x >> 56);
	}
}

/* Generic payload header (both IKE versions); returns its offset so the
 * length can be patched once the body is written. */
static size_t pkt_w_payload(struct pkt_w *w, uint8_t next)
{
	size_t at = w->len;
	pkt_w_u8(w, next);
	pkt_w_u8(w, 0);
	pkt_w_u16(w, 0);
	return at;
}

static void pkt_w_patch_len(struct pkt_w *w, size_t at)
{
	if (!w->bad)
		pkt_put16(w->buf + at + 2, (uint16_t)(w->len - at));
}

static size_t pkt_w_done(struct pkt_w *w)
{
	return w->bad ? 0 : w->len;
}

void pkt_ike_hdr(uint8_t *h, uint64_t spi_i, uint64_t spi_r, uint8_t next_payload,
		 uint8_t version, uint8_t exch, uint8_t flags, uint32_t msg_id,
		 uint32_t length)
{
	pkt_put64(h, spi_i);
	pkt_put64(h + 8, spi_r);
	h[16] = next_payload;
	h[17] = version;
	h[18] = exch;
	h[19] = flags;
	pkt_put32(h + 20, msg_id);
	pkt_put32(h + 24, length);
}

/* Starts an IKE message (optionally behind the non-ESP marker); returns the
 * header offset for pkt_ike_finish. */
static size_t pkt_ike_start(struct pkt_w *w, int marker, uint64_t spi_i, uint64_t spi_r,
			    uint8_t np, uint8_t ver, uint8_t exch, uint8_t flags,
			    uint32_t msg_id)
{
	if (marker)
		pkt_w_u32(w, 0);
	size_t at = w->len;
	uint8_t *h = pkt_w_take(w, 28);
	if (h)
		pkt_ike_hdr(h, spi_i, spi_r, np, ver, exch, flags, msg_id, 0);
	return at;
}

static size_t pkt_ike_finish(struct pkt_w *w, size_t hdr)
{
	if (w->bad)
		return 0;
	pkt_put32(w->buf + hdr + 24, (uint32_t)(w->len - hdr));
	return w->len;
}

static void pkt_w_v2_transform(struct pkt_w *w, int last, uint8_t type, uint16_t id,
			       int keylen)
{
	size_t at = pkt_w_payload(w, last ? 0 : 3);
	pkt_w_u8(w, type);
	pkt_w_u8(w, 0);
	pkt_w_u16(w, id);
	if (keylen) {
		pkt_w_u16(w, 0x800e); /* TV attribute: Key Length */
		pkt_w_u16(w, (uint16_t)keylen);
	}
	pkt_w_patch_len(w, at);
}

static void pkt_w_v2_notify(struct pkt_w *w, uint8_t next, uint16_t type, const void *data,
			    size_t n)
{
	size_t at = pkt_w_payload(w, next);
	pkt_w_u8(w, 0); /* protocol id: none (IKE SA) */
	pkt_w_u8(w, 0); /* SPI size */
	pkt_w_u16(w, type);
	pkt_w_bytes(w, data, n);
	pkt_w_patch_len(w, at);
}

/* SA, KE, Nonce and notifies shared by the IKE_SA_INIT request and response. */
static void pkt_w_sa_init_body(struct pkt_w *w, uint64_t seed)
{
	static const uint8_t hash_algs[] = { 0, 2, 0, 3, 0, 4 }; /* SHA2-256/384/512 */
	uint8_t natd[20];
	size_t at = pkt_w_payload(w, 34); /* SA, next KE */
	size_t prop = pkt_w_payload(w, 0); /* last proposal */
	pkt_w_u8(w, 1);                     /* proposal number */
	pkt_w_u8(w, 1);                     /* protocol: IKE */
	pkt_w_u8(w, 0);                     /* SPI size */
	pkt_w_u8(w, 3);                     /* transforms */
	pkt_w_v2_transform(w, 0, 1, 20, 256); /* ENCR AES-GCM-16, 256 bit */
	pkt_w_v2_transform(w, 0, 2, 5, 0);    /* PRF HMAC-SHA2-256 */
	pkt_w_v2_transform(w, 1, 4, 19, 0);   /* DH ECP-256 */
	pkt_w_patch_len(w, prop);
	pkt_w_patch_len(w, at);

	at = pkt_w_payload(w, 40); /* KE, next Nonce */
	pkt_w_u16(w, 19);
	pkt_w_u16(w, 0);
	pkt_w_noise(w, 64, seed);
	pkt_w_patch_len(w, at);

	at = pkt_w_payload(w, 41); /* Nonce, next Notify */
	pkt_w_noise(w, 32, seed + 1);
	pkt_w_patch_len(w, at);

	memset(natd, 0x5a, sizeof(natd));
	pkt_w_v2_notify(w, 41, 16388, natd, sizeof(natd)); /* NAT_DETECTION_SOURCE_IP */
	natd[0] ^= 0xff;
	pkt_w_v2_notify(w, 41, 16389, natd, sizeof(natd)); /* NAT_DETECTION_DESTINATION_IP */
	pkt_w_v2_notify(w, 41, 16430, NULL, 0);            /* IKEV2_FRAGMENTATION_SUPPORTED */
	pkt_w_v2_notify(w, 0, 16431, hash_algs, sizeof(hash_algs));
}

size_t pkt_ikev2_sa_init_req(uint8_t *buf, size_t cap, uint64_t spi_i)
{
	struct pkt_w w = { buf, cap, 0, 0 };
	size_t hdr = pkt_ike_start(&w, 0, spi_i, 0, 33, 0x20, 34, 0x08, 0);
	pkt_w_sa_init_body(&w, spi_i);
	return pkt_ike_finish(&w, hdr);
}

size_t pkt_ikev2_sa_init_resp(uint8_t *buf, size_t cap, uint64_t spi_i, uint64_t spi_r)
{
	struct pkt_w w = { buf, cap, 0, 0 };
	size_t hdr = pkt_ike_start(&w, 0, spi_i, spi_r, 33, 0x20, 34, 0x20, 0);
	pkt_w_sa_init_body(&w, spi_r);
	return pkt_ike_finish(&w, hdr);
}

/* SK payload for AES-GCM: 8-byte IV, ciphertext, 16-byte ICV. */
static void pkt_w_sk(struct pkt_w *w, uint8_t inner_next, size_t enc_len, uint64_t seed)
{
	size_t at = pkt_w_payload(w, inner_next);
	pkt_w_noise(w, 8 + enc_len + 16, seed);
	pkt_w_patch_len(w, at);
}

size_t pkt_ikev2_auth_natt(uint8_t *buf, size_t cap, uint64_t spi_i, uint64_t spi_r,
			   uint32_t msg_id, size_t enc_len)
{
	struct pkt_w w = { buf, cap, 0, 0 };
	if (enc_len > 60000)
		return 0;
	size_t hdr = pkt_ike_start(&w, 1, spi_i, spi_r, 46, 0x20, 35, 0x08, msg_id);
	pkt_w_sk(&w, 35, enc_len, spi_i ^ msg_id); /* first inner payload: IDi */
	return pkt_ike_finish(&w, hdr);
}

size_t pkt_ikev2_informational_resp(uint8_t *buf, size_t cap, uint64_t spi_i,
				    uint64_t spi_r, uint32_t msg_id, uint8_t flags,
				    int natt)
{
	struct pkt_w w = { buf, cap, 0, 0 };
	size_t hdr = pkt_ike_start(&w, natt, spi_i, spi_r, 46, 0x20, 37, flags, msg_id);
	pkt_w_sk(&w, 0, 1, spi_r ^ msg_id); /* empty: only the pad-length byte */
	return pkt_ike_finish(&w, hdr);
}

size_t pkt_ikev1_main_mode1(uint8_t *buf, size_t cap, uint64_t cookie_i, int natt)
{
	static const uint8_t attrs[] = {
		0x80, 0x01, 0x00, 0x07, /* encryption: AES-CBC */
		0x80, 0x0e, 0x01, 0x00, /* key length 256 */
		0x80, 0x02, 0x00, 0x04, /* hash: SHA2-256 */
		0x80, 0x03, 0x00, 0x01, /* auth: pre-shared key */
		0x80, 0x04, 0x00, 0x0e, /* group: MODP-2048 */
		0x80, 0x0b, 0x00, 0x01, /* life type: seconds */
		0x00, 0x0c, 0x00, 0x04, 0x00, 0x00, 0x70, 0x80, /* life 28800 (TLV) */
	};
	static const uint8_t vid_natt[16] = { 0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45,
					      0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f };
	static const uint8_t vid_dpd[16] = { 0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9,
					     0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00 };
	struct pkt_w w = { buf, cap, 0, 0 };
	size_t hdr = pkt_ike_start(&w, natt, cookie_i, 0, 1, 0x10, 2, 0, 0);
	size_t sa = pkt_w_payload(&w, 13); /* SA, next Vendor ID */
	pkt_w_u32(&w, 1);                  /* DOI: IPsec */
	pkt_w_u32(&w, 1);                  /* situation: identity only */
	size_t prop = pkt_w_payload(&w, 0);
	pkt_w_u8(&w, 1); /* proposal number */
	pkt_w_u8(&w, 1); /* PROTO_ISAKMP */
	pkt_w_u8(&w, 0); /* SPI size */
	pkt_w_u8(&w, 1); /* transforms */
	size_t tr = pkt_w_payload(&w, 0);
	pkt_w_u8(&w, 1);    /* transform number */
	pkt_w_u8(&w, 1);    /* KEY_IKE */
	pkt_w_u16(&w, 0);
	pkt_w_bytes(&w, attrs, sizeof(attrs));
	pkt_w_patch_len(&w, tr);
	pkt_w_patch_len(&w, prop);
	pkt_w_patch_len(&w, sa);
	size_t vid = pkt_w_payload(&w, 13);
	pkt_w_bytes(&w, vid_natt, sizeof(vid_natt));
	pkt_w_patch_len(&w, vid);
	vid = pkt_w_payload(&w, 0);
	pkt_w_bytes(&w, vid_dpd, sizeof(vid_dpd));
	pkt_w_patch_len(&w, vid);
	return pkt_ike_finish(&w, hdr);
}

size_t pkt_esp(uint8_t *buf, size_t cap, uint32_t spi, uint32_t seq, size_t data_len)
{
	struct pkt_w w = { buf, cap, 0, 0 };
	pkt_w_u32(&w, spi);
	pkt_w_u32(&w, seq);
	pkt_w_noise(&w, data_len, ((uint64_t)spi << 32) | seq);
	return pkt_w_done(&w);
}

size_t pkt_natt_keepalive(uint8_t *buf, size_t cap)
{
	struct pkt_w w = { buf, cap, 0, 0 };
	pkt_w_u8(&w, 0xff);
	return pkt_w_done(&w);
}

/* RFC 1071 one's complement sum, continued from `sum`. */
static uint32_t pkt_sum(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t pkt_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Sum of the UDP pseudo-header (RFC 768 / RFC 8200 §8.1). */
static uint32_t pkt_pseudo_sum(const uint8_t *src, const uint8_t *dst, size_t alen,
			       size_t udp_len)
{
	uint32_t sum = pkt_sum(0, src, alen);
	sum = pkt_sum(sum, dst, alen);
	return sum + 17 + (uint32_t)(udp_len >> 16) + (uint32_t)(udp_len & 0xffff);
}

static void pkt_w_udp(struct pkt_w *w, const uint8_t *src, const uint8_t *dst, size_t alen,
		      uint16_t sport, uint16_t dport, const void *payload, size_t plen)
{
	size_t at = w->len;
	pkt_w_u16(w, sport);
	pkt_w_u16(w, dport);
	pkt_w_u16(w, (uint16_t)(PKT_UDP_LEN + plen));
	pkt_w_u16(w, 0);
	pkt_w_bytes(w, payload, plen);
	if (w->bad)
		return;
	uint8_t *u = w->buf + at;
	uint32_t sum = pkt_pseudo_sum(src, dst, alen, PKT_UDP_LEN + plen);
	uint16_t c = (uint16_t)~pkt_fold(pkt_sum(sum, u, PKT_UDP_LEN + plen));
	pkt_put16(u + 6, c ? c : 0xffff); /* 0 means "no checksum" on the wire */
}

static void pkt_w_ip_udp(struct pkt_w *w, const char *src, uint16_t sport, const char *dst,
			 uint16_t dport, const void *payload, size_t plen)
{
	uint8_t s[16], d[16];
	if (plen > 65000 || (plen && !payload)) {
		w->bad = 1;
	} else if (inet_pton(AF_INET, src, s) == 1 && inet_pton(AF_INET, dst, d) == 1) {
		uint8_t *ip = pkt_w_take(w, PKT_IP4_LEN);
		if (!ip)
			return;
		memset(ip, 0, PKT_IP4_LEN);
		ip[0] = 0x45;
		pkt_put16(ip + 2, (uint16_t)(PKT_IP4_LEN + PKT_UDP_LEN + plen));
		pkt_put16(ip + 4, 0x4b1d);
		ip[8] = 64;
		ip[9] = 17;
		memcpy(ip + 12, s, 4);
		memcpy(ip + 16, d, 4);
		pkt_put16(ip + 10, (uint16_t)~pkt_fold(pkt_sum(0, ip, PKT_IP4_LEN)));
		pkt_w_udp(w, s, d, 4, sport, dport, payload, plen);
	} else if (inet_pton(AF_INET6, src, s) == 1 && inet_pton(AF_INET6, dst, d) == 1) {
		uint8_t *ip = pkt_w_take(w, PKT_IP6_LEN);
		if (!ip)
			return;
		memset(ip, 0, PKT_IP6_LEN);
		ip[0] = 0x60;
		pkt_put16(ip + 4, (uint16_t)(PKT_UDP_LEN + plen));
		ip[6] = 17;
		ip[7] = 64;
		memcpy(ip + 8, s, 16);
		memcpy(ip + 24, d, 16);
		pkt_w_udp(w, s, d, 16, sport, dport, payload, plen);
	} else {
		w->bad = 1;
	}
}

size_t pkt_udp_ip(uint8_t *buf, size_t cap, const char *src, uint16_t sport,
		  const char *dst, uint16_t dport, const void *payload, size_t plen)
{
	struct pkt_w w = { buf, cap, 0, 0 };
	pkt_w_ip_udp(&w, src, sport, dst, dport, payload, plen);
	return pkt_w_done(&w);
}

size_t pkt_udp_eth(uint8_t *buf, size_t cap, const char *src, uint16_t sport,
		   const char *dst, uint16_t dport, const void *payload, size_t plen)
{
	static const uint8_t smac[6] = PKT_MAC_SRC, dmac[6] = PKT_MAC_DST;
	struct pkt_w w = { buf, cap, 0, 0 };
	pkt_w_bytes(&w, dmac, 6);
	pkt_w_bytes(&w, smac, 6);
	size_t type = w.len;
	pkt_w_u16(&w, 0);
	pkt_w_ip_udp(&w, src, sport, dst, dport, payload, plen);
	if (w.bad)
		return 0;
	pkt_put16(buf + type, (buf[PKT_ETH_LEN] >> 4) == 4 ? 0x0800 : 0x86dd);
	return w.len;
}

size_t pkt_udp_payload_off(const uint8_t *ip, size_t len)
{
	if (len >= PKT_IP4_LEN && ip[0] >> 4 == 4) {
		size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
		if (ihl < PKT_IP4_LEN || ip[9] != 17 || (ip[6] & 0x3f) || ip[7])
			return 0;
		return len >= ihl + PKT_UDP_LEN ? ihl + PKT_UDP_LEN : 0;
	}
	if (len >= PKT_IP6_LEN + PKT_UDP_LEN && ip[0] >> 4 == 6 && ip[6] == 17)
		return PKT_IP6_LEN + PKT_UDP_LEN;
	return 0;
}

int pkt_ip_udp_csum_ok(const uint8_t *ip, size_t len)
{
	size_t off = pkt_udp_payload_off(ip, len);
	if (!off)
		return 0;
	const uint8_t *u = ip + off - PKT_UDP_LEN;
	size_t ulen = (size_t)(u[4] << 8 | u[5]);
	if (ulen < PKT_UDP_LEN || off - PKT_UDP_LEN + ulen > len)
		return 0;
	uint32_t sum;
	if (ip[0] >> 4 == 4) {
		size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
		if (pkt_fold(pkt_sum(0, ip, ihl)) != 0xffff)
			return 0;
		if (u[6] == 0 && u[7] == 0)
			return 1; /* IPv4 allows "no checksum" */
		sum = pkt_pseudo_sum(ip + 12, ip + 16, 4, ulen);
	} else {
		sum = pkt_pseudo_sum(ip + 8, ip + 24, 16, ulen);
	}
	return pkt_fold(pkt_sum(sum, u, ulen)) == 0xffff;
}
