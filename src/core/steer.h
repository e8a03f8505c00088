/* The steering decision (ARCHITECTURE.md, "Steering") in user space: which real server
 * gets a client datagram. Used by the socket engine for every client
 * datagram and by tests/bpf/test_steer_diff.c, which feeds one packet trace
 * to this code and to the BPF program and expects the same server for every
 * packet. The BPF program (src/bpf/ikelb.bpf.c) implements the same rules on
 * BPF maps; keep the two in step.
 *
 * Order, first match wins (a rule whose server is DOWN is skipped):
 *  1 label     IKEv2 (service spi_mask != 0): ike_server_spi() & spi_mask
 *              names the server with that spi_label; ESP (some server has an
 *              ESP SPI range): the server whose [esp_spi_min, esp_spi_max]
 *              holds the SPI.
 *  2 flow      (service, client ip, client port, service port) seen before.
 *  3 sa        IKE messages: the IKE SA (SPIi), established table first,
 *              then the half-open table (both persistence modes).
 *  4 persist   persistence source-ip: client ip under the netmask.
 *  5 new       only ike_is_new_sa() messages: maglev/sh take the table given
 *              by steer_set_table at ikelb_hash_u64(SPIi) (ike persistence)
 *              or ikelb_hash_addr(masked client) (source-ip); rr/wrr/lc/wlc/fo
 *              ask the runtime's scheduler of the service (rt_pick: exact
 *              picks, one scheduler per service for the whole daemon).
 *              Only ACTIVE servers.
 *  6 fallback  anything else: table[ikelb_hash_addr(client, masked as in 5)],
 *              counted, no state; DRAINING servers allowed.
 * Table lookups probe up to 4 following slots when a slot's server is not
 * usable (the table may lag a state change), as the BPF program does.
 * Then learning (the BPF program's learn()): new-SA messages write a
 * half-open SA entry; IKE messages with SPIr != 0 that something vouches
 * for (a label; their SPIi already established; source-ip: steered by flow
 * or persistence; else exactly the SPIr the server answered, recorded by
 * steer_learn_reply) write their flow entry unless steered by it (so ESP
 * and keepalives follow), the established SA entry (both modes: ike steers
 * by it, source-ip counts and looks it up; a new or moved one drops the
 * half-open entry) and the persistence entry (source-ip). Rule 6 and
 * unvouched messages write nothing (docs/security.md).
 *
 * State: three tables shared by all services, keys as in include/ikelb/maps.h
 * (service id inside the key, like the BPF maps), values hold a global server
 * id (service base + index) so purging a DOWN server is one pass. Idle
 * timeouts are per service (persistence.timeout_s for the persistence, SA and
 * half-open tables, flow_timeout_s for flows): entries idle that long are
 * ignored by lookups (idle > timeout, as in the BPF program) and removed by
 * steer_expire. Time is in seconds
 * (CLOCK_MONOTONIC, like the BPF program), passed in by the caller.
 *
 * Not thread-safe: one owner or the caller's lock.
 */
#ifndef IKELB_CORE_STEER_H
#define IKELB_CORE_STEER_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "ikelb/ike_wire.h"
#include "ikelb/addr.h"
#include "core/lookup.h"
#include "ikelb/maps.h"

struct runtime;

struct steer_result {
	int server;          /* index in the service, -1 when dropped */
	enum ikelb_rule rule;
	int drop;            /* enum ike_drop when server == -1 */
	struct ike_info info;
	bool repeat;         /* an SA's message on the flow it already owns */
};

struct steer_opts {
	uint32_t max_clients;   /* persistence and established SA tables (0: cfg) */
	uint32_t max_halfopen;  /* half-open SA table (0: cfg) */
	uint32_t max_flows;     /* flow table (0: cfg) */
	uint64_t hash_key[2];   /* table bucket key; {0,0} = random */
};

struct steer;

/* Views of every service of rt->cfg (copied; the configuration may go
 * away), starting from the runtime's effective server states and Maglev
 * tables. rt must outlive the steer: new clients of rr/wrr/lc/wlc/fo are
 * placed by its schedulers. NULL on bad config / ENOMEM. */
struct steer *steer_new(struct runtime *rt, const struct steer_opts *o);
void steer_free(struct steer *st);

/* The daemon's table for a service (copied). -EINVAL on bad arguments. */
int steer_set_table(struct steer *st, int svc, const uint32_t *table, uint32_t m);
/* REAL_ACTIVE / REAL_DRAINING / REAL_DOWN; DOWN deletes every entry that
 * points at the server. Returns entries deleted, or -EINVAL. */
long steer_set_state(struct steer *st, int svc, int srv, int state);
/* Evacuation (REAL_F_EVACUATING) on: new SAs of the server's clients are
 * placed afresh, and its persistence entries are deleted (flows and SAs
 * carry its clients until they move): how many. Off: 0. Or -EINVAL. */
long steer_set_evacuating(struct steer *st, int svc, int srv, bool on);
int steer_server_state(const struct steer *st, int svc, int srv);

/* Decide for one client datagram to service svc, arriving on service port
 * vport; natt: RFC 3948 framing on that port (ike_port_is_natt(vport, ike_port), as
 * the BPF engine sets it; the socket engine's tests map a high port to
 * port-500 framing). payload is the UDP payload. Returns the server index or -1 (then
 * r->drop says why: classifier reason, or IKE_DROP_NO_SERVER). Counts
 * SVC_CTR_RX, the class, the rule, drops and HALFOPEN_FULL (the half-open
 * table was full: its least recently used entry was evicted to admit this
 * one; the BPF LRU map evicts silently). */
int steer_packet(struct steer *st, int svc, const struct ikelb_addr *client, uint16_t cport,
		 uint16_t vport, int natt, const uint8_t *payload, size_t len, uint64_t now,
		 struct steer_result *r);

/* A datagram from server srv to the client's flow (client, cport toward
 * vport), as the BPF program's reply_learn(): an IKE_SA_INIT / IKEv1
 * phase-1 response records its SPIr in the half-open entry; ESP,
 * keepalives and IKE protected by the SA's keys teach the flow (and, ike,
 * the SA). Answers in the clear teach nothing: a spoofer can make servers
 * send those to any address. */
void steer_learn_reply(struct steer *st, int svc, const struct ikelb_addr *client,
		       uint16_t cport, uint16_t vport, int natt, int srv, const uint8_t *payload,
		       size_t len, uint64_t now);

/* Remove entries idle past their service timeout; returns how many. */
long steer_expire(struct steer *st, uint64_t now);

/* Counters of one service (caller-owned counters like FWD are added with
 * steer_count so read-out is one place). */
void steer_count(struct steer *st, int svc, int ctr, uint64_t bytes);
void steer_counters(const struct steer *st, int svc, uint64_t pkts[SVC_CTR__MAX],
		    uint64_t bytes[SVC_CTR__MAX]);
/* Live entries per server of svc at `now`: clients (persistence + SA +
 * half-open) and flows; arrays of nservers. O(table size). */
void steer_server_counts(const struct steer *st, int svc, uint64_t now, uint64_t *clients,
			 uint64_t *flows);

/* Read-only (steer_query.c). Calls cb for every entry answering q (see
 * core/lookup.h); returns how many, or -EINVAL. */
int steer_query(const struct steer *st, const struct lk_query *q, uint64_t now, lk_cb cb,
		void *ctx);
/* Per server of svc: established IKE SAs (the SA table, kept in both
 * persistence modes) and distinct client addresses (live flows). Arrays of
 * nservers. 0 or -EINVAL / -ENOMEM. */
int steer_server_usage(const struct steer *st, int svc, uint64_t now, uint64_t *sas,
		       uint64_t *addresses);

/* Pressure on each table, index enum ikelb_table (maps.h; the same four
 * tables as the BPF maps). */
struct steer_table_stats {
	uint64_t entries, capacity, inserts, evictions;
};
void steer_table_stats(const struct steer *st, struct steer_table_stats out[TBL__MAX]);

/* Active connections for lc/wlc (the socket engine counts its upstream
 * flows), kept by the runtime's scheduler. */
void steer_conn_inc(struct steer *st, int svc, int srv);
void steer_conn_dec(struct steer *st, int svc, int srv);
/* The runtime's client counts (lc, max_clients) from the tables, as the
 * bpf engine reconciles after its walks: clients placed count at once
 * (half-open), evictions and expiries only here. */
void steer_conn_reconcile(struct steer *st, uint64_t now);

const char *steer_rule_name(enum ikelb_rule r);

#endif
