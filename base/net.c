/* net.c — address parsing and listening sockets (see net.h). */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"

#define PORT_DIGITS_MAX 5 /* "65535" */

/* Digits only, so strtol's signs, blanks and overflow never come into it. */
static int parse_port(const char *s, uint16_t *port)
{
	size_t n = strlen(s);
	unsigned long v = 0;
	if (n == 0 || n > PORT_DIGITS_MAX || strspn(s, "0123456789") != n)
		return -EINVAL;
	for (; *s; s++)
		v = v * 10 + (unsigned long)(*s - '0');
	if (v > UINT16_MAX)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int net_parse_addr(const char *spec, char host[NET_HOST_MAX], uint16_t *port)
{
	const char *h = spec, *colon;
	size_t hl;
	uint16_t p;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = spec + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else if ((colon = strrchr(spec, ':'))) {
		hl = (size_t)(colon - spec); /* an unbracketed "::1:80" is host ::1 */
	} else {
		h = "127.0.0.1"; /* a bare port: loopback, the safe default */
		hl = strlen(h);
		colon = spec - 1;
	}
	if (hl == 0 || hl >= NET_HOST_MAX || parse_port(colon + 1, &p))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = p;
	return 0;
}

int net_addr_is_loopback(const struct sockaddr *sa)
{
	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

int net_listen(const char *spec, int backlog, int need_loopback, struct net_listener *out,
	       char *err, size_t errlen)
{
	char host[NET_HOST_MAX], service[8];
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	uint16_t port;
	int fd = -1, r, one = 1, loopback;

	if (net_parse_addr(spec, host, &port)) {
		errmsg_set(err, errlen,
			"bad listen address \"%s\" (use HOST:PORT, [V6]:PORT or PORT, "
			"e.g. 127.0.0.1:8080 or [::1]:8080)",
			spec);
		return -EINVAL;
	}
	snprintf(service, sizeof service, "%u", (unsigned)port);
	if ((r = getaddrinfo(host, service, &hints, &ai))) {
		errmsg_set(err, errlen, "cannot resolve listen address \"%s\": %s", spec,
			gai_strerror(r));
		return -EINVAL;
	}
	loopback = net_addr_is_loopback(ai->ai_addr);
	if (need_loopback && !loopback) {
		errmsg_set(err, errlen, "%s is not a loopback address", spec);
		r = -EPERM;
		goto end;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		goto fail_sys;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl))
		goto fail_sys;
	*out = (struct net_listener){.fd = fd, .port = sockaddr_port(&ss), .loopback = loopback};
	fd = -1;
	r = 0;
	goto end;
fail_sys:
	r = -errno; /* before close() can change it */
	errmsg_set(err, errlen, "cannot listen on %s: %s", spec, strerror(-r));
end:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return r;
}
