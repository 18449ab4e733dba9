/* loop.c — the event loop of loop.h: epoll for descriptors, a binary
 * min-heap for timers. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"

#define EV_BATCH 256
#define MS ((uint64_t)1000000) /* ns per ms */

/* One registered descriptor. `gen` changes with each loop_fd_add, and travels
 * in the epoll event, so an event fetched for a descriptor that was removed
 * (and perhaps reused) in the same round is recognised and dropped. */
struct loop_fd {
	loop_fd_fn fn; /* NULL: not registered */
	void *ctx;
	uint32_t gen;
	uint32_t events;
};

int loop_init(struct loop *l)
{
	memset(l, 0, sizeof *l);
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	return l->ep < 0 ? -errno : 0;
}

void loop_release(struct loop *l)
{
	if (l->ep >= 0)
		close(l->ep);
	free(l->fds);
	free(l->heap);
	memset(l, 0, sizeof *l);
	l->ep = -1;
}

/* ---- descriptors ---- */

static int fds_room(struct loop *l, int fd)
{
	if ((uint32_t)fd < l->nfds_cap)
		return 0;
	uint32_t cap = l->nfds_cap ? l->nfds_cap : 64;
	while (cap <= (uint32_t)fd)
		cap *= 2;
	struct loop_fd *p = realloc(l->fds, cap * sizeof *p);
	if (!p)
		return -ENOMEM;
	memset(p + l->nfds_cap, 0, (cap - l->nfds_cap) * sizeof *p);
	l->fds = p;
	l->nfds_cap = cap;
	return 0;
}

static uint64_t tag(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int loop_fd_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *ctx)
{
	if (fd < 0 || !fn)
		return -EINVAL;
	int r = fds_room(l, fd);
	if (r)
		return r;
	struct loop_fd *e = &l->fds[fd];
	if (e->fn)
		return -EEXIST;
	uint32_t gen = e->gen + 1;
	struct epoll_event ev = {.events = events, .data.u64 = tag(fd, gen)};
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	*e = (struct loop_fd){.fn = fn, .ctx = ctx, .gen = gen, .events = events};
	return 0;
}

int loop_fd_mod(struct loop *l, int fd, uint32_t events)
{
	if (fd < 0 || (uint32_t)fd >= l->nfds_cap || !l->fds[fd].fn)
		return -ENOENT;
	struct loop_fd *e = &l->fds[fd];
	if (e->events == events)
		return 0;
	struct epoll_event ev = {.events = events, .data.u64 = tag(fd, e->gen)};
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev))
		return -errno;
	e->events = events;
	return 0;
}

void loop_fd_del(struct loop *l, int fd)
{
	if (fd < 0 || (uint32_t)fd >= l->nfds_cap || !l->fds[fd].fn)
		return;
	epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
	l->fds[fd].fn = NULL;
	l->fds[fd].ctx = NULL;
}

/* ---- timers: a min-heap on due_ns; heap_pos is the index + 1 ---- */

static int earlier(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->due_ns < b->due_ns;
}

static void heap_put(struct loop *l, uint32_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->heap_pos = i + 1;
}

static void sift_up(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!earlier(t, l->heap[parent]))
			break;
		heap_put(l, i, l->heap[parent]);
		i = parent;
	}
	heap_put(l, i, t);
}

static void sift_down(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && earlier(l->heap[c + 1], l->heap[c]))
			c++;
		if (!earlier(l->heap[c], t))
			break;
		heap_put(l, i, l->heap[c]);
		i = c;
	}
	heap_put(l, i, t);
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *ctx)
{
	*t = (struct loop_timer){.fn = fn, .ctx = ctx};
}

int loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t due_ns)
{
	if (t->heap_pos) {
		uint64_t old = t->due_ns;
		t->due_ns = due_ns;
		if (due_ns < old)
			sift_up(l, t->heap_pos - 1);
		else
			sift_down(l, t->heap_pos - 1);
		return 0;
	}
	if (l->nheap == l->heap_cap) {
		uint32_t cap = l->heap_cap ? l->heap_cap * 2 : 16;
		struct loop_timer **p = realloc(l->heap, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		l->heap = p;
		l->heap_cap = cap;
	}
	t->due_ns = due_ns;
	l->heap[l->nheap] = t;
	sift_up(l, l->nheap++);
	return 0;
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	if (!t->heap_pos)
		return;
	uint32_t i = t->heap_pos - 1;
	t->heap_pos = 0;
	struct loop_timer *last = l->heap[--l->nheap];
	if (i == l->nheap)
		return;
	heap_put(l, i, last);
	if (i > 0 && earlier(last, l->heap[(i - 1) / 2]))
		sift_up(l, i);
	else
		sift_down(l, i);
}

uint64_t loop_next_due(const struct loop *l)
{
	return l->nheap ? l->heap[0]->due_ns : UINT64_MAX;
}

/* ---- one round ---- */

static int wait_ms(const struct loop *l)
{
	uint64_t due = loop_next_due(l);
	if (due == UINT64_MAX)
		return -1;
	uint64_t now = clock_mono_ns();
	if (due <= now)
		return 0;
	uint64_t ms = (due - now + MS - 1) / MS; /* never wake before it is due */
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

int loop_run_once(struct loop *l)
{
	struct epoll_event evs[EV_BATCH];
	int ran = 0;
	int n = epoll_wait(l->ep, evs, EV_BATCH, wait_ms(l));
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	l->wakeups++;
	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
		if ((uint32_t)fd >= l->nfds_cap)
			continue;
		struct loop_fd *e = &l->fds[fd];
		if (!e->fn || e->gen != gen)
			continue; /* removed by an earlier callback of this round */
		e->fn(e->ctx, evs[i].events);
		ran++;
	}
	/* Timers due now, at most as many as were pending: a callback that keeps
	 * re-arming a timer for "now" cannot hold the loop. */
	uint64_t now = clock_mono_ns();
	for (uint32_t k = l->nheap; k > 0 && l->nheap && l->heap[0]->due_ns <= now; k--) {
		struct loop_timer *t = l->heap[0];
		loop_timer_stop(l, t);
		t->fn(t->ctx, now);
		ran++;
	}
	return ran;
}
