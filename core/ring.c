/* ring.c — a byte ring of task records with a push lock and a pop lock.
 *
 * Hot path. Producers hold the push lock while they write records beyond the
 * tail and then publish them all with one release store of `tail`; consumers
 * hold the pop lock while they copy records from the head into their own
 * in-flight entries and then free them all with one release store of `head`.
 * So a batch costs one lock, one index store and no syscall, and a process
 * killed inside either step leaves nothing half-visible: the robust lock
 * hands the next taker EOWNERDEAD and the repair functions below finish or
 * undo the step (see layout.h for the pending notes they read).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "failpoint.h"
#include "internal.h"

int forq__ring_init(struct forq_ring *r, uint64_t arena_off, uint64_t arena_bytes, uint64_t cap)
{
	int e;
	if ((e = forq__mutex_init(&r->push_lock)) || (e = forq__mutex_init(&r->pop_lock)))
		return e;
	r->arena_off = arena_off;
	r->arena_bytes = arena_bytes;
	r->cap_tasks = cap;
	return 0;
}

void forq__ring_repair_push(struct forq *q, void *ring)
{
	(void)q;
	struct forq_ring *r = ring;
	/* Records past the tail were never visible; only the count can lag. */
	if (r->push_pend && atomic_load(&r->tail) == r->push_pend_tail)
		atomic_store(&r->tail_count, r->push_pend_count);
	r->push_pend = 0;
	r->push_holder = 0;
}

/* Records flagged CANCELLED between head and tail, counted again. */
static uint64_t count_cancelled(struct forq *q, struct forq_ring *r)
{
	const uint8_t *arena = forq__arena(q, r);
	uint64_t pos = atomic_load(&r->head), tail = atomic_load(&r->tail), n = 0;
	while (pos < tail) {
		uint64_t off = pos % r->arena_bytes;
		const struct forq_rec *rec = (const struct forq_rec *)(arena + off);
		if (rec->len == FORQ_REC_PAD) {
			pos += r->arena_bytes - off;
			continue;
		}
		if (rec->len > q->h->max_payload || off + FORQ_REC_SIZE(rec->len) > r->arena_bytes)
			break;
		n += !!(rec->flags & FORQ_REC_CANCELLED);
		pos += FORQ_REC_SIZE(rec->len);
	}
	return n;
}

void forq__ring_repair_pop(struct forq *q, void *ring)
{
	struct forq_ring *r = ring;
	uint32_t p = r->pop_pend_proc;
	uint64_t c = r->pop_pend_cancel;
	if (p && p <= q->h->max_procs && c) {
		/* A cancel: its entry holds the task iff the record is flagged. */
		const struct forq_rec *rec =
			c <= r->arena_bytes - sizeof *rec
				? (const struct forq_rec *)(forq__arena(q, r) + c - 1)
				: NULL;
		if (!rec || !(rec->flags & FORQ_REC_CANCELLED))
			forq__entry_clear(q, forq__inflight(q, p - 1, 0));
	} else if (p && p <= q->h->max_procs) {
		if (atomic_load(&r->head) == r->pop_pend_head) {
			/* The pop took effect: its entries are the holder's now,
			 * and the supervisor gives them back when it reaps it. */
			atomic_store(&r->head_count, r->pop_pend_count);
		} else {
			/* It did not: the records are still in the ring, so the
			 * copies must not count. */
			for (uint32_t i = 0; i < r->pop_pend_max && i < q->h->batch_max; i++)
				forq__entry_clear(q, forq__inflight(q, p - 1, i));
		}
	}
	r->cancelled = count_cancelled(q, r);
	r->pop_pend_cancel = 0;
	r->pop_pend_proc = 0;
	r->pop_holder = 0;
}

/* Bytes the records would take from `tail`, padding at the wrap included. */
static uint64_t span(uint64_t tail, uint64_t arena, const uint32_t *lens, size_t n)
{
	uint64_t pos = tail;
	for (size_t i = 0; i < n; i++) {
		uint64_t sz = FORQ_REC_SIZE(lens[i]);
		uint64_t off = pos % arena;
		if (off + sz > arena)
			pos += arena - off;
		pos += sz;
	}
	return pos - tail;
}

/* Copies a payload into the ring. Hot path: small payloads are moved with
 * one or two word loads, no call. */
static inline void copy_payload(uint8_t *dst, const uint8_t *src, uint32_t len)
{
	uint64_t a, b;
	if (len >= 8 && len <= 16) {
		memcpy(&a, src, 8);
		memcpy(&b, src + len - 8, 8);
		memcpy(dst, &a, 8);
		memcpy(dst + len - 8, &b, 8);
	} else if (len < 8) {
		for (uint32_t i = 0; i < len; i++)
			dst[i] = src[i];
	} else {
		memcpy(dst, src, len);
	}
}

int forq__ring_push(struct forq *q, int ri, size_t n, const struct forq_msg *msgs,
		    const struct forq_rec *tmpl, const uint32_t *lines,
		    const struct forq_rec *const *recs)
{
	struct forq_ring *r = forq__ring(q, ri);
	uint8_t *arena = forq__arena(q, r);
	const uint64_t A = r->arena_bytes;
	uint32_t lens[FORQ_PUSH_BATCH_MAX];
	uint64_t sum = 0;
	int e;

	if (n == 0 || n > sizeof lens / sizeof lens[0] || n > r->cap_tasks)
		return -EINVAL;
	if (msgs) {
		for (size_t i = 0; i < n; i++) {
			lens[i] = msgs[i].len;
			sum += FORQ_REC_SIZE(lens[i]);
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			lens[i] = recs[i]->len;
			sum += FORQ_REC_SIZE(lens[i]);
		}
	}
	/* Worst case one pad of less than a record: beyond that it never fits. */
	if (sum + FORQ_REC_SIZE(q->h->max_payload) > A)
		return -EINVAL;

	if ((e = forq__lock(q, &r->push_lock, forq__ring_repair_push, r)))
		return e;
	r->push_holder = q->me_idx + 1;
	FORQ_FAILPOINT("push.locked");
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t tc = atomic_load_explicit(&r->tail_count, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t hc = atomic_load_explicit(&r->head_count, memory_order_relaxed);
	uint64_t off = tail % A; /* one division a batch, not one a record */
	uint64_t need = off + sum <= A ? sum : span(tail, A, lens, n);
	/* A sparse ring also keeps the head's page whole, so that what it
	 * reserves never reaches a page that still holds unread records. */
	if (tail - head + need > A || tc - hc + n > r->cap_tasks ||
	    (q->sparse && ((tail + need - FORQ_PAGE_DOWN(head) > A) ||
			   (e = forq__ring_back(q, r, head, tail + need))))) {
		r->push_holder = 0;
		forq__unlock(&r->push_lock);
		return -EAGAIN;
	}
	r->push_pend_tail = tail + need;
	r->push_pend_count = tc + n;
	r->push_pend = 1;

	for (size_t i = 0; i < n; i++) {
		uint64_t sz = FORQ_REC_SIZE(lens[i]);
		if (off + sz > A) {
			((struct forq_rec *)(arena + off))->len = FORQ_REC_PAD;
			off = 0;
		}
		struct forq_rec *dst = (struct forq_rec *)(arena + off);
		if (msgs) {
			*dst = *tmpl;
			dst->len = lens[i];
			dst->id = tmpl->id + i;
			if (lines)
				dst->line = lines[i];
			copy_payload((uint8_t *)(dst + 1), msgs[i].payload, lens[i]);
		} else {
			forq__rec_copy(dst, recs[i], lens[i]);
			dst->state = 0;
		}
		off += sz;
		if (off == A)
			off = 0;
		FORQ_FAILPOINT("push.copy");
	}
	FORQ_FAILPOINT("push.before_tail");
	atomic_store_explicit(&r->tail, tail + need, memory_order_release);
	FORQ_FAILPOINT("push.after_tail");
	atomic_store_explicit(&r->tail_count, tc + n, memory_order_release);
	r->push_pend = 0;
	r->push_holder = 0;
	forq__unlock(&r->push_lock);
	return 0;
}

int forq__ring_pop(struct forq *q, int ri, uint32_t max, uint8_t state)
{
	struct forq_ring *r = forq__ring(q, ri);
	uint8_t *arena = forq__arena(q, r);
	const uint64_t A = r->arena_bytes;
	int e;

	if ((e = forq__lock(q, &r->pop_lock, forq__ring_repair_pop, r)))
		return e;
	r->pop_holder = q->me_idx + 1;
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t hc = atomic_load_explicit(&r->head_count, memory_order_relaxed);
	uint64_t tail = forq__ring_limit(q, r); /* journaled: durable */
	r->pop_pend_max = max;
	r->pop_pend_head = UINT64_MAX; /* "not yet": no head can equal it */
	r->pop_pend_proc = q->me_idx + 1;
	FORQ_FAILPOINT("pop.locked");

	uint32_t n = 0, skipped = 0;
	uint64_t off = head % A; /* one division a batch */
	uint8_t *entry = (uint8_t *)forq__inflight(q, q->me_idx, 0);
	while (head < tail && n < max) {
		const struct forq_rec *src = (const struct forq_rec *)(arena + off);
		if (src->len == FORQ_REC_PAD) {
			head += A - off;
			off = 0;
			continue;
		}
		uint64_t sz = FORQ_REC_SIZE(src->len);
		/* The object is shared with other processes: never follow a
		 * length that could not have been written by a push. */
		if (src->len > q->h->max_payload || off + sz > A || head + sz > tail)
			break;
		if (src->flags & FORQ_REC_CANCELLED) {
			/* Its cancel wrote its result: passed over, not delivered. */
			head += sz;
			off = off + sz == A ? 0 : off + sz;
			skipped++;
			continue;
		}
		struct forq_entry *e = (struct forq_entry *)(entry + (size_t)n * q->entry_size);
		if (forq__entry_back(q, e, src->len, FORQ_KEEP_TAKE))
			break; /* /dev/shm is full: it stays queued */
		forq__rec_copy(&e->rec, src, src->len);
		e->rec.state = state;
		head += sz;
		off += sz;
		if (off == A)
			off = 0;
		n++;
		FORQ_FAILPOINT("pop.copy");
	}
	r->pop_pend_head = head;
	r->pop_pend_count = hc + n + skipped;
	atomic_store_explicit(&r->head, head, memory_order_release);
	FORQ_FAILPOINT("pop.after_head");
	atomic_store_explicit(&r->head_count, hc + n + skipped, memory_order_release);
	if (skipped) /* a death before this is repaired by a recount */
		r->cancelled = r->cancelled > skipped ? r->cancelled - skipped : 0;
	r->pop_pend_proc = 0;
	r->pop_holder = 0;
	forq__unlock(&r->pop_lock);
	return (int)n;
}
