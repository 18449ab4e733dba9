/* cancel.c — cancel of one queued task by id: one waiting for a retry is
 * taken from the retry table as a purge takes it; one in a ring stays where
 * it is, flagged CANCELLED (pops pass over it and the pending counts leave
 * it out), with a copy in the canceller's first in-flight entry from which
 * its result is written. Flag and copy are one step for repair: the ring's
 * pop lock is held across both, and its pending note names the record, so
 * a canceller killed inside leaves the entry iff the flag is set. A task
 * that runs (in flight, leased) is not touched here: forqd kills the local
 * consumer that runs it and marks its entry (forq_admin_cancel_held) before
 * repair, or revokes the remote worker's lease.
 */
#include <errno.h>
#include <time.h>

#include "forq_admin.h"
#include "failpoint.h"
#include "internal.h"

/* The retry table: -ENOENT if id does not wait there. */
static int cancel_retry(struct forq *q, uint64_t id, forq_final_fn fn, void *ctx)
{
	struct forq_hdr *h = q->h;
	struct forq_entry *hit = NULL;
	int r = forq__aux_lock(q);
	if (r)
		return r;
	for (uint32_t i = 0; i < h->retry_max && !hit; i++) {
		struct forq_entry *e = forq__retry_entry(q, i);
		if (e->rec.state == FORQ_ENTRY_WAITING && e->rec.id == id) {
			e->owner = q->me_idx + 1;
			e->rec.state = FORQ_ENTRY_CANCELLED;
			atomic_fetch_sub(&h->retry_used, 1);
			if (e->rec.flags & FORQ_REC_DELAYED)
				atomic_fetch_sub(&h->sched_used, 1);
			hit = e;
		}
	}
	forq__unlock(&h->aux_lock);
	if (!hit)
		return -ENOENT;
	forq__report_dropped(q, hit, fn, ctx);
	return 1;
}

/* Ring ri: -ENOENT if id is not queued there. */
static int cancel_in_ring(struct forq *q, int ri, uint64_t id, forq_final_fn fn, void *ctx)
{
	struct forq_ring *r = forq__ring(q, ri);
	uint8_t *arena = forq__arena(q, r);
	struct forq_entry *e = forq__inflight(q, q->me_idx, 0);
	int found = -ENOENT, err;
	if (forq__ring_empty(r))
		return -ENOENT;
	if ((err = forq__lock(q, &r->pop_lock, forq__ring_repair_pop, r)))
		return err;
	r->pop_holder = q->me_idx + 1;
	uint64_t pos = atomic_load(&r->head), tail = atomic_load(&r->tail);
	while (pos < tail) {
		uint64_t off = pos % r->arena_bytes;
		struct forq_rec *rec = (struct forq_rec *)(arena + off);
		if (rec->len == FORQ_REC_PAD) {
			pos += r->arena_bytes - off;
			continue;
		}
		if (rec->len > q->h->max_payload || off + FORQ_REC_SIZE(rec->len) > r->arena_bytes)
			break;
		if (rec->id == id && !(rec->flags & FORQ_REC_CANCELLED)) {
			if ((found = forq__entry_back(q, e, rec->len, FORQ_KEEP_MOVE)))
				break; /* a sparse queue's /dev/shm is full: try again */
			r->pop_pend_max = 1;
			r->pop_pend_head = UINT64_MAX;
			r->pop_pend_cancel = off + 1;
			r->pop_pend_proc = q->me_idx + 1;
			forq__rec_copy(&e->rec, rec, rec->len);
			e->rec.state = FORQ_ENTRY_CANCELLED;
			FORQ_FAILPOINT("cancel.copied");
			rec->flags |= FORQ_REC_CANCELLED;
			r->cancelled++;
			found = 1;
			break;
		}
		pos += FORQ_REC_SIZE(rec->len);
	}
	r->pop_pend_proc = 0;
	r->pop_pend_cancel = 0;
	r->pop_holder = 0;
	forq__unlock(&r->pop_lock);
	if (found == 1)
		forq__report_dropped(q, e, fn, ctx);
	return found;
}

/* Whether a process or a remote worker holds id now. */
static int running(struct forq *q, uint64_t id)
{
	struct forq_hdr *h = q->h;
	for (uint32_t p = 0; p < h->max_procs; p++)
		for (uint32_t i = 0; i < h->batch_max; i++) {
			struct forq_entry *e = forq__inflight(q, p, i);
			if (e->rec.id == id && e->rec.state >= FORQ_ENTRY_HELD &&
			    e->rec.state <= FORQ_ENTRY_FINISHED)
				return 1;
		}
	for (uint32_t i = 0; i < h->lease_max; i++) {
		struct forq_entry *e = forq__entry_at(q, h->lease_off, i);
		if (e->rec.id == id && e->rec.state >= FORQ_ENTRY_HELD &&
		    e->rec.state <= FORQ_ENTRY_FINISHED)
			return 1;
	}
	return 0;
}

int forq_admin_cancel(struct forq *q, uint64_t id, forq_final_fn fn, void *ctx)
{
	int r = forq__free_last_batch(q);
	if (r)
		return r;
	if (id == 0 || id >= atomic_load(&q->h->next_id))
		return -ENOENT;
	if ((r = cancel_retry(q, id, fn, ctx)) != -ENOENT)
		return r < 0 ? r : 0;
	for (int k = 0; k < FORQ_NRINGS; k++)
		if ((r = cancel_in_ring(q, k ^ 1, id, fn, ctx)) != -ENOENT)
			return r < 0 ? r : 0;
	return running(q, id) ? -EBUSY : -ENOENT;
}

int32_t forq_admin_holder_pid(struct forq *q, uint64_t id)
{
	struct forq_hdr *h = q->h;
	for (uint32_t p = 0; p < h->max_procs; p++) {
		struct forq_proc *pr = forq__proc(q, p);
		if (pr == q->me || atomic_load(&pr->state) != FORQ_PROC_ACTIVE)
			continue;
		for (uint32_t i = 0; i < h->batch_max; i++) {
			struct forq_entry *e = forq__inflight(q, p, i);
			if (e->rec.id == id && e->rec.state >= FORQ_ENTRY_HELD &&
			    e->rec.state <= FORQ_ENTRY_FINISHED)
				return pr->pid;
		}
	}
	return 0;
}

int forq_admin_cancel_held(struct forq *q, int32_t pid, uint64_t id)
{
	struct forq_hdr *h = q->h;
	for (uint32_t p = 0; p < h->max_procs; p++) {
		struct forq_proc *pr = forq__proc(q, p);
		if (pr == q->me || atomic_load(&pr->state) != FORQ_PROC_ACTIVE || pr->pid != pid)
			continue;
		for (uint32_t i = 0; i < h->batch_max; i++) {
			struct forq_entry *e = forq__inflight(q, p, i);
			/* FINISHED: its result was computed but never written (the
			 * holder died first): cancelled all the same, as asked. */
			if (e->rec.id == id && e->rec.state >= FORQ_ENTRY_HELD &&
			    e->rec.state <= FORQ_ENTRY_FINISHED) {
				e->rec.state = FORQ_ENTRY_CANCELLED;
				return 0;
			}
		}
	}
	return -ENOENT;
}

uint64_t forq_admin_cancelled_total(struct forq *q)
{
	return atomic_load(&q->h->cancelled);
}

int forq_admin_cancel_ask(struct forq *q, uint64_t id, int timeout_ms)
{
	struct forq_hdr *h = q->h;
	int waited = 0, r;
	for (uint32_t free_slot = 0;
	     !atomic_compare_exchange_strong(&h->cancel_state, &free_slot, 3); free_slot = 0) {
		if (atomic_load(&h->owner_pid) == 0)
			return -ESRCH;
		if (timeout_ms >= 0 && waited >= timeout_ms)
			return -ETIMEDOUT; /* another asker holds the slot */
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
		waited += 5;
	}
	atomic_store(&h->cancel_id, id);
	atomic_store(&h->cancel_state, 1);
	forq_admin_work_kick(q);
	for (;; waited += 5) {
		uint32_t asked = 1;
		if (atomic_load(&h->cancel_state) == 2) {
			r = atomic_load(&h->cancel_result);
			break;
		}
		if (atomic_load(&h->owner_pid) == 0 || (timeout_ms >= 0 && waited >= timeout_ms)) {
			/* Withdrawn unless forqd took it meanwhile: then its answer
			 * is near, unless forqd died serving it (the next frees the
			 * slot, forq_admin_own). */
			if (atomic_compare_exchange_strong(&h->cancel_state, &asked, 0) ||
			    atomic_load(&h->owner_pid) == 0)
				return atomic_load(&h->owner_pid) ? -ETIMEDOUT : -ESRCH;
			timeout_ms = -1;
			continue;
		}
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
	}
	atomic_store(&h->cancel_state, 0);
	return r;
}

int forq_admin_cancel_serve(struct forq *q, forq_final_fn fn, void *ctx, uint64_t *id,
			    int (*running)(void *rctx, uint64_t id), void *rctx)
{
	struct forq_hdr *h = q->h;
	uint32_t asked = 1;
	if (atomic_load(&h->cancel_state) != 1)
		return -ENOMSG;
	/* 4: being served, so that the asker cannot withdraw it meanwhile. */
	if (!atomic_compare_exchange_strong(&h->cancel_state, &asked, 4))
		return -ENOMSG;
	*id = atomic_load(&h->cancel_id);
	int r = forq_admin_cancel(q, *id, fn, ctx);
	if (r == -EBUSY && running)
		r = running(rctx, *id);
	atomic_store(&h->cancel_result, r);
	atomic_store(&h->cancel_state, 2);
	return r;
}

int forq_cancel(struct forq *q, uint64_t id, int timeout_ms)
{
	return forq_admin_cancel_ask(q, id, timeout_ms);
}
