/* wake.c — sleeping and waking on the queue's futex words: consumers wait for
 * work, producers for room, forqd's work watch for tasks on behalf of its
 * loop (forq_admin_work_*). Sleepers register, then re-check, then wait with
 * a timeout, so a lost wake-up costs latency, never progress; the watch,
 * which must not poll, registers apart (FORQ_WORK_WATCHER) and is woken by
 * every push while it is registered. */
#include <errno.h>
#include <limits.h>

#include "clock.h"
#include "futex.h"
#include "internal.h"

/* A sleeper re-checks at least this often, so a lost wake-up costs latency. */
#define WAIT_SLICE_NS (100u * 1000000u)

void forq__wake_work(struct forq *q, size_t n)
{
	/* Pairs with the sleeper's increment-then-check: one of the two sees
	 * the other. */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t s = atomic_load_explicit(&q->h->work_sleepers, memory_order_relaxed);
	if (!s)
		return;
	atomic_fetch_add(&q->h->work_seq, 1);
	/* n consumers for n tasks; a watching forqd besides, not instead. */
	if (s % FORQ_WORK_WATCHER)
		futex_wake_for(&q->h->work_seq, n > INT_MAX ? INT_MAX : (int)n, FUTEX_FOR_SLEEPERS);
	if (s >= FORQ_WORK_WATCHER)
		futex_wake_for(&q->h->work_seq, INT_MAX, FUTEX_FOR_WATCHER);
}

/* A lane has room for a sleeping producer once it is at most half full: the
 * producer then sleeps while half the lane drains, so wake-ups cost one
 * syscall per half lane, not one per batch. */
int forq__ring_half_empty(const struct forq_ring *r)
{
	uint64_t n = atomic_load(&r->tail_count) - atomic_load(&r->head_count);
	uint64_t b = atomic_load(&r->tail) - atomic_load(&r->head);
	return n <= r->cap_tasks / 2 && b <= r->arena_bytes / 2;
}

void forq__wake_space(struct forq *q, const struct forq_ring *r)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&q->h->space_sleepers, memory_order_relaxed) &&
	    (!r || forq__ring_half_empty(r))) {
		atomic_fetch_add(&q->h->space_seq, 1);
		futex_wake(&q->h->space_seq, INT_MAX);
	}
}

uint64_t forq__deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX : clock_mono_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Sleeps on a wake-up word until `ready(q, arg)` or the deadline. Returns 0
 * when ready may be true, -ETIMEDOUT. */
int forq__sleep_on(struct forq *q, _Atomic uint32_t *seq, _Atomic uint32_t *sleepers,
		   int (*ready)(struct forq *, void *), void *arg, uint64_t deadline)
{
	uint32_t s = atomic_load(seq);
	atomic_fetch_add(sleepers, 1);
	int r = 0;
	if (!ready(q, arg)) {
		uint64_t now = clock_mono_ns();
		if (now >= deadline)
			r = -ETIMEDOUT;
		else
			futex_wait_for(seq, s,
				       deadline - now < WAIT_SLICE_NS ? deadline - now : WAIT_SLICE_NS,
				       FUTEX_FOR_SLEEPERS);
	}
	atomic_fetch_sub(sleepers, 1);
	return r;
}


/* ---- work wake-ups for a waiter outside the pop path (forq_admin.h) ---- */

void forq_admin_work_watch(struct forq *q)
{
	atomic_fetch_add(&q->h->work_sleepers, FORQ_WORK_WATCHER);
	/* Pairs with forq__wake_work's fence: a push after this sees us. */
	atomic_thread_fence(memory_order_seq_cst);
}

void forq_admin_work_unwatch(struct forq *q)
{
	atomic_fetch_sub(&q->h->work_sleepers, FORQ_WORK_WATCHER);
}

uint32_t forq_admin_work_seq(struct forq *q)
{
	return atomic_load(&q->h->work_seq);
}

int forq_admin_work_wait(struct forq *q, uint32_t seq, int timeout_ms)
{
	uint64_t ns = timeout_ms < 0 ? UINT64_MAX : (uint64_t)timeout_ms * 1000000u;
	if (atomic_load(&q->h->work_seq) != seq)
		return 0;
	return futex_wait_for(&q->h->work_seq, seq, ns, FUTEX_FOR_WATCHER);
}

void forq_admin_work_kick(struct forq *q)
{
	atomic_fetch_add(&q->h->work_seq, 1);
	futex_wake(&q->h->work_seq, INT_MAX);
}
