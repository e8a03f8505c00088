/* Being a systemd service: sd_notify(3) messages and re-executing the
 * daemon in place (same PID) for hitless restarts and upgrades. Without
 * NOTIFY_SOCKET (not under systemd) the notifications are no-ops. */
#ifndef IKELB_SERVICE_H
#define IKELB_SERVICE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/log.h"

/* The executable this process started from, to notice an upgrade. */
struct service_exe {
	dev_t dev;
	ino_t ino;
	bool known;
};

void service_exe_record(struct service_exe *x, const struct logger *log);

/* True when the file at the executable's path is not the one this process
 * runs: replaced (a package upgrade renames a new file over it). */
bool service_exe_changed(const struct service_exe *x);

/* sd_notify with printf formatting; failures are logged at debug. */
void service_notify(const struct logger *log, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Tells systemd a reload begins (RELOADING=1 with the monotonic stamp
 * systemd >= 253 wants). */
void service_notify_reloading(const struct logger *log);

/* Under journald (JOURNAL_STREAM set, as systemd does for a unit whose
 * output it reads), send log messages with sd_journal_send so structured
 * fields (IKELB_SERVICE, IKELB_SERVER, ...) are kept; the stream stays the
 * fallback. Does nothing elsewhere. */
void service_log_to_journal(struct logger *log);

/* Execs the executable's path (the new file after an upgrade) with argv;
 * returns only on failure, a negative errno. The caller has closed the
 * engine and the API first. */
int service_reexec(char *const argv[], const struct logger *log);

#endif
