/* Test fixture for the BPF data path: a private network namespace, a
 * hand-built configuration (no YAML), the engine loaded from the skeleton,
 * BPF_PROG_TEST_RUN on frames built with tests/unit/helpers/pkt.h, and
 * checksum checks computed here from scratch. Static inline: one copy per
 * test binary. */
#ifndef IKELB_BPF_TEST_UTIL_H
#define IKELB_BPF_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>

#include "core/config.h"
#include "engine/bpf_engine.h"
#include "ikelb/hash.h"
#include "ikelb/ike_wire.h"
#include "core/log.h"
#include "core/maglev.h"
#include "helpers/pkt.h"

#define T_NSVC 4
#define T_NSRV 3
#define T_MAGLEV 251

/* Service layout of the fixture. */
enum { SV4 = 0, SIKE = 1, SV6 = 2, SDSR = 3 };

static const char *const t_vip[T_NSVC] = { "203.0.113.10", "203.0.113.20", "2001:db8:100::10",
					   "203.0.113.30" };
static const char *const t_real[T_NSVC][T_NSRV] = {
	{ "198.51.100.11", "198.51.100.12", "198.51.100.13" },
	{ "198.51.100.21", "198.51.100.22", "198.51.100.23" },
	{ "2001:db8:200::11", "2001:db8:200::12", "2001:db8:200::13" },
	{ "198.51.100.31", "198.51.100.32", "198.51.100.33" },
};
#define T_SPI_MASK 0xff00000000000000ULL
#define T_LABEL(i) ((uint64_t)(0x11 + (i)) << 56)
#define T_ESP_MIN(i) (0xc1000000u + ((uint32_t)(i) << 16))
#define T_ESP_MAX(i) (T_ESP_MIN(i) + 0xffffu)

struct tfx {
	struct cfg cfg;
	struct cfg_service svc[T_NSVC];
	struct cfg_server srv[T_NSVC][T_NSRV];
	struct logger log;
	struct bpf_engine *e;
	int prog_fd;
	uint8_t out[PKT_MAX + 64];
	uint32_t out_len;
};

static inline void t_addr(const char *s, struct ikelb_addr *a)
{
	if (ikelb_addr_parse(s, a) != 0) {
		fprintf(stderr, "bad test address %s\n", s);
		abort();
	}
}

/* Every test binary runs in its own network namespace: fib lookups see an
 * empty routing table (deterministic TC_ACT_OK) unless a test adds routes. */
static inline int t_netns(void)
{
	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare(CLONE_NEWNET)");
		return -1;
	}
	return system("ip link set lo up") == 0 ? 0 : -1;
}

static inline void t_cfg_build(struct tfx *f)
{
	cfg_defaults(&f->cfg);
	f->cfg.bpf_pin_dir[0] = 0;
	f->cfg.maglev_seed = 0x1ce1bULL;
	f->cfg.max_clients = 4096;
	f->cfg.max_flows = 4096;
	f->cfg.max_halfopen = 1024;
	f->cfg.services = f->svc;
	f->cfg.nservices = T_NSVC;
	for (int s = 0; s < T_NSVC; s++) {
		struct cfg_service *sv = &f->svc[s];
		cfg_service_defaults(sv);
		snprintf(sv->name, sizeof(sv->name), "svc%d", s);
		t_addr(t_vip[s], &sv->vip);
		sv->maglev_size = T_MAGLEV;
		sv->servers = f->srv[s];
		sv->nservers = T_NSRV;
		for (int i = 0; i < T_NSRV; i++) {
			struct cfg_server *r = &f->srv[s][i];
			cfg_server_defaults(r);
			/* No runtime pushes health verdicts here: servers must
			 * take new clients as the engine programs them. */
			r->init_down = false;
			snprintf(r->name, sizeof(r->name), "vpn%d-%d", s, i);
			t_addr(t_real[s][i], &r->addr);
		}
	}
	f->svc[SIKE].persistence.mode = CFG_PERSIST_IKE;
	f->svc[SIKE].spi_mask = T_SPI_MASK;
	for (int i = 0; i < T_NSRV; i++) {
		f->srv[SIKE][i].has_spi_label = true;
		f->srv[SIKE][i].spi_label = T_LABEL(i);
		f->srv[SIKE][i].has_esp_range = true;
		f->srv[SIKE][i].esp_spi_min = T_ESP_MIN(i);
		f->srv[SIKE][i].esp_spi_max = T_ESP_MAX(i);
	}
	f->svc[SDSR].forwarding = CFG_FWD_DSR;
}

/* Maglev table over the servers that may take new clients (as the daemon
 * builds it: draining and down servers get weight 0). */
static inline int t_maglev(struct tfx *f, int s, const int *usable)
{
	struct maglev_backend b[T_NSRV];
	uint8_t keys[T_NSRV][MAGLEV_KEY_MAX];
	uint32_t table[T_MAGLEV];

	for (int i = 0; i < T_NSRV; i++) {
		b[i].key = keys[i];
		b[i].key_len = maglev_server_key(f->srv[s][i].name, &f->srv[s][i].addr, keys[i],
						 sizeof(keys[i]));
		b[i].weight = usable && !usable[i] ? 0 : f->srv[s][i].weight;
	}
	if (maglev_build(b, T_NSRV, T_MAGLEV, f->cfg.maglev_seed, table) != 0)
		return -1;
	return bpf_engine_set_maglev_servers(f->e, s, table, T_MAGLEV);
}

/* Load the engine for the configuration in f->cfg (t_cfg_build, maybe
 * changed by the test). */
static inline int t_start(struct tfx *f)
{
	if (bpf_engine_open(&f->e, &f->cfg, &f->log) != 0)
		return -1;
	if (bpf_engine_sync(f->e, &f->cfg) != 0)
		return -1;
	for (int s = 0; s < T_NSVC; s++)
		if (t_maglev(f, s, NULL) != 0)
			return -1;
	f->prog_fd = bpf_engine_prog_fd(f->e);
	/* Frames run on lo (ifindex 1): the servers' side, so replies need no
	 * neighbour (tests of the public side and one arm set other roles). */
	return bpf_engine_set_iface_roles(f->e, 1, IFACE_R_SERVERS);
}

static inline int t_setup(struct tfx *f)
{
	memset(f, 0, sizeof(*f));
	log_init(&f->log, LOG_LVL_WARN);
	t_cfg_build(f);
	return t_start(f);
}

static inline void t_teardown(struct tfx *f)
{
	bpf_engine_close(f->e, false);
	f->e = NULL;
}

/* Entries in one of the engine's maps (ksz = its key size). */
static inline size_t t_map_count(struct tfx *f, const char *name, size_t ksz)
{
	uint8_t k[64], n[64];
	size_t c = 0;
	int fd = bpf_engine_map_fd(f->e, name);
	void *prev = NULL;

	assert_true(ksz <= sizeof(k));
	while (bpf_map_get_next_key(fd, prev, n) == 0) {
		memcpy(k, n, ksz);
		prev = k;
		c++;
	}
	return c;
}

/* The flow entry of (client, cport) toward vport of service svc. */
static inline int t_flow_get(struct tfx *f, int svc, const char *client, uint16_t cport,
			     uint16_t vport, struct state_value *v)
{
	struct flow_key k;
	memset(&k, 0, sizeof(k));
	k.svc_id = (uint32_t)svc;
	k.cport = cport;
	k.vport = vport;
	t_addr(client, &k.client);
	return bpf_map_lookup_elem(bpf_engine_map_fd(f->e, "flow_map"), &k, v);
}

/* cmocka fixtures: one engine per test, loaded fresh. */
static inline int t_cm_setup(void **state)
{
	static struct tfx f;
	if (t_setup(&f) != 0)
		return -1;
	*state = &f;
	return 0;
}

static inline int t_cm_teardown(void **state)
{
	t_teardown(*state);
	return 0;
}

/* Run one frame through the program; returns the tc verdict, the output
 * frame is in f->out / f->out_len. ifindex 0: loopback. */
static inline int t_run_if(struct tfx *f, const uint8_t *frame, size_t len, int ifindex)
{
	struct __sk_buff ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.ifindex = (uint32_t)ifindex;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (uint32_t)len,
		    .data_out = f->out, .data_size_out = sizeof(f->out), .repeat = 1);
	if (ifindex) {
		o.ctx_in = &ctx;
		o.ctx_size_in = sizeof(ctx);
	}
	if (bpf_prog_test_run_opts(f->prog_fd, &o) != 0) {
		fprintf(stderr, "test_run: %s\n", strerror(errno));
		return -1000;
	}
	f->out_len = o.data_size_out;
	return (int)o.retval;
}

static inline int t_run(struct tfx *f, const uint8_t *frame, size_t len)
{
	return t_run_if(f, frame, len, 0);
}

/* The same through the XDP program (no ingress device). */
static inline int t_run_xdp(struct tfx *f, const uint8_t *frame, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (uint32_t)len,
		    .data_out = f->out, .data_size_out = sizeof(f->out), .repeat = 1);
	if (bpf_prog_test_run_opts(bpf_engine_xdp_prog_fd(f->e), &o) != 0)
		return -1000;
	f->out_len = o.data_size_out;
	return (int)o.retval;
}

/* ---- checksums, computed independently of the program ---- */

static inline uint32_t t_sum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static inline uint16_t t_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static inline int t_ip4_csum_ok(const uint8_t *ip)
{
	return t_fold(t_sum(ip, (size_t)(ip[0] & 15) * 4, 0)) == 0xffff;
}

/* Route the first service's servers (198.51.100.0/24) through a veth with
 * permanent neighbours, so bpf_fib_lookup answers and the data path takes
 * its routed hop (MACs, TTL, redirect) instead of TC_ACT_OK; down again
 * with t_route_servers(0). */
static inline int t_route_servers(int up)
{
	if (!up)
		return system("ip link del ikr0 2>/dev/null") == 0 ? 0 : -1;
	return system("ip link add ikr0 type veth peer name ikr1 && ip link set ikr0 up && "
		      "ip link set ikr1 up && ip addr add 198.51.100.1/24 dev ikr0 && "
		      "for i in 11 12 13; do ip neigh replace 198.51.100.$i "
		      "lladdr 02:00:00:00:03:$i dev ikr0 nud permanent; done && "
		      "sysctl -qw net.ipv4.conf.all.forwarding=1") == 0 ? 0 : -1;
}

/* t_route_servers, and SV6's servers with permanent neighbours
 * 02:00:00:00:06:1X for 2001:db8:200::1X, and the clients (198.18.0.0/24)
 * behind a gateway 02:00:00:00:03:fe on the same link: every routed hop
 * (dnat v4/v6, replies) gets a FIB answer. Down with t_route_servers(0). */
static inline int t_route_all(void)
{
	if (t_route_servers(1) != 0)
		return -1;
	return system("ip addr add 2001:db8:200::1/64 dev ikr0 nodad && "
		      "for i in 11 12 13; do ip -6 neigh replace 2001:db8:200::$i "
		      "lladdr 02:00:00:00:06:$i dev ikr0 nud permanent; done && "
		      "ip neigh replace 198.51.100.254 lladdr 02:00:00:00:03:fe dev ikr0 "
		      "nud permanent && ip route add 198.18.0.0/24 via 198.51.100.254 && "
		      "sysctl -qw net.ipv6.conf.all.forwarding=1") == 0 ? 0 : -1;
}

/* After a routed hop: the IPv4 header keeps its protocol, has TTL - 1 and
 * a valid checksum. */
static inline int t_routed_ip4_ok(const uint8_t *in, const uint8_t *out)
{
	const uint8_t *a = in + 14, *b = out + 14;

	return b[9] == a[9] && b[8] == (uint8_t)(a[8] - 1) &&
	       t_fold(t_sum(b, (size_t)(b[0] & 15) * 4, 0)) == 0xffff;
}

/* UDP checksum over a whole datagram: ip points at the IP header of the
 * (reassembled) packet, udp at the UDP header, ulen its length. */
static inline int t_udp_csum_ok(const uint8_t *ip, const uint8_t *udp, size_t ulen)
{
	uint32_t s = 0;
	int v6 = (ip[0] >> 4) == 6;

	if (!v6 && udp[6] == 0 && udp[7] == 0)
		return 1; /* no checksum */
	if (v6)
		s = t_sum(ip + 8, 32, 0);
	else
		s = t_sum(ip + 12, 8, 0);
	s += 17 + (uint32_t)ulen;
	s = t_sum(udp, ulen, s);
	return t_fold(s) == 0xffff;
}

/* Whole-frame check for unfragmented frames (Ethernet + IP + UDP). */
static inline int t_frame_csum_ok(const uint8_t *fr, size_t len)
{
	const uint8_t *ip = fr + PKT_ETH_LEN;
	int v6 = (ip[0] >> 4) == 6;
	size_t hl = v6 ? PKT_IP6_LEN : (size_t)(ip[0] & 15) * 4;
	const uint8_t *udp = ip + hl;
	size_t ulen = (size_t)udp[4] << 8 | udp[5];

	if (len < PKT_ETH_LEN + hl + ulen)
		return 0;
	return (v6 || t_ip4_csum_ok(ip)) && t_udp_csum_ok(ip, udp, ulen);
}

static inline void t_frame_dst(const uint8_t *fr, struct ikelb_addr *a)
{
	const uint8_t *ip = fr + PKT_ETH_LEN;
	if ((ip[0] >> 4) == 6) {
		memcpy(a->b, ip + 24, 16);
	} else {
		uint32_t v;
		memcpy(&v, ip + 16, 4);
		ikelb_addr_from_v4(a, v);
	}
}

static inline void t_frame_src(const uint8_t *fr, struct ikelb_addr *a)
{
	const uint8_t *ip = fr + PKT_ETH_LEN;
	if ((ip[0] >> 4) == 6) {
		memcpy(a->b, ip + 8, 16);
	} else {
		uint32_t v;
		memcpy(&v, ip + 12, 4);
		ikelb_addr_from_v4(a, v);
	}
}

/* Server index of service s whose address is the output frame's
 * destination, or -1. */
static inline int t_dst_server(const struct tfx *f, int s)
{
	struct ikelb_addr a;
	t_frame_dst(f->out, &a);
	for (int i = 0; i < T_NSRV; i++)
		if (ikelb_addr_eq(&a, &f->srv[s][i].addr))
			return i;
	return -1;
}

static inline uint64_t t_ctr(struct tfx *f, int s, int idx)
{
	struct ctr c[SVC_CTR__MAX];
	if (bpf_engine_svc_counters(f->e, s, c) != 0)
		return UINT64_MAX;
	return c[idx].packets;
}

static inline uint64_t t_drop(struct tfx *f, int s, int reason)
{
	return t_ctr(f, s, SVC_CTR_DROP_BASE + reason);
}

/* Frame builders. */
static inline size_t t_udp(uint8_t *buf, const char *src, uint16_t sport, const char *dst,
			   uint16_t dport, const void *pl, size_t plen)
{
	return pkt_udp_eth(buf, PKT_MAX, src, sport, dst, dport, pl, plen);
}

static inline size_t t_sa_init(uint8_t *buf, const char *src, uint16_t sport, const char *dst,
			       uint64_t spi_i)
{
	uint8_t pl[PKT_MAX];
	size_t n = pkt_ikev2_sa_init_req(pl, sizeof(pl), spi_i);
	return n ? t_udp(buf, src, sport, dst, 500, pl, n) : 0;
}

/* The same on 4500, behind the non-ESP marker (a reauthentication from
 * a client that already floated). */
static inline size_t t_sa_init_natt(uint8_t *buf, const char *src, uint16_t sport,
				    const char *dst, uint64_t spi_i)
{
	uint8_t pl[PKT_MAX];
	size_t n = pkt_ikev2_sa_init_req(pl + 4, sizeof(pl) - 4, spi_i);
	memset(pl, 0, 4);
	return n ? t_udp(buf, src, sport, dst, 4500, pl, n + 4) : 0;
}

static inline size_t t_auth(uint8_t *buf, const char *src, uint16_t sport, const char *dst,
			    uint64_t spi_i, uint64_t spi_r, size_t enc_len)
{
	uint8_t pl[PKT_MAX];
	size_t n = pkt_ikev2_auth_natt(pl, sizeof(pl), spi_i, spi_r, 1, enc_len);
	return n ? t_udp(buf, src, sport, dst, 4500, pl, n) : 0;
}

/* The server's IKE_SA_INIT response (SPIr chosen) from server srv of
 * service s to the client (client, cport) through the reply path: what
 * lets the client's next message with that SPIr promote its SA. */
static inline int t_init_resp(struct tfx *f, int s, int srv, const char *client, uint16_t cport,
			      uint64_t spi_i, uint64_t spi_r)
{
	uint8_t fr[PKT_MAX], pl[PKT_MAX];
	char real[64];
	size_t pn = pkt_ikev2_sa_init_resp(pl, sizeof(pl), spi_i, spi_r);

	if (!pn || !ikelb_addr_str(&f->srv[s][srv].addr, real, sizeof(real)))
		return -1;
	return t_run(f, fr, t_udp(fr, real, 500, client, cport, pl, pn));
}

static inline size_t t_esp(uint8_t *buf, const char *src, uint16_t sport, const char *dst,
			   uint32_t spi)
{
	uint8_t pl[PKT_MAX];
	size_t n = pkt_esp(pl, sizeof(pl), spi, 1, 64);
	return n ? t_udp(buf, src, sport, dst, 4500, pl, n) : 0;
}

static inline size_t t_keepalive(uint8_t *buf, const char *src, uint16_t sport, const char *dst)
{
	uint8_t pl[1] = { 0xff };
	return t_udp(buf, src, sport, dst, 4500, pl, 1);
}

#endif
