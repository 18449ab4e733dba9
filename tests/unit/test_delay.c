/* test_delay.c — tasks pushed with a delay: they wait in the waiting table
 * (shared with retries, counted apart), start no sooner than asked once
 * forqd's look moves them, keep their id and payload, and are reported when
 * forqd stops before they are due. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "forq.h"
#include "forq_admin.h"
#include "queue_fixture.h"

#define MS 1000000ull

static int setup(void **state)
{
	struct forq_options o = qfx_options(64, 64);
	o.recent_max = 64;
	o.retry_max = 4;
	o.backoff_ms = 1;
	*state = qfx_create("delay", &o);
	return 0;
}

#define teardown qfx_destroy

/* forqd's look at the waiting table, every 5 ms until a task can be popped
 * or ms pass. Returns the pop's count. */
static int look_and_pop(struct qfx *f, struct forq_task *t, int ms)
{
	uint64_t until = clock_mono_ns() + (uint64_t)ms * MS;
	for (;;) {
		forq_admin_retry_due(f->q, clock_mono_ns());
		int n = forq_pop_batch(f->q, t, 1, 0);
		if (n != -ETIMEDOUT || clock_mono_ns() > until)
			return n;
		nanosleep(&(struct timespec){0, 5 * MS}, NULL);
	}
}

/* Check that a delayed task waits, is counted as scheduled, and starts no
 * sooner than its delay, whole. */
static void test_delayed_task_starts_no_sooner(void **state)
{
	struct qfx *f = *state;
	uint64_t id = 0, t0 = clock_mono_ns();
	assert_int_equal(forq_push_delayed(f->q, FORQ_HIGH, "6*7", 3, 300, &id), 0);
	assert_true(id > 0);
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.scheduled, 1);
	assert_int_equal(s.retry_waiting, 0);
	assert_int_equal(s.enqueued, 1);
	int st;
	unsigned att;
	assert_int_equal(forq_task_where(f->q, id, &st, &att, NULL, 0), FORQ_WHERE_SCHEDULED);
	struct forq_task t;
	assert_int_equal(forq_admin_retry_due(f->q, clock_mono_ns()), 0);
	assert_int_equal(forq_pop_batch(f->q, &t, 1, 0), -ETIMEDOUT);
	assert_int_equal(look_and_pop(f, &t, 5000), 1);
	assert_true(clock_mono_ns() - t0 >= 300 * MS);
	assert_true(t.id == id);
	assert_int_equal(t.prio, FORQ_HIGH);
	assert_int_equal(t.len, 3);
	assert_memory_equal(t.payload, "6*7", 3);
	forq_stats_read(f->q, &s);
	assert_int_equal(s.scheduled, 0);
	forq_task_finish(f->q, &t, FORQ_RESULT_DONE, "42", 2, 0);
}

/* Check that a delayed task that then fails is a retry like any other, and
 * that delay 0 is a plain push. */
static void test_delayed_task_retries_as_a_retry(void **state)
{
	struct qfx *f = *state;
	uint64_t id;
	assert_int_equal(forq_push_delayed(f->q, FORQ_NORMAL, "x", 1, 20, &id), 0);
	struct forq_task t;
	assert_int_equal(look_and_pop(f, &t, 5000), 1);
	forq_task_finish(f->q, &t, FORQ_RESULT_RETRY, "later", 5, 0);
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.scheduled, 0);
	assert_int_equal(s.retry_waiting, 1);
	assert_int_equal(look_and_pop(f, &t, 5000), 1);
	assert_true(t.id == id);
	assert_int_equal(t.attempts, 1);
	forq_task_finish(f->q, &t, FORQ_RESULT_DONE, "", 0, 0);

	assert_int_equal(forq_push_delayed(f->q, FORQ_NORMAL, "now", 3, 0, &id), 0);
	assert_int_equal(forq_pop_batch(f->q, &t, 1, 0), 1);
	assert_true(t.id == id);
	forq_task_finish(f->q, &t, FORQ_RESULT_DONE, "", 0, 0);
}

/* Check that a full waiting table refuses at once, that bad arguments are
 * refused, and that forqd's stop reports each waiting task once. */
static void test_full_table_and_stop(void **state)
{
	struct qfx *f = *state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(forq_push_delayed(f->q, FORQ_NORMAL, "a", 1, 60000, NULL), 0);
	assert_int_equal(forq_push_delayed(f->q, FORQ_NORMAL, "a", 1, 60000, NULL), -EAGAIN);
	assert_int_equal(forq_push_delayed(f->q, FORQ_NORMAL, "a", 1, FORQ_DELAY_MAX_MS + 1, NULL),
			 -EINVAL);
	char big[65] = {0};
	assert_int_equal(forq_push_delayed(f->q, FORQ_NORMAL, big, sizeof big, 10, NULL), -EMSGSIZE);
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.scheduled, 4);
	assert_int_equal(s.enqueued, 4);
	assert_int_equal(forq_admin_drain_each(f->q, NULL, NULL), 4);
	forq_stats_read(f->q, &s);
	assert_int_equal(s.scheduled, 0);
	assert_int_equal(s.retry_waiting, 0);
}

/* Check that a purge and a cancel take delayed tasks too, and that the
 * scheduled count follows. */
static void test_purge_and_cancel_take_delayed_tasks(void **state)
{
	struct qfx *f = *state;
	uint64_t a, b;
	assert_int_equal(forq_push_delayed(f->q, FORQ_NORMAL, "a", 1, 60000, &a), 0);
	assert_int_equal(forq_push_delayed(f->q, FORQ_NORMAL, "b", 1, 60000, &b), 0);
	assert_int_equal(forq_admin_cancel(f->q, a, NULL, NULL), 0);
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.scheduled, 1);
	assert_int_equal(forq_admin_purge(f->q, NULL, NULL), 1);
	forq_stats_read(f->q, &s);
	assert_int_equal(s.scheduled, 0);
	assert_int_equal(s.retry_waiting, 0);
	int st;
	unsigned att;
	assert_int_equal(forq_task_where(f->q, b, &st, &att, NULL, 0), FORQ_WHERE_FINISHED);
	assert_int_equal(st, FORQ_RESULT_PURGED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delayed_task_starts_no_sooner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delayed_task_retries_as_a_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_table_and_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_and_cancel_take_delayed_tasks, setup, teardown),
	};
	return cmocka_run_group_tests_name("delay", tests, NULL, NULL);
}
