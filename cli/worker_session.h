/* worker_session.h — one `forq worker` connection to forqd, start to end
 * (the behaviour worker.h describes): connect, AUTH, INFO (the lease
 * timeout), GET_TASKS with the next batch asked for while this one runs,
 * RESULT / FAIL / RETRY per task, TOUCH for tasks still waiting, EXIT when
 * done; reconnecting with backoff when forqd goes away. Replies come back in
 * request order, so the session keeps a small FIFO of what it expects and
 * checks each reply against its head. */
#ifndef FORQ_WORKER_SESSION_H
#define FORQ_WORKER_SESSION_H

#include <signal.h>

#include "worker_opts.h"

/* forq worker's exit codes (worker.h). */
enum worker_exit {
	WORKER_EXIT_OK = 0,
	WORKER_EXIT_FAILED = 1,
	WORKER_EXIT_USAGE = 2,
	WORKER_EXIT_REFUSED = 3, /* forqd refused the token */
};

/* One connection's life, reconnecting until done; returns an enum
 * worker_exit. Signals stay blocked but for open_mask, which every wait
 * uses, so a signal is seen where the worker waits and never interrupts a
 * handler; *stop (set by the caller's handler) is 1 to finish what is in
 * hand, 2 to stop now. */
int worker_run(const struct worker_opts *o, const sigset_t *open_mask,
	       const volatile sig_atomic_t *stop);

#endif
