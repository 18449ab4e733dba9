/* workwatch.c — the work word's waiter thread (workwatch.h). */
#include "workwatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct work_watch {
	struct forq *q;
	struct loop *loop;
	void (*on_work)(void *ctx);
	void *ctx;
	int efd;            /* eventfd: thread -> loop */
	pthread_t thread;
	int registered;     /* main thread only: counted in the queue's sleepers */
	uint32_t seq;       /* main thread only: the word read by work_watch_begin */
	/* Shared with the thread, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int armed;          /* wake the loop once the word is not `target` */
	uint32_t target;
	int quit;
};

static void *watch_main(void *arg)
{
	struct work_watch *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->armed && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->quit)
			break;
		uint32_t target = w->target;
		pthread_mutex_unlock(&w->mu);
		forq_admin_work_wait(w->q, target, -1);
		pthread_mutex_lock(&w->mu);
		/* A spurious wake-up, or re-armed on a newer word: wait again. */
		if (w->quit || !w->armed || forq_admin_work_seq(w->q) == w->target)
			continue;
		w->armed = 0;
		uint64_t one = 1;
		ssize_t n = write(w->efd, &one, sizeof one);
		(void)n; /* EAGAIN: the counter is full, the loop is woken anyway */
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void on_eventfd(void *ctx, uint32_t events)
{
	struct work_watch *w = ctx;
	uint64_t v;
	ssize_t n = read(w->efd, &v, sizeof v);
	(void)n;
	(void)events;
	w->on_work(w->ctx);
}

int work_watch_start(struct work_watch **wp, struct forq *q, struct loop *l,
		     void (*on_work)(void *ctx), void *ctx)
{
	struct work_watch *w = calloc(1, sizeof *w);
	int r = -ENOMEM;
	*wp = NULL;
	if (!w)
		return r;
	*w = (struct work_watch){.q = q, .loop = l, .on_work = on_work, .ctx = ctx, .efd = -1};
	if ((r = -pthread_mutex_init(&w->mu, NULL)))
		goto fail_mutex;
	if ((r = -pthread_cond_init(&w->cv, NULL)))
		goto fail_cond;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		r = -errno;
		goto fail_efd;
	}
	if ((r = loop_fd_add(l, w->efd, EPOLLIN, on_eventfd, w)))
		goto fail_add;
	if ((r = -pthread_create(&w->thread, NULL, watch_main, w)))
		goto fail_thread;
	*wp = w;
	return 0;
fail_thread:
	loop_fd_del(l, w->efd);
fail_add:
	close(w->efd);
fail_efd:
	pthread_cond_destroy(&w->cv);
fail_cond:
	pthread_mutex_destroy(&w->mu);
fail_mutex:
	free(w);
	return r;
}

static int is_armed(struct work_watch *w)
{
	pthread_mutex_lock(&w->mu);
	int a = w->armed;
	pthread_mutex_unlock(&w->mu);
	return a;
}

int work_watch_begin(struct work_watch *w, int want)
{
	if (!want) {
		if (w->registered) {
			forq_admin_work_unwatch(w->q);
			w->registered = 0;
		}
		return 0;
	}
	if (w->registered && is_armed(w))
		return 0;
	if (!w->registered) {
		forq_admin_work_watch(w->q);
		w->registered = 1;
	}
	w->seq = forq_admin_work_seq(w->q);
	return 1;
}

void work_watch_arm(struct work_watch *w, int still_want)
{
	if (!still_want) {
		work_watch_begin(w, 0);
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->target = w->seq;
	w->armed = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void work_watch_stop(struct work_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	forq_admin_work_kick(w->q); /* out of its futex wait, if it is in one */
	pthread_join(w->thread, NULL);
	if (w->registered)
		forq_admin_work_unwatch(w->q);
	loop_fd_del(w->loop, w->efd);
	close(w->efd);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
