/* upstream_internal.h — what bridge.c needs of stream.c beyond stream.h: the
 * JetStream context and names. Private to upstream/. */
#ifndef FORQ_UPSTREAM_INTERNAL_H
#define FORQ_UPSTREAM_INTERNAL_H

#include <nats/nats.h>

#include "stream.h"

jsCtx *upstream_js(struct upstream *u);
const char *upstream_stream_name(const struct upstream *u);
const char *upstream_task_subject(const struct upstream *u);
/* libnats' words for s, with the last error's detail when there is one. */
void upstream_status_text(natsStatus s, char *out, size_t cap);

#endif
