/* Micro-benchmark of the kernel path's hot path (docs/performance.md,
 * "Where the cycles go (kernel path)"): an established client's 128-byte
 * ESP-in-UDP datagram to a dnat VIP, IPv4 and IPv6, with a FIB answer so
 * it is rewritten and redirected, run through the tc and the XDP program
 * with BPF_PROG_TEST_RUN. One run per call: the program rewrites the frame, so
 * `repeat` would run it on the rewritten frame (no longer to a VIP). The
 * kernel times each run alone (duration, ns); we print mean and median.
 *
 *   bpf_fwd_micro [runs]     (default 20000; as root, in its own netns)
 *
 * Reuses the BPF test fixture (tests/bpf/bpf_test_util.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bpf_test_util.h"

#define FRAME_LEN 128
#define MAX_RUNS 1000000
#define WARMUP 1000

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* One client through IKE_SA_INIT, the server's answer and IKE_AUTH on
 * 4500, so its ESP follows the flow entry (the common case). Returns the
 * ESP frame's length in fr, 0 on failure. */
static size_t client_esp(struct tfx *f, int svc, const char *client, const char *vip,
			 uint8_t *fr)
{
	const uint64_t spi_i = 0x1111222233334444ULL, spi_r = 0x5555666677778888ULL;
	size_t n = t_sa_init(fr, client, 500, vip, spi_i);

	if (!n || t_run(f, fr, n) < 0)
		return 0;
	int srv = t_dst_server(f, svc);
	if (srv < 0 || t_init_resp(f, svc, srv, client, 500, spi_i, spi_r) < 0)
		return 0;
	n = t_auth(fr, client, 34567, vip, spi_i, spi_r, 900);
	if (!n || t_run(f, fr, n) < 0)
		return 0;
	uint8_t pl[PKT_MAX];
	size_t hdr = PKT_ETH_LEN + (svc == SV6 ? PKT_IP6_LEN : PKT_IP4_LEN) + PKT_UDP_LEN;
	size_t esp = pkt_esp(pl, sizeof(pl), 0xc0ffee01, 1, 16);

	if (!esp || esp > FRAME_LEN - hdr)
		return 0;
	/* pad the ESP payload so the frame is FRAME_LEN bytes */
	memset(pl + esp, 0xab, FRAME_LEN - hdr - esp);
	return t_udp(fr, client, 34567, vip, 4500, pl, FRAME_LEN - hdr);
}

/* One program: its name, descriptor and the verdict of a forward. */
struct micro_prog {
	const char *name;
	int fd;
	uint32_t redirect;
};

static int bench(struct tfx *f, const struct micro_prog *pg, const char *name,
		 const uint8_t *fr, size_t n, int runs, uint32_t *ns)
{
	for (int i = 0; i < WARMUP + runs; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = fr, .data_size_in = (uint32_t)n,
			    .data_out = f->out, .data_size_out = sizeof(f->out), .repeat = 1);
		if (bpf_prog_test_run_opts(pg->fd, &o) != 0 || o.retval != pg->redirect) {
			fprintf(stderr, "%s: not redirected (%d)\n", name, (int)o.retval);
			return -1;
		}
		if (i >= WARMUP)
			ns[i - WARMUP] = o.duration;
	}
	uint64_t sum = 0;
	for (int i = 0; i < runs; i++)
		sum += ns[i];
	qsort(ns, (size_t)runs, sizeof(*ns), cmp_u32);
	printf("%s %s %zu B: mean %.1f ns, median %u ns (%d runs)\n", pg->name, name, n,
	       (double)sum / runs, ns[runs / 2], runs);
	return 0;
}

int main(int argc, char **argv)
{
	static struct tfx f;
	static uint32_t ns[MAX_RUNS];
	uint8_t fr4[PKT_MAX], fr6[PKT_MAX];
	int runs = argc > 1 ? atoi(argv[1]) : 20000;

	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "usage: %s [runs 1..%d]\n", argv[0], MAX_RUNS);
		return 2;
	}
	if (t_netns() != 0 || t_route_all() != 0 || t_setup(&f) != 0) {
		fprintf(stderr, "bpf_fwd_micro: setup failed\n");
		return 1;
	}
	size_t n4 = client_esp(&f, SV4, "198.18.0.1", t_vip[SV4], fr4);
	size_t n6 = client_esp(&f, SV6, "2001:db8:300::1", t_vip[SV6], fr6);
	int rc = 1;

	if (!n4 || !n6)
		fprintf(stderr, "bpf_fwd_micro: client setup failed\n");
	const struct micro_prog progs[] = {
		{ "ikelb_tc", f.prog_fd, TC_ACT_REDIRECT },
		{ "ikelb_xdp", bpf_engine_xdp_prog_fd(f.e), XDP_REDIRECT },
	};
	if (n4 && n6) {
		rc = 0;
		for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]) && !rc; i++)
			rc = bench(&f, &progs[i], "esp-in-udp v4", fr4, n4, runs, ns) ||
			     bench(&f, &progs[i], "esp-in-udp v6", fr6, n6, runs, ns);
	}
	t_teardown(&f);
	t_route_servers(0);
	return rc;
}
