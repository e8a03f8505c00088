/* bpf engine: state entries for the sync between nodes (bpf_sync_state.c).
 * Kept apart from bpf_engine.h so sync stays an addition to the engine. */
#ifndef IKELB_BPF_SYNC_STATE_H
#define IKELB_BPF_SYNC_STATE_H

#include "engine/bpf_engine.h"
#include "engine/engine.h"

/* Every live persist/sa/halfopen/flow entry whose server this node knows,
 * as (service index, server index, age). now_s: CLOCK_MONOTONIC seconds. */
int bpf_engine_sync_walk(struct bpf_engine *e, uint32_t now_s, eng_sync_cb cb, void *ctx);
/* Write a peer's entry unless the local one is as recent: 1, 0, -errno. */
int bpf_engine_sync_apply(struct bpf_engine *e, uint32_t now_s, const struct eng_sync_entry *en);

#endif
