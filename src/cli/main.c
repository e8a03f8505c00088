/* ikelb: the command-line interface. `run` hands over to the daemon, ikelbd,
 * so that the daemon does not carry libcurl and its dependencies. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/client.h"
#include "cli/config_cmd.h"
#include "doctor/doctor.h"

/* ikelbd from the directory of this executable, not $PATH: a build tree's
 * ikelb must run that tree's daemon. The process stays the same (exec), so
 * whoever started `ikelb run` holds the daemon's PID. */
static int exec_daemon(char **argv)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - sizeof("/ikelbd"));
	if (n < 0) {
		fprintf(stderr, "ikelb: /proc/self/exe: %s\n", strerror(errno));
		return 1;
	}
	path[n] = 0;
	char *slash = strrchr(path, '/');
	strcpy(slash ? slash : path, "/ikelbd");
	argv[0] = path;
	execv(path, argv);
	fprintf(stderr, "ikelb: cannot run %s: %s\n", path, strerror(errno));
	return 1;
}

/* -a, else the configuration's api.listen (and its token), else $IKELB_API,
 * else the default. */
static int api_address(const struct cli_args *a, struct client_api *api, char *buf, size_t len)
{
	char tok[256];

	api->auth[0] = 0;
	if (a->api) {
		api->listen = a->api;
	} else if (a->config) {
		if (cli_api_from_config("ikelb", a->config, buf, len, tok, sizeof(tok)) < 0 ||
		    (tok[0] && client_set_token_file(api, tok) < 0))
			return -1;
		api->listen = buf;
	} else {
		const char *env = getenv("IKELB_API");
		api->listen = env && *env ? env : CLI_DEFAULT_API;
	}
	return 0;
}

static int control(const struct cli_args *a)
{
	char buf[256];
	struct client_api capi;
	const struct client_api *api = &capi;
	if (api_address(a, &capi, buf, sizeof(buf)) < 0)
		return 1;
	switch (a->cmd) {
	case CLI_STATUS: return client_cmd_status(api, a->json);
	case CLI_STATS: return client_cmd_stats(api, a->json);
	case CLI_SERVER: return client_cmd_server(api, a);
	case CLI_RELOAD: return client_cmd_reload(api);
	case CLI_STOP: return client_cmd_stop(api, a->keep_forwarding);
	case CLI_LOOKUP: return client_cmd_lookup(api, a);
	case CLI_CLIENTS: return client_cmd_clients(api, a);
	case CLI_LOG: return client_cmd_log(api, a);
	case CLI_HEALTH_CHECK: return client_cmd_health_check(api);
	default: return 2;
	}
}

int main(int argc, char **argv)
{
	struct cli_args a;
	int rc = cli_start(CLI_IKELB, argc, argv, &a);
	if (rc >= 0)
		return rc;
	switch (a.cmd) {
	case CLI_RUN: return exec_daemon(argv);
	case CLI_CHECK_CONFIG:
		return cli_check_config("ikelb", a.config ? a.config : CLI_DEFAULT_CONFIG);
	case CLI_DOCTOR: return doc_cmd_run(a.files, a.nfiles, a.live, a.duration, a.json);
	default: return control(&a);
	}
}
