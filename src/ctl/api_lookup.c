/* GET /v1/lookup and /v1/clients: where clients went, from the engine's
 * state tables through the view (read-only; see core/lookup.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/api.h"

#define CLIENTS_LIMIT 100      /* default page */
#define CLIENTS_LIMIT_MAX 10000

struct collect {
	const struct ctl_view *v;
	bool esp;              /* the query was an ESP SPI: print 8 digits */
	json_t *list;
	long skip, room;       /* paging: entries to skip, then to keep */
	long total;
};

static json_t *entry_json(const struct collect *c, const struct lk_entry *en)
{
	const struct cfg_service *s = &c->v->cfg->services[en->svc];
	char a[IKELB_ADDR_STRLEN], spi[24];
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "service", s->name, "server",
			      s->servers[en->srv].name, "server_address",
			      ikelb_addr_str(&s->servers[en->srv].addr, a, sizeof(a)), "rule",
			      lk_rule_name(en->rule), "table", lk_table_name(en->table));
	if (!j)
		return NULL;
	if (en->table == LK_T_FLOW || en->table == LK_T_PERSIST) {
		json_object_set_new(j, "client", json_string(ikelb_addr_str(&en->client, a, sizeof(a))));
		if (en->table == LK_T_FLOW) {
			json_object_set_new(j, "client_port", json_integer(en->cport));
			json_object_set_new(j, "vip_port", json_integer(en->vport));
		}
	}
	if (en->table == LK_T_SA || en->table == LK_T_HALFOPEN || en->table == LK_T_LABEL ||
	    (en->rule == RULE_FALLBACK && en->spi)) {
		snprintf(spi, sizeof(spi), c->esp ? "%08llx" : "%016llx", (unsigned long long)en->spi);
		json_object_set_new(j, "spi", json_string(spi));
	}
	json_object_set_new(j, "last_seen", en->idle_s < 0 ? json_null() : json_integer(en->idle_s));
	json_object_set_new(j, "expires_in",
			    en->expires_in < 0 ? json_null() : json_integer(en->expires_in));
	return j;
}

static int collect_cb(void *ctx, const struct lk_entry *en)
{
	struct collect *c = ctx;
	if (en->svc < 0 || en->svc >= c->v->cfg->nservices || en->srv < 0 ||
	    en->srv >= c->v->cfg->services[en->svc].nservers)
		return 0;
	c->total++;
	if (c->skip > 0) {
		c->skip--;
		return 0;
	}
	if (c->room > 0) {
		c->room--;
		json_array_append_new(c->list, entry_json(c, en));
	}
	return 0;
}

static int run(const struct ctl_view *v, const struct lk_query *q, struct collect *c)
{
	c->v = v;
	c->esp = q->kind == LK_Q_SPI && q->esp;
	c->list = json_array();
	if (!c->list)
		return -ENOMEM;
	if (!v->lookup)
		return -EOPNOTSUPP;
	return v->lookup(v->ctx, q, collect_cb, c);
}

static int service_arg(const struct ctl_view *v, const char *name, int *svc)
{
	*svc = -1;
	if (!name || !*name)
		return 0;
	for (int i = 0; i < v->cfg->nservices; i++)
		if (!strcmp(v->cfg->services[i].name, name)) {
			*svc = i;
			return 0;
		}
	return -ENOENT;
}

/* The first entry is the answer: flows before persistence, the stateful
 * SA before the fallback (the order the engines emit in). */
static json_t *lookup_json(json_t *list, const char *query)
{
	json_t *first = json_array_get(list, 0);
	json_t *j = json_pack("{s:s, s:I}", "query", query, "found",
			      (json_int_t)json_array_size(list));
	const char *keys[] = { "service", "server", "server_address", "rule", "table",
			       "last_seen", "expires_in" };
	for (size_t k = 0; j && k < sizeof(keys) / sizeof(keys[0]); k++)
		json_object_set(j, keys[k], json_object_get(first, keys[k]));
	if (j)
		json_object_set_new(j, "entries", list);
	return j;
}

int api_lookup(const struct ctl_view *v, const struct api_args *args, struct api_reply *out)
{
	const char *addr = api_arg(args, "addr"), *port = api_arg(args, "port");
	const char *spi = api_arg(args, "spi");
	struct lk_query q = { .port = -1, .srv = -1 };
	struct collect c = { .room = CLIENTS_LIMIT_MAX };
	char query[96];

	if (service_arg(v, api_arg(args, "service"), &q.svc) < 0)
		return api_reply_error(out, 404, "no such service");
	if (!addr == !spi)
		return api_reply_error(out, 400, "give addr=ADDRESS[&port=P] or spi=HEX");
	if (spi) {
		q.kind = LK_Q_SPI;
		if (lk_parse_spi(spi, &q.spi, &q.esp) < 0)
			return api_reply_error(out, 400, "spi: 1..16 hex digits, not 0");
	} else {
		q.kind = LK_Q_ADDR;
		if (lk_parse_addr(addr, &q.addr, &q.port) < 0)
			return api_reply_error(out, 400, "addr: an IPv4 or IPv6 address");
		char *end;
		unsigned long p = port ? strtoul(port, &end, 10) : 0;
		if (port && (!*port || *end || p > 65535))
			return api_reply_error(out, 400, "port: 0..65535");
		if (port)
			q.port = (int)p;
	}
	snprintf(query, sizeof(query), "%s", spi ? spi : addr);
	int rc = run(v, &q, &c);
	if (rc < 0) {
		json_decref(c.list);
		return api_reply_error(out, 500, "lookup failed (see the daemon log)");
	}
	if (json_array_size(c.list) == 0) {
		json_decref(c.list);
		return api_reply_error(out, 404, "no server would take this client");
	}
	return api_reply_json(out, 200, lookup_json(c.list, query));
}

static int long_arg(const char *s, long dflt, long max, long *out)
{
	char *end;
	if (!s) {
		*out = dflt;
		return 0;
	}
	long n = strtol(s, &end, 10);
	if (!*s || *end || n < 0 || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

int api_clients(const struct ctl_view *v, const struct api_args *args, struct api_reply *out)
{
	struct lk_query q = { .kind = LK_Q_ALL, .port = -1, .srv = -1 };
	struct collect c = { 0 };
	const char *server = api_arg(args, "server");
	long offset, limit;

	if (service_arg(v, api_arg(args, "service"), &q.svc) < 0)
		return api_reply_error(out, 404, "no such service");
	if (long_arg(api_arg(args, "offset"), 0, 1L << 40, &offset) < 0 ||
	    long_arg(api_arg(args, "limit"), CLIENTS_LIMIT, CLIENTS_LIMIT_MAX, &limit) < 0)
		return api_reply_error(out, 400, "offset and limit: 0..10000 entries");
	if (server && *server) {
		int svc, rc = rt_find_server(v->rt, server, &svc, &q.srv);
		if (rc == -EEXIST)
			return api_reply_error(out, 409, "server name is ambiguous: use SERVICE/NAME");
		if (rc < 0 || (q.svc >= 0 && q.svc != svc))
			return api_reply_error(out, 404, "no such server");
		q.svc = svc;
	}
	c.skip = offset;
	c.room = limit;
	int rc = run(v, &q, &c);
	if (rc < 0) {
		json_decref(c.list);
		return api_reply_error(out, 500, "listing failed (see the daemon log)");
	}
	return api_reply_json(out, 200,
			      json_pack("{s:I, s:I, s:I, s:o}", "total", (json_int_t)c.total,
					"offset", (json_int_t)offset, "limit", (json_int_t)limit,
					"clients", c.list));
}
