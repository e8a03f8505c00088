/* The decision log (docs/api.md, "Decision log"): one line per placement
 * that does not repeat a known flow or label (IKELB_RULE_LOGGED in
 * ikelb/maps.h), rate-limited. Both engines write it through declog_line,
 * so the format is one; the socket engine decides in its workers, the bpf
 * engine in the kernel (events through a ring buffer). */
#ifndef IKELB_CORE_DECLOG_H
#define IKELB_CORE_DECLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"
#include "core/ratelimit.h"
#include "ikelb/addr.h"

#define DECLOG_RATE 50   /* lines per second */
#define DECLOG_BURST 50

struct declog_rec {
	const struct ikelb_addr *client;
	uint16_t cport;
	uint64_t spi_i;
	const char *service, *server;
	int rule;                /* enum ikelb_rule */
};

/* Logs r at info level when the bucket has a token; false (counted in
 * b->dropped) when it has none. */
bool declog_line(const struct logger *log, struct rl_bucket *b, uint64_t now_ms,
		 const struct declog_rec *r);
/* Resets the bucket when the log goes on, and says so at notice level. */
void declog_switched(const struct logger *log, struct rl_bucket *b, bool was_on, bool on,
		     uint64_t now_ms);

#endif
