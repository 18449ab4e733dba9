/* test_journal_sync.c — the journal against a real queue: pipelined
 * durable pushes (forq_push_batch_async returns before the journal has the
 * tasks, forq_sync waits until it does: the segment files hold every pushed
 * id; it says when it cannot: -ETIMEDOUT, -ESHUTDOWN), the checkpoint
 * at a clean close (one segment of what is pending is left), and delayed
 * and keyed tasks: written from the waiting table with their due time and
 * key, held there when due until written, their producers woken. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "forq_admin.h"
#include "journal.h"
#include "log.h"
#include "queue_fixture.h"
#include "record.h"
#include "segments.h"

static char dir[128];

/* Tasks without a key (ACCEPT and BATCH records) in the journal's files now (read-only, while it runs),
 * as a count and a bitmap of ids below 4096. */
static size_t accepted_on_disk(uint8_t *seen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "journal-", 8) != 0)
			continue;
		char path[512];
		snprintf(path, sizeof path, "%s/%.64s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		static uint8_t buf[1 << 22];
		size_t len = fread(buf, 1, sizeof buf, f);
		fclose(f);
		struct jrec r;
		long k;
		for (size_t off = JREC_HDR_SIZE; off < len && (k = jrec_decode(buf + off, len - off, &r)) > 0;
		     off += (size_t)k) {
			struct jrec_tasks it;
			struct jrec t;
			uint32_t at;
			for (jrec_tasks_begin(&it, &r); r.type != JREC_TASK && jrec_tasks_next(&it, &t, &at);) {
				n++;
				if (t.id < 4096)
					seen[t.id] = 1;
			}
		}
	}
	closedir(d);
	return n;
}

static int setup(void **state)
{
	struct forq_options o = qfx_options(16384, 64);
	*state = qfx_create("jsync", &o);
	snprintf(dir, sizeof dir, "/tmp/forq-test-jsync.%d", (int)getpid());
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {
	}
	return qfx_destroy(state);
}

static struct forq_msg msgs[64];

/* forqd's journal of f's queue in dir, --fsync fsync_ms. */
static struct journal *open_journal(struct qfx *f, int fsync_ms, uint64_t segment_bytes)
{
	struct journal *j;
	char err[256];
	struct journal_config c = {.dir = dir, .fsync_ms = fsync_ms,
				   .segment_bytes = segment_bytes, .queue_name = f->name,
				   .max_payload = 64};
	assert_int_equal(journal_open(&j, f->q, &c, 0, err, sizeof err), 0);
	return j;
}

/* No journal writing (the gate on, no writer): an async push returns at
 * once and stays unjournaled; forq_sync times out, then says -ESHUTDOWN
 * once the journal is gone; a queue not journaled syncs at once. */
static void test_sync_without_writer(void **state)
{
	struct qfx *f = *state;
	assert_int_equal(forq_sync(f->q, 0), 0); /* nothing pushed */
	forq_admin_journal_begin(f->q, 1);
	assert_int_equal(forq_push_batch_async(f->q, FORQ_NORMAL, msgs, 64, 0, NULL), 0);
	assert_int_equal(forq_admin_journal_backlog(f->q), 64);
	assert_int_equal(forq_sync(f->q, 0), -ETIMEDOUT);
	assert_int_equal(forq_sync(f->q, 30), -ETIMEDOUT);
	forq_admin_journal_end(f->q);
	assert_int_equal(forq_sync(f->q, 1000), -ESHUTDOWN);
	/* Not journaled now: pushes are not noted, a sync has nothing to do
	 * (the earlier target is kept until covered). */
	struct forq_task t[64];
	assert_int_equal(forq_pop_batch(f->q, t, 64, 0), 64);
	for (int i = 0; i < 64; i++)
		forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, NULL, 0, 0);
}

/* With forqd's journal in --fsync always: 40 batches pushed without
 * waiting, one forq_sync, and every id is in the files. */
static void test_sync_journaled(void **state)
{
	struct qfx *f = *state;
	struct journal *j = open_journal(f, JOURNAL_SYNC_ALWAYS, 1 << 20);
	uint64_t ids[64], first = 0;
	for (int b = 0; b < 40; b++) {
		assert_int_equal(forq_push_batch_async(f->q, FORQ_NORMAL, msgs, 64, 1000, ids), 0);
		if (!first)
			first = ids[0];
		if (b == 20) /* half way, a sync of what is pushed so far */
			assert_int_equal(forq_sync(f->q, 5000), 0);
	}
	assert_int_equal(forq_sync(f->q, 5000), 0);
	assert_int_equal(forq_admin_journal_backlog(f->q), 0);
	static uint8_t seen[4096];
	assert_int_equal(accepted_on_disk(seen), 40 * 64);
	for (uint64_t id = first; id < first + 40 * 64; id++)
		assert_true(id < 4096 && seen[id]);
	struct journal_stats st;
	journal_stats_read(j, &st);
	assert_true(st.fsyncs >= 1);
	assert_int_equal(forq_sync(f->q, 0), 0); /* nothing new since */
	journal_close(j, 1);
}

static size_t segment_files(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;
	assert_non_null(d);
	while ((e = readdir(d)))
		n += strncmp(e->d_name, "journal-", 8) == 0;
	closedir(d);
	return n;
}

/* 10 rounds of 1000 tasks through 4 KiB segments, 500 of each finished
 * (half live: not worth a copy-forward while running): at close the live
 * 5000 are copied into one new segment and every other segment goes; a
 * replay of it gives exactly those 5000. */
static void test_checkpoint(void **state)
{
	struct qfx *f = *state;
	struct journal *j = open_journal(f, 5, 4 << 10);
	char err[256];
	static uint8_t pending[16384];
	memset(pending, 0, sizeof pending);
	for (int round = 0; round < 10; round++) {
		uint64_t ids[64];
		for (int b = 0; b < 1000; b += 50) {
			assert_int_equal(forq_push_batch_async(f->q, FORQ_NORMAL, msgs, 50, 1000, ids), 0);
			for (int i = 0; i < 50; i++)
				pending[ids[i]] = 1;
		}
		/* Consumers take only what is journaled: wait for the writer. */
		for (int tries = 0; forq_admin_journal_backlog(f->q) && tries < 500; tries++)
			usleep(2000);
		assert_int_equal(forq_admin_journal_backlog(f->q), 0);
		for (int done = 0; done < 500;) {
			struct forq_task t[64];
			int want = 500 - done < 64 ? 500 - done : 64;
			int n = forq_pop_batch(f->q, t, (size_t)want, 1000);
			assert_true(n > 0);
			for (int i = 0; i < n; i++) {
				forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, NULL, 0, 0);
				ids[i] = t[i].id;
				pending[t[i].id] = 0;
			}
			journal_finished(j, ids, (size_t)n);
			done += n;
		}
	}
	assert_true(segment_files() > 4); /* 10,000 tasks, 10 bytes or more each, in 4 KiB */
	journal_close(j, 1);
	assert_int_equal(segment_files(), 1);
	struct segset s;
	struct replay_task *t;
	size_t n;
	assert_int_equal(segset_open(&s, dir, f->name, 64, 0, &t, &n, err, sizeof err), 0);
	assert_int_equal(n, 5000);
	for (size_t i = 0; i < n; i++)
		assert_true(t[i].id < sizeof pending && pending[t[i].id]);
	replay_free(t, n);
	segset_close(&s);
}

/* What a sched scan handed over. */
struct seen_task {
	int n;
	struct forq_journal_task t[8];
};

static void take_task(void *ctx, const struct forq_journal_task *t, const void *payload)
{
	struct seen_task *s = ctx;
	(void)payload;
	if (s->n < 8)
		s->t[s->n] = *t;
	s->n++;
}

static uint64_t now_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The gate on, no writer: a delayed task due at once stays in the waiting
 * table until the journal has it; the scan gives it (and a keyed one with
 * its key and window) with wall-clock due times; once published, due ones
 * move to their lane. A cancelled one is passed over by the mark. */
static void test_delayed_gate(void **state)
{
	struct qfx *f = *state;
	forq_admin_journal_begin(f->q, 0);
	uint64_t a, b, c, holder;
	int dup;
	uint64_t before = now_unix_ms();
	assert_int_equal(forq_push_delayed(f->q, FORQ_HIGH, "soon", 4, 1, &a), 0);
	assert_int_equal(forq_push_unique(f->q, FORQ_NORMAL, "late", 4, "key-1", 5, 60000, 3600000,
					  &b, &dup), 0);
	assert_int_equal(dup, 0);
	assert_int_equal(forq_push_delayed(f->q, FORQ_LOW, "gone", 4, 3600000, &c), 0);
	assert_int_equal(forq_admin_journal_backlog(f->q), 3);
	usleep(5000);
	assert_int_equal(forq_admin_retry_due(f->q, now_mono_ns()), 0); /* a is due, unwritten */
	assert_int_equal(forq_admin_cancel(f->q, c, NULL, NULL), 0);
	struct seen_task s = {0};
	uint64_t upto;
	assert_int_equal(forq_admin_journal_sched_scan(f->q, take_task, &s, &upto), 2);
	assert_int_equal(upto, 3);
	assert_int_equal(s.t[0].t.id, a);
	assert_int_equal(s.t[0].key_len, 0);
	assert_true(s.t[0].due_unix_ms >= before && s.t[0].due_unix_ms <= now_unix_ms());
	assert_int_equal(s.t[1].t.id, b);
	assert_int_equal(s.t[1].key_len, 5);
	assert_memory_equal(s.t[1].key, "key-1", 5);
	assert_int_equal(s.t[1].window_ms, 60000);
	assert_true(s.t[1].due_unix_ms >= before + 3600000 &&
		    s.t[1].due_unix_ms <= now_unix_ms() + 3600000);
	forq_admin_journal_sched_publish(f->q, upto);
	assert_int_equal(forq_admin_journal_backlog(f->q), 0);
	s.n = 0;
	assert_int_equal(forq_admin_journal_sched_scan(f->q, take_task, &s, &upto), 0);
	assert_int_equal(forq_admin_retry_due(f->q, now_mono_ns()), 1);
	/* In its lane now, a ring record: written by the ring's scan, with
	 * no due time; b still holds its key. */
	assert_int_equal(forq_push_unique(f->q, FORQ_NORMAL, "late", 4, "key-1", 5, 0, 0, &holder,
					  &dup), 0);
	assert_true(dup && holder == b);
	forq_admin_journal_end(f->q);
	assert_int_equal(forq_admin_retry_due(f->q, now_mono_ns()), 0);
}

static void *publisher(void *arg)
{
	struct forq *q = arg;
	struct seen_task s = {0};
	uint64_t upto = 0;
	usleep(50000);
	while (forq_admin_journal_sched_scan(q, take_task, &s, &upto) == 0 && !upto)
		usleep(1000);
	forq_admin_journal_sched_publish(q, upto);
	forq_admin_journal_wake(q, 0);
	return NULL;
}

/* With producers waiting for the disk: a delayed push returns once the
 * journal's mark covers it (woken by the writer, 50 ms on). */
static void test_delayed_waits(void **state)
{
	struct qfx *f = *state;
	forq_admin_journal_begin(f->q, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, publisher, f->q), 0);
	uint64_t id, t0 = now_mono_ns();
	assert_int_equal(forq_push_delayed(f->q, FORQ_NORMAL, "d", 1, 3600000, &id), 0);
	uint64_t took = now_mono_ns() - t0;
	pthread_join(th, NULL);
	assert_true(took >= 40000000u && took < 4000000000u);
	assert_int_equal(forq_admin_journal_backlog(f->q), 0);
	forq_admin_journal_end(f->q);
}

/* forqd's journal, --fsync always: delayed and keyed pushes return with
 * their TASK records on disk; a checkpoint keeps them; a replay reads the
 * due time and the key back. */
static void test_delayed_journaled(void **state)
{
	struct qfx *f = *state;
	struct journal *j = open_journal(f, JOURNAL_SYNC_ALWAYS, 1 << 20);
	uint64_t a, b, c;
	int dup;
	uint64_t before = now_unix_ms();
	assert_int_equal(forq_push_delayed(f->q, FORQ_HIGH, "late", 4, 3600000, &a), 0);
	assert_int_equal(forq_push_unique(f->q, FORQ_LOW, "keyed", 5, "k2", 2, 1000, 0, &b, &dup), 0);
	assert_int_equal(forq_push_unique(f->q, FORQ_NORMAL, "both", 4, "k3", 2, 0, 7200000, &c,
					  &dup), 0);
	assert_int_equal(forq_admin_journal_backlog(f->q), 0);
	journal_close(j, 1);
	struct segset s;
	struct replay_task *t;
	size_t n;
	char err[256];
	assert_int_equal(segset_open(&s, dir, f->name, 64, 0, &t, &n, err, sizeof err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(t[0].id, a);
	assert_int_equal(t[0].prio, FORQ_HIGH);
	assert_int_equal(t[0].key_len, 0);
	assert_true(t[0].due_ms >= before + 3600000 && t[0].due_ms <= now_unix_ms() + 3600000);
	assert_int_equal(t[1].id, b);
	assert_int_equal(t[1].due_ms, 0);
	assert_int_equal(t[1].key_len, 2);
	assert_memory_equal(t[1].key, "k2", 2);
	assert_int_equal(t[1].window_ms, 1000);
	assert_int_equal(t[1].len, 5);
	assert_memory_equal(t[1].payload, "keyed", 5);
	assert_int_equal(t[2].id, c);
	assert_true(t[2].due_ms >= before + 7200000);
	assert_memory_equal(t[2].key, "k3", 2);
	replay_free(t, n);
	segset_close(&s);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	for (size_t i = 0; i < 64; i++)
		msgs[i] = (struct forq_msg){"task", 4};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sync_without_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_journaled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delayed_gate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delayed_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delayed_journaled, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
