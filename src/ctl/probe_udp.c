/* udp probe type: sends the configured payload; the server is alive when a
 * datagram comes back from the probed address and port and starts with the
 * configured `expect` bytes (any datagram when there are none).
 *
 * A reply carries no id of ours, so the id is a hash of the server's
 * address and port: the transport can then only find the probe through a
 * reply from exactly that source, and at most one udp probe per address
 * and port is in flight (the transport refuses a second with -EBUSY). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/probe.h"
#include "ikelb/hash.h"

static int probe_udp_copy(uint8_t **dst, const uint8_t *src, size_t len)
{
	*dst = NULL;
	if (!len)
		return 0;
	*dst = malloc(len);
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, len);
	return 0;
}

/* config_parse.c already demands `send` for type udp, but checkers are also
 * built from hand-made cfg_health (tests, lab tools): refuse what would
 * leave nothing to send rather than send garbage. */
static int probe_udp_init(struct probe *p, const struct cfg_health *hc, const struct logger *log)
{
	if (!hc->send_len || !hc->send || hc->send_len > PROBE_MAX_LEN ||
	    (hc->expect_len && !hc->expect)) {
		log_err(log, "health: udp check needs 1..%d bytes to send", PROBE_MAX_LEN);
		return -EINVAL;
	}
	int rc = probe_udp_copy(&p->send, hc->send, hc->send_len);
	if (rc == 0)
		rc = probe_udp_copy(&p->expect, hc->expect, hc->expect_len);
	if (rc < 0) {
		log_err(log, "health: udp check: out of memory");
		return rc;
	}
	p->send_len = hc->send_len;
	p->expect_len = hc->expect_len;
	return 0;
}

static uint64_t probe_udp_reply_id(const uint8_t *buf, size_t len, const struct ikelb_addr *from,
				   uint16_t port)
{
	(void)buf;
	(void)len;
	return ikelb_hash_addr(from, port, 0) | 1; /* | 1: ids are never 0 */
}

static int probe_udp_build(const struct probe *p, const struct ikelb_addr *to, uint16_t port,
			   uint8_t *buf, size_t cap, uint64_t *id)
{
	if (p->send_len > cap)
		return -EMSGSIZE;
	memcpy(buf, p->send, p->send_len);
	*id = probe_udp_reply_id(NULL, 0, to, port);
	return (int)p->send_len;
}

static bool probe_udp_judge(const struct probe *p, uint64_t id, const uint8_t *buf, size_t len,
			    char *reason, size_t cap)
{
	(void)id; /* the transport matched the source already */
	if (!p->expect_len ||
	    (len >= p->expect_len && memcmp(buf, p->expect, p->expect_len) == 0))
		return true;
	snprintf(reason, cap, "reply does not match expect");
	return false;
}

const struct probe_ops *probe_udp_ops(void)
{
	static const struct probe_ops ops = {
		.name = "udp",
		.init = probe_udp_init,
		.build = probe_udp_build,
		.reply_id = probe_udp_reply_id,
		.judge = probe_udp_judge,
	};
	return &ops;
}
