/* loop.h — one event loop: file descriptors (epoll, level-triggered) and
 * timers (a binary heap), on one thread. It sleeps until an fd is ready or
 * the nearest timer is due, never on a fixed tick (redis ae.c's
 * aeProcessEvents computing its wait from aeSearchNearestTimer).
 *
 *	loop_init(&l);
 *	loop_fd_add(&l, fd, EPOLLIN, on_ready, ctx);
 *	loop_timer_init(&t, on_due, ctx);
 *	loop_timer_set(&l, &t, clock_mono_ns() + 100 * 1000000);
 *	while (!done)
 *		loop_run_once(&l);
 *
 * Callbacks run inside loop_run_once and may add, change and remove fds and
 * timers, their own included. An fd removed with loop_fd_del gets no more
 * callbacks, even for events already fetched in the same round, so its owner
 * may free its state right after. Timers are embedded in their owner's
 * struct; a timer must be stopped (or have fired) before its memory goes.
 * Not thread-safe: one thread owns the loop. */
#ifndef FORQ_LOOP_H
#define FORQ_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct loop;

/* events: what epoll reported (EPOLLIN, EPOLLOUT, EPOLLHUP, ...). */
typedef void (*loop_fd_fn)(void *ctx, uint32_t events);
/* now_ns: CLOCK_MONOTONIC when the round's due timers were picked. */
typedef void (*loop_timer_fn)(void *ctx, uint64_t now_ns);

struct loop_timer {
	/* private: set by loop_timer_init and the loop */
	uint64_t due_ns;    /* CLOCK_MONOTONIC */
	uint32_t heap_pos;  /* position in the heap + 1; 0: not pending */
	loop_timer_fn fn;
	void *ctx;
};

struct loop_fd; /* per-descriptor registration, in the loop's table */

struct loop {
	/* private */
	int ep;                  /* epoll descriptor */
	struct loop_fd *fds;     /* indexed by descriptor number */
	uint32_t nfds_cap;
	struct loop_timer **heap; /* min-heap on due_ns */
	uint32_t nheap, heap_cap;
	uint64_t wakeups;        /* epoll_wait calls that returned (for tests and logs) */
};

/* Returns 0, or -errno (epoll_create1). */
int loop_init(struct loop *l);
/* Closes the epoll descriptor and frees the tables; registered descriptors
 * are left open (they are their owners'). */
void loop_release(struct loop *l);

/* Watches fd for events (EPOLLIN, EPOLLOUT, EPOLLRDHUP...; EPOLLERR and
 * EPOLLHUP are always reported). Returns 0, -EEXIST, -ENOMEM or epoll_ctl's
 * -errno; on failure nothing is registered. */
int loop_fd_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *ctx);
/* Changes the events of a registered fd (0: none for now). Returns 0 or
 * -errno (-ENOENT: not registered). */
int loop_fd_mod(struct loop *l, int fd, uint32_t events);
/* Stops watching fd: no callback for it from now on. Call it before closing
 * fd. Unknown fds are ignored. */
void loop_fd_del(struct loop *l, int fd);

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *ctx);
/* Arms (or re-arms) t for due_ns. Returns 0 or -ENOMEM (t unchanged). */
int loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t due_ns);
/* Disarms t; a timer not pending is fine. */
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline int loop_timer_pending(const struct loop_timer *t)
{
	return t->heap_pos != 0;
}
/* When a pending timer is due. */
static inline uint64_t loop_timer_due(const struct loop_timer *t)
{
	return t->due_ns;
}

/* CLOCK_MONOTONIC of the nearest pending timer, UINT64_MAX if none. */
uint64_t loop_next_due(const struct loop *l);

/* One round: waits for ready fds until the nearest timer (forever if there
 * is none), runs the fd callbacks, then the timers that are due. Returns the
 * number of callbacks run, or -errno from epoll_wait (EINTR is 0). */
int loop_run_once(struct loop *l);

#endif
