/* lease.c — tasks leased to remote workers, in shared memory. Only forqd's
 * main thread (the TCP server) uses them, so entries need no lock; they live
 * in shared memory so that a restarted forqd can give them back. */
#include <errno.h>
#include <string.h>

#include "forq_admin.h"
#include "clock.h"
#include "failpoint.h"
#include "internal.h"

static struct forq_entry *lease_entry(struct forq *q, uint32_t i)
{
	return forq__entry_at(q, q->h->lease_off, i);
}

uint32_t forq_lease_free_count(struct forq *q)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < q->h->lease_max; i++)
		n += lease_entry(q, i)->rec.state == FORQ_ENTRY_EMPTY;
	return n;
}

/* Gives our in-flight entries [from, n) back to the front of their lanes;
 * returns from. */
static int give_back_from(struct forq *q, int from, int n)
{
	for (int i = from; i < n; i++) {
		struct forq_entry *src = forq__inflight(q, q->me_idx, (uint32_t)i);
		forq__requeue(q, &src->rec);
		forq__entry_clear(q, src);
	}
	return from;
}

int forq_lease_take(struct forq *q, uint32_t conn, uint64_t deadline_ns, struct forq_task *tasks,
		    size_t max)
{
	struct forq_hdr *h = q->h;
	if (atomic_load_explicit(&h->flags, memory_order_relaxed) & FORQ_F_PAUSED)
		return 0; /* paused: as if empty, so a WAIT keeps waiting */
	if (max > h->batch_max)
		max = h->batch_max;
	/* Find room first: a popped task must always have an entry to go to. */
	uint32_t free_idx[4096], nfree = 0;
	for (uint32_t i = q->lease_hint, k = 0; k < h->lease_max && nfree < max && nfree < 4096;
	     k++, i = (i + 1) % h->lease_max)
		if (lease_entry(q, i)->rec.state == FORQ_ENTRY_EMPTY)
			free_idx[nfree++] = i;
	if (nfree == 0)
		return 0;
	if (max > nfree)
		max = nfree;
	int n = 0;
	for (int k = 0; k < FORQ_NRINGS && n == 0; k++) {
		int r = k ^ 1; /* a lane's front ring before its main ring */
		if (forq__ring_idle(q, forq__ring(q, r)))
			continue;
		uint64_t wait;
		n = forq__ring_pop_started(q, r, (uint32_t)max, &wait);
		if (n == -EAGAIN)
			return 0; /* the rate limit: forq_admin_rate_wait_ns says when */
		if (n < 0)
			return n;
	}
	if (n == 0)
		return 0;
	FORQ_FAILPOINT("lease.take");
	forq__wake_space(q, NULL);
	uint64_t now = clock_mono_ns();
	struct forq_counters *c = &q->me->c;
	uint64_t lanes[FORQ_NPRIO] = {0};
	for (int i = 0; i < n; i++) {
		struct forq_entry *src = forq__inflight(q, q->me_idx, (uint32_t)i);
		struct forq_entry *e = lease_entry(q, free_idx[i]);
		if (forq__entry_back(q, e, src->rec.len, FORQ_KEEP_MOVE)) {
			/* /dev/shm is full: what is not leased goes back. */
			n = give_back_from(q, i, n);
			break;
		}
		lanes[forq__lane(src->rec.prio)]++;
		memcpy(&e->rec, &src->rec, sizeof src->rec + src->rec.len);
		e->owner = conn;
		e->due_ns = deadline_ns;
		e->aux = now; /* handed out at */
		e->rec.state = FORQ_ENTRY_RUNNING; /* handed out: a loss counts */
		forq__entry_clear(q, src);
		struct forq_task *t = &tasks[i];
		t->id = e->rec.id;
		t->payload = &e->rec + 1;
		t->len = e->rec.len;
		t->prio = e->rec.prio;
		t->attempts = e->rec.attempts;
		t->line = forq__rec_line(&e->rec);
		t->enqueued_ns = e->rec.enq_ns;
		t->slot = free_idx[i];
		uint64_t w = now > e->rec.enq_ns ? now - e->rec.enq_ns : 0;
		forq__add(&c->wait_hist[forq__hist_bucket(w)], 1);
		forq__add(&c->wait_sum_ns, w);
	}
	forq__add_lanes(c->started, lanes);
	if (n == 0)
		return 0;
	q->lease_hint = (free_idx[n - 1] + 1) % h->lease_max;
	return n;
}

int forq_lease_get(struct forq *q, uint32_t slot, struct forq_lease_info *out)
{
	if (slot >= q->h->lease_max)
		return -ENOENT;
	const struct forq_entry *e = lease_entry(q, slot);
	if (e->rec.state != FORQ_ENTRY_RUNNING)
		return -ENOENT;
	*out = (struct forq_lease_info){.id = e->rec.id, .deadline_ns = e->due_ns,
					.taken_ns = e->aux, .payload = &e->rec + 1,
					.len = e->rec.len, .conn = e->owner};
	return 0;
}

uint64_t forq_lease_id(struct forq *q, uint32_t slot)
{
	return slot < q->h->lease_max ? lease_entry(q, slot)->rec.id : 0;
}

static struct forq_entry *held(struct forq *q, uint32_t slot, uint64_t id, uint32_t conn)
{
	if (slot >= q->h->lease_max)
		return NULL;
	struct forq_entry *e = lease_entry(q, slot);
	if (e->rec.state != FORQ_ENTRY_RUNNING || e->rec.id != id || e->owner != conn)
		return NULL;
	return e;
}

int forq_lease_finish(struct forq *q, uint32_t slot, uint64_t id, uint32_t conn,
		      enum forq_result_status status, const char *text, size_t len, uint64_t run_ns,
		      struct forq_task_info *out)
{
	struct forq_entry *e = held(q, slot, id, conn);
	if (!e)
		return -ENOENT;
	struct forq_counters *c = &q->me->c;
	int final = (int)status;
	switch (status) {
	case FORQ_RESULT_DONE: forq__add(&c->done[forq__lane(e->rec.prio)], 1); break;
	case FORQ_RESULT_FAILED: forq__add(&c->failed[forq__lane(e->rec.prio)], 1); break;
	case FORQ_RESULT_RETRY: final = forq__fail_delivery(q, &e->rec, text, len, 1); break;
	default: return -EINVAL;
	}
	forq__add(&c->run_hist[forq__hist_bucket(run_ns)], 1);
	forq__add(&c->run_sum_ns, run_ns);
	if (final != FORQ_RESULT_RETRY && q->h->recent_max)
		forq__recent_put(q, &e->rec, final, text, len, run_ns);
	if (out)
		*out = (struct forq_task_info){.id = e->rec.id, .len = e->rec.len, .line = forq__rec_line(&e->rec),
					       .attempts = e->rec.attempts, .prio = e->rec.prio};
	FORQ_FAILPOINT("lease.finish");
	/* A final task keeps its entry until the caller has written its result
	 * (forq_lease_release): a forqd killed in between gives it back or
	 * reports it, so no result is lost. A retry is in the retry table. */
	if (final == FORQ_RESULT_RETRY) {
		forq__entry_clear(q, e);
	} else if (final == FORQ_RESULT_DEAD) {
		forq__entry_set_error(e, text, len);
		e->rec.state = FORQ_ENTRY_DEAD;
	} else {
		e->rec.state = FORQ_ENTRY_FINISHED;
	}
	return final;
}

void forq_lease_release(struct forq *q, uint32_t slot)
{
	FORQ_FAILPOINT("lease.release");
	if (slot < q->h->lease_max)
		forq__entry_clear(q, lease_entry(q, slot));
}

int forq_lease_touch(struct forq *q, uint32_t slot, uint64_t id, uint32_t conn, uint64_t deadline_ns)
{
	struct forq_entry *e = held(q, slot, id, conn);
	if (!e)
		return -ENOENT;
	e->due_ns = deadline_ns;
	return 0;
}

int forq_lease_cancel(struct forq *q, uint32_t slot, uint64_t id, uint32_t conn, forq_final_fn fn,
		      void *ctx)
{
	struct forq_entry *e = held(q, slot, id, conn);
	if (!e)
		return -ENOENT;
	e->rec.state = FORQ_ENTRY_CANCELLED;
	forq__report_dropped(q, e, fn, ctx); /* its result, then the entry is free */
	return 0;
}

int forq_lease_giveback(struct forq *q, uint32_t slot, uint64_t id, uint32_t conn, const char *why,
			int expired, forq_final_fn fn, void *ctx)
{
	struct forq_entry *e = held(q, slot, id, conn);
	if (!e)
		return -ENOENT;
	if (expired)
		forq__add(&q->me->c.lease_expired, 1);
	int r = forq__lose_delivery(q, &e->rec, why, fn, ctx);
	forq__entry_clear(q, e);
	return r;
}
