/* admin.h — what forqd and the forq tool do to a queue beyond push and pop:
 * ownership, recovery of dead processes, retries, dead letters, lookups.
 * Same conventions as forq.h (0 or -errno, nothing printed). Not installed. */
#ifndef FORQ_ADMIN_H
#define FORQ_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "forq.h"

/* Values shared with the shared-memory layout (core/layout.h includes this
 * file; changing one is a layout version change). */
#define FORQ_NPRIO 3
#define FORQ_HIST_BUCKETS 40
#define FORQ_MAX_WORKERS 256

enum forq_hdr_flags {
	FORQ_F_ACCEPTING = 1u << 0, /* pushes allowed */
	FORQ_F_DRAINING = 1u << 1,  /* supervisor is draining: consumers exit when empty */
	FORQ_F_STOP = 1u << 2,      /* consumers stop now, giving back what they hold */
	FORQ_F_PAUSED = 1u << 3,    /* consumers and remote workers take no task */
	/* A journaled queue (journal/): consumers pop only what forqd's
	 * journal has written; with SYNC, producers wait until it is on disk. */
	FORQ_F_JOURNAL = 1u << 8,
	FORQ_F_JOURNAL_SYNC = 1u << 9,
	/* A queue fed by a NATS JetStream stream (upstream/bridge.h): set by
	 * its bridge while it runs. */
	FORQ_F_UPSTREAM = 1u << 10,
};

enum forq_worker_state {
	FORQ_WORKER_STOPPED = 0,  /* not running and not due to start */
	FORQ_WORKER_RUNNING = 1,
	FORQ_WORKER_BACKOFF = 2,  /* died; restarts at next_start_ns */
	FORQ_WORKER_STARTING = 3, /* forked, not yet attached */
};

/* A task as callers outside core see it when it reaches a final state. */
struct forq_task_info {
	uint64_t id;
	uint32_t len;      /* payload bytes */
	uint32_t line;     /* tasks-file line it came from, 0 if none */
	unsigned attempts; /* deliveries before this one */
	int prio;          /* enum forq_prio */
};

/* Called for a task that reaches a final state inside a repair (it died with
 * its consumer for the last allowed time): the caller writes its result.
 * text[0..len) is the result or reason, binary-safe (it may hold NULs); core
 * passes NUL-terminated texts, other callers need not. */
typedef void (*forq_final_fn)(void *ctx, const struct forq_task_info *t, const void *payload,
			      int status, const char *text, size_t len);

/* Attaches as forqd: no process record yet. Then take ownership with
 * forq_admin_own, which also claims the supervisor's record. */
int forq_admin_attach(struct forq **qp, const char *name, char *err, size_t errlen);

/* Takes the queue's exclusive ownership lock (flock on the object, released
 * by the kernel if forqd dies): -EBUSY with the owner's pid in err if another
 * forqd has it. Bumps the generation and claims the supervisor record. */
int forq_admin_own(struct forq *q, char *err, size_t errlen);

/* Gives back everything a previous forqd generation left: its consumers'
 * in-flight tasks (killing any consumer still alive first) and its leases.
 * Returns how many tasks were given back. */
int forq_admin_recover(struct forq *q, forq_final_fn fn, void *ctx);

/* Repairs the record of process `pid`, which must be dead (reaped): tasks it
 * held go back to the front of their lane; the one it was running counts a
 * crash (attempts + 1) and may become dead. Returns tasks given back, or
 * -ENOENT if pid had no record. `why` ends up in a dead task's error. */
int forq_admin_repair_pid(struct forq *q, int pid, const char *why, forq_final_fn fn, void *ctx);

/* As forq_admin_repair_pid, for a consumer that forqd itself killed while
 * stopping (it did not stop in time): the task it ran goes back unchanged
 * (this delivery does not count against it) and forq_admin_drain_each
 * reports it as stopped while it ran. */
int forq_admin_repair_stopped(struct forq *q, int pid, forq_final_fn fn, void *ctx);

/* Repairs every record whose process is gone (libforq clients that died). */
int forq_admin_reap_clients(struct forq *q, forq_final_fn fn, void *ctx);

/* Moves retries whose backoff is over to the front of their lane. Returns how
 * many. */
int forq_admin_retry_due(struct forq *q, uint64_t now_ns);

void forq_admin_set_flags(struct forq *q, uint32_t set, uint32_t clear);
uint32_t forq_admin_flags(struct forq *q);

/* The start rate limit: at most per_s task starts a second (0: none),
 * up to burst at once (0: a tenth of a second's, at least 1), shared by every consumer and by
 * remote workers' leases; kept in the queue (-EINVAL out of range). */
int forq_admin_set_rate(struct forq *q, double per_s, uint32_t burst);
/* The limit in starts per second (0: none). */
double forq_admin_rate(struct forq *q);
/* How long until the limit allows a start (0: now, or no limit). */
uint64_t forq_admin_rate_wait_ns(struct forq *q);

/* Bytes of the whole shared-memory object (its address space). */
uint64_t forq_admin_size(struct forq *q);
/* Bytes of memory it holds now: all of it, or for a sparse queue (a largest
 * payload over a page) what its fixed part and the tasks in it take. */
uint64_t forq_admin_resident(struct forq *q);
/* A sparse queue: gives back the ring pages consumers are done with (pushes
 * do it too, a chunk at a time). forqd calls it once a second. 0 or -errno. */
int forq_admin_trim(struct forq *q);

/* Sizes fixed when the queue was created. */
struct forq_limits {
	uint32_t max_payload; /* bytes */
	uint32_t batch_max;   /* tasks one process may hold at once */
	uint32_t lease_max;   /* lease entries for remote workers */
};
void forq_admin_limits(struct forq *q, struct forq_limits *out);

/* forqd's last step with --keep-shm: the queue stays, marked clean and
 * ownerless, for the next forqd to recover. */
void forq_admin_release(struct forq *q);

/* Worker slots: the queue's header holds one row per forqd consumer slot,
 * which the supervisor alone writes (forq_admin_worker_set) and everyone
 * reads (forq_admin_workers). The row is the one copy of a slot's pid,
 * state, restarts and next start: the supervisor reads them back from it
 * (forq_admin_worker_get). The task counts come from the records of the
 * consumer processes that held the slot. */
struct forq_worker_info {
	int32_t pid;            /* 0 when not running */
	uint32_t state;         /* enum forq_worker_state */
	uint32_t restarts;
	uint64_t next_start_ns; /* BACKOFF: earliest restart (CLOCK_MONOTONIC) */
	uint64_t tasks_done;    /* over every process that held the slot */
	uint64_t tasks_failed;  /* failed and dead */
	uint64_t current_task;  /* id of the task its live consumer runs, 0 if none */
	int32_t results_errno;  /* errno of results its live consumer cannot write, 0 if none */
};
void forq_admin_worker_set(struct forq *q, int worker, int32_t pid, uint32_t state,
			   uint32_t restarts, uint64_t next_start_ns);
/* The row of one slot alone (0 <= worker < FORQ_MAX_WORKERS): pid, state,
 * restarts, next start; no task counts (cheap enough for every loop turn). */
void forq_admin_worker_get(struct forq *q, int worker, struct forq_worker_info *out);
/* Fills out[0..n-1] for slots 0..n-1 (n at most FORQ_MAX_WORKERS), with
 * their task counts. */
void forq_admin_workers(struct forq *q, struct forq_worker_info *out, int n);

/* Processes attached as forqd consumers now. */
int forq_admin_consumers_active(struct forq *q);
/* Tasks ever finished (done, failed or dead) by every process record. */
uint64_t forq_admin_finished_total(struct forq *q);

/* After fork(), in the child: registers it as consumer `worker` of forqd. */
int forq_admin_consumer_attach(struct forq *q, int worker);

/* A consumer publishes the process group of the exec: command it runs now
 * (0: none), with its leader's start time. Every repair of the consumer's
 * record (its death, forqd's stop, recovery by the next forqd) SIGKILLs that
 * group before its task goes back to the queue, if the leader is provably
 * the same process (same start time), and never otherwise. */
void forq_admin_handler_group(struct forq *q, int pgid);

/* A consumer whose handler's own process (a proc: child) died, or broke its
 * framing, with task t in hand: t ends as forq_task_finish's RETRY would,
 * but as a crash, as if the consumer itself had died running it: counted in
 * the crashes, given back at once (no backoff), dead after the last
 * attempt with `why` as its error. Returns what forq_task_finish returns. */
int forq_admin_task_crashed(struct forq *q, const struct forq_task *t, const char *why,
			    size_t len, uint64_t run_ns);

/* The queue's shm name ("/forq"), as opened. */
const char *forq_admin_name(const struct forq *q);

/* A consumer publishes the errno of results it cannot write now (0: they
 * are written again); forq_admin_workers shows it. */
void forq_admin_results_errno(struct forq *q, int err);

/* A batch that runs long gives back what it has not started, for whichever
 * consumer is free. Called by a second thread of the consumer while the
 * thread that popped runs the batch and begins none of the tasks from
 * `first` on any more (the caller's own handshake): gives back the batch's
 * entries from `first` on that are not started, and touches nothing else of
 * q but the rings. Returns how many. The thread that popped then calls
 * forq_admin_batch_given with that count before it pops again. */
int forq_admin_giveback_from(struct forq *q, uint32_t first);
void forq_admin_batch_given(struct forq *q, uint32_t n);

/* Retries through the stream (FORQ_F_UPSTREAM): from now on a task this
 * handle finishes with FORQ_RESULT_RETRY and attempts left is not retried
 * here: forq_task_finish returns FORQ_RESULT_REDELIVER, the recent table
 * holds it as FORQ_RESULT_RETRY with its attempts, and the caller tells the
 * bridge, which gives the message back to the stream with
 * forq_admin_backoff_ms. Crashes still go back to this queue at once; a
 * queue without the flag or without a recent table retries here as always.
 * forqd's consumers only (they report to the bridge). */
void forq_admin_retries_upstream(struct forq *q);
/* The retry backoff before delivery attempts + 1 (--retry-backoff, doubled
 * after each failure, at most an hour), in ms. */
uint64_t forq_admin_backoff_ms(struct forq *q, unsigned attempts);
/* Pushes tasks redelivered by a stream: attempts earlier deliveries each
 * (forq_task.attempts), as forq_push_batch otherwise. */
int forq_admin_push_redelivered(struct forq *q, int prio, const struct forq_msg *msgs, size_t n,
				unsigned attempts, int timeout_ms, uint64_t *ids);

/* Pushes tasks read from forqd's --tasks file, each with its line number. */
int forq_admin_push_lines(struct forq *q, int prio, const struct forq_msg *msgs,
			  const uint32_t *lines, size_t n, int timeout_ms, uint64_t *ids);

/* Takes every task still queued, waiting for a retry or leased, calls fn
 * for each with FORQ_RESULT_UNFINISHED and drops it: forqd's last step when
 * it exits without --keep-shm, so that no task vanishes unreported. */
int forq_admin_drain_each(struct forq *q, forq_final_fn fn, void *ctx);

/* Leases: tasks forqd's TCP server hands to remote workers. Each sits in a
 * lease entry (in shared memory, so a restarted forqd gives them back) with
 * its connection, its deadline and when it was handed out: the table is the
 * one place that knows them (the server keeps only an id -> entry index).
 * Main thread of forqd only. */
/* Pops up to max tasks into free lease entries for connection conn. Returns
 * how many (0 if none: the queue is empty or no entry is free);
 * tasks[i].slot is the entry. */
int forq_lease_take(struct forq *q, uint32_t conn, uint64_t deadline_ns, struct forq_task *tasks,
		    size_t max);
/* A held lease, as forq_lease_get reads it. */
struct forq_lease_info {
	uint64_t id;
	uint64_t deadline_ns;  /* CLOCK_MONOTONIC */
	uint64_t taken_ns;     /* CLOCK_MONOTONIC, when it was handed out */
	const void *payload;   /* in shared memory: valid while the entry is held */
	uint32_t len;
	uint32_t conn;
};
/* Entry slot as it is now: 0 with *out filled if it holds a leased task
 * (handed out, no answer yet), -ENOENT if not (free, finished, or slot out of
 * range). */
int forq_lease_get(struct forq *q, uint32_t slot, struct forq_lease_info *out);
/* The task id entry slot holds or last held, whatever its state (0 if it
 * never held one): the key of an index kept beside the table. */
uint64_t forq_lease_id(struct forq *q, uint32_t slot);
/* Finishes the task in entry slot if it holds `id` for conn; as
 * forq_task_finish otherwise. -ENOENT: not leased to this connection. A
 * final status (DONE, FAILED, DEAD) keeps the entry until
 * forq_lease_release, once the caller has written the result. */
int forq_lease_finish(struct forq *q, uint32_t slot, uint64_t id, uint32_t conn,
		      enum forq_result_status status, const char *text, size_t len, uint64_t run_ns,
		      struct forq_task_info *out);
/* After forq_lease_finish returned a final status and its result is
 * written: frees the entry. */
void forq_lease_release(struct forq *q, uint32_t slot);
/* Extends the lease: -ENOENT as above. */
int forq_lease_touch(struct forq *q, uint32_t slot, uint64_t id, uint32_t conn, uint64_t deadline_ns);
/* Gives back one lease (connection gone, or expired): attempts + 1, and dead
 * after the last one (fn told). Returns 1 given back, 0 dead, -ENOENT. */
int forq_lease_giveback(struct forq *q, uint32_t slot, uint64_t id, uint32_t conn, const char *why,
			int expired, forq_final_fn fn, void *ctx);
/* Cancels a leased task: fn gets its cancelled result, the lease is gone (a
 * late RESULT finds nothing). 0 or -ENOENT. */
int forq_lease_cancel(struct forq *q, uint32_t slot, uint64_t id, uint32_t conn, forq_final_fn fn,
		      void *ctx);
/* Free lease entries now. */
uint32_t forq_lease_free_count(struct forq *q);

/* Work wake-ups, for a thread that waits for tasks on behalf of an event
 * loop (forqd: parked GET_TASK WAITs, idle housekeeping). Pushers move the
 * queue's work word and wake its sleepers only while someone is registered,
 * so: register (watch), read the word (seq), look for work, and if there is
 * none wait until the word moves (wait): a push after the read moves it.
 * A registered watcher makes every push pay a futex wake-up, so watch only
 * while it matters. */
void forq_admin_work_watch(struct forq *q);
void forq_admin_work_unwatch(struct forq *q);
uint32_t forq_admin_work_seq(struct forq *q);
/* Sleeps while the word is seq, at most timeout_ms (< 0: no limit). Returns
 * 0 (the word moved, or a spurious wake-up: read it again), -ETIMEDOUT or
 * -EINTR. While watching, every push wakes it, besides the consumers the
 * push wakes (it never takes a consumer's wake-up). Safe from any thread of
 * a process holding q. */
int forq_admin_work_wait(struct forq *q, uint32_t seq, int timeout_ms);
/* Moves the word and wakes every sleeper (consumers re-check and sleep
 * again): how a waiting thread is told to stop. */
void forq_admin_work_kick(struct forq *q);

/* Dead letters: forq.h (forq_dead_list, forq_dead_retry, forq_dead_retry_ids). */

/* Queue controls act on the queue whose handle they are given (see
 * forq_queue_shm_name in forq.h for a named queue's handle). */
/* Pause (paused = 1): consumers take no task from the queue (the ones
 * running finish) and forq_lease_take hands out none; pushes go on. Resume
 * (0) wakes every sleeping consumer and the work watch. The flag lives in
 * the shared memory: it outlives forqd (kill -9, --keep-shm) until resumed. */
void forq_admin_pause(struct forq *q, int paused);
int forq_admin_paused(struct forq *q);
/* Drops every task pending in the queue (main and front rings, as many as
 * were there when it began) and every task waiting for a retry, telling fn
 * of each with FORQ_RESULT_PURGED and the text "purged". Running, leased
 * and dead tasks are not touched. Safe while consumers pop; a purger killed
 * inside leaves each task queued or PURGED in its record, which repair
 * reports (again, at worst: a result may be written twice, a task never
 * runs after its purge began). Needs a process record and no batch open
 * (-EPERM, -EBUSY); as a pop does, it frees the caller's last batch, whose
 * results must be written. Returns how many, or -errno. */
int forq_admin_purge(struct forq *q, forq_final_fn fn, void *ctx);
/* Tasks ever purged from the queue (all processes, all forqd generations). */
uint64_t forq_admin_purged_total(struct forq *q);
/* A purge asked of forqd by a process that cannot write its results (the
 * forq tool, forqd's HTTP thread): waits up to timeout_ms (< 0: no limit)
 * for forqd's main loop to serve it. Returns 0 with *purged (what the purge
 * that served it dropped), -ESRCH when no forqd owns the queue, or
 * -ETIMEDOUT (forqd may still serve it). A forqd that takes the queue over
 * drops the requests it finds unserved (forq_admin_own). */
int forq_admin_purge_ask(struct forq *q, int timeout_ms, uint64_t *purged);
/* forqd's main loop: serves the purges asked since the last call with one
 * purge. Returns how many it dropped, -ENOMSG when none was asked, -errno. */
int forq_admin_purge_serve(struct forq *q, forq_final_fn fn, void *ctx);

/* Cancels task `id` while it is queued (pending in the queue, or waiting
 * for a retry): it never runs, and fn is told of it with
 * FORQ_RESULT_CANCELLED and the text "cancelled". A task in a ring stays
 * there, passed over by pops and left out of the pending counts. Returns 0,
 * -ENOENT (no such task queued: unknown, finished or forgotten), -EBUSY (it
 * runs now: a consumer or a remote worker holds it), or as
 * forq_admin_purge (-EPERM, -EBUSY with a batch open, -EDEADLK). A canceller
 * killed inside leaves the task queued or reported by repair, never both. */
int forq_admin_cancel(struct forq *q, uint64_t id, forq_final_fn fn, void *ctx);
/* The pid of the local process (a consumer) holding task id in flight
 * (popped, running, or finished with its result not yet written), 0 if
 * none. */
int32_t forq_admin_holder_pid(struct forq *q, uint64_t id);
/* For a holder that is dead but not yet repaired (forqd killed it and saw
 * it exit): marks its entry of task id cancelled, so that its repair
 * reports the task `cancelled` instead of giving it back. 0 or -ENOENT. */
int forq_admin_cancel_held(struct forq *q, int32_t pid, uint64_t id);
/* Tasks ever cancelled from the queue. */
uint64_t forq_admin_cancelled_total(struct forq *q);
/* A cancel asked of forqd (one at a time; others wait for the slot):
 * returns what forq_admin_cancel returned there, -ESRCH when no forqd owns
 * the queue, -ETIMEDOUT after timeout_ms (< 0: no limit). */
int forq_admin_cancel_ask(struct forq *q, uint64_t id, int timeout_ms);
/* forqd's main loop: serves the cancel asked, if any (*id: which). Returns
 * what forq_admin_cancel returned, -ENOMSG when none was asked. */
/* running (may be NULL) is asked to cancel a task that runs (-EBUSY): it
 * returns 0 when it did (a remote worker's lease), or -EBUSY. */
int forq_admin_cancel_serve(struct forq *q, forq_final_fn fn, void *ctx, uint64_t *id,
			    int (*running)(void *rctx, uint64_t id), void *rctx);

/* Where task `id` is now. Scans the queue: for status pages, not hot paths. */
enum forq_where {
	FORQ_WHERE_UNKNOWN = 0, /* never issued, or finished and forgotten */
	FORQ_WHERE_PENDING,
	FORQ_WHERE_RUNNING,
	FORQ_WHERE_RETRYING,
	FORQ_WHERE_FINISHED,    /* *status has the final FORQ_RESULT_* */
	FORQ_WHERE_SCHEDULED,   /* pushed with a delay that has not run out */
};
int forq_task_where(struct forq *q, uint64_t id, int *status, unsigned *attempts, char *text,
		    size_t cap);

/* Queue-wide histograms (sum over processes). */
struct forq_hists {
	uint64_t wait[FORQ_HIST_BUCKETS], run[FORQ_HIST_BUCKETS];
	uint64_t wait_sum_ns, run_sum_ns, full_waits, lease_expired;
	uint64_t rate_wait_ns; /* consumers' time waiting for the start rate limit */
};
void forq_hists_read(struct forq *q, struct forq_hists *out);

/* The journal (forqd --journal, journal/journal.h). A journaled queue keeps
 * per ring a durable mark between head and tail: consumers pop only up to
 * it, and forqd's journal thread alone moves it, after it has written the
 * tasks before it. With sync, a push returns once its tasks are on disk
 * (at most its timeout, or 5 s for a push that does not wait for room:
 * -ETIMEDOUT then, the tasks stay queued). */
#define FORQ_JOURNAL_RINGS (2 * FORQ_NPRIO)
struct forq_journal_mark {
	uint64_t pos;   /* ring bytes journaled */
	uint64_t count; /* tasks journaled */
};
/* A task as the journal writes it: a keyed one with its key and window, a
 * delayed one with its due time as wall-clock unix ms (CLOCK_MONOTONIC
 * does not survive a reboot). */
struct forq_journal_task {
	struct forq_task_info t;
	uint64_t due_unix_ms; /* 0: not delayed */
	uint64_t window_ms;   /* the key's window */
	uint32_t key_len;     /* 0: no key */
	char key[FORQ_KEY_MAX];
};
typedef void (*forq_journal_fn)(void *ctx, const struct forq_journal_task *t, const void *payload);
/* Turns the gate on (each ring's mark at its head, or where a journal left
 * it), with or without producers waiting for the disk. */
void forq_admin_journal_begin(struct forq *q, int sync);
/* Turns it off: consumers pop to the tail again, waiting producers return. */
void forq_admin_journal_end(struct forq *q);
/* A task without a key as the ring holds it: most of what the journal
 * writes, handed over FORQ_JOURNAL_PLAIN_MAX at a time (per task, a
 * callback and a key lookup would cost more than the copy). */
struct forq_journal_plain {
	uint64_t id;
	uint32_t len, line;
	uint16_t attempts;
	uint8_t prio;
	const void *payload; /* readable up to len rounded up to 8 (a ring record's end) */
};
#define FORQ_JOURNAL_PLAIN_MAX 64
struct forq_journal_sink {
	forq_journal_fn task; /* a task with a key */
	void (*plain)(void *ctx, const struct forq_journal_plain *v, size_t n);
	void *ctx;
};
/* Hands each task in ring `ring` (0 .. FORQ_JOURNAL_RINGS-1) beyond its
 * mark, about max_bytes of them at most, to the sink in ring order, and
 * sets *m to the mark after them. Returns how many. One caller at a time
 * (forqd's journal thread). */
int forq_admin_journal_scan(struct forq *q, int ring, uint64_t max_bytes,
			    const struct forq_journal_sink *sink, struct forq_journal_mark *m);
/* Moves ring's mark to m (release): consumers may take what is before it. */
void forq_admin_journal_publish(struct forq *q, int ring, const struct forq_journal_mark *m);
/* Delayed tasks: calls fn for each one of the waiting table that the
 * journal has not written (under the table's lock) and sets *upto to the
 * mark that covers them; once they are written, publish it (release):
 * until then they stay in the table when due, and producers that wait
 * for the disk wait. Returns how many, or -errno. One caller at a time. */
int forq_admin_journal_sched_scan(struct forq *q, forq_journal_fn fn, void *ctx, uint64_t *upto);
void forq_admin_journal_sched_publish(struct forq *q, uint64_t upto);
/* Wakes n consumers (0: none) and every producer waiting for the disk. */
void forq_admin_journal_wake(struct forq *q, size_t n);
/* For an event loop that must not wait for the disk (forqd's TCP server):
 * pushes on q (this handle) return without waiting for the journal, even
 * with sync; forq_admin_durable_take then gives what the pushes since the
 * last take wait for, and forq_admin_durable_reached says, without
 * waiting, whether it is on disk. */
struct forq_durable_ticket {
	uint64_t ring[FORQ_JOURNAL_RINGS]; /* tail after the push, 0: none */
	uint64_t sched;                    /* a delayed task's sequence, 0: none */
};
void forq_admin_push_nowait(struct forq *q);
/* 1 and *t when there is something to wait for (sync is on), else 0. */
int forq_admin_durable_take(struct forq *q, struct forq_durable_ticket *t);
/* 1: on disk; 0: not yet; -ESHUTDOWN: the journal stopped first (the tasks
 * stay queued, not known to be on disk). */
int forq_admin_durable_reached(struct forq *q, const struct forq_durable_ticket *t);
/* Tasks published (and delayed tasks pushed) and not yet journaled. */
uint64_t forq_admin_journal_backlog(struct forq *q);
/* Pushes a task replayed from the journal, its id, priority and attempts
 * kept: 0, -EAGAIN when its lane is full now, -EINVAL. */
int forq_admin_push_recovered(struct forq *q, const struct forq_task_info *t, const void *payload);
/* The same for a task with a key (which it holds again, window kept, unless
 * a live task holds it already) or a due time (waits in the waiting table
 * for what is left of its delay; at once if that has passed). */
int forq_admin_push_recovered_task(struct forq *q, const struct forq_journal_task *t,
				   const void *payload);
/* New ids start at id or later. */
void forq_admin_next_id_at_least(struct forq *q, uint64_t id);

/* The first task id forqd gives queue (forq_options.first_id), so that the
 * ids of the queues one forqd serves do not meet: "default" starts at 1, any
 * other name at FORQ_QUEUE_ID_SPAN times a number from 1 to
 * FORQ_QUEUE_ID_RANGES - 1 hashed from the name, plus 1 (ids read as
 * "range, then count": 42000000000017). Two names may hash alike: forqd
 * refuses such a pair at start. 0 for a bad name. */
#define FORQ_QUEUE_ID_SPAN 1000000000000ull /* ids per queue: 10^12 */
#define FORQ_QUEUE_ID_RANGES 9007u          /* SPAN * RANGES <= 2^53: every id safe */
uint64_t forq_admin_queue_first_id(const char *queue);

#endif
