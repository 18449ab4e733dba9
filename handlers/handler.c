/* handler.c — the task kinds of handler.h: noop, arith, json and exec. */
#include "handler.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arith.h"
#include "errmsg.h"

enum handler_kind { KIND_NOOP, KIND_ARITH, KIND_JSON, KIND_EXEC };

struct handler {
	enum handler_kind kind;
	int timeout_ms;    /* exec: 0 = none */
	size_t max_output; /* exec: stdout bytes kept */
	char *cmd;         /* exec: the shell command; NULL otherwise */
};

#define EXEC_PREFIX "exec:"
#define EXEC_PREFIX_LEN (sizeof EXEC_PREFIX - 1)
#define WRITE_CHUNK 65536  /* bytes per write to the child's stdin */
#define READ_CHUNK 16384   /* bytes per read from its stdout */
#define SHOWN_NAME_MAX 32  /* bytes of a user's op name echoed in a reason */


int handler_open(struct handler **hp, const char *spec, const struct handler_options *o,
		 char *err, size_t errlen)
{
	struct handler *h = calloc(1, sizeof *h);
	int r = -ENOMEM;
	if (!h)
		goto fail;
	h->timeout_ms = o && o->task_timeout_ms > 0 ? o->task_timeout_ms : 0;
	h->max_output = o && o->max_output ? o->max_output : HANDLER_MAX_OUTPUT_DEFAULT;

	if (strcmp(spec, "noop") == 0) {
		h->kind = KIND_NOOP;
	} else if (strcmp(spec, "arith") == 0) {
		h->kind = KIND_ARITH;
	} else if (strcmp(spec, "json") == 0) {
		h->kind = KIND_JSON;
	} else if (strncmp(spec, EXEC_PREFIX, EXEC_PREFIX_LEN) == 0) {
		const char *cmd = spec + EXEC_PREFIX_LEN;
		h->kind = KIND_EXEC;
		if (cmd[strspn(cmd, " \t")] == '\0') {
			errmsg_set(err, errlen, "handler \"exec:\" needs a command (exec:CMD)");
			r = -EINVAL;
			goto fail;
		}
		h->cmd = strdup(cmd);
		if (!h->cmd)
			goto fail;
	} else {
		errmsg_set(err, errlen, "unknown handler \"%s\" (use noop, arith, json or exec:CMD)",
			spec);
		r = -EINVAL;
		goto fail;
	}
	*hp = h;
	return 0;
fail:
	free(h);
	return r;
}

void handler_close(struct handler *h)
{
	if (!h)
		return;
	free(h->cmd);
	free(h);
}

int handler_is_noop(const struct handler *h)
{
	return h->kind == KIND_NOOP;
}

/* Drops what the run appended to out since mark and puts the reason there.
 * Returns st, or HANDLER_RETRY if even the reason does not fit in memory. */
static enum handler_status reason(struct buf *out, size_t mark, enum handler_status st,
				  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum handler_status reason(struct buf *out, size_t mark, enum handler_status st,
				  const char *fmt, ...)
{
	out->len = mark;
	if (out->cap)
		out->data[mark] = '\0';
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(out, fmt, ap);
	va_end(ap);
	return r ? HANDLER_RETRY : st;
}

/* Copies at most max bytes of s into a printable one-line form: control
 * bytes become '?', so a reason never breaks a line-based reader. */
static void printable(char *dst, size_t cap, const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		dst[k++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[k] = '\0';
}

static enum handler_status run_arith(const char *payload, size_t len, struct buf *out)
{
	char err[128];
	char num[ARITH_FORMAT_MAX];
	double v;

	if (arith_eval(payload, len, &v, err, sizeof err))
		return reason(out, out->len, HANDLER_FAIL, "%s", err);
	size_t n = arith_format(v, num, sizeof num);
	if (buf_append(out, num, n))
		return reason(out, out->len, HANDLER_RETRY, "out of memory");
	return HANDLER_OK;
}

/* ---- json ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int is_json_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static enum handler_status run_json(const char *payload, size_t len, struct buf *out)
{
	size_t mark = out->len;
	enum handler_status st = HANDLER_FAIL;
	const char *end = NULL;
	cJSON *root = NULL;

	if (len == 0)
		return reason(out, mark, HANDLER_FAIL, "empty payload (want {\"op\": ..., \"args\": [...]})");
	/* Not NUL-terminated: the length-bounded parser; trailing bytes checked below.
	 * cJSON returns NULL on out of memory too; that reads as invalid JSON. */
	root = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
	if (!root) {
		size_t at = end && end >= payload && end <= payload + len ? (size_t)(end - payload) : 0;
		st = reason(out, mark, HANDLER_FAIL, "invalid JSON at offset %zu", at);
		goto end;
	}
	while (end < payload + len && is_json_blank(*end))
		end++;
	if (end != payload + len) {
		st = reason(out, mark, HANDLER_FAIL,
			    "invalid JSON at offset %zu: data after the value", (size_t)(end - payload));
		goto end;
	}
	if (!cJSON_IsObject(root)) {
		st = reason(out, mark, HANDLER_FAIL, "payload must be a JSON object: {\"op\": ..., \"args\": [...]}");
		goto end;
	}

	const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "op");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(root, "args");
	if (!cJSON_IsString(op)) {
		st = reason(out, mark, HANDLER_FAIL,
			    "\"op\" must be a string (sum, min, max, avg or sleep_ms)");
		goto end;
	}
	const char *name = op->valuestring;
	int is_sleep = strcmp(name, "sleep_ms") == 0;
	if (!is_sleep && strcmp(name, "sum") && strcmp(name, "min") && strcmp(name, "max") &&
	    strcmp(name, "avg")) {
		char shown[SHOWN_NAME_MAX + 1];
		printable(shown, sizeof shown, name, strlen(name));
		st = reason(out, mark, HANDLER_FAIL,
			    "unknown op \"%s\" (use sum, min, max, avg or sleep_ms)", shown);
		goto end;
	}
	int nargs = cJSON_IsArray(args) ? cJSON_GetArraySize(args) : 0;
	if (nargs == 0) {
		st = reason(out, mark, HANDLER_FAIL, "\"args\" must be a non-empty array of numbers");
		goto end;
	}

	/* One pass: validate and fold min, max and sum together. */
	double sum = 0, lo = INFINITY, hi = -INFINITY;
	int i = 0;
	const cJSON *a;
	cJSON_ArrayForEach(a, args) {
		if (!cJSON_IsNumber(a)) {
			st = reason(out, mark, HANDLER_FAIL, "args[%d] is not a number", i);
			goto end;
		}
		double x = a->valuedouble;
		if (!isfinite(x)) { /* cJSON reads 1e999 as inf */
			st = reason(out, mark, HANDLER_FAIL, "args[%d] is out of range", i);
			goto end;
		}
		sum += x;
		lo = x < lo ? x : lo;
		hi = x > hi ? x : hi;
		i++;
	}

	if (is_sleep) {
		double n = args->child->valuedouble;
		if (nargs != 1 || n < 0) {
			st = reason(out, mark, HANDLER_FAIL,
				    "sleep_ms takes one argument, the milliseconds: [N] with N >= 0");
			goto end;
		}
		long ms = n > HANDLER_SLEEP_MAX_MS ? HANDLER_SLEEP_MAX_MS : (long)n;
		sleep_ms(ms);
		st = buf_printf(out, "slept %ld ms", ms) ? reason(out, mark, HANDLER_RETRY, "out of memory")
							  : HANDLER_OK;
		goto end;
	}

	double v = sum;
	if (strcmp(name, "min") == 0)
		v = lo;
	else if (strcmp(name, "max") == 0)
		v = hi;
	else if (strcmp(name, "avg") == 0)
		v = sum / nargs;
	if (!isfinite(v)) {
		st = reason(out, mark, HANDLER_FAIL, "result out of range");
		goto end;
	}
	char num[ARITH_FORMAT_MAX];
	size_t n = arith_format(v, num, sizeof num);
	st = buf_append(out, num, n) ? reason(out, mark, HANDLER_RETRY, "out of memory") : HANDLER_OK;
end:
	cJSON_Delete(root);
	return st;
}

/* ---- exec ---- */

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
__attribute__((noreturn)) static void exec_child(const char *cmd, int in, int out, int err)
{
	static const char msg[] = "forq: cannot start /bin/sh\n";
	int fds[3] = {in, out, err};
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	struct sigaction dfl;

	/* Lift all three above 2 first: a pipe end may itself be 0, 1 or 2 (the
	 * caller closed its stdio), and dup2 must not clobber one not yet moved. */
	for (int i = 0; i < 3; i++)
		if ((fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
			_exit(127);
	for (int i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0) /* the copy at i is not close-on-exec */
			_exit(127);
	setpgid(0, 0);

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
	kill(pid, SIGKILL); /* in case the child had no time to make its group */
}

/* Reaps exactly pid. With a deadline, kills the group when it passes
 * (*timed_out = 1); a pidfd makes the wait exact, else it polls every ms. */
static pid_t reap(pid_t pid, long long deadline, int *status, int *timed_out)
{
	pid_t w;
	if (deadline && !*timed_out) {
		int pfd = -1;
#ifdef SYS_pidfd_open
		pfd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by default */
#endif
		for (;;) {
			w = waitpid(pid, status, WNOHANG);
			if (w != 0 && !(w < 0 && errno == EINTR)) {
				close_fd(&pfd);
				return w;
			}
			long long left = deadline - now_ms();
			if (left <= 0) {
				*timed_out = 1;
				kill_group(pid);
				break;
			}
			if (pfd >= 0) {
				struct pollfd p = {pfd, POLLIN, 0};
				poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
			} else {
				struct timespec ms = {0, 1000000L};
				nanosleep(&ms, NULL);
			}
		}
		close_fd(&pfd);
	}
	do
		w = waitpid(pid, status, 0);
	while (w < 0 && errno == EINTR);
	return w;
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
	printable(line, sizeof line, e + start, n - start);
	if (!line[0])
		return reason(out, mark, HANDLER_RETRY, "exit status %d", code);
	return reason(out, mark, HANDLER_RETRY, "exit status %d: %s", code, line);
}

static enum handler_status run_exec(const struct handler *h, const char *payload, size_t len,
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
	pid_t pid = -1;

	/* A child that exits without reading stdin makes our write raise SIGPIPE:
	 * hold it blocked and consume it below, so the caller needs no setup. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &saved);
	int pipe_was_pending = sigpipe_pending();

	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
		st = reason(out, mark, HANDLER_RETRY, "pipe: %s", strerror(errno));
		goto end;
	}
	if (h->timeout_ms)
		deadline = now_ms() + h->timeout_ms;

	/* No handler of ours may run in the child between fork and exec. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &before_fork);
	pid = fork();
	if (pid == 0)
		exec_child(h->cmd, pin[0], pout[1], perr[1]);
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &before_fork, NULL);
	if (pid < 0) {
		st = reason(out, mark, HANDLER_RETRY, "fork: %s", strerror(fork_errno));
		goto end;
	}
	setpgid(pid, pid); /* the child does it too: whichever runs first wins */

	close_fd(&pin[0]);
	close_fd(&pout[1]);
	close_fd(&perr[1]);
	if (set_nonblock(pin[1]) || set_nonblock(pout[0]) || set_nonblock(perr[0])) {
		loop_errno = errno;
		kill_group(pid);
	}
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
				size_t room = h->max_output - kept;
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
	/* Close before reaping: a child still writing gets EPIPE and ends. */
	close_fd(&pin[1]);
	close_fd(&pout[0]);
	close_fd(&perr[0]);

	int status = 0;
	pid_t w = reap(pid, deadline, &status, &timed_out);
	int wait_errno = errno;
	if (timed_out)
		st = reason(out, mark, HANDLER_RETRY, "timed out after %d ms", h->timeout_ms);
	else if (nomem)
		st = reason(out, mark, HANDLER_RETRY, "out of memory");
	else if (loop_errno)
		st = reason(out, mark, HANDLER_RETRY, "i/o with the command: %s", strerror(loop_errno));
	else if (w != pid)
		st = reason(out, mark, HANDLER_RETRY, "lost the command's exit status: %s",
			    strerror(wait_errno));
	else if (WIFSIGNALED(status))
		st = reason(out, mark, HANDLER_RETRY, "killed by signal %d", WTERMSIG(status));
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

enum handler_status handler_run(struct handler *h, const void *payload, size_t len,
				struct buf *out)
{
	switch (h->kind) {
	case KIND_NOOP:
		return HANDLER_OK;
	case KIND_ARITH:
		return run_arith(payload, len, out);
	case KIND_JSON:
		return run_json(payload, len, out);
	case KIND_EXEC:
		return run_exec(h, payload, len, out);
	}
	return HANDLER_FAIL; /* not reached: every kind is handled above */
}
