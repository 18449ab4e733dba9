/* reason.c — see reason.h. */
#include "reason.h"

#include <stdarg.h>

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

