/* exec.c — the exec: handler: one shell command per task, in a process group
 * that ends with the task and dies with its caller (see exec.h). */
#include "exec.h"
#include "reason.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WRITE_CHUNK 65536 /* bytes per write to the child's stdin */
#define READ_CHUNK 16384  /* bytes per read from its stdout */

/* Appends "exit status N" and the last non-empty line of the child's stderr
 * (e, its last n bytes): where tools and tracebacks say what went wrong. */
static enum handler_status exit_reason(struct buf *out, size_t mark, int code, const char *e,
				       size_t n)
{
	char line[HANDLER_STDERR_MAX + 1];
	handler__last_line(line, sizeof line, e, n);
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
	sigset_t pipe_set, saved;
	long long deadline = 0;
	pid_t pid = -1;

	/* A child that exits without reading stdin makes our write raise SIGPIPE:
	 * hold it blocked and consume it below, so the caller needs no setup. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &saved);
	int pipe_was_pending = spawn_sigpipe_pending();

	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
		st = handler__reason(out, mark, HANDLER_RETRY, "pipe: %s", strerror(errno));
		goto end;
	}
	if (p->timeout_ms)
		deadline = spawn_now_ms() + p->timeout_ms;

	pid = spawn_shell(p->cmd, pin[0], pout[1], perr[1], NULL, p->group_hook, p->group_ctx);
	if (pid < 0) {
		st = handler__reason(out, mark, HANDLER_RETRY, "fork: %s", strerror(-pid));
		goto end;
	}

	spawn_close(&pin[0]);
	spawn_close(&pout[1]);
	spawn_close(&perr[1]);
	/* The go byte (exec.h): one byte into an empty pipe never blocks. EPIPE:
	 * the child is gone already; its status says why. */
	if (write(pin[1], SPAWN_GO_BYTE, 1) != 1) {
		if (errno == EPIPE)
			got_epipe = 1;
		spawn_close(&pin[1]);
	}
	if (pin[1] >= 0 && spawn_nonblock(pin[1]))
		loop_errno = errno;
	if (spawn_nonblock(pout[0]) || spawn_nonblock(perr[0]))
		loop_errno = errno;
	if (loop_errno)
		spawn_kill_group(pid);
	if (len == 0)
		spawn_close(&pin[1]); /* EOF at once */

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
			long long left = deadline - spawn_now_ms();
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
					spawn_close(&pin[1]);
			} else if (w < 0 && errno == EPIPE) {
				got_epipe = 1; /* it stopped reading: fine, keep its output */
				spawn_close(&pin[1]);
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				spawn_close(&pin[1]);
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
				spawn_close(&pout[0]);
			}
		}
		if (ie >= 0 && pfd[ie].revents) {
			ssize_t rd = read(perr[0], chunk, sizeof chunk);
			if (rd > 0)
				handler__keep_tail(errtext, sizeof errtext, &errn, chunk, (size_t)rd);
			else if (rd == 0 || (errno != EAGAIN && errno != EINTR))
				spawn_close(&perr[0]);
		}
	}
	if (timed_out || nomem || loop_errno)
		spawn_kill_group(pid);
	/* Close before waiting: a child still writing gets EPIPE and ends. */
	spawn_close(&pin[1]);
	spawn_close(&pout[0]);
	spawn_close(&perr[0]);

	int status = 0, wait_errno = 0;
	pid_t w = -1;
	int we = spawn_wait_exit(pid, deadline, &timed_out);
	if (we == 0) {
		/* What the command left running in its group goes with it; the
		 * unreaped shell keeps the group id from being reused. */
		kill(-pid, SIGKILL);
	}
	tell_group(p, 0);
	if (we == 0) {
		w = spawn_reap(pid, &status);
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
	spawn_close(&pin[0]);
	spawn_close(&pin[1]);
	spawn_close(&pout[0]);
	spawn_close(&pout[1]);
	spawn_close(&perr[0]);
	spawn_close(&perr[1]);
	if (got_epipe && !pipe_was_pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return st;
}
