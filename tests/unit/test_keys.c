/* test_keys.c — unique keys: a push under a key that a live task holds
 * returns that task; the key is free once the task ends (or its window
 * after), whatever ended it; eight processes pushing the same keys at once
 * get one task per key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "forq.h"
#include "forq_admin.h"
#include "queue_fixture.h"

static int setup_keys(void **state, uint32_t keys)
{
	struct forq_options o = qfx_options(4096, 64);
	o.recent_max = 4096;
	o.keys_max = keys;
	*state = qfx_create("keys", &o);
	return 0;
}

static int setup(void **state)
{
	return setup_keys(state, 1024);
}

static int setup_tiny(void **state)
{
	return setup_keys(state, 4);
}

#define teardown qfx_destroy

static int push(struct qfx *f, const char *key, uint64_t window_ms, uint64_t *id)
{
	int dup = -1;
	int r = forq_push_unique(f->q, FORQ_NORMAL, "t", 1, key, strlen(key), window_ms, 0, id, &dup);
	assert_int_equal(r, 0);
	return dup;
}

static void run_all(struct qfx *f, enum forq_result_status st)
{
	struct forq_task t[64];
	int n;
	while ((n = forq_pop_batch(f->q, t, 64, 0)) > 0)
		for (int i = 0; i < n; i++)
			forq_task_finish(f->q, &t[i], st, "", 0, 0);
}

/* Check that a live task's key returns it, another key a new task, and that
 * the key is free again once the task is done or failed. */
static void test_key_held_until_the_task_ends(void **state)
{
	struct qfx *f = *state;
	uint64_t a, b, c, d;
	assert_int_equal(push(f, "user:42", 0, &a), 0);
	assert_int_equal(push(f, "user:42", 0, &b), 1);
	assert_true(a == b);
	assert_int_equal(push(f, "user:43", 0, &c), 0);
	assert_true(c != a);
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.enqueued, 2);
	/* Running still holds it. */
	struct forq_task t[2];
	assert_int_equal(forq_pop_batch(f->q, t, 2, 0), 2);
	assert_int_equal(push(f, "user:42", 0, &d), 1);
	assert_true(d == a);
	forq_task_finish(f->q, &t[0], FORQ_RESULT_DONE, "", 0, 0);
	forq_task_finish(f->q, &t[1], FORQ_RESULT_FAILED, "no", 2, 0);
	assert_int_equal(push(f, "user:42", 0, &d), 0);
	assert_true(d != a);
	assert_int_equal(push(f, "user:43", 0, &d), 0);
	assert_true(d != c);
}

/* Check that a window keeps the key after the end, and only that long. */
static void test_window_after_the_end(void **state)
{
	struct qfx *f = *state;
	uint64_t a, b;
	assert_int_equal(push(f, "k", 300, &a), 0);
	run_all(f, FORQ_RESULT_DONE);
	uint64_t ended = clock_mono_ns();
	assert_int_equal(push(f, "k", 300, &b), 1);
	assert_true(b == a);
	while (clock_mono_ns() - ended < 320000000u)
		nanosleep(&(struct timespec){0, 20000000}, NULL);
	assert_int_equal(push(f, "k", 300, &b), 0);
	assert_true(b != a);
}

/* Check that a scheduled task holds its key, and that a purge or a cancel
 * ends it like a result does. */
static void test_scheduled_purged_and_cancelled(void **state)
{
	struct qfx *f = *state;
	uint64_t a, b;
	int dup;
	assert_int_equal(forq_push_unique(f->q, FORQ_HIGH, "x", 1, "later", 5, 0, 60000, &a, &dup), 0);
	assert_int_equal(dup, 0);
	assert_int_equal(push(f, "later", 0, &b), 1);
	assert_true(a == b);
	assert_int_equal(forq_admin_cancel(f->q, a, NULL, NULL), 0);
	assert_int_equal(push(f, "later", 0, &b), 0);
	assert_int_equal(forq_admin_purge(f->q, NULL, NULL), 1);
	assert_int_equal(push(f, "later", 0, &a), 0);
	assert_true(a != b);
}

/* Check the refusals: bad keys, and a table with no free slot within reach. */
static void test_refusals(void **state)
{
	struct qfx *f = *state;
	uint64_t id;
	int dup;
	char big[FORQ_KEY_MAX + 1];
	memset(big, 'k', sizeof big);
	assert_int_equal(forq_push_unique(f->q, FORQ_NORMAL, "t", 1, big, sizeof big, 0, 0, &id, &dup),
			 -EINVAL);
	assert_int_equal(forq_push_unique(f->q, FORQ_NORMAL, "t", 1, "", 0, 0, 0, &id, &dup), -EINVAL);
	assert_int_equal(push(f, "a", 0, &id), 0);
	assert_int_equal(push(f, "b", 0, &id), 0);
	assert_int_equal(push(f, "c", 0, &id), 0);
	assert_int_equal(push(f, "d", 0, &id), 0);
	assert_int_equal(forq_push_unique(f->q, FORQ_NORMAL, "t", 1, "e", 1, 0, 0, &id, &dup), -EAGAIN);
	run_all(f, FORQ_RESULT_DONE); /* every slot free again */
	assert_int_equal(push(f, "e", 0, &id), 0);
}

/* Check that 8 processes pushing the same 50 keys 20 times each get one task
 * per key, and all of them its id. */
static void test_eight_producers_one_task_per_key(void **state)
{
	struct qfx *f = *state;
	enum { P = 8, K = 50, R = 20 };
	uint64_t *ids = mmap(NULL, sizeof(uint64_t) * P * K, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(ids != MAP_FAILED);
	pid_t kid[P];
	for (int p = 0; p < P; p++) {
		if ((kid[p] = fork()) == 0) {
			char err[256];
			struct forq *q;
			if (forq_open(&q, f->name, err, sizeof err))
				_exit(1);
			for (int r = 0; r < R; r++)
				for (int k = 0; k < K; k++) {
					char key[16];
					uint64_t id;
					int dup;
					snprintf(key, sizeof key, "key-%d", (k + p * 7) % K);
					if (forq_push_unique(q, FORQ_NORMAL, "t", 1, key, strlen(key), 0, 0,
							     &id, &dup))
						_exit(2);
					uint64_t *seen = &ids[p * K + (k + p * 7) % K];
					if (*seen && *seen != id)
						_exit(3);
					*seen = id;
				}
			forq_close(q);
			_exit(0);
		}
	}
	for (int p = 0; p < P; p++) {
		int ws;
		assert_int_equal(waitpid(kid[p], &ws, 0), kid[p]);
		assert_true(WIFEXITED(ws));
		assert_int_equal(WEXITSTATUS(ws), 0);
	}
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.enqueued, K);
	for (int k = 0; k < K; k++)
		for (int p = 1; p < P; p++)
			assert_true(ids[p * K + k] == ids[k]);
	munmap(ids, sizeof(uint64_t) * P * K);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_held_until_the_task_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_after_the_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduled_purged_and_cancelled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_eight_producers_one_task_per_key, setup, teardown),
	};
	return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
