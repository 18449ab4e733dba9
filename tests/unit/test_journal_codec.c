/* test_journal_codec.c — the journal's record codec and segment files: round
 * trips (ACCEPT, TASK with a due time and a key, FINISH), a tail torn at
 * every byte offset, a flipped bit, format 1 still read and an unknown one
 * refused, another queue's journal refused, a torn last segment cut back
 * and logged, and a replay that keeps a task's latest record. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "record.h"
#include "segments.h"

static void test_crc32c(void **state)
{
	(void)state;
	/* The check value of CRC-32C (RFC 3720 appendix B.4). */
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
	assert_int_equal(crc32c_portable(0, "123456789", 9), 0xe3069283u);
	/* The instruction and the table agree at every length and alignment. */
	uint8_t data[300];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 131 + 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; n + off <= sizeof data; n += 7)
			assert_int_equal(crc32c(0x1234, data + off, n),
					 crc32c_portable(0x1234, data + off, n));
}

/* Records 3, 5 and 7 are TASK records: 3 keyed, 5 delayed, 7 both. */
static int is_task(int i)
{
	return i == 3 || i == 5 || i == 7;
}

static const char *key_of(int i)
{
	return i == 3 ? "k3" : i == 7 ? "user:seven" : "";
}

static uint64_t due_of(int i)
{
	return i == 5 || i == 7 ? 1764752400000ull + (uint64_t)i : 0;
}

/* Builds n ACCEPT or TASK records and a FINISH record; ends[i] is where
 * record i ends. */
static void build(struct buf *b, int n, size_t *ends)
{
	for (int i = 0; i < n; i++) {
		char p[64];
		int len = snprintf(p, sizeof p, "task %d %.*s", i, i % 7, "xxxxxxx");
		if (is_task(i)) {
			struct jrec_task t = {.id = 100 + (uint64_t)i, .prio = i % 3,
					      .attempts = (unsigned)i, .line = (uint32_t)i,
					      .due_ms = due_of(i), .window_ms = 1000u * (unsigned)i,
					      .key = key_of(i), .key_len = (uint32_t)strlen(key_of(i)),
					      .payload = p, .len = (uint32_t)len};
			assert_int_equal(jrec_put_task(b, &t), 0);
		} else {
			assert_int_equal(jrec_put_accept(b, 100 + (uint64_t)i, i % 3, (unsigned)i,
							 (uint32_t)i, p, (uint32_t)len),
					 0);
		}
		ends[i] = b->len;
	}
	uint64_t ids[] = {100, 101, 102, 101, 105, 109, 110, 200, 50};
	assert_int_equal(jrec_put_finish(b, ids, 9), 0);
	ends[n] = b->len;
}

static void test_round_trip(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t ends[11];
	build(&b, 10, ends);
	size_t off = 0;
	for (int i = 0; i < 10; i++) {
		struct jrec r;
		long k = jrec_decode((uint8_t *)b.data + off, b.len - off, &r);
		assert_true(k > 0);
		assert_int_equal(r.type, is_task(i) ? JREC_TASK : JREC_ACCEPT);
		assert_true(jrec_accepts(&r));
		assert_int_equal(r.due_ms, due_of(i));
		assert_int_equal(r.key_len, strlen(key_of(i)));
		assert_memory_equal(r.key ? (const char *)r.key : "", key_of(i), r.key_len);
		assert_int_equal(r.window_ms, is_task(i) ? 1000u * (unsigned)i : 0);
		assert_int_equal(r.id, 100 + (uint64_t)i);
		assert_int_equal(r.prio, i % 3);
		assert_int_equal(r.attempts, (unsigned)i);
		assert_int_equal(r.line, (uint32_t)i);
		char p[64];
		int len = snprintf(p, sizeof p, "task %d %.*s", i, i % 7, "xxxxxxx");
		assert_int_equal(r.len, (uint32_t)len);
		assert_memory_equal(r.payload, p, (size_t)len);
		off += (size_t)k;
		assert_int_equal(off, ends[i]);
	}
	struct jrec r;
	long k = jrec_decode((uint8_t *)b.data + off, b.len - off, &r);
	assert_int_equal(k, (long)(b.len - off));
	assert_int_equal(r.type, JREC_FINISH);
	/* 100-102 (101 again folds in), 105, 109-110, 200, 50: in order. */
	uint64_t want_first[] = {100, 105, 109, 200, 50};
	uint32_t want_count[] = {3, 1, 2, 1, 1};
	assert_int_equal(r.nranges, 5);
	for (uint32_t i = 0; i < 5; i++) {
		uint64_t f;
		uint32_t c;
		jrec_range(&r, i, &f, &c);
		assert_int_equal(f, want_first[i]);
		assert_int_equal(c, want_count[i]);
	}
	buf_free(&b);
}

/* Decodes records from p[0..n) until one is not whole: how many were
 * (*whole), where they end (*end); returns the last jrec_decode answer. */
static long decode_all(const uint8_t *p, size_t n, int *whole, size_t *end)
{
	struct jrec r;
	long k;
	*whole = 0;
	*end = 0;
	while ((k = jrec_decode(p + *end, n - *end, &r)) > 0) {
		*end += (size_t)k;
		(*whole)++;
	}
	return k;
}

/* Whole records before the cut decode; the one the cut goes through is
 * torn (0), never a record, at every byte offset. */
static void test_torn_every_offset(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t ends[11];
	build(&b, 10, ends);
	for (size_t cut = 0; cut <= b.len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
		memcpy(copy, b.data, cut);
		size_t off;
		int whole;
		long k = decode_all(copy, cut, &whole, &off);
		int want = 0;
		while (want < 11 && ends[want] <= cut)
			want++;
		assert_int_equal(whole, want);
		assert_int_equal(off, want ? ends[want - 1] : 0);
		assert_int_equal(k, 0); /* torn, not corrupt */
		free(copy);
	}
	buf_free(&b);
}

/* A flipped bit anywhere in a record: that record is refused (or torn,
 * when the bit grew its length), those before it still decode. */
static void test_flipped_bit(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t ends[11];
	build(&b, 10, ends);
	uint8_t *copy = malloc(b.len);
	for (size_t bit = 0; bit < b.len * 8; bit++) {
		memcpy(copy, b.data, b.len);
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int hit = 0;
		while (ends[hit] <= bit / 8)
			hit++;
		size_t off;
		int whole;
		long k = decode_all(copy, b.len, &whole, &off);
		assert_int_equal(whole, hit);
		assert_true(k <= 0);
	}
	free(copy);
	buf_free(&b);
}

static void test_header(void **state)
{
	(void)state;
	uint8_t h[JREC_HDR_SIZE];
	struct jrec_seg_hdr in = {.seq = 7, .id_floor = 1234, .max_payload = 1024}, out;
	snprintf(in.name, sizeof in.name, "/q1");
	jrec_hdr_encode(h, &in);
	char err[200];
	assert_int_equal(jrec_hdr_decode(h, sizeof h, &out, err, sizeof err), 0);
	assert_int_equal(out.seq, 7);
	assert_int_equal(out.id_floor, 1234);
	assert_string_equal(out.name, "/q1");
	/* Format 1 (no TASK records) is still read; a later one is refused. */
	assert_int_equal(h[8], JREC_FORMAT);
	h[8] = 1;
	uint32_t crc = crc32c(0, h, JREC_HDR_SIZE - 8);
	for (int i = 0; i < 4; i++)
		h[JREC_HDR_SIZE - 8 + i] = (uint8_t)(crc >> (8 * i));
	assert_int_equal(jrec_hdr_decode(h, sizeof h, &out, err, sizeof err), 0);
	h[8] = 9; /* another format */
	assert_int_equal(jrec_hdr_decode(h, sizeof h, &out, err, sizeof err), -1);
	assert_non_null(strstr(err, "format 9"));
	assert_non_null(strstr(err, "reads formats 1 to 3"));
	assert_int_equal(jrec_hdr_decode((const uint8_t *)"garbage", 7, &out, err, sizeof err), -1);
	assert_non_null(strstr(err, "not a forq journal"));
}

/* A TASK record's lengths must agree: a key longer than the body, a
 * key over JREC_KEY_MAX or the reserved field set is not a record, even
 * with a good checksum; too long a key is refused at encode. */
static void test_task_bounds(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	char key[JREC_KEY_MAX + 1];
	memset(key, 'k', sizeof key);
	struct jrec_task t = {.id = 5, .key = key, .key_len = JREC_KEY_MAX + 1, .payload = "p",
			      .len = 1};
	assert_int_equal(jrec_put_task(&b, &t), -EINVAL);
	t.key_len = 4;
	assert_int_equal(jrec_put_task(&b, &t), 0);
	struct jrec r;
	assert_int_equal(jrec_decode((uint8_t *)b.data, b.len, &r), (long)b.len);
	assert_int_equal(r.len, 1);
	/* Each bad field, its checksum made good again. */
	const struct {
		size_t at;
		uint8_t v;
	} bad[] = {{JREC_HEAD + 12, 6}, {JREC_HEAD + 13, 1}, {JREC_HEAD + 14, 1}, {JREC_HEAD + 15, 1}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint8_t copy[128];
		memcpy(copy, b.data, b.len);
		copy[bad[i].at] = bad[i].v;
		uint32_t body = (uint32_t)b.len - JREC_HEAD;
		uint32_t crc = crc32c(crc32c(0, copy, 8), copy + JREC_HEAD, body);
		for (int k = 0; k < 4; k++)
			copy[8 + k] = (uint8_t)(crc >> (8 * k));
		assert_int_equal(jrec_decode(copy, b.len, &r), -1);
	}
	buf_free(&b);
}

/* ---- segment files ---- */

static char dir[64];
#define JOURNAL_DIR dir
#include "journal_dir.h"

/* A segment of 10 accepted tasks (ids 100..109) of which 100-102 and 105
 * finished in an earlier segment's view: here all in one. */
static void segment_bytes(struct buf *b, const char *name, size_t *ends)
{
	uint8_t h[JREC_HDR_SIZE];
	struct jrec_seg_hdr sh = {.seq = 1, .id_floor = 1, .max_payload = 1024};
	snprintf(sh.name, sizeof sh.name, "%s", name);
	jrec_hdr_encode(h, &sh);
	buf_append(b, h, sizeof h);
	size_t e[11];
	build(b, 10, e);
	for (int i = 0; i < 11; i++)
		ends[i] = e[i];
}

static void test_segments_torn_tail(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t ends[11];
	segment_bytes(&b, "/q1", ends);
	const char *seg1 = "journal-00000000000000000001.log";
	/* Every cut inside the last three records and the FINISH one. */
	for (size_t cut = ends[6]; cut <= b.len; cut++) {
		clear_dir();
		write_file(seg1, b.data, cut);
		struct segset s;
		struct replay_task *t = NULL;
		size_t n = 0;
		char err[256] = "";
		assert_int_equal(segset_open(&s, dir, "/q1", 1024, 0, &t, &n, err, sizeof err), 0);
		int whole = 0;
		while (whole < 11 && ends[whole] <= cut)
			whole++;
		/* The file is cut back to its last whole record. */
		assert_int_equal(file_size(seg1), (off_t)ends[whole - 1]);
		/* Replayed: the accepted ones, less the finished when the FINISH
		 * record is whole (100, 101, 102, 105, 109 among 100..109). */
		size_t want = whole == 11 ? 5 : (size_t)whole;
		assert_int_equal(n, want);
		for (size_t i = 1; i < n; i++)
			assert_true(t[i - 1].id < t[i].id);
		if (whole == 11) {
			uint64_t live[] = {103, 104, 106, 107, 108};
			for (size_t i = 0; i < 5; i++) {
				int k = (int)(live[i] - 100);
				assert_int_equal(t[i].id, live[i]);
				assert_int_equal(t[i].attempts, (unsigned)k);
				/* TASK records give their due time, key and window back. */
				assert_int_equal(t[i].due_ms, due_of(k));
				assert_int_equal(t[i].key_len, strlen(key_of(k)));
				assert_memory_equal(t[i].key, key_of(k), t[i].key_len);
				assert_int_equal(t[i].window_ms, is_task(k) ? 1000u * (unsigned)k : 0);
			}
		}
		/* New ids start past every id seen. */
		int accepted = whole < 11 ? whole : 10;
		assert_int_equal(s.max_id, 100 + (uint64_t)accepted - 1);
		replay_free(t, n);
		segset_close(&s);
	}
	buf_free(&b);
}

/* A task written twice (a delayed one written again once due, in its lane)
 * is replayed as its latest record says, once: task 1 delayed then in its
 * lane (no due time), task 2 in its lane then delayed. */
static void test_replay_latest(void **state)
{
	(void)state;
	clear_dir();
	struct buf b = BUF_INIT;
	uint8_t h[JREC_HDR_SIZE];
	struct jrec_seg_hdr sh = {.seq = 1, .id_floor = 1, .max_payload = 1024};
	snprintf(sh.name, sizeof sh.name, "/q1");
	jrec_hdr_encode(h, &sh);
	buf_append(&b, h, sizeof h);
	struct jrec_task t1 = {.id = 1, .due_ms = 99, .key = "a", .key_len = 1, .payload = "one",
			       .len = 3};
	struct jrec_task t2 = {.id = 2, .attempts = 2, .due_ms = 77, .payload = "two", .len = 3};
	assert_int_equal(jrec_put_task(&b, &t1), 0);
	assert_int_equal(jrec_put_accept(&b, 2, 1, 1, 0, "two", 3), 0);
	assert_int_equal(jrec_put_accept(&b, 1, 1, 0, 0, "one", 3), 0);
	assert_int_equal(jrec_put_task(&b, &t2), 0);
	write_file("journal-00000000000000000001.log", b.data, b.len);
	struct segset s;
	struct replay_task *t = NULL;
	size_t n = 0;
	char err[256] = "";
	assert_int_equal(segset_open(&s, dir, "/q1", 1024, 0, &t, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(t[0].id, 1);
	assert_int_equal(t[0].due_ms, 0);
	assert_int_equal(t[0].key_len, 0);
	assert_int_equal(t[1].id, 2);
	assert_int_equal(t[1].due_ms, 77);
	assert_int_equal(t[1].attempts, 2);
	replay_free(t, n);
	segset_close(&s);
	buf_free(&b);
}

static void test_segments_refused(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t ends[11];
	segment_bytes(&b, "/other", ends);
	clear_dir();
	write_file("journal-00000000000000000001.log", b.data, b.len);
	struct segset s;
	char err[256] = "";
	assert_int_equal(segset_open(&s, dir, "/q1", 1024, 0, NULL, NULL, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "journal of queue /other, not /q1"));
	segset_close(&s);
	/* A payload larger than this queue takes: refused, not cut short. */
	clear_dir();
	struct buf c = BUF_INIT;
	segment_bytes(&c, "/q1", ends);
	write_file("journal-00000000000000000001.log", c.data, c.len);
	assert_int_equal(segset_open(&s, dir, "/q1", 8, 0, &(struct replay_task *){NULL},
				     &(size_t){0}, err, sizeof err),
			 -EMSGSIZE);
	assert_non_null(strstr(err, "--max-payload 8"));
	segset_close(&s);
	buf_free(&b);
	buf_free(&c);
}

/* A segset on an empty dir. */
static void open_empty(struct segset *s)
{
	char err[256];
	clear_dir();
	assert_int_equal(segset_open(s, dir, "/q1", 1024, 0, NULL, NULL, err, sizeof err), 0);
}

/* Segments whose tasks all finished are removed once the current one
 * holds what moved on; the live map follows ids across segments. */
static void test_segments_gc(void **state)
{
	(void)state;
	struct segset s;
	open_empty(&s);
	for (uint64_t id = 1; id <= 3; id++)
		segset_accepted(&s, id);
	assert_int_equal(segset_rotate(&s), 0);
	segset_accepted(&s, 4);
	segset_accepted(&s, 2); /* a retry: its latest record is here now */
	assert_int_equal(s.nsegs, 2);
	assert_int_equal(s.segs[0].live, 2);
	assert_int_equal(segset_where(&s, 2), s.segs[1].seq);
	segset_finished(&s, 1);
	segset_finished(&s, 1); /* twice, or unknown: nothing changes */
	segset_finished(&s, 99);
	assert_int_equal(s.segs[0].live, 1);
	assert_int_equal(segset_gc(&s), 0);
	segset_finished(&s, 3);
	assert_int_equal(segset_gc(&s), 1); /* 2 lives on in the second */
	assert_int_equal(s.nsegs, 1);
	assert_int_equal(s.segs[0].live, 2);
	assert_int_equal(s.live.n, 2);
	/* The map survives growth and finishes. */
	for (uint64_t id = 1000; id < 30000; id++)
		segset_accepted(&s, id);
	for (uint64_t id = 1000; id < 30000; id += 2)
		segset_finished(&s, id);
	for (uint64_t id = 1000; id < 30000; id++)
		assert_int_equal(segset_where(&s, id), (id & 1) ? s.segs[0].seq : 0);
	for (uint64_t id = 1000; id < 30000; id += 2)
		segset_finished(&s, id + 1);
	/* A sliding window, as a busy queue makes it, over rotations: what
	 * passed goes with its segments, the map does not grow with it. */
	size_t n0 = s.live.n;
	for (uint64_t id = 100000; id < 400000; id++) {
		segset_accepted(&s, id);
		if (id >= 100100)
			segset_finished(&s, id - 100);
		if (id % 50000 == 0) {
			assert_int_equal(segset_rotate(&s), 0);
			segset_gc(&s);
		}
	}
	assert_int_equal(s.live.n, n0 + 100);
	assert_true(s.nsegs <= 3); /* 2 and 4 keep the first */
	for (size_t i = 0; i < s.nsegs; i++)
		assert_true(s.segs[i].nwords * 64 <= 4 * 65536);
	for (uint64_t id = 399900; id < 400000; id++)
		assert_int_equal(segset_where(&s, id), s.segs[s.nsegs - 1].seq);
	assert_int_equal(segset_where(&s, 399899), 0);
	segset_close(&s);
}

/* The live map against an exact model: ids accepted in order (one by one
 * and in runs), retried out of order, finished twice or never (one by one
 * and in runs), over rotations and removals. */
static void test_livemap_model(void **state)
{
	(void)state;
	struct segset s;
	open_empty(&s);
	enum { N = 200000 };
	static uint64_t where[N + 1]; /* seq of the latest ACCEPT, 0: not live */
	memset(where, 0, sizeof where);
	uint64_t next = 1, rnd = 88172645463325252ull;
	for (int step = 0; step < 600000; step++) {
		rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
		uint64_t cur = s.segs[s.nsegs - 1].seq, pick = 1 + rnd % (next < 2 ? 1 : next - 1);
		switch ((rnd >> 32) % 16) {
		case 0: /* a retry or copy-forward: an old live id again */
			if (where[pick]) {
				segset_accepted(&s, pick);
				where[pick] = cur;
			}
			break;
		case 1: /* a finish of anything: live, done, never seen */
			segset_finished(&s, pick);
			where[pick] = 0;
			break;
		case 3: { /* a run of finishes, as consumers report them */
			uint64_t k = 1 + (rnd >> 20) % 200;
			k = pick + k > N ? N - pick : k;
			segset_finished_run(&s, pick, k);
			memset(where + pick, 0, k * sizeof *where);
			break;
		}
		case 4: /* a run of new ids, as a ring's scan gives them */
			if (next + 300 > N)
				break;
			for (uint64_t k = 0, len = 1 + (rnd >> 24) % 300; k < len; k++)
				where[next + k] = cur;
			segset_accepted_run(&s, next, 1 + (rnd >> 24) % 300);
			next += 1 + (rnd >> 24) % 300;
			break;
		case 2:
			if ((rnd >> 40) % 256 == 0) {
				assert_int_equal(segset_rotate(&s), 0);
				segset_gc(&s);
			}
			break;
		default: /* new ids, now and then two rings out of order */
			if (next + 2 > N)
				break;
			segset_accepted(&s, next + 1);
			segset_accepted(&s, next);
			where[next] = where[next + 1] = cur;
			next += 2;
			for (uint64_t id = next > 300 ? next - 300 : 1; id + 290 < next; id++)
				if ((rnd >> (id % 50)) & 1 && where[id]) {
					segset_finished(&s, id);
					where[id] = 0;
				}
		}
	}
	uint64_t live = 0;
	for (uint64_t id = 1; id <= N; id++) {
		assert_int_equal(segset_where(&s, id), where[id]);
		live += where[id] != 0;
	}
	assert_int_equal(s.live.n, live);
	for (size_t i = 0; i < s.nsegs; i++) {
		uint64_t here = 0;
		for (uint64_t id = 1; id <= N; id++)
			here += where[id] == s.segs[i].seq;
		assert_int_equal(s.segs[i].live, here);
	}
	segset_close(&s);
}

static void on_emit(void *ctx, const struct jrec *r)
{
	uint64_t *seen = ctx;
	char want[64];
	int i = (int)(r->id - 100);
	snprintf(want, sizeof want, "task %d %.*s", i, i % 7, "xxxxxxx");
	assert_int_equal(r->len, strlen(want));
	assert_memory_equal(r->payload, want, r->len);
	seen[seen[0]++ + 1] = r->id;
}

/* A mostly finished segment's live tasks are copied forward, whole. */
static void test_segments_copy_forward(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t ends[11];
	segment_bytes(&b, "/q1", ends);
	clear_dir();
	write_file("journal-00000000000000000001.log", b.data, ends[9]); /* no FINISH */
	struct segset s;
	char err[256];
	assert_int_equal(segset_open(&s, dir, "/q1", 1024, 0, NULL, NULL, err, sizeof err), 0);
	assert_int_equal(s.nsegs, 2); /* the one read and a new one */
	assert_int_equal(segset_copy_candidate(&s), 0); /* all ten live */
	for (uint64_t id = 100; id < 108; id++)
		segset_finished(&s, id);
	/* The newest old segment: left alone while its tasks still finish. */
	assert_int_equal(segset_copy_candidate(&s), 0);
	segset_looked(&s);
	assert_int_equal(segset_copy_candidate(&s), 1); /* none finished since */
	uint64_t seen[16] = {0};
	assert_int_equal(segset_copy_live(&s, 1, on_emit, seen), 0);
	assert_int_equal(seen[0], 2);
	assert_int_equal(seen[1], 108);
	assert_int_equal(seen[2], 109);
	segset_close(&s);
	buf_free(&b);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/forq-test-journal.%d", (int)getpid());
	log_set_level(LOG_ERROR); /* each cut logs a line: hundreds here */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_torn_every_offset),
		cmocka_unit_test(test_flipped_bit),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_task_bounds),
		cmocka_unit_test(test_replay_latest),
		cmocka_unit_test(test_segments_torn_tail),
		cmocka_unit_test(test_segments_refused),
		cmocka_unit_test(test_segments_gc),
		cmocka_unit_test(test_livemap_model),
		cmocka_unit_test(test_segments_copy_forward),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {
	}
	return r;
}
