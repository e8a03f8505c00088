#include "cli/client.h"

#include "core/clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long `stop` waits for the daemon to go, and how often it looks. */
#define STOP_WAIT_MS 10000
#define STOP_POLL_MS 100

int client_set_token_file(struct client_api *api, const char *path)
{
	char tok[260];
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "ikelb: api.token_file %s: %s\n", path, strerror(errno));
		return -errno;
	}
	char *line = fgets(tok, sizeof(tok), f);
	fclose(f);
	size_t n = line ? strcspn(tok, "\r\n") : 0;
	while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		n--;
	snprintf(api->auth, sizeof(api->auth), "Authorization: Bearer %.*s", (int)n, tok);
	explicit_bzero(tok, sizeof(tok));
	return 0;
}

struct body {
	char *p;
	size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *ud)
{
	struct body *b = ud;
	size_t add = size * n;
	char *np = realloc(b->p, b->len + add + 1);
	if (!np)
		return 0;
	memcpy(np + b->len, ptr, add);
	b->p = np;
	b->len += add;
	b->p[b->len] = 0;
	return add;
}

static int request(const struct client_api *api, const char *method, const char *path, long timeout_ms,
		   char **body, char *err, int errlen)
{
	char url[512];
	struct body b = { 0 };
	long code = -1;
	CURL *c = curl_easy_init();

	if (!c) {
		snprintf(err, (size_t)errlen, "curl init failed");
		return -1;
	}
	if (!strncmp(api->listen, "unix:", 5)) {
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, api->listen + 5);
		snprintf(url, sizeof(url), "http://localhost%s", path);
	} else {
		snprintf(url, sizeof(url), "http://%s%s", api->listen, path);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "POST"))
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	struct curl_slist *hdrs = api->auth[0] ? curl_slist_append(NULL, api->auth) : NULL;
	if (hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	CURLcode rc = curl_easy_perform(c);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		snprintf(err, (size_t)errlen, "cannot reach ikelb at %s: %s (is the daemon running? -a ADDR)",
			 api->listen, curl_easy_strerror(rc));
		free(b.p);
		b.p = NULL;
		code = rc == CURLE_OPERATION_TIMEDOUT ? -2 : -1;
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	}
	curl_easy_cleanup(c);
	*body = b.p;
	return (int)code;
}

int client_request(const struct client_api *api, const char *method, const char *path, char **body,
		   char *err, int errlen)
{
	return request(api, method, path, 10000, body, err, errlen);
}

/* Run a request; on success hand back the parsed JSON, else print why. */
static json_t *request_json(const struct client_api *api, const char *method, const char *path)
{
	char err[256], *body = NULL;
	int code = client_request(api, method, path, &body, err, sizeof(err));
	if (code < 0) {
		fprintf(stderr, "ikelb: %s\n", err);
		return NULL;
	}
	json_error_t je;
	json_t *j = body ? json_loads(body, 0, &je) : NULL;
	if (code != 200) {
		const char *m = j ? json_string_value(json_object_get(j, "error")) : NULL;
		fprintf(stderr, "ikelb: %s (HTTP %d)\n", m ? m : (body ? body : "error"), code);
		json_decref(j);
		j = NULL;
	}
	free(body);
	return j;
}

static int dump_json(json_t *j);

json_t *client_request_json(const struct client_api *api, const char *method, const char *path)
{
	return request_json(api, method, path);
}

/* "12ms", or "-" before the first answer (or without health checks). */
static const char *rtt_text(json_t *s, char *buf, size_t len)
{
	json_t *rtt = json_object_get(s, "rtt_ms");
	if (!json_is_integer(rtt))
		return "-";
	snprintf(buf, len, "%lldms", json_integer_value(rtt));
	return buf;
}

/* The charon's count; ikelb's own SA count is the SAS column. */
static void print_evacuation(json_t *e)
{
	if (!e)
		return;
	json_t *left = json_object_get(e, "sas_left");
	char l[24] = "?";
	if (json_is_integer(left))
		snprintf(l, sizeof(l), "%lld", json_integer_value(left));
	printf("  %-12s evacuation: %s, SAs left %s, redirected %lld, %.0f s%s%s\n", "",
	       json_string_value(json_object_get(e, "phase")), l,
	       json_integer_value(json_object_get(e, "redirected")),
	       json_real_value(json_object_get(e, "seconds")),
	       json_object_get(e, "error") ? ": " : "",
	       json_object_get(e, "error") ? json_string_value(json_object_get(e, "error")) : "");
}

static void print_servers(json_t *servers)
{
	size_t k;
	json_t *s;
	char rtt[32];
	printf("  %-12s %-40s %-9s %-8s %-7s %6s %7s %6s %7s %12s %14s\n", "SERVER", "ADDRESS",
	       "STATE", "ADMIN", "HEALTH", "WEIGHT", "SAS", "ADDRS", "RTT", "PACKETS", "BYTES");
	json_array_foreach(servers, k, s) {
		printf("  %-12s %-40s %-9s %-8s %-7s %6lld %7lld %6lld %7s %12lld %14lld\n",
		       json_string_value(json_object_get(s, "name")),
		       json_string_value(json_object_get(s, "address")),
		       json_string_value(json_object_get(s, "state")),
		       json_string_value(json_object_get(s, "admin")),
		       json_string_value(json_object_get(s, "health")),
		       json_integer_value(json_object_get(s, "weight")),
		       json_integer_value(json_object_get(s, "sas")),
		       json_integer_value(json_object_get(s, "client_addresses")),
		       rtt_text(s, rtt, sizeof(rtt)),
		       json_integer_value(json_object_get(s, "packets")),
		       json_integer_value(json_object_get(s, "bytes")));
		print_evacuation(json_object_get(s, "evacuation"));
		size_t w;
		json_t *warn;
		json_array_foreach(json_object_get(s, "warnings"), w, warn)
			printf("  %-12s warning: %s\n", "", json_string_value(warn));
		/* Why a server is not up is the first thing an operator asks. */
		const char *err = json_string_value(json_object_get(s, "last_error"));
		const char *health = json_string_value(json_object_get(s, "health"));
		if (err && health && strcmp(health, "up"))
			printf("  %-12s last probe: %s (%lld ok, %lld failed, %lld down events)\n", "",
			       err, json_integer_value(json_object_get(s, "probes_ok")),
			       json_integer_value(json_object_get(s, "probes_failed")),
			       json_integer_value(json_object_get(s, "down_events")));
	}
}

int client_dump_json(json_t *j)
{
	return dump_json(j);
}

static int dump_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));
	if (s)
		puts(s);
	free(s);
	json_decref(j);
	return 0;
}

/* One line: when the last reload was, its result and changes. */
static void print_last_reload(json_t *r)
{
	const char *res = json_string_value(json_object_get(r, "result"));
	if (!res || !strcmp(res, "none")) {
		printf("last reload: none\n");
		return;
	}
	time_t at = (time_t)json_integer_value(json_object_get(r, "at"));
	char when[64];
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&at, &tm));
	printf("last reload: %s %s, %lld change(s)%s%s\n", when, res,
	       json_integer_value(json_object_get(r, "changes")),
	       strcmp(res, "ok") ? ": " : "",
	       strcmp(res, "ok") ? json_string_value(json_object_get(r, "message")) : "");
}

int client_cmd_status(const struct client_api *api, int as_json)
{
	json_t *j = request_json(api, "GET", "/v1/status");
	if (!j)
		return 1;
	if (as_json)
		return dump_json(j);
	printf("engine %s, config %s, up %llds\n", json_string_value(json_object_get(j, "engine")),
	       json_string_value(json_object_get(j, "config")),
	       json_integer_value(json_object_get(j, "uptime_s")));
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(j, "services"), i, s) {
		printf("service %s  vip %s  forwarding %s  persistence %s  scheduler %s\n",
		       json_string_value(json_object_get(s, "name")),
		       json_string_value(json_object_get(s, "vip")),
		       json_string_value(json_object_get(s, "forwarding")),
		       json_string_value(json_object_get(s, "persistence")),
		       json_string_value(json_object_get(s, "scheduler")));
		print_servers(json_object_get(s, "servers"));
	}
	print_last_reload(json_object_get(j, "last_reload"));
	json_decref(j);
	return 0;
}

static void print_counters(json_t *obj, const char *title)
{
	const char *k;
	json_t *v;
	int first = 1;
	json_object_foreach(obj, k, v) {
		json_int_t p = json_integer_value(json_object_get(v, "packets"));
		if (!p)
			continue;
		if (first)
			printf("  %s:\n", title);
		first = 0;
		printf("    %-16s %12lld pkts %14lld bytes\n", k, p,
		       json_integer_value(json_object_get(v, "bytes")));
	}
}

int client_cmd_stats(const struct client_api *api, int as_json)
{
	json_t *j = request_json(api, "GET", "/v1/stats");
	if (!j)
		return 1;
	if (as_json)
		return dump_json(j);
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(j, "services"), i, s) {
		printf("service %s\n", json_string_value(json_object_get(s, "name")));
		print_counters(json_object_get(s, "counters"), "counters");
		print_counters(json_object_get(s, "drops"), "drops");
		print_servers(json_object_get(s, "servers"));
	}
	print_last_reload(json_object_get(j, "last_reload"));
	json_decref(j);
	return 0;
}

int client_cmd_server(const struct client_api *api, const struct cli_args *a)
{
	static const char *const actions[] = {
		[CLI_SRV_DRAIN] = "drain",
		[CLI_SRV_ENABLE] = "enable",
		[CLI_SRV_DISABLE] = "disable",
		[CLI_SRV_WEIGHT] = "weight",
		[CLI_SRV_EVACUATE] = "evacuate",
	};
	char path[300];
	/* The API takes the weight in decimal only; the CLI also reads 0x-hex. */
	if (a->action == CLI_SRV_WEIGHT)
		snprintf(path, sizeof(path), "/v1/servers/%s/weight/%u", a->server, a->weight);
	else
		snprintf(path, sizeof(path), "/v1/servers/%s/%s", a->server, actions[a->action]);
	json_t *j = request_json(api, "POST", path);
	if (!j)
		return 1;
	const char *msg = json_string_value(json_object_get(j, "message"));
	if (a->action == CLI_SRV_EVACUATE && msg)
		printf("%s: %s\n", json_string_value(json_object_get(j, "server")), msg);
	json_decref(j);
	return 0;
}

static void print_lines(FILE *f, json_t *lines, const char *prefix)
{
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l)
		fprintf(f, "%s%s\n", prefix, json_string_value(l));
}

int client_cmd_reload(const struct client_api *api)
{
	json_t *j = request_json(api, "POST", "/v1/reload");
	if (!j)
		return 1;
	bool ok = json_is_true(json_object_get(j, "ok"));
	json_t *changes = json_object_get(j, "changes");
	if (ok && !json_array_size(changes))
		printf("reloaded: no changes\n");
	else if (ok)
		printf("reloaded: %zu change(s)\n", json_array_size(changes));
	print_lines(stdout, changes, "  ");
	if (!ok) {
		fprintf(stderr, "ikelb: reload refused; the running configuration stays\n");
		print_lines(stderr, json_object_get(j, "errors"), "");
	}
	json_decref(j);
	return ok ? 0 : 1;
}

static long long now_ms(void)
{
	return (long long)clock_mono_ms();
}

/* The daemon answers the shutdown request before it has detached the data
 * path; scripts that start it again right after `stop` need it gone. */
static int wait_gone(const struct client_api *api)
{
	long long deadline = now_ms() + STOP_WAIT_MS;
	char err[256], *body;
	struct timespec nap = { 0, STOP_POLL_MS * 1000000L };

	while (now_ms() < deadline) {
		long left = (long)(deadline - now_ms());
		long t = left > 1000 ? 1000 : left > 0 ? left : 1; /* 0 would mean "no limit" */
		int code = request(api, "GET", "/v1/status", t, &body, err, sizeof(err));
		free(body);
		/* A daemon too busy to answer in time is still there. */
		if (code == -1)
			return 0;
		nanosleep(&nap, NULL);
	}
	fprintf(stderr, "ikelb: the daemon at %s still answers %d s after stop\n", api->listen,
		STOP_WAIT_MS / 1000);
	return 1;
}

int client_cmd_stop(const struct client_api *api, int keep)
{
	json_t *j = request_json(api, "POST", keep ? "/v1/shutdown?keep=1" : "/v1/shutdown");
	if (!j)
		return 1;
	json_decref(j);
	return wait_gone(api);
}

/* Counts servers by effective state; a node whose servers are all down
 * must not hold the VIP (nothing behind it would answer). */
static int active_servers(json_t *status, int *total)
{
	size_t i, k;
	json_t *svc, *srv;
	int up = 0;

	*total = 0;
	json_array_foreach(json_object_get(status, "services"), i, svc) {
		json_array_foreach(json_object_get(svc, "servers"), k, srv) {
			const char *st = json_string_value(json_object_get(srv, "state"));
			(*total)++;
			up += st && !strcmp(st, "active");
		}
	}
	return up;
}

int client_cmd_health_check(const struct client_api *api)
{
	char err[256], *body = NULL;
	/* Short: keepalived and the BGP loop call this every second. */
	int code = request(api, "GET", "/v1/status", 2000, &body, err, sizeof(err));
	json_error_t je;
	json_t *j = code == 200 && body ? json_loads(body, 0, &je) : NULL;
	int rc = 1, total = 0;

	free(body);
	if (code < 0)
		fprintf(stderr, "ikelb health-check: %s\n", err);
	else if (!j)
		fprintf(stderr, "ikelb health-check: no status (HTTP %d)\n", code);
	else {
		const char *eng = json_string_value(json_object_get(j, "engine"));
		int up = active_servers(j, &total);
		if (!eng || !strcmp(eng, "none"))
			fprintf(stderr, "ikelb health-check: no engine running\n");
		else if (up == 0)
			fprintf(stderr, "ikelb health-check: no active server (0/%d)\n", total);
		else {
			printf("ok: engine %s, %d/%d server(s) active\n", eng, up, total);
			rc = 0;
		}
	}
	json_decref(j);
	return rc;
}
