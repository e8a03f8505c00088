#include "ikelb/addr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

int ikelb_addr_parse(const char *s, struct ikelb_addr *out)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (!s || !out)
		return -1;
	if (inet_pton(AF_INET, s, &v4) == 1) {
		ikelb_addr_from_v4(out, v4.s_addr);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &v6) == 1) {
		memcpy(out->b, v6.s6_addr, 16);
		return 0;
	}
	return -1;
}

int ikelb_prefix_parse(const char *s, struct ikelb_addr *out, int *bits)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);

	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (ikelb_addr_parse(buf, out) < 0)
		return -1;
	int max = ikelb_addr_is_v4(out) ? 32 : 128;
	if (!slash) {
		*bits = max;
		return 0;
	}
	char *end;
	long v = strtol(slash + 1, &end, 10);
	if (*end || end == slash + 1 || v < 0 || v > max)
		return -1;
	*bits = (int)v;
	return 0;
}

const char *ikelb_addr_str(const struct ikelb_addr *a, char *buf, size_t len)
{
	if (ikelb_addr_is_v4(a)) {
		struct in_addr v4 = { .s_addr = ikelb_addr_v4(a) };
		if (!inet_ntop(AF_INET, &v4, buf, (socklen_t)len))
			return "?";
	} else if (!inet_ntop(AF_INET6, a->b, buf, (socklen_t)len)) {
		return "?";
	}
	return buf;
}
