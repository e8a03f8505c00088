/* The control API: HTTP (libmicrohttpd) with JSON bodies (jansson), on a
 * unix socket ("unix:/run/ikelb/api.sock", mode 0660) or a TCP address.
 * Runs inside the daemon's epoll loop (MHD_USE_EPOLL), so handlers read the
 * view and give commands without locks.
 *
 *   GET  /v1/status                      services, servers, state, clients
 *   GET  /v1/stats                       counters per service / server / drop reason
 *   GET  /metrics                        Prometheus text format
 *   GET  /v1/lookup?addr=A[&port=P]      where a client went (or ?spi=HEX)
 *   GET  /v1/clients?service=&server=&offset=&limit=   state entries, paged
 *   POST /v1/servers/SPEC/drain|enable|disable
 *   POST /v1/servers/SPEC/weight/N       SPEC = NAME or SERVICE/NAME
 *   POST /v1/shutdown[?keep=1]           stop (keep=1 leaves the data path)
 */
#ifndef IKELB_API_H
#define IKELB_API_H

#include <jansson.h>

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

/* The request's query arguments (?name=value), NULL when absent. */
struct api_args {
	const char *(*get)(void *ctx, const char *name);
	void *ctx;
};

const char *api_arg(const struct api_args *a, const char *name); /* a may be NULL */

/* Answers method + url with its query arguments (args may be NULL). 0
 * with *out filled, or -ENOMEM. */
int api_route(const struct ctl_view *v, const struct ctl_cmd *cmd, const char *method,
	      const char *url, const struct api_args *args, struct api_reply *out);

/* api_route.c: answers; take the reference to j. */
int api_reply_json(struct api_reply *out, unsigned code, json_t *j);
int api_reply_error(struct api_reply *out, unsigned code, const char *msg);

/* dashboard.c: GET / and its script and style; 1 with *out filled, 0
 * for another path, -ENOMEM. */
int api_dashboard(const char *url, struct api_reply *out);

/* api_lookup.c: GET /v1/lookup?addr=A[&port=P]|spi=HEX[&service=S] and
 * GET /v1/clients?[service=S][&server=NAME][&offset=N][&limit=N]. */
int api_lookup(const struct ctl_view *v, const struct api_args *args, struct api_reply *out);
int api_clients(const struct ctl_view *v, const struct api_args *args, struct api_reply *out);

#endif
