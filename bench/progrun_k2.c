/* Micro-benchmark of the kernel path (issue #18): ns per program run of
 * one forwarded ESP-in-UDP datagram (128 B frame, a known client whose
 * flow names its server, a FIB route to the servers), through the tc and
 * the XDP program, with BPF_PROG_TEST_RUN. One run per call: with
 * `repeat` the kernel would run the program again on the frame it already
 * rewrote (no longer to the VIP), which measures the miss path. The
 * kernel's `duration` is the program alone, without the system call.
 *
 *   progrun_k2 [calls per round] [rounds]   (root; it enters a network
 *   namespace of its own for the route to the servers)
 *
 * Prints the median and minimum over the rounds of the mean ns per run. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"

#define BR_CLIENT "203.0.113.77"
#define BR_FRAME 128

/* IKE_SA_INIT, the server's response, IKE_AUTH on 4500: the client's
 * 4500 flow names its server. */
static int br_client_up(struct tfx *f)
{
	uint8_t fr[PKT_MAX];
	size_t n = t_sa_init(fr, BR_CLIENT, 500, t_vip[SV4], 0x1001);

	if (t_run(f, fr, n) != TC_ACT_OK)
		return -1;
	int srv = t_dst_server(f, SV4);
	if (srv < 0 || t_init_resp(f, SV4, srv, BR_CLIENT, 500, 0x1001, 0x77) != TC_ACT_OK)
		return -1;
	n = t_auth(fr, BR_CLIENT, 4500, t_vip[SV4], 0x1001, 0x77, 300);
	return t_run(f, fr, n) == TC_ACT_OK ? 0 : -1;
}

/* ESP-in-UDP whose Ethernet frame is BR_FRAME bytes. */
static size_t br_esp_frame(uint8_t *fr)
{
	uint8_t pl[PKT_MAX];
	size_t hdr = PKT_ETH_LEN + 20 + 8;
	size_t n = pkt_esp(pl, sizeof(pl), 0xc0ffee01, 1, BR_FRAME - hdr - 8);

	return n ? t_udp(fr, BR_CLIENT, 4500, t_vip[SV4], 4500, pl, n) : 0;
}

/* Mean ns per run over `calls` single runs; -1 on a wrong verdict. */
static double br_round(int fd, const uint8_t *fr, size_t len, int calls, int want)
{
	static uint8_t out[PKT_MAX + 64];
	uint64_t total = 0;

	for (int i = 0; i < calls; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = fr, .data_size_in = (uint32_t)len,
			    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
		if (bpf_prog_test_run_opts(fd, &o) != 0 || (int)o.retval != want)
			return -1;
		total += o.duration;
	}
	return (double)total / calls;
}

static int br_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int br_measure(const char *name, int fd, const uint8_t *fr, size_t len, int calls,
		      int rounds, int want)
{
	double r[64];

	for (int i = 0; i < rounds; i++) {
		r[i] = br_round(fd, fr, len, calls, want);
		if (r[i] < 0) {
			fprintf(stderr, "%s: run failed or verdict not %d\n", name, want);
			return -1;
		}
	}
	qsort(r, (size_t)rounds, sizeof(r[0]), br_cmp);
	printf("%-4s esp-in-udp %d B: median %.1f ns/run, min %.1f (%d rounds x %d runs)\n", name,
	       BR_FRAME, r[rounds / 2], r[0], rounds, calls);
	return 0;
}

int main(int argc, char **argv)
{
	static struct tfx f;
	uint8_t fr[PKT_MAX];
	int calls = argc > 1 ? atoi(argv[1]) : 20000;
	int rounds = argc > 2 ? atoi(argv[2]) : 9;
	int rc = 1;

	if (calls < 1 || calls > 10000000 || rounds < 1 || rounds > 64) {
		fprintf(stderr, "usage: progrun_k2 [calls 1..1e7] [rounds 1..64]\n");
		return 2;
	}
	/* Its own network namespace: the route and links go away with it. */
	if (t_netns() != 0 || t_setup(&f) != 0 || br_client_up(&f) != 0) {
		fprintf(stderr, "progrun_k2: setup failed\n");
		return 1;
	}
	size_t n = br_esp_frame(fr);
	if (t_route_servers(1) != 0) {
		fprintf(stderr, "progrun_k2: no route (root, fresh netns?)\n");
		goto out;
	}
	if (br_measure("tc", f.prog_fd, fr, n, calls, rounds, TC_ACT_REDIRECT) == 0 &&
	    br_measure("xdp", bpf_engine_xdp_prog_fd(f.e), fr, n, calls, rounds, XDP_REDIRECT) == 0)
		rc = 0;
	t_route_servers(0);
out:
	t_teardown(&f);
	return rc;
}
