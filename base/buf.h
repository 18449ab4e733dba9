/* buf.h — a growable byte buffer, for text built in pieces (results, metrics,
 * protocol replies). `data` is always NUL-terminated when cap > 0.
 * Functions return 0 or -ENOMEM; on -ENOMEM the buffer is unchanged. */
#ifndef FORQ_BUF_H
#define FORQ_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

#define U64_DIGITS 20 /* UINT64_MAX = 18446744073709551615 */

/* Writes v in decimal at p (no NUL, at most U64_DIGITS bytes) and returns
 * the end. Hot path: wire lines (TASK, RESULT frames) are formatted per
 * task, and printf would be most of their cost. */
static inline char *u64_put(char *p, uint64_t v)
{
	char tmp[U64_DIGITS];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Appends s as the inside of a JSON string (quotes not included): escapes
 * ", \ and control bytes; invalid UTF-8 bytes become U+FFFD. */
int buf_json_escape(struct buf *b, const char *s, size_t n);

/* Offset of the first byte of s that is not valid UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF are invalid), or n if all is. */
size_t utf8_invalid_at(const char *s, size_t n);
void buf_reset(struct buf *b); /* len = 0, keeps the memory */
void buf_free(struct buf *b);

#endif
