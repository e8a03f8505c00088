#include "ctl/api.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#define MHD_FLAGS (MHD_USE_EPOLL | MHD_USE_ERROR_LOG)
/* Room for a burst of CLI calls and scrapers: beyond API_CONN_MAX open
 * connections MHD stops accepting, and the rest wait in the backlog (the
 * kernel's default 32 dropped most of 200 parallel requests). */
#define API_BACKLOG 256
#define API_CONN_MAX 64
#define API_CONN_PER_IP 32 /* TCP: one peer cannot hold every slot */
#define API_TOKEN_MAX 256

struct api {
	const struct ctl_view *view;
	const struct ctl_cmd *cmd;
	struct MHD_Daemon *mhd;
	int listen_fd;
	char unix_path[108];
	char token[API_TOKEN_MAX]; /* "" = no bearer token required */
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
	/* Without its Content-Type the answer would mislead clients: drop the
	 * connection instead. */
	enum MHD_Result rc = MHD_NO;
	if (MHD_add_response_header(r, "Content-Type", ctype) == MHD_YES)
		rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

bool api_authorized(const char *token, const char *header)
{
	if (!token[0])
		return true;
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return false;
	header += 7;
	/* Every byte of the token is compared whatever the first mismatch, so
	 * the answer's timing does not reveal how much of a guess was right. */
	size_t tl = strlen(token), hl = strlen(header);
	unsigned char diff = tl != hl;
	for (size_t i = 0; i < tl; i++)
		diff |= (unsigned char)(token[i] ^ (i < hl ? header[i] : 0));
	return diff == 0;
}

static enum MHD_Result send_unauthorized(struct MHD_Connection *c)
{
	static const char body[] = "{\"error\": \"missing or wrong bearer token\"}\n";
	struct MHD_Response *r = MHD_create_response_from_buffer(
		sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	enum MHD_Result rc = MHD_NO;
	if (MHD_add_response_header(r, "Content-Type", "application/json") == MHD_YES &&
	    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer") == MHD_YES)
		rc = MHD_queue_response(c, MHD_HTTP_UNAUTHORIZED, r);
	MHD_destroy_response(r);
	return rc;
}

static const char *query_arg(void *ctx, const char *name)
{
	return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct api *a = cls;
	(void)version;
	(void)upload;

	/* MHD calls once with headers, then with the body: ignore bodies. A
	 * request without the token is answered before its body is read. */
	if (!*con_cls) {
		*con_cls = a;
		if (!api_authorized(a->token, MHD_lookup_connection_value(
						      c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION)))
			return send_unauthorized(c);
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	struct api_args args = { query_arg, c };
	struct api_reply r;
	if (api_route(a->view, a->cmd, method, url, &args, &r) < 0) {
		log_err(a->view->log, "api: %s %s: out of memory", method, url);
		return MHD_NO;
	}
	return send_text(c, r.code, r.ctype, r.body);
}

/* The directory of the socket (/run/ikelb) may not exist yet on a fresh
 * boot; an existing one keeps its owner and mode. */
static int make_parent_dir(const char *path, char *err, int errlen)
{
	char dir[108];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, (size_t)errlen, "cannot create %s: %s", dir, strerror(errno));
		return -errno;
	}
	return 0;
}

/* A socket someone still accepts on belongs to a running daemon: two
 * daemons would fight over the same data path. A dead one's socket is
 * stale and replaced. */
static int refuse_running(const struct sockaddr_un *sun, char *err, int errlen)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, (size_t)errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	int rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0 ? -EADDRINUSE : 0;
	if (rc)
		snprintf(err, (size_t)errlen, "another ikelb is already running (its API answers on %s)",
			 sun->sun_path);
	close(fd);
	return rc;
}

static int listen_unix(struct api *a, const char *path, char *err, int errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, (size_t)errlen, "unix socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);

	int rc = make_parent_dir(path, err, errlen);
	if (rc == 0)
		rc = refuse_running(&sun, err, errlen);
	if (rc < 0)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, (size_t)errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	/* ENOENT is the usual case: no stale socket to remove. */
	if ((unlink(path) < 0 && errno != ENOENT) ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, API_BACKLOG) < 0 ||
	    chmod(path, 0660) < 0) {
		rc = -errno;
		snprintf(err, (size_t)errlen, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	/* Ours to remove from here on; before, it may be another daemon's. */
	snprintf(a->unix_path, sizeof(a->unix_path), "%s", path);
	return fd;
}

static struct MHD_Daemon *start_unix(struct api *a, const char *path, unsigned idle_s, char *err,
				     int errlen)
{
	a->listen_fd = listen_unix(a, path, err, errlen);
	if (a->listen_fd < 0)
		return NULL;
	return MHD_start_daemon(MHD_FLAGS, 0, NULL, NULL, handle, a, MHD_OPTION_LISTEN_SOCKET,
				a->listen_fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONN_MAX,
				MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_END);
}

static struct MHD_Daemon *start_tcp(struct api *a, const char *listen, unsigned idle_s, char *err,
				    int errlen)
{
	char host[128];
	const char *colon = strrchr(listen, ':');
	if (!colon || colon - listen >= (long)sizeof(host)) {
		snprintf(err, (size_t)errlen, "api.listen: expected unix:PATH or HOST:PORT");
		return NULL;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = 0;
	int port = atoi(colon + 1);
	struct ikelb_addr ia;
	if (port <= 0 || port > 65535 || ikelb_addr_parse(host, &ia) < 0 || !ikelb_addr_is_v4(&ia)) {
		snprintf(err, (size_t)errlen, "api.listen: bad IPv4 HOST:PORT %s", listen);
		return NULL;
	}
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = ikelb_addr_v4(&ia) };
	return MHD_start_daemon(MHD_FLAGS, (uint16_t)port, NULL, NULL, handle, a,
				MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_LISTEN_BACKLOG_SIZE,
				(unsigned)API_BACKLOG, MHD_OPTION_CONNECTION_LIMIT,
				(unsigned)API_CONN_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				(unsigned)API_CONN_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
				MHD_OPTION_END);
}

/* The token file's first line; surrounding whitespace is not part of it.
 * Errors never quote the content. */
static int read_token(struct api *a, const char *path, char *err, int errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, (size_t)errlen, "api.token_file %s: %s", path, strerror(errno));
		return -errno;
	}
	char *line = fgets(a->token, sizeof(a->token), f);
	fclose(f);
	size_t n = line ? strcspn(a->token, "\r\n") : 0;
	a->token[n] = 0;
	while (n && (a->token[n - 1] == ' ' || a->token[n - 1] == '\t'))
		a->token[--n] = 0;
	if (n < 16) {
		snprintf(err, (size_t)errlen, "api.token_file %s: needs a token of 16..%d characters "
			 "on its first line", path, API_TOKEN_MAX - 2);
		return -EINVAL;
	}
	return 0;
}

static struct MHD_Daemon *start_listener(struct api *a, const struct cfg *c, char *err,
					 int errlen)
{
	unsigned idle_s = (unsigned)((c->api_idle_timeout_ms + 999) / 1000);

	if (cfg_api_is_unix(c->api_listen))
		return start_unix(a, c->api_listen + 5, idle_s, err, errlen);
	if (!a->token[0])
		log_warn(a->view->log, "api: %s has no api.token_file: any local user can "
			 "control the daemon", c->api_listen);
	return start_tcp(a, c->api_listen, idle_s, err, errlen);
}

struct api *api_start(const struct cfg *c, const struct ctl_view *view, const struct ctl_cmd *cmd,
		      char *err, int errlen)
{
	struct api *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, (size_t)errlen, "out of memory");
		return NULL;
	}
	a->view = view;
	a->cmd = cmd;
	a->listen_fd = -1;
	err[0] = 0;
	if (!c->api_token_file[0] || read_token(a, c->api_token_file, err, errlen) == 0)
		a->mhd = start_listener(a, c, err, errlen);
	if (!a->mhd) {
		if (!err[0])
			snprintf(err, (size_t)errlen, "cannot start the API on %s", c->api_listen);
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

int api_run(struct api *a)
{
	return MHD_run(a->mhd) == MHD_YES ? 0 : -EIO;
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
	if (a->unix_path[0] && unlink(a->unix_path) < 0 && errno != ENOENT)
		log_warn(a->view->log, "api: cannot remove %s: %s", a->unix_path, strerror(errno));
	explicit_bzero(a->token, sizeof(a->token));
	free(a);
}
