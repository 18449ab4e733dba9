/* test_backing.c — a sparse queue (a largest payload over a page) holds
 * memory for what is queued, not for capacity × max payload: pushes reserve,
 * finished and consumed tasks give back, payloads stay whole across ring
 * wraps and crash repair, and a queue of small payloads is reserved whole. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "forq.h"
#include "forq_admin.h"
#include "queue_fixture.h"

#define MIB (1ull << 20)

static int setup_with(void **state, uint32_t capacity, uint32_t max_payload)
{
	struct forq_options o = qfx_options(capacity, max_payload);
	struct qfx *f = qfx_create("backing", &o);
	f->base = forq_admin_resident(f->q);
	*state = f;
	return 0;
}

static int setup_sparse(void **state)
{
	return setup_with(state, 256, 1u << 20);
}

static int setup_sparse_small_ring(void **state)
{
	return setup_with(state, 4, 1u << 20);
}

#define teardown qfx_destroy

/* A payload whose every byte says which task and offset it is. */
static void fill(uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 12));
}

static int same(const uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed * 131u + i * 7u + (i >> 12)))
			return 0;
	return 1;
}

/* Pushes n tasks of len bytes, seeds first..first+n-1. */
static void push_n(struct qfx *f, int n, uint32_t len, uint32_t first)
{
	uint8_t *buf = malloc(len ? len : 1);
	for (int i = 0; i < n; i++) {
		fill(buf, len, first + (uint32_t)i);
		assert_int_equal(forq_push(f->q, FORQ_NORMAL, buf, len, 0, NULL), 0);
	}
	free(buf);
}

/* Frees the last batch (the next pop does) and the ring pages behind it. */
static void settle(struct qfx *f)
{
	struct forq_task t;
	assert_int_equal(forq_pop_batch(f->q, &t, 1, 0), -ETIMEDOUT);
	assert_int_equal(forq_admin_trim(f->q), 0);
}

/* Check that a queue for 1 MiB payloads starts small, grows with what is
 * pushed and held, and gives it all back once the tasks are done. */
static void test_sparse_memory_follows_what_is_queued(void **state)
{
	struct qfx *f = *state;
	assert_true(forq_admin_size(f->q) > 1024 * MIB); /* address space only */
	assert_true(f->base < 64 * MIB);

	push_n(f, 32, 256 * 1024, 0);
	uint64_t queued = forq_admin_resident(f->q);
	assert_true(queued >= f->base + 8 * MIB);
	assert_true(queued <= f->base + 8 * MIB + 2 * MIB);

	struct forq_task t[32];
	assert_int_equal(forq_pop_batch(f->q, t, 32, 0), 32);
	for (int i = 0; i < 32; i++) {
		assert_int_equal(t[i].len, 256 * 1024);
		assert_true(same(t[i].payload, t[i].len, (uint32_t)(t[i].id - 1)));
		forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
	}
	/* Held by the consumer now (ring pages wait for a trim). */
	assert_true(forq_admin_resident(f->q) >= f->base + 8 * MIB);
	settle(f);
	assert_true(forq_admin_resident(f->q) <= f->base + 2 * MIB);
}

/* Check that payloads of every size up to the largest come back whole as a
 * small sparse ring wraps many times, and that memory stays bounded. */
static void test_sparse_ring_wraps_with_every_size(void **state)
{
	struct qfx *f = *state;
	uint32_t seed = 1, next = 0, want = 0, rng = 12345;
	uint64_t peak = 0, moved = 0, ids[4096];
	uint8_t *buf = malloc(1u << 20);
	while (moved < 64 * MIB) {
		int n = 1 + (int)(rng % 3);
		for (int i = 0; i < n; i++) {
			rng = rng * 1103515245u + 12345u;
			uint32_t len = (rng >> 8) % 4 == 0 ? (rng >> 4) % 64 : (rng >> 8) % (1u << 20);
			fill(buf, len, seed + next);
			int r = forq_push(f->q, FORQ_NORMAL, buf, len, 0, &ids[next]);
			if (r == -EAGAIN)
				break; /* full: take some first */
			assert_int_equal(r, 0);
			assert_true(next + 1 < 4096);
			next++;
			moved += len;
		}
		struct forq_task t[2];
		int got = forq_pop_batch(f->q, t, 2, 0);
		assert_true(got > 0);
		for (int i = 0; i < got; i++) {
			assert_int_equal(t[i].id, ids[want]);
			assert_true(same(t[i].payload, t[i].len, seed + want));
			want++;
			forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
		}
		uint64_t now = forq_admin_resident(f->q);
		if (now > peak)
			peak = now;
	}
	free(buf);
	struct forq_task t[64];
	int got = forq_pop_batch(f->q, t, 64, 0);
	for (int i = 0; i < got; i++) {
		assert_true(same(t[i].payload, t[i].len, seed + want++));
		forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
	}
	assert_int_equal(want, next);
	/* At most the ring's tasks, a batch in flight and a chunk each side. */
	assert_true(peak <= f->base + 12 * MIB);
	settle(f);
	assert_true(forq_admin_resident(f->q) <= f->base + 2 * MIB);
}

/* Check that a consumer killed with large payloads in hand gives them back
 * whole, and that the repair gives back their memory too. */
static void test_sparse_dead_consumer_gives_back_whole_payloads(void **state)
{
	struct qfx *f = *state;
	push_n(f, 3, 700 * 1024, 0);
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct forq_task t[3];
		if (forq_admin_consumer_attach(f->q, 0))
			_exit(1);
		int n = forq_pop_batch(f->q, t, 3, 0); /* into its own entries */
		if (n != 3)
			_exit(2);
		forq_task_begin(f->q, &t[1]);
		/* Killed from outside, not by raise(): valgrind's memcheck
		 * would first scan every mapping for leaks, and reading the
		 * sparse queue's holes gives it their pages. */
		(void)!write(ready[1], "k", 1);
		pause();
		_exit(3);
	}
	char c;
	close(ready[1]);
	if (read(ready[0], &c, 1) == 1)
		kill(pid, SIGKILL);
	close(ready[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(forq_admin_repair_pid(f->q, pid, "killed", NULL, NULL), 3);
	struct forq_task t[3];
	assert_int_equal(forq_pop_batch(f->q, t, 3, 0), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(t[i].len, 700 * 1024);
		assert_true(same(t[i].payload, t[i].len, (uint32_t)(t[i].id - 1)));
		forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
	}
	settle(f);
	assert_true(forq_admin_resident(f->q) <= f->base + 2 * MIB);
}

/* Check that a queue whose largest payload fits a page is reserved whole at
 * creation, as before: its hot path never asks the kernel for memory. */
static void test_small_payload_queue_is_reserved_whole(void **state)
{
	(void)state;
	struct qfx *f;
	setup_with((void **)&f, 1024, 1024);
	uint64_t size = forq_admin_size(f->q), held = forq_admin_resident(f->q);
	assert_true(held >= size && held < size + 4096); /* whole pages */
	void *s = f;
	qfx_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sparse_memory_follows_what_is_queued,
						setup_sparse, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_ring_wraps_with_every_size,
						setup_sparse_small_ring, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_dead_consumer_gives_back_whole_payloads,
						setup_sparse, teardown),
		cmocka_unit_test(test_small_payload_queue_is_reserved_whole),
	};
	return cmocka_run_group_tests_name("backing", tests, NULL, NULL);
}
