/* GET /metrics: the Prometheus text format (0.0.4) from a view. One
 * family per concept, every family with HELP and TYPE, units in the names,
 * label values only from the configuration or fixed lists (bounded), never
 * a measured value in a label. Families are the outer loop: Prometheus
 * wants a family's samples together under its TYPE line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/report.h"
#include "ctl/report_sync.h"
#include "ikelb/ike_wire.h"
#include "ikelb/version.h"

/* A growing text buffer; a failed allocation marks it failed instead of
 * silently truncating the page. */
struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	while (!b->failed) {
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			break;
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *np = realloc(b->p, cap);
		if (!np)
			break;
		b->p = np;
		b->cap = cap;
	}
	b->failed = true;
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef unsigned long long ull;

/* ---- per service: one label list per concept ---- */

struct labelled {
	int ctr;               /* enum svc_ctr */
	const char *value;     /* label value */
};

static const struct labelled directions[] = {
	{ SVC_CTR_RX, "in" },       /* client -> VIP, every datagram seen */
	{ SVC_CTR_FWD, "out" },     /* forwarded to a server */
	{ SVC_CTR_REPLY, "reply" }, /* server -> client, rewritten */
};

static const struct labelled classes[] = {
	{ SVC_CTR_IKEV2, "ikev2" }, { SVC_CTR_IKEV1, "ikev1" }, { SVC_CTR_ESP, "esp" },
	{ SVC_CTR_KEEPALIVE, "keepalive" }, { SVC_CTR_FRAGMENT, "fragment" },
};

static const struct labelled rules[] = {
	{ SVC_CTR_STEER_LABEL, "label" }, { SVC_CTR_STEER_FLOW, "flow" },
	{ SVC_CTR_STEER_SA, "sa" }, { SVC_CTR_STEER_PERSIST, "persist" },
	{ SVC_CTR_STEER_NEW, "new" }, { SVC_CTR_STEER_FALLBACK, "fallback" },
};

static const struct labelled drops[] = {
	{ SVC_CTR_DROP(IKE_DROP_TOO_SHORT), "too_short" },
	{ SVC_CTR_DROP(IKE_DROP_BAD_VERSION), "bad_version" },
	{ SVC_CTR_DROP(IKE_DROP_LEN_MISMATCH), "length_mismatch" },
	{ SVC_CTR_DROP(IKE_DROP_ZERO_SPI), "zero_spi" },
	{ SVC_CTR_DROP(IKE_DROP_RESERVED_SPI), "reserved_spi" },
	{ SVC_CTR_DROP(IKE_DROP_BAD_KEEPALIVE), "bad_keepalive" },
	{ SVC_CTR_DROP(IKE_DROP_MALFORMED_IP), "malformed_ip" },
	{ SVC_CTR_DROP(IKE_DROP_FRAGMENT), "fragment" },
	{ SVC_CTR_DROP(IKE_DROP_NO_SERVER), "no_server" },
	{ SVC_CTR_DROP(IKE_DROP_TABLE_FULL), "table_full" },
	{ SVC_CTR_DROP(IKE_DROP_ADMIT_SERVICE), "admit_service" },
	{ SVC_CTR_DROP(IKE_DROP_ADMIT_SOURCE), "admit_source" },
	{ SVC_CTR_DROP(IKE_DROP_ESP_UNKNOWN), "esp_unknown" },
};

static const struct labelled cookies[] = {
	{ SVC_CTR_COOKIE_SENT, "sent" }, { SVC_CTR_COOKIE_VALID, "valid" },
	{ SVC_CTR_COOKIE_INVALID, "invalid" },
};

/* tcp_ports (docs/tcp.md): one family, so UDP families keep their sums. */
static const struct labelled tcp_kinds[] = {
	{ SVC_CTR_TCP_RX, "in" }, { SVC_CTR_TCP_FWD, "out" }, { SVC_CTR_TCP_NEW, "new" },
	{ SVC_CTR_TCP_REPLY, "reply" }, { SVC_CTR_TCP_DROP, "drop" },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct svc_family {
	const char *name, *help, *label;
	const struct labelled *vals;
	size_t n;
	bool bytes;
};

static const struct svc_family svc_families[] = {
	{ "ikelb_packets_total", "UDP datagrams by direction: in (client to VIP, all seen), "
	  "out (forwarded to a server), reply (server to client).", "direction", directions,
	  NELEM(directions), false },
	{ "ikelb_bytes_total", "Bytes of those datagrams (UDP payload), by direction.",
	  "direction", directions, NELEM(directions), true },
	{ "ikelb_classified_packets_total", "Client datagrams by what the classifier saw.",
	  "class", classes, NELEM(classes), false },
	{ "ikelb_steering_decisions_total", "Client datagrams placed, by the rule that "
	  "placed them (sums to direction=out).", "rule", rules, NELEM(rules), false },
	{ "ikelb_drops_total", "Client datagrams dropped, by reason.", "reason", drops,
	  NELEM(drops), false },
	{ "ikelb_cookies_total", "ikelb's own IKEv2 COOKIE: IKE_SA_INITs answered with one "
	  "(sent), returning a valid one (valid), returning one not ikelb's (invalid).",
	  "result", cookies, NELEM(cookies), false },
	{ "ikelb_tcp_segments_total", "TCP segments of tcp_ports: in (client to VIP), out "
	  "(forwarded), new (SYNs placed: new connections), reply (server to client), drop.",
	  "kind", tcp_kinds, NELEM(tcp_kinds), false },
};

static void svc_counters(struct buf *b, const struct cfg *cfg, const struct eng_stats *st)
{
	for (size_t f = 0; f < NELEM(svc_families); f++) {
		const struct svc_family *fa = &svc_families[f];
		family(b, fa->name, "counter", fa->help);
		for (int i = 0; i < cfg->nservices && i < st->nsvc; i++)
			for (size_t k = 0; k < fa->n; k++) {
				int c = fa->vals[k].ctr;
				bprintf(b, "%s{service=\"%s\",%s=\"%s\"} %llu\n", fa->name,
					cfg->services[i].name, fa->label, fa->vals[k].value,
					(ull)(fa->bytes ? st->svc[i].bytes[c] : st->svc[i].pkts[c]));
			}
	}
}

/* Counters with only a service label. */
static void svc_single(struct buf *b, const struct cfg *cfg, const struct eng_stats *st)
{
	static const struct {
		const char *name, *help;
		int ctr;
	} one[] = {
		{ "ikelb_halfopen_table_full_total",
		  "IKE_SA_INITs that evicted another half-open SA to be tracked.",
		  SVC_CTR_HALFOPEN_FULL },
		{ "ikelb_fib_pass_total",
		  "Datagrams handed to the kernel because the FIB had no answer yet (bpf).",
		  SVC_CTR_FIB_PASS },
		{ "ikelb_esp_raw_packets_total",
		  "Raw ESP (IP protocol 50) datagrams to the VIP (bpf; also in class=esp).",
		  SVC_CTR_ESP_RAW },
		{ "ikelb_all_full_total",
		  "New clients dropped because every active server was at max_clients.",
		  SVC_CTR_ALL_FULL },
	};
	for (size_t f = 0; f < NELEM(one); f++) {
		family(b, one[f].name, "counter", one[f].help);
		for (int i = 0; i < cfg->nservices && i < st->nsvc; i++)
			bprintf(b, "%s{service=\"%s\"} %llu\n", one[f].name, cfg->services[i].name,
				(ull)st->svc[i].pkts[one[f].ctr]);
	}
}

static void svc_config(struct buf *b, const struct cfg *cfg)
{
	family(b, "ikelb_service_fullnat", "gauge",
	       "1 when the service hides client addresses (fullnat): servers then apply "
	       "per-IP limits to the SNAT pool addresses.");
	for (int i = 0; i < cfg->nservices; i++)
		bprintf(b, "ikelb_service_fullnat{service=\"%s\"} %d\n", cfg->services[i].name,
			cfg->services[i].forwarding == CFG_FWD_FULLNAT);
	family(b, "ikelb_service_snat_pool_addresses", "gauge",
	       "Addresses in the service's SNAT pool (0: the kernel picks the source).");
	for (int i = 0; i < cfg->nservices; i++)
		bprintf(b, "ikelb_service_snat_pool_addresses{service=\"%s\"} %d\n",
			cfg->services[i].name, cfg->services[i].nsnat_pool);
}

/* ---- per server ---- */

enum srv_metric {
	M_UP, M_WEIGHT, M_EFF_WEIGHT, M_MAX_CLIENTS, M_SAS, M_ADDRS, M_CLIENTS, M_FLOWS, M_PKTS, M_BYTES,
	M_RPKTS, M_RBYTES, M_BYPASS, M__MAX
};

static const struct {
	const char *name, *type, *help;
} srv_metrics[M__MAX] = {
	[M_UP] = { "ikelb_server_up", "gauge", "1 when the server takes traffic (active or draining)." },
	[M_WEIGHT] = { "ikelb_server_weight", "gauge", "Current scheduling weight." },
	[M_EFF_WEIGHT] = { "ikelb_server_effective_weight", "gauge",
			   "Weight new clients see now: slow start applied, 0 when the server "
			   "takes no new clients." },
	[M_MAX_CLIENTS] = { "ikelb_server_max_clients", "gauge",
			    "Capacity: no new clients at this many (0: no limit)." },
	[M_SAS] = { "ikelb_server_sas", "gauge", "Established IKE SAs tracked on the server." },
	[M_ADDRS] = { "ikelb_server_client_addresses", "gauge",
		      "Distinct client addresses with live flows to the server." },
	[M_CLIENTS] = { "ikelb_server_clients", "gauge",
			"Persistence entries: client addresses (source-ip) or IKE SAs with "
			"half-open ones (ike)." },
	[M_FLOWS] = { "ikelb_server_flows", "gauge", "Live client flows (address, port)." },
	[M_PKTS] = { "ikelb_server_packets_total", "counter", "Datagrams forwarded to the server." },
	[M_BYTES] = { "ikelb_server_bytes_total", "counter", "Bytes forwarded to the server." },
	[M_RPKTS] = { "ikelb_server_reply_packets_total", "counter",
		      "Datagrams from the server relayed back to clients through ikelb." },
	[M_RBYTES] = { "ikelb_server_reply_bytes_total", "counter",
		       "Bytes from the server relayed back to clients through ikelb." },
	[M_BYPASS] = { "ikelb_server_replies_bypass", "gauge",
		       "1 when a dnat server gets IKE requests but its replies do not come back "
		       "through ikelb (check its default gateway)." },
};

static ull srv_value(const struct ctl_view *v, int i, int j, const struct eng_srv_stats *st,
		      int m)
{
	const struct rt_server *r = &v->rt->svc[i].servers[j];
	switch (m) {
	case M_UP: return r->effective != REAL_DOWN;
	case M_WEIGHT: return r->weight;
	case M_EFF_WEIGHT: return rt_effective_weight(v->rt, i, j);
	case M_MAX_CLIENTS: return v->cfg->services[i].servers[j].max_clients;
	case M_SAS: return st->sas;
	case M_ADDRS: return st->client_addresses;
	case M_CLIENTS: return st->clients;
	case M_FLOWS: return st->flows;
	case M_PKTS: return st->pkts;
	case M_RPKTS: return st->reply_pkts;
	case M_RBYTES: return st->reply_bytes;
	case M_BYPASS: return bypass_flagged(v->bypass, i, j);
	default: return st->bytes;
	}
}

static void servers(struct buf *b, const struct ctl_view *v, const struct eng_stats *st)
{
	static const struct eng_srv_stats none;
	for (int m = 0; m < M__MAX; m++) {
		family(b, srv_metrics[m].name, srv_metrics[m].type, srv_metrics[m].help);
		for (int i = 0; i < v->cfg->nservices; i++) {
			const struct cfg_service *s = &v->cfg->services[i];
			for (int j = 0; j < s->nservers; j++)
				bprintf(b, "%s{service=\"%s\",server=\"%s\"} %llu\n", srv_metrics[m].name,
					s->name, s->servers[j].name,
					srv_value(v, i, j, st->srv[i] ? &st->srv[i][j] : &none, m));
		}
	}
}

/* ---- evacuation (docs/operations.md, "Evacuate") ---- */

static void evac_line(struct buf *b, const char *name, const struct cfg_service *s, int j,
		      ull val)
{
	bprintf(b, "%s{service=\"%s\",server=\"%s\"} %llu\n", name, s->name, s->servers[j].name,
		val);
}

static void evacuations(struct buf *b, const struct ctl_view *v)
{
	static const char *const fam[3][3] = {
		{ "ikelb_server_evacuating", "gauge",
		  "1 while the server's charon is being asked to REDIRECT its IKE SAs." },
		{ "ikelb_server_evacuation_sas_left", "gauge",
		  "IKE SAs the evacuated server's charon still has (vici stats)." },
		{ "ikelb_server_evacuation_redirects_total", "counter",
		  "IKE SAs the evacuated server's charon was asked to REDIRECT." },
	};
	for (int f = 0; f < 3; f++) {
		family(b, fam[f][0], fam[f][1], fam[f][2]);
		for (int i = 0; i < v->cfg->nservices; i++)
			for (int j = 0; j < v->cfg->services[i].nservers; j++) {
				struct evac_info e;
				if (!v->evac || v->evac(v->ctx, i, j, &e) < 0)
					continue;
				if (f == 0)
					evac_line(b, fam[f][0], &v->cfg->services[i], j,
						  e.phase == EVAC_REDIRECTING);
				else if (f == 1 && e.sas_left >= 0)
					evac_line(b, fam[f][0], &v->cfg->services[i], j,
						  (ull)e.sas_left);
				else if (f == 2)
					evac_line(b, fam[f][0], &v->cfg->services[i], j, e.redirected);
			}
	}
}

/* ---- health probes ---- */

typedef void (*probe_fn)(struct buf *b, const char *svc, const char *srv,
			 const struct health_info *hs);

/* fn for every health-checked server (the others have no probes). */
static void each_probed(struct buf *b, const struct ctl_view *v, probe_fn fn)
{
	struct health_info hs;
	for (int i = 0; i < v->cfg->nservices; i++)
		for (int j = 0; j < v->cfg->services[i].nservers; j++)
			if (v->health(v->ctx, i, j, &hs) == 0)
				fn(b, v->cfg->services[i].name, v->cfg->services[i].servers[j].name, &hs);
}

static void probe_count(struct buf *b, const char *sv, const char *sr,
			const struct health_info *hs)
{
	bprintf(b, "ikelb_probes_total{service=\"%s\",server=\"%s\",result=\"ok\"} %llu\n", sv, sr,
		(ull)hs->probes_ok);
	bprintf(b, "ikelb_probes_total{service=\"%s\",server=\"%s\",result=\"failed\"} %llu\n", sv,
		sr, (ull)hs->probes_failed);
}

static void probe_rtt(struct buf *b, const char *sv, const char *sr, const struct health_info *hs)
{
	ull cum = 0;
	for (int k = 0; k < HEALTH_RTT_BUCKETS; k++) {
		cum += hs->rtt_buckets[k];
		bprintf(b, "ikelb_probe_rtt_seconds_bucket{service=\"%s\",server=\"%s\",le=\"%g\"} %llu\n",
			sv, sr, health_rtt_bounds_ms[k] / 1000.0, cum);
	}
	cum += hs->rtt_over;
	bprintf(b, "ikelb_probe_rtt_seconds_bucket{service=\"%s\",server=\"%s\",le=\"+Inf\"} %llu\n",
		sv, sr, cum);
	bprintf(b, "ikelb_probe_rtt_seconds_sum{service=\"%s\",server=\"%s\"} %.3f\n", sv, sr,
		hs->rtt_sum_ms / 1000.0);
	bprintf(b, "ikelb_probe_rtt_seconds_count{service=\"%s\",server=\"%s\"} %llu\n", sv, sr, cum);
}

static void probes(struct buf *b, const struct ctl_view *v)
{
	family(b, "ikelb_probes_total", "counter", "Health probes finished, by result.");
	each_probed(b, v, probe_count);
	family(b, "ikelb_probe_rtt_seconds", "histogram",
	       "Round-trip time of successful health probes (ms resolution).");
	each_probed(b, v, probe_rtt);
}

/* ---- the daemon ---- */

static void daemon_info(struct buf *b, const struct ctl_view *v, const struct eng_stats *st)
{
	const struct ctl_reload_info *r = v->last_reload;
	family(b, "ikelb_build_info", "gauge", "Always 1; the version in a label.");
	bprintf(b, "ikelb_build_info{version=\"%s\",engine=\"%s\"} 1\n", IKELB_VERSION,
		v->engine_name);
	family(b, "ikelb_reload_success", "gauge",
	       "0 when the last reload was refused (the old configuration runs), else 1.");
	bprintf(b, "ikelb_reload_success %d\n", !r || !r->at || r->ok);
	family(b, "ikelb_reload_timestamp_seconds", "gauge",
	       "Unix time of the last reload attempt (0: none since start).");
	bprintf(b, "ikelb_reload_timestamp_seconds %lld\n", (long long)(r ? r->at : 0));
	family(b, "ikelb_expired_entries_total", "counter",
	       "Idle state entries (flows, SAs, persistence) removed by the sweep.");
	bprintf(b, "ikelb_expired_entries_total %llu\n", (ull)*v->expired);
	family(b, "ikelb_decision_log_dropped_total", "counter",
	       "Decision log lines not written: over the rate limit.");
	bprintf(b, "ikelb_decision_log_dropped_total %llu\n",
		(ull)st->decision_log_dropped);
	family(b, "ikelb_uptime_seconds", "gauge", "Seconds since the daemon started.");
	bprintf(b, "ikelb_uptime_seconds %llu\n", (ull)((v->now_ms() - v->started_ms) / 1000));
}

/* State-table pressure (docs/state.md, "Table statistics"): one family
 * per figure, a sample per table; an engine without tables gives none. */
static void tables(struct buf *b, const struct eng_stats *st)
{
	static const char *const tname[TBL__MAX] = {
		[TBL_PERSIST] = "persist", [TBL_SA] = "sa", [TBL_HALFOPEN] = "halfopen",
		[TBL_FLOW] = "flow",
	};
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "ikelb_table_entries", "gauge", "Live entries at the last state walk." },
		{ "ikelb_table_capacity", "gauge", "Entries the table holds before it evicts." },
		{ "ikelb_table_inserts_total", "counter", "New keys written." },
		{ "ikelb_table_evictions_total", "counter",
		  "Entries dropped to admit new ones (the table was full)." },
	};
	for (size_t m = 0; m < sizeof(fam) / sizeof(fam[0]); m++) {
		family(b, fam[m].name, fam[m].type, fam[m].help);
		for (int t = 0; t < st->ntables && t < TBL__MAX; t++) {
			const struct eng_table_stats *ts = &st->tables[t];
			uint64_t val[] = { ts->entries, ts->capacity, ts->inserts, ts->evictions };
			bprintf(b, "%s{table=\"%s\"} %llu\n", fam[m].name, tname[t], (ull)val[m]);
		}
	}
}

/* Socket engine only: how deep its wakes batch (docs/socket-engine.md,
 * "Moderation"); datagrams / wakes is the batch depth. */
static void sock_batching(struct buf *b, const struct eng_sock_stats *s)
{
	if (!s->present)
		return;
	static const char *const name[] = {
		"ikelb_socket_wakes_total", "ikelb_socket_datagrams_total",
		"ikelb_socket_coalesce_waits_total", "ikelb_socket_coalesce_wait_seconds_total",
		"ikelb_socket_sends_total",
	};
	static const char *const help[] = {
		"Worker wakes (epoll_wait returns with work).",
		"Datagrams the workers handled, both ways (GRO trains counted per datagram).",
		"Moderation waits before the next epoll_wait (socket.coalesce_usecs).",
		"Time spent in moderation waits.",
		"Send calls: runs of one flow's datagrams, each one sendmmsg.",
	};
	char secs[32];
	snprintf(secs, sizeof(secs), "%.6f", (double)s->wait_ns / 1e9);
	for (size_t i = 0; i < sizeof(name) / sizeof(name[0]); i++) {
		family(b, name[i], "counter", help[i]);
		if (i == 3) {
			bprintf(b, "%s %s\n", name[i], secs);
			continue;
		}
		uint64_t v[] = { s->wakes, s->dgrams, s->waits, 0, s->sends };
		bprintf(b, "%s %llu\n", name[i], (ull)v[i]);
	}
}

/* Only with sync: configured (docs/ha.md). */
static void sync_counters(struct buf *b, const struct ctl_view *v)
{
	struct sync_stats ss;
	if (!v->sync_stats || v->sync_stats(v->ctx, &ss) < 0)
		return;
	char *sm = report_sync_metrics(&ss);
	if (sm)
		bprintf(b, "%s", sm);
	b->failed |= !sm;
	free(sm);
}

char *report_metrics(const struct ctl_view *v)
{
	struct buf b = { 0 };
	const struct eng_stats *st = v->stats(v->ctx);
	daemon_info(&b, v, st);
	svc_counters(&b, v->cfg, st);
	svc_single(&b, v->cfg, st);
	svc_config(&b, v->cfg);
	servers(&b, v, st);
	evacuations(&b, v);
	probes(&b, v);
	tables(&b, st);
	sock_batching(&b, &st->sock);
	sync_counters(&b, v);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
