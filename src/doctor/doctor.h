/* ikelb doctor: why VPN clients fail (Windows error 809 and friends), told
 * from packets. Feed captured frames or bare IP datagrams into a struct doc,
 * then doc_analyze() reconstructs the IKE SAs (who initiates, who answers,
 * retransmissions, COOKIE rounds, NAT-T, fragments, ESP) and returns
 * findings with evidence. Reading pcap files or an interface is separate
 * (doc_pcap.c) so tests feed packets directly. Details: docs/doctor.md. */
#ifndef IKELB_DOCTOR_H
#define IKELB_DOCTOR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ikelb/addr.h"

struct doc;

enum doc_severity { DOC_INFO, DOC_WARNING, DOC_ERROR };

#define DOC_MAX_ADDRS 8

struct doc_finding {
	const char *kind; /* "source-nat", "per-ip-limit", ... (static) */
	enum doc_severity severity;
	char summary[512];
	struct ikelb_addr servers[DOC_MAX_ADDRS];
	int nservers;
	struct ikelb_addr clients[DOC_MAX_ADDRS];
	int nclients;
	json_t *evidence; /* an object, owned */
};

struct doc_counts {
	uint64_t packets;   /* frames fed */
	uint64_t ike;       /* IKE messages (IKEv2 and IKEv1) */
	uint64_t esp;       /* ESP packets, in UDP or raw */
	uint64_t keepalive; /* NAT-T keepalives */
	uint64_t fragments; /* IP fragments */
	uint64_t malformed; /* truncated or invalid headers, unknown link types */
	uint64_t ignored;   /* not IKE/ESP (other ports, protocols) */
	uint64_t sas, servers, clients, established, esp_spis;
	uint64_t refused; /* SAs whose IKE_SA_INIT was refused outright: health probes */
	double first_ts, last_ts;
};

struct doc_report {
	struct doc_finding *findings;
	size_t nfindings;
	struct doc_counts counts;
};

struct doc *doc_new(void);
void doc_free(struct doc *d);

/* DLT_* link types understood: EN10MB, RAW (12, 14, 101), NULL/LOOP,
 * LINUX_SLL, LINUX_SLL2, IPV4, IPV6. Never fails: what it cannot read is
 * counted as malformed. ts: seconds since the epoch. */
void doc_feed_frame(struct doc *d, int linktype, const uint8_t *p, size_t caplen, double ts);
/* An IPv4 or IPv6 datagram (version nibble decides). */
void doc_feed_ip(struct doc *d, const uint8_t *p, size_t len, double ts);

/* Findings, most severe first. 0 or -ENOMEM. */
int doc_analyze(struct doc *d, struct doc_report *r);
void doc_report_free(struct doc_report *r);
/* 1 when a finding has severity error, else 0. */
int doc_exit_status(const struct doc_report *r);

json_t *doc_report_json(const struct doc_report *r);
void doc_print_text(FILE *f, const struct doc_report *r);
const char *doc_severity_str(enum doc_severity s);

/* Readers (doc_pcap.c): 0, or -1 with the reason in err. */
int doc_read_pcap(struct doc *d, const char *path, char *err, size_t errlen);
/* Capture on IFACE for `seconds` (bounded by the caller). */
int doc_read_live(struct doc *d, const char *iface, unsigned seconds, char *err, size_t errlen);

/* `ikelb doctor`: files or live, text or JSON; the exit status (0, 1, 2). */
int doc_cmd_run(const char *const *files, int nfiles, const char *live, unsigned seconds,
		int json);

#endif
