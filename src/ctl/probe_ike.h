/* ike probe type, wire format: an IKE_SA_INIT with a random SPIi and a
 * proposal no server accepts; alive = any well-formed IKE_SA_INIT response
 * to it (same SPIi, R flag, message id 0). Normally it carries SPIr 0 and a
 * Notify NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD or COOKIE (docs/health.md);
 * a non-zero SPIr (the server keeps half-open state for probes), another
 * error notify or none are still a live IKE responder, reported as a detail
 * instead of marking the server down: strongSwan answers with a non-zero
 * SPIr before its connections are loaded, and whether Windows RRAS does in
 * its NO_PROPOSAL_CHOSEN is not known.
 * Pure functions, no I/O, so unit tests, the fuzzer and the lab tool
 * (tests/system/tools/ike_probe.c) drive them directly; probe_ike_ops()
 * (probe.h) wraps them for the checker. */
#ifndef IKELB_CTL_PROBE_IKE_H
#define IKELB_CTL_PROBE_IKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROBE_IKE_RANDOM_LEN 64 /* 32 bytes KE data + 32 bytes nonce */
#define PROBE_IKE_LEN 170
/* Transform ID used for ENCR, PRF, INTEG and DH: inside the private-use
 * range (RFC 7296 §3.3.2), which servers only accept by prior agreement. */
#define PROBE_IKE_PRIVATE_ID 0xfee1
#define PROBE_IKE_VENDOR_ID "ikelb health probe"

enum probe_ike_verdict {
	PROBE_IKE_ALIVE = 0,
	PROBE_IKE_TRUNCATED,        /* shorter than a header, or length field > datagram */
	PROBE_IKE_BAD_LENGTH,       /* length field != datagram length */
	PROBE_IKE_BAD_VERSION,      /* not IKEv2 */
	PROBE_IKE_WRONG_SPI_I,      /* not an answer to this probe */
	PROBE_IKE_NOT_RESPONSE,     /* R flag missing */
	PROBE_IKE_WRONG_EXCHANGE,   /* not IKE_SA_INIT */
	PROBE_IKE_WRONG_MSG_ID,     /* message id not 0 */
	PROBE_IKE_BAD_PAYLOAD,      /* payload chain overruns or is inconsistent */
	PROBE_IKE__MAX
};

/* What an alive answer said beyond "alive". */
struct probe_ike_reply {
	uint64_t spi_r;   /* 0 as RFC 7296 §2.6 asks; else the server made state */
	int notify;       /* the liveness notify, else the first error notify, else -1 */
	bool expected;    /* notify is NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD or COOKIE */
};

/* Writes the probe into buf (cap >= PROBE_IKE_LEN). spi_i must not be 0;
 * rnd supplies the KE data and nonce. Returns the length or 0. */
size_t probe_ike_build(uint8_t *buf, size_t cap, uint64_t spi_i,
		       const uint8_t rnd[PROBE_IKE_RANDOM_LEN]);
/* The SPIi of any datagram long enough to carry one (read big-endian), else 0. */
uint64_t probe_ike_spi_i(const uint8_t *buf, size_t len);
/* Judges a reply to the probe with initiator SPI spi_i. On ALIVE, *out (if
 * not NULL) says what else the answer carried. */
enum probe_ike_verdict probe_ike_check_reply(const uint8_t *buf, size_t len, uint64_t spi_i,
					     struct probe_ike_reply *out);
/* "" for an answer as expected, else a short note for the operator
 * ("responder SPI not zero", "error notify 24", "no notify"). */
void probe_ike_detail(const struct probe_ike_reply *r, char *buf, size_t cap);
const char *probe_ike_verdict_str(enum probe_ike_verdict v);

#endif
