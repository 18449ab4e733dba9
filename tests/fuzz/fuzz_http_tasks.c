/* fuzz_http_tasks.c — libFuzzer harness for http_parse_tasks (POST /tasks).
 *
 * Build and run (clang):
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Icore -Imetrics tests/fuzz/fuzz_http_tasks.c web/http_tasks.c \
 *     base/buf.c -lcjson -o fuzz_http_tasks
 *   ./fuzz_http_tasks -max_total_time=20 tests/fuzz/corpus/http_tasks
 *
 * Checks beyond "no crash": the body is read only within its length (a copy
 * without a NUL), each result is 0 or one of the documented errors, and on
 * success every task has 1..max_payload bytes and a valid priority.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_tasks.h"

#define MAX_PAYLOAD 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_tasks t;
	char err[256];
	/* An exact-size copy, so a read past the end trips ASan. */
	char *body = malloc(size ? size : 1);
	if (!body)
		return 0;
	memcpy(body, data, size);
	int r = http_parse_tasks(body, size, MAX_PAYLOAD, &t, err, sizeof err);
	if (r == 0) {
		if (t.n == 0 || t.n > HTTP_TASKS_MAX)
			abort();
		for (size_t i = 0; i < t.n; i++) {
			if (t.v[i].len == 0 || t.v[i].len > MAX_PAYLOAD)
				abort();
			if (t.v[i].prio < 0 || t.v[i].prio > 2)
				abort();
			if (memchr(t.v[i].payload, '\0', t.v[i].len))
				abort();
		}
		http_tasks_free(&t);
	} else {
		if (r != -EINVAL && r != -EMSGSIZE && r != -E2BIG && r != -ENOMEM)
			abort();
		if (!memchr(err, '\0', sizeof err) || !err[0])
			abort();
		if (t.v || t.n)
			abort();
	}
	free(body);
	return 0;
}
