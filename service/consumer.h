/* consumer.h — a consumer process: take a batch, run the handler on each
 * task, write the final results, repeat. forqd forks and execs one per
 * worker (consumer_exec.h).
 *
 *   - Batches follow the handler's measured run time (about 10 ms of work a
 *     pop, --batch at most; the first pop takes one task), and a batch that
 *     runs past twice that gives back what it has not started, even while a
 *     slow task still runs.
 *   - Results that cannot be written (a full disk, a file size limit, EIO)
 *     are held and retried: the consumer takes no task meanwhile, logs
 *     results_write_failed with the errno and shows it in its worker row.
 *     An output gone for good (EPIPE) ends it: CONSUMER_EXIT_RESULTS.
 *   - An exec: command's process group is published in the consumer's
 *     record while it runs; if forqd dies, the consumer kills that group and
 *     exits (its parent-death signal is a catchable one for that).
 *   - A proc: child (handlers/PROC.md) starts with the consumer and lives
 *     as long as it, its group published all that time; a popped batch goes
 *     to it whole and each task is finished as its reply arrives; a task in
 *     hand when the child dies ends as a crash (forq_admin_task_crashed),
 *     the rest of the batch goes back; while the child waits out a restart
 *     delay the consumer takes no tasks. Its stderr and life go to the log
 *     with the queue and the worker. Its batches are not watched (the
 *     child holds a whole batch at once); their size follows the mean time
 *     between its replies. */
#ifndef FORQ_CONSUMER_H
#define FORQ_CONSUMER_H

#include <stdint.h>
#include <sys/types.h>

struct forq;

struct consumer_config {
	const char *handler;      /* handler spec */
	int task_timeout_ms;
	uint32_t batch;
	int results_fd;           /* -1: results not written */
	const char *tasks_file;   /* shown in results' "source" */
	const char *queue_name;   /* shown in results' "queue" */
	int journal_fd;           /* > 0: ids whose results are written go here
				   * (base/idpipe.h), after their results: the
				   * journal's pipe, or the NATS bridge's */
	/* proc: restart delays of a child that keeps dying (the supervisor's
	 * own, for consumers: supervisor_start sets them). */
	int restart_backoff_ms;
	int restart_backoff_max_ms;
};

/* Exit codes of a consumer process. */
enum consumer_exit {
	CONSUMER_EXIT_OK = 0,       /* asked to stop */
	CONSUMER_EXIT_ORPHAN = 64,  /* forqd died before we started */
	CONSUMER_EXIT_ATTACH = 65,  /* no process record free */
	CONSUMER_EXIT_HANDLER = 66, /* handler could not be set up */
	CONSUMER_EXIT_RESULTS = 67, /* the results output is gone for good (EPIPE) */
	CONSUMER_EXIT_UNWRITTEN = 68, /* stopped while its results could not be written */
	CONSUMER_EXIT_EXEC = 69,    /* forqd's binary could not be executed */
};

/* Runs consumer `worker` in a child of forqd `parent`, q attached bare
 * (consumer_process_main in consumer_exec.h calls it); exits the process,
 * never returns. */
_Noreturn void consumer_main(struct forq *q, int worker, const struct consumer_config *c,
			     pid_t parent);

#endif
