/* The API's answers (api_route) and the reports behind them, on a fake
 * view: a configuration built in code, a run-time model without engine,
 * made-up counters and health, a fixed clock, and commands that record
 * what reached them. No sockets, no daemon. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/api.h"
#include "ctl/report.h"
#include "ikelb/ike_wire.h"
#include "steer_cfg.h"

#define NOW_MS 1000000
#define STARTED_MS (NOW_MS - 42500)

struct fake {
	struct cfg cfg;
	struct logger log;
	struct runtime rt;
	struct eng_stats st;
	struct bypass bypass;
	uint64_t expired;
	struct ctl_view view;
	struct ctl_cmd cmd;
	int stats_reads;
	/* what the commands received */
	int calls, svc, srv, admin;
	uint32_t weight;
	bool stopped, keep;
	int fail_with;               /* a command's result, 0 = success */
	struct ctl_reload_info last;
};

static uint64_t fake_now(void)
{
	return NOW_MS;
}

static const struct eng_stats *fake_stats(void *ctx)
{
	struct fake *f = ctx;
	f->stats_reads++;
	return &f->st;
}

/* Only s1 is health checked: it failed its probes. */
static int fake_health(void *ctx, int svc, int srv, struct health_info *out)
{
	(void)ctx;
	if (svc != 0 || srv != 1)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->state = HEALTH_DOWN;
	out->probes_ok = 3;
	out->probes_failed = 4;
	out->rtt_buckets[1] = 2; /* two answers within 5 ms, one over 1 s */
	out->rtt_over = 1;
	out->rtt_sum_ms = 2012;
	snprintf(out->last_error, sizeof(out->last_error), "timeout");
	return 0;
}

static struct fake *record(void *ctx, int svc, int srv)
{
	struct fake *f = ctx;
	f->calls++;
	f->svc = svc;
	f->srv = srv;
	return f;
}

static int fake_admin(void *ctx, int svc, int srv, enum cfg_server_state st)
{
	struct fake *f = record(ctx, svc, srv);
	f->admin = (int)st;
	if (f->fail_with)
		return f->fail_with;
	return rt_set_admin(&f->rt, svc, srv, st, NOW_MS) < 0 ? -EIO : 0;
}

static int fake_weight(void *ctx, int svc, int srv, uint32_t weight)
{
	struct fake *f = record(ctx, svc, srv);
	f->weight = weight;
	if (f->fail_with)
		return f->fail_with;
	return rt_set_weight(&f->rt, svc, srv, weight, NOW_MS) < 0 ? -EIO : 0;
}

static void fake_shutdown(void *ctx, bool keep)
{
	struct fake *f = ctx;
	f->calls++;
	f->stopped = true;
	f->keep = keep;
}

/* A reload that changes s1's weight, or (fail_with) one refused by a
 * file error. */
static int fake_reload(void *ctx, struct ctl_reload_result *out)
{
	struct fake *f = ctx;
	f->calls++;
	if (f->fail_with) {
		out->nerrors = 1;
		snprintf(out->errors[0], sizeof(out->errors[0]), "f.yaml:3:9: bad");
		return f->fail_with;
	}
	out->ok = true;
	out->nchanges = 1;
	snprintf(out->changes[0], sizeof(out->changes[0]), "vpn/s1 weight 50 -> 60 (file)");
	return 0;
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	log_init(&f->log, LOG_LVL_ERR);
	assert_int_equal(tcfg_build(&f->cfg, "203.0.113.1", 500, 4500, 2, "198.51.100.%d", 11), 0);
	f->cfg.services[0].servers[1].weight = 50;
	assert_int_equal(tcfg_rt_init(&f->rt, &f->cfg, &f->log), 0);
	assert_int_equal(eng_stats_alloc(&f->st, &f->cfg), 0);
	f->st.svc[0].pkts[SVC_CTR_RX] = 7;
	f->st.svc[0].bytes[SVC_CTR_RX] = 700;
	f->st.svc[0].pkts[SVC_CTR_DROP_BASE + IKE_DROP_TOO_SHORT] = 2;
	f->st.svc[0].pkts[SVC_CTR_ESP_RAW] = 4;
	f->st.svc[0].pkts[SVC_CTR_DROP(IKE_DROP_ESP_UNKNOWN)] = 1;
	f->st.srv[0][0] = (struct eng_srv_stats){ .pkts = 5, .bytes = 500, .clients = 3, .flows = 1,
						  .sas = 4, .client_addresses = 2 };
	f->expired = 9;
	/* s0 gets requests and no replies: its warning shows in the golden text. */
	assert_int_equal(bypass_init(&f->bypass, &f->cfg), 0);
	f->bypass.srv[0][0].flagged = true;
	f->view = (struct ctl_view){
		.cfg = &f->cfg, .rt = &f->rt, .log = &f->log, .engine_name = "socket",
		.config_path = "/etc/ikelb/test.yaml", .started_ms = STARTED_MS,
		.expired = &f->expired, .now_ms = fake_now, .stats = fake_stats,
		.health = fake_health, .last_reload = &f->last, .bypass = &f->bypass, .ctx = f,
	};
	f->last = (struct ctl_reload_info){ .at = 1700000000, .changes = 0 };
	snprintf(f->last.message, sizeof(f->last.message),
		 "/etc/ikelb/test.yaml:3:9: weight: 70000 is out of range");
	f->cmd = (struct ctl_cmd){ .set_admin = fake_admin, .set_weight = fake_weight,
				   .shutdown = fake_shutdown, .reload = fake_reload, .ctx = f };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;
	rt_free(&f->rt);
	eng_stats_free(&f->st);
	bypass_free(&f->bypass);
	cfg_free(&f->cfg);
	free(f);
	return 0;
}

static const char *keep_arg(void *ctx, const char *name)
{
	return strcmp(name, "keep") ? NULL : ctx;
}

/* api_route's answer; the caller frees r->body. */
static void route(struct fake *f, const char *method, const char *url, const char *keep,
		  struct api_reply *r)
{
	struct api_args args = { keep_arg, (void *)keep };
	assert_int_equal(api_route(&f->view, &f->cmd, method, url, &args, r), 0);
	assert_non_null(r->body);
}

static void expect_reply(struct fake *f, const char *method, const char *url, unsigned code,
			 const char *body)
{
	struct api_reply r;
	route(f, method, url, NULL, &r);
	assert_int_equal(r.code, code);
	assert_string_equal(r.ctype, "application/json");
	assert_string_equal(r.body, body);
	free(r.body);
}

/* ---- reports ---- */

/* The exact text the API serves: clients (ikelb status, tests/system)
 * parse it, so key names, order and indentation are part of the API. */
static const char status_golden[] =
	"{\n"
	"  \"engine\": \"socket\",\n"
	"  \"config\": \"/etc/ikelb/test.yaml\",\n"
	"  \"uptime_s\": 42,\n"
	"  \"services\": [\n"
	"    {\n"
	"      \"name\": \"vpn\",\n"
	"      \"vip\": \"203.0.113.1\",\n"
	"      \"ports\": [\n"
	"        500,\n"
	"        4500\n"
	"      ],\n"
	"      \"tcp_ports\": [],\n"
	"      \"forwarding\": \"dnat\",\n"
	"      \"persistence\": \"source-ip\",\n"
	"      \"scheduler\": \"maglev\",\n"
	"      \"servers\": [\n"
	"        {\n"
	"          \"name\": \"s0\",\n"
	"          \"address\": \"198.51.100.11\",\n"
	"          \"admin\": \"active\",\n"
	"          \"health\": \"unknown\",\n"
	"          \"state\": \"active\",\n"
	"          \"weight\": 100,\n"
	"          \"sas\": 4,\n"
	"          \"client_addresses\": 2,\n"
	"          \"clients\": 3,\n"
	"          \"flows\": 1,\n"
	"          \"packets\": 5,\n"
	"          \"bytes\": 500,\n"
	"          \"down_events\": 0,\n"
	"          \"reply_packets\": 0,\n"
	"          \"reply_bytes\": 0,\n"
	"          \"warnings\": [\n"
	"            \"replies from s0 bypass ikelb (check its default gateway)\"\n"
	"          ],\n"
	"          \"effective_weight\": 100,\n"
	"          \"slow_start_left_s\": 0,\n"
	"          \"max_clients\": 0\n"
	"        },\n"
	"        {\n"
	"          \"name\": \"s1\",\n"
	"          \"address\": \"198.51.100.12\",\n"
	"          \"admin\": \"active\",\n"
	"          \"health\": \"down\",\n"
	"          \"state\": \"active\",\n"
	"          \"weight\": 50,\n"
	"          \"sas\": 0,\n"
	"          \"client_addresses\": 0,\n"
	"          \"clients\": 0,\n"
	"          \"flows\": 0,\n"
	"          \"packets\": 0,\n"
	"          \"bytes\": 0,\n"
	"          \"down_events\": 0,\n"
	"          \"reply_packets\": 0,\n"
	"          \"reply_bytes\": 0,\n"
	"          \"warnings\": [],\n"
	"          \"effective_weight\": 50,\n"
	"          \"slow_start_left_s\": 0,\n"
	"          \"max_clients\": 0,\n"
	"          \"probes_ok\": 3,\n"
	"          \"probes_failed\": 4,\n"
	"          \"last_error\": \"timeout\"\n"
	"        }\n"
	"      ]\n"
	"    }\n"
	"  ],\n"
	"  \"last_reload\": {\n"
	"    \"at\": 1700000000,\n"
	"    \"result\": \"refused\",\n"
	"    \"changes\": 0,\n"
	"    \"message\": \"/etc/ikelb/test.yaml:3:9: weight: 70000 is out of range\"\n"
	"  }\n"
	"}";

static void status_is_byte_exact(void **state)
{
	struct fake *f = *state;
	expect_reply(f, "GET", "/v1/status", 200, status_golden);
	assert_int_equal(f->stats_reads, 1); /* fresh counters for every request */
}

static void stats_counters_drops_and_expiries(void **state)
{
	struct fake *f = *state;
	json_t *j = report_stats(&f->view);
	assert_non_null(j);
	json_t *svc = json_array_get(json_object_get(j, "services"), 0);
	json_t *rx = json_object_get(json_object_get(svc, "counters"), "rx");
	assert_int_equal(json_integer_value(json_object_get(rx, "packets")), 7);
	assert_int_equal(json_integer_value(json_object_get(rx, "bytes")), 700);
	json_t *drops = json_object_get(svc, "drops");
	json_t *short_ = json_object_get(drops, "too_short");
	assert_int_equal(json_integer_value(json_object_get(short_, "packets")), 2);
	/* Counters and drops are separate: no drop reason among counters. */
	assert_null(json_object_get(json_object_get(svc, "counters"), "too_short"));
	/* raw ESP's counter sits past the drop slots: a counter, not a drop */
	json_t *raw = json_object_get(json_object_get(svc, "counters"), "esp_raw");
	assert_int_equal(json_integer_value(json_object_get(raw, "packets")), 4);
	assert_null(json_object_get(drops, "esp_raw"));
	json_t *unk = json_object_get(drops, "esp_unknown");
	assert_int_equal(json_integer_value(json_object_get(unk, "packets")), 1);
	assert_null(json_object_get(drops, "none"));
	assert_int_equal(json_integer_value(json_object_get(j, "expired_entries")), 9);
	json_t *s0 = json_array_get(json_object_get(svc, "servers"), 0);
	assert_int_equal(json_integer_value(json_object_get(s0, "clients")), 3);
	json_decref(j);
}

static void metrics_families_and_samples(void **state)
{
	struct fake *f = *state;
	struct api_reply r;
	route(f, "GET", "/metrics", NULL, &r);
	assert_int_equal(r.code, 200);
	assert_int_equal(f->stats_reads, 1); /* one engine read (a map walk) per scrape */
	assert_string_equal(r.ctype, "text/plain; version=0.0.4");
	static const char *const want[] = {
		"# TYPE ikelb_packets_total counter\n",
		"ikelb_packets_total{service=\"vpn\",direction=\"in\"} 7\n",
		"# HELP ikelb_drops_total ",
		"ikelb_drops_total{service=\"vpn\",reason=\"too_short\"} 2\n",
		"ikelb_drops_total{service=\"vpn\",reason=\"esp_unknown\"} 1\n",
		"ikelb_esp_raw_packets_total{service=\"vpn\"} 4\n",
		"ikelb_server_up{service=\"vpn\",server=\"s1\"} 1\n",
		"ikelb_server_weight{service=\"vpn\",server=\"s1\"} 50\n",
		"# TYPE ikelb_server_effective_weight gauge\n",
		"ikelb_server_effective_weight{service=\"vpn\",server=\"s1\"} 50\n",
		"ikelb_server_max_clients{service=\"vpn\",server=\"s0\"} 0\n",
		"# TYPE ikelb_all_full_total counter\n",
		"ikelb_all_full_total{service=\"vpn\"} 0\n",
		"ikelb_server_clients{service=\"vpn\",server=\"s0\"} 3\n",
		"ikelb_server_sas{service=\"vpn\",server=\"s0\"} 4\n",
		"ikelb_server_client_addresses{service=\"vpn\",server=\"s0\"} 2\n",
		"ikelb_server_bytes_total{service=\"vpn\",server=\"s0\"} 500\n",
		"# TYPE ikelb_server_reply_packets_total counter\n",
		"ikelb_server_reply_packets_total{service=\"vpn\",server=\"s0\"} 0\n",
		"# TYPE ikelb_server_replies_bypass gauge\n",
		"ikelb_server_replies_bypass{service=\"vpn\",server=\"s0\"} 1\n",
		"ikelb_server_replies_bypass{service=\"vpn\",server=\"s1\"} 0\n",
		"ikelb_service_fullnat{service=\"vpn\"} 0\n",
		"ikelb_service_snat_pool_addresses{service=\"vpn\"} 0\n",
		"# HELP ikelb_expired_entries_total ",
		"ikelb_expired_entries_total 9\n",
		/* s1 is health checked: 3 ok, failing now */
		"ikelb_probes_total{service=\"vpn\",server=\"s1\",result=\"ok\"} 3\n",
		"ikelb_probe_rtt_seconds_bucket{service=\"vpn\",server=\"s1\",le=\"0.001\"} 0\n",
		"ikelb_probe_rtt_seconds_bucket{service=\"vpn\",server=\"s1\",le=\"0.005\"} 2\n",
		"ikelb_probe_rtt_seconds_bucket{service=\"vpn\",server=\"s1\",le=\"1\"} 2\n",
		"ikelb_probe_rtt_seconds_bucket{service=\"vpn\",server=\"s1\",le=\"+Inf\"} 3\n",
		"ikelb_probe_rtt_seconds_sum{service=\"vpn\",server=\"s1\"} 2.012\n",
		"ikelb_probe_rtt_seconds_count{service=\"vpn\",server=\"s1\"} 3\n",
		"# TYPE ikelb_probe_rtt_seconds histogram\n",
		"ikelb_reload_success 0\n", /* the fake's last reload was refused */
		"ikelb_reload_timestamp_seconds 1700000000\n",
		"ikelb_build_info{version=\"",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(r.body, want[i]))
			fail_msg("missing %s in:\n%s", want[i], r.body);
	/* Prometheus: one TYPE line per family, before its samples. */
	const char *p = strstr(r.body, "ikelb_server_up{");
	assert_non_null(p);
	assert_true(strstr(r.body, "# TYPE ikelb_server_up gauge") < p);
	assert_null(strstr(strstr(r.body, "# TYPE ikelb_server_up") + 1, "# TYPE ikelb_server_up"));
	/* No measured value in a label, every family described. */
	assert_null(strstr(r.body, "snat_pool_size"));
	assert_null(strstr(r.body, "counter=\""));
	int help = 0, type = 0;
	for (const char *q = r.body; (q = strstr(q, "# HELP ")); q++)
		help++;
	for (const char *q = r.body; (q = strstr(q, "# TYPE ")); q++)
		type++;
	assert_int_equal(help, type);
	free(r.body);
}

static int fake_sync(void *ctx, struct sync_stats *out)
{
	(void)ctx;
	*out = (struct sync_stats){ .sent_msgs = 4, .applied = 11, .rej_auth = 2 };
	return 0;
}

/* The sync's counters appear only when the daemon has a sync. */
static void sync_counters_in_stats_and_metrics(void **state)
{
	struct fake *f = *state;
	json_t *j = report_stats(&f->view);
	assert_null(json_object_get(j, "sync"));
	json_decref(j);
	f->view.sync_stats = fake_sync;
	j = report_stats(&f->view);
	json_t *sy = json_object_get(j, "sync");
	assert_int_equal(json_integer_value(json_object_get(sy, "applied")), 11);
	assert_int_equal(json_integer_value(json_object_get(sy, "rej_auth")), 2);
	json_decref(j);
	char *m = report_metrics(&f->view);
	assert_non_null(m);
	assert_non_null(strstr(m, "# TYPE ikelb_sync_applied_total counter\nikelb_sync_applied_total 11\n"));
	assert_non_null(strstr(m, "ikelb_sync_sent_msgs_total 4\n"));
	free(m);
}

/* ---- commands ---- */

static void drain_reaches_the_command_with_the_server(void **state)
{
	struct fake *f = *state;
	expect_reply(f, "POST", "/v1/servers/s1/drain", 200, "{\n  \"ok\": true\n}");
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->svc, 0);
	assert_int_equal(f->srv, 1);
	assert_int_equal(f->admin, CFG_SRV_DRAINING);
	/* The view shows what the command did. */
	json_t *j = report_status(&f->view);
	json_t *s1 = json_array_get(
		json_object_get(json_array_get(json_object_get(j, "services"), 0), "servers"), 1);
	assert_string_equal(json_string_value(json_object_get(s1, "state")), "draining");
	json_decref(j);
}

static void weight_with_service_prefix(void **state)
{
	struct fake *f = *state;
	expect_reply(f, "POST", "/v1/servers/vpn/s0/weight/7", 200, "{\n  \"ok\": true\n}");
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->srv, 0);
	assert_int_equal(f->weight, 7);
	assert_int_equal(f->rt.svc[0].servers[0].weight, 7);
}

static void wrong_requests_get_clear_errors(void **state)
{
	struct fake *f = *state;
	expect_reply(f, "POST", "/v1/servers/nosuch/drain", 404,
		     "{\n  \"error\": \"no such server\"\n}");
	expect_reply(f, "POST", "/v1/servers/other/s0/drain", 404,
		     "{\n  \"error\": \"no such server\"\n}");
	expect_reply(f, "POST", "/v1/servers/s0/weight/70000", 400,
		     "{\n  \"error\": \"weight must be 0..65535\"\n}");
	expect_reply(f, "POST", "/v1/servers/s0/explode", 404,
		     "{\n  \"error\": \"unknown action (drain, enable, disable, evacuate, weight/N)\"\n}");
	expect_reply(f, "POST", "/v1/servers/s0", 404,
		     "{\n  \"error\": \"expected /v1/servers/NAME/ACTION\"\n}");
	expect_reply(f, "GET", "/v1/servers/s0/drain", 404, "{\n  \"error\": \"not found\"\n}");
	expect_reply(f, "DELETE", "/v1/status", 405,
		     "{\n  \"error\": \"method not allowed\"\n}");
	char url[400];
	snprintf(url, sizeof(url), "/v1/servers/%0300d/drain", 0);
	expect_reply(f, "POST", url, 414, "{\n  \"error\": \"path too long\"\n}");
	assert_int_equal(f->calls, 0); /* none of them reached a command */
}

static void failed_command_is_a_server_error(void **state)
{
	struct fake *f = *state;
	f->fail_with = -EIO;
	expect_reply(f, "POST", "/v1/servers/s0/disable", 500,
		     "{\n  \"error\": \"engine update failed (see the daemon log)\"\n}");
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->admin, CFG_SRV_DISABLED);
}

static void shutdown_passes_keep(void **state)
{
	struct fake *f = *state;
	struct api_reply r;
	route(f, "POST", "/v1/shutdown", "1", &r);
	assert_int_equal(r.code, 200);
	free(r.body);
	assert_true(f->stopped && f->keep);
	route(f, "POST", "/v1/shutdown", NULL, &r);
	free(r.body);
	assert_false(f->keep);
}

static void reload_reports_changes_or_errors(void **state)
{
	struct fake *f = *state;
	expect_reply(f, "POST", "/v1/reload", 200,
		     "{\n  \"ok\": true,\n  \"changes\": [\n    \"vpn/s1 weight 50 -> 60 (file)\"\n"
		     "  ],\n  \"errors\": []\n}");
	f->fail_with = -EINVAL;
	expect_reply(f, "POST", "/v1/reload", 200,
		     "{\n  \"ok\": false,\n  \"changes\": [],\n  \"errors\": [\n"
		     "    \"f.yaml:3:9: bad\"\n  ]\n}");
	assert_int_equal(f->calls, 2);
	expect_reply(f, "GET", "/v1/reload", 404, "{\n  \"error\": \"not found\"\n}");
}

/* Before the first reload the status says so. */
static void status_without_reload(void **state)
{
	struct fake *f = *state;
	f->view.last_reload = NULL;
	json_t *j = report_status(&f->view);
	json_t *r = json_object_get(j, "last_reload");
	assert_string_equal(json_string_value(json_object_get(r, "result")), "none");
	assert_int_equal(json_integer_value(json_object_get(r, "at")), 0);
	json_decref(j);
}

/* Three flows of one NAT address to s0, as an engine would report them;
 * records the query it got. */
static struct lk_query last_q;
static int fake_lookup(void *ctx, const struct lk_query *q, lk_cb cb, void *cbctx)
{
	(void)ctx;
	last_q = *q;
	for (int i = 0; i < 3; i++) {
		struct lk_entry e = { .svc = 0, .srv = 0, .table = LK_T_FLOW, .rule = RULE_FLOW,
				      .cport = (uint16_t)(4500 + i), .vport = 4500, .idle_s = i,
				      .expires_in = 300 - i };
		ikelb_addr_parse("198.18.0.1", &e.client);
		if (q->kind == LK_Q_ADDR && q->port >= 0 && q->port != e.cport)
			continue;
		cb(cbctx, &e);
	}
	return 3;
}

static const char *args_get(void *ctx, const char *name)
{
	const char *const *kv = ctx;
	for (; kv[0]; kv += 2)
		if (!strcmp(kv[0], name))
			return kv[1];
	return NULL;
}

static json_t *get_args(struct fake *f, const char *url, const char *const *kv, unsigned code)
{
	struct api_args args = { args_get, (void *)kv };
	struct api_reply r;
	assert_int_equal(api_route(&f->view, &f->cmd, "GET", url, &args, &r), 0);
	assert_int_equal(r.code, code);
	json_t *j = json_loads(r.body, 0, NULL);
	free(r.body);
	assert_non_null(j);
	return j;
}

/* /v1/lookup answers with the first entry's server and rule and lists
 * every client behind the address; /v1/clients pages. */
static void lookup_and_clients(void **state)
{
	struct fake *f = *state;
	f->view.lookup = fake_lookup;
	const char *const a1[] = { "addr", "198.18.0.1", NULL };
	json_t *j = get_args(f, "/v1/lookup", a1, 200);
	assert_string_equal(json_string_value(json_object_get(j, "server")), "s0");
	assert_string_equal(json_string_value(json_object_get(j, "rule")), "flow");
	assert_string_equal(json_string_value(json_object_get(j, "service")), "vpn");
	assert_int_equal(json_integer_value(json_object_get(j, "last_seen")), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 300);
	assert_int_equal(json_array_size(json_object_get(j, "entries")), 3);
	json_decref(j);
	const char *const a2[] = { "addr", "[2001:db8::1]:4501", NULL };
	json_decref(get_args(f, "/v1/lookup", a2, 200));
	assert_int_equal(last_q.port, 4501);
	const char *const a3[] = { "spi", "00000000c0ffee01", NULL };
	json_decref(get_args(f, "/v1/lookup", a3, 200));
	assert_int_equal(last_q.kind, LK_Q_SPI);
	assert_true(last_q.spi == 0xc0ffee01ull && !last_q.esp);
	const char *const bad[][3] = { { "addr", "nope", NULL }, { "spi", "xyz", NULL },
				       { NULL, NULL, NULL } };
	for (int i = 0; i < 3; i++)
		json_decref(get_args(f, "/v1/lookup", bad[i], 400));
	const char *const c1[] = { "server", "s0", "offset", "1", "limit", "1", NULL };
	j = get_args(f, "/v1/clients", c1, 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 3);
	json_t *list = json_object_get(j, "clients");
	assert_int_equal(json_array_size(list), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "client_port")),
			 4501);
	assert_int_equal(last_q.srv, 0);
	json_decref(j);
	const char *const c2[] = { "service", "nosuch", NULL };
	json_decref(get_args(f, "/v1/clients", c2, 404));
}

/* ---- evacuation ---- */

static int fake_evacuate(void *ctx, int svc, int srv, char *err, size_t errsz)
{
	struct fake *f = record(ctx, svc, srv);
	if (f->fail_with)
		snprintf(err, errsz, "engine: forgetting persistence failed: Input/output error");
	return f->fail_with;
}

/* After a call, s1 is evacuating: 2 SAs left of 3 redirected. */
static int fake_evac(void *ctx, int svc, int srv, struct evac_info *out)
{
	struct fake *f = ctx;
	if (!f->calls || svc != 0 || srv != 1)
		return -ENOENT;
	*out = (struct evac_info){ .phase = EVAC_REDIRECTING, .sas_left = 2, .redirected = 3,
				   .forgotten = 1, .started_ms = NOW_MS - 1500 };
	return 0;
}

static void evacuate_route_status_and_metrics(void **state)
{
	struct fake *f = *state;
	struct api_reply r;
	expect_reply(f, "POST", "/v1/servers/s1/evacuate", 501,
		     "{\n  \"error\": \"evacuation is not available here\"\n}");
	f->cmd.evacuate = fake_evacuate;
	f->fail_with = -EIO;
	expect_reply(f, "POST", "/v1/servers/s1/evacuate", 500,
		     "{\n  \"error\": \"engine: forgetting persistence failed: "
		     "Input/output error\"\n}");
	f->fail_with = 0;
	f->calls = 0;
	expect_reply(f, "POST", "/v1/servers/nosuch/evacuate", 404,
		     "{\n  \"error\": \"no such server\"\n}");
	assert_int_equal(f->calls, 0);
	f->view.evac = fake_evac;
	route(f, "POST", "/v1/servers/vpn/s1/evacuate", NULL, &r);
	assert_int_equal(r.code, 200);
	assert_int_equal(f->srv, 1);
	json_t *j = json_loads(r.body, 0, NULL);
	free(r.body);
	assert_string_equal(json_string_value(json_object_get(j, "phase")), "redirecting");
	assert_int_equal(json_integer_value(json_object_get(j, "sas_left")), 2);
	assert_true(json_is_null(json_object_get(j, "vici")));
	assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "no vici"));
	json_decref(j);
	j = report_status(&f->view);
	json_t *srv = json_array_get(json_object_get(json_array_get(json_object_get(j, "services"),
								      0), "servers"), 1);
	json_t *ev = json_object_get(srv, "evacuation");
	assert_int_equal(json_integer_value(json_object_get(ev, "redirected")), 3);
	assert_true(json_real_value(json_object_get(ev, "seconds")) > 1.4);
	assert_null(json_object_get(json_array_get(json_object_get(json_array_get(
		json_object_get(j, "services"), 0), "servers"), 0), "evacuation"));
	json_decref(j);
	char *m = report_metrics(&f->view);
	assert_non_null(strstr(m, "ikelb_server_evacuating{service=\"vpn\",server=\"s1\"} 1\n"));
	assert_non_null(strstr(m, "ikelb_server_evacuation_sas_left{service=\"vpn\",server=\"s1\"} 2\n"));
	assert_null(strstr(m, "ikelb_server_evacuating{service=\"vpn\",server=\"s0\"}"));
	free(m);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(status_is_byte_exact),
		T(stats_counters_drops_and_expiries),
		T(metrics_families_and_samples),
		T(drain_reaches_the_command_with_the_server),
		T(weight_with_service_prefix),
		T(wrong_requests_get_clear_errors),
		T(failed_command_is_a_server_error),
		T(shutdown_passes_keep),
		T(reload_reports_changes_or_errors),
		T(status_without_reload),
		T(lookup_and_clients),
		T(sync_counters_in_stats_and_metrics),
		T(evacuate_route_status_and_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
