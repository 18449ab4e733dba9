/* exec.h — the exec: handler's run (exec.c). Private to handlers/: callers
 * use handler.h.
 *
 * One task, one command: /bin/sh -c CMD with the payload on stdin, in a
 * process group of its own that never outlives the task or its caller:
 *   - started as spawn.h says: its own group, death with the calling thread,
 *     nothing run before handler_options.group_hook has heard the group;
 *   - when the command has exited (or timed out), whatever is left in its
 *     group gets SIGKILL while the shell's exit status is still unreaped, so
 *     the group id cannot have been reused; then the hook hears 0.
 */
#ifndef FORQ_EXEC_H
#define FORQ_EXEC_H

#include <stddef.h>

#include "buf.h"
#include "handler.h"

struct exec_params {
	const char *cmd;      /* the shell command */
	int timeout_ms;       /* 0 = none */
	size_t max_output;    /* stdout bytes kept */
	void (*group_hook)(void *ctx, int pgid);
	void *group_ctx;
};

/* Runs one task (handler_run's contract for exec:). */
enum handler_status exec_run(const struct exec_params *p, const char *payload, size_t len,
			     struct buf *out);

#endif
