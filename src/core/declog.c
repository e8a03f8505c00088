/* The decision log line (core/declog.h). */
#include "core/declog.h"
#include "core/lookup.h"

bool declog_line(const struct logger *log, struct rl_bucket *b, uint64_t now_ms,
		 const struct declog_rec *r)
{
	char a[IKELB_ADDR_STRLEN];
	if (!rl_take(b, now_ms))
		return false;
	bool v4 = ikelb_addr_is_v4(r->client);
	log_info(log, "decision: client %s%s%s:%u spi %016llx service %s server %s rule %s",
		 v4 ? "" : "[", ikelb_addr_str(r->client, a, sizeof(a)), v4 ? "" : "]", r->cport,
		 (unsigned long long)r->spi_i, r->service, r->server,
		 lk_rule_name((enum ikelb_rule)r->rule));
	return true;
}

void declog_switched(const struct logger *log, struct rl_bucket *b, bool was_on, bool on,
		     uint64_t now_ms)
{
	/* A fresh bucket for each switch-on; its dropped count carries on,
	 * as a counter must. */
	if (on && !was_on) {
		uint64_t dropped = b->dropped;
		rl_init(b, DECLOG_RATE, DECLOG_BURST, now_ms);
		b->dropped = dropped;
	}
	log_notice(log, "decision log %s (at most %d lines/s)", on ? "on" : "off", DECLOG_RATE);
}
