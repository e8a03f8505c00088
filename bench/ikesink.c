/* ikesink: one benchmark real server (bench/run). Receives on the given UDP
 * ports with recvmmsg and counts, per client id, what arrived; the harness
 * merges the sinks' JSON files and counts port-following violations
 * (clients seen at more than one sink).
 *
 * The client id is read from the packet (bench/ikegen.c puts it there), with
 * the shared classifier include/ikelb/ike_wire.h: IKE (500, or 4500 after the
 * non-ESP marker): SPIi low 32 bits - 1; ESP-in-UDP: SPI - IKEGEN_ESP_SPI_BASE.
 * Source addresses are not used: a full-NAT proxy (nginx, ikelb's socket
 * engine) replaces them with its own.
 *
 * With --answer it answers every IKEv2 IKE_SA_INIT request (first port) with
 * a bare IKE_SA_INIT response whose SPIr is the one bench/ikegen.c puts in
 * its IKE_AUTH (IKEGEN_SPI_R): the server's choice a dnat balancer records
 * from the response, so the IKE_AUTH establishes the client's state as a
 * real server's answer would (bench/bench_bpf.py counts it per client).
 *
 * Runs until SIGTERM/SIGINT or --duration, then writes --out (JSON). Prints
 * READY once its sockets are bound. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ikelb/ike_wire.h"

#define SINK_ESP_SPI_BASE 0x100000u /* IKEGEN_ESP_SPI_BASE */
#define SINK_MAX_PORTS 8
#define SINK_BATCH 64
#define SINK_BUF 2048
#define SINK_SPI_R_BASE 0x5eed000000000000ull /* IKEGEN_SPI_R(id) = base | (id + 1) */
#define SINK_IKE_HDR 28

struct sink_counts {
	uint64_t packets, bytes, ike500, ike4500, esp, keepalive, bad, unknown_client, answered;
	uint64_t first_esp_ns, last_esp_ns;
};

struct sink {
	char name[64];
	const char *out;
	int fd[SINK_MAX_PORTS];
	uint16_t port[SINK_MAX_PORTS];
	int nports;
	uint32_t max_clients;
	int answer;              /* --answer: IKE_SA_INIT responses */
	uint64_t *per_client;    /* all packets of client id */
	uint64_t *per_client_esp;
	struct sink_counts c;
};

static volatile sig_atomic_t sink_stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	sink_stop_flag = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int sink_bind(struct sink *s, const char *addr)
{
	struct in_addr a;

	if (inet_pton(AF_INET, addr, &a) != 1)
		return -1;
	for (int i = 0; i < s->nports; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = a,
					  .sin_port = htons(s->port[i]) };
		int sz = 16 << 20, one = 1;
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -1;
		/* A deep queue so a slow sink is not what the benchmark measures
		 * (FORCE: root may exceed rmem_max). */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			fprintf(stderr, "ikesink: bind %s:%u: %s\n", addr, s->port[i],
				strerror(errno));
			close(fd);
			return -1;
		}
		s->fd[i] = fd;
	}
	return 0;
}

static void count_client(struct sink *s, uint64_t id, int esp)
{
	if (id >= s->max_clients) {
		s->c.unknown_client++;
		return;
	}
	s->per_client[id]++;
	if (esp)
		s->per_client_esp[id]++;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* The bare IKE_SA_INIT response of --answer, back to where the request came from. */
static void sink_answer(struct sink *s, int fd, const struct ike_info *info,
			const struct sockaddr_in *from)
{
	uint8_t r[SINK_IKE_HDR] = { 0 };

	put_be64(r, info->spi_i);
	put_be64(r + 8, SINK_SPI_R_BASE | (info->spi_i & 0xffffffffu));
	r[17] = 0x20;            /* IKEv2 */
	r[18] = IKE_EXCH_SA_INIT;
	r[19] = IKE_FLAG_R;
	r[27] = SINK_IKE_HDR;    /* length; message id 0, no payloads */
	if (sendto(fd, r, sizeof(r), 0, (const struct sockaddr *)from, sizeof(*from)) ==
	    (ssize_t)sizeof(r))
		s->c.answered++;
}

static void sink_packet(struct sink *s, int i, const uint8_t *p, uint32_t len,
			const struct sockaddr_in *from)
{
	uint16_t port = s->port[i];
	struct ike_info info;
	/* The first port has bare IKE framing (500), the others RFC 3948
	 * (4500), so tests on high ports keep the same meaning. */
	int cls = ike_classify(p, p + len, len, port != s->port[0], &info);

	s->c.packets++;
	s->c.bytes += len;
	switch (cls) {
	case IKE_C_IKEV2:
	case IKE_C_IKEV1:
		if (info.marker)
			s->c.ike4500++;
		else
			s->c.ike500++;
		count_client(s, (info.spi_i & 0xffffffffu) - 1, 0);
		if (s->answer && i == 0 && ike_is_new_sa(&info) && cls == IKE_C_IKEV2)
			sink_answer(s, s->fd[i], &info, from);
		break;
	case IKE_C_ESP: {
		uint64_t t = now_ns();
		if (!s->c.first_esp_ns)
			s->c.first_esp_ns = t;
		s->c.last_esp_ns = t;
		s->c.esp++;
		count_client(s, info.esp_spi >= SINK_ESP_SPI_BASE
				 ? info.esp_spi - SINK_ESP_SPI_BASE : UINT64_MAX, 1);
		break;
	}
	case IKE_C_KEEPALIVE:
		s->c.keepalive++;
		break;
	default:
		s->c.bad++;
	}
}

/* Drain one socket: recvmmsg until it would block. */
static void sink_drain(struct sink *s, int i)
{
	static uint8_t bufs[SINK_BATCH][SINK_BUF];
	struct iovec iov[SINK_BATCH];
	struct mmsghdr msg[SINK_BATCH];
	struct sockaddr_in from[SINK_BATCH];

	for (;;) {
		memset(msg, 0, sizeof(msg));
		for (int k = 0; k < SINK_BATCH; k++) {
			iov[k].iov_base = bufs[k];
			iov[k].iov_len = SINK_BUF;
			msg[k].msg_hdr.msg_iov = &iov[k];
			msg[k].msg_hdr.msg_iovlen = 1;
			msg[k].msg_hdr.msg_name = &from[k];
			msg[k].msg_hdr.msg_namelen = sizeof(from[k]);
		}
		int n = recvmmsg(s->fd[i], msg, SINK_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int k = 0; k < n; k++)
			sink_packet(s, i, bufs[k], msg[k].msg_len, &from[k]);
	}
}

static int sink_write(const struct sink *s)
{
	json_t *root = json_object(), *clients = json_object(), *esp = json_object();
	char tmp[4096];

	for (uint32_t id = 0; id < s->max_clients; id++) {
		char key[16];
		if (!s->per_client[id])
			continue;
		snprintf(key, sizeof(key), "%u", id);
		json_object_set_new(clients, key, json_integer((json_int_t)s->per_client[id]));
		if (s->per_client_esp[id])
			json_object_set_new(esp, key, json_integer((json_int_t)s->per_client_esp[id]));
	}
	json_object_set_new(root, "name", json_string(s->name));
	json_object_set_new(root, "packets", json_integer((json_int_t)s->c.packets));
	json_object_set_new(root, "bytes", json_integer((json_int_t)s->c.bytes));
	json_object_set_new(root, "ike500", json_integer((json_int_t)s->c.ike500));
	json_object_set_new(root, "ike4500", json_integer((json_int_t)s->c.ike4500));
	json_object_set_new(root, "esp", json_integer((json_int_t)s->c.esp));
	json_object_set_new(root, "keepalive", json_integer((json_int_t)s->c.keepalive));
	json_object_set_new(root, "bad", json_integer((json_int_t)s->c.bad));
	json_object_set_new(root, "unknown_client", json_integer((json_int_t)s->c.unknown_client));
	json_object_set_new(root, "answered", json_integer((json_int_t)s->c.answered));
	json_object_set_new(root, "first_esp_ns", json_integer((json_int_t)s->c.first_esp_ns));
	json_object_set_new(root, "last_esp_ns", json_integer((json_int_t)s->c.last_esp_ns));
	json_object_set_new(root, "clients", clients);
	json_object_set_new(root, "clients_esp", esp);
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->out);
	int rc = json_dump_file(root, tmp, JSON_COMPACT);
	json_decref(root);
	if (rc < 0 || rename(tmp, s->out) < 0) {
		fprintf(stderr, "ikesink: cannot write %s\n", s->out);
		return -1;
	}
	return 0;
}

static int parse_ports(struct sink *s, const char *arg)
{
	char tmp[256];
	char *save = NULL;

	snprintf(tmp, sizeof(tmp), "%s", arg);
	for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned long p = strtoul(t, NULL, 0);
		if (s->nports >= SINK_MAX_PORTS || !p || p > 65535)
			return -1;
		s->port[s->nports++] = (uint16_t)p;
	}
	return s->nports ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: ikesink --bind ADDR --out FILE [--ports 500,4500] [--name N]\n"
			"               [--duration S] [--max-clients N] [--answer]\n"
			"the first port is read as IKE (500), the others as NAT-T (4500)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "bind", 1, 0, 'b' }, { "out", 1, 0, 'o' }, { "ports", 1, 0, 'p' },
		{ "name", 1, 0, 'n' }, { "duration", 1, 0, 't' }, { "max-clients", 1, 0, 'm' },
		{ "answer", 0, 0, 'a' },
		{ 0, 0, 0, 0 },
	};
	struct sink s = { .max_clients = 65536 };
	struct sigaction sa = { .sa_handler = on_signal };
	const char *bind_addr = NULL;
	double duration = 600;
	int ch;

	snprintf(s.name, sizeof(s.name), "sink");
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'b': bind_addr = optarg; break;
		case 'o': s.out = optarg; break;
		case 'p': if (parse_ports(&s, optarg) < 0) { usage(); return 2; } break;
		case 'n': snprintf(s.name, sizeof(s.name), "%s", optarg); break;
		case 't': duration = strtod(optarg, NULL); break;
		case 'm': s.max_clients = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'a': s.answer = 1; break;
		default: usage(); return 2;
		}
	}
	if (!s.nports)
		parse_ports(&s, "500,4500");
	if (!bind_addr || !s.out || duration <= 0 || duration > 86400 || !s.max_clients ||
	    s.max_clients > (1u << 24)) {
		usage();
		return 2;
	}
	s.per_client = calloc(s.max_clients, sizeof(*s.per_client));
	s.per_client_esp = calloc(s.max_clients, sizeof(*s.per_client_esp));
	if (!s.per_client || !s.per_client_esp || sink_bind(&s, bind_addr) < 0)
		return 1;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	printf("READY\n");
	fflush(stdout);

	struct pollfd pfd[SINK_MAX_PORTS];
	uint64_t end = now_ns() + (uint64_t)(duration * 1e9);
	for (int i = 0; i < s.nports; i++)
		pfd[i] = (struct pollfd){ .fd = s.fd[i], .events = POLLIN };
	while (!sink_stop_flag && now_ns() < end) {
		if (poll(pfd, (nfds_t)s.nports, 100) <= 0)
			continue;
		for (int i = 0; i < s.nports; i++)
			if (pfd[i].revents & POLLIN)
				sink_drain(&s, i);
	}
	/* Whatever is still queued was delivered: count it. */
	for (int i = 0; i < s.nports; i++)
		sink_drain(&s, i);
	int rc = sink_write(&s) < 0 ? 1 : 0;
	for (int i = 0; i < s.nports; i++)
		close(s.fd[i]);
	free(s.per_client);
	free(s.per_client_esp);
	return rc;
}
