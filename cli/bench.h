/* bench.h — `forq bench`: the real code path, measured end to end.
 *
 * bench_run starts a private forqd (its own queue /forq-bench-<pid>, no HTTP,
 * no TCP, no results file; with queues > 1, a config file of that many named
 * queues q0, q1, ... each with the given workers), pushes N tasks through
 * libforq in batches (round robin over the queues) as fast as it can (or at
 * a given rate), waits until every one has finished, reads
 * the queue's histograms, stops forqd with SIGTERM and checks that it exited
 * 0 and removed its queue. With a journal it times each batch from its push
 * until the producer sees it journaled (bench_durable.h). While it runs it prints one progress line a second
 * on stderr (the only output here: the caller prints the report).
 */
#ifndef FORQ_BENCH_H
#define FORQ_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* How each task is pushed: in batches (forq_push_batch), one by one with a
 * 1 ms delay (forq_push_delayed: through the waiting table), or one by one
 * under a key of its own (forq_push_unique: the key table and its lock). */
enum bench_push_kind { BENCH_PUSH_PLAIN = 0, BENCH_PUSH_DELAYED, BENCH_PUSH_KEYED };

struct bench_config {
	uint64_t tasks;           /* tasks to push (>= 1) */
	int workers;              /* forqd --workers (>= 1) */
	uint32_t batch;           /* tasks per push and forqd --batch (1 .. FORQ_PUSH_BATCH_MAX) */
	uint32_t payload_bytes;   /* bytes per task (8: an 8-byte integer) */
	const char *handler;      /* forqd --handler */
	double rate;              /* tasks per second, 0: as fast as possible */
	int prio;                 /* enum forq_prio of every task */
	int push_kind;            /* enum bench_push_kind */
	const char *forqd;        /* forqd binary; NULL: next to forq, $FORQD, PATH */
	int quiet;                /* 1: no progress lines */
	const char *journal;      /* forqd --journal DIR, NULL: none */
	const char *fsync;        /* forqd --fsync */
	uint32_t queues;          /* named queues (1 .. BENCH_QUEUES_MAX); 1: the default one */
	uint32_t sync_every;      /* with journal: push without waiting for the disk
				   * (forq_push_batch_async) and forq_sync once per this
				   * many tasks; 0: each batch waits (forq_push_batch) */
};

#define BENCH_QUEUES_MAX 16

struct bench_report {
	uint64_t tasks, done, failed, dead;
	double seconds;           /* first push to last task finished */
	double push_seconds;      /* first push to last push returned */
	double tasks_per_s;       /* tasks / seconds */
	double wait_p50_us, wait_p99_us, wait_p999_us; /* enqueue -> start */
	double run_p50_us, run_p99_us;                 /* handler run time */
	double cpu_ns_per_task;   /* forqd, its consumers and this process, CPU time
				   * from the first push to the last task done */
	uint64_t peak_rss_kib;    /* sum of VmHWM of forqd and its consumers */
	uint64_t private_kib;     /* their private pages at the end: memory beyond
				   * the shared queue, which RSS counts once per process */
	uint64_t self_rss_kib;    /* VmHWM of this process (the producer) */
	uint64_t shm_bytes;       /* size of the queue objects */
	uint64_t full_waits;      /* pushes that found the queue full */
	double durable_p50_us, durable_p99_us; /* with journal: push to journaled, per batch */
	uint64_t syncs;           /* forq_sync calls (sync_every) */
	char forqd_path[4096];    /* the binary that ran */
};

/* Exit-code classes of a failed run. */
enum bench_error {
	BENCH_ERR_RUN = -1,       /* the run failed: forqd died, a stall, shm left */
	BENCH_ERR_START = -2,     /* forqd could not be started or its queue opened */
};

/* Runs one benchmark. Returns 0 with *r filled, or BENCH_ERR_* with err. */
int bench_run(const struct bench_config *c, struct bench_report *r, char *err, size_t errlen);

/* Quantile q (0..1) of a histogram of FORQ_HIST_BUCKETS power-of-two buckets
 * in ns (bucket k counts 2^(k-1) < v <= 2^k), interpolated linearly inside
 * its bucket. Returns ns; 0 for an empty histogram. */
double bench_hist_quantile(const uint64_t *buckets, double q);

#endif
