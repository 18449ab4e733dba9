/* spawn.c — a handler's shell in a process group of its own (see spawn.h). */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long spawn_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void spawn_close(int *fd)
{
	if (*fd >= 0) {
		int e = errno;
		close(*fd);
		errno = e;
		*fd = -1;
	}
}

int spawn_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int spawn_sigpipe_pending(void)
{
	sigset_t set;
	return sigpending(&set) == 0 && sigismember(&set, SIGPIPE) == 1;
}

/* In the forked child: only async-signal-safe calls from here to execve. */
__attribute__((noreturn)) static void shell_child(const char *cmd, int in, int out, int err,
						  pid_t parent, char *const envp[])
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

	execve("/bin/sh", argv, envp ? envp : environ);
	(void)!write(2, msg, sizeof msg - 1);
	_exit(127);
}

pid_t spawn_shell(const char *cmd, int in, int out, int err, char *const envp[],
		  void (*hook)(void *ctx, int pgid), void *ctx)
{
	sigset_t all, before;
	pid_t self = getpid();

	/* No handler of ours may run in the child between fork and exec, and
	 * none of the caller's between fork and the group hook. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &before);
	pid_t pid = fork();
	if (pid == 0)
		shell_child(cmd, in, out, err, self, envp);
	int e = errno;
	if (pid > 0) {
		setpgid(pid, pid); /* the child does it too: whichever runs first wins */
		if (hook)
			hook(ctx, pid);
	}
	pthread_sigmask(SIG_SETMASK, &before, NULL);
	return pid > 0 ? pid : -e;
}

char **spawn_env(const char *const drop[], size_t ndrop, char *const add[], size_t nadd)
{
	size_t n = 0, k = 0;
	while (environ && environ[n])
		n++;
	char **env = calloc(n + nadd + 1, sizeof *env);
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int keep = 1;
		for (size_t d = 0; d < ndrop && keep; d++) {
			size_t l = strlen(drop[d]);
			keep = !(strncmp(environ[i], drop[d], l) == 0 && environ[i][l] == '=');
		}
		if (keep)
			env[k++] = environ[i];
	}
	for (size_t i = 0; i < nadd; i++)
		if (add[i])
			env[k++] = add[i];
	return env;
}

void spawn_kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

int spawn_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by default */
#else
	(void)pid;
	return -1;
#endif
}

int spawn_wait_exit(pid_t pid, long long deadline, int *timed_out)
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
		long long left = deadline - spawn_now_ms();
		if (left <= 0) {
			*timed_out = 1;
			spawn_kill_group(pid);
			continue; /* SIGKILL: the wait below is short */
		}
		if (pfd < 0)
			pfd = spawn_pidfd(pid);
		if (pfd >= 0) {
			struct pollfd p = {pfd, POLLIN, 0};
			poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		} else {
			struct timespec ms = {0, 1000000L};
			nanosleep(&ms, NULL);
		}
	}
	spawn_close(&pfd);
	return r;
}

pid_t spawn_reap(pid_t pid, int *status)
{
	pid_t w;
	do
		w = waitpid(pid, status, 0);
	while (w < 0 && errno == EINTR);
	return w;
}
