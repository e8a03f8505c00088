/* The one monotonic clock of ikelb. CLOCK_MONOTONIC is also what the BPF
 * program stamps state with (bpf_ktime_get_ns), so seconds read here and
 * last_seen_s in the maps compare directly, and wall-clock steps never
 * expire state or skew health timers. */
#ifndef IKELB_CLOCK_H
#define IKELB_CLOCK_H

#include <stdint.h>

uint64_t clock_mono_ms(void);
uint64_t clock_mono_s(void);

#endif
