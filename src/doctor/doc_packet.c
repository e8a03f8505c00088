/* The packet layer of the doctor: link-layer framing, IPv4 and IPv6 (with
 * their fragments), UDP and raw ESP, then the shared classifier
 * (ikelb/ike_wire.h) hands IKE messages to the SA layer. Every read is
 * bounded by the bytes captured; what does not parse is counted. */
#include <stdlib.h>
#include <string.h>

#include "doctor/doc_int.h"

#define ETH_HLEN 14
#define SLL_HLEN 16
#define SLL2_HLEN 20
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86dd
#define ETH_P_VLAN 0x8100
#define ETH_P_QINQ 0x88a8
#define IPPROTO_UDP_ 17
#define IPPROTO_ESP_ 50
#define IP6_HLEN 40
#define UDP_HLEN 8
/* Fragment groups kept open at once; older ones are judged lost. */
#define DOC_MAX_FRAGS 4096

/* DLT values (pcap/dlt.h), without including libpcap here. */
enum { DLT_NULL_ = 0, DLT_EN10MB_ = 1, DLT_RAW_ = 12, DLT_RAW14_ = 14, DLT_LOOP_ = 108,
       DLT_RAW101_ = 101, DLT_LINUX_SLL_ = 113, DLT_IPV4_ = 228, DLT_IPV6_ = 229,
       DLT_LINUX_SLL2_ = 276 };

/* One IP datagram's transport, after the IP layer. */
struct doc_l4 {
	struct ikelb_addr src, dst;
	uint8_t proto;
	const uint8_t *p; /* transport header */
	size_t len;       /* bytes present */
	uint32_t id;      /* fragment identification */
	uint32_t frag_off; /* bytes */
	bool more, frag;
	bool snapped;     /* the capture kept fewer bytes than the IP header promises */
	double ts;
};

static void malformed(struct doc *d)
{
	d->c.malformed++;
}

/* ---- fragments ---- */

static struct doc_frag *frag_get(struct doc *d, const struct doc_l4 *l)
{
	for (size_t i = d->nfrags; i-- > 0;) {
		struct doc_frag *f = &d->frags[i];
		if (f->id == l->id && f->proto == l->proto && ikelb_addr_eq(&f->src, &l->src) &&
		    ikelb_addr_eq(&f->dst, &l->dst))
			return f;
	}
	if (d->nfrags >= DOC_MAX_FRAGS)
		return NULL;
	struct doc_frag *n = doc_grow(d->frags, &d->capfrags, d->nfrags + 1, sizeof(*n));
	if (!n) {
		d->oom = true;
		return NULL;
	}
	d->frags = n;
	struct doc_frag *f = &d->frags[d->nfrags++];
	*f = (struct doc_frag){ .src = l->src, .dst = l->dst, .id = l->id, .proto = l->proto,
				.sa = -1, .ts = l->ts };
	return f;
}

static struct doc_frag *frag_note(struct doc *d, const struct doc_l4 *l)
{
	d->c.fragments++;
	struct doc_frag *f = frag_get(d, l);
	if (!f)
		return NULL;
	f->nfrags++;
	f->bytes += (uint32_t)l->len;
	if (l->frag_off == 0)
		f->have_first = true;
	if (!l->more) {
		f->have_last = true;
		f->total = l->frag_off + (uint32_t)l->len;
	}
	return f;
}

/* ---- UDP and ESP ---- */

static void doc_udp(struct doc *d, const struct doc_l4 *l, struct doc_frag *f)
{
	if (l->len < UDP_HLEN) {
		malformed(d);
		return;
	}
	uint16_t sport = ike_be16(l->p), dport = ike_be16(l->p + 2), ulen = ike_be16(l->p + 4);
	if (ulen < UDP_HLEN || (!l->frag && !l->snapped && ulen > l->len)) {
		malformed(d);
		return;
	}
	bool ike500 = sport == IKE_PORT || dport == IKE_PORT;
	bool natt = sport == IKE_NATT_PORT || dport == IKE_NATT_PORT;
	if (!ike500 && !natt) {
		d->c.ignored++;
		return;
	}
	const uint8_t *pl = l->p + UDP_HLEN;
	size_t have = l->len - UDP_HLEN;
	uint32_t plen = ulen - UDP_HLEN;
	if (have > plen)
		have = plen;
	struct ike_info info;
	int cls = ike_classify(pl, pl + have, plen, natt && !ike500, &info);
	if (cls == IKE_C_KEEPALIVE) {
		d->c.keepalive++;
	} else if (cls == IKE_C_ESP) {
		doc_esp_pkt(d, &l->src, &l->dst, info.esp_spi, true);
	} else if (cls == IKE_C_IKEV2 || cls == IKE_C_IKEV1) {
		uint32_t off = info.marker ? IKE_NON_ESP_MARKER_LEN : 0;
		struct doc_msg m = { .src = l->src, .dst = l->dst, .sport = sport, .dport = dport,
				     .ts = l->ts, .ike = &info, .hdr = pl + off,
				     .present = (uint32_t)(have - off), .ipfrag = f != NULL };
		int sa = doc_sa_msg(d, &m);
		if (f) {
			f->sa = sa;
			f->exch = info.exch;
			f->request = ike_is_request(&info);
		}
	} else {
		malformed(d);
	}
}

static void doc_l4(struct doc *d, const struct doc_l4 *l)
{
	struct doc_frag *f = NULL;
	if (l->frag) {
		f = frag_note(d, l);
		if (l->frag_off != 0)
			return; /* only the first fragment holds the headers */
	}
	if (l->proto == IPPROTO_UDP_) {
		doc_udp(d, l, f);
	} else if (l->proto == IPPROTO_ESP_) {
		if (l->len < ESP_HDR_LEN) {
			malformed(d);
			return;
		}
		doc_esp_pkt(d, &l->src, &l->dst, ike_be32(l->p), false);
	} else {
		d->c.ignored++;
	}
}

/* ---- IP ---- */

static void doc_ipv4(struct doc *d, const uint8_t *p, size_t len, double ts)
{
	struct doc_l4 l = { .ts = ts };
	if (len < 20 || (p[0] & 0x0f) < 5 || (size_t)(p[0] & 0x0f) * 4 > len) {
		malformed(d);
		return;
	}
	size_t hl = (size_t)(p[0] & 0x0f) * 4, tot = ike_be16(p + 2);
	if (tot < hl) {
		malformed(d);
		return;
	}
	if (tot < len)
		len = tot; /* Ethernet padding */
	l.snapped = tot > len;
	uint32_t a, b;
	memcpy(&a, p + 12, 4);
	memcpy(&b, p + 16, 4);
	ikelb_addr_from_v4(&l.src, a);
	ikelb_addr_from_v4(&l.dst, b);
	uint16_t fo = ike_be16(p + 6);
	l.more = fo & 0x2000;
	l.frag_off = (uint32_t)(fo & 0x1fff) * 8;
	l.frag = l.more || l.frag_off;
	l.id = ike_be16(p + 4);
	l.proto = p[9];
	l.p = p + hl;
	l.len = len - hl;
	doc_l4(d, &l);
}

static bool ipv6_ext(uint8_t nh)
{
	return nh == 0 || nh == 43 || nh == 60;
}

static void doc_ipv6(struct doc *d, const uint8_t *p, size_t len, double ts)
{
	struct doc_l4 l = { .ts = ts };
	if (len < IP6_HLEN) {
		malformed(d);
		return;
	}
	size_t plen = ike_be16(p + 4);
	if (IP6_HLEN + plen < len)
		len = IP6_HLEN + plen;
	l.snapped = IP6_HLEN + plen > len;
	memcpy(l.src.b, p + 8, 16);
	memcpy(l.dst.b, p + 24, 16);
	uint8_t nh = p[6];
	size_t off = IP6_HLEN;
	for (int n = 0; n < 8 && (ipv6_ext(nh) || nh == 44); n++) {
		if (len - off < 8) {
			malformed(d);
			return;
		}
		if (nh == 44) {
			uint16_t fo = ike_be16(p + off + 2);
			l.frag = true;
			l.more = fo & 1;
			l.frag_off = fo & 0xfff8;
			l.id = ike_be32(p + off + 4);
			nh = p[off];
			off += 8;
			continue;
		}
		size_t ext = ((size_t)p[off + 1] + 1) * 8;
		if (ext > len - off) {
			malformed(d);
			return;
		}
		nh = p[off];
		off += ext;
	}
	l.proto = nh;
	l.p = p + off;
	l.len = len - off;
	doc_l4(d, &l);
}

void doc_feed_ip(struct doc *d, const uint8_t *p, size_t len, double ts)
{
	d->c.packets++;
	if (!d->c.first_ts || ts < d->c.first_ts)
		d->c.first_ts = ts;
	if (ts > d->c.last_ts)
		d->c.last_ts = ts;
	if (!p || len < 1) {
		malformed(d);
		return;
	}
	if (p[0] >> 4 == 4)
		doc_ipv4(d, p, len, ts);
	else if (p[0] >> 4 == 6)
		doc_ipv6(d, p, len, ts);
	else
		malformed(d);
}

/* ---- link layer ---- */

/* Ethernet with up to two VLAN tags: the offset of the IP header, or 0. */
static size_t eth_ip(const uint8_t *p, size_t len)
{
	size_t off = 12;
	for (int n = 0; n < 3; n++) {
		if (len < off + 2)
			return 0;
		uint16_t t = ike_be16(p + off);
		if (t == ETH_P_IP || t == ETH_P_IPV6)
			return off + 2;
		if (t != ETH_P_VLAN && t != ETH_P_QINQ)
			return 0;
		off += 4;
	}
	return 0;
}

static size_t ip_offset(int linktype, const uint8_t *p, size_t len)
{
	switch (linktype) {
	case DLT_EN10MB_: return eth_ip(p, len);
	case DLT_RAW_: case DLT_RAW14_: case DLT_RAW101_: case DLT_IPV4_: case DLT_IPV6_:
		return len ? 0 : SIZE_MAX;
	case DLT_NULL_: case DLT_LOOP_: return 4;
	case DLT_LINUX_SLL_: return SLL_HLEN;
	case DLT_LINUX_SLL2_: return SLL2_HLEN;
	default: return SIZE_MAX;
	}
}

void doc_feed_frame(struct doc *d, int linktype, const uint8_t *p, size_t caplen, double ts)
{
	size_t off = ip_offset(linktype, p, caplen);
	if (!p || off == SIZE_MAX || (linktype == DLT_EN10MB_ && off == 0) || off >= caplen) {
		d->c.packets++;
		malformed(d);
		return;
	}
	doc_feed_ip(d, p + off, caplen - off, ts);
}

struct doc *doc_new(void)
{
	return calloc(1, sizeof(struct doc));
}

void doc_free(struct doc *d)
{
	if (!d)
		return;
	free(d->sas);
	free(d->esp);
	free(d->frags);
	free(d->by_client);
	doc_idx_free(&d->sa_idx);
	doc_idx_free(&d->esp_idx);
	free(d);
}
