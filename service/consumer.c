/* consumer.c — the loop of a consumer process. Hot path: per batch one pop,
 * per task the handler, two clock reads and a buffered result line; per batch
 * one write(2) of the results (under the results file's lock). */
#include "consumer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "forq_admin.h"
#include "buf.h"
#include "clock.h"
#include "failpoint.h"
#include "forq.h"
#include "handler.h"
#include "log.h"
#include "idpipe.h"
#include "results.h"

#define POP_WAIT_MS 200
/* A batch holds about this much work, by the handler's mean run time: tiny
 * tasks come 64 a pop, a task that runs for seconds comes alone, so no task
 * waits long behind others in a batch while another consumer is free. */
#define BATCH_BUDGET_NS (10ull * 1000000u)
#define RESULTS_RETRY_MIN_MS 100
#define RESULTS_RETRY_MAX_MS 5000

/* The process group of the exec: command running now, 0 if none: what a
 * consumer kills when forqd dies (on_forqd_death). */
static volatile sig_atomic_t handler_group;

/* The parent-death signal. Not SIGKILL: the consumer must take its
 * handler's group with it. kill and _exit are async-signal-safe, and
 * nothing else runs here. */
static void on_forqd_death(int sig)
{
	(void)sig;
	int g = handler_group;
	if (g > 0)
		kill(-g, SIGKILL);
	_exit(CONSUMER_EXIT_ORPHAN);
}

/* handler_options.group_hook: the group, for on_forqd_death and for
 * forqd's repair of this consumer's record should it die. */
static void publish_group(void *ctx, int pgid)
{
	handler_group = pgid;
	forq_admin_handler_group(ctx, pgid);
}

/* Called with every signal blocked (forqd forks us so); returns with every
 * signal unblocked, the death signal armed first. */
static int setup_signals(pid_t parent)
{
	/* forqd blocks signals it reads through a signalfd; a consumer takes
	 * orders from the queue's flags instead, and ignores the terminal's
	 * Ctrl+C (sent to the whole process group) so forqd can drain. A
	 * file size limit makes a results write fail with EFBIG, not kill. */
	sigset_t all;
	sigfillset(&all);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_forqd_death};
	sigfillset(&sa.sa_mask);
	sigaction(SIGRTMIN, &sa, NULL);
	/* Die with forqd: a restarted forqd must own the queue alone. The
	 * getppid check closes the race where forqd died before prctl. */
	if (prctl(PR_SET_PDEATHSIG, SIGRTMIN) < 0 || getppid() != parent)
		return -1;
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	return 0;
}

/* Tasks per pop for a handler whose tasks take mean_ns each. */
static uint32_t batch_for(uint64_t mean_ns, uint32_t max)
{
	if (mean_ns == 0 || mean_ns * max <= BATCH_BUDGET_NS)
		return max;
	uint64_t n = BATCH_BUDGET_NS / mean_ns;
	return n < 1 ? 1 : (uint32_t)n;
}

/* ---- the batch watch ----
 * A batch that runs past twice its budget (a slow or hung task among quick
 * ones) gives back the tasks it has not started, even while that task still
 * runs: a second thread of the consumer does it, so they go to whichever
 * consumer is free instead of waiting behind it.
 *
 * Per task the loop pays one store and one load: it publishes the index of
 * the task it is about to begin (`next`), then reads `cut`; the watch sets
 * `cut`, then reads `next`. Both sequentially consistent, so at least one of
 * them sees the other: either the watch's boundary (next + 1) is past the
 * task, or the loop sees `cut` and asks for the boundary under `lock`. The
 * watch gives back under `lock`, which the loop also takes to open and close
 * a batch, so no giveback outlives its batch. The watch sleeps on `cond`
 * while no batch runs: an idle consumer costs nothing; a busy one, a wake-up
 * per budget. */
struct watch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct forq *q;
	_Atomic int next;        /* index of the task the loop begins or runs */
	_Atomic int cut;         /* 1: what is past `boundary` went back */
	int boundary;            /* under lock: the first task given back */
	int given;               /* under lock: how many went back */
	uint64_t batch_start_ns; /* under lock: CLOCK_MONOTONIC; 0: no batch */
	int n;                   /* under lock: tasks in the batch */
	int idle;                /* under lock: the watch waits on cond untimed */
	int stop;
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		if (!w->batch_start_ns || atomic_load(&w->cut)) {
			w->idle = 1;
			pthread_cond_wait(&w->cond, &w->lock);
			w->idle = 0;
			continue;
		}
		uint64_t due = w->batch_start_ns + 2 * BATCH_BUDGET_NS;
		if (clock_mono_ns() < due) {
			struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
			pthread_cond_timedwait(&w->cond, &w->lock, &ts);
			continue;
		}
		atomic_store(&w->cut, 1);
		w->boundary = atomic_load(&w->next) + 1;
		w->given = w->boundary < w->n
				   ? forq_admin_giveback_from(w->q, (uint32_t)w->boundary)
				   : 0;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Starts the watch thread (all signals blocked in it: they are the main
 * thread's). Returns 0 or -1 (then batches go unwatched). */
static int watch_start(struct watch *w, pthread_t *th, struct forq *q)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	memset(w, 0, sizeof *w);
	w->q = q;
	if (pthread_mutex_init(&w->lock, NULL))
		return -1;
	if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&w->cond, &ca)) {
		pthread_mutex_destroy(&w->lock);
		return -1;
	}
	pthread_condattr_destroy(&ca);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(th, NULL, watch_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		return -1;
	}
	return 0;
}

static void watch_stop(struct watch *w, pthread_t th)
{
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(th, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

/* A batch of n tasks begins. */
static void watch_open(struct watch *w, int n)
{
	pthread_mutex_lock(&w->lock);
	w->n = n;
	w->batch_start_ns = clock_mono_ns();
	atomic_store(&w->next, -1);
	atomic_store(&w->cut, 0);
	if (w->idle)
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* May the loop begin task i? 0 once the watch gave it back. */
static int watch_may_begin(struct watch *w, int i)
{
	atomic_store(&w->next, i);
	if (!atomic_load(&w->cut))
		return 1;
	pthread_mutex_lock(&w->lock);
	int ok = i < w->boundary;
	pthread_mutex_unlock(&w->lock);
	return ok;
}

/* The batch is over: what the watch gave back is no longer ours. */
static void watch_close(struct watch *w, struct forq *q)
{
	pthread_mutex_lock(&w->lock);
	w->batch_start_ns = 0;
	if (atomic_load(&w->cut) && w->given)
		forq_admin_batch_given(q, (uint32_t)w->given);
	w->given = 0;
	pthread_mutex_unlock(&w->lock);
}

/* The queue was paused after task i - 1: tasks i.. of the batch, not begun,
 * go back to the queue, as the watch gives back a long batch's (under its
 * lock, so that the two never give back the same tasks). */
static void giveback_paused(struct forq *q, struct watch *w, int i, int n)
{
	if (!w) {
		forq_admin_batch_given(q, (uint32_t)forq_admin_giveback_from(q, (uint32_t)i));
		return;
	}
	pthread_mutex_lock(&w->lock);
	if (!atomic_load(&w->cut)) {
		atomic_store(&w->cut, 1);
		w->boundary = i;
		w->given = i < n ? forq_admin_giveback_from(q, (uint32_t)i) : 0;
	}
	pthread_mutex_unlock(&w->lock);
}

/* Sleeps ms, in steps, unless forqd asks us to stop: then returns 1. */
static int sleep_unless_stopped(struct forq *q, int ms)
{
	for (int left = ms; left > 0; left -= 50) {
		if (forq_admin_flags(q) & FORQ_F_STOP)
			return 1;
		struct timespec ts = {0, (left < 50 ? left : 50) * 1000000L};
		nanosleep(&ts, NULL);
	}
	return !!(forq_admin_flags(q) & FORQ_F_STOP);
}

/* A results output that will never take a write again: its reader is gone. */
static int results_gone(int err)
{
	return err == -EPIPE || err == -ECONNRESET || err == -EBADF || err == -EINVAL;
}

/* Writes the batch's results before the next pop. A failure that may pass
 * (a full disk, a file size limit, EIO) keeps them and retries, with a
 * growing pause, taking no task meanwhile: the queue keeps the rest, and
 * /readyz shows the errno (forq_admin_results_errno). Exits when the output
 * is gone for good, or when forqd stops us first; then forqd's repair gives
 * back this batch, whose results are owed (forq_giveback would drop them). */
static void write_results(struct forq *q, struct results_sink *sink, int worker)
{
	int e = results_sink_flush(sink), shown = 0, ms = RESULTS_RETRY_MIN_MS;
	if (!e)
		return;
	for (;;) {
		if (results_gone(e)) {
			log_event(LOG_ERROR, "results_gone",
				  "worker=%d errno=%d error=\"%s\" action=\"stopping: nothing can be "
				  "written there any more\"",
				  worker, -e, strerror(-e));
			_exit(CONSUMER_EXIT_RESULTS);
		}
		if (e != shown) {
			log_event(LOG_ERROR, "results_write_failed",
				  "worker=%d errno=%d error=\"%s\" unwritten_bytes=%zu action=\"taking "
				  "no tasks until they are written; retrying\"",
				  worker, -e, strerror(-e), results_sink_buf(sink)->len);
			forq_admin_results_errno(q, -e);
			shown = e;
		}
		if (sleep_unless_stopped(q, ms))
			_exit(CONSUMER_EXIT_UNWRITTEN);
		ms = ms * 2 < RESULTS_RETRY_MAX_MS ? ms * 2 : RESULTS_RETRY_MAX_MS;
		if ((e = results_sink_flush(sink)) == 0)
			break;
	}
	forq_admin_results_errno(q, 0);
	log_event(LOG_INFO, "results_write_resumed", "worker=%d", worker);
}

static int write_result(struct results_sink *sink, const struct consumer_config *c,
			const struct forq_task *t, int status, const char *text, size_t text_len,
			uint64_t wait_ns, uint64_t run_ns)
{
	struct result_rec r = {
		.id = t->id, .task = t->payload, .task_len = t->len, .status = status,
		.text = text ? text : "", .text_len = text_len,
		.attempts = t->attempts + 1u, .wait_us = wait_ns / 1000, .run_us = run_ns / 1000,
		.prio = t->prio, .source_file = c->tasks_file, .line = t->line,
		.queue = c->queue_name};
	return result_format(results_sink_buf(sink), &r);
}

/* Finished ids, told to forqd (its journal, or its NATS bridge) once their
 * results are written (a consumer killed in between leaves them to run
 * again after a reboot or a redelivery, never lost). Several batches go in one message: each is a pipe write here and a
 * wakeup of forqd's reader, and a finish only lets a segment go sooner, so
 * they wait for a few batches, FINISHED_HOLD_NS, or an empty queue. */
#define FINISHED_HOLD 448 /* ids: 7 batches of 64, one message (IDPIPE_MAX) */
#define FINISHED_HOLD_NS (20ull * 1000000u)

/* A final status has a result line; a retry has none, here or (REDELIVER:
 * the bridge gives it back to the stream) on this host. */
static int has_result(int final)
{
	return final > 0 && final != FORQ_RESULT_RETRY && final != FORQ_RESULT_REDELIVER;
}

struct finished {
	uint64_t *ids;
	size_t n, cap;
	uint64_t first_ns; /* when the oldest held id came */
};

static void finished_add(struct finished *f, uint64_t id)
{
	if (f && f->ids)
		f->ids[f->n++] = id;
}

/* Tells the journal what is held, unless (without force) there is room
 * for another batch of `more` and the oldest is recent. */
static void finished_report(struct finished *f, int fd, size_t more, int force)
{
	if (fd <= 0 || !f->n)
		return;
	uint64_t now = clock_mono_ns();
	if (!f->first_ns)
		f->first_ns = now;
	if (!force && f->n + more <= f->cap && now - f->first_ns < FINISHED_HOLD_NS)
		return;
	idpipe_write(fd, f->ids, f->n);
	f->n = 0;
	f->first_ns = 0;
}

/* Runs a popped batch task after task (every kind but proc:), timing each
 * when time_each (into *mean_ns), watched by w (NULL: unwatched). */
static void run_each(struct forq *q, struct handler *h, const struct consumer_config *c,
		     struct forq_task *tasks, int n, struct buf *out, struct results_sink *sink,
		     struct watch *w, int time_each, uint64_t *mean_ns, struct finished *fin)
{
	uint64_t t_prev = clock_mono_ns();
	if (w)
		watch_open(w, n);
	for (int i = 0; i < n; i++) {
		struct forq_task *t = &tasks[i];
		uint64_t start = t_prev;
		if (w && !watch_may_begin(w, i))
			break; /* the rest went back */
		buf_reset(out);
		forq_task_begin(q, t);
		enum handler_status hs = handler_run(h, t->payload, t->len, out);
		uint64_t run = 0;
		if (time_each) {
			t_prev = clock_mono_ns();
			run = t_prev - start;
			*mean_ns = *mean_ns ? (3 * *mean_ns + run) / 4 : run;
		}
		int st = hs == HANDLER_OK ? FORQ_RESULT_DONE
			 : hs == HANDLER_FAIL ? FORQ_RESULT_FAILED : FORQ_RESULT_RETRY;
		int final = forq_task_finish(q, t, st, out->data, out->len, run);
		if (final != FORQ_RESULT_RETRY && final > 0)
			finished_add(fin, t->id);
		if (sink && has_result(final))
			write_result(sink, c, t, final, out->data, out->len,
				     start > t->enqueued_ns ? start - t->enqueued_ns : 0, run);
		uint32_t flags = forq_admin_flags(q); /* one load a task, as before */
		if (flags & FORQ_F_STOP)
			break;
		if ((flags & FORQ_F_PAUSED) && i + 1 < n) {
			giveback_paused(q, w, i + 1, n);
			break;
		}
	}
	if (w)
		watch_close(w, q);
}

/* ---- a persistent handler (proc:) ----
 * The whole batch goes to the child at once; each task is begun when it
 * becomes the child's task in hand and finished as its reply arrives. */
struct pbatch {
	struct forq *q;
	const struct consumer_config *c;
	struct forq_task *tasks;
	struct results_sink *sink; /* NULL: no results written */
	struct finished *fin;
	uint64_t start_ns;         /* when the batch went to the child */
	uint64_t run_ns;           /* the run times of the tasks that ended */
};

static void pbatch_begin(void *ctx, size_t i)
{
	struct pbatch *b = ctx;
	forq_task_begin(b->q, &b->tasks[i]);
}

static void pbatch_done(void *ctx, size_t i, const struct handler_reply *r)
{
	struct pbatch *b = ctx;
	const struct forq_task *t = &b->tasks[i];
	int final;
	if (r->crashed) {
		final = forq_admin_task_crashed(b->q, t, r->text, r->len, r->run_ns);
	} else {
		int st = r->status == HANDLER_OK     ? FORQ_RESULT_DONE
			 : r->status == HANDLER_FAIL ? FORQ_RESULT_FAILED
						     : FORQ_RESULT_RETRY;
		final = forq_task_finish(b->q, t, st, r->text, r->len, r->run_ns);
	}
	b->run_ns += r->run_ns;
	if (final != FORQ_RESULT_RETRY && final > 0)
		finished_add(b->fin, t->id);
	if (b->sink && has_result(final))
		write_result(b->sink, b->c, t, final, r->text, r->len,
			     b->start_ns > t->enqueued_ns ? b->start_ns - t->enqueued_ns : 0,
			     r->run_ns);
}

/* Runs a popped batch through the child. Tasks it did not end (the child
 * died or timed out, or was not running) go back unstarted. Returns the
 * mean run time of those that ended, 0 if none. */
static uint64_t run_persistent(struct forq *q, struct handler *h, const struct consumer_config *c,
			       struct forq_task *tasks, struct handler_task *ht, int n,
			       struct results_sink *sink, struct finished *fin)
{
	struct pbatch b = {.q = q, .c = c, .tasks = tasks, .sink = sink, .fin = fin,
			   .start_ns = clock_mono_ns()};
	struct handler_batch_ops ops = {pbatch_begin, pbatch_done, &b};
	for (int i = 0; i < n; i++)
		ht[i] = (struct handler_task){.id = tasks[i].id, .attempt = tasks[i].attempts + 1u,
					      .payload = tasks[i].payload, .len = tasks[i].len};
	int ended = handler_run_batch(h, ht, (size_t)n, &ops);
	if (ended < n) {
		int given = forq_admin_giveback_from(q, 0);
		if (given > 0)
			forq_admin_batch_given(q, (uint32_t)given);
	}
	return ended > 0 ? b.run_ns / (uint64_t)ended : 0;
}

/* handler_options.log_hook: the child's stderr and life in forqd's log. */
struct child_log {
	const char *queue;
	int worker;
};

static void log_child(void *ctx, int level, const char *event, const char *kv)
{
	const struct child_log *l = ctx;
	log_event((enum log_level)level, event, "queue=%s worker=%d %s", l->queue, l->worker, kv);
}

/* Closes every descriptor from 3 on but a and b. */
static void close_all_but(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;
	unsigned from = 3;
	int keep[2] = {lo, hi};
	for (int i = 0; i < 2; i++) {
		if (keep[i] < (int)from)
			continue;
		if (keep[i] > (int)from)
			close_range(from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	close_range(from, ~0u, 0);
}

_Noreturn void consumer_main(struct forq *q, int worker, const struct consumer_config *c,
			     pid_t parent)
{
	if (setup_signals(parent))
		_exit(CONSUMER_EXIT_ORPHAN);
	if (forq_admin_consumer_attach(q, worker)) {
		log_event(LOG_ERROR, "attach_failed", "worker=%d", worker);
		_exit(CONSUMER_EXIT_ATTACH);
	}
	/* Drop what forqd had open (listening and client sockets, epoll,
	 * signalfd): a consumer holding a worker's socket would keep it open
	 * after forqd closed it. */
	close_all_but(c->results_fd, c->journal_fd);
	/* A queue fed by a stream (FORQ_F_UPSTREAM) retries through it: the
	 * ids reported on journal_fd reach its bridge. */
	if (c->journal_fd > 0)
		forq_admin_retries_upstream(q);

	struct handler *h = NULL;
	struct child_log cl = {.queue = forq_admin_name(q), .worker = worker};
	struct handler_options ho = {.task_timeout_ms = c->task_timeout_ms, .max_output = 65536,
				     .group_hook = publish_group, .group_ctx = q,
				     .restart_backoff_ms = c->restart_backoff_ms,
				     .restart_backoff_max_ms = c->restart_backoff_max_ms,
				     .queue = cl.queue, .worker = worker,
				     .log_hook = log_child, .log_ctx = &cl};
	char err[256];
	if (handler_open(&h, c->handler, &ho, err, sizeof err)) {
		log_event(LOG_ERROR, "handler_failed", "worker=%d error=\"%s\"", worker, err);
		_exit(CONSUMER_EXIT_HANDLER);
	}
	/* A proc: child starts with its consumer, so that a command that
	 * cannot run shows in the log at once. */
	int persistent = handler_is_persistent(h);
	if (persistent)
		handler_prepare(h);
	struct results_sink sink;
	int have_sink = c->results_fd >= 0 && results_sink_init(&sink, c->results_fd) == 0;
	struct buf out = BUF_INIT;
	struct forq_task *tasks = calloc(c->batch, sizeof *tasks);
	struct handler_task *ht = persistent ? calloc(c->batch, sizeof *ht) : NULL;
	int code = CONSUMER_EXIT_OK;
	size_t fin_cap = c->batch > FINISHED_HOLD ? c->batch : FINISHED_HOLD;
	struct finished fin = {c->journal_fd > 0 ? calloc(fin_cap, sizeof *fin.ids) : NULL, 0,
			       fin_cap, 0};
	if (!tasks || (persistent && !ht) || (c->journal_fd > 0 && !fin.ids))
		_exit(CONSUMER_EXIT_HANDLER);
	/* noop: no clock reads, full batches. Others are timed per task, and
	 * the first pop takes one task: a handler's speed is unknown until
	 * measured, and a slow one must not take a whole batch. */
	int time_each = !handler_is_noop(h);
	uint32_t want = time_each ? 1 : c->batch;
	uint64_t mean_ns = 0; /* moving mean of the handler's run time */
	struct watch w;
	pthread_t watch_th;
	int watching = time_each && !persistent && c->batch > 1 &&
		       watch_start(&w, &watch_th, q) == 0;

	for (;;) {
		if (persistent) {
			/* No child (it is in its restart delay): take no tasks. */
			int ms = handler_prepare(h);
			if (ms > 0) {
				finished_report(&fin, c->journal_fd, 0, 1);
				if (sleep_unless_stopped(q, ms < POP_WAIT_MS ? ms : POP_WAIT_MS))
					break;
				continue;
			}
		}
		/* Finishes held: a look without waiting first, and if the
		 * queue is empty they go before the wait. */
		int n = forq_pop_batch(q, tasks, want, fin.n ? 0 : POP_WAIT_MS);
		if (n == -ETIMEDOUT) {
			finished_report(&fin, c->journal_fd, 0, 1);
			continue;
		}
		if (n < 0)
			break; /* -ESHUTDOWN: forqd asked us to stop */
		if (persistent) {
			uint64_t mean = run_persistent(q, h, c, tasks, ht, n, have_sink ? &sink : NULL,
						       &fin);
			if (mean)
				mean_ns = mean_ns ? (3 * mean_ns + mean) / 4 : mean;
			want = batch_for(mean_ns, c->batch);
		} else {
			run_each(q, h, c, tasks, n, &out, have_sink ? &sink : NULL,
				 watching && n > 1 ? &w : NULL, time_each, &mean_ns, &fin);
			if (time_each)
				want = batch_for(mean_ns, c->batch);
		}
		FORQ_FAILPOINT("consumer.flush");
		if (have_sink)
			write_results(q, &sink, worker);
		FORQ_FAILPOINT("consumer.flushed");
		finished_report(&fin, c->journal_fd, c->batch, 0);
		if (forq_admin_flags(q) & FORQ_F_STOP)
			break;
	}
	finished_report(&fin, c->journal_fd, 0, 1);
	if (watching)
		watch_stop(&w, watch_th);
	/* Results are written; anything not started goes back to the queue.
	 * A proc: child ends before the record that publishes its group. */
	forq_giveback(q);
	handler_close(h);
	forq_close(q);
	buf_free(&out);
	free(tasks);
	free(ht);
	free(fin.ids);
	if (have_sink)
		results_sink_free(&sink);
	_exit(code);
}
