/* net.h — listening TCP sockets from "HOST:PORT" text, and the loopback test
 * behind forqd's default (no admin token: loopback only). One parser for
 * every address flag (--http, --tcp, forq worker --connect). Functions return
 * 0 or -errno with the reason in err; they never print. */
#ifndef FORQ_NET_H
#define FORQ_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NET_HOST_MAX 256 /* host text, NUL included */

/* Splits "HOST:PORT", "[V6]:PORT" or a bare "PORT" (host 127.0.0.1). PORT is
 * 1 to 5 decimal digits, 0..65535 (0: let the kernel pick); HOST is not
 * empty and not resolved here. Returns 0, or -EINVAL with host and port
 * unchanged. */
int net_parse_addr(const char *spec, char host[NET_HOST_MAX], uint16_t *port);

struct net_listener {
	int fd;        /* bound and listening; non-blocking, close-on-exec */
	uint16_t port; /* the bound port: the one the kernel picked for port 0 */
	int loopback;  /* 1: the address is loopback (see net_addr_is_loopback) */
};

/* Resolves spec (as net_parse_addr; a host name takes the first address),
 * then binds with SO_REUSEADDR (and IPV6_V6ONLY for v6) and listens. With
 * need_loopback, an address beyond loopback is refused with -EPERM before
 * anything is bound. Returns 0 with *out filled, or -errno with *out
 * untouched and err one of: bad listen address "X" (...), cannot resolve
 * listen address "X": ..., X is not a loopback address, cannot listen on X:
 * Address already in use. */
int net_listen(const char *spec, int backlog, int need_loopback, struct net_listener *out,
	       char *err, size_t errlen);

/* 1 for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104, else 0 (NULL too). */
int net_addr_is_loopback(const struct sockaddr *sa);

#endif
