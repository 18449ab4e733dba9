/* intake.h — tasks from HTTP into the queue: POST /tasks's parsed tasks,
 * each plain, delayed or keyed, pushed in as few calls as they allow. */
#ifndef FORQ_SERVICE_INTAKE_H
#define FORQ_SERVICE_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "forq.h"
#include "http_tasks.h"

/* Pushes tasks[0..n) without waiting (the HTTP thread must not wait for
 * room): consecutive plain tasks of one priority in one batch, a delayed or
 * keyed one alone. ids[i] gets each id, tasks[i].duplicate whether a keyed
 * one found its key held. Returns 0, -EMSGSIZE (over max_payload, nothing
 * pushed), or the first push's error (those before it stay pushed). */
int intake_push(struct forq *q, uint32_t max_payload, struct http_task *tasks, size_t n,
		uint64_t *ids);

/* forqd --upstream: publishes tasks[0..n) to the NATS stream instead, each
 * acknowledged by JetStream before the next; ids[i] gets its stream
 * sequence, a key is the message id (tasks[i].duplicate: JetStream had it).
 * Returns 0, -EMSGSIZE, -ENOTSUP (a delay or a priority other than normal:
 * the stream has neither; nothing published), -EINVAL (a key over 256
 * bytes), -ECOMM (JetStream did not acknowledge one: those before it are
 * published). */
struct upstream;
int intake_publish(struct upstream *u, uint32_t max_payload, struct http_task *tasks, size_t n,
		   uint64_t *ids);

#endif
