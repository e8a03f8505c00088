#include "cli/config_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

/* "No such file or directory" is the answer to a typo in -c, not a list of
 * configuration errors, so the file is opened once before parsing. */
static int load(const char *prog, const char *path, struct cfg *c, struct cfg_errors *errs)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		cfg_defaults(c);
		return -2;
	}
	close(fd);
	return cfg_load_file(path, c, errs);
}

int cli_check_config(const char *prog, const char *path)
{
	struct cfg c;
	struct cfg_errors errs = { 0 };
	int rc = load(prog, path, &c, &errs);
	for (int i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i].msg);
	if (rc == 0)
		printf("%s: OK (%d service(s))\n", path, c.nservices);
	cfg_errors_free(&errs);
	cfg_free(&c);
	return rc == 0 ? 0 : 1;
}

int cli_api_from_config(const char *prog, const char *path, char *out, size_t len,
			char *token_file, size_t tlen)
{
	struct cfg c;
	struct cfg_errors errs = { 0 };
	int rc = load(prog, path, &c, &errs);
	if (rc == 0)
		snprintf(out, len, "%s", c.api_listen);
	if (rc == 0)
		snprintf(token_file, tlen, "%s", c.api_token_file);
	else if (rc == -1)
		fprintf(stderr, "%s: %s: invalid configuration (run %s check-config -c %s)\n", prog,
			path, prog, path);
	cfg_errors_free(&errs);
	cfg_free(&c);
	return rc == 0 ? 0 : -1;
}
