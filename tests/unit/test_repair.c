/* test_repair.c — recovery of a queue a dead forqd left: what it gives back,
 * and what it must never do with a crafted object (signal a process it cannot
 * prove is the queue's own, or wait without a bound on a lock). */
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

#include "clock.h"
#include "forq_admin.h"
#include "internal.h" /* crafts records and lock words as a hostile object would */

struct fx {
	char name[64];
	struct forq *creator;   /* a mapping of the object, to craft it */
	pid_t bystander;        /* a live process that is not the queue's */
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
	snprintf(f->name, sizeof f->name, "/forq-test-repair-%d-%d", getpid(), seq++);
	assert_int_equal(forq_create(&f->creator, f->name, &o, err, sizeof err), 0);
	forq__proc_release(f->creator); /* as if that forqd had gone: only a mapping is left */
	f->bystander = fork();
	assert_true(f->bystander >= 0);
	if (f->bystander == 0) {
		for (;;)
			pause();
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	kill(f->bystander, SIGKILL);
	waitpid(f->bystander, NULL, 0);
	forq_close(f->creator);
	forq_unlink(f->name);
	free(f);
	return 0;
}

static int alive(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0 && kill(pid, 0) == 0;
}

/* A free process record made to claim pid as a consumer of an older forqd
 * generation, with the given start time. */
static void forge_consumer(struct forq *q, pid_t pid, uint64_t start_ticks)
{
	for (uint32_t i = 0; i < q->h->max_procs; i++) {
		struct forq_proc *p = forq__proc(q, i);
		if (atomic_load(&p->state) != FORQ_PROC_FREE)
			continue;
		p->role = FORQ_ROLE_CONSUMER;
		p->pid = pid;
		p->generation = 0;
		p->worker = 0;
		p->start_ticks = start_ticks;
		atomic_store(&p->state, FORQ_PROC_ACTIVE);
		return;
	}
	fail_msg("no free process record");
}

static int recover_as_new_forqd(const char *name, struct forq **qp)
{
	char err[256];
	assert_int_equal(forq_admin_attach(qp, name, err, sizeof err), 0);
	assert_int_equal(forq_admin_own(*qp, err, sizeof err), 0);
	return forq_admin_recover(*qp, NULL, NULL);
}

/* Check that a record whose start time is 0 proves nothing: recovery leaves
 * the live process it names alone. */
static void test_recover_never_signals_a_process_without_proof(void **state)
{
	struct fx *f = *state;
	struct forq *q;
	forge_consumer(f->creator, f->bystander, 0);
	assert_true(recover_as_new_forqd(f->name, &q) >= 0);
	assert_true(alive(f->bystander));
	forq_close(q);
}

/* Check that a record whose start time is another process's (a reused pid)
 * is not that process: left alone too. */
static void test_recover_never_signals_a_reused_pid(void **state)
{
	struct fx *f = *state;
	struct forq *q;
	forge_consumer(f->creator, f->bystander, forq__proc_start_ticks(f->bystander) + 1);
	assert_true(recover_as_new_forqd(f->name, &q) >= 0);
	assert_true(alive(f->bystander));
	forq_close(q);
}

/* Check the other side: a consumer of the old generation proven by its start
 * time is fenced (killed) before its tasks are given back. */
static void test_recover_fences_a_proven_old_consumer(void **state)
{
	struct fx *f = *state;
	struct forq *q;
	forge_consumer(f->creator, f->bystander, forq__proc_start_ticks(f->bystander));
	assert_true(recover_as_new_forqd(f->name, &q) >= 0);
	for (int i = 0; i < 200 && alive(f->bystander); i++)
		usleep(10000);
	assert_false(alive(f->bystander));
	forq_close(q);
}

/* Check that a lock word naming a live process that never lets go makes
 * recovery fail within a bound (about 5 s), instead of hanging forqd. */
static void test_recover_gives_up_on_a_lock_held_by_a_live_process(void **state)
{
	struct fx *f = *state;
	struct forq *q;
	char err[256];
	/* glibc's robust mutex: the lock word is the owner's thread id. */
	f->creator->h->rings[0].push_lock.__data.__lock = f->bystander;
	assert_int_equal(forq_admin_attach(&q, f->name, err, sizeof err), 0);
	assert_int_equal(forq_admin_own(q, err, sizeof err), 0);
	uint64_t t0 = clock_mono_ns();
	assert_int_equal(forq_admin_recover(q, NULL, NULL), -EDEADLK);
	uint64_t took_ms = (clock_mono_ns() - t0) / 1000000u;
	assert_true(took_ms < 30000); /* a bound, generous: never forever */
	assert_true(alive(f->bystander));
	forq_close(q);
	f->creator->h->rings[0].push_lock.__data.__lock = 0;
}

/* Check that a consumer that died with tasks in hand has them given back to
 * the queue, and its record freed. */
static void test_repair_pid_gives_back_a_dead_consumers_batch(void **state)
{
	struct fx *f = *state;
	struct forq *q;
	char err[256];
	uint64_t ids[3];
	struct forq_msg m[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
	assert_int_equal(recover_as_new_forqd(f->name, &q), 0);
	forq_admin_set_flags(q, FORQ_F_ACCEPTING, 0);
	assert_int_equal(forq_push_batch(q, FORQ_NORMAL, m, 3, 0, ids), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct forq *c;
		struct forq_task t[3];
		if (forq_admin_attach(&c, f->name, err, sizeof err) ||
		    forq_admin_consumer_attach(c, 0) || forq_pop_batch(c, t, 3, 0) != 3)
			_exit(1);
		forq_task_begin(c, &t[0]);
		raise(SIGKILL);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(forq_admin_repair_pid(q, pid, "killed", NULL, NULL), 3);
	assert_int_equal(forq_admin_repair_pid(q, pid, "killed", NULL, NULL), -ENOENT);
	struct forq_stats st;
	forq_stats_read(q, &st);
	assert_int_equal(st.pending[FORQ_NORMAL], 3);
	assert_int_equal(st.in_progress, 0);
	forq_close(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recover_never_signals_a_process_without_proof,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_never_signals_a_reused_pid, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_fences_a_proven_old_consumer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recover_gives_up_on_a_lock_held_by_a_live_process,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_pid_gives_back_a_dead_consumers_batch,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
