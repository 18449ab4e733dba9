/* frame.h — the frames of proc: handlers (handlers/PROC.md, version 1): a
 * header line, then exactly <len> bytes of body, then "\n".
 *
 *   to the child:    TASK <id> <attempt> <len>\n<payload>\n
 *   from the child:  RESULT|FAIL|RETRY <id> <len>\n<body>\n
 *
 * Pure text work, no I/O: a formatter, a header parser and a reader that
 * turns the child's byte stream, cut anywhere, into whole replies. Private
 * to handlers/.
 */
#ifndef FORQ_FRAME_H
#define FORQ_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define FRAME_VERSION "1"     /* FORQ_PROC in the child's environment */
#define FRAME_HEADER_MAX 128  /* bytes of a header line before its "\n" */

/* The reply words, in the order of handler_status (HANDLER_OK, _FAIL, _RETRY). */
enum frame_reply { FRAME_RESULT = 0, FRAME_FAIL = 1, FRAME_RETRY = 2 };

/* Appends a TASK frame for the payload (len bytes, any bytes) to b.
 * 0 or -ENOMEM (b unchanged). */
int frame_put_task(struct buf *b, uint64_t id, unsigned attempt, const void *payload,
		   size_t len);

/* Parses a reply header: line holds its n bytes without the "\n" (a "\r"
 * before it is allowed, as are several blanks between words and blanks
 * around them). Sets *word, *id and *len. Returns 0, or -EINVAL with what is
 * wrong in why (a static string). */
int frame_parse_reply(const char *line, size_t n, enum frame_reply *word, uint64_t *id,
		      uint64_t *len, const char **why);

/* The reader of a child's replies. Memory is bounded: a body is kept up to
 * max_body bytes, the rest is read and dropped. */
struct frame_reader {
	/* private */
	int state;
	char hdr[FRAME_HEADER_MAX + 2]; /* a header cut across reads, "\r" included */
	size_t hlen;
	enum frame_reply word;          /* the reply being read */
	uint64_t id;
	uint64_t left;                  /* its body bytes still to come */
	size_t max_body;
	struct buf body;
	int nomem;                      /* some of the body could not be kept */
	/* public: why frame_read failed */
	char why[160];
};

struct frame_reply_ops {
	/* A reply's header has come: 0 to read on, -1 to refuse it (a task
	 * the child does not hold). */
	int (*header)(void *ctx, enum frame_reply word, uint64_t id);
	/* Its whole reply: body holds len bytes and a NUL (cut at max_body; if
	 * nomem, less than that was kept). */
	void (*reply)(void *ctx, enum frame_reply word, uint64_t id, const char *body, size_t len,
		      int nomem);
	void *ctx;
};

void frame_reader_init(struct frame_reader *r, size_t max_body);
/* A new stream (a new child): forgets a reply cut short; keeps the memory. */
void frame_reader_reset(struct frame_reader *r);
void frame_reader_free(struct frame_reader *r);

/* Takes the next n bytes of the stream, calling ops for each header and each
 * whole reply. Returns 0, or -1 when the stream breaks the framing (a bad or
 * over-long header, a refused id, a body not followed by "\n"): r->why says
 * how; the stream is then beyond repair. */
int frame_read(struct frame_reader *r, const char *d, size_t n, const struct frame_reply_ops *ops);

#endif
