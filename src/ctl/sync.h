/* State sync between ikelb nodes (docs/ha.md): every node sends the
 * persistence, SA, half-open and flow entries it creates or changes to its
 * peers, batched and rate-bounded, over authenticated UDP
 * (core/sync_wire.h); peers write them into their own tables when they
 * know the service and the server. A (re)starting node asks its peers for
 * everything they hold. Runs in the daemon's epoll loop. */
#ifndef IKELB_CTL_SYNC_H
#define IKELB_CTL_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/log.h"
#include "engine/engine.h"

struct sync_stats {
	uint64_t sent_msgs, sent_entries;
	uint64_t recv_msgs, recv_entries;
	uint64_t rej_auth, rej_version, rej_malformed, rej_replay, rej_peer;
	uint64_t rej_unknown_server;  /* entries for a service/server this node lacks */
	uint64_t applied;             /* entries written into the local tables */
	uint64_t kept;                /* local entry as recent: left alone */
	uint64_t deferred;            /* walks cut short by the rate bound */
	uint64_t bulk_requests_sent, bulk_requests_recv;
	uint64_t send_errors, apply_errors;
};

struct sync;

/* *out = NULL when cfg->sync is off. 0 or a negative errno, logged. */
int sync_start(struct sync **out, const struct cfg *cfg, struct engine *eng,
	       const struct logger *log);
/* Adds the socket and the timer to epfd (data.fd = the fd). */
int sync_watch(struct sync *s, int epfd);
/* true when fd is one of the sync's; then handles it. */
bool sync_on_fd(struct sync *s, int fd);
void sync_get_stats(const struct sync *s, struct sync_stats *out);
void sync_stop(struct sync *s);

#endif
