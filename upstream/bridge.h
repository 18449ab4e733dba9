/* bridge.h — forqd's thread between a JetStream stream and its local
 * shared-memory queue (issue 17).
 *
 * It fetches batches from the stream's shared durable pull consumer, as
 * many as the local ring has room for (and at most `hold` held at once),
 * pushes each into the queue's normal lane and keeps the message by the
 * task's id. While the task waits or runs it tells JetStream so
 * (InProgress, every third of AckWait). When the task ends (its result line
 * written: consumers report on the bridge's finish pipe, base/idpipe.h;
 * forqd reports its own finals with bridge_finished) it acks a task done,
 * Terms one failed for good or dead, Naks one that failed with a retry
 * left with the retry's backoff (NakWithDelay: any host may take it then),
 * and at stop Naks every task it still holds, so that another host takes
 * them at once. A task's attempts are JetStream's deliveries of its
 * message before this one, so they outlive hosts; its consumer's crash is
 * still retried here at once (FORQ_F_UPSTREAM, forq_admin_retries_upstream).
 * Every BRIDGE_LAG_EVERY_MS it asks for the consumer's backlog. A forqd that
 * dies stops sending InProgress: JetStream gives its tasks to the other
 * hosts after AckWait. At-least-once: a task whose ack is lost runs again.
 *
 * A lost connection: the bridge keeps its tasks and fetches nothing until
 * libnats has reconnected (acks sent meanwhile wait in libnats' reconnect
 * buffer). */
#ifndef FORQ_UPSTREAM_BRIDGE_H
#define FORQ_UPSTREAM_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

struct bridge;
struct upstream;

struct bridge_config {
	const char *shm_name;   /* the local queue (the bridge opens its own handle) */
	uint32_t hold;          /* tasks held at most (fetched, not yet ended) */
	int64_t ack_wait_ms;    /* the consumer's AckWait: InProgress every third */
	uint32_t nak_delay_ms;  /* a task the queue cannot take now comes back this late */
	const char *results_queue; /* --upstream-results: results published naming this
				    * queue (results_subject.h); NULL: none */
};

/* Subscribes to the durable consumer (upstream_open made sure it exists)
 * and starts the thread. 0 or -errno with err. */
int bridge_start(struct bridge **bp, struct upstream *up, const struct bridge_config *c,
		 char *err, size_t errlen);
/* The finish pipe's write end, for consumers (inherited across fork). */
int bridge_finish_fd(const struct bridge *b);
/* forqd's own finals (repair, remote workers), once their result lines are
 * written. Any thread. */
void bridge_finished(struct bridge *b, const uint64_t *ids, size_t n);
/* Tasks held now. */
uint32_t bridge_held(struct bridge *b);
/* The shared consumer's backlog as JetStream last told it (the bridge
 * asks every BRIDGE_LAG_EVERY_MS while connected): messages not yet
 * delivered to any host, and delivered ones not yet acked (every host's).
 * 0 and 0 before the first answer, or with b NULL. */
#define BRIDGE_LAG_EVERY_MS 2000
void bridge_lag(struct bridge *b, uint64_t *pending, uint64_t *ack_pending);
/* Stops the thread, ends what the pipe still reports, Naks the rest, frees.
 * Call once the consumers are gone. b may be NULL. */
void bridge_stop(struct bridge *b);

#endif
