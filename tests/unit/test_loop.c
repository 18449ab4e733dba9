/* test_loop.c — base/loop.c: timers fire in due order and only when due, the
 * loop sleeps until the nearest one, fds removed in a round get no callback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"

#define MS ((uint64_t)1000000)

struct fx {
	struct loop l;
	int order[64];
	int n;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	assert_int_equal(loop_init(&f->l), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	loop_release(&f->l);
	free(f);
	return 0;
}

struct tag {
	struct fx *f;
	int id;
	struct loop_timer t;
};

static void record(void *ctx, uint64_t now)
{
	struct tag *g = ctx;
	(void)now;
	g->f->order[g->f->n++] = g->id;
}

/* Check that timers armed out of order fire in due order, and that a
 * stopped one and a re-armed one are honoured. */
static void test_loop_timers_fire_in_due_order(void **state)
{
	struct fx *f = *state;
	struct tag g[6];
	uint64_t now = clock_mono_ns();
	static const uint64_t due_ms[6] = {5, 1, 4, 2, 3, 6};
	for (int i = 0; i < 6; i++) {
		g[i] = (struct tag){.f = f, .id = i};
		loop_timer_init(&g[i].t, record, &g[i]);
		assert_int_equal(loop_timer_set(&f->l, &g[i].t, now + due_ms[i] * MS), 0);
	}
	loop_timer_stop(&f->l, &g[2].t);                   /* 4 ms: never fires */
	assert_false(loop_timer_pending(&g[2].t));
	loop_timer_set(&f->l, &g[5].t, now);               /* 6 ms -> now: first */
	assert_int_equal(loop_next_due(&f->l), now);
	while (f->n < 5)
		assert_true(loop_run_once(&f->l) >= 0);
	static const int want[5] = {5, 1, 3, 4, 0};
	assert_memory_equal(f->order, want, sizeof want);
	assert_int_equal(loop_next_due(&f->l), UINT64_MAX);
}

/* Check that 200 timers with pseudo-random due times (some equal) come out
 * sorted: the heap's order survives many sift-ups and sift-downs. */
static void test_loop_many_timers_come_out_sorted(void **state)
{
	struct fx *f = *state;
	struct tag *g = calloc(200, sizeof *g);
	uint64_t now = clock_mono_ns() - 1000 * MS; /* all due already */
	uint64_t last = 0;
	unsigned x = 12345;
	assert_non_null(g);
	for (int i = 0; i < 200; i++) {
		x = x * 1103515245u + 12345u;
		g[i] = (struct tag){.f = f, .id = i};
		loop_timer_init(&g[i].t, record, &g[i]);
		loop_timer_set(&f->l, &g[i].t, now + (x >> 16) % 50);
	}
	for (int i = 0; i < 200; i += 3) /* stop a third of them */
		loop_timer_stop(&f->l, &g[i].t);
	while (loop_next_due(&f->l) != UINT64_MAX) {
		struct loop_timer *t = f->l.heap[0];
		assert_true(t->due_ns >= last);
		last = t->due_ns;
		loop_timer_stop(&f->l, t);
	}
	free(g);
}

/* Check that with one timer 60 ms ahead, one round sleeps until it: one
 * wake-up, not a tick's worth, and not before it is due. */
static void test_loop_sleeps_until_the_nearest_timer(void **state)
{
	struct fx *f = *state;
	struct tag g = {.f = f, .id = 7};
	uint64_t t0 = clock_mono_ns();
	loop_timer_init(&g.t, record, &g);
	loop_timer_set(&f->l, &g.t, t0 + 60 * MS);
	assert_int_equal(loop_run_once(&f->l), 1);
	assert_true(clock_mono_ns() - t0 >= 60 * MS);
	assert_int_equal(f->l.wakeups, 1);
	assert_int_equal(f->n, 1);
}

struct rearm {
	struct loop *l;
	struct loop_timer t;
	int runs;
};

static void rearm_now(void *ctx, uint64_t now)
{
	struct rearm *r = ctx;
	r->runs++;
	loop_timer_set(r->l, &r->t, now);
}

/* Check that a timer that re-arms itself for "now" cannot hold a round. */
static void test_loop_self_rearming_timer_ends_the_round(void **state)
{
	struct fx *f = *state;
	struct rearm r = {.l = &f->l};
	loop_timer_init(&r.t, rearm_now, &r);
	loop_timer_set(&f->l, &r.t, clock_mono_ns());
	assert_int_equal(loop_run_once(&f->l), 1);
	assert_int_equal(r.runs, 1);
	loop_timer_stop(&f->l, &r.t);
}

struct pipe_fx {
	struct loop *l;
	int p[2][2];
	int calls[2];
};

static void on_pipe0(void *ctx, uint32_t ev)
{
	struct pipe_fx *x = ctx;
	(void)ev;
	x->calls[0]++;
	loop_fd_del(x->l, x->p[1][0]); /* the other one, ready in the same round */
}

static void on_pipe1(void *ctx, uint32_t ev)
{
	struct pipe_fx *x = ctx;
	(void)ev;
	x->calls[1]++;
	loop_fd_del(x->l, x->p[0][0]);
}

/* Check that of two fds ready in one round, the one removed by the other's
 * callback gets no callback, and that a removed fd can be added again. */
static void test_loop_removed_fd_gets_no_callback(void **state)
{
	struct fx *f = *state;
	struct pipe_fx x = {.l = &f->l};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe2(x.p[i], O_NONBLOCK), 0);
		assert_int_equal(write(x.p[i][1], "x", 1), 1);
	}
	assert_int_equal(loop_fd_add(&f->l, x.p[0][0], EPOLLIN, on_pipe0, &x), 0);
	assert_int_equal(loop_fd_add(&f->l, x.p[1][0], EPOLLIN, on_pipe1, &x), 0);
	assert_int_equal(loop_fd_add(&f->l, x.p[1][0], EPOLLIN, on_pipe1, &x), -EEXIST);
	assert_int_equal(loop_run_once(&f->l), 1);
	assert_int_equal(x.calls[0] + x.calls[1], 1);
	/* Added again (a new registration), alone: it is called. */
	int gone = x.calls[0] ? 1 : 0;
	loop_fd_del(&f->l, x.p[!gone][0]);
	assert_int_equal(loop_fd_add(&f->l, x.p[gone][0], EPOLLIN,
				     gone ? on_pipe1 : on_pipe0, &x), 0);
	assert_int_equal(loop_run_once(&f->l), 1);
	assert_int_equal(x.calls[gone], 1);
	assert_int_equal(loop_fd_mod(&f->l, 999, EPOLLIN), -ENOENT);
	for (int i = 0; i < 2; i++) {
		loop_fd_del(&f->l, x.p[i][0]);
		close(x.p[i][0]);
		close(x.p[i][1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_loop_timers_fire_in_due_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_many_timers_come_out_sorted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_loop_sleeps_until_the_nearest_timer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_loop_self_rearming_timer_ends_the_round, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_loop_removed_fd_gets_no_callback, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
