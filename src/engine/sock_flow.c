/* Upstream flows of the socket engine: one connected UDP socket per client
 * flow, in a preallocated slot array. The flow table (persist, flow_key ->
 * slot) never evicts: a full table refuses new flows (counted by the caller
 * as IKE_DROP_TABLE_FULL), because an evicted flow would leak its socket.
 * Expiry walks a per-service LRU list from its cold end, so a sweep costs
 * O(flows expired). Every function here runs with e->mu held. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "engine/sock_int.h"

int sock_flows_init(struct sock_engine *e, uint32_t cap)
{
	struct lru_opts o = { .capacity = cap, .key_len = sizeof(struct flow_key) };
	e->conn_idx = lru_new(&o);
	/* One binding per (client, server) with live flows: never more than
	 * the flows, so this table never evicts either. */
	struct lru_opts so = { .capacity = cap, .key_len = sizeof(struct sock_src_key) };
	e->src_idx = lru_new(&so);
	e->conns = calloc(cap, sizeof(*e->conns));
	e->free_list = calloc(cap, sizeof(*e->free_list));
	if (!e->conn_idx || !e->src_idx || !e->conns || !e->free_list)
		return -1;
	e->cap = cap;
	for (uint32_t i = 0; i < cap; i++) {
		e->conns[i].fd = -1;
		e->free_list[i] = cap - 1 - i; /* pop from the end: slot 0 first */
	}
	e->nfree = cap;
	for (int s = 0; s < CFG_MAX_SERVICES; s++)
		e->svc[s].lru_head = e->svc[s].lru_tail = SOCK_NIL;
	return 0;
}

void sock_flows_free(struct sock_engine *e)
{
	for (uint32_t i = 0; e->conns && i < e->cap; i++)
		if (e->conns[i].fd >= 0)
			close(e->conns[i].fd);
	lru_free(e->conn_idx);
	lru_free(e->src_idx);
	e->src_idx = NULL;
	free(e->conns);
	free(e->free_list);
	e->conn_idx = NULL;
	e->conns = NULL;
	e->free_list = NULL;
}

static void lru_unlink(struct sock_engine *e, uint32_t i)
{
	struct sock_conn *c = &e->conns[i];
	struct sock_svc *s = &e->svc[c->svc];
	if (c->prev != SOCK_NIL)
		e->conns[c->prev].next = c->next;
	else
		s->lru_head = c->next;
	if (c->next != SOCK_NIL)
		e->conns[c->next].prev = c->prev;
	else
		s->lru_tail = c->prev;
	c->prev = c->next = SOCK_NIL;
}

static void lru_push(struct sock_engine *e, uint32_t i)
{
	struct sock_conn *c = &e->conns[i];
	struct sock_svc *s = &e->svc[c->svc];
	c->prev = SOCK_NIL;
	c->next = s->lru_head;
	if (s->lru_head != SOCK_NIL)
		e->conns[s->lru_head].prev = i;
	s->lru_head = i;
	if (s->lru_tail == SOCK_NIL)
		s->lru_tail = i;
}

void sock_flow_touch(struct sock_engine *e, struct sock_conn *c, uint64_t now)
{
	uint32_t i = (uint32_t)(c - e->conns);
	c->last_seen = now;
	if (e->svc[c->svc].lru_head != i) {
		lru_unlink(e, i);
		lru_push(e, i);
	}
}

static void flow_key_of(const struct sock_conn *c, struct flow_key *k)
{
	memset(k, 0, sizeof(*k));
	k->svc_id = (uint32_t)c->svc;
	k->cport = c->cport;
	k->vport = c->vport;
	k->client = c->client;
}

static void src_key_of(const struct sock_conn *c, struct sock_src_key *k)
{
	memset(k, 0, sizeof(*k));
	k->svc = (uint32_t)c->svc;
	k->srv = (uint32_t)c->srv;
	k->client = c->client;
}

/* The snat_pool slot for a new upstream socket of flow c, -1 for a
 * kernel-chosen source. A client's flows toward one server (port 500,
 * then 4500 after the NAT-T float, a rebinding) share one source address:
 * picking per flow would show the server IKE_SA_INIT from one address and
 * IKE_AUTH from another, and with two flows per client a per-flow
 * round-robin puts every port-500 flow on the even slots, so the
 * half-open handshakes (what the per-IP limits count) would use only half
 * the pool. New clients take the slots round-robin per server (server j
 * starts at slot j), so each server sees its clients spread evenly. */
static int pool_acquire(struct sock_engine *e, const struct sock_conn *c, int v4)
{
	struct sock_svc *s = &e->svc[c->svc];
	const struct cfg_service *cs = s->cs;
	if (cs->nsnat_pool == 0)
		return -1;
	struct sock_src_key k;
	struct lru_value v;
	src_key_of(c, &k);
	if (lru_get(e->src_idx, &k, 0, &v) == 0) {
		lru_put(e->src_idx, &k, v.server, v.user + 1, 0);
		return (int)v.server;
	}
	for (int n = 0; n < cs->nsnat_pool; n++) {
		uint32_t slot = s->pool_next[c->srv]++ % (uint32_t)cs->nsnat_pool;
		if (ikelb_addr_is_v4(&cs->snat_pool[slot]) != v4)
			continue;
		lru_put(e->src_idx, &k, slot, 1, 0);
		return (int)slot;
	}
	return -1;
}

static void pool_release(struct sock_engine *e, struct sock_conn *c)
{
	if (c->pool_slot < 0)
		return;
	struct sock_src_key k;
	struct lru_value v;
	src_key_of(c, &k);
	if (lru_get(e->src_idx, &k, 0, &v) == 0) {
		if (v.user <= 1)
			lru_del(e->src_idx, &k);
		else
			lru_put(e->src_idx, &k, v.server, v.user - 1, 0);
	}
	c->pool_slot = -1;
}

/* Socket toward server srv of the flow's service, source from the pool
 * (pool_acquire) and registered on the worker's epoll. */
static int upstream_open(struct sock_engine *e, struct sock_worker *w, struct sock_conn *c)
{
	struct sock_svc *s = &e->svc[c->svc];
	const struct cfg_service *cs = s->cs;
	const struct ikelb_addr *daddr = &cs->servers[c->srv].addr;
	struct sockaddr_storage dst;
	socklen_t dlen = ikelb_sockaddr_from_addr(daddr, c->vport, &dst);

	int v4 = ikelb_addr_is_v4(daddr);
	int fd = socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sock_gro_enable(fd); /* replies in trains too */
	c->pool_slot = (int16_t)pool_acquire(e, c, v4);
	if (c->pool_slot >= 0) {
		struct sockaddr_storage src;
		socklen_t slen;
		slen = ikelb_sockaddr_from_addr(&cs->snat_pool[c->pool_slot], 0, &src);
		if (bind(fd, (struct sockaddr *)&src, slen) < 0)
			goto fail;
	}
	if (connect(fd, (struct sockaddr *)&dst, dlen) < 0)
		goto fail;
	uint32_t idx = (uint32_t)(c - e->conns);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SOCK_EV(SOCK_EV_CONN, c->gen, idx) };
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	c->fd = fd;
	return 0;
fail:;
	int err = -errno;
	close(fd);
	pool_release(e, c);
	return err;
}

static void upstream_close(struct sock_engine *e, struct sock_conn *c)
{
	if (c->fd < 0)
		return;
	close(c->fd); /* also leaves the epoll set: the fd is never dup'ed */
	c->fd = -1;
	c->gen++;     /* events already fetched for the old socket are stale */
	pool_release(e, c);
}

static void log_open_error(struct sock_engine *e, int err)
{
	if (e->full_logged)
		return;
	e->full_logged = true;
	log_warn(e->log, "socket engine: cannot open an upstream socket (%s); new flows are "
			 "dropped and counted as table_full until flows expire",
		 strerror(-err));
}

struct sock_conn *sock_flow_get(struct sock_engine *e, struct sock_worker *w, uint32_t lst,
				const struct ikelb_addr *client, uint16_t cport, int srv,
				uint64_t now)
{
	const struct sock_listener *l = &e->lst[lst];
	struct flow_key k;
	memset(&k, 0, sizeof(k));
	k.svc_id = (uint32_t)l->svc;
	k.cport = cport;
	k.vport = l->port;
	k.client = *client;
	struct lru_value v;
	if (lru_peek(e->conn_idx, &k, now, &v) == 0) {
		struct sock_conn *c = &e->conns[v.server];
		if (c->srv != srv) {
			/* Steering moved the flow (its server went down, or a label
			 * names another server): a new socket toward the new one. */
			upstream_close(e, c);
			c->srv = srv;
			int rc = upstream_open(e, w, c);
			if (rc < 0) {
				log_open_error(e, rc);
				sock_flow_close(e, c);
				return NULL;
			}
		}
		c->lst = lst;
		sock_flow_touch(e, c, now);
		return c;
	}
	if (e->nfree == 0) {
		if (!e->full_logged) {
			e->full_logged = true;
			log_warn(e->log, "socket engine: %u upstream flows in use (max_flows / "
					 "RLIMIT_NOFILE): new flows are dropped and counted as "
					 "table_full until flows expire", e->cap);
		}
		return NULL;
	}
	uint32_t idx = e->free_list[e->nfree - 1];
	struct sock_conn *c = &e->conns[idx];
	c->svc = l->svc;
	c->srv = srv;
	c->lst = lst;
	c->client = *client;
	c->cport = cport;
	c->vport = l->port;
	c->prev = c->next = SOCK_NIL;
	int rc = upstream_open(e, w, c);
	if (rc < 0) {
		log_open_error(e, rc);
		return NULL;
	}
	e->nfree--;
	lru_put(e->conn_idx, &k, idx, 0, now);
	c->last_seen = now;
	lru_push(e, idx);
	return c;
}

void sock_flow_close(struct sock_engine *e, struct sock_conn *c)
{
	uint32_t idx = (uint32_t)(c - e->conns);
	struct flow_key k;
	flow_key_of(c, &k);
	if (lru_del(e->conn_idx, &k) < 0)
		return; /* not in the table: already free */
	upstream_close(e, c);
	c->fd = -1;
	lru_unlink(e, idx);
	e->free_list[e->nfree++] = idx;
	e->full_logged = false;
}

long sock_flows_expire(struct sock_engine *e, uint64_t now)
{
	long n = 0;
	for (int s = 0; s < e->nsvc; s++) {
		uint64_t to = e->svc[s].flow_to;
		if (!to)
			continue;
		/* idle > timeout, the steering tables' rule */
		while (e->svc[s].lru_tail != SOCK_NIL) {
			struct sock_conn *c = &e->conns[e->svc[s].lru_tail];
			if (now - c->last_seen <= to)
				break;
			sock_flow_close(e, c);
			n++;
		}
	}
	return n;
}

void sock_flows_close_server(struct sock_engine *e, int svc, int srv)
{
	uint32_t i = e->svc[svc].lru_head;
	while (i != SOCK_NIL) {
		struct sock_conn *c = &e->conns[i];
		i = c->next;
		if (c->srv == srv)
			sock_flow_close(e, c);
	}
}

uint32_t sock_flows_live(const struct sock_engine *e)
{
	return e->cap - e->nfree;
}
