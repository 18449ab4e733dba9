/* stall.h — a consumer that is alive but does no work: stopped (SIGSTOP),
 * or its handler hung without --task-timeout. The supervisor sees it
 * running; what shows it is that tasks wait and none finishes, or that one
 * worker runs one task, for the stall timeout. forqd's main thread looks
 * (stall_watch_look, from its housekeeping); any thread reads the verdict
 * (/readyz, /metrics, /stats). */
#ifndef FORQ_STALL_H
#define FORQ_STALL_H

#include <stdatomic.h>
#include <stdint.h>

#include "forq_admin.h"

struct stall_watch {
	/* main thread only */
	uint64_t finished, finished_ns;     /* tasks ever finished, and when that last moved */
	uint64_t task[FORQ_MAX_WORKERS];    /* the task each worker ran at the last look */
	uint64_t task_ns[FORQ_MAX_WORKERS]; /* since when (CLOCK_MONOTONIC) */
	/* any thread */
	_Atomic int stalled;                /* tasks wait, none finished for the timeout */
	_Atomic uint32_t stuck;             /* workers on one task for the timeout */
};

/* Looks at q's figures and worker rows at `now`; limit_s 0: never stalled.
 * Logs `stalled` / `unstalled` when the verdict changes. */
void stall_watch_look(struct stall_watch *w, struct forq *q, int workers, int limit_s,
		      uint64_t now);
int stall_watch_stalled(struct stall_watch *w);
uint32_t stall_watch_stuck(struct stall_watch *w);

#endif
