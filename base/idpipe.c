/* idpipe.c — finished ids on a pipe (idpipe.h). */
#include "idpipe.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int idpipe_write(int fd, const uint64_t *ids, size_t n)
{
	uint8_t msg[4 + 8 * IDPIPE_MAX];
	while (n) {
		uint32_t k = n < IDPIPE_MAX ? (uint32_t)n : IDPIPE_MAX;
		memcpy(msg, &k, 4);
		memcpy(msg + 4, ids, 8 * (size_t)k);
		size_t len = 4 + 8 * (size_t)k;
		ssize_t w;
		while ((w = write(fd, msg, len)) < 0 && errno == EINTR)
			;
		if (w != (ssize_t)len) /* under PIPE_BUF: whole or nothing */
			return w < 0 ? -errno : -EIO;
		ids += k;
		n -= k;
	}
	return 0;
}

size_t idpipe_parse(const uint8_t *buf, size_t have,
		    void (*fn)(void *ctx, const uint64_t *ids, size_t n), void *ctx)
{
	size_t off = 0;
	while (have - off >= 4) {
		uint32_t k;
		memcpy(&k, buf + off, 4);
		if (k == 0 || k > IDPIPE_MAX) /* not ours: drop what is there */
			return have;
		if (have - off < 4 + 8 * (size_t)k)
			break;
		uint64_t ids[IDPIPE_MAX];
		memcpy(ids, buf + off + 4, 8 * (size_t)k);
		fn(ctx, ids, k);
		off += 4 + 8 * (size_t)k;
	}
	return off;
}
