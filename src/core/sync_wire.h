/* The state-sync wire format (docs/ha.md, "Wire format"): datagrams of
 * state entries between ikelb nodes, authenticated with HMAC-SHA256 over a
 * shared key, with a version, a per-sender sequence and a replay window.
 * Pure encoding and checks: the MAC function is passed in (the daemon uses
 * OpenSSL, src/ctl/sync_mac.c), so this file has no crypto dependency and
 * is fuzzed alone (tests/fuzz/fuzz_sync_wire.c). */
#ifndef IKELB_CORE_SYNC_WIRE_H
#define IKELB_CORE_SYNC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ikelb/addr.h"

#define SYNC_MAGIC "IKLS"
#define SYNC_VERSION 1
#define SYNC_HDR_LEN 24
#define SYNC_MAC_LEN 32
#define SYNC_MTU 1400          /* whole datagram, MAC included */
#define SYNC_NAME_MAX 63       /* service names on the wire (cfg names are shorter) */
#define SYNC_KEY_MAX 256
#define SYNC_REPLAY_WINDOW 64

enum sync_type { SYNC_T_STATE = 1, SYNC_T_BULK_REQ = 2 };

/* One numbering with the engines' eng_sync_entry.kind. */
enum sync_kind { SYNC_K_PERSIST = 1, SYNC_K_SA = 2, SYNC_K_HALFOPEN = 3, SYNC_K_FLOW = 4 };

/* A state entry as nodes exchange it: the service by name and the server
 * by address (nodes may list servers in another order), the age instead
 * of a timestamp (nodes' monotonic clocks differ). */
struct sync_entry {
	uint8_t kind;                 /* enum sync_kind */
	char svc[SYNC_NAME_MAX + 1];
	struct ikelb_addr server;
	uint32_t age_s;
	struct ikelb_addr client;     /* persist (masked), flow */
	uint64_t spi;                 /* sa, halfopen: SPIi as the tables store it */
	uint16_t cport, vport;        /* flow */
};

struct sync_hdr {
	uint8_t version, type;
	uint16_t count;
	uint32_t node_id;   /* random per daemon start: tells senders apart */
	uint32_t epoch;     /* sender's start (wall-clock seconds): orders restarts */
	uint64_t seq;       /* per sender and epoch, from 1 */
};

/* HMAC-SHA256(key, msg) into out; 0 or a negative errno. */
typedef int (*sync_mac_fn)(const uint8_t *key, size_t klen, const uint8_t *msg, size_t len,
			   uint8_t out[SYNC_MAC_LEN]);

struct sync_auth {
	uint8_t key[SYNC_KEY_MAX];
	size_t klen;
	sync_mac_fn mac;
};

/* Building a datagram: init, add entries until -ENOSPC, seal. */
struct sync_msg {
	uint8_t buf[SYNC_MTU];
	size_t len;
	uint16_t count;
	uint8_t type;
};

void sync_msg_init(struct sync_msg *m, uint8_t type);
/* 0, -ENOSPC (datagram full: seal it and start another), -EINVAL. */
int sync_msg_add(struct sync_msg *m, const struct sync_entry *e);
/* Writes the header (h->count and h->type are taken from m) and the MAC. */
int sync_msg_seal(struct sync_msg *m, const struct sync_hdr *h, const struct sync_auth *a);

/* Checking a received datagram, in this order: -EBADMSG (short, bad magic),
 * -EPROTONOSUPPORT (other version), -EACCES (MAC), then 0 with *h filled.
 * Entries are read with sync_iter_* afterwards. */
int sync_open(const uint8_t *buf, size_t len, const struct sync_auth *a, struct sync_hdr *h);

struct sync_iter {
	const uint8_t *p, *end;
	uint16_t left;
};

void sync_iter_init(struct sync_iter *it, const uint8_t *buf, size_t len, uint16_t count);
/* 1 and *e filled, 0 at the end, -EBADMSG on a malformed entry (stop). */
int sync_iter_next(struct sync_iter *it, struct sync_entry *e);

/* Replay window per peer. Call only after sync_open accepted the MAC.
 * 0: new (recorded); -EALREADY: seen, too old, or from an older epoch. */
struct sync_replay {
	bool init;
	uint32_t node_id, epoch;
	uint64_t top, bits;
};

int sync_replay_check(struct sync_replay *r, const struct sync_hdr *h);

/* Constant-time compare of n bytes: 0 when equal. */
int sync_memeq_ct(const uint8_t *a, const uint8_t *b, size_t n);

#endif
