/* queuectl.c — see queuectl.h. */
#include "queuectl.h"

#include <errno.h>
#include <string.h>

#include "log.h"

int queuectl_ask(struct forq *q, const char *name, enum queuectl_op op, uint64_t *arg)
{
	int r = forq_queue_check_name(name);
	if (r)
		return r;
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

void queuectl_log_cancel(uint64_t id, int r, const char *via)
{
	if (r == 0)
		log_event(LOG_INFO, "task_cancelled", "queue=%s id=%llu via=%s", FORQ_QUEUE_DEFAULT,
			  (unsigned long long)id, via);
	else
		log_event(LOG_INFO, "task_cancel_refused", "queue=%s id=%llu via=%s reason=\"%s\"",
			  FORQ_QUEUE_DEFAULT, (unsigned long long)id, via,
			  r == -ENOENT ? "not queued" : r == -EBUSY ? "running" : strerror(-r));
}

void queuectl_log_purge(int n, const char *via)
{
	if (n >= 0)
		log_event(LOG_INFO, "queue_purged", "queue=%s tasks=%d via=%s", FORQ_QUEUE_DEFAULT, n,
			  via);
	else
		log_event(LOG_ERROR, "queue_purge_failed", "queue=%s via=%s error=\"%s\"",
			  FORQ_QUEUE_DEFAULT, via, strerror(-n));
}

void queuectl_look(struct queuectl_watch *w, struct forq *q, forq_final_fn fn, void *ctx,
		   int (*running)(void *rctx, uint64_t id), void *rctx)
{
	int paused = forq_admin_paused(q);
	if (!w->looked ? paused : paused != w->paused)
		log_event(LOG_INFO, paused ? "queue_paused" : "queue_resumed", "queue=%s%s",
			  FORQ_QUEUE_DEFAULT,
			  !w->looked ? " reason=\"paused before forqd started: forq resume default\""
				     : "");
	w->looked = 1;
	w->paused = paused;
	int n = forq_admin_purge_serve(q, fn, ctx);
	if (n != -ENOMSG)
		queuectl_log_purge(n, "request");
	uint64_t id;
	if ((n = forq_admin_cancel_serve(q, fn, ctx, &id, running, rctx)) != -ENOMSG)
		queuectl_log_cancel(id, n, "request");
}
