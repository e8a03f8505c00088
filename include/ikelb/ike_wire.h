/* IKE / ESP-in-UDP wire classifier, shared verbatim by the BPF program and
 * user space so the kernel and user-space paths cannot disagree.
 *
 * Rules: static inline only, no libc, every read bounded by `end` before it
 * happens (the BPF verifier checks exactly this), multi-byte fields assembled
 * byte by byte so host endianness never matters.
 *
 * Wire facts: RFC 7296 §3.1 (IKEv2 header, 28 bytes), RFC 2408 §3.1 (IKEv1
 * ISAKMP header, same layout with cookies in the SPI slots), RFC 3948 §2
 * (UDP 4500: 0xFF NAT-keepalive, 4 zero bytes non-ESP marker, else ESP with
 * SPI + sequence), RFC 4303 §2.1 (SPI 1..255 reserved, 0 never on the wire).
 */
#ifndef IKELB_IKE_WIRE_H
#define IKELB_IKE_WIRE_H

#include <linux/types.h>

#ifndef IKE_INLINE
#ifdef __bpf__
#define IKE_INLINE static __attribute__((always_inline)) inline
#else
#define IKE_INLINE static inline
#endif
#endif

#define IKE_PORT 500
#define IKE_NATT_PORT 4500
#define IKE_HDR_LEN 28
#define IKE_NON_ESP_MARKER_LEN 4
#define ESP_HDR_LEN 8

/* Exchange types, RFC 7296 §3.1 and RFC 9242. */
#define IKE_EXCH_SA_INIT 34
#define IKE_EXCH_AUTH 35
#define IKE_EXCH_CREATE_CHILD_SA 36
#define IKE_EXCH_INFORMATIONAL 37
#define IKE_EXCH_INTERMEDIATE 43

/* Header flags, RFC 7296 §3.1. */
#define IKE_FLAG_I 0x08 /* sent by the original initiator */
#define IKE_FLAG_V 0x10
#define IKE_FLAG_R 0x20 /* response */

/* Payload types, RFC 7296 §3.2; every payload starts with a 4-byte
 * generic header (next payload, critical bit, length). */
#define IKE_PL_NONE 0
#define IKE_PL_SA 33
#define IKE_PL_KE 34
#define IKE_PL_NONCE 40
#define IKE_PL_NOTIFY 41
#define IKE_PL_VENDOR 43
#define IKE_PL_SK 46     /* Encrypted and Authenticated */
#define IKE_PL_SKF 53    /* its fragments (RFC 7383) */
#define IKEV1_FLAG_E 0x01 /* IKEv1: the payloads are encrypted */
#define IKE_GEN_HDR_LEN 4

/* Notify message types, RFC 7296 §3.10.1: types below 16384 report errors,
 * the rest status. The three named here are the answers a server gives to
 * an IKE_SA_INIT it will not accept, without keeping any state. */
#define IKE_NOTIFY_NO_PROPOSAL_CHOSEN 14
#define IKE_NOTIFY_INVALID_KE_PAYLOAD 17
#define IKE_NOTIFY_COOKIE 16390
#define IKE_NOTIFY_STATUS_MIN 16384

enum ike_class {
	IKE_C_DROP = 0,
	IKE_C_IKEV2 = 1,
	IKE_C_IKEV1 = 2,
	IKE_C_KEEPALIVE = 3,
	IKE_C_ESP = 4,
	IKE_C__MAX
};

/* Drop reasons; the numbering is part of the stats ABI (BPF map index). */
enum ike_drop {
	IKE_DROP_NONE = 0,
	IKE_DROP_TOO_SHORT = 1,      /* shorter than the smallest valid message */
	IKE_DROP_BAD_VERSION = 2,    /* IKE major version neither 1 nor 2 */
	IKE_DROP_LEN_MISMATCH = 3,   /* IKE length field != UDP payload length */
	IKE_DROP_ZERO_SPI = 4,       /* IKE initiator SPI / IKEv1 cookie is 0 */
	IKE_DROP_RESERVED_SPI = 5,   /* ESP SPI in the reserved range 1..255 */
	IKE_DROP_BAD_KEEPALIVE = 6,  /* 1-byte payload that is not 0xFF */
	IKE_DROP_MALFORMED_IP = 7,   /* set by callers: bad IP/UDP header */
	IKE_DROP_FRAGMENT = 8,       /* set by callers: fragment we cannot place */
	IKE_DROP_NO_SERVER = 9,      /* set by callers: no active real server */
	IKE_DROP_TABLE_FULL = 10,    /* set by callers: admission limit reached */
	IKE_DROP_SPOOFED_REPLY = 11, /* set by callers: a real server's or a VIP's source
				      * where that server / VIP cannot be (docs/security.md) */
	IKE_DROP_V4MAPPED = 12,      /* set by callers: IPv6 with an IPv4-mapped address */
	IKE_DROP_TTL_EXPIRED = 13,   /* set by callers: TTL / hop limit <= 1, left to the
				      * kernel (ICMP time exceeded), not forwarded */
	IKE_DROP_ADMIT_SERVICE = 14, /* set by callers: new SA over the service's rate */
	IKE_DROP_ADMIT_SOURCE = 15,  /* set by callers: new SA over its source's rate */
	IKE_DROP_ESP_UNKNOWN = 16,   /* set by callers: raw ESP from a client without state
				      * in ike persistence (bpf/ikelb_esp.h) */
	IKE_DROP__MAX
};

struct ike_info {
	__u64 spi_i;   /* IKEv2 SPIi / IKEv1 initiator cookie, wire bytes read big-endian */
	__u64 spi_r;   /* IKEv2 SPIr / IKEv1 responder cookie */
	__u32 msg_id;
	__u32 length;  /* IKE length field */
	__u32 esp_spi; /* ESP: SPI (host order) */
	__u32 esp_seq; /* ESP: sequence number */
	__u8 cls;      /* enum ike_class */
	__u8 drop;     /* enum ike_drop when cls == IKE_C_DROP */
	__u8 version;  /* raw IKE version byte */
	__u8 exch;
	__u8 flags;
	__u8 next_payload;
	__u8 marker;   /* 1 when a non-ESP marker preceded the IKE header */
	__u8 pad;
};

IKE_INLINE __u16 ike_be16(const __u8 *p)
{
	return (__u16)(((__u16)p[0] << 8) | (__u16)p[1]);
}

IKE_INLINE __u32 ike_be32(const __u8 *p)
{
	return ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | (__u32)p[3];
}

IKE_INLINE __u64 ike_be64(const __u8 *p)
{
	return ((__u64)ike_be32(p) << 32) | (__u64)ike_be32(p + 4);
}

IKE_INLINE int ike_drop(struct ike_info *out, int reason)
{
	out->cls = IKE_C_DROP;
	out->drop = (__u8)reason;
	return IKE_C_DROP;
}

/* Parse an IKE header at h. `len` is the IKE message length the UDP header
 * promises (payload length minus any marker). The bytes actually present may
 * be fewer when the datagram is the first IP fragment of a larger one; only
 * the fixed header must be present. */
IKE_INLINE int ike_parse_hdr(const __u8 *h, const __u8 *end, __u32 len, struct ike_info *out)
{
	if (len < IKE_HDR_LEN || h + IKE_HDR_LEN > end)
		return ike_drop(out, IKE_DROP_TOO_SHORT);

	out->spi_i = ike_be64(h);
	out->spi_r = ike_be64(h + 8);
	out->next_payload = h[16];
	out->version = h[17];
	out->exch = h[18];
	out->flags = h[19];
	out->msg_id = ike_be32(h + 20);
	out->length = ike_be32(h + 24);

	__u8 major = out->version >> 4;
	if (major != 1 && major != 2)
		return ike_drop(out, IKE_DROP_BAD_VERSION);
	if (out->length != len)
		return ike_drop(out, IKE_DROP_LEN_MISMATCH);
	if (out->spi_i == 0)
		return ike_drop(out, IKE_DROP_ZERO_SPI);
	out->cls = major == 2 ? IKE_C_IKEV2 : IKE_C_IKEV1;
	return out->cls;
}

/* Classify a UDP payload.
 *   p, end   bytes present (end exclusive)
 *   plen     UDP payload length from the UDP header (>= end - p)
 *   natt     0 for port 500 framing (bare IKE header), 1 for RFC 3948
 *            framing (UDP 4500 and any other NAT-T port)
 * Returns the class and fills *out. Never reads outside [p, end). */
IKE_INLINE int ike_classify(const __u8 *p, const __u8 *end, __u32 plen, int natt,
			    struct ike_info *out)
{
	out->spi_i = 0;
	out->spi_r = 0;
	out->msg_id = 0;
	out->length = 0;
	out->esp_spi = 0;
	out->esp_seq = 0;
	out->cls = IKE_C_DROP;
	out->drop = IKE_DROP_NONE;
	out->version = 0;
	out->exch = 0;
	out->flags = 0;
	out->next_payload = 0;
	out->marker = 0;
	out->pad = 0;

	if (p > end || plen < (__u32)(end - p))
		return ike_drop(out, IKE_DROP_MALFORMED_IP);
	if (!natt)
		return ike_parse_hdr(p, end, plen, out);

	if (plen == 1) {
		if (p + 1 > end)
			return ike_drop(out, IKE_DROP_TOO_SHORT);
		if (p[0] != 0xff)
			return ike_drop(out, IKE_DROP_BAD_KEEPALIVE);
		out->cls = IKE_C_KEEPALIVE;
		return IKE_C_KEEPALIVE;
	}
	if (plen < IKE_NON_ESP_MARKER_LEN || p + IKE_NON_ESP_MARKER_LEN > end)
		return ike_drop(out, IKE_DROP_TOO_SHORT);

	__u32 first = ike_be32(p);
	if (first == 0) {
		out->marker = 1;
		return ike_parse_hdr(p + IKE_NON_ESP_MARKER_LEN, end,
				     plen - IKE_NON_ESP_MARKER_LEN, out);
	}
	if (plen < ESP_HDR_LEN || p + ESP_HDR_LEN > end)
		return ike_drop(out, IKE_DROP_TOO_SHORT);
	if (first < 256)
		return ike_drop(out, IKE_DROP_RESERVED_SPI);
	out->esp_spi = first;
	out->esp_seq = ike_be32(p + 4);
	out->cls = IKE_C_ESP;
	return IKE_C_ESP;
}

/* RFC 3948 framing applies to every service port except the one carrying
 * bare IKE: 500, or the service's `ike_port` (a relay on high ports). */
IKE_INLINE int ike_port_is_natt(__u16 port, __u16 ike_port)
{
	return port != ike_port;
}

IKE_INLINE int ike_is_request(const struct ike_info *i)
{
	return !(i->flags & IKE_FLAG_R);
}

/* An IKE SA's opening exchange, either direction: IKEv2 IKE_SA_INIT, IKEv1
 * Identity Protection (Main Mode, 2) or Aggressive Mode (4). A spoofed
 * request makes a server answer these to any address. */
IKE_INLINE int ike_is_phase1(const struct ike_info *i)
{
	if (i->cls == IKE_C_IKEV2)
		return i->exch == IKE_EXCH_SA_INIT;
	return i->cls == IKE_C_IKEV1 && (i->exch == 2 || i->exch == 4);
}

/* A message that may create state on a balancer: the first message of a new
 * IKE SA (IKEv2 IKE_SA_INIT request, IKEv1 first Main/Aggressive Mode message;
 * both have a zero responder SPI). */
IKE_INLINE int ike_is_new_sa(const struct ike_info *i)
{
	if (i->spi_r != 0)
		return 0;
	if (i->cls == IKE_C_IKEV2)
		return i->exch == IKE_EXCH_SA_INIT && ike_is_request(i);
	return i->cls == IKE_C_IKEV1 && ike_is_phase1(i);
}

/* The SPI the server chose, as seen in a client->server IKEv2 message: the
 * responder SPI when the client is the original initiator, the initiator SPI
 * when the server initiated the SA. 0 when the server has not chosen yet. */
IKE_INLINE __u64 ike_server_spi(const struct ike_info *i)
{
	if (i->cls != IKE_C_IKEV2)
		return 0;
	return (i->flags & IKE_FLAG_I) ? i->spi_r : i->spi_i;
}

/* A message protected by its SA's keys (IKEv2 SK/SKF first payload, IKEv1
 * encryption flag), both SPIs set: only a peer that completed the key
 * exchange sends one. Errors and INFORMATIONALs about an SA that does not
 * exist (yet) go out in the clear, so a spoofed request can provoke those
 * but never this. */
IKE_INLINE int ike_is_protected(const struct ike_info *i)
{
	if (i->spi_r == 0)
		return 0;
	if (i->cls == IKE_C_IKEV2)
		return i->next_payload == IKE_PL_SK || i->next_payload == IKE_PL_SKF;
	return i->cls == IKE_C_IKEV1 && (i->flags & IKEV1_FLAG_E);
}

/* May this vouched client message teach its flow (client address:port ->
 * server)? Not IKEv1's clear phase-1 messages (Main Mode 3, Aggressive
 * Mode 1-2 answers): NAT-T floats the client to 4500 with the first
 * encrypted one, and a port-500 flow learned before would outlive the
 * float unused (IKE on 500 goes by its SA). IKEv2's first vouched message,
 * IKE_AUTH, is already the one that floats. */
IKE_INLINE int ike_teaches_flow(const struct ike_info *i)
{
	return !(i->cls == IKE_C_IKEV1 && !(i->flags & IKEV1_FLAG_E));
}

/* strongSwan applies spi = (random & ~spi_mask) | spi_label to the SPI read
 * in network order, so the label is a plain masked compare here. */
IKE_INLINE int ike_spi_has_label(__u64 spi, __u64 mask, __u64 label)
{
	return mask != 0 && spi != 0 && (spi & mask) == label;
}

#endif
