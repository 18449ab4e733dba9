/* frame.c — the proc: framing's text (see frame.h and PROC.md). */
#include "frame.h"
#include "reason.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define WORD_TASK "TASK "

static const struct {
	const char *word;
	size_t len;
} replies[] = {
	[FRAME_RESULT] = {"RESULT", sizeof "RESULT" - 1},
	[FRAME_FAIL] = {"FAIL", sizeof "FAIL" - 1},
	[FRAME_RETRY] = {"RETRY", sizeof "RETRY" - 1},
};

int frame_put_task(struct buf *b, uint64_t id, unsigned attempt, const void *payload,
		   size_t len)
{
	/* "TASK " id " " attempt " " len "\n" payload "\n" */
	size_t head = sizeof WORD_TASK - 1 + 3 * (U64_DIGITS + 1);
	if (buf_reserve(b, head + len + 1))
		return -ENOMEM;
	char *p = b->data + b->len;
	memcpy(p, WORD_TASK, sizeof WORD_TASK - 1);
	p += sizeof WORD_TASK - 1;
	p = u64_put(p, id);
	*p++ = ' ';
	p = u64_put(p, attempt);
	*p++ = ' ';
	p = u64_put(p, len);
	*p++ = '\n';
	if (len)
		memcpy(p, payload, len);
	p += len;
	*p++ = '\n';
	b->len = (size_t)(p - b->data);
	b->data[b->len] = '\0';
	return 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Reads a decimal u64 at *p (up to end); 0 or -1 (no digits, overflow). */
static int get_u64(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	if (s == end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*p = s;
	*v = x;
	return 0;
}

int frame_parse_reply(const char *line, size_t n, enum frame_reply *word, uint64_t *id,
		      uint64_t *len, const char **why)
{
	const char *p = line, *end = line + n;
	if (end > p && end[-1] == '\r')
		end--;
	while (p < end && is_blank(*p))
		p++;
	const char *w = p;
	while (p < end && !is_blank(*p))
		p++;
	size_t wl = (size_t)(p - w);
	int k = -1;
	for (int i = 0; i < (int)(sizeof replies / sizeof replies[0]); i++)
		if (wl == replies[i].len && memcmp(w, replies[i].word, wl) == 0)
			k = i;
	if (k < 0) {
		*why = "a reply header must start with RESULT, FAIL or RETRY";
		return -EINVAL;
	}
	while (p < end && is_blank(*p))
		p++;
	if (get_u64(&p, end, id) || (p < end && !is_blank(*p))) {
		*why = "bad task id in a reply header (want a decimal number)";
		return -EINVAL;
	}
	while (p < end && is_blank(*p))
		p++;
	if (get_u64(&p, end, len)) {
		*why = "bad length in a reply header (want a decimal byte count)";
		return -EINVAL;
	}
	while (p < end && is_blank(*p))
		p++;
	if (p != end) {
		*why = "a reply header has words after its length";
		return -EINVAL;
	}
	*word = (enum frame_reply)k;
	return 0;
}

/* ---- the reader ---- */

enum reader_state {
	R_HEADER,  /* reading a header line */
	R_BODY,    /* reading `left` more body bytes */
	R_TERM,    /* want the "\n" after the body */
	R_TERM_LF, /* got "\r" after the body, want "\n" */
};

void frame_reader_init(struct frame_reader *r, size_t max_body)
{
	memset(r, 0, sizeof *r);
	r->max_body = max_body;
	r->state = R_HEADER;
}

void frame_reader_reset(struct frame_reader *r)
{
	r->state = R_HEADER;
	r->hlen = 0;
	r->left = 0;
	r->nomem = 0;
	buf_reset(&r->body);
}

void frame_reader_free(struct frame_reader *r)
{
	buf_free(&r->body);
}

static int broken(struct frame_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int broken(struct frame_reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof r->why, fmt, ap);
	va_end(ap);
	return -1;
}

static int header_end(struct frame_reader *r, const char *line, size_t n,
		      const struct frame_reply_ops *ops)
{
	const char *why;
	char shown[64];
	if (frame_parse_reply(line, n, &r->word, &r->id, &r->left, &why)) {
		handler__quote(shown, sizeof shown, line, n < 40 ? n : 40);
		return broken(r, "%s (got \"%s\")", why, shown);
	}
	if (ops->header(ops->ctx, r->word, r->id))
		return broken(r, "a reply for task %llu, which it does not hold",
			      (unsigned long long)r->id);
	buf_reset(&r->body);
	r->nomem = 0;
	r->state = r->left ? R_BODY : R_TERM;
	return 0;
}

int frame_read(struct frame_reader *r, const char *d, size_t n, const struct frame_reply_ops *ops)
{
	size_t i = 0;
	while (i < n) {
		switch (r->state) {
		case R_HEADER: {
			const char *nl = memchr(d + i, '\n', n - i);
			size_t take = nl ? (size_t)(nl - (d + i)) : n - i;
			if (r->hlen + take > FRAME_HEADER_MAX + 1) /* + its "\r" */
				return broken(r, "a reply header line is over %d bytes",
					      FRAME_HEADER_MAX);
			if (nl && !r->hlen) {
				/* The usual case: the whole line is here. */
				if (header_end(r, d + i, take, ops))
					return -1;
			} else {
				memcpy(r->hdr + r->hlen, d + i, take);
				r->hlen += take;
				if (nl && header_end(r, r->hdr, r->hlen, ops))
					return -1;
			}
			i += take;
			if (nl) {
				i++;
				r->hlen = 0;
			}
			break;
		}
		case R_BODY: {
			size_t take = n - i < r->left ? n - i : (size_t)r->left;
			size_t room = r->max_body - r->body.len;
			size_t keep = take < room ? take : room; /* the rest is dropped */
			if (keep && !r->nomem && buf_append(&r->body, d + i, keep))
				r->nomem = 1;
			i += take;
			r->left -= take;
			if (!r->left)
				r->state = R_TERM;
			break;
		}
		case R_TERM:
		case R_TERM_LF:
			if (d[i] == '\r' && r->state == R_TERM) {
				r->state = R_TERM_LF;
				i++;
				break;
			}
			if (d[i] != '\n')
				return broken(r, "the body of task %llu is not followed by \"\\n\" "
					      "(is its length right?)", (unsigned long long)r->id);
			i++;
			r->state = R_HEADER;
			ops->reply(ops->ctx, r->word, r->id, r->body.len ? r->body.data : "",
				   r->body.len, r->nomem);
			break;
		}
	}
	return 0;
}
