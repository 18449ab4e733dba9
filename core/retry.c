/* retry.c — the waiting table: tasks waiting for their retry backoff, and
 * new tasks pushed with a delay; bounded, under the aux lock, moved to the
 * front of their lane once due (forqd looks every 100 ms while any wait). */
#include <errno.h>

#include "failpoint.h"
#include "internal.h"

/* Gives a record back to the front of its lane without waiting: callers
 * hold aux_lock, which consumers need to finish tasks, so waiting here for
 * them to drain the ring could deadlock. -EAGAIN: leave it for next time. */
int forq__requeue_now(struct forq *q, const struct forq_rec *rec)
{
	const struct forq_rec *recs[1] = {rec};
	int prio = rec->prio < FORQ_NPRIO ? rec->prio : FORQ_NORMAL;
	int r = forq__ring_push(q, FORQ_RING_FRONT(prio), 1, NULL, NULL, NULL, recs);
	if (r == 0) {
		if (q->me)
			forq__add(&q->me->c.requeued, 1);
		forq__wake_work(q, 1);
	}
	return r;
}

/* Puts rec in the waiting table until due_ns: a retry's backoff, or a new
 * task's delay (FORQ_REC_DELAYED in rec's flags; in a journaled queue it
 * takes the next sched_seq, *seq, for the journal to write it by).
 * -ENOSPC when it is full. */
static int waiting_add(struct forq *q, const struct forq_rec *rec, uint64_t due_ns, uint64_t *seq)
{
	struct forq_hdr *h = q->h;
	int r = forq__aux_lock(q);
	if (r)
		return r;
	r = -ENOSPC;
	if (atomic_load(&h->retry_used) < h->retry_max) {
		/* From where the last one went: a full stretch is not walked again
		 * for each task (the hint is only a start; any slot may be free). */
		uint32_t i = h->retry_hint < h->retry_max ? h->retry_hint : 0;
		for (uint32_t k = 0; k < h->retry_max; k++, i = i + 1 < h->retry_max ? i + 1 : 0) {
			struct forq_entry *e = forq__retry_entry(q, i);
			if (e->rec.state != FORQ_ENTRY_EMPTY)
				continue;
			h->retry_hint = i + 1;
			if ((r = forq__entry_back(q, e, rec->len, FORQ_KEEP_TAKE)))
				break; /* the caller queues it at once instead */
			forq__copy_rec(e, rec);
			e->due_ns = due_ns;
			e->aux = 0;
			if ((rec->flags & FORQ_REC_DELAYED) &&
			    (atomic_load(&h->flags) & FORQ_F_JOURNAL))
				e->aux = atomic_fetch_add(&h->sched_seq, 1) + 1;
			if (seq)
				*seq = e->aux;
			FORQ_FAILPOINT("retry.add");
			e->rec.state = FORQ_ENTRY_WAITING;
			atomic_fetch_add(&h->retry_used, 1);
			if (rec->flags & FORQ_REC_DELAYED)
				atomic_fetch_add(&h->sched_used, 1);
			break;
		}
	}
	forq__unlock(&h->aux_lock);
	return r;
}

int forq__retry_add(struct forq *q, const struct forq_rec *rec, uint64_t due_ns)
{
	return waiting_add(q, rec, due_ns, NULL);
}

int forq__delayed_add(struct forq *q, const struct forq_rec *rec, uint64_t due_ns, uint64_t *seq)
{
	return waiting_add(q, rec, due_ns, seq);
}

/* A delayed task the journal has not written yet stays in the table
 * (consumers never take a task the journal has not seen). */
static int unjournaled(struct forq *q, const struct forq_entry *e)
{
	return e->aux > atomic_load(&q->h->sched_journaled) &&
	       (atomic_load(&q->h->flags) & FORQ_F_JOURNAL);
}

int forq_admin_retry_due(struct forq *q, uint64_t now_ns)
{
	struct forq_hdr *h = q->h;
	if (atomic_load(&h->retry_used) == 0)
		return 0;
	int r = forq__aux_lock(q), n = 0;
	if (r)
		return r;
	for (uint32_t i = 0; i < h->retry_max; i++) {
		struct forq_entry *e = forq__retry_entry(q, i);
		if (e->rec.state != FORQ_ENTRY_WAITING || e->due_ns > now_ns)
			continue;
		int delayed = e->rec.flags & FORQ_REC_DELAYED;
		if (delayed && unjournaled(q, e))
			continue;
		e->rec.flags &= (uint16_t)~FORQ_REC_DELAYED; /* its retries are retries */
		if (forq__requeue_now(q, &e->rec) == 0) {
			forq__entry_clear(q, e);
			atomic_fetch_sub(&h->retry_used, 1);
			if (delayed)
				atomic_fetch_sub(&h->sched_used, 1);
			n++;
		} else if (delayed) {
			e->rec.flags |= FORQ_REC_DELAYED;
		}
	}
	forq__unlock(&h->aux_lock);
	return n;
}

