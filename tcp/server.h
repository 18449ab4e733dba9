/* server.h — forqd's TCP server for remote workers and producers (the
 * GET_TASK / RESULT protocol of proto.h). Non-blocking sockets registered in
 * forqd's event loop (loop.h), main thread only: no thread or process per
 * connection, no loop of its own. Tasks handed out are leases in the queue's
 * shared memory (forq_admin.h), so a lost worker, an expired lease or a
 * restarted forqd gives them back.
 *
 * Inside: conn.c (connections and their buffers), commands.c (the answer to
 * each request), leases.c (the lease table's id index), server.c (accept,
 * events, timers, counters). */
#ifndef FORQ_TCP_SERVER_H
#define FORQ_TCP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "forq_admin.h"
#include "loop.h"

struct tcp_config {
	const char *listen;       /* "127.0.0.1:7070", "[::]:7070", port 0: pick one */
	int lease_timeout_ms;     /* a worker's time to answer (> 0: forqd --lease-timeout) */
	int idle_timeout_ms;      /* close a connection silent this long (> 0) */
	unsigned max_conns;       /* connections at once (> 0) */
	const char *admin_token;  /* needed beyond loopback, like HTTP */
	const char *worker_token; /* NULL: none; else AUTH takes it too */
	int insecure;
};

/* The server's counters, plain data: forqd copies them into its metrics
 * snapshot. Gauges are "now", the rest only grow. */
#define TCP_COUNTED_CMDS 20 /* every proto command, then requests that did not parse */
struct tcp_counters {
	uint64_t connections;     /* gauge: open */
	uint64_t remote_workers;  /* gauge: open connections that asked for tasks */
	uint64_t leases;          /* gauge: tasks leased to them */
	uint64_t accepted;
	uint64_t refused;         /* at the connection limit */
	uint64_t bytes_in, bytes_out;
	struct {
		uint64_t count;
		uint64_t bytes_in;    /* request bytes */
		uint64_t bytes_out;   /* reply bytes (a parked GET's too) */
	} cmds[TCP_COUNTED_CMDS];
};
/* The metrics label of cmds[i]: the command's wire word ("GET_TASK"), or
 * "INVALID" for the last; NULL past the end. */
const char *tcp_counter_label(int i);

struct tcp_server;

/* Where the results of finished tasks go. final writes one at once (a task
 * that ends dead when its lease is lost). A worker's answers are added, and
 * flush writes what was added before their entries are freed and the reply
 * goes out: one write per RESULTS batch (or per read of one-line answers),
 * not one per task. */
struct tcp_results {
	forq_final_fn final;
	forq_final_fn add;
	void (*flush)(void *ctx);
	/* CANCEL of a task that runs: 0 when it was stopped (its cancelled
	 * result written), -EBUSY, or -ENOENT (it had just finished). NULL: a
	 * remote worker's lease is revoked, a local consumer's task refused. */
	int (*cancel_running)(void *ctx, uint64_t id);
	void *ctx;
};

/* One queue the server serves. Task ids must be unique across the queues
 * of one server (forqd gives each queue its own range): RESULT, FAIL,
 * RETRY and TOUCH name only an id, and find its queue by the lease. */
struct tcp_queue {
	const char *name;        /* what PUT queue=, GET_TASK(S) queue=, STATS,
				  * PAUSE, RESUME, PURGE and CANCEL call it */
	struct forq *q;          /* forqd's main handle (its record holds the
				  * leases' counters), used on the loop only:
				  * its pushes stop waiting for the journal
				  * (forq_admin_push_nowait), tcp_durable
				  * answers them */
	struct tcp_results res;  /* where its results go */
	uint32_t max_payload;    /* 0: the queue's own */
	uint32_t batch_max;      /* most tasks one GET_TASKS takes from it; 0: the
				  * queue's own */
	/* A queue backed by a stream (forqd --upstream): PUT hands its task to
	 * publish (key: NULL or its key=) instead of pushing it. 0: sent, and
	 * tcp_published will say how it went, under ref; -ECOMM or -EAGAIN:
	 * not sent. The connection reads no more requests until then (replies
	 * stay in order; other connections go on). NULL: a local queue. */
	int (*publish)(void *ctx, const void *data, size_t len, const char *key, size_t key_len,
		       uint64_t ref);
	void *publish_ctx;
};

/* Binds, listens and registers the socket in loop. qs[0..n) (copied; the
 * names must outlive the server) are the queues it serves, qs[0] the one
 * that requests naming none get. Returns 0 or -errno with err set. */
int tcp_start(struct tcp_server **sp, const struct tcp_config *c, const struct tcp_queue *qs,
	      size_t n, struct loop *loop, char *err, size_t errlen);
uint16_t tcp_port(const struct tcp_server *s);
/* GET_TASK(S) WAITs parked now, waiting for a task. */
unsigned tcp_parked(const struct tcp_server *s);
/* Tasks may have arrived (the queue's work word moved): serves parked GETs. */
void tcp_work_arrived(struct tcp_server *s);
void tcp_draining(struct tcp_server *s);      /* PUT refused from now on */
/* A journal moved its durable marks: answers the PUTs that waited for it.
 * Main thread. */
void tcp_durable(struct tcp_server *s);
/* The answer to tcp_queue.publish's ref: seq the stream sequence (0: not
 * published), dup its key was held. A ref whose connection is gone or gave
 * up waiting (TCP_PUBLISH_WAIT_MS) is ignored. Main thread. */
#define TCP_PUBLISH_WAIT_MS 15000
/* How long a PUT waits for the disk (--fsync always) before ERR not-durable
 * (its task stays queued), as forq_push's own wait. */
#define TCP_DURABLE_WAIT_MS 5000
void tcp_published(struct tcp_server *s, uint64_t ref, uint64_t seq, int dup);
/* Cancels task id of the queue named queue if a remote worker holds it: its
 * lease is gone (a late RESULT gets ERR not-leased) and the queue's final
 * callback gets its cancelled result. 0, or -EBUSY when no connection of
 * this server holds it. NULL s: -EBUSY. */
int tcp_cancel(struct tcp_server *s, const char *queue, uint64_t id);
/* Any thread. */
void tcp_counters_read(const struct tcp_server *s, struct tcp_counters *out);
/* Closes all connections. Leases stay in the queue's lease table (no attempt
 * is charged): forqd's exit drain reports them, or the next forqd gives them
 * back. NULL is fine. */
void tcp_stop(struct tcp_server *s);

#endif
