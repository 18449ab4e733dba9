/* reason.c — see reason.h. */
#include "reason.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum handler_status handler__reason(struct buf *out, size_t mark, enum handler_status st,
				    const char *fmt, ...)
{
	out->len = mark;
	if (out->cap)
		out->data[mark] = '\0';
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(out, fmt, ap);
	va_end(ap);
	return r ? HANDLER_RETRY : st;
}

/* Control bytes become '?', so a reason never breaks a line-based reader. */
void handler__printable(char *dst, size_t cap, const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[k++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[k] = '\0';
}


void handler__keep_tail(char *tail, size_t cap, size_t *n, const char *p, size_t len)
{
	if (len >= cap) {
		memcpy(tail, p + len - cap, cap);
		*n = cap;
		return;
	}
	if (*n + len > cap) {
		size_t drop = *n + len - cap;
		memmove(tail, tail + drop, *n - drop);
		*n -= drop;
	}
	memcpy(tail + *n, p, len);
	*n += len;
}

void handler__last_line(char *dst, size_t cap, const char *e, size_t n)
{
	while (n && (e[n - 1] == '\n' || e[n - 1] == '\r' || e[n - 1] == ' ' || e[n - 1] == '\t'))
		n--;
	size_t start = n;
	while (start && e[start - 1] != '\n')
		start--;
	handler__printable(dst, cap, e + start, n - start);
}

void handler__quote(char *dst, size_t cap, const char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
}
