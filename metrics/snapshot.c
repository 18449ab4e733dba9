/* snapshot.c — the queue's figures into a snapshot (see snapshot.h). */
#include "snapshot.h"

#include "forq.h"

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
