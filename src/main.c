/* ikelbd: the daemon. The command-line interface is ikelb (src/cli/), which
 * runs this program for `ikelb run`. */
#include <stdio.h>

#include "cli/args.h"
#include "cli/config_cmd.h"
#include "ctl/daemon.h"

int main(int argc, char **argv)
{
	struct cli_args a;
	int rc = cli_start(CLI_IKELBD, argc, argv, &a);
	if (rc >= 0)
		return rc;
	const char *config = a.config ? a.config : CLI_DEFAULT_CONFIG;
	switch (a.cmd) {
	case CLI_CHECK_CONFIG: return cli_check_config("ikelbd", config);
	case CLI_RUN: {
		struct daemon_opts o = { .config_path = config, .flush_state = a.flush_state,
					 .log_level = a.log_level, .argv = argv };
		return daemon_run(&o);
	}
	default: return 2;
	}
}
