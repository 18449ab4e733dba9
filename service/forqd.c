/* forqd.c — the forq service: wires the queue, the consumers, the producer
 * thread, the HTTP thread and the TCP server together, and owns shutdown.
 * The only place that exits. Exit codes: 0 ok, 2 bad flags, 3 queue
 * (create, recover, ownership), 4 results file, 5 listen (HTTP or TCP),
 * 1 anything else.
 *
 * One event loop (base/loop.h) on the main thread: the signalfd (SIGCHLD
 * for the supervisor, SIGINT/SIGTERM), the /shutdown pipe, the TCP server's
 * sockets, the work watch's eventfd (tasks arrived, workwatch.h) and timers
 * (consumer restarts, housekeeping, the TCP server's). It sleeps until one
 * of them is due. Housekeeping (due retries, dead libforq clients, the
 * throughput figure, drain checks) runs every 100 ms while the queue is
 * busy; an idle queue (nothing queued, running or waiting for a retry)
 * needs it every 10 s only, because its first push wakes the loop. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "forq_admin.h"
#include "clock.h"
#include "config.h"
#include "forq.h"
#include "handler.h"
#include "http.h"
#include "journal.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "notify.h"
#include "producer.h"
#include "queuectl.h"
#include "results.h"
#include "figures.h"
#include "intake.h"
#include "queue_open.h"
#include "stall.h"
#include "upstream_setup.h"
#include "supervisor.h"
#include "server.h"
#include "workwatch.h"

enum { EXIT_USAGE = 2, EXIT_QUEUE = 3, EXIT_RESULTS = 4, EXIT_LISTEN = 5, EXIT_RESOURCES = 6 };

#define MS ((uint64_t)1000000)      /* ns per ms */
#define BUSY_HOUSEKEEP_NS (100 * MS) /* retries due, drain checks: this late at most */
#define IDLE_HOUSEKEEP_NS (10000 * MS) /* idle: dead clients' records freed this late */
#define REAP_EVERY_NS (250 * MS)    /* libforq clients are not our children: looked at */
#define THROUGHPUT_NS (1000 * MS)   /* the throughput figure's window */
#define STOP_GRACE_MS 5000
#define HTTP_BACKLOG 511

enum phase { RUNNING, DRAINING, STOPPING };

#define ANSWERED_MAX 256 /* results buffered before the journal may forget them */

struct forqd {
	struct forqd_config c;
	struct forq *q;           /* main thread's handle: supervisor record */
	struct forq *hq;          /* the HTTP thread's handle */
	struct supervisor *sup;
	struct producer *prod;
	struct http_server *http;
	struct tcp_server *tcp;
	struct work_watch *watch;
	struct journal *journal;  /* --journal, NULL without */
	struct upstream *up;      /* --upstream: the NATS connection, NULL without */
	struct bridge *bridge;    /* --upstream: the stream's tasks into the ring */
	int created;              /* the queue is new (not recovered): replay the journal */
	struct loop loop;
	struct loop_timer restart_timer;  /* the next consumer restart */
	struct loop_timer housekeep_timer;
	struct results_sink sink; /* results the supervisor writes */
	int results_fd;
	int have_sink;
	int sfd;                  /* signalfd */
	int wake[2];              /* /shutdown -> main loop: 'd' drain, 'n' now */
	enum phase phase;
	int idle;                 /* nothing queued, running or retrying: housekeeping slows */
	int results_gone;         /* the results output takes no more writes (EPIPE) */
	struct stall_watch stall; /* a stopped or stuck consumer (stall.h) */
	struct queuectl_watch ctl; /* pause changes, asked purges (queuectl.h) */
	uint64_t drain_deadline;
	uint64_t last_reap_ns;
	int64_t start_unix_ns;
	_Atomic uint64_t throughput_milli; /* tasks/s * 1000, last second */
	uint64_t tp_last_ns, tp_last_finished;
	uint64_t idle_checked_ns, idle_since_ns; /* see queue_settled */
	uint64_t answered[ANSWERED_MAX]; /* ids whose result lines wait for a flush */
	size_t n_answered;
};

static void flush_results(void *ctx);

/* A task's result line, buffered in the sink: written by the next flush. A
 * remote worker's answers are flushed once per batch (tcp/server.h). */
static void on_answer(void *ctx, const struct forq_task_info *rec, const void *payload, int status,
		      const char *text, size_t text_len)
{
	struct forqd *d = ctx;
	if (d->have_sink) {
		struct result_rec r = {
			.id = rec->id, .task = payload, .task_len = rec->len, .status = status,
			.text = text, .text_len = text_len, .attempts = rec->attempts,
			.prio = rec->prio, .source_file = d->c.tasks, .line = rec->line};
		result_format(results_sink_buf(&d->sink), &r);
	}
	/* The journal forgets it once its line is written (flush_results); an
	 * unfinished task stays in it. */
	if (status != FORQ_RESULT_UNFINISHED && (d->journal || d->bridge)) {
		if (d->n_answered == ANSWERED_MAX)
			flush_results(d);
		d->answered[d->n_answered++] = rec->id;
	}
}

static void flush_results(void *ctx)
{
	struct forqd *d = ctx;
	if (d->have_sink && results_sink_flush(&d->sink) == -EPIPE)
		d->results_gone = 1;
	journal_finished(d->journal, d->answered, d->n_answered);
	bridge_finished(d->bridge, d->answered, d->n_answered);
	d->n_answered = 0;
}

/* A task reached its end inside a repair or at exit: write its result now,
 * not at the next tick: the task has already left the queue, so a forqd
 * killed before a later flush would lose its result. */
static void on_final(void *ctx, const struct forq_task_info *rec, const void *payload, int status,
		     const char *text, size_t text_len)
{
	on_answer(ctx, rec, payload, status, text, text_len);
	flush_results(ctx);
}

/* ---- HTTP hooks (they run on the HTTP thread) ---- */

static int hook_snapshot(void *ctx, struct metrics_snapshot *s)
{
	struct forqd *d = ctx;
	figures_queue(s, d->hq, d->c.workers);
	figures_tcp(s, d->tcp);
	s->throughput = (double)atomic_load(&d->throughput_milli) / 1000.0;
	s->stalled = stall_watch_stalled(&d->stall);
	s->workers_stuck = stall_watch_stuck(&d->stall);
	snprintf(s->version, sizeof s->version, "%s", FORQ_VERSION);
	s->start_time = (double)d->start_unix_ns / 1e9;
	s->draining = !!(forq_admin_flags(d->hq) & FORQ_F_DRAINING);
	figures_journal(s, d->journal);
	figures_upstream(s, d->up, d->bridge);
	return 0;
}

static int hook_push(void *ctx, struct http_task *tasks, size_t n, uint64_t *ids)
{
	struct forqd *d = ctx;
	if (d->up)
		return intake_publish(d->up, d->c.max_payload, tasks, n, ids);
	return intake_push(d->hq, d->c.max_payload, tasks, n, ids);
}

static int hook_lookup(void *ctx, uint64_t id, struct http_task_status *out)
{
	struct forqd *d = ctx;
	static const char *const where_names[] = {
		[FORQ_WHERE_PENDING] = "pending", [FORQ_WHERE_RUNNING] = "running",
		[FORQ_WHERE_RETRYING] = "retrying", [FORQ_WHERE_SCHEDULED] = "scheduled"};
	int status = 0;
	unsigned attempts = 0;
	int w = forq_task_where(d->hq, id, &status, &attempts, out->result, sizeof out->result);
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
	return queuectl_ask(d->hq, name, ops[op], arg);
}

static int hook_ready(void *ctx)
{
	struct forqd *d = ctx;
	if (forq_admin_flags(d->hq) & FORQ_F_DRAINING)
		return 0;
	if (stall_watch_stalled(&d->stall) || stall_watch_stuck(&d->stall))
		return 0; /* alive but not working: a stopped or stuck consumer */
	if (d->up && !upstream_connected(d->up))
		return 0; /* its stream out of reach */
	struct forq_worker_info rows[FORQ_MAX_WORKERS];
	forq_admin_workers(d->hq, rows, d->c.workers);
	for (int w = 0; w < d->c.workers; w++)
		if (rows[w].state != FORQ_WORKER_RUNNING || rows[w].results_errno)
			return 0; /* not running, or holding results it cannot write */
	return 1;
}

static void hook_log(void *ctx, const char *line)
{
	(void)ctx;
	log_event(LOG_WARN, "http", "message=\"%s\"", line);
}

/* ---- setup ---- */

static int open_queue(struct forqd *d)
{
	int r = queue_open(&d->q, &d->c, on_final, d);
	d->created = r == 1;
	return r < 0 ? -1 : 0;
}

/* --journal: a new queue gets what the journal holds; a recovered one is
 * journaled from where it stands. */
static int open_journal(struct forqd *d)
{
	if (!d->c.journal) {
		forq_admin_journal_end(d->q); /* a queue a journaled forqd kept */
		return 0;
	}
	char err[512], q[600];
	struct journal_config jc = {.dir = d->c.journal, .fsync_ms = d->c.fsync_ms,
				    .segment_bytes = (uint64_t)d->c.journal_segment_mib << 20,
				    .queue_name = d->c.shm_name, .max_payload = d->c.max_payload};
	int r = journal_open(&d->journal, d->q, &jc, d->created, err, sizeof err);
	if (r)
		log_event(LOG_ERROR, "journal_refused", "dir=%s error=\"%s\"", d->c.journal,
			  log_quote(err, q, sizeof q));
	return r;
}

static int open_results(struct forqd *d)
{
	d->results_fd = -1;
	if (strcmp(d->c.results, "off") == 0)
		return 0;
	if (strcmp(d->c.results, "-") == 0)
		d->results_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	else
		d->results_fd = open(d->c.results, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (d->results_fd < 0 || results_sink_init(&d->sink, d->results_fd)) {
		log_event(LOG_ERROR, "results_open_failed", "file=\"%s\" error=\"%s\"", d->c.results,
			  strerror(errno));
		return -1;
	}
	d->have_sink = 1;
	return 0;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---- the main loop ---- */

static void housekeep_in(struct forqd *d, uint64_t now, uint64_t ns)
{
	uint64_t due = now + ns;
	if (!loop_timer_pending(&d->housekeep_timer) || loop_timer_due(&d->housekeep_timer) > due)
		loop_timer_set(&d->loop, &d->housekeep_timer, due);
}

/* Something happened that housekeeping must follow closely. */
static void leave_idle(struct forqd *d)
{
	d->idle = 0;
	housekeep_in(d, clock_mono_ns(), 0);
}

static void begin_drain(struct forqd *d, const char *why)
{
	if (d->phase != RUNNING)
		return;
	d->phase = DRAINING;
	d->drain_deadline = clock_mono_ns() + (uint64_t)d->c.drain_timeout_s * 1000000000u;
	forq_admin_set_flags(d->q, FORQ_F_DRAINING, FORQ_F_ACCEPTING);
	log_event(LOG_INFO, "draining", "reason=\"%s\" timeout_s=%d", why, d->c.drain_timeout_s);
	notify_send("STOPPING=1");
	if (d->tcp)
		tcp_draining(d->tcp);
	leave_idle(d);
}

static void begin_stop(struct forqd *d, const char *why)
{
	if (d->phase == STOPPING)
		return;
	if (d->phase == RUNNING)
		begin_drain(d, why);
	d->phase = STOPPING;
	forq_admin_set_flags(d->q, FORQ_F_STOP, 0);
	log_event(LOG_INFO, "stopping", "reason=\"%s\"", why);
}

/* Nothing queued, running or waiting for a retry (a delayed task may be due
 * in days: a drain does not wait for it), seen on checks at least
 * 50 ms apart: a task moving between two places (in flight -> retry table)
 * can slip past one read of the figures, never past two. Checked at most
 * every 10 ms: a stats read walks every in-flight entry. */
static int queue_settled(struct forqd *d, uint64_t now)
{
	if (now - d->idle_checked_ns < 10000000u)
		return d->idle_since_ns && now - d->idle_since_ns >= 50000000u;
	d->idle_checked_ns = now;
	struct forq_stats st;
	forq_stats_read(d->q, &st);
	uint64_t queued = st.pending[0] + st.pending[1] + st.pending[2] + st.retry_waiting;
	if (d->phase == DRAINING && forq_admin_paused(d->q))
		queued = 0; /* paused: they wait for a resume, not for this drain */
	if (queued + st.in_progress) {
		d->idle_since_ns = 0;
		return 0;
	}
	if (!d->idle_since_ns)
		d->idle_since_ns = now;
	return now - d->idle_since_ns >= 50000000u;
}

/* The throughput figure, once a window; then whether the queue is idle: in
 * the last window nothing finished, and now nothing is queued, running or
 * waiting for a retry, and nothing but a push can change that. */
static void update_throughput(struct forqd *d, uint64_t now)
{
	if (now - d->tp_last_ns < THROUGHPUT_NS)
		return;
	struct forq_stats st;
	forq_stats_read(d->q, &st);
	uint64_t fin = st.done + st.failed + st.dead, milli = 0;
	if (d->tp_last_ns) {
		double secs = (double)(now - d->tp_last_ns) / 1e9;
		milli = (uint64_t)((double)(fin - d->tp_last_finished) / secs * 1000.0);
		atomic_store(&d->throughput_milli, milli);
	}
	d->tp_last_ns = now;
	d->tp_last_finished = fin;
	d->idle = d->phase == RUNNING && !d->c.exit_when_done && milli == 0 &&
		  (!d->prod || producer_finished(d->prod)) &&
		  st.pending[0] + st.pending[1] + st.pending[2] + st.in_progress + st.retry_waiting +
				  st.scheduled ==
			  0; /* a delayed task keeps the 100 ms look at the waiting table */
}

/* The results output gone for good (a closed pipe: forqd's own write, or a
 * consumer's) ends the service with its exit code: there is nowhere left to
 * say what became of a task. */
static void check_results_gone(struct forqd *d)
{
	if (supervisor_results_gone(d->sup))
		d->results_gone = 1;
	if (d->results_gone && d->phase != STOPPING)
		begin_stop(d, "results output gone");
}

/* A cancel of a running task: a remote worker's lease is revoked. */
static int cancel_leased(void *ctx, uint64_t id)
{
	struct forqd *d = ctx;
	return tcp_cancel(d->tcp, id);
}

static void on_housekeep(void *ctx, uint64_t now)
{
	struct forqd *d = ctx;
	queuectl_look(&d->ctl, d->q, on_final, d, cancel_leased, d);
	forq_admin_retry_due(d->q, now);
	if (d->idle || now - d->last_reap_ns >= REAP_EVERY_NS) {
		/* libforq clients are not our children: look for their death (a
		 * dead producer must not stall a lane long). */
		forq_admin_reap_clients(d->q, on_final, d);
		/* A sparse queue gives back the ring pages consumers are done
		 * with even when nothing is pushed. */
		forq_admin_trim(d->q);
		d->last_reap_ns = now;
	}
	update_throughput(d, now);
	stall_watch_look(&d->stall, d->q, d->c.workers, d->c.stall_timeout_s, now);
	if (d->have_sink && results_sink_flush(&d->sink) == -EPIPE)
		d->results_gone = 1;
	check_results_gone(d);

	if (d->phase == RUNNING && d->c.exit_when_done && producer_finished(d->prod) &&
	    queue_settled(d, now))
		begin_drain(d, "all tasks done");
	if (d->phase == DRAINING) {
		if (queue_settled(d, now))
			begin_stop(d, "queue drained");
		else if (now >= d->drain_deadline)
			begin_stop(d, "drain timeout");
	}
	housekeep_in(d, now, d->idle ? IDLE_HOUSEKEEP_NS : BUSY_HOUSEKEEP_NS);
}

/* Starts the consumers whose backoff is over; comes back for the next. */
static void on_restart_timer(void *ctx, uint64_t now)
{
	struct forqd *d = ctx;
	int ms = supervisor_tick(d->sup, INT32_MAX);
	if (ms < INT32_MAX)
		loop_timer_set(&d->loop, &d->restart_timer, now + (uint64_t)ms * MS);
}

static void on_signal(void *ctx, uint32_t events)
{
	struct forqd *d = ctx;
	struct signalfd_siginfo si;
	(void)events;
	while (read(d->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			supervisor_reap(d->sup);
			check_results_gone(d);
			on_restart_timer(d, clock_mono_ns());
			break;
		case SIGINT:
		case SIGTERM:
			if (d->phase == RUNNING)
				begin_drain(d, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
			else
				begin_stop(d, "second signal");
			break;
		default:
			break;
		}
	}
}

static void on_wake(void *ctx, uint32_t events)
{
	struct forqd *d = ctx;
	char buf[16];
	ssize_t n;
	(void)events;
	while ((n = read(d->wake[0], buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 'n')
				begin_stop(d, "POST /shutdown?mode=now");
			else
				begin_drain(d, "POST /shutdown");
		}
}

/* The queue's work word moved: tasks were pushed (by anyone). */
static void on_work(void *ctx)
{
	struct forqd *d = ctx;
	if (d->tcp)
		tcp_work_arrived(d->tcp);
	if (d->idle)
		leave_idle(d);
}

static int waits_for_work(struct forqd *d)
{
	return (d->tcp && tcp_parked(d->tcp)) || d->idle;
}

/* Between two rounds: arms the work watch while parked GETs or an idle
 * forqd wait for tasks, after one look of its own (workwatch.h). */
static void watch_work(struct forqd *d)
{
	if (!work_watch_begin(d->watch, waits_for_work(d)))
		return;
	if (d->tcp)
		tcp_work_arrived(d->tcp);
	if (d->idle) {
		struct forq_stats st;
		forq_stats_read(d->q, &st);
		if (st.pending[0] + st.pending[1] + st.pending[2] + st.in_progress + st.retry_waiting +
		    st.scheduled)
			leave_idle(d);
	}
	work_watch_arm(d->watch, waits_for_work(d));
}

static int run(struct forqd *d)
{
	int r;
	if ((r = loop_fd_add(&d->loop, d->sfd, EPOLLIN, on_signal, d)) ||
	    (r = loop_fd_add(&d->loop, d->wake[0], EPOLLIN, on_wake, d)))
		return r;
	loop_timer_init(&d->restart_timer, on_restart_timer, d);
	loop_timer_init(&d->housekeep_timer, on_housekeep, d);
	housekeep_in(d, clock_mono_ns(), 0);
	on_restart_timer(d, clock_mono_ns());
	while (d->phase != STOPPING) {
		if ((r = loop_run_once(&d->loop)) < 0) {
			log_event(LOG_ERROR, "loop_failed", "error=\"%s\"", strerror(-r));
			begin_stop(d, "event loop failed");
			break;
		}
		watch_work(d);
	}
	loop_timer_stop(&d->loop, &d->restart_timer);
	loop_timer_stop(&d->loop, &d->housekeep_timer);
	loop_fd_del(&d->loop, d->sfd);
	loop_fd_del(&d->loop, d->wake[0]);
	supervisor_wait_all(d->sup, STOP_GRACE_MS);
	return 0;
}

/* Beyond loopback only with an admin token or --insecure, as for --tcp: this
 * decision is forqd's, http.c just serves the socket it is given. */
static int start_http(struct forqd *d)
{
	char err[512];
	struct net_listener l;
	int r;
	struct http_hooks hooks = {.ctx = d, .snapshot = hook_snapshot, .push = hook_push,
				   .lookup = hook_lookup, .shutdown = hook_shutdown,
				   .ready = hook_ready, .queue = hook_queue, .log = hook_log};
	if (forq_open(&d->hq, d->c.shm_name, err, sizeof err)) {
		log_event(LOG_ERROR, "http_failed", "error=\"%s\"", err);
		return -1;
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
				 .max_payload = d->c.max_payload};
	r = http_start(&d->http, &hc, &hooks, err, sizeof err);
	close(l.fd); /* the server holds its own descriptor */
	if (r) {
		log_event(LOG_ERROR, "http_failed", "error=\"%s\"", err);
		return -1;
	}
	log_event(LOG_INFO, "http_listening", "addr=%s port=%u", d->c.http, l.port);
	return 0;
}

static int start_tcp(struct forqd *d)
{
	if (strcmp(d->c.tcp, "off") == 0)
		return 0;
	char err[512];
	struct tcp_config tc = {.listen = d->c.tcp,
				.lease_timeout_ms = d->c.lease_timeout_s * 1000,
				.idle_timeout_ms = d->c.tcp_idle_timeout_s * 1000,
				.max_conns = d->c.tcp_max_conns,
				.max_payload = d->c.max_payload, .batch_max = d->c.batch,
				.admin_token = d->c.admin_token, .worker_token = d->c.worker_token,
				.insecure = d->c.insecure};
	struct tcp_results res = {.final = on_final, .add = on_answer, .flush = flush_results, .ctx = d};
	if (tcp_start(&d->tcp, &tc, d->q, &d->loop, &res, err, sizeof err)) {
		log_event(LOG_ERROR, "tcp_failed", "error=\"%s\"", err);
		return -1;
	}
	log_event(LOG_INFO, "tcp_listening", "addr=%s port=%u", d->c.tcp, tcp_port(d->tcp));
	return 0;
}

/* The queue's last step: kept for the next forqd, or drained and removed. */
static void close_queue(struct forqd *d)
{
	/* Everything pushed goes into the journal first; a queue kept in
	 * shared memory stays journaled for the next forqd. */
	journal_close(d->journal, !d->c.keep_shm);
	d->journal = NULL;
	if (d->c.keep_shm) {
		struct forq_stats st;
		forq_stats_read(d->q, &st);
		forq_admin_release(d->q);
		log_event(LOG_INFO, "queue_kept", "name=%s pending=%llu", d->c.shm_name,
			  (unsigned long long)(st.pending[0] + st.pending[1] + st.pending[2] +
					       st.retry_waiting + st.scheduled));
	} else {
		int left = forq_admin_drain_each(d->q, on_final, d);
		if (left)
			log_event(LOG_WARN, "tasks_unfinished", "count=%d reason=\"%s\"", left,
				  d->have_sink ? "reported as status unfinished in the results"
					       : "dropped unrecorded: --results off (--keep-shm "
						 "keeps them queued)");
		forq_unlink(d->c.shm_name);
	}
	forq_close(d->q);
	d->q = NULL;
}

/* A start that failed for want of processes, threads or memory
 * (RLIMIT_NPROC) is the machine's limit, not a bad flag: its own code. */
static int exit_code_of(int r)
{
	return r == -EAGAIN || r == -ENOMEM ? EXIT_RESOURCES : 1;
}

int main(int argc, char **argv)
{
	static struct forqd d = {.sfd = -1, .wake = {-1, -1}, .results_fd = -1};
	char err[512];
	int code = 1, r;

	r = config_parse(&d.c, argc, argv, err, sizeof err);
	if (r > 0)
		return 0;
	if (r < 0) {
		fprintf(stderr, "forqd: %s\n", err);
		return EXIT_USAGE;
	}
	log_set_level(d.c.log_level);
	notify_init();
	d.start_unix_ns = clock_real_ns();
	{
		/* Reject a bad --handler now, not in every consumer. */
		struct handler *h;
		struct handler_options ho = {0};
		if (handler_open(&h, d.c.handler, &ho, err, sizeof err)) {
			fprintf(stderr, "forqd: --handler: %s\n", err);
			config_free(&d.c);
			return EXIT_USAGE;
		}
		handler_close(h);
	}

	/* Signals arrive through a signalfd; threads inherit this mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a file size limit: EFBIG from write, not death */
	d.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d.sfd < 0 || pipe2(d.wake, O_NONBLOCK | O_CLOEXEC) < 0 || loop_init(&d.loop) < 0) {
		log_event(LOG_ERROR, "setup_failed", "error=\"%s\"", strerror(errno));
		goto out;
	}
	raise_fd_limit();

	/* Each step below is undone in the reverse order, from its label down:
	 * nothing is released while something started after it may use it. */
	if (upstream_setup(&d.up, &d.c)) {
		code = EXIT_QUEUE;
		goto out_loop;
	}
	if (open_results(&d)) {
		code = EXIT_RESULTS;
		goto out_loop;
	}
	if (open_queue(&d)) {
		code = EXIT_QUEUE;
		goto out_results;
	}
	if (open_journal(&d)) {
		code = EXIT_QUEUE;
		goto out_queue;
	}
	forq_admin_set_flags(d.q, FORQ_F_ACCEPTING, FORQ_F_DRAINING | FORQ_F_STOP);
	/* The bridge, then TCP: the HTTP thread reads d.bridge and d.tcp from
	 * its first request on. */
	if ((r = bridge_setup(&d.bridge, d.up, &d.c))) {
		code = exit_code_of(r);
		goto out_queue;
	}
	if (start_tcp(&d)) {
		code = EXIT_LISTEN;
		goto out_queue;
	}
	if (start_http(&d)) {
		code = EXIT_LISTEN;
		goto out_http;
	}
	if ((r = work_watch_start(&d.watch, d.q, &d.loop, on_work, &d))) {
		log_event(LOG_ERROR, "setup_failed", "errno=%d error=\"work watch: %s\"", -r,
			  strerror(-r));
		code = exit_code_of(r);
		goto out_http;
	}
	struct consumer_config cc = {.handler = d.c.handler, .task_timeout_ms = d.c.task_timeout_ms,
				     .batch = d.c.batch, .results_fd = d.results_fd,
				     .tasks_file = d.c.tasks,
				     .journal_fd = d.journal ? journal_finish_fd(d.journal)
							     : bridge_finish_fd(d.bridge)};
	struct supervisor_config sc = {.workers = d.c.workers, .backoff_ms = d.c.restart_backoff_ms,
				       .backoff_max_ms = d.c.restart_backoff_max_ms};
	if ((r = supervisor_start(&d.sup, d.q, &sc, &cc, on_final, &d))) {
		log_event(LOG_ERROR, "setup_failed", "errno=%d error=\"supervisor: %s\"", -r,
			  strerror(-r));
		code = exit_code_of(r);
		goto out_watch;
	}
	if (d.c.tasks || d.c.demo_rate > 0) {
		struct producer_config pc = {.shm_name = d.c.shm_name, .tasks_path = d.c.tasks,
					     .demo_rate = d.c.demo_rate,
					     .max_payload = d.c.max_payload};
		if ((r = producer_start(&d.prod, &pc, err, sizeof err))) {
			log_event(LOG_ERROR, "producer_failed", "errno=%d error=\"%s\"", -r, err);
			code = r == -EAGAIN || r == -ENOMEM ? exit_code_of(r)
			       : d.c.tasks		    ? EXIT_USAGE
							    : EXIT_QUEUE;
			begin_stop(&d, "producer failed");
		}
	}
	log_event(LOG_INFO, "started", "version=%s workers=%d handler=%s shm=%s", FORQ_VERSION,
		  d.c.workers, d.c.handler, d.c.shm_name);
	notify_send("READY=1");

	if (code == 1)
		code = 0;
	if (run(&d))
		code = code ? code : 1;
	if (d.results_gone)
		code = EXIT_RESULTS;

	producer_stop(d.prod);
	supervisor_reap(d.sup);
	supervisor_free(d.sup);
out_watch:
	work_watch_stop(d.watch);
out_http:
	if (d.http)
		http_stop(d.http); /* joins the HTTP thread: its hooks are done */
	if (d.hq)
		forq_close(d.hq);
	if (d.tcp) {
		tcp_stop(d.tcp);
		d.tcp = NULL;
	}
out_queue:
	bridge_stop(d.bridge); /* consumers and remote workers are done: their ends are in */
	d.bridge = NULL;
	close_queue(&d);
out_results:
	if (d.have_sink) {
		results_sink_flush(&d.sink);
		results_sink_free(&d.sink);
	}
	if (d.results_fd >= 0)
		close(d.results_fd);
out_loop:
	upstream_close(d.up, 2000); /* the last acks and naks go out */
	loop_release(&d.loop);
out:
	if (d.wake[0] >= 0) {
		close(d.wake[0]);
		close(d.wake[1]);
	}
	if (d.sfd >= 0)
		close(d.sfd);
	config_free(&d.c);
	log_event(code ? LOG_ERROR : LOG_INFO, "exited", "code=%d", code);
	return code;
}
