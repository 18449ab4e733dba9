/* waiting.c — requests suspended until their tasks are on disk (see
 * waiting.h). One thread, one list under one mutex: it wakes on a kick
 * (the journal wrote) or the nearest deadline, answers what it can, and
 * resumes those connections. */
#include "waiting.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

struct waiting {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	struct http_hooks h;
	struct wait_item *head; /* under lock */
	int kicked, stop;       /* under lock */
};

static void answer(struct wait_item **pp, int result)
{
	struct wait_item *it = *pp;
	*pp = it->next;
	it->result = result;
	it->done = 1;
	MHD_resume_connection(it->c); /* takes MHD's own lock only */
}

/* Answers what is on disk, past its deadline or refused; returns the
 * nearest deadline of the rest (UINT64_MAX: none). Under lock. */
static uint64_t sweep(struct waiting *w, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (struct wait_item **pp = &w->head; *pp;) {
		struct wait_item *it = *pp;
		int r = w->h.durable(w->h.ctx, it->ticket);
		if (r == 1)
			answer(pp, 0);
		else if (r < 0)
			answer(pp, r);
		else if (now >= it->deadline_ns)
			answer(pp, -ETIMEDOUT);
		else {
			next = it->deadline_ns < next ? it->deadline_ns : next;
			pp = &it->next;
		}
	}
	return next;
}

static void *waiting_main(void *arg)
{
	struct waiting *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		uint64_t next = sweep(w, clock_mono_ns());
		while (!w->kicked && !w->stop) {
			if (next == UINT64_MAX) {
				pthread_cond_wait(&w->cond, &w->lock);
				continue;
			}
			struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
			if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
				break;
		}
		w->kicked = 0;
	}
	while (w->head)
		answer(&w->head, -ESHUTDOWN);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int waiting_start(struct waiting **wp, const struct http_hooks *h)
{
	struct waiting *w = calloc(1, sizeof *w);
	pthread_condattr_t ca;
	int r = -ENOMEM;
	*wp = NULL;
	if (!w)
		return r;
	w->h = *h;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((r = -pthread_create(&w->thread, NULL, waiting_main, w))) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return r;
	}
	*wp = w;
	return 0;
}

void waiting_add(struct waiting *w, struct wait_item *it)
{
	pthread_mutex_lock(&w->lock);
	it->done = 0;
	it->next = w->head;
	w->head = it;
	w->kicked = 1; /* its deadline may be the nearest: the thread looks again */
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void waiting_kick(struct waiting *w)
{
	pthread_mutex_lock(&w->lock);
	w->kicked = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void waiting_stop(struct waiting *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
