/* Walking an IKEv2 message's payload chain (RFC 7296 §3.2), for user space:
 * the health probe judges replies with it and `ikelb doctor` finds the
 * notifies of captured messages. Same rules as ike_wire.h: static inline,
 * no libc, every read bounded. Only the unencrypted payloads are visible:
 * after an SK (46) or SKF (53) payload the chain ends. */
#ifndef IKELB_IKE_PAYLOAD_H
#define IKELB_IKE_PAYLOAD_H

#include "ikelb/ike_wire.h"

#define IKE_PL_SK 46
#define IKE_PL_SKF 53 /* Encrypted Fragment, RFC 7383 */
#define IKE_NOTIFY_INVALID_IKE_SPI 4
#define IKE_NOTIFY_FRAGMENTATION_SUPPORTED 16430
/* A real message carries a handful of payloads; this bounds the walk. */
#define IKE_PL_MAX 32

struct ike_pl_iter {
	const __u8 *msg; /* the IKE header */
	__u32 len;       /* bytes of the message present */
	__u32 off;       /* of the next payload */
	__u8 next;       /* its type */
	__u8 count;
};

struct ike_pl {
	__u8 type;
	const __u8 *body; /* after the 4-byte generic header */
	__u32 body_len;
};

/* msg/len: a whole IKE message (len >= IKE_HDR_LEN). */
IKE_INLINE void ike_pl_begin(struct ike_pl_iter *it, const __u8 *msg, __u32 len)
{
	it->msg = msg;
	it->len = len;
	it->off = IKE_HDR_LEN;
	it->next = len >= IKE_HDR_LEN ? msg[16] : IKE_PL_NONE;
	it->count = 0;
}

/* 1 and *pl: the next payload; 0: the chain ended exactly at the end of
 * the message; -1: malformed (a length that does not fit, too many). */
IKE_INLINE int ike_pl_next(struct ike_pl_iter *it, struct ike_pl *pl)
{
	if (it->next == IKE_PL_NONE)
		return it->off == it->len ? 0 : -1;
	if (it->count >= IKE_PL_MAX || it->len - it->off < IKE_GEN_HDR_LEN)
		return -1;
	const __u8 *h = it->msg + it->off;
	__u32 plen = ike_be16(h + 2);
	if (plen < IKE_GEN_HDR_LEN || plen > it->len - it->off)
		return -1;
	pl->type = it->next;
	pl->body = h + IKE_GEN_HDR_LEN;
	pl->body_len = plen - IKE_GEN_HDR_LEN;
	/* SK and SKF hold the rest of the message; their "next payload" names
	 * the first payload inside the ciphertext. */
	it->next = pl->type == IKE_PL_SK || pl->type == IKE_PL_SKF ? IKE_PL_NONE : h[0];
	it->off += plen;
	it->count++;
	return 1;
}

/* A Notify payload's type (protocol id, SPI size, type, SPI, data), or -1
 * when the body is too short for its own SPI. */
IKE_INLINE int ike_notify_type(const struct ike_pl *pl)
{
	if (pl->type != IKE_PL_NOTIFY || pl->body_len < 4 || pl->body_len < 4u + pl->body[1])
		return -1;
	return ike_be16(pl->body + 2);
}

#endif
