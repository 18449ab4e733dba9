/* idpipe.h — finished task ids on a pipe: consumers write the ids whose
 * result lines are written, one reader (the journal's, or the NATS bridge's)
 * takes them. A message is a 4-byte count k (1..IDPIPE_MAX, host order) and
 * k 8-byte ids, under PIPE_BUF: written whole or not at all. */
#ifndef FORQ_IDPIPE_H
#define FORQ_IDPIPE_H

#include <stddef.h>
#include <stdint.h>

#define IDPIPE_MAX 500 /* ids per message: 4 + 8 * 500 < PIPE_BUF */

/* Writes n ids (any n: several messages). 0, or -errno. */
int idpipe_write(int fd, const uint64_t *ids, size_t n);

/* Calls fn for each whole message in buf[0..have); returns the bytes
 * consumed (the caller keeps the rest for the next read). Bytes that are not
 * a message (a count of 0 or over IDPIPE_MAX) are all consumed, unread. */
size_t idpipe_parse(const uint8_t *buf, size_t have,
		    void (*fn)(void *ctx, const uint64_t *ids, size_t n), void *ctx);

#endif
