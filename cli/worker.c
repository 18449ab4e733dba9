/* worker.c — `forq worker`, the remote worker of worker.h: its signals and
 * its processes. Flags are worker_opts.c's; one connection's life is
 * worker_session.c's; with --concurrency N this file forks N processes, each
 * running one, and waits for them.
 *
 * Signals are blocked except inside ppoll(), so a SIGINT is seen exactly
 * where a worker waits and never interrupts a handler. */
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handler.h"
#include "log.h"
#include "worker_opts.h"
#include "worker_session.h"

/* ---- signals ---- */

static volatile sig_atomic_t stop_req; /* 1: finish what is in hand; 2: now */

static void on_stop_signal(int sig)
{
	(void)sig;
	if (stop_req < 2)
		stop_req++;
}

/* Blocks SIGINT/SIGTERM; *open gets the mask ppoll waits with. */
static void setup_signals(sigset_t *open)
{
	struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART */
	sigset_t s;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	sigprocmask(SIG_BLOCK, &s, open);
	sigdelset(open, SIGINT);
	sigdelset(open, SIGTERM);
}

static void on_child(int sig)
{
	(void)sig;
}

/* --concurrency N: N children, each its own worker_run. The children leave
 * the terminal's process group, so a Ctrl+C reaches them once, through us. */
static int run_children(const struct worker_opts *o, const sigset_t *open_mask)
{
	pid_t *pids = calloc((size_t)o->concurrency, sizeof *pids);
	long alive = 0;
	int worst = WORKER_EXIT_OK, forwarded = 0;
	sigset_t chld;
	if (!pids) {
		fprintf(stderr, "forq worker: out of memory\n");
		return WORKER_EXIT_FAILED;
	}
	/* SIGCHLD must interrupt ppoll: a handler that does nothing (never
	 * SIG_IGN, which would reap for us). Children put the default back. */
	struct sigaction sa = {.sa_handler = on_child};
	sigemptyset(&sa.sa_mask);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	pid_t parent = getpid();
	for (long i = 0; i < o->concurrency && !stop_req; i++) {
		pid_t p = fork();
		if (p == 0) {
			setpgid(0, 0);
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(WORKER_EXIT_OK);
			signal(SIGCHLD, SIG_DFL);
			sigprocmask(SIG_UNBLOCK, &chld, NULL);
			_exit(worker_run(o, open_mask, &stop_req));
		}
		if (p < 0) {
			fprintf(stderr, "forq worker: fork: %s\n", strerror(errno));
			worst = WORKER_EXIT_FAILED;
			break;
		}
		pids[i] = p;
		alive++;
	}
	while (alive > 0) {
		if (stop_req > forwarded) {
			forwarded = stop_req;
			for (long i = 0; i < o->concurrency; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGTERM);
		}
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p == 0) {
			/* SIGCHLD or a stop signal wakes us. */
			sigset_t m = *open_mask;
			sigdelset(&m, SIGCHLD);
			struct timespec ts = {0, 200 * 1000000};
			ppoll(NULL, 0, &ts, &m);
			continue;
		}
		if (p < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: none left */
		}
		for (long i = 0; i < o->concurrency; i++)
			if (pids[i] == p)
				pids[i] = -1;
		alive--;
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : WORKER_EXIT_FAILED;
		if (code > worst)
			worst = code;
	}
	free(pids);
	return worst;
}

int worker_main(int argc, char **argv)
{
	struct worker_opts o;
	sigset_t open_mask;
	int r = worker_opts_parse(&o, argc, argv);
	if (r)
		return r > 0 ? WORKER_EXIT_OK : WORKER_EXIT_USAGE;
	{
		/* Reject a bad --handler now, not in every child. */
		struct handler *h;
		char err[256];
		if (handler_open(&h, o.handler, NULL, err, sizeof err)) {
			fprintf(stderr, "forq worker: --handler: %s\n", err);
			worker_opts_free(&o);
			return WORKER_EXIT_USAGE;
		}
		handler_close(h);
	}
	if (o.quiet)
		log_set_level(LOG_WARN);
	stop_req = 0;
	setup_signals(&open_mask);
	if (o.concurrency == 1)
		r = worker_run(&o, &open_mask, &stop_req);
	else
		r = run_children(&o, &open_mask);
	worker_opts_free(&o);
	return r;
}
