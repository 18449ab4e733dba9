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
 *
 * handler_run puts the result text (HANDLER_OK) or a one-line reason
 * (otherwise) at the end of out. Reasons users see:
 *   FAIL   the arith errors of arith.h; invalid JSON at byte N; unknown op "x"
 *          (use sum, min, max, avg or sleep_ms); args must be a non-empty
 *          array; args[N] is not a number; result out of range
 *   RETRY  exit status N[: first line of stderr]; killed by signal N;
 *          timed out after N ms; out of memory; pipe: / fork: / i/o with the
 *          command: strerror
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
 * A struct handler is used by one thread at a time. Nothing here prints,
 * exits or keeps a global.
 */
#ifndef FORQ_HANDLER_H
#define FORQ_HANDLER_H

#include <stddef.h>

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
	int task_timeout_ms; /* exec: SIGKILL the group after this; 0 = none */
	size_t max_output;   /* exec: stdout bytes kept; 0 = HANDLER_MAX_OUTPUT_DEFAULT */
	/* exec: called with the process group of each command once it is
	 * forked and before it runs anything (with every signal blocked), and
	 * with 0 once the group is gone; on the thread of handler_run. For a
	 * caller that may die mid-task (a consumer) to publish the group to
	 * whoever cleans up after it. NULL: none. */
	void (*group_hook)(void *ctx, int pgid);
	void *group_ctx;
};

/* Opens the handler named by spec ("noop", "arith", "json", "exec:CMD"); o may
 * be NULL for the defaults. Returns 0, or -EINVAL with the reason in err
 * (`unknown handler "x" (use noop, arith, json or exec:CMD)`), or -ENOMEM. */
int handler_open(struct handler **hp, const char *spec, const struct handler_options *o,
		 char *err, size_t errlen);

/* Runs one task. Appends the result or the reason to out (on a RETRY for out
 * of memory out may be left as it was). Never fails otherwise. */
enum handler_status handler_run(struct handler *h, const void *payload, size_t len,
				struct buf *out);

/* 1 for the noop handler, whose run does nothing: callers may skip it. */
int handler_is_noop(const struct handler *h);

/* Frees h; NULL is fine. */
void handler_close(struct handler *h);

#endif
