/* test_rate.c — the start rate limit: a bucket in shared memory that every
 * consumer and forqd's leases draw from. Only lower bounds on time are
 * checked (a slow machine can only make starts later), and a generous upper
 * bound that catches a hang. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "forq.h"
#include "forq_admin.h"
#include "queue_fixture.h"

static int setup(void **state)
{
	struct forq_options o = qfx_options(1024, 64);
	*state = qfx_create("rate", &o);
	return 0;
}

#define teardown qfx_destroy

static void push_n(struct qfx *f, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(forq_push(f->q, FORQ_NORMAL, "1+1", 3, 0, NULL), 0);
}

/* Pops and finishes until n tasks are done; returns the seconds it took. */
static double drain(struct forq *q, int n, int *first_batch)
{
	uint64_t t0 = clock_mono_ns();
	int done = 0;
	while (done < n) {
		struct forq_task t[64];
		int k = forq_pop_batch(q, t, 64, 10000);
		assert_true(k > 0);
		if (first_batch && !done)
			*first_batch = k;
		for (int i = 0; i < k; i++)
			forq_task_finish(q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
		done += k;
	}
	return (double)(clock_mono_ns() - t0) / 1e9;
}

/* Check that without a limit a pop takes the whole backlog at once. */
static void test_no_limit_takes_whole_batches(void **state)
{
	struct qfx *f = *state;
	push_n(f, 60);
	int first = 0;
	drain(f->q, 60, &first);
	assert_int_equal(first, 60);
	assert_true(forq_admin_rate(f->q) == 0);
	assert_int_equal(forq_admin_rate_wait_ns(f->q), 0);
}

/* Check that 100 starts a second with a burst of 10 start 10 at once, then
 * the rest no faster than the rate, and that the wait is counted. */
static void test_limit_spaces_starts(void **state)
{
	struct qfx *f = *state;
	assert_int_equal(forq_admin_set_rate(f->q, 100, 10), 0);
	assert_true(forq_admin_rate(f->q) > 99.9 && forq_admin_rate(f->q) < 100.1);
	push_n(f, 60);
	int first = 0;
	double s = drain(f->q, 60, &first);
	assert_int_equal(first, 10);
	assert_true(s >= 0.45); /* 50 starts after the burst, at 100 a second */
	assert_true(s < 30);
	struct forq_hists h;
	forq_hists_read(f->q, &h);
	assert_true(h.rate_wait_ns >= 300000000u);
}

/* Check that two consumer processes share one limit: together they start
 * no faster than it. */
static void test_consumers_share_the_limit(void **state)
{
	struct qfx *f = *state;
	assert_int_equal(forq_admin_set_rate(f->q, 100, 5), 0);
	push_n(f, 65);
	uint64_t t0 = clock_mono_ns();
	pid_t kid[2];
	for (int c = 0; c < 2; c++) {
		if ((kid[c] = fork()) == 0) {
			if (forq_admin_consumer_attach(f->q, c))
				_exit(1);
			struct forq_task t[64];
			int k;
			while ((k = forq_pop_batch(f->q, t, 64, 300)) > 0)
				for (int i = 0; i < k; i++)
					forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
			_exit(k == -ETIMEDOUT ? 0 : 2);
		}
	}
	struct forq_stats st;
	do {
		forq_stats_read(f->q, &st);
		nanosleep(&(struct timespec){0, 5000000}, NULL);
	} while (st.done < 65 && clock_mono_ns() - t0 < 30ull * 1000000000u);
	double s = (double)(clock_mono_ns() - t0) / 1e9;
	for (int c = 0; c < 2; c++) {
		int ws;
		assert_int_equal(waitpid(kid[c], &ws, 0), kid[c]);
		assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	}
	assert_int_equal(st.done, 65);
	assert_true(s >= 0.55); /* 60 after the burst of 5 */
}

/* Check that leases to remote workers draw from the same limit. */
static void test_leases_draw_from_the_limit(void **state)
{
	struct qfx *f = *state;
	assert_int_equal(forq_admin_set_rate(f->q, 10, 3), 0);
	push_n(f, 20);
	struct forq_task t[64];
	int k = forq_lease_take(f->q, 1, clock_mono_ns() + 1000000000u, t, 64);
	assert_int_equal(k, 3);
	assert_int_equal(forq_lease_take(f->q, 1, clock_mono_ns() + 1000000000u, t, 64), 0);
	uint64_t w = forq_admin_rate_wait_ns(f->q);
	assert_true(w > 0 && w <= 100000000u);
	/* Off again: everything at once. */
	assert_int_equal(forq_admin_set_rate(f->q, 0, 0), 0);
	assert_int_equal(forq_lease_take(f->q, 1, clock_mono_ns() + 1000000000u, t, 64), 17);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_limit_takes_whole_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_spaces_starts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consumers_share_the_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leases_draw_from_the_limit, setup, teardown),
	};
	return cmocka_run_group_tests_name("rate", tests, NULL, NULL);
}
