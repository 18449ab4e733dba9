/* snapshot.c — the queue's figures into a snapshot (see snapshot.h). */
#include "snapshot.h"

#include <stdio.h>
#include <string.h>

#include "forq.h"
#include "forq_admin.h"

_Static_assert(METRICS_NPRIO == 3, "forq_stats has three lanes");

void metrics_snapshot_queue(struct metrics_snapshot *s, const struct forq_stats *st)
{
	for (int p = 0; p < METRICS_NPRIO; p++) {
		s->pending[p] = st->pending[p];
		s->enqueued[p] = st->lane[p].enqueued;
		s->started[p] = st->lane[p].started;
		s->done[p] = st->lane[p].done;
		s->failed[p] = st->lane[p].failed;
	}
	s->in_progress = st->in_progress;
	s->retry_waiting = st->retry_waiting;
	s->scheduled = st->scheduled;
	s->dead_letters = st->dead_letters;
	s->dead = st->dead;
	s->retried = st->retried;
	s->crashes = st->crashes;
	s->requeued = st->requeued;
	s->capacity = st->capacity;
	s->max_payload = st->max_payload;
	s->accepting = st->accepting != 0;
}

void metrics_snapshot_controls(struct metrics_snapshot *s, struct forq *q)
{
	snprintf(s->queue, sizeof s->queue, "%s", FORQ_QUEUE_DEFAULT);
	s->paused = forq_admin_paused(q);
	s->purged = forq_admin_purged_total(q);
	s->cancelled = forq_admin_cancelled_total(q);
}

const char *metrics_snapshot_name(const struct metrics_snapshot *s)
{
	size_t n = strnlen(s->queue, sizeof s->queue);
	return n && n < sizeof s->queue ? s->queue : "default";
}
