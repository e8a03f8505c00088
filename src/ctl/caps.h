/* Least privilege after setup: once the engine is attached and every
 * socket bound, the daemon keeps only the capabilities its running work
 * needs and sets no_new_privs, so a flaw in the API or the probes cannot
 * use CAP_SYS_ADMIN, CAP_DAC_OVERRIDE and the like.
 *
 * Kept: the bpf engine CAP_BPF, CAP_PERFMON (map access, a re-exec's
 * program load) and CAP_NET_ADMIN (detaching at stop, forwarding sysctls);
 * either engine CAP_NET_BIND_SERVICE when a service port is below 1024.
 * Only the effective and permitted sets change, not the bounding set.
 * Capabilities are per thread: call before creating threads. */
#ifndef IKELB_CAPS_H
#define IKELB_CAPS_H

#include "core/config.h"
#include "core/log.h"

/* 0, or a negative errno (logged). A process without capabilities (the
 * socket engine run by a user) only gets no_new_privs. */
int caps_drop(const struct cfg *c, const struct logger *log);

#endif
