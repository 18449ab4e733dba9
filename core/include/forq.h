/* forq.h — libforq: a task queue in POSIX shared memory, on one host.
 *
 * A queue is one shared-memory object (name like "/forq") created by forqd.
 * Any process of the same user opens it by name and pushes tasks (single or
 * batches) into three priority lanes, or pops batches and reports each task's
 * outcome. Every function returns 0 (or a count) on success and a negative
 * errno on failure; none prints, exits or keeps a global. A failed call
 * changes nothing in the queue.
 *
 * Errors you can get:
 *   -EAGAIN     the queue stayed full for the whole timeout (push)
 *   -ETIMEDOUT  nothing to pop within the timeout (pop)
 *   -ESHUTDOWN  the queue is not accepting tasks (forqd is draining or gone)
 *   -EMSGSIZE   payload larger than the queue's max payload
 *   -EINVAL     bad argument (priority, empty batch, size over a limit)
 *   -EBUSY      pop while tasks of the previous batch are still unfinished
 *   -EPROTO     the object is not a forq queue of this version (see err text)
 * Thread safety: a struct forq is used by one thread at a time; open one per
 * thread. Processes may share a queue freely.
 */
#ifndef FORQ_H
#define FORQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FORQ_VERSION "0.1.0"

enum forq_prio { FORQ_HIGH = 0, FORQ_NORMAL = 1, FORQ_LOW = 2 };

/* Final or intermediate outcome of one delivery of a task. */
enum forq_result_status {
	FORQ_RESULT_NONE = 0,
	FORQ_RESULT_DONE = 1,    /* finished ok */
	FORQ_RESULT_FAILED = 2,  /* finished with a permanent error (bad input) */
	FORQ_RESULT_DEAD = 3,    /* attempts exhausted: moved to the dead letters */
	FORQ_RESULT_RETRY = 4,   /* transient error: will be tried again later */
	FORQ_RESULT_UNFINISHED = 5, /* forqd stopped before it ran (drain timeout, stop now) */
	FORQ_RESULT_PURGED = 6,  /* dropped unrun by a purge of its queue */
	FORQ_RESULT_CANCELLED = 7, /* cancelled while it was queued: never run */
	FORQ_RESULT_REDELIVER = 8, /* transient error on a queue fed by a stream: the task
				    * leaves this host, the stream delivers it again
				    * (forq_admin_retries_upstream) */
};

struct forq;

/* Sizes fixed when the queue is created. */
struct forq_options {
	uint32_t capacity;      /* tasks per priority lane (default 65536) */
	uint32_t max_payload;   /* bytes per task (default 1024, at most 1 MiB) */
	uint32_t batch_max;     /* tasks one pop may hold (default 64) */
	uint32_t max_procs;     /* processes attached at once (default 64) */
	uint32_t lease_max;     /* tasks leased to remote workers (default 1024) */
	uint32_t retry_max;     /* tasks waiting for a retry backoff (default 1024) */
	uint32_t dead_max;      /* dead letters kept (default 1024) */
	uint32_t recent_max;    /* recent results kept for lookup by id (default 65536;
				 * a power of two, rounded up) */
	uint32_t max_attempts;  /* deliveries before a task is dead (default 3) */
	uint32_t backoff_ms;    /* first retry delay, doubled each time (default 100) */
	uint32_t keys_max;      /* unique keys held at once (default 16384; a power of
				 * two, rounded up) */
	uint64_t first_id;      /* the first task's id (default 1; 1 to 2^53 - 1, so
				 * JSON numbers hold ids exactly): forqd starts each
				 * named queue's ids at its own base, so that ids are
				 * unique across the queues it serves. A queue
				 * recovered from shared memory keeps its counter */
};

/* A message to push. */
struct forq_msg {
	const void *payload;
	uint32_t len;
};

/* A popped task. `payload` points into the queue and stays valid until the
 * next pop on the same handle. */
struct forq_task {
	uint64_t id;
	const void *payload;
	uint32_t len;
	uint8_t prio;         /* enum forq_prio */
	uint16_t attempts;    /* earlier deliveries of this task */
	uint32_t line;        /* tasks-file line (forqd --tasks), 0 if none */
	uint64_t enqueued_ns; /* CLOCK_MONOTONIC, first enqueue */
	uint32_t slot;        /* internal: in-flight entry index */
	void *entry;          /* internal: the in-flight entry */
};

void forq_options_default(struct forq_options *o);

/* Creates a new queue object `name` (O_EXCL, mode 0600) and attaches to it.
 * Fails with -EEXIST if the name is taken, -ENOSPC if /dev/shm cannot hold it.
 * `err` gets a one-line reason on failure (may be NULL). */
int forq_create(struct forq **qp, const char *name, const struct forq_options *o, char *err,
		size_t errlen);

/* Attaches to an existing queue, validating owner, mode, size and header. */
int forq_open(struct forq **qp, const char *name, char *err, size_t errlen);

/* Named queues. forqd serves one or more queues by name (forqd --config);
 * each is its own shared-memory object under forqd's --shm-name: the queue
 * "default" is base itself, any other NAME is "base.NAME". A name is 1 to
 * FORQ_QUEUE_NAME_MAX letters, digits, '_' or '-'. */
#define FORQ_QUEUE_DEFAULT "default"
#define FORQ_QUEUE_NAME_MAX 32
/* 1 when name is a valid queue name. */
int forq_queue_name_ok(const char *name);
/* Writes queue's object name under base into out. Returns 0, -EINVAL for a
 * bad queue name, -ENAMETOOLONG when out is too small. */
int forq_queue_shm_name(const char *base, const char *queue, char *out, size_t cap);
/* forq_open of queue under base (NULL: "/forq", forqd's default). */
int forq_open_queue(struct forq **qp, const char *base, const char *queue, char *err,
		    size_t errlen);

/* Detaches: finished tasks are released, unfinished ones given back. */
void forq_close(struct forq *q);

/* Removes the name (the creator's job). */
int forq_unlink(const char *name);

/* Pushes one task; `*id` gets its id. Waits up to timeout_ms (-1: forever,
 * 0: not at all) while the lane is full. On a queue forqd journals with
 * --fsync always it returns once the task is on disk: -ETIMEDOUT when that
 * takes longer than timeout_ms (5 s with 0), the task then stays queued. */
int forq_push(struct forq *q, enum forq_prio prio, const void *payload, size_t len, int timeout_ms,
	      uint64_t *id);

/* Pushes one task that may start no sooner than delay_ms from now (at most
 * FORQ_DELAY_MAX_MS, a year; 0 is forq_push). It waits in the queue's
 * waiting table, which it shares with retries (forqd --waiting-max): a full
 * one is -EAGAIN at once, like a full lane. forqd moves it to the front of
 * its lane once due, within a tenth of a second. */
#define FORQ_DELAY_MAX_MS (366ull * 24 * 3600 * 1000)
/* Task ids stay below 2^53: a JSON reader that keeps numbers as doubles
 * (JavaScript) holds every id exactly. */
#define FORQ_ID_SAFE_MAX (1ull << 53)
int forq_push_delayed(struct forq *q, enum forq_prio prio, const void *payload, size_t len,
		      uint64_t delay_ms, uint64_t *id);

/* Pushes one task under a unique key (1 to FORQ_KEY_MAX bytes): if a task of
 * this queue that holds the key is pending, scheduled or running, or ended
 * less than window_ms ago, nothing is pushed, *id gets that task's id and
 * *dup 1; else as forq_push_delayed (delay_ms 0: at once), *dup 0. Never
 * waits: -EAGAIN when the lane, the waiting table or the key table is full. */
#define FORQ_KEY_MAX 94
int forq_push_unique(struct forq *q, enum forq_prio prio, const void *payload, size_t len,
		     const char *key, size_t key_len, uint64_t window_ms, uint64_t delay_ms,
		     uint64_t *id, int *dup);

/* Pushes n tasks with one synchronisation step; all or nothing. ids[i] gets the
 * id of msgs[i] (ids may be NULL). n must be at most the lane capacity. */
#define FORQ_PUSH_BATCH_MAX 256 /* the most tasks one forq_push_batch takes (else -EINVAL) */
int forq_push_batch(struct forq *q, enum forq_prio prio, const struct forq_msg *msgs, size_t n,
		    int timeout_ms, uint64_t *ids);

/* Pipelined durable pushes. forq_push_batch_async is forq_push_batch that
 * returns once the tasks are queued, without waiting for forqd's journal
 * (--fsync always), so that a producer keeps pushing while the disk syncs;
 * forq_sync then waits until everything this handle pushed (async or not)
 * is on disk, up to timeout_ms (-1: forever, 0: only look). forq_sync
 * returns 0 (at once on a queue not journaled with --fsync always),
 * -ETIMEDOUT (the tasks stay queued and are journaled later: call it
 * again), or -ESHUTDOWN (the journal stopped first: they stay queued, not
 * known to be on disk). Tasks are never lost by not waiting; what an
 * unsynced push risks is only a reboot before its sync. */
int forq_push_batch_async(struct forq *q, enum forq_prio prio, const struct forq_msg *msgs,
			  size_t n, int timeout_ms, uint64_t *ids);
int forq_sync(struct forq *q, int timeout_ms);

/* Pops up to max tasks, highest priority first, waiting up to timeout_ms for
 * the first one. Returns how many (>= 1). Tasks of the previous pop must all be
 * finished with forq_task_finish first (else -EBUSY). */
int forq_pop_batch(struct forq *q, struct forq_task *tasks, size_t max, int timeout_ms);

/* Pops one task: forq_pop_batch with max 1. Returns 0, or -ETIMEDOUT,
 * -ESHUTDOWN (the queue is draining and empty), -EBUSY as above. */
int forq_pop(struct forq *q, struct forq_task *task, int timeout_ms);

/* Marks a popped task as running (so that a crash now counts against it). */
void forq_task_begin(struct forq *q, const struct forq_task *t);

/* Reports a popped task's outcome: FORQ_RESULT_DONE, _FAILED (permanent) or
 * _RETRY (transient: retried with backoff, dead after max attempts). `text` is
 * the result or the error. run_ns is the handler's run time (0 if unknown).
 * Returns the final status (DONE, FAILED, DEAD) or FORQ_RESULT_RETRY when the
 * task will run again, or a negative errno. */
int forq_task_finish(struct forq *q, const struct forq_task *t, enum forq_result_status status,
		     const char *text, size_t text_len, uint64_t run_ns);

/* Gives back every task of the current pop that is not finished, unchanged,
 * so that another consumer takes it; for a consumer asked to stop. */
int forq_giveback(struct forq *q);

/* Queue-wide figures, read without locks (a consistent-enough snapshot). */
struct forq_stats {
	uint64_t enqueued, started, done, failed, dead, retried, crashes, requeued;
	uint64_t pending[3];   /* per priority, main + front rings */
	uint64_t in_progress;  /* held by consumers or leased */
	uint64_t retry_waiting;
	uint64_t dead_letters; /* currently in the dead-letter list */
	uint64_t capacity;     /* per lane */
	uint32_t max_payload;
	uint32_t accepting;    /* 1 while pushes are allowed */
	struct {
		uint64_t enqueued, started, done, failed;
	} lane[3];             /* by priority; the totals above are their sums */
	uint64_t scheduled;    /* pushed with a delay that has not run out */
};
int forq_stats_read(struct forq *q, struct forq_stats *s);

/* Looks up a recent result by id. Returns a FORQ_RESULT_* status, 0 if the id
 * is unknown or forgotten (text gets the result/error, NUL-terminated; the
 * queue keeps at most FORQ_RESULT_TEXT_MAX bytes of it, NUL included). */
#define FORQ_RESULT_TEXT_MAX 96
int forq_result_lookup(struct forq *q, uint64_t id, char *text, size_t cap, uint16_t *attempts);

const char *forq_prio_name(enum forq_prio p);
int forq_prio_parse(const char *s); /* "high"/"normal"/"low" -> enum, else -EINVAL */

/* ---- Queue controls: the handle's queue (forq_open_queue for a named one) ----
 * The same controls as `forq pause|resume|purge|cancel|dead|retry-dead` and
 * forqd's HTTP and TCP ones. Pause and resume, and the dead letters, work
 * with or without forqd; a purge or a cancel is served by the forqd that
 * owns the queue (it alone writes the result records), so they return -ESRCH
 * when none does, or -ETIMEDOUT after timeout_ms (< 0: no limit; forqd may
 * still serve it). */

/* Consumers and remote workers take no task from the queue (the ones running
 * finish); pushes go on. The pause lives in the shared memory, so it outlives
 * forqd until forq_resume. Return 0. */
int forq_pause(struct forq *q);
int forq_resume(struct forq *q);
/* 1 while paused, else 0. */
int forq_paused(struct forq *q);
/* Drops every task pending in the queue, waiting for a retry or delayed,
 * each with a result record of status "purged"; *purged (may be NULL) says
 * how many. Running and dead tasks are not touched. 0 or -errno. */
int forq_purge(struct forq *q, int timeout_ms, uint64_t *purged);
/* Cancels task id: a queued one never runs, a running one is stopped; it
 * ends with one result record of status "cancelled". 0, -ENOENT (not queued:
 * unknown, finished, already cancelled), -EBUSY (it runs and could not be
 * stopped), or as above. */
int forq_cancel(struct forq *q, uint64_t id, int timeout_ms);

/* Dead letters: tasks whose attempts ran out, kept (at most the queue's
 * dead_max, the oldest make way) until re-queued. */
struct forq_dead_info {
	uint64_t id;
	int prio;              /* enum forq_prio */
	unsigned attempts;     /* deliveries it had */
	int64_t died_unix_ns;  /* when it died */
	const char *error;     /* its last error, NUL-terminated (cut to 64 bytes) */
	const void *payload;
	uint32_t len;
};
/* Calls fn for each dead letter, oldest first (under the table's lock: fn
 * must be quick and must not call libforq). Returns how many, or -errno. */
int forq_dead_list(struct forq *q, void (*fn)(void *ctx, const struct forq_dead_info *d),
		   void *ctx);
/* Re-queues dead letter `id` (0: all of them) with attempts reset. Returns
 * how many, -ENOENT if id is not there. */
int forq_dead_retry(struct forq *q, uint64_t id);
/* Re-queues the dead letters ids[0..n) (n 0: all of them), all or none: if
 * one of them is no dead letter, -ENOENT with *missing (may be NULL) set to
 * it and nothing re-queued. Returns how many were re-queued (one the queue
 * has no room for stays dead). */
int forq_dead_retry_ids(struct forq *q, const uint64_t *ids, size_t n, uint64_t *missing);

#ifdef __cplusplus
}
#endif
#endif
