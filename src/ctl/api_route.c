/* The API's answers, apart from the HTTP server (api.c) so they can be
 * tested on a fake view without sockets. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/api.h"
#include "ctl/report.h"

#define CT_JSON "application/json"
#define CT_METRICS "text/plain; version=0.0.4"

const char *api_arg(const struct api_args *a, const char *name)
{
	return a && a->get ? a->get(a->ctx, name) : NULL;
}

/* Takes the reference to j. */
int api_reply_json(struct api_reply *out, unsigned code, json_t *j)
{
	out->body = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	out->code = code;
	out->ctype = CT_JSON;
	return out->body ? 0 : -ENOMEM;
}

int api_reply_error(struct api_reply *out, unsigned code, const char *msg)
{
	return api_reply_json(out, code, json_pack("{s:s}", "error", msg));
}

static int reply_ok(struct api_reply *out)
{
	return api_reply_json(out, 200, json_pack("{s:b}", "ok", 1));
}

/* Runs ACTION[/ARG] on one server: 1 with the command's result in *rc, or
 * (a wrong request) what writing the 4xx answer to *out returned. */
static int run_action(const struct ctl_cmd *cmd, int svc, int srv, const char *act,
		      const char *arg, struct api_reply *out, int *rc)
{
	if (!arg && !strcmp(act, "drain"))
		*rc = cmd->set_admin(cmd->ctx, svc, srv, CFG_SRV_DRAINING);
	else if (!arg && !strcmp(act, "enable"))
		*rc = cmd->set_admin(cmd->ctx, svc, srv, CFG_SRV_ACTIVE);
	else if (!arg && !strcmp(act, "disable"))
		*rc = cmd->set_admin(cmd->ctx, svc, srv, CFG_SRV_DISABLED);
	else if (arg && !strcmp(act, "weight")) {
		char *end;
		unsigned long w = strtoul(arg, &end, 10);
		if (*end || w > CFG_WEIGHT_MAX)
			return api_reply_error(out, 400, "weight must be 0..65535");
		*rc = cmd->set_weight(cmd->ctx, svc, srv, (uint32_t)w);
	} else
		return api_reply_error(out, 404, "unknown action (drain, enable, disable, evacuate, weight/N)");
	return 1;
}

/* POST /v1/servers/NAME/evacuate: 200 with the evacuation as status will
 * show it; the vici work goes on in a worker (GET /v1/status). */
static int evacuate_req(const struct ctl_view *v, const struct ctl_cmd *cmd, int svc, int srv,
			struct api_reply *out)
{
	const struct cfg_service *s = &v->cfg->services[svc];
	const struct cfg_server *cs = &s->servers[srv];
	char err[300] = "evacuation is not available here";
	struct evac_info ev;
	int rc = cmd->evacuate ? cmd->evacuate(cmd->ctx, svc, srv, err, sizeof(err)) : -EOPNOTSUPP;
	if (rc < 0) {
		log_err(v->log, "api: server %s/%s evacuate: %s", s->name, cs->name, err);
		return api_reply_error(out, rc == -EOPNOTSUPP ? 501 : 500, err);
	}
	log_notice(v->log, "api: server %s/%s evacuate (%s)", s->name, cs->name,
		   cs->vici[0] ? cs->vici : "no vici endpoint: drain and forget only");
	json_t *j = v->evac && v->evac(v->ctx, svc, srv, &ev) == 0
			    ? report_evac_json(&ev, v->now_ms()) : json_object();
	json_object_set_new(j, "ok", json_true());
	json_object_set_new(j, "server", json_sprintf("%s/%s", s->name, cs->name));
	json_object_set_new(j, "vici", cs->vici[0] ? json_string(cs->vici) : json_null());
	json_object_set_new(j, "message",
			    json_string(cs->vici[0]
					? "drained, persistence forgotten; asking the server's charon "
					  "to REDIRECT its IKE SAs to the VIP (progress: status)"
					: "no vici endpoint configured: drained and persistence "
					  "forgotten only; clients move when they reconnect"));
	return api_reply_json(out, 200, j);
}

/* /v1/servers/SPEC/ACTION[/ARG]; SPEC may contain one '/', so parse from
 * the right: the action is a known word. */
static int server_action(const struct ctl_view *v, const struct ctl_cmd *cmd, const char *path,
			 struct api_reply *out)
{
	char buf[256];
	if (strlen(path) >= sizeof(buf))
		return api_reply_error(out, 414, "path too long");
	strcpy(buf, path);

	char *arg = NULL, *act = strrchr(buf, '/');
	if (act && strspn(act + 1, "0123456789") == strlen(act + 1) && act[1]) {
		arg = act + 1;
		*act = 0;
		act = strrchr(buf, '/');
	}
	if (!act || act == buf)
		return api_reply_error(out, 404, "expected /v1/servers/NAME/ACTION");
	*act++ = 0;

	int svc, srv, rc = rt_find_server(v->rt, buf, &svc, &srv);
	if (rc == -EEXIST)
		return api_reply_error(out, 409, "server name is ambiguous: use SERVICE/NAME");
	if (rc < 0)
		return api_reply_error(out, 404, "no such server");
	if (!arg && !strcmp(act, "evacuate"))
		return evacuate_req(v, cmd, svc, srv, out);
	int done = run_action(cmd, svc, srv, act, arg, out, &rc);
	if (done <= 0)
		return done;
	if (rc < 0)
		return api_reply_error(out, 500, "engine update failed (see the daemon log)");
	log_notice(v->log, "api: server %s/%s %s%s%s", v->cfg->services[svc].name,
		   v->cfg->services[svc].servers[srv].name, act, arg ? " " : "", arg ? arg : "");
	return reply_ok(out);
}

static int shutdown_req(const struct ctl_view *v, const struct ctl_cmd *cmd, const char *keep,
			struct api_reply *out)
{
	bool keep_forwarding = keep && !strcmp(keep, "1");
	log_notice(v->log, "api: shutdown requested%s", keep_forwarding ? " (data path kept)" : "");
	cmd->shutdown(cmd->ctx, keep_forwarding);
	return reply_ok(out);
}

static json_t *lines_json(const char (*lines)[CTL_RELOAD_LINE], int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n && i < CTL_RELOAD_LINES; i++)
		json_array_append_new(a, json_string(lines[i]));
	return a;
}

/* The same reload SIGHUP does, answered with what it changed or why it
 * was refused: 200 either way when the request itself was fine, so a
 * client tells a refused file by "ok". */
static int reload_req(const struct ctl_view *v, const struct ctl_cmd *cmd, struct api_reply *out)
{
	struct ctl_reload_result *r = calloc(1, sizeof(*r));
	if (!r)
		return api_reply_error(out, 500, "out of memory");
	log_notice(v->log, "api: reload requested");
	int rc = cmd->reload(cmd->ctx, r);
	int ret = api_reply_json(out, 200,
			     json_pack("{s:b, s:o, s:o}", "ok", rc == 0, "changes",
				       lines_json(r->changes, r->nchanges), "errors",
				       lines_json(r->errors, r->nerrors)));
	free(r);
	return ret;
}

/* POST /v1/log/decisions/on|off */
static int decision_log(const struct ctl_view *v, const struct ctl_cmd *cmd, const char *arg,
			struct api_reply *out)
{
	bool on = !strcmp(arg, "on");
	if (!on && strcmp(arg, "off"))
		return api_reply_error(out, 404, "expected /v1/log/decisions/on or /off");
	int rc = cmd->set_decision_log ? cmd->set_decision_log(cmd->ctx, on) : -EOPNOTSUPP;
	if (rc == -EOPNOTSUPP)
		return api_reply_error(out, 501, "this engine does not log its decisions; "
						 "use ikelb lookup");
	if (rc < 0)
		return api_reply_error(out, 500, "engine update failed (see the daemon log)");
	log_notice(v->log, "api: decision log %s", on ? "on" : "off");
	return reply_ok(out);
}

int api_route(const struct ctl_view *v, const struct ctl_cmd *cmd, const char *method,
	      const char *url, const struct api_args *args, struct api_reply *out)
{
	const char *keep = api_arg(args, "keep");
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");

	memset(out, 0, sizeof(*out));
	if (get && !strcmp(url, "/v1/status"))
		return api_reply_json(out, 200, report_status(v));
	if (get && !strcmp(url, "/v1/stats"))
		return api_reply_json(out, 200, report_stats(v));
	if (get && !strcmp(url, "/metrics")) {
		*out = (struct api_reply){ 200, CT_METRICS, report_metrics(v) };
		return out->body ? 0 : -ENOMEM;
	}
	if (get) {
		int rc = api_dashboard(url, out);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	if (get && !strcmp(url, "/v1/lookup"))
		return api_lookup(v, args, out);
	if (get && !strcmp(url, "/v1/clients"))
		return api_clients(v, args, out);
	if (post && !strncmp(url, "/v1/servers/", 12))
		return server_action(v, cmd, url + 12, out);
	if (post && !strncmp(url, "/v1/log/decisions/", 18))
		return decision_log(v, cmd, url + 18, out);
	if (post && !strcmp(url, "/v1/reload"))
		return reload_req(v, cmd, out);
	if (post && !strcmp(url, "/v1/shutdown"))
		return shutdown_req(v, cmd, keep, out);
	if (get || post)
		return api_reply_error(out, 404, "not found");
	return api_reply_error(out, 405, "method not allowed");
}
