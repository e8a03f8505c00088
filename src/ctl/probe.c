/* Probe type registry: which ops serve a configured type. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/probe.h"

int probe_init(struct probe *p, const struct cfg_health *hc, const struct logger *log)
{
	memset(p, 0, sizeof(*p));
	switch (hc->type) {
	case CFG_HEALTH_NONE:
		return 0;
	case CFG_HEALTH_IKE:
		p->ops = probe_ike_ops();
		break;
	case CFG_HEALTH_UDP:
		p->ops = probe_udp_ops();
		break;
	default:
		log_err(log, "health: unknown check type %d", (int)hc->type);
		return -EINVAL;
	}
	int rc = p->ops->init(p, hc, log);
	if (rc < 0)
		probe_fini(p);
	return rc;
}

void probe_fini(struct probe *p)
{
	free(p->send);
	free(p->expect);
	memset(p, 0, sizeof(*p));
}

const struct probe_ops *probe_type(int i)
{
	switch (i) {
	case 0:
		return probe_ike_ops();
	case 1:
		return probe_udp_ops();
	}
	return NULL;
}
