/* snapshot.h — every figure the HTTP thread shows, as plain data.
 *
 * A struct metrics_snapshot holds one queue's figures and the service's. A
 * scrape (/metrics, /stats) is an array of them, one per queue forqd serves:
 * forqd fills it through http_hooks.snapshot (one read of each queue's
 * counters and worker table; the first element is the default queue's and
 * alone carries the service's part: TCP, HTTP, version, start time,
 * draining); the http module adds its own per-code request counts to the
 * first; expo.c and json.c only read it. The forq tool and the TCP STATS
 * reply fill one queue's part alone (metrics_snapshot_queue) for json_stats.
 * No pointers, no ownership: a snapshot can be memset, copied and kept.
 * Counters are monotonic since forqd started; gauges are values at the read.
 */
#ifndef FORQ_METRICS_SNAPSHOT_H
#define FORQ_METRICS_SNAPSHOT_H

#include <stdint.h>

#include "forq_admin.h" /* the sizes below are core's, not copies */

/* Priority lanes: arrays of METRICS_NPRIO are indexed high=0, normal=1, low=2
 * (the same order as enum forq_prio). */
#define METRICS_NPRIO FORQ_NPRIO
/* Histogram buckets: bucket k counts values v (ns) with 2^(k-1) < v <= 2^k,
 * bucket 0 counts v <= 1 ns, the last bucket is open-ended (as core/layout.h). */
#define METRICS_HIST_BUCKETS FORQ_HIST_BUCKETS
#define METRICS_MAX_HTTP_CODES 16
#define METRICS_MAX_TCP_COMMANDS 20
#define METRICS_NAME_MAX 24 /* label values below, NUL included */

enum metrics_worker_state {
	METRICS_WORKER_STARTING = 0,
	METRICS_WORKER_RUNNING = 1,
	METRICS_WORKER_BACKOFF = 2, /* died, waiting before the restart */
	METRICS_WORKER_STOPPED = 3,
	METRICS_WORKER_NSTATES
};

struct metrics_hist {
	uint64_t buckets[METRICS_HIST_BUCKETS]; /* not cumulative */
	uint64_t sum_ns;
	uint64_t count; /* == sum of buckets (expo uses the larger if not) */
};

/* One local consumer process. */
struct metrics_worker {
	uint32_t index;       /* slot in forqd's worker table */
	int32_t pid;          /* 0 when none runs */
	uint32_t state;       /* enum metrics_worker_state */
	uint32_t restarts;
	uint64_t tasks_done;  /* finished ok by this slot */
	uint64_t tasks_failed;
	uint64_t current_task; /* id of the task it runs now, 0 if none */
};

struct metrics_http_count {
	uint16_t code;
	uint64_t count;
};

struct metrics_tcp_command {
	char name[METRICS_NAME_MAX]; /* e.g. "GET_TASK" */
	uint64_t count;
	uint64_t bytes_in;  /* request bytes */
	uint64_t bytes_out; /* reply bytes */
};

struct metrics_snapshot {
	/* Queue: tasks now. */
	uint64_t pending[METRICS_NPRIO]; /* waiting, by lane */
	uint64_t in_progress;            /* held by consumers or leased */
	uint64_t retry_waiting;          /* waiting for their retry backoff */
	uint64_t scheduled;              /* pushed with a delay that has not run out */
	uint64_t dead_letters;           /* in the dead-letter list now */
	/* Queue: counters. */
	uint64_t enqueued[METRICS_NPRIO];
	uint64_t started[METRICS_NPRIO]; /* deliveries handed to a handler */
	uint64_t done[METRICS_NPRIO];
	uint64_t failed[METRICS_NPRIO];  /* permanent error */
	uint64_t dead;        /* attempts exhausted */
	uint64_t retried;     /* deliveries given back to be tried again */
	uint64_t crashes;     /* deliveries whose consumer process died */
	uint64_t requeued;    /* given back by repair */
	uint64_t full_waits;  /* pushes that found the queue full */
	double rate_limit;    /* task starts allowed per second, 0: none */
	uint64_t rate_wait_ns; /* consumers' time waiting for the rate limit */
	double throughput;    /* (done+failed+dead) per second, last second */
	struct metrics_hist wait; /* enqueue to start, ns */
	struct metrics_hist run;  /* handler run time, ns */
	/* Queue: sizes fixed at creation. */
	uint64_t capacity;    /* tasks per lane */
	uint64_t max_payload; /* bytes per task */
	uint64_t shm_bytes;   /* memory the queue's shared-memory object holds now */
	/* The journal (--journal); all 0 without one. */
	uint64_t journal_bytes, journal_fsyncs, journal_write_errors;
	uint64_t journal_pending;  /* tasks pushed, not yet journaled */
	uint64_t journal_segments; /* segment files now */
	/* The NATS JetStream upstream (--upstream); all 0 without one. */
	int upstream_enabled;      /* 1: the queue has an upstream */
	int upstream_connected;    /* 1 while connected */
	uint64_t upstream_held;    /* tasks fetched and not yet ended */
	uint64_t upstream_fetched, upstream_acked, upstream_naked, upstream_terminated;
	uint64_t upstream_reconnects, upstream_publish_errors; /* counters */
	/* The shared consumer's backlog, as JetStream last said (every 2 s):
	 * messages not yet delivered to any host, delivered ones not yet acked. */
	uint64_t upstream_stream_pending, upstream_ack_pending;

	/* Local consumers. */
	uint32_t n_workers;                 /* rows used in workers[] */
	uint64_t worker_restarts;           /* all restarts since start */
	uint64_t results_blocked;           /* consumers holding results they cannot write */
	uint64_t workers_stuck;             /* running one task longer than --stall-timeout */
	int stalled;                        /* tasks wait and none finished for --stall-timeout */
	struct metrics_worker workers[FORQ_MAX_WORKERS];

	/* Remote workers (TCP). */
	uint64_t remote_workers;     /* connected now */
	uint64_t leases_outstanding; /* tasks leased now */
	uint64_t lease_expired;      /* counter */
	uint64_t tcp_connections;    /* counter: accepted */
	uint64_t tcp_refused;        /* counter: refused at the connection limit */
	uint64_t tcp_bytes_in;
	uint64_t tcp_bytes_out;
	uint64_t tcp_open;           /* connections open now */
	uint64_t lease_timeout_ms;   /* a remote worker's time to answer (forqd --lease-timeout) */
	uint32_t n_tcp_commands;
	struct metrics_tcp_command tcp_commands[METRICS_MAX_TCP_COMMANDS];

	/* HTTP: filled by the http module itself (forqd leaves it zero). */
	uint32_t n_http;
	struct metrics_http_count http[METRICS_MAX_HTTP_CODES];

	/* Service. */
	char version[METRICS_NAME_MAX]; /* e.g. "0.1.0" */
	double start_time;              /* Unix time forqd started, seconds */
	int draining;                   /* 1 while forqd drains for shutdown */
	int accepting;                  /* 1 while the queue takes pushes (forq_stats.accepting;
					 * the TCP server clears it while it drains) */

	/* Queue controls (metrics_snapshot_controls). A per-queue part despite
	 * where it sits: every field above the "Local consumers" line, these,
	 * the consumers' and lease_expired are the queue's; the rest is the
	 * service's, read from a scrape's first snapshot only. */
	char queue[METRICS_NAME_MAX];   /* the queue's name: the `queue` label */
	int paused;                     /* 1 while consumers take no task */
	uint64_t purged;                /* counter: tasks dropped by purges */
	uint64_t cancelled;             /* counter: queued tasks cancelled */
};

struct forq_stats;

/* Copies the queue's figures (forq_stats_read's) into s: pending, in
 * progress, retry waiting, dead letters, the per-lane and other counters,
 * capacity, max payload and accepting. Touches no other field. */
void metrics_snapshot_queue(struct metrics_snapshot *s, const struct forq_stats *st);

struct forq;

/* Fills the queue's name, paused, purged and cancelled from q. Touches no
 * other field. */
void metrics_snapshot_controls(struct metrics_snapshot *s, struct forq *q);

/* The queue's name (the `queue` label, the key in /stats's "queues"):
 * s->queue, or "default" when it is empty or unterminated. */
const char *metrics_snapshot_name(const struct metrics_snapshot *s);

#endif
