/* ikelb: the daemon and its command-line interface (one binary). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "ctl/client.h"
#include "ctl/daemon.h"
#include "core/log.h"

#ifndef IKELB_VERSION
#define IKELB_VERSION "0.1.0"
#endif

#define DEFAULT_API "unix:/run/ikelb/api.sock"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ikelb COMMAND [options]\n"
		"\n"
		"daemon:\n"
		"  run -c FILE [--flush-state] [--log-level LEVEL]\n"
		"                          run the load balancer (foreground; log to stderr)\n"
		"  check-config -c FILE    validate a configuration, print every error\n"
		"\n"
		"control (talks to a running daemon; -a ADDR or -c FILE picks its API,\n"
		"default " DEFAULT_API "):\n"
		"  status [--json]         services, real servers, state, health, clients\n"
		"  stats [--json]          packet/byte counters, steering decisions, drops\n"
		"  server drain|enable|disable [SERVICE/]NAME\n"
		"  server weight [SERVICE/]NAME N\n"
		"  stop [--keep-forwarding]\n"
		"                          stop the daemon; with --keep-forwarding the kernel\n"
		"                          data path keeps running on its last tables\n"
		"  version                 print the version\n");
}

static int cmd_check_config(const char *path)
{
	struct cfg c;
	struct cfg_errors errs = { 0 };
	int rc = cfg_load_file(path, &c, &errs);
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i].msg);
	if (rc == 0)
		printf("%s: OK (%d service(s))\n", path, c.nservices);
	cfg_errors_free(&errs);
	cfg_free(&c);
	return rc == 0 ? 0 : 1;
}

/* The API address: -a wins, else the config's api.listen, else default. */
static int api_from_config(const char *path, char *out, size_t len)
{
	struct cfg c;
	struct cfg_errors errs = { 0 };
	int rc = cfg_load_file(path, &c, &errs);
	if (rc == 0)
		snprintf(out, len, "%s", c.api_listen);
	else
		fprintf(stderr, "ikelb: %s: invalid configuration (run check-config)\n", path);
	cfg_errors_free(&errs);
	cfg_free(&c);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "api", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "flush-state", no_argument, NULL, 'F' },
		{ "keep-forwarding", no_argument, NULL, 'K' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config = NULL, *api = NULL;
	int json = 0, keep = 0, opt;
	struct daemon_opts dopts = { .log_level = LOG_LVL_INFO };
	char api_buf[256];

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("ikelb %s\n", IKELB_VERSION);
		return 0;
	}
	optind = 2;
	while ((opt = getopt_long(argc, argv, "c:a:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 'a': api = optarg; break;
		case 'j': json = 1; break;
		case 'F': dopts.flush_state = true; break;
		case 'K': keep = 1; break;
		case 'l':
			if (log_level_parse(optarg, &dopts.log_level) < 0) {
				fprintf(stderr, "ikelb: --log-level: error|warning|notice|info|debug\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}

	if (!strcmp(cmd, "run") || !strcmp(cmd, "check-config")) {
		if (!config) {
			fprintf(stderr, "ikelb %s: -c FILE is required\n", cmd);
			return 2;
		}
		if (!strcmp(cmd, "check-config"))
			return cmd_check_config(config);
		dopts.config_path = config;
		return daemon_run(&dopts);
	}

	if (!api && config) {
		if (api_from_config(config, api_buf, sizeof(api_buf)) < 0)
			return 1;
		api = api_buf;
	}
	if (!api)
		api = getenv("IKELB_API") ? getenv("IKELB_API") : DEFAULT_API;
	if (!strcmp(cmd, "status"))
		return client_cmd_status(api, json);
	if (!strcmp(cmd, "stats"))
		return client_cmd_stats(api, json);
	if (!strcmp(cmd, "server"))
		return client_cmd_server(api, argc - optind, argv + optind);
	if (!strcmp(cmd, "stop"))
		return client_cmd_stop(api, keep);
	fprintf(stderr, "ikelb: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
