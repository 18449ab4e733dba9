/* test_workwatch.c — tasks arriving as an event: core's work watch calls
 * (forq_admin_work_*) and forqd's watch thread (service/workwatch.c) that
 * turns them into an eventfd in a loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "forq.h"
#include "forq_admin.h"
#include "loop.h"
#include "workwatch.h"

#define MS ((uint64_t)1000000)

struct fx {
	char name[64];
	struct forq *q;  /* the pusher's handle */
	struct forq *cq; /* the consumer thread's */
};

static int setup(void **state)
{
	static int seq;
	struct fx *f = calloc(1, sizeof *f);
	struct forq_options o;
	char err[256];
	forq_options_default(&o);
	o.capacity = 64;
	o.max_payload = 64;
	o.recent_max = 64;
	snprintf(f->name, sizeof f->name, "/forq-test-watch-%d-%d", getpid(), seq++);
	if (forq_create(&f->q, f->name, &o, err, sizeof err) ||
	    forq_open(&f->cq, f->name, err, sizeof err))
		fail_msg("queue: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	forq_close(f->cq);
	forq_close(f->q);
	assert_int_equal(forq_unlink(f->name), 0);
	free(f);
	return 0;
}

struct sleeper {
	struct fx *f;
	int got;           /* consumer: tasks popped */
	uint64_t woke_ns;  /* when the consumer popped, when the watcher saw the word move */
	uint32_t seq;
};

static void *consumer(void *arg)
{
	struct sleeper *c = arg;
	struct forq_task t;
	if (forq_pop(c->f->cq, &t, 5000) == 0) {
		c->got = 1;
		c->woke_ns = clock_mono_ns();
		forq_task_finish(c->f->cq, &t, FORQ_RESULT_DONE, "", 0, 0);
	}
	return NULL;
}

static void *watcher(void *arg)
{
	struct sleeper *w = arg;
	while (forq_admin_work_seq(w->f->q) == w->seq)
		if (forq_admin_work_wait(w->f->q, w->seq, 5000) == -ETIMEDOUT)
			return NULL;
	w->woke_ns = clock_mono_ns();
	return NULL;
}

/* Check that one pushed task wakes both a consumer asleep in forq_pop and a
 * watcher asleep on the word: the watcher never takes the consumer's
 * wake-up, and the consumer never takes the watcher's. */
static void test_push_wakes_consumer_and_watcher(void **state)
{
	struct fx *f = *state;
	struct sleeper c = {.f = f}, w = {.f = f};
	pthread_t ct, wt;
	forq_admin_work_watch(f->q);
	w.seq = forq_admin_work_seq(f->q);
	/* The watcher asleep first, then the consumer (past its spin, far from
	 * its 100 ms re-check): a wake-up for one task that reached only the
	 * first sleeper would leave the consumer asleep for ~90 ms. */
	assert_int_equal(pthread_create(&wt, NULL, watcher, &w), 0);
	usleep(100000);
	assert_int_equal(pthread_create(&ct, NULL, consumer, &c), 0);
	usleep(10000);
	uint64_t t0 = clock_mono_ns();
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, "1+1", 3, 0, NULL), 0);
	pthread_join(wt, NULL);
	pthread_join(ct, NULL);
	forq_admin_work_unwatch(f->q);
	assert_true(w.woke_ns != 0);
	/* Bounds that catch a lost wake-up (the watcher would sleep its 5 s)
	 * and leave room for a loaded machine or valgrind; how fast a wake-up
	 * is belongs in the benchmarks. */
	assert_true(w.woke_ns - t0 < 2500 * MS); /* woken, not timed out */
	assert_int_equal(c.got, 1);
	assert_true(c.woke_ns - t0 < 2500 * MS);
}

/* Check that a word read before a push makes the wait return at once: a push
 * between the read and the wait is not lost. */
static void test_push_before_wait_is_not_lost(void **state)
{
	struct fx *f = *state;
	forq_admin_work_watch(f->q);
	uint32_t seq = forq_admin_work_seq(f->q);
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, "1+1", 3, 0, NULL), 0);
	uint64_t t0 = clock_mono_ns();
	assert_int_equal(forq_admin_work_wait(f->q, seq, 2000), 0);
	assert_true(clock_mono_ns() - t0 < 1000 * MS); /* at once, not at its 2 s timeout */
	assert_int_not_equal(forq_admin_work_seq(f->q), seq);
	forq_admin_work_unwatch(f->q);
	/* Not watching: a push moves nothing, the wait times out. */
	seq = forq_admin_work_seq(f->q);
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, "1+1", 3, 0, NULL), 0);
	assert_int_equal(forq_admin_work_seq(f->q), seq);
	assert_int_equal(forq_admin_work_wait(f->q, seq, 50), -ETIMEDOUT);
}

static void on_work(void *ctx)
{
	(*(int *)ctx)++;
}

/* Check the watch thread in a loop: armed after a look that found nothing,
 * a push from elsewhere runs on_work in the loop; it stays quiet while not
 * wanted; and it stops cleanly while armed. */
static void test_watch_thread_wakes_the_loop(void **state)
{
	struct fx *f = *state;
	struct loop l;
	struct work_watch *w;
	int calls = 0;
	assert_int_equal(loop_init(&l), 0);
	assert_int_equal(work_watch_start(&w, f->q, &l, on_work, &calls), 0);

	assert_int_equal(work_watch_begin(w, 0), 0);      /* nobody waits: nothing */
	assert_int_equal(work_watch_begin(w, 1), 1);      /* look, then arm */
	work_watch_arm(w, 1);
	assert_int_equal(work_watch_begin(w, 1), 0);      /* armed: nothing to do */
	assert_int_equal(forq_push(f->cq, FORQ_NORMAL, "2+2", 3, 0, NULL), 0);
	uint64_t t0 = clock_mono_ns();
	while (calls == 0 && clock_mono_ns() - t0 < 2000 * MS)
		assert_true(loop_run_once(&l) >= 0);
	assert_int_equal(calls, 1); /* within the 2 s bound above */

	/* Fired: the next round looks again; found something, so it disarms
	 * and unregisters; a push then wakes nobody. */
	assert_int_equal(work_watch_begin(w, 1), 1);
	work_watch_arm(w, 0);
	uint32_t seq = forq_admin_work_seq(f->q);
	assert_int_equal(forq_push(f->cq, FORQ_NORMAL, "3+3", 3, 0, NULL), 0);
	assert_int_equal(forq_admin_work_seq(f->q), seq);

	assert_int_equal(work_watch_begin(w, 1), 1);
	work_watch_arm(w, 1);
	work_watch_stop(w); /* armed, asleep in the futex: woken to stop */
	loop_release(&l);
	assert_int_equal(calls, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_push_wakes_consumer_and_watcher, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_push_before_wait_is_not_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_thread_wakes_the_loop, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
