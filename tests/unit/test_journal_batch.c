/* test_journal_batch.c — BATCH records (journal/record.h): plain tasks a
 * few bytes each under one checksum, as the journal's writer makes them
 * (one at a time, or as core's scan hands them over), read back, damaged,
 * replayed and copied forward from a segment. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "forq_admin.h"
#include "log.h"
#include "record.h"
#include "segments.h"

static char dir[64];
#define JOURNAL_DIR dir
#include "journal_dir.h"

struct btask {
	uint64_t id;
	int prio;
	unsigned attempts;
	uint32_t line, len;
};

static uint8_t bpayload[70000];

/* n tasks through jrec_batch_add, as a writer adds them: runs of ids with
 * gaps, a step back now and then, priorities changing, every length from
 * 0 to past one varint byte, a few large ones. */
static size_t batch_build(struct buf *b, struct btask *t, size_t n)
{
	struct jrec_batch w;
	jrec_batch_init(&w);
	uint64_t id = 1;
	for (size_t i = 0; i < n; i++) {
		id += i % 97 == 0 ? 5000 : i % 41 == 0 ? 3 : 1;
		if (i % 333 == 0 && id > 100)
			id -= 50; /* out of order: a new record */
		t[i] = (struct btask){.id = id, .prio = (int)(i / 700) % 3,
				      .attempts = i % 13 == 0 ? (unsigned)(i * 7) % 65536 : 0,
				      .line = i % 17 == 0 ? (uint32_t)(i * 100003) : 0,
				      .len = i % 250 == 0 ? 69000 : (uint32_t)(i % 300)};
		assert_int_equal(jrec_batch_add(b, &w, t[i].id, t[i].prio, t[i].attempts, t[i].line,
						bpayload + i % 64, t[i].len),
				 0);
	}
	jrec_batch_end(b, &w);
	jrec_batch_end(b, &w); /* none open: nothing */
	return b->len;
}

static void test_batch_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bpayload; i++)
		bpayload[i] = (uint8_t)(i * 31 + 7);
	enum { N = 10000 };
	static struct btask t[N];
	struct buf b = BUF_INIT;
	batch_build(&b, t, N);
	/* Too long or too many attempts: refused, nothing written. */
	struct jrec_batch w;
	jrec_batch_init(&w);
	size_t len = b.len;
	assert_int_equal(jrec_batch_add(&b, &w, 1, 0, 0, 0, bpayload, JREC_PAYLOAD_MAX + 1), -EINVAL);
	assert_int_equal(jrec_batch_add(&b, &w, 1, 0, 65536, 0, bpayload, 1), -EINVAL);
	assert_int_equal(b.len, len);
	size_t k = 0, records = 0;
	for (size_t off = 0; off < b.len; records++) {
		struct jrec r;
		long n = jrec_decode((uint8_t *)b.data + off, b.len - off, &r);
		assert_true(n > 0);
		assert_int_equal(r.type, JREC_BATCH);
		assert_true(jrec_accepts(&r));
		assert_true(r.count >= 1 && r.count <= JREC_BATCH_MAX);
		struct jrec_tasks it;
		struct jrec x;
		uint32_t at, last_at = 0;
		for (jrec_tasks_begin(&it, &r); jrec_tasks_next(&it, &x, &at); k++) {
			assert_true(k < N);
			assert_true(at > last_at && at < (uint32_t)n); /* unique, inside */
			last_at = at;
			assert_int_equal(x.type, JREC_ACCEPT);
			assert_int_equal(x.id, t[k].id);
			assert_int_equal(x.prio, t[k].prio);
			assert_int_equal(x.attempts, t[k].attempts);
			assert_int_equal(x.line, t[k].line);
			assert_int_equal(x.len, t[k].len);
			assert_memory_equal(x.payload, bpayload + k % 64, x.len);
		}
		off += (size_t)n;
	}
	assert_int_equal(k, N);
	assert_true(records > 3 && records < 200); /* batched, and ended where it must */
	/* The hot path, tasks handed over as core's scan does (arrays of up
	 * to 64, each payload readable to its 8-byte end): the same bytes. */
	struct buf b2 = BUF_INIT;
	jrec_batch_init(&w);
	static struct forq_journal_plain v[N];
	for (size_t i = 0; i < N; i++)
		v[i] = (struct forq_journal_plain){.id = t[i].id, .len = t[i].len, .line = t[i].line,
						   .attempts = (uint16_t)t[i].attempts,
						   .prio = (uint8_t)t[i].prio,
						   .payload = bpayload + i % 64};
	for (size_t i = 0; i < N; i += 1 + i % 64)
		assert_int_equal(jrec_batch_add_plain(&b2, &w, v + i, N - i < 1 + i % 64 ? N - i : 1 + i % 64), 0);
	jrec_batch_end(&b2, &w);
	assert_int_equal(b2.len, len);
	assert_memory_equal(b2.data, b.data, len);
	/* A long run of the common case alone: records end at their count. */
	buf_reset(&b2);
	jrec_batch_init(&w);
	for (size_t i = 0; i < N; i++)
		v[i] = (struct forq_journal_plain){.id = 1000 + i, .len = (uint32_t)(i % 24),
						   .prio = 1, .payload = bpayload + 8 * (i % 64)};
	for (size_t i = 0; i < N; i += 64)
		assert_int_equal(jrec_batch_add_plain(&b2, &w, v + i, N - i < 64 ? N - i : 64), 0);
	jrec_batch_end(&b2, &w);
	k = 0;
	for (size_t off = 0; off < b2.len;) {
		struct jrec r;
		long n = jrec_decode((uint8_t *)b2.data + off, b2.len - off, &r);
		assert_true(n > 0);
		assert_int_equal(r.count, N - k < JREC_BATCH_MAX ? N - k : JREC_BATCH_MAX);
		struct jrec_tasks it;
		struct jrec x;
		uint32_t at;
		for (jrec_tasks_begin(&it, &r); jrec_tasks_next(&it, &x, &at); k++) {
			assert_int_equal(x.id, 1000 + k);
			assert_int_equal(x.len, k % 24);
			assert_memory_equal(x.payload, bpayload + 8 * (k % 64), x.len);
		}
		off += (size_t)n;
	}
	assert_int_equal(k, N);
	buf_free(&b2);
	buf_free(&b);
}

/* A BATCH cut anywhere is torn (0); any flipped bit, or a body whose
 * entries disagree with its count under a good checksum, is refused. */
static void test_batch_damaged(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	struct jrec_batch w;
	jrec_batch_init(&w);
	for (uint64_t id = 10; id < 40; id++)
		assert_int_equal(jrec_batch_add(&b, &w, id * 2, 1, (unsigned)id % 3, 0, "payload", id % 8), 0);
	jrec_batch_end(&b, &w);
	struct jrec r;
	assert_int_equal(jrec_decode((uint8_t *)b.data, b.len, &r), (long)b.len);
	assert_int_equal(r.count, 30);
	uint8_t *copy = malloc(b.len);
	for (size_t cut = 0; cut < b.len; cut++)
		assert_int_equal(jrec_decode((uint8_t *)b.data, cut, &r), 0);
	for (size_t i = 0; i < b.len * 8; i++) {
		memcpy(copy, b.data, b.len);
		copy[i / 8] ^= (uint8_t)(1u << (i % 8));
		long k = jrec_decode(copy, b.len, &r);
		assert_true(k <= 0); /* a length bit may make it look torn */
	}
	/* Counts one short and one over, checksums recomputed: not records. */
	for (int d = -1; d <= 1; d += 2) {
		memcpy(copy, b.data, b.len);
		uint32_t count = 30 + (uint32_t)d, body;
		memcpy(copy + JREC_HEAD + 8, &count, 4);
		memcpy(&body, copy, 4);
		uint32_t crc = crc32c(crc32c(0, copy, 8), copy + JREC_HEAD, body);
		memcpy(copy + 8, &crc, 4);
		assert_int_equal(jrec_decode(copy, b.len, &r), -1);
	}
	/* The same recomputation on the untouched bytes: a record again. */
	memcpy(copy, b.data, b.len);
	uint32_t body, crc;
	memcpy(&body, copy, 4);
	crc = crc32c(crc32c(0, copy, 8), copy + JREC_HEAD, body);
	assert_memory_equal(copy + 8, &crc, 4);
	free(copy);
	buf_free(&b);
}

static void count_emit(void *ctx, const struct jrec *r)
{
	assert_true(r->id == 504 || r->id % 10 == 3);
	assert_memory_equal(r->payload, r->id == 504 ? "again" : "task ", 5);
	++*(uint64_t *)ctx;
}

/* A segment of BATCH records, some tasks finished: the rest replays with
 * their payloads, and a copy forward takes each live one once. */
static void test_batch_replay(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	uint8_t h[JREC_HDR_SIZE];
	struct jrec_seg_hdr sh = {.seq = 1, .id_floor = 1, .max_payload = 1024};
	snprintf(sh.name, sizeof sh.name, "/qb");
	jrec_hdr_encode(h, &sh);
	buf_append(&b, h, sizeof h);
	struct jrec_batch w;
	jrec_batch_init(&w);
	char p[64];
	for (uint64_t id = 1; id <= 5000; id++) {
		int len = snprintf(p, sizeof p, "task %llu", (unsigned long long)id);
		assert_int_equal(jrec_batch_add(&b, &w, id, (int)(id / 1000) % 3, 0, 0, p, (uint32_t)len), 0);
	}
	jrec_batch_end(&b, &w);
	uint64_t fin[5000];
	size_t nf = 0;
	for (uint64_t id = 1; id <= 5000; id++)
		if (id % 10 != 3)
			fin[nf++] = id;
	assert_int_equal(jrec_put_finish(&b, fin, nf), 0);
	/* 504 comes again after its finish: accepted once more, live. */
	assert_int_equal(jrec_batch_add(&b, &w, 504, 2, 1, 0, "again", 5), 0);
	jrec_batch_end(&b, &w);
	clear_dir();
	write_file("journal-00000000000000000001.log", b.data, b.len);
	struct segset s;
	struct replay_task *t = NULL;
	size_t n = 0;
	char err[256] = "";
	assert_int_equal(segset_open(&s, dir, "/qb", 1024, 0, &t, &n, err, sizeof err), 0);
	assert_int_equal(n, 501);
	size_t i = 0;
	for (uint64_t id = 1; id <= 5000; id++) {
		if (id % 10 != 3 && id != 504)
			continue;
		assert_true(i < n);
		assert_int_equal(t[i].id, id);
		if (id == 504) {
			assert_int_equal(t[i].prio, 2);
			assert_int_equal(t[i].attempts, 1);
			assert_int_equal(t[i].len, 5);
			assert_memory_equal(t[i].payload, "again", 5);
		} else {
			int len = snprintf(p, sizeof p, "task %llu", (unsigned long long)id);
			assert_int_equal(t[i].len, (uint32_t)len);
			assert_memory_equal(t[i].payload, p, (size_t)len);
			assert_int_equal(t[i].prio, (int)(id / 1000) % 3);
		}
		i++;
	}
	/* A copy forward hands over each live task once, with its payload. */
	uint64_t seen = 0;
	assert_int_equal(segset_copy_live(&s, 1, count_emit, &seen), 0);
	assert_int_equal(seen, 501);
	replay_free(t, n);
	segset_close(&s);
	buf_free(&b);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/forq-test-jbatch.%d", (int)getpid());
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_round_trip),
		cmocka_unit_test(test_batch_damaged),
		cmocka_unit_test(test_batch_replay),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {
	}
	return r;
}
