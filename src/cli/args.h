/* The command lines of ikelb (the CLI) and ikelbd (the daemon): one table
 * of commands and options, parsed without I/O so that the rules are unit
 * tested: options of the command only, each at most once, no extra
 * arguments, -c/-a/-h/-V also before the command. */
#ifndef IKELB_CLI_ARGS_H
#define IKELB_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/log.h"

#include "ikelb/version.h"

#define CLI_DEFAULT_CONFIG "/etc/ikelb/ikelb.yaml"
#define CLI_DEFAULT_API "unix:/run/ikelb/api.sock"
/* `doctor`: capture files per run, and the longest live capture. */
#define CLI_MAX_FILES 32
#define CLI_DOCTOR_MAX_SECONDS 3600

enum cli_prog { CLI_IKELB, CLI_IKELBD };

enum cli_cmd {
	CLI_NONE,
	CLI_RUN,
	CLI_CHECK_CONFIG,
	CLI_STATUS,
	CLI_STATS,
	CLI_SERVER,
	CLI_RELOAD,
	CLI_STOP,
	CLI_DOCTOR,
	CLI_LOOKUP,
	CLI_CLIENTS,
	CLI_LOG,
	CLI_HEALTH_CHECK,
	CLI_VERSION,
	CLI_HELP,
	CLI_NCMDS,
};

enum cli_server_action { CLI_SRV_DRAIN, CLI_SRV_ENABLE, CLI_SRV_DISABLE, CLI_SRV_WEIGHT,
			 CLI_SRV_EVACUATE };

struct cli_args {
	enum cli_cmd cmd;   /* CLI_NONE: no command given */
	bool help;          /* print cmd's usage (CLI_NONE: the program's) */
	const char *config; /* NULL when not given */
	const char *api;
	bool json, flush_state, keep_forwarding;
	enum log_level log_level;
	enum cli_server_action action;
	const char *server;
	uint32_t weight;
	const char *files[CLI_MAX_FILES]; /* doctor: capture files */
	int nfiles;
	const char *live;                 /* doctor --live IFACE */
	unsigned duration;                /* doctor --duration N (seconds) */
	const char *target;               /* lookup ADDRESS[:PORT] */
	const char *spi;                  /* lookup --spi HEX */
	const char *service;              /* clients --service */
	const char *server_filter;        /* clients --server */
	unsigned long offset, limit;      /* clients paging (limit 0: the daemon's) */
	bool log_on;                      /* log decisions on|off */
};

/* Fill *a from argv. Returns 0, or -1 with the reason in err (to print as
 * "PROG: reason"); a->cmd is set as soon as the command is known, so the
 * caller can show that command's synopsis. */
int cli_parse(enum cli_prog prog, int argc, char *const *argv, struct cli_args *a, char *err,
	      size_t errlen);

const char *cli_prog_name(enum cli_prog prog);
const char *cli_cmd_name(enum cli_cmd cmd);
/* "usage: PROG CMD SYNOPSIS" (CLI_NONE: the program's usage lines). */
void cli_synopsis(FILE *f, enum cli_prog prog, enum cli_cmd cmd);
/* What `PROG [CMD] --help` prints. */
void cli_usage(FILE *f, enum cli_prog prog, enum cli_cmd cmd);
/* cli_parse, then what every program does alike: a usage error, --help,
 * no command, the version. Returns the exit status when that ends the run, else -1. */
int cli_start(enum cli_prog prog, int argc, char *const *argv, struct cli_args *a);

#endif
