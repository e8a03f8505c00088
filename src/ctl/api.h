/* The control API: HTTP (libmicrohttpd) with JSON bodies (jansson), on a
 * unix socket ("unix:/run/ikelb/api.sock", mode 0660) or a TCP address.
 * Runs inside the daemon's epoll loop (MHD_USE_EPOLL), so handlers read the
 * view and give commands without locks.
 *
 *   GET  /v1/status                      services, servers, state, clients
 *   GET  /v1/stats                       counters per service / server / drop reason
 *   GET  /metrics                        Prometheus text format
 *   POST /v1/servers/SPEC/drain|enable|disable
 *   POST /v1/servers/SPEC/weight/N       SPEC = NAME or SERVICE/NAME
 *   POST /v1/shutdown[?keep=1]           stop (keep=1 leaves the data path)
 */
#ifndef IKELB_API_H
#define IKELB_API_H

#include "ctl/view.h"

struct api;

/* Listens on c->api_listen with c's idle timeout and, with c->api_token_file,
 * requires "Authorization: Bearer TOKEN" on every request (401 otherwise).
 * view and cmd must outlive the API; they are read at every request. */
struct api *api_start(const struct cfg *c, const struct ctl_view *view, const struct ctl_cmd *cmd,
		      char *err, int errlen);

/* Whether an Authorization header value carries TOKEN ("" = none needed);
 * constant time in the token's content. */
bool api_authorized(const char *token, const char *header);
int api_fd(const struct api *a);     /* add to epoll, readable -> api_run */
int api_run(struct api *a);          /* 0 or -EIO */
long api_timeout_ms(struct api *a);  /* -1 = none */
void api_stop(struct api *a);

/* One answer, independent of HTTP plumbing (api_route.c). */
struct api_reply {
	unsigned code;
	const char *ctype;   /* static */
	char *body;          /* malloc'd, NUL-terminated */
};

/* Answers method + url (keep: the "keep" query argument or NULL). 0 with
 * *out filled, or -ENOMEM. */
int api_route(const struct ctl_view *v, const struct ctl_cmd *cmd, const char *method,
	      const char *url, const char *keep, struct api_reply *out);

#endif
