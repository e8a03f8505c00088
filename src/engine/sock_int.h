/* Socket engine internals shared by sock_engine.c (control, setup),
 * sock_flow.c (upstream flows) and sock_relay.c (worker loop). */
#ifndef IKELB_SOCK_INT_H
#define IKELB_SOCK_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "engine/sock_engine.h"
#include "core/lru_table.h"
#include "core/declog.h"
#include "core/sockaddr.h"
#include "core/steer.h"
#include "engine/sock_mod.h"

#define SOCK_NIL UINT32_MAX
#define SOCK_BATCH 32
#define SOCK_RUN_MAX 128      /* datagrams of one flow sent together */
#define SOCK_CTL 64           /* per received message: the UDP_GRO cmsg */
#define SOCK_BUF 65536        /* any UDP datagram fits: never truncated */
#define SOCK_AUTO_WORKERS 2   /* socket.workers: 0 (auto) at most */
#define SOCK_FD_RESERVE 64    /* descriptors kept for the daemon (API, health, logs) */

/* epoll data: type in the top 2 bits, generation in bits 32..61, index low. */
#define SOCK_EV_LISTENER 0ULL
#define SOCK_EV_CONN 1ULL
#define SOCK_EV_WAKE 2ULL
#define SOCK_EV_TYPE(u) ((u) >> 62)
#define SOCK_EV_IDX(u) ((uint32_t)(u))
#define SOCK_EV_GEN(u) ((uint32_t)(((u) >> 32) & 0x3fffffffu))
#define SOCK_EV(type, gen, idx) \
	(((uint64_t)(type) << 62) | ((uint64_t)((gen) & 0x3fffffffu) << 32) | (uint64_t)(idx))

struct sock_listener {
	int fd;
	int svc;
	int worker;
	uint16_t port;
	uint8_t natt;
	struct ikelb_addr vip;
};

/* One client flow and its upstream socket. */
struct sock_conn {
	int fd;               /* -1: free slot */
	uint32_t gen;         /* bumped on free: stale epoll events are ignored */
	int svc;
	int srv;
	uint32_t lst;         /* listener the client uses: replies leave from it */
	uint32_t prev, next;  /* per-service LRU list, most recent at head */
	uint64_t last_seen;   /* CLOCK_MONOTONIC seconds */
	struct ikelb_addr client;
	uint16_t cport;
	uint16_t vport;
	int16_t pool_slot;    /* snat_pool index, -1 = kernel-chosen source */
};

/* Key of the per-client source binding (sock_flow.c pool_acquire). */
struct sock_src_key {
	uint32_t svc;
	uint32_t srv;
	struct ikelb_addr client;
};
_Static_assert(sizeof(struct sock_src_key) == 24, "sock_src_key has no padding");

/* Per server: datagrams to it, and its replies relayed back to clients. */
struct sock_srv_ctr {
	uint64_t pkts, bytes, reply_pkts, reply_bytes;
};

struct sock_svc {
	uint32_t lru_head, lru_tail;
	uint64_t flow_to;           /* seconds, 0 = never */
	int nsrv;
	uint32_t *pool_next;        /* per server: next snat_pool slot */
	struct sock_srv_ctr *srv_ctr; /* per server */
	const struct cfg_service *cs;
};

struct sock_worker {
	struct sock_engine *e;
	int idx;
	int epfd;
	int wakefd;
	pthread_t th;
	bool started;
	/* batch buffers: client datagrams and server replies */
	uint8_t *rxbuf;
	struct mmsghdr msgs[SOCK_BATCH];
	struct iovec iov[SOCK_BATCH];
	struct sockaddr_storage names[SOCK_BATCH];
	union {
		char buf[SOCK_CTL];
		struct cmsghdr align;
	} ctl[SOCK_BATCH];
	bool gso_off;         /* a send said the way out cannot segment */
	struct sock_mod mod;  /* receive moderation, worker thread only */
	uint64_t sends;       /* send calls (runs of one flow), worker only */
	struct {              /* published after each wake for read_stats */
		_Atomic uint64_t wakes, dgrams, waits, wait_ns, sends;
	} st;
};

struct sock_engine {
	const struct cfg *cfg;
	const struct logger *log;
	pthread_mutex_t mu;   /* steer, conns, counters: workers vs daemon thread */
	struct steer *steer;
	struct lru_table *conn_idx; /* flow_key -> conn index */
	/* (service, server, client address) -> snat_pool slot + live flows
	 * using it: all flows of one client toward one server share a source. */
	struct lru_table *src_idx;
	struct sock_conn *conns;
	uint32_t cap;
	uint32_t *free_list;
	uint32_t nfree;
	bool full_logged;
	uint16_t ike_port;
	int nsvc;
	struct sock_svc svc[CFG_MAX_SERVICES];
	struct sock_listener *lst;
	uint32_t nlst;
	int nworkers;
	struct sock_worker *w;
	atomic_int stop;
	bool log_decisions;        /* under mu */
	struct rl_bucket dlog;     /* decision log lines, under mu */
};

/* sock_flow.c; all with e->mu held. */
int sock_flows_init(struct sock_engine *e, uint32_t cap);
void sock_flows_free(struct sock_engine *e);
/* The flow's connection to server srv: existing, re-created toward srv, or
 * new (on worker w's epoll). NULL when the table is full or the socket
 * could not be made (counted by the caller). */
struct sock_conn *sock_flow_get(struct sock_engine *e, struct sock_worker *w, uint32_t lst,
				const struct ikelb_addr *client, uint16_t cport, int srv,
				uint64_t now);
void sock_flow_touch(struct sock_engine *e, struct sock_conn *c, uint64_t now);
void sock_flow_close(struct sock_engine *e, struct sock_conn *c);
long sock_flows_expire(struct sock_engine *e, uint64_t now);
void sock_flows_close_server(struct sock_engine *e, int svc, int srv);
uint32_t sock_flows_live(const struct sock_engine *e);

/* sock_gso.c */
void sock_gro_enable(int fd);
/* Segment size of a received GRO train (UDP_GRO cmsg), 0: one datagram. */
uint32_t sock_gro_size(const struct msghdr *mh);
/* Send the datagrams d[0..n) (n <= SOCK_RUN_MAX) on fd (to: NULL when
 * connected), trains of them as one UDP_SEGMENT send unless *gso_off;
 * sent[i] says which left. Returns how many did. */
int sock_send_dgrams(int fd, const struct iovec *d, int n, const struct sockaddr_storage *to,
		     socklen_t tolen, bool *gso_off, bool *sent);

/* sock_relay.c */
void *sock_worker_main(void *arg);

#endif
