/* Evacuation workers (src/ctl/evac.c) against a fake charon on a unix
 * socket: REDIRECT requested with the VIP and a peer-ip selector, SAs
 * counted down to done; a dead endpoint fails with the reason; a cancel
 * stops the worker; no vici endpoint is drain-only. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctl/evac.h"
#include "ctl/vici.h"

struct fake_charon {
	int lfd;
	char path[108];
	int sas;                 /* IKE SAs; each stats call after a redirect drops one */
	int redirects;
	char gateway[64], peer_ip[64];
};

static int read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void answer(int fd, const struct vici_buf *m)
{
	struct vici_buf p = { 0 };
	assert_int_equal(vici_packet(&p, VICI_CMD_RESPONSE, NULL, m->p, m->len), 0);
	assert_int_equal(write(fd, p.p, p.len), (ssize_t)p.len);
	vici_buf_free(&p);
}

/* One connection: answers redirect and stats until the client closes. */
static void *charon(void *arg)
{
	struct fake_charon *c = arg;
	int fd = accept(c->lfd, NULL, NULL);
	uint8_t hdr[4], seg[1024];
	while (fd >= 0 && read_full(fd, hdr, 4) == 0) {
		uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | hdr[2] << 8 | hdr[3];
		if (n > sizeof(seg) || read_full(fd, seg, n) < 0)
			break;
		const uint8_t *msg = seg + 2 + seg[1];
		size_t mlen = n - 2 - seg[1];
		struct vici_buf m = { 0 };
		char num[16];
		if (seg[1] == 8 && !memcmp(seg + 2, "redirect", 8)) {
			c->redirects++;
			vici_get(msg, mlen, "gateway", c->gateway, sizeof(c->gateway));
			vici_get(msg, mlen, "peer-ip", c->peer_ip, sizeof(c->peer_ip));
			snprintf(num, sizeof(num), "%d", c->sas);
			vici_add_kv(&m, "success", c->sas ? "yes" : "no");
			vici_add_kv(&m, "matches", num);
		} else {
			if (c->redirects && c->sas)
				c->sas--;
			snprintf(num, sizeof(num), "%d", c->sas);
			vici_add_section(&m, "ikesas");
			vici_add_kv(&m, "total", num);
			vici_end_section(&m);
		}
		answer(fd, &m);
		vici_buf_free(&m);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void wait_phase(struct evac *ev, enum evac_phase p, struct evac_info *out)
{
	for (int i = 0; i < 200; i++) { /* 10 s */
		assert_int_equal(evac_get(ev, 0, 1, out), 0);
		if (out->phase == p)
			return;
		nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	}
	fail_msg("phase %s, want %s (%s)", evac_phase_name(out->phase), evac_phase_name(p),
		 out->error);
}

static void redirects_until_empty(void **state)
{
	(void)state;
	struct logger log;
	log_init(&log, LOG_LVL_ERR);
	struct fake_charon c = { .sas = 2 };
	snprintf(c.path, sizeof(c.path), "/tmp/ikelb-test-evac-%d.vici", (int)getpid());
	unlink(c.path);
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	strcpy(un.sun_path, c.path);
	c.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(c.lfd, (struct sockaddr *)&un, sizeof(un)), 0);
	assert_int_equal(listen(c.lfd, 1), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, charon, &c), 0);

	struct evac *ev = evac_new(&log);
	char uri[128], err[256] = "";
	snprintf(uri, sizeof(uri), "unix://%s", c.path);
	assert_int_equal(evac_start(ev, 0, 1, "vpn/s1", uri, "203.0.113.10", 4, err, sizeof(err)),
			 0);
	struct evac_info in;
	assert_int_equal(evac_get(ev, 0, 0, &in), -ENOENT);
	wait_phase(ev, EVAC_DONE, &in);
	assert_int_equal(in.sas_left, 0);
	assert_int_equal(in.redirected, 2);
	assert_int_equal(in.forgotten, 4);
	assert_true(in.ended_ms >= in.started_ms);
	assert_string_equal(c.gateway, "203.0.113.10");
	assert_string_equal(c.peer_ip, "0.0.0.0/0");
	evac_cancel(ev, 0, 1);
	assert_int_equal(evac_get(ev, 0, 1, &in), -ENOENT);
	evac_free(ev);
	pthread_join(th, NULL);
	close(c.lfd);
	unlink(c.path);
}

static void dead_endpoint_and_drain_only(void **state)
{
	(void)state;
	struct logger log;
	log_init(&log, LOG_LVL_ERR);
	struct evac *ev = evac_new(&log);
	char err[256] = "";
	struct evac_info in;
	const char *dead = "unix:///nonexistent-ikelb-test/charon.vici";
	assert_int_equal(evac_start(ev, 0, 1, "vpn/s1", dead, "2001:db8::10", 0, err, sizeof(err)),
			 0);
	wait_phase(ev, EVAC_FAILED, &in);
	assert_non_null(strstr(in.error, dead));
	assert_non_null(strstr(in.error, "connect"));
	/* again, now without vici: replaced, drain-only */
	assert_int_equal(evac_start(ev, 0, 1, "vpn/s1", "", "2001:db8::10", 1, err, sizeof(err)), 0);
	assert_int_equal(evac_get(ev, 0, 1, &in), 0);
	assert_int_equal(in.phase, EVAC_DRAIN_ONLY);
	assert_int_equal(evac_start(ev, 0, 2, "vpn/s2", "http://x", "2001:db8::10", 0, err,
				    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unix:///PATH or tcp://ADDR:PORT"));
	evac_free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(redirects_until_empty),
		cmocka_unit_test(dead_endpoint_and_drain_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
