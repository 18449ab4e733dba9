/* test_queue.c — libforq's ring: push, pop, batches, wrap-around, full and
 * empty, priorities, counters, several processes at once, crash give-back. */
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
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "forq_admin.h"
#include "clock.h"
#include "forq.h"
#include "internal.h" /* a record's fields, to forge a start time */

struct fx {
	char name[64];
	struct forq *q;
};

static int setup_with(void **state, uint32_t capacity, uint32_t max_payload, uint32_t backoff_ms,
		      uint32_t max_attempts)
{
	static int seq;
	struct fx *f = calloc(1, sizeof *f);
	struct forq_options o;
	char err[256];
	forq_options_default(&o);
	o.capacity = capacity;
	o.max_payload = max_payload;
	o.recent_max = 1024;
	o.backoff_ms = backoff_ms;
	o.max_attempts = max_attempts;
	snprintf(f->name, sizeof f->name, "/forq-test-%d-%d", getpid(), seq++);
	int r = forq_create(&f->q, f->name, &o, err, sizeof err);
	if (r)
		fprintf(stderr, "create: %s\n", err);
	assert_int_equal(r, 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 1024, 256, 1, 3);
}

static int setup_small(void **state)
{
	return setup_with(state, 8, 64, 1, 3);
}

static int setup_backoff(void **state)
{
	return setup_with(state, 1024, 256, 100, 5);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	forq_close(f->q);
	assert_int_equal(forq_unlink(f->name), 0);
	free(f);
	return 0;
}

/* Check that a pushed task comes back whole, with its id and priority. */
static void test_push_then_pop_returns_same_task(void **state)
{
	struct fx *f = *state;
	uint64_t id = 0;
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, "1+2", 3, 0, &id), 0);
	assert_true(id >= 1);
	struct forq_task t[4];
	assert_int_equal(forq_pop_batch(f->q, t, 4, 0), 1);
	assert_int_equal(t[0].id, id);
	assert_int_equal(t[0].len, 3);
	assert_memory_equal(t[0].payload, "1+2", 3);
	assert_int_equal(t[0].prio, FORQ_NORMAL);
	assert_int_equal(t[0].attempts, 0);
	forq_task_begin(f->q, &t[0]);
	assert_int_equal(forq_task_finish(f->q, &t[0], FORQ_RESULT_DONE, "3", 1, 10), FORQ_RESULT_DONE);
	char text[64];
	uint16_t att = 0;
	assert_int_equal(forq_result_lookup(f->q, id, text, sizeof text, &att), FORQ_RESULT_DONE);
	assert_string_equal(text, "3");
	assert_int_equal(att, 1);
}

/* Check that popping an empty queue times out instead of blocking forever. */
static void test_pop_empty_times_out(void **state)
{
	struct fx *f = *state;
	struct forq_task t[1];
	assert_int_equal(forq_pop_batch(f->q, t, 1, 0), -ETIMEDOUT);
	assert_int_equal(forq_pop_batch(f->q, t, 1, 30), -ETIMEDOUT);
	assert_int_equal(forq_pop(f->q, t, 30), -ETIMEDOUT);
}

/* Check that forq_pop takes single tasks, the highest lane first, and that a
 * second pop waits for the first task to be finished. */
static void test_pop_single_tasks(void **state)
{
	struct fx *f = *state;
	uint64_t low = 0, high = 0;
	struct forq_task t;
	assert_int_equal(forq_push(f->q, FORQ_LOW, "low", 3, 0, &low), 0);
	assert_int_equal(forq_push(f->q, FORQ_HIGH, "high", 4, 0, &high), 0);
	assert_int_equal(forq_pop(f->q, &t, 0), 0);
	assert_int_equal(t.id, high);
	assert_memory_equal(t.payload, "high", 4);
	assert_int_equal(forq_pop(f->q, &t, 0), -EBUSY);
	assert_int_equal(forq_task_finish(f->q, &t, FORQ_RESULT_DONE, "", 0, 0), FORQ_RESULT_DONE);
	assert_int_equal(forq_pop(f->q, &t, 0), 0);
	assert_int_equal(t.id, low);
	assert_int_equal(forq_task_finish(f->q, &t, FORQ_RESULT_DONE, "", 0, 0), FORQ_RESULT_DONE);
}

/* Check that a full lane refuses with -EAGAIN and accepts again after a pop. */
static void test_full_lane_pushes_back(void **state)
{
	struct fx *f = *state;
	int pushed = 0;
	while (forq_push(f->q, FORQ_LOW, "x", 1, 0, NULL) == 0)
		pushed++;
	assert_int_equal(pushed, 8);
	assert_int_equal(forq_push(f->q, FORQ_LOW, "x", 1, 20, NULL), -EAGAIN);
	/* Another lane is independent. */
	assert_int_equal(forq_push(f->q, FORQ_HIGH, "h", 1, 0, NULL), 0);
	struct forq_task t[8];
	assert_int_equal(forq_pop_batch(f->q, t, 8, 0), 1); /* high first */
	assert_int_equal(t[0].prio, FORQ_HIGH);
	assert_int_equal(forq_task_finish(f->q, &t[0], FORQ_RESULT_DONE, "", 0, 0), FORQ_RESULT_DONE);
	assert_int_equal(forq_pop_batch(f->q, t, 3, 0), 3);
	for (int i = 0; i < 3; i++)
		forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
	assert_int_equal(forq_pop_batch(f->q, t, 1, 0), 1); /* releases the 3 */
	forq_task_finish(f->q, &t[0], FORQ_RESULT_DONE, "", 0, 0);
	assert_int_equal(forq_push(f->q, FORQ_LOW, "y", 1, 0, NULL), 0);
}

/* Check that a payload over the limit is refused and nothing is queued. */
static void test_oversize_payload_is_refused(void **state)
{
	struct fx *f = *state;
	char big[300] = {0};
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, big, sizeof big, 0, NULL), -EMSGSIZE);
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.enqueued, 0);
	assert_int_equal(s.pending[FORQ_NORMAL], 0);
	assert_int_equal(forq_push(f->q, 7, "x", 1, 0, NULL), -EINVAL);
}

/* Check that consumers always take higher lanes first. */
static void test_priorities_high_before_normal_before_low(void **state)
{
	struct fx *f = *state;
	assert_int_equal(forq_push(f->q, FORQ_LOW, "l", 1, 0, NULL), 0);
	assert_int_equal(forq_push(f->q, FORQ_NORMAL, "n", 1, 0, NULL), 0);
	assert_int_equal(forq_push(f->q, FORQ_HIGH, "h", 1, 0, NULL), 0);
	const char want[] = "hnl";
	for (int i = 0; i < 3; i++) {
		struct forq_task t[4];
		assert_int_equal(forq_pop_batch(f->q, t, 4, 0), 1);
		assert_memory_equal(t[0].payload, &want[i], 1);
		forq_task_finish(f->q, &t[0], FORQ_RESULT_DONE, "", 0, 0);
	}
}

/* Check that batches of mixed sizes survive many wrap-arounds intact. */
static void test_batches_wrap_around_intact(void **state)
{
	struct fx *f = *state;
	char buf[256];
	struct forq_msg m[64];
	char payloads[64][256];
	uint64_t ids[64], expect = 0, seen = 0;
	for (int round = 0; round < 400; round++) {
		int n = 1 + round % 64;
		for (int i = 0; i < n; i++) {
			int len = snprintf(payloads[i], sizeof payloads[i], "%d-%d-%.*s", round, i,
					   (round * 7 + i) % 200, "................................................................................................................................................................................................................");
			m[i].payload = payloads[i];
			m[i].len = (uint32_t)len;
		}
		assert_int_equal(forq_push_batch(f->q, FORQ_NORMAL, m, (size_t)n, 0, ids), 0);
		for (int i = 1; i < n; i++)
			assert_int_equal(ids[i], ids[0] + (uint64_t)i);
		expect += (uint64_t)n;
		int got = 0;
		while (got < n) {
			struct forq_task t[64];
			int k = forq_pop_batch(f->q, t, 64, 0);
			assert_true(k > 0);
			for (int i = 0; i < k; i++) {
				assert_int_equal(t[i].id, ids[got + i]);
				assert_int_equal(t[i].len, m[got + i].len);
				memcpy(buf, t[i].payload, t[i].len);
				assert_memory_equal(buf, payloads[got + i], t[i].len);
				forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
			}
			got += k;
			seen += (uint64_t)k;
		}
	}
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.enqueued, expect);
	assert_int_equal(s.done, seen);
	assert_int_equal(s.pending[0] + s.pending[1] + s.pending[2], 0);
}

/* Check that a pop is refused while the previous batch is unfinished. */
static void test_pop_busy_until_batch_finished(void **state)
{
	struct fx *f = *state;
	struct forq_task t[2];
	forq_push(f->q, FORQ_NORMAL, "a", 1, 0, NULL);
	forq_push(f->q, FORQ_NORMAL, "b", 1, 0, NULL);
	assert_int_equal(forq_pop_batch(f->q, t, 1, 0), 1);
	assert_int_equal(forq_pop_batch(f->q, t, 1, 0), -EBUSY);
	forq_task_finish(f->q, &t[0], FORQ_RESULT_FAILED, "bad", 3, 0);
	assert_int_equal(forq_pop_batch(f->q, t, 1, 0), 1);
	forq_task_finish(f->q, &t[0], FORQ_RESULT_DONE, "", 0, 0);
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.failed, 1);
	assert_int_equal(s.done, 1);
}

/* Check that a retry waits --retry-backoff after the first failure, then
 * twice as long after each further one (100, 200, 400 ms), judged on an
 * explicit clock: not due 1 ms early, due at the time. */
static void test_retry_backoff_doubles(void **state)
{
	struct fx *f = *state;
	const uint64_t ms = 1000000;
	uint64_t id;
	struct forq_task t;
	forq_push(f->q, FORQ_NORMAL, "flaky", 5, 0, &id);
	assert_int_equal(forq_pop(f->q, &t, 0), 0);
	for (uint64_t wait = 100; wait <= 400; wait *= 2) {
		uint64_t before = clock_mono_ns();
		assert_int_equal(forq_task_finish(f->q, &t, FORQ_RESULT_RETRY, "busy", 4, 0),
				 FORQ_RESULT_RETRY);
		uint64_t after = clock_mono_ns();
		assert_int_equal(forq_pop(f->q, &t, 0), -ETIMEDOUT); /* waiting, not queued */
		assert_int_equal(forq_admin_retry_due(f->q, before + wait * ms - ms), 0);
		assert_int_equal(forq_admin_retry_due(f->q, after + wait * ms), 1);
		assert_int_equal(forq_pop(f->q, &t, 0), 0);
		assert_int_equal(t.id, id);
	}
	assert_int_equal(forq_task_finish(f->q, &t, FORQ_RESULT_DONE, "ok", 2, 0), FORQ_RESULT_DONE);
}

/* Check that a transient failure is retried after its backoff and dies after
 * max attempts, landing in the dead letters. */
static void test_retry_then_dead_after_max_attempts(void **state)
{
	struct fx *f = *state;
	uint64_t id;
	forq_push(f->q, FORQ_NORMAL, "boom", 4, 0, &id);
	int final = 0;
	for (int attempt = 0; attempt < 3; attempt++) {
		struct forq_task t[1];
		int n;
		while ((n = forq_pop_batch(f->q, t, 1, 0)) == -ETIMEDOUT)
			forq_admin_retry_due(f->q, UINT64_MAX);
		assert_int_equal(n, 1);
		assert_int_equal(t[0].id, id);
		assert_int_equal(t[0].attempts, attempt);
		final = forq_task_finish(f->q, &t[0], FORQ_RESULT_RETRY, "exit status 1", 13, 0);
	}
	assert_int_equal(final, FORQ_RESULT_DEAD);
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.dead, 1);
	assert_int_equal(s.retried, 2);
	assert_int_equal(s.dead_letters, 1);
	char text[64];
	uint16_t att = 0;
	assert_int_equal(forq_result_lookup(f->q, id, text, sizeof text, &att), FORQ_RESULT_DEAD);
	assert_int_equal(att, 3); /* three deliveries, not four */
	assert_string_equal(text, "exit status 1");
	/* retry-dead puts it back with attempts reset, and it is no longer
	 * reported as dead */
	assert_int_equal(forq_dead_retry(f->q, id), 1);
	assert_int_equal(forq_result_lookup(f->q, id, text, sizeof text, &att), 0);
	struct forq_task t[1];
	assert_int_equal(forq_pop_batch(f->q, t, 1, 0), 1);
	assert_int_equal(t[0].id, id);
	assert_int_equal(t[0].attempts, 0);
	forq_task_finish(f->q, &t[0], FORQ_RESULT_DONE, "", 0, 0);
	assert_int_equal(forq_dead_retry(f->q, id), -ENOENT);
}

/* Pushes three tasks into ids, then a forked consumer takes all three,
 * begins the second and is SIGKILLed. Returns its (reaped) pid. */
static pid_t consumer_killed_mid_batch(struct fx *f, uint64_t ids[3], int *status)
{
	struct forq_msg m[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
	assert_int_equal(forq_push_batch(f->q, FORQ_NORMAL, m, 3, 0, ids), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct forq_task t[3];
		if (forq_admin_consumer_attach(f->q, 0) || forq_pop_batch(f->q, t, 3, 0) != 3)
			_exit(1);
		forq_task_begin(f->q, &t[1]);
		raise(SIGKILL);
	}
	assert_int_equal(waitpid(pid, status, 0), pid);
	return pid;
}

/* Check that tasks held by a process that died are given back whole: the
 * one it was running with attempts + 1, the others unchanged. */
static void test_dead_consumer_tasks_are_given_back(void **state)
{
	struct fx *f = *state;
	uint64_t ids[3];
	int st;
	pid_t pid = consumer_killed_mid_batch(f, ids, &st);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(forq_admin_repair_pid(f->q, pid, "killed", NULL, NULL), 3);
	struct forq_task t[3];
	assert_int_equal(forq_pop_batch(f->q, t, 3, 0), 3);
	for (int i = 0; i < 3; i++) {
		int k = (int)(t[i].id - ids[0]);
		assert_true(k >= 0 && k < 3);
		assert_int_equal(t[i].attempts, k == 1 ? 1 : 0);
		forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
	}
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.crashes, 1);
	assert_int_equal(s.requeued, 3);
}

struct drained {
	int n;
	uint64_t id[8];
	unsigned attempts[8];
	char text[8][96];
};

static void on_drained(void *ctx, const struct forq_task_info *t, const void *payload, int status,
		       const char *text, size_t len)
{
	struct drained *d = ctx;
	(void)payload;
	assert_int_equal(status, FORQ_RESULT_UNFINISHED);
	assert_int_equal(len, strlen(text));
	if (d->n < 8) {
		d->id[d->n] = t->id;
		d->attempts[d->n] = t->attempts;
		snprintf(d->text[d->n], sizeof d->text[0], "%s", text);
	}
	d->n++;
}

/* Check that a consumer forqd killed to stop gives its running task back
 * unchanged (no attempt, no crash counted), and that the drain at exit says
 * it was stopped while it ran, the others before they ran. */
static void test_stopped_consumer_task_drains_as_stopped_while_running(void **state)
{
	struct fx *f = *state;
	uint64_t ids[3];
	int st;
	pid_t pid = consumer_killed_mid_batch(f, ids, &st);
	assert_int_equal(forq_admin_repair_stopped(f->q, pid, NULL, NULL), 3);
	struct drained d = {0};
	assert_int_equal(forq_admin_drain_each(f->q, on_drained, &d), 3);
	assert_int_equal(d.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d.attempts[i], 0);
		if (d.id[i] == ids[1])
			assert_non_null(strstr(d.text[i], "forqd stopped while it ran"));
		else
			assert_string_equal(d.text[i], "forqd stopped before it ran");
	}
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.crashes, 0);
}

/* 1 once pid has exited (gone, or a zombie). */
static int pid_ended(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return 1;
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return !p || p[2] == 'Z' || p[2] == 'X';
}

/* Runs a consumer that publishes the group of a child it forked (the
 * child leads its group and sleeps), forges the published start time with
 * `forge` (0: keep, 1: zero, 2: off by one), and dies. Returns the group's
 * leader, still alive or not; *consumer is the dead consumer, unrepaired. */
static pid_t consumer_with_group(struct fx *f, int forge, pid_t *consumer)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		pid_t g = fork();
		if (g == 0) {
			setpgid(0, 0);
			for (;;)
				pause();
		}
		setpgid(g, g);
		if (forq_admin_consumer_attach(f->q, 0))
			_exit(1);
		forq_admin_handler_group(f->q, g);
		if (forge == 1)
			f->q->me->handler_start_ticks = 0;
		else if (forge == 2)
			f->q->me->handler_start_ticks++;
		(void)!write(p[1], &g, sizeof g);
		raise(SIGKILL);
	}
	pid_t g = 0;
	close(p[1]);
	assert_int_equal(read(p[0], &g, sizeof g), (ssize_t)sizeof g);
	close(p[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	*consumer = pid;
	return g;
}

/* Check that repair kills the process group a dead consumer published for
 * its handler, and only when the group's leader has the published start
 * time: a forged or missing one proves nothing and signals nobody. */
static void test_repair_kills_the_published_group_only_if_proven(void **state)
{
	struct fx *f = *state;
	for (int forge = 0; forge < 3; forge++) {
		pid_t consumer;
		pid_t g = consumer_with_group(f, forge, &consumer);
		assert_true(g > 0);
		assert_int_equal(forq_admin_repair_pid(f->q, consumer, "killed", NULL, NULL), 0);
		int ended = 0;
		for (int i = 0; i < 100 && !(ended = pid_ended(g)); i++)
			usleep(10000);
		kill(-g, SIGKILL); /* the test's own cleanup */
		if (forge == 0)
			assert_true(ended);
		else
			assert_false(ended);
	}
}

/* Check that 2 producers and 3 consumers in separate processes deliver every
 * task exactly once. */
static void test_processes_deliver_every_task_once(void **state)
{
	struct fx *f = *state;
	enum { PRODUCERS = 2, CONSUMERS = 3, PER = 100000 };
	uint64_t total = (uint64_t)PRODUCERS * PER;
	uint8_t *seen = mmap(NULL, total + 8, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(seen != MAP_FAILED);
	pid_t kids[PRODUCERS + CONSUMERS];
	for (int p = 0; p < PRODUCERS; p++) {
		if ((kids[p] = fork()) == 0) {
			struct forq *q;
			if (forq_open(&q, f->name, NULL, 0))
				_exit(2);
			uint64_t vals[32];
			struct forq_msg m[32];
			for (int i = 0; i < PER; i += 32) {
				for (int k = 0; k < 32; k++) {
					vals[k] = (uint64_t)p * PER + (uint64_t)(i + k);
					m[k] = (struct forq_msg){&vals[k], 8};
				}
				if (forq_push_batch(q, (enum forq_prio)(i % 3), m, 32, -1, NULL))
					_exit(3);
			}
			forq_close(q);
			_exit(0);
		}
	}
	for (int c = 0; c < CONSUMERS; c++) {
		if ((kids[PRODUCERS + c] = fork()) == 0) {
			struct forq *q;
			if (forq_open(&q, f->name, NULL, 0))
				_exit(2);
			struct forq_task t[64];
			for (;;) {
				int n = forq_pop_batch(q, t, 64, 300);
				if (n == -ETIMEDOUT)
					break;
				if (n < 0)
					_exit(4);
				for (int i = 0; i < n; i++) {
					uint64_t v;
					memcpy(&v, t[i].payload, 8);
					if (v >= total)
						_exit(5);
					__atomic_fetch_add(&seen[v], 1, __ATOMIC_RELAXED);
					forq_task_finish(q, &t[i], FORQ_RESULT_DONE, "", 0, 0);
				}
			}
			forq_close(q);
			_exit(0);
		}
	}
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
		int st;
		assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	uint64_t missing = 0, dup = 0;
	for (uint64_t i = 0; i < total; i++) {
		missing += seen[i] == 0;
		dup += seen[i] > 1;
	}
	assert_int_equal(missing, 0);
	assert_int_equal(dup, 0);
	struct forq_stats s;
	forq_stats_read(f->q, &s);
	assert_int_equal(s.enqueued, total);
	assert_int_equal(s.done, total);
	assert_int_equal(s.in_progress, 0);
	munmap(seen, total + 8);
}

/* Check that attaching to a name that is not a forq queue is refused. */
static void test_open_refuses_foreign_object(void **state)
{
	(void)state;
	char name[64], err[256];
	snprintf(name, sizeof name, "/forq-test-foreign-%d", getpid());
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 16), 0);
	close(fd);
	struct forq *q = NULL;
	assert_int_equal(forq_open(&q, name, err, sizeof err), -EPROTO);
	assert_non_null(strstr(err, "not a forq queue"));
	assert_null(q);
	shm_unlink(name);
	assert_int_equal(forq_open(&q, "/forq-test-no-such", err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "no queue named"));
	assert_int_equal(forq_open(&q, "bad/name", err, sizeof err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_push_then_pop_returns_same_task, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pop_empty_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_lane_pushes_back, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_oversize_payload_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_priorities_high_before_normal_before_low, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches_wrap_around_intact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pop_busy_until_batch_finished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_then_dead_after_max_attempts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_consumer_tasks_are_given_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopped_consumer_task_drains_as_stopped_while_running,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_kills_the_published_group_only_if_proven,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_processes_deliver_every_task_once, setup, teardown),
		cmocka_unit_test(test_open_refuses_foreign_object),
		cmocka_unit_test_setup_teardown(test_pop_single_tasks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_backoff_doubles, setup_backoff, teardown),
	};
	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
