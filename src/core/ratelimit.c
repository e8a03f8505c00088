/* Token bucket (core/ratelimit.h). */
#include "core/ratelimit.h"

void rl_init(struct rl_bucket *b, uint32_t rate, uint32_t burst, uint64_t now_ms)
{
	*b = (struct rl_bucket){ .rate = rate, .burst = burst,
				 .milli_tokens = (uint64_t)burst * 1000, .last_ms = now_ms };
}

bool rl_take(struct rl_bucket *b, uint64_t now_ms)
{
	uint64_t cap = (uint64_t)b->burst * 1000;
	if (now_ms > b->last_ms) {
		/* rate tokens per 1000 ms = rate milli-tokens per ms */
		uint64_t add = (now_ms - b->last_ms) * b->rate;
		b->milli_tokens = b->milli_tokens + add > cap ? cap : b->milli_tokens + add;
		b->last_ms = now_ms;
	}
	if (b->milli_tokens < 1000) {
		b->dropped++;
		return false;
	}
	b->milli_tokens -= 1000;
	return true;
}
