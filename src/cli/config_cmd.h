/* The commands of both programs that read a configuration file. Messages
 * go to stderr as "PROG: ..." (PROG: ikelb or ikelbd). */
#ifndef IKELB_CLI_CONFIG_CMD_H
#define IKELB_CLI_CONFIG_CMD_H

#include <stddef.h>

/* check-config: prints every error; returns the exit status (0 or 1). */
int cli_check_config(const char *prog, const char *path);

/* The api.listen of the configuration at PATH into OUT; -1 after saying
 * why not (a file that cannot be opened is named with its errno text). */
int cli_api_from_config(const char *prog, const char *path, char *out, size_t len,
			char *token_file, size_t tlen); /* token_file: api.token_file or "" */

#endif
