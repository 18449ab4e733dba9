/* keys.c — unique keys: a push under a key that a live task of the queue
 * holds returns that task instead of a new one.
 *
 * The table is open-addressed (linear probing, at most KEY_PROBES slots a
 * key) under keys_lock, which a keyed push holds across its push so that
 * two producers of one key cannot both get in. A slot is never emptied: a
 * slot whose task ended more than its window ago is free for another key,
 * so probe chains stay whole. The task carries its slot (FORQ_REC_KEYED,
 * `line` = slot + 1), and whoever records its final result marks the slot
 * ended (forq__key_release, from forq__recent_put): no scan, no lock.
 *
 * A task replayed from forqd's journal takes its key again
 * (forq_admin_push_recovered_task, with a delayed one's rest of delay).
 *
 * Crash safety: the task is pushed before its slot names it, so a producer
 * killed in between leaves a task without a key (a duplicate may follow),
 * never a key without a task; a slot being written is marked free first.
 */
#include <errno.h>
#include <string.h>

#include "clock.h"
#include "internal.h"

#define KEY_PROBES 64

_Static_assert(sizeof(((struct forq_key *)0)->key) == FORQ_KEY_MAX, "FORQ_KEY_MAX is the slot");

static int held(const struct forq_key *e, uint64_t now)
{
	uint64_t done = atomic_load_explicit(&e->done_ns, memory_order_acquire);
	return atomic_load(&e->id) != 0 && (done == 0 || (done > 1 && now < done + e->window_ns));
}

/* Pushes rec (its id set) with payload (keys_lock held): to its lane now,
 * or to the waiting table after delay_ms (*seq: its journal sequence). */
static int push_keyed(struct forq *q, struct forq_rec *rec, const void *payload, size_t len,
		      uint64_t delay_ms, uint64_t *seq)
{
	if (delay_ms)
		return forq__push_delayed_rec(q, rec, payload, len, delay_ms, seq);
	struct forq_msg m = {payload, (uint32_t)len};
	int r = forq__ring_push(q, FORQ_RING_MAIN(rec->prio), 1, &m, rec, NULL, NULL);
	if (r == 0) {
		forq__add(&q->me->c.enqueued[rec->prio], 1);
		forq__wake_work(q, 1);
	}
	return r;
}

/* Pushes rec under key (keys_lock held across the push), to its lane or
 * after delay_ms (*seq as forq__delayed_add's); a rec without an id gets
 * the next one. *holder: the id of the live task that holds the key
 * (nothing pushed), else 0. 0, -EAGAIN (a full lane, waiting table or key
 * table) or another push error. */
static int push_under_key(struct forq *q, struct forq_rec *rec, const void *payload, size_t len,
			  const char *key, size_t key_len, uint64_t window_ms, uint64_t delay_ms,
			  uint64_t *seq, uint64_t *holder)
{
	struct forq_hdr *h = q->h;
	int r = forq__lock(q, &h->keys_lock, NULL, NULL);
	if (r)
		return r;
	uint64_t hash = forq__key_hash(key, key_len), now = clock_mono_ns();
	struct forq_key *free_slot = NULL;
	uint32_t mask = h->keys_max - 1, i = (uint32_t)hash & mask;
	*holder = 0;
	r = -EAGAIN; /* no slot within reach: the table is too full */
	for (int k = 0; k < KEY_PROBES && k <= (int)mask; k++, i = (i + 1) & mask) {
		struct forq_key *e = forq__key_slot(q, i);
		int used = atomic_load(&e->id) != 0;
		int same = used && e->hash == hash && e->len == key_len &&
			   memcmp(e->key, key, key_len) == 0;
		if (same && held(e, now)) {
			*holder = atomic_load(&e->id);
			r = 0;
			goto out;
		}
		if (same || (!free_slot && (!used || !held(e, now))))
			free_slot = e;
		if (same || !used)
			break; /* the key is nowhere further */
	}
	if (!free_slot)
		goto out;
	uint32_t slot = (uint32_t)(free_slot - forq__key_slot(q, 0));
	rec->flags |= FORQ_REC_KEYED;
	rec->line = slot + 1;
	if (!rec->id)
		rec->id = atomic_fetch_add_explicit(&h->next_id, 1, memory_order_relaxed);
	/* The slot names the task before anyone can take it (its end may come
	 * at once), free (done_ns 1) until the push has worked. */
	atomic_store(&free_slot->done_ns, 1);
	free_slot->hash = hash;
	free_slot->len = (uint16_t)key_len;
	memcpy(free_slot->key, key, key_len);
	free_slot->window_ns = window_ms * 1000000u;
	atomic_store(&free_slot->id, rec->id);
	if ((r = push_keyed(q, rec, payload, len, delay_ms, seq)))
		goto out;
	uint64_t writing = 1;
	atomic_compare_exchange_strong(&free_slot->done_ns, &writing, 0); /* unless it ended */
out:
	forq__unlock(&h->keys_lock);
	return r;
}

int forq_push_unique(struct forq *q, enum forq_prio prio, const void *payload, size_t len,
		     const char *key, size_t key_len, uint64_t window_ms, uint64_t delay_ms,
		     uint64_t *id, int *dup)
{
	if (!key || key_len == 0 || key_len > FORQ_KEY_MAX || window_ms > FORQ_DELAY_MAX_MS)
		return -EINVAL;
	int r = forq__check_one_push(q, (int)prio, payload, len, delay_ms);
	if (r)
		return r;
	struct forq_rec rec = {.prio = (uint8_t)prio, .enq_ns = clock_mono_ns()};
	uint64_t seq = 0, holder;
	if ((r = push_under_key(q, &rec, payload, len, key, key_len, window_ms, delay_ms, &seq,
				&holder)))
		return r;
	*dup = holder != 0;
	*id = holder ? holder : rec.id;
	if (holder)
		return 0;
	/* With --fsync always, on disk before the id is given (the key's lock
	 * is not held for the wait). */
	return delay_ms ? forq__sched_wait(q, seq)
			: forq__ring_wait(q, FORQ_RING_MAIN(rec.prio));
}

int forq_admin_push_recovered_task(struct forq *q, const struct forq_journal_task *jt,
				   const void *payload)
{
	const struct forq_task_info *t = &jt->t;
	uint64_t delay_ms = 0;
	if (jt->due_unix_ms) {
		uint64_t now_ms = (uint64_t)clock_real_ns() / 1000000u;
		delay_ms = jt->due_unix_ms > now_ms ? jt->due_unix_ms - now_ms : 0;
		delay_ms = delay_ms < FORQ_DELAY_MAX_MS ? delay_ms : FORQ_DELAY_MAX_MS;
	}
	if (!jt->key_len && !delay_ms)
		return forq_admin_push_recovered(q, t, payload);
	if ((unsigned)t->prio >= FORQ_NPRIO || t->len > q->h->max_payload || t->id == 0 ||
	    t->attempts > UINT16_MAX || jt->key_len > FORQ_KEY_MAX || !q->me)
		return -EINVAL;
	struct forq_rec rec = {.prio = (uint8_t)t->prio, .attempts = (uint16_t)t->attempts,
			       .id = t->id, .enq_ns = clock_mono_ns(), .line = t->line};
	uint64_t holder = 0, window_ms = jt->window_ms;
	int r = 0;
	if (jt->key_len)
		r = push_under_key(q, &rec, payload, t->len, jt->key, jt->key_len,
				   window_ms < FORQ_DELAY_MAX_MS ? window_ms : FORQ_DELAY_MAX_MS,
				   delay_ms, NULL, &holder);
	/* No key, or one a live task holds already: queued without it. */
	if (!r && (!jt->key_len || holder))
		r = delay_ms ? forq__push_delayed_rec(q, &rec, payload, t->len, delay_ms, NULL)
			     : forq_admin_push_recovered(q, t, payload);
	if (r == 0)
		forq_admin_next_id_at_least(q, t->id + 1);
	return r;
}
