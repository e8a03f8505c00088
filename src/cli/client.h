/* The command-line side of the API (libcurl over the daemon's unix socket
 * or TCP address): `ikelb status|stats|server|stop`. Each returns the exit
 * status after printing the result or "ikelb: why" on stderr. */
#ifndef IKELB_CLIENT_H
#define IKELB_CLIENT_H

#include <jansson.h>

#include "cli/args.h"

/* Where the daemon's API is and the header that authorizes us ("" = none). */
struct client_api {
	const char *listen;
	char auth[300];
};

/* method "GET"/"POST"; returns the HTTP status (or -1 on a transport error,
 * -2 on a timeout, with a message in err) and the malloc'd body in *body. */
int client_request(const struct client_api *api, const char *method, const char *path, char **body,
		   char *err, int errlen);

/* Fills api->auth from the first line of PATH (api.token_file of the
 * configuration given with -c): sent as "Authorization: Bearer" on every
 * request. 0 or -errno. */
int client_set_token_file(struct client_api *api, const char *path);

/* The parsed 200 answer of a request, or NULL after printing why. */
json_t *client_request_json(const struct client_api *api, const char *method, const char *path);
int client_dump_json(json_t *j); /* prints and frees j; 0 */

int client_cmd_status(const struct client_api *api, int json);
/* client_lookup.c: ikelb lookup, clients, log decisions on|off. */
int client_cmd_lookup(const struct client_api *api, const struct cli_args *a);
int client_cmd_clients(const struct client_api *api, const struct cli_args *a);
int client_cmd_log(const struct client_api *api, const struct cli_args *a);
int client_cmd_stats(const struct client_api *api, int json);
int client_cmd_server(const struct client_api *api, const struct cli_args *a);
/* Asks the daemon to exit, then waits until its API stops answering. */
/* POST /v1/reload: prints the changes, or the errors to stderr; 1 when
 * the daemon refused the file. */
int client_cmd_reload(const struct client_api *api);
int client_cmd_stop(const struct client_api *api, int keep_forwarding);
/* 0 when the daemon answers, runs an engine and has an active server. */
int client_cmd_health_check(const struct client_api *api);

#endif
