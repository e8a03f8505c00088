/* The smallest vici client ikelbd needs to evacuate a strongSwan server:
 * `redirect` (strongSwan >= 5.4) and `stats` (IKE SAs left), over a unix
 * or TCP stream, with a deadline on every operation.
 *
 * Why not libvici: Debian ships it only as the private
 * /usr/lib/ipsec/libvici.so.0 of strongswan-swanctl, without a header or a
 * -dev package, so its ABI is not promised to outside users; vici_init()
 * brings up libstrongswan inside the caller (library_init, strongswan.conf,
 * a thread pool), which has no place in the privileged daemon; and its
 * calls block without a timeout. The wire format is small and documented
 * (strongSwan src/libcharon/plugins/vici/README.md): a 32-bit big-endian
 * length, a packet type (with an 8-bit-length name for named types), then
 * a message of elements: section start/end, key = value (16-bit length),
 * list start/item/end. */
#ifndef IKELB_CTL_VICI_H
#define IKELB_CTL_VICI_H

#include <stddef.h>
#include <stdint.h>

enum vici_packet {
	VICI_CMD_REQUEST = 0,
	VICI_CMD_RESPONSE = 1,
	VICI_CMD_UNKNOWN = 2,
	VICI_EVENT_REGISTER = 3,
	VICI_EVENT_UNREGISTER = 4,
	VICI_EVENT_CONFIRM = 5,
	VICI_EVENT_UNKNOWN = 6,
	VICI_EVENT = 7,
};

enum vici_elem {
	VICI_SECTION_START = 1,
	VICI_SECTION_END = 2,
	VICI_KEY_VALUE = 3,
	VICI_LIST_START = 4,
	VICI_LIST_ITEM = 5,
	VICI_LIST_END = 6,
};

#define VICI_MAX_SEGMENT (512 * 1024) /* charon's limit */
#define VICI_URI_MAX 128

/* A growing byte buffer; err sticks after the first failure. */
struct vici_buf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

void vici_buf_free(struct vici_buf *b);
/* Message elements. Names longer than 255 or values longer than 65535
 * bytes set b->err = -EINVAL. */
void vici_add_kv(struct vici_buf *b, const char *key, const char *value);
void vici_add_section(struct vici_buf *b, const char *name);
void vici_end_section(struct vici_buf *b);
/* The whole segment: length header, type, name (named types), msg. */
int vici_packet(struct vici_buf *out, enum vici_packet type, const char *name,
		const uint8_t *msg, size_t len);

/* The value of a key under dotted path ("ikesas.total") in a message, as
 * a NUL-terminated string in out: 0, -ENOENT, -ENOSPC (out too small) or
 * -EBADMSG (malformed or truncated message). Every element is checked. */
int vici_get(const uint8_t *msg, size_t len, const char *path, char *out, size_t outsz);
/* 0 when msg is a well-formed message, -EBADMSG otherwise. */
int vici_check(const uint8_t *msg, size_t len);

/* 0 when uri is unix:///absolute/path or tcp://ADDR:PORT (IPv4, or
 * [IPv6]:PORT); -EINVAL with why in err otherwise. */
int vici_uri_check(const char *uri, char *err, size_t errsz);
/* Connected stream socket, or a negative errno with why in err. */
int vici_connect(const char *uri, int timeout_ms, char *err, size_t errsz);
/* One command: sends it and waits for its response message (events are
 * skipped), all within timeout_ms. The response message (after the type
 * byte) in resp. 0, -ETIMEDOUT, -EOPNOTSUPP (unknown command),
 * -EBADMSG, or another negative errno; why in err. */
int vici_call(int fd, const char *cmd, const struct vici_buf *req, int timeout_ms,
	      struct vici_buf *resp, char *err, size_t errsz);

#endif
