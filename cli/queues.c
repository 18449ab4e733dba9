/* queues.c — the queue controls: `forq pause NAME`, `forq resume NAME`,
 * `forq purge NAME` and `forq cancel [--queue NAME] ID`, through the
 * queue's shared memory as the other queue commands work (its file mode is
 * the access check). Pause and resume flip the queue's flag; a purge or a
 * cancel is asked of forqd, which alone writes the results file (one
 * "purged" or "cancelled" record per task dropped). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "forq.h"
#include "forq_admin.h"
#include "parse.h"

#define PURGE_WAIT_MS 10000

/* The one argument, a queue's name: the queue o names from now on.
 * Returns 0 or EXIT_USAGE. */
static int queue_arg(const struct command *cmd, struct opts *o, int argc, char **argv,
		     const char **name)
{
	if (argc == 0)
		return usage_error(cmd, "no queue name");
	if (argc > 1)
		return usage_error(cmd, "one queue name, not %d arguments", argc);
	if (!forq_queue_name_ok(argv[0]))
		return usage_error(cmd, "bad queue name \"%s\" (1 to %d letters, digits, '_' or '-')",
				   argv[0], FORQ_QUEUE_NAME_MAX);
	*name = o->queue = argv[0];
	return 0;
}

static int pause_or_resume(const struct command *cmd, struct opts *o, int argc, char **argv,
			   int paused)
{
	const char *name = NULL;
	struct forq *q;
	int code = queue_arg(cmd, o, argc, argv, &name);
	if (code || (code = open_queue(cmd, o, &q)))
		return code;
	int was = forq_admin_paused(q);
	forq_admin_pause(q, paused);
	forq_close(q);
	printf("queue %s %s%s\n", name, paused ? "paused" : "resumed",
	       was == paused ? " (it already was)" : "");
	return EXIT_OK;
}

int cmd_pause(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	return pause_or_resume(cmd, o, argc, argv, 1);
}

int cmd_resume(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	return pause_or_resume(cmd, o, argc, argv, 0);
}

int cmd_purge(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	const char *name = NULL;
	struct forq *q;
	uint64_t n = 0;
	int code = queue_arg(cmd, o, argc, argv, &name);
	if (code || (code = open_queue(cmd, o, &q)))
		return code;
	int r = forq_admin_purge_ask(q, PURGE_WAIT_MS, &n);
	forq_close(q);
	if (r == -ESRCH)
		return failure(cmd, EXIT_FAILED,
			       "no forqd serves %s: a purge needs the forqd that writes its results",
			       o->shm_name);
	if (r == -ETIMEDOUT)
		return failure(cmd, EXIT_FAILED,
			       "forqd did not answer within %d ms (it may still purge the queue)",
			       PURGE_WAIT_MS);
	if (r)
		return failure(cmd, EXIT_FAILED, "%s", strerror(-r));
	printf("queue %s purged: %" PRIu64 " tasks dropped\n", name, n);
	return EXIT_OK;
}

int cmd_cancel(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct forq *q;
	uint64_t id;
	if (argc == 0)
		return usage_error(cmd, "no task id");
	if (argc > 1)
		return usage_error(cmd, "one task id, not %d arguments", argc);
	if (parse_task_id(argv[0], &id))
		return usage_error(cmd, "bad task id \"%s\" (expected a positive integer)", argv[0]);
	int code = open_queue(cmd, o, &q);
	if (code)
		return code;
	int r = forq_admin_cancel_ask(q, id, PURGE_WAIT_MS);
	forq_close(q);
	switch (r) {
	case 0: printf("task %" PRIu64 " cancelled\n", id); return EXIT_OK;
	case -ENOENT:
		return failure(cmd, EXIT_FAILED,
			       "task %" PRIu64 " is not queued (unknown, finished or forgotten)", id);
	case -EBUSY:
		return failure(cmd, EXIT_FAILED,
			       "task %" PRIu64 " is running and could not be stopped", id);
	case -ESRCH:
		return failure(cmd, EXIT_FAILED,
			       "no forqd serves %s: a cancel needs the forqd that writes its results",
			       o->shm_name);
	case -ETIMEDOUT:
		return failure(cmd, EXIT_FAILED, "forqd did not answer within %d ms", PURGE_WAIT_MS);
	default: return failure(cmd, EXIT_FAILED, "%s", strerror(-r));
	}
}
