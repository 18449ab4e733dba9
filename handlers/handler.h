/* handler.h — what a consumer does with one task: the task kinds, behind one
 * signature. A handler is chosen by a spec string:
 *
 *   noop      result "" (for benchmarks: consumers may skip the call)
 *   arith     the payload is an arithmetic expression (see arith.h);
 *             result is its value ("7", "3.5")
 *   json      the payload is {"op": OP, "args": [numbers]} with OP one of
 *             sum, min, max, avg (result formatted like arith) or sleep_ms
 *             (args [N]: sleeps N ms, at most 60000; result "slept N ms")
 *   exec:CMD  runs /bin/sh -c CMD with the payload on stdin; the result is its
 *             stdout, one trailing "\n" removed, cut at max_output bytes
 *   proc:CMD  runs /bin/sh -c CMD once and streams tasks to it in the framing
 *             of handlers/PROC.md; the result is the child's reply, cut at
 *             max_output bytes. Started by handler_prepare (not by open),
 *             restarted after it dies, stopped by handler_close.
 *
 * handler_run puts the result text (HANDLER_OK) or a one-line reason
 * (otherwise) at the end of out. Reasons users see:
 *   FAIL   the arith errors of arith.h; invalid JSON at byte N; unknown op "x"
 *          (use sum, min, max, avg or sleep_ms); args must be a non-empty
 *          array; args[N] is not a number; result out of range
 *   RETRY  exit status N[: first line of stderr]; killed by signal N;
 *          timed out after N ms; out of memory; pipe: / fork: / i/o with the
 *          command: strerror
 *   proc:  the child's own FAIL and RETRY reasons; "handler process died:
 *          exit status N[: last line of stderr]" (or "killed by signal N"),
 *          "handler process broke the framing: ...", "handler process
 *          closed its stdout" and "handler process stopped reading its
 *          stdin", each a crash (handler_reply.crashed); timed out after N ms
 *
 * exec and the calling process:
 *   - SIGPIPE needs no setup: it is blocked around the writes to the child's
 *     stdin and a SIGPIPE raised by them is consumed.
 *   - The caller must not reap children it did not fork (no waitpid(-1) in a
 *     SIGCHLD handler) and must not set SIGCHLD to SIG_IGN: the handler waits
 *     for its own pid. A lost status is reported as RETRY.
 *   - The child runs in its own process group (the shell's pid is its id)
 *     with default signal dispositions and an empty mask; on timeout the
 *     whole group gets SIGKILL. Output is read until the command's stdout
 *     and stderr are closed, so a background job that keeps them open holds
 *     the task until the timeout. When the command has exited, what it left
 *     running in its group gets SIGKILL: nothing of a task outlives it (a
 *     process that leaves the group, with setsid, is out of reach here).
 *   - The shell gets SIGKILL if the thread that called handler_run dies
 *     (PR_SET_PDEATHSIG); the rest of its group is the caller's to kill
 *     then: group_hook tells it the group before the command runs anything.
 *   - Only pipes made here are inherited; other fds of the caller must be
 *     O_CLOEXEC to stay out of the child.
 *
 * proc: and the calling process: as exec:, and the child's group stays
 * published through group_hook for as long as the child lives (0 once it is
 * gone); the caller must not reap it (no waitpid(-1)); SIGPIPE needs no
 * setup. The child's stderr and its starts and deaths go to log_hook.
 *
 * A struct handler is used by one thread at a time. Nothing here prints,
 * exits or keeps a global.
 */
#ifndef FORQ_HANDLER_H
#define FORQ_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum handler_status {
	HANDLER_OK = 0,
	HANDLER_FAIL = 1,  /* permanent: bad input, will not succeed on retry */
	HANDLER_RETRY = 2, /* transient: may succeed later (exec failure, timeout, out of memory) */
};

#define HANDLER_MAX_OUTPUT_DEFAULT 65536
#define HANDLER_SLEEP_MAX_MS 60000 /* json sleep_ms is capped here */
#define HANDLER_STDERR_MAX 200     /* stderr bytes kept for the exit status reason */

struct handler;

struct handler_options {
	int task_timeout_ms; /* exec: SIGKILL the group after this; proc: after this
			      * without a reply while tasks are out; 0 = none */
	size_t max_output;   /* exec: stdout bytes kept; proc: bytes of a reply's
			      * body kept; 0 = HANDLER_MAX_OUTPUT_DEFAULT */
	/* exec: called with the process group of each command once it is
	 * forked and before it runs anything (with every signal blocked), and
	 * with 0 once the group is gone; on the thread of handler_run. For a
	 * caller that may die mid-task (a consumer) to publish the group to
	 * whoever cleans up after it. proc: the same for the child, which
	 * lives across tasks. NULL: none. */
	void (*group_hook)(void *ctx, int pgid);
	void *group_ctx;
	/* proc: the delay before restarting a child that died, as forqd
	 * restarts its consumers: none after a lone death; while each dies
	 * within 10 s of its start, restart_backoff_ms doubled per death in a
	 * row (2x after the second), at most restart_backoff_max_ms. Both 0:
	 * 100 and 30000 (forqd's --restart-backoff and -max defaults). */
	int restart_backoff_ms;
	int restart_backoff_max_ms;
	/* proc: FORQ_QUEUE and FORQ_WORKER in the child's environment (queue
	 * NULL: neither is set). */
	const char *queue;
	int worker;
	/* proc: what the caller's log shows of the child: each stderr line
	 * (event proc_stderr), what was dropped past 100 lines a second
	 * (proc_stderr_dropped), its deaths (proc_died, proc_crash_loop),
	 * timeouts (proc_timeout), failed starts (proc_start_failed) and, at
	 * debug level, starts and stops. level is base/log.h's enum log_level;
	 * kv the key=value text after the event ("child=PID line=\"...\"").
	 * On the thread of the handler's calls. NULL: the child writes to the
	 * caller's stderr itself, and its deaths are not told. */
	void (*log_hook)(void *ctx, int level, const char *event, const char *kv);
	void *log_ctx;
};

/* A task for handler_run_batch. */
struct handler_task {
	uint64_t id;          /* sent to a proc: child, which answers with it */
	unsigned attempt;     /* 1 on the task's first delivery */
	const void *payload;
	size_t len;
};

/* How one task of a batch ended. */
struct handler_reply {
	enum handler_status status;
	int crashed;          /* 1: the handler's process died, or broke its framing,
			       * with this task in hand (status RETRY): a crash */
	const char *text;     /* the result or the reason, len bytes, NUL after */
	size_t len;
	uint64_t run_ns;      /* its run time (proc: see PROC.md) */
};

/* What handler_run_batch tells its caller, on the caller's thread. */
struct handler_batch_ops {
	/* Task i is the handler's task in hand now (proc: its oldest
	 * unanswered one): a crash or a timeout from now on is its. Called
	 * again for the same task after another one ended out of order. */
	void (*begin)(void *ctx, size_t i);
	/* Task i ended; r and its text are valid during the call only. */
	void (*done)(void *ctx, size_t i, const struct handler_reply *r);
	void *ctx;
};

/* Opens the handler named by spec ("noop", "arith", "json", "exec:CMD",
 * "proc:CMD"); o may be NULL for the defaults. Starts no process. Returns 0,
 * or -EINVAL with the reason in err (`unknown handler "x" (use noop, arith,
 * json, exec:CMD or proc:CMD)`: tests and scripts match that text), or -ENOMEM. */
int handler_open(struct handler **hp, const char *spec, const struct handler_options *o,
		 char *err, size_t errlen);

/* Runs one task. Appends the result or the reason to out (on a RETRY for out
 * of memory out may be left as it was). Never fails otherwise. proc: a
 * batch of one (the child sees ids 1, 2, ... and attempt 1), waiting out a
 * restart delay first; a crash is a RETRY. */
enum handler_status handler_run(struct handler *h, const void *payload, size_t len,
				struct buf *out);

/* Runs tasks[0..n-1], calling ops->begin and ops->done as they go; for
 * proc: all are written to the child at once and end as its replies come.
 * Returns how many ended (done was called for them); the others were never
 * started or were lost with a child that died or timed out (done was called
 * for its task in hand, with crashed set unless it timed out): the caller
 * gives them back. -EAGAIN: none started, the proc: child is not running
 * (see handler_prepare); -ENOMEM. For the other kinds: handler_run on each
 * in turn. */
int handler_run_batch(struct handler *h, const struct handler_task *tasks, size_t n,
		      const struct handler_batch_ops *ops);

/* proc: starts the child if it is not running and its restart delay is
 * over, and logs what it wrote to stderr while idle (call it between
 * batches: a child that died idle is noticed here). Returns 0 when tasks
 * can run, or the ms to wait before calling again. 0 for the other kinds. */
int handler_prepare(struct handler *h);

/* 1 for proc: (a child that lives across tasks: callers use
 * handler_run_batch and handler_prepare), else 0. */
int handler_is_persistent(const struct handler *h);

/* 1 for the noop handler, whose run does nothing: callers may skip it. */
int handler_is_noop(const struct handler *h);

/* Frees h; NULL is fine. proc: closes the child's stdin, waits up to 2 s for
 * it to exit, then kills its group. */
void handler_close(struct handler *h);

#endif
