/* http_tasks.h — the body of POST /tasks turned into tasks (pure, no I/O).
 *
 * Body: one object or an array of 1..HTTP_TASKS_MAX objects, each
 *   {"payload": <value>, "priority": "high"|"normal"|"low",
 *    "delay": "30s" | "at": "2026-12-03T09:00:00Z",
 *    "key": "user:42", "key_window": "10m"}
 * "priority" may be left out (or null): normal. "delay" (parse_duration_ms's
 * text) or "at" (parse_time_ms's; a time past is now), at most a year ahead:
 * the task starts no sooner. "key" (1 to HTTP_KEY_MAX printable bytes): a
 * live task holding it is returned instead of a new one; "key_window"
 * (a duration, with "key" only) keeps it held after that task ends. The payload's bytes are the
 * text of a JSON string as decoded, or the compact JSON text of a number,
 * object, array or boolean (numbers are re-printed from a double: send a string
 * when the exact digits matter). Refused: a null or empty payload, other
 * fields, a string containing \u0000 (payloads are C strings downstream), a
 * body that is not valid UTF-8 (JSON is UTF-8: 400 with the byte's offset).
 */
#ifndef FORQ_METRICS_HTTP_TASKS_H
#define FORQ_METRICS_HTTP_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HTTP_TASKS_MAX 10000
#define HTTP_KEY_MAX 94 /* forq.h's FORQ_KEY_MAX */

/* One task to enqueue; priority as enum forq_prio (high=0, normal=1, low=2). */
struct http_task {
	const char *payload; /* not NUL-terminated */
	size_t len;          /* >= 1 */
	int prio;
	uint64_t delay_ms;   /* "delay" or "at": start no sooner; 0 for now */
	const char *key;     /* "key": unique key (in text, not NUL-terminated), or NULL */
	size_t key_len;
	uint64_t key_window_ms; /* "key_window": the key held this long after the end */
	int duplicate;       /* set by the push: the key's live task was returned */
};

/* Parsed tasks; payloads point into `text`, which the struct owns. */
struct http_tasks {
	struct http_task *v;
	size_t n;
	int is_array;        /* the body was an array (the reply says so) */
	struct buf text;
};

/* Parses len bytes of body (need not be NUL-terminated). max_payload 0 means
 * no limit. Returns 0 with out filled (free with http_tasks_free), or:
 *   -EINVAL    bad request: err says why, e.g.
 *              malformed JSON at offset 17
 *              tasks[3]: unknown priority "urgent" (use high, normal or low)
 *   -EMSGSIZE  a payload over max_payload: "tasks[2]: payload is 2048 bytes,
 *              over the limit of 1024"
 *   -E2BIG     more than HTTP_TASKS_MAX tasks
 *   -ENOMEM
 * On error out is empty (nothing to free). err may be NULL when errlen is 0. */
int http_parse_tasks(const char *body, size_t len, size_t max_payload, struct http_tasks *out,
		     char *err, size_t errlen);

void http_tasks_free(struct http_tasks *t);

/* The body of POST /queues/{name}/dead/retry: {"ids":[7,9]} (1 to
 * HTTP_RETRY_IDS_MAX task ids) or {"all":true}. Returns 0 with *ids (the
 * caller frees) and *n, n 0 for all; -EINVAL with err (nothing to free);
 * -ENOMEM. */
#define HTTP_RETRY_IDS_MAX 10000
int http_parse_dead_retry(const char *body, size_t len, uint64_t **ids, size_t *n, char *err,
			  size_t errlen);

#endif
