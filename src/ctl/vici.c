/* vici client: message encoding, a checked parser, and one blocking
 * command with a deadline (the evacuation worker's thread calls it, never
 * the daemon's event loop). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/vici.h"

static void say(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errsz)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ encoding */

void vici_buf_free(struct vici_buf *b)
{
	free(b->p);
	*b = (struct vici_buf){ 0 };
}

static void put(struct vici_buf *b, const void *p, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > VICI_MAX_SEGMENT) {
		b->err = -EMSGSIZE;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		if (!q) {
			b->err = -ENOMEM;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_u8(struct vici_buf *b, unsigned v)
{
	uint8_t c = (uint8_t)v;
	put(b, &c, 1);
}

static void put_name(struct vici_buf *b, const char *name)
{
	size_t n = strlen(name);
	if (n > 255) {
		b->err = b->err ? b->err : -EINVAL;
		return;
	}
	put_u8(b, (unsigned)n);
	put(b, name, n);
}

void vici_add_kv(struct vici_buf *b, const char *key, const char *value)
{
	size_t n = strlen(value);
	if (n > 0xffff) {
		b->err = b->err ? b->err : -EINVAL;
		return;
	}
	uint16_t be = htons((uint16_t)n);
	put_u8(b, VICI_KEY_VALUE);
	put_name(b, key);
	put(b, &be, 2);
	put(b, value, n);
}

void vici_add_section(struct vici_buf *b, const char *name)
{
	put_u8(b, VICI_SECTION_START);
	put_name(b, name);
}

void vici_end_section(struct vici_buf *b)
{
	put_u8(b, VICI_SECTION_END);
}

static bool named(enum vici_packet t)
{
	return t == VICI_CMD_REQUEST || t == VICI_EVENT_REGISTER ||
	       t == VICI_EVENT_UNREGISTER || t == VICI_EVENT;
}

int vici_packet(struct vici_buf *out, enum vici_packet type, const char *name,
		const uint8_t *msg, size_t len)
{
	size_t body = 1 + (named(type) ? 1 + strlen(name ? name : "") : 0) + len;
	if (body > VICI_MAX_SEGMENT)
		return -EMSGSIZE;
	uint32_t be = htonl((uint32_t)body);
	put(out, &be, 4);
	put_u8(out, type);
	if (named(type))
		put_name(out, name ? name : "");
	if (len)
		put(out, msg, len);
	return out->err;
}

/* ------------------------------------------------------------- parsing */

/* One element at *pos: its type, name and value; -EBADMSG when it does
 * not fit in len. */
struct elem {
	int type;
	const uint8_t *name, *val;
	size_t nlen, vlen;
};

static int next_elem(const uint8_t *m, size_t len, size_t *pos, struct elem *e)
{
	size_t i = *pos;
	*e = (struct elem){ .type = m[i++] };
	if (e->type < VICI_SECTION_START || e->type > VICI_LIST_END)
		return -EBADMSG;
	if (e->type == VICI_SECTION_START || e->type == VICI_KEY_VALUE ||
	    e->type == VICI_LIST_START) {
		if (i >= len || len - i - 1 < m[i])
			return -EBADMSG;
		e->nlen = m[i];
		e->name = m + i + 1;
		i += 1 + e->nlen;
	}
	if (e->type == VICI_KEY_VALUE || e->type == VICI_LIST_ITEM) {
		if (len - i < 2)
			return -EBADMSG;
		e->vlen = (size_t)m[i] << 8 | m[i + 1];
		if (len - i - 2 < e->vlen)
			return -EBADMSG;
		e->val = m + i + 2;
		i += 2 + e->vlen;
	}
	*pos = i;
	return 0;
}

/* Walks the whole message checking its structure (balanced sections,
 * items only inside a list, no nested lists); with path, copies the value
 * at it. */
struct walk {
	const char *path;
	char *out;
	size_t outsz;
	int found;  /* 0 not yet, 1 copied, -ENOSPC */
};

/* Does the section stack plus name equal the dotted path? */
static bool path_is(const char *path, const char *stack, size_t slen, const struct elem *e)
{
	size_t plen = strlen(path);
	if (plen != slen + e->nlen || memcmp(path, stack, slen))
		return false;
	return !memcmp(path + slen, e->name, e->nlen);
}

#define VICI_MAX_DEPTH 32 /* charon nests a handful of levels */

static int walk(const uint8_t *m, size_t len, struct walk *w)
{
	char stack[512];
	size_t slen = 0, pos = 0, at[VICI_MAX_DEPTH]; /* stack length per level */
	int depth = 0;
	bool in_list = false;

	while (pos < len) {
		struct elem e;
		if (next_elem(m, len, &pos, &e) < 0)
			return -EBADMSG;
		if (in_list != (e.type == VICI_LIST_ITEM || e.type == VICI_LIST_END))
			return -EBADMSG;
		switch (e.type) {
		case VICI_SECTION_START:
			if (slen + e.nlen + 1 >= sizeof(stack) || depth >= VICI_MAX_DEPTH)
				return -EBADMSG;
			at[depth++] = slen;
			memcpy(stack + slen, e.name, e.nlen);
			slen += e.nlen;
			stack[slen++] = '.';
			break;
		case VICI_SECTION_END:
			if (!depth)
				return -EBADMSG;
			slen = at[--depth];
			break;
		case VICI_KEY_VALUE:
			if (w->path && !w->found && path_is(w->path, stack, slen, &e)) {
				if (e.vlen >= w->outsz) {
					w->found = -ENOSPC;
					break;
				}
				memcpy(w->out, e.val, e.vlen);
				w->out[e.vlen] = 0;
				w->found = 1;
			}
			break;
		case VICI_LIST_START:
			in_list = true;
			break;
		case VICI_LIST_END:
			in_list = false;
			break;
		default:
			break;
		}
	}
	return depth || in_list ? -EBADMSG : 0;
}

int vici_check(const uint8_t *msg, size_t len)
{
	struct walk w = { 0 };
	return walk(msg, len, &w);
}

int vici_get(const uint8_t *msg, size_t len, const char *path, char *out, size_t outsz)
{
	struct walk w = { .path = path, .out = out, .outsz = outsz };
	if (!out || !outsz)
		return -EINVAL;
	int rc = walk(msg, len, &w);
	if (rc < 0)
		return rc;
	return w.found == 1 ? 0 : w.found < 0 ? w.found : -ENOENT;
}

/* ----------------------------------------------------------- transport */

/* unix: path into un; tcp: address and port into in. */
static int parse_uri(const char *uri, struct sockaddr_storage *ss, socklen_t *sl, char *err,
		     size_t errsz)
{
	memset(ss, 0, sizeof(*ss));
	if (!strncmp(uri, "unix://", 7)) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		const char *path = uri + 7;
		if (path[0] != '/' || strlen(path) >= sizeof(un->sun_path)) {
			say(err, errsz, "vici: %s: unix:// needs an absolute path under %zu bytes",
			    uri, sizeof(un->sun_path));
			return -EINVAL;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		*sl = sizeof(*un);
		return 0;
	}
	if (strncmp(uri, "tcp://", 6)) {
		say(err, errsz, "vici: %s: expected unix:///PATH or tcp://ADDR:PORT", uri);
		return -EINVAL;
	}
	char host[64];
	const char *h = uri + 6, *colon = strrchr(h, ':');
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : 0;
	size_t hl = colon ? (size_t)(colon - h) : 0;
	if (!colon || !colon[1] || *end || port < 1 || port > 65535 || hl == 0 ||
	    hl >= sizeof(host)) {
		say(err, errsz, "vici: %s: expected tcp://ADDR:PORT", uri);
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*in4);
		return 0;
	}
	if (host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)port);
			*sl = sizeof(*in6);
			return 0;
		}
	}
	say(err, errsz, "vici: %s: not an IPv4 or [IPv6] address (no name lookups)", uri);
	return -EINVAL;
}

int vici_uri_check(const char *uri, char *err, size_t errsz)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	return parse_uri(uri, &ss, &sl, err, errsz);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* poll for ev until the deadline: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = ev };
		int rc = poll(&p, 1, (int)left);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

int vici_connect(const char *uri, int timeout_ms, char *err, size_t errsz)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int rc = parse_uri(uri, &ss, &sl, err, errsz);
	if (rc < 0)
		return rc;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		say(err, errsz, "vici: %s: socket: %s", uri, strerror(-rc));
		return rc;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		rc = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, mono_ms() + timeout_ms) : -errno;
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (!rc && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr)
			rc = -soerr;
	}
	if (rc < 0) {
		say(err, errsz, "vici: %s: connect: %s", uri,
		    rc == -ETIMEDOUT ? "no answer in time" : strerror(-rc));
		close(fd);
		return rc;
	}
	return fd;
}

static int send_all(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			int rc = wait_fd(fd, POLLOUT, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, uint8_t *p, size_t n, int64_t deadline)
{
	while (n) {
		ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			int rc = wait_fd(fd, POLLIN, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One segment into seg (its bytes after the length header). */
static int recv_segment(int fd, struct vici_buf *seg, int64_t deadline)
{
	uint8_t hdr[4];
	int rc = recv_all(fd, hdr, 4, deadline);
	if (rc < 0)
		return rc;
	uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (n == 0 || n > VICI_MAX_SEGMENT)
		return -EBADMSG;
	seg->len = 0;
	seg->err = 0;
	if (seg->cap < n) {
		uint8_t *q = realloc(seg->p, n);
		if (!q)
			return -ENOMEM;
		seg->p = q;
		seg->cap = n;
	}
	seg->len = n;
	return recv_all(fd, seg->p, n, deadline);
}

int vici_call(int fd, const char *cmd, const struct vici_buf *req, int timeout_ms,
	      struct vici_buf *resp, char *err, size_t errsz)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct vici_buf pkt = { 0 };
	int rc = req && req->err ? req->err
				 : vici_packet(&pkt, VICI_CMD_REQUEST, cmd, req ? req->p : NULL,
					       req ? req->len : 0);
	if (!rc)
		rc = send_all(fd, pkt.p, pkt.len, deadline);
	vici_buf_free(&pkt);
	while (!rc) {
		rc = recv_segment(fd, resp, deadline);
		if (rc < 0)
			break;
		uint8_t type = resp->p[0];
		if (type == VICI_EVENT)
			continue; /* not registered for any; skip what comes */
		if (type == VICI_CMD_UNKNOWN) {
			rc = -EOPNOTSUPP;
			break;
		}
		if (type != VICI_CMD_RESPONSE) {
			rc = -EBADMSG;
			break;
		}
		memmove(resp->p, resp->p + 1, resp->len - 1);
		resp->len--;
		if (vici_check(resp->p, resp->len) < 0)
			rc = -EBADMSG;
		break;
	}
	if (rc < 0)
		say(err, errsz, "vici: %s: %s", cmd,
		    rc == -EOPNOTSUPP ? "unknown command (strongSwan older than 5.4?)"
		    : rc == -ETIMEDOUT ? "no answer in time"
		    : rc == -EBADMSG ? "malformed answer"
		    : strerror(-rc));
	return rc;
}
