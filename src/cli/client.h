/* The command-line side of the API (libcurl over the daemon's unix socket
 * or TCP address): `ikelb status|stats|server|stop`. Each returns the exit
 * status after printing the result or "ikelb: why" on stderr. */
#ifndef IKELB_CLIENT_H
#define IKELB_CLIENT_H

#include "cli/args.h"

/* method "GET"/"POST"; returns the HTTP status (or -1 on a transport error,
 * -2 on a timeout, with a message in err) and the malloc'd body in *body. */
int client_request(const char *listen, const char *method, const char *path, char **body,
		   char *err, int errlen);

/* Sends "Authorization: Bearer" with the first line of PATH on every
 * request (api.token_file of the configuration given with -c). 0 or -errno. */
int client_set_token_file(const char *path);

int client_cmd_status(const char *listen, int json);
int client_cmd_stats(const char *listen, int json);
int client_cmd_server(const char *listen, const struct cli_args *a);
/* Asks the daemon to exit, then waits until its API stops answering. */
int client_cmd_stop(const char *listen, int keep_forwarding);

#endif
