/* One daemon per data path: exclusive locks, taken before the engine
 * attaches anything, on the bpf pin directory and on every interface the
 * bpf engine attaches to. A second daemon with another api.listen would
 * otherwise attach over the first and, when stopped, detach the data path
 * from under it.
 *
 * The locks are flock()s on files in LOCK_RUN_DIR, not on the pin
 * directory itself: a bpffs instance can be private to a mount namespace
 * (two daemons then see different pin directories for the same path), and
 * the directory is removed and recreated across restarts. Interface locks
 * carry the network namespace's inode, so equal names in other namespaces
 * do not collide. The kernel drops the locks when the process exits. The
 * socket engine needs none: binding its listen addresses fails instead. */
#ifndef IKELB_LOCK_H
#define IKELB_LOCK_H

#include <stddef.h>

#include "core/config.h"

#define LOCK_RUN_DIR "/run/ikelb"

struct lock_set {
	int fds[1 + CFG_MAX_INTERFACES];
	int n;
};

/* Takes every lock of C (none for the socket engine). 0, or a negative
 * errno with err naming the holder: "another ikelbd (pid N) owns
 * /sys/fs/bpf/ikelb; stop it first". Nothing is held on failure. */
int lock_take(struct lock_set *l, const struct cfg *c, char *err, size_t errlen);
void lock_release(struct lock_set *l);

#endif
