/* A token bucket for log lines: at most `rate` per second on average,
 * `burst` at once; what it refuses is counted so an operator can see that
 * lines were dropped. Not thread-safe: one owner or the caller's lock. */
#ifndef IKELB_CORE_RATELIMIT_H
#define IKELB_CORE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rl_bucket {
	uint32_t rate, burst;   /* per second; bucket size */
	uint64_t milli_tokens;  /* tokens x 1000 */
	uint64_t last_ms;
	uint64_t dropped;
};

void rl_init(struct rl_bucket *b, uint32_t rate, uint32_t burst, uint64_t now_ms);
/* true when a token was taken; false (and dropped++) when empty. */
bool rl_take(struct rl_bucket *b, uint64_t now_ms);

#endif
