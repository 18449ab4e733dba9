/* http_tasks.c — POST /tasks body to tasks, and POST .../dead/retry body to
 * ids, with cJSON. */
#include "http_tasks.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errmsg.h"
#include "json_payload.h"
#include "parse.h"

#define HTTP_DELAY_MAX_MS (366ull * 24 * 3600 * 1000) /* forq.h's FORQ_DELAY_MAX_MS */

/* "tasks[3]: " for arrays, "" for a single object. */
static void where(char *w, size_t size, int is_array, size_t i)
{
	if (is_array)
		snprintf(w, size, "tasks[%zu]: ", i);
	else
		w[0] = '\0';
}

/* "delay": "30s" or "at": "2026-12-03T09:00:00Z" (at most one) into *ms;
 * a time already past is now. */
static int parse_when(const cJSON *delay, const cJSON *at, uint64_t *ms, const char *w, char *err,
		      size_t errlen)
{
	char why[160];
	if (delay && at) {
		errmsg_set(err, errlen, "%sgive delay or at, not both", w);
		return -EINVAL;
	}
	if (delay) {
		if (!cJSON_IsString(delay) ||
		    parse_duration_ms(delay->valuestring, HTTP_DELAY_MAX_MS, ms, why, sizeof why)) {
			errmsg_set(err, errlen, "%sdelay: %s", w,
				   cJSON_IsString(delay) ? why : "expected a string like \"30s\"");
			return -EINVAL;
		}
	} else if (at) {
		int64_t t;
		if (!cJSON_IsString(at) || parse_time_ms(at->valuestring, &t, why, sizeof why)) {
			errmsg_set(err, errlen, "%sat: %s", w,
				   cJSON_IsString(at) ? why
						      : "expected a string like \"2026-12-03T09:00:00Z\"");
			return -EINVAL;
		}
		int64_t now = (int64_t)(clock_real_ns() / 1000000);
		if (t - now > (int64_t)HTTP_DELAY_MAX_MS) {
			errmsg_set(err, errlen, "%sat: more than a year ahead", w);
			return -EINVAL;
		}
		*ms = t > now ? (uint64_t)(t - now) : 0;
	}
	return 0;
}

/* "key" (kept in out->text; its offset in v[i].key until all are in) and
 * "key_window". */
static int parse_key(const cJSON *key, const cJSON *window, struct http_tasks *out, size_t i,
		     const char *w, char *err, size_t errlen)
{
	char why[160];
	if (window && !key) {
		errmsg_set(err, errlen, "%skey_window needs a key", w);
		return -EINVAL;
	}
	if (!key)
		return 0;
	size_t n = cJSON_IsString(key) ? strlen(key->valuestring) : 0;
	int ok = n >= 1 && n <= HTTP_KEY_MAX;
	for (size_t k = 0; ok && k < n; k++)
		ok = key->valuestring[k] > ' ' && key->valuestring[k] != 0x7f;
	if (!ok) {
		errmsg_set(err, errlen, "%skey: expected a string of 1 to %d printable bytes, no blanks",
			   w, HTTP_KEY_MAX);
		return -EINVAL;
	}
	if (window && (!cJSON_IsString(window) ||
		       parse_duration_ms(window->valuestring, HTTP_DELAY_MAX_MS, &out->v[i].key_window_ms,
					 why, sizeof why))) {
		errmsg_set(err, errlen, "%skey_window: %s", w,
			   cJSON_IsString(window) ? why : "expected a string like \"10m\"");
		return -EINVAL;
	}
	out->v[i].key = (const char *)(uintptr_t)out->text.len;
	out->v[i].key_len = n;
	return buf_append(&out->text, key->valuestring, n) ? -ENOMEM : 0;
}

static int parse_prio(const cJSON *p, int *prio)
{
	static const char *const names[] = {"high", "normal", "low"};
	if (!p || cJSON_IsNull(p)) {
		*prio = 1;
		return 0;
	}
	if (!cJSON_IsString(p))
		return -1;
	for (int i = 0; i < 3; i++)
		if (strcmp(p->valuestring, names[i]) == 0) {
			*prio = i;
			return 0;
		}
	return -1;
}

/* Appends one task's payload to out->text, its offset in v[i].payload (fixed
 * up to a pointer when all are in). */
static int one_task(const cJSON *o, int is_array, size_t i, size_t max_payload,
		    struct http_tasks *out, char *err, size_t errlen)
{
	char w[40];
	const cJSON *payload = NULL, *prio = NULL, *delay = NULL, *at = NULL, *key = NULL,
		    *window = NULL, *f;
	size_t len;
	int r = -EINVAL;

	where(w, sizeof w, is_array, i);
	if (!cJSON_IsObject(o)) {
		errmsg_set(err, errlen, "%sexpected an object like {\"payload\": \"...\"}", w);
		goto end;
	}
	cJSON_ArrayForEach(f, o)
	{
		const cJSON **slot = strcmp(f->string, "payload") == 0	 ? &payload
				     : strcmp(f->string, "priority") == 0 ? &prio
				     : strcmp(f->string, "delay") == 0	 ? &delay
				     : strcmp(f->string, "at") == 0	 ? &at
				     : strcmp(f->string, "key") == 0	 ? &key
				     : strcmp(f->string, "key_window") == 0 ? &window
									 : NULL;
		if (!slot) {
			char name[40];
			snprintf(name, sizeof name, "%s", f->string);
			errmsg_set(err, errlen,
				   "%sunknown field \"%s\" (use payload, priority, delay, at, key or "
				   "key_window)", w, name);
			goto end;
		}
		if (*slot) {
			errmsg_set(err, errlen, "%sfield \"%s\" given twice", w, f->string);
			goto end;
		}
		*slot = f;
	}
	if (!payload) {
		errmsg_set(err, errlen, "%smissing payload", w);
		goto end;
	}
	if (parse_prio(prio, &out->v[i].prio)) {
		if (cJSON_IsString(prio)) {
			char name[24];
			snprintf(name, sizeof name, "%s", prio->valuestring);
			errmsg_set(err, errlen, "%sunknown priority \"%s\" (use high, normal or low)", w, name);
		} else {
			errmsg_set(err, errlen, "%spriority must be a string (high, normal or low)", w);
		}
		goto end;
	}
	if ((r = parse_when(delay, at, &out->v[i].delay_ms, w, err, errlen)) ||
	    (r = parse_key(key, window, out, i, w, err, errlen)))
		goto end;
	size_t from = out->text.len;
	char why[64];
	if ((r = json_payload(payload, &out->text, why, sizeof why))) {
		if (r == -EINVAL)
			errmsg_set(err, errlen, "%s%s", w, why);
		goto end;
	}
	len = out->text.len - from;
	if (max_payload && len > max_payload) {
		out->text.len = from;
		errmsg_set(err, errlen, "%spayload is %zu bytes, over the limit of %zu", w, len, max_payload);
		r = -EMSGSIZE;
		goto end;
	}
	out->v[i].payload = (const char *)(uintptr_t)from;
	out->v[i].len = len;
end:
	return r;
}

/* A body's one JSON value (what: the value expected, for "empty body"), or
 * NULL with err set. */
static cJSON *parse_body(const char *body, size_t len, const char *what, char *err,
			 size_t errlen)
{
	const char *end = NULL, *start = body;
	cJSON *root;
	while (len && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n'))
		body++, len--; /* so "empty" and offsets below agree */
	if (len == 0) {
		errmsg_set(err, errlen, "empty body (expected %s)", what);
		return NULL;
	}
	/* JSON is UTF-8 (RFC 8259): bytes that are not are refused, not passed
	 * on to handlers or silently replaced. */
	size_t bad = utf8_invalid_at(body, len);
	if (bad < len) {
		errmsg_set(err, errlen, "invalid UTF-8 at offset %zu", (size_t)(body + bad - start));
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (!root) {
		size_t off = end && end >= body && end <= body + len ? (size_t)(end - start) : 0;
		errmsg_set(err, errlen, "malformed JSON at offset %zu", off);
		return NULL;
	}
	while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (end != body + len) {
		errmsg_set(err, errlen, "malformed JSON at offset %zu: text after the value",
			(size_t)(end - start));
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

int http_parse_tasks(const char *body, size_t len, size_t max_payload, struct http_tasks *out,
		     char *err, size_t errlen)
{
	cJSON *root = NULL;
	size_t n, i;
	int r = -EINVAL, is_array;

	memset(out, 0, sizeof *out);
	if (!(root = parse_body(body, len, "a JSON object or array of objects", err, errlen)))
		goto fail;
	if (json_has_nul_escape(body, len)) {
		errmsg_set(err, errlen, "\\u0000 is not allowed in payloads");
		goto fail;
	}
	is_array = cJSON_IsArray(root);
	if (!is_array && !cJSON_IsObject(root)) {
		errmsg_set(err, errlen, "expected a JSON object or array of objects");
		goto fail;
	}
	n = is_array ? (size_t)cJSON_GetArraySize(root) : 1;
	if (n == 0) {
		errmsg_set(err, errlen, "empty array: no tasks");
		goto fail;
	}
	if (n > HTTP_TASKS_MAX) {
		errmsg_set(err, errlen, "%zu tasks, over the limit of %d per request", n, HTTP_TASKS_MAX);
		r = -E2BIG;
		goto fail;
	}
	if (!(out->v = calloc(n, sizeof *out->v))) {
		r = -ENOMEM;
		goto fail;
	}
	if (is_array) {
		const cJSON *o;
		i = 0;
		cJSON_ArrayForEach(o, root)
		{
			if ((r = one_task(o, 1, i++, max_payload, out, err, errlen)))
				goto fail;
		}
	} else if ((r = one_task(root, 0, 0, max_payload, out, err, errlen))) {
		goto fail;
	}
	for (i = 0; i < n; i++) {
		out->v[i].payload = out->text.data + (uintptr_t)out->v[i].payload;
		if (out->v[i].key_len)
			out->v[i].key = out->text.data + (uintptr_t)out->v[i].key;
	}
	out->is_array = is_array;
	out->n = n;
	cJSON_Delete(root);
	return 0;
fail:
	if (r == -ENOMEM)
		errmsg_set(err, errlen, "out of memory");
	cJSON_Delete(root);
	http_tasks_free(out);
	return r;
}

void http_tasks_free(struct http_tasks *t)
{
	free(t->v);
	buf_free(&t->text);
	t->v = NULL;
	t->n = 0;
}

int http_parse_dead_retry(const char *body, size_t len, uint64_t **ids, size_t *n, char *err,
			  size_t errlen)
{
	cJSON *root = parse_body(body, len, "{\"ids\":[...]} or {\"all\":true}", err, errlen), *f;
	const cJSON *list = NULL, *all = NULL;
	int r = -EINVAL;
	*ids = NULL;
	*n = 0;
	if (!root)
		return -EINVAL;
	if (!cJSON_IsObject(root)) {
		errmsg_set(err, errlen, "expected an object: {\"ids\":[...]} or {\"all\":true}");
		goto out;
	}
	cJSON_ArrayForEach(f, root) {
		if (!strcmp(f->string, "ids") && !list) {
			list = f;
		} else if (!strcmp(f->string, "all") && !all) {
			all = f;
		} else {
			errmsg_set(err, errlen, "unknown or repeated field \"%.40s\" (use ids or all)",
				   f->string);
			goto out;
		}
	}
	if (!list == !all) {
		errmsg_set(err, errlen, "give ids or all, one of them");
		goto out;
	}
	if (all) {
		if (!cJSON_IsTrue(all))
			errmsg_set(err, errlen, "all: expected true");
		else
			r = 0;
		goto out;
	}
	int k = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0;
	if (k < 1 || k > HTTP_RETRY_IDS_MAX) {
		errmsg_set(err, errlen, "ids: expected an array of 1 to %d task ids",
			   HTTP_RETRY_IDS_MAX);
		goto out;
	}
	if (!(*ids = malloc((size_t)k * sizeof **ids))) {
		r = -ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(f, list) {
		double v = cJSON_IsNumber(f) ? f->valuedouble : 0;
		if (!(v >= 1 && v < 9007199254740992.0 && v == (double)(uint64_t)v)) {
			errmsg_set(err, errlen, "ids[%zu]: expected a task id (a whole number from 1)",
				   *n);
			free(*ids);
			*ids = NULL;
			*n = 0;
			goto out;
		}
		(*ids)[(*n)++] = (uint64_t)v;
	}
	r = 0;
out:
	cJSON_Delete(root);
	return r;
}
