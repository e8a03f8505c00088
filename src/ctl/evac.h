/* Evacuating a server without cutting users off (docs/operations.md,
 * "Evacuate"): the daemon drains the server and has the engine forget its
 * persistence (engine_ops.set_evacuating); this module then asks the
 * server's charon over vici to REDIRECT (RFC 5685) every IKE SA to the VIP
 * and follows the IKE SAs left until none is.
 *
 * One worker thread per evacuation talks vici (ctl/vici.c, every call with
 * a deadline), so a slow or dead endpoint never blocks the daemon's event
 * loop; the loop reads progress under a mutex. */
#ifndef IKELB_CTL_EVAC_H
#define IKELB_CTL_EVAC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"

enum evac_phase {
	EVAC_NONE,         /* never evacuated (or enabled since) */
	EVAC_DRAIN_ONLY,   /* no vici endpoint: drained, persistence forgotten */
	EVAC_REDIRECTING,  /* the worker runs */
	EVAC_DONE,         /* the server's charon has no IKE SA left */
	EVAC_FAILED,       /* see error; the server stays drained */
};

#define EVAC_MAX 64              /* evacuations remembered at once */
#define EVAC_CALL_MS 3000        /* one vici connect or command */
#define EVAC_POLL_MS 1000        /* IKE SAs counted this often */
#define EVAC_REDIRECT_EVERY_S 10 /* again for SAs that were half-open before */
#define EVAC_TIMEOUT_S 900       /* then it fails with the SAs left */

struct evac_info {
	enum evac_phase phase;
	int64_t sas_left;       /* the charon's IKE SAs (vici stats); -1 unknown */
	uint64_t redirected;    /* IKE SAs charon queued a REDIRECT for, in total */
	uint64_t forgotten;     /* persistence entries forgotten at the start */
	uint64_t started_ms, ended_ms; /* CLOCK_MONOTONIC; ended 0 while running */
	char error[256];
};

struct evac;

struct evac *evac_new(const struct logger *log);
/* Stops the workers (each notices within EVAC_CALL_MS) and frees. */
void evac_free(struct evac *ev);

/* Records an evacuation of (svc, srv), named label in logs. With a vici
 * URI, starts its worker redirecting to gateway (the VIP, as text); else
 * EVAC_DRAIN_ONLY. A running one for the server is replaced. 0 or a
 * negative errno (-ENOSPC: EVAC_MAX running, -EINVAL: bad URI, why in
 * err). */
int evac_start(struct evac *ev, int svc, int srv, const char *label, const char *uri,
	       const char *gateway, uint64_t forgotten, char *err, size_t errsz);
/* Forgets (and stops) the evacuation of (svc, srv): enabled again. */
void evac_cancel(struct evac *ev, int svc, int srv);
/* Forgets all (a reload that changes servers renumbers them). */
void evac_cancel_all(struct evac *ev);
/* After a reload: the data path's reals may have been rebuilt without the
 * evacuating mark, and servers renumbered. Marks each evacuated server
 * that is still (svc, srv) under the same names again; forgets the
 * others (logged). */
struct cfg;
struct engine;
void evac_after_reload(struct evac *ev, const struct cfg *cfg, struct engine *eng);
/* 0 and *out, or -ENOENT when the server was not evacuated. */
int evac_get(struct evac *ev, int svc, int srv, struct evac_info *out);
const char *evac_phase_name(enum evac_phase p);

#endif
