/* upstream_internal.h — what bridge.c needs of stream.c beyond stream.h: the
 * JetStream context and names. Private to upstream/. */
#ifndef FORQ_UPSTREAM_INTERNAL_H
#define FORQ_UPSTREAM_INTERNAL_H

#include <nats/nats.h>

#include "stream.h"

jsCtx *upstream_js(struct upstream *u);
natsConnection *upstream_conn(struct upstream *u);
const char *upstream_stream_name(const struct upstream *u);
const char *upstream_task_subject(const struct upstream *u);
/* libnats' words for s, with the last error's detail when there is one. */
void upstream_status_text(natsStatus s, char *out, size_t cap);

/* forqd --upstream-results: task id of queue q (named queue) ended, its
 * result line written; m is its message. Publishes the result (results_subject.h)
 * to forq.results.STREAM, at most once. Any thread. */
struct forq;
void upstream_result_publish(struct upstream *u, struct forq *q, const char *queue, uint64_t id,
			     natsMsg *m);

#endif
