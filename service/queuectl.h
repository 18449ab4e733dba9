/* queuectl.h — the queue controls as forqd serves them: pause, resume and
 * purge of a queue named on the surface (HTTP, TCP), and the main loop's
 * look at the controls other processes use through the shared memory
 * (forq pause, forq purge): it logs a pause or resume whoever made it and
 * serves asked purges, writing each purged task's result. */
#ifndef FORQ_QUEUECTL_H
#define FORQ_QUEUECTL_H

#include <stdint.h>

#include "forq_admin.h"

enum queuectl_op { QUEUECTL_PAUSE, QUEUECTL_RESUME, QUEUECTL_PURGE };

/* How long a purge asked by the HTTP thread (or the forq tool) waits for the
 * main loop, which serves it within one busy housekeeping tick. */
#define QUEUECTL_PURGE_WAIT_MS 10000

/* From any thread but the main one, on that thread's handle: op on queue
 * `name`. Returns 0 (a purge sets *purged), -ENOENT for an unknown queue,
 * or what forq_admin_purge_ask returns. */
int queuectl_ask(struct forq *q, const char *name, enum queuectl_op op, uint64_t *purged);

/* What the main loop saw at its last look. Main thread only. */
struct queuectl_watch {
	int looked;
	int paused;
};

/* From the main loop's housekeeping: logs a change of the pause flag (at the
 * first look, a pause kept from before a restart) and serves the purges
 * asked since the last look, writing their results through fn. */
void queuectl_look(struct queuectl_watch *w, struct forq *q, forq_final_fn fn, void *ctx);

/* Logs a purge that dropped n tasks (or failed: n < 0), made through `via`. */
void queuectl_log_purge(int n, const char *via);

#endif
