#include "ctl/api.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "ctl/daemon.h"
#include "ctl/report.h"

struct api {
	struct daemon *d;
	struct MHD_Daemon *mhd;
	int listen_fd;
	char unix_path[108];
};

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned code, const char *ctype,
				 char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	enum MHD_Result rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	if (!s)
		return MHD_NO;
	return send_text(c, code, "application/json", s);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned code, const char *msg)
{
	return send_json(c, code, json_pack("{s:s}", "error", msg));
}

/* /v1/servers/SPEC/ACTION[/ARG]; SPEC may contain one '/', so parse from
 * the right: the action is a known word. */
static enum MHD_Result server_action(struct api *a, struct MHD_Connection *c, const char *path)
{
	char buf[256];
	if (strlen(path) >= sizeof(buf))
		return send_error(c, 414, "path too long");
	strcpy(buf, path);

	char *arg = NULL, *act = strrchr(buf, '/');
	if (act && strspn(act + 1, "0123456789") == strlen(act + 1) && act[1]) {
		arg = act + 1;
		*act = 0;
		act = strrchr(buf, '/');
	}
	if (!act || act == buf)
		return send_error(c, 404, "expected /v1/servers/NAME/ACTION");
	*act++ = 0;

	int svc, srv, rc = rt_find_server(&a->d->rt, buf, &svc, &srv);
	if (rc == -EEXIST)
		return send_error(c, 409, "server name is ambiguous: use SERVICE/NAME");
	if (rc < 0)
		return send_error(c, 404, "no such server");

	uint64_t now = daemon_now_ms();
	if (!strcmp(act, "drain") && !arg)
		rc = rt_set_admin(&a->d->rt, svc, srv, CFG_SRV_DRAINING, now);
	else if (!strcmp(act, "enable") && !arg)
		rc = rt_set_admin(&a->d->rt, svc, srv, CFG_SRV_ACTIVE, now);
	else if (!strcmp(act, "disable") && !arg)
		rc = rt_set_admin(&a->d->rt, svc, srv, CFG_SRV_DISABLED, now);
	else if (!strcmp(act, "weight") && arg) {
		char *end;
		unsigned long w = strtoul(arg, &end, 10);
		if (*end || w > CFG_WEIGHT_MAX)
			return send_error(c, 400, "weight must be 0..65535");
		rc = rt_set_weight(&a->d->rt, svc, srv, (uint32_t)w, now);
	} else
		return send_error(c, 404, "unknown action (drain, enable, disable, weight/N)");
	if (rc < 0)
		return send_error(c, 500, "engine update failed (see the daemon log)");
	log_notice(&a->d->log, "api: server %s/%s %s%s%s", a->d->cfg.services[svc].name,
		   a->d->cfg.services[svc].servers[srv].name, act, arg ? " " : "", arg ? arg : "");
	return send_json(c, 200, json_pack("{s:b}", "ok", 1));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct api *a = cls;
	(void)version;
	(void)upload;

	/* MHD calls once with headers, then with the body: ignore bodies. */
	if (!*con_cls) {
		*con_cls = a;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	if (get && !strcmp(url, "/v1/status"))
		return send_json(c, 200, report_status(a->d));
	if (get && !strcmp(url, "/v1/stats"))
		return send_json(c, 200, report_stats(a->d));
	if (get && !strcmp(url, "/metrics")) {
		char *m = report_metrics(a->d);
		return m ? send_text(c, 200, "text/plain; version=0.0.4", m) : MHD_NO;
	}
	if (post && !strncmp(url, "/v1/servers/", 12))
		return server_action(a, c, url + 12);
	if (post && !strcmp(url, "/v1/shutdown")) {
		const char *keep = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "keep");
		a->d->keep_forwarding = keep && !strcmp(keep, "1");
		a->d->stopping = true;
		log_notice(&a->d->log, "api: shutdown requested%s",
			   a->d->keep_forwarding ? " (data path kept)" : "");
		return send_json(c, 200, json_pack("{s:b}", "ok", 1));
	}
	if (get || post)
		return send_error(c, 404, "not found");
	return send_error(c, 405, "method not allowed");
}

static int listen_unix(struct api *a, const char *path, char *err, int errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, (size_t)errlen, "unix socket path too long: %s", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	snprintf(a->unix_path, sizeof(a->unix_path), "%s", path);

	char dir[108];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0750);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* A socket someone still accepts on belongs to a running daemon: two
	 * daemons would fight over the same data path. A dead one's socket is
	 * stale and replaced. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		snprintf(err, (size_t)errlen, "another ikelb is already running (its API answers on %s)",
			 path);
		close(fd);
		return -1;
	}
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 32) < 0) {
		snprintf(err, (size_t)errlen, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	chmod(path, 0660);
	return fd;
}

struct api *api_start(struct daemon *d, const char *listen, char *err, int errlen)
{
	struct api *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->d = d;
	a->listen_fd = -1;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (!strncmp(listen, "unix:", 5)) {
		a->listen_fd = listen_unix(a, listen + 5, err, errlen);
		if (a->listen_fd < 0) {
			free(a);
			return NULL;
		}
		a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, a, MHD_OPTION_LISTEN_SOCKET,
					  a->listen_fd, MHD_OPTION_END);
	} else {
		char host[128];
		const char *colon = strrchr(listen, ':');
		if (!colon || colon - listen >= (long)sizeof(host)) {
			snprintf(err, (size_t)errlen, "api.listen: expected unix:PATH or HOST:PORT");
			free(a);
			return NULL;
		}
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = 0;
		int port = atoi(colon + 1);
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		struct ikelb_addr ia;
		if (port <= 0 || port > 65535 || ikelb_addr_parse(host, &ia) < 0 || !ikelb_addr_is_v4(&ia)) {
			snprintf(err, (size_t)errlen, "api.listen: bad IPv4 HOST:PORT %s", listen);
			free(a);
			return NULL;
		}
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr.s_addr = ikelb_addr_v4(&ia);
		a->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, a,
					  MHD_OPTION_SOCK_ADDR, sin, MHD_OPTION_END);
	}
	if (!a->mhd) {
		snprintf(err, (size_t)errlen, "cannot start the API on %s", listen);
		api_stop(a);
		return NULL;
	}
	a->listen_fd = -1; /* MHD owns and closes it now */
	return a;
}

int api_fd(const struct api *a)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	return i ? i->epoll_fd : -1;
}

void api_run(struct api *a)
{
	MHD_run(a->mhd);
}

long api_timeout_ms(struct api *a)
{
	MHD_UNSIGNED_LONG_LONG t;
	if (MHD_get_timeout(a->mhd, &t) != MHD_YES)
		return -1;
	return t > 60000 ? 60000 : (long)t;
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	if (a->mhd)
		MHD_stop_daemon(a->mhd);
	if (a->listen_fd >= 0)
		close(a->listen_fd);
	if (a->unix_path[0])
		unlink(a->unix_path);
	free(a);
}
