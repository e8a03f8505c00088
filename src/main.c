/* ikelbd: the daemon. The command-line interface is ikelb (src/cli/), which
 * runs this program for `ikelb run`. */
#include <stdio.h>

#include "cli/args.h"
#include "cli/config_cmd.h"
#include "ctl/daemon.h"

int main(int argc, char **argv)
{
	struct cli_args a;
	char err[256];

	if (cli_parse(CLI_IKELBD, argc, argv, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "ikelbd: %s\n", err);
		cli_synopsis(stderr, CLI_IKELBD, a.cmd);
		return 2;
	}
	if (a.help) {
		cli_usage(stdout, CLI_IKELBD, a.cmd);
		return 0;
	}
	const char *config = a.config ? a.config : CLI_DEFAULT_CONFIG;
	switch (a.cmd) {
	case CLI_VERSION: printf("ikelbd %s\n", IKELB_VERSION); return 0;
	case CLI_CHECK_CONFIG: return cli_check_config("ikelbd", config);
	case CLI_RUN: {
		struct daemon_opts o = { .config_path = config, .flush_state = a.flush_state,
					 .log_level = a.log_level };
		return daemon_run(&o);
	}
	default: cli_usage(stderr, CLI_IKELBD, CLI_NONE); return 2;
	}
}
