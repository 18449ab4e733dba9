/* exec.c — the exec: handler: one shell command per task, in a process group
 * that ends with the task and dies with its caller (see exec.h). */
#include "exec.h"
#include "reason.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WRITE_CHUNK 65536 /* bytes per write to the child's stdin */
#define READ_CHUNK 16384  /* bytes per read from its stdout */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Closes *fd if open and marks it closed; preserves errno. */
static void close_fd(int *fd)
{
	if (*fd >= 0) {
		int e = errno;
		close(*fd);
		errno = e;
		*fd = -1;
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int sigpipe_pending(void)
{
	sigset_t set;
	return sigpending(&set) == 0 && sigismember(&set, SIGPIPE) == 1;
}

/* In the forked child: only async-signal-safe calls from here to execve. */
__attribute__((noreturn)) static void exec_child(const char *cmd, int in, int out, int err,
						 pid_t parent)
{
	static const char msg[] = "forq: cannot start /bin/sh\n";
	int fds[3] = {in, out, err};
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	struct sigaction dfl;
	ssize_t r;
	char go;

	/* Its own group, then death with the caller; a caller that died
	 * before prctl is seen by the getppid check. */
	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);

	/* Lift all three above 2 first: a pipe end may itself be 0, 1 or 2 (the
	 * caller closed its stdio), and dup2 must not clobber one not yet moved. */
	for (int i = 0; i < 3; i++)
		if ((fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
			_exit(127);
	for (int i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0) /* the copy at i is not close-on-exec */
			_exit(127);

	/* Nothing runs before the caller knows the group: it writes this byte
	 * once the group hook returned. EOF: the caller is gone. */
	while ((r = read(0, &go, 1)) < 0 && errno == EINTR)
		;
	if (r != 1)
		_exit(127);

	/* Ignored dispositions survive exec (SIGPIPE in a server): reset them all,
	 * then lift the all-blocked mask the parent forked under. */
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL); /* EINVAL for KILL, STOP and libc's own */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	execve("/bin/sh", argv, environ);
	(void)!write(2, msg, sizeof msg - 1);
	_exit(127);
}

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

/* Waits until pid has exited, leaving it unreaped (its zombie keeps its pid
 * and group id ours). With a deadline, kills the group when it passes
 * (*timed_out = 1) and waits on. A pidfd makes the wait exact, else it polls
 * every ms. Returns 0, or -errno (-ECHILD: someone else reaped it). */
static int wait_exit(pid_t pid, long long deadline, int *timed_out)
{
	int pfd = -1, r = 0;
	for (;;) {
		siginfo_t si;
		int hang = deadline && !*timed_out;
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | (hang ? WNOHANG : 0)) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (si.si_pid == pid)
			break;
		long long left = deadline - now_ms();
		if (left <= 0) {
			*timed_out = 1;
			kill_group(pid);
			continue; /* SIGKILL: the wait below is short */
		}
#ifdef SYS_pidfd_open
		if (pfd < 0)
			pfd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by default */
#endif
		if (pfd >= 0) {
			struct pollfd p = {pfd, POLLIN, 0};
			poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		} else {
			struct timespec ms = {0, 1000000L};
			nanosleep(&ms, NULL);
		}
	}
	close_fd(&pfd);
	return r;
}

/* Keeps the last cap bytes of a stream in tail (*n used). */
static void keep_tail(char *tail, size_t cap, size_t *n, const char *p, size_t len)
{
	if (len >= cap) {
		memcpy(tail, p + len - cap, cap);
		*n = cap;
		return;
	}
	if (*n + len > cap) {
		size_t drop = *n + len - cap;
		memmove(tail, tail + drop, *n - drop);
		*n -= drop;
	}
	memcpy(tail + *n, p, len);
	*n += len;
}

/* Appends "exit status N" and the last non-empty line of the child's stderr
 * (e, its last n bytes): where tools and tracebacks say what went wrong. */
static enum handler_status exit_reason(struct buf *out, size_t mark, int code, const char *e,
				       size_t n)
{
	char line[HANDLER_STDERR_MAX + 1];
	while (n && (e[n - 1] == '\n' || e[n - 1] == '\r' || e[n - 1] == ' ' || e[n - 1] == '\t'))
		n--;
	size_t start = n;
	while (start && e[start - 1] != '\n')
		start--;
	handler__printable(line, sizeof line, e + start, n - start);
	if (!line[0])
		return handler__reason(out, mark, HANDLER_RETRY, "exit status %d", code);
	return handler__reason(out, mark, HANDLER_RETRY, "exit status %d: %s", code, line);
}

static void tell_group(const struct exec_params *p, int pgid)
{
	if (p->group_hook)
		p->group_hook(p->group_ctx, pgid);
}

enum handler_status exec_run(const struct exec_params *p, const char *payload, size_t len,
			     struct buf *out)
{
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	size_t mark = out->len;
	size_t off = 0;          /* payload bytes written */
	size_t kept = 0;         /* stdout bytes kept in out */
	int truncated = 0, timed_out = 0, nomem = 0, got_epipe = 0, loop_errno = 0;
	char errtext[HANDLER_STDERR_MAX];
	size_t errn = 0;
	char chunk[READ_CHUNK];
	enum handler_status st;
	sigset_t pipe_set, saved, all, before_fork;
	long long deadline = 0;
	pid_t pid = -1, self = getpid();

	/* A child that exits without reading stdin makes our write raise SIGPIPE:
	 * hold it blocked and consume it below, so the caller needs no setup. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &saved);
	int pipe_was_pending = sigpipe_pending();

	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
		st = handler__reason(out, mark, HANDLER_RETRY, "pipe: %s", strerror(errno));
		goto end;
	}
	if (p->timeout_ms)
		deadline = now_ms() + p->timeout_ms;

	/* No handler of ours may run in the child between fork and exec, and
	 * none of the caller's between fork and the group hook. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &before_fork);
	pid = fork();
	if (pid == 0)
		exec_child(p->cmd, pin[0], pout[1], perr[1], self);
	int fork_errno = errno;
	if (pid > 0) {
		setpgid(pid, pid); /* the child does it too: whichever runs first wins */
		tell_group(p, pid);
	}
	pthread_sigmask(SIG_SETMASK, &before_fork, NULL);
	if (pid < 0) {
		st = handler__reason(out, mark, HANDLER_RETRY, "fork: %s", strerror(fork_errno));
		goto end;
	}

	close_fd(&pin[0]);
	close_fd(&pout[1]);
	close_fd(&perr[1]);
	/* The go byte (exec.h): one byte into an empty pipe never blocks. EPIPE:
	 * the child is gone already; its status says why. */
	if (write(pin[1], "g", 1) != 1) {
		if (errno == EPIPE)
			got_epipe = 1;
		close_fd(&pin[1]);
	}
	if (pin[1] >= 0 && set_nonblock(pin[1]))
		loop_errno = errno;
	if (set_nonblock(pout[0]) || set_nonblock(perr[0]))
		loop_errno = errno;
	if (loop_errno)
		kill_group(pid);
	if (len == 0)
		close_fd(&pin[1]); /* EOF at once */

	/* Feed stdin and drain stdout/stderr together, or a child that writes
	 * before it reads everything would deadlock with us. */
	while (!loop_errno && (pin[1] >= 0 || pout[0] >= 0 || perr[0] >= 0)) {
		struct pollfd pfd[3];
		int n = 0, iw = -1, io = -1, ie = -1;
		if (pin[1] >= 0)
			pfd[iw = n++] = (struct pollfd){pin[1], POLLOUT, 0};
		if (pout[0] >= 0)
			pfd[io = n++] = (struct pollfd){pout[0], POLLIN, 0};
		if (perr[0] >= 0)
			pfd[ie = n++] = (struct pollfd){perr[0], POLLIN, 0};

		int tmo = -1;
		if (deadline) {
			long long left = deadline - now_ms();
			if (left <= 0) {
				timed_out = 1;
				break;
			}
			tmo = left > INT_MAX ? INT_MAX : (int)left;
		}
		int r = poll(pfd, (nfds_t)n, tmo);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			loop_errno = errno;
			break;
		}

		if (iw >= 0 && pfd[iw].revents) { /* POLLERR: the reader is gone */
			size_t want = len - off < WRITE_CHUNK ? len - off : WRITE_CHUNK;
			ssize_t w = write(pin[1], payload + off, want);
			if (w > 0) {
				off += (size_t)w;
				if (off == len)
					close_fd(&pin[1]);
			} else if (w < 0 && errno == EPIPE) {
				got_epipe = 1; /* it stopped reading: fine, keep its output */
				close_fd(&pin[1]);
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				close_fd(&pin[1]);
			}
		}
		if (io >= 0 && pfd[io].revents) {
			ssize_t rd = read(pout[0], chunk, sizeof chunk);
			if (rd > 0) {
				size_t room = p->max_output - kept;
				size_t k = (size_t)rd < room ? (size_t)rd : room;
				if (k < (size_t)rd)
					truncated = 1; /* keep reading: the child must not block */
				if (k && buf_append(out, chunk, k)) {
					nomem = 1;
					break;
				}
				kept += k;
			} else if (rd == 0 || (errno != EAGAIN && errno != EINTR)) {
				close_fd(&pout[0]);
			}
		}
		if (ie >= 0 && pfd[ie].revents) {
			ssize_t rd = read(perr[0], chunk, sizeof chunk);
			if (rd > 0)
				keep_tail(errtext, sizeof errtext, &errn, chunk, (size_t)rd);
			else if (rd == 0 || (errno != EAGAIN && errno != EINTR))
				close_fd(&perr[0]);
		}
	}
	if (timed_out || nomem || loop_errno)
		kill_group(pid);
	/* Close before waiting: a child still writing gets EPIPE and ends. */
	close_fd(&pin[1]);
	close_fd(&pout[0]);
	close_fd(&perr[0]);

	int status = 0, wait_errno = 0;
	pid_t w = -1;
	int we = wait_exit(pid, deadline, &timed_out);
	if (we == 0) {
		/* What the command left running in its group goes with it; the
		 * unreaped shell keeps the group id from being reused. */
		kill(-pid, SIGKILL);
	}
	tell_group(p, 0);
	if (we == 0) {
		do
			w = waitpid(pid, &status, 0);
		while (w < 0 && errno == EINTR);
		wait_errno = errno;
	} else {
		wait_errno = -we;
	}
	if (timed_out)
		st = handler__reason(out, mark, HANDLER_RETRY, "timed out after %d ms", p->timeout_ms);
	else if (nomem)
		st = handler__reason(out, mark, HANDLER_RETRY, "out of memory");
	else if (loop_errno)
		st = handler__reason(out, mark, HANDLER_RETRY, "i/o with the command: %s",
				     strerror(loop_errno));
	else if (w != pid)
		st = handler__reason(out, mark, HANDLER_RETRY, "lost the command's exit status: %s",
				     strerror(wait_errno));
	else if (WIFSIGNALED(status))
		st = handler__reason(out, mark, HANDLER_RETRY, "killed by signal %d", WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		st = exit_reason(out, mark, WEXITSTATUS(status), errtext, errn);
	else
		st = HANDLER_OK;
	if (st == HANDLER_OK && !truncated && out->len > mark && out->data[out->len - 1] == '\n')
		out->data[--out->len] = '\0';
end:
	close_fd(&pin[0]);
	close_fd(&pin[1]);
	close_fd(&pout[0]);
	close_fd(&pout[1]);
	close_fd(&perr[0]);
	close_fd(&perr[1]);
	if (got_epipe && !pipe_was_pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return st;
}
