/* lock.c — the queue's locks: process-shared robust mutexes whose holder may
 * die inside (the next taker repairs what it left), and the aux lock over the
 * side tables (leases, retries, dead letters). */
#include <errno.h>
#include <time.h>

#include "internal.h"

/* No critical section of forq's takes more than microseconds: a lock held
 * this long belongs to a stopped process or to a crafted object, and waiting
 * on would hang the caller (and forqd's recovery) without end. */
#define LOCK_WAIT_MAX_S 5

int forq__mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int r = pthread_mutexattr_init(&a);
	if (r)
		return -r;
	if ((r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
	    (r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0)
		r = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return -r;
}

int forq__lock(struct forq *q, pthread_mutex_t *m, void (*repair)(struct forq *, void *), void *arg)
{
	int r = pthread_mutex_trylock(m); /* the common case: no clock read */
	if (r == EBUSY) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += LOCK_WAIT_MAX_S;
		r = pthread_mutex_timedlock(m, &until);
		if (r == ETIMEDOUT)
			return -EDEADLK;
	}
	if (r == EOWNERDEAD) {
		/* The holder died inside: finish or undo its half-done step. */
		if (repair)
			repair(q, arg);
		pthread_mutex_consistent(m);
		r = 0;
	}
	return -r;
}

void forq__unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}

/* A holder that died inside leaves at worst a counter off by one: recount. */
static void repair_aux(struct forq *q, void *arg)
{
	(void)arg;
	uint32_t n = 0, d = 0, s = 0;
	for (uint32_t i = 0; i < q->h->retry_max; i++) {
		const struct forq_rec *rec = &forq__retry_entry(q, i)->rec;
		n += rec->state == FORQ_ENTRY_WAITING;
		s += rec->state == FORQ_ENTRY_WAITING && (rec->flags & FORQ_REC_DELAYED);
	}
	for (uint32_t i = 0; i < q->h->dead_max; i++)
		d += forq__dead_entry(q, i)->rec.state == FORQ_ENTRY_DEAD;
	atomic_store(&q->h->retry_used, n);
	atomic_store(&q->h->sched_used, s);
	atomic_store(&q->h->dead_used, d);
}

int forq__aux_lock(struct forq *q)
{
	return forq__lock(q, &q->h->aux_lock, repair_aux, NULL);
}
