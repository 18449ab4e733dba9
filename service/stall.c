/* stall.c — see stall.h. */
#include "stall.h"

#include "log.h"

void stall_watch_look(struct stall_watch *w, struct forq *q, int workers, int limit_s,
		      uint64_t now)
{
	uint64_t limit = (uint64_t)limit_s * 1000000000u;
	if (!limit)
		return;
	struct forq_stats st;
	forq_stats_read(q, &st);
	uint64_t finished = st.done + st.failed + st.dead;
	if (finished != w->finished || !w->finished_ns) {
		w->finished = finished;
		w->finished_ns = now;
	}
	/* Pending tasks of a paused queue wait on purpose: no stall. */
	uint64_t pending = forq_admin_paused(q) ? 0 : st.pending[0] + st.pending[1] + st.pending[2];
	int waiting = pending + st.in_progress > 0;
	int stalled = waiting && now - w->finished_ns >= limit;
	struct forq_worker_info rows[FORQ_MAX_WORKERS];
	uint32_t stuck = 0;
	forq_admin_workers(q, rows, workers);
	for (int i = 0; i < workers; i++) {
		if (rows[i].current_task != w->task[i]) {
			w->task[i] = rows[i].current_task;
			w->task_ns[i] = now;
		}
		stuck += w->task[i] && now - w->task_ns[i] >= limit;
	}
	if (stalled != atomic_load(&w->stalled) || stuck != atomic_load(&w->stuck)) {
		int bad = stalled || stuck;
		log_event(bad ? LOG_WARN : LOG_INFO, bad ? "stalled" : "unstalled",
			  "queue_stalled=%d workers_stuck=%u stall_timeout_s=%d", stalled, stuck,
			  limit_s);
	}
	atomic_store(&w->stalled, stalled);
	atomic_store(&w->stuck, stuck);
}

int stall_watch_stalled(struct stall_watch *w)
{
	return atomic_load(&w->stalled);
}

uint32_t stall_watch_stuck(struct stall_watch *w)
{
	return atomic_load(&w->stuck);
}
