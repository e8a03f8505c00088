/* IKE SA reconstruction: every IKEv2 message updates the SA of its SPIi
 * (roles from the I flag, exchanges, requests and responses, retransmits,
 * COOKIE rounds and rejections, NAT-T, the servers it reached), and ESP
 * packets are counted by SPI. */
#include <string.h>

#include "doctor/doc_int.h"
#include "ikelb/ike_payload.h"

#define MSGID_BITS 64

static struct doc_sa *sa_get(struct doc *d, uint64_t spi_i, int *idx)
{
	int i = doc_idx_find(&d->sa_idx, spi_i);
	if (i >= 0) {
		*idx = i;
		return &d->sas[i];
	}
	struct doc_sa *n = doc_grow(d->sas, &d->capsas, d->nsas + 1, sizeof(*n));
	if (!n)
		return NULL;
	d->sas = n;
	if (doc_idx_put(&d->sa_idx, spi_i, (uint32_t)d->nsas) < 0)
		return NULL;
	*idx = (int)d->nsas++;
	memset(&d->sas[*idx], 0, sizeof(d->sas[*idx]));
	d->sas[*idx].spi_i = spi_i;
	return &d->sas[*idx];
}

static void sa_add_server(struct doc_sa *sa, const struct ikelb_addr *a)
{
	for (int i = 0; i < sa->nservers; i++)
		if (ikelb_addr_eq(&sa->servers[i], a))
			return;
	if (sa->nservers < DOC_SA_MAX_SERVERS)
		sa->servers[sa->nservers++] = *a;
}

static bool sa_saw_server(const struct doc_sa *sa, const struct ikelb_addr *a)
{
	for (int i = 0; i < sa->nservers; i++)
		if (ikelb_addr_eq(&sa->servers[i], a))
			return true;
	return false;
}

/* The first message fixes client and server; later ones add servers. */
static void sa_roles(struct doc_sa *sa, const struct doc_msg *m, bool from_initiator)
{
	const struct ikelb_addr *cli = from_initiator ? &m->src : &m->dst;
	const struct ikelb_addr *srv = from_initiator ? &m->dst : &m->src;
	if (!sa->msgs) {
		sa->client = *cli;
		sa->server = *srv;
		sa->client_port = from_initiator ? m->sport : m->dport;
		sa->server_port = from_initiator ? m->dport : m->sport;
		sa->t_first = m->ts;
	} else if (!ikelb_addr_eq(&sa->client, cli)) {
		sa->client_moves++;
		sa->client = *cli;
	}
	sa_add_server(sa, srv);
}

/* Notifies of an unencrypted message (the whole message must be here). */
static void sa_notifies(struct doc_sa *sa, const struct doc_msg *m)
{
	struct ike_pl_iter it;
	struct ike_pl pl;

	if (m->present != m->ike->length)
		return;
	ike_pl_begin(&it, m->hdr, m->present);
	while (ike_pl_next(&it, &pl) > 0) {
		int t = ike_notify_type(&pl);
		if (t == IKE_NOTIFY_COOKIE)
			sa->cookies++;
		else if (t == IKE_NOTIFY_INVALID_IKE_SPI)
			sa->invalid_spi++;
		else if (t == IKE_NOTIFY_FRAGMENTATION_SUPPORTED)
			sa->frag_supported = true;
		else if (t >= 0 && t < IKE_NOTIFY_STATUS_MIN && m->ike->exch == IKE_EXCH_SA_INIT) {
			sa->rejects++;
			sa->reject_notify = (uint16_t)t;
		}
	}
}

/* A request whose message id this side already sent; IKE_SA_INIT after a
 * COOKIE or INVALID_KE answer is a new round, not a retransmission. */
static bool sa_retransmit(struct doc_sa *sa, const struct doc_msg *m, bool from_initiator)
{
	const struct ike_info *i = m->ike;
	if (i->exch == IKE_EXCH_SA_INIT) {
		bool again = sa->has_init && !sa->init_answered;
		sa->has_init = true;
		sa->init_answered = false;
		return again;
	}
	if (i->msg_id >= MSGID_BITS)
		return false;
	uint64_t bit = 1ULL << i->msg_id;
	uint64_t *seen = &sa->req_seen[from_initiator ? 0 : 1];
	bool again = *seen & bit;
	*seen |= bit;
	return again;
}

static void sa_request(struct doc_sa *sa, const struct doc_msg *m, bool from_initiator)
{
	const struct ike_info *i = m->ike;
	if (sa_retransmit(sa, m, from_initiator))
		sa->retrans++;
	if (i->exch == IKE_EXCH_SA_INIT) {
		sa->init_req++;
	} else if (i->exch == IKE_EXCH_AUTH && from_initiator) {
		sa->auth_req++;
		if (sa->has_init && !sa_saw_server(sa, &m->dst)) {
			sa->auth_wrong_server++;
			sa->auth_wrong_at = m->dst;
		}
		if (m->ipfrag)
			sa->auth_ipfrag++;
		if (i->next_payload == IKE_PL_SKF)
			sa->auth_ikefrag++;
	}
	if (m->dport == IKE_NATT_PORT || m->sport == IKE_NATT_PORT)
		sa->natt = true;
}

static void sa_response(struct doc_sa *sa, const struct doc_msg *m)
{
	const struct ike_info *i = m->ike;
	if (i->exch == IKE_EXCH_SA_INIT) {
		sa->init_resp++;
		sa->init_answered = true;
		if (!sa->t_init_resp)
			sa->t_init_resp = m->ts;
		if (i->spi_r)
			sa->spi_r = i->spi_r;
	} else if (i->exch == IKE_EXCH_AUTH) {
		sa->auth_resp++;
		if (!sa->t_auth_resp)
			sa->t_auth_resp = m->ts;
	}
}

int doc_sa_msg(struct doc *d, const struct doc_msg *m)
{
	const struct ike_info *i = m->ike;
	int idx;

	d->c.ike++;
	if (i->cls != IKE_C_IKEV2) {
		d->ikev1++;
		return -1;
	}
	struct doc_sa *sa = sa_get(d, i->spi_i, &idx);
	if (!sa) {
		d->oom = true;
		return -1;
	}
	bool from_initiator = i->flags & IKE_FLAG_I;
	/* Requests first: an IKE_AUTH at a server the SA never reached is
	 * judged before sa_roles adds that server. */
	if (ike_is_request(i))
		sa_request(sa, m, from_initiator);
	sa_roles(sa, m, from_initiator);
	if (!ike_is_request(i))
		sa_response(sa, m);
	sa_notifies(sa, m);
	sa->msgs++;
	sa->t_last = m->ts;
	return idx;
}

void doc_esp_pkt(struct doc *d, const struct ikelb_addr *src, const struct ikelb_addr *dst,
		 uint32_t spi, bool udp)
{
	d->c.esp++;
	int i = doc_idx_find(&d->esp_idx, spi);
	if (i < 0) {
		struct doc_esp *n = doc_grow(d->esp, &d->capesp, d->nesp + 1, sizeof(*n));
		if (!n || doc_idx_put(&d->esp_idx, spi, (uint32_t)d->nesp) < 0) {
			if (n)
				d->esp = n;
			d->oom = true;
			return;
		}
		d->esp = n;
		i = (int)d->nesp++;
		d->esp[i] = (struct doc_esp){ .spi = spi, .src = *src, .dst = *dst, .udp = udp };
	}
	d->esp[i].packets++;
}
