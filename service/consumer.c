/* consumer.c — the loop of a consumer process. Hot path: per batch one pop,
 * per task the handler, two clock reads and a buffered result line; per batch
 * one write(2) of the results. */
#include "consumer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "forq_admin.h"
#include "buf.h"
#include "clock.h"
#include "failpoint.h"
#include "forq.h"
#include "handler.h"
#include "log.h"
#include "results.h"

#define POP_WAIT_MS 200

static void reset_signals(void)
{
	/* forqd blocks signals it reads through a signalfd; a consumer takes
	 * orders from the queue's flags instead, and ignores the terminal's
	 * Ctrl+C (sent to the whole process group) so forqd can drain. */
	sigset_t all;
	sigfillset(&all);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
}

static int write_result(struct results_sink *sink, const struct consumer_config *c,
			const struct forq_task *t, int status, const struct buf *text,
			uint64_t wait_ns, uint64_t run_ns)
{
	struct result_rec r = {
		.id = t->id, .task = t->payload, .task_len = t->len, .status = status,
		.text = text->data ? text->data : "", .text_len = text->len,
		.attempts = t->attempts + 1u, .wait_us = wait_ns / 1000, .run_us = run_ns / 1000,
		.prio = t->prio, .source_file = c->tasks_file, .line = t->line};
	return result_format(results_sink_buf(sink), &r);
}

_Noreturn void consumer_main(struct forq *q, int worker, const struct consumer_config *c,
			     pid_t parent)
{
	/* Die with forqd: a restarted forqd must own the queue alone. The
	 * getppid check closes the race where forqd died before prctl. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(CONSUMER_EXIT_ORPHAN);
	reset_signals();
	if (forq_admin_consumer_attach(q, worker)) {
		log_event(LOG_ERROR, "attach_failed", "worker=%d", worker);
		_exit(CONSUMER_EXIT_ATTACH);
	}
	/* Drop what forqd had open (listening and client sockets, epoll,
	 * signalfd): a consumer holding a worker's socket would keep it open
	 * after forqd closed it. */
	{
		int keep = c->results_fd;
		if (keep > 2) {
			if (keep > 3)
				close_range(3, (unsigned)keep - 1, 0);
			close_range((unsigned)keep + 1, ~0u, 0);
		} else {
			close_range(3, ~0u, 0);
		}
	}

	struct handler *h = NULL;
	struct handler_options ho = {.task_timeout_ms = c->task_timeout_ms, .max_output = 65536};
	char err[256];
	if (handler_open(&h, c->handler, &ho, err, sizeof err)) {
		log_event(LOG_ERROR, "handler_failed", "worker=%d error=\"%s\"", worker, err);
		_exit(CONSUMER_EXIT_HANDLER);
	}
	struct results_sink sink;
	int have_sink = c->results_fd >= 0 && results_sink_init(&sink, c->results_fd) == 0;
	struct buf out = BUF_INIT;
	struct forq_task *tasks = calloc(c->batch, sizeof *tasks);
	int code = CONSUMER_EXIT_OK;
	int time_each = !handler_is_noop(h);
	if (!tasks)
		_exit(CONSUMER_EXIT_HANDLER);

	for (;;) {
		int n = forq_pop_batch(q, tasks, c->batch, POP_WAIT_MS);
		if (n == -ETIMEDOUT)
			continue;
		if (n < 0)
			break; /* -ESHUTDOWN: forqd asked us to stop */
		uint64_t t_prev = clock_mono_ns();
		for (int i = 0; i < n; i++) {
			struct forq_task *t = &tasks[i];
			uint64_t start = t_prev;
			buf_reset(&out);
			forq_task_begin(q, t);
			enum handler_status hs = handler_run(h, t->payload, t->len, &out);
			uint64_t run = 0;
			if (time_each) {
				t_prev = clock_mono_ns();
				run = t_prev - start;
			}
			int st = hs == HANDLER_OK ? FORQ_RESULT_DONE
				 : hs == HANDLER_FAIL ? FORQ_RESULT_FAILED : FORQ_RESULT_RETRY;
			int final = forq_task_finish(q, t, st, out.data, out.len, run);
			if (have_sink && final != FORQ_RESULT_RETRY && final > 0)
				write_result(&sink, c, t, final, &out,
					     start > t->enqueued_ns ? start - t->enqueued_ns : 0, run);
			if (forq_admin_flags(q) & FORQ_F_STOP)
				break;
		}
		FORQ_FAILPOINT("consumer.flush");
		if (have_sink && results_sink_flush(&sink)) {
			log_event(LOG_ERROR, "results_write_failed", "worker=%d error=\"%s\"", worker,
				  "cannot write results");
			/* Leave as if killed: forqd's repair gives back this batch,
			 * finished tasks included, whose results are not written;
			 * forq_giveback would drop those. */
			_exit(CONSUMER_EXIT_RESULTS);
		}
		FORQ_FAILPOINT("consumer.flushed");
		if (forq_admin_flags(q) & FORQ_F_STOP)
			break;
	}
	/* Results are written; anything not started goes back to the queue. */
	forq_giveback(q);
	forq_close(q);
	buf_free(&out);
	free(tasks);
	handler_close(h);
	if (have_sink)
		results_sink_free(&sink);
	_exit(code);
}
