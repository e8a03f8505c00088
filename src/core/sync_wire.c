/* State-sync datagrams: encoding, authentication check, replay window.
 * Every read is bounds-checked against the datagram; nothing here trusts a
 * length or count before the MAC was verified, and not after either. */
#include "core/sync_wire.h"

#include <errno.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* Bytes after the common part (kind, name, server, age) for a kind, or -1. */
static int kind_len(uint8_t kind)
{
	switch (kind) {
	case SYNC_K_PERSIST: return 16;
	case SYNC_K_SA:
	case SYNC_K_HALFOPEN: return 8;
	case SYNC_K_FLOW: return 20;
	default: return -1;
	}
}

void sync_msg_init(struct sync_msg *m, uint8_t type)
{
	m->len = SYNC_HDR_LEN;
	m->count = 0;
	m->type = type;
}

int sync_msg_add(struct sync_msg *m, const struct sync_entry *e)
{
	size_t nl = strnlen(e->svc, sizeof(e->svc));
	int kl = kind_len(e->kind);

	if (kl < 0 || nl == 0 || nl > SYNC_NAME_MAX || m->count == UINT16_MAX)
		return -EINVAL;
	size_t need = 2 + nl + 16 + 4 + (size_t)kl;
	if (m->len + need + SYNC_MAC_LEN > sizeof(m->buf))
		return -ENOSPC;
	uint8_t *p = m->buf + m->len;
	*p++ = e->kind;
	*p++ = (uint8_t)nl;
	memcpy(p, e->svc, nl);
	p += nl;
	memcpy(p, &e->server, 16);
	put32(p + 16, e->age_s);
	p += 20;
	if (e->kind == SYNC_K_SA || e->kind == SYNC_K_HALFOPEN) {
		memcpy(p, &e->spi, 8); /* as stored: the tables' byte order */
	} else {
		memcpy(p, &e->client, 16);
		if (e->kind == SYNC_K_FLOW) {
			put16(p + 16, e->cport);
			put16(p + 18, e->vport);
		}
	}
	m->len += need;
	m->count++;
	return 0;
}

int sync_msg_seal(struct sync_msg *m, const struct sync_hdr *h, const struct sync_auth *a)
{
	uint8_t *b = m->buf;

	memcpy(b, SYNC_MAGIC, 4);
	b[4] = SYNC_VERSION;
	b[5] = m->type;
	put16(b + 6, m->count);
	put32(b + 8, h->node_id);
	put32(b + 12, h->epoch);
	put64(b + 16, h->seq);
	int rc = a->mac(a->key, a->klen, b, m->len, b + m->len);
	if (rc < 0)
		return rc;
	m->len += SYNC_MAC_LEN;
	return 0;
}

int sync_memeq_ct(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;
	for (size_t i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d;
}

int sync_open(const uint8_t *buf, size_t len, const struct sync_auth *a, struct sync_hdr *h)
{
	uint8_t mac[SYNC_MAC_LEN];

	if (len < SYNC_HDR_LEN + SYNC_MAC_LEN || len > SYNC_MTU || memcmp(buf, SYNC_MAGIC, 4))
		return -EBADMSG;
	if (buf[4] != SYNC_VERSION)
		return -EPROTONOSUPPORT;
	size_t body = len - SYNC_MAC_LEN;
	if (a->mac(a->key, a->klen, buf, body, mac) < 0 ||
	    sync_memeq_ct(mac, buf + body, SYNC_MAC_LEN))
		return -EACCES;
	h->version = buf[4];
	h->type = buf[5];
	h->count = get16(buf + 6);
	h->node_id = get32(buf + 8);
	h->epoch = get32(buf + 12);
	h->seq = get64(buf + 16);
	return 0;
}

void sync_iter_init(struct sync_iter *it, const uint8_t *buf, size_t len, uint16_t count)
{
	size_t body = len >= SYNC_HDR_LEN + SYNC_MAC_LEN ? len - SYNC_MAC_LEN : SYNC_HDR_LEN;
	it->p = buf + SYNC_HDR_LEN;
	it->end = buf + (body < SYNC_HDR_LEN ? SYNC_HDR_LEN : body);
	it->left = count;
}

int sync_iter_next(struct sync_iter *it, struct sync_entry *e)
{
	if (it->left == 0)
		return it->p == it->end ? 0 : -EBADMSG; /* trailing bytes: malformed */
	size_t room = (size_t)(it->end - it->p);
	if (room < 2)
		return -EBADMSG;
	int kl = kind_len(it->p[0]);
	size_t nl = it->p[1];
	if (kl < 0 || nl == 0 || nl > SYNC_NAME_MAX || room < 2 + nl + 20 + (size_t)kl)
		return -EBADMSG;
	memset(e, 0, sizeof(*e));
	e->kind = it->p[0];
	const uint8_t *p = it->p + 2;
	memcpy(e->svc, p, nl);
	if (memchr(e->svc, 0, nl))
		return -EBADMSG;
	p += nl;
	memcpy(&e->server, p, 16);
	e->age_s = get32(p + 16);
	p += 20;
	if (e->kind == SYNC_K_SA || e->kind == SYNC_K_HALFOPEN) {
		memcpy(&e->spi, p, 8);
	} else {
		memcpy(&e->client, p, 16);
		if (e->kind == SYNC_K_FLOW) {
			e->cport = get16(p + 16);
			e->vport = get16(p + 18);
		}
	}
	it->p = p + kl;
	it->left--;
	return 1;
}

static int replay_reset(struct sync_replay *r, const struct sync_hdr *h)
{
	*r = (struct sync_replay){ .init = true, .node_id = h->node_id, .epoch = h->epoch,
				   .top = h->seq, .bits = 1 };
	return 0;
}

int sync_replay_check(struct sync_replay *r, const struct sync_hdr *h)
{
	if (!r->init || h->epoch > r->epoch)
		return replay_reset(r, h);
	/* A restarted sender within the same second: a new node id, same epoch. */
	if (h->epoch < r->epoch || h->seq == 0)
		return -EALREADY;
	if (h->node_id != r->node_id)
		return replay_reset(r, h);
	if (h->seq > r->top) {
		uint64_t shift = h->seq - r->top;
		r->bits = shift >= SYNC_REPLAY_WINDOW ? 0 : r->bits << shift;
		r->bits |= 1;
		r->top = h->seq;
		return 0;
	}
	uint64_t back = r->top - h->seq;
	if (back >= SYNC_REPLAY_WINDOW || (r->bits >> back & 1))
		return -EALREADY;
	r->bits |= 1ull << back;
	return 0;
}
