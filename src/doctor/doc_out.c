/* The doctor's report: findings (most severe first, or `healthy`), the
 * capture's summary, and their text and JSON forms. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "doctor/doc_find.h"

const char *doc_severity_str(enum doc_severity s)
{
	return s == DOC_ERROR ? "error" : s == DOC_WARNING ? "warning" : "info";
}

const char *doc_addr_str(const struct ikelb_addr *a, char *buf, size_t len)
{
	if (!ikelb_addr_str(a, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

void doc_ts_str(double ts, char *buf, size_t len)
{
	time_t t = (time_t)ts;
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, len, "%.6f", ts);
		return;
	}
	size_t n = strlen(buf);
	snprintf(buf + n, len - n, ".%06dZ", (int)((ts - (double)t) * 1e6));
}

struct doc_finding *doc_finding_add(struct doc_report *r, const char *kind, enum doc_severity sev)
{
	size_t cap = r->nfindings;
	struct doc_finding *n = realloc(r->findings, (cap + 1) * sizeof(*n));
	if (!n)
		return NULL;
	r->findings = n;
	struct doc_finding *f = &n[r->nfindings];
	memset(f, 0, sizeof(*f));
	f->evidence = json_object();
	if (!f->evidence)
		return NULL;
	r->nfindings++;
	f->kind = kind;
	f->severity = sev;
	return f;
}

void doc_finding_addr(struct ikelb_addr *set, int *n, const struct ikelb_addr *a)
{
	for (int i = 0; i < *n; i++)
		if (ikelb_addr_eq(&set[i], a))
			return;
	if (*n < DOC_MAX_ADDRS)
		set[(*n)++] = *a;
}

json_t *doc_json_addrs(const struct ikelb_addr *a, int n)
{
	json_t *arr = json_array();
	char b[IKELB_ADDR_STRLEN];
	for (int i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_string(doc_addr_str(&a[i], b, sizeof(b))));
	return arr;
}

struct sa_totals {
	uint64_t retrans, cookies, natt, frag_supported, ike_fragmented;
};

static void count_sas(const struct doc *d, struct doc_counts *c, struct sa_totals *t)
{
	for (size_t i = 0; i < d->nsas; i++) {
		const struct doc_sa *sa = &d->sas[i];
		c->established += doc_sa_established(sa);
		c->refused += !doc_sa_usable(sa);
		t->retrans += sa->retrans;
		t->cookies += sa->cookies;
		t->natt += sa->natt;
		t->frag_supported += sa->frag_supported;
		t->ike_fragmented += sa->auth_ikefrag > 0;
	}
	c->sas = d->nsas;
	c->esp_spis = d->nesp;
}

static int healthy(const struct doc *d, struct doc_report *r)
{
	struct sa_totals t = { 0 };
	count_sas(d, &r->counts, &t);
	for (size_t i = 0; i < r->nfindings; i++)
		if (r->findings[i].severity != DOC_INFO)
			return 0;
	struct doc_finding *f = doc_finding_add(r, d->nsas ? "healthy" : "no-ike", DOC_INFO);
	if (!f)
		return -ENOMEM;
	if (!d->nsas)
		snprintf(f->summary, sizeof(f->summary),
			 "no IKEv2 SA in %llu packets: capture where the VPN traffic passes "
			 "(UDP 500, UDP 4500, ESP)", (unsigned long long)d->c.packets);
	else
		snprintf(f->summary, sizeof(f->summary),
		 "%llu IKE SAs (%llu established) between %llu clients and %llu servers; no source "
		 "NAT, per-IP limit, split ports, silent server or fragmented IKE_AUTH seen",
		 (unsigned long long)r->counts.sas, (unsigned long long)r->counts.established,
		 (unsigned long long)r->counts.clients, (unsigned long long)r->counts.servers);
	struct doc_set srv = { 0 }, cli = { 0 };
	doc_roles(d, &srv, &cli);
	for (size_t i = 0; i < srv.n; i++)
		doc_finding_addr(f->servers, &f->nservers, &srv.a[i]);
	for (size_t i = 0; i < cli.n; i++)
		doc_finding_addr(f->clients, &f->nclients, &cli.a[i]);
	doc_set_free(&srv);
	doc_set_free(&cli);
	json_object_set_new(f->evidence, "retransmissions", json_integer((json_int_t)t.retrans));
	json_object_set_new(f->evidence, "cookie_rounds", json_integer((json_int_t)t.cookies));
	json_object_set_new(f->evidence, "nat_t_sas", json_integer((json_int_t)t.natt));
	json_object_set_new(f->evidence, "ike_fragmentation_sas",
			    json_integer((json_int_t)t.frag_supported));
	json_object_set_new(f->evidence, "ike_fragmented_auth",
			    json_integer((json_int_t)t.ike_fragmented));
	json_object_set_new(f->evidence, "esp_spis", json_integer((json_int_t)d->nesp));
	return 0;
}

static int cmp_sev(const void *a, const void *b)
{
	const struct doc_finding *x = a, *y = b;
	return (int)y->severity - (int)x->severity;
}

int doc_analyze(struct doc *d, struct doc_report *r)
{
	memset(r, 0, sizeof(*r));
	int rc = doc_index(d);
	if (!rc)
		rc = doc_find_all(d, r);
	if (!rc)
		rc = healthy(d, r);
	r->counts.packets = d->c.packets;
	r->counts.ike = d->c.ike;
	r->counts.esp = d->c.esp;
	r->counts.keepalive = d->c.keepalive;
	r->counts.fragments = d->c.fragments;
	r->counts.malformed = d->c.malformed;
	r->counts.ignored = d->c.ignored;
	r->counts.first_ts = d->c.first_ts;
	r->counts.last_ts = d->c.last_ts;
	if (r->nfindings > 1)
		qsort(r->findings, r->nfindings, sizeof(*r->findings), cmp_sev);
	return rc ? rc : d->oom ? -ENOMEM : 0;
}

void doc_report_free(struct doc_report *r)
{
	for (size_t i = 0; i < r->nfindings; i++)
		json_decref(r->findings[i].evidence);
	free(r->findings);
	memset(r, 0, sizeof(*r));
}

int doc_exit_status(const struct doc_report *r)
{
	for (size_t i = 0; i < r->nfindings; i++)
		if (r->findings[i].severity == DOC_ERROR)
			return 1;
	return 0;
}

static json_t *summary_json(const struct doc_counts *c)
{
	const struct {
		const char *name;
		uint64_t v;
	} rows[] = {
		{ "sas", c->sas },         { "established", c->established },
		{ "refused", c->refused }, { "servers", c->servers },
		{ "clients", c->clients }, { "packets", c->packets },
		{ "ike_messages", c->ike }, { "esp_packets", c->esp },
		{ "esp_spis", c->esp_spis }, { "ip_fragments", c->fragments },
		{ "malformed", c->malformed }, { "ignored", c->ignored },
	};
	json_t *s = json_object();
	for (size_t i = 0; s && i < sizeof(rows) / sizeof(rows[0]); i++)
		json_object_set_new(s, rows[i].name, json_integer((json_int_t)rows[i].v));
	return s;
}

json_t *doc_report_json(const struct doc_report *r)
{
	json_t *root = json_object(), *arr = json_array();
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct doc_finding *f = &r->findings[i];
		json_t *o = json_object();
		json_object_set_new(o, "kind", json_string(f->kind));
		json_object_set_new(o, "severity", json_string(doc_severity_str(f->severity)));
		json_object_set_new(o, "summary", json_string(f->summary));
		json_object_set_new(o, "servers", doc_json_addrs(f->servers, f->nservers));
		json_object_set_new(o, "clients", doc_json_addrs(f->clients, f->nclients));
		json_object_set(o, "evidence", f->evidence);
		json_array_append_new(arr, o);
	}
	json_object_set_new(root, "findings", arr);
	json_object_set_new(root, "summary", summary_json(&r->counts));
	return root;
}

static void print_addrs(FILE *out, const char *label, const struct ikelb_addr *a, int n)
{
	char b[IKELB_ADDR_STRLEN];
	if (!n)
		return;
	fprintf(out, "    %s:", label);
	for (int i = 0; i < n; i++)
		fprintf(out, " %s", doc_addr_str(&a[i], b, sizeof(b)));
	fprintf(out, "\n");
}

static void print_evidence(FILE *out, json_t *ev)
{
	const char *k;
	json_t *v;
	int n = 0;
	json_object_foreach(ev, k, v) {
		char *s = json_dumps(v, JSON_ENCODE_ANY);
		fprintf(out, "%s%s=%s", n++ ? " " : "    evidence: ", k, s ? s : "?");
		free(s);
	}
	if (n)
		fprintf(out, "\n");
}

void doc_print_text(FILE *out, const struct doc_report *r)
{
	const struct doc_counts *c = &r->counts;
	fprintf(out, "%llu packets, %llu IKE messages, %llu IKE SAs (%llu established, "
		     "%llu refused or probes), %llu servers, %llu clients, %llu ESP packets (%llu SPIs)",
		(unsigned long long)c->packets, (unsigned long long)c->ike,
		(unsigned long long)c->sas, (unsigned long long)c->established,
		(unsigned long long)c->refused,
		(unsigned long long)c->servers, (unsigned long long)c->clients,
		(unsigned long long)c->esp, (unsigned long long)c->esp_spis);
	if (c->malformed)
		fprintf(out, ", %llu malformed", (unsigned long long)c->malformed);
	fprintf(out, "\n");
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct doc_finding *f = &r->findings[i];
		fprintf(out, "\n%s %s: %s\n", doc_severity_str(f->severity), f->kind, f->summary);
		print_addrs(out, "servers", f->servers, f->nservers);
		print_addrs(out, "clients", f->clients, f->nclients);
		print_evidence(out, f->evidence);
	}
}
