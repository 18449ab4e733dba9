/* json_payload.h — a JSON value as a task payload, the one rule for every
 * surface that takes JSON (POST /tasks, `forq push --format jsonl`): a
 * string gives its decoded text, any other value its compact JSON text
 * (numbers re-printed from a double). Refused: null, an empty result, and
 * a text holding the escape \u0000 (payloads reach handlers as C strings).
 */
#ifndef FORQ_JSON_PAYLOAD_H
#define FORQ_JSON_PAYLOAD_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "buf.h"

/* 1 when the JSON text s holds a \u0000 escape (cJSON would decode it into a
 * NUL that cuts the string short). */
int json_has_nul_escape(const char *s, size_t n);

/* Appends v's payload text to out. Returns 0, -EINVAL with the reason in err
 * ("payload is null", "empty payload"), or -ENOMEM; on error out is as it
 * was. */
int json_payload(const cJSON *v, struct buf *out, char *err, size_t errlen);

#endif
