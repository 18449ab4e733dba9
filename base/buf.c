/* buf.c — growable byte buffer. */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int r = buf_reserve(b, n);
	if (r)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	char small[256];
	int n = vsnprintf(small, sizeof small, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof small)
		return buf_append(b, small, (size_t)n);
	int r = buf_reserve(b, (size_t)n);
	if (r)
		return r;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

size_t utf8_invalid_at(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		size_t len = utf8_seq_len(p + i, n - i);
		if (!len)
			return i;
		i += len;
	}
	return n;
}

/* Escapes the byte (or UTF-8 sequence) at p[0] of n into *o; returns the
 * bytes taken. */
static size_t escape_one(const unsigned char *p, size_t n, char **o)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c = p[0];
	char *q = *o;
	if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
		*q++ = (char)c;
	} else if (c < 0x80) {
		*q++ = '\\';
		switch (c) {
		case '"': *q++ = '"'; break;
		case '\\': *q++ = '\\'; break;
		case '\n': *q++ = 'n'; break;
		case '\r': *q++ = 'r'; break;
		case '\t': *q++ = 't'; break;
		default:
			*q++ = 'u';
			*q++ = '0';
			*q++ = '0';
			*q++ = hex[c >> 4];
			*q++ = hex[c & 15];
		}
	} else {
		size_t len = utf8_seq_len(p, n);
		if (len == 0) { /* U+FFFD, 3 bytes */
			*q++ = (char)0xef;
			*q++ = (char)0xbf;
			*q++ = (char)0xbd;
		} else {
			memcpy(q, p, len);
			*o = q + len;
			return len;
		}
	}
	*o = q;
	return 1;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The high bit of each byte of x that is not plain JSON text: below 0x20,
 * 0x80 and up, '"' or '\\'. Above the lowest such byte the marks may be
 * wrong (borrows); the lowest is exact, and it is all the caller uses. */
static inline uint64_t json_special(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t q = x ^ (ones * '"'), s = x ^ (ones * '\\');
	return (((q - ones) & ~q) | ((s - ones) & ~s) | ((x - ones * 0x20) & ~x) | x) & high;
}
#endif

int buf_json_escape(struct buf *b, const char *s, size_t n)
{
	/* Worst case 6 bytes out per byte in ("\u00XX"). */
	if (n > (SIZE_MAX - 1) / 6)
		return -ENOMEM;
	int r = buf_reserve(b, n * 6);
	if (r)
		return r;
	const unsigned char *p = (const unsigned char *)s;
	char *o = b->data + b->len;
	size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* Eight bytes at a time, stored as they are up to the first that is
	 * not plain (a results line escapes every payload: the per-byte loop
	 * was a fifth of forqd's cost per remote task). The 8-byte store stays
	 * inside the reservation: 6 * i + 8 <= 6 * n while i + 8 <= n. */
	while (i + 8 <= n) {
		uint64_t x;
		memcpy(&x, p + i, 8);
		uint64_t m = json_special(x);
		memcpy(o, &x, 8);
		if (!m) {
			o += 8;
			i += 8;
			continue;
		}
		unsigned k = (unsigned)__builtin_ctzll(m) / 8;
		o += k;
		i += k;
		i += escape_one(p + i, n - i, &o);
	}
#endif
	while (i < n)
		i += escape_one(p + i, n - i, &o);
	b->len = (size_t)(o - b->data);
	b->data[b->len] = '\0';
	return 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->cap)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
