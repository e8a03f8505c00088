/* One address type for IPv4 and IPv6, used by config, tables, BPF maps and
 * the API. IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) so that every key has
 * one fixed 16-byte layout and the BPF program needs no per-family maps.
 * Header-only and libc-free in its inline part so the BPF program can use it. */
#ifndef IKELB_ADDR_H
#define IKELB_ADDR_H

#include <linux/types.h>

struct ikelb_addr {
	__u8 b[16]; /* network byte order; IPv4 as ::ffff:a.b.c.d */
};

static inline int ikelb_addr_is_v4(const struct ikelb_addr *a)
{
	const __u8 *b = a->b;
	return b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0 && b[4] == 0 &&
	       b[5] == 0 && b[6] == 0 && b[7] == 0 && b[8] == 0 && b[9] == 0 &&
	       b[10] == 0xff && b[11] == 0xff;
}

/* v4 is in network byte order, as found in an IP header. */
static inline void ikelb_addr_from_v4(struct ikelb_addr *a, __u32 v4_be)
{
	const __u8 *s = (const __u8 *)&v4_be;
	for (int i = 0; i < 10; i++)
		a->b[i] = 0;
	a->b[10] = 0xff;
	a->b[11] = 0xff;
	a->b[12] = s[0];
	a->b[13] = s[1];
	a->b[14] = s[2];
	a->b[15] = s[3];
}

static inline __u32 ikelb_addr_v4(const struct ikelb_addr *a)
{
	__u32 v;
	__u8 *d = (__u8 *)&v;
	d[0] = a->b[12];
	d[1] = a->b[13];
	d[2] = a->b[14];
	d[3] = a->b[15];
	return v;
}

static inline int ikelb_addr_eq(const struct ikelb_addr *x, const struct ikelb_addr *y)
{
	__u8 d = 0;
	for (int i = 0; i < 16; i++)
		d |= x->b[i] ^ y->b[i];
	return d == 0;
}

/* Keep the first `bits` bits of the address (bits counted within the family:
 * 0..32 for IPv4, 0..128 for IPv6). Used for source-ip persistence netmasks. */
static inline void ikelb_addr_mask(struct ikelb_addr *a, int bits)
{
	int start = ikelb_addr_is_v4(a) ? 96 : 0;
	int keep = start + bits;
	for (int i = 0; i < 16; i++) {
		int lo = i * 8;
		if (keep >= lo + 8)
			continue;
		if (keep <= lo)
			a->b[i] = 0;
		else
			a->b[i] &= (__u8)(0xff << (8 - (keep - lo)));
	}
}

#ifndef __bpf__
/* User-space helpers (ikelb_addr.c). */
#include <stddef.h>
#include <stdbool.h>

#define IKELB_ADDR_STRLEN 46

/* Parse "198.51.100.1" or "2001:db8::1". Returns 0 or -1. */
int ikelb_addr_parse(const char *s, struct ikelb_addr *out);
/* Parse "addr/len"; without "/len" the full length is used. */
int ikelb_prefix_parse(const char *s, struct ikelb_addr *out, int *bits);
/* Format as dotted quad for IPv4-mapped, else RFC 5952 text. */
const char *ikelb_addr_str(const struct ikelb_addr *a, char *buf, size_t len);
#endif

#endif
