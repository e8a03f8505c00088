#include "ctl/report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ikelb/ike_wire.h"

static const char *const ctr_names[SVC_CTR_DROP_BASE] = {
	[SVC_CTR_RX] = "rx",
	[SVC_CTR_FWD] = "forwarded",
	[SVC_CTR_REPLY] = "replies",
	[SVC_CTR_IKEV2] = "ikev2",
	[SVC_CTR_IKEV1] = "ikev1",
	[SVC_CTR_KEEPALIVE] = "keepalive",
	[SVC_CTR_ESP] = "esp",
	[SVC_CTR_FRAGMENT] = "fragments",
	[SVC_CTR_STEER_LABEL] = "steer_label",
	[SVC_CTR_STEER_FLOW] = "steer_flow",
	[SVC_CTR_STEER_SA] = "steer_sa",
	[SVC_CTR_STEER_PERSIST] = "steer_persist",
	[SVC_CTR_STEER_NEW] = "steer_new",
	[SVC_CTR_STEER_FALLBACK] = "steer_fallback",
	[SVC_CTR_HALFOPEN_FULL] = "halfopen_full",
	[SVC_CTR_FIB_PASS] = "fib_pass",
};

static const char *const drop_names[IKE_DROP__MAX] = {
	[IKE_DROP_NONE] = "none",
	[IKE_DROP_TOO_SHORT] = "too_short",
	[IKE_DROP_BAD_VERSION] = "bad_version",
	[IKE_DROP_LEN_MISMATCH] = "length_mismatch",
	[IKE_DROP_ZERO_SPI] = "zero_spi",
	[IKE_DROP_RESERVED_SPI] = "reserved_spi",
	[IKE_DROP_BAD_KEEPALIVE] = "bad_keepalive",
	[IKE_DROP_MALFORMED_IP] = "malformed_ip",
	[IKE_DROP_FRAGMENT] = "fragment",
	[IKE_DROP_NO_SERVER] = "no_server",
	[IKE_DROP_TABLE_FULL] = "table_full",
	[IKE_DROP_SPOOFED_REPLY] = "spoofed_reply",
	[IKE_DROP_V4MAPPED] = "v4mapped",
	[IKE_DROP_TTL_EXPIRED] = "ttl_expired",
};

static const char *ctr_name(int ctr)
{
	if (ctr >= 0 && ctr < SVC_CTR_DROP_BASE)
		return ctr_names[ctr];
	int r = ctr - SVC_CTR_DROP_BASE;
	if (r > 0 && r < IKE_DROP__MAX)
		return drop_names[r];
	return NULL;
}

static json_t *server_json(const struct ctl_view *v, const struct eng_stats *stats, int i, int k)
{
	const struct cfg_server *cs = &v->cfg->services[i].servers[k];
	const struct rt_server *r = &v->rt->svc[i].servers[k];
	const struct eng_srv_stats *st = stats->srv[i] ? &stats->srv[i][k] : NULL;
	char a[IKELB_ADDR_STRLEN];

	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I}",
			      "name", cs->name,
			      "address", ikelb_addr_str(&cs->addr, a, sizeof(a)),
			      "admin", cfg_server_state_name(r->admin),
			      "health", health_state_name(r->health),
			      "state", rt_effective_name(r->effective),
			      "weight", (int)r->weight,
			      "clients", (json_int_t)(st ? st->clients : 0),
			      "flows", (json_int_t)(st ? st->flows : 0),
			      "packets", (json_int_t)(st ? st->pkts : 0),
			      "bytes", (json_int_t)(st ? st->bytes : 0),
			      "down_events", (json_int_t)r->down_events);
	struct health_info hs;
	if (j && v->health(v->ctx, i, k, &hs) == 0) {
		/* The checker knows "up" before the run-time model does: a
		 * first success of an unknown server changes nothing there. */
		json_object_set_new(j, "health", json_string(health_state_name(hs.state)));
		json_object_set_new(j, "probes_ok", json_integer((json_int_t)hs.probes_ok));
		json_object_set_new(j, "probes_failed", json_integer((json_int_t)hs.probes_failed));
		if (hs.has_rtt)
			json_object_set_new(j, "rtt_ms", json_integer(hs.last_rtt_ms));
		if (hs.last_error[0])
			json_object_set_new(j, "last_error", json_string(hs.last_error));
	}
	return j;
}

json_t *report_status(const struct ctl_view *v)
{
	json_t *svcs = json_array();
	char a[IKELB_ADDR_STRLEN];
	const struct eng_stats *stats = v->stats(v->ctx);

	for (int i = 0; i < v->cfg->nservices; i++) {
		const struct cfg_service *s = &v->cfg->services[i];
		json_t *ports = json_array();
		json_t *servers = json_array();
		for (int p = 0; p < s->nports; p++)
			json_array_append_new(ports, json_integer(s->ports[p]));
		for (int j = 0; j < s->nservers; j++)
			json_array_append_new(servers, server_json(v, stats, i, j));
		json_array_append_new(
			svcs, json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o}", "name", s->name,
					"vip", ikelb_addr_str(&s->vip, a, sizeof(a)), "ports", ports,
					"forwarding", cfg_forwarding_name(s->forwarding),
					"persistence", cfg_persist_name(s->persistence.mode),
					"scheduler", cfg_sched_name(s->scheduler), "servers", servers));
	}
	return json_pack("{s:s, s:s, s:I, s:o}", "engine", v->engine_name, "config",
			 v->config_path, "uptime_s",
			 (json_int_t)((v->now_ms() - v->started_ms) / 1000),
			 "services", svcs);
}

json_t *report_stats(const struct ctl_view *v)
{
	json_t *svcs = json_array();
	const struct eng_stats *stats = v->stats(v->ctx);

	for (int i = 0; i < v->cfg->nservices; i++) {
		json_t *ctr = json_object();
		json_t *drops = json_object();
		for (int c = 0; c < SVC_CTR__MAX; c++) {
			const char *n = ctr_name(c);
			if (!n)
				continue;
			json_t *target = c >= SVC_CTR_DROP_BASE ? drops : ctr;
			json_object_set_new(target, n,
					    json_pack("{s:I, s:I}", "packets",
						      (json_int_t)stats->svc[i].pkts[c], "bytes",
						      (json_int_t)stats->svc[i].bytes[c]));
		}
		json_t *servers = json_array();
		for (int j = 0; j < v->cfg->services[i].nservers; j++)
			json_array_append_new(servers, server_json(v, stats, i, j));
		json_array_append_new(svcs, json_pack("{s:s, s:o, s:o, s:o}", "name",
						      v->cfg->services[i].name, "counters", ctr,
						      "drops", drops, "servers", servers));
	}
	return json_pack("{s:o, s:I}", "services", svcs, "expired_entries",
			 (json_int_t)*v->expired);
}

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

/* Prometheus wants each metric family's samples together, under one TYPE
 * line, so families are the outer loop. */
static void metrics_counters(struct buf *b, const struct cfg *cfg, const struct eng_stats *st,
			     int drops)
{
	const char *fam = drops ? "ikelb_drops_total" : "ikelb_packets_total";
	bprintf(b, "# HELP %s %s\n# TYPE %s counter\n", fam,
		drops ? "Datagrams dropped, by reason." : "Datagrams per service and counter.", fam);
	for (int i = 0; i < cfg->nservices; i++) {
		for (int c = 0; c < SVC_CTR__MAX; c++) {
			const char *n = ctr_name(c);
			if (!n || (c >= SVC_CTR_DROP_BASE) != drops)
				continue;
			bprintf(b, "%s{service=\"%s\",%s=\"%s\"} %llu\n", fam, cfg->services[i].name,
				drops ? "reason" : "counter", n,
				(unsigned long long)st->svc[i].pkts[c]);
		}
	}
}

enum srv_metric { M_UP, M_WEIGHT, M_CLIENTS, M_PKTS, M_BYTES, M__MAX };

static const struct {
	const char *name, *type, *help;
} srv_metrics[M__MAX] = {
	[M_UP] = { "ikelb_server_up", "gauge", "1 when the server takes traffic (active or draining)." },
	[M_WEIGHT] = { "ikelb_server_weight", "gauge", "Current scheduling weight." },
	[M_CLIENTS] = { "ikelb_server_clients", "gauge", "Clients (persistence/SA entries) held." },
	[M_PKTS] = { "ikelb_server_packets_total", "counter", "Datagrams forwarded to the server." },
	[M_BYTES] = { "ikelb_server_bytes_total", "counter", "Bytes forwarded to the server." },
};

static unsigned long long srv_value(const struct rt_server *r, const struct eng_srv_stats *st,
				    int m)
{
	switch (m) {
	case M_UP: return r->effective != REAL_DOWN;
	case M_WEIGHT: return r->weight;
	case M_CLIENTS: return st->clients;
	case M_PKTS: return st->pkts;
	default: return st->bytes;
	}
}

static void metrics_servers(struct buf *b, const struct ctl_view *v, const struct eng_stats *st)
{
	for (int m = 0; m < M__MAX; m++) {
		bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", srv_metrics[m].name, srv_metrics[m].help,
			srv_metrics[m].name, srv_metrics[m].type);
		for (int i = 0; i < v->cfg->nservices; i++) {
			const struct cfg_service *s = &v->cfg->services[i];
			for (int j = 0; j < s->nservers; j++)
				bprintf(b, "%s{service=\"%s\",server=\"%s\"} %llu\n",
					srv_metrics[m].name, s->name, s->servers[j].name,
					srv_value(&v->rt->svc[i].servers[j], &st->srv[i][j], m));
		}
	}
}

/* State-table pressure (docs/state.md): one family per figure, a sample
 * per table; engines that do not report tables give none. */
static void metrics_tables(struct buf *b, const struct eng_stats *st)
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
		bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", fam[m].name, fam[m].help, fam[m].name,
			fam[m].type);
		for (int t = 0; t < st->ntables && t < TBL__MAX; t++) {
			const struct eng_table_stats *ts = &st->tables[t];
			uint64_t val[] = { ts->entries, ts->capacity, ts->inserts, ts->evictions };
			bprintf(b, "%s{table=\"%s\"} %llu\n", fam[m].name, tname[t],
				(unsigned long long)val[m]);
		}
	}
}

char *report_metrics(const struct ctl_view *v)
{
	struct buf b = { 0 };
	const struct eng_stats *st = v->stats(v->ctx);
	metrics_counters(&b, v->cfg, st, 0);
	metrics_counters(&b, v->cfg, st, 1);
	metrics_servers(&b, v, st);
	bprintf(&b, "# HELP ikelb_service_fullnat 1 when the service hides client addresses "
		    "(fullnat): servers apply per-IP limits to the SNAT pool.\n"
		    "# TYPE ikelb_service_fullnat gauge\n");
	for (int i = 0; i < v->cfg->nservices; i++)
		bprintf(&b, "ikelb_service_fullnat{service=\"%s\",snat_pool_size=\"%d\"} %d\n",
			v->cfg->services[i].name, v->cfg->services[i].nsnat_pool,
			v->cfg->services[i].forwarding == CFG_FWD_FULLNAT);
	bprintf(&b, "# TYPE ikelb_expired_entries_total counter\n");
	bprintf(&b, "ikelb_expired_entries_total %llu\n", (unsigned long long)*v->expired);
	metrics_tables(&b, st);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
