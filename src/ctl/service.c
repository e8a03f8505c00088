#include "ctl/service.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#define DELETED_SUFFIX " (deleted)"

/* /proc/self/exe names the path this process was executed from, with
 * " (deleted)" appended once that file was unlinked or renamed over:
 * without the suffix it is the path an upgrade put the new binary at. */
static int exe_path(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	size_t sl = strlen(DELETED_SUFFIX);
	if ((size_t)n > sl && !strcmp(buf + n - sl, DELETED_SUFFIX))
		buf[n - sl] = '\0';
	return 0;
}

void service_exe_record(struct service_exe *x, const struct logger *log)
{
	struct stat st;
	/* stat follows the magic link to the very inode being executed */
	x->known = stat("/proc/self/exe", &st) == 0;
	if (!x->known) {
		log_warn(log, "cannot stat /proc/self/exe (%s): upgrades are not detected",
			 strerror(errno));
		return;
	}
	x->dev = st.st_dev;
	x->ino = st.st_ino;
}

bool service_exe_changed(const struct service_exe *x)
{
	char path[4096];
	struct stat st;
	if (!x->known || exe_path(path, sizeof(path)) < 0 || stat(path, &st) < 0)
		return false; /* no file to run instead: nothing to upgrade to */
	return st.st_dev != x->dev || st.st_ino != x->ino;
}

void service_notify(const struct logger *log, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* unset_environment 0: a re-executed image notifies through the same
	 * NOTIFY_SOCKET. */
	int rc = sd_notify(0, buf);
	if (rc < 0)
		log_debug(log, "sd_notify: %s", strerror(-rc));
}

void service_notify_reloading(const struct logger *log)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	service_notify(log, "RELOADING=1\nMONOTONIC_USEC=%llu",
		       (unsigned long long)ts.tv_sec * 1000000ULL +
			       (unsigned long long)ts.tv_nsec / 1000);
}

int service_reexec(char *const argv[], const struct logger *log)
{
	char path[4096];
	int rc = exe_path(path, sizeof(path));
	if (rc < 0) {
		log_err(log, "re-exec: /proc/self/exe: %s", strerror(-rc));
		return rc;
	}
	/* Nothing but stdio may leak into the new image: a descriptor some
	 * library opened without O_CLOEXEC would pin its object (a BPF map,
	 * a socket) for the life of the process. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		log_debug(log, "close_range: %s", strerror(errno));
	service_notify(log, "MAINPID=%d", (int)getpid());
	log_notice(log, "re-executing %s", path);
	execv(path, argv);
	rc = -errno;
	log_err(log, "re-exec %s: %s", path, strerror(errno));
	return rc;
}

/* MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and the caller's fields, each
 * "KEY=value" in its own iovec as sd_journal_sendv wants. */
static int journal_sink(void *ctx, enum log_level lvl, const char *msg, const struct log_field *f,
			int n)
{
	(void)ctx;
	enum { FIXED = 3, MAX_FIELDS = 8, FIELD_LEN = 256 };
	char fixed[FIXED][1100], extra[MAX_FIELDS][FIELD_LEN];
	struct iovec iov[FIXED + MAX_FIELDS];
	int k = 0;
	snprintf(fixed[0], sizeof(fixed[0]), "MESSAGE=%s", msg);
	snprintf(fixed[1], sizeof(fixed[1]), "PRIORITY=%d", (int)lvl);
	snprintf(fixed[2], sizeof(fixed[2]), "SYSLOG_IDENTIFIER=ikelbd");
	for (; k < FIXED; k++)
		iov[k] = (struct iovec){ .iov_base = fixed[k], .iov_len = strlen(fixed[k]) };
	for (int i = 0; i < n && i < MAX_FIELDS; i++, k++) {
		snprintf(extra[i], sizeof(extra[i]), "%s=%s", f[i].key, f[i].value);
		iov[k] = (struct iovec){ .iov_base = extra[i], .iov_len = strlen(extra[i]) };
	}
	return sd_journal_sendv(iov, k);
}

void service_log_to_journal(struct logger *log)
{
	if (!getenv("JOURNAL_STREAM"))
		return;
	log->sink = journal_sink;
	log->sink_ctx = NULL;
}
