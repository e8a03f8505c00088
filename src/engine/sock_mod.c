/* Receive moderation: when to wait before the next epoll_wait (sock_mod.h). */
#include "engine/sock_mod.h"

void sock_mod_init(struct sock_mod *m, uint32_t max_us, uint32_t target)
{
	*m = (struct sock_mod){ 0 };
	if (max_us > SOCK_MOD_MAX_US)
		max_us = SOCK_MOD_MAX_US;
	m->max_ns = (uint64_t)max_us * 1000;
	m->target = target ? target : 1;
}

/* The rate over the window that ends now. A window that spans an idle gap
 * replaces the estimate instead of blending into it: the first datagram
 * after a pause must not be taken for the traffic before it. */
static void rate_update(struct sock_mod *m, uint64_t now_ns)
{
	if (!m->win_start || now_ns < m->win_start) {
		m->win_start = now_ns ? now_ns : 1;
		return;
	}
	uint64_t el = now_ns - m->win_start;
	if (el < SOCK_MOD_WIN_NS)
		return;
	uint64_t inst = m->win_dgrams * 1000000000ULL / el;
	m->rate = el > 2 * SOCK_MOD_WIN_NS || !m->rate ? inst : (m->rate + inst) / 2;
	m->win_start = now_ns;
	m->win_dgrams = 0;
}

uint64_t sock_mod_after_wake(struct sock_mod *m, uint64_t now_ns, uint32_t n, bool full)
{
	m->wakes++;
	m->dgrams += n;
	m->win_dgrams += n;
	rate_update(m, now_ns);
	/* A wake that already found several datagrams gained what a wait
	 * would: a wait costs about one wake (a timer and a switch back). */
	if (!m->max_ns || full || !n || n >= SOCK_MOD_SHORT)
		return 0;
	/* Datagrams expected within the bound at the measured rate. */
	if (m->rate * m->max_ns < (uint64_t)SOCK_MOD_MIN_EXPECT * 1000000000ULL)
		return 0;
	/* Long enough to fill a batch, never longer than the bound. */
	uint64_t fill = (uint64_t)m->target * 1000000000ULL / m->rate;
	uint64_t w = fill < m->max_ns ? fill : m->max_ns;
	m->waits++;
	m->wait_ns += w;
	return w;
}
