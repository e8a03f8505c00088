/* UDP GRO in, UDP GSO out (docs/socket-engine.md, "Batching"). With
 * UDP_GRO the kernel hands a socket a run of same-flow datagrams as one
 * buffer plus the segment size, after one pass through its stack; with
 * UDP_SEGMENT one send of such a buffer leaves as that many datagrams,
 * again after one pass (segmented by the NIC, or at the last moment). A
 * relay that forwards payloads unchanged can pass a received train on
 * whole: the per-datagram cost of both socket paths is paid per train. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>

#include "engine/sock_int.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif

/* The kernel refuses more segments per send (UDP_MAX_SEGMENTS). */
#define SOCK_GSO_MAX_SEGS 64
/* Largest UDP payload of one IPv4 send. */
#define SOCK_GSO_MAX_BYTES 65507

void sock_gro_enable(int fd)
{
	int one = 1;
	/* Best effort: without it datagrams arrive one by one, as before. */
	(void)setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
}

uint32_t sock_gro_size(const struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR((struct msghdr *)mh, c)) {
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			int v;
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			return v > 0 ? (uint32_t)v : 0;
		}
	}
	return 0;
}

/* Datagrams d[i..] that can leave as one GSO send: contiguous in memory,
 * all of d[i]'s size but the last, which may be shorter. */
static int train_len(const struct iovec *d, int n, int i)
{
	size_t seg = d[i].iov_len, total = seg;
	int k = i + 1;
	while (k < n && k - i < SOCK_GSO_MAX_SEGS && d[k].iov_len > 0 && d[k].iov_len <= seg &&
	       (const uint8_t *)d[k - 1].iov_base + d[k - 1].iov_len == d[k].iov_base &&
	       total + d[k].iov_len <= SOCK_GSO_MAX_BYTES) {
		total += d[k].iov_len;
		k++;
		if (d[k - 1].iov_len < seg)
			break; /* a short one ends the train */
	}
	return k - i;
}

struct gso_out {
	struct mmsghdr m[SOCK_RUN_MAX];
	struct iovec iov[SOCK_RUN_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[SOCK_RUN_MAX];
	int first[SOCK_RUN_MAX]; /* datagram index each message starts at */
	int segs[SOCK_RUN_MAX];
};

static void msg_set(struct gso_out *o, int j, const struct iovec *d, int i, int segs,
		    const struct sockaddr_storage *to, socklen_t tolen)
{
	struct msghdr *h = &o->m[j].msg_hdr;
	memset(h, 0, sizeof(*h));
	o->iov[j].iov_base = d[i].iov_base;
	o->iov[j].iov_len = 0;
	for (int k = 0; k < segs; k++)
		o->iov[j].iov_len += d[i + k].iov_len;
	h->msg_iov = &o->iov[j];
	h->msg_iovlen = 1;
	h->msg_name = (void *)to;
	h->msg_namelen = to ? tolen : 0;
	o->first[j] = i;
	o->segs[j] = segs;
	if (segs < 2)
		return;
	h->msg_control = o->ctl[j].buf;
	h->msg_controllen = sizeof(o->ctl[j].buf);
	struct cmsghdr *c = CMSG_FIRSTHDR(h);
	c->cmsg_level = SOL_UDP;
	c->cmsg_type = UDP_SEGMENT;
	c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
	uint16_t gs = (uint16_t)d[i].iov_len;
	memcpy(CMSG_DATA(c), &gs, sizeof(gs));
}

/* One message's datagrams one by one: GSO refused for this train. */
static void send_singly(int fd, const struct iovec *d, int i, int segs,
			const struct sockaddr_storage *to, socklen_t tolen, bool *sent)
{
	struct gso_out one;
	for (int k = 0; k < segs; k++)
		msg_set(&one, k, d, i + k, 1, to, tolen);
	int r = sendmmsg(fd, one.m, (unsigned)segs, MSG_DONTWAIT);
	for (int k = 0; k < r; k++)
		sent[i + k] = true;
}

int sock_send_dgrams(int fd, const struct iovec *d, int n, const struct sockaddr_storage *to,
		     socklen_t tolen, bool *gso_off, bool *sent)
{
	struct gso_out o;
	int nm = 0, total = 0;
	for (int i = 0; i < n; i += o.segs[nm - 1]) {
		sent[i] = false;
		int segs = *gso_off ? 1 : train_len(d, n, i);
		for (int k = 1; k < segs; k++)
			sent[i + k] = false;
		msg_set(&o, nm++, d, i, segs, to, tolen);
	}
	for (int j = 0; j < nm;) {
		int r = sendmmsg(fd, o.m + j, (unsigned)(nm - j), MSG_DONTWAIT);
		if (r > 0) {
			for (int k = j; k < j + r; k++)
				for (int s = 0; s < o.segs[k]; s++)
					sent[o.first[k] + s] = true;
			j += r;
			continue;
		}
		/* EIO: no checksum offload on the way out, GSO impossible for
		 * this worker's sockets; EINVAL/EMSGSIZE: this train exceeds the
		 * route's MTU. Either way its datagrams go singly. Anything else
		 * (buffer full, ICMP error pending) loses the rest, as any UDP
		 * hop may; IKE retransmits. */
		if (r < 0 && o.segs[j] > 1 && (errno == EIO || errno == EINVAL || errno == EMSGSIZE)) {
			if (errno == EIO)
				*gso_off = true;
			send_singly(fd, d, o.first[j], o.segs[j], to, tolen, sent);
			j++;
			continue;
		}
		break;
	}
	for (int i = 0; i < n; i++)
		total += sent[i];
	return total;
}
