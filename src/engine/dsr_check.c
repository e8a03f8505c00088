/* Why a dsr layout drops replies (measured in the lab, docs/layouts.md):
 * a server answers with the VIP as source. When its gateway is this host,
 * the kernel here routes that reply and validates its source first
 * (fib_validate_source): a source that is one of our own addresses is a
 * "martian source" unless accept_local is on (all or the interface), and
 * strict reverse path filtering (rp_filter=1) drops it even then, as it
 * does a VIP that is only routed here but whose route leaves by another
 * interface. The engine cannot know the servers' gateway, so these are
 * warnings that name the fix, not errors. IPv4 only: IPv6 has neither
 * sysctl. */
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "engine/dsr_check.h"

#define DSR_PROC "/proc/sys/net/ipv4/conf"

/* A conf value, or -1 when unreadable. */
static int conf_get(const char *proc, const char *dev, const char *key)
{
	char path[512];
	int v = -1;

	snprintf(path, sizeof(path), "%s/%s/%s", proc, dev, key);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* The kernel's view: accept_local is all || dev, rp_filter max(all, dev). */
static int effective(const char *proc, const char *dev, const char *key, int use_max)
{
	int a = conf_get(proc, "all", key), d = conf_get(proc, dev, key);

	if (use_max)
		return a > d ? a : d;
	return a > 0 || d > 0;
}

static bool is_local(const struct ikelb_addr *vip, const struct ikelb_addr *local, int n)
{
	for (int i = 0; i < n; i++)
		if (ikelb_addr_eq(vip, &local[i]))
			return true;
	return false;
}

static int check_iface(const struct cfg_service *s, const char *dev, bool local,
		       const char *proc, const struct logger *log)
{
	char vip[64];
	int rp = effective(proc, dev, "rp_filter", 1);

	ikelb_addr_str(&s->vip, vip, sizeof(vip));
	if (local && !effective(proc, dev, "accept_local", 0)) {
		log_warn(log, "dsr service %s: VIP %s is a local address here and "
			 "net.ipv4.conf.%s.accept_local is 0: server replies that pass through "
			 "this host (servers' gateway) are dropped as martian source; give the "
			 "servers another gateway, route the VIP here instead of assigning it, "
			 "or set accept_local=1 (docs/layouts.md)", s->name, vip, dev);
		return 1;
	}
	if (rp == 1) {
		log_warn(log, "dsr service %s: strict rp_filter on %s drops server replies "
			 "from VIP %s that pass through this host (unless the route to the VIP "
			 "leaves by %s); set net.ipv4.conf.%s.rp_filter and .all.rp_filter to 2 "
			 "or 0, or give the servers another gateway (docs/layouts.md)", s->name,
			 dev, vip, dev, dev);
		return 1;
	}
	return 0;
}

int dsr_check(const struct cfg *cfg, const struct ikelb_addr *local, int nlocal,
	      const char *proc, const struct logger *log)
{
	int warnings = 0;

	for (int i = 0; i < cfg->nservices; i++) {
		const struct cfg_service *s = &cfg->services[i];
		if (s->forwarding != CFG_FWD_DSR || !ikelb_addr_is_v4(&s->vip))
			continue;
		bool loc = is_local(&s->vip, local, nlocal);
		for (int k = 0; k < cfg->ninterfaces; k++)
			if (cfg->interface_roles[k] & CFG_IF_SERVERS)
				warnings += check_iface(s, cfg->interfaces[k], loc, proc, log);
	}
	return warnings;
}

int dsr_check_host(const struct cfg *cfg, const struct logger *log)
{
	struct ikelb_addr a[64];
	struct ifaddrs *ifa;
	int n = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (struct ifaddrs *it = ifa; it && n < 64; it = it->ifa_next)
		if (it->ifa_addr && it->ifa_addr->sa_family == AF_INET)
			ikelb_addr_from_v4(&a[n++],
					   ((const struct sockaddr_in *)(void *)it->ifa_addr)
						   ->sin_addr.s_addr);
	freeifaddrs(ifa);
	return dsr_check(cfg, a, n, DSR_PROC, log);
}
