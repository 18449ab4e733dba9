/* fuzz_tasks_file.c — libFuzzer harness for tasks_line_parse.
 *
 * Build and run (20 s):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iservice -Icore \
 *     tests/fuzz/fuzz_tasks_file.c tasks/tasks_file.c base/buf.c -o /tmp/fuzz_tasks_file
 *   /tmp/fuzz_tasks_file -max_total_time=20 tests/fuzz/corpus/tasks_file/
 *
 * The first input byte picks the payload limit and the error buffer size; the
 * rest is the line. Besides memory errors it checks the parser's promises. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forq.h"
#include "tasks_file.h"

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t max_payload = (size_t)(data[0] & 0x0f) * 8; /* 0 .. 120 */
	size_t errlen = (size_t)(data[0] >> 4) * (data[0] >> 4); /* 0, 1, 4 .. 225 */
	size_t n = size - 1;
	/* A copy of exactly n bytes, so ASan sees any read past the line. */
	char *line = malloc(n ? n : 1);
	char *err = errlen ? malloc(errlen) : NULL;
	if (!line || (errlen && !err))
		abort();
	memcpy(line, data + 1, n);
	if (err)
		memset(err, 'E', errlen);

	struct task_line t = {-1, NULL, 0};
	int rc = tasks_line_parse(line, n, max_payload, &t, err, errlen);
	switch (rc) {
	case 1:
		if (t.prio < FORQ_HIGH || t.prio > FORQ_LOW)
			abort();
		if (t.payload < line || t.len == 0 || t.len > max_payload ||
		    t.payload + t.len > line + n)
			abort();
		if (memchr(t.payload, '\0', t.len))
			abort();
		if (is_blank(t.payload[0]) || is_blank(t.payload[t.len - 1]) ||
		    t.payload[t.len - 1] == '\r')
			abort();
		break;
	case 0:
		break;
	case -1:
		if (errlen && (memchr(err, '\0', errlen) == NULL || (errlen > 1 && err[0] == '\0')))
			abort();
		break;
	default:
		abort();
	}
	free(err);
	free(line);
	return 0;
}
