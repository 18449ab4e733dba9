/* layout.h — the shared-memory format of a forq queue.
 *
 * This is a wire format: every process that maps the object reads it, so it uses
 * fixed-width types, explicit alignment and no pointers (offsets from the base).
 * If you change any struct here you must bump FORQ_LAYOUT_VERSION: an attaching
 * process refuses an object whose version, sizes or magic differ.
 *
 * The object, in order (all offsets 64-byte aligned):
 *   struct forq_hdr                 header, wake-up words, locks, ring indices
 *   struct forq_proc[max_procs]     one record per attached process: counters,
 *                                   histograms, the task it runs
 *   in-flight entries               max_procs * batch_max entries of entry_size
 *   lease entries                   lease_max entries (remote workers, issue 5)
 *   retry entries                   retry_max entries waiting for their backoff
 *   dead entries                    dead_max entries (dead letters)
 *   recent results                  recent_max struct forq_recent
 *   ring arenas                     FORQ_NRINGS byte arenas of task records
 *
 * A sparse queue (max_payload above FORQ_BACKED_PAYLOAD_MAX) aligns entries,
 * tables and arenas to pages, and only what is in use has memory (backing.c).
 */
#ifndef FORQ_LAYOUT_H
#define FORQ_LAYOUT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "forq_admin.h" /* FORQ_NPRIO, FORQ_HIST_BUCKETS, flags and worker states */

#define FORQ_MAGIC 0x3151524f46ULL /* "FORQ1" little-endian */
#define FORQ_LAYOUT_VERSION 12u
#define FORQ_CACHELINE 64
/* What a watching forqd adds to work_sleepers: pushers that see it wake the
 * watch besides the consumers they wake (a process of an older build wakes
 * whoever sleeps: at worst a consumer waits for its 100 ms re-check). */
#define FORQ_WORK_WATCHER 0x10000u

/* Rings: per priority lane a main ring (new tasks) and a front ring (tasks given
 * back after a crash or a due retry: consumers take them before the main ring). */
#define FORQ_NRINGS (2 * FORQ_NPRIO)
#define FORQ_RING_MAIN(prio) (2 * (prio))
#define FORQ_RING_FRONT(prio) (2 * (prio) + 1)

/* Histogram buckets: bucket k counts values v (ns) with 2^(k-1) < v <= 2^k,
 * bucket 0 counts v <= 1 ns; the last bucket is open-ended. */

/* A task record, 8-byte aligned, followed by its payload padded to 8 bytes.
 * The same header is used in ring arenas and in in-flight/lease/retry/dead
 * entries (where `state` is meaningful). */
struct forq_rec {
	uint32_t len;      /* payload bytes; FORQ_REC_PAD marks wrap padding */
	uint8_t prio;      /* enum forq_prio */
	uint8_t state;     /* enum forq_entry_state, entries only */
	uint16_t attempts; /* deliveries before this one */
	uint64_t id;       /* unique for the life of the queue, starts at 1 */
	uint64_t enq_ns;   /* CLOCK_MONOTONIC at first enqueue, in ns */
	uint32_t line;     /* tasks-file line it came from, 0 if none; with
			    * FORQ_REC_KEYED, its key slot + 1 instead */
	uint16_t crashes;  /* deliveries whose consumer died */
	uint16_t flags;    /* enum forq_rec_flags */
};
_Static_assert(sizeof(struct forq_rec) == 32, "forq_rec is part of the wire format");

#define FORQ_REC_PAD 0xffffffffu
#define FORQ_ALIGN8(n) (((uint64_t)(n) + 7u) & ~(uint64_t)7u)
#define FORQ_REC_SIZE(len) (sizeof(struct forq_rec) + FORQ_ALIGN8(len))

enum forq_rec_flags {
	FORQ_REC_FROM_FILE = 1, /* `line` names a line of forqd's --tasks file */
	FORQ_REC_STOPPED = 2,   /* was running when forqd stopped and killed its consumer */
	FORQ_REC_CANCELLED = 4, /* ring record cancelled while queued: pops pass over it */
	FORQ_REC_DELAYED = 8,   /* in the waiting table for its delay, not a retry */
	FORQ_REC_KEYED = 16,    /* holds a unique key: `line` is its key slot + 1 */
};

/* State of an in-flight entry. Repair gives back HELD and RUNNING entries;
 * RUNNING ones count a crashed delivery (attempts + 1), HELD and FINISHED ones
 * (result not yet written) go back unchanged. */
enum forq_entry_state {
	FORQ_ENTRY_EMPTY = 0,
	FORQ_ENTRY_HELD = 1,     /* popped, not started */
	FORQ_ENTRY_RUNNING = 2,  /* handler running on it */
	FORQ_ENTRY_FINISHED = 3, /* result computed, not yet written */
	FORQ_ENTRY_WAITING = 4,  /* retry entry: due at `due_ns` */
	FORQ_ENTRY_DEAD = 5,     /* dead-letter entry; in flight: dead, result not
				  * yet written (repair writes it, never re-runs it) */
	FORQ_ENTRY_PURGED = 6,   /* in flight or retry entry taken by a purge, result
				  * not yet written (repair writes it as purged,
				  * never re-runs it); a retry entry's `owner` is
				  * the purger's proc index + 1 */
	FORQ_ENTRY_CANCELLED = 7, /* as PURGED, for a cancel: its result is "cancelled" */
};

/* An entry: a header for the bookkeeping, then one task record (rec + payload). */
struct forq_entry {
	uint64_t due_ns;    /* retry: when it may run again; lease: deadline;
			     * dead: when it died (CLOCK_REALTIME ns) */
	uint64_t aux;       /* lease: when handed out (CLOCK_MONOTONIC ns);
			     * dead: order of death; delayed task: its
			     * sched_seq (0: none, the queue was not journaled) */
	uint32_t owner;     /* lease: connection id; purged retry entry: purger */
	uint32_t backed;    /* sparse queue: bytes reserved beyond its first page */
	char error[40];     /* last error (dead letters), NUL-terminated */
	struct forq_rec rec;
	/* payload follows */
};
_Static_assert(sizeof(struct forq_entry) == 96, "forq_entry is part of the wire format");

/* Per-process counters. Only the owning process writes them (relaxed atomic
 * stores, no read-modify-write on shared lines); readers sum over all records. */
struct forq_counters {
	_Atomic uint64_t enqueued[FORQ_NPRIO]; /* tasks pushed by this process */
	_Atomic uint64_t started[FORQ_NPRIO]; /* deliveries handed to a handler */
	_Atomic uint64_t done[FORQ_NPRIO];    /* finished ok */
	_Atomic uint64_t failed[FORQ_NPRIO];  /* finished failed (permanent error) */
	_Atomic uint64_t dead;      /* attempts exhausted, moved to dead letters */
	_Atomic uint64_t retried;   /* deliveries given back to be tried again */
	_Atomic uint64_t crashes;   /* deliveries whose consumer died (counted by repairer) */
	_Atomic uint64_t requeued;  /* tasks given back by repair (crash, lease, recovery) */
	_Atomic uint64_t lease_expired;
	_Atomic uint64_t full_waits; /* pushes that found the queue full and waited */
	_Atomic uint64_t rate_wait_ns; /* time consumers waited for the start rate limit */
	_Atomic uint64_t wait_hist[FORQ_HIST_BUCKETS]; /* enqueue -> start, ns */
	_Atomic uint64_t wait_sum_ns;
	_Atomic uint64_t run_hist[FORQ_HIST_BUCKETS];  /* handler run time, ns */
	_Atomic uint64_t run_sum_ns;
};

enum forq_proc_state {
	FORQ_PROC_FREE = 0,
	FORQ_PROC_ACTIVE = 1,
};

enum forq_role {
	FORQ_ROLE_CLIENT = 0,    /* a libforq user: producer and/or consumer */
	FORQ_ROLE_SUPERVISOR = 1,
	FORQ_ROLE_CONSUMER = 2,  /* a consumer forked by forqd */
};

/* One record per attached process, cache-line aligned so that no two processes
 * write the same line on the hot path. */
struct forq_proc {
	alignas(FORQ_CACHELINE) _Atomic uint32_t state; /* enum forq_proc_state */
	uint32_t role;           /* enum forq_role */
	int32_t pid;
	uint32_t generation;     /* forqd generation it attached under */
	uint64_t start_ticks;    /* /proc/PID/stat starttime: pid reuse guard */
	int32_t worker;          /* forqd worker index, -1 if none */
	uint32_t pad0;
	_Atomic uint64_t current_id; /* task the handler runs now, 0 if none */
	/* Consumer: the process group of the exec: command it runs now (0 if
	 * none) and its leader's /proc starttime; repair kills that group. */
	_Atomic int32_t handler_pgid;
	_Atomic int32_t results_errno; /* consumer: errno of results it cannot write, 0 if none */
	_Atomic uint64_t handler_start_ticks;
	alignas(FORQ_CACHELINE) struct forq_counters c;
};

/* A byte ring of task records. Producers serialise on push_lock, consumers on
 * pop_lock (both robust, process-shared); each side publishes its index with a
 * release store, so the other side never locks. A record never straddles the
 * arena's end: a PAD record fills the rest and the next one starts at 0. */
struct forq_ring {
	alignas(FORQ_CACHELINE) pthread_mutex_t push_lock;
	uint32_t push_holder;     /* proc index + 1 of the lock holder, 0 if none */
	/* Pending push, for EOWNERDEAD repair: the push took effect iff tail
	 * reached pend_tail; then tail_count must be pend_count. */
	uint32_t push_pend;       /* 1 while a push is inside */
	uint64_t push_pend_tail;
	uint64_t push_pend_count;
	/* Sparse queue: ring positions [backed_lo, backed_hi) have memory
	 * (backed_hi - backed_lo <= arena_bytes); written under push_lock. */
	uint64_t backed_lo, backed_hi;
	alignas(FORQ_CACHELINE) _Atomic uint64_t tail;       /* bytes ever published */
	_Atomic uint64_t tail_count;                         /* tasks ever published */
	alignas(FORQ_CACHELINE) pthread_mutex_t pop_lock;
	uint32_t pop_holder;
	/* Pending pop: proc pop_pend_proc - 1 copies into its in-flight entries
	 * [0, pop_pend_max); it took effect iff head reached pop_pend_head. */
	uint32_t pop_pend_proc;   /* proc index + 1, 0 when no pop is inside */
	uint32_t pop_pend_max;
	uint32_t pad0;
	uint64_t pop_pend_head;
	uint64_t pop_pend_count;
	/* A cancel inside: the arena offset + 1 of the record it flags (0: none);
	 * it took effect iff that record has FORQ_REC_CANCELLED. */
	uint64_t pop_pend_cancel;
	uint64_t cancelled;       /* records flagged CANCELLED between head and tail */
	alignas(FORQ_CACHELINE) _Atomic uint64_t head;       /* bytes ever consumed */
	_Atomic uint64_t head_count;                         /* tasks ever consumed */
	/* A journaled queue (FORQ_F_JOURNAL): what forqd's journal has written,
	 * head <= durable <= tail; consumers pop up to here, not to tail
	 * (durable.c). Written by the journal thread alone. */
	alignas(FORQ_CACHELINE) _Atomic uint64_t durable;    /* bytes journaled */
	_Atomic uint64_t durable_count;                      /* tasks journaled */
	alignas(FORQ_CACHELINE) uint64_t arena_off;          /* from the object's base */
	uint64_t arena_bytes;     /* multiple of 8 */
	uint64_t cap_tasks;       /* most tasks it may hold */
};


/* One row per forqd worker slot, written by the supervisor only. */
struct forq_worker_row {
	_Atomic int32_t pid;      /* 0 when not running */
	_Atomic uint32_t state;   /* enum forq_worker_state */
	_Atomic uint32_t proc;    /* proc index + 1 of its record, 0 if none */
	_Atomic uint32_t restarts;
	_Atomic uint64_t next_start_ns; /* backoff: earliest restart */
};

/* A recent result, for lookups by id (GET /tasks/{id}). A seqlock guards it:
 * odd `seq` while the writer is inside. */
#define FORQ_RECENT_TEXT FORQ_RESULT_TEXT_MAX
struct forq_recent {
	_Atomic uint32_t seq;
	uint8_t status;           /* enum forq_result_status */
	uint8_t truncated;
	uint16_t attempts;
	uint64_t id;
	uint64_t wait_ns;
	uint64_t run_ns;
	char text[FORQ_RECENT_TEXT]; /* result or error, NUL-terminated */
};
_Static_assert(sizeof(struct forq_recent) == 128, "forq_recent is part of the wire format");

/* A unique key and the task that holds it (keys.c), in an open-addressed
 * table under keys_lock. A slot is never emptied once used (so that probe
 * chains stay whole): one whose task ended more than its window ago is
 * reused. `done_ns` is written without the lock, by whoever records the
 * task's final result. */
struct forq_key {
	_Atomic uint64_t id;      /* the holder; 0: never used */
	_Atomic uint64_t done_ns; /* CLOCK_MONOTONIC when it ended, 0 while it has
				   * not; 1: being written (free) */
	uint64_t window_ns;       /* held this long after the end */
	uint64_t hash;
	uint16_t len;
	char key[94];
};
_Static_assert(sizeof(struct forq_key) == 128, "forq_key is part of the wire format");


struct forq_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;        /* sizeof(struct forq_hdr) */
	uint64_t total_size;      /* bytes of the whole object */
	uint32_t proc_size;       /* sizeof(struct forq_proc) */
	uint32_t entry_size;      /* sizeof(forq_entry) + max_payload, 8-aligned */
	uint32_t rec_size;        /* sizeof(struct forq_rec) */
	uint32_t uid;             /* creator's uid */
	uint32_t capacity;        /* tasks per main ring */
	uint32_t max_payload;     /* bytes */
	uint32_t batch_max;       /* in-flight entries per process */
	uint32_t max_procs;
	uint32_t lease_max;
	uint32_t retry_max;
	uint32_t dead_max;
	uint32_t recent_max;
	uint32_t max_workers;
	uint32_t max_attempts;    /* deliveries before a task is dead */
	uint32_t backoff_ms;      /* first retry delay; doubles per attempt */
	uint32_t sparse;          /* 1: ring arenas and entry pages beyond the first
				   * get memory only while in use (backing.c) */
	uint32_t keys_max;        /* unique-key slots (a power of two) */
	uint32_t pad1;
	uint64_t keys_off;        /* the key table, after the recent results */
	uint64_t procs_off, inflight_off, lease_off, retry_off, dead_off, recent_off;
	int64_t created_unix_ns;  /* CLOCK_REALTIME at creation */

	alignas(FORQ_CACHELINE) _Atomic uint32_t generation; /* bumped per forqd start */
	_Atomic uint32_t flags;          /* enum forq_hdr_flags */
	_Atomic int32_t owner_pid;       /* forqd that owns the queue, 0 if none */
	_Atomic uint32_t clean;          /* 1 after a clean shutdown */

	alignas(FORQ_CACHELINE) _Atomic uint64_t next_id;

	/* Start rate limit (rate.c): 0 interval when none. */
	alignas(FORQ_CACHELINE) _Atomic uint64_t rate_tat_ns; /* the bucket: next start's time */
	_Atomic uint64_t rate_interval_ns;                    /* 1e9 / starts per second */
	_Atomic uint32_t rate_burst;                          /* starts allowed at once */

	/* Wake-up words (futexes). Sleepers register, then re-check, then wait
	 * with a timeout, so a lost wake-up costs latency, never progress. */
	alignas(FORQ_CACHELINE) _Atomic uint32_t work_seq;
	_Atomic uint32_t work_sleepers;  /* consumers asleep, + FORQ_WORK_WATCHER per
					  * watching forqd (woken by class, futex.h) */
	alignas(FORQ_CACHELINE) _Atomic uint32_t space_seq;
	_Atomic uint32_t space_sleepers;
	/* Producers waiting for the journal to cover their push (--fsync always). */
	alignas(FORQ_CACHELINE) _Atomic uint32_t durable_seq;
	_Atomic uint32_t durable_sleepers;
	/* Delayed tasks and the journal (durable.c): each gets the next
	 * sched_seq (in its retry entry's `aux`) as it goes into the waiting
	 * table of a journaled queue; the journal has written every one up to
	 * sched_journaled, and none goes to its lane before it is written. */
	_Atomic uint64_t sched_seq;
	_Atomic uint64_t sched_journaled;

	alignas(FORQ_CACHELINE) pthread_mutex_t proc_lock;  /* attach / detach */
	alignas(FORQ_CACHELINE) pthread_mutex_t aux_lock;   /* leases, retry, dead tables */
	alignas(FORQ_CACHELINE) pthread_mutex_t keys_lock;  /* the key table (keys.c) */
	_Atomic uint32_t retry_used;     /* hint: entries WAITING */
	_Atomic uint32_t sched_used;     /* of those, delayed tasks (FORQ_REC_DELAYED) */
	uint32_t retry_hint;             /* where the next free retry entry may be */
	_Atomic uint32_t dead_used;      /* entries DEAD */
	_Atomic uint64_t dead_seq;       /* dead letters ever added */

	/* Queue controls (control.c). Pause is FORQ_F_PAUSED in `flags`. A
	 * process that cannot write results (forq purge, forqd's HTTP thread)
	 * asks forqd's main loop for a purge: ticket = ++purge_asked, then it
	 * waits until purge_served reaches its ticket. */
	alignas(FORQ_CACHELINE) _Atomic uint64_t purge_asked;  /* requests ever made */
	_Atomic uint64_t purge_served;   /* every request up to this one is served */
	_Atomic uint64_t purge_last;     /* tasks the last served request dropped */
	_Atomic uint64_t purged;         /* tasks ever purged */
	_Atomic uint64_t cancelled;      /* tasks ever cancelled */
	/* One cancel asked of forqd at a time (forq_admin_cancel_ask): state 0
	 * free, 3 an asker fills it in, 1 asked (cancel_id set), 4 forqd serves
	 * it, 2 answered (cancel_result set); the asker frees it. */
	_Atomic uint32_t cancel_state;
	_Atomic int32_t cancel_result;
	_Atomic uint64_t cancel_id;

	struct forq_ring rings[FORQ_NRINGS];
	struct forq_worker_row workers[FORQ_MAX_WORKERS];
};


#endif
