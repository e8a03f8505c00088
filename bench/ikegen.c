/* ikegen: IKE-shaped UDP traffic generator for the benchmarks (bench/run).
 *
 * Every client has its own source address (from a range the caller made
 * local, e.g. `ip route add local 198.18.0.0/16 dev lo`) and two sockets,
 * like a NAT-T client: one toward port 500, one toward 4500. Per client:
 *   1. handshake: an IKE_SA_INIT request on 500 (SPIr = 0, creates state on
 *      a balancer), then an IKE_AUTH request on 4500 after the non-ESP
 *      marker (RFC 3948), paced at --hs-rate;
 *   2. ESP-in-UDP on 4500 (SPI, sequence, filler) of --size bytes of UDP
 *      payload, round robin over the clients in sendmmsg batches, at a fixed
 *      rate (token bucket) or as fast as possible (--rate 0).
 * The client id travels in the packets (SPIi low 32 bits = id + 1, ESP SPI =
 * IKEGEN_ESP_SPI_BASE + id) so a sink can tell clients apart even behind a
 * full-NAT proxy that hides their addresses (bench/ikesink.c).
 *
 * Bounded: the ESP phase stops at --count packets or --duration seconds,
 * whichever comes first. Prints `ESP-START` and `ESP-END` lines (the harness
 * samples CPU counters between them), then one JSON summary line. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ikelb/ike_wire.h"

#define IKEGEN_ESP_SPI_BASE 0x100000u
#define IKEGEN_MAX_DST 16
#define IKEGEN_MAX_CLIENTS 65536
#define IKEGEN_MAX_BATCH 64
#define IKEGEN_MAX_SIZE 1472
/* The SPIr of client id's IKE_AUTH: what `ikesink --answer` chose. */
#define IKEGEN_SPI_R(id) (0x5eed000000000000ull | ((uint64_t)(id) + 1))
#define IKEGEN_HS_SIZE 256   /* handshake message size: a small IKE_SA_INIT */
#define IKEGEN_ANSWER_WAIT_S 1.0 /* bound on waiting for IKE_SA_INIT responses */

struct gen_opts {
	struct in_addr dst[IKEGEN_MAX_DST];
	int ndst;
	uint16_t port500, port4500;
	struct in_addr src_base;
	uint32_t src_count;
	uint32_t clients;
	uint32_t size;
	uint64_t rate;       /* ESP packets/s, 0 = saturation */
	uint64_t hs_rate;    /* handshake packets/s */
	uint64_t count;      /* ESP packet bound */
	double duration;     /* ESP phase bound, seconds */
	uint32_t batch;
	uint32_t tag;        /* SPIi high 32 bits: keeps runs apart in SA tables */
};

struct gen_client {
	int fd500, fd4500;
	uint32_t seq;
	int answered;        /* a datagram (the IKE_SA_INIT response) came back on 500 */
};

struct gen_stats {
	uint64_t hs_sent, hs_answered, esp_sent, send_err;
	double esp_elapsed;
};

struct gen {
	struct gen_opts o;
	struct gen_client *c;
	struct gen_stats st;
	volatile sig_atomic_t *stop;
};

static volatile sig_atomic_t gen_stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	gen_stop_flag = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* RFC 7296 §3.1 header; the body is filler the balancers never parse. */
static size_t ike_msg(uint8_t *buf, uint64_t spi_i, uint64_t spi_r, uint8_t exch,
		      uint32_t msg_id, size_t len)
{
	memset(buf, 0, len);
	put_be64(buf, spi_i);
	put_be64(buf + 8, spi_r);
	buf[16] = 33;             /* next payload: SA (not parsed by anyone here) */
	buf[17] = 0x20;           /* IKEv2 */
	buf[18] = exch;
	buf[19] = IKE_FLAG_I;
	put_be32(buf + 20, msg_id);
	put_be32(buf + 24, (uint32_t)len);
	return len;
}

static uint64_t client_spi_i(const struct gen *g, uint32_t id)
{
	return ((uint64_t)g->o.tag << 32) | (uint64_t)(id + 1);
}

static int open_client_socket(struct in_addr src, struct in_addr dst, uint16_t dport)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = src };
	struct sockaddr_in da = { .sin_family = AF_INET, .sin_addr = dst,
				  .sin_port = htons(dport) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int sz = 1 << 20;

	if (fd < 0)
		return -1;
	/* A roomy send buffer keeps sendmmsg from blocking on every batch. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    connect(fd, (struct sockaddr *)&da, sizeof(da)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int gen_open(struct gen *g)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)g->o.clients * 2 + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
		rl.rlim_cur = need;
		if (rl.rlim_max < need)
			rl.rlim_max = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			fprintf(stderr, "ikegen: need %lu file descriptors: %s\n",
				(unsigned long)need, strerror(errno));
			return -1;
		}
	}
	g->c = calloc(g->o.clients, sizeof(*g->c));
	if (!g->c)
		return -1;
	for (uint32_t i = 0; i < g->o.clients; i++) {
		struct in_addr src = { .s_addr = htonl(ntohl(g->o.src_base.s_addr) +
						       i % g->o.src_count) };
		struct in_addr dst = g->o.dst[i % (uint32_t)g->o.ndst];

		g->c[i].fd500 = open_client_socket(src, dst, g->o.port500);
		g->c[i].fd4500 = open_client_socket(src, dst, g->o.port4500);
		if (g->c[i].fd500 < 0 || g->c[i].fd4500 < 0) {
			fprintf(stderr, "ikegen: client %u socket from %s: %s (is the source "
				"range local?)\n", i, inet_ntoa(src), strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void gen_close(struct gen *g)
{
	if (!g->c)
		return;
	for (uint32_t i = 0; i < g->o.clients; i++) {
		if (g->c[i].fd500 > 0)
			close(g->c[i].fd500);
		if (g->c[i].fd4500 > 0)
			close(g->c[i].fd4500);
	}
	free(g->c);
	g->c = NULL;
}

static void sleep_until(double t)
{
	struct timespec ts = { .tv_sec = (time_t)t,
			       .tv_nsec = (long)((t - (double)(time_t)t) * 1e9) };

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static void send_one(struct gen *g, int fd, const uint8_t *buf, size_t len)
{
	if (send(fd, buf, len, 0) == (ssize_t)len)
		g->st.hs_sent++;
	else
		g->st.send_err++;
}

/* Like a real initiator, send IKE_AUTH only after the IKE_SA_INIT response
 * (sinks answer with --answer): a dnat balancer records the server's SPIr
 * from it, and only an IKE_AUTH carrying that SPIr establishes state.
 * Bounded: sinks that do not answer cost IKEGEN_ANSWER_WAIT_S once. */
static void gen_wait_answers(struct gen *g)
{
	uint8_t buf[512];
	double end = now_s() + IKEGEN_ANSWER_WAIT_S;

	while (g->st.hs_answered < g->o.clients && !*g->stop && now_s() < end) {
		for (uint32_t i = 0; i < g->o.clients; i++) {
			if (!g->c[i].answered &&
			    recv(g->c[i].fd500, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
				g->c[i].answered = 1;
				g->st.hs_answered++;
			}
		}
		sleep_until(now_s() + 0.001);
	}
}

/* IKE_SA_INIT on 500, then IKE_AUTH on 4500: what a balancer needs to see
 * before the ESP of a NAT-T client. Paced so no queue overflows. */
static void gen_handshake(struct gen *g)
{
	uint8_t buf[IKE_NON_ESP_MARKER_LEN + IKEGEN_HS_SIZE];
	double t0 = now_s();
	uint64_t n = 0;

	for (uint32_t i = 0; i < g->o.clients && !*g->stop; i++) {
		uint64_t spi_i = client_spi_i(g, i);

		send_one(g, g->c[i].fd500, buf,
			 ike_msg(buf, spi_i, 0, IKE_EXCH_SA_INIT, 0, IKEGEN_HS_SIZE));
		sleep_until(t0 + (double)++n / (double)g->o.hs_rate);
	}
	gen_wait_answers(g);
	t0 = now_s();
	n = 0;
	for (uint32_t i = 0; i < g->o.clients && !*g->stop; i++) {
		uint64_t spi_i = client_spi_i(g, i);

		memset(buf, 0, IKE_NON_ESP_MARKER_LEN);
		ike_msg(buf + IKE_NON_ESP_MARKER_LEN, spi_i, IKEGEN_SPI_R(i),
			IKE_EXCH_AUTH, 1, IKEGEN_HS_SIZE);
		send_one(g, g->c[i].fd4500, buf, sizeof(buf));
		sleep_until(t0 + (double)++n / (double)g->o.hs_rate);
	}
}

struct esp_batch {
	uint8_t buf[IKEGEN_MAX_BATCH][IKEGEN_MAX_SIZE];
	struct iovec iov[IKEGEN_MAX_BATCH];
	struct mmsghdr msg[IKEGEN_MAX_BATCH];
};

static void esp_batch_init(struct esp_batch *b, uint32_t size)
{
	memset(b->msg, 0, sizeof(b->msg));
	for (int k = 0; k < IKEGEN_MAX_BATCH; k++) {
		memset(b->buf[k], 0xa5, size);
		b->iov[k].iov_base = b->buf[k];
		b->iov[k].iov_len = size;
		b->msg[k].msg_hdr.msg_iov = &b->iov[k];
		b->msg[k].msg_hdr.msg_iovlen = 1;
	}
}

/* One sendmmsg of n ESP packets from client i. */
static void esp_send(struct gen *g, struct esp_batch *b, uint32_t i, uint32_t n)
{
	struct gen_client *c = &g->c[i];

	for (uint32_t k = 0; k < n; k++) {
		put_be32(b->buf[k], IKEGEN_ESP_SPI_BASE + i);
		put_be32(b->buf[k] + 4, ++c->seq);
	}
	uint32_t done = 0;
	while (done < n) {
		int r = sendmmsg(c->fd4500, b->msg + done, n - done, 0);
		if (r <= 0) {
			if (r < 0 && errno == EINTR && !*g->stop)
				continue;
			g->st.send_err += n - done; /* ENOBUFS etc: counted, not retried */
			return;
		}
		done += (uint32_t)r;
	}
	g->st.esp_sent += n;
}

static void gen_esp(struct gen *g)
{
	static struct esp_batch b; /* ~94 KiB: keep it off the stack */
	double t0 = now_s(), end = t0 + g->o.duration;
	uint32_t i = 0;

	esp_batch_init(&b, g->o.size);
	while (!*g->stop && g->st.esp_sent < g->o.count) {
		double t = now_s();
		uint64_t left = g->o.count - g->st.esp_sent;
		uint32_t n = g->o.batch < left ? g->o.batch : (uint32_t)left;

		if (t >= end)
			break;
		if (g->o.rate) {
			/* Token bucket with no burst allowance beyond one batch:
			 * packet k may leave at t0 + k / rate. */
			double due = t0 + (double)g->st.esp_sent / (double)g->o.rate;
			if (due > t) {
				sleep_until(due < end ? due : end);
				continue;
			}
		}
		esp_send(g, &b, i, n);
		i = (i + 1) % g->o.clients;
	}
	g->st.esp_elapsed = now_s() - t0;
}

static int parse_dsts(struct gen_opts *o, const char *s)
{
	char tmp[1024];
	char *save = NULL;

	snprintf(tmp, sizeof(tmp), "%s", s);
	for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->ndst >= IKEGEN_MAX_DST || inet_pton(AF_INET, t, &o->dst[o->ndst]) != 1)
			return -1;
		o->ndst++;
	}
	return o->ndst ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ikegen --dst A[,B...] --src-base ADDR [--src-count N] [--clients N]\n"
		"              [--size BYTES] [--rate PPS|0] [--count N] [--duration S]\n"
		"              [--batch N] [--hs-rate PPS] [--port500 P] [--port4500 P] [--tag X]\n"
		"clients are spread over the --dst addresses round robin (for plain routing);\n"
		"--rate 0 sends as fast as possible. Output: ESP-START/ESP-END lines, then JSON.\n");
}

static int parse_opts(struct gen_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dst", 1, 0, 'd' }, { "src-base", 1, 0, 's' }, { "src-count", 1, 0, 'n' },
		{ "clients", 1, 0, 'c' }, { "size", 1, 0, 'z' }, { "rate", 1, 0, 'r' },
		{ "count", 1, 0, 'k' }, { "duration", 1, 0, 't' }, { "batch", 1, 0, 'b' },
		{ "hs-rate", 1, 0, 'h' }, { "port500", 1, 0, '5' }, { "port4500", 1, 0, '4' },
		{ "tag", 1, 0, 'g' }, { 0, 0, 0, 0 },
	};
	int ch;

	*o = (struct gen_opts){ .port500 = 500, .port4500 = 4500, .src_count = 256,
				.clients = 512, .size = 128, .rate = 50000, .hs_rate = 20000,
				.count = 1000000, .duration = 5.0, .batch = 16 };
	o->tag = (uint32_t)getpid() ^ (uint32_t)time(NULL);
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'd': if (parse_dsts(o, optarg) < 0) return -1; break;
		case 's': if (inet_pton(AF_INET, optarg, &o->src_base) != 1) return -1; break;
		case 'n': o->src_count = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'c': o->clients = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'z': o->size = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'r': o->rate = strtoull(optarg, NULL, 0); break;
		case 'k': o->count = strtoull(optarg, NULL, 0); break;
		case 't': o->duration = strtod(optarg, NULL); break;
		case 'b': o->batch = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'h': o->hs_rate = strtoull(optarg, NULL, 0); break;
		case '5': o->port500 = (uint16_t)strtoul(optarg, NULL, 0); break;
		case '4': o->port4500 = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'g': o->tag = (uint32_t)strtoul(optarg, NULL, 0); break;
		default: return -1;
		}
	}
	if (!o->ndst || !o->src_base.s_addr || !o->src_count || !o->clients ||
	    o->clients > IKEGEN_MAX_CLIENTS || o->size < ESP_HDR_LEN || o->size > IKEGEN_MAX_SIZE ||
	    !o->batch || o->batch > IKEGEN_MAX_BATCH || !o->hs_rate || o->duration <= 0 ||
	    o->duration > 3600 || !o->port500 || !o->port4500)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct gen g = { .stop = &gen_stop_flag };
	struct sigaction sa = { .sa_handler = on_signal };

	if (parse_opts(&g.o, argc, argv) < 0) {
		usage();
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (gen_open(&g) < 0) {
		gen_close(&g);
		return 1;
	}
	gen_handshake(&g);
	/* Let the balancer settle its state before the timed phase. */
	sleep_until(now_s() + 0.2);
	printf("ESP-START\n");
	fflush(stdout);
	gen_esp(&g);
	printf("ESP-END\n");
	printf("{\"clients\": %u, \"sources\": %u, \"size\": %u, \"rate\": %llu, "
	       "\"hs_sent\": %llu, \"hs_answered\": %llu, \"esp_sent\": %llu, \"send_errors\": %llu, "
	       "\"esp_elapsed_s\": %.6f, \"esp_pps\": %.1f, \"tag\": %u}\n",
	       g.o.clients, g.o.src_count < g.o.clients ? g.o.src_count : g.o.clients, g.o.size,
	       (unsigned long long)g.o.rate, (unsigned long long)g.st.hs_sent,
	       (unsigned long long)g.st.hs_answered,
	       (unsigned long long)g.st.esp_sent, (unsigned long long)g.st.send_err,
	       g.st.esp_elapsed,
	       g.st.esp_elapsed > 0 ? (double)g.st.esp_sent / g.st.esp_elapsed : 0.0, g.o.tag);
	fflush(stdout);
	gen_close(&g);
	return gen_stop_flag ? 1 : 0;
}
