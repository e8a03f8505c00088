/* The state sync's counters in /v1/stats ("sync") and /metrics
 * (ikelb_sync_*), kept apart from report.c so they stay an addition. */
#include "ctl/report_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_FIELDS(X)                                                          \
	X(sent_msgs, "Sync datagrams sent (each to every peer).")                \
	X(sent_entries, "State entries sent.")                                   \
	X(recv_msgs, "Sync datagrams received.")                                 \
	X(recv_entries, "State entries received in accepted datagrams.")         \
	X(rej_auth, "Datagrams rejected: HMAC did not verify.")                  \
	X(rej_version, "Datagrams rejected: other wire version.")                \
	X(rej_malformed, "Datagrams rejected: malformed.")                       \
	X(rej_replay, "Datagrams rejected: replayed or too old.")                \
	X(rej_peer, "Datagrams rejected: not from a configured peer.")           \
	X(rej_unknown_server, "Entries ignored: service or server unknown here.") \
	X(applied, "Entries written into the local state tables.")               \
	X(kept, "Entries ignored: the local entry was as recent.")               \
	X(deferred, "Walks cut short by the rate bound.")                        \
	X(bulk_requests_sent, "Bulk requests sent (at start).")                  \
	X(bulk_requests_recv, "Bulk requests received from peers.")              \
	X(send_errors, "sendto failures.")                                       \
	X(apply_errors, "Entries the engine could not write.")

json_t *report_sync_json(const struct sync_stats *st)
{
	json_t *j = json_object();
#define X(f, h) json_object_set_new(j, #f, json_integer((json_int_t)st->f));
	SYNC_FIELDS(X)
#undef X
	return j;
}

char *report_sync_metrics(const struct sync_stats *st)
{
	size_t cap = 8192, len = 0;
	char *p = malloc(cap);

	if (!p)
		return NULL;
	p[0] = '\0';
#define X(f, h)                                                                        \
	if (len < cap)                                                                 \
		len += (size_t)snprintf(p + len, cap - len,                            \
					"# HELP ikelb_sync_%s_total %s\n"              \
					"# TYPE ikelb_sync_%s_total counter\n"         \
					"ikelb_sync_%s_total %llu\n",                  \
					#f, h, #f, #f, (unsigned long long)st->f);
	SYNC_FIELDS(X)
#undef X
	if (len >= cap) {
		free(p);
		return NULL;
	}
	return p;
}
