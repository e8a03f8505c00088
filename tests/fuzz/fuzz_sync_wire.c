/* libFuzzer: the state-sync wire format (core/sync_wire.c) on arbitrary
 * datagrams. Self-contained (make fuzz compiles each file alone): the MAC
 * is a stand-in, and the first input byte chooses whether the datagram's
 * tag is fixed up first, so the entry parser sees authenticated garbage
 * too (an authenticated peer must not crash us either). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/sync_wire.c"

static int toy_mac(const uint8_t *key, size_t klen, const uint8_t *msg, size_t len,
		   uint8_t out[SYNC_MAC_LEN])
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < klen; i++)
		h = (h ^ key[i]) * 1099511628211ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ msg[i]) * 1099511628211ull;
	for (int i = 0; i < SYNC_MAC_LEN; i++)
		out[i] = (uint8_t)(h >> (8 * (i % 8))) ^ (uint8_t)i;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sync_replay rp;
	struct sync_auth a = { .klen = 16, .mac = toy_mac };
	uint8_t buf[SYNC_MTU];
	struct sync_hdr h;

	if (size < 1)
		return 0;
	size_t len = size - 1 > sizeof(buf) ? sizeof(buf) : size - 1;
	memcpy(buf, data + 1, len);
	if ((data[0] & 1) && len >= SYNC_HDR_LEN + SYNC_MAC_LEN) {
		memcpy(buf, SYNC_MAGIC, 4);
		buf[4] = SYNC_VERSION;
		toy_mac(a.key, a.klen, buf, len - SYNC_MAC_LEN, buf + len - SYNC_MAC_LEN);
	}
	if (sync_open(buf, len, &a, &h) == 0) {
		struct sync_iter it;
		struct sync_entry e;
		struct sync_msg m;
		sync_replay_check(&rp, &h);
		sync_iter_init(&it, buf, len, h.count);
		sync_msg_init(&m, SYNC_T_STATE);
		/* Whatever parses must encode again. */
		while (sync_iter_next(&it, &e) > 0)
			if (sync_msg_add(&m, &e) == -ENOSPC)
				sync_msg_init(&m, SYNC_T_STATE);
	}
	return 0;
}
