/* results.c — JSON result lines and a sink that keeps them whole.
 *
 * Hot path: result_format runs once per finished task, so it reserves the
 * worst case once and stores pieces with memcpy (no printf, no checks per
 * piece). */
#include "results.h"

#include "forq.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Appends a string literal at o, giving the new end. */
#define PUT(o, lit) ((char *)memcpy((o), (lit), sizeof(lit) - 1) + sizeof(lit) - 1)

/* Fixed text of one line: keys, quotes, names (the queue's up to 32 bytes),
 * 4 numbers of 20 digits, the line number and '\n', with room to spare. */
#define FIXED_MAX 320
/* Largest string length whose escaped form (6 bytes per byte) still fits. */
#define ESCAPE_MAX (SIZE_MAX / 32)
/* The writers' lock of a results file is held for a few syscalls; a writer
 * waits at most this long for it (one stopped inside must not stall all). */
#define LOCK_WAIT_NS (200ull * 1000000u)
#define LOCK_SPINS 64        /* tries with sched_yield before sleeping */
#define LOCK_NAP_NS 100000L  /* then a nap between tries */
#define MEND_CHUNK 4096      /* bytes read per step back to the last '\n' */

static const char *prio_name(int p)
{
	switch (p) {
	case FORQ_HIGH: return "high";
	case FORQ_NORMAL: return "normal";
	case FORQ_LOW: return "low";
	}
	return "unknown";
}

const char *result_status_name(int status)
{
	switch (status) {
	case FORQ_RESULT_DONE: return "done";
	case FORQ_RESULT_FAILED: return "failed";
	case FORQ_RESULT_DEAD: return "dead";
	case FORQ_RESULT_RETRY: return "retry";
	case FORQ_RESULT_UNFINISHED: return "unfinished";
	case FORQ_RESULT_PURGED: return "purged";
	case FORQ_RESULT_CANCELLED: return "cancelled";
	}
	return "unknown";
}

static char *put_u64(char *o, uint64_t v)
{
	char d[20];
	size_t i = sizeof d;
	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	memcpy(o, d + i, sizeof d - i);
	return o + sizeof d - i;
}

static char *put_name(char *o, const char *s)
{
	size_t n = strlen(s);
	memcpy(o, s, n);
	return o + n;
}

/* Escapes s at o (b->data <= o, room reserved by the caller, so it cannot
 * fail) and gives the new end. */
static char *put_escaped(struct buf *b, char *o, const char *s, size_t n)
{
	b->len = (size_t)(o - b->data);
	(void)buf_json_escape(b, s, n);
	return b->data + b->len;
}

int result_format(struct buf *b, const struct result_rec *r)
{
	const char *src = r->source_file ? r->source_file : "-";
	size_t srclen = r->line > 0 ? strlen(src) : 0;
	char *o;
	int e;

	if (r->task_len > ESCAPE_MAX || r->text_len > ESCAPE_MAX || srclen > ESCAPE_MAX)
		return -ENOMEM;
	/* One reservation for the worst case, then plain stores: this is the
	 * only step that can fail. */
	e = buf_reserve(b, 6 * (r->task_len + r->text_len + srclen) + FIXED_MAX);
	if (e)
		return e;

	o = b->data + b->len;
	o = PUT(o, "{\"id\":");
	o = put_u64(o, r->id);
	o = PUT(o, ",\"task\":\"");
	o = put_escaped(b, o, r->task, r->task_len);
	o = PUT(o, "\",\"status\":\"");
	o = put_name(o, result_status_name(r->status));
	if (r->status == FORQ_RESULT_DONE)
		o = PUT(o, "\",\"result\":\"");
	else
		o = PUT(o, "\",\"error\":\"");
	o = put_escaped(b, o, r->text, r->text_len);
	o = PUT(o, "\",\"attempts\":");
	o = put_u64(o, r->attempts);
	o = PUT(o, ",\"priority\":\"");
	o = put_name(o, prio_name(r->prio));
	o = PUT(o, "\",\"wait_us\":");
	o = put_u64(o, r->wait_us);
	o = PUT(o, ",\"run_us\":");
	o = put_u64(o, r->run_us);
	if (r->queue) {
		o = PUT(o, ",\"queue\":\"");
		o = put_name(o, r->queue);
		*o++ = '"';
	}
	if (r->line > 0) {
		o = PUT(o, ",\"source\":\"");
		o = put_escaped(b, o, src, srclen);
		*o++ = ':';
		o = put_u64(o, r->line);
		*o++ = '"';
	}
	o = PUT(o, "}\n");
	b->len = (size_t)(o - b->data);
	*o = '\0';
	return 0;
}

/* A read-only descriptor of our own on the file behind fd (which is
 * usually write-only), to see its last bytes; -1 if none can be had. */
static int open_reader(int fd)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Takes the writers' lock of a regular file: a POSIX record lock, which is
 * per process, so forqd and its consumers exclude each other although they
 * share one open file, and which the kernel drops when its holder dies.
 * Returns 0 (locked), 1 (the file system has no locks: go on unlocked) or
 * -EAGAIN (another writer held it for LOCK_WAIT_NS). */
static int lock_file(int fd)
{
	struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	uint64_t deadline = 0;
	for (unsigned k = 0;; k++) {
		if (fcntl(fd, F_SETLK, &l) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EACCES && errno != EAGAIN)
			return 1;
		if (k < LOCK_SPINS) {
			sched_yield();
			continue;
		}
		if (!deadline)
			deadline = now_ns() + LOCK_WAIT_NS;
		else if (now_ns() >= deadline)
			return -EAGAIN;
		struct timespec nap = {0, LOCK_NAP_NS};
		nanosleep(&nap, NULL);
	}
}

static void unlock_file(int fd)
{
	struct flock l = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
	fcntl(fd, F_SETLK, &l);
}

/* With the lock held: if the file does not end in '\n' (a writer was
 * killed, or refused by a full disk, inside a line), cuts it back to its
 * last '\n'. rfd reads it (-1: cannot look, the file is left as it is).
 * Returns the size after, or -errno. */
static off_t mend(int fd, int rfd)
{
	struct stat st;
	char chunk[MEND_CHUNK];
	if (fstat(fd, &st) < 0)
		return -errno;
	off_t end = st.st_size;
	if (end == 0 || rfd < 0)
		return end;
	off_t at = end;
	while (at > 0) {
		size_t n = at < (off_t)sizeof chunk ? (size_t)at : sizeof chunk;
		ssize_t r = pread(rfd, chunk, n, at - (off_t)n);
		if (r != (ssize_t)n)
			return r < 0 ? -errno : end; /* shrank under us: not ours to cut */
		const char *nl = memrchr(chunk, '\n', n);
		if (nl) {
			at = at - (off_t)n + (nl - chunk) + 1;
			break;
		}
		at -= (off_t)n;
	}
	if (at == end)
		return end;
	if (ftruncate(fd, at) < 0)
		return -errno;
	return at;
}

int results_sink_init(struct results_sink *s, int fd)
{
	struct stat st;

	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->rfd = -1;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode)) {
		s->chunked = 1;
	} else if (S_ISREG(st.st_mode)) {
		/* A shell's `>` opens without O_APPEND; other writers of the same
		 * file would then overwrite each other's lines. */
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0)
			return -errno;
		if (!(fl & O_APPEND) && fcntl(fd, F_SETFL, fl | O_APPEND) < 0)
			return -errno;
		s->rfd = open_reader(fd);
	} else {
		return -EINVAL;
	}
	return 0;
}

struct buf *results_sink_buf(struct results_sink *s)
{
	return &s->buf;
}

/* Writes p[0, n) fully, retrying EINTR and short writes. Returns the bytes
 * written and sets *err to -errno when it stopped early. */
static size_t write_all(int fd, const char *p, size_t n, int *err)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			*err = -errno;
			break;
		}
		done += (size_t)w;
	}
	return done;
}

/* Drops the first n bytes of b. */
static void consume(struct buf *b, size_t n)
{
	if (n == b->len) {
		buf_reset(b);
	} else if (n > 0) {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
		b->data[b->len] = '\0';
	}
}

/* Bytes of the next write from p (n > 0 left): in chunked mode the longest
 * run of whole lines within PIPE_BUF, or a line longer than PIPE_BUF alone. */
static size_t chunk_len(const char *p, size_t n)
{
	if (n <= PIPE_BUF)
		return n;
	const char *nl = memrchr(p, '\n', PIPE_BUF);
	if (nl)
		return (size_t)(nl - p) + 1;
	nl = memchr(p + PIPE_BUF, '\n', n - PIPE_BUF);
	return nl ? (size_t)(nl - p) + 1 : n;
}

/* Pipe-like: what was not written stays buffered, a cut line included, and
 * the next flush goes on from there: the reader gets its rest first. */
static int flush_stream(struct results_sink *s)
{
	struct buf *b = &s->buf;
	size_t off = 0;
	int err = 0;
	while (off < b->len && !err)
		off += write_all(s->fd, b->data + off, chunk_len(b->data + off, b->len - off), &err);
	consume(b, off);
	return err;
}

/* Regular file: under the writers' lock, mend a cut tail, then one write of
 * whole lines; if it stops short, cut the file back to the last whole line
 * it wrote, and keep the rest (whole lines) for the next flush. */
static int flush_file(struct results_sink *s)
{
	struct buf *b = &s->buf;
	int err = 0, locked = lock_file(s->fd);
	if (locked < 0)
		return locked;
	/* Unlocked (no locks on this file system) another writer may be inside
	 * a line: nothing is cut then, and a cut of ours is ended with '\n'. */
	off_t end = mend(s->fd, locked == 0 ? s->rfd : -1);
	if (end < 0) {
		err = (int)end;
		goto out;
	}
	size_t done = write_all(s->fd, b->data, b->len, &err);
	size_t whole = done;
	if (done < b->len) {
		const char *nl = done ? memrchr(b->data, '\n', done) : NULL;
		whole = nl ? (size_t)(nl - b->data) + 1 : 0;
		if (whole == done) {
			/* stopped at a line's end: nothing to cut */
		} else if (locked == 0) {
			if (ftruncate(s->fd, end + (off_t)whole) < 0) {
				/* The next flush's mend finds the cut line. */
			}
		} else if (write(s->fd, "\n", 1) < 0) {
			/* Best effort: the cut line stays unended. */
		}
	}
	consume(b, whole);
out:
	if (locked == 0)
		unlock_file(s->fd);
	return err;
}

int results_sink_flush(struct results_sink *s)
{
	if (s->buf.len == 0)
		return 0;
	return s->chunked ? flush_stream(s) : flush_file(s);
}

int results_sink_maybe_flush(struct results_sink *s)
{
	return s->buf.len >= RESULTS_SINK_FLUSH_AT ? results_sink_flush(s) : 0;
}

void results_sink_free(struct results_sink *s)
{
	buf_free(&s->buf);
	if (s->rfd >= 0) {
		close(s->rfd);
		s->rfd = -1;
	}
}

int results_fd_mend(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	int locked = lock_file(fd);
	if (locked < 0)
		return locked;
	int rfd = open_reader(fd);
	off_t end = mend(fd, rfd);
	if (locked == 0)
		unlock_file(fd);
	if (rfd >= 0)
		close(rfd); /* after the unlock: a close drops the process's locks */
	return end < 0 ? (int)end : 0;
}
