/* fuzz_journal.c — libFuzzer harness for journal/record.c, the reader of
 * what forqd finds on disk at start.
 *
 * Input: a segment's bytes (a header, then records). Checked for every
 * input: the header decoder and the record decoder stay inside an
 * exact-size copy (ASan), a decoded record lies inside the bytes it came
 * from, an ACCEPT's payload, a TASK's key and payload (due time, window)
 * and a FINISH's ranges inside that record, and a record encoded again
 * from what was decoded decodes to the same fields.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ibase -Ijournal \
 *       tests/fuzz/fuzz_journal.c journal/record.c base/buf.c -o fuzz_journal
 *   ./fuzz_journal -max_total_time=20 tests/fuzz/corpus/journal
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                     \
		}                                                                    \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	if (!p)
		return 0;
	memcpy(p, data, len);
	struct jrec_seg_hdr h;
	char err[200];
	size_t off = jrec_hdr_decode(p, len, &h, err, sizeof err) == 0 ? JREC_HDR_SIZE : 0;
	if (off)
		CHECK(strlen(h.name) <= JREC_NAME_MAX);
	struct buf b = BUF_INIT;
	while (off < len) {
		struct jrec r;
		long k = jrec_decode(p + off, len - off, &r);
		if (k <= 0)
			break;
		CHECK((size_t)k <= len - off && (size_t)k >= JREC_HEAD);
		const uint8_t *end = p + off + k;
		buf_reset(&b);
		if (r.type == JREC_ACCEPT) {
			CHECK(r.payload >= p + off && r.payload + r.len == end);
			CHECK(jrec_put_accept(&b, r.id, r.prio, r.attempts, r.line, r.payload, r.len) == 0);
			struct jrec r2;
			CHECK(jrec_decode((uint8_t *)b.data, b.len, &r2) == (long)b.len);
			CHECK(r2.id == r.id && r2.len == r.len && r2.attempts == r.attempts &&
			      r2.prio == r.prio && r2.line == r.line &&
			      memcmp(r2.payload, r.payload, r.len) == 0);
		} else if (r.type == JREC_TASK) {
			CHECK(r.key >= p + off + JREC_HEAD && r.key_len <= JREC_KEY_MAX);
			CHECK(r.payload == r.key + r.key_len && r.payload + r.len == end);
			struct jrec_task t = {.id = r.id, .prio = r.prio, .attempts = r.attempts,
					      .line = r.line, .due_ms = r.due_ms,
					      .window_ms = r.window_ms, .key = r.key,
					      .key_len = r.key_len, .payload = r.payload, .len = r.len};
			CHECK(jrec_put_task(&b, &t) == 0);
			struct jrec r2;
			CHECK(jrec_decode((uint8_t *)b.data, b.len, &r2) == (long)b.len);
			CHECK(r2.type == JREC_TASK && r2.id == r.id && r2.len == r.len &&
			      r2.attempts == r.attempts && r2.prio == r.prio && r2.line == r.line &&
			      r2.due_ms == r.due_ms && r2.window_ms == r.window_ms &&
			      r2.key_len == r.key_len && memcmp(r2.key, r.key, r.key_len) == 0 &&
			      memcmp(r2.payload, r.payload, r.len) == 0);
		} else if (r.type == JREC_BATCH) {
			/* Its tasks, each inside it, written again as a writer
			 * would: the same tasks read back. */
			CHECK(r.count >= 1 && r.count <= JREC_BATCH_MAX && r.entries + r.len == end);
			struct jrec_tasks it;
			struct jrec t;
			uint32_t at, n = 0;
			struct jrec_batch w;
			jrec_batch_init(&w);
			for (jrec_tasks_begin(&it, &r); jrec_tasks_next(&it, &t, &at); n++) {
				CHECK(at >= JREC_HEAD + JREC_BATCH_FIXED && at < (uint32_t)k);
				CHECK(t.payload > p + off && t.payload + t.len <= end);
				CHECK(jrec_batch_add(&b, &w, t.id, t.prio, t.attempts, t.line, t.payload,
						     t.len) == 0);
			}
			CHECK(n == r.count);
			jrec_batch_end(&b, &w);
			/* The writer may split what a reader takes whole (its size
			 * limit is the writer's, not the reader's): every record. */
			struct jrec r2, t2;
			struct jrec_tasks it2 = {0};
			size_t off2 = 0;
			for (jrec_tasks_begin(&it, &r); jrec_tasks_next(&it, &t, &at);) {
				while (!jrec_tasks_next(&it2, &t2, &at)) {
					long k2 = jrec_decode((uint8_t *)b.data + off2, b.len - off2, &r2);
					CHECK(k2 > 0 && r2.type == JREC_BATCH);
					off2 += (size_t)k2;
					jrec_tasks_begin(&it2, &r2);
				}
				CHECK(t2.id == t.id && t2.len == t.len && t2.attempts == t.attempts &&
				      t2.prio == t.prio && t2.line == t.line &&
				      memcmp(t2.payload, t.payload, t.len) == 0);
			}
			CHECK(off2 == b.len && !jrec_tasks_next(&it2, &t2, &at));
		} else {
			CHECK(r.type == JREC_FINISH && r.nranges >= 1);
			CHECK(r.ranges + (size_t)r.nranges * JREC_RANGE == end);
			for (uint32_t i = 0; i < r.nranges; i++) {
				uint64_t first;
				uint32_t count;
				jrec_range(&r, i, &first, &count);
			}
		}
		off += (size_t)k;
	}
	buf_free(&b);
	free(p);
	return 0;
}
