/* Receive moderation of the socket engine (docs/socket-engine.md,
 * "Moderation"): after a wake that drained its sockets, the worker may wait
 * a bounded time before the next epoll_wait, so that the next recvmmsg
 * returns many datagrams and one flow's datagrams leave as one UDP_SEGMENT
 * send (only after a short wake: one that found several datagrams is
 * batching already): what a NIC's interrupt moderation (ethtool rx-usecs) does for its
 * driver. It waits only when the measured rate promises datagrams within
 * the bound, so sparse traffic (a lone IKE_SA_INIT) is never held; a
 * datagram that arrives during a wait is held at most the bound.
 *
 * Pure logic, fed timestamps and batch sizes (tests/unit/test_sock_mod.c). */
#ifndef IKELB_SOCK_MOD_H
#define IKELB_SOCK_MOD_H

#include <stdbool.h>
#include <stdint.h>

#define SOCK_MOD_WIN_NS 1000000ULL /* rate measured over windows of 1 ms */
#define SOCK_MOD_MIN_EXPECT 2      /* datagrams the bound must promise */
#define SOCK_MOD_SHORT 4           /* a wake with fewer datagrams may wait */
#define SOCK_MOD_MAX_US 1000       /* largest socket.coalesce_usecs */

struct sock_mod {
	uint64_t max_ns;     /* the bound; 0: moderation off */
	uint32_t target;     /* datagrams worth one wake (a full batch) */
	uint64_t win_start;  /* ns; 0: nothing seen yet */
	uint64_t win_dgrams;
	uint64_t rate;       /* datagrams per second, smoothed */
	/* counters (metrics: ikelb_socket_*) */
	uint64_t wakes, dgrams, waits, wait_ns;
};

void sock_mod_init(struct sock_mod *m, uint32_t max_us, uint32_t target);

/* A wake handled n datagrams at now_ns; full: a socket still had more (a
 * batch came back full). Returns how long to wait before the next
 * epoll_wait, in ns: 0, or at most the bound. */
uint64_t sock_mod_after_wake(struct sock_mod *m, uint64_t now_ns, uint32_t n, bool full);

#endif
