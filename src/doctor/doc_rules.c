/* One function per finding kind; see doc_find.h and docs/doctor.md. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "doctor/doc_find.h"

#define MANY_SAS 4     /* "many SAs from one address": below this, coincidence */
#define MAX_PORTS 64

struct pstats {
	uint32_t sas, init_req, unanswered, cookie_sas, cookies, answered, retrans;
	uint64_t spi;       /* an example */
	double ts;          /* first problem */
	uint16_t ports[MAX_PORTS];
	int nports;
};

static void add_port(struct pstats *p, uint16_t port)
{
	for (int i = 0; i < p->nports; i++)
		if (p->ports[i] == port)
			return;
	if (p->nports < MAX_PORTS)
		p->ports[p->nports++] = port;
}

static void note_problem(struct pstats *p, const struct doc_sa *sa)
{
	if (!p->spi || sa->t_first < p->ts) {
		p->spi = sa->spi_i;
		p->ts = sa->t_first;
	}
}

/* SAs from client A at server S (NULL: any). */
static void pstats(const struct doc *d, const struct ikelb_addr *a, const struct ikelb_addr *s,
		   struct pstats *p)
{
	size_t n;
	const uint32_t *ids = doc_client_sas(d, a, &n);
	memset(p, 0, sizeof(*p));
	for (size_t k = 0; k < n; k++) {
		const struct doc_sa *sa = &d->sas[ids[k]];
		if (!doc_sa_usable(sa) || (s && !ikelb_addr_eq(&sa->server, s)))
			continue;
		p->sas++;
		p->init_req += sa->init_req;
		p->retrans += sa->retrans;
		p->cookies += sa->cookies;
		add_port(p, sa->client_port);
		if (sa->init_resp || sa->auth_resp)
			p->answered++;
		if (sa->init_req && !sa->init_resp) {
			p->unanswered++;
			note_problem(p, sa);
		}
		if (sa->cookies) {
			p->cookie_sas++;
			note_problem(p, sa);
		}
	}
}

/* Counts of P added to SUM; the earlier example SPI wins. */
static void pstats_add(struct pstats *sum, const struct pstats *p)
{
	sum->sas += p->sas;
	sum->init_req += p->init_req;
	sum->retrans += p->retrans;
	sum->unanswered += p->unanswered;
	sum->cookies += p->cookies;
	sum->cookie_sas += p->cookie_sas;
	if (p->spi && (!sum->spi || p->ts < sum->ts)) {
		sum->spi = p->spi;
		sum->ts = p->ts;
	}
}

static void ev_common(json_t *ev, const struct pstats *p)
{
	char ts[40], spi[24];
	json_object_set_new(ev, "ike_sas", json_integer(p->sas));
	json_object_set_new(ev, "sa_init_requests", json_integer(p->init_req));
	json_object_set_new(ev, "retransmissions", json_integer(p->retrans));
	if (p->spi) {
		snprintf(spi, sizeof(spi), "%016llx", (unsigned long long)p->spi);
		json_object_set_new(ev, "example_spi_i", json_string(spi));
		doc_ts_str(p->ts, ts, sizeof(ts));
		json_object_set_new(ev, "first_seen", json_string(ts));
	}
}

/* Did S answer A at all (health probes and refusals included)? */
static bool answers(const struct doc *d, const struct ikelb_addr *a, const struct ikelb_addr *s)
{
	size_t n;
	const uint32_t *ids = doc_client_sas(d, a, &n);
	for (size_t k = 0; k < n; k++) {
		const struct doc_sa *sa = &d->sas[ids[k]];
		if (ikelb_addr_eq(&sa->server, s) && (sa->init_resp || sa->auth_resp))
			return true;
	}
	return false;
}

/* Did client A open an SA at server S (IKE_SA_INIT seen)? */
static bool opened_at(const struct doc *d, const uint32_t *ids, size_t n,
		      const struct ikelb_addr *s)
{
	for (size_t k = 0; k < n; k++)
		if (d->sas[ids[k]].has_init && ikelb_addr_eq(&d->sas[ids[k]].server, s))
			return true;
	return false;
}

/* Clients of server S that it never answered, summed into *sum; returns
 * how many clients it did answer. */
static uint32_t silent_clients(const struct doc *d, const struct ikelb_addr *server,
			       struct doc_set *silent, struct pstats *sum)
{
	struct pstats p;
	uint32_t answered = 0;
	size_t pos = 0, n;
	const uint32_t *ids;

	while ((ids = doc_next_client(d, &pos, &n))) {
		const struct ikelb_addr *a = &d->sas[ids[0]].client;
		if (!opened_at(d, ids, n, server))
			continue;
		bool any = answers(d, a, server);
		answered += any;
		pstats(d, a, server, &p);
		if (any || !p.init_req)
			continue;
		doc_set_add_new(silent, a);
		pstats_add(sum, &p);
	}
	return answered;
}

int doc_find_no_reply(const struct doc *d, const struct ikelb_addr *server, struct doc_report *r)
{
	struct doc_set silent = { 0 };
	struct pstats sum = { 0 };
	char sb[IKELB_ADDR_STRLEN];

	uint32_t answered = silent_clients(d, server, &silent, &sum);
	/* one lost datagram is not a finding */
	if (!silent.n || (sum.sas < 2 && sum.init_req < 2)) {
		doc_set_free(&silent);
		return 0;
	}
	struct doc_finding *f = doc_finding_add(r, "no-reply", DOC_ERROR);
	if (!f) {
		doc_set_free(&silent);
		return -ENOMEM;
	}
	doc_finding_addr(f->servers, &f->nservers, server);
	for (size_t i = 0; i < silent.n; i++)
		doc_finding_addr(f->clients, &f->nclients, &silent.a[i]);
	snprintf(f->summary, sizeof(f->summary),
		 "server %s received %u IKE_SA_INIT requests (%u IKE SAs) from %zu client%s and "
		 "never answered them; %s",
		 doc_addr_str(server, sb, sizeof(sb)), sum.init_req, sum.sas, silent.n,
		 silent.n == 1 ? "" : "s",
		 answered ? "it does answer other addresses, so its replies to these take "
			    "another path (check its default gateway or policy routes)" :
			    "it is down, or all its replies take another path");
	ev_common(f->evidence, &sum);
	json_object_set_new(f->evidence, "silent_clients", json_integer((json_int_t)silent.n));
	json_object_set_new(f->evidence, "clients_answered", json_integer(answered));
	doc_set_free(&silent);
	return 0;
}

static int per_ip_at(const struct doc *d, const struct ikelb_addr *a, const struct ikelb_addr *s,
		     struct doc_finding **f, struct doc_report *r, struct pstats *sum, int *half)
{
	struct pstats p;
	pstats(d, a, s, &p);
	if (!p.answered || !(p.unanswered + p.cookie_sas))
		return 0;
	int h = doc_concurrent(d, a, s, true);
	if (h < SWAN_COOKIE_IP)
		return 0;
	if (!*f && !(*f = doc_finding_add(r, "per-ip-limit", DOC_ERROR)))
		return -ENOMEM;
	doc_finding_addr((*f)->servers, &(*f)->nservers, s);
	if (h > *half)
		*half = h;
	pstats_add(sum, &p);
	return 0;
}

int doc_find_per_ip(const struct doc *d, const struct ikelb_addr *client,
		    const struct doc_set *servers, struct doc_report *r)
{
	struct doc_finding *f = NULL;
	struct pstats sum = { 0 };
	int half = 0;
	char cb[IKELB_ADDR_STRLEN];

	for (size_t i = 0; i < servers->n; i++)
		if (per_ip_at(d, client, &servers->a[i], &f, r, &sum, &half) < 0)
			return -ENOMEM;
	if (!f)
		return 0;
	doc_finding_addr(f->clients, &f->nclients, client);
	snprintf(f->summary, sizeof(f->summary),
		 "%s had up to %d half-open IKE SAs at once at one server; the server sent %u "
		 "COOKIE challenges and left %u IKE_SA_INIT exchanges unanswered: its per-IP "
		 "limit (strongSwan: COOKIE from %d, block from %d half-open; Windows RRAS: %d "
		 "SAs) turns clients away (error 809)",
		 doc_addr_str(client, cb, sizeof(cb)), half, sum.cookies, sum.unanswered,
		 SWAN_COOKIE_IP, SWAN_BLOCK_IP, RRAS_SAS_PER_IP);
	ev_common(f->evidence, &sum);
	json_object_set_new(f->evidence, "max_half_open", json_integer(half));
	json_object_set_new(f->evidence, "cookie_rounds", json_integer(sum.cookies));
	json_object_set_new(f->evidence, "unanswered_sa_init", json_integer(sum.unanswered));
	return 0;
}

/* Where client A's usable SAs went: *top the busiest server, the count of
 * servers returned. */
static int nat_servers(const struct doc *d, const struct ikelb_addr *a, struct ikelb_addr *top,
		       uint32_t *top_sas, struct doc_finding *f)
{
	struct doc_set set = { 0 };
	uint32_t cnt[64] = { 0 };
	size_t n;
	const uint32_t *ids = doc_client_sas(d, a, &n);
	*top_sas = 0;
	for (size_t k = 0; k < n; k++) {
		const struct doc_sa *sa = &d->sas[ids[k]];
		if (!doc_sa_usable(sa))
			continue;
		int k = doc_set_add(&set, &sa->server);
		if (k < 0 || k >= 64)
			continue;
		if (++cnt[k] > *top_sas) {
			*top_sas = cnt[k];
			*top = sa->server;
		}
		if (f)
			doc_finding_addr(f->servers, &f->nservers, &sa->server);
	}
	int nsrv = (int)set.n;
	doc_set_free(&set);
	return nsrv;
}

static int source_nat(const struct doc *d, const struct ikelb_addr *a, const struct pstats *p,
		      struct doc_report *r)
{
	int half = 0, held = 0;
	struct ikelb_addr top;
	uint32_t top_sas;
	char ab[IKELB_ADDR_STRLEN], over[200] = "";

	struct doc_finding *f = doc_finding_add(r, "source-nat", DOC_WARNING);
	if (!f)
		return -ENOMEM;
	nat_servers(d, a, &top, &top_sas, f);
	doc_finding_addr(f->clients, &f->nclients, a);
	for (int i = 0; i < f->nservers; i++) {
		int h = doc_concurrent(d, a, &f->servers[i], true);
		int c = doc_concurrent(d, a, &f->servers[i], false);
		half = h > half ? h : half;
		held = c > held ? c : held;
	}
	size_t o = 0;
	if (half >= SWAN_COOKIE_IP)
		o += (size_t)snprintf(over + o, sizeof(over) - o, ", strongSwan's COOKIE threshold "
			"(%d half-open per IP)", SWAN_COOKIE_IP);
	if (half >= SWAN_BLOCK_IP)
		o += (size_t)snprintf(over + o, sizeof(over) - o, ", strongSwan's block threshold "
			"(%d)", SWAN_BLOCK_IP);
	if (held > RRAS_SAS_PER_IP)
		snprintf(over + o, sizeof(over) - o, ", Windows RRAS's %d SAs per IP",
			 RRAS_SAS_PER_IP);
	if (*over)
		f->severity = DOC_ERROR;
	snprintf(f->summary, sizeof(f->summary),
		 "the servers see %u IKE SAs (%d%% of all) from %s, spread over %d server%s: a "
		 "balancer or firewall translates the clients' source addresses; up to %d "
		 "half-open and %d held at once from this one address%s%s",
		 p->sas, (int)(100.0 * p->sas / (d->usable ? d->usable : 1)),
		 doc_addr_str(a, ab, sizeof(ab)), f->nservers, f->nservers == 1 ? "" : "s", half,
		 held, *over ? ", over " : "", *over ? over + 2 : "");
	ev_common(f->evidence, p);
	json_object_set_new(f->evidence, "max_half_open", json_integer(half));
	json_object_set_new(f->evidence, "max_concurrent", json_integer(held));
	json_object_set_new(f->evidence, "source_ports", json_integer(p->nports));
	return 0;
}

static int shared_nat(const struct doc *d, const struct ikelb_addr *a, const struct pstats *p,
		      struct doc_report *r)
{
	struct ikelb_addr top;
	uint32_t top_sas;
	char ab[IKELB_ADDR_STRLEN], sb[IKELB_ADDR_STRLEN];

	nat_servers(d, a, &top, &top_sas, NULL);
	if (p->nports < MANY_SAS || top_sas * 5 < p->sas * 4)
		return 0;
	struct doc_finding *f = doc_finding_add(r, "shared-nat", DOC_WARNING);
	if (!f)
		return -ENOMEM;
	doc_finding_addr(f->servers, &f->nservers, &top);
	doc_finding_addr(f->clients, &f->nclients, a);
	snprintf(f->summary, sizeof(f->summary),
		 "%u of %u IKE SAs from %s (%d source ports: clients behind one NAT) are on "
		 "server %s: source-IP persistence puts a whole NAT on one server and its per-IP "
		 "limits; use `persistence: ike`",
		 top_sas, p->sas, doc_addr_str(a, ab, sizeof(ab)), p->nports,
		 doc_addr_str(&top, sb, sizeof(sb)));
	ev_common(f->evidence, p);
	json_object_set_new(f->evidence, "source_ports", json_integer(p->nports));
	json_object_set_new(f->evidence, "sas_on_server", json_integer(top_sas));
	json_object_set_new(f->evidence, "max_concurrent",
			    json_integer(doc_concurrent(d, a, &top, false)));
	return 0;
}

int doc_find_nat(const struct doc *d, const struct ikelb_addr *client,
		 const struct doc_set *servers, struct doc_report *r)
{
	struct pstats p;
	struct ikelb_addr top;
	uint32_t top_sas;

	pstats(d, client, NULL, &p);
	if (p.sas < MANY_SAS)
		return 0;
	int nsrv = nat_servers(d, client, &top, &top_sas, NULL);
	if ((nsrv >= 2 || doc_near(client, servers)) && p.sas * 2 >= d->usable)
		return source_nat(d, client, &p, r);
	return shared_nat(d, client, &p, r);
}

static bool split(const struct doc_sa *sa)
{
	return doc_sa_usable(sa) && (sa->nservers > 1 || sa->auth_wrong_server || sa->invalid_spi);
}

int doc_find_split(const struct doc *d, struct doc_report *r)
{
	struct doc_finding *f = NULL;
	struct pstats p = { 0 };
	uint32_t wrong = 0, invalid = 0;

	for (size_t i = 0; i < d->nsas; i++) {
		const struct doc_sa *sa = &d->sas[i];
		if (!split(sa))
			continue;
		if (!f && !(f = doc_finding_add(r, "port-split", DOC_ERROR)))
			return -ENOMEM;
		for (int k = 0; k < sa->nservers; k++)
			doc_finding_addr(f->servers, &f->nservers, &sa->servers[k]);
		doc_finding_addr(f->clients, &f->nclients, &sa->client);
		p.sas++;
		wrong += sa->auth_wrong_server;
		invalid += sa->invalid_spi;
		note_problem(&p, sa);
	}
	if (!f)
		return 0;
	snprintf(f->summary, sizeof(f->summary),
		 "%u IKE SAs reached more than one server (%u IKE_AUTH requests at a server that "
		 "never saw their IKE_SA_INIT, %u INVALID_IKE_SPI answers): the balancer does "
		 "not keep UDP 500, UDP 4500 and ESP of one client on one server",
		 p.sas, wrong, invalid);
	ev_common(f->evidence, &p);
	json_object_set_new(f->evidence, "auth_at_other_server", json_integer(wrong));
	json_object_set_new(f->evidence, "invalid_ike_spi", json_integer(invalid));
	return 0;
}

struct fstats {
	uint32_t auth, lost, orphans;
	double ts;
	struct ikelb_addr lost_from[DOC_MAX_ADDRS]; /* senders of incomplete ones */
	int nlost_from;
};

static void frag_scan(const struct doc *d, struct doc_finding *f, struct fstats *s)
{
	for (size_t i = 0; i < d->nfrags; i++) {
		const struct doc_frag *g = &d->frags[i];
		bool whole = g->have_first && g->have_last && g->bytes >= g->total;
		if (!g->have_first) {
			s->orphans++;
			continue;
		}
		if (g->sa < 0 || g->exch != IKE_EXCH_AUTH)
			continue;
		s->auth++;
		s->lost += !whole;
		if (!whole)
			doc_finding_addr(s->lost_from, &s->nlost_from, &g->src);
		if (!s->ts || g->ts < s->ts)
			s->ts = g->ts;
		doc_finding_addr(f->servers, &f->nservers, g->request ? &g->dst : &g->src);
		doc_finding_addr(f->clients, &f->nclients, g->request ? &g->src : &g->dst);
	}
}

int doc_find_frag(const struct doc *d, struct doc_report *r)
{
	struct doc_finding tmp = { 0 };
	struct fstats s = { 0 };
	char ts[40];

	frag_scan(d, &tmp, &s);
	if (!s.auth)
		return 0;
	struct doc_finding *f = doc_finding_add(r, "fragmented-ike",
						s.lost || s.orphans ? DOC_ERROR : DOC_WARNING);
	if (!f)
		return -ENOMEM;
	memcpy(f->servers, tmp.servers, sizeof(tmp.servers));
	memcpy(f->clients, tmp.clients, sizeof(tmp.clients));
	f->nservers = tmp.nservers;
	f->nclients = tmp.nclients;
	snprintf(f->summary, sizeof(f->summary),
		 "%u IKE_AUTH messages travelled in IP fragments (no IKE fragmentation, RFC 7383), "
		 "%u of them incomplete in the capture, %u fragments without their first: "
		 "a balancer, firewall or path that drops or cannot place fragments loses these "
		 "clients",
		 s.auth, s.lost, s.orphans);
	json_object_set_new(f->evidence, "ike_auth_fragmented", json_integer(s.auth));
	json_object_set_new(f->evidence, "incomplete", json_integer(s.lost));
	json_object_set_new(f->evidence, "orphan_fragments", json_integer(s.orphans));
	json_object_set_new(f->evidence, "incomplete_from",
			    doc_json_addrs(s.lost_from, s.nlost_from));
	doc_ts_str(s.ts, ts, sizeof(ts));
	json_object_set_new(f->evidence, "first_seen", json_string(ts));
	return 0;
}
