/* ikescale: scale figures for bench/run (one JSON object on stdout).
 *
 *  state_bytes  bytes per tracked client: the BPF state maps' key + value
 *               sizes, what the kernel charges per element of an LRU hash
 *               (memlock in /proc/self/fdinfo of maps created here with N
 *               entries, as the engine creates them), how many of N
 *               distinct entries written into such a map it keeps, and the
 *               user-space persist tables' bytes per entry
 *               (lru_bytes_per_entry).
 *  place        time to place N synthetic clients through the user-space
 *               steering path (src/core/steer.h: classify, Maglev pick,
 *               learn flow + half-open SA), then N IKE_AUTHs (established SA).
 *  maglev       table rebuild time for 10, 100 and 1000 servers.
 *
 * Usage: ikescale [--clients N] [--bpf-entries N] [--reps N] */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "ikelb/maps.h"
#include "core/config.h"
#include "ikelb/ike_wire.h"
#include "core/maglev.h"
#include "core/lru_table.h"
#include "core/runtime.h"
#include "core/steer.h"

struct scale_opts {
	uint32_t clients;
	uint32_t bpf_entries;
	int reps;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- memory ------------------------------------------------------------ */

static long long fdinfo_memlock(int fd)
{
	char path[64], line[256];
	long long v = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* What a full LRU hash of n entries really holds: n distinct keys
 * inserted (batches of FILL_BATCH), then counted. The LRU evicts before the
 * map is full (per-CPU free lists), so fewer than n clients fit. */
#define FILL_BATCH 8192u

struct fill_res {
	double bytes;       /* memlock / n, -1 without BPF */
	double memlock_mib; /* after the fill */
	uint32_t kept;      /* of n inserted */
	double seconds;
};

static uint32_t lru_count(int fd, uint32_t key, uint32_t value, uint8_t *kb, uint8_t *vb)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	uint64_t in = 0, out = 0;
	uint32_t total = 0;
	int first = 1;
	for (;;) {
		uint32_t cnt = FILL_BATCH;
		int rc = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, kb, vb, &cnt, &bo);
		total += cnt;
		if (rc < 0)
			break; /* -ENOENT: the end */
		in = out;
		first = 0;
	}
	(void)key;
	(void)value;
	return total;
}

static struct fill_res bpf_lru_fill(uint32_t key, uint32_t value, uint32_t n)
{
	struct fill_res r = { .bytes = -1 };
	int fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "ikescale", key, value, n, NULL);
	uint8_t *kb = calloc(FILL_BATCH, key), *vb = calloc(FILL_BATCH, value);
	if (fd < 0 || !kb || !vb)
		goto out;
	long long m = fdinfo_memlock(fd);
	r.bytes = m < 0 ? -1 : (double)m / n;
	double t0 = now_s();
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	for (uint32_t i = 0; i < n; i += FILL_BATCH) {
		uint32_t cnt = n - i < FILL_BATCH ? n - i : FILL_BATCH;
		for (uint32_t k = 0; k < cnt; k++) {
			uint32_t id = i + k + 1; /* distinct keys: the id in the last bytes */
			memcpy(kb + (size_t)k * key + key - sizeof(id), &id, sizeof(id));
		}
		if (bpf_map_update_batch(fd, kb, vb, &cnt, &bo) < 0)
			break;
	}
	r.seconds = now_s() - t0;
	r.kept = lru_count(fd, key, value, kb, vb);
	m = fdinfo_memlock(fd);
	r.memlock_mib = m < 0 ? -1 : (double)m / (1 << 20);
out:
	free(kb);
	free(vb);
	if (fd >= 0)
		close(fd);
	return r;
}

static double persist_bpe(uint32_t key_len, uint32_t cap)
{
	struct lru_opts o = { .capacity = cap, .key_len = key_len };
	struct lru_table *t = lru_new(&o);
	if (!t)
		return -1;
	double v = lru_bytes_per_entry(t);
	lru_free(t);
	return v;
}

struct map_layout {
	const char *name;
	uint32_t key, value, per_client; /* entries per tracked client */
};

static void report_memory(const struct scale_opts *o)
{
	/* A NAT-T client holds one persistence entry (source-ip), one IKE SA
	 * entry and, in the kernel, one flow entry: its port-500 exchange only
	 * writes the half-open table, the flow is learned on 4500 (measured by
	 * the bench, bench_bpf.count_entries, and tests/system/
	 * test_state_per_client.py). The socket engine relays each UDP flow
	 * through its own upstream socket, so it keeps both (500 and 4500). */
	static const struct map_layout maps[] = {
		{ "persist_map", sizeof(struct persist_key), sizeof(struct state_value), 1 },
		{ "sa_map", sizeof(struct sa_key), sizeof(struct state_value), 1 },
		{ "flow_map", sizeof(struct flow_key), sizeof(struct state_value), 1 },
	};
	static const struct { const char *name; uint32_t key; uint32_t per_client; } utab[] = {
		{ "client", sizeof(struct lru_key_client), 1 },
		{ "spi", sizeof(struct lru_key_spi), 1 },
		{ "flow", sizeof(struct lru_key_flow), 2 },
	};
	double bpf_raw = 0, bpf_kernel = 0, user = 0;
	int bpf_ok = 1;

	printf("\"state_bytes\": {\"bpf_entries\": %u, \"maps\": [", o->bpf_entries);
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		struct fill_res f = bpf_lru_fill(maps[i].key, maps[i].value, o->bpf_entries);
		double k = f.bytes;
		if (k < 0)
			bpf_ok = 0;
		bpf_raw += (double)(maps[i].key + maps[i].value) * maps[i].per_client;
		bpf_kernel += k * maps[i].per_client;
		printf("%s{\"name\": \"%s\", \"key\": %u, \"value\": %u, \"per_client\": %u, "
		       "\"kernel_bytes_per_entry\": %.1f, \"filled\": %u, \"kept\": %u, "
		       "\"fill_seconds\": %.2f, \"memlock_mib_full\": %.1f}", i ? ", " : "",
		       maps[i].name, maps[i].key, maps[i].value, maps[i].per_client, k,
		       o->bpf_entries, f.kept, f.seconds, f.memlock_mib);
	}
	printf("], \"user_tables\": [");
	for (size_t i = 0; i < sizeof(utab) / sizeof(utab[0]); i++) {
		double b = persist_bpe(utab[i].key, o->bpf_entries);
		user += b * utab[i].per_client;
		printf("%s{\"name\": \"%s\", \"key\": %u, \"per_client\": %u, "
		       "\"bytes_per_entry\": %.1f}", i ? ", " : "", utab[i].name, utab[i].key,
		       utab[i].per_client, b);
	}
	printf("], \"bpf_key_value_per_client\": %.0f, \"bpf_kernel_per_client\": %.1f, "
	       "\"user_per_client\": %.1f},\n", bpf_raw, bpf_ok ? bpf_kernel : -1.0, user);
}

/* ---- placement --------------------------------------------------------- */

static const char scale_yaml[] =
	"engine: socket\n"
	"limits: { max_clients: 2097152, max_flows: 4194304, max_halfopen: 2097152 }\n"
	"services:\n"
	"  - name: scale\n"
	"    vip: 203.0.113.10\n"
	"    forwarding: fullnat\n"
	"    persistence: { mode: ike }\n"
	"    health: { type: none }\n"
	"    servers:\n"
	"      - { name: s1, address: 198.51.100.11 }\n"
	"      - { name: s2, address: 198.51.100.12 }\n"
	"      - { name: s3, address: 198.51.100.13 }\n";

static void ike_hdr(uint8_t *b, uint64_t spi_i, uint64_t spi_r, uint8_t exch)
{
	memset(b, 0, IKE_HDR_LEN);
	for (int k = 0; k < 8; k++) {
		b[k] = (uint8_t)(spi_i >> (56 - 8 * k));
		b[8 + k] = (uint8_t)(spi_r >> (56 - 8 * k));
	}
	b[17] = 0x20;
	b[18] = exch;
	b[19] = IKE_FLAG_I;
	b[27] = IKE_HDR_LEN;
}

/* Client i: address 198.18.0.0/15 + (i mod 2^17), port 1024 + i / 2^17:
 * distinct (address, port) flows and SPIs for up to 7.9 M clients. */
static void client_of(uint32_t i, struct ikelb_addr *a, uint16_t *port)
{
	char ip[32];
	uint32_t h = (198u << 24 | 18u << 16) + (i & 0x1ffff);

	snprintf(ip, sizeof(ip), "%u.%u.%u.%u", h >> 24, (h >> 16) & 255, (h >> 8) & 255,
		 h & 255);
	ikelb_addr_parse(ip, a);
	*port = (uint16_t)(1024 + (i >> 17));
}

/* The placement run changes no server, so the runtime never pushes. */
static int no_table(void *ctx, int svc, const uint32_t *table, uint32_t m)
{
	(void)ctx, (void)svc, (void)table, (void)m;
	return -ENOTSUP;
}

static int no_state(void *ctx, int svc, int srv, int state)
{
	(void)ctx, (void)svc, (void)srv, (void)state;
	return -ENOTSUP;
}

static int report_placement(const struct scale_opts *o)
{
	const struct rt_ops ops = { .set_table = no_table, .set_server_state = no_state };
	struct logger log;
	struct runtime rt;
	struct cfg cfg;
	struct cfg_errors errs = { 0 };
	struct steer_opts so = { .max_clients = o->clients + 16,
				 .max_halfopen = o->clients + 16, .max_flows = 2 * o->clients + 16 };
	struct ikelb_addr *addr = calloc(o->clients, sizeof(*addr));
	uint16_t *port = calloc(o->clients, sizeof(*port));
	uint64_t per_server[3] = { 0 }, failed = 0, auth_failed = 0;
	uint8_t pkt[IKE_NON_ESP_MARKER_LEN + IKE_HDR_LEN];
	struct steer_result r;

	memset(&cfg, 0, sizeof(cfg));
	if (!addr || !port || cfg_load_string("ikescale", scale_yaml, strlen(scale_yaml), &cfg,
					      &errs) < 0) {
		for (int i = 0; i < errs.n; i++)
			fprintf(stderr, "ikescale: %s\n", errs.v[i].msg);
		cfg_errors_free(&errs);
		cfg_free(&cfg);
		free(addr);
		free(port);
		return -1;
	}
	log_init(&log, LOG_LVL_ERR);
	struct steer *st = rt_init(&rt, &cfg, &log, &ops) == 0 ? steer_new(&rt, &so) : NULL;
	if (!st) {
		rt_free(&rt);
		cfg_free(&cfg);
		free(addr);
		free(port);
		return -1;
	}
	for (uint32_t i = 0; i < o->clients; i++)
		client_of(i, &addr[i], &port[i]);

	double t0 = now_s();
	for (uint32_t i = 0; i < o->clients; i++) {
		ike_hdr(pkt, 0x1b00000000000000ull | (i + 1), 0, IKE_EXCH_SA_INIT);
		int s = steer_packet(st, 0, &addr[i], port[i], 500, 0, pkt, IKE_HDR_LEN, 1, &r);
		if (s < 0 || s > 2 || r.rule != RULE_NEW)
			failed++;
		else
			per_server[s]++;
	}
	double t_init = now_s() - t0;

	t0 = now_s();
	for (uint32_t i = 0; i < o->clients; i++) {
		memset(pkt, 0, IKE_NON_ESP_MARKER_LEN);
		ike_hdr(pkt + IKE_NON_ESP_MARKER_LEN, 0x1b00000000000000ull | (i + 1),
			0x5eed000000000000ull | (i + 1), IKE_EXCH_AUTH);
		int s = steer_packet(st, 0, &addr[i], (uint16_t)(port[i] + 1), 4500, 1, pkt,
				     sizeof(pkt), 2, &r);
		if (s < 0 || r.rule != RULE_SA)
			auth_failed++;
	}
	double t_auth = now_s() - t0;

	printf("\"place\": {\"clients\": %u, \"path\": \"steer_packet (ike persistence, maglev, "
	       "3 servers)\", \"sa_init_seconds\": %.3f, \"sa_init_per_s\": %.0f, "
	       "\"auth_seconds\": %.3f, \"auth_per_s\": %.0f, \"per_server\": [%llu, %llu, %llu], "
	       "\"not_placed\": %llu, \"auth_not_by_sa\": %llu},\n",
	       o->clients, t_init, o->clients / t_init, t_auth, o->clients / t_auth,
	       (unsigned long long)per_server[0], (unsigned long long)per_server[1],
	       (unsigned long long)per_server[2], (unsigned long long)failed,
	       (unsigned long long)auth_failed);
	steer_free(st);
	rt_free(&rt);
	cfg_free(&cfg);
	free(addr);
	free(port);
	return failed || auth_failed ? -1 : 0;
}

/* ---- Maglev ------------------------------------------------------------ */

static int report_maglev(const struct scale_opts *o)
{
	static const size_t counts[] = { 10, 100, 1000 };
	int rc = 0;

	printf("\"maglev\": [");
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		size_t n = counts[c];
		uint32_t m = maglev_default_size(n);
		struct maglev_backend *b = calloc(n, sizeof(*b));
		uint8_t (*keys)[MAGLEV_KEY_MAX] = calloc(n, MAGLEV_KEY_MAX);
		uint32_t *table = calloc(m, sizeof(*table));
		double t[32];
		int reps = o->reps < 32 ? o->reps : 32;

		if (!b || !keys || !table) {
			free(b); free(keys); free(table);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			char name[32];
			struct ikelb_addr a;
			char ip[32];
			snprintf(name, sizeof(name), "vpn%zu", i);
			snprintf(ip, sizeof(ip), "198.18.%zu.%zu", i / 250, 1 + i % 250);
			ikelb_addr_parse(ip, &a);
			b[i].key = keys[i];
			b[i].key_len = maglev_server_key(name, &a, keys[i], MAGLEV_KEY_MAX);
			b[i].weight = 100;
		}
		for (int r = 0; r < reps; r++) {
			double t0 = now_s();
			if (maglev_build(b, n, m, 0, table) < 0)
				rc = -1;
			t[r] = (now_s() - t0) * 1e3;
		}
		printf("%s{\"servers\": %zu, \"table_size\": %u, \"median_ms\": %.3f, \"reps\": %d}",
		       c ? ", " : "", n, m, median(t, reps), reps);
		free(b);
		free(keys);
		free(table);
	}
	printf("]\n");
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "clients", 1, 0, 'c' }, { "bpf-entries", 1, 0, 'b' }, { "reps", 1, 0, 'r' },
		{ 0, 0, 0, 0 },
	};
	struct scale_opts o = { .clients = 1000000, .bpf_entries = 1000000, .reps = 5 };
	int ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': o.clients = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'b': o.bpf_entries = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': o.reps = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: ikescale [--clients N] [--bpf-entries N] [--reps N]\n");
			return 2;
		}
	}
	if (!o.clients || o.clients > (1u << 22) || o.bpf_entries < 16 ||
	    o.bpf_entries > (1u << 24) || o.reps < 1) {
		fprintf(stderr, "ikescale: bad arguments\n");
		return 2;
	}
	printf("{");
	report_memory(&o);
	int rc = report_placement(&o);
	if (report_maglev(&o) < 0)
		rc = -1;
	printf("}\n");
	return rc < 0 ? 1 : 0;
}
