/* durable.c — the journal's side of the rings (forqd --journal, journal/).
 *
 * A journaled queue has a third index per ring, `durable`, between head and
 * tail: records up to it are in forqd's journal. Consumers pop up to durable
 * (forq__ring_limit), never to tail, so no task runs that the journal has
 * not seen; forqd's journal thread reads [durable, tail) without a lock (no
 * consumer pops there and no producer writes there), appends it, and moves
 * durable on with one release store per ring. Producers that want their
 * push on disk (FORQ_F_JOURNAL_SYNC) wait on durable_seq until durable
 * covers the tail they saw after their push; forq_push_batch_async notes
 * that tail instead, and forq_sync waits for it later. Nothing here
 * changes a ring's head or tail, so a process killed anywhere leaves the
 * rings as ring.c's repair expects; a journal thread killed between its
 * write and its store writes the records again (replay keeps one per id).
 *
 * Delayed tasks wait in the waiting table, not a ring: each takes the next
 * sched_seq as it goes in (retry.c), the journal thread writes those above
 * sched_journaled (under the table's lock, with their due time on the wall
 * clock) and then moves that mark; a due one goes to its lane only once
 * the mark covers it, and its producer waits on the same futex word. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "clock.h"
#include "futex.h"
#include "internal.h"

/* A producer with no timeout of its own (0: "never wait for room") still
 * waits this long for the disk. */
#define DURABLE_WAIT_MS 5000

struct durable_arg {
	struct forq_ring *r;
	uint64_t target;
};

static int ring_reached(struct forq *q, const void *arg)
{
	const struct durable_arg *a = arg;
	(void)q;
	return atomic_load_explicit(&a->r->durable, memory_order_acquire) >= a->target;
}

static int sched_reached(struct forq *q, const void *arg)
{
	return atomic_load_explicit(&q->h->sched_journaled, memory_order_acquire) >=
	       *(const uint64_t *)arg;
}

struct journal_wait {
	int (*reached)(struct forq *, const void *);
	const void *arg;
};

static int reached_or_off(struct forq *q, void *arg)
{
	struct journal_wait *w = arg;
	return w->reached(q, w->arg) || !(atomic_load(&q->h->flags) & FORQ_F_JOURNAL_SYNC);
}

/* Waits until reached(q, arg): the journal has written what we pushed. */
static int wait_journal(struct forq *q, int (*reached)(struct forq *, const void *),
			const void *arg, uint64_t deadline)
{
	struct journal_wait w = {reached, arg};
	while (!reached_or_off(q, &w))
		if (forq__sleep_on(q, &q->h->durable_seq, &q->h->durable_sleepers, reached_or_off,
				   &w, deadline))
			return -ETIMEDOUT;
	return reached(q, arg) ? 0 : -ESHUTDOWN; /* else the journal stopped first */
}

static int wait_covered(struct forq *q, struct durable_arg *a, uint64_t deadline)
{
	return wait_journal(q, ring_reached, a, deadline);
}

int forq__durable_wait(struct forq *q, struct forq_ring *r, int timeout_ms)
{
	/* The tail now is at or past the end of our push. */
	struct durable_arg a = {r, atomic_load_explicit(&r->tail, memory_order_acquire)};
	return wait_covered(q, &a, forq__deadline_of(timeout_ms ? timeout_ms : DURABLE_WAIT_MS));
}

static int sync_wanted(struct forq *q)
{
	return atomic_load_explicit(&q->h->flags, memory_order_relaxed) & FORQ_F_JOURNAL_SYNC;
}

int forq__ring_wait(struct forq *q, int ring)
{
	if (!sync_wanted(q))
		return 0;
	if (q->nowait) {
		forq__durable_note(q, ring);
		return 0;
	}
	return forq__durable_wait(q, forq__ring(q, ring), 0);
}

int forq__sched_wait(struct forq *q, uint64_t seq)
{
	if (!seq || !sync_wanted(q))
		return 0;
	if (q->nowait) {
		q->sched_target = seq > q->sched_target ? seq : q->sched_target;
		return 0;
	}
	return wait_journal(q, sched_reached, &seq, forq__deadline_of(DURABLE_WAIT_MS));
}

void forq_admin_push_nowait(struct forq *q)
{
	q->nowait = 1;
}

int forq_admin_durable_take(struct forq *q, struct forq_durable_ticket *t)
{
	int any = q->sched_target != 0;
	t->sched = q->sched_target;
	q->sched_target = 0;
	for (int i = 0; i < FORQ_NRINGS; i++) {
		any |= q->durable_target[i] != 0;
		t->ring[i] = q->durable_target[i];
		q->durable_target[i] = 0;
	}
	return any && sync_wanted(q);
}

int forq_admin_durable_reached(struct forq *q, const struct forq_durable_ticket *t)
{
	int reached = !t->sched || sched_reached(q, &t->sched);
	for (int i = 0; i < FORQ_NRINGS && reached; i++) {
		struct durable_arg a = {forq__ring(q, i), t->ring[i]};
		reached = !t->ring[i] || ring_reached(q, &a);
	}
	if (reached)
		return 1;
	return sync_wanted(q) ? 0 : -ESHUTDOWN;
}

void forq__durable_note(struct forq *q, int ring)
{
	q->durable_target[ring] = atomic_load_explicit(&forq__ring(q, ring)->tail,
						       memory_order_acquire);
}

int forq_sync(struct forq *q, int timeout_ms)
{
	uint64_t deadline = forq__deadline_of(timeout_ms);
	for (int i = 0; i < FORQ_NRINGS; i++) {
		if (!q->durable_target[i])
			continue;
		struct durable_arg a = {forq__ring(q, i), q->durable_target[i]};
		int r = wait_covered(q, &a, deadline);
		if (r)
			return r;
		q->durable_target[i] = 0;
	}
	return 0;
}

/* A queue not journaled before: its delayed tasks get sequences now, so
 * that the journal writes them too. */
static void sched_number(struct forq *q)
{
	struct forq_hdr *h = q->h;
	if (forq__aux_lock(q))
		return;
	for (uint32_t i = 0; i < h->retry_max; i++) {
		struct forq_entry *e = forq__retry_entry(q, i);
		if (e->rec.state == FORQ_ENTRY_WAITING && (e->rec.flags & FORQ_REC_DELAYED))
			e->aux = atomic_fetch_add(&h->sched_seq, 1) + 1;
	}
	forq__unlock(&h->aux_lock);
}

void forq_admin_journal_begin(struct forq *q, int sync)
{
	if (!(atomic_load(&q->h->flags) & FORQ_F_JOURNAL)) {
		if (atomic_load(&q->h->sched_journaled) > atomic_load(&q->h->sched_seq))
			atomic_store(&q->h->sched_journaled, 0); /* not trusted */
		sched_number(q);
	}
	for (int i = 0; i < FORQ_NRINGS; i++) {
		struct forq_ring *r = forq__ring(q, i);
		uint64_t d = atomic_load(&r->durable), h = atomic_load(&r->head);
		/* A queue journaled before keeps its mark (what it has not
		 * written yet is written now); any other starts at its head. */
		if (!(atomic_load(&q->h->flags) & FORQ_F_JOURNAL) || d < h ||
		    d > atomic_load(&r->tail)) {
			atomic_store(&r->durable_count, atomic_load(&r->head_count));
			atomic_store(&r->durable, h);
		}
	}
	if (!sync)
		atomic_fetch_and(&q->h->flags, ~(uint32_t)FORQ_F_JOURNAL_SYNC);
	atomic_fetch_or(&q->h->flags, FORQ_F_JOURNAL | (sync ? FORQ_F_JOURNAL_SYNC : 0));
}

void forq_admin_journal_end(struct forq *q)
{
	atomic_fetch_and(&q->h->flags, ~(uint32_t)(FORQ_F_JOURNAL | FORQ_F_JOURNAL_SYNC));
	forq_admin_journal_wake(q, INT_MAX); /* consumers may take to the tail now */
}

/* What the journal writes of rec: its fields and its key, if it holds one. */
static void journal_task_of(struct forq *q, const struct forq_rec *rec, struct forq_journal_task *t)
{
	t->t = (struct forq_task_info){.id = rec->id, .len = rec->len, .line = forq__rec_line(rec),
				       .attempts = rec->attempts, .prio = rec->prio};
	uint64_t window_ns = 0;
	t->key_len = forq__key_of(q, rec, t->key, &window_ns);
	t->window_ms = window_ns / 1000000u;
	t->due_unix_ms = 0;
}

int forq_admin_journal_sched_scan(struct forq *q, forq_journal_fn fn, void *ctx, uint64_t *upto)
{
	struct forq_hdr *h = q->h;
	uint64_t from = atomic_load(&h->sched_journaled);
	*upto = from;
	if (atomic_load(&h->sched_seq) <= from)
		return 0;
	int r = forq__aux_lock(q), n = 0;
	if (r)
		return r;
	/* Every entry numbered up to hi is in the table now or has gone
	 * (cancelled, purged): none goes to its lane unwritten. */
	uint64_t hi = atomic_load(&h->sched_seq);
	uint64_t mono = clock_mono_ns();
	int64_t real = clock_real_ns();
	for (uint32_t i = 0; i < h->retry_max; i++) {
		struct forq_entry *e = forq__retry_entry(q, i);
		if (e->rec.state != FORQ_ENTRY_WAITING || !(e->rec.flags & FORQ_REC_DELAYED) ||
		    e->aux <= from || e->aux > hi || e->rec.len > h->max_payload)
			continue;
		struct forq_journal_task t;
		journal_task_of(q, &e->rec, &t);
		uint64_t left = e->due_ns > mono ? e->due_ns - mono : 0;
		t.due_unix_ms = ((uint64_t)(real > 0 ? real : 0) + left) / 1000000u;
		if (!t.due_unix_ms)
			t.due_unix_ms = 1;
		fn(ctx, &t, &e->rec + 1);
		n++;
	}
	forq__unlock(&h->aux_lock);
	*upto = hi;
	return n;
}

void forq_admin_journal_sched_publish(struct forq *q, uint64_t upto)
{
	uint64_t at = atomic_load(&q->h->sched_journaled);
	while (at < upto &&
	       !atomic_compare_exchange_weak_explicit(&q->h->sched_journaled, &at, upto,
						      memory_order_release, memory_order_relaxed))
		;
}

int forq_admin_journal_scan(struct forq *q, int ring, uint64_t max_bytes,
			    const struct forq_journal_sink *sink, struct forq_journal_mark *m)
{
	if (ring < 0 || ring >= FORQ_NRINGS)
		return -EINVAL;
	struct forq_ring *r = forq__ring(q, ring);
	const uint8_t *arena = forq__arena(q, r);
	const uint64_t A = r->arena_bytes;
	uint64_t pos = atomic_load_explicit(&r->durable, memory_order_relaxed);
	uint64_t count = atomic_load_explicit(&r->durable_count, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (pos < head) /* consumers took these before the journal began */
		pos = head;
	int n = 0;
	uint64_t start = pos;
	struct forq_journal_plain v[FORQ_JOURNAL_PLAIN_MAX];
	size_t nv = 0;
	uint64_t off = pos % A; /* then kept as pos moves: no division a task */
	const uint32_t max_payload = q->h->max_payload;
	while (pos < tail && pos - start < max_bytes) {
		if (off == A)
			off = 0;
		const struct forq_rec *src = (const struct forq_rec *)(arena + off);
		const uint32_t len = src->len;
		if (len == FORQ_REC_PAD) {
			pos += A - off;
			off = 0;
			continue;
		}
		const uint64_t sz = FORQ_REC_SIZE(len);
		/* Shared memory is not trusted: as a pop would, stop at a
		 * length no push could have written. */
		if (len > max_payload || off + sz > A || pos + sz > tail)
			break;
		/* A task cancelled before the journal saw it is not accepted
		 * (its cancelled result ends it); a keyed task's `line` is its
		 * key slot, which a replay must not take for a tasks-file line. */
		const uint16_t flags = src->flags;
		if (flags & FORQ_REC_CANCELLED) {
			/* not journaled */
		} else if (!(flags & FORQ_REC_KEYED)) {
			struct forq_journal_plain *t = &v[nv++];
			t->id = src->id;
			t->len = len;
			t->line = src->line;
			t->attempts = src->attempts;
			t->prio = src->prio;
			t->payload = src + 1;
			if (nv == FORQ_JOURNAL_PLAIN_MAX) {
				sink->plain(sink->ctx, v, nv);
				nv = 0;
			}
		} else {
			if (nv) /* in ring order */
				sink->plain(sink->ctx, v, nv);
			nv = 0;
			struct forq_journal_task t;
			journal_task_of(q, src, &t);
			sink->task(sink->ctx, &t, src + 1);
		}
		pos += sz;
		off += sz;
		count++;
		n++;
	}
	if (nv)
		sink->plain(sink->ctx, v, nv);
	m->pos = pos;
	m->count = count;
	return n;
}

void forq_admin_journal_publish(struct forq *q, int ring, const struct forq_journal_mark *m)
{
	if (ring < 0 || ring >= FORQ_NRINGS)
		return;
	struct forq_ring *r = forq__ring(q, ring);
	atomic_store_explicit(&r->durable_count, m->count, memory_order_relaxed);
	atomic_store_explicit(&r->durable, m->pos, memory_order_release);
}

void forq_admin_journal_wake(struct forq *q, size_t n)
{
	if (n)
		forq__wake_work(q, n);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&q->h->durable_sleepers, memory_order_relaxed)) {
		atomic_fetch_add(&q->h->durable_seq, 1);
		futex_wake(&q->h->durable_seq, INT_MAX);
	}
}

uint64_t forq_admin_journal_backlog(struct forq *q)
{
	uint64_t n = 0;
	for (int i = 0; i < FORQ_NRINGS; i++) {
		struct forq_ring *r = forq__ring(q, i);
		uint64_t t = atomic_load(&r->tail_count), d = atomic_load(&r->durable_count);
		n += t > d ? t - d : 0;
	}
	uint64_t seq = atomic_load(&q->h->sched_seq), done = atomic_load(&q->h->sched_journaled);
	return n + (seq > done ? seq - done : 0);
}

int forq_admin_push_recovered(struct forq *q, const struct forq_task_info *t, const void *payload)
{
	if ((unsigned)t->prio >= FORQ_NPRIO || t->len > q->h->max_payload || t->id == 0 ||
	    t->attempts > UINT16_MAX)
		return -EINVAL;
	size_t sz = FORQ_REC_SIZE(t->len);
	uint64_t buf[(sizeof(struct forq_rec) + 1024) / 8];
	struct forq_rec *rec = sz <= sizeof buf ? (struct forq_rec *)buf : malloc(sz);
	if (!rec)
		return -ENOMEM;
	memset(rec, 0, sizeof *rec);
	rec->len = t->len;
	rec->prio = (uint8_t)t->prio;
	rec->attempts = (uint16_t)t->attempts;
	rec->id = t->id;
	rec->enq_ns = clock_mono_ns();
	rec->line = t->line;
	memcpy(rec + 1, payload, t->len);
	const struct forq_rec *recs[1] = {rec};
	int r = forq__ring_push(q, FORQ_RING_MAIN(t->prio), 1, NULL, NULL, NULL, recs);
	if ((void *)rec != (void *)buf)
		free(rec);
	if (r == 0) {
		forq_admin_next_id_at_least(q, t->id + 1);
		if (q->me)
			forq__add(&q->me->c.requeued, 1);
		forq__wake_work(q, 1);
	}
	return r;
}

void forq_admin_next_id_at_least(struct forq *q, uint64_t id)
{
	uint64_t next = atomic_load(&q->h->next_id);
	while (next < id && !atomic_compare_exchange_weak(&q->h->next_id, &next, id))
		;
}
