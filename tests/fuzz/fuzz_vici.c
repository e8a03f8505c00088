/* libFuzzer: the vici message parser (ctl/vici.c) on arbitrary bytes, as
 * a charon (or anything listening on a configured vici address) could
 * send them. Self-contained (make fuzz compiles each file alone). */
#include <stddef.h>
#include <stdint.h>

#include "ctl/vici.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char v[32];
	int ok = vici_check(data, size);
	int got = vici_get(data, size, "ikesas.total", v, sizeof(v));
	/* a value is only ever found in a well-formed message */
	if (got == 0 && ok != 0)
		__builtin_trap();
	(void)vici_get(data, size, "matches", v, 2);
	return 0;
}
