/* internal.h — what the core's .c files share; not installed, not for service/. */
#ifndef FORQ_INTERNAL_H
#define FORQ_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "forq_admin.h"
#include "clock.h"
#include "errmsg.h"
#include "forq.h"
#include "layout.h"

struct forq {
	uint8_t *base;          /* the mapping */
	size_t size;
	int fd;                 /* the shm object, kept open for flock and fstat */
	struct forq_hdr *h;
	struct forq_proc *me;   /* our record, NULL if none could be claimed */
	uint32_t me_idx;
	int pid;                /* pid that claimed `me` (a forked child must re-claim) */
	uint32_t entry_size;
	uint32_t batch_n;       /* entries of the current pop */
	uint32_t batch_open;    /* entries not yet finished */
	uint32_t lease_hint;    /* where to look for a free lease entry */
	uint32_t sparse;        /* h->sparse, read once at attach */
	int retries_upstream;   /* forq_admin_retries_upstream */
	uint64_t durable_target[FORQ_NRINGS]; /* ring tail after our last unsynced push, 0: none */
	uint64_t sched_target;  /* our last unsynced delayed push's sequence, 0: none */
	int nowait;             /* pushes never wait for the journal (forq_admin_push_nowait) */
	char name[NAME_MAX + 1];
};

static inline struct forq_ring *forq__ring(struct forq *q, int r)
{
	return &q->h->rings[r];
}

static inline uint8_t *forq__arena(struct forq *q, const struct forq_ring *r)
{
	return q->base + r->arena_off;
}

static inline struct forq_proc *forq__proc(struct forq *q, uint32_t i)
{
	return (struct forq_proc *)(q->base + q->h->procs_off) + i;
}

static inline struct forq_entry *forq__entry_at(struct forq *q, uint64_t off, uint32_t i)
{
	return (struct forq_entry *)(q->base + off + (uint64_t)i * q->entry_size);
}

/* In-flight entry i of process p. */
static inline struct forq_entry *forq__inflight(struct forq *q, uint32_t p, uint32_t i)
{
	return forq__entry_at(q, q->h->inflight_off, p * q->h->batch_max + i);
}

static inline struct forq_entry *forq__retry_entry(struct forq *q, uint32_t i)
{
	return forq__entry_at(q, q->h->retry_off, i);
}

static inline struct forq_entry *forq__dead_entry(struct forq *q, uint32_t i)
{
	return forq__entry_at(q, q->h->dead_off, i);
}

static inline void forq__copy_rec(struct forq_entry *e, const struct forq_rec *rec)
{
	memcpy(&e->rec, rec, sizeof *rec + rec->len);
}

static inline struct forq_recent *forq__recent(struct forq *q, uint64_t id)
{
	/* recent_max is a power of two: a mask, not a division, per task */
	return (struct forq_recent *)(q->base + q->h->recent_off) + (id & (q->h->recent_max - 1));
}

/* Histogram bucket of a value in ns: 2^(k-1) < v <= 2^k. */
static inline unsigned forq__hist_bucket(uint64_t v)
{
	if (v <= 1)
		return 0;
	unsigned k = 64u - (unsigned)__builtin_clzll(v - 1);
	return k < FORQ_HIST_BUCKETS ? k : FORQ_HIST_BUCKETS - 1;
}

/* Copies a record (header + payload). Hot path: most payloads are small, and
 * a word loop beats a call to memcpy for them. */
static inline void forq__rec_copy(void *dst, const void *src, uint32_t len)
{
	size_t n = FORQ_REC_SIZE(len);
	if (n <= 128) {
		uint64_t *d = dst;
		const uint64_t *s = src;
		for (size_t i = 0; i < n / 8; i++)
			d[i] = s[i];
	} else {
		memcpy(dst, src, n);
	}
}

/* Keeps a task's last error in its entry (truncated), for a dead task whose
 * result is still to be written. */
static inline void forq__entry_set_error(struct forq_entry *e, const char *text, size_t len)
{
	if (!text)
		len = 0;
	if (len >= sizeof e->error)
		len = sizeof e->error - 1;
	if (len)
		memcpy(e->error, text, len);
	e->error[len] = '\0';
}

/* A record's priority as a counter index: the shared memory is not trusted. */
static inline unsigned forq__lane(unsigned prio)
{
	return prio < FORQ_NPRIO ? prio : FORQ_NORMAL;
}

/* Owner-only counter bump: a relaxed load and store, no locked instruction. */
static inline void forq__add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Adds per-lane counts of one batch, skipping lanes it did not touch. */
static inline void forq__add_lanes(_Atomic uint64_t *c, const uint64_t *n)
{
	for (int p = 0; p < FORQ_NPRIO; p++)
		if (n[p])
			forq__add(&c[p], n[p]);
}

/* Robust lock of a process-shared mutex; on EOWNERDEAD runs repair(q, arg)
 * while holding it, then marks it consistent. Returns 0 or -errno. */
/* Takes a robust lock, repairing what a holder that died inside left (repair
 * may be NULL). -EDEADLK when another process has held it for seconds (a
 * stopped process, or a crafted object): callers give up, never hang. */
int forq__lock(struct forq *q, pthread_mutex_t *m, void (*repair)(struct forq *, void *),
	       void *arg);
void forq__unlock(pthread_mutex_t *m);
int forq__mutex_init(pthread_mutex_t *m);

/* ring.c */
/* Pushes n tasks into ring r. New tasks come from msgs (ids from tmpl->id
 * up, other fields from tmpl, per-task lines from `lines` if not NULL);
 * given-back records come from recs (each a struct forq_rec followed by its
 * payload). Returns 0, -EAGAIN when there is no room now, or -EINVAL when n
 * can never fit (at most FORQ_PUSH_BATCH_MAX a call). Takes the push lock. */
int forq__ring_push(struct forq *q, int r, size_t n, const struct forq_msg *msgs,
		    const struct forq_rec *tmpl, const uint32_t *lines,
		    const struct forq_rec *const *recs);
/* Pops up to max records of ring r into our in-flight entries [0, max), in
 * `state` (HELD; a purge's PURGED, so that the pop and the purge are one
 * step for repair). Returns how many (0 if empty). Takes the pop lock. */
int forq__ring_pop(struct forq *q, int r, uint32_t max, uint8_t state);
void forq__ring_repair_push(struct forq *q, void *ring);
void forq__ring_repair_pop(struct forq *q, void *ring);
int forq__ring_init(struct forq_ring *r, uint64_t arena_off, uint64_t arena_bytes,
		    uint64_t cap_tasks);

static inline int forq__ring_empty(struct forq_ring *r)
{
	return atomic_load_explicit(&r->tail, memory_order_acquire) ==
	       atomic_load_explicit(&r->head, memory_order_relaxed);
}

/* durable.c: how far consumers may pop ring r: its tail, or in a journaled
 * queue only what the journal has written (a consumer never pops a task the
 * journal has not seen). */
static inline uint64_t forq__ring_limit(struct forq *q, struct forq_ring *r)
{
	if (atomic_load_explicit(&q->h->flags, memory_order_relaxed) & FORQ_F_JOURNAL)
		return atomic_load_explicit(&r->durable, memory_order_acquire);
	return atomic_load_explicit(&r->tail, memory_order_acquire);
}
/* Nothing a consumer may pop from ring r now. */
static inline int forq__ring_idle(struct forq *q, struct forq_ring *r)
{
	return forq__ring_limit(q, r) == atomic_load_explicit(&r->head, memory_order_relaxed);
}
/* After a push to ring r in a queue whose producers wait for the journal
 * (FORQ_F_JOURNAL_SYNC): waits until the journal covers it. 0, -ETIMEDOUT
 * or -ESHUTDOWN (the journal stopped). */
int forq__durable_wait(struct forq *q, struct forq_ring *r, int timeout_ms);
/* After a push not waited for: forq_sync waits for ring's tail as it is now. */
void forq__durable_note(struct forq *q, int ring);
/* After a push of one task to ring (index), or of a delayed task whose
 * journal sequence is seq (0: none): in a queue whose producers wait for
 * the journal, waits until it is written (5 s at most). 0, -ETIMEDOUT or
 * -ESHUTDOWN. */
int forq__ring_wait(struct forq *q, int ring);
int forq__sched_wait(struct forq *q, uint64_t seq);
/* backing.c: memory that follows what is queued, in a sparse queue. */
#define FORQ_PAGE 4096u
#define FORQ_PAGE_UP(n) (((uint64_t)(n) + FORQ_PAGE - 1) & ~(uint64_t)(FORQ_PAGE - 1))
#define FORQ_PAGE_DOWN(n) ((uint64_t)(n) & ~(uint64_t)(FORQ_PAGE - 1))
/* A queue is sparse when an entry with the largest payload outgrows a page. */
#define FORQ_BACKED_PAYLOAD_MAX (FORQ_PAGE - (uint32_t)sizeof(struct forq_entry))
/* Rings reserve ahead and give back behind in steps of this many bytes: one
 * system call per step, not per push. */
#define FORQ_BACKING_CHUNK (1u << 20)
int forq__entry_back_slow(struct forq *q, struct forq_entry *e, uint32_t len, unsigned keep);
void forq__entry_unback(struct forq *q, struct forq_entry *e);
/* Reserves ring positions [.., end) before a push writes there, and gives back
 * what consumers are done with below head. Push lock held. 0 or -EAGAIN when
 * /dev/shm is full (the caller treats it as a full queue). */
int forq__ring_back(struct forq *q, struct forq_ring *r, uint64_t head, uint64_t end);

/* What each kind of write leaves free in /dev/shm, in largest entries
 * (backing.c says why). */
#define FORQ_KEEP_PUSH 4u
#define FORQ_KEEP_TAKE 2u
#define FORQ_KEEP_MOVE 0u

/* Reserves what entry e needs for a payload of len before it is copied in,
 * leaving `keep` largest entries free: 0, or -EAGAIN. */
static inline int forq__entry_back(struct forq *q, struct forq_entry *e, uint32_t len,
				   unsigned keep)
{
	if (!q->sparse || sizeof *e + len <= FORQ_PAGE)
		return 0;
	return forq__entry_back_slow(q, e, len, keep);
}

/* Empties entry e, then gives back the pages its payload held: in that
 * order, as a process killed in between must leave an empty entry with
 * pages to spare, never a held task whose payload is gone. */
static inline void forq__entry_clear(struct forq *q, struct forq_entry *e)
{
	e->rec.state = FORQ_ENTRY_EMPTY;
	if (q->sparse && e->backed)
		forq__entry_unback(q, e);
}

/* rate.c: pops up to max records of ring ri into our in-flight entries as
 * new starts, as many as the start rate limit allows now: the count (0 if
 * empty), or -EAGAIN with *wait_ns until the next start when it says wait. */
int forq__ring_pop_started(struct forq *q, int ri, uint32_t max, uint64_t *wait_ns);

/* Wake-ups (queue.c). */
void forq__wake_work(struct forq *q, size_t n);
/* Wakes sleeping producers if ring r (NULL: any) is half empty. */
void forq__wake_space(struct forq *q, const struct forq_ring *r);

/* Gives a record back to the front ring of its lane (repair, due retry).
 * Waits for room (front rings are sized so that they rarely fill). */
int forq__requeue(struct forq *q, const struct forq_rec *rec);

/* Retry and dead-letter tables (aux.c), under aux_lock. */
int forq__retry_add(struct forq *q, const struct forq_rec *rec, uint64_t due_ns);
/* A delayed task (FORQ_REC_DELAYED) into the waiting table: *seq gets its
 * journal sequence (0 when the queue is not journaled). */
int forq__delayed_add(struct forq *q, const struct forq_rec *rec, uint64_t due_ns, uint64_t *seq);
int forq__dead_add(struct forq *q, const struct forq_rec *rec, const char *error, size_t len);
void forq__recent_put(struct forq *q, const struct forq_rec *rec, int status, const char *text,
		      size_t len, uint64_t run_ns);
int forq__fail_delivery(struct forq *q, struct forq_rec *rec, const char *why, size_t why_len,
			int backoff);
int forq__lose_delivery(struct forq *q, struct forq_rec *rec, const char *why,
			forq_final_fn fn, void *ctx);
int forq__attach_bare(struct forq **qp, const char *name, char *err, size_t errlen);

/* aux_lock guards the lease, retry and dead tables; 0 or -errno. */
int forq__aux_lock(struct forq *q);
/* Gives a record back to the front of its lane without waiting (caller holds
 * aux_lock): -EAGAIN when the lane is full, leave it for next time. */
int forq__requeue_now(struct forq *q, const struct forq_rec *rec);
/* Drops id's recent result (a dead letter re-queued is unfinished again). */
void forq__recent_forget(struct forq *q, uint64_t id);
/* wake.c: a monotonic deadline timeout_ms from now (-1: never), and a sleep on
 * a wake-up word until ready(q, arg) or the deadline: 0 or -ETIMEDOUT. */
uint64_t forq__deadline_of(int timeout_ms);
/* A lane has room for a sleeping producer once it is at most half full. */
int forq__ring_half_empty(const struct forq_ring *r);
int forq__sleep_on(struct forq *q, _Atomic uint32_t *seq, _Atomic uint32_t *sleepers,
		   int (*ready)(struct forq *, void *), void *arg, uint64_t deadline);

/* control.c: reports in-flight or retry entry e, PURGED or CANCELLED, as
 * purged or cancelled (fn, the recent table, the count) and frees it;
 * reports the retry entries purger or canceller `owner` (proc index + 1)
 * marked and left. */
void forq__report_dropped(struct forq *q, struct forq_entry *e, forq_final_fn fn, void *ctx);
int forq__drop_retries_of(struct forq *q, uint32_t owner, forq_final_fn fn, void *ctx);
/* Frees the entries of the caller's last batch (their results are written),
 * as a pop does; -EBUSY while some are not finished. */
int forq__free_last_batch(struct forq *q);

/* queue.c */
/* What a push of one task (forq_push_delayed, forq_push_unique) refuses:
 * -EINVAL, -EMSGSIZE, -EPERM (no process record), -ESHUTDOWN; else 0. */
int forq__check_one_push(struct forq *q, int prio, const void *payload, size_t len,
			 uint64_t delay_ms);
/* Puts a new task (tmpl's id, priority, attempts and flags; payload) in
 * the waiting table for delay_ms: 0 or -EAGAIN when the table is full;
 * *seq as forq__delayed_add's (seq may be NULL). */
int forq__push_delayed_rec(struct forq *q, const struct forq_rec *tmpl, const void *payload,
			   size_t len, uint64_t delay_ms, uint64_t *seq);
int forq__push_lines(struct forq *q, int prio, const struct forq_msg *msgs, const uint32_t *lines,
		     size_t n, int timeout_ms, uint64_t *ids);

/* shm.c */
int forq__proc_claim(struct forq *q, uint32_t role, int worker);
void forq__proc_release(struct forq *q);
/* /proc/PID/stat read into buf: a pointer to the ")" that ends the process
 * name (the state and the numeric fields follow), NULL if unreadable. */
const char *forq__proc_stat(int pid, char *buf, size_t cap);
uint64_t forq__proc_start_ticks(int pid);

static inline struct forq_key *forq__key_slot(struct forq *q, uint32_t i)
{
	return (struct forq_key *)(q->base + q->h->keys_off) + i;
}

/* A key's hash: FNV-1a, 64 bits. */
static inline uint64_t forq__key_hash(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)k[i]) * 1099511628211ull;
	return h;
}

/* A keyed record's key (FORQ_KEY_MAX bytes of room) and window: its
 * length, 0 when rec holds none (or its slot is another task's now: a
 * slot taken again meanwhile shows in its id or in a hash that does not
 * match what was read). No lock (the journal's writer). */
static inline uint32_t forq__key_of(struct forq *q, const struct forq_rec *rec, char *key,
				    uint64_t *window_ns)
{
	uint32_t slot = rec->line - 1;
	if (!(rec->flags & FORQ_REC_KEYED) || slot >= q->h->keys_max)
		return 0;
	struct forq_key *e = forq__key_slot(q, slot);
	if (atomic_load(&e->id) != rec->id)
		return 0;
	uint64_t hash = e->hash;
	uint32_t len = e->len;
	*window_ns = e->window_ns;
	if (len == 0 || len > FORQ_KEY_MAX)
		return 0;
	memcpy(key, e->key, len);
	if (atomic_load(&e->id) != rec->id || forq__key_hash(key, len) != hash)
		return 0;
	return len;
}

/* A keyed task's final result is recorded (forq__recent_put): its key's
 * window starts (keys.c). No lock: only the slot's holder matches. */
static inline void forq__key_release(struct forq *q, const struct forq_rec *rec)
{
	uint32_t slot = rec->line - 1;
	if (slot >= q->h->keys_max)
		return;
	struct forq_key *e = forq__key_slot(q, slot);
	if (atomic_load(&e->id) == rec->id)
		atomic_store_explicit(&e->done_ns, clock_mono_ns() | 2u, memory_order_release);
}

/* The tasks-file line rec came from, 0 if none (a keyed task's `line` is
 * its key slot). */
static inline uint32_t forq__rec_line(const struct forq_rec *rec)
{
	return rec->flags & FORQ_REC_KEYED ? 0 : rec->line;
}

/* Tells fn (if any) of rec's final status; its payload follows rec. */
static inline void forq__report_final(forq_final_fn fn, void *ctx, const struct forq_rec *rec,
				      int status, const char *text)
{
	if (!fn)
		return;
	struct forq_task_info t = {.id = rec->id, .len = rec->len, .line = forq__rec_line(rec),
				   .attempts = rec->attempts, .prio = rec->prio};
	fn(ctx, &t, rec + 1, status, text, strlen(text));
}

#endif
