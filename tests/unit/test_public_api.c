/* test_public_api.c — forq.h's queue controls as a C program uses them:
 * forq_open_queue of a named queue, pause and resume, purge and cancel
 * (served by a forked "forqd" that owns the queue, as forqd's loop does),
 * and the dead letters (list, re-queue one, some, all; all or none). The
 * client side calls forq.h alone; only the stand-in for forqd uses
 * forq_admin.h. */
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

static int setup(void **state)
{
	struct forq_options o = qfx_options(64, 64);
	o.max_attempts = 1; /* a RETRY on the first delivery is dead */
	*state = qfx_create("pub", &o);
	return 0;
}

#define teardown qfx_destroy

static uint64_t push(struct forq *q, const char *payload)
{
	uint64_t id = 0;
	assert_int_equal(forq_push(q, FORQ_NORMAL, payload, strlen(payload), 0, &id), 0);
	return id;
}

/* Check forq_open_queue: "default" is the base's own object, another name
 * BASE.NAME; a bad name or a queue that does not exist is an error with a
 * reason, and nothing is opened. */
static void test_open_queue(void **state)
{
	struct qfx *f = *state;
	char err[256], name[96];
	struct forq *d, *e, *x = NULL;
	struct forq_stats st;
	struct forq_options o = qfx_options(64, 64);
	assert_int_equal(forq_queue_shm_name(f->name, "emails", name, sizeof name), 0);
	assert_int_equal(forq_create(&e, name, &o, err, sizeof err), 0);
	forq_close(e);
	assert_int_equal(forq_open_queue(&d, f->name, "default", err, sizeof err), 0);
	assert_int_equal(forq_open_queue(&e, f->name, "emails", err, sizeof err), 0);
	push(e, "to emails");
	push(e, "to emails");
	push(d, "to default");
	assert_int_equal(forq_stats_read(f->q, &st), 0);
	assert_int_equal(st.enqueued, 1); /* d is f->q's queue */
	assert_int_equal(forq_stats_read(e, &st), 0);
	assert_int_equal(st.enqueued, 2);
	forq_close(d);
	forq_close(e);
	assert_int_equal(forq_unlink(name), 0);
	assert_int_equal(forq_open_queue(&x, f->name, "a.b", err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "bad queue name \"a.b\""));
	assert_int_equal(forq_open_queue(&x, f->name, "", err, sizeof err), -EINVAL);
	assert_int_equal(forq_open_queue(&x, f->name, "gone", err, sizeof err), -ENOENT);
	assert_null(x);
}

/* Check that a paused queue hands out nothing while pushes go on, and that
 * resume hands out what waited. */
static void test_pause_resume(void **state)
{
	struct qfx *f = *state;
	struct forq_task t;
	assert_int_equal(forq_paused(f->q), 0);
	assert_int_equal(forq_pause(f->q), 0);
	assert_int_equal(forq_paused(f->q), 1);
	uint64_t id = push(f->q, "waits");
	assert_int_equal(forq_pop(f->q, &t, 50), -ETIMEDOUT);
	assert_int_equal(forq_resume(f->q), 0);
	assert_int_equal(forq_paused(f->q), 0);
	assert_int_equal(forq_pop(f->q, &t, 1000), 0);
	assert_true(t.id == id);
	assert_int_equal(forq_task_finish(f->q, &t, FORQ_RESULT_DONE, "ok", 2, 0), FORQ_RESULT_DONE);
}

/* forqd's stand-in: owns the queue, says so on ready, serves purges and
 * cancels until it served `want` of them, checks what it was told. */
struct told {
	int purged, cancelled, other;
};
static void on_final(void *ctx, const struct forq_task_info *t, const void *payload, int status,
		     const char *text, size_t len)
{
	struct told *s = ctx;
	(void)t, (void)payload, (void)text, (void)len;
	s->purged += status == FORQ_RESULT_PURGED;
	s->cancelled += status == FORQ_RESULT_CANCELLED;
	s->other += status != FORQ_RESULT_PURGED && status != FORQ_RESULT_CANCELLED;
}

static void serve(const char *name, int ready, int want)
{
	struct forq *q;
	struct told s = {0};
	char err[256];
	uint64_t id;
	if (forq_open(&q, name, err, sizeof err) || forq_admin_own(q, err, sizeof err))
		_exit(1);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	for (int i = 0, served = 0; i < 10000 && served < want; i++) {
		served += forq_admin_purge_serve(q, on_final, &s) >= 0;
		served += forq_admin_cancel_serve(q, on_final, &s, &id, NULL, NULL) != -ENOMSG;
		usleep(1000);
	}
	_exit(s.purged == 3 && s.cancelled == 1 && !s.other ? 0 : 2);
}

/* Check forq_purge and forq_cancel: refused while no forqd owns the queue;
 * with one, a cancel takes its task out (once: a second is -ENOENT) and a
 * purge drops the rest, each written by the owner as cancelled or purged. */
static void test_purge_cancel(void **state)
{
	struct qfx *f = *state;
	uint64_t n = 99, c = push(f->q, "to cancel");
	int fds[2];
	char b;
	for (int i = 0; i < 3; i++)
		push(f->q, "to purge");
	assert_int_equal(forq_purge(f->q, 100, &n), -ESRCH);
	assert_int_equal(forq_cancel(f->q, c, 100), -ESRCH);
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0)
		serve(f->name, fds[1], 3);
	assert_int_equal(read(fds[0], &b, 1), 1);
	assert_int_equal(forq_cancel(f->q, c, 10000), 0);
	assert_int_equal(forq_cancel(f->q, c, 10000), -ENOENT);
	assert_int_equal(forq_purge(f->q, 10000, &n), 0);
	assert_int_equal(n, 3);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(fds[0]);
	close(fds[1]);
	struct forq_stats s;
	assert_int_equal(forq_stats_read(f->q, &s), 0);
	assert_int_equal(s.pending[FORQ_NORMAL], 0);
}

struct dead_seen {
	int n;
	uint64_t ids[8];
	char payloads[8][16];
	int bad;
};
static void on_dead(void *ctx, const struct forq_dead_info *d)
{
	struct dead_seen *s = ctx;
	if (s->n >= 8 || d->len >= sizeof s->payloads[0] || d->attempts != 1 ||
	    strcmp(d->error, "boom") || d->died_unix_ns <= 0) {
		s->bad++;
		return;
	}
	s->ids[s->n] = d->id;
	memcpy(s->payloads[s->n], d->payload, d->len);
	s->payloads[s->n++][d->len] = '\0';
}

static struct dead_seen dead_list(struct forq *q)
{
	struct dead_seen s = {0};
	int n = forq_dead_list(q, on_dead, &s);
	assert_int_equal(n, s.n);
	assert_int_equal(s.bad, 0);
	return s;
}

/* Check the dead letters: listed oldest first with payload, attempts and
 * error; re-queued all or none (an id that is no dead letter moves
 * nothing), by a list, one id, or all; each runs again from attempt 0. */
static void test_dead_letters(void **state)
{
	struct qfx *f = *state;
	struct forq_task t[4];
	uint64_t ids[4], missing = 0;
	char p[8];
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "d%d", i);
		ids[i] = push(f->q, p);
	}
	assert_int_equal(forq_pop_batch(f->q, t, 4, 1000), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(forq_task_finish(f->q, &t[i], FORQ_RESULT_RETRY, "boom", 4, 0),
				 FORQ_RESULT_DEAD);
	struct dead_seen s = dead_list(f->q);
	assert_int_equal(s.n, 4);
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "d%d", i);
		assert_true(s.ids[i] == ids[i]);
		assert_string_equal(s.payloads[i], p);
	}
	uint64_t some[] = {ids[1], ids[2]}, bad[] = {ids[0], 4242};
	assert_int_equal(forq_dead_retry_ids(f->q, bad, 2, &missing), -ENOENT);
	assert_int_equal(missing, 4242);
	assert_int_equal(dead_list(f->q).n, 4);
	assert_int_equal(forq_dead_retry(f->q, 4242), -ENOENT);
	assert_int_equal(forq_dead_retry_ids(f->q, some, 2, NULL), 2);
	s = dead_list(f->q);
	assert_int_equal(s.n, 2);
	assert_true(s.ids[0] == ids[0] && s.ids[1] == ids[3]);
	assert_int_equal(forq_dead_retry(f->q, ids[3]), 1);
	assert_int_equal(forq_dead_retry(f->q, 0), 1); /* all: the one left */
	assert_int_equal(dead_list(f->q).n, 0);
	assert_int_equal(forq_dead_retry_ids(f->q, NULL, 0, NULL), 0);
	/* All four run again, from attempt 0, in the order they came back. */
	assert_int_equal(forq_pop_batch(f->q, t, 4, 1000), 4);
	uint64_t order[] = {ids[1], ids[2], ids[3], ids[0]};
	for (int i = 0; i < 4; i++) {
		assert_true(t[i].id == order[i]);
		assert_int_equal(t[i].attempts, 0);
		assert_int_equal(forq_task_finish(f->q, &t[i], FORQ_RESULT_DONE, "ok", 2, 0),
				 FORQ_RESULT_DONE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_letters, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
