/* fuzz_arith.c — libFuzzer harness for arith_eval and arith_format.
 *
 * Build and run (corpus: tests/fuzz/corpus/arith/):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iservice -Icore \
 *       tests/fuzz/fuzz_arith.c handlers/arith.c -lm -o /tmp/fuzz_arith
 *   /tmp/fuzz_arith -max_total_time=20 /tmp/corpus tests/fuzz/corpus/arith
 *
 * Besides memory errors it checks the contract: a success is finite, its
 * formatted text reads back as the same value (both through strtod and through
 * arith_eval itself), and an error is one NUL-terminated line. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arith.h"

#define CHECK(c) \
	do { \
		if (!(c)) \
			__builtin_trap(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[128];
	double v = 0, back = 0;

	memset(err, 'x', sizeof err);
	if (arith_eval((const char *)data, size, &v, err, sizeof err) != 0) {
		CHECK(memchr(err, '\0', sizeof err) != NULL);
		CHECK(strchr(err, '\n') == NULL);
		CHECK(err[0] != '\0');
		return 0;
	}
	CHECK(v - v == 0); /* finite */

	char buf[ARITH_FORMAT_MAX];
	size_t n = arith_format(v, buf, sizeof buf);
	CHECK(n > 0 && n < sizeof buf && strlen(buf) == n);
	CHECK(strtod(buf, NULL) == v);
	CHECK(arith_eval(buf, n, &back, err, sizeof err) == 0);
	CHECK(back == v);
	return 0;
}
