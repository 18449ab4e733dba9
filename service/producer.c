/* producer.c — the tasks-file and demo producer thread. */
#include "producer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forq_admin.h"
#include "clock.h"
#include "forq.h"
#include "log.h"
#include "tasks_file.h"

#define BATCH 64

struct lane_batch {
	struct forq_msg msgs[BATCH];
	uint32_t lines[BATCH];
	size_t n;
	char *store; /* BATCH * max_payload bytes */
};

struct producer {
	struct producer_config c;
	struct forq *q;
	struct tasks_reader *reader;
	pthread_t thread;
	_Atomic int stop;
	_Atomic int finished;
	_Atomic uint64_t pushed, bad;
	struct lane_batch lane[3];
};

/* Pushes a lane's batch; blocks while the queue is full. 0, or -ESHUTDOWN. */
static int flush_lane(struct producer *p, int prio)
{
	struct lane_batch *b = &p->lane[prio];
	if (!b->n)
		return 0;
	int r;
	while ((r = forq_admin_push_lines(p->q, prio, b->msgs, p->c.tasks_path ? b->lines : NULL,
					  b->n, 500, NULL)) == -EAGAIN)
		if (atomic_load(&p->stop))
			return -ESHUTDOWN;
	if (r) {
		/* A drain stops the queue accepting: the demo's unsent batch was
		 * never accepted, so nothing is lost and nothing is worth a
		 * warning. A tasks file's lines are: they never reached the queue. */
		if (p->c.tasks_path || r != -ESHUTDOWN)
			log_event(LOG_WARN, "tasks_not_pushed", "count=%zu error=\"%s\"", b->n,
				  strerror(-r));
		return r;
	}
	atomic_fetch_add(&p->pushed, b->n);
	b->n = 0;
	return 0;
}

static int add(struct producer *p, int prio, const char *payload, size_t len, unsigned line)
{
	struct lane_batch *b = &p->lane[prio];
	char *dst = b->store + b->n * p->c.max_payload;
	memcpy(dst, payload, len);
	b->msgs[b->n] = (struct forq_msg){dst, (uint32_t)len};
	b->lines[b->n] = line;
	if (++b->n == BATCH)
		return flush_lane(p, prio);
	return 0;
}

static int flush_all(struct producer *p)
{
	for (int i = 0; i < 3; i++)
		if (flush_lane(p, i))
			return -1;
	return 0;
}

static void run_file(struct producer *p)
{
	struct task_line t;
	unsigned line;
	char err[512];
	int r;
	for (;;) {
		if (atomic_load(&p->stop))
			break;
		/* A read from a quiet pipe may block for ever: only there may
		 * producer_stop cancel this thread (no lock is held there). */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		r = tasks_reader_next(p->reader, &t, &line, err, sizeof err);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (r == 0)
			break;
		if (r == -1) {
			char q[600];
			atomic_fetch_add(&p->bad, 1);
			log_event(LOG_WARN, "bad_task_line", "error=\"%s\"", log_quote(err, q, sizeof q));
			continue;
		}
		if (r < 0) {
			log_event(LOG_ERROR, "tasks_read_failed", "error=\"%s\"", err);
			break;
		}
		if (add(p, t.prio, t.payload, t.len, line))
			break;
		/* Don't let a slow trickle (stdin) sit in a half batch. */
	}
	flush_all(p);
	log_event(LOG_INFO, "tasks_file_read", "file=\"%s\" pushed=%llu bad_lines=%llu",
		  p->c.tasks_path, (unsigned long long)atomic_load(&p->pushed),
		  (unsigned long long)atomic_load(&p->bad));
}

/* A small deterministic mix: mostly good expressions, 2 in 100 that fail
 * (a healthy service: well below ForqErrorRatioHigh's 10%, which the demo
 * must not sit on, or the alert flaps). */
static size_t demo_task(unsigned long long n, char *out, size_t cap, int *prio)
{
	unsigned a = (unsigned)(n * 2654435761u % 1000), b = (unsigned)(n * 40503u % 97);
	*prio = n % 10 == 0 ? FORQ_HIGH : n % 5 == 1 ? FORQ_LOW : FORQ_NORMAL;
	switch (n % 100) {
	case 37: return (size_t)snprintf(out, cap, "%u/0", a);          /* fails: division by zero */
	case 83: return (size_t)snprintf(out, cap, "(%u+", a);          /* fails: syntax */
	default: return (size_t)snprintf(out, cap, "(%u+%u)*%u-%u/7", a, b, (unsigned)(n % 13), a);
	}
}

static void run_demo(struct producer *p)
{
	const uint64_t tick_ns = 10000000; /* 10 ms */
	double per_tick = p->c.demo_rate * (double)tick_ns / 1e9, carry = 0;
	unsigned long long n = 0;
	uint64_t next = clock_mono_ns();
	char buf[64];
	while (!atomic_load(&p->stop)) {
		carry += per_tick;
		while (carry >= 1) {
			int prio;
			size_t len = demo_task(n++, buf, sizeof buf, &prio);
			if (add(p, prio, buf, len, 0))
				return;
			carry -= 1;
		}
		if (flush_all(p))
			return;
		next += tick_ns;
		uint64_t now = clock_mono_ns();
		if (next > now) {
			struct timespec ts = {0, (long)(next - now)};
			nanosleep(&ts, NULL);
		} else {
			next = now;
		}
	}
}

static void *thread_main(void *arg)
{
	struct producer *p = arg;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	if (p->c.tasks_path)
		run_file(p);
	else
		run_demo(p);
	atomic_store(&p->finished, 1);
	return NULL;
}

int producer_start(struct producer **pp, const struct producer_config *c, char *err, size_t errlen)
{
	struct producer *p = calloc(1, sizeof *p);
	int r = -ENOMEM;
	if (!p)
		return r;
	p->c = *c;
	for (int i = 0; i < 3; i++)
		if (!(p->lane[i].store = malloc((size_t)BATCH * c->max_payload)))
			goto fail;
	if (c->tasks_path &&
	    (r = tasks_reader_open(&p->reader, c->tasks_path, c->max_payload, err, errlen)))
		goto fail;
	if ((r = forq_open(&p->q, c->shm_name, err, errlen)))
		goto fail;
	if ((r = -pthread_create(&p->thread, NULL, thread_main, p))) {
		snprintf(err, errlen, "cannot start the producer thread: %s", strerror(-r));
		goto fail;
	}
	*pp = p;
	return 0;
fail:
	if (p->q)
		forq_close(p->q);
	tasks_reader_close(p->reader);
	for (int i = 0; i < 3; i++)
		free(p->lane[i].store);
	free(p);
	return r;
}

int producer_finished(struct producer *p)
{
	return atomic_load(&p->finished);
}

void producer_counts(struct producer *p, uint64_t *pushed, uint64_t *bad_lines)
{
	*pushed = atomic_load(&p->pushed);
	*bad_lines = atomic_load(&p->bad);
}

void producer_stop(struct producer *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, 1);
	/* Pushes end once the queue stops accepting; a read of a silent stdin
	 * does not, so give it a second and then cancel it. */
	for (int i = 0; i < 100 && !atomic_load(&p->finished); i++) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	if (!atomic_load(&p->finished))
		pthread_cancel(p->thread);
	pthread_join(p->thread, NULL);
	forq_close(p->q);
	tasks_reader_close(p->reader);
	for (int i = 0; i < 3; i++)
		free(p->lane[i].store);
	free(p);
}
