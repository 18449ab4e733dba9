/* results.h — task results as JSON lines, and the sink that writes them.
 *
 * One record is one line (key order fixed; "error" replaces "result" when the
 * status is not done; "source" only when line > 0):
 *   {"id":42,"task":"1+2","status":"done","result":"3","attempts":1,
 *    "priority":"normal","wait_us":12,"run_us":1,"source":"tasks.txt:7"}
 * Strings are escaped by buf_json_escape (invalid UTF-8 becomes U+FFFD), so a
 * line is valid JSON whatever the bytes. Changing keys or their order changes
 * what users' scripts parse: treat it as a format version change.
 *
 * A results_sink is owned by one process; several processes may each have one
 * on the same fd and their lines never interleave (see results_sink_init).
 */
#ifndef FORQ_RESULTS_H
#define FORQ_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct result_rec {
	uint64_t id;
	const char *task;        /* payload, any bytes */
	size_t task_len;
	int status;              /* enum forq_result_status: DONE, FAILED or DEAD */
	const char *text;        /* result (done) or error (failed/dead), any bytes */
	size_t text_len;
	unsigned attempts;       /* deliveries, this one included */
	uint64_t wait_us;        /* enqueue to start, in usec */
	uint64_t run_us;         /* handler run time, in usec */
	int prio;                /* enum forq_prio */
	const char *source_file; /* tasks file; NULL shows as "-" */
	unsigned line;           /* "source":"FILE:LINE" only when line > 0 */
	const char *queue;       /* the queue's name (letters, digits, '_', '-'; at
				  * most 32 bytes); NULL: not shown */
};

/* Appends r as one JSON line ending in '\n'. Returns 0 or -ENOMEM (b is then
 * unchanged). */
int result_format(struct buf *b, const struct result_rec *r);

/* "done", "failed", "dead" ("retry", "unknown" for other values). */
const char *result_status_name(int status);

/* Bytes buffered before results_sink_maybe_flush writes. */
#define RESULTS_SINK_FLUSH_AT (64 * 1024)

/* Lines from several processes writing one fd stay whole because:
 *  - pipe, FIFO, socket or char device: each write(2) is at most PIPE_BUF
 *    bytes and ends at a line boundary (POSIX makes such pipe writes atomic);
 *    a single line longer than PIPE_BUF is written alone, in a loop, and may
 *    interleave with others' lines. What a failed write left unwritten stays
 *    buffered, the rest of a cut line first, for the next flush;
 *  - regular file: written with O_APPEND, which init sets if missing, under
 *    the writers' lock (a POSIX record lock on the file, held for a few
 *    syscalls, waited for at most 200 ms: -EAGAIN after that). With the lock
 *    held a flush first cuts a partial last line (a writer killed inside a
 *    write, or one that failed and could not cut its own) back to the last
 *    '\n', then writes; if the write stops short (ENOSPC, EFBIG, EIO), it
 *    cuts the file back to the last whole line it wrote and keeps the lines
 *    not written. So the file always ends at a whole line when no writer is
 *    inside, and a line is either all there or not there: a reader that
 *    keeps the flushed lines' tasks as written is right. */
struct results_sink {
	/* public */
	int fd;          /* not owned: never closed here */
	/* private */
	int rfd;         /* regular file: our read-only descriptor of it, or -1 */
	int chunked;     /* 1: pipe-like, writes of <= PIPE_BUF at line ends */
	struct buf buf;  /* lines not yet written */
};

/* Prepares s for fd (fstat; F_SETFL O_APPEND for a regular file, and a
 * read-only descriptor of it through /proc/self/fd to see its tail: without
 * one, a cut left by another writer is not mended). Returns 0 or -errno
 * (-EINVAL for a directory or an fd of unknown kind). */
int results_sink_init(struct results_sink *s, int fd);

/* The buffer to append whole lines to (result_format). */
struct buf *results_sink_buf(struct results_sink *s);

/* Writes everything buffered, retrying EINTR and short writes. Returns 0 or
 * -errno (e.g. -EPIPE, -ENOSPC, -EFBIG, -EAGAIN); then the lines not written
 * stay buffered, and none of them is in the file in part. */
int results_sink_flush(struct results_sink *s);

/* Flushes when RESULTS_SINK_FLUSH_AT bytes or more are buffered; else 0. */
int results_sink_maybe_flush(struct results_sink *s);

/* Frees the buffer without writing it (flush first) and without closing fd. */
void results_sink_free(struct results_sink *s);

/* For a regular file behind fd: under the writers' lock, cuts a partial last
 * line (its writer died inside a write) back to the last '\n'. 0 for other
 * kinds of fd. Returns 0 or -errno. */
int results_fd_mend(int fd);

#endif
