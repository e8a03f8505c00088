/* libFuzzer target for the doctor's packet and SA layers (src/doctor):
 * whatever a capture holds must be counted, never read out of bounds.
 *
 * Input: a sequence of records, each [linktype selector][length][bytes]:
 * byte 0 picks the link type (Ethernet, raw IP, Linux SLL/SLL2, BSD
 * loopback, or doc_feed_ip directly), byte 1 the record's length; each
 * record is copied to an exact-size heap buffer so ASan flags any overread.
 * The same struct doc sees every record, so SAs, fragments and ESP tables
 * grow across them. Built standalone (`make fuzz`): the three files are
 * compiled in; the analysis (jansson) is tested by tests/unit/test_doctor.c. */
#include <stdlib.h>
#include <string.h>

#include "doctor/doc_idx.c"
#include "doctor/doc_packet.c"
#include "doctor/doc_sa.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int links[] = { 1, 12, 101, 113, 276, 0, 228, 229 };
	struct doc *d = doc_new();
	if (!d)
		return 0;
	size_t off = 0;
	uint64_t records = 0;
	while (off + 2 <= size) {
		uint8_t sel = data[off];
		size_t n = data[off + 1] * 4u + (sel >> 4);
		off += 2;
		if (n > size - off)
			n = size - off;
		uint8_t *p = malloc(n ? n : 1);
		if (!p)
			break;
		memcpy(p, data + off, n);
		if ((sel & 0x0f) == 8)
			doc_feed_ip(d, p, n, (double)records);
		else
			doc_feed_frame(d, links[sel & 7], p, n, (double)records);
		free(p);
		off += n;
		records++;
	}
	if (d->c.packets != records)
		abort();
	doc_free(d);
	return 0;
}
