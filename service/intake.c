/* intake.c — tasks from HTTP into the queue. */
#include "intake.h"

#include <errno.h>

#include "log.h"
#include "stream.h"

static int push_one(struct forq *q, struct http_task *t, uint64_t *id)
{
	enum forq_prio prio = (enum forq_prio)t->prio;
	if (t->key_len)
		return forq_push_unique(q, prio, t->payload, t->len, t->key, t->key_len,
					t->key_window_ms, t->delay_ms, id, &t->duplicate);
	return forq_push_delayed(q, prio, t->payload, t->len, t->delay_ms, id);
}

int intake_push(struct forq *q, uint32_t max_payload, struct http_task *tasks, size_t n,
		uint64_t *ids)
{
	struct forq_msg m[FORQ_PUSH_BATCH_MAX];
	for (size_t i = 0; i < n; i++)
		if (tasks[i].len > max_payload)
			return -EMSGSIZE;
	size_t i = 0;
	while (i < n) {
		size_t k = 0;
		int prio = tasks[i].prio, r;
		if (tasks[i].delay_ms || tasks[i].key_len) {
			if ((r = push_one(q, &tasks[i], ids + i)))
				return r;
			i++;
			continue;
		}
		while (i + k < n && k < FORQ_PUSH_BATCH_MAX && tasks[i + k].prio == prio &&
		       !tasks[i + k].delay_ms && !tasks[i + k].key_len) {
			m[k] = (struct forq_msg){tasks[i + k].payload, (uint32_t)tasks[i + k].len};
			k++;
		}
		if ((r = forq_push_batch(q, (enum forq_prio)prio, m, k, 0, ids + i)))
			return r;
		i += k;
	}
	return 0;
}

/* --upstream: each task is published to the stream, one after another,
 * each waiting for JetStream's ack; ids get the stream sequences. A key is
 * the Nats-Msg-Id (the stream's duplicate window, not key_window). */
int intake_publish(struct upstream *u, uint32_t max_payload, struct http_task *tasks, size_t n,
		   uint64_t *ids)
{
	char err[300], q[400];
	for (size_t i = 0; i < n; i++) {
		if (tasks[i].len > max_payload)
			return -EMSGSIZE;
		if (tasks[i].delay_ms || tasks[i].prio != FORQ_NORMAL)
			return -ENOTSUP;
	}
	if (!upstream_connected(u))
		return -ECOMM; /* not the HTTP thread's 10 s per task */
	for (size_t i = 0; i < n; i++) {
		int r = upstream_publish(u, tasks[i].payload, tasks[i].len, tasks[i].key,
					 tasks[i].key_len, &ids[i], &tasks[i].duplicate, err,
					 sizeof err);
		if (r) {
			log_event(LOG_WARN, "upstream_publish_failed", "published=%zu of=%zu error=\"%s\"",
				  i, n, log_quote(err, q, sizeof q));
			return r == -EINVAL ? -EINVAL : -ECOMM;
		}
	}
	return 0;
}
