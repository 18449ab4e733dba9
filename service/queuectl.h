/* queuectl.h — the queue controls as forqd serves them: pause, resume and
 * purge of a queue named on the surface (HTTP, TCP), and the main loop's
 * look at the controls other processes use through the shared memory
 * (forq pause, forq purge): it logs a pause or resume whoever made it and
 * serves asked purges, writing each purged task's result. */
#ifndef FORQ_QUEUECTL_H
#define FORQ_QUEUECTL_H

#include <stdint.h>

#include "forq_admin.h"

enum queuectl_op { QUEUECTL_PAUSE, QUEUECTL_RESUME, QUEUECTL_PURGE, QUEUECTL_CANCEL };

/* How long a purge asked by the HTTP thread (or the forq tool) waits for the
 * main loop, which serves it within one busy housekeeping tick. */
#define QUEUECTL_PURGE_WAIT_MS 10000

/* From any thread but the main one, on that thread's handle of the queue
 * named on the surface: op; *arg is a cancel's task id, and a purge sets it
 * to the tasks it dropped. Returns 0, -ENOMSG (cancel: the task is not
 * queued), -EBUSY (cancel: it runs), or what forq_admin_purge_ask /
 * _cancel_ask return (-ESRCH, -ETIMEDOUT). */
int queuectl_ask(struct forq *q, enum queuectl_op op, uint64_t *arg);

/* What the main loop saw at its last look. Main thread only. */
struct queuectl_watch {
	int looked;
	int paused;
};

/* From the main loop's housekeeping: logs a change of the pause flag (at the
 * first look, a pause kept from before a restart) and serves the purges and
 * the cancel asked since the last look, writing their results through fn. */
/* running (may be NULL): asked to cancel a task that runs (a remote
 * worker's: tcp_cancel). */
void queuectl_look(struct queuectl_watch *w, const char *name, struct forq *q, forq_final_fn fn,
		   void *ctx, int (*running)(void *rctx, uint64_t id), void *rctx);

#endif
