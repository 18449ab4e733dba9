/* spawn.h — how the handlers start a command: /bin/sh -c CMD in a process
 * group of its own that never outlives its caller. Private to handlers/
 * (exec.c runs one per task, proc.c one per consumer).
 *
 *   - the shell leads the group (its pid is the group id) and gets SIGKILL
 *     when the calling thread dies (PR_SET_PDEATHSIG), checked once more
 *     after it is set, so a caller that died during fork leaves nothing;
 *   - it runs nothing before the caller has been told the group (the hook,
 *     called with every signal blocked): it waits for one byte on its stdin
 *     (the go byte) that the caller writes after spawn_shell returned, and
 *     which the command never sees; EOF there instead: it exits 127;
 *   - its signal dispositions are the defaults and its mask is empty;
 *   - only in, out and err reach it (as 0, 1, 2): the caller's other fds
 *     must be close-on-exec.
 */
#ifndef FORQ_SPAWN_H
#define FORQ_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#define SPAWN_GO_BYTE "g"

/* Forks the shell for cmd with in, out and err as its stdio and envp as its
 * environment (NULL: the caller's). hook (may be NULL) gets the group id in
 * the parent before this returns. Returns the shell's pid, or -errno (fork
 * failed; the hook was not called). The caller closes its copies of the
 * child's ends and writes SPAWN_GO_BYTE to in's other end. */
pid_t spawn_shell(const char *cmd, int in, int out, int err, char *const envp[],
		  void (*hook)(void *ctx, int pgid), void *ctx);

/* The caller's environment less the variables named in drop ("NAME"), plus
 * add's strings ("NAME=value"; NULL ones skipped): an array for spawn_shell.
 * Its strings are environ's and add's, not copies: free the array alone,
 * after the fork. NULL: out of memory. */
char **spawn_env(const char *const drop[], size_t ndrop, char *const add[], size_t nadd);

/* SIGKILLs pid's whole group, and pid itself should it have left it. Call
 * it while pid is unreaped, so that the group id cannot have been reused. */
void spawn_kill_group(pid_t pid);

/* Waits until pid has exited, leaving it unreaped (its zombie keeps its pid
 * and group id ours). With a deadline (CLOCK_MONOTONIC ms, 0: none) it kills
 * the group when the deadline passes (*timed_out = 1) and waits on. Returns
 * 0, or -errno (-ECHILD: someone else reaped it). */
int spawn_wait_exit(pid_t pid, long long deadline_ms, int *timed_out);

/* Reaps pid (EINTR retried): its pid, or -1 with errno set. */
pid_t spawn_reap(pid_t pid, int *status);

/* Closes *fd if open (>= 0) and sets it to -1; preserves errno. */
void spawn_close(int *fd);

/* O_NONBLOCK on fd: 0 or -1 (errno set). */
int spawn_nonblock(int fd);

/* 1 if a SIGPIPE is pending for the calling thread or the process. Writers
 * to a child's stdin block SIGPIPE, note this, write, and consume a SIGPIPE
 * their EPIPE raised only if none was pending before. */
int spawn_sigpipe_pending(void);

/* CLOCK_MONOTONIC in ms. */
long long spawn_now_ms(void);

/* A pidfd for pid (readable once it exits), close-on-exec; -1 where the
 * kernel has none. */
int spawn_pidfd(pid_t pid);

#endif
