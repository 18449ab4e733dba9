/* handler.c — the task kinds of handler.h: noop, arith and json here, exec
 * in exec.c, proc in proc.c. */
#include "handler.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arith.h"
#include "errmsg.h"
#include "clock.h"
#include "exec.h"
#include "proc.h"
#include "reason.h"

enum handler_kind { KIND_NOOP, KIND_ARITH, KIND_JSON, KIND_EXEC, KIND_PROC };

struct handler {
	enum handler_kind kind;
	struct exec_params exec; /* exec: its cmd is ours (NULL otherwise) */
	struct proc *proc;       /* proc: its child */
	uint64_t seq;            /* proc: ids of handler_run's tasks */
	struct buf out;          /* handler_run_batch's result, for the kinds run one by one */
};

#define EXEC_PREFIX "exec:"
#define EXEC_PREFIX_LEN (sizeof EXEC_PREFIX - 1)
#define PROC_PREFIX "proc:"
#define PROC_PREFIX_LEN (sizeof PROC_PREFIX - 1)
#define SHOWN_NAME_MAX 32  /* bytes of a user's op name echoed in a reason */


int handler_open(struct handler **hp, const char *spec, const struct handler_options *o,
		 char *err, size_t errlen)
{
	struct handler *h = calloc(1, sizeof *h);
	int r = -ENOMEM;
	if (!h)
		goto fail;
	h->exec.timeout_ms = o && o->task_timeout_ms > 0 ? o->task_timeout_ms : 0;
	h->exec.max_output = o && o->max_output ? o->max_output : HANDLER_MAX_OUTPUT_DEFAULT;
	h->exec.group_hook = o ? o->group_hook : NULL;
	h->exec.group_ctx = o ? o->group_ctx : NULL;

	if (strcmp(spec, "noop") == 0) {
		h->kind = KIND_NOOP;
	} else if (strcmp(spec, "arith") == 0) {
		h->kind = KIND_ARITH;
	} else if (strcmp(spec, "json") == 0) {
		h->kind = KIND_JSON;
	} else if (strncmp(spec, EXEC_PREFIX, EXEC_PREFIX_LEN) == 0) {
		const char *cmd = spec + EXEC_PREFIX_LEN;
		h->kind = KIND_EXEC;
		if (cmd[strspn(cmd, " \t")] == '\0') {
			errmsg_set(err, errlen, "handler \"exec:\" needs a command (exec:CMD)");
			r = -EINVAL;
			goto fail;
		}
		h->exec.cmd = strdup(cmd);
		if (!h->exec.cmd)
			goto fail;
	} else if (strncmp(spec, PROC_PREFIX, PROC_PREFIX_LEN) == 0) {
		const char *cmd = spec + PROC_PREFIX_LEN;
		h->kind = KIND_PROC;
		if (cmd[strspn(cmd, " \t")] == '\0') {
			errmsg_set(err, errlen, "handler \"proc:\" needs a command (proc:CMD)");
			r = -EINVAL;
			goto fail;
		}
		struct proc_params pp = {
			.cmd = cmd, .timeout_ms = h->exec.timeout_ms, .max_output = h->exec.max_output,
			.group_hook = h->exec.group_hook, .group_ctx = h->exec.group_ctx};
		if (o) {
			pp.backoff_ms = o->restart_backoff_ms;
			pp.backoff_max_ms = o->restart_backoff_max_ms;
			pp.queue = o->queue;
			pp.worker = o->worker;
			pp.log_hook = o->log_hook;
			pp.log_ctx = o->log_ctx;
		}
		if ((r = proc_open(&h->proc, &pp)))
			goto fail;
	} else {
		errmsg_set(err, errlen, "unknown handler \"%s\" (use noop, arith, json, exec:CMD or proc:CMD)",
			spec);
		r = -EINVAL;
		goto fail;
	}
	*hp = h;
	return 0;
fail:
	free(h);
	return r;
}

void handler_close(struct handler *h)
{
	if (!h)
		return;
	proc_close(h->proc);
	free((char *)h->exec.cmd);
	buf_free(&h->out);
	free(h);
}

int handler_is_noop(const struct handler *h)
{
	return h->kind == KIND_NOOP;
}

int handler_is_persistent(const struct handler *h)
{
	return h->kind == KIND_PROC;
}

int handler_prepare(struct handler *h)
{
	return h->kind == KIND_PROC ? proc_prepare(h->proc) : 0;
}

static enum handler_status run_arith(const char *payload, size_t len, struct buf *out)
{
	char err[128];
	char num[ARITH_FORMAT_MAX];
	double v;

	if (arith_eval(payload, len, &v, err, sizeof err))
		return handler__reason(out, out->len, HANDLER_FAIL, "%s", err);
	size_t n = arith_format(v, num, sizeof num);
	if (buf_append(out, num, n))
		return handler__reason(out, out->len, HANDLER_RETRY, "out of memory");
	return HANDLER_OK;
}

/* ---- json ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int is_json_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static enum handler_status run_json(const char *payload, size_t len, struct buf *out)
{
	size_t mark = out->len;
	enum handler_status st = HANDLER_FAIL;
	const char *end = NULL;
	cJSON *root = NULL;

	if (len == 0)
		return handler__reason(out, mark, HANDLER_FAIL, "empty payload (want {\"op\": ..., \"args\": [...]})");
	/* Not NUL-terminated: the length-bounded parser; trailing bytes checked below.
	 * cJSON returns NULL on out of memory too; that reads as invalid JSON. */
	root = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
	if (!root) {
		size_t at = end && end >= payload && end <= payload + len ? (size_t)(end - payload) : 0;
		st = handler__reason(out, mark, HANDLER_FAIL, "invalid JSON at offset %zu", at);
		goto end;
	}
	while (end < payload + len && is_json_blank(*end))
		end++;
	if (end != payload + len) {
		st = handler__reason(out, mark, HANDLER_FAIL,
			    "invalid JSON at offset %zu: data after the value", (size_t)(end - payload));
		goto end;
	}
	if (!cJSON_IsObject(root)) {
		st = handler__reason(out, mark, HANDLER_FAIL, "payload must be a JSON object: {\"op\": ..., \"args\": [...]}");
		goto end;
	}

	const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "op");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(root, "args");
	if (!cJSON_IsString(op)) {
		st = handler__reason(out, mark, HANDLER_FAIL,
			    "\"op\" must be a string (sum, min, max, avg or sleep_ms)");
		goto end;
	}
	const char *name = op->valuestring;
	int is_sleep = strcmp(name, "sleep_ms") == 0;
	if (!is_sleep && strcmp(name, "sum") && strcmp(name, "min") && strcmp(name, "max") &&
	    strcmp(name, "avg")) {
		char shown[SHOWN_NAME_MAX + 1];
		handler__printable(shown, sizeof shown, name, strlen(name));
		st = handler__reason(out, mark, HANDLER_FAIL,
			    "unknown op \"%s\" (use sum, min, max, avg or sleep_ms)", shown);
		goto end;
	}
	int nargs = cJSON_IsArray(args) ? cJSON_GetArraySize(args) : 0;
	if (nargs == 0) {
		st = handler__reason(out, mark, HANDLER_FAIL, "\"args\" must be a non-empty array of numbers");
		goto end;
	}

	/* One pass: validate and fold min, max and sum together. */
	double sum = 0, lo = INFINITY, hi = -INFINITY;
	int i = 0;
	const cJSON *a;
	cJSON_ArrayForEach(a, args) {
		if (!cJSON_IsNumber(a)) {
			st = handler__reason(out, mark, HANDLER_FAIL, "args[%d] is not a number", i);
			goto end;
		}
		double x = a->valuedouble;
		if (!isfinite(x)) { /* cJSON reads 1e999 as inf */
			st = handler__reason(out, mark, HANDLER_FAIL, "args[%d] is out of range", i);
			goto end;
		}
		sum += x;
		lo = x < lo ? x : lo;
		hi = x > hi ? x : hi;
		i++;
	}

	if (is_sleep) {
		double n = args->child->valuedouble;
		if (nargs != 1 || n < 0) {
			st = handler__reason(out, mark, HANDLER_FAIL,
				    "sleep_ms takes one argument, the milliseconds: [N] with N >= 0");
			goto end;
		}
		long ms = n > HANDLER_SLEEP_MAX_MS ? HANDLER_SLEEP_MAX_MS : (long)n;
		sleep_ms(ms);
		st = buf_printf(out, "slept %ld ms", ms) ? handler__reason(out, mark, HANDLER_RETRY, "out of memory")
							  : HANDLER_OK;
		goto end;
	}

	double v = sum;
	if (strcmp(name, "min") == 0)
		v = lo;
	else if (strcmp(name, "max") == 0)
		v = hi;
	else if (strcmp(name, "avg") == 0)
		v = sum / nargs;
	if (!isfinite(v)) {
		st = handler__reason(out, mark, HANDLER_FAIL, "result out of range");
		goto end;
	}
	char num[ARITH_FORMAT_MAX];
	size_t n = arith_format(v, num, sizeof num);
	st = buf_append(out, num, n) ? handler__reason(out, mark, HANDLER_RETRY, "out of memory") : HANDLER_OK;
end:
	cJSON_Delete(root);
	return st;
}

/* ---- proc: one task at a time (handler_run) ---- */

struct one {
	struct buf *out;
	size_t mark;
	enum handler_status st;
	int answered;
};

static void one_begin(void *ctx, size_t i)
{
	(void)ctx;
	(void)i;
}

static void one_done(void *ctx, size_t i, const struct handler_reply *r)
{
	struct one *o = ctx;
	(void)i;
	o->answered = 1;
	o->st = r->status;
	if (buf_append(o->out, r->text, r->len))
		o->st = handler__reason(o->out, o->mark, HANDLER_RETRY, "out of memory");
}

/* A batch of one, after the child's restart delay if it is in one. */
static enum handler_status run_one(struct handler *h, const void *payload, size_t len,
				   struct buf *out)
{
	struct one o = {.out = out, .mark = out->len};
	struct handler_batch_ops ops = {one_begin, one_done, &o};
	int ms;
	while ((ms = proc_prepare(h->proc)) > 0)
		sleep_ms(ms);
	struct handler_task t = {.id = ++h->seq, .attempt = 1, .payload = payload, .len = len};
	int r = proc_run(h->proc, &t, 1, &ops);
	if (!o.answered)
		return handler__reason(out, o.mark, HANDLER_RETRY, "handler process: %s",
				       r == -EAGAIN ? "not running" : strerror(-r));
	return o.st;
}

enum handler_status handler_run(struct handler *h, const void *payload, size_t len,
				struct buf *out)
{
	switch (h->kind) {
	case KIND_NOOP:
		return HANDLER_OK;
	case KIND_ARITH:
		return run_arith(payload, len, out);
	case KIND_JSON:
		return run_json(payload, len, out);
	case KIND_EXEC:
		return exec_run(&h->exec, payload, len, out);
	case KIND_PROC:
		return run_one(h, payload, len, out);
	}
	return HANDLER_FAIL; /* not reached: every kind is handled above */
}

int handler_run_batch(struct handler *h, const struct handler_task *tasks, size_t n,
		      const struct handler_batch_ops *ops)
{
	if (h->kind == KIND_PROC)
		return proc_run(h->proc, tasks, n, ops);
	for (size_t i = 0; i < n; i++) {
		ops->begin(ops->ctx, i);
		uint64_t start = clock_mono_ns();
		buf_reset(&h->out);
		struct handler_reply r = {.status = handler_run(h, tasks[i].payload, tasks[i].len,
								&h->out)};
		r.run_ns = clock_mono_ns() - start;
		r.text = h->out.len ? h->out.data : "";
		r.len = h->out.len;
		ops->done(ops->ctx, i, &r);
	}
	return (int)n;
}
