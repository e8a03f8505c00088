/* The server-state file (HAProxy's server-state-file idea): admin states
 * and weights set through the API outlive the process. A reload keeps them
 * in memory (rt_reload_server); a restart, a re-exec (SIGUSR1) or an
 * upgrade starts a new image, which reads them back from this file.
 *
 * Format (version 1), written atomically:
 *   {"version":1,"saved_at":UNIX,"servers":[{"service","server","address",
 *    "admin","weight","file_admin","file_weight"}]}
 * Only servers whose running admin state or weight differs from the file's
 * are listed; an empty list records "no overrides". */
#ifndef IKELB_CTL_SERVER_STATE_H
#define IKELB_CTL_SERVER_STATE_H

#include <stdint.h>

#include "core/config.h"
#include "core/log.h"
#include "core/runtime.h"

#define SSTATE_VERSION 1

/* Writes rt's overrides to path (tmp file in the same directory, fsync,
 * rename; mode 0644; the directory is created 0755 when missing). "" does
 * nothing. 0 or a negative errno (logged as a warning). */
int sstate_save(const char *path, const struct cfg *cfg, const struct runtime *rt,
		const struct logger *log);

/* Applies the saved overrides of servers that still exist (same service,
 * name and address) and whose file setting did not change since they were
 * saved; a setting the file changed keeps the file's value (the reload
 * rule). A missing, unreadable or corrupt file, or an unknown version,
 * changes nothing: logged, never fatal. Returns the number of settings
 * applied, or a negative errno when the file could not be used. */
int sstate_load(const char *path, const struct cfg *cfg, struct runtime *rt,
		const struct logger *log, uint64_t now_ms);

#endif
