/* Lab tool for tests/system/test_health_probe.py: probes one IKE server
 * with ikelb's health module.
 *   ike_probe ADDR PORT            one raw probe, prints the verdict line
 *   ike_probe ADDR PORT SECONDS    runs the checker (rise 2, fall 2) for at
 *                                  most SECONDS, prints the final state
 * Compiled by the pytest against $IKELB_BUILD/libikelb.a. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "ctl/health.h"
#include "ctl/probe_ike.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int raw_probe(const struct ikelb_addr *a, uint16_t port)
{
	if (!ikelb_addr_is_v4(a))
		return fprintf(stderr, "IPv4 only\n"), 2;
	uint8_t rnd[8 + PROBE_IKE_RANDOM_LEN], pkt[PROBE_IKE_LEN], rx[2048];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return 2;
	uint64_t spi = 0;
	for (int i = 0; i < 8; i++)
		spi = spi << 8 | rnd[i];
	size_t n = probe_ike_build(pkt, sizeof(pkt), spi | 1, rnd + 8);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = ikelb_addr_v4(a) };
	if (fd < 0 || sendto(fd, pkt, n, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fprintf(stderr, "send: %s\n", strerror(errno)), 2;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 3000) <= 0)
		return printf("verdict=timeout\n"), 1;
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t r = recvfrom(fd, rx, sizeof(rx), 0, (struct sockaddr *)&from, &fl);
	if (r < 0)
		return printf("verdict=recv-error %s\n", strerror(errno)), 1;
	struct probe_ike_reply rep = { .notify = -1 };
	enum probe_ike_verdict v = probe_ike_check_reply(rx, (size_t)r, spi | 1, &rep);
	int notify = rep.notify < 0 ? 0 : rep.notify;
	uint64_t spi_r = 0;
	for (int i = 8; i < 16 && r >= 16; i++)
		spi_r = spi_r << 8 | rx[i];
	printf("verdict=%s notify=%d spi_r=%016llx flags=0x%02x len=%zd from_port=%u\n",
	       v == PROBE_IKE_ALIVE ? "alive" : probe_ike_verdict_str(v), notify,
	       (unsigned long long)spi_r, r >= 20 ? rx[19] : 0, r, ntohs(from.sin_port));
	return v == PROBE_IKE_ALIVE ? 0 : 1;
}

static int run_checker(const struct ikelb_addr *a, uint16_t port, int seconds)
{
	struct logger log;
	log_init(&log, LOG_LVL_INFO);
	struct health_checker *h = health_new(&log, NULL, NULL);
	struct cfg_health hc = { .type = CFG_HEALTH_IKE, .interval_ms = 300, .timeout_ms = 250,
				 .rise = 2, .fall = 2, .port = port };
	if (!h || health_add_target(h, 0, 0, a, 0, &hc) < 0)
		return 2;
	int fds[2], nfd = health_fds(h, fds);
	uint64_t end = now_ms() + (uint64_t)seconds * 1000;
	struct health_info st;
	while (now_ms() < end) {
		uint64_t t = now_ms();
		health_tick(h, t);
		uint64_t d = health_next_deadline_ms(h);
		int wait = d > t ? (int)(d - t > 100 ? 100 : d - t) : 0;
		struct pollfd p[2];
		for (int i = 0; i < nfd; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (poll(p, (nfds_t)nfd, wait) > 0)
			health_on_readable(h, now_ms());
		health_info(h, 0, 0, &st);
		if (st.state == HEALTH_DOWN || (st.state == HEALTH_UP && st.ok_streak >= 4))
			break;
	}
	health_info(h, 0, 0, &st);
	printf("status=%s up=%d sent=%llu ok=%llu failed=%llu rtt_ms=%u last_error=%s\n",
	       health_state_name(st.state), st.up, (unsigned long long)st.probes_sent,
	       (unsigned long long)st.probes_ok, (unsigned long long)st.probes_failed,
	       st.last_rtt_ms, st.last_error[0] ? st.last_error : "-");
	health_free(h);
	return st.state == HEALTH_UP ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct ikelb_addr a;
	if (argc < 3 || ikelb_addr_parse(argv[1], &a) < 0)
		return fprintf(stderr, "usage: ike_probe ADDR PORT [SECONDS]\n"), 2;
	uint16_t port = (uint16_t)atoi(argv[2]);
	if (argc > 3)
		return run_checker(&a, port, atoi(argv[3]));
	return raw_probe(&a, port);
}
