/* test_retry_upstream.c — retries of a queue fed by a NATS stream
 * (FORQ_F_UPSTREAM, forq_admin_retries_upstream): a handle that takes them
 * upstream ends a retry as FORQ_RESULT_REDELIVER (nothing waits here, the
 * recent table holds RETRY with the deliveries so far), a crash and a
 * handle that did not opt in retry here as before, the last attempt is
 * dead; tasks pushed as redelivered carry their earlier deliveries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "forq.h"
#include "forq_admin.h"
#include "queue_fixture.h"

static int setup(void **state)
{
	struct forq_options o = qfx_options(64, 64);
	o.max_attempts = 3;
	o.backoff_ms = 100;
	*state = qfx_create("rup", &o);
	return 0;
}

#define teardown qfx_destroy

static void pop_one(struct qfx *f, struct forq_task *t)
{
	assert_int_equal(forq_pop_batch(f->q, t, 1, 0), 1);
	forq_task_begin(f->q, t);
}

/* A new task fails with a retry and waits in this queue's retry table. */
static void retried_here(struct qfx *f)
{
	struct forq_task t;
	struct forq_stats s;
	uint64_t id;
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, "a", 1, 0, &id), 0);
	pop_one(f, &t);
	assert_int_equal(forq_task_finish(f->q, &t, FORQ_RESULT_RETRY, "later", 5, 0),
			 FORQ_RESULT_RETRY);
	forq_stats_read(f->q, &s);
	assert_int_equal(s.retry_waiting, 1);
}

/* Delivery `before` + 1 of a task, pushed as the bridge does, fails with
 * a retry: it ends as `final`, the recent table says `looked` with the
 * deliveries so far. */
static void fail_redelivered(struct qfx *f, unsigned before, int final, int looked)
{
	struct forq_task t;
	uint64_t id;
	uint16_t attempts = 0;
	assert_int_equal(forq_admin_push_redelivered(f->q, FORQ_NORMAL,
						     &(struct forq_msg){"b", 1}, 1, before, 0, &id), 0);
	pop_one(f, &t);
	assert_int_equal(t.attempts, before);
	assert_int_equal(forq_task_finish(f->q, &t, FORQ_RESULT_RETRY, "later", 5, 0), final);
	assert_int_equal(forq_result_lookup(f->q, id, NULL, 0, &attempts), looked);
	assert_int_equal(attempts, before + 1);
}

/* Check that a retry goes upstream only with the flag and the opt-in, and
 * what the bridge reads of it. */
static void test_retry_goes_upstream(void **state)
{
	struct qfx *f = *state;
	struct forq_task t;
	struct forq_stats s;
	uint64_t id;
	uint16_t attempts = 0;

	/* Opted in, no flag: retried here. */
	forq_admin_retries_upstream(f->q);
	retried_here(f);

	/* The flag: the next one leaves the queue. */
	forq_admin_set_flags(f->q, FORQ_F_UPSTREAM, 0);
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, "b", 1, 0, &id), 0);
	pop_one(f, &t);
	assert_true(t.id == id);
	assert_int_equal(forq_task_finish(f->q, &t, FORQ_RESULT_RETRY, "later", 5, 0),
			 FORQ_RESULT_REDELIVER);
	forq_stats_read(f->q, &s);
	assert_int_equal(s.retry_waiting, 1); /* only a's */
	assert_int_equal(s.pending[FORQ_NORMAL], 0);
	assert_int_equal(s.retried, 2);
	assert_int_equal(forq_result_lookup(f->q, id, NULL, 0, &attempts), FORQ_RESULT_RETRY);
	assert_int_equal(attempts, 1);
	assert_int_equal(forq_admin_backoff_ms(f->q, attempts), 100);
	assert_int_equal(forq_admin_backoff_ms(f->q, 2), 200);

	/* Its second delivery (from the stream) fails again: 2 so far; the
	 * third is the last: dead, as before. */
	fail_redelivered(f, 1, FORQ_RESULT_REDELIVER, FORQ_RESULT_RETRY);
	fail_redelivered(f, 2, FORQ_RESULT_DEAD, FORQ_RESULT_DEAD);

	/* A crash is retried here at once. */
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, "c", 1, 0, &id), 0);
	pop_one(f, &t);
	assert_int_equal(forq_admin_task_crashed(f->q, &t, "died", 4, 0), FORQ_RESULT_RETRY);
	pop_one(f, &t);
	assert_true(t.id == id);
	assert_int_equal(t.attempts, 1);
	assert_int_equal(forq_task_finish(f->q, &t, FORQ_RESULT_DONE, "", 0, 0), FORQ_RESULT_DONE);
}

/* Check that a handle that did not opt in retries here, flag or not. */
static void test_other_handles_retry_here(void **state)
{
	struct qfx *f = *state;
	forq_admin_set_flags(f->q, FORQ_F_UPSTREAM, 0);
	retried_here(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_retry_goes_upstream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_handles_retry_here, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
