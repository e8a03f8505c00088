#include "ctl/caps.h"

#include <cap-ng.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>

static bool low_port(const struct cfg *c)
{
	for (int i = 0; i < c->nservices; i++)
		for (int p = 0; p < c->services[i].nports; p++)
			if (c->services[i].ports[p] < 1024)
				return true;
	return false;
}

static int keep(unsigned cap)
{
	return capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, cap);
}

int caps_drop(const struct cfg *c, const struct logger *log)
{
	int rc = 0;

	if (capng_get_caps_process() < 0) {
		log_err(log, "caps: cannot read this process's capabilities");
		return -EIO;
	}
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE) {
		capng_clear(CAPNG_SELECT_CAPS);
		if (c->engine == CFG_ENGINE_BPF)
			rc |= keep(CAP_BPF) | keep(CAP_PERFMON) | keep(CAP_NET_ADMIN);
		if (low_port(c))
			rc |= keep(CAP_NET_BIND_SERVICE);
		if (rc || capng_apply(CAPNG_SELECT_CAPS) < 0) {
			log_err(log, "caps: cannot drop capabilities");
			return -EPERM;
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		rc = -errno;
		log_err(log, "caps: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return rc;
	}
	return 0;
}
