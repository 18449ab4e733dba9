/* tasks_file.c — tasks-file lines and a block reader for them.
 *
 * Hot path: tasks_reader_next runs once per line of files with millions of
 * lines, so it only scans the block in memory (memchr) and reads 1 MiB at a
 * time; no allocation and no syscall per line. */
#include "tasks_file.h"

#include "forq.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "errmsg.h"
#include "json_payload.h"

#define PRIO_PREFIX "priority="
#define PRIO_PREFIX_LEN (sizeof(PRIO_PREFIX) - 1)
#define PRIO_CHOICES "(use high, normal or low)"
#define SHOWN_MAX 32            /* bytes of a bad priority value quoted in errors */
#define READ_BLOCK (1u << 20)   /* bytes per read(2) at most; the buffer size */
#define STDIN_PATH "-"
#define STDIN_NAME "<stdin>"

struct tasks_reader {
	enum tasks_format format;
	char sep;          /* what ends a record: '\n', or '\0' for TASKS_NUL */
	int prio;          /* every task's, for TASKS_NUL and TASKS_JSONL */
	struct buf text;   /* TASKS_JSONL: the decoded payload */
	int fd;
	int own_fd;        /* 0 for stdin: not ours to close */
	char *name;        /* the file as errors show it */
	size_t max_payload;
	size_t max_line;   /* longest accepted line in bytes, '\n' excluded */
	char *buf;         /* cap > max_line, so a whole line always fits */
	size_t cap;
	size_t start, end; /* unread bytes: buf[start, end) */
	unsigned lineno;   /* lines consumed so far */
	int eof;           /* read(2) returned 0 */
	int skipping;      /* inside an over-long line: drop bytes up to '\n' */
	int error;         /* sticky -errno of a failed read */
};

static const char *const prio_names[] = {
	[FORQ_HIGH] = "high",
	[FORQ_NORMAL] = "normal",
	[FORQ_LOW] = "low",
};

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errmsg_vset(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int prio_parse(const char *s, size_t n)
{
	for (int p = FORQ_HIGH; p <= FORQ_LOW; p++)
		if (strlen(prio_names[p]) == n && memcmp(prio_names[p], s, n) == 0)
			return p;
	return -EINVAL;
}

/* Copies at most SHOWN_MAX bytes of s into dst as printable ASCII, so that a
 * bad value quoted in an error cannot garble a terminal. */
static void show(char dst[SHOWN_MAX + 4], const char *s, size_t n)
{
	size_t k = n > SHOWN_MAX ? SHOWN_MAX : n;
	for (size_t i = 0; i < k; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (n > k) {
		memcpy(dst + k, "...", 3);
		k += 3;
	}
	dst[k] = '\0';
}

int tasks_line_parse(const char *line, size_t len, size_t max_payload, struct task_line *out,
		     char *err, size_t errlen)
{
	const char *p = line, *e = line + len;
	int prio = FORQ_NORMAL;

	while (e > p && (is_blank(e[-1]) || e[-1] == '\r'))
		e--;
	while (p < e && is_blank(*p))
		p++;
	if (p == e || *p == '#')
		return 0;
	if (memchr(p, '\0', (size_t)(e - p)))
		return fail(err, errlen, "line contains a NUL byte");

	if ((size_t)(e - p) >= PRIO_PREFIX_LEN && memcmp(p, PRIO_PREFIX, PRIO_PREFIX_LEN) == 0) {
		const char *v = p + PRIO_PREFIX_LEN, *ve = v;
		while (ve < e && !is_blank(*ve))
			ve++;
		if (ve == v)
			return fail(err, errlen, "missing priority after \"" PRIO_PREFIX "\" " PRIO_CHOICES);
		prio = prio_parse(v, (size_t)(ve - v));
		if (prio < 0) {
			char shown[SHOWN_MAX + 4];
			show(shown, v, (size_t)(ve - v));
			return fail(err, errlen, "unknown priority \"%s\" " PRIO_CHOICES, shown);
		}
		p = ve;
		while (p < e && is_blank(*p))
			p++;
		if (p == e)
			return fail(err, errlen, "empty payload after " PRIO_PREFIX "%s", prio_names[prio]);
	}

	size_t n = (size_t)(e - p);
	if (n > max_payload)
		return fail(err, errlen, "payload is %zu bytes, over the limit of %zu", n, max_payload);
	out->prio = prio;
	out->payload = p;
	out->len = n;
	return 1;
}

int tasks_format_parse(const char *name)
{
	static const char *const names[] = {[TASKS_LINES] = "lines", [TASKS_NUL] = "nul",
					    [TASKS_JSONL] = "jsonl"};
	for (int f = TASKS_LINES; f <= TASKS_JSONL; f++)
		if (strcmp(name, names[f]) == 0)
			return f;
	return -EINVAL;
}

int tasks_reader_open(struct tasks_reader **rp, const char *path, size_t max_payload, char *err,
		      size_t errlen)
{
	return tasks_reader_open_as(rp, path, TASKS_LINES, FORQ_NORMAL, max_payload, err, errlen);
}

int tasks_reader_open_as(struct tasks_reader **rp, const char *path, enum tasks_format format,
			 int prio, size_t max_payload, char *err, size_t errlen)
{
	struct tasks_reader *r = NULL;
	int is_stdin = strcmp(path, STDIN_PATH) == 0;
	int ret;

	*rp = NULL;
	if (max_payload > SIZE_MAX / 2 - READ_BLOCK) {
		fail(err, errlen, "max payload of %zu bytes is too large", max_payload);
		return -EINVAL;
	}
	r = calloc(1, sizeof *r);
	if (!r)
		goto nomem;
	r->fd = -1;
	r->format = format;
	r->sep = format == TASKS_NUL ? '\0' : '\n';
	r->prio = prio;
	r->max_payload = max_payload;
	/* A JSON string may spell each byte as a 6-byte \u escape. */
	r->max_line = (format == TASKS_JSONL ? 6 * max_payload : max_payload) + TASKS_LINE_SLACK;
	r->cap = r->max_line + 1 > READ_BLOCK ? r->max_line + 1 : READ_BLOCK;
	r->name = strdup(is_stdin ? STDIN_NAME : path);
	r->buf = malloc(r->cap);
	if (!r->name || !r->buf)
		goto nomem;
	if (is_stdin) {
		r->fd = STDIN_FILENO;
	} else {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			ret = -errno;
			fail(err, errlen, "cannot open %s: %s", path, strerror(-ret));
			goto error;
		}
		r->own_fd = 1;
	}
	*rp = r;
	return 0;

nomem:
	ret = -ENOMEM;
	fail(err, errlen, "cannot open %s: %s", path, strerror(ENOMEM));
error:
	tasks_reader_close(r);
	return ret;
}

/* Reads more bytes after buf[end], moving the unread part to the front first.
 * Returns 0 (eof set at end of file) or -errno. */
static int fill(struct tasks_reader *r)
{
	if (r->start == r->end) {
		r->start = r->end = 0;
	} else if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	for (;;) {
		ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (n > 0) {
			r->end += (size_t)n;
			return 0;
		}
		if (n == 0) {
			r->eof = 1;
			return 0;
		}
		if (errno != EINTR)
			return -errno;
	}
}

/* Reports the current line as bad: `FILE:LINE: reason` (`FILE: record N:
 * reason` for NUL-ended records, which have no lines). */
static int bad_line(struct tasks_reader *r, const char *reason, char *err, size_t errlen)
{
	if (r->format == TASKS_NUL)
		return fail(err, errlen, "%s: record %u: %s", r->name, r->lineno, reason);
	return fail(err, errlen, "%s:%u: %s", r->name, r->lineno, reason);
}

static int too_long(struct tasks_reader *r, char *err, size_t errlen)
{
	char why[64];
	snprintf(why, sizeof why, "%s is longer than %zu bytes",
		 r->format == TASKS_NUL ? "record" : "line", r->max_line);
	return bad_line(r, why, err, errlen);
}

/* A NUL-ended record is its payload, byte for byte. */
static int record_parse(struct tasks_reader *r, const char *s, size_t len, struct task_line *out,
			char *err, size_t errlen)
{
	if (len == 0)
		return fail(err, errlen, "empty payload");
	if (len > r->max_payload)
		return fail(err, errlen, "payload is %zu bytes, over the limit of %zu", len,
			    r->max_payload);
	*out = (struct task_line){.prio = r->prio, .payload = s, .len = len};
	return 1;
}

/* A line holding one JSON value: its payload (json_payload.h). */
static int json_line_parse(struct tasks_reader *r, const char *s, size_t len,
			   struct task_line *out, char *err, size_t errlen)
{
	const char *end = NULL;
	size_t i = 0;
	while (i < len && (is_blank(s[i]) || s[i] == '\r'))
		i++;
	if (i == len)
		return 0;
	if (json_has_nul_escape(s, len))
		return fail(err, errlen, "\\u0000 is not allowed in payloads");
	cJSON *v = cJSON_ParseWithLengthOpts(s, len, &end, 0);
	if (!v)
		return fail(err, errlen, "malformed JSON at byte %zu",
			    end && end >= s && end <= s + len ? (size_t)(end - s) + 1 : (size_t)1);
	while (end < s + len && (is_blank(*end) || *end == '\r'))
		end++;
	buf_reset(&r->text);
	int rc = -1, e;
	if (end != s + len)
		fail(err, errlen, "text after the JSON value at byte %zu", (size_t)(end - s) + 1);
	else if ((e = json_payload(v, &r->text, err, errlen)) == -ENOMEM)
		fail(err, errlen, "out of memory");
	else if (e == 0 && r->text.len > r->max_payload)
		fail(err, errlen, "payload is %zu bytes, over the limit of %zu", r->text.len,
		     r->max_payload);
	else if (e == 0)
		rc = 1; /* else json_payload said why */
	cJSON_Delete(v);
	if (rc == 1)
		*out = (struct task_line){.prio = r->prio, .payload = r->text.data, .len = r->text.len};
	return rc;
}

int tasks_reader_next(struct tasks_reader *r, struct task_line *out, unsigned *lineno, char *err,
		      size_t errlen)
{
	for (;;) {
		if (r->error) {
			fail(err, errlen, "cannot read %s: %s", r->name, strerror(-r->error));
			return r->error;
		}
		char *s = r->buf + r->start;
		size_t avail = r->end - r->start;
		char *nl = memchr(s, r->sep, avail);
		size_t len;

		if (r->skipping) {
			if (nl) {
				r->start += (size_t)(nl - s) + 1;
				r->skipping = 0;
				continue;
			}
			r->start = r->end = 0; /* drop it all, keep looking */
			if (r->eof)
				return 0;
			r->error = fill(r);
			continue;
		}
		if (nl) {
			len = (size_t)(nl - s);
			r->start += len + 1;
		} else if (avail > r->max_line) {
			r->lineno++;
			*lineno = r->lineno;
			r->skipping = 1;
			r->start = r->end = 0;
			return too_long(r, err, errlen);
		} else if (r->eof) {
			if (avail == 0)
				return 0;
			len = avail; /* the last line has no '\n' */
			r->start = r->end;
		} else {
			r->error = fill(r);
			continue;
		}

		r->lineno++;
		*lineno = r->lineno;
		if (len > r->max_line)
			return too_long(r, err, errlen);
		char why[128];
		int rc = r->format == TASKS_NUL ? record_parse(r, s, len, out, why, sizeof why)
			 : r->format == TASKS_JSONL ? json_line_parse(r, s, len, out, why, sizeof why)
						    : tasks_line_parse(s, len, r->max_payload, out, why,
								       sizeof why);
		if (rc < 0)
			return bad_line(r, why, err, errlen);
		if (rc > 0)
			return 1;
	}
}

void tasks_reader_close(struct tasks_reader *r)
{
	if (!r)
		return;
	if (r->own_fd && r->fd >= 0)
		close(r->fd);
	free(r->buf);
	buf_free(&r->text);
	free(r->name);
	free(r);
}
