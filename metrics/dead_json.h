/* dead_json.h — a queue's dead letters as one line of JSON: the one encoder
 * for HTTP (GET /queues/{name}/dead), TCP (DEAD) and `forq dead --json`.
 *
 *   {"queue":"emails","dead_letters":[{"id":7,"priority":"normal",
 *    "attempts":3,"died_at":"2026-12-03T09:00:00.123Z","error":"exit 1",
 *    "payload":"..."}]}
 *
 * Oldest first. Error and payload are JSON strings of their bytes (invalid
 * UTF-8 as U+FFFD, control bytes escaped), so the line holds no newline. */
#ifndef FORQ_METRICS_DEAD_JSON_H
#define FORQ_METRICS_DEAD_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "forq.h"

/* Appends the queue's dead letters to out. Returns how many, or -errno
 * (-ENOMEM; forq_dead_list's errors); on failure out may hold part of it. */
int dead_json(struct buf *out, struct forq *q, const char *queue);

/* unix_ns as "2026-12-03T09:00:00.123Z" (UTC), "-" for none. */
void dead_json_time(int64_t unix_ns, char *out, size_t cap);

#endif
