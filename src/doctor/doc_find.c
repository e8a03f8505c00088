/* From reconstructed SAs to findings: who initiates, who answers, and the
 * patterns behind VPN error 809 (source NAT in front of the servers, the
 * servers' per-IP limits, one NAT on one server, split ports, servers whose
 * replies never come back, IKE_AUTH in IP fragments). Thresholds and what
 * to change: docs/doctor.md. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doc_find.h"

bool doc_sa_usable(const struct doc_sa *sa)
{
	return !(sa->rejects && !sa->auth_req);
}

bool doc_sa_established(const struct doc_sa *sa)
{
	return sa->init_resp && sa->auth_resp && !sa->rejects;
}

static int cmp_ev(const void *a, const void *b)
{
	const double *x = a, *y = b;
	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1]; /* ends (-1) before starts (+1) */
}

/* The most intervals [start, end] open at one instant. */
int doc_max_overlap(const double *start, const double *end, size_t n)
{
	double *ev = malloc(n * 2 * 2 * sizeof(double));
	int cur = 0, best = 0;
	if (!ev)
		return n ? 1 : 0;
	for (size_t i = 0; i < n; i++) {
		ev[4 * i] = start[i];
		ev[4 * i + 1] = 1;
		ev[4 * i + 2] = end[i];
		ev[4 * i + 3] = -1;
	}
	qsort(ev, n * 2, 2 * sizeof(double), cmp_ev);
	for (size_t i = 0; i < n * 2; i++) {
		cur += (int)ev[2 * i + 1];
		if (cur > best)
			best = cur;
	}
	free(ev);
	return best;
}

/* Half-open: from the first IKE_SA_INIT to the IKE_AUTH answer (or the
 * SA's last message). Held: until the SA's last message, or the end of the
 * capture once established. */
static void sa_span(const struct doc *d, const struct doc_sa *sa, bool half, double *s, double *e)
{
	*s = sa->t_first;
	if (half)
		*e = sa->t_auth_resp ? sa->t_auth_resp : sa->t_last;
	else
		*e = doc_sa_established(sa) ? d->c.last_ts : sa->t_last;
}

static int cmp_client(const void *a, const void *b, void *arg)
{
	const struct doc_sa *sas = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = memcmp(sas[x].client.b, sas[y].client.b, sizeof(sas[x].client.b));
	return c ? c : (x > y) - (x < y);
}

int doc_index(struct doc *d)
{
	free(d->by_client);
	d->by_client = malloc((d->nsas + 1) * sizeof(uint32_t));
	if (!d->by_client)
		return -ENOMEM;
	d->usable = 0;
	for (size_t i = 0; i < d->nsas; i++) {
		d->by_client[i] = (uint32_t)i;
		d->usable += doc_sa_usable(&d->sas[i]);
	}
	qsort_r(d->by_client, d->nsas, sizeof(uint32_t), cmp_client, d->sas);
	return 0;
}

const uint32_t *doc_client_sas(const struct doc *d, const struct ikelb_addr *a, size_t *n)
{
	size_t lo = 0, hi = d->nsas;
	while (lo < hi) { /* first SA whose client is >= a */
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(d->sas[d->by_client[mid]].client.b, a->b, sizeof(a->b)) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t pos = lo;
	if (pos < d->nsas && ikelb_addr_eq(&d->sas[d->by_client[pos]].client, a))
		return doc_next_client(d, &pos, n);
	*n = 0;
	return NULL;
}

const uint32_t *doc_next_client(const struct doc *d, size_t *pos, size_t *n)
{
	size_t start = *pos, end = start;
	if (start >= d->nsas) {
		*n = 0;
		return NULL;
	}
	const struct ikelb_addr *a = &d->sas[d->by_client[start]].client;
	while (end < d->nsas && ikelb_addr_eq(&d->sas[d->by_client[end]].client, a))
		end++;
	*pos = end;
	*n = end - start;
	return d->by_client + start;
}

/* Max concurrent SAs from client A (at server S, unless NULL). */
int doc_concurrent(const struct doc *d, const struct ikelb_addr *a, const struct ikelb_addr *s,
		   bool half)
{
	size_t cnt, n = 0;
	const uint32_t *ids = doc_client_sas(d, a, &cnt);
	double *st = malloc((cnt + 1) * sizeof(double));
	double *en = malloc((cnt + 1) * sizeof(double));
	int best = 0;
	if (st && en) {
		for (size_t k = 0; k < cnt; k++) {
			const struct doc_sa *sa = &d->sas[ids[k]];
			if (!doc_sa_usable(sa) ||
			    (s && !ikelb_addr_eq(&sa->server, s)) || (half && !sa->has_init))
				continue;
			sa_span(d, sa, half, &st[n], &en[n]);
			n++;
		}
		best = doc_max_overlap(st, en, n);
	}
	free(st);
	free(en);
	return best;
}

/* Distinct addresses, in first-seen order. */
int doc_set_add(struct doc_set *set, const struct ikelb_addr *a)
{
	for (size_t i = 0; i < set->n; i++)
		if (ikelb_addr_eq(&set->a[i], a))
			return (int)i;
	return doc_set_add_new(set, a);
}

/* Append A, known not to be in SET yet. */
int doc_set_add_new(struct doc_set *set, const struct ikelb_addr *a)
{
	struct ikelb_addr *n = doc_grow(set->a, &set->cap, set->n + 1, sizeof(*n));
	if (!n)
		return -1;
	set->a = n;
	set->a[set->n] = *a;
	return (int)set->n++;
}

void doc_set_free(struct doc_set *set)
{
	free(set->a);
	memset(set, 0, sizeof(*set));
}

void doc_roles(const struct doc *d, struct doc_set *servers, struct doc_set *clients)
{
	size_t pos = 0, n;
	const uint32_t *ids;
	for (size_t i = 0; i < d->nsas; i++)
		for (int k = 0; k < d->sas[i].nservers; k++)
			doc_set_add(servers, &d->sas[i].servers[k]);
	while ((ids = doc_next_client(d, &pos, &n)))
		doc_set_add_new(clients, &d->sas[ids[0]].client);
}

/* A client address on a server's subnet (/24, IPv6 /64): the balancer or a
 * firewall next to the servers, not a user. */
bool doc_near(const struct ikelb_addr *a, const struct doc_set *servers)
{
	for (size_t i = 0; i < servers->n; i++) {
		struct ikelb_addr x = *a, y = servers->a[i];
		int bits = ikelb_addr_is_v4(a) ? 24 : 64;
		ikelb_addr_mask(&x, bits);
		ikelb_addr_mask(&y, bits);
		if (ikelb_addr_eq(&x, &y) && !ikelb_addr_eq(a, &servers->a[i]))
			return true;
	}
	return false;
}

int doc_find_all(const struct doc *d, struct doc_report *r)
{
	struct doc_set servers = { 0 }, clients = { 0 };
	int rc = 0;

	doc_roles(d, &servers, &clients);
	for (size_t i = 0; i < servers.n && !rc; i++)
		rc = doc_find_no_reply(d, &servers.a[i], r);
	for (size_t i = 0; i < clients.n && !rc; i++)
		rc = doc_find_per_ip(d, &clients.a[i], &servers, r);
	for (size_t i = 0; i < clients.n && !rc; i++)
		rc = doc_find_nat(d, &clients.a[i], &servers, r);
	if (!rc)
		rc = doc_find_split(d, r);
	if (!rc)
		rc = doc_find_frag(d, r);
	r->counts.servers = servers.n;
	r->counts.clients = clients.n;
	doc_set_free(&servers);
	doc_set_free(&clients);
	return rc;
}
