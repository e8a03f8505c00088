#include "ctl/sync_mac.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

int sync_mac_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *msg, size_t len,
			 uint8_t out[SYNC_MAC_LEN])
{
	unsigned int olen = 0;

	if (!HMAC(EVP_sha256(), key, (int)klen, msg, len, out, &olen) || olen != SYNC_MAC_LEN)
		return -EIO;
	return 0;
}

int sync_key_load(const char *path, struct sync_auth *a, const struct logger *log)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int rc = -errno;
		log_err(log, "sync: cannot open key file %s: %s", path, strerror(errno));
		return rc;
	}
	/* A key others can read authenticates nothing. */
	if (fstat(fd, &st) == 0 && (st.st_mode & 0007))
		log_warn(log, "sync: key file %s is readable by other users", path);
	ssize_t n = read(fd, a->key, sizeof(a->key));
	uint8_t extra;
	bool more = n == (ssize_t)sizeof(a->key) && read(fd, &extra, 1) == 1;
	close(fd);
	if (n > 0 && a->key[n - 1] == '\n')
		n--;
	if (n < 16 || more) {
		log_err(log, "sync: key file %s must hold 16..%d bytes", path, SYNC_KEY_MAX);
		return -EINVAL;
	}
	a->klen = (size_t)n;
	a->mac = sync_mac_hmac_sha256;
	return 0;
}
