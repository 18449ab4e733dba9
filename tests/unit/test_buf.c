/* test_buf.c — base/buf.h's JSON escaping: the word-at-a-time path gives
 * exactly what a byte-at-a-time reading of its contract gives, for every
 * kind of byte at every position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

/* The contract, one byte at a time: ", \ and control bytes escaped, valid
 * UTF-8 kept, each byte of an invalid sequence as U+FFFD. */
static size_t valid_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0], len, cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (unsigned i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static void reference(struct buf *out, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		char tmp[8];
		if (c == '"' || c == '\\') {
			snprintf(tmp, sizeof tmp, "\\%c", c);
		} else if (c == '\n' || c == '\r' || c == '\t') {
			snprintf(tmp, sizeof tmp, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
		} else if (c < 0x20) {
			snprintf(tmp, sizeof tmp, "\\u%04x", c);
		} else if (c < 0x80) {
			snprintf(tmp, sizeof tmp, "%c", c);
		} else {
			size_t len = valid_seq(s + i, n - i);
			if (len) {
				buf_append(out, s + i, len);
				i += len;
				continue;
			}
			snprintf(tmp, sizeof tmp, "\xef\xbf\xbd");
		}
		buf_puts(out, tmp);
		i++;
	}
}

static void check(const unsigned char *s, size_t n)
{
	struct buf got = BUF_INIT, want = BUF_INIT;
	buf_puts(&got, "x"); /* after something: the output is appended */
	buf_puts(&want, "x");
	assert_int_equal(buf_json_escape(&got, (const char *)s, n), 0);
	reference(&want, s, n);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);
	assert_int_equal(got.data[got.len], '\0');
	buf_free(&got);
	buf_free(&want);
}

static void test_escape_cases(void **state)
{
	(void)state;
	static const char *cases[] = {
		"",
		"plain text of more than eight bytes",
		"{\"op\":\"sum\",\"id\":0,\"args\":[0,1,2,3,4,5,6,7,8,9]}",
		"back\\slash and \"quotes\" at 7: 1234567\"",
		"tab\there\nnew\rline\x01\x1f\x7f end",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 utf-8 in and across 8-byte words",
		"bad \xc0\xaf overlong, \xed\xa0\x80 surrogate, \xf4\x90\x80\x80 too big, \xff",
		"cut at the end \xe2\x82",
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		size_t n = strlen(cases[k]);
		/* At every offset of the word-at-a-time loop. */
		for (size_t from = 0; from <= n; from++)
			check((const unsigned char *)cases[k] + from, n - from);
	}
}

/* Random bytes drawn from the kinds that matter, at random lengths. */
static void test_escape_random(void **state)
{
	(void)state;
	static const unsigned char kinds[] = {'a', 'Z', ' ', '~', '"', '\\', '\n', 0, 0x1f,
					      0x7f, 0x80, 0xbf, 0xc3, 0xa9, 0xe2, 0x82,
					      0xac, 0xf0, 0x9f, 0xed, 0xa0, 0xff};
	unsigned char s[300];
	srand(7);
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)rand() % sizeof s;
		for (size_t i = 0; i < n; i++)
			s[i] = rand() % 4 ? (unsigned char)(' ' + rand() % 90)
					  : kinds[(size_t)rand() % sizeof kinds];
		check(s, n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_cases),
		cmocka_unit_test(test_escape_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
