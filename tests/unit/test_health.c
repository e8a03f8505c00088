/* Health checker: rise/fall state machine, pacing, and end-to-end checks
 * of the ike and udp probe types against responder processes on loopback
 * (127.0.0.1 ephemeral ports only). The probe formats themselves are in
 * test_probe_ike.c and test_probe_udp.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl/health.h"
#include "ctl/probe_ike.h"
#include "ikelb/ike_wire.h"
#include "helpers/pkt.h"
#include "ike_reply.h"

static struct logger quiet;

static void quiet_init(void)
{
	log_init(&quiet, LOG_LVL_ERR);
}

/* ---- state machine with a fake clock ---- */

struct changes {
	int n;
	int svc, srv;
	bool up;
};

static void on_change(void *ctx, int svc, int srv, bool up)
{
	struct changes *c = ctx;
	c->n++;
	c->svc = svc;
	c->srv = srv;
	c->up = up;
}

static struct cfg_health hc_of(enum cfg_health_type type, uint32_t interval, uint32_t timeout,
			       uint32_t rise, uint32_t fall)
{
	struct cfg_health hc;
	memset(&hc, 0, sizeof(hc));
	hc.type = type;
	hc.interval_ms = interval;
	hc.timeout_ms = timeout;
	hc.rise = rise;
	hc.fall = fall;
	return hc;
}

static void rise_fall(void **state)
{
	(void)state;
	struct changes c = { 0 };
	struct health_checker *h = health_new(&quiet, on_change, &c);
	struct ikelb_addr a;
	struct health_info st;
	ikelb_addr_parse("127.0.0.1", &a);
	struct cfg_health hc = hc_of(CFG_HEALTH_IKE, 1000, 500, 2, 3);
	assert_int_equal(health_add_target(h, 1, 7, &a, 0, &hc), 0);
	assert_int_equal(health_add_target(h, 1, 7, &a, 0, &hc), -EEXIST); /* duplicate */

	assert_int_equal(health_info(h, 1, 7, &st), 0);
	assert_int_equal(st.state, HEALTH_UNKNOWN);
	assert_true(st.up);
	/* Two failures < fall: still effectively up, still unknown. */
	health_report(h, 1, 7, false, "timeout", 100);
	health_report(h, 1, 7, false, "timeout", 200);
	health_info(h, 1, 7, &st);
	assert_int_equal(st.state, HEALTH_UNKNOWN);
	assert_true(st.up);
	assert_int_equal(st.fail_streak, 2);
	assert_int_equal(c.n, 0);
	/* Third: down, one callback. */
	health_report(h, 1, 7, false, "no liveness notify", 300);
	health_info(h, 1, 7, &st);
	assert_int_equal(st.state, HEALTH_DOWN);
	assert_false(st.up);
	assert_string_equal(st.last_error, "no liveness notify");
	assert_int_equal(st.last_change_ms, 300);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.svc, 1);
	assert_int_equal(c.srv, 7);
	assert_false(c.up);
	/* More failures: no further callbacks. */
	health_report(h, 1, 7, false, "timeout", 400);
	assert_int_equal(c.n, 1);
	/* One success < rise; a failure resets; then two successes: up. */
	health_report(h, 1, 7, true, NULL, 500);
	health_report(h, 1, 7, false, "timeout", 600);
	health_report(h, 1, 7, true, NULL, 700);
	health_info(h, 1, 7, &st);
	assert_false(st.up);
	assert_int_equal(st.ok_streak, 1);
	health_report(h, 1, 7, true, NULL, 800);
	health_info(h, 1, 7, &st);
	assert_true(st.up);
	assert_int_equal(st.state, HEALTH_UP);
	assert_int_equal(c.n, 2);
	assert_true(c.up);
	assert_int_equal(st.probes_ok, 3);
	assert_int_equal(st.probes_failed, 5);

	/* A fresh target: the first success confirms UP, and the runtime
	 * hears of it (init_state down waits for it). */
	assert_int_equal(health_add_target(h, 2, 0, &a, 0, &hc), 0);
	health_report(h, 2, 0, true, NULL, 900);
	health_info(h, 2, 0, &st);
	assert_int_equal(st.state, HEALTH_UP);
	assert_int_equal(c.n, 3);
	assert_true(c.up);
	assert_int_equal(health_report(h, 9, 9, true, NULL, 0), -ENOENT);
	assert_int_equal(health_info(h, 9, 9, &st), -ENOENT);
	health_free(h);
}

static void type_none_and_bad_config(void **state)
{
	(void)state;
	struct health_checker *h = health_new(&quiet, NULL, NULL);
	struct ikelb_addr a;
	struct health_info st;
	int fds[2];
	ikelb_addr_parse("127.0.0.1", &a);
	struct cfg_health none = hc_of(CFG_HEALTH_NONE, 0, 0, 0, 0);
	assert_int_equal(health_add_target(h, 0, 0, &a, 0, &none), 0);
	assert_int_equal(health_fds(h, fds), 0); /* no traffic, no socket */
	health_tick(h, 1000);
	assert_true(health_next_deadline_ms(h) == UINT64_MAX);
	health_info(h, 0, 0, &st);
	assert_int_equal(st.state, HEALTH_UP);
	assert_int_equal(st.probes_sent, 0);

	struct cfg_health bad = hc_of(CFG_HEALTH_IKE, 1000, 500, 0, 3);
	assert_int_equal(health_add_target(h, 0, 1, &a, 0, &bad), -EINVAL);
	struct cfg_health udp = hc_of(CFG_HEALTH_UDP, 1000, 500, 1, 1);
	assert_int_equal(health_add_target(h, 0, 1, &a, 0, &udp), -EINVAL); /* nothing to send */
	assert_int_equal(health_count(h), 1);
	health_free(h);
}

/* ---- responder processes on loopback ----
 * A forked child, so the responder is a separate process like a real
 * server; the control block lives in a shared anonymous mapping. */

enum resp_mode { RESP_IKE_NPC, RESP_ECHO, RESP_IKE_SPIR };

struct resp_ctl {
	atomic_int answer; /* 0: swallow requests */
	atomic_int received;
	_Atomic uint64_t last_spi;
};

struct responder {
	int fd;
	uint16_t port;
	pid_t pid;
	struct resp_ctl *ctl;
};

static void responder_main(int fd, enum resp_mode mode, struct resp_ctl *ctl)
{
	uint8_t b[2048], out[64];
	/* Bounded: the parent kills us long before this ends. */
	for (int loops = 0; loops < 3000; loops++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10) <= 0)
			continue;
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0)
			continue;
		atomic_store(&ctl->last_spi, probe_ike_spi_i(b, (size_t)n));
		atomic_fetch_add(&ctl->received, 1);
		if (!atomic_load(&ctl->answer))
			continue;
		if (mode == RESP_ECHO) {
			sendto(fd, b, (size_t)n, 0, (struct sockaddr *)&from, fl);
			continue;
		}
		if (n < IKE_HDR_LEN)
			continue;
		/* RESP_IKE_SPIR: a responder that keeps half-open state for the
		 * probe and says so with a non-zero SPIr. */
		uint64_t spi_r = mode == RESP_IKE_SPIR ? 0x1122334455667788ull : 0;
		size_t m = reply(out, probe_ike_spi_i(b, (size_t)n), spi_r, 34, IKE_FLAG_R, 0, 0, 14);
		sendto(fd, out, m, 0, (struct sockaddr *)&from, fl);
	}
}

static void responder_start(struct responder *r, enum resp_mode mode)
{
	memset(r, 0, sizeof(*r));
	r->ctl = mmap(NULL, sizeof(*r->ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	assert_true(r->ctl != MAP_FAILED);
	atomic_store(&r->ctl->answer, 1);
	atomic_store(&r->ctl->received, 0);
	atomic_store(&r->ctl->last_spi, 0);
	r->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(r->fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(r->fd, (struct sockaddr *)&sa, sl), 0);
	assert_int_equal(getsockname(r->fd, (struct sockaddr *)&sa, &sl), 0);
	r->port = ntohs(sa.sin_port);
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		responder_main(r->fd, mode, r->ctl);
		_exit(0);
	}
}

static void responder_stop(struct responder *r)
{
	kill(r->pid, SIGKILL);
	waitpid(r->pid, NULL, 0);
	close(r->fd);
	munmap(r->ctl, sizeof(*r->ctl));
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the checker like the daemon does until pred holds or limit_ms passes. */
static bool run_until(struct health_checker *h, int svc, int srv, bool want_up,
		      enum health_state want, uint64_t limit_ms)
{
	uint64_t end = mono_ms() + limit_ms;
	int fds[2];
	int nfd = health_fds(h, fds);
	struct health_info st;
	while (mono_ms() < end) {
		uint64_t now = mono_ms();
		health_tick(h, now);
		uint64_t d = health_next_deadline_ms(h);
		int wait = d > now ? (int)(d - now > 50 ? 50 : d - now) : 0;
		struct pollfd p[2];
		for (int i = 0; i < nfd; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (poll(p, (nfds_t)nfd, wait) > 0)
			health_on_readable(h, mono_ms());
		health_info(h, svc, srv, &st);
		if (st.up == want_up && st.state == want)
			return true;
	}
	return false;
}

static void ike_end_to_end(void **state)
{
	(void)state;
	struct responder r;
	responder_start(&r, RESP_IKE_NPC);
	struct changes c = { 0 };
	struct health_checker *h = health_new(&quiet, on_change, &c);
	health_set_pacing(h, 10, 1000);
	struct ikelb_addr a;
	ikelb_addr_parse("127.0.0.1", &a);
	struct cfg_health hc = hc_of(CFG_HEALTH_IKE, 60, 40, 2, 2);
	hc.port = r.port;
	assert_int_equal(health_add_target(h, 0, 3, &a, 0, &hc), 0);

	/* The source port is ephemeral, never a service port. */
	int fds[2];
	assert_int_equal(health_fds(h, fds), 1);
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	assert_int_equal(getsockname(fds[0], (struct sockaddr *)&me, &ml), 0);
	assert_int_not_equal(ntohs(me.sin_port), 500);
	assert_int_not_equal(ntohs(me.sin_port), 4500);
	assert_int_not_equal(ntohs(me.sin_port), 0);

	assert_true(run_until(h, 0, 3, true, HEALTH_UP, 3000));
	struct health_info st;
	health_info(h, 0, 3, &st);
	assert_true(st.has_rtt);
	assert_true(st.probes_ok >= 1);
	assert_int_equal(c.n, 1); /* unknown -> up */
	assert_true(c.up);

	atomic_store(&r.ctl->answer, 0);
	assert_true(run_until(h, 0, 3, false, HEALTH_DOWN, 3000));
	health_info(h, 0, 3, &st);
	assert_string_equal(st.last_error, "timeout");
	assert_int_equal(c.n, 2);
	assert_false(c.up);

	atomic_store(&r.ctl->answer, 1);
	assert_true(run_until(h, 0, 3, true, HEALTH_UP, 3000));
	assert_int_equal(c.n, 3);
	health_info(h, 0, 3, &st);
	assert_true(st.ok_streak >= 2);
	health_free(h);
	responder_stop(&r);
}

/* A well-formed answer with a non-zero SPIr is a live server (strongSwan
 * answers so before its connections are loaded): up, with a detail. */
static void ike_nonzero_spi_r_is_alive(void **state)
{
	(void)state;
	struct responder r;
	responder_start(&r, RESP_IKE_SPIR);
	struct health_checker *h = health_new(&quiet, NULL, NULL);
	health_set_pacing(h, 10, 1000);
	struct ikelb_addr a;
	ikelb_addr_parse("127.0.0.1", &a);
	struct cfg_health hc = hc_of(CFG_HEALTH_IKE, 50, 40, 2, 2);
	assert_int_equal(health_add_target(h, 0, 0, &a, r.port, &hc), 0);
	assert_true(run_until(h, 0, 0, true, HEALTH_UP, 3000));
	struct health_info st;
	health_info(h, 0, 0, &st);
	assert_int_equal(st.probes_failed, 0);
	assert_string_equal(st.detail, "responder SPI not zero (the server keeps state for probes)");
	health_free(h);
	responder_stop(&r);
}

/* A server answering with the wrong notify goes down with a reason. */
static void ike_wrong_answer_counts_as_failure(void **state)
{
	(void)state;
	struct responder r;
	responder_start(&r, RESP_ECHO); /* echoes our request: I flag, no R */
	struct health_checker *h = health_new(&quiet, NULL, NULL);
	health_set_pacing(h, 10, 1000);
	struct ikelb_addr a;
	ikelb_addr_parse("127.0.0.1", &a);
	struct cfg_health hc = hc_of(CFG_HEALTH_IKE, 50, 40, 1, 2);
	assert_int_equal(health_add_target(h, 0, 0, &a, r.port, &hc), 0);
	assert_true(run_until(h, 0, 0, false, HEALTH_DOWN, 3000));
	struct health_info st;
	health_info(h, 0, 0, &st);
	assert_string_equal(st.last_error, "R flag not set");
	health_free(h);
	responder_stop(&r);
}

static void udp_echo(void **state)
{
	(void)state;
	struct responder r;
	responder_start(&r, RESP_ECHO);
	struct health_checker *h = health_new(&quiet, NULL, NULL);
	health_set_pacing(h, 10, 1000);
	struct ikelb_addr a;
	ikelb_addr_parse("127.0.0.1", &a);
	uint8_t ping[] = "PING ikelb", want[] = "PING", bad[] = "PONG";
	struct cfg_health hc = hc_of(CFG_HEALTH_UDP, 50, 40, 1, 2);
	hc.send = ping;
	hc.send_len = sizeof(ping) - 1;
	hc.expect = want;
	hc.expect_len = 4;
	assert_int_equal(health_add_target(h, 0, 0, &a, r.port, &hc), 0);
	hc.expect = bad;
	assert_int_equal(health_add_target(h, 0, 1, &a, r.port, &hc), 0);
	hc.expect_len = 0; /* any reply */
	assert_int_equal(health_add_target(h, 0, 2, &a, r.port, &hc), 0);

	assert_true(run_until(h, 0, 0, true, HEALTH_UP, 3000));
	assert_true(run_until(h, 0, 1, false, HEALTH_DOWN, 3000));
	assert_true(run_until(h, 0, 2, true, HEALTH_UP, 3000));
	struct health_info st;
	health_info(h, 0, 1, &st);
	assert_string_equal(st.last_error, "reply does not match expect");
	health_info(h, 0, 0, &st);
	assert_int_equal(st.probes_failed, 0);
	health_free(h);
	responder_stop(&r);
}

/* ---- pacing ---- */

static void pacing_per_address(void **state)
{
	(void)state;
	struct responder r;
	responder_start(&r, RESP_IKE_NPC);
	atomic_store(&r.ctl->answer, 0); /* every probe times out: worst case */
	struct health_checker *h = health_new(&quiet, NULL, NULL);
	struct ikelb_addr a;
	ikelb_addr_parse("127.0.0.1", &a);
	/* Ten targets on one address (services x ports), each wanting 10/s. */
	struct cfg_health hc = hc_of(CFG_HEALTH_IKE, 100, 50, 1, 1);
	for (int i = 0; i < 10; i++)
		assert_int_equal(health_add_target(h, i, 0, &a, r.port, &hc), 0);

	/* Fake clock, 5 s in 5 ms steps; record when each probe left. */
	uint64_t times[256];
	int n = 0;
	uint64_t prev = 0;
	for (uint64_t now = 10000; now < 15000 && n < 256; now += 5) {
		health_tick(h, now);
		uint64_t sent = 0;
		for (int i = 0; i < 10; i++) {
			struct health_info st;
			health_get(h, i, NULL, NULL, &st);
			sent += st.probes_sent;
		}
		for (uint64_t k = prev; k < sent && n < 256; k++)
			times[n++] = now;
		prev = sent;
	}
	/* At most 2 in any 1000 ms window, and the limit is actually used. */
	for (int i = 2; i < n; i++)
		assert_true(times[i] - times[i - 2] >= 1000);
	assert_true(n >= 9 && n <= 11);
	struct health_counters cnt;
	health_get_counters(h, &cnt);
	assert_true(cnt.paced > 0);
	/* Probes really left: the responder saw them (bounded wait). */
	for (int w = 0; w < 100 && atomic_load(&r.ctl->received) < n; w++)
		usleep(10000);
	assert_int_equal(atomic_load(&r.ctl->received), n);
	health_free(h);
	responder_stop(&r);
}

/* Ticks a fake clock until target (0, 0)'s first (jittered) probe leaves
 * and r has it. Returns the send time. */
static uint64_t first_probe(struct health_checker *h, struct responder *r)
{
	struct health_info st = { 0 };
	uint64_t t0 = 0;
	for (uint64_t now = 1000; now < 3000 && !st.probes_sent; now += 10) {
		health_tick(h, now);
		health_info(h, 0, 0, &st);
		t0 = now;
	}
	assert_int_equal(st.probes_sent, 1);
	for (int w = 0; w < 100 && atomic_load(&r->ctl->received) < 1; w++)
		usleep(10000);
	assert_int_equal(atomic_load(&r->ctl->received), 1);
	return t0;
}

/* Where a server's replies go: the checker's (only) socket. */
static struct sockaddr_in checker_addr(struct health_checker *h)
{
	int fds[2];
	assert_int_equal(health_fds(h, fds), 1);
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	assert_int_equal(getsockname(fds[0], (struct sockaddr *)&me, &ml), 0);
	me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return me;
}

static void send_from(int fd, const struct sockaddr_in *to, const void *buf, size_t len)
{
	assert_int_equal(sendto(fd, buf, len, 0, (const struct sockaddr *)to, sizeof(*to)),
			 (ssize_t)len);
}

/* Replies from the wrong port never judge a probe. */
static void stray_reply_ignored(void **state)
{
	(void)state;
	struct responder r, other;
	responder_start(&r, RESP_IKE_NPC);
	responder_start(&other, RESP_IKE_NPC);
	atomic_store(&r.ctl->answer, 0);
	struct health_checker *h = health_new(&quiet, NULL, NULL);
	struct ikelb_addr a;
	ikelb_addr_parse("127.0.0.1", &a);
	struct cfg_health hc = hc_of(CFG_HEALTH_IKE, 1000, 900, 1, 1);
	assert_int_equal(health_add_target(h, 0, 0, &a, r.port, &hc), 0);
	struct health_info st;
	uint64_t t0 = first_probe(h, &r);
	struct sockaddr_in me = checker_addr(h);
	uint8_t b[2048];
	/* The correct answer to the probe (right SPIi), but from another port,
	 * then an answer with an unknown SPIi: both are strays. */
	uint64_t spi = atomic_load(&r.ctl->last_spi);
	assert_true(spi != 0);
	size_t m = reply(b, spi, 0, 34, IKE_FLAG_R, 0, 0, 14);
	send_from(other.fd, &me, b, m);
	m = reply(b, spi ^ 1, 0, 34, IKE_FLAG_R, 0, 0, 14);
	send_from(r.fd, &me, b, m);
	usleep(50000);
	health_on_readable(h, t0 + 137);
	struct health_counters cnt;
	health_get_counters(h, &cnt);
	assert_int_equal(cnt.stray_replies, 2);
	health_info(h, 0, 0, &st);
	assert_int_equal(st.probes_ok + st.probes_failed, 0);
	/* The right answer from the right port is accepted. */
	m = reply(b, spi, 0, 34, IKE_FLAG_R, 0, 0, 14);
	send_from(r.fd, &me, b, m);
	usleep(50000);
	health_on_readable(h, t0 + 137);
	health_info(h, 0, 0, &st);
	assert_int_equal(st.probes_ok, 1);
	assert_true(st.has_rtt);
	assert_int_equal(st.last_rtt_ms, 137);
	/* and lands in the RTT histogram: (100, 250] ms */
	assert_int_equal(health_rtt_bounds_ms[6], 250);
	assert_int_equal(st.rtt_buckets[6], 1);
	assert_int_equal(st.rtt_buckets[5] + st.rtt_buckets[7] + st.rtt_over, 0);
	assert_int_equal(st.rtt_sum_ms, 137);
	health_free(h);
	responder_stop(&r);
	responder_stop(&other);
}

/* udp without expect: any datagram from the probed address and port is an
 * answer, an empty one included; the same from another port is a stray. */
static void udp_any_reply_from_the_server_port(void **state)
{
	(void)state;
	struct responder r, other;
	responder_start(&r, RESP_ECHO);
	responder_start(&other, RESP_ECHO);
	atomic_store(&r.ctl->answer, 0);
	struct health_checker *h = health_new(&quiet, NULL, NULL);
	struct ikelb_addr a;
	ikelb_addr_parse("127.0.0.1", &a);
	uint8_t ping[] = "ping";
	struct cfg_health hc = hc_of(CFG_HEALTH_UDP, 1000, 900, 1, 1);
	hc.send = ping;
	hc.send_len = 4;
	assert_int_equal(health_add_target(h, 0, 0, &a, r.port, &hc), 0);
	uint64_t t0 = first_probe(h, &r);
	struct sockaddr_in me = checker_addr(h);

	send_from(other.fd, &me, "anything", 8);
	usleep(50000);
	health_on_readable(h, t0 + 20);
	struct health_counters cnt;
	health_get_counters(h, &cnt);
	assert_int_equal(cnt.stray_replies, 1);
	struct health_info st;
	health_info(h, 0, 0, &st);
	assert_int_equal(st.probes_ok + st.probes_failed, 0);

	send_from(r.fd, &me, "", 0);
	usleep(50000);
	health_on_readable(h, t0 + 30);
	health_info(h, 0, 0, &st);
	assert_int_equal(st.probes_ok, 1);
	assert_int_equal(st.probes_failed, 0);
	assert_int_equal(st.state, HEALTH_UP);
	assert_int_equal(st.last_rtt_ms, 30);
	health_get_counters(h, &cnt);
	assert_int_equal(cnt.stray_replies, 1);
	health_free(h);
	responder_stop(&r);
	responder_stop(&other);
}

int main(void)
{
	quiet_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rise_fall),
		cmocka_unit_test(type_none_and_bad_config),
		cmocka_unit_test(ike_end_to_end),
		cmocka_unit_test(ike_nonzero_spi_r_is_alive),
		cmocka_unit_test(ike_wrong_answer_counts_as_failure),
		cmocka_unit_test(udp_echo),
		cmocka_unit_test(pacing_per_address),
		cmocka_unit_test(stray_reply_ignored),
		cmocka_unit_test(udp_any_reply_from_the_server_port),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
