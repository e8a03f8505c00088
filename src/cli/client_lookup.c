/* ikelb lookup / clients / log: where clients went (GET /v1/lookup,
 * /v1/clients) and the decision log switch (POST /v1/log/decisions/...). */
#include "cli/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "s" of integer seconds, "-" for null (stateless rules, no timeout). */
static const char *secs(json_t *v, char *buf, size_t len)
{
	if (!json_is_integer(v))
		return "-";
	snprintf(buf, len, "%llds", json_integer_value(v));
	return buf;
}

/* The client column: address[:port->vip port], SPI, or "-". */
static const char *who(json_t *e, char *buf, size_t len)
{
	const char *c = json_string_value(json_object_get(e, "client"));
	const char *spi = json_string_value(json_object_get(e, "spi"));
	json_t *port = json_object_get(e, "client_port");
	if (c && json_is_integer(port))
		snprintf(buf, len, strchr(c, ':') ? "[%s]:%lld->%lld" : "%s:%lld->%lld", c,
			 json_integer_value(port),
			 json_integer_value(json_object_get(e, "vip_port")));
	else
		snprintf(buf, len, "%s", c ? c : spi ? spi : "-");
	return buf;
}

static void print_entries(json_t *list)
{
	size_t i;
	json_t *e;
	char w[96], ls[32], ex[32];
	printf("%-12s %-12s %-9s %-9s %-48s %9s %10s\n", "SERVICE", "SERVER", "RULE", "TABLE",
	       "CLIENT", "LAST_SEEN", "EXPIRES_IN");
	json_array_foreach(list, i, e)
		printf("%-12s %-12s %-9s %-9s %-48s %9s %10s\n",
		       json_string_value(json_object_get(e, "service")),
		       json_string_value(json_object_get(e, "server")),
		       json_string_value(json_object_get(e, "rule")),
		       json_string_value(json_object_get(e, "table")), who(e, w, sizeof(w)),
		       secs(json_object_get(e, "last_seen"), ls, sizeof(ls)),
		       secs(json_object_get(e, "expires_in"), ex, sizeof(ex)));
}

/* path + "?k=v&..." with the values escaped; NULL values are left out. */
static int build(char *out, size_t len, const char *path, const char *const *kv)
{
	CURL *c = curl_easy_init();
	int n = snprintf(out, len, "%s", path);
	char sep = '?';
	for (; c && kv[0] && n >= 0 && (size_t)n < len; kv += 2) {
		if (!kv[1])
			continue;
		char *v = curl_easy_escape(c, kv[1], 0);
		n += snprintf(out + n, len - (size_t)n, "%c%s=%s", sep, kv[0], v ? v : "");
		curl_free(v);
		sep = '&';
	}
	if (c)
		curl_easy_cleanup(c);
	return !c || n < 0 || (size_t)n >= len ? -1 : 0;
}

/* GET path?kv: 0 with *out (to print), else the exit status (also 0
 * after printing --json). */
static int fetch(const struct client_api *api, const char *path, const char *const *kv,
		 bool as_json, json_t **out)
{
	char url[512];
	if (build(url, sizeof(url), path, kv) < 0) {
		fprintf(stderr, "ikelb: %s: argument too long\n", path);
		return 2;
	}
	*out = client_request_json(api, "GET", url);
	if (!*out)
		return 1;
	if (as_json) {
		client_dump_json(*out);
		*out = NULL;
	}
	return 0;
}

int client_cmd_lookup(const struct client_api *api, const struct cli_args *a)
{
	const char *const kv[] = { "addr", a->target, "spi", a->spi, NULL };
	json_t *j;
	int rc = fetch(api, "/v1/lookup", kv, a->json, &j);
	if (rc || !j)
		return rc;
	printf("%s -> %s/%s (rule %s)\n", json_string_value(json_object_get(j, "query")),
	       json_string_value(json_object_get(j, "service")),
	       json_string_value(json_object_get(j, "server")),
	       json_string_value(json_object_get(j, "rule")));
	print_entries(json_object_get(j, "entries"));
	json_decref(j);
	return 0;
}

int client_cmd_clients(const struct client_api *api, const struct cli_args *a)
{
	char off[24], lim[24];
	snprintf(off, sizeof(off), "%lu", a->offset);
	snprintf(lim, sizeof(lim), "%lu", a->limit);
	const char *const kv[] = { "service", a->service, "server", a->server_filter, "offset",
				   a->offset ? off : NULL, "limit", a->limit ? lim : NULL, NULL };
	json_t *j;
	int rc = fetch(api, "/v1/clients", kv, a->json, &j);
	if (rc || !j)
		return rc;
	json_t *list = json_object_get(j, "clients");
	print_entries(list);
	long long total = json_integer_value(json_object_get(j, "total"));
	long long from = json_integer_value(json_object_get(j, "offset"));
	printf("entries %lld-%lld of %lld\n", json_array_size(list) ? from + 1 : from,
	       from + (long long)json_array_size(list), total);
	json_decref(j);
	return 0;
}

int client_cmd_log(const struct client_api *api, const struct cli_args *a)
{
	json_t *j = client_request_json(api, "POST", a->log_on ? "/v1/log/decisions/on"
							       : "/v1/log/decisions/off");
	if (!j)
		return 1;
	printf("decision log %s\n", a->log_on ? "on" : "off");
	json_decref(j);
	return 0;
}
