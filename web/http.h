/* http.h — forqd's HTTP thread: metrics, stats, health, tasks, shutdown, UI.
 *
 * One libmicrohttpd daemon with its own epoll thread. It knows nothing of the
 * queue: forqd passes hooks, which run on that thread one request at a time
 * (keep them short: a slow hook delays every client, /metrics included).
 *
 * Routes (every error body is {"error":"..."}; every response is counted by
 * code in forq_http_requests_total):
 *   GET  /metrics        Prometheus text 0.0.4, every queue's (see expo.h)
 *   GET  /stats          JSON figures, the default queue's and each queue's
 *                        in "queues" (see json.h)
 *   GET  /healthz        200 {"status":"ok"}
 *   GET  /readyz         200 {"status":"ready"} or 503 {"status":"not ready"}
 *   POST /tasks          body as in http_tasks.h; 202 {"ids":[...]}, 400 with the
 *                        reason, 413 body or payload too big, 503 + Retry-After: 1
 *                        at once when the queue is full or forqd is draining
 *   GET  /tasks/{id}     200 {"id":42,"status":"done","attempts":1,"result":"..."}
 *                        ("error" instead of "result" for failed, dead and
 *                        retrying tasks), 404 unknown, 400 bad id
 *   POST /shutdown[?mode=now]  202 {"status":"shutting down","mode":"drain"|"now"},
 *                        then hooks.shutdown. With an admin token: needs
 *                        "Authorization: Bearer <token>" (401 otherwise);
 *                        without one: loopback peers only (403 otherwise).
 *   POST /queues/{name}/pause|resume|purge   the queue controls, with the
 *                        admin rules of /shutdown; 200 {"queue":"default",
 *                        "paused":true|false} or {"queue":..,"purged":N}, 404
 *                        {"error":"unknown queue ..."}, 503 when no one
 *                        served a purge in time
 *   POST /queues/{name}/tasks/{id}/cancel   a queued task cancelled, with the
 *                        task routes' token rules; 200 {"queue":..,"id":N,
 *                        "status":"cancelled"}, 404 not queued, 409 running
 *   GET  /queues/{name}/dead   the queue's dead letters, with the task routes'
 *                        token rules: 200 {"queue":..,"dead_letters":[{"id":..,
 *                        "priority":..,"attempts":..,"died_at":..,"error":..,
 *                        "payload":..}]} (metrics/dead_json.h), 404 unknown queue
 *   POST /queues/{name}/dead/retry   body {"ids":[...]} or {"all":true}, with
 *                        the admin rules of /shutdown: 200 {"queue":..,
 *                        "requeued":N}, 400 bad body, 404 unknown queue or an
 *                        id that is no dead letter (then nothing is re-queued)
 *   GET  /dead, POST /dead/retry   the same for the default queue
 *   GET  /, /index.html, /app.js, /style.css   the status page (web/)
 * Unknown paths 404; a known path with another method 405 with Allow.
 * Bodies over max_body get 413: at once when Content-Length says so, else
 * after the rest of the body has been read and dropped.
 *
 * Limits (defaults, chosen so that idle clients cannot lock out a scrape):
 * per_ip_limit 64 connections per client address, conn_limit 2048 in all,
 * conn_timeout_s 10 s idle. 1,000 idle connections from 16+ other addresses
 * still leave room for Prometheus; forqd should raise RLIMIT_NOFILE's soft
 * limit to cover conn_limit (at the limit, MHD stops accepting until a
 * connection closes).
 */
#ifndef FORQ_METRICS_HTTP_H
#define FORQ_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "http_tasks.h"
#include "snapshot.h"

#define HTTP_RESULT_MAX 4096

struct http_task_status {
	char status[16]; /* "pending", "running", "retrying", "done", "failed", "dead" */
	uint32_t attempts;
	size_t result_len;             /* bytes in result, 0 for none */
	char result[HTTP_RESULT_MAX];  /* result (done) or error text (others) */
};

enum http_queue_op { HTTP_QUEUE_PAUSE, HTTP_QUEUE_RESUME, HTTP_QUEUE_PURGE, HTTP_QUEUE_CANCEL };

struct http_hooks {
	void *ctx;
	/* Fills out[0..n) (zeroed before the call), one per queue, n being
	 * http_config.n_queues: out[0] the default queue's with the service's
	 * figures (snapshot.h). Returns 0 or -errno (500). */
	int (*snapshot)(void *ctx, struct metrics_snapshot *out, size_t n);
	/* Enqueues n tasks all or nothing and writes their ids; a keyed task
	 * whose key a live task holds gets that task's id and `duplicate` set.
	 * Returns 0, or -EAGAIN (queue full: answered at once, never waited
	 * on), -EMSGSIZE (payload too big), -ESHUTDOWN (not accepting), -EINVAL. */
	/* queue: the name in /queues/{name}/tasks, NULL for /tasks (the
	 * default queue); -ENOENT when forqd serves no such queue. */
	int (*push)(void *ctx, const char *queue, struct http_task *tasks, size_t n,
		    uint64_t *ids);
	/* Returns 0 for an unknown (or forgotten) id, or 1 with *out filled;
	 * queue as for push (-ENOENT: no such queue). */
	int (*lookup)(void *ctx, const char *queue, uint64_t id, struct http_task_status *out);
	/* Asks for a graceful (now=0) or immediate (now=1) shutdown. Must only
	 * wake forqd's main loop (write to its shutdown pipe): never call http_stop here. */
	void (*shutdown)(void *ctx, int now);
	/* 1 when workers are up and forqd is not draining. */
	int (*ready)(void *ctx);
	/* Optional (NULL: dropped): one line from libmicrohttpd, no newline. */
	void (*log)(void *ctx, const char *line);
	/* Optional (NULL: 500): queue control op (enum http_queue_op) on the
	 * queue named `name`; *arg is a cancel's task id, and a purge sets it
	 * to the tasks it dropped. Returns 0, -ENOENT for an unknown queue,
	 * -ENOMSG (cancel: the task is not queued: 404), -EBUSY (cancel: it
	 * runs: 409), -ESRCH or -ETIMEDOUT when no one served it (503), other
	 * -errno (500). */
	int (*queue)(void *ctx, const char *name, int op, uint64_t *arg);
	/* Optional (NULL: a push's answer never waits). After push returned
	 * 0: a ticket for what it pushed that must still reach the disk
	 * (--fsync always), or NULL to answer now; the request then waits,
	 * suspended, up to HTTP_DURABLE_WAIT_MS (503 past it) while the HTTP
	 * thread serves others. durable(ticket), from any thread: 1 on disk,
	 * 0 not yet, -ESHUTDOWN (the journal stopped). durable_free after. */
	void *(*durable_take)(void *ctx, const char *queue);
	int (*durable)(void *ctx, void *ticket);
	void (*durable_free)(void *ctx, void *ticket);
	/* Optional (NULL: 500): appends the dead letters of queue (NULL: the
	 * default queue) to out as metrics/dead_json.h's JSON. Returns how
	 * many, -ENOENT for an unknown queue, other -errno (500). */
	int (*dead)(void *ctx, const char *queue, struct buf *out);
	/* Optional (NULL: 500): re-queues the dead letters ids[0..n) of queue
	 * (n 0: all of them), all or none. Returns how many, -ENOENT for an
	 * unknown queue, -ENOMSG with *missing when one of ids is no dead
	 * letter (404, nothing re-queued), other -errno (500). */
	int (*dead_retry)(void *ctx, const char *queue, const uint64_t *ids, size_t n,
			  uint64_t *missing);
};
#define HTTP_DURABLE_WAIT_MS 5000

struct http_config {
	int listen_fd;           /* bound and listening, address chosen by the
				  * caller; stays the caller's: close it after */
	const char *admin_token; /* NULL: none (then /shutdown is loopback-only) */
	const char *worker_token; /* NULL: none; else also opens the task routes */
	unsigned conn_limit;     /* 0: 2048 */
	unsigned per_ip_limit;   /* 0: 64 */
	unsigned conn_timeout_s; /* 0: 10 */
	size_t max_body;         /* request body bytes; 0: 1 MiB */
	size_t max_payload;      /* bytes per task; 0: no check here (push decides) */
	size_t n_queues;         /* snapshots a scrape holds (hooks.snapshot); 0: 1 */
};

struct http_server;

/* Starts the daemon thread on a duplicate of c->listen_fd (which address to
 * bind, and whether one beyond loopback needs a token, is the caller's
 * decision). Returns 0, or -errno with the reason in err. The token is hashed
 * at once; config strings need not outlive the call. */
int http_start(struct http_server **sp, const struct http_config *c, const struct http_hooks *h,
	       char *err, size_t errlen);
/* Any thread: a journal moved its durable marks; POSTs waiting for the
 * disk are looked at again. NULL is fine. */
void http_durable(struct http_server *s);
/* Stops accepting, lets open requests finish for up to HTTP_DRAIN_MS, then
 * stops the thread and frees s. Main thread only; never from a hook. */
void http_stop(struct http_server *s);
#define HTTP_DRAIN_MS 1000

/* Copies the per-code response counts into snap->http / n_http (a scrape's
 * first snapshot). Any thread. */
void http_requests_by_code(const struct http_server *s, struct metrics_snapshot *snap);

#endif
