#include "ctl/lock.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* "/sys/fs/bpf/ikelb" -> "lock-sys-fs-bpf-ikelb": one flat file name per
 * pin directory; characters a file name should not carry become '-'. */
static void pin_lock_path(char *buf, size_t len, const char *pin_dir)
{
	char name[200];
	size_t o = 0;

	for (const char *p = pin_dir; *p && o < sizeof(name) - 1; p++) {
		if (*p == '/' && (o == 0 || name[o - 1] == '-'))
			continue;
		name[o++] = (*p == '/' || *p == '.') ? '-' : *p;
	}
	while (o && name[o - 1] == '-')
		o--;
	name[o] = 0;
	snprintf(buf, len, "%s/lock-%s", LOCK_RUN_DIR, name);
}

/* The network namespace in the name: lo or eth0 in another namespace is
 * another interface. */
static void if_lock_path(char *buf, size_t len, const char *ifname)
{
	struct stat st;
	unsigned long long ns = stat("/proc/self/ns/net", &st) == 0 ? (unsigned long long)st.st_ino : 0;
	snprintf(buf, len, "%s/if-%llu-%s.lock", LOCK_RUN_DIR, ns, ifname);
}

/* The holder wrote its PID after taking the lock; 0 when not (yet) there. */
static long holder_pid(int fd)
{
	char b[24];
	ssize_t n = pread(fd, b, sizeof(b) - 1, 0);
	if (n <= 0)
		return 0;
	b[n] = 0;
	return strtol(b, NULL, 10);
}

static void say_held(char *err, size_t errlen, long pid, const char *what)
{
	char p[32] = "pid unknown";
	if (pid > 0)
		snprintf(p, sizeof(p), "pid %ld", pid);
	snprintf(err, errlen, "another ikelbd (%s) %s; stop it first", p, what);
}

/* 0 with the locked fd in *out, or a negative errno with err set. */
static int lock_one(const char *path, const char *what, int *out, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open lock file %s: %s", path, strerror(e));
		return -e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK)
			say_held(err, errlen, holder_pid(fd), what);
		else
			snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
		close(fd);
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	char pid[24];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	/* Only for the message of whoever is refused next: not fatal. */
	bool written = ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) == n;
	(void)written;
	*out = fd;
	return 0;
}

int lock_take(struct lock_set *l, const struct cfg *c, char *err, size_t errlen)
{
	char path[320], what[300];
	int rc;

	l->n = 0;
	if (c->engine != CFG_ENGINE_BPF)
		return 0;
	if (mkdir(LOCK_RUN_DIR, 0750) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", LOCK_RUN_DIR, strerror(errno));
		return rc;
	}
	pin_lock_path(path, sizeof(path), c->bpf_pin_dir);
	snprintf(what, sizeof(what), "owns %s", c->bpf_pin_dir);
	rc = lock_one(path, what, &l->fds[l->n], err, errlen);
	for (int i = 0; rc == 0 && i < c->ninterfaces; i++) {
		l->n++;
		if_lock_path(path, sizeof(path), c->interfaces[i]);
		snprintf(what, sizeof(what), "is attached to %s", c->interfaces[i]);
		rc = lock_one(path, what, &l->fds[l->n], err, errlen);
	}
	if (rc < 0) {
		lock_release(l);
		return rc;
	}
	l->n++;
	return 0;
}

void lock_release(struct lock_set *l)
{
	/* The files stay: removing one would let a third daemon lock a fresh
	 * inode while a second still waits on the old one. */
	for (int i = 0; i < l->n; i++)
		close(l->fds[i]);
	l->n = 0;
}
