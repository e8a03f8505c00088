/* Tests for the doctor's analysis (src/doctor) on synthetic packets: SA
 * reconstruction (roles, retransmissions, COOKIE rounds, NAT-T, refusals),
 * every finding kind with its servers, IPv4 and IPv6 fragments, ESP by
 * SPI, hostile input, and the `ikelb doctor` command line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "doctor/doctor.h"
#include "helpers/pkt.h"
#include "ikelb/ike_payload.h"

#define C1 "203.0.113.101"
#define C2 "203.0.113.102"
#define LB "198.51.100.1"
#define S1 "198.51.100.11"
#define S2 "198.51.100.12"

static uint8_t buf[PKT_MAX], msg[PKT_MAX];

static void feed_udp(struct doc *d, double ts, const char *src, uint16_t sp, const char *dst,
		     uint16_t dp, const uint8_t *pl, size_t n)
{
	size_t len = pkt_udp_ip(buf, sizeof(buf), src, sp, dst, dp, pl, n);
	assert_true(len > 0);
	doc_feed_ip(d, buf, len, ts);
}

/* IKE_SA_INIT response: SPIr, then one notify of type `notify` (0: none). */
static size_t init_resp(uint64_t spi_i, uint64_t spi_r, int notify)
{
	if (!notify)
		return pkt_ikev2_sa_init_resp(msg, sizeof(msg), spi_i, spi_r);
	size_t len = IKE_HDR_LEN + 8 + 8;
	pkt_ike_hdr(msg, spi_i, notify == IKE_NOTIFY_COOKIE ? 0 : spi_r, IKE_PL_NOTIFY, 0x20,
		    IKE_EXCH_SA_INIT, IKE_FLAG_R, 0, (uint32_t)len);
	uint8_t *p = msg + IKE_HDR_LEN;
	memset(p, 0, 16);
	p[3] = 16;                     /* payload length */
	p[6] = (uint8_t)(notify >> 8); /* protocol 0, SPI size 0, type */
	p[7] = (uint8_t)notify;
	return len;
}

static void init(struct doc *d, double ts, const char *cli, uint16_t port, const char *srv,
		 uint64_t spi)
{
	size_t n = pkt_ikev2_sa_init_req(msg, sizeof(msg), spi);
	feed_udp(d, ts, cli, port, srv, 500, msg, n);
}

static void answer(struct doc *d, double ts, const char *srv, const char *cli, uint16_t port,
		   uint64_t spi, int notify)
{
	size_t n = init_resp(spi, spi + 1, notify);
	feed_udp(d, ts, srv, 500, cli, port, msg, n);
}

static void auth(struct doc *d, double ts, const char *cli, const char *srv, uint64_t spi,
		 bool response)
{
	size_t n = pkt_ikev2_auth_natt(msg, sizeof(msg), spi, spi + 1, 1, 64);
	if (response)
		msg[4 + 19] = IKE_FLAG_R;
	if (response)
		feed_udp(d, ts, srv, 4500, cli, 4500, msg, n);
	else
		feed_udp(d, ts, cli, 4500, srv, 4500, msg, n);
}

/* A whole IKE SA: INIT, answer, AUTH, answer. */
static void full_sa(struct doc *d, double ts, const char *cli, uint16_t port, const char *srv,
		    uint64_t spi)
{
	init(d, ts, cli, port, srv, spi);
	answer(d, ts + 0.01, srv, cli, port, spi, 0);
	auth(d, ts + 0.02, cli, srv, spi, false);
	auth(d, ts + 0.03, cli, srv, spi, true);
}

static struct doc_report analyze(struct doc *d)
{
	struct doc_report r;
	assert_int_equal(doc_analyze(d, &r), 0);
	return r;
}

static const struct doc_finding *find(const struct doc_report *r, const char *kind)
{
	for (size_t i = 0; i < r->nfindings; i++)
		if (!strcmp(r->findings[i].kind, kind))
			return &r->findings[i];
	return NULL;
}

static bool has_addr(const struct ikelb_addr *set, int n, const char *s)
{
	struct ikelb_addr a;
	assert_int_equal(ikelb_addr_parse(s, &a), 0);
	for (int i = 0; i < n; i++)
		if (ikelb_addr_eq(&set[i], &a))
			return true;
	return false;
}

static json_int_t ev(const struct doc_finding *f, const char *key)
{
	json_t *v = json_object_get(f->evidence, key);
	assert_non_null(v);
	return json_integer_value(v);
}

static void healthy_sa_and_counts(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	full_sa(d, 100, C1, 500, S1, 0x1111);
	full_sa(d, 101, C2, 500, S2, 0x2222);
	size_t n = pkt_esp(msg, sizeof(msg), 0xc0ffee01, 1, 40);
	feed_udp(d, 102, C1, 4500, S1, 4500, msg, n);
	feed_udp(d, 102.1, C1, 4500, S1, 4500, msg, n);
	n = pkt_natt_keepalive(msg, sizeof(msg));
	feed_udp(d, 103, C1, 4500, S1, 4500, msg, n);
	struct doc_report r = analyze(d);
	assert_int_equal(r.nfindings, 1);
	const struct doc_finding *f = find(&r, "healthy");
	assert_non_null(f);
	assert_int_equal(f->severity, DOC_INFO);
	assert_true(has_addr(f->servers, f->nservers, S1) && has_addr(f->servers, f->nservers, S2));
	assert_true(has_addr(f->clients, f->nclients, C1) && !has_addr(f->clients, f->nclients, S1));
	assert_int_equal(ev(f, "nat_t_sas"), 2);
	assert_int_equal(r.counts.sas, 2);
	assert_int_equal(r.counts.established, 2);
	assert_int_equal(r.counts.servers, 2);
	assert_int_equal(r.counts.clients, 2);
	assert_int_equal(r.counts.esp, 2);
	assert_int_equal(r.counts.esp_spis, 1);
	assert_int_equal(r.counts.keepalive, 1);
	assert_int_equal(r.counts.malformed, 0);
	assert_int_equal(doc_exit_status(&r), 0);
	doc_report_free(&r);
	doc_free(d);
}

static void retransmits_and_cookie_rounds(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	init(d, 10, C1, 500, S1, 0x33);
	init(d, 12, C1, 500, S1, 0x33);                 /* retransmission */
	answer(d, 12.1, S1, C1, 500, 0x33, IKE_NOTIFY_COOKIE);
	init(d, 12.2, C1, 500, S1, 0x33);               /* new round, with the cookie */
	answer(d, 12.3, S1, C1, 500, 0x33, 0);
	auth(d, 12.4, C1, S1, 0x33, false);
	auth(d, 14.4, C1, S1, 0x33, false);             /* retransmission */
	auth(d, 14.5, C1, S1, 0x33, true);
	struct doc_report r = analyze(d);
	const struct doc_finding *f = find(&r, "healthy");
	assert_non_null(f);
	assert_int_equal(ev(f, "retransmissions"), 2);
	assert_int_equal(ev(f, "cookie_rounds"), 1);
	assert_int_equal(r.counts.established, 1);
	doc_report_free(&r);
	doc_free(d);
}

/* Eight clients behind the balancer's address, four at a time half-open
 * at each server, COOKIE challenges: source NAT and per-IP limit. */
static void source_nat_and_per_ip_limit(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	for (int i = 0; i < 8; i++) {
		const char *srv = i % 2 ? S2 : S1;
		uint64_t spi = 0x100 + (uint64_t)i;
		init(d, 1 + i * 0.01, LB, (uint16_t)(1000 + i), srv, spi);
		answer(d, 1.2 + i * 0.01, srv, LB, (uint16_t)(1000 + i), spi, i < 6 ? 0 : IKE_NOTIFY_COOKIE);
		if (i < 6) {
			auth(d, 1.3 + i * 0.01, LB, srv, spi, false);
			auth(d, 3 + i * 0.01, LB, srv, spi, true);
		}
	}
	struct doc_report r = analyze(d);
	const struct doc_finding *f = find(&r, "source-nat");
	assert_non_null(f);
	assert_int_equal(f->severity, DOC_ERROR);
	assert_true(has_addr(f->clients, f->nclients, LB));
	assert_int_equal(f->nservers, 2);
	assert_non_null(strstr(f->summary, "strongSwan"));
	assert_int_equal(ev(f, "max_half_open"), 4);
	f = find(&r, "per-ip-limit");
	assert_non_null(f);
	assert_true(has_addr(f->servers, f->nservers, S1) && has_addr(f->servers, f->nservers, S2));
	assert_int_equal(ev(f, "cookie_rounds"), 2);
	assert_null(find(&r, "shared-nat"));
	assert_null(find(&r, "healthy"));
	assert_int_equal(doc_exit_status(&r), 1);
	assert_int_equal(r.findings[0].severity, DOC_ERROR); /* most severe first */
	doc_report_free(&r);
	doc_free(d);
}

/* Health probes refused with NO_PROPOSAL_CHOSEN are not clients. */
static void refused_probes_are_not_source_nat(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	for (int i = 0; i < 20; i++) {
		init(d, i, LB, 40000, i % 2 ? S1 : S2, 0x500 + (uint64_t)i);
		answer(d, i + 0.001, i % 2 ? S1 : S2, LB, 40000, 0x500 + (uint64_t)i,
		       IKE_NOTIFY_NO_PROPOSAL_CHOSEN);
	}
	full_sa(d, 30, C1, 500, S1, 0x9);
	struct doc_report r = analyze(d);
	assert_non_null(find(&r, "healthy"));
	assert_int_equal(r.counts.refused, 20);
	doc_report_free(&r);
	doc_free(d);
}

static void shared_nat_on_one_server(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	for (int i = 0; i < 5; i++)
		full_sa(d, 1 + i, "203.0.113.50", (uint16_t)(30000 + i), S2, 0x700 + (uint64_t)i);
	full_sa(d, 1, C1, 500, S1, 0x7ff);
	struct doc_report r = analyze(d);
	const struct doc_finding *f = find(&r, "shared-nat");
	assert_non_null(f);
	assert_int_equal(f->severity, DOC_WARNING);
	assert_int_equal(f->nservers, 1);
	assert_true(has_addr(f->servers, 1, S2));
	assert_int_equal(ev(f, "source_ports"), 5);
	assert_null(find(&r, "source-nat"));
	assert_int_equal(doc_exit_status(&r), 0);
	doc_report_free(&r);
	doc_free(d);
}

static void silent_server_is_named(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	full_sa(d, 1, C1, 500, S1, 0x801);
	init(d, 2, C2, 500, S2, 0x802);
	init(d, 4, C2, 500, S2, 0x802);
	init(d, 8, C2, 500, S2, 0x802);
	/* S2 answers the balancer's probes: its replies to clients bypass it */
	init(d, 3, LB, 40000, S2, 0x803);
	answer(d, 3.1, S2, LB, 40000, 0x803, IKE_NOTIFY_NO_PROPOSAL_CHOSEN);
	struct doc_report r = analyze(d);
	const struct doc_finding *f = find(&r, "no-reply");
	assert_non_null(f);
	assert_int_equal(f->nservers, 1);
	assert_true(has_addr(f->servers, 1, S2));
	assert_true(has_addr(f->clients, f->nclients, C2));
	assert_int_equal(ev(f, "retransmissions"), 2);
	assert_int_equal(ev(f, "clients_answered"), 1);
	assert_non_null(strstr(f->summary, "another path"));
	assert_int_equal(doc_exit_status(&r), 1);
	doc_report_free(&r);
	doc_free(d);

	/* one lost request is no finding */
	d = doc_new();
	full_sa(d, 1, C1, 500, S1, 0x811);
	init(d, 2, C2, 500, S2, 0x812);
	r = analyze(d);
	assert_null(find(&r, "no-reply"));
	doc_report_free(&r);
	doc_free(d);
}

static void split_ports(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	init(d, 1, C1, 500, S1, 0x901);
	answer(d, 1.1, S1, C1, 500, 0x901, 0);
	auth(d, 1.2, C1, S2, 0x901, false); /* 4500 went elsewhere */
	full_sa(d, 2, C2, 500, S1, 0x902);
	/* an INVALID_IKE_SPI answer for a third SA */
	size_t n = init_resp(0x903, 0x904, IKE_NOTIFY_INVALID_IKE_SPI);
	msg[18] = IKE_EXCH_INFORMATIONAL;
	feed_udp(d, 3, S2, 500, "203.0.113.103", 500, msg, n);
	struct doc_report r = analyze(d);
	const struct doc_finding *f = find(&r, "port-split");
	assert_non_null(f);
	assert_true(has_addr(f->servers, f->nservers, S1) && has_addr(f->servers, f->nservers, S2));
	assert_true(has_addr(f->clients, f->nclients, C1));
	assert_false(has_addr(f->clients, f->nclients, C2));
	assert_int_equal(ev(f, "auth_at_other_server"), 1);
	assert_int_equal(ev(f, "invalid_ike_spi"), 1);
	assert_int_equal(ev(f, "ike_sas"), 2);
	doc_report_free(&r);
	doc_free(d);
}

/* IKE_AUTH of `enc` bytes from C1 to S1, in IPv4 fragments of 200 bytes;
 * drop_last leaves the last one out. */
static void auth_fragments4(struct doc *d, uint64_t spi, uint16_t id, bool drop_last)
{
	size_t n = pkt_ikev2_auth_natt(msg, sizeof(msg), spi, spi + 1, 1, 500);
	size_t len = pkt_udp_ip(buf, sizeof(buf), C1, 4500, S1, 4500, msg, n);
	size_t body = len - 20;
	for (size_t off = 0; off < body; off += 200) {
		size_t chunk = body - off > 200 ? 200 : body - off;
		bool more = off + chunk < body;
		if (!more && drop_last)
			break;
		uint8_t f[256];
		memcpy(f, buf, 20);
		memcpy(f + 20, buf + 20 + off, chunk);
		f[2] = (uint8_t)((20 + chunk) >> 8);
		f[3] = (uint8_t)(20 + chunk);
		f[4] = (uint8_t)(id >> 8);
		f[5] = (uint8_t)id;
		uint16_t fo = (uint16_t)((more ? 0x2000 : 0) | (off / 8));
		f[6] = (uint8_t)(fo >> 8);
		f[7] = (uint8_t)fo;
		doc_feed_ip(d, f, 20 + chunk, 5);
	}
}

static void fragmented_auth(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	init(d, 1, C1, 500, S1, 0xa01);
	answer(d, 1.1, S1, C1, 500, 0xa01, 0);
	auth_fragments4(d, 0xa01, 7, false);
	struct doc_report r = analyze(d);
	const struct doc_finding *f = find(&r, "fragmented-ike");
	assert_non_null(f);
	assert_int_equal(f->severity, DOC_WARNING);
	assert_int_equal(ev(f, "ike_auth_fragmented"), 1);
	assert_int_equal(ev(f, "incomplete"), 0);
	assert_true(has_addr(f->servers, f->nservers, S1));
	assert_int_equal(r.counts.fragments, 3);
	doc_report_free(&r);

	auth_fragments4(d, 0xa01, 8, true);
	r = analyze(d);
	f = find(&r, "fragmented-ike");
	assert_int_equal(f->severity, DOC_ERROR);
	assert_int_equal(ev(f, "incomplete"), 1);
	doc_report_free(&r);
	doc_free(d);
}

/* IPv6: an IKE_AUTH in two fragments (fragment header 44) and raw ESP. */
static void ipv6_fragments_and_raw_esp(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	size_t n = pkt_ikev2_auth_natt(msg, sizeof(msg), 0xb01, 0xb02, 1, 300);
	size_t len = pkt_udp_ip(buf, sizeof(buf), "2001:db8::1", 4500, "2001:db8:1::11", 4500,
				msg, n);
	size_t body = len - 40, half = 160;
	uint8_t f[1024];
	for (int k = 0; k < 2; k++) {
		size_t off = k ? half : 0, chunk = k ? body - half : half;
		memcpy(f, buf, 40);
		f[6] = 44;
		f[4] = (uint8_t)((chunk + 8) >> 8);
		f[5] = (uint8_t)(chunk + 8);
		uint8_t *fh = f + 40;
		fh[0] = 17;
		fh[1] = 0;
		uint16_t fo = (uint16_t)(off | (k ? 0 : 1));
		fh[2] = (uint8_t)(fo >> 8);
		fh[3] = (uint8_t)fo;
		memcpy(fh + 4, "\0\0\0\x2a", 4);
		memcpy(f + 48, buf + 40 + off, chunk);
		doc_feed_ip(d, f, 48 + chunk, 1);
	}
	/* raw ESP, IP protocol 50 */
	memcpy(f, buf, 40);
	f[6] = 50;
	f[4] = 0;
	f[5] = 16;
	memcpy(f + 40, "\x12\x34\x56\x78\0\0\0\1" "abcdefgh", 16);
	doc_feed_ip(d, f, 56, 2);
	struct doc_report r = analyze(d);
	const struct doc_finding *fi = find(&r, "fragmented-ike");
	assert_non_null(fi);
	assert_int_equal(ev(fi, "incomplete"), 0);
	assert_true(has_addr(fi->servers, fi->nservers, "2001:db8:1::11"));
	assert_int_equal(r.counts.esp, 1);
	assert_int_equal(r.counts.esp_spis, 1);
	assert_int_equal(r.counts.malformed, 0);
	doc_report_free(&r);
	doc_free(d);
}

/* RFC 7383: IKE_AUTH in Encrypted Fragment payloads, FRAGMENTATION_SUPPORTED
 * in IKE_SA_INIT; no IP fragments, so no finding. */
static void ike_fragmentation_is_fine(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	init(d, 1, C1, 500, S1, 0xe01);
	answer(d, 1.1, S1, C1, 500, 0xe01, IKE_NOTIFY_FRAGMENTATION_SUPPORTED);
	for (int k = 0; k < 2; k++) {
		size_t n = pkt_ikev2_auth_natt(msg, sizeof(msg), 0xe01, 0xe02, 1, 64);
		msg[4 + 16] = IKE_PL_SKF;
		feed_udp(d, 1.2, C1, 4500, S1, 4500, msg, n);
	}
	struct doc_report r = analyze(d);
	const struct doc_finding *f = find(&r, "healthy");
	assert_non_null(f);
	assert_int_equal(ev(f, "ike_fragmentation_sas"), 1);
	assert_int_equal(ev(f, "ike_fragmented_auth"), 1);
	assert_null(find(&r, "fragmented-ike"));
	doc_report_free(&r);
	doc_free(d);
}

static void hostile_input_is_counted(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	static const int links[] = { 0, 1, 12, 101, 113, 276, 228, 229, 147, -1 };
	uint8_t junk[128];
	srand(42);
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand() % (int)sizeof(junk));
		for (size_t k = 0; k < n; k++)
			junk[k] = (uint8_t)rand();
		if (n && i % 2)
			junk[0] = (uint8_t)(i % 4 ? 0x45 : 0x60); /* mostly IP-looking */
		uint8_t *copy = malloc(n ? n : 1);
		memcpy(copy, junk, n);
		doc_feed_frame(d, links[i % 10], copy, n, i);
		doc_feed_ip(d, copy, n, i);
		free(copy);
	}
	doc_feed_frame(d, 1, NULL, 0, 0);
	struct doc_report r = analyze(d);
	assert_int_equal(r.counts.packets, 40001);
	assert_true(r.counts.malformed > 1000);
	doc_report_free(&r);
	doc_free(d);

	/* cut by the capture's snap length (pktmon's default 128 bytes): the
	 * IKE header is still read; a cut IP header and a UDP length beyond a
	 * whole datagram are malformed */
	d = doc_new();
	size_t n = pkt_ikev2_sa_init_req(msg, sizeof(msg), 0xc01);
	size_t len = pkt_udp_eth(buf, sizeof(buf), C1, 500, S1, 500, msg, n);
	doc_feed_frame(d, 1, buf, 128, 1);
	doc_feed_frame(d, 1, buf, PKT_ETH_LEN + 10, 1);
	buf[PKT_ETH_LEN + PKT_IP4_LEN + 4] = 0x7f;
	doc_feed_frame(d, 1, buf, len, 1);
	r = analyze(d);
	assert_int_equal(r.counts.malformed, 2);
	assert_int_equal(r.counts.sas, 1);
	assert_int_equal(r.counts.ike, 1);
	doc_report_free(&r);
	doc_free(d);
}

static void report_json_shape(void **state)
{
	(void)state;
	struct doc *d = doc_new();
	init(d, 2, C2, 500, S2, 0xd02);
	init(d, 4, C2, 500, S2, 0xd02);
	struct doc_report r = analyze(d);
	json_t *j = doc_report_json(&r);
	json_t *f0 = json_array_get(json_object_get(j, "findings"), 0);
	assert_string_equal(json_string_value(json_object_get(f0, "kind")), "no-reply");
	assert_string_equal(json_string_value(json_object_get(f0, "severity")), "error");
	assert_string_equal(json_string_value(json_array_get(json_object_get(f0, "servers"), 0)),
			    S2);
	json_t *s = json_object_get(j, "summary");
	assert_int_equal(json_integer_value(json_object_get(s, "sas")), 1);
	assert_int_equal(json_integer_value(json_object_get(s, "packets")), 2);
	json_decref(j);
	doc_report_free(&r);
	doc_free(d);
}

static int parse(struct cli_args *a, char *err, int argc, ...)
{
	char *argv[16] = { "ikelb" };
	va_list ap;
	va_start(ap, argc);
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return cli_parse(CLI_IKELB, argc, argv, a, err, 256);
}

static void cli_doctor_arguments(void **state)
{
	(void)state;
	struct cli_args a;
	char err[256];
	assert_int_equal(parse(&a, err, 5, "doctor", "--json", "a.pcap", "b.pcap"), 0);
	assert_int_equal(a.cmd, CLI_DOCTOR);
	assert_true(a.json);
	assert_int_equal(a.nfiles, 3 - 1);
	assert_string_equal(a.files[1], "b.pcap");
	assert_int_equal(parse(&a, err, 6, "doctor", "--live", "eth0", "--duration", "3600"), 0);
	assert_string_equal(a.live, "eth0");
	assert_int_equal(a.duration, 3600);
	assert_int_equal(parse(&a, err, 6, "doctor", "--live", "eth0", "--duration", "3601"), -1);
	assert_int_equal(parse(&a, err, 4, "doctor", "--live", "eth0"), -1);
	assert_non_null(strstr(err, "--duration"));
	assert_int_equal(parse(&a, err, 2, "doctor"), -1);
	assert_int_equal(parse(&a, err, 4, "doctor", "-c", "x.yaml"), -1);
	assert_int_equal(parse(&a, err, 5, "doctor", "--duration", "5", "a.pcap"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(healthy_sa_and_counts),
		cmocka_unit_test(retransmits_and_cookie_rounds),
		cmocka_unit_test(source_nat_and_per_ip_limit),
		cmocka_unit_test(refused_probes_are_not_source_nat),
		cmocka_unit_test(shared_nat_on_one_server),
		cmocka_unit_test(silent_server_is_named),
		cmocka_unit_test(split_ports),
		cmocka_unit_test(fragmented_auth),
		cmocka_unit_test(ipv6_fragments_and_raw_esp),
		cmocka_unit_test(ike_fragmentation_is_fine),
		cmocka_unit_test(hostile_input_is_counted),
		cmocka_unit_test(report_json_shape),
		cmocka_unit_test(cli_doctor_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
