/* Feeding the doctor from libpcap: capture files (pcap and pcapng, as
 * tcpdump, Wireshark and `pktmon etl2pcap` write them) and a bounded live
 * capture. The only file that knows libpcap. */
#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "doctor/doctor.h"

#define DOC_FILTER "udp port 500 or udp port 4500 or esp or (ip[6:2] & 0x3fff != 0) or ip6"
#define DOC_SNAPLEN 65535
#define DOC_POLL_MS 200

struct feed {
	struct doc *d;
	int linktype;
};

static void feed_one(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	const struct feed *f = (const struct feed *)user;
	double ts = (double)h->ts.tv_sec + (double)h->ts.tv_usec / 1e6;
	doc_feed_frame(f->d, f->linktype, bytes, h->caplen, ts);
}

int doc_read_pcap(struct doc *d, const char *path, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_open_offline(path, ebuf);
	if (!p) {
		snprintf(err, errlen, "%s: %s", path, ebuf);
		return -1;
	}
	struct feed f = { d, pcap_datalink(p) };
	int rc = pcap_loop(p, -1, feed_one, (u_char *)&f);
	if (rc == PCAP_ERROR) {
		/* A file cut short: what came before still counts, the rest is one
		 * malformed record (a stderr note says so). */
		fprintf(stderr, "ikelb doctor: %s: %s (analysing what came before)\n", path,
			pcap_geterr(p));
		doc_feed_frame(d, -1, NULL, 0, 0);
	}
	pcap_close(p);
	return 0;
}

static pcap_t *open_live(const char *iface, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	struct bpf_program prog;
	pcap_t *p = pcap_create(iface, ebuf);
	if (!p) {
		snprintf(err, errlen, "%s: %s", iface, ebuf);
		return NULL;
	}
	if (pcap_set_snaplen(p, DOC_SNAPLEN) || pcap_set_timeout(p, DOC_POLL_MS) ||
	    pcap_set_immediate_mode(p, 1) || pcap_activate(p) < 0 ||
	    pcap_compile(p, &prog, DOC_FILTER, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		snprintf(err, errlen, "%s: %s", iface, pcap_geterr(p));
		pcap_close(p);
		return NULL;
	}
	int rc = pcap_setfilter(p, &prog);
	pcap_freecode(&prog);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", iface, pcap_geterr(p));
		pcap_close(p);
		return NULL;
	}
	return p;
}

int doc_read_live(struct doc *d, const char *iface, unsigned seconds, char *err, size_t errlen)
{
	pcap_t *p = open_live(iface, err, errlen);
	if (!p)
		return -1;
	if (pcap_setnonblock(p, 1, err) < 0) {
		pcap_close(p);
		return -1;
	}
	struct feed f = { d, pcap_datalink(p) };
	uint64_t end = clock_mono_ms() + (uint64_t)seconds * 1000;
	int rc = 0;
	while (clock_mono_ms() < end) {
		int n = pcap_dispatch(p, -1, feed_one, (u_char *)&f);
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", iface, pcap_geterr(p));
			rc = -1;
			break;
		}
		if (n == 0) {
			struct timespec ts = { 0, DOC_POLL_MS / 4 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	pcap_close(p);
	return rc;
}
