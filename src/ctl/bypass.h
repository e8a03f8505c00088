/* Live detection of a dnat server whose replies leave past ikelb: it gets
 * IKE requests, its health probe succeeds (the probe's answer comes to
 * ikelb's own address, which the server reaches), yet none of its replies
 * to clients come back through ikelb. Its default gateway (or policy
 * route) then points elsewhere, and its clients see error 809
 * (docs/doctor.md, "Live: ikelb status"). */
#ifndef IKELB_CTL_BYPASS_H
#define IKELB_CTL_BYPASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/log.h"
#include "core/runtime.h"
#include "engine/engine.h"

/* Seconds of counters one verdict looks at, and the IKE requests a server
 * must have received in them: IKE_SA_INIT retransmissions of two clients
 * (strongSwan: 0, 4, 11 s) or one client's exchanges. */
#define BYPASS_WINDOW_S 10
#define BYPASS_MIN_REQUESTS 5

struct bypass_srv {
	/* Cumulative counters, one sample a second; [n % ring] is the next. */
	uint64_t ike[BYPASS_WINDOW_S + 1];
	uint64_t replies[BYPASS_WINDOW_S + 1];
	uint32_t n;      /* samples taken (the window is full at ring size) */
	bool flagged;
};

struct bypass {
	int nsvc;
	int nsrv[CFG_MAX_SERVICES];
	struct bypass_srv *srv[CFG_MAX_SERVICES];
};

/* 0 or -ENOMEM. Again after a reload: the servers may have changed. */
int bypass_init(struct bypass *b, const struct cfg *cfg);
void bypass_free(struct bypass *b);
/* One sample of st's per-server counters (call once a second); logs each
 * server whose flag changes. Ignores st for a shape other than b's. */
void bypass_tick(struct bypass *b, const struct cfg *cfg, const struct runtime *rt,
		 const struct eng_stats *st, const struct logger *log);
/* b may be NULL (no detection): false. */
bool bypass_flagged(const struct bypass *b, int svc, int srv);
/* The operator's line: "replies from NAME bypass ikelb (check its
 * default gateway)". */
void bypass_warning(const char *server, char *buf, size_t len);

#endif
