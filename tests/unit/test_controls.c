/* test_controls.c — a queue's controls in core: pause and resume (the flag,
 * sleeping consumers, leases) and purge (pending and retry-waiting tasks,
 * each reported once; against a consumer popping at the same time; with a
 * consumer or the purger killed inside, through core's failpoints, which
 * this test's copy of core has compiled in). */
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

#include "forq_admin.h"
#include "clock.h"
#include "forq.h"
#include "queue_fixture.h"

#define NTASKS 600

static int setup(void **state)
{
	struct forq_options o = qfx_options(4096, 64);
	o.recent_max = 65536;
	o.batch_max = 16;
	o.backoff_ms = 60000; /* a retried task waits in the retry table */
	*state = qfx_create("ctl", &o);
	return 0;
}

#define teardown qfx_destroy

/* Pushes n tasks, spread over the three lanes or all normal; their ids are
 * f->first.. */
static void fill(struct qfx *f, int n, int spread)
{
	for (int i = 0; i < n; i++) {
		uint64_t id;
		enum forq_prio p = spread ? (enum forq_prio)(i % 3) : FORQ_NORMAL;
		assert_int_equal(forq_push(f->q, p, "t", 1, 0, &id), 0);
		if (i == 0)
			f->first = id;
	}
}

/* What the final callback saw: one count per task id (index id - first). */
struct seen {
	uint64_t first;
	int n;
	unsigned char count[NTASKS];
	int bad;     /* a status or text other than purged or cancelled */
	int cancels; /* of n, those cancelled */
};

static void on_final(void *ctx, const struct forq_task_info *t, const void *payload, int status,
		     const char *text, size_t len)
{
	struct seen *s = ctx;
	(void)payload;
	const char *want = status == FORQ_RESULT_CANCELLED ? "cancelled" : "purged";
	if ((status != FORQ_RESULT_PURGED && status != FORQ_RESULT_CANCELLED) ||
	    len != strlen(want) || memcmp(text, want, len) || t->id < s->first ||
	    t->id >= s->first + NTASKS)
		s->bad++;
	else
		s->count[t->id - s->first]++;
	s->cancels += status == FORQ_RESULT_CANCELLED;
	s->n++;
}

/* As on_final, in a child: the id goes down a pipe to the parent. */
static void on_final_pipe(void *ctx, const struct forq_task_info *t, const void *payload,
			  int status, const char *text, size_t len)
{
	(void)payload, (void)text, (void)len;
	uint64_t id = status == FORQ_RESULT_PURGED || status == FORQ_RESULT_CANCELLED ? t->id : 0;
	if (write(*(int *)ctx, &id, sizeof id) != (ssize_t)sizeof id)
		_exit(5);
}

/* Adds the ids a child wrote to fd (until EOF) to s. */
static void read_ids(int fd, struct seen *s)
{
	uint64_t id;
	while (read(fd, &id, sizeof id) == (ssize_t)sizeof id) {
		if (id < s->first || id >= s->first + NTASKS)
			s->bad++;
		else
			s->count[id - s->first]++;
		s->n++;
	}
}

/* Pops every task left, finishing each done, and counts them into s. */
static int drain_rest(struct qfx *f, struct seen *s)
{
	struct forq_task t[16];
	int n, total = 0;
	while ((n = forq_pop_batch(f->q, t, 16, 0)) > 0) {
		for (int i = 0; i < n; i++) {
			s->count[t[i].id - s->first]++;
			forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
		}
		total += n;
	}
	return total;
}

static void assert_each_once(const struct seen *s, int n)
{
	assert_int_equal(s->bad, 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(s->count[i], 1);
}

/* Check that a paused queue hands out nothing, still takes pushes, shows
 * the flag to another handle, and hands out again after resume. */
static void test_pause_stops_pops_and_leases_resume_restarts(void **state)
{
	struct qfx *f = *state;
	struct forq_task t[4];
	char err[256];
	struct forq *other;
	fill(f, 2, 0);
	forq_admin_pause(f->q, 1);
	assert_true(forq_admin_paused(f->q));
	assert_int_equal(forq_pop_batch(f->q, t, 4, 50), -ETIMEDOUT);
	assert_int_equal(forq_lease_take(f->q, 1, clock_mono_ns() + 1000000000u, t, 4), 0);
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, "x", 1, 0, NULL), 0);
	assert_int_equal(forq_open(&other, f->name, err, sizeof err), 0);
	assert_true(forq_admin_paused(other));
	forq_admin_pause(other, 0);
	forq_close(other);
	assert_false(forq_admin_paused(f->q));
	assert_int_equal(forq_pop_batch(f->q, t, 4, 0), 3);
	for (int i = 0; i < 3; i++)
		forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
}

/* Check that a consumer asleep on a paused queue with tasks in it takes none
 * while paused and takes them once resumed, well before its pop times out. */
static void test_resume_wakes_sleeping_consumer(void **state)
{
	struct qfx *f = *state;
	forq_admin_pause(f->q, 1);
	fill(f, 3, 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct forq_task t[4];
		if (forq_admin_consumer_attach(f->q, 0))
			_exit(1);
		uint64_t t0 = clock_mono_ns();
		int n = forq_pop_batch(f->q, t, 4, 20000);
		_exit(n == 3 && clock_mono_ns() - t0 < 10000000000u ? 0 : 2);
	}
	usleep(300 * 1000);
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.pending[0] + s.pending[1] + s.pending[2], 3);
	assert_int_equal(s.started, 0);
	forq_admin_pause(f->q, 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	forq_admin_repair_pid(f->q, pid, "test", NULL, NULL); /* its batch back */
}

/* Check that purge drops every pending task of every lane and every task
 * waiting for a retry, reports each once as purged, and leaves a running
 * task alone; the counts and the recent table say so. */
static void test_purge_drops_pending_and_retries(void **state)
{
	struct qfx *f = *state;
	struct seen s = {0};
	struct forq_task t[2];
	fill(f, 10, 1);
	s.first = f->first;
	assert_int_equal(forq_pop_batch(f->q, t, 2, 0), 2);
	assert_int_equal(forq_task_finish(f->q, &t[0], FORQ_RESULT_RETRY, "later", 5, 0),
			 FORQ_RESULT_RETRY);
	forq_task_begin(f->q, &t[1]); /* running: the purge must leave it */
	assert_int_equal(forq_admin_purge(f->q, on_final, &s), -EBUSY); /* our batch is open */
	assert_int_equal(forq_task_finish(f->q, &t[1], FORQ_RESULT_DONE, "ok", 2, 0),
			 FORQ_RESULT_DONE);
	assert_int_equal(forq_admin_purge(f->q, on_final, &s), 9);
	assert_int_equal(s.n, 9);
	assert_int_equal(s.bad, 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(s.count[i], f->first + (uint64_t)i == t[1].id ? 0 : 1);
	struct forq_stats st;
	forq_stats_read(f->q, &st);
	assert_int_equal(st.pending[0] + st.pending[1] + st.pending[2], 0);
	assert_int_equal(st.retry_waiting, 0);
	assert_int_equal(forq_admin_purged_total(f->q), 9);
	char text[32];
	uint16_t att;
	assert_int_equal(forq_result_lookup(f->q, t[0].id, text, sizeof text, &att),
			 FORQ_RESULT_PURGED);
	assert_string_equal(text, "purged");
	assert_int_equal(forq_result_lookup(f->q, t[1].id, text, sizeof text, &att),
			 FORQ_RESULT_DONE);
	/* Empty: nothing more, and the queue works on. */
	assert_int_equal(forq_admin_purge(f->q, on_final, &s), 0);
	assert_int_equal(forq_push(f->q, FORQ_LOW, "y", 1, 0, NULL), 0);
	assert_int_equal(forq_pop_batch(f->q, t, 2, 0), 1);
	forq_task_finish(f->q, &t[0], FORQ_RESULT_DONE, "", 0, 0);
}

/* Check that a purge racing a consumer that pops as fast as it can splits
 * the tasks between them: each task is purged or run, once. */
static void test_purge_races_consumer(void **state)
{
	struct qfx *f = *state;
	struct seen s = {0};
	int fds[2];
	fill(f, NTASKS, 1);
	s.first = f->first;
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct forq_task t[16];
		int n;
		close(fds[0]);
		if (forq_admin_consumer_attach(f->q, 0))
			_exit(1);
		while ((n = forq_pop_batch(f->q, t, 4, 200)) > 0)
			for (int i = 0; i < n; i++) {
				forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
				if (write(fds[1], &t[i].id, sizeof t[i].id) != (ssize_t)sizeof t[i].id)
					_exit(3);
			}
		_exit(n == -ETIMEDOUT ? 0 : 2);
	}
	close(fds[1]);
	usleep(2000); /* let it start popping */
	int purged = forq_admin_purge(f->q, on_final, &s);
	assert_true(purged >= 0);
	read_ids(fds[0], &s);
	close(fds[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(s.n, NTASKS);
	assert_each_once(&s, NTASKS);
	forq_admin_repair_pid(f->q, pid, "test", NULL, NULL);
}

/* A consumer that dies at failpoint `fp` inside its first pop (holding the
 * ring's pop lock, or just after it stored the head). Returns its pid. */
static pid_t consumer_dies_at(struct qfx *f, const char *fp)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct forq_task t[16];
		setenv("FORQ_FAILPOINT", fp, 1);
		if (forq_admin_consumer_attach(f->q, 0))
			_exit(1);
		forq_pop_batch(f->q, t, 16, 0);
		_exit(2); /* the failpoint did not fire */
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	return pid;
}

/* Check that a purge after a consumer died inside a pop loses and
 * duplicates nothing: killed mid-copy (lock held, head not moved), its
 * copies do not count and every task is purged; killed after moving the
 * head, its batch is its own, given back by repair, and the rest purged. */
static void test_purge_after_consumer_killed_mid_pop(void **state)
{
	static const char *const points[] = {"pop.copy:3", "pop.after_head:1"};
	struct qfx *f = *state;
	for (int k = 0; k < 2; k++) {
		struct seen s = {0};
		fill(f, 40, 0);
		s.first = f->first;
		pid_t pid = consumer_dies_at(f, points[k]);
		int purged = forq_admin_purge(f->q, on_final, &s);
		int given = forq_admin_repair_pid(f->q, pid, "killed", NULL, NULL);
		assert_int_equal(given, k == 0 ? 0 : 16); /* one lane: a whole batch */
		assert_int_equal(purged, 40 - given);
		assert_int_equal(drain_rest(f, &s), given);
		assert_each_once(&s, 40);
	}
}

/* Runs forq_admin_purge (id 0) or forq_admin_cancel(id) in a child that
 * dies at failpoint `fp`; the ids it reported go into s. Returns its pid
 * (reaped). */
static pid_t dies_at(struct qfx *f, const char *fp, uint64_t id, struct seen *s)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		setenv("FORQ_FAILPOINT", fp, 1);
		if (forq_admin_consumer_attach(f->q, 0))
			_exit(1);
		if (id)
			forq_admin_cancel(f->q, id, on_final_pipe, &fds[1]);
		else
			forq_admin_purge(f->q, on_final_pipe, &fds[1]);
		_exit(2);
	}
	close(fds[1]);
	read_ids(fds[0], s);
	close(fds[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	return pid;
}

/* Check that a purger killed mid-purge (a result reported, its entry not
 * yet freed) runs nothing it took: repair reports the rest of its batch as
 * purged (the last one it reported maybe again), the tasks it had not taken
 * stay queued, and every task ends purged or run. */
static void test_purger_killed_mid_purge(void **state)
{
	struct qfx *f = *state;
	struct seen s = {0};
	fill(f, 40, 0);
	s.first = f->first;
	pid_t pid = dies_at(f, "purge.report:5", 0, &s);
	assert_int_equal(s.n, 5);
	assert_int_equal(forq_admin_repair_pid(f->q, pid, "killed", on_final, &s), 0);
	/* Its first batch (16) is reported, the 5th of them twice. */
	assert_int_equal(s.n, 17);
	int twice = 0;
	for (int i = 0; i < 40; i++)
		twice += s.count[i] == 2;
	assert_int_equal(twice, 1);
	for (int i = 0; i < 40; i++)
		if (s.count[i] == 2)
			s.count[i] = 1;
	assert_int_equal(drain_rest(f, &s), 24);
	assert_each_once(&s, 40);
	assert_int_equal(forq_admin_purged_total(f->q), 17);
}

/* Check the same for the retry table: a purger killed while it reports the
 * retry-waiting tasks it marked leaves none waiting, and repair reports the
 * ones it had not. */
static void test_purger_killed_in_retry_table(void **state)
{
	struct qfx *f = *state;
	struct seen s = {0};
	struct forq_task t[16];
	fill(f, 8, 0);
	s.first = f->first;
	assert_int_equal(forq_pop_batch(f->q, t, 16, 0), 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(forq_task_finish(f->q, &t[i], FORQ_RESULT_RETRY, "x", 1, 0),
				 FORQ_RESULT_RETRY);
	pid_t pid = dies_at(f, "purge.report:2", 0, &s);
	struct forq_stats st;
	forq_stats_read(f->q, &st);
	assert_int_equal(st.retry_waiting, 0);
	assert_int_equal(forq_admin_repair_pid(f->q, pid, "killed", on_final, &s), 0);
	assert_int_equal(s.n, 9); /* 8, the second one twice */
	for (int i = 0; i < 8; i++)
		assert_true(s.count[i] >= 1 && s.count[i] <= 2);
	assert_int_equal(forq_admin_retry_due(f->q, UINT64_MAX), 0);
	assert_int_equal(forq_pop_batch(f->q, t, 16, 0), -ETIMEDOUT);
}

/* Check the purge request path: with no forqd owning the queue it fails at
 * once; asked while the owner serves, it gets the count; serving with no
 * request does nothing. */
static void test_purge_ask_and_serve(void **state)
{
	struct qfx *f = *state;
	struct seen s = {0};
	uint64_t n = 99;
	char err[256];
	fill(f, 5, 1);
	s.first = f->first;
	assert_int_equal(forq_admin_purge_ask(f->q, 1000, &n), -ESRCH);
	assert_int_equal(forq_admin_own(f->q, err, sizeof err), 0);
	assert_int_equal(forq_admin_purge_serve(f->q, on_final, &s), -ENOMSG);
	assert_int_equal(s.n, 0);
	pid_t pid = fork();
	if (pid == 0) {
		uint64_t got = 0;
		struct forq *q;
		if (forq_open(&q, f->name, err, sizeof err))
			_exit(1);
		int r = forq_admin_purge_ask(q, 10000, &got);
		_exit(r == 0 && got == 5 ? 0 : 2);
	}
	int served = -ENOMSG;
	for (int i = 0; i < 2000 && served == -ENOMSG; i++) {
		usleep(1000);
		served = forq_admin_purge_serve(f->q, on_final, &s);
	}
	assert_int_equal(served, 5);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	char name[40];
	assert_int_equal(forq_queue_shm_name("/forq", "default", name, sizeof name), 0);
	assert_string_equal(name, "/forq");
	assert_int_equal(forq_queue_shm_name("/forq", "emails_2-x", name, sizeof name), 0);
	assert_string_equal(name, "/forq.emails_2-x");
	assert_int_equal(forq_queue_shm_name("/forq", "", name, sizeof name), -EINVAL);
	assert_int_equal(forq_queue_shm_name("/forq", "a.b", name, sizeof name), -EINVAL);
	assert_int_equal(forq_queue_shm_name("/forq", "a/b", name, sizeof name), -EINVAL);
	assert_int_equal(forq_queue_shm_name("/forq", "q23456789012345678901234567890123", name,
					     sizeof name), -EINVAL); /* 33 bytes */
	assert_int_equal(forq_queue_shm_name("/forq", "q2345678901234567890123456789012", name,
					     38), -ENAMETOOLONG); /* 38 bytes and the NUL */
	assert_int_equal(forq_queue_shm_name("/f", "q2345678901234567890123456789012", name,
					     sizeof name), 0);
}

/* Check that cancel takes a queued task out for good: reported once as
 * cancelled, left out of the pending count, passed over by pops (the others
 * come in order), found as cancelled by id; a task waiting for a retry too;
 * a running, unknown or already cancelled one is refused. */
static void test_cancel_queued_and_retrying(void **state)
{
	struct qfx *f = *state;
	struct seen s = {0};
	struct forq_task t[8];
	struct forq_stats st;
	fill(f, 6, 0);
	s.first = f->first;
	assert_int_equal(forq_admin_cancel(f->q, f->first + 2, on_final, &s), 0);
	assert_int_equal(s.cancels, 1);
	assert_int_equal(s.count[2], 1);
	assert_int_equal(forq_admin_cancel(f->q, f->first + 2, on_final, &s), -ENOENT);
	assert_int_equal(forq_admin_cancel(f->q, f->first + 1000, on_final, &s), -ENOENT);
	forq_stats_read(f->q, &st);
	assert_int_equal(st.pending[FORQ_NORMAL], 5);
	int status = 0;
	unsigned att;
	char text[32];
	assert_int_equal(forq_task_where(f->q, f->first + 2, &status, &att, text, sizeof text),
			 FORQ_WHERE_FINISHED);
	assert_int_equal(status, FORQ_RESULT_CANCELLED);
	assert_int_equal(forq_pop_batch(f->q, t, 2, 0), 2); /* ids 0 and 1 */
	assert_int_equal(forq_admin_cancel(f->q, t[0].id, on_final, &s), -EBUSY); /* batch open */
	assert_int_equal(forq_task_finish(f->q, &t[0], FORQ_RESULT_RETRY, "x", 1, 0),
			 FORQ_RESULT_RETRY);
	forq_task_finish(f->q, &t[1], FORQ_RESULT_DONE, "", 0, 0);
	assert_int_equal(forq_pop_batch(f->q, t, 1, 0), 1); /* id 3: 2 is passed over */
	assert_int_equal(t[0].id, f->first + 3);
	forq_task_begin(f->q, &t[0]);
	forq_task_finish(f->q, &t[0], FORQ_RESULT_DONE, "", 0, 0);
	/* A running task is another process's: refused, left alone. */
	pid_t pid = fork();
	if (pid == 0) {
		struct forq_task u[1];
		if (forq_admin_consumer_attach(f->q, 0) || forq_pop_batch(f->q, u, 1, 0) != 1)
			_exit(1);
		forq_task_begin(f->q, &u[0]);
		pause();
		_exit(0);
	}
	for (int i = 0; i < 2000; i++) {
		forq_stats_read(f->q, &st);
		if (st.started == 4) /* 0, 1 and 3 here, 4 there */
			break;
		usleep(1000);
	}
	int r = forq_admin_cancel(f->q, f->first + 4, on_final, &s);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(r, -EBUSY);
	assert_int_equal(forq_admin_repair_pid(f->q, pid, "test", NULL, NULL), 1);
	/* The retried one waits in the retry table. */
	assert_int_equal(forq_admin_cancel(f->q, f->first, on_final, &s), 0);
	assert_int_equal(s.cancels, 2);
	forq_stats_read(f->q, &st);
	assert_int_equal(st.retry_waiting, 0);
	assert_int_equal(forq_admin_cancelled_total(f->q), 2);
	assert_int_equal(drain_rest(f, &s), 2); /* 4 (given back) and 5 */
	assert_int_equal(s.bad, 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(s.count[i], i == 1 || i == 3 ? 0 : 1);
}

/* Check that a purge passes over a cancelled task (one record each) and
 * that cancel works on a paused queue. */
static void test_cancel_then_purge_paused(void **state)
{
	struct qfx *f = *state;
	struct seen s = {0};
	forq_admin_pause(f->q, 1);
	fill(f, 3, 0);
	s.first = f->first;
	assert_int_equal(forq_admin_cancel(f->q, f->first + 1, on_final, &s), 0);
	assert_int_equal(forq_admin_purge(f->q, on_final, &s), 2);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.cancels, 1);
	assert_each_once(&s, 3);
	struct forq_stats st;
	forq_stats_read(f->q, &st);
	assert_int_equal(st.pending[FORQ_NORMAL], 0);
}

/* Check a canceller killed inside: before it flagged the record, the cancel
 * never happened (the next pop repairs it: the task runs, nothing is
 * reported); after it reported, repair reports it again and it never runs. */
static void test_canceller_killed_mid_cancel(void **state)
{
	struct qfx *f = *state;
	struct seen s = {0};
	fill(f, 4, 0);
	s.first = f->first;
	pid_t pid = dies_at(f, "cancel.copied:1", f->first + 1, &s);
	assert_int_equal(s.n, 0);
	assert_int_equal(drain_rest(f, &s), 4); /* the pop lock's repair undid it */
	assert_int_equal(forq_admin_repair_pid(f->q, pid, "killed", on_final, &s), 0);
	assert_int_equal(s.n, 0);
	assert_each_once(&s, 4);

	struct seen s2 = {0};
	fill(f, 4, 0);
	s2.first = f->first;
	pid = dies_at(f, "cancel.report:1", f->first + 1, &s2);
	assert_int_equal(s2.n, 1);
	assert_int_equal(forq_admin_repair_pid(f->q, pid, "killed", on_final, &s2), 0);
	assert_int_equal(s2.n, 2); /* reported twice, at worst: never run */
	assert_int_equal(s2.count[1], 2);
	s2.count[1] = 1;
	assert_int_equal(drain_rest(f, &s2), 3);
	assert_each_once(&s2, 4);
}

/* Check the cancel request path: no forqd, then served by the owner. */
static void test_cancel_ask_and_serve(void **state)
{
	struct qfx *f = *state;
	struct seen s = {0};
	char err[256];
	uint64_t id = 0;
	fill(f, 2, 0);
	s.first = f->first;
	assert_int_equal(forq_admin_cancel_ask(f->q, f->first, 1000), -ESRCH);
	assert_int_equal(forq_admin_own(f->q, err, sizeof err), 0);
	assert_int_equal(forq_admin_cancel_serve(f->q, on_final, &s, &id, NULL, NULL), -ENOMSG);
	pid_t pid = fork();
	if (pid == 0) {
		struct forq *q;
		if (forq_open(&q, f->name, err, sizeof err))
			_exit(1);
		int a = forq_admin_cancel_ask(q, f->first + 1, 10000);
		int b = forq_admin_cancel_ask(q, f->first + 1, 10000);
		_exit(a == 0 && b == -ENOENT ? 0 : 2);
	}
	int served = 0;
	for (int i = 0; i < 5000 && served < 2; i++) {
		usleep(1000);
		served += forq_admin_cancel_serve(f->q, on_final, &s, &id, NULL, NULL) != -ENOMSG;
	}
	assert_int_equal(served, 2);
	assert_int_equal(id, f->first + 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(s.cancels, 1);
}

/* Check that a queue's ids start at its first_id (forqd's per-queue base):
 * pushes, a delayed push, lookup and cancel all take the big ids; an
 * attacher (a recovering forqd) keeps the counter; the bases are 1 for
 * "default" and distinct, stable and below 2^53 for other names; a first_id
 * of 0 or past 2^53 is refused. */
static void test_first_id_per_queue(void **state)
{
	(void)state;
	uint64_t base = forq_admin_queue_first_id("emails");
	assert_int_equal(forq_admin_queue_first_id(FORQ_QUEUE_DEFAULT), 1);
	assert_int_equal(base, 4867ull * FORQ_QUEUE_ID_SPAN + 1); /* stable: FNV-1a */
	assert_int_not_equal(forq_admin_queue_first_id("jsonq"), base);
	assert_int_equal(forq_admin_queue_first_id("q182"), forq_admin_queue_first_id("q258"));
	assert_int_equal(forq_admin_queue_first_id("a.b"), 0);
	assert_int_equal(forq_admin_queue_first_id(NULL), 0);
	assert_true((FORQ_QUEUE_ID_RANGES - 1) * FORQ_QUEUE_ID_SPAN + FORQ_QUEUE_ID_SPAN <=
		    FORQ_ID_SAFE_MAX);

	struct forq_options o = qfx_options(64, 64);
	o.first_id = base;
	struct qfx *f = qfx_create("firstid", &o);
	uint64_t id, id2, id3;
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, "a", 1, 0, &id), 0);
	assert_int_equal(id, base);
	assert_int_equal(forq_push_delayed(f->q, FORQ_NORMAL, "b", 1, 60000, &id2), 0);
	assert_int_equal(id2, base + 1);
	assert_int_equal(forq_admin_cancel(f->q, id2, NULL, NULL), 0);
	assert_int_equal(forq_result_lookup(f->q, id2, NULL, 0, NULL), FORQ_RESULT_CANCELLED);
	assert_int_equal(forq_admin_cancel(f->q, id2, NULL, NULL), -ENOENT);

	struct forq *again;
	char err[256];
	assert_int_equal(forq_open(&again, f->name, err, sizeof err), 0);
	assert_int_equal(forq_push(again, FORQ_NORMAL, "c", 1, 0, &id3), 0);
	assert_int_equal(id3, base + 2);
	forq_close(again);
	qfx_destroy((void **)&f);

	struct forq *q = NULL;
	o.first_id = 0;
	assert_int_equal(forq_create(&q, "/forq-test-firstid-bad", &o, err, sizeof err), -EINVAL);
	o.first_id = FORQ_ID_SAFE_MAX;
	assert_int_equal(forq_create(&q, "/forq-test-firstid-bad", &o, err, sizeof err), -EINVAL);
	assert_null(q);
}

/* Check the cancel of a task a consumer runs, as forqd does it: the holder's
 * pid is found, the consumer dies, its entry is marked before repair, and
 * repair reports that task cancelled (no crash counted) and gives back the
 * rest of its batch. */
static void test_cancel_held_by_a_dead_consumer(void **state)
{
	struct qfx *f = *state;
	struct seen s = {0};
	int ready[2];
	char c;
	fill(f, 3, 0);
	s.first = f->first;
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct forq_task t[4];
		if (forq_admin_consumer_attach(f->q, 0) || forq_pop_batch(f->q, t, 4, 0) != 3)
			_exit(1);
		forq_task_begin(f->q, &t[0]);
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(forq_admin_holder_pid(f->q, f->first), pid);
	assert_int_equal(forq_admin_holder_pid(f->q, f->first + 2), pid); /* held, not begun */
	assert_int_equal(forq_admin_holder_pid(f->q, f->first + 100), 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(forq_admin_cancel_held(f->q, pid, f->first + 100), -ENOENT);
	assert_int_equal(forq_admin_cancel_held(f->q, pid, f->first), 0);
	assert_int_equal(forq_admin_repair_pid(f->q, pid, "killed", on_final, &s), 2);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.cancels, 1);
	assert_int_equal(s.count[0], 1);
	struct forq_stats st;
	forq_stats_read(f->q, &st);
	assert_int_equal(st.pending[0] + st.pending[1] + st.pending[2], 2);
	assert_int_equal(st.crashes, 0);
	assert_int_equal(forq_admin_cancelled_total(f->q), 1);
	close(ready[0]);
	close(ready[1]);
	assert_int_equal(drain_rest(f, &s), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pause_stops_pops_and_leases_resume_restarts,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_wakes_sleeping_consumer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_drops_pending_and_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_races_consumer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_after_consumer_killed_mid_pop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_purger_killed_mid_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purger_killed_in_retry_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_ask_and_serve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_queued_and_retrying, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_then_purge_paused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_canceller_killed_mid_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_ask_and_serve, setup, teardown),
		cmocka_unit_test(test_first_id_per_queue),
		cmocka_unit_test_setup_teardown(test_cancel_held_by_a_dead_consumer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
