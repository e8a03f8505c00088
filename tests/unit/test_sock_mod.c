/* Receive moderation of the socket engine (src/engine/sock_mod.c), fed
 * timestamps and batch sizes: when a worker waits before its next
 * epoll_wait, and for how long. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine/sock_mod.h"

#define US 1000ULL
#define MS 1000000ULL

/* Wakes of n datagrams every gap ns from t0 for count wakes; returns the
 * largest wait asked for, *waits how many wakes asked for one. */
static uint64_t feed(struct sock_mod *m, uint64_t *t, uint64_t gap, uint32_t n, int count,
		     int *waits)
{
	uint64_t most = 0;
	*waits = 0;
	for (int i = 0; i < count; i++) {
		*t += gap;
		uint64_t w = sock_mod_after_wake(m, *t, n, false);
		*waits += w > 0;
		most = w > most ? w : most;
	}
	return most;
}

static void off_never_waits(void **state)
{
	(void)state;
	struct sock_mod m;
	uint64_t t = MS;
	int waits;
	sock_mod_init(&m, 0, 32);
	assert_int_equal(feed(&m, &t, 20 * US, 1, 500, &waits), 0); /* 50 kpps */
	assert_int_equal(waits, 0);
	assert_int_equal(m.wakes, 500);
	assert_int_equal(m.dgrams, 500);
}

/* 50 kpps in wakes of one datagram: after the first window the worker
 * waits the bound (a batch would take 640 us to fill), never longer. */
static void steady_rate_waits_the_bound(void **state)
{
	(void)state;
	struct sock_mod m;
	uint64_t t = MS;
	int waits;
	sock_mod_init(&m, 50, 32);
	/* First window: no rate known yet. */
	assert_int_equal(feed(&m, &t, 20 * US, 1, 49, &waits), 0);
	assert_int_equal(feed(&m, &t, 20 * US, 1, 200, &waits), 50 * US);
	assert_true(waits >= 199);
	assert_true(m.rate > 45000 && m.rate < 55000);
	assert_int_equal(m.waits, (uint64_t)waits);
	assert_int_equal(m.wait_ns, (uint64_t)waits * 50 * US);
}

/* At 10 Mpps a batch fills in 3.2 us: the wait is that, not the bound. */
static void fast_rate_waits_for_a_batch(void **state)
{
	(void)state;
	struct sock_mod m;
	uint64_t t = MS;
	int waits;
	sock_mod_init(&m, 100, 32);
	feed(&m, &t, 300, 3, 20000, &waits);
	uint64_t w = sock_mod_after_wake(&m, t + 300, 3, false);
	assert_true(m.rate > 9000000 && m.rate < 11000000);
	assert_true(w >= 2900 && w <= 3600);
}

/* One datagram every 10 ms (a few IKE clients): the bound promises no
 * second one, so the worker never waits. */
static void sparse_traffic_never_waits(void **state)
{
	(void)state;
	struct sock_mod m;
	uint64_t t = MS;
	int waits;
	sock_mod_init(&m, SOCK_MOD_MAX_US, 32);
	assert_int_equal(feed(&m, &t, 10 * MS, 1, 300, &waits), 0);
	assert_int_equal(waits, 0);
	/* 1 kpps: the 1 ms bound promises one datagram, not two. */
	assert_int_equal(feed(&m, &t, 1 * MS, 1, 300, &waits), 0);
}

/* After a busy period, a lone datagram after a pause is not taken for
 * the traffic before it. */
static void pause_resets_the_rate(void **state)
{
	(void)state;
	struct sock_mod m;
	uint64_t t = MS;
	int waits;
	sock_mod_init(&m, 200, 32);
	assert_true(feed(&m, &t, 10 * US, 1, 1000, &waits) > 0); /* 100 kpps */
	t += 100 * MS;
	assert_int_equal(sock_mod_after_wake(&m, t, 1, false), 0);
	assert_true(m.rate < 2000); /* 2 datagrams over the 100 ms window */
	t += 50 * MS;
	assert_int_equal(sock_mod_after_wake(&m, t, 1, false), 0);
}

/* A wake that found several datagrams, or left some behind (full), is
 * batching already: no wait, whatever the rate. */
static void deep_or_full_wakes_do_not_wait(void **state)
{
	(void)state;
	struct sock_mod m;
	uint64_t t = MS;
	int waits;
	sock_mod_init(&m, 100, 32);
	assert_int_equal(feed(&m, &t, 40 * US, SOCK_MOD_SHORT, 500, &waits), 0); /* 100 kpps */
	assert_int_equal(waits, 0);
	assert_true(m.rate > 90000);
	assert_int_equal(sock_mod_after_wake(&m, t + 10 * US, 1, true), 0);
	assert_int_equal(sock_mod_after_wake(&m, t + 20 * US, 0, false), 0);
	assert_int_equal(sock_mod_after_wake(&m, t + 30 * US, SOCK_MOD_SHORT - 1, false), 100 * US);
}

static void bound_is_capped(void **state)
{
	(void)state;
	struct sock_mod m;
	sock_mod_init(&m, 50000, 0);
	assert_int_equal(m.max_ns, SOCK_MOD_MAX_US * US);
	assert_int_equal(m.target, 1);
	/* A clock that steps back restarts the window instead of dividing
	 * by a wrapped interval. */
	assert_int_equal(sock_mod_after_wake(&m, 5 * MS, 1, false), 0);
	assert_int_equal(sock_mod_after_wake(&m, 1 * MS, 1, false), 0);
	assert_int_equal(m.win_start, 1 * MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(off_never_waits),
		cmocka_unit_test(steady_rate_waits_the_bound),
		cmocka_unit_test(fast_rate_waits_for_a_batch),
		cmocka_unit_test(sparse_traffic_never_waits),
		cmocka_unit_test(pause_resets_the_rate),
		cmocka_unit_test(deep_or_full_wakes_do_not_wait),
		cmocka_unit_test(bound_is_capped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
