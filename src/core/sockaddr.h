/* struct ikelb_addr + port <-> struct sockaddr_storage, for every user-space
 * socket of ikelb (engines, health transport). IPv4 travels as
 * IPv4-mapped in ikelb_addr and as AF_INET on the socket. */
#ifndef IKELB_CORE_SOCKADDR_H
#define IKELB_CORE_SOCKADDR_H

#include <stdint.h>
#include <sys/socket.h>

#include "ikelb/addr.h"

/* Fills *ss (AF_INET for IPv4-mapped a, else AF_INET6); returns its length. */
socklen_t ikelb_sockaddr_from_addr(const struct ikelb_addr *a, uint16_t port,
				   struct sockaddr_storage *ss);
/* Returns 0, or -EAFNOSUPPORT when ss is neither AF_INET nor AF_INET6. */
int ikelb_sockaddr_to_addr(const struct sockaddr_storage *ss, struct ikelb_addr *a,
			   uint16_t *port);

#endif
