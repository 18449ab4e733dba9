/* supervisor.c — fork, reap, repair, restart. */
#include "supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "consumer_exec.h"
#include "log.h"
#include "results.h"

#define HEALTHY_RUN_NS (10ull * 1000000000u) /* a run this long resets the backoff */
#define ORPHAN_REAP_MS 1000 /* at exit: the longest wait for killed orphans */

/* What only the supervisor reads of a slot. Its state, restarts and next
 * start live in the queue's worker row alone (forq_admin_worker_set and
 * forq_admin_worker_get), where everyone else reads them too. Its pid is
 * published there as well, but the one forqd acts on is this one: shared
 * memory can be written by any process that opens the queue, and forqd
 * signals and reaps only a process it forked itself. */
struct worker {
	pid_t pid;           /* 0 when not running */
	uint64_t started_ns;
	unsigned fast_deaths; /* deaths in a row, each soon after its start */
	int killed;          /* SIGKILLed by us to stop: its task did not fail */
	int cancelled;       /* SIGKILLed by us: a task it ran was cancelled */
	int gone;            /* its results output is gone: never restarted */
};

struct supervisor {
	struct forq *q;
	struct consumer_config cc;
	forq_final_fn fn;
	void *ctx;
	int n;
	int backoff_ms, backoff_max_ms;
	int stopping;
	int results_gone;
	struct supervisor *next; /* the next queue's (supervisor_chain) */
	struct worker w[];
};

static struct forq_worker_info row(const struct supervisor *s, int i)
{
	struct forq_worker_info r;
	forq_admin_worker_get(s->q, i, &r);
	return r;
}

static void publish(struct supervisor *s, int i, const struct forq_worker_info *r)
{
	forq_admin_worker_set(s->q, i, r->pid, r->state, r->restarts, r->next_start_ns);
}

static int spawn(struct supervisor *s, int i)
{
	sigset_t all, old;
	/* Signals stay blocked across fork and exec so the child can set its
	 * own up before any arrives. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = consumer_spawn(s->q, i, &s->cc);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		int e = (int)-pid;
		log_event(LOG_ERROR, "fork_failed", "worker=%d error=\"%s\"", i, strerror(e));
		struct forq_worker_info r = row(s, i);
		r.state = FORQ_WORKER_BACKOFF;
		r.next_start_ns = clock_mono_ns() + (uint64_t)s->backoff_ms * 1000000u;
		publish(s, i, &r);
		return -e;
	}
	s->w[i].started_ns = clock_mono_ns();
	s->w[i].pid = pid;
	struct forq_worker_info r = row(s, i);
	r.pid = pid;
	r.state = FORQ_WORKER_RUNNING;
	r.next_start_ns = 0;
	publish(s, i, &r);
	log_event(LOG_DEBUG, "worker_started", "worker=%d child=%d", i, (int)pid);
	return 0;
}

int supervisor_start(struct supervisor **sp, struct forq *q, const struct supervisor_config *c,
		     const struct consumer_config *cc, forq_final_fn fn, void *ctx)
{
	int workers = c->workers;
	if (workers < 0 || workers > FORQ_MAX_WORKERS)
		return -EINVAL;
	struct supervisor *s = calloc(1, sizeof *s + (size_t)workers * sizeof s->w[0]);
	if (!s)
		return -ENOMEM;
	s->q = q;
	s->cc = *cc;
	/* A proc: child restarts as its consumer would. */
	s->cc.restart_backoff_ms = c->backoff_ms;
	s->cc.restart_backoff_max_ms = c->backoff_max_ms;
	s->fn = fn;
	s->ctx = ctx;
	s->n = workers;
	s->backoff_ms = c->backoff_ms;
	s->backoff_max_ms = c->backoff_max_ms;
	/* What a dead consumer's handler leaves (its shell, killed by its
	 * parent-death signal) becomes our child, not init's: its zombie keeps
	 * the group id ours until the repair has killed that group, and at
	 * exit we find whatever is left (supervisor_wait_all). */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	for (int i = 0; i < FORQ_MAX_WORKERS; i++)
		forq_admin_worker_set(q, i, 0, FORQ_WORKER_STOPPED, 0, 0);
	for (int i = 0; i < workers; i++)
		spawn(s, i);
	*sp = s;
	return 0;
}

static int worker_of(struct supervisor *s, pid_t pid)
{
	for (int i = 0; i < s->n; i++)
		if (s->w[i].pid == pid)
			return i;
	return -1;
}

static void describe(int status, char *buf, size_t cap)
{
	if (WIFSIGNALED(status))
		snprintf(buf, cap, "consumer killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, cap, "consumer exited with status %d", WEXITSTATUS(status));
}

/* A consumer's exit that is not its task's fault and not worth a restart:
 * its results output is gone for good (EPIPE). */
static int worker_gone(struct supervisor *s, int i, pid_t pid, int status)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != CONSUMER_EXIT_RESULTS)
		return 0;
	s->w[i].gone = 1;
	if (!s->results_gone)
		log_event(LOG_ERROR, "results_output_gone",
			  "worker=%d child=%d action=\"no consumer restarts: the results output "
			  "takes no more writes\"",
			  i, (int)pid);
	s->results_gone = 1;
	return 1;
}

void supervisor_reap(struct supervisor *head)
{
	int status;
	pid_t pid;
	for (;;) {
		/* Look before reaping: an orphan's zombie keeps its pid (and
		 * group id) from being reused until we are done with it. */
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: none at all */
		}
		pid = si.si_pid;
		if (pid <= 0)
			break; /* none left exited */
		struct supervisor *s = head;
		int i = -1;
		while (s && (i = worker_of(s, pid)) < 0)
			s = s->next;
		if (i < 0) {
			/* Not a consumer: something an exec: handler started, whose
			 * consumer died (we are its subreaper). Its group goes too. */
			kill(-pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			continue;
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		struct worker *w = &s->w[i];
		char why[96];
		describe(status, why, sizeof why);
		/* Certain death first (reaped), then repair. */
		int given = s->stopping && w->killed
				    ? forq_admin_repair_stopped(s->q, pid, s->fn, s->ctx)
				    : forq_admin_repair_pid(s->q, pid, why, s->fn, s->ctx);
		/* A consumer killed mid-write may have left a cut line. */
		if (WIFSIGNALED(status) && s->cc.results_fd >= 0)
			results_fd_mend(s->cc.results_fd);
		uint64_t now = clock_mono_ns();
		int clean = WIFEXITED(status) && WEXITSTATUS(status) == CONSUMER_EXIT_OK;
		struct forq_worker_info r = row(s, i); /* published once per way below */
		r.pid = w->pid = 0;
		r.state = FORQ_WORKER_STOPPED;
		w->killed = 0;
		if (s->stopping) {
			publish(s, i, &r);
			log_event(clean ? LOG_DEBUG : LOG_WARN, "worker_stopped",
				  "worker=%d child=%d status=\"%s\" tasks_given_back=%d", i, (int)pid,
				  why, given < 0 ? 0 : given);
			continue;
		}
		if (worker_gone(s, i, pid, status)) {
			publish(s, i, &r);
			continue;
		}
		r.state = FORQ_WORKER_BACKOFF;
		if (w->cancelled) {
			/* Not a death of its own: back at once, no backoff. */
			w->cancelled = 0;
			r.next_start_ns = now;
			publish(s, i, &r);
			log_event(LOG_INFO, "worker_restarting",
				  "worker=%d child=%d reason=\"the task it ran was cancelled\" "
				  "tasks_given_back=%d", i, (int)pid, given < 0 ? 0 : given);
			continue;
		}
		w->fast_deaths = now - w->started_ns < HEALTHY_RUN_NS ? w->fast_deaths + 1 : 1;
		uint64_t delay_ms = (uint64_t)s->backoff_ms, cap = (uint64_t)s->backoff_max_ms;
		for (unsigned k = 1; k < w->fast_deaths && delay_ms < cap; k++)
			delay_ms *= 2;
		if (delay_ms > cap)
			delay_ms = cap;
		if (w->fast_deaths == 1)
			delay_ms = 0; /* a lone death restarts at once */
		r.next_start_ns = now + delay_ms * 1000000ull;
		r.restarts++;
		publish(s, i, &r);
		log_event(w->fast_deaths >= 3 ? LOG_ERROR : LOG_WARN,
			  w->fast_deaths >= 3 ? "worker_crash_loop" : "worker_died",
			  "worker=%d child=%d status=\"%s\" tasks_given_back=%d restart_in_ms=%llu "
			  "deaths_in_a_row=%u",
			  i, (int)pid, why, given < 0 ? 0 : given, (unsigned long long)delay_ms,
			  w->fast_deaths);
	}
}

int supervisor_tick(struct supervisor *s, int max_ms)
{
	uint64_t now = clock_mono_ns();
	uint64_t next = now + (uint64_t)max_ms * 1000000u;
	if (s->stopping)
		return max_ms;
	for (int i = 0; i < s->n; i++) {
		if (s->w[i].pid || s->w[i].gone)
			continue;
		struct forq_worker_info r = row(s, i);
		if (r.next_start_ns <= now)
			spawn(s, i);
		else if (r.next_start_ns < next)
			next = r.next_start_ns;
	}
	return (int)((next - now + 999999) / 1000000);
}

void supervisor_stopping(struct supervisor *s)
{
	s->stopping = 1;
	for (int i = 0; i < s->n; i++) {
		if (s->w[i].pid)
			continue;
		struct forq_worker_info r = row(s, i);
		r.state = FORQ_WORKER_STOPPED;
		publish(s, i, &r);
	}
}

int supervisor_alive(const struct supervisor *s)
{
	int n = 0;
	for (int i = 0; i < s->n; i++)
		n += s->w[i].pid != 0;
	return n;
}

/* The parent pid in /proc/PID/stat (field 4), or -1. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the name may hold spaces and ')' */
	int ppid;
	return p && sscanf(p + 1, " %*c %d", &ppid) == 1 ? ppid : -1;
}

/* Once the consumers are gone: every child left is something their
 * handlers started that left its task's group (setsid) and outlived it. It
 * goes now, with its group; each is our unreaped child, so neither its pid
 * nor its group id can be another's. Waits for them at most ORPHAN_REAP_MS. */
static void kill_orphans(void)
{
	pid_t self = getpid();
	int killed = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		pid_t pid = (pid_t)atoi(e->d_name);
		if (pid <= 0 || parent_of(pid) != self)
			continue;
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		killed++;
	}
	if (d)
		closedir(d);
	if (killed)
		log_event(LOG_WARN, "handler_leftovers_killed", "count=%d", killed);
	uint64_t deadline = clock_mono_ns() + ORPHAN_REAP_MS * 1000000ull;
	while (clock_mono_ns() < deadline) {
		pid_t w = waitpid(-1, NULL, WNOHANG);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break; /* ECHILD: all reaped */
		if (w == 0)
			poll(NULL, 0, 5);
	}
}

static int chain_alive(const struct supervisor *head)
{
	int n = 0;
	for (const struct supervisor *s = head; s; s = s->next)
		n += supervisor_alive(s);
	return n;
}

void supervisor_wait_all(struct supervisor *head, int grace_ms)
{
	uint64_t deadline = clock_mono_ns() + (uint64_t)grace_ms * 1000000u;
	for (struct supervisor *s = head; s; s = s->next)
		supervisor_stopping(s);
	while (chain_alive(head)) {
		supervisor_reap(head);
		if (!chain_alive(head))
			break;
		if (clock_mono_ns() >= deadline) {
			for (struct supervisor *s = head; s; s = s->next)
				for (int i = 0; i < s->n; i++) {
					pid_t pid = s->w[i].pid;
					if (!pid)
						continue;
					log_event(LOG_WARN, "worker_killed",
						  "worker=%d child=%d reason=\"did not stop in time\"",
						  i, (int)pid);
					kill(pid, SIGKILL);
					s->w[i].killed = 1;
				}
			deadline = UINT64_MAX;
		}
		poll(NULL, 0, 5);
	}
	kill_orphans();
}

int supervisor_kill_holder(struct supervisor *head, pid_t pid)
{
	for (struct supervisor *s = head; s; s = s->next) {
		int i = worker_of(s, pid);
		if (i < 0)
			continue;
		siginfo_t si;
		s->w[i].cancelled = 1;
		kill(pid, SIGKILL);
		/* Seen dead, left unreaped: its repair is supervisor_reap's. */
		while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
			;
		return 0;
	}
	return -ENOENT;
}

void supervisor_chain(struct supervisor *s, struct supervisor *next)
{
	s->next = next;
}

int supervisor_results_gone(const struct supervisor *s)
{
	return s->results_gone;
}

uint64_t supervisor_restarts(const struct supervisor *s)
{
	uint64_t n = 0;
	for (int i = 0; i < s->n; i++)
		n += row(s, i).restarts;
	return n;
}

void supervisor_free(struct supervisor *s)
{
	free(s);
}
