/* queuectl.c — see queuectl.h. */
#include "queuectl.h"

#include <errno.h>
#include <string.h>

#include "log.h"

int queuectl_ask(struct forq *q, enum queuectl_op op, uint64_t *arg)
{
	int r;
	switch (op) {
	case QUEUECTL_PAUSE: forq_admin_pause(q, 1); return 0;
	case QUEUECTL_RESUME: forq_admin_pause(q, 0); return 0;
	case QUEUECTL_PURGE: return forq_admin_purge_ask(q, QUEUECTL_PURGE_WAIT_MS, arg);
	case QUEUECTL_CANCEL:
		r = forq_admin_cancel_ask(q, *arg, QUEUECTL_PURGE_WAIT_MS);
		return r == -ENOENT ? -ENOMSG : r;
	}
	return -EINVAL;
}

static void log_cancel(const char *name, uint64_t id, int r, const char *via)
{
	if (r == 0)
		log_event(LOG_INFO, "task_cancelled", "queue=%s id=%llu via=%s", name,
			  (unsigned long long)id, via);
	else
		log_event(LOG_INFO, "task_cancel_refused", "queue=%s id=%llu via=%s reason=\"%s\"",
			  name, (unsigned long long)id, via,
			  r == -ENOENT ? "not queued" : r == -EBUSY ? "running" : strerror(-r));
}

static void log_purge(const char *name, int n, const char *via)
{
	if (n >= 0)
		log_event(LOG_INFO, "queue_purged", "queue=%s tasks=%d via=%s", name, n, via);
	else
		log_event(LOG_ERROR, "queue_purge_failed", "queue=%s via=%s error=\"%s\"", name, via,
			  strerror(-n));
}

void queuectl_look(struct queuectl_watch *w, const char *name, struct forq *q, forq_final_fn fn,
		   void *ctx, int (*running)(void *rctx, uint64_t id), void *rctx)
{
	int paused = forq_admin_paused(q);
	if (!w->looked ? paused : paused != w->paused)
		log_event(LOG_INFO, paused ? "queue_paused" : "queue_resumed", "queue=%s%s%s%s",
			  name, !w->looked ? " reason=\"paused before forqd started: forq resume " : "",
			  !w->looked ? name : "", !w->looked ? "\"" : "");
	w->looked = 1;
	w->paused = paused;
	int n = forq_admin_purge_serve(q, fn, ctx);
	if (n != -ENOMSG)
		log_purge(name, n, "request");
	uint64_t id;
	if ((n = forq_admin_cancel_serve(q, fn, ctx, &id, running, rctx)) != -ENOMSG)
		log_cancel(name, id, n, "request");
}
