/* failpoint.h — crash points for the reliability tests: a process may be
 * killed with SIGKILL at each named step of push, pop, task, lease, retry,
 * dead letter and repair, to prove that no step loses a task.
 *
 * FORQ_FAILPOINT("name") compiles to nothing unless FORQ_FAILPOINTS is
 * defined (cmake -DFORQ_FAILPOINTS=ON: test builds only, never a release).
 * In such a build the environment chooses the points, read once per process:
 *
 *   FORQ_FAILPOINT="NAME:N[,NAME:N...]"  SIGKILL at the N-th hit of NAME
 *   FORQ_FAILPOINT="NAME:A-B"            N drawn from [A, B] by
 *                                        FORQ_FAILPOINT_SEED (default 1)
 *
 * Each process counts its own hits from 0 (a forked child starts again), so
 * a consumer that forqd restarts dies again at its own N-th hit. A drawn N
 * depends only on the seed and the name: runs are reproducible, and every
 * process of a run draws the same N; vary the seed between runs. At most 8
 * points at once; names are at most 31 characters.
 *
 * The points (file: the step just done when the process dies):
 *   push.locked       ring.c     push lock taken, nothing written yet
 *   push.copy         ring.c     a record of the batch written, tail not moved
 *   push.before_tail  ring.c     every record written, tail not yet stored
 *   push.after_tail   ring.c     tail stored, tail count not yet, lock held
 *   pop.locked        ring.c     pop lock taken, pop note written
 *   pop.copy          ring.c     a record copied to an in-flight entry
 *   pop.after_head    ring.c     head stored, head count not yet, lock held
 *   task.begin        queue.c    entry marked running, handler not started
 *   task.finish       queue.c    outcome counted, entry finished, result
 *                                line not yet written
 *   consumer.flush    consumer.c the batch's result lines buffered, not
 *                                yet written
 *   consumer.flushed  consumer.c result lines written, entries not released
 *   retry.add         aux.c      retry entry filled, not yet waiting, aux
 *                                lock held
 *   dead.add          aux.c      dead entry filled, not yet dead, aux lock held
 *   requeue           queue.c    record pushed to its front ring, the
 *                                caller's copy not yet cleared
 *   purge.report      control.c  a purged task's result reported, its entry
 *                                not yet freed (the purger dies mid-purge)
 *   cancel.copied     cancel.c   a cancelled task copied to the canceller's
 *                                entry, its ring record not yet flagged
 *   cancel.report     control.c  a cancelled task's result reported, its
 *                                entry not yet freed
 *   repair.giveback   repair.c   an entry of a dead process given back, the
 *                                next ones not yet (forqd dies mid-repair)
 *   lease.take        lease.c    tasks popped for a remote worker, not yet
 *                                in lease entries
 *   lease.finish      lease.c    a lease's outcome counted, its result not
 *                                yet written
 *   lease.release     lease.c    a lease's result written, entry not freed
 */
#ifndef FORQ_FAILPOINT_H
#define FORQ_FAILPOINT_H

#ifdef FORQ_FAILPOINTS

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FORQ__FP_MAX 8

/* One copy per translation unit (static inline): a point's name lives in one
 * file, so its count is per process as documented. */
struct forq__fp_state {
	pthread_mutex_t lock; /* forqd's threads may hit points at once */
	int parsed;           /* 0: read the environment at the next hit */
	int n;
	struct {
		char name[32];
		unsigned long at, hits;
	} p[FORQ__FP_MAX];
};

static inline struct forq__fp_state *forq__fp(void)
{
	static struct forq__fp_state st = {.lock = PTHREAD_MUTEX_INITIALIZER};
	return &st;
}

static inline void forq__fp_after_fork(void)
{
	struct forq__fp_state *st = forq__fp();
	pthread_mutex_init(&st->lock, NULL); /* another thread may have held it */
	st->parsed = 0; /* the child counts its own hits */
}

static inline unsigned long forq__fp_draw(const char *name, unsigned long a, unsigned long b)
{
	const char *s = getenv("FORQ_FAILPOINT_SEED");
	uint64_t x = s ? strtoull(s, NULL, 10) : 1;
	for (; *name; name++)
		x = (x ^ (unsigned char)*name) * 0x100000001b3ull;
	x ^= x >> 33; /* splitmix-style finish */
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return a + (unsigned long)(x % (b - a + 1));
}

static inline void forq__fp_parse(struct forq__fp_state *st)
{
	static int registered;
	if (!registered) {
		registered = 1;
		pthread_atfork(NULL, NULL, forq__fp_after_fork);
	}
	st->n = 0;
	const char *env = getenv("FORQ_FAILPOINT");
	while (env && *env && st->n < FORQ__FP_MAX) {
		const char *colon = strchr(env, ':');
		size_t len = colon ? (size_t)(colon - env) : 0;
		if (!colon || len == 0 || len >= sizeof st->p[0].name)
			break;
		char *end;
		unsigned long a = strtoul(colon + 1, &end, 10), b = a;
		if (*end == '-')
			b = strtoul(end + 1, &end, 10);
		if (a == 0 || b < a)
			break;
		memcpy(st->p[st->n].name, env, len);
		st->p[st->n].name[len] = '\0';
		st->p[st->n].at = a == b ? a : forq__fp_draw(st->p[st->n].name, a, b);
		st->p[st->n].hits = 0;
		st->n++;
		env = *end == ',' ? end + 1 : NULL;
	}
	__atomic_store_n(&st->parsed, 1, __ATOMIC_RELEASE);
}

static inline void forq__failpoint(const char *name)
{
	struct forq__fp_state *st = forq__fp();
	if (!__atomic_load_n(&st->parsed, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&st->lock);
		if (!st->parsed)
			forq__fp_parse(st);
		pthread_mutex_unlock(&st->lock);
	}
	for (int i = 0; i < st->n; i++)
		if (strcmp(st->p[i].name, name) == 0 &&
		    __atomic_add_fetch(&st->p[i].hits, 1, __ATOMIC_RELAXED) == st->p[i].at)
			raise(SIGKILL);
}

#define FORQ_FAILPOINT(name) forq__failpoint(name)

#else

#define FORQ_FAILPOINT(name) ((void)0)

#endif
#endif
