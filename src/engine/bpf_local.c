/* bpf engine: ikelb's own addresses in local_addr_map, so that replies
 * addressed to ikelb itself (health-probe answers, TCP checks) pass the
 * reply rewrite untouched. */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "engine/bpf_engine_int.h"
#include "bpf/ikelb.skel.h"

int bpf_engine_set_local_addrs(struct bpf_engine *e, const struct ikelb_addr *a, int n)
{
	uint32_t *vals = calloc(n > 0 ? n : 1, sizeof(uint32_t));
	if (!vals)
		return -ENOMEM;
	int err = bpfe_map_replace(bpf_map__fd(e->skel->maps.local_addr_map), a, vals,
				   n > 0 ? (size_t)n : 0, sizeof(*a), sizeof(uint32_t));
	free(vals);
	return err;
}

int bpf_engine_refresh_local_addrs(struct bpf_engine *e)
{
	struct ifaddrs *ifa, *it;
	struct ikelb_addr a[IKELB_MAX_LOCAL_ADDRS];
	int n = 0;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (it = ifa; it && n < IKELB_MAX_LOCAL_ADDRS; it = it->ifa_next) {
		if (!it->ifa_addr)
			continue;
		if (it->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *sin = (const void *)it->ifa_addr;
			ikelb_addr_from_v4(&a[n++], sin->sin_addr.s_addr);
		} else if (it->ifa_addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const void *)it->ifa_addr;
			memcpy(a[n++].b, &sin6->sin6_addr, 16);
		}
	}
	freeifaddrs(ifa);
	return bpf_engine_set_local_addrs(e, a, n);
}
