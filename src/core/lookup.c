/* Names and parsing for lookups (core/lookup.h). */
#include "core/lookup.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *lk_table_name(enum lk_table t)
{
	static const char *const n[LK_T__MAX] = {
		[LK_T_NONE] = "none", [LK_T_FLOW] = "flow", [LK_T_SA] = "sa",
		[LK_T_HALFOPEN] = "halfopen", [LK_T_PERSIST] = "persist", [LK_T_LABEL] = "label",
	};
	return t >= 0 && t < LK_T__MAX ? n[t] : "none";
}

const char *lk_rule_name(enum ikelb_rule r)
{
	static const char *const n[RULE__MAX] = {
		[RULE_NONE] = "none", [RULE_LABEL] = "label", [RULE_FLOW] = "flow",
		[RULE_SA] = "sa", [RULE_PERSIST] = "persist", [RULE_NEW] = "new",
		[RULE_FALLBACK] = "fallback",
	};
	return r >= 0 && r < RULE__MAX ? n[r] : "none";
}

int64_t lk_expires_in(uint64_t idle_s, uint64_t timeout_s)
{
	if (!timeout_s)
		return -1;
	/* The data path keeps an entry while idle <= timeout. */
	return idle_s > timeout_s ? 0 : (int64_t)(timeout_s - idle_s);
}

bool lk_match_filter(const struct lk_query *q, int svc, int srv)
{
	return (q->svc < 0 || q->svc == svc) && (q->kind != LK_Q_ALL || q->srv < 0 || q->srv == srv);
}

static int parse_port(const char *s, int *port)
{
	char *end;
	if (!*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	unsigned long p = strtoul(s, &end, 10);
	if (*end || p > 65535)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

int lk_parse_addr(const char *s, struct ikelb_addr *a, int *port)
{
	char buf[64];
	const char *colon = strchr(s, ':');

	*port = -1;
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || (size_t)(end - s - 1) >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, s + 1, (size_t)(end - s - 1));
		buf[end - s - 1] = 0;
		if (end[1] && (end[1] != ':' || parse_port(end + 2, port) < 0))
			return -EINVAL;
		return ikelb_addr_parse(buf, a) < 0 || ikelb_addr_is_v4(a) ? -EINVAL : 0;
	}
	if (colon && !strchr(colon + 1, ':')) { /* one colon: IPv4:port */
		memcpy(buf, s, (size_t)(colon - s));
		buf[colon - s] = 0;
		if (parse_port(colon + 1, port) < 0 || ikelb_addr_parse(buf, a) < 0 ||
		    !ikelb_addr_is_v4(a))
			return -EINVAL;
		return 0;
	}
	return ikelb_addr_parse(s, a) < 0 ? -EINVAL : 0;
}

int lk_parse_spi(const char *s, uint64_t *spi, bool *esp)
{
	if (!strncmp(s, "0x", 2) || !strncmp(s, "0X", 2))
		s += 2;
	size_t n = strlen(s);
	if (n == 0 || n > 16 || strspn(s, "0123456789abcdefABCDEF") != n)
		return -EINVAL;
	*spi = strtoull(s, NULL, 16);
	*esp = n <= 8;
	return *spi ? 0 : -EINVAL;
}
