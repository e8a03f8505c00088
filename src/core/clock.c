#include "core/clock.h"

#include <time.h>

uint64_t clock_mono_ms(void)
{
	struct timespec ts;
	/* Cannot fail for CLOCK_MONOTONIC with a valid pointer (clock_gettime(2)). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t clock_mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}
