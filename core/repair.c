/* repair.c — ownership and recovery: what forqd does when a process dies.
 *
 * Rule: certain death first, then repair. forqd repairs a consumer's record
 * only after waitpid() reaped it, and a client's only once its pid (with the
 * same start time) is gone, so a repaired record never has a live writer.
 * Repair cycles every lock (a robust lock hands EOWNERDEAD to the first
 * taker, which finishes or undoes the dead holder's step), then gives the
 * record's in-flight tasks back to the front of their lane.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "forq_admin.h"
#include "clock.h"
#include "failpoint.h"
#include "internal.h"

int forq_admin_attach(struct forq **qp, const char *name, char *err, size_t errlen)
{
	return forq__attach_bare(qp, name, err, errlen);
}

uint64_t forq_admin_size(struct forq *q)
{
	return q->h->total_size;
}

void forq_admin_limits(struct forq *q, struct forq_limits *out)
{
	*out = (struct forq_limits){.max_payload = q->h->max_payload, .batch_max = q->h->batch_max,
				    .lease_max = q->h->lease_max};
}

void forq_admin_release(struct forq *q)
{
	atomic_store(&q->h->owner_pid, 0);
	atomic_store(&q->h->clean, 1);
}

void forq_admin_worker_set(struct forq *q, int worker, int32_t pid, uint32_t state,
			   uint32_t restarts, uint64_t next_start_ns)
{
	struct forq_worker_row *row = &q->h->workers[worker];
	atomic_store(&row->pid, pid);
	atomic_store(&row->state, state);
	atomic_store(&row->restarts, restarts);
	atomic_store(&row->next_start_ns, next_start_ns);
}

static uint64_t lanes_sum(const _Atomic uint64_t *c)
{
	uint64_t n = 0;
	for (int p = 0; p < FORQ_NPRIO; p++)
		n += atomic_load_explicit(&c[p], memory_order_relaxed);
	return n;
}

void forq_admin_worker_get(struct forq *q, int worker, struct forq_worker_info *out)
{
	const struct forq_worker_row *row = &q->h->workers[worker];
	*out = (struct forq_worker_info){.pid = atomic_load(&row->pid),
					 .state = atomic_load(&row->state),
					 .restarts = atomic_load(&row->restarts),
					 .next_start_ns = atomic_load(&row->next_start_ns)};
}

void forq_admin_workers(struct forq *q, struct forq_worker_info *out, int n)
{
	for (int w = 0; w < n; w++)
		forq_admin_worker_get(q, w, &out[w]);
	/* Task counts live in the records of the processes that held a slot. */
	for (uint32_t i = 0; i < q->h->max_procs; i++) {
		const struct forq_proc *p = forq__proc(q, i);
		if (p->role != FORQ_ROLE_CONSUMER || p->worker < 0 || p->worker >= n)
			continue;
		struct forq_worker_info *w = &out[p->worker];
		w->tasks_done += lanes_sum(p->c.done);
		w->tasks_failed += lanes_sum(p->c.failed) +
				   atomic_load_explicit(&p->c.dead, memory_order_relaxed);
		if (atomic_load(&p->state) == FORQ_PROC_ACTIVE && p->pid == w->pid) {
			w->current_task = atomic_load(&p->current_id);
			w->results_errno = atomic_load(&p->results_errno);
		}
	}
}

int forq_admin_consumers_active(struct forq *q)
{
	int n = 0;
	for (uint32_t i = 0; i < q->h->max_procs; i++) {
		const struct forq_proc *p = forq__proc(q, i);
		n += atomic_load(&p->state) == FORQ_PROC_ACTIVE && p->role == FORQ_ROLE_CONSUMER;
	}
	return n;
}

uint64_t forq_admin_finished_total(struct forq *q)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < q->h->max_procs; i++) {
		const struct forq_counters *c = &forq__proc(q, i)->c;
		n += lanes_sum(c->done) + lanes_sum(c->failed) +
		     atomic_load_explicit(&c->dead, memory_order_relaxed);
	}
	return n;
}

int forq_admin_own(struct forq *q, char *err, size_t errlen)
{
	if (flock(q->fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			errmsg_set(err, errlen,
				      "queue %s is owned by another forqd (pid %d): stop it first, "
				      "or pick another --shm-name",
				      q->name, (int)atomic_load(&q->h->owner_pid));
			return -EBUSY;
		}
		errmsg_set(err, errlen, "cannot lock %s: %s", q->name, strerror(e));
		return -e;
	}
	atomic_fetch_add(&q->h->generation, 1);
	/* Purges asked of an earlier forqd and never served are void: their
	 * askers were told no forqd answered. */
	atomic_store(&q->h->purge_served, atomic_load(&q->h->purge_asked));
	atomic_store(&q->h->cancel_state, 0);
	atomic_store(&q->h->owner_pid, getpid());
	atomic_store(&q->h->clean, 0);
	if (!q->me) {
		int r = forq__proc_claim(q, FORQ_ROLE_SUPERVISOR, -1);
		if (r) {
			if (r == -EDEADLK)
				errmsg_set(err, errlen,
					   "%s: its process-table lock stays held by another process "
					   "(a stopped or foreign process): remove the object", q->name);
			else
				errmsg_set(err, errlen, "%s: no free process record", q->name);
			flock(q->fd, LOCK_UN);
			return r;
		}
	} else {
		q->me->generation = atomic_load(&q->h->generation);
	}
	return 0;
}

int forq_admin_consumer_attach(struct forq *q, int worker)
{
	/* The mapping is all a consumer needs. Its copy of forqd's descriptor
	 * would keep forqd's ownership lock alive after forqd died. */
	if (q->fd >= 0) {
		close(q->fd);
		q->fd = -1;
	}
	q->me = NULL;
	q->batch_n = q->batch_open = 0;
	int r = forq__proc_claim(q, FORQ_ROLE_CONSUMER, worker);
	if (r == 0) {
		atomic_store(&q->me->handler_pgid, 0);
		atomic_store(&q->me->results_errno, 0);
	}
	return r;
}

void forq_admin_handler_group(struct forq *q, int pgid)
{
	if (!q->me)
		return;
	if (pgid > 0) {
		/* Start time first: a repairer that sees the group sees it. */
		atomic_store(&q->me->handler_pgid, 0);
		atomic_store(&q->me->handler_start_ticks, forq__proc_start_ticks(pgid));
	}
	atomic_store(&q->me->handler_pgid, pgid > 0 ? pgid : 0);
}

void forq_admin_results_errno(struct forq *q, int err)
{
	if (q->me)
		atomic_store(&q->me->results_errno, err);
}

int forq_admin_giveback_from(struct forq *q, uint32_t first)
{
	int n = 0;
	if (!q->me)
		return 0;
	for (uint32_t i = first; i < q->batch_n; i++) {
		struct forq_entry *e = forq__inflight(q, q->me_idx, i);
		if (e->rec.state != FORQ_ENTRY_HELD || forq__requeue(q, &e->rec))
			continue;
		forq__entry_clear(q, e);
		n++;
	}
	return n;
}

void forq_admin_batch_given(struct forq *q, uint32_t n)
{
	q->batch_open = n < q->batch_open ? q->batch_open - n : 0;
}

int forq_admin_push_lines(struct forq *q, int prio, const struct forq_msg *msgs,
			  const uint32_t *lines, size_t n, int timeout_ms, uint64_t *ids)
{
	return forq__push_lines(q, prio, msgs, lines, n, timeout_ms, ids);
}

/* A zombie has exited: it can write no more. Orphans (consumers of a
 * killed forqd) stay zombies until init reaps them, which some inits do
 * late or never. */
static int proc_zombie(int pid)
{
	char buf[1024];
	const char *p = forq__proc_stat(pid, buf, sizeof buf);
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Whether record p's process may still run: its pid exists, is no zombie,
 * and started when the record says (a reused pid is another process). A
 * record without a start time cannot be told apart from a reused pid, so it
 * counts as alive here (never repaired under a live process) but is never
 * signalled (proc_is_ours). */
static int proc_alive(const struct forq_proc *p)
{
	if (p->pid <= 0)
		return 0;
	if (kill(p->pid, 0) < 0 && errno == ESRCH)
		return 0;
	if (proc_zombie(p->pid))
		return 0;
	uint64_t t = forq__proc_start_ticks(p->pid);
	return t != 0 && (p->start_ticks == 0 || t == p->start_ticks);
}

/* Proven to be the process that claimed record p: the only kind recovery may
 * signal. The start time is what proves it; 0 (unknown, or forged) proves
 * nothing. */
static int proc_is_ours(const struct forq_proc *p)
{
	return p->start_ticks != 0 && proc_alive(p);
}

static int cycle_lock(struct forq *q, pthread_mutex_t *m, void (*repair)(struct forq *, void *),
		      void *arg)
{
	int r = forq__lock(q, m, repair, arg);
	if (r == 0)
		forq__unlock(m);
	return r;
}

/* Takes and drops every lock, so that any a dead process held is repaired.
 * Stops at the first that cannot be had (-EDEADLK: held by a live process
 * for seconds), so that a crafted object costs one bounded wait. */
static int cycle_locks(struct forq *q)
{
	struct forq_hdr *h = q->h;
	int r = 0;
	for (int i = 0; i < FORQ_NRINGS && !r; i++) {
		struct forq_ring *ring = &h->rings[i];
		r = cycle_lock(q, &ring->push_lock, forq__ring_repair_push, ring);
		if (!r)
			r = cycle_lock(q, &ring->pop_lock, forq__ring_repair_pop, ring);
	}
	if (!r)
		r = cycle_lock(q, &h->proc_lock, NULL, NULL);
	if (!r && !(r = forq__aux_lock(q)))
		forq__unlock(&h->aux_lock);
	if (!r)
		r = cycle_lock(q, &h->keys_lock, NULL, NULL);
	return r;
}

/* How a holder's in-flight entries are given back. */
enum giveback_mode {
	GIVEBACK_LOST = 0,    /* the holder is gone (lease): the running one counts */
	GIVEBACK_CRASHED = 1, /* the holder died: the running one counts, as a crash */
	GIVEBACK_STOPPED = 2, /* forqd killed the holder to stop: nothing counts */
};

/* Gives back one in-flight entry of a dead holder. Returns 1 if it went back
 * to the queue, 0 if it became dead (fn told), -1 if it was empty. */
static int giveback_entry(struct forq *q, struct forq_entry *e, enum giveback_mode mode,
			  const char *why, forq_final_fn fn, void *ctx)
{
	uint8_t st = e->rec.state;
	int r = -1;
#ifdef FORQ_NO_REPAIR
	/* Test-of-the-tests build: drop the task (the record is still freed,
	 * so the service runs on), so that the chaos tests must see a loss. */
	st = FORQ_ENTRY_EMPTY;
#endif
	if (st == FORQ_ENTRY_PURGED || st == FORQ_ENTRY_CANCELLED) {
		/* Its purge or cancel began: it never runs again, only its result
		 * is owed. */
		forq__report_dropped(q, e, fn, ctx);
		return 0;
	}
	if (st == FORQ_ENTRY_DEAD) {
		/* Already in the dead letters: only its result is owed. */
		forq__report_final(fn, ctx, &e->rec, FORQ_RESULT_DEAD, e->error);
		forq__entry_clear(q, e);
		return 0;
	}
	if (st == FORQ_ENTRY_HELD || st == FORQ_ENTRY_FINISHED) {
		/* Not started, or its result was never written: it runs again
		 * and this delivery does not count against it. */
		forq__requeue(q, &e->rec);
		r = 1;
	} else if (st == FORQ_ENTRY_RUNNING && mode == GIVEBACK_STOPPED) {
		e->rec.flags |= FORQ_REC_STOPPED;
		forq__requeue(q, &e->rec);
		r = 1;
	} else if (st == FORQ_ENTRY_RUNNING) {
		if (mode == GIVEBACK_CRASHED) {
			e->rec.crashes++;
			forq__add(&q->me->c.crashes, 1);
		}
		r = forq__lose_delivery(q, &e->rec, why, fn, ctx);
	}
	forq__entry_clear(q, e);
	return r;
}

/* The exec: command a dead consumer ran, and all its group: SIGKILLed
 * before its task can run again, but only if the group's leader is provably
 * the process the consumer published (same start time; 0 proves nothing).
 * Its leader is unreaped while it can matter: the consumer's child, then
 * forqd's (forqd is the subreaper of its consumers' orphans). */
static void kill_handler_group(struct forq_proc *p)
{
	int32_t g = atomic_load(&p->handler_pgid);
	uint64_t t = atomic_load(&p->handler_start_ticks);
	if (g > 0 && t != 0 && forq__proc_start_ticks(g) == t)
		kill(-g, SIGKILL);
	atomic_store(&p->handler_pgid, 0);
}

static int repair_record(struct forq *q, uint32_t i, const char *why, enum giveback_mode mode,
			 forq_final_fn fn, void *ctx)
{
	struct forq_proc *p = forq__proc(q, i);
	int given = 0;
	kill_handler_group(p);
	int r = cycle_locks(q);
	if (r)
		return r;
	for (uint32_t k = 0; k < q->h->batch_max; k++) {
		int g = giveback_entry(q, forq__inflight(q, i, k), mode, why, fn, ctx);
		given += g == 1;
		if (g >= 0)
			FORQ_FAILPOINT("repair.giveback");
	}
	forq__drop_retries_of(q, i + 1, fn, ctx); /* a purger or canceller died inside */
	if (forq__lock(q, &q->h->proc_lock, NULL, NULL) == 0) {
		p->pid = 0;
		atomic_store(&p->current_id, 0);
		atomic_store(&p->results_errno, 0);
		atomic_store(&p->state, FORQ_PROC_FREE);
		forq__unlock(&q->h->proc_lock);
	}
	return given;
}

static int repair_pid(struct forq *q, int pid, const char *why, enum giveback_mode mode,
		      forq_final_fn fn, void *ctx)
{
	for (uint32_t i = 0; i < q->h->max_procs; i++) {
		struct forq_proc *p = forq__proc(q, i);
		if (p != q->me && atomic_load(&p->state) == FORQ_PROC_ACTIVE && p->pid == pid)
			return repair_record(q, i, why, mode, fn, ctx);
	}
	return -ENOENT;
}

int forq_admin_repair_pid(struct forq *q, int pid, const char *why, forq_final_fn fn, void *ctx)
{
	return repair_pid(q, pid, why, GIVEBACK_CRASHED, fn, ctx);
}

int forq_admin_repair_stopped(struct forq *q, int pid, forq_final_fn fn, void *ctx)
{
	return repair_pid(q, pid, "forqd stopped while it ran", GIVEBACK_STOPPED, fn, ctx);
}

int forq_admin_reap_clients(struct forq *q, forq_final_fn fn, void *ctx)
{
	int given = 0;
	for (uint32_t i = 0; i < q->h->max_procs; i++) {
		struct forq_proc *p = forq__proc(q, i);
		if (p == q->me || atomic_load(&p->state) != FORQ_PROC_ACTIVE || proc_alive(p))
			continue;
		int r = repair_record(q, i, "process died while running it", GIVEBACK_CRASHED, fn,
				      ctx);
		if (r < 0)
			return r;
		given += r;
	}
	return given;
}

static void kill_and_wait(struct forq_proc *p)
{
	kill(p->pid, SIGKILL);
	for (int i = 0; i < 2000 && proc_alive(p); i++) {
		/* It may be our zombie-less orphan: poll until the kernel has it. */
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

int forq_admin_recover(struct forq *q, forq_final_fn fn, void *ctx)
{
	struct forq_hdr *h = q->h;
	uint32_t gen = atomic_load(&h->generation);
	int given = 0;
	int r = cycle_locks(q); /* first: a lock that cannot be had fails recovery */
	if (r)
		return r;
	for (uint32_t i = 0; i < h->max_procs; i++) {
		struct forq_proc *p = forq__proc(q, i);
		if (p == q->me || atomic_load(&p->state) != FORQ_PROC_ACTIVE)
			continue;
		if (p->role != FORQ_ROLE_CLIENT && p->generation < gen && proc_is_ours(p)) {
			/* A consumer of the dead forqd: fence it, its command first,
			 * while that command's leader is its unreaped child. */
			kill_handler_group(p);
			kill_and_wait(p);
		}
		if (proc_alive(p))
			continue;
		if ((r = repair_record(q, i, "forqd restarted while it ran", GIVEBACK_CRASHED, fn,
				       ctx)) < 0)
			return r;
		given += r;
	}
	/* Leases belonged to the dead forqd's connections, which are gone. */
	for (uint32_t i = 0; i < h->lease_max; i++) {
		struct forq_entry *e = forq__entry_at(q, h->lease_off, i);
		if (e->rec.state == FORQ_ENTRY_HELD)
			e->rec.state = FORQ_ENTRY_RUNNING; /* handed out: count it */
		if (giveback_entry(q, e, GIVEBACK_LOST, "lease lost when forqd restarted", fn, ctx) ==
		    1)
			given++;
	}
	r = cycle_locks(q);
	return r ? r : given;
}

static void report_entry(struct forq *q, struct forq_entry *e, forq_final_fn fn, void *ctx, const char *why)
{
	forq__report_final(fn, ctx, &e->rec, FORQ_RESULT_UNFINISHED, why);
	forq__entry_clear(q, e);
}

int forq_admin_drain_each(struct forq *q, forq_final_fn fn, void *ctx)
{
	struct forq_hdr *h = q->h;
	int total = 0;
	int e = cycle_locks(q);
	if (e)
		return e;
	for (int r = 0; r < FORQ_NRINGS; r++) {
		int n;
		while ((n = forq__ring_pop(q, r, h->batch_max, FORQ_ENTRY_HELD)) > 0) {
			for (int i = 0; i < n; i++) {
				struct forq_entry *e = forq__inflight(q, q->me_idx, (uint32_t)i);
				report_entry(q, e, fn, ctx,
					     e->rec.flags & FORQ_REC_STOPPED
						     ? "forqd stopped while it ran: its handler "
						       "was killed when it did not stop in time"
						     : "forqd stopped before it ran");
			}
			total += n;
		}
	}
	for (uint32_t i = 0; i < h->retry_max; i++) {
		struct forq_entry *e = forq__entry_at(q, h->retry_off, i);
		if (e->rec.state == FORQ_ENTRY_WAITING) {
			int delayed = e->rec.flags & FORQ_REC_DELAYED;
			report_entry(q, e, fn, ctx,
				     delayed ? "forqd stopped before its delay ran out"
					     : "forqd stopped while it waited for a retry");
			atomic_fetch_sub(&h->retry_used, 1);
			if (delayed)
				atomic_fetch_sub(&h->sched_used, 1);
			total++;
		}
	}
	for (uint32_t i = 0; i < h->lease_max; i++) {
		struct forq_entry *e = forq__entry_at(q, h->lease_off, i);
		if (e->rec.state >= FORQ_ENTRY_HELD && e->rec.state <= FORQ_ENTRY_FINISHED) {
			report_entry(q, e, fn, ctx, "forqd stopped while a remote worker held it");
			total++;
		}
	}
	return total;
}
