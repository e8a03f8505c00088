/* Host layout check for dsr services (docs/layouts.md, "dsr"): warnings
 * for a layout in which the kernel of this host drops the servers' replies
 * when they pass through it. */
#ifndef IKELB_DSR_CHECK_H
#define IKELB_DSR_CHECK_H

#include "core/config.h"
#include "core/log.h"
#include "ikelb/addr.h"

/* One warning per (dsr service, servers'-role interface) that cannot
 * forward replies sourced from the VIP; returns how many. local: this
 * host's addresses; proc: "/proc/sys/net/ipv4/conf" (tests: a directory
 * of the same shape). */
int dsr_check(const struct cfg *cfg, const struct ikelb_addr *local, int nlocal,
	      const char *proc, const struct logger *log);

/* dsr_check on this host (getifaddrs, /proc); returns the warnings. */
int dsr_check_host(const struct cfg *cfg, const struct logger *log);

#endif
