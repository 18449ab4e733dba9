/* proc.c — the proc: handler: one persistent child per caller, fed TASK
 * frames and read for replies (see proc.h; handlers/PROC.md for the child's
 * side). One thread; every fd non-blocking; one poll loop per batch. */
#include "proc.h"
#include "frame.h"
#include "reason.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h" /* the levels of log_hook; nothing is printed here */

#define READ_CHUNK 65536          /* bytes per read of the child's stdout or stderr */
#define STDERR_LINE_MAX 1024      /* bytes of a stderr line kept; the rest is cut */
#define STDERR_SHOWN_MAX 640      /* bytes of a quoted line in the log: one log line */
#define STDERR_LINES_PER_SEC 100  /* more in a second are counted, not shown */
#define HEALTHY_RUN_MS 10000      /* a child that lived this long died alone */
#define STOP_WAIT_MS 2000         /* at close: how long it may take to exit */
#define EXIT_WAIT_MS 100          /* its stdout ended: how long it may take to exit */
#define STDIN_GONE_MS 1000        /* its stdin closed: how long its replies may take */
#define NO_PIDFD_POLL_MS 50       /* without a pidfd: how often its exit is checked */
#define BACKOFF_DEFAULT_MS 100
#define BACKOFF_MAX_DEFAULT_MS 30000

/* Variables removed from the child's environment (forq's secrets), and those
 * it gets from us instead of from forqd's. */
static const char *const env_drop[] = {"FORQ_ADMIN_TOKEN", "FORQ_TOKEN", "FORQ_WORKER_TOKEN",
				       "NOTIFY_SOCKET", "FORQ_PROC", "FORQ_QUEUE", "FORQ_WORKER"};

/* How a child ended. */
enum end_kind {
	END_NONE = 0,
	END_EXITED,   /* it exited (or closed its stdout) */
	END_FRAMING,  /* it wrote what the framing does not allow */
	END_TIMEOUT,  /* no reply within timeout_ms */
	END_STDIN,    /* it stopped reading its stdin with tasks unread */
	END_IO,       /* our side failed (poll, out of memory) */
};

struct proc {
	struct proc_params p; /* cmd and queue are ours */

	/* The child; pid 0 and fds -1 when there is none. */
	pid_t pid;
	int in, out, err, pidfd;
	long long started_ms;
	long long next_start_ms; /* no restart before this */
	unsigned deaths;         /* deaths in a row, each within HEALTHY_RUN_MS of its start */
	int in_gone;             /* a write to its stdin failed */
	long long in_gone_ms;    /* when */

	struct frame_reader reader; /* of its stdout */
	size_t ridx;             /* the task of the reply being read */
	char why[160];           /* what went wrong, for the reason */

	/* Its stderr: the line being read, the rate limit, the last bytes. */
	char line[STDERR_LINE_MAX];
	size_t llen;
	int lcut;
	long long win_ms;
	unsigned win_lines, dropped;
	char tail[HANDLER_STDERR_MAX];
	size_t tailn;

	/* The batch in hand. */
	const struct handler_task *tasks;
	size_t n;
	const struct handler_batch_ops *ops;
	unsigned char *answered; /* n flags */
	size_t answered_cap;
	size_t oldest;           /* first unanswered task */
	size_t left;             /* unanswered tasks; 0: no batch */
	size_t ended;            /* tasks done was called for */
	uint64_t since_ns;       /* the last reply, or the batch's start */
	struct buf wbuf;         /* its TASK frames; woff of them written */
	size_t woff;

	char chunk[READ_CHUNK];
};

static void say(struct proc *p, int level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void say(struct proc *p, int level, const char *event, const char *fmt, ...)
{
	char kv[STDERR_SHOWN_MAX + 128];
	va_list ap;
	if (!p->p.log_hook)
		return;
	va_start(ap, fmt);
	vsnprintf(kv, sizeof kv, fmt, ap);
	va_end(ap);
	p->p.log_hook(p->p.log_ctx, level, event, kv);
}

int proc_open(struct proc **pp, const struct proc_params *params)
{
	struct proc *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->p = *params;
	p->p.cmd = strdup(params->cmd);
	p->p.queue = params->queue ? strdup(params->queue) : NULL;
	if (!p->p.cmd || (params->queue && !p->p.queue)) {
		free((char *)p->p.cmd);
		free((char *)p->p.queue);
		free(p);
		return -ENOMEM;
	}
	if (!p->p.backoff_ms && !p->p.backoff_max_ms) {
		p->p.backoff_ms = BACKOFF_DEFAULT_MS;
		p->p.backoff_max_ms = BACKOFF_MAX_DEFAULT_MS;
	}
	if (!p->p.max_output)
		p->p.max_output = HANDLER_MAX_OUTPUT_DEFAULT;
	p->in = p->out = p->err = p->pidfd = -1;
	frame_reader_init(&p->reader, p->p.max_output);
	*pp = p;
	return 0;
}

/* ---- the child's stderr ---- */

/* Ends the rate limit's second when it is over: says what it dropped. */
static void stderr_window(struct proc *p, long long now)
{
	if (now - p->win_ms < 1000)
		return;
	if (p->dropped)
		say(p, LOG_WARN, "proc_stderr_dropped", "child=%d count=%u", (int)p->pid,
		    p->dropped);
	p->win_ms = now;
	p->win_lines = p->dropped = 0;
}

static void stderr_line_end(struct proc *p)
{
	char shown[STDERR_SHOWN_MAX];
	size_t n = p->llen;
	if (n && p->line[n - 1] == '\r')
		n--;
	stderr_window(p, spawn_now_ms());
	if (p->win_lines < STDERR_LINES_PER_SEC) {
		p->win_lines++;
		handler__quote(shown, sizeof shown, p->line, n);
		say(p, LOG_WARN, "proc_stderr", "child=%d line=\"%s\"%s", (int)p->pid, shown,
		    p->lcut ? " cut=1" : "");
	} else {
		p->dropped++;
	}
	p->llen = 0;
	p->lcut = 0;
}

static void stderr_feed(struct proc *p, const char *d, size_t n)
{
	handler__keep_tail(p->tail, sizeof p->tail, &p->tailn, d, n);
	while (n) {
		const char *nl = memchr(d, '\n', n);
		size_t take = nl ? (size_t)(nl - d) : n;
		size_t room = sizeof p->line - p->llen;
		size_t k = take < room ? take : room;
		memcpy(p->line + p->llen, d, k);
		p->llen += k;
		if (k < take)
			p->lcut = 1;
		if (!nl)
			break;
		stderr_line_end(p);
		d += take + 1;
		n -= take + 1;
	}
}

/* Reads what the child's stderr holds now; closes it at EOF. */
static void stderr_drain(struct proc *p)
{
	for (int i = 0; i < 16 && p->err >= 0; i++) {
		ssize_t r = read(p->err, p->chunk, sizeof p->chunk);
		if (r > 0) {
			stderr_feed(p, p->chunk, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 || errno != EAGAIN)
			spawn_close(&p->err);
		break;
	}
}

/* ---- start and end ---- */

/* forqd's environment less env_drop, plus FORQ_PROC, FORQ_QUEUE and
 * FORQ_WORKER, which are own[0..2]. NULL: out of memory. */
static char **child_env(const struct proc *p, char *own[3])
{
	char worker[32];
	own[0] = strdup("FORQ_PROC=" FRAME_VERSION);
	own[1] = own[2] = NULL;
	if (p->p.queue) {
		size_t ql = strlen(p->p.queue) + sizeof "FORQ_QUEUE=";
		if ((own[1] = malloc(ql)))
			snprintf(own[1], ql, "FORQ_QUEUE=%s", p->p.queue);
		snprintf(worker, sizeof worker, "FORQ_WORKER=%d", p->p.worker);
		own[2] = strdup(worker);
	}
	char **env = NULL;
	if (own[0] && (!p->p.queue || (own[1] && own[2])))
		env = spawn_env(env_drop, sizeof env_drop / sizeof env_drop[0], own, 3);
	if (!env)
		for (int i = 0; i < 3; i++)
			free(own[i]);
	return env;
}

/* The next start after a death now, as the supervisor restarts consumers:
 * at once after a lone death, then backoff_ms doubled per death in a row
 * (2x after the second) up to backoff_max_ms. Returns the delay. */
static long long schedule_restart(struct proc *p, long long now)
{
	long long delay = p->p.backoff_ms, cap = p->p.backoff_max_ms;
	p->deaths = now - p->started_ms < HEALTHY_RUN_MS ? p->deaths + 1 : 1;
	for (unsigned k = 1; k < p->deaths && delay < cap; k++)
		delay *= 2;
	if (delay > cap)
		delay = cap;
	if (p->deaths == 1)
		delay = 0;
	p->next_start_ms = now + delay;
	return delay;
}

static void tell_group(struct proc *p, int pgid)
{
	if (p->p.group_hook)
		p->p.group_hook(p->p.group_ctx, pgid);
}

/* Writes the go byte; SIGPIPE (a child gone already) is consumed. */
static void write_go(int fd)
{
	sigset_t pipe_set, saved;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &saved);
	int pending = spawn_sigpipe_pending();
	if (write(fd, SPAWN_GO_BYTE, 1) != 1 && errno == EPIPE && !pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static int start(struct proc *p)
{
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	char *own[3] = {NULL, NULL, NULL};
	char **env = NULL;
	const char *what = "pipe";
	int e;

	/* Without a log hook the child writes to our stderr itself. */
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) ||
	    (p->p.log_hook && pipe2(perr, O_CLOEXEC)))
		goto fail;
	what = "out of memory";
	errno = ENOMEM;
	if (!(env = child_env(p, own)))
		goto fail;
	what = "fork";
	pid_t pid = spawn_shell(p->p.cmd, pin[0], pout[1], p->p.log_hook ? perr[1] : STDERR_FILENO,
				env, p->p.group_hook, p->p.group_ctx);
	for (int i = 0; i < 3; i++)
		free(own[i]);
	free(env);
	if (pid < 0) {
		errno = -pid;
		goto fail;
	}
	spawn_close(&pin[0]);
	spawn_close(&pout[1]);
	spawn_close(&perr[1]);
	write_go(pin[1]);
	p->pid = pid;
	p->in = pin[1];
	p->out = pout[0];
	p->err = perr[0];
	/* F_SETFL on a pipe we own cannot fail; a failure would only make a
	 * read block, and poll says when each is ready. */
	spawn_nonblock(p->in);
	spawn_nonblock(p->out);
	if (p->err >= 0)
		spawn_nonblock(p->err);
	p->pidfd = spawn_pidfd(pid);
	p->started_ms = spawn_now_ms();
	p->in_gone = 0;
	frame_reader_reset(&p->reader);
	p->llen = p->lcut = 0;
	p->win_ms = p->started_ms;
	p->win_lines = p->dropped = 0;
	p->tailn = 0;
	say(p, LOG_DEBUG, "proc_started", "child=%d", (int)pid);
	return 0;
fail:
	e = errno;
	for (int i = 0; i < 2; i++) {
		spawn_close(&pin[i]);
		spawn_close(&pout[i]);
		spawn_close(&perr[i]);
	}
	p->started_ms = spawn_now_ms();
	long long delay = schedule_restart(p, p->started_ms);
	if (p->deaths == 1) /* no child ran: never at once, or this spins */
		p->next_start_ms = p->started_ms + (delay = p->p.backoff_ms);
	say(p, LOG_ERROR, "proc_start_failed", "error=\"%s: %s\" restart_in_ms=%lld", what,
	    strerror(e), delay);
	return -e;
}

/* Whether the child has exited (it stays unreaped). */
static int child_exited(struct proc *p)
{
	if (p->pidfd >= 0) {
		struct pollfd f = {p->pidfd, POLLIN, 0};
		return poll(&f, 1, 0) > 0;
	}
	siginfo_t si;
	memset(&si, 0, sizeof si);
	return waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT | WNOHANG) < 0 ||
	       si.si_pid == p->pid;
}

/* Kills what is left of the group (the child stays unreaped until then, so
 * the group id is still its), takes its last stderr, reaps it. Puts how it
 * ended in status ("exit status 3", "killed by signal 9"). Returns 1 if it
 * was killed because it had not exited within wait_ms. */
static int bury(struct proc *p, long long wait_ms, char *status, size_t cap)
{
	int timed_out = 0, st = 0;
	if (wait_ms > 0)
		spawn_wait_exit(p->pid, spawn_now_ms() + wait_ms, &timed_out);
	spawn_kill_group(p->pid);
	if (wait_ms <= 0)
		spawn_wait_exit(p->pid, 0, &timed_out);
	stderr_drain(p);
	if (p->llen || p->lcut)
		stderr_line_end(p);
	stderr_window(p, LLONG_MAX / 2);
	tell_group(p, 0);
	pid_t w = spawn_reap(p->pid, &st);
	if (w != p->pid)
		snprintf(status, cap, "lost its exit status: %s", strerror(errno));
	else if (WIFSIGNALED(st))
		snprintf(status, cap, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(status, cap, "exit status %d", WEXITSTATUS(st));
	spawn_close(&p->in);
	spawn_close(&p->out);
	spawn_close(&p->err);
	spawn_close(&p->pidfd);
	return timed_out;
}

/* The child is done for (kind): it is killed and reaped, its task in hand
 * (if a batch runs) ends as a crash or, for a timeout, a retry; the rest of
 * the batch is left unanswered; its restart is scheduled. */
static void end_child(struct proc *p, enum end_kind kind)
{
	char status[96], last[HANDLER_STDERR_MAX + 1], reason[HANDLER_STDERR_MAX + 256];
	pid_t pid = p->pid;
	int alive = bury(p, kind == END_EXITED ? EXIT_WAIT_MS : 0, status, sizeof status);
	handler__last_line(last, sizeof last, p->tail, p->tailn);
	p->pid = 0;

	long long now = spawn_now_ms(), delay = 0;
	switch (kind) {
	case END_NONE:
	case END_EXITED:
		if (alive)
			snprintf(reason, sizeof reason, "handler process closed its stdout");
		else
			snprintf(reason, sizeof reason, "handler process died: %s%s%s", status,
				 last[0] ? ": " : "", last);
		break;
	case END_FRAMING:
		snprintf(reason, sizeof reason, "handler process broke the framing: %s", p->why);
		break;
	case END_TIMEOUT:
		snprintf(reason, sizeof reason, "timed out after %d ms", p->p.timeout_ms);
		break;
	case END_STDIN:
		snprintf(reason, sizeof reason, "handler process stopped reading its stdin");
		break;
	case END_IO:
		snprintf(reason, sizeof reason, "%s", p->why);
		break;
	}
	if (kind == END_TIMEOUT)
		p->next_start_ms = now; /* the task's fault, maybe not the child's */
	else
		delay = schedule_restart(p, now);

	char shown[sizeof reason + 64];
	handler__quote(shown, sizeof shown, reason, strlen(reason));
	if (kind == END_TIMEOUT)
		say(p, LOG_WARN, "proc_timeout", "child=%d task=%llu timeout_ms=%d "
		    "tasks_unanswered=%zu action=\"killed its group; restarting it\"", (int)pid,
		    p->left ? (unsigned long long)p->tasks[p->oldest].id : 0ull, p->p.timeout_ms,
		    p->left);
	else
		say(p, p->deaths >= 3 ? LOG_ERROR : LOG_WARN,
		    p->deaths >= 3 ? "proc_crash_loop" : "proc_died",
		    "child=%d status=\"%s\" reason=\"%s\" tasks_unanswered=%zu restart_in_ms=%lld "
		    "deaths_in_a_row=%u", (int)pid, status, shown, p->left, delay, p->deaths);

	if (p->left) {
		size_t i = p->oldest;
		struct handler_reply r = {.status = HANDLER_RETRY, .crashed = kind != END_TIMEOUT &&
									      kind != END_IO,
					  .text = reason, .len = strlen(reason),
					  .run_ns = clock_mono_ns() - p->since_ns};
		p->answered[i] = 1;
		p->left = 0;
		p->ended++;
		p->ops->done(p->ops->ctx, i, &r);
	}
}

/* ---- the child's stdout ---- */

/* frame_reply_ops.header: the reply must be for a task the child holds. */
static int reply_header(void *ctx, enum frame_reply word, uint64_t id)
{
	struct proc *p = ctx;
	(void)word;
	for (size_t i = p->oldest; p->left && i < p->n; i++)
		if (p->tasks[i].id == id && !p->answered[i]) {
			p->ridx = i;
			return 0;
		}
	return -1;
}

/* frame_reply_ops.reply: a whole reply is in, its task ends. */
static void reply_end(void *ctx, enum frame_reply word, uint64_t id, const char *body,
		      size_t len, int nomem)
{
	static const char *const empty[] = {"", "failed", "retry"};
	struct proc *p = ctx;
	size_t i = p->ridx;
	uint64_t now = clock_mono_ns();
	struct handler_reply r = {.status = (enum handler_status)word, .text = body, .len = len,
				  .run_ns = now - p->since_ns};
	(void)id;
	if (!len) {
		r.text = empty[word];
		r.len = strlen(r.text);
	}
	if (nomem) {
		r.status = HANDLER_RETRY;
		r.text = "out of memory";
		r.len = strlen(r.text);
	}
	p->since_ns = now;
	p->answered[i] = 1;
	p->left--;
	p->ended++;
	p->ops->done(p->ops->ctx, i, &r);
	while (p->oldest < p->n && p->answered[p->oldest])
		p->oldest++;
	if (p->left)
		p->ops->begin(p->ops->ctx, p->oldest);
}

/* Reads the child's stdout once (all it holds with `all`). Returns
 * END_NONE, or how the child ended (its stdout closed, a framing error). */
static enum end_kind stdout_read(struct proc *p, int all)
{
	for (;;) {
		ssize_t r = read(p->out, p->chunk, sizeof p->chunk);
		if (r > 0) {
			struct frame_reply_ops ops = {reply_header, reply_end, p};
			if (frame_read(&p->reader, p->chunk, (size_t)r, &ops)) {
				snprintf(p->why, sizeof p->why, "%s", p->reader.why);
				return END_FRAMING;
			}
			if (all)
				continue;
			return END_NONE;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return END_NONE;
		return END_EXITED; /* EOF, or an error that only its end explains */
	}
}

/* ---- between batches ---- */

/* Notices what the idle child did: stderr lines, its death, stray output. */
static void idle_check(struct proc *p)
{
	struct pollfd f[3];
	int n = 0, io = -1, ie = -1, ip = -1;
	if (p->out >= 0)
		f[io = n++] = (struct pollfd){p->out, POLLIN, 0};
	if (p->err >= 0)
		f[ie = n++] = (struct pollfd){p->err, POLLIN, 0};
	if (p->pidfd >= 0)
		f[ip = n++] = (struct pollfd){p->pidfd, POLLIN, 0};
	if (poll(f, (nfds_t)n, 0) <= 0) {
		if (p->pidfd < 0 && child_exited(p))
			end_child(p, END_EXITED);
		else
			stderr_window(p, spawn_now_ms());
		return;
	}
	if (ie >= 0 && f[ie].revents)
		stderr_drain(p);
	enum end_kind end = END_NONE;
	if (io >= 0 && f[io].revents)
		end = stdout_read(p, 1);
	if (!end && ((ip >= 0 && f[ip].revents) || (p->pidfd < 0 && child_exited(p))))
		end = END_EXITED;
	if (end)
		end_child(p, end);
	else
		stderr_window(p, spawn_now_ms());
}

int proc_prepare(struct proc *p)
{
	if (p->pid) {
		idle_check(p);
		if (p->pid)
			return 0;
	}
	long long now = spawn_now_ms();
	if (now < p->next_start_ms)
		return (int)(p->next_start_ms - now);
	if (start(p) == 0)
		return 0;
	now = spawn_now_ms();
	return p->next_start_ms > now ? (int)(p->next_start_ms - now) : 1;
}

/* ---- a batch ---- */

/* Writes what the pipe takes of the batch's frames. */
static void write_frames(struct proc *p)
{
	while (p->woff < p->wbuf.len) {
		ssize_t w = write(p->in, p->wbuf.data + p->woff, p->wbuf.len - p->woff);
		if (w > 0) {
			p->woff += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		p->in_gone = 1; /* EPIPE: it closed its stdin, or it is gone */
		p->in_gone_ms = spawn_now_ms();
		return;
	}
}

/* Runs the batch until every task is answered or the child ends. */
static void batch_loop(struct proc *p)
{
	while (p->left) {
		struct pollfd f[4];
		int n = 0, iw = -1, io = -1, ie = -1, ip = -1;
		enum end_kind end = END_NONE;
		if (p->woff < p->wbuf.len && !p->in_gone)
			f[iw = n++] = (struct pollfd){p->in, POLLOUT, 0};
		f[io = n++] = (struct pollfd){p->out, POLLIN, 0};
		if (p->err >= 0)
			f[ie = n++] = (struct pollfd){p->err, POLLIN, 0};
		if (p->pidfd >= 0)
			f[ip = n++] = (struct pollfd){p->pidfd, POLLIN, 0};

		/* -1: no deadline; else the ms to the nearest one. */
		long long now = spawn_now_ms(), wait = -1;
		if (p->p.timeout_ms) {
			long long due = (long long)(p->since_ns / 1000000u) + p->p.timeout_ms;
			wait = due > now ? due - now : 0;
		}
		if (p->in_gone) {
			long long due = p->in_gone_ms + STDIN_GONE_MS;
			long long left = due > now ? due - now : 0;
			wait = wait < 0 || left < wait ? left : wait;
		}
		if (p->pidfd < 0 && (wait < 0 || wait > NO_PIDFD_POLL_MS))
			wait = NO_PIDFD_POLL_MS;
		int r = poll(f, (nfds_t)n, wait > INT_MAX ? INT_MAX : (int)wait);
		if (r < 0 && errno != EINTR) {
			snprintf(p->why, sizeof p->why, "i/o with the handler process: poll: %s",
				 strerror(errno));
			end_child(p, END_IO);
			return;
		}
		if (r > 0 && iw >= 0 && f[iw].revents)
			write_frames(p);
		if (r > 0 && ie >= 0 && f[ie].revents)
			stderr_drain(p);
		if (r > 0 && f[io].revents)
			end = stdout_read(p, 0);
		if (!end && ((ip >= 0 && r > 0 && f[ip].revents) ||
			     (p->pidfd < 0 && child_exited(p)))) {
			/* Gone: what it wrote before it exited still counts. */
			end = stdout_read(p, 1);
			if (!end && p->left)
				end = END_EXITED;
		}
		if (end) {
			end_child(p, end);
			return;
		}
		if (!p->left)
			return;
		now = spawn_now_ms();
		if (p->p.timeout_ms &&
		    now >= (long long)(p->since_ns / 1000000u) + p->p.timeout_ms) {
			end_child(p, END_TIMEOUT);
			return;
		}
		if (p->in_gone && now >= p->in_gone_ms + STDIN_GONE_MS) {
			end_child(p, END_STDIN);
			return;
		}
	}
}

int proc_run(struct proc *p, const struct handler_task *tasks, size_t n,
	     const struct handler_batch_ops *ops)
{
	if (n == 0)
		return 0;
	if (p->pid)
		idle_check(p); /* it may have died since proc_prepare */
	if (!p->pid)
		return -EAGAIN;
	if (n > p->answered_cap) {
		unsigned char *a = realloc(p->answered, n);
		if (!a)
			return -ENOMEM;
		p->answered = a;
		p->answered_cap = n;
	}
	memset(p->answered, 0, n);
	buf_reset(&p->wbuf);
	p->woff = 0;
	for (size_t i = 0; i < n; i++)
		if (frame_put_task(&p->wbuf, tasks[i].id, tasks[i].attempt, tasks[i].payload,
				   tasks[i].len))
			return -ENOMEM;
	p->tasks = tasks;
	p->n = n;
	p->ops = ops;
	p->oldest = 0;
	p->left = n;
	p->ended = 0;

	/* A child gone makes our writes raise SIGPIPE: held blocked and
	 * consumed, so the caller needs no setup (as exec:). */
	sigset_t pipe_set, saved;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &saved);
	int pending = spawn_sigpipe_pending();

	p->since_ns = clock_mono_ns();
	ops->begin(ops->ctx, 0);
	write_frames(p);
	batch_loop(p);

	if (!pending && spawn_sigpipe_pending()) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	p->tasks = NULL;
	p->n = p->left = 0;
	return (int)p->ended;
}

void proc_close(struct proc *p)
{
	if (!p)
		return;
	if (p->pid) {
		/* EOF on its stdin asks it to exit; its stdout is closed too, so
		 * that a late write ends it rather than blocking it. */
		char status[96];
		pid_t pid = p->pid;
		spawn_close(&p->in);
		spawn_close(&p->out);
		long long due = spawn_now_ms() + STOP_WAIT_MS;
		while (!child_exited(p)) {
			long long left = due - spawn_now_ms();
			if (left <= 0)
				break;
			/* Its stderr (while it has one) and its exit, or a tick. */
			struct pollfd f[2];
			int n = 0, ie = -1;
			if (p->err >= 0)
				f[ie = n++] = (struct pollfd){p->err, POLLIN, 0};
			if (p->pidfd >= 0)
				f[n++] = (struct pollfd){p->pidfd, POLLIN, 0};
			int wait = p->pidfd >= 0 && left < INT_MAX ? (int)left : NO_PIDFD_POLL_MS;
			if (poll(f, (nfds_t)n, wait) > 0 && ie >= 0 && f[ie].revents)
				stderr_drain(p);
		}
		bury(p, due - spawn_now_ms(), status, sizeof status);
		p->pid = 0;
		say(p, LOG_DEBUG, "proc_stopped", "child=%d status=\"%s\"", (int)pid, status);
	}
	frame_reader_free(&p->reader);
	buf_free(&p->wbuf);
	free(p->answered);
	free((char *)p->p.cmd);
	free((char *)p->p.queue);
	free(p);
}
