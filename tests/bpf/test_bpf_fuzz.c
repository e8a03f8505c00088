/* Deterministic random test of both BPF programs: N datagrams built from
 * the classifier corpus (tests/fuzz/corpus/fuzz_ike_wire), mutated in
 * payload and headers, with random directions (to a VIP, from a real
 * server, elsewhere), families, TTLs and fragment bits, run through tc and
 * XDP with BPF_PROG_TEST_RUN. Every verdict must be one the program
 * documents, and every datagram it rewrote from valid checksums must leave
 * with valid checksums. IKELB_FUZZ_N overrides the count, IKELB_FUZZ_SEED
 * the seed. */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <linux/bpf.h>

#include "bpf_test_util.h"

#define MAX_SEEDS 64

struct fz {
	struct tfx f;
	uint64_t rng;
	uint8_t *seed[MAX_SEEDS];
	size_t seed_len[MAX_SEEDS];
	int nseed;
	long verdicts[8], xdp_verdicts[8], csum_checked;
};

static uint32_t rnd(struct fz *z)
{
	z->rng ^= z->rng << 13;
	z->rng ^= z->rng >> 7;
	z->rng ^= z->rng << 17;
	return (uint32_t)(z->rng >> 11);
}

static const char *corpus_dir(char *buf, size_t len)
{
	const char *me = __FILE__;
	const char *tail = strstr(me, "tests/bpf/test_bpf_fuzz.c");
	snprintf(buf, len, "%.*stests/fuzz/corpus/fuzz_ike_wire", (int)(tail ? tail - me : 0), me);
	return buf;
}

static void load_corpus(struct fz *z)
{
	char dir[512], path[1024];
	DIR *d = opendir(corpus_dir(dir, sizeof(dir)));
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) && z->nseed < MAX_SEEDS) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		FILE *fp = fopen(path, "rb");
		assert_non_null(fp);
		uint8_t *b = malloc(PKT_MAX);
		size_t n = fread(b, 1, PKT_MAX - 64, fp);
		fclose(fp);
		z->seed[z->nseed] = b;
		z->seed_len[z->nseed++] = n;
	}
	closedir(d);
	assert_true(z->nseed >= 10);
}

/* A mutated UDP payload from a corpus entry (byte 0 of an entry is the
 * fuzz target's framing selector: bit 0 = NAT-T framing). */
static size_t payload(struct fz *z, uint8_t *pl, int *natt)
{
	int i = (int)(rnd(z) % (uint32_t)z->nseed);
	size_t n = z->seed_len[i] > 1 ? z->seed_len[i] - 1 : 0;
	*natt = z->seed_len[i] ? z->seed[i][0] & 1 : 0;
	memcpy(pl, z->seed[i] + 1, n);
	int muts = (int)(rnd(z) % 5);
	for (int m = 0; m < muts && n; m++) {
		switch (rnd(z) % 4) {
		case 0: pl[rnd(z) % n] ^= (uint8_t)(1u << (rnd(z) % 8)); break;
		case 1: pl[rnd(z) % n] = (uint8_t)rnd(z); break;
		case 2: n = rnd(z) % (n + 1); break; /* truncate */
		default: /* extend with noise */
			for (size_t k = rnd(z) % 64; k && n < 1400; k--)
				pl[n++] = (uint8_t)rnd(z);
		}
	}
	return n;
}

static void pick_addrs(struct fz *z, int v6, const char **src, const char **dst, uint16_t *sport,
		       uint16_t *dport, int natt)
{
	static const char *const c4[] = { "203.0.113.77", "198.18.1.2", "203.0.113.10" };
	static const char *const c6[] = { "2001:db8:300::77", "::ffff:203.0.113.10",
					  "2001:db8:100::10" };
	int s = v6 ? SV6 : (int)(rnd(z) % 4 == 0 ? SDSR : rnd(z) % 2 ? SV4 : SIKE);
	const char *client = (v6 ? c6 : c4)[rnd(z) % 3];
	uint16_t vport = natt ? 4500 : 500;
	uint16_t cport = (uint16_t)(rnd(z) % 3 == 0 ? vport : 1024 + rnd(z) % 60000);
	switch (rnd(z) % 3) {
	case 0: /* to the VIP */
		*src = client, *dst = t_vip[s], *sport = cport, *dport = vport;
		break;
	case 1: /* from a real server */
		*src = t_real[s][rnd(z) % T_NSRV], *dst = client, *sport = vport, *dport = cport;
		break;
	default: /* neither */
		*src = client, *dst = (v6 ? c6 : c4)[rnd(z) % 3], *sport = cport;
		*dport = (uint16_t)(rnd(z) % 2 ? vport : rnd(z));
	}
}

/* Header damage now and then: IP fields, UDP length, fragment bits, TTL. */
static int mutate_headers(struct fz *z, uint8_t *fr, size_t n, int v6)
{
	int damaged = 0;
	uint8_t *ip = fr + PKT_ETH_LEN;
	if (rnd(z) % 8 == 0)
		ip[v6 ? 7 : 8] = (uint8_t)(rnd(z) % 3); /* TTL / hop limit 0..2 */
	if (!v6 && rnd(z) % 16 == 0) {
		ip[6] |= (uint8_t)(rnd(z) % 2 ? 0x20 : 0x01); /* MF, or an offset */
		damaged = 1;
	}
	if (rnd(z) % 10 == 0) {
		size_t off = PKT_ETH_LEN + rnd(z) % (n - PKT_ETH_LEN < 48 ? n - PKT_ETH_LEN : 48);
		fr[off] = (uint8_t)rnd(z);
		damaged = 1;
	}
	return damaged;
}

/* After a rewrite: the IPv4 header checksum always, the UDP checksum of an
 * unfragmented datagram when the input's was valid. */
static void check_out(struct fz *z, const uint8_t *in, size_t n, int in_ok)
{
	struct tfx *f = &z->f;
	if (!in_ok || f->out_len != n || !memcmp(f->out, in, n))
		return;
	const uint8_t *ip = f->out + PKT_ETH_LEN;
	if ((ip[0] >> 4) == 4) {
		assert_true(t_ip4_csum_ok(ip));
		if (ip[6] & 0x3f || ip[7])
			return; /* a fragment: no whole UDP datagram to sum */
	}
	assert_true(t_frame_csum_ok(f->out, f->out_len));
	z->csum_checked++;
}

static void one(struct fz *z)
{
	uint8_t pl[PKT_MAX], fr[PKT_MAX];
	int natt, v6 = rnd(z) % 3 == 0;
	size_t pn = payload(z, pl, &natt);
	const char *src, *dst;
	uint16_t sport, dport;
	pick_addrs(z, v6, &src, &dst, &sport, &dport, natt);
	size_t n = t_udp(fr, src, sport, dst, dport, pl, pn);
	if (!n)
		return;
	v6 = (fr[PKT_ETH_LEN] >> 4) == 6;
	int ok = !mutate_headers(z, fr, n, v6);
	ok = ok && t_frame_csum_ok(fr, n);

	int v = t_run(&z->f, fr, (size_t)n);
	assert_true(v == TC_ACT_OK || v == TC_ACT_SHOT || v == TC_ACT_REDIRECT);
	z->verdicts[v & 7]++;
	if (v != TC_ACT_SHOT)
		check_out(z, fr, n, ok);
	v = t_run_xdp(&z->f, fr, n);
	assert_true(v == XDP_PASS || v == XDP_DROP || v == XDP_REDIRECT);
	z->xdp_verdicts[v & 7]++;
	if (v == XDP_PASS)
		assert_memory_equal(z->f.out, fr, n); /* passed frames untouched */
	if (v == XDP_REDIRECT)
		check_out(z, fr, n, ok);
}

static void random_packets_documented_verdicts(void **state)
{
	(void)state;
	struct fz *z = calloc(1, sizeof(*z));
	assert_non_null(z);
	const char *ns = getenv("IKELB_FUZZ_N"), *seed = getenv("IKELB_FUZZ_SEED");
	long n = ns ? atol(ns) : 20000;
	z->rng = seed ? strtoull(seed, NULL, 0) : 0x1ce1bf00dULL;
	load_corpus(z);
	assert_int_equal(t_setup(&z->f), 0);
	for (long i = 0; i < n; i++)
		one(z);
	printf("bpf_fuzz: %ld datagrams; tc ok %ld shot %ld redirect %ld; xdp pass %ld drop %ld "
	       "redirect %ld; %ld rewritten datagrams checksum-checked\n", n,
	       z->verdicts[TC_ACT_OK], z->verdicts[TC_ACT_SHOT], z->verdicts[TC_ACT_REDIRECT],
	       z->xdp_verdicts[XDP_PASS], z->xdp_verdicts[XDP_DROP], z->xdp_verdicts[XDP_REDIRECT],
	       z->csum_checked);
	/* every outcome occurred, else the generator proves little */
	assert_true(z->verdicts[TC_ACT_OK] && z->verdicts[TC_ACT_SHOT] &&
		    z->verdicts[TC_ACT_REDIRECT]);
	assert_true(z->xdp_verdicts[XDP_PASS] && z->xdp_verdicts[XDP_DROP] &&
		    z->xdp_verdicts[XDP_REDIRECT]);
	assert_true(z->csum_checked > n / 20);
	t_teardown(&z->f);
	for (int i = 0; i < z->nseed; i++)
		free(z->seed[i]);
	free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_packets_documented_verdicts),
	};
	if (t_netns() != 0)
		return 1;
	/* The servers' subnets routed with permanent neighbours, so forwards
	 * and redirects (MAC, TTL, checksum rewrites) happen too. */
	if (system("ip link add ikf0 type veth peer name ikf1 && ip link set ikf0 up && "
		   "ip link set ikf1 up && ip addr add 198.51.100.1/24 dev ikf0 && "
		   "ip -6 addr add 2001:db8:200::1/64 dev ikf0 nodad && "
		   "for i in 11 12 13 21 22 23 31 32 33; do "
		   "ip neigh replace 198.51.100.$i lladdr 02:00:00:00:01:$i dev ikf0 nud permanent; done && "
		   "for i in 11 12 13; do "
		   "ip -6 neigh replace 2001:db8:200::$i lladdr 02:00:00:00:02:$i dev ikf0 nud permanent; "
		   "done && sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1") != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
