/* supervisor.h — forqd's consumer processes: fork them, reap them, give back
 * what a dead one held, restart it with backoff, stop them all. Runs on
 * forqd's main thread only. Rows in the queue's header show each worker.
 *
 * forqd becomes the subreaper of its consumers' descendants
 * (PR_SET_CHILD_SUBREAPER): a dead consumer's exec: handler is reaped here,
 * and its process group killed first; supervisor_reap reaps every child. */
#ifndef FORQ_SUPERVISOR_H
#define FORQ_SUPERVISOR_H

#include <stdint.h>

#include "forq_admin.h"
#include "consumer.h"

struct supervisor;

struct supervisor_config {
	int workers;
	int backoff_ms;     /* first restart delay of a consumer that keeps dying */
	int backoff_max_ms;
};

int supervisor_start(struct supervisor **sp, struct forq *q, const struct supervisor_config *c,
		     const struct consumer_config *cc, forq_final_fn fn, void *ctx);

/* forqd serves several queues, a supervisor each, but a child's death is
 * seen by whoever looks first: s's chain goes on with next, and
 * supervisor_reap and supervisor_wait_all on the chain's head cover every
 * supervisor on it. */
void supervisor_chain(struct supervisor *s, struct supervisor *next);
/* Reaps every exited consumer (after SIGCHLD) of head's chain: repairs its
 * record and schedules its restart unless stopping. Any other child is an
 * orphaned handler process: its group is killed and it is reaped. */
void supervisor_reap(struct supervisor *head);

/* Cancel of a task the consumer pid (of head's chain) runs: SIGKILLs it and
 * waits until it has exited, leaving it unreaped, so that the caller can mark
 * the task's entry before supervisor_reap repairs it; the consumer is then
 * restarted at once, without backoff. 0, or -ENOENT when pid is not one. */
int supervisor_kill_holder(struct supervisor *head, pid_t pid);
/* Starts consumers whose backoff is over. Returns the ms until the next due
 * restart (or max_ms). */
int supervisor_tick(struct supervisor *s, int max_ms);

/* No more restarts from now on. */
void supervisor_stopping(struct supervisor *s);

/* Consumers alive (forked and not yet reaped). */
int supervisor_alive(const struct supervisor *s);

/* For head's whole chain: waits up to grace_ms for consumers to exit, then SIGKILLs and reaps the
 * rest (their tasks are repaired; a task one of them ran goes back as it
 * was, marked as stopped while it ran). Then kills whatever their handlers
 * left running outside their tasks' groups. */
void supervisor_wait_all(struct supervisor *s, int grace_ms);

/* 1 once a consumer found the results output gone for good (a closed pipe):
 * no consumer is restarted after that; forqd should stop with its results
 * exit code. */
int supervisor_results_gone(const struct supervisor *s);

uint64_t supervisor_restarts(const struct supervisor *s);
void supervisor_free(struct supervisor *s);

#endif
