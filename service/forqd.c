/* forqd.c — the forq service: wires the queue, the consumers, the producer
 * thread, the HTTP thread and the TCP server together, and owns shutdown.
 * The only place that exits. Exit codes: 0 ok, 2 bad flags, 3 queue
 * (create, recover, ownership), 4 results file, 5 listen (HTTP or TCP),
 * 1 anything else.
 *
 * Each queue it serves (one, "default", from the flags; or the config
 * file's [queue NAME] sections) is a struct served: its own shared-memory
 * ring, journal, consumers, producer and work watch. The results output,
 * the event loop, the HTTP thread and the TCP server are shared.
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
#include <sys/stat.h>
#include <unistd.h>

#include "forq_admin.h"
#include "clock.h"
#include "config.h"
#include "consumer_exec.h"
#include "forq.h"
#include "forqd.h"
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

static void flush_results(void *ctx);

/* A task's result line, buffered in the sink: written by the next flush. A
 * remote worker's answers are flushed once per batch (tcp/server.h). */
static void on_answer(void *ctx, const struct forq_task_info *rec, const void *payload, int status,
		      const char *text, size_t text_len)
{
	struct served *s = ctx;
	struct forqd *d = s->d;
	if (d->have_sink) {
		struct result_rec r = {
			.id = rec->id, .task = payload, .task_len = rec->len, .status = status,
			.text = text, .text_len = text_len, .attempts = rec->attempts,
			.prio = rec->prio, .source_file = s->c->tasks, .line = rec->line,
			.queue = s->c->name};
		result_format(results_sink_buf(&d->sink), &r);
	}
	/* The journal forgets it, and the bridge ends its stream message, once
	 * its line is written (flush_results); an unfinished task stays. */
	if (status != FORQ_RESULT_UNFINISHED && (s->journal || s->bridge)) {
		if (s->n_answered == ANSWERED_MAX)
			flush_results(s);
		s->answered[s->n_answered++] = rec->id;
	}
}

/* One write of every queue's lines, then each journal forgets (each bridge
 * ends) its tasks whose lines are written. */
static void flush_all(struct forqd *d)
{
	if (d->have_sink && results_sink_flush(&d->sink) == -EPIPE)
		d->results_gone = 1;
	EACH(d, s) {
		journal_finished(s->journal, s->answered, s->n_answered);
		bridge_finished(s->bridge, s->answered, s->n_answered);
		s->n_answered = 0;
	}
}

static void flush_results(void *ctx)
{
	struct served *s = ctx;
	flush_all(s->d);
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

/* ---- setup ---- */

static int open_queue(struct served *s)
{
	int r = queue_open(&s->q, s->c, on_final, s);
	s->created = r == 1;
	if (r < 0 && s->c->config_line)
		log_event(LOG_ERROR, "queue_config_refused",
			  "queue=%s at=\"%s:%d\" hint=\"see the line above: its sizes or its object\"",
			  s->c->name, s->c->config, s->c->config_line);
	return r < 0 ? -1 : 0;
}

/* journal_config.on_durable, on a journal's writer thread: TCP PUTs
 * waiting for the disk are answered by the loop. One byte in the pipe at a
 * time. */
static void on_durable(void *ctx)
{
	struct forqd *d = ctx;
	char b = 'j';
	if (!atomic_exchange(&d->durable_woken, 1) && write(d->wake[1], &b, 1) < 0)
		atomic_store(&d->durable_woken, 0); /* full: bytes are pending anyway */
}

/* --journal: a new queue gets what the journal holds; a recovered one is
 * journaled from where it stands. */
static int open_journal(struct served *s)
{
	struct forqd_config *c = s->c;
	if (!c->journal) {
		forq_admin_journal_end(s->q); /* a queue a journaled forqd kept */
		return 0;
	}
	char err[512], q[600];
	if (c->config)
		mkdir(s->d->c.journal, 0700); /* DIR of DIR/NAME; journal_open makes NAME */
	struct journal_config jc = {.dir = c->journal, .fsync_ms = c->fsync_ms,
				    .segment_bytes = (uint64_t)c->journal_segment_mib << 20,
				    .queue_name = c->shm_name, .max_payload = c->max_payload,
				    .on_durable = on_durable, .on_durable_ctx = s->d};
	int r = journal_open(&s->journal, s->q, &jc, s->created, err, sizeof err);
	if (r)
		log_event(LOG_ERROR, "journal_refused", "dir=%s error=\"%s\"", c->journal,
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
	EACH(d, s)
		s->idle = 0; /* until its next throughput window says otherwise */
	housekeep_in(d, clock_mono_ns(), 0);
}

static void begin_drain(struct forqd *d, const char *why)
{
	if (d->phase != RUNNING)
		return;
	d->phase = DRAINING;
	d->drain_deadline = clock_mono_ns() + (uint64_t)d->c.drain_timeout_s * 1000000000u;
	EACH(d, s)
		forq_admin_set_flags(s->q, FORQ_F_DRAINING, FORQ_F_ACCEPTING);
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
	EACH(d, s)
		forq_admin_set_flags(s->q, FORQ_F_STOP, 0);
	log_event(LOG_INFO, "stopping", "reason=\"%s\"", why);
}

/* Nothing queued, running or waiting for a retry (a delayed task may be due
 * in days: a drain does not wait for it), seen on checks at least
 * 50 ms apart: a task moving between two places (in flight -> retry table)
 * can slip past one read of the figures, never past two. Checked at most
 * every 10 ms: a stats read walks every in-flight entry. */
static int queue_settled(struct served *s, uint64_t now)
{
	if (now - s->idle_checked_ns < 10000000u)
		return s->idle_since_ns && now - s->idle_since_ns >= 50000000u;
	s->idle_checked_ns = now;
	struct forq_stats st;
	forq_stats_read(s->q, &st);
	uint64_t queued = st.pending[0] + st.pending[1] + st.pending[2] + st.retry_waiting;
	if (s->d->phase == DRAINING && forq_admin_paused(s->q))
		queued = 0; /* paused: they wait for a resume, not for this drain */
	if (queued + st.in_progress) {
		s->idle_since_ns = 0;
		return 0;
	}
	if (!s->idle_since_ns)
		s->idle_since_ns = now;
	return now - s->idle_since_ns >= 50000000u;
}

/* Every queue settled (each looked at, none skipped). */
static int all_settled(struct forqd *d, uint64_t now)
{
	int settled = 1;
	EACH(d, s)
		settled &= queue_settled(s, now);
	return settled;
}

/* Every tasks file read to its end. */
static int producers_finished(struct forqd *d)
{
	EACH(d, s)
		if (s->prod && !producer_finished(s->prod))
			return 0;
	return 1;
}

/* The throughput figure, once a window; then whether the queue is idle: in
 * the last window nothing finished, and now nothing is queued, running or
 * waiting for a retry, and nothing but a push can change that. */
static void update_throughput(struct served *s, uint64_t now)
{
	if (now - s->tp_last_ns < THROUGHPUT_NS)
		return;
	struct forq_stats st;
	forq_stats_read(s->q, &st);
	uint64_t fin = st.done + st.failed + st.dead, milli = 0;
	if (s->tp_last_ns) {
		double secs = (double)(now - s->tp_last_ns) / 1e9;
		milli = (uint64_t)((double)(fin - s->tp_last_finished) / secs * 1000.0);
		atomic_store(&s->throughput_milli, milli);
	}
	s->tp_last_ns = now;
	s->tp_last_finished = fin;
	s->idle = s->d->phase == RUNNING && !s->c->exit_when_done && milli == 0 &&
		  (!s->prod || producer_finished(s->prod)) &&
		  st.pending[0] + st.pending[1] + st.pending[2] + st.in_progress + st.retry_waiting +
				  st.scheduled ==
			  0; /* a delayed task keeps the 100 ms look at the waiting table */
}

/* The results output gone for good (a closed pipe: forqd's own write, or a
 * consumer's) ends the service with its exit code: there is nowhere left to
 * say what became of a task. */
static void check_results_gone(struct forqd *d)
{
	EACH(d, s)
		if (s->sup && supervisor_results_gone(s->sup))
			d->results_gone = 1;
	if (d->results_gone && d->phase != STOPPING)
		begin_stop(d, "results output gone");
}

/* A cancel of a running task: a remote worker's lease is revoked; a local
 * consumer running it is killed (its handler's process group with it) and
 * the task marked, so that its repair reports it cancelled. 0 or -EBUSY. */
static int cancel_running(void *ctx, uint64_t id)
{
	struct served *s = ctx;
	if (tcp_cancel(s->d->tcp, s->c->name, id) == 0)
		return 0;
	int32_t pid = forq_admin_holder_pid(s->q, id);
	if (pid <= 0 || supervisor_kill_holder(s->d->sv[0].sup, pid))
		return -EBUSY;
	if (forq_admin_cancel_held(s->q, pid, id))
		return -ENOENT; /* it had finished it: its result is written */
	log_event(LOG_INFO, "task_cancel_running", "queue=%s id=%llu worker_pid=%d", s->c->name,
		  (unsigned long long)id, (int)pid);
	supervisor_reap(s->d->sv[0].sup);
	return 0;
}

static void on_housekeep(void *ctx, uint64_t now)
{
	struct forqd *d = ctx;
	int reap = d->idle || now - d->last_reap_ns >= REAP_EVERY_NS;
	d->idle = 1;
	EACH(d, s) {
		queuectl_look(&s->ctl, s->c->name, s->q, on_final, s, cancel_running, s);
		forq_admin_retry_due(s->q, now);
		if (reap) {
			/* libforq clients are not our children: look for their
			 * death (a dead producer must not stall a lane long). */
			forq_admin_reap_clients(s->q, on_final, s);
			/* A sparse queue gives back the ring pages consumers are
			 * done with even when nothing is pushed. */
			forq_admin_trim(s->q);
		}
		update_throughput(s, now);
		d->idle &= s->idle;
		stall_watch_look(&s->stall, s->q, s->c->workers, s->c->stall_timeout_s, now);
	}
	if (reap)
		d->last_reap_ns = now;
	flush_all(d);
	check_results_gone(d);

	if (d->phase == RUNNING && d->c.exit_when_done && producers_finished(d) &&
	    all_settled(d, now))
		begin_drain(d, "all tasks done");
	if (d->phase == DRAINING) {
		if (all_settled(d, now))
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
	int ms = INT32_MAX;
	EACH(d, s)
		if (s->sup)
			ms = supervisor_tick(s->sup, ms);
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
			supervisor_reap(d->sv[0].sup);
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
			struct pub_answer a[64];
			size_t k;
			if (buf[i] == 'p')
				while ((k = pub_relay_take(&d->relay, a, 64)) > 0)
					for (size_t j = 0; j < k && d->tcp; j++)
						tcp_published(d->tcp, a[j].ref, a[j].seq, a[j].dup);
			else if (buf[i] == 'j') {
				atomic_store(&d->durable_woken, 0);
				if (d->tcp)
					tcp_durable(d->tcp);
				http_durable(d->http);
			} else if (buf[i] == 'n')
				begin_stop(d, "POST /shutdown?mode=now");
			else
				begin_drain(d, "POST /shutdown");
		}
}

/* A queue's work word moved: tasks were pushed (by anyone). */
static void on_work(void *ctx)
{
	struct served *s = ctx;
	struct forqd *d = s->d;
	if (d->tcp)
		tcp_work_arrived(d->tcp);
	if (d->idle)
		leave_idle(d);
}

static int waits_for_work(struct served *s)
{
	return (s->d->tcp && tcp_parked(s->d->tcp)) || s->d->idle;
}

/* Between two rounds: arms each queue's work watch while parked GETs or an
 * idle forqd wait for tasks, after one look of its own (workwatch.h). */
static void watch_work(struct forqd *d)
{
	EACH(d, s) {
		if (!work_watch_begin(s->watch, waits_for_work(s)))
			continue;
		if (d->tcp)
			tcp_work_arrived(d->tcp);
		if (d->idle) {
			struct forq_stats st;
			forq_stats_read(s->q, &st);
			if (st.pending[0] + st.pending[1] + st.pending[2] + st.in_progress +
			    st.retry_waiting + st.scheduled)
				leave_idle(d);
		}
		work_watch_arm(s->watch, waits_for_work(s));
	}
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
	supervisor_wait_all(d->sv[0].sup, STOP_GRACE_MS);
	return 0;
}

/* The TCP server serves every queue, the default one first (requests that
 * name no queue get it). */
static int start_tcp(struct forqd *d)
{
	if (strcmp(d->c.tcp, "off") == 0)
		return 0;
	char err[512];
	struct tcp_config tc = {.listen = d->c.tcp,
				.lease_timeout_ms = d->c.lease_timeout_s * 1000,
				.idle_timeout_ms = d->c.tcp_idle_timeout_s * 1000,
				.max_conns = d->c.tcp_max_conns,
				.admin_token = d->c.admin_token, .worker_token = d->c.worker_token,
				.insecure = d->c.insecure};
	struct tcp_queue *qs = calloc(d->n_sv, sizeof *qs);
	if (!qs) {
		log_event(LOG_ERROR, "tcp_failed", "error=\"out of memory\"");
		return -1;
	}
	size_t n = 0;
	for (size_t i = 0; i <= d->n_sv; i++) {
		struct served *s = i ? &d->sv[i - 1] : d->main;
		if (i && s == d->main)
			continue;
		qs[n++] = (struct tcp_queue){
			.name = s->c->name, .q = s->q, .max_payload = s->c->max_payload,
			.batch_max = s->c->batch,
			.publish = s->up ? upstream_tcp_publish : NULL, .publish_ctx = s->up,
			.res = {.final = on_final, .add = on_answer, .flush = flush_results,
				.cancel_running = cancel_running, .ctx = s}};
	}
	int r = tcp_start(&d->tcp, &tc, qs, n, &d->loop, err, sizeof err);
	free(qs);
	if (r) {
		log_event(LOG_ERROR, "tcp_failed", "error=\"%s\"", err);
		return -1;
	}
	log_event(LOG_INFO, "tcp_listening", "addr=%s port=%u queues=%zu", d->c.tcp,
		  tcp_port(d->tcp), n);
	return 0;
}

/* A queue's last step: kept for the next forqd, or drained and removed. */
static void close_queue(struct served *s)
{
	if (!s->q)
		return;
	/* Everything pushed goes into the journal first; a queue kept in
	 * shared memory stays journaled for the next forqd. */
	journal_close(s->journal, !s->c->keep_shm);
	s->journal = NULL;
	if (s->c->keep_shm) {
		struct forq_stats st;
		forq_stats_read(s->q, &st);
		forq_admin_release(s->q);
		log_event(LOG_INFO, "queue_kept", "name=%s pending=%llu", s->c->shm_name,
			  (unsigned long long)(st.pending[0] + st.pending[1] + st.pending[2] +
					       st.retry_waiting + st.scheduled));
	} else {
		int left = forq_admin_drain_each(s->q, on_final, s);
		if (left)
			log_event(LOG_WARN, "tasks_unfinished", "count=%d queue=%s reason=\"%s\"",
				  left, s->c->name,
				  s->d->have_sink ? "reported as status unfinished in the results"
						  : "dropped unrecorded: --results off (--keep-shm "
						    "keeps them queued)");
		forq_unlink(s->c->shm_name);
	}
	forq_close(s->q);
	s->q = NULL;
}

/* A start that failed for want of processes, threads or memory
 * (RLIMIT_NPROC) is the machine's limit, not a bad flag: its own code. */
static int exit_code_of(int r)
{
	return r == -EAGAIN || r == -ENOMEM ? EXIT_RESOURCES : 1;
}

/* Each queue's consumers, work watch and producer; supervisors chained so
 * that the first one's reap sees every consumer. */
static int start_queue(struct forqd *d, struct served *s, int *code)
{
	char err[512];
	int r;
	if ((r = work_watch_start(&s->watch, s->q, &d->loop, on_work, s))) {
		log_event(LOG_ERROR, "setup_failed", "errno=%d error=\"work watch: %s\"", -r,
			  strerror(-r));
		*code = exit_code_of(r);
		return -1;
	}
	struct consumer_config cc = {.handler = s->c->handler,
				     .task_timeout_ms = s->c->task_timeout_ms,
				     .batch = s->c->batch, .results_fd = d->results_fd,
				     .tasks_file = s->c->tasks, .queue_name = s->c->name,
				     .journal_fd = s->journal ? journal_finish_fd(s->journal)
							      : bridge_finish_fd(s->bridge)};
	struct supervisor_config sc = {.workers = s->c->workers,
				       .backoff_ms = s->c->restart_backoff_ms,
				       .backoff_max_ms = s->c->restart_backoff_max_ms};
	if ((r = supervisor_start(&s->sup, s->q, &sc, &cc, on_final, s))) {
		log_event(LOG_ERROR, "setup_failed", "errno=%d error=\"supervisor: %s\"", -r,
			  strerror(-r));
		*code = exit_code_of(r);
		return -1;
	}
	if (s > d->sv)
		supervisor_chain(s[-1].sup, s->sup);
	if (s->c->tasks || s->c->demo_rate > 0) {
		struct producer_config pc = {.shm_name = s->c->shm_name, .tasks_path = s->c->tasks,
					     .demo_rate = s->c->demo_rate,
					     .max_payload = s->c->max_payload};
		if ((r = producer_start(&s->prod, &pc, err, sizeof err))) {
			log_event(LOG_ERROR, "producer_failed", "queue=%s errno=%d error=\"%s\"",
				  s->c->name, -r, err);
			*code = r == -EAGAIN || r == -ENOMEM ? exit_code_of(r)
				: s->c->tasks		     ? EXIT_USAGE
							     : EXIT_QUEUE;
			begin_stop(d, "producer failed");
		}
	}
	return 0;
}

/* Rejects a bad handler now, not in every consumer. */
static int check_handlers(const struct forqd_config *c)
{
	char err[512];
	for (size_t i = 0; i < c->n_queues; i++) {
		const struct forqd_config *q = &c->queues[i];
		struct handler *h;
		struct handler_options ho = {0};
		if (handler_open(&h, q->handler, &ho, err, sizeof err)) {
			if (q->handler_line)
				fprintf(stderr, "forqd: %s:%d: queue \"%s\": handler: %s\n", c->config,
					q->handler_line, q->name, err);
			else
				fprintf(stderr, "forqd: --handler: %s\n", err);
			return -1;
		}
		handler_close(h);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct forqd d = {.sfd = -1, .wake = {-1, -1}, .results_fd = -1};
	char err[512];
	int code = 1, r;

	if (argc > 1 && !strcmp(argv[1], CONSUMER_PROCESS_FLAG))
		return consumer_process_main(argc, argv);
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
	if (check_handlers(&d.c)) {
		config_free(&d.c);
		return EXIT_USAGE;
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
	pub_relay_init(&d.relay, d.wake[1], 'p');
	raise_fd_limit();

	/* Each step below is undone in the reverse order, from its label down:
	 * nothing is released while something started after it may use it. */
	if (open_results(&d)) {
		code = EXIT_RESULTS;
		goto out_loop;
	}
	if (!(d.sv = calloc(d.c.n_queues, sizeof *d.sv))) {
		log_event(LOG_ERROR, "setup_failed", "error=\"out of memory\"");
		goto out_results;
	}
	d.n_sv = d.c.n_queues;
	d.main = d.sv;
	for (size_t i = 0; i < d.n_sv; i++) {
		struct served *s = &d.sv[i];
		s->d = &d;
		s->c = &d.c.queues[i];
		if (!strcmp(s->c->name, FORQ_QUEUE_DEFAULT))
			d.main = s;
		if (upstream_setup(&s->up, &d.c, s->c, &d.relay) || open_queue(s) || open_journal(s)) {
			code = EXIT_QUEUE;
			goto out_queue;
		}
		/* FORQ_F_UPSTREAM: a killed forqd's bridge left it; its own sets it. */
		forq_admin_set_flags(s->q, FORQ_F_ACCEPTING,
				     FORQ_F_DRAINING | FORQ_F_STOP | FORQ_F_UPSTREAM);
		if ((r = bridge_setup(&s->bridge, s->up, s->c))) {
			code = exit_code_of(r);
			goto out_queue;
		}
	}
	/* The bridges, then TCP: the HTTP thread reads each queue's bridge and
	 * d.tcp from its first request on. */
	if (start_tcp(&d)) {
		code = EXIT_LISTEN;
		goto out_queue;
	}
	if (forqd_start_http(&d)) {
		code = EXIT_LISTEN;
		goto out_http;
	}
	for (size_t i = 0; i < d.n_sv; i++)
		if (start_queue(&d, &d.sv[i], &code)) {
			/* The queues started before this one stop their consumers. */
			EACH(&d, s)
				forq_admin_set_flags(s->q, FORQ_F_STOP, 0);
			if (d.sv[0].sup)
				supervisor_wait_all(d.sv[0].sup, STOP_GRACE_MS);
			goto out_watch;
		}
	for (size_t i = 0; i < d.n_sv; i++)
		log_event(LOG_INFO, "started", "version=%s queue=%s workers=%d handler=%s shm=%s",
			  FORQ_VERSION, d.sv[i].c->name, d.sv[i].c->workers, d.sv[i].c->handler,
			  d.sv[i].c->shm_name);
	notify_send("READY=1");

	if (code == 1)
		code = 0;
	if (run(&d))
		code = code ? code : 1;
	if (d.results_gone)
		code = EXIT_RESULTS;

out_watch:
	/* Reaped first: the chain's head sees every queue's consumers. */
	if (d.sv && d.sv[0].sup)
		supervisor_reap(d.sv[0].sup);
	EACH(&d, s) {
		producer_stop(s->prod);
		supervisor_free(s->sup);
		work_watch_stop(s->watch);
	}
out_http:
	if (d.http)
		http_stop(d.http); /* joins the HTTP thread: its hooks are done */
	EACH(&d, s)
		if (s->hq)
			forq_close(s->hq);
	if (d.tcp) {
		tcp_stop(d.tcp);
		d.tcp = NULL;
	}
out_queue:
	EACH(&d, s) {
		bridge_stop(s->bridge); /* consumers and remote workers are done: their ends are in */
		s->bridge = NULL;
		close_queue(s);
		upstream_close(s->up, 2000); /* the last acks and naks go out */
		s->up = NULL;
	}
	upstream_shutdown();
	pub_relay_free(&d.relay);
	free(d.sv);
out_results:
	if (d.have_sink) {
		results_sink_flush(&d.sink);
		results_sink_free(&d.sink);
	}
	if (d.results_fd >= 0)
		close(d.results_fd);
out_loop:
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
