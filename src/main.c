/* ikelb: the daemon and its command-line interface. */
#include <stdio.h>
#include <string.h>

#include "log.h"

#ifndef IKELB_VERSION
#define IKELB_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: ikelb COMMAND [options]\n"
		   "  run -c FILE           run the load balancer\n"
		   "  check-config -c FILE  validate a configuration\n"
		   "  version               print the version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "version")) {
		printf("ikelb %s\n", IKELB_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
