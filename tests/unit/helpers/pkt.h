/* Packet builders for tests: realistic IKE / ESP-in-UDP payloads as
 * strongSwan puts them on the wire, and whole IPv4/IPv6 + UDP packets (with
 * or without an Ethernet header) with correct checksums around any payload.
 *
 * Every builder fills a caller buffer and returns the number of bytes
 * written, or 0 when `cap` is too small or an argument is invalid. SPIs and
 * cookies are given as the value the classifier reports, i.e. the 8 wire
 * bytes read big-endian. Linked into every unit and BPF test binary, so all
 * names carry the pkt_ prefix. */
#ifndef IKELB_TEST_PKT_H
#define IKELB_TEST_PKT_H

#include <stddef.h>
#include <stdint.h>

#define PKT_ETH_LEN 14
#define PKT_IP4_LEN 20
#define PKT_IP6_LEN 40
#define PKT_UDP_LEN 8
#define PKT_MAX 2048 /* every builder here fits in this */

/* Lab MACs used by pkt_udp_eth (locally administered). */
#define PKT_MAC_SRC { 0x02, 0x00, 0x5e, 0x00, 0x00, 0x01 }
#define PKT_MAC_DST { 0x02, 0x00, 0x5e, 0x00, 0x00, 0x02 }

/* Writes a 28-byte IKE header (RFC 7296 §3.1 / RFC 2408 §3.1). */
void pkt_ike_hdr(uint8_t *h, uint64_t spi_i, uint64_t spi_r, uint8_t next_payload,
		 uint8_t version, uint8_t exch, uint8_t flags, uint32_t msg_id,
		 uint32_t length);

/* IKEv2 IKE_SA_INIT request on port 500 (no marker): SA (one proposal,
 * AES-GCM-16-256 / PRF-HMAC-SHA256 / ECP-256), KE (group 19), Nonce,
 * NAT_DETECTION_SOURCE_IP, NAT_DETECTION_DESTINATION_IP,
 * SIGNATURE_HASH_ALGORITHMS notifies. SPIr = 0, flags I, msg id 0. */
size_t pkt_ikev2_sa_init_req(uint8_t *buf, size_t cap, uint64_t spi_i);

/* The matching IKE_SA_INIT response from the server (flags R, SPIr set). */
size_t pkt_ikev2_sa_init_resp(uint8_t *buf, size_t cap, uint64_t spi_i, uint64_t spi_r);

/* IKE_AUTH request on UDP 4500: non-ESP marker, header with next payload SK
 * (46), flags I, then an SK payload (16-byte IV, enc_len bytes of
 * ciphertext, 16-byte ICV). */
size_t pkt_ikev2_auth_natt(uint8_t *buf, size_t cap, uint64_t spi_i, uint64_t spi_r,
			   uint32_t msg_id, size_t enc_len);

/* INFORMATIONAL response (empty SK payload, e.g. a DPD answer). `flags`
 * is IKE_FLAG_R alone when the SA responder answers, R|I when the original
 * initiator answers. natt != 0 prepends the non-ESP marker. */
size_t pkt_ikev2_informational_resp(uint8_t *buf, size_t cap, uint64_t spi_i,
				    uint64_t spi_r, uint32_t msg_id, uint8_t flags,
				    int natt);

/* IKEv1 Main Mode first message (Identity Protection, exch 2): SA with one
 * proposal / transform, two Vendor IDs. Responder cookie 0. natt != 0
 * prepends the non-ESP marker (RFC 3947 after the port float). */
size_t pkt_ikev1_main_mode1(uint8_t *buf, size_t cap, uint64_t cookie_i, int natt);

/* ESP-in-UDP (RFC 3948): SPI, sequence, then data_len opaque bytes. */
size_t pkt_esp(uint8_t *buf, size_t cap, uint32_t spi, uint32_t seq, size_t data_len);

/* NAT-keepalive: the single byte 0xFF. */
size_t pkt_natt_keepalive(uint8_t *buf, size_t cap);

/* IP + UDP packet around payload. src/dst are IPv4 or IPv6 literals (both
 * the same family). IPv4: TTL 64, DF clear, id 0x4b1d. IPv6: hop limit 64. */
size_t pkt_udp_ip(uint8_t *buf, size_t cap, const char *src, uint16_t sport,
		  const char *dst, uint16_t dport, const void *payload, size_t plen);

/* Same, behind an Ethernet header (PKT_MAC_SRC -> PKT_MAC_DST). */
size_t pkt_udp_eth(uint8_t *buf, size_t cap, const char *src, uint16_t sport,
		   const char *dst, uint16_t dport, const void *payload, size_t plen);

/* 1 when the IPv4 header checksum (IPv4 only) and the UDP checksum of an
 * IP packet (starting at the IP header) are both correct, else 0. For
 * checking packets rewritten by the data path. */
int pkt_ip_udp_csum_ok(const uint8_t *ip, size_t len);

/* Offset of the UDP payload inside an IP packet (20/40 + 8), or 0 if it is
 * not a well-formed unfragmented IPv4/IPv6 UDP packet. */
size_t pkt_udp_payload_off(const uint8_t *ip, size_t len);

#endif
