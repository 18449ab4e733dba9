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

#endif
