/* test_supervisor.c — forqd's supervisor on a real queue with real consumer
 * processes: it starts them, restarts one that dies (at once the first time,
 * then with a doubling backoff while it keeps dying), gives back what a dead
 * one held, and stops them all. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "forq_admin.h"
#include "log.h"
#include "consumer_exec.h"
#include "supervisor.h"

#define WORKERS 2

struct fx {
	char name[64];
	struct forq *q;
	struct supervisor *s;
	int finals; /* tasks the supervisor reported final through on_final */
};

static void on_final(void *ctx, const struct forq_task_info *t, const void *payload, int status,
		     const char *text, size_t len)
{
	(void)t, (void)payload, (void)status, (void)text, (void)len;
	((struct fx *)ctx)->finals++;
}

static int setup(void **state)
{
	static int seq;
	struct fx *f = calloc(1, sizeof *f);
	struct forq_options o;
	char err[256];
	forq_options_default(&o);
	o.capacity = 256;
	o.max_payload = 64;
	o.max_attempts = 3;
	snprintf(f->name, sizeof f->name, "/forq-test-sup-%d-%d", getpid(), seq++);
	assert_int_equal(forq_create(&f->q, f->name, &o, err, sizeof err), 0);
	assert_int_equal(forq_admin_own(f->q, err, sizeof err), 0);
	forq_admin_set_flags(f->q, FORQ_F_ACCEPTING, 0);
	struct supervisor_config sc = {.workers = WORKERS, .backoff_ms = 200,
				       .backoff_max_ms = 800};
	struct consumer_config cc = {.handler = "arith", .batch = 8, .results_fd = -1};
	assert_int_equal(supervisor_start(&f->s, f->q, &sc, &cc, on_final, f), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	supervisor_wait_all(f->s, 2000);
	assert_int_equal(supervisor_alive(f->s), 0);
	supervisor_free(f->s);
	forq_close(f->q);
	forq_unlink(f->name);
	free(f);
	return 0;
}

static void workers(struct fx *f, struct forq_worker_info *w)
{
	forq_admin_workers(f->q, w, WORKERS);
}

/* Reaps and restarts what is due until cond holds or ms pass. */
static int run_until(struct fx *f, int (*cond)(struct fx *), int ms)
{
	uint64_t until = clock_mono_ns() + (uint64_t)ms * 1000000u;
	while (!cond(f)) {
		if (clock_mono_ns() > until)
			return 0;
		supervisor_reap(f->s);
		supervisor_tick(f->s, 10);
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
	}
	return 1;
}

static int worker0_running_again(struct fx *f)
{
	struct forq_worker_info w[WORKERS];
	workers(f, w);
	return w[0].state == FORQ_WORKER_RUNNING && w[0].restarts >= 1;
}

static int worker0_in_backoff(struct fx *f)
{
	struct forq_worker_info w[WORKERS];
	workers(f, w);
	return w[0].state == FORQ_WORKER_BACKOFF;
}

static int worker0_restarted_twice(struct fx *f)
{
	struct forq_worker_info w[WORKERS];
	workers(f, w);
	return w[0].state == FORQ_WORKER_RUNNING && w[0].restarts >= 2;
}

/* Check that the supervisor starts every worker and shows each as running. */
static void test_supervisor_starts_every_worker(void **state)
{
	struct fx *f = *state;
	struct forq_worker_info w[WORKERS];
	assert_int_equal(supervisor_alive(f->s), WORKERS);
	workers(f, w);
	for (int i = 0; i < WORKERS; i++) {
		assert_int_equal(w[i].state, FORQ_WORKER_RUNNING);
		assert_true(w[i].pid > 0);
		assert_int_equal(kill(w[i].pid, 0), 0);
	}
}

/* Check that a consumer that dies once is restarted at once, and one that
 * dies again soon after waits its backoff (200 ms) before the next start. */
static void test_supervisor_restarts_at_once_then_backs_off(void **state)
{
	struct fx *f = *state;
	struct forq_worker_info w[WORKERS];
	workers(f, w);
	pid_t first = w[0].pid;
	kill(first, SIGKILL);
	assert_true(run_until(f, worker0_running_again, 5000));
	workers(f, w);
	assert_true(w[0].pid != first);
	assert_int_equal(supervisor_restarts(f->s), 1);

	/* The second death within the healthy run time: a backoff of 200 ms
	 * from when it was reaped, so at least 200 ms from the kill (lower
	 * bounds only: a slow machine or valgrind can only make them longer). */
	uint64_t killed = clock_mono_ns();
	kill(w[0].pid, SIGKILL);
	assert_true(run_until(f, worker0_in_backoff, 5000));
	workers(f, w);
	assert_true(w[0].next_start_ns >= killed + 200u * 1000000u);
	assert_true(run_until(f, worker0_restarted_twice, 5000));
	assert_true(clock_mono_ns() - killed >= 200u * 1000000u);
	assert_int_equal(supervisor_alive(f->s), WORKERS);
}

/* Check that tasks still get done by the restarted consumers: nothing a dead
 * one held is lost, and the queue drains. */
static void test_supervisor_keeps_the_queue_moving_after_deaths(void **state)
{
	struct fx *f = *state;
	struct forq_worker_info w[WORKERS];
	struct forq_msg m[64];
	for (int i = 0; i < 64; i++)
		m[i] = (struct forq_msg){"1+1", 3};
	assert_int_equal(forq_push_batch(f->q, FORQ_NORMAL, m, 64, 1000, NULL), 0);
	workers(f, w);
	kill(w[1].pid, SIGKILL);
	uint64_t until = clock_mono_ns() + 10ull * 1000000000u;
	struct forq_stats st;
	for (;;) {
		supervisor_reap(f->s);
		supervisor_tick(f->s, 10);
		forq_stats_read(f->q, &st);
		/* done counts when a task finishes; its slot is in progress until
		 * the consumer releases it a moment later: wait for both. */
		if ((st.done == 64 && st.in_progress == 0) || clock_mono_ns() > until)
			break;
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
	}
	assert_int_equal(st.done, 64);
	assert_int_equal(st.pending[FORQ_NORMAL], 0);
	assert_int_equal(st.in_progress, 0);
}

/* Check that once stopping, a dead consumer is not restarted, and
 * wait_all leaves no consumer alive and every row stopped. */
static void test_supervisor_stops_and_restarts_no_more(void **state)
{
	struct fx *f = *state;
	struct forq_worker_info w[WORKERS];
	workers(f, w);
	supervisor_stopping(f->s);
	forq_admin_set_flags(f->q, FORQ_F_STOP, 0);
	supervisor_wait_all(f->s, 3000);
	assert_int_equal(supervisor_alive(f->s), 0);
	assert_int_equal(supervisor_restarts(f->s), 0);
	for (int i = 0; i < WORKERS; i++)
		assert_int_equal(kill(w[i].pid, 0), -1);
	workers(f, w);
	for (int i = 0; i < WORKERS; i++)
		assert_int_equal(w[i].state, FORQ_WORKER_STOPPED);
}

int main(int argc, char **argv)
{
	/* The supervisor execs this binary for each consumer. */
	if (argc > 1 && !strcmp(argv[1], CONSUMER_PROCESS_FLAG))
		return consumer_process_main(argc, argv);
	log_set_level(LOG_ERROR); /* the supervisor's log lines are not under test */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_supervisor_starts_every_worker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_supervisor_restarts_at_once_then_backs_off,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_supervisor_keeps_the_queue_moving_after_deaths,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_supervisor_stops_and_restarts_no_more, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
