/* Test fixture shared by test_probe_ike.c and test_health.c: an IKE
 * response to a probe, as a server would send it. */
#ifndef IKELB_TEST_IKE_REPLY_H
#define IKELB_TEST_IKE_REPLY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "helpers/pkt.h"
#include "ikelb/ike_wire.h"

/* A response: header + optional leading payload of type `lead` + notify. */
static inline size_t reply(uint8_t *b, uint64_t spi_i, uint64_t spi_r, uint8_t exch, uint8_t flags,
		    uint32_t msg_id, uint8_t lead, uint16_t notify)
{
	size_t off = IKE_HDR_LEN;
	uint8_t first = 41;
	if (lead) {
		first = lead;
		b[off] = 41;
		b[off + 1] = 0;
		b[off + 2] = 0;
		b[off + 3] = 8;
		memset(b + off + 4, 0xab, 4);
		off += 8;
	}
	b[off] = 0;
	b[off + 1] = 0;
	b[off + 2] = 0;
	b[off + 3] = 8;
	b[off + 4] = 0; /* protocol */
	b[off + 5] = 0; /* SPI size */
	b[off + 6] = (uint8_t)(notify >> 8);
	b[off + 7] = (uint8_t)notify;
	off += 8;
	pkt_ike_hdr(b, spi_i, spi_r, first, 0x20, exch, flags, msg_id, (uint32_t)off);
	return off;
}

#endif
