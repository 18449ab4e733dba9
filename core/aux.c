/* aux.c — the side tables: retries waiting for their backoff, dead letters,
 * recent results by id; and lookups over the whole queue. The first two are
 * guarded by aux_lock (robust); recent results by a per-entry seqlock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forq_admin.h"
#include "clock.h"
#include "failpoint.h"
#include "internal.h"

static struct forq_entry *retry_entry(struct forq *q, uint32_t i)
{
	return forq__entry_at(q, q->h->retry_off, i);
}

static struct forq_entry *dead_entry(struct forq *q, uint32_t i)
{
	return forq__entry_at(q, q->h->dead_off, i);
}

static void copy_rec(struct forq_entry *e, const struct forq_rec *rec)
{
	memcpy(&e->rec, rec, sizeof *rec + rec->len);
}

/* A holder that died inside leaves at worst a counter off by one: recount. */
static void repair_aux(struct forq *q, void *arg)
{
	(void)arg;
	uint32_t n = 0, d = 0;
	for (uint32_t i = 0; i < q->h->retry_max; i++)
		n += retry_entry(q, i)->rec.state == FORQ_ENTRY_WAITING;
	for (uint32_t i = 0; i < q->h->dead_max; i++)
		d += dead_entry(q, i)->rec.state == FORQ_ENTRY_DEAD;
	atomic_store(&q->h->retry_used, n);
	atomic_store(&q->h->dead_used, d);
}

static int aux_lock(struct forq *q)
{
	return forq__lock(q, &q->h->aux_lock, repair_aux, NULL);
}

/* Gives a record back to the front of its lane without waiting: callers
 * hold aux_lock, which consumers need to finish tasks, so waiting here for
 * them to drain the ring could deadlock. -EAGAIN: leave it for next time. */
static int requeue_now(struct forq *q, const struct forq_rec *rec)
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

void forq__aux_cycle(struct forq *q)
{
	if (aux_lock(q) == 0)
		forq__unlock(&q->h->aux_lock);
}

int forq__retry_add(struct forq *q, const struct forq_rec *rec, uint64_t due_ns)
{
	struct forq_hdr *h = q->h;
	int r = aux_lock(q);
	if (r)
		return r;
	r = -ENOSPC;
	if (atomic_load(&h->retry_used) < h->retry_max) {
		for (uint32_t i = 0; i < h->retry_max; i++) {
			struct forq_entry *e = retry_entry(q, i);
			if (e->rec.state != FORQ_ENTRY_EMPTY)
				continue;
			copy_rec(e, rec);
			e->due_ns = due_ns;
			FORQ_FAILPOINT("retry.add");
			e->rec.state = FORQ_ENTRY_WAITING;
			atomic_fetch_add(&h->retry_used, 1);
			r = 0;
			break;
		}
	}
	forq__unlock(&h->aux_lock);
	return r;
}

int forq_admin_retry_due(struct forq *q, uint64_t now_ns)
{
	struct forq_hdr *h = q->h;
	if (atomic_load(&h->retry_used) == 0)
		return 0;
	int r = aux_lock(q), n = 0;
	if (r)
		return r;
	for (uint32_t i = 0; i < h->retry_max; i++) {
		struct forq_entry *e = retry_entry(q, i);
		if (e->rec.state != FORQ_ENTRY_WAITING || e->due_ns > now_ns)
			continue;
		if (requeue_now(q, &e->rec) == 0) {
			e->rec.state = FORQ_ENTRY_EMPTY;
			atomic_fetch_sub(&h->retry_used, 1);
			n++;
		}
	}
	forq__unlock(&h->aux_lock);
	return n;
}

int forq__dead_add(struct forq *q, const struct forq_rec *rec, const char *error, size_t len)
{
	struct forq_hdr *h = q->h;
	if (h->dead_max == 0)
		return -ENOSPC;
	int r = aux_lock(q);
	if (r)
		return r;
	/* A free entry, or else the oldest: the list is bounded, and the task's
	 * result record (status "dead") is written whatever happens here. */
	struct forq_entry *slot = NULL, *oldest = NULL;
	for (uint32_t i = 0; i < h->dead_max && !slot; i++) {
		struct forq_entry *e = dead_entry(q, i);
		if (e->rec.state != FORQ_ENTRY_DEAD)
			slot = e;
		else if (!oldest || e->aux < oldest->aux)
			oldest = e;
	}
	if (slot)
		atomic_fetch_add(&h->dead_used, 1);
	else if (!(slot = oldest)) {
		forq__unlock(&h->aux_lock);
		return -ENOSPC;
	}
	copy_rec(slot, rec);
	slot->aux = atomic_fetch_add(&h->dead_seq, 1);
	slot->due_ns = (uint64_t)clock_real_ns();
	if (len >= sizeof slot->error)
		len = sizeof slot->error - 1;
	memcpy(slot->error, error ? error : "", error ? len : 0);
	slot->error[error ? len : 0] = '\0';
	FORQ_FAILPOINT("dead.add");
	slot->rec.state = FORQ_ENTRY_DEAD;
	forq__unlock(&h->aux_lock);
	return 0;
}

/* A re-queued dead letter is no longer finished: drop its recent result. */
static void recent_forget(struct forq *q, uint64_t id)
{
	struct forq_recent *r = forq__recent(q, id);
	uint32_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
	if ((s & 1) || r->id != id)
		return;
	atomic_store_explicit(&r->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	r->id = 0;
	atomic_store_explicit(&r->seq, s + 2, memory_order_release);
}

static int cmp_dead(const void *a, const void *b)
{
	const struct forq_entry *x = *(struct forq_entry *const *)a;
	const struct forq_entry *y = *(struct forq_entry *const *)b;
	return x->aux < y->aux ? -1 : x->aux > y->aux;
}

/* Dead entries, oldest first, into a new array (caller frees). */
static int dead_sorted(struct forq *q, struct forq_entry ***out)
{
	struct forq_entry **v = malloc((q->h->dead_max + 1) * sizeof *v);
	int n = 0;
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < q->h->dead_max; i++)
		if (dead_entry(q, i)->rec.state == FORQ_ENTRY_DEAD)
			v[n++] = dead_entry(q, i);
	qsort(v, (size_t)n, sizeof *v, cmp_dead);
	*out = v;
	return n;
}

int forq_dead_list(struct forq *q, void (*fn)(void *ctx, const struct forq_dead_info *d), void *ctx)
{
	struct forq_entry **v;
	int r = aux_lock(q);
	if (r)
		return r;
	int n = dead_sorted(q, &v);
	for (int i = 0; i < n; i++) {
		struct forq_dead_info d = {
			.id = v[i]->rec.id, .prio = v[i]->rec.prio, .attempts = v[i]->rec.attempts,
			.died_unix_ns = (int64_t)v[i]->due_ns, .error = v[i]->error,
			.payload = &v[i]->rec + 1, .len = v[i]->rec.len};
		fn(ctx, &d);
	}
	if (n >= 0)
		free(v);
	forq__unlock(&q->h->aux_lock);
	return n;
}

int forq_dead_retry(struct forq *q, uint64_t id)
{
	struct forq_entry **v;
	int r = aux_lock(q), done = 0;
	if (r)
		return r;
	int n = dead_sorted(q, &v);
	for (int i = 0; i < n; i++) {
		if (id && v[i]->rec.id != id)
			continue;
		v[i]->rec.attempts = 0;
		v[i]->rec.crashes = 0;
		recent_forget(q, v[i]->rec.id);
		if (requeue_now(q, &v[i]->rec) == 0) {
			v[i]->rec.state = FORQ_ENTRY_EMPTY;
			atomic_fetch_sub(&q->h->dead_used, 1);
			done++;
		}
	}
	if (n >= 0)
		free(v);
	forq__unlock(&q->h->aux_lock);
	if (n < 0)
		return n;
	return id && !done ? -ENOENT : done;
}

void forq__recent_put(struct forq *q, const struct forq_rec *rec, int status, const char *text,
		      size_t len, uint64_t run_ns)
{
	struct forq_recent *r = forq__recent(q, rec->id);
	uint32_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
	/* Hot path: a plain seqlock write, no locked instruction. Two writers on
	 * one entry (ids recent_max apart finishing in the same instant) could
	 * mix their text; this table is a cache of results for lookups, the
	 * results file is the record. A writer that sees another inside skips. */
	if (s & 1)
		return;
	atomic_store_explicit(&r->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	r->id = rec->id;
	r->status = (uint8_t)status;
	/* Deliveries: a dead record's count was already raised by the failing
	 * delivery (forq__fail_delivery); the others count this one now. */
	r->attempts = (uint16_t)(status == FORQ_RESULT_DEAD ? rec->attempts : rec->attempts + 1);
	r->run_ns = run_ns;
	r->wait_ns = 0;
	if (!text)
		len = 0;
	r->truncated = len >= sizeof r->text;
	if (len >= sizeof r->text)
		len = sizeof r->text - 1;
	if (len)
		memcpy(r->text, text, len);
	r->text[len] = '\0';
	atomic_store_explicit(&r->seq, s + 2, memory_order_release);
}

int forq_result_lookup(struct forq *q, uint64_t id, char *text, size_t cap, uint16_t *attempts)
{
	if (!q->h->recent_max)
		return 0;
	struct forq_recent *r = forq__recent(q, id);
	struct forq_recent copy;
	for (int tries = 0; tries < 100; tries++) {
		uint32_t s = atomic_load_explicit(&r->seq, memory_order_acquire);
		if (s & 1)
			continue;
		memcpy(&copy, (const void *)r, sizeof copy);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&r->seq, memory_order_relaxed) != s)
			continue;
		if (copy.id != id || s == 0)
			return 0;
		copy.text[sizeof copy.text - 1] = '\0';
		if (text && cap)
			snprintf(text, cap, "%s", copy.text);
		if (attempts)
			*attempts = copy.attempts;
		return copy.status;
	}
	return 0;
}

static int entry_has(struct forq_entry *e, uint64_t id, uint8_t lo, uint8_t hi)
{
	return e->rec.state >= lo && e->rec.state <= hi && e->rec.id == id;
}

int forq_task_where(struct forq *q, uint64_t id, int *status, unsigned *attempts, char *text,
		    size_t cap)
{
	struct forq_hdr *h = q->h;
	uint16_t att = 0;
	if (text && cap)
		text[0] = '\0';
	if (id == 0 || id >= atomic_load(&h->next_id))
		return FORQ_WHERE_UNKNOWN;
	int st = forq_result_lookup(q, id, text, cap, &att);
	if (st) {
		*status = st;
		*attempts = att;
		return FORQ_WHERE_FINISHED;
	}
	*status = 0;
	for (uint32_t p = 0; p < h->max_procs; p++)
		for (uint32_t i = 0; i < h->batch_max; i++) {
			struct forq_entry *e = forq__inflight(q, p, i);
			if (entry_has(e, id, FORQ_ENTRY_HELD, FORQ_ENTRY_FINISHED)) {
				*attempts = e->rec.attempts + 1u;
				return FORQ_WHERE_RUNNING;
			}
		}
	for (uint32_t i = 0; i < h->lease_max; i++) {
		struct forq_entry *e = forq__entry_at(q, h->lease_off, i);
		if (entry_has(e, id, FORQ_ENTRY_HELD, FORQ_ENTRY_FINISHED)) {
			*attempts = e->rec.attempts + 1u;
			return FORQ_WHERE_RUNNING;
		}
	}
	for (uint32_t i = 0; i < h->retry_max; i++) {
		struct forq_entry *e = retry_entry(q, i);
		if (entry_has(e, id, FORQ_ENTRY_WAITING, FORQ_ENTRY_WAITING)) {
			*attempts = e->rec.attempts;
			return FORQ_WHERE_RETRYING;
		}
	}
	for (uint32_t i = 0; i < h->dead_max; i++) {
		struct forq_entry *e = dead_entry(q, i);
		if (entry_has(e, id, FORQ_ENTRY_DEAD, FORQ_ENTRY_DEAD)) {
			*status = FORQ_RESULT_DEAD;
			*attempts = e->rec.attempts;
			if (text && cap)
				snprintf(text, cap, "%s", e->error);
			return FORQ_WHERE_FINISHED;
		}
	}
	/* The rings, read without their locks: records can be overwritten
	 * under us, so every length is checked before it is followed. */
	for (int ri = 0; ri < FORQ_NRINGS; ri++) {
		struct forq_ring *r = forq__ring(q, ri);
		const uint8_t *arena = forq__arena(q, r);
		uint64_t pos = atomic_load(&r->head), tail = atomic_load(&r->tail);
		while (pos < tail) {
			uint64_t off = pos % r->arena_bytes;
			const struct forq_rec *rec = (const struct forq_rec *)(arena + off);
			uint32_t len = rec->len;
			if (len == FORQ_REC_PAD) {
				pos += r->arena_bytes - off;
				continue;
			}
			if (len > h->max_payload || off + FORQ_REC_SIZE(len) > r->arena_bytes)
				break;
			if (rec->id == id) {
				*attempts = rec->attempts;
				return FORQ_WHERE_PENDING;
			}
			pos += FORQ_REC_SIZE(len);
		}
	}
	return FORQ_WHERE_UNKNOWN;
}

void forq_hists_read(struct forq *q, struct forq_hists *out)
{
	memset(out, 0, sizeof *out);
	for (uint32_t i = 0; i < q->h->max_procs; i++) {
		const struct forq_counters *c = &forq__proc(q, i)->c;
		for (int k = 0; k < FORQ_HIST_BUCKETS; k++) {
			out->wait[k] += atomic_load_explicit(&c->wait_hist[k], memory_order_relaxed);
			out->run[k] += atomic_load_explicit(&c->run_hist[k], memory_order_relaxed);
		}
		out->wait_sum_ns += atomic_load_explicit(&c->wait_sum_ns, memory_order_relaxed);
		out->run_sum_ns += atomic_load_explicit(&c->run_sum_ns, memory_order_relaxed);
		out->full_waits += atomic_load_explicit(&c->full_waits, memory_order_relaxed);
		out->lease_expired += atomic_load_explicit(&c->lease_expired, memory_order_relaxed);
	}
}
