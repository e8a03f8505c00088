/* Where did a client go: the query and the answer shared by both engines'
 * lookup (engine.h), the daemon's /v1/lookup and /v1/clients, and the CLI.
 * An answer is a list of entries, one per state-table entry that places
 * the client (one per client port for a NATed address), or the stateless
 * rule (label, fallback) that would. Reading never changes state. */
#ifndef IKELB_CORE_LOOKUP_H
#define IKELB_CORE_LOOKUP_H

#include <stdbool.h>
#include <stdint.h>

#include "ikelb/addr.h"
#include "ikelb/maps.h"

enum lk_table { LK_T_NONE, LK_T_FLOW, LK_T_SA, LK_T_HALFOPEN, LK_T_PERSIST, LK_T_LABEL, LK_T__MAX };

enum lk_kind {
	LK_Q_ADDR, /* a client address (and port) */
	LK_Q_SPI,  /* an IKE SPIi / SPIr (64 bits) or an ESP SPI (32 bits) */
	LK_Q_ALL,  /* every state entry: the client listing */
};

struct lk_query {
	enum lk_kind kind;
	struct ikelb_addr addr;
	int port;          /* -1: any */
	uint64_t spi;      /* as printed by swanctl (the wire bytes, big-endian) */
	bool esp;          /* spi is an ESP SPI */
	int svc;           /* -1: every service */
	int srv;           /* LK_Q_ALL: -1 every server */
};

struct lk_entry {
	int svc, srv;
	enum lk_table table;
	enum ikelb_rule rule;    /* the rule this entry answers for */
	struct ikelb_addr client; /* flow, persist (masked) */
	uint16_t cport, vport;   /* flow */
	uint64_t spi;            /* sa, halfopen, label */
	int64_t idle_s;          /* seconds since last seen; -1 stateless */
	int64_t expires_in;      /* seconds; -1 never or stateless */
};

/* Called for each entry; nonzero stops the walk. */
typedef int (*lk_cb)(void *ctx, const struct lk_entry *e);

const char *lk_table_name(enum lk_table t);
/* "label", "flow", "sa", "persist", "new", "fallback" ("none" otherwise). */
const char *lk_rule_name(enum ikelb_rule r);
/* Seconds left of an entry idle idle_s under timeout (0 = none: -1). */
int64_t lk_expires_in(uint64_t idle_s, uint64_t timeout_s);
/* Whether an entry of (table, svc, srv) matches q's service/server filter. */
bool lk_match_filter(const struct lk_query *q, int svc, int srv);

/* "A", "A:P", "[A6]:P" or "A6" (port -1 when absent). 0 or -EINVAL. */
int lk_parse_addr(const char *s, struct ikelb_addr *a, int *port);
/* Hex, optional 0x; up to 8 digits is an ESP SPI, 9..16 an IKE SPI. */
int lk_parse_spi(const char *s, uint64_t *spi, bool *esp);

#endif
