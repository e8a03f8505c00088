/* Health probe transport: sockets, pacing, reply demultiplexing. See
 * health_tx.h for the contract. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sockaddr.h"
#include "ctl/health_tx.h"
#include "ikelb/hash.h"
#include "ikelb/ike_wire.h"

#define HTX_PACE_DEFAULT_MAX 2
#define HTX_PACE_DEFAULT_WINDOW_MS 1000
#define HTX_RECV_BATCH 256 /* datagrams per socket per htx_on_readable */
#define HTX_BIND_TRIES 4
#define HTX_RX_MAX 2048

/* One distinct server address: pacing is per address, whatever the port or
 * service, because strongSwan's per-IP limits count our source address. */
struct htx_peer {
	struct ikelb_addr addr;
	uint64_t sent[HTX_PACE_MAX]; /* ring of recent send times, 0: none */
	uint32_t head;
};

/* Outstanding probes by id: open addressing, linear probing, backward
 * shift deletion. Id 0 marks a free slot. There is at most one probe per
 * target, so the table stays small; it only saves a scan per reply. */
struct htx_table {
	struct htx_probe *slots;
	uint32_t n; /* power of two, or 0 */
};

struct htx {
	const struct logger *log;
	htx_reply_fn fn;
	void *ctx;
	int fd4, fd6;
	struct htx_peer *peers;
	int npeers, cappeers;
	struct htx_table tab;
	uint32_t pace_max, pace_window_ms;
	struct htx_counters cnt;
};

/* ---- outstanding table ---- */

/* Ids are random SPIs or hashes already; the hash only spreads them, and a
 * stranger can look ids up but never insert one, so no secret key. */
static uint32_t htx_home(const struct htx_table *t, uint64_t id)
{
	return (uint32_t)ikelb_hash_u64(id, 0) & (t->n - 1);
}

static uint32_t htx_find(const struct htx_table *t, uint64_t id)
{
	uint32_t m = t->n - 1, j = htx_home(t, id);
	while (t->slots[j].id && t->slots[j].id != id)
		j = (j + 1) & m;
	return j;
}

int htx_reserve(struct htx *x, uint32_t need)
{
	struct htx_table *t = &x->tab, g = { NULL, t->n ? t->n : 16 };
	while (g.n < 2 * need)
		g.n *= 2;
	if (g.n == t->n)
		return 0;
	g.slots = calloc(g.n, sizeof(*g.slots));
	if (!g.slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->n; i++)
		if (t->slots[i].id)
			g.slots[htx_find(&g, t->slots[i].id)] = t->slots[i];
	free(t->slots);
	*t = g;
	return 0;
}

int htx_track(struct htx *x, const struct htx_probe *p)
{
	if (!x->tab.n)
		return -ENOMEM; /* htx_reserve was not called or failed */
	uint32_t j = htx_find(&x->tab, p->id);
	if (x->tab.slots[j].id)
		return -EBUSY;
	x->tab.slots[j] = *p;
	return 0;
}

static const struct htx_probe *htx_lookup(const struct htx *x, uint64_t id)
{
	if (!id || !x->tab.n)
		return NULL;
	const struct htx_probe *p = &x->tab.slots[htx_find(&x->tab, id)];
	return p->id ? p : NULL;
}

void htx_forget(struct htx *x, uint64_t id)
{
	struct htx_table *t = &x->tab;
	if (!id || !t->n)
		return;
	uint32_t m = t->n - 1, j = htx_find(t, id);
	if (!t->slots[j].id)
		return;
	t->slots[j].id = 0;
	/* Shift later members of the cluster back so lookups never stop early. */
	for (uint32_t k = (j + 1) & m; t->slots[k].id; k = (k + 1) & m) {
		uint32_t home = htx_home(t, t->slots[k].id);
		if (((k - home) & m) >= ((k - j) & m)) {
			t->slots[j] = t->slots[k];
			t->slots[k].id = 0;
			j = k;
		}
	}
}

/* ---- sockets ---- */

/* Binds fd to the wildcard address and an ephemeral port. Returns the
 * port, or -errno (logged). */
static int htx_bind_ephemeral(const struct logger *log, int fd, int family)
{
	struct sockaddr_storage ss;
	struct ikelb_addr any;
	memset(&any, 0, sizeof(any));
	if (family == AF_INET)
		ikelb_addr_from_v4(&any, 0);
	socklen_t sl = ikelb_sockaddr_from_addr(&any, 0, &ss);
	int one = 1;
	/* v6-only, so the IPv4 socket alone owns the IPv4 replies. */
	if ((family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		int err = errno;
		log_err(log, "health: socket setup (v6only, bind): %s", strerror(err));
		return -err;
	}
	uint16_t port = 0;
	int rc = ikelb_sockaddr_to_addr(&ss, &any, &port);
	return rc < 0 ? rc : port;
}

/* Unconnected, ephemeral port. Ports 500 and 4500 are refused so that a
 * reply can never be mistaken for (or balanced as) service traffic. */
static int htx_open_socket(const struct logger *log, int family)
{
	for (int tries = 0; tries < HTX_BIND_TRIES; tries++) {
		int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			int err = errno;
			log_err(log, "health: socket: %s", strerror(err));
			return -err;
		}
		int port = htx_bind_ephemeral(log, fd, family);
		if (port < 0) {
			close(fd);
			return port;
		}
		if (port != IKE_PORT && port != IKE_NATT_PORT)
			return fd;
		close(fd); /* odd ip_local_port_range: draw again */
	}
	log_err(log, "health: could not get a source port other than 500/4500");
	return -EADDRINUSE;
}

static int htx_fd_of(const struct htx *x, const struct ikelb_addr *a)
{
	return ikelb_addr_is_v4(a) ? x->fd4 : x->fd6;
}

static int htx_ensure_socket(struct htx *x, const struct ikelb_addr *a)
{
	int *fd = ikelb_addr_is_v4(a) ? &x->fd4 : &x->fd6;
	if (*fd < 0)
		*fd = htx_open_socket(x->log, ikelb_addr_is_v4(a) ? AF_INET : AF_INET6);
	return *fd < 0 ? *fd : 0;
}

/* ---- setup ---- */

struct htx *htx_new(const struct logger *log, htx_reply_fn fn, void *ctx)
{
	struct htx *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->log = log;
	x->fn = fn;
	x->ctx = ctx;
	x->fd4 = x->fd6 = -1;
	x->pace_max = HTX_PACE_DEFAULT_MAX;
	x->pace_window_ms = HTX_PACE_DEFAULT_WINDOW_MS;
	return x;
}

void htx_free(struct htx *x)
{
	if (!x)
		return;
	if (x->fd4 >= 0)
		close(x->fd4);
	if (x->fd6 >= 0)
		close(x->fd6);
	free(x->peers);
	free(x->tab.slots);
	free(x);
}

int htx_add_peer(struct htx *x, const struct ikelb_addr *addr)
{
	int rc = htx_ensure_socket(x, addr);
	if (rc < 0)
		return rc;
	for (int i = 0; i < x->npeers; i++)
		if (ikelb_addr_eq(&x->peers[i].addr, addr))
			return i;
	if (x->npeers == x->cappeers) {
		int n = x->cappeers ? 2 * x->cappeers : 16;
		struct htx_peer *p = realloc(x->peers, (size_t)n * sizeof(*p));
		if (!p) {
			log_err(x->log, "health: out of memory");
			return -ENOMEM;
		}
		x->peers = p;
		x->cappeers = n;
	}
	memset(&x->peers[x->npeers], 0, sizeof(x->peers[0]));
	x->peers[x->npeers].addr = *addr;
	return x->npeers++;
}

int htx_fds(const struct htx *x, int fds[2])
{
	int n = 0;
	if (x->fd4 >= 0)
		fds[n++] = x->fd4;
	if (x->fd6 >= 0)
		fds[n++] = x->fd6;
	return n;
}

void htx_get_counters(const struct htx *x, struct htx_counters *out)
{
	*out = x->cnt;
}

/* ---- pacing and sending ---- */

void htx_set_pacing(struct htx *x, uint32_t max_probes, uint32_t window_ms)
{
	if (max_probes < 1)
		max_probes = 1;
	if (max_probes > HTX_PACE_MAX)
		max_probes = HTX_PACE_MAX;
	x->pace_max = max_probes;
	x->pace_window_ms = window_ms;
}

uint64_t htx_pace_at(const struct htx *x, int peer, uint64_t now_ms)
{
	const struct htx_peer *p = &x->peers[peer];
	/* The max-th most recent send must have left the window. */
	uint64_t oldest = p->sent[(p->head + HTX_PACE_MAX - x->pace_max) % HTX_PACE_MAX];
	if (!oldest)
		return now_ms;
	uint64_t at = oldest + x->pace_window_ms;
	return at > now_ms ? at : now_ms;
}

int htx_send(struct htx *x, const struct htx_probe *p, const uint8_t *buf, size_t len,
	     uint64_t now_ms)
{
	struct htx_peer *peer = &x->peers[p->peer];
	/* A failed send counts too: the server may have seen nothing, but
	 * pacing must not turn a send error into a burst of retries. */
	peer->sent[peer->head] = now_ms ? now_ms : 1;
	peer->head = (peer->head + 1) % HTX_PACE_MAX;

	struct sockaddr_storage ss;
	socklen_t sl = ikelb_sockaddr_from_addr(&peer->addr, p->port, &ss);
	if (sendto(htx_fd_of(x, &peer->addr), buf, len, 0, (struct sockaddr *)&ss, sl) < 0) {
		x->cnt.send_errors++;
		return -errno; /* the caller records it as the probe's failure */
	}
	return 0;
}

/* ---- receiving ---- */

/* The outstanding probe a datagram names, whichever type names it. */
static const struct htx_probe *htx_demux(const struct htx *x, const uint8_t *buf, size_t len,
					 const struct ikelb_addr *from, uint16_t port)
{
	const struct probe_ops *ops;
	for (int i = 0; (ops = probe_type(i)) != NULL; i++) {
		const struct htx_probe *p = htx_lookup(x, ops->reply_id(buf, len, from, port));
		if (p && p->ops == ops)
			return p;
	}
	return NULL;
}

static void htx_on_datagram(struct htx *x, const uint8_t *buf, size_t len,
			    const struct sockaddr_storage *ss, uint64_t now_ms)
{
	struct ikelb_addr from;
	uint16_t port;
	if (ikelb_sockaddr_to_addr(ss, &from, &port) < 0) {
		x->cnt.stray_replies++; /* not from an IP peer: cannot be a reply */
		return;
	}
	const struct htx_probe *p = htx_demux(x, buf, len, &from, port);
	if (!p || !ikelb_addr_eq(&x->peers[p->peer].addr, &from) || p->port != port) {
		/* Only the probed address may judge a probe: strays never fail one. */
		x->cnt.stray_replies++;
		return;
	}
	struct htx_probe copy = *p; /* fn may forget it, which moves table slots */
	x->fn(x->ctx, &copy, buf, len, now_ms);
}

static void htx_drain(struct htx *x, int fd, uint64_t now_ms)
{
	uint8_t buf[HTX_RX_MAX];
	for (int n = 0; n < HTX_RECV_BATCH; n++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		ssize_t r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&ss, &sl);
		if (r < 0)
			return; /* EAGAIN, or an ICMP error we let the timeout report */
		/* MSG_TRUNC returns the real length: no probe answer is that
		 * long, and judging a cut copy could pass a malformed one. */
		if ((size_t)r > sizeof(buf)) {
			x->cnt.stray_replies++;
			continue;
		}
		htx_on_datagram(x, buf, (size_t)r, &ss, now_ms);
	}
}

void htx_on_readable(struct htx *x, uint64_t now_ms)
{
	if (x->fd4 >= 0)
		htx_drain(x, x->fd4, now_ms);
	if (x->fd6 >= 0)
		htx_drain(x, x->fd6, now_ms);
}
