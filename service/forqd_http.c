/* forqd_http.c — what forqd's HTTP thread asks of it: the hooks of
 * web/http.h, each on that thread's own handle of the queue it names, and
 * the listening socket's policy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dead_json.h"
#include "figures.h"
#include "forqd.h"
#include "http.h"
#include "intake.h"
#include "log.h"
#include "net.h"
#include "stream.h"

#define HTTP_BACKLOG 511

/* ---- HTTP hooks (they run on the HTTP thread) ---- */

/* One queue's figures. */
static void queue_figures(struct metrics_snapshot *s, struct served *q)
{
	figures_queue(s, q->hq, q->c->workers);
	s->throughput = (double)atomic_load(&q->throughput_milli) / 1000.0;
	s->stalled = stall_watch_stalled(&q->stall);
	s->workers_stuck = stall_watch_stuck(&q->stall);
	snprintf(s->queue, sizeof s->queue, "%s", q->c->name);
	figures_journal(s, q->journal);
	figures_upstream(s, q->up, q->bridge);
}

/* out[0] is d->main's with the service's figures, then the other queues in
 * the config's order (n is d->n_sv: forqd_start_http says so). */
static int hook_snapshot(void *ctx, struct metrics_snapshot *out, size_t n)
{
	struct forqd *d = ctx;
	size_t i = 1;
	queue_figures(&out[0], d->main);
	EACH(d, s)
		if (s != d->main && i < n)
			queue_figures(&out[i++], s);
	figures_tcp(&out[0], d->tcp);
	snprintf(out[0].version, sizeof out[0].version, "%s", FORQ_VERSION);
	out[0].start_time = (double)d->start_unix_ns / 1e9;
	out[0].draining = !!(forq_admin_flags(d->main->hq) & FORQ_F_DRAINING);
	return 0;
}

/* The queue a route names: NULL, the default route's (d->main). */
static struct served *served_of(struct forqd *d, const char *name)
{
	if (!name)
		return d->main;
	EACH(d, s)
		if (!strcmp(s->c->name, name))
			return s;
	return NULL;
}

static int hook_push(void *ctx, const char *queue, struct http_task *tasks, size_t n,
		     uint64_t *ids)
{
	struct served *s = served_of(ctx, queue);
	if (s && s->up)
		return intake_publish(s->up, s->c->max_payload, tasks, n, ids);
	return s ? intake_push(s->hq, s->c->max_payload, tasks, n, ids) : -ENOENT;
}

/* --fsync always: what a push on the HTTP thread's handle (which never
 * waits: forq_admin_push_nowait) must wait for before its answer. */
struct durable_ticket {
	struct forq *q;
	struct forq_durable_ticket t;
};
static struct durable_ticket no_memory; /* durable: -ENOMEM (answered 500) */

static void *hook_durable_take(void *ctx, const char *queue)
{
	struct served *s = served_of(ctx, queue);
	struct forq_durable_ticket t;
	if (!s || !forq_admin_durable_take(s->hq, &t))
		return NULL;
	struct durable_ticket *k = malloc(sizeof *k);
	if (!k)
		return &no_memory;
	*k = (struct durable_ticket){s->hq, t};
	return k;
}

static int hook_durable(void *ctx, void *ticket)
{
	struct durable_ticket *k = ticket;
	(void)ctx;
	return k == &no_memory ? -ENOMEM : forq_admin_durable_reached(k->q, &k->t);
}

static void hook_durable_free(void *ctx, void *ticket)
{
	(void)ctx;
	if (ticket != &no_memory)
		free(ticket);
}

static int hook_lookup(void *ctx, const char *queue, uint64_t id, struct http_task_status *out)
{
	struct served *m = served_of(ctx, queue);
	if (!m)
		return -ENOENT;
	static const char *const where_names[] = {
		[FORQ_WHERE_PENDING] = "pending", [FORQ_WHERE_RUNNING] = "running",
		[FORQ_WHERE_RETRYING] = "retrying", [FORQ_WHERE_SCHEDULED] = "scheduled"};
	int status = 0;
	unsigned attempts = 0;
	int w = forq_task_where(m->hq, id, &status, &attempts, out->result, sizeof out->result);
	if (w == FORQ_WHERE_UNKNOWN)
		return 0;
	if (w == FORQ_WHERE_FINISHED)
		snprintf(out->status, sizeof out->status, "%s", result_status_name(status));
	else
		snprintf(out->status, sizeof out->status, "%s", where_names[w]);
	out->attempts = attempts;
	out->result_len = strlen(out->result);
	return 1;
}

static void hook_shutdown(void *ctx, int now)
{
	struct forqd *d = ctx;
	char c = now ? 'n' : 'd';
	ssize_t w = write(d->wake[1], &c, 1);
	(void)w;
}

/* Pause and resume flip the flag from this thread; a purge or a cancel is
 * asked of the main loop, which alone writes results. */
static int hook_queue(void *ctx, const char *name, int op, uint64_t *arg)
{
	struct forqd *d = ctx;
	static const enum queuectl_op ops[] = {[HTTP_QUEUE_PAUSE] = QUEUECTL_PAUSE,
					       [HTTP_QUEUE_RESUME] = QUEUECTL_RESUME,
					       [HTTP_QUEUE_PURGE] = QUEUECTL_PURGE,
					       [HTTP_QUEUE_CANCEL] = QUEUECTL_CANCEL};
	if (op < 0 || op > HTTP_QUEUE_CANCEL)
		return -EINVAL;
	struct served *s = served_of(d, name);
	return s ? queuectl_ask(s->hq, ops[op], arg) : -ENOENT;
}

/* Dead letters, on this thread's handle: the table has its own lock, and a
 * re-queue writes no result (the task's next end will). */
static int hook_dead(void *ctx, const char *name, struct buf *out)
{
	struct served *s = served_of(ctx, name);
	return s ? dead_json(out, s->hq, s->c->name) : -ENOENT;
}

static int hook_dead_retry(void *ctx, const char *name, const uint64_t *ids, size_t n,
			   uint64_t *missing)
{
	struct served *s = served_of(ctx, name);
	if (!s)
		return -ENOENT;
	int r = forq_dead_retry_ids(s->hq, ids, n, missing);
	if (r >= 0)
		log_event(LOG_INFO, "dead_requeued", "queue=%s tasks=%d via=http", s->c->name, r);
	return r == -ENOENT ? -ENOMSG : r;
}

/* Ready: not draining, and in every queue every worker runs, none stopped
 * or stuck, and its stream (--upstream) in reach. */
static int hook_ready(void *ctx)
{
	struct forqd *d = ctx;
	if (forq_admin_flags(d->main->hq) & FORQ_F_DRAINING)
		return 0;
	EACH(d, s) {
		if (stall_watch_stalled(&s->stall) || stall_watch_stuck(&s->stall))
			return 0; /* alive but not working: a stopped or stuck consumer */
		if (s->up && !upstream_connected(s->up))
			return 0; /* its stream out of reach */
		struct forq_worker_info rows[FORQ_MAX_WORKERS];
		forq_admin_workers(s->hq, rows, s->c->workers);
		for (int w = 0; w < s->c->workers; w++)
			if (rows[w].state != FORQ_WORKER_RUNNING || rows[w].results_errno)
				return 0; /* not running, or holding results it cannot write */
	}
	return 1;
}

static void hook_log(void *ctx, const char *line)
{
	(void)ctx;
	log_event(LOG_WARN, "http", "message=\"%s\"", line);
}

/* Beyond loopback only with an admin token or --insecure, as for --tcp: this
 * decision is forqd's, http.c just serves the socket it is given. */
/* The body limit: the largest of the queues' payloads (each push is then
 * held to its own queue's). */
static uint32_t largest_payload(struct forqd *d)
{
	uint32_t m = 0;
	EACH(d, s)
		if (s->c->max_payload > m)
			m = s->c->max_payload;
	return m;
}

int forqd_start_http(struct forqd *d)
{
	char err[512];
	struct net_listener l;
	int r;
	struct http_hooks hooks = {.ctx = d, .snapshot = hook_snapshot, .push = hook_push,
				   .lookup = hook_lookup, .shutdown = hook_shutdown,
				   .ready = hook_ready, .queue = hook_queue, .log = hook_log,
				   .durable_take = hook_durable_take, .durable = hook_durable,
				   .durable_free = hook_durable_free, .dead = hook_dead,
				   .dead_retry = hook_dead_retry};
	EACH(d, s) {
		if (forq_open(&s->hq, s->c->shm_name, err, sizeof err)) {
			log_event(LOG_ERROR, "http_failed", "error=\"%s\"", err);
			return -1;
		}
		forq_admin_push_nowait(s->hq); /* the answer waits, suspended (web/waiting.h) */
	}
	if (strcmp(d->c.http, "off") == 0)
		return 0;
	r = net_listen(d->c.http, HTTP_BACKLOG, !d->c.admin_token && !d->c.insecure, &l, err,
		       sizeof err);
	if (r == -EPERM)
		snprintf(err, sizeof err,
			 "refusing to listen on %s without an admin token (set FORQ_ADMIN_TOKEN or "
			 "--admin-token-file, or pass --insecure)",
			 d->c.http);
	if (r) {
		log_event(LOG_ERROR, "http_failed", "error=\"%s\"", err);
		return -1;
	}
	struct http_config hc = {.listen_fd = l.fd, .admin_token = d->c.admin_token,
				 .worker_token = d->c.worker_token,
				 .max_payload = largest_payload(d), .n_queues = d->n_sv};
	r = http_start(&d->http, &hc, &hooks, err, sizeof err);
	close(l.fd); /* the server holds its own descriptor */
	if (r) {
		log_event(LOG_ERROR, "http_failed", "error=\"%s\"", err);
		return -1;
	}
	log_event(LOG_INFO, "http_listening", "addr=%s port=%u", d->c.http, l.port);
	return 0;
}
