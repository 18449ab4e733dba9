/* lock.c — the queue's locks: process-shared robust mutexes whose holder may
 * die inside (the next taker repairs what it left), and the aux lock over the
 * side tables (leases, retries, dead letters). */
#include <errno.h>

#include "internal.h"

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
	int r = pthread_mutex_lock(m);
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
	uint32_t n = 0, d = 0;
	for (uint32_t i = 0; i < q->h->retry_max; i++)
		n += forq__retry_entry(q, i)->rec.state == FORQ_ENTRY_WAITING;
	for (uint32_t i = 0; i < q->h->dead_max; i++)
		d += forq__dead_entry(q, i)->rec.state == FORQ_ENTRY_DEAD;
	atomic_store(&q->h->retry_used, n);
	atomic_store(&q->h->dead_used, d);
}

int forq__aux_lock(struct forq *q)
{
	return forq__lock(q, &q->h->aux_lock, repair_aux, NULL);
}

void forq__aux_cycle(struct forq *q)
{
	if (forq__aux_lock(q) == 0)
		forq__unlock(&q->h->aux_lock);
}
