#include "ctl/report.h"
#include "ctl/report_sync.h"

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
	[SVC_CTR_COOKIE_SENT] = "cookie_sent",
	[SVC_CTR_COOKIE_VALID] = "cookie_valid",
	[SVC_CTR_COOKIE_INVALID] = "cookie_invalid",
	[SVC_CTR_ESP_RAW] = "esp_raw",
	[SVC_CTR_TCP_RX] = "tcp_rx",
	[SVC_CTR_TCP_FWD] = "tcp_forwarded",
	[SVC_CTR_TCP_NEW] = "tcp_new",
	[SVC_CTR_TCP_REPLY] = "tcp_replies",
	[SVC_CTR_TCP_DROP] = "tcp_drops",
	[SVC_CTR_ALL_FULL] = "all_full",
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
	[IKE_DROP_ADMIT_SERVICE] = "admit_service",
	[IKE_DROP_ADMIT_SOURCE] = "admit_source",
	[IKE_DROP_ESP_UNKNOWN] = "esp_unknown",
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

/* What an operator should look at on this server, one line each. */
static json_t *server_warnings(const struct ctl_view *v, int i, int k)
{
	json_t *w = json_array();
	char line[256];
	if (w && bypass_flagged(v->bypass, i, k)) {
		bypass_warning(v->cfg->services[i].servers[k].name, line, sizeof(line));
		json_array_append_new(w, json_string(line));
	}
	return w;
}

/* An evacuation's progress: "sas_left" is what the server's charon
 * counts (null until known), "redirected" the IKE SAs it was asked to
 * REDIRECT; the engine's own per-server "sas" sits beside it. */
json_t *report_evac_json(const struct evac_info *e, uint64_t now_ms)
{
	uint64_t end = e->ended_ms ? e->ended_ms : now_ms;
	json_t *j = json_pack("{s:s, s:I, s:I, s:f}", "phase", evac_phase_name(e->phase),
			      "redirected", (json_int_t)e->redirected, "persistence_forgotten",
			      (json_int_t)e->forgotten, "seconds",
			      (double)(end - e->started_ms) / 1000.0);
	if (!j)
		return NULL;
	json_object_set_new(j, "sas_left", e->sas_left < 0 ? json_null()
							   : json_integer((json_int_t)e->sas_left));
	if (e->error[0])
		json_object_set_new(j, "error", json_string(e->error));
	return j;
}

static json_t *server_json(const struct ctl_view *v, const struct eng_stats *stats, int i, int k)
{
	const struct cfg_server *cs = &v->cfg->services[i].servers[k];
	const struct rt_server *r = &v->rt->svc[i].servers[k];
	const struct eng_srv_stats *st = stats->srv[i] ? &stats->srv[i][k] : NULL;
	char a[IKELB_ADDR_STRLEN];

	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			      "name", cs->name,
			      "address", ikelb_addr_str(&cs->addr, a, sizeof(a)),
			      "admin", cfg_server_state_name(r->admin),
			      "health", health_state_name(r->health),
			      "state", rt_effective_name(r->effective),
			      "weight", (int)r->weight,
			      "sas", (json_int_t)(st ? st->sas : 0),
			      "client_addresses", (json_int_t)(st ? st->client_addresses : 0),
			      "clients", (json_int_t)(st ? st->clients : 0),
			      "flows", (json_int_t)(st ? st->flows : 0),
			      "packets", (json_int_t)(st ? st->pkts : 0),
			      "bytes", (json_int_t)(st ? st->bytes : 0),
			      "down_events", (json_int_t)r->down_events);
	if (j) {
		/* Replies through ikelb: none while requests arrive is the
		 * bypass warning's evidence. */
		json_object_set_new(j, "reply_packets",
				    json_integer((json_int_t)(st ? st->reply_pkts : 0)));
		json_object_set_new(j, "reply_bytes",
				    json_integer((json_int_t)(st ? st->reply_bytes : 0)));
		json_object_set_new(j, "warnings", server_warnings(v, i, k));
		/* Scheduling: slow start's ramp and the capacity. */
		json_object_set_new(j, "effective_weight",
				    json_integer(rt_effective_weight(v->rt, i, k)));
		json_object_set_new(j, "slow_start_left_s",
				    json_integer(rt_slow_start_left_s(v->rt, i, k, v->now_ms())));
		json_object_set_new(j, "max_clients", json_integer(cs->max_clients));
	}
	struct evac_info ev;
	if (j && v->evac && v->evac(v->ctx, i, k, &ev) == 0)
		json_object_set_new(j, "evacuation", report_evac_json(&ev, v->now_ms()));
	struct health_info hs;
	if (j && v->health(v->ctx, i, k, &hs) == 0) {
		/* The checker's view: it keeps probe counters and the last
		 * error the run-time model has no use for. */
		json_object_set_new(j, "health", json_string(health_state_name(hs.state)));
		json_object_set_new(j, "probes_ok", json_integer((json_int_t)hs.probes_ok));
		json_object_set_new(j, "probes_failed", json_integer((json_int_t)hs.probes_failed));
		if (hs.has_rtt)
			json_object_set_new(j, "rtt_ms", json_integer(hs.last_rtt_ms));
		if (hs.last_error[0])
			json_object_set_new(j, "last_error", json_string(hs.last_error));
		if (hs.detail[0])
			json_object_set_new(j, "probe_detail", json_string(hs.detail));
	}
	return j;
}

/* "at" is unix time (0 and result "none" before the first reload). */
static json_t *last_reload_json(const struct ctl_reload_info *r)
{
	if (!r || !r->at)
		return json_pack("{s:I, s:s, s:i, s:s}", "at", (json_int_t)0, "result", "none",
				 "changes", 0, "message", "");
	return json_pack("{s:I, s:s, s:i, s:s}", "at", (json_int_t)r->at, "result",
			 r->ok ? "ok" : "refused", "changes", r->changes, "message", r->message);
}

json_t *report_status(const struct ctl_view *v)
{
	json_t *svcs = json_array();
	char a[IKELB_ADDR_STRLEN];
	const struct eng_stats *stats = v->stats(v->ctx);

	for (int i = 0; i < v->cfg->nservices; i++) {
		const struct cfg_service *s = &v->cfg->services[i];
		json_t *ports = json_array();
		json_t *tcp_ports = json_array();
		json_t *servers = json_array();
		for (int p = 0; p < s->nports; p++)
			json_array_append_new(ports, json_integer(s->ports[p]));
		for (int p = 0; p < s->ntcp_ports; p++)
			json_array_append_new(tcp_ports, json_integer(s->tcp_ports[p]));
		for (int j = 0; j < s->nservers; j++)
			json_array_append_new(servers, server_json(v, stats, i, j));
		json_array_append_new(
			svcs, json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:o}", "name", s->name,
					"vip", ikelb_addr_str(&s->vip, a, sizeof(a)), "ports", ports,
					"tcp_ports", tcp_ports,
					"forwarding", cfg_forwarding_name(s->forwarding),
					"persistence", cfg_persist_name(s->persistence.mode),
					"scheduler", cfg_sched_name(s->scheduler), "servers", servers));
	}
	return json_pack("{s:s, s:s, s:I, s:o, s:o}", "engine", v->engine_name, "config",
			 v->config_path, "uptime_s",
			 (json_int_t)((v->now_ms() - v->started_ms) / 1000),
			 "services", svcs, "last_reload", last_reload_json(v->last_reload));
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
	json_t *out = json_pack("{s:o, s:I}", "services", svcs, "expired_entries",
				(json_int_t)*v->expired);
	struct sync_stats ss;
	if (out && v->sync_stats && v->sync_stats(v->ctx, &ss) == 0)
		json_object_set_new(out, "sync", report_sync_json(&ss));
	return out;
}
