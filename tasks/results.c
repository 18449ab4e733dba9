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
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Appends a string literal at o, giving the new end. */
#define PUT(o, lit) ((char *)memcpy((o), (lit), sizeof(lit) - 1) + sizeof(lit) - 1)

/* Fixed text of one line: keys, quotes, names, 4 numbers of 20 digits, the
 * line number and '\n', with room to spare. */
#define FIXED_MAX 256
/* Largest string length whose escaped form (6 bytes per byte) still fits. */
#define ESCAPE_MAX (SIZE_MAX / 32)

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

int results_sink_init(struct results_sink *s, int fd)
{
	struct stat st;

	memset(s, 0, sizeof *s);
	s->fd = fd;
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

/* Bytes of the next write from p (n > 0 left): all of them for a regular
 * file; in chunked mode the longest run of whole lines within PIPE_BUF, or a
 * line longer than PIPE_BUF alone. */
static size_t chunk_len(const struct results_sink *s, const char *p, size_t n)
{
	if (!s->chunked || n <= PIPE_BUF)
		return n;
	const char *nl = memrchr(p, '\n', PIPE_BUF);
	if (nl)
		return (size_t)(nl - p) + 1;
	nl = memchr(p + PIPE_BUF, '\n', n - PIPE_BUF);
	return nl ? (size_t)(nl - p) + 1 : n;
}

int results_sink_flush(struct results_sink *s)
{
	struct buf *b = &s->buf;
	size_t off = 0;
	int err = 0;

	while (off < b->len && !err) {
		size_t n = chunk_len(s, b->data + off, b->len - off);
		off += write_all(s->fd, b->data + off, n, &err);
	}
	if (off == b->len) {
		buf_reset(b);
	} else if (off > 0) { /* keep what was not written */
		memmove(b->data, b->data + off, b->len - off);
		b->len -= off;
		b->data[b->len] = '\0';
	}
	return err;
}

int results_sink_maybe_flush(struct results_sink *s)
{
	return s->buf.len >= RESULTS_SINK_FLUSH_AT ? results_sink_flush(s) : 0;
}

void results_sink_free(struct results_sink *s)
{
	buf_free(&s->buf);
}
