/* tcp_ports in the configuration and the TCP connect check (docs/tcp.md):
 * a listening port is up, a closed one goes down after `fall` refusals and
 * comes back after `rise` successes, a silent one times out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "ctl/tcp_check.h"

struct seen {
	int changes;
	bool up;
};

static void on_change(void *ctx, int svc, int srv, bool up)
{
	struct seen *s = ctx;
	assert_int_equal(svc, 1);
	assert_int_equal(srv, 2);
	s->changes++;
	s->up = up;
}

/* A listener on 127.0.0.1, any port. */
static int listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Run the checker on a fake clock until cond or 400 steps of 10 ms (each
 * step also gives the loopback handshake real time to finish). */
#define RUN_UNTIL(c, now, cond)                                                  \
	for (int i_ = 0; i_ < 400 && !(cond); i_++) {                             \
		tcpc_tick((c), (now));                                            \
		usleep(1000);                                                     \
		(now) += 10;                                                      \
	}

static void up_down_up(void **state)
{
	(void)state;
	struct logger log;
	struct cfg_health hc = { .interval_ms = 50, .timeout_ms = 500, .rise = 2, .fall = 2 };
	struct seen s = { 0 };
	struct ikelb_addr lo;
	struct tcpc_info ti;
	uint16_t port;
	uint64_t now = 1000;

	log_init(&log, LOG_LVL_WARN);
	assert_int_equal(ikelb_addr_parse("127.0.0.1", &lo), 0);
	int lfd = listener(&port);
	struct tcp_checker *c = tcpc_new(&log, on_change, &s);
	assert_non_null(c);
	assert_int_equal(tcpc_add(c, 1, 2, &lo, port, &hc), 0);
	assert_int_equal(tcpc_info(c, 1, 3, &ti), -ENOENT);
	RUN_UNTIL(c, now, s.changes == 1);
	assert_int_equal(s.changes, 1);
	assert_true(s.up);

	close(lfd); /* the port now refuses */
	RUN_UNTIL(c, now, s.changes == 2);
	assert_int_equal(s.changes, 2);
	assert_false(s.up);
	assert_int_equal(tcpc_info(c, 1, 2, &ti), 0);
	assert_int_equal(ti.state, HEALTH_DOWN);
	assert_true(ti.failed >= 2);
	assert_non_null(strstr(ti.last_error, "refused"));

	/* back on the same port: rise successes bring it up */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	RUN_UNTIL(c, now, s.changes == 3);
	assert_int_equal(s.changes, 3);
	assert_true(s.up);
	assert_true(tcpc_next_deadline_ms(c) != UINT64_MAX);
	tcpc_free(c);
	close(lfd);
}

/* No answer at all: in a private namespace, 198.18.0.2 sits behind a
 * veth whose peer is down: the SYN goes nowhere. A timeout is a failure. */
static void silent_port_times_out(void **state)
{
	(void)state;
	struct logger log;
	struct cfg_health hc = { .interval_ms = 100, .timeout_ms = 30, .rise = 1, .fall = 1 };
	struct seen s = { 0 };
	struct ikelb_addr a;
	struct tcpc_info ti;
	uint64_t now = 1000;

	if (unshare(CLONE_NEWNET) < 0 ||
	    system("ip link set lo up && ip link add ikt0 type veth peer name ikt1 && ip link set ikt0 up && "
		   "ip addr add 198.18.0.1/24 dev ikt0") != 0)
		fail_msg("cannot set up the test namespace (needs root)");
	log_init(&log, LOG_LVL_WARN);
	assert_int_equal(ikelb_addr_parse("198.18.0.2", &a), 0);
	struct tcp_checker *c = tcpc_new(&log, on_change, &s);
	assert_int_equal(tcpc_add(c, 1, 2, &a, 443, &hc), 0);
	RUN_UNTIL(c, now, s.changes == 1);
	assert_int_equal(s.changes, 1);
	assert_false(s.up);
	assert_int_equal(tcpc_info(c, 1, 2, &ti), 0);
	assert_int_equal(ti.state, HEALTH_DOWN);
	assert_string_equal(ti.last_error, "timeout");
	tcpc_free(c);
}

static void config_tcp_ports(void **state)
{
	(void)state;
	static const char y[] = "interfaces: [eth0]\n"
				"services:\n"
				"  - name: s1\n"
				"    vip: 203.0.113.10\n"
				"    tcp_ports: [443, 8443]\n"
				"    servers: [{ name: a, address: 198.51.100.1 }]\n"
				"  - name: s2\n"
				"    vip: 203.0.113.11\n"
				"    tcp_ports: [443]\n"
				"    health: { tcp_check: none }\n"
				"    servers: [{ name: b, address: 198.51.100.2 }]\n"
				"  - name: s3\n"
				"    vip: 203.0.113.12\n"
				"    servers: [{ name: c, address: 198.51.100.3 }]\n";
	struct cfg c;
	struct cfg_errors e = { 0 };

	assert_int_equal(cfg_load_string("t.yaml", y, strlen(y), &c, &e), 0);
	assert_int_equal(c.services[0].ntcp_ports, 2);
	assert_int_equal(c.services[0].tcp_ports[1], 8443);
	assert_true(c.services[0].tcp_check);
	assert_int_equal(c.services[1].ntcp_ports, 1);
	assert_false(c.services[1].tcp_check);
	assert_int_equal(c.services[2].ntcp_ports, 0);
	assert_false(c.services[2].tcp_check);
	cfg_free(&c);
	cfg_errors_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(up_down_up),
		cmocka_unit_test(config_tcp_ports),
		cmocka_unit_test(silent_port_times_out), /* last: leaves the namespace */
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
