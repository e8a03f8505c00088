/* Internal state of the doctor's analysis, shared by the doc_*.c files. */
#ifndef IKELB_DOC_INT_H
#define IKELB_DOC_INT_H

#include <stdbool.h>

#include "doctor/doctor.h"
#include "ikelb/ike_wire.h"

/* u64 key -> array index, open addressing; a key of 0 is stored as ~0. */
struct doc_idx {
	uint64_t *keys;
	uint32_t *vals;
	size_t cap, used;
};

#define DOC_SA_MAX_SERVERS 4

/* One IKEv2 SA, keyed by SPIi. Roles come from the I flag: the original
 * initiator is the client, the other side the server. */
struct doc_sa {
	uint64_t spi_i, spi_r;
	struct ikelb_addr client, server; /* server: where the first message went */
	struct ikelb_addr servers[DOC_SA_MAX_SERVERS]; /* every responder-side address */
	int nservers;
	uint16_t client_port, server_port;
	double t_first, t_last, t_init_resp, t_auth_resp;
	uint32_t init_req, init_resp, cookies, rejects, auth_req, auth_resp, msgs;
	uint32_t retrans, auth_wrong_server, invalid_spi, client_moves;
	uint32_t auth_ipfrag, auth_ikefrag;
	uint16_t reject_notify;
	uint64_t req_seen[2]; /* message ids 0..63 seen as requests, [by initiator, by responder] */
	bool has_init, natt, init_answered, frag_supported;
	struct ikelb_addr auth_wrong_at; /* the last server that got an IKE_AUTH without the INIT */
};

struct doc_esp {
	uint32_t spi;
	struct ikelb_addr src, dst;
	uint64_t packets;
	bool udp;
};

/* An IP datagram seen in fragments, until all its bytes arrived. */
struct doc_frag {
	struct ikelb_addr src, dst;
	uint32_t id;
	uint8_t proto;
	bool have_first, have_last;
	uint32_t bytes, total; /* total: known with the last fragment */
	uint32_t nfrags;
	int sa;                /* SA of the IKE message in the first fragment, or -1 */
	uint8_t exch;
	bool request;
	double ts;
};

struct doc {
	struct doc_counts c;
	struct doc_sa *sas;
	size_t nsas, capsas;
	struct doc_idx sa_idx;
	struct doc_esp *esp;
	size_t nesp, capesp;
	struct doc_idx esp_idx;
	struct doc_frag *frags;
	size_t nfrags, capfrags;
	uint64_t ikev1;
	bool oom;
	/* Built by doc_analyze: SA indices sorted by client address, and how
	 * many SAs are usable (not refused outright). */
	uint32_t *by_client;
	size_t usable;
};

/* One IKE message as the packet layer hands it over. */
struct doc_msg {
	struct ikelb_addr src, dst;
	uint16_t sport, dport;
	double ts;
	const struct ike_info *ike;
	const uint8_t *hdr;  /* the IKE header */
	uint32_t present;    /* bytes of the message in hand (from hdr) */
	bool ipfrag;         /* the first of several IP fragments */
};

/* doc_idx.c */
int doc_idx_find(const struct doc_idx *x, uint64_t key);
int doc_idx_put(struct doc_idx *x, uint64_t key, uint32_t val);
void doc_idx_free(struct doc_idx *x);
void *doc_grow(void *arr, size_t *cap, size_t need, size_t elem);

/* doc_sa.c: returns the SA's index, or -1 (IKEv1, no memory). */
int doc_sa_msg(struct doc *d, const struct doc_msg *m);
void doc_esp_pkt(struct doc *d, const struct ikelb_addr *src, const struct ikelb_addr *dst,
		 uint32_t spi, bool udp);

/* doc_find*.c */
int doc_find_all(const struct doc *d, struct doc_report *r);

/* doc_out.c: a new finding appended to r (NULL: no memory). */
struct doc_finding *doc_finding_add(struct doc_report *r, const char *kind,
				    enum doc_severity sev);
void doc_finding_addr(struct ikelb_addr *set, int *n, const struct ikelb_addr *a);
json_t *doc_json_addrs(const struct ikelb_addr *a, int n);
const char *doc_addr_str(const struct ikelb_addr *a, char *buf, size_t len);
void doc_ts_str(double ts, char *buf, size_t len);

#endif
