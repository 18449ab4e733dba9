/* netio.h — the little socket code the server baselines share: connect to a
 * loopback server (retrying while it starts), write all, and a buffered
 * reader for line-and-length text protocols (beanstalkd, RESP).
 * Functions return 0 / a length, or -errno; -EPIPE means the peer closed.
 * Blocking I/O throughout: bench_arm_timeout bounds the run. */
#ifndef FORQ_BENCH_NETIO_H
#define FORQ_BENCH_NETIO_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

struct net_rd {
	int fd;
	size_t r, w; /* unread bytes are buf[r, w) */
	char buf[1 << 16];
};

/* Connects to host:port (a numeric IPv4 address), retrying refused connects
 * for up to wait_ms while the server starts. Returns the fd or -errno. */
static inline int net_connect(const char *host, int port, int wait_ms)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	for (int waited = 0;; waited += 20) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			return fd;
		}
		int err = -errno;
		close(fd);
		if (err != -ECONNREFUSED || waited >= wait_ms)
			return err;
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
	}
}

/* The server baselines' start: --port given and --batch at most batch_max,
 * SIGPIPE ignored, rd connected. Returns 0, or 2 after saying why. */
static inline int net_bench_open(const char *prog, const struct bench_opts *o, int batch_max,
				 struct net_rd *rd)
{
	if (!o->port || o->batch > batch_max) {
		fprintf(stderr, "%s: --port is required and --batch at most %d\n", prog, batch_max);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	rd->fd = net_connect(o->host, o->port, 3000);
	if (rd->fd < 0) {
		fprintf(stderr, "%s: connect %s:%d: %s\n", prog, o->host, o->port, strerror(-rd->fd));
		return 2;
	}
	return 0;
}

/* Reads more into the buffer, moving what is unread to the front. */
static inline int net_fill(struct net_rd *rd)
{
	if (rd->r > 0) {
		memmove(rd->buf, rd->buf + rd->r, rd->w - rd->r);
		rd->w -= rd->r;
		rd->r = 0;
	}
	if (rd->w == sizeof rd->buf)
		return -ENOBUFS;
	for (;;) {
		ssize_t n = read(rd->fd, rd->buf + rd->w, sizeof rd->buf - rd->w);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		rd->w += (size_t)n;
		return 0;
	}
}

/* Sets *line to the next line without its "\r\n", NUL-terminated in place;
 * valid until the next call. Returns its length or -errno. */
static inline int net_line(struct net_rd *rd, char **line)
{
	static char none[1];
	*line = none; /* set on every path, errors too */
	for (;;) {
		char *s = rd->buf + rd->r;
		char *nl = memchr(s, '\n', rd->w - rd->r);
		if (nl) {
			size_t len = (size_t)(nl - s);
			if (len && s[len - 1] == '\r')
				len--;
			s[len] = '\0';
			rd->r = (size_t)(nl - rd->buf) + 1;
			*line = s;
			return (int)len;
		}
		int err = net_fill(rd);
		if (err)
			return err;
	}
}

/* Copies the next n bytes to dst (NULL skips them). */
static inline int net_bytes(struct net_rd *rd, void *dst, size_t n)
{
	if (n > sizeof rd->buf)
		return -ENOBUFS;
	while (rd->w - rd->r < n) {
		int err = net_fill(rd);
		if (err)
			return err;
	}
	if (dst)
		memcpy(dst, rd->buf + rd->r, n);
	rd->r += n;
	return 0;
}

#endif
