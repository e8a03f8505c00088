/* HMAC-SHA256 for the state sync (OpenSSL libcrypto; linked into the
 * daemon only), and the shared key file. */
#ifndef IKELB_CTL_SYNC_MAC_H
#define IKELB_CTL_SYNC_MAC_H

#include "core/log.h"
#include "core/sync_wire.h"

/* A sync_mac_fn. */
int sync_mac_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *msg, size_t len,
			 uint8_t out[SYNC_MAC_LEN]);

/* Read the key file (16..SYNC_KEY_MAX bytes after trimming one trailing
 * newline; not readable by others) into a; 0 or a negative errno, logged. */
int sync_key_load(const char *path, struct sync_auth *a, const struct logger *log);

#endif
