/* worker.h — `forq worker`: a remote worker. It connects to forqd's TCP port
 * (the protocol of proto.h), leases batches of tasks with GET_TASKS, runs
 * them with the same handlers as forqd's local consumers (handler.h) and
 * answers each with RESULT (done), FAIL (permanent error) or RETRY
 * (transient error: forqd retries it with backoff, dead after the last
 * attempt).
 *
 * Behaviour:
 *   - --concurrency N opens N connections, each in its own forked process.
 *   - The next batch is asked for while the current one runs (two requests
 *     in flight), so a fast handler never waits for a round trip; an empty
 *     queue is waited on with GET_TASKS n WAIT ms.
 *   - Leases of tasks still waiting in the batch are extended with TOUCH
 *     (every third of forqd's lease timeout, read with INFO). The task
 *     being run cannot be touched: each task must finish within forqd's
 *     --lease-timeout (set --task-timeout below it for exec: handlers), or
 *     its lease expires and forqd hands it to another worker.
 *   - When forqd goes away it reconnects with exponential backoff, 100 ms
 *     doubling to 5 s; tasks it held are forqd's to give back.
 *   - SIGINT/SIGTERM: no new batches; the tasks already received are run and
 *     answered, then it says EXIT, reads BYE and exits 0. A second signal
 *     exits at once (forqd gives the leases back).
 *   - Result text cannot hold a newline on the wire: CR and LF become spaces,
 *     and a result is cut to fit forqd's line limit.
 *
 * Exit codes: 0 ok, 2 bad flags, 3 refused by forqd (AUTH), 1 other. */
#ifndef FORQ_WORKER_H
#define FORQ_WORKER_H

/* argv[0] is "worker". Prints usage and errors on stderr, logs on stderr. */
int worker_main(int argc, char **argv);

#endif
