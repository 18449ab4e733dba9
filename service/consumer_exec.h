/* consumer_exec.h — a consumer runs as its own program. forqd forks and
 * re-executes its own binary for each consumer, its settings as arguments.
 *
 * Why not just fork: forqd has threads (HTTP, journal, producer, NATS
 * bridge), and a child forked from a process with threads may call only
 * async-signal-safe functions until it execs (POSIX). Another thread may
 * hold a lock at the fork (the allocator's, stdio's, a library's) that the
 * child then waits on forever; the sanitizers' allocators are not fork-safe
 * at all. An exec'd consumer starts clean: none of forqd's memory, threads
 * or locks. forqd's binary is opened once, at the first spawn, and executed
 * by descriptor: a binary upgraded in place does not replace a running
 * forqd's consumers. The child keeps forqd's pid (its parent), its signal
 * mask, the results and finish descriptors, and the environment. */
#ifndef FORQ_CONSUMER_EXEC_H
#define FORQ_CONSUMER_EXEC_H

#include <sys/types.h>

#include "consumer.h"

/* argv[1] of a consumer process. */
#define CONSUMER_PROCESS_FLAG "--consumer-process"

/* Forks consumer `worker` of q (forqd's handle) and execs it; call with
 * every signal blocked (the child unblocks them once set up). Returns the
 * child's pid, or -errno when it could not fork (the binary cannot be
 * opened: -ENOEXEC). */
pid_t consumer_spawn(struct forq *q, int worker, const struct consumer_config *c);

/* The consumer process's main (forqd's when argv[1] is
 * CONSUMER_PROCESS_FLAG): attaches to the queue and runs consumer_main.
 * Returns only for arguments it cannot read: 2 and a message on stderr. */
int consumer_process_main(int argc, char **argv);

#endif
