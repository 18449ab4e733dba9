/* proc.h — the proc: handler (proc.c): one persistent child, started as
 * spawn.h says, fed TASK frames and read for replies in the framing of
 * frame.h (handlers/PROC.md is the contract with the child). Private to
 * handlers/: callers use handler.h.
 *
 * Its life:
 *   - started by proc_prepare (never by open), with stdin, stdout and
 *     stderr as pipes and an environment without forq's tokens;
 *   - while it lives its group is published (group_hook), so that whoever
 *     cleans up after a dead caller kills it;
 *   - when it dies, breaks the framing or times out, its whole group gets
 *     SIGKILL while it is unreaped, the hook hears 0, and it is restarted by
 *     the next proc_prepare: at once after a lone death or a timeout, after
 *     a doubling delay while it keeps dying within 10 s of its start;
 *   - proc_close closes its stdin, waits up to 2 s, then kills the group.
 */
#ifndef FORQ_PROC_H
#define FORQ_PROC_H

#include <stddef.h>

#include "buf.h"
#include "handler.h"

struct proc;

struct proc_params {
	const char *cmd;      /* the shell command (copied) */
	int timeout_ms;       /* a reply at least this often while tasks are out; 0 = none */
	size_t max_output;    /* reply body bytes kept */
	int backoff_ms, backoff_max_ms;
	const char *queue;    /* FORQ_QUEUE (copied); NULL: no FORQ_QUEUE, FORQ_WORKER */
	int worker;           /* FORQ_WORKER */
	void (*group_hook)(void *ctx, int pgid);
	void *group_ctx;
	void (*log_hook)(void *ctx, int level, const char *event, const char *kv);
	void *log_ctx;
};

/* 0 or -ENOMEM. No child yet. */
int proc_open(struct proc **pp, const struct proc_params *params);

/* handler_prepare for proc:. */
int proc_prepare(struct proc *p);

/* handler_run_batch for proc:. */
int proc_run(struct proc *p, const struct handler_task *tasks, size_t n,
	     const struct handler_batch_ops *ops);

/* Stops the child (if any) and frees p; NULL is fine. */
void proc_close(struct proc *p);

#endif
