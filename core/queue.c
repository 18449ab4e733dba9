/* queue.c — push, pop and finish: the libforq calls producers and consumers use. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forq_admin.h"
#include "clock.h"
#include "cpu.h"
#include "failpoint.h"
#include "futex.h"
#include "internal.h"

/* Before sleeping, a waiter spins (cheap, no syscall) and then yields, so a
 * task that arrives within ~50 us costs no futex wake-up (~15 us and more on
 * a VM); an idle consumer pays this once per 200 ms pop timeout. */
#define SPIN_NS 20000u
#define YIELD_NS 50000u
#define SPIN_CHECKS 64
#define YIELD_CHECKS 16

static const char *const prio_names[] = {"high", "normal", "low"};

const char *forq_prio_name(enum forq_prio p)
{
	return (unsigned)p < FORQ_NPRIO ? prio_names[p] : "?";
}

int forq_prio_parse(const char *s)
{
	for (int i = 0; i < FORQ_NPRIO; i++)
		if (strcmp(s, prio_names[i]) == 0)
			return i;
	return -EINVAL;
}

static int check_push(struct forq *q, int prio, const struct forq_msg *msgs, size_t n)
{
	if ((unsigned)prio >= FORQ_NPRIO || n == 0 || n > FORQ_PUSH_BATCH_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (msgs[i].len > q->h->max_payload)
			return -EMSGSIZE;
	if (!(atomic_load_explicit(&q->h->flags, memory_order_relaxed) & FORQ_F_ACCEPTING))
		return -ESHUTDOWN;
	return 0;
}

static int ring_half_empty(struct forq *q, void *ring)
{
	return forq__ring_half_empty(ring) || !(atomic_load(&q->h->flags) & FORQ_F_ACCEPTING);
}

static int ring_has_room(struct forq_ring *r, size_t n)
{
	uint64_t used = atomic_load(&r->tail_count) - atomic_load(&r->head_count);
	return used + n <= r->cap_tasks;
}

static int push_lines(struct forq *q, int prio, const struct forq_msg *msgs, const uint32_t *lines,
		      uint16_t attempts, size_t n, int timeout_ms, uint64_t *ids, int wait_durable)
{
	int r = check_push(q, prio, msgs, n);
	if (r)
		return r;
	if (!q->me)
		return -EPERM;
	struct forq_rec tmpl = {.prio = (uint8_t)prio, .enq_ns = clock_mono_ns(),
				.attempts = attempts};
	tmpl.flags = lines ? FORQ_REC_FROM_FILE : 0;
	tmpl.id = atomic_fetch_add_explicit(&q->h->next_id, n, memory_order_relaxed);
	struct forq_ring *ring = forq__ring(q, FORQ_RING_MAIN(prio));
	uint64_t deadline = 0;
	int round = 0;
	for (;;) {
		r = forq__ring_push(q, FORQ_RING_MAIN(prio), n, msgs, &tmpl, lines, NULL);
		if (r != -EAGAIN)
			break;
		if (timeout_ms == 0)
			return -EAGAIN;
		if (!round++) {
			deadline = forq__deadline_of(timeout_ms);
			forq__add(&q->me->c.full_waits, 1);
		}
		if (!(atomic_load(&q->h->flags) & FORQ_F_ACCEPTING))
			return -ESHUTDOWN;
		/* Full: spin while consumers are likely to free room soon, then
		 * sleep until the lane is half empty. */
		if (round < SPIN_CHECKS) {
			while (!ring_has_room(ring, n) && round++ < SPIN_CHECKS)
				cpu_relax();
			continue;
		}
		if (round < SPIN_CHECKS + YIELD_CHECKS) {
			sched_yield();
			continue;
		}
		if (forq__sleep_on(q, &q->h->space_seq, &q->h->space_sleepers, ring_half_empty, ring,
			     deadline))
			return -EAGAIN;
	}
	if (r)
		return r;
	forq__add(&q->me->c.enqueued[prio], n);
	forq__wake_work(q, n);
	if (ids)
		for (size_t i = 0; i < n; i++)
			ids[i] = tmpl.id + i;
	if (atomic_load_explicit(&q->h->flags, memory_order_relaxed) & FORQ_F_JOURNAL_SYNC) {
		if (wait_durable && !q->nowait)
			return forq__durable_wait(q, ring, timeout_ms);
		forq__durable_note(q, FORQ_RING_MAIN(prio));
	}
	return 0;
}

int forq__push_lines(struct forq *q, int prio, const struct forq_msg *msgs, const uint32_t *lines,
		     size_t n, int timeout_ms, uint64_t *ids)
{
	return push_lines(q, prio, msgs, lines, 0, n, timeout_ms, ids, 1);
}

int forq_admin_push_redelivered(struct forq *q, int prio, const struct forq_msg *msgs, size_t n,
				unsigned attempts, int timeout_ms, uint64_t *ids)
{
	uint16_t a = attempts < UINT16_MAX ? (uint16_t)attempts : UINT16_MAX;
	return push_lines(q, prio, msgs, NULL, a, n, timeout_ms, ids, 1);
}

int forq_push_batch_async(struct forq *q, enum forq_prio prio, const struct forq_msg *msgs,
			  size_t n, int timeout_ms, uint64_t *ids)
{
	return push_lines(q, (int)prio, msgs, NULL, 0, n, timeout_ms, ids, 0);
}

int forq_push_batch(struct forq *q, enum forq_prio prio, const struct forq_msg *msgs, size_t n,
		    int timeout_ms, uint64_t *ids)
{
	return forq__push_lines(q, (int)prio, msgs, NULL, n, timeout_ms, ids);
}

int forq_push(struct forq *q, enum forq_prio prio, const void *payload, size_t len, int timeout_ms,
	      uint64_t *id)
{
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	struct forq_msg m = {payload, (uint32_t)len};
	return forq_push_batch(q, prio, &m, 1, timeout_ms, id);
}

int forq__check_one_push(struct forq *q, int prio, const void *payload, size_t len,
			 uint64_t delay_ms)
{
	if ((unsigned)prio >= FORQ_NPRIO || (len && !payload) || delay_ms > FORQ_DELAY_MAX_MS)
		return -EINVAL;
	if (len > q->h->max_payload)
		return -EMSGSIZE;
	if (!q->me)
		return -EPERM;
	if (!(atomic_load(&q->h->flags) & FORQ_F_ACCEPTING))
		return -ESHUTDOWN;
	return 0;
}

int forq__push_delayed_rec(struct forq *q, const struct forq_rec *tmpl, const void *payload,
			   size_t len, uint64_t delay_ms, uint64_t *seq)
{
	struct forq_rec *rec = malloc(sizeof *rec + len + 1);
	if (!rec)
		return -ENOMEM;
	*rec = *tmpl;
	rec->len = (uint32_t)len;
	rec->flags |= FORQ_REC_DELAYED;
	if (len)
		memcpy(rec + 1, payload, len);
	int r = forq__delayed_add(q, rec, rec->enq_ns + delay_ms * 1000000u, seq);
	if (r == 0) {
		forq__add(&q->me->c.enqueued[forq__lane(rec->prio)], 1);
		/* An idle forqd watches the work word: it wakes, and then looks
		 * at the waiting table until this one is due. */
		forq__wake_work(q, 1);
	}
	free(rec);
	return r == -ENOSPC ? -EAGAIN : r;
}

int forq_push_delayed(struct forq *q, enum forq_prio prio, const void *payload, size_t len,
		      uint64_t delay_ms, uint64_t *id)
{
	struct forq_hdr *h = q->h;
	if (delay_ms == 0)
		return forq_push(q, prio, payload, len, 0, id);
	int r = forq__check_one_push(q, (int)prio, payload, len, delay_ms);
	if (r)
		return r;
	struct forq_rec tmpl = {.prio = (uint8_t)prio, .enq_ns = clock_mono_ns()};
	tmpl.id = atomic_fetch_add_explicit(&h->next_id, 1, memory_order_relaxed);
	uint64_t seq = 0;
	r = forq__push_delayed_rec(q, &tmpl, payload, len, delay_ms, &seq);
	if (r)
		return r;
	if (id)
		*id = tmpl.id;
	return forq__sched_wait(q, seq); /* --fsync always: on disk first */
}

static int has_work(struct forq *q)
{
	for (int r = 0; r < FORQ_NRINGS; r++)
		if (!forq__ring_idle(q, forq__ring(q, r)))
			return 1;
	return 0;
}

/* A paused queue has no work for consumers: they sleep until resume moves
 * the work word (or the 100 ms re-check). */
static int has_work_or_stop(struct forq *q, void *arg)
{
	(void)arg;
	uint32_t f = atomic_load(&q->h->flags);
	return (has_work(q) && !(f & FORQ_F_PAUSED)) || (f & FORQ_F_STOP);
}

/* Where a consumer goes to pop a batch: one load of the flags word (read
 * for FORQ_F_STOP anyway) is all that pause costs it. */
static inline int paused(struct forq *q)
{
	return atomic_load_explicit(&q->h->flags, memory_order_relaxed) & FORQ_F_PAUSED;
}

/* Frees the entries of the last pop whose results the caller has written. */
static void release_batch(struct forq *q)
{
	for (uint32_t i = 0; i < q->batch_n; i++)
		forq__entry_clear(q, forq__inflight(q, q->me_idx, i));
	q->batch_n = 0;
}

/* Tries every ring, highest priority first, front ring before main ring.
 * Returns how many it popped, 0 if all are empty, -EAGAIN (with *rate_wait)
 * when tasks wait but the start rate limit says not yet. */
static int pop_once(struct forq *q, uint32_t max, uint64_t *rate_wait)
{
	for (int k = 0; k < FORQ_NRINGS; k++) {
		/* k ^ 1: a lane's front ring (2p + 1) before its main ring (2p).
		 * Main first would starve given-back tasks behind a backlog until
		 * the front ring fills and a repairing forqd waits forever. */
		int r = k ^ 1;
		struct forq_ring *ring = forq__ring(q, r);
		if (forq__ring_idle(q, ring))
			continue;
		int n = forq__ring_pop_started(q, r, max, rate_wait);
		if (n > 0) {
			forq__wake_space(q, ring);
			return n;
		}
		if (n < 0)
			return n;
	}
	return 0;
}

/* Waits out the start rate limit (at most until the deadline, in steps that
 * see a stop). Returns 0 to try again, or -ESHUTDOWN / -ETIMEDOUT. */
static int rate_pause(struct forq *q, uint64_t wait_ns, int timeout_ms, uint64_t *deadline)
{
	if (atomic_load(&q->h->flags) & FORQ_F_STOP)
		return -ESHUTDOWN;
	if (timeout_ms == 0)
		return -ETIMEDOUT;
	uint64_t now = clock_mono_ns();
	if (!*deadline)
		*deadline = forq__deadline_of(timeout_ms);
	if (now >= *deadline)
		return -ETIMEDOUT;
	if (wait_ns > *deadline - now)
		wait_ns = *deadline - now;
	if (wait_ns > 50000000u)
		wait_ns = 50000000u;
	struct timespec ts = {0, (long)wait_ns};
	nanosleep(&ts, NULL);
	forq__add(&q->me->c.rate_wait_ns, clock_mono_ns() - now);
	return 0;
}

int forq_pop(struct forq *q, struct forq_task *task, int timeout_ms)
{
	int n = forq_pop_batch(q, task, 1, timeout_ms);
	return n < 0 ? n : 0;
}

int forq_pop_batch(struct forq *q, struct forq_task *tasks, size_t max, int timeout_ms)
{
	if (!q->me)
		return -EPERM;
	if (max == 0)
		return -EINVAL;
	if (q->batch_open)
		return -EBUSY;
	release_batch(q);
	if (max > q->h->batch_max)
		max = q->h->batch_max;

	uint64_t deadline = 0, t0 = 0, rate_wait = 0;
	int n, round = 0;
	while ((n = paused(q) ? 0 : pop_once(q, (uint32_t)max, &rate_wait)) <= 0) {
		if (n == -EAGAIN) {
			if ((n = rate_pause(q, rate_wait, timeout_ms, &deadline)))
				return n;
			continue;
		}
		if (n < 0)
			return n;
		if (atomic_load(&q->h->flags) & FORQ_F_STOP)
			return -ESHUTDOWN;
		if (timeout_ms == 0)
			return -ETIMEDOUT;
		/* Spin, then yield, then sleep: a busy queue never pays a
		 * syscall, an idle one costs no CPU. The clock is read once
		 * every SPIN_CHECKS rounds. */
		if (++round % SPIN_CHECKS) {
			cpu_relax();
			continue;
		}
		uint64_t now = clock_mono_ns();
		if (!t0)
			t0 = now;
		if (now - t0 < SPIN_NS)
			continue;
		if (now - t0 < YIELD_NS) {
			sched_yield();
			continue;
		}
		if (!deadline)
			deadline = forq__deadline_of(timeout_ms);
		if (forq__sleep_on(q, &q->h->work_seq, &q->h->work_sleepers, has_work_or_stop, NULL,
			     deadline))
			return -ETIMEDOUT;
	}

	uint64_t now = clock_mono_ns();
	struct forq_counters *c = &q->me->c;
	uint64_t wsum = 0, lanes[FORQ_NPRIO] = {0};
	for (int i = 0; i < n; i++) {
		struct forq_entry *e = forq__inflight(q, q->me_idx, (uint32_t)i);
		lanes[forq__lane(e->rec.prio)]++;
		struct forq_task *t = &tasks[i];
		t->id = e->rec.id;
		t->payload = (const void *)(&e->rec + 1);
		t->len = e->rec.len;
		t->prio = e->rec.prio;
		t->attempts = e->rec.attempts;
		t->line = forq__rec_line(&e->rec);
		t->enqueued_ns = e->rec.enq_ns;
		t->slot = (uint32_t)i;
		t->entry = e;
		uint64_t w = now > e->rec.enq_ns ? now - e->rec.enq_ns : 0;
		wsum += w;
		forq__add(&c->wait_hist[forq__hist_bucket(w)], 1);
	}
	forq__add(&c->wait_sum_ns, wsum);
	forq__add_lanes(c->started, lanes);
	q->batch_n = q->batch_open = (uint32_t)n;
	return n;
}

void forq_task_begin(struct forq *q, const struct forq_task *t)
{
	struct forq_entry *e = t->entry;
	e->rec.state = FORQ_ENTRY_RUNNING;
	atomic_store_explicit(&q->me->current_id, t->id, memory_order_relaxed);
	FORQ_FAILPOINT("task.begin");
}

/* The wait before delivery number attempts + 1: backoff_ms after the first
 * failure, doubled after each one after it, at most an hour. */
static uint64_t backoff_ns(struct forq *q, unsigned attempts)
{
	unsigned shift = attempts < 1 ? 0 : attempts - 1 > 20 ? 20 : attempts - 1;
	uint64_t ms = (uint64_t)q->h->backoff_ms << shift;
	if (ms > 3600000)
		ms = 3600000;
	return ms * 1000000u;
}

/* A delivery lost with its holder (a crash, an expired lease): failed at
 * once, no backoff; a task that this makes dead gets its final result through
 * fn and the recent table. Returns 1 if it went back to the queue, 0 if dead. */
int forq__lose_delivery(struct forq *q, struct forq_rec *rec, const char *why,
			forq_final_fn fn, void *ctx)
{
	if (forq__fail_delivery(q, rec, why, strlen(why), 0) != FORQ_RESULT_DEAD)
		return 1;
	forq__report_final(fn, ctx, rec, FORQ_RESULT_DEAD, why);
	if (q->h->recent_max)
		forq__recent_put(q, rec, FORQ_RESULT_DEAD, why, strlen(why), 0);
	return 0;
}

uint64_t forq_admin_backoff_ms(struct forq *q, unsigned attempts)
{
	return backoff_ns(q, attempts) / 1000000u;
}

void forq_admin_retries_upstream(struct forq *q)
{
	q->retries_upstream = 1;
}

/* What becomes of a task whose delivery failed transiently or crashed:
 * dead when its attempts are used up, else back to the queue (after a backoff
 * when `backoff`), or with a backoff on a stream-fed queue to the handle
 * that takes retries upstream: FORQ_RESULT_REDELIVER, the task stays in
 * the caller's hands for its bridge. Counts on the caller's record. Returns
 * the new status. */
int forq__fail_delivery(struct forq *q, struct forq_rec *rec, const char *why, size_t why_len,
			int backoff)
{
	struct forq_counters *c = &q->me->c;
	rec->attempts++;
	if (rec->attempts >= q->h->max_attempts) {
		forq__dead_add(q, rec, why, why_len);
		forq__add(&c->dead, 1);
		return FORQ_RESULT_DEAD;
	}
	forq__add(&c->retried, 1);
	/* The bridge reads the retry's attempts from the recent table. */
	if (backoff && q->retries_upstream && q->h->recent_max &&
	    (atomic_load(&q->h->flags) & FORQ_F_UPSTREAM))
		return FORQ_RESULT_REDELIVER;
	if (backoff && forq__retry_add(q, rec, clock_mono_ns() + backoff_ns(q, rec->attempts)) == 0)
		return FORQ_RESULT_RETRY;
	forq__requeue(q, rec);
	return FORQ_RESULT_RETRY;
}

/* forq_task_finish, and forq_admin_task_crashed with `crashed`. */
static int finish(struct forq *q, const struct forq_task *t, enum forq_result_status status,
		  const char *text, size_t text_len, uint64_t run_ns, int crashed)
{
	struct forq_entry *e = t->entry;
	if (t->slot >= q->batch_n || e != forq__inflight(q, q->me_idx, t->slot))
		return -EINVAL;
	if (e->rec.state != FORQ_ENTRY_HELD && e->rec.state != FORQ_ENTRY_RUNNING)
		return -EINVAL;
	struct forq_counters *c = &q->me->c;
	int final = (int)status;
	switch (status) {
	case FORQ_RESULT_DONE:
		forq__add(&c->done[forq__lane(e->rec.prio)], 1);
		break;
	case FORQ_RESULT_FAILED:
		forq__add(&c->failed[forq__lane(e->rec.prio)], 1);
		break;
	case FORQ_RESULT_RETRY:
		if (crashed) {
			/* As a repair counts a consumer's death: no backoff. */
			e->rec.crashes++;
			forq__add(&c->crashes, 1);
		}
		final = forq__fail_delivery(q, &e->rec, text, text_len, !crashed);
		break;
	default:
		return -EINVAL;
	}
	forq__add(&c->run_hist[forq__hist_bucket(run_ns)], 1);
	forq__add(&c->run_sum_ns, run_ns);
	if (final == FORQ_RESULT_REDELIVER)
		forq__recent_put(q, &e->rec, FORQ_RESULT_RETRY, text, text_len, run_ns);
	else if (final != FORQ_RESULT_RETRY && q->h->recent_max)
		forq__recent_put(q, &e->rec, final, text, text_len, run_ns);
	if (final == FORQ_RESULT_RETRY) {
		/* Handed to the retry table or the front ring already: a crash
		 * from here on must not give it back a second time. */
		forq__entry_clear(q, e);
	} else if (final == FORQ_RESULT_DEAD) {
		/* In the dead letters already; repair only writes its result. */
		forq__entry_set_error(e, text, text_len);
		e->rec.state = FORQ_ENTRY_DEAD;
	} else {
		e->rec.state = FORQ_ENTRY_FINISHED;
	}
	atomic_store_explicit(&q->me->current_id, 0, memory_order_relaxed);
	q->batch_open--;
	FORQ_FAILPOINT("task.finish");
	return final;
}

int forq_task_finish(struct forq *q, const struct forq_task *t, enum forq_result_status status,
		     const char *text, size_t text_len, uint64_t run_ns)
{
	return finish(q, t, status, text, text_len, run_ns, 0);
}

int forq_admin_task_crashed(struct forq *q, const struct forq_task *t, const char *why,
			    size_t len, uint64_t run_ns)
{
	return finish(q, t, FORQ_RESULT_RETRY, why, len, run_ns, 1);
}

const char *forq_admin_name(const struct forq *q)
{
	return q->name;
}

int forq_giveback(struct forq *q)
{
	if (!q->me)
		return 0;
	int n = 0;
	for (uint32_t i = 0; i < q->batch_n; i++) {
		struct forq_entry *e = forq__inflight(q, q->me_idx, i);
		if (e->rec.state == FORQ_ENTRY_HELD || e->rec.state == FORQ_ENTRY_RUNNING) {
			forq__requeue(q, &e->rec);
			n++;
		}
		forq__entry_clear(q, e);
	}
	q->batch_n = q->batch_open = 0;
	return n;
}

int forq__requeue(struct forq *q, const struct forq_rec *rec)
{
	const struct forq_rec *recs[1] = {rec};
	int ring = FORQ_RING_FRONT(rec->prio < FORQ_NPRIO ? rec->prio : FORQ_NORMAL);
	int r;
	/* Front rings hold all that can be in flight at once, so a wait here is
	 * short: consumers take from them first. */
	while ((r = forq__ring_push(q, ring, 1, NULL, NULL, NULL, recs)) == -EAGAIN)
		forq__sleep_on(q, &q->h->space_seq, &q->h->space_sleepers, ring_half_empty,
			 forq__ring(q, ring), clock_mono_ns() + 10000000u);
	if (r == 0) {
		if (q->me)
			forq__add(&q->me->c.requeued, 1);
		forq__wake_work(q, 1);
		FORQ_FAILPOINT("requeue");
	}
	return r;
}

int forq_stats_read(struct forq *q, struct forq_stats *s)
{
	struct forq_hdr *h = q->h;
	memset(s, 0, sizeof *s);
	for (uint32_t i = 0; i < h->max_procs; i++) {
		const struct forq_counters *c = &forq__proc(q, i)->c;
		for (int p = 0; p < FORQ_NPRIO; p++) {
			s->lane[p].enqueued += atomic_load_explicit(&c->enqueued[p], memory_order_relaxed);
			s->lane[p].started += atomic_load_explicit(&c->started[p], memory_order_relaxed);
			s->lane[p].done += atomic_load_explicit(&c->done[p], memory_order_relaxed);
			s->lane[p].failed += atomic_load_explicit(&c->failed[p], memory_order_relaxed);
		}
		s->dead += atomic_load_explicit(&c->dead, memory_order_relaxed);
		s->retried += atomic_load_explicit(&c->retried, memory_order_relaxed);
		s->crashes += atomic_load_explicit(&c->crashes, memory_order_relaxed);
		s->requeued += atomic_load_explicit(&c->requeued, memory_order_relaxed);
		for (uint32_t k = 0; k < h->batch_max; k++) {
			uint8_t st = forq__inflight(q, i, k)->rec.state;
			if (st >= FORQ_ENTRY_HELD && st <= FORQ_ENTRY_FINISHED)
				s->in_progress++;
		}
	}
	for (int p = 0; p < FORQ_NPRIO; p++) {
		s->enqueued += s->lane[p].enqueued;
		s->started += s->lane[p].started;
		s->done += s->lane[p].done;
		s->failed += s->lane[p].failed;
	}
	for (int p = 0; p < FORQ_NPRIO; p++)
		for (int k = 0; k < 2; k++) {
			struct forq_ring *r = forq__ring(q, 2 * p + k);
			uint64_t t = atomic_load(&r->tail_count), hd = atomic_load(&r->head_count);
			uint64_t n = t > hd ? t - hd : 0, c = r->cancelled; /* cancelled: not pending */
			s->pending[p] += n > c ? n - c : 0;
		}
	for (uint32_t i = 0; i < h->lease_max; i++) {
		uint8_t st = forq__entry_at(q, h->lease_off, i)->rec.state;
		if (st >= FORQ_ENTRY_HELD && st <= FORQ_ENTRY_FINISHED)
			s->in_progress++;
	}
	uint32_t waiting = atomic_load(&h->retry_used), sched = atomic_load(&h->sched_used);
	s->scheduled = sched < waiting ? sched : waiting;
	s->retry_waiting = waiting - s->scheduled;
	s->dead_letters = atomic_load(&h->dead_used);
	s->capacity = h->capacity;
	s->max_payload = h->max_payload;
	s->accepting = !!(atomic_load(&h->flags) & FORQ_F_ACCEPTING);
	return 0;
}
