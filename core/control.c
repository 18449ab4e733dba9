/* control.c — a queue's controls: pause and resume (a header flag) and
 * purge (pending and retry-waiting tasks dropped, each reported).
 *
 * Pause costs the hot path one load of the flags word, which consumers read
 * anyway, where they go to pop a batch (queue.c) or to lease one (lease.c).
 *
 * Purge takes tasks the way a consumer does, under each ring's pop lock, so
 * it races consumers safely: each task is popped by one of them. Its pop
 * writes the purger's in-flight entries as PURGED, so a purger killed at
 * any step leaves each task either still in its ring or PURGED in its
 * record, which repair reports as purged and never runs. Retry entries are
 * marked PURGED in place (with the purger in `owner`), under the aux lock.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "forq_admin.h"
#include "failpoint.h"
#include "internal.h"

#define PURGED_TEXT "purged"
#define CANCELLED_TEXT "cancelled"

void forq_admin_set_flags(struct forq *q, uint32_t set, uint32_t clear)
{
	uint32_t f = atomic_load(&q->h->flags);
	while (!atomic_compare_exchange_weak(&q->h->flags, &f, (f | set) & ~clear))
		;
	/* Sleepers re-read the flags when woken. */
	atomic_fetch_add(&q->h->work_seq, 1);
	atomic_fetch_add(&q->h->space_seq, 1);
	forq__wake_work(q, INT32_MAX);
	forq__wake_space(q, NULL);
}

uint32_t forq_admin_flags(struct forq *q)
{
	return atomic_load(&q->h->flags);
}

int forq_queue_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n >= 1 && n <= FORQ_QUEUE_NAME_MAX &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

int forq_queue_shm_name(const char *base, const char *queue, char *out, size_t cap)
{
	if (!forq_queue_name_ok(queue))
		return -EINVAL;
	int n = strcmp(queue, FORQ_QUEUE_DEFAULT) ? snprintf(out, cap, "%s.%s", base, queue)
						   : snprintf(out, cap, "%s", base);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

uint64_t forq_admin_queue_first_id(const char *queue)
{
	if (!forq_queue_name_ok(queue))
		return 0;
	if (!strcmp(queue, FORQ_QUEUE_DEFAULT))
		return 1;
	uint32_t h = 2166136261u; /* FNV-1a: stable across builds and machines */
	for (const char *p = queue; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return (h % (FORQ_QUEUE_ID_RANGES - 1) + 1) * FORQ_QUEUE_ID_SPAN + 1;
}

int forq_open_queue(struct forq **qp, const char *base, const char *queue, char *err,
		    size_t errlen)
{
	char name[256];
	int r = forq_queue_shm_name(base ? base : "/forq", queue, name, sizeof name);
	if (r) {
		if (err && errlen && r == -EINVAL)
			snprintf(err, errlen, "bad queue name \"%s\" (1 to %d letters, digits, '_' or "
				 "'-')", queue ? queue : "", FORQ_QUEUE_NAME_MAX);
		else if (err && errlen)
			snprintf(err, errlen, "queue name too long: \"%s\"", queue);
		return r;
	}
	return forq_open(qp, name, err, errlen);
}

void forq_admin_pause(struct forq *q, int paused)
{
	/* Resume wakes every sleeping consumer and the work watch (parked
	 * GET_TASK WAITs): set_flags moves the work word. */
	if (paused)
		forq_admin_set_flags(q, FORQ_F_PAUSED, 0);
	else
		forq_admin_set_flags(q, 0, FORQ_F_PAUSED);
}

int forq_admin_paused(struct forq *q)
{
	return !!(atomic_load(&q->h->flags) & FORQ_F_PAUSED);
}

int forq__free_last_batch(struct forq *q)
{
	if (!q->me)
		return -EPERM;
	if (q->batch_open)
		return -EBUSY; /* our in-flight entries hold a batch */
	for (uint32_t i = 0; i < q->batch_n; i++)
		forq__entry_clear(q, forq__inflight(q, q->me_idx, i));
	q->batch_n = 0;
	return 0;
}

uint64_t forq_admin_purged_total(struct forq *q)
{
	return atomic_load(&q->h->purged);
}

void forq__report_dropped(struct forq *q, struct forq_entry *e, forq_final_fn fn, void *ctx)
{
	int cancel = e->rec.state == FORQ_ENTRY_CANCELLED;
	const char *text = cancel ? CANCELLED_TEXT : PURGED_TEXT;
	int status = cancel ? FORQ_RESULT_CANCELLED : FORQ_RESULT_PURGED;
	forq__report_final(fn, ctx, &e->rec, status, text);
	if (q->h->recent_max)
		forq__recent_put(q, &e->rec, status, text, strlen(text), 0);
	atomic_fetch_add(cancel ? &q->h->cancelled : &q->h->purged, 1);
	FORQ_FAILPOINT(cancel ? "cancel.report" : "purge.report");
	forq__entry_clear(q, e);
}

/* Tasks pending in ring ri when the purge began, at most: a producer that
 * keeps pushing cannot keep a purge going. */
static int purge_ring(struct forq *q, int ri, forq_final_fn fn, void *ctx)
{
	struct forq_ring *r = forq__ring(q, ri);
	uint64_t left = atomic_load(&r->tail_count) - atomic_load(&r->head_count);
	int total = 0;
	while (left > 0) {
		uint32_t max = left < q->h->batch_max ? (uint32_t)left : q->h->batch_max;
		int n = forq__ring_pop(q, ri, max, FORQ_ENTRY_PURGED);
		if (n <= 0)
			return n < 0 ? n : total;
		forq__wake_space(q, r);
		for (int i = 0; i < n; i++)
			forq__report_dropped(q, forq__inflight(q, q->me_idx, (uint32_t)i), fn, ctx);
		left -= (uint64_t)n < left ? (uint64_t)n : left;
		total += n;
	}
	return total;
}

/* Marks the retry entries WAITING now as ours to purge. */
static int mark_retries(struct forq *q)
{
	struct forq_hdr *h = q->h;
	int r = forq__aux_lock(q), n = 0;
	if (r)
		return r;
	for (uint32_t i = 0; i < h->retry_max; i++) {
		struct forq_entry *e = forq__retry_entry(q, i);
		if (e->rec.state != FORQ_ENTRY_WAITING)
			continue;
		e->owner = q->me_idx + 1;
		e->rec.state = FORQ_ENTRY_PURGED;
		atomic_fetch_sub(&h->retry_used, 1);
		if (e->rec.flags & FORQ_REC_DELAYED)
			atomic_fetch_sub(&h->sched_used, 1);
		n++;
	}
	forq__unlock(&h->aux_lock);
	return n;
}

int forq__drop_retries_of(struct forq *q, uint32_t owner, forq_final_fn fn, void *ctx)
{
	int n = 0;
	for (uint32_t i = 0; i < q->h->retry_max; i++) {
		struct forq_entry *e = forq__retry_entry(q, i);
		uint8_t st = e->rec.state;
		if ((st == FORQ_ENTRY_PURGED || st == FORQ_ENTRY_CANCELLED) && e->owner == owner) {
			forq__report_dropped(q, e, fn, ctx);
			n++;
		}
	}
	return n;
}

int forq_admin_purge(struct forq *q, forq_final_fn fn, void *ctx)
{
	int total = 0, r = forq__free_last_batch(q);
	if (r)
		return r;
	for (int ri = 0; ri < FORQ_NRINGS && r >= 0; ri++)
		if ((r = purge_ring(q, ri, fn, ctx)) > 0)
			total += r;
	if (r >= 0 && (r = mark_retries(q)) >= 0)
		total += forq__drop_retries_of(q, q->me_idx + 1, fn, ctx);
	return r < 0 ? r : total;
}

int forq_admin_purge_ask(struct forq *q, int timeout_ms, uint64_t *purged)
{
	if (atomic_load(&q->h->owner_pid) == 0)
		return -ESRCH; /* no forqd: nothing would serve it */
	uint64_t ticket = atomic_fetch_add(&q->h->purge_asked, 1) + 1;
	/* forqd's loop notices within its busy tick; a kick wakes an idle one. */
	forq_admin_work_kick(q);
	for (int waited = 0;; waited += 5) {
		if (atomic_load(&q->h->purge_served) >= ticket) {
			if (purged)
				*purged = atomic_load(&q->h->purge_last);
			return 0;
		}
		if (atomic_load(&q->h->owner_pid) == 0)
			return -ESRCH;
		if (timeout_ms >= 0 && waited >= timeout_ms)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
	}
}

int forq_admin_purge_serve(struct forq *q, forq_final_fn fn, void *ctx)
{
	uint64_t asked = atomic_load(&q->h->purge_asked);
	if (atomic_load(&q->h->purge_served) >= asked)
		return -ENOMSG;
	int n = forq_admin_purge(q, fn, ctx);
	if (n < 0)
		return n;
	atomic_store(&q->h->purge_last, (uint64_t)n);
	atomic_store(&q->h->purge_served, asked);
	return n;
}

/* forq.h's controls: the admin calls above, one implementation. */
int forq_pause(struct forq *q)
{
	forq_admin_pause(q, 1);
	return 0;
}

int forq_resume(struct forq *q)
{
	forq_admin_pause(q, 0);
	return 0;
}

int forq_paused(struct forq *q)
{
	return forq_admin_paused(q);
}

int forq_purge(struct forq *q, int timeout_ms, uint64_t *purged)
{
	return forq_admin_purge_ask(q, timeout_ms, purged);
}
