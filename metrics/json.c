/* json.c — JSON bodies with cJSON. */
#include "json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "expo.h"

static const char *const prio_names[METRICS_NPRIO] = {"high", "normal", "low"};
static const char *const state_names[METRICS_WORKER_NSTATES] = {"starting", "running", "backoff",
								"stopped"};

/* cJSON numbers are doubles: exact integers go in as raw text. Each adder
 * returns the new child or NULL; callers check the tree once at the end via
 * the sticky flag. */
static void add_u64(cJSON *o, const char *name, uint64_t v, int *bad)
{
	char num[24];
	snprintf(num, sizeof num, "%" PRIu64, v);
	if (!cJSON_AddRawToObject(o, name, num))
		*bad = 1;
}

static void add_num(cJSON *o, const char *name, double v, int *bad)
{
	if (!cJSON_AddNumberToObject(o, name, v))
		*bad = 1;
}

static cJSON *add_obj(cJSON *o, const char *name, int *bad)
{
	cJSON *c = cJSON_AddObjectToObject(o, name);
	if (!c)
		*bad = 1;
	return c;
}

static uint64_t sum_prio(const uint64_t v[METRICS_NPRIO])
{
	uint64_t n = 0;
	for (int i = 0; i < METRICS_NPRIO; i++)
		n += v[i];
	return n;
}

/* "lanes": {"high": {"enqueued":..,"started":..,"done":..,"failed":..}, ...} */
static void add_lanes(cJSON *o, const struct metrics_snapshot *s, int *bad)
{
	cJSON *lanes = add_obj(o, "lanes", bad);
	for (int i = 0; lanes && i < METRICS_NPRIO; i++) {
		cJSON *l = add_obj(lanes, prio_names[i], bad);
		if (!l)
			return;
		add_u64(l, "pending", s->pending[i], bad);
		add_u64(l, "enqueued", s->enqueued[i], bad);
		add_u64(l, "started", s->started[i], bad);
		add_u64(l, "done", s->done[i], bad);
		add_u64(l, "failed", s->failed[i], bad);
	}
}

static void add_prio(cJSON *o, const char *name, const uint64_t v[METRICS_NPRIO], int *bad)
{
	cJSON *c = add_obj(o, name, bad);
	uint64_t total = 0;
	if (!c)
		return;
	for (int i = 0; i < METRICS_NPRIO; i++) {
		add_u64(c, prio_names[i], v[i], bad);
		total += v[i];
	}
	add_u64(c, "total", total, bad);
}

static void add_hist(cJSON *o, const char *name, const struct metrics_hist *h, int *bad)
{
	static const struct {
		const char *name;
		double q;
	} qs[] = {{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}};
	cJSON *c = add_obj(o, name, bad);
	if (!c)
		return;
	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
		if (h->count == 0) {
			if (!cJSON_AddNullToObject(c, qs[i].name))
				*bad = 1;
			continue;
		}
		/* 0.001 us resolution is plenty and keeps the text short. */
		double us = hist_quantile(h->buckets, qs[i].q) / 1000.0;
		add_num(c, qs[i].name, (double)(int64_t)(us * 1000.0 + 0.5) / 1000.0, bad);
	}
	add_u64(c, "count", h->count, bad);
}

static void add_workers(cJSON *root, const struct metrics_snapshot *s, int *bad)
{
	uint32_t n = s->n_workers < METRICS_MAX_WORKERS ? s->n_workers : METRICS_MAX_WORKERS;
	cJSON *arr = cJSON_AddArrayToObject(root, "workers");
	if (!arr) {
		*bad = 1;
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct metrics_worker *w = &s->workers[i];
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			*bad = 1;
			return;
		}
		add_u64(o, "index", w->index, bad);
		add_num(o, "pid", w->pid, bad);
		if (!cJSON_AddStringToObject(o, "state", w->state < METRICS_WORKER_NSTATES
								 ? state_names[w->state]
								 : "unknown"))
			*bad = 1;
		add_u64(o, "done", w->tasks_done, bad);
		add_u64(o, "failed", w->tasks_failed, bad);
		add_u64(o, "restarts", w->restarts, bad);
		if (w->current_task)
			add_u64(o, "current_task", w->current_task, bad);
		else if (!cJSON_AddNullToObject(o, "current_task"))
			*bad = 1;
	}
}

static int print_into(struct buf *b, cJSON *root)
{
	char *text = cJSON_PrintUnformatted(root);
	int r;
	if (!text)
		return -ENOMEM;
	r = buf_puts(b, text);
	cJSON_free(text);
	return r;
}

int json_stats(struct buf *b, const struct metrics_snapshot *s, const struct procstat *p, double now)
{
	int bad = 0, r;
	cJSON *root = cJSON_CreateObject(), *c;
	char code[8];

	if (!root)
		return -ENOMEM;
	if (!cJSON_AddStringToObject(root, "version", strnlen(s->version, sizeof s->version) <
								  sizeof s->version
							  ? s->version
							  : ""))
		bad = 1;
	add_num(root, "start_time", s->start_time, &bad);
	add_num(root, "uptime_seconds", s->start_time > 0 && now > s->start_time ? now - s->start_time : 0,
		&bad);
	if (!cJSON_AddBoolToObject(root, "draining", s->draining != 0))
		bad = 1;
	add_u64(root, "capacity", s->capacity, &bad);
	add_u64(root, "max_payload", s->max_payload, &bad);
	add_prio(root, "pending", s->pending, &bad);
	add_u64(root, "in_progress", s->in_progress, &bad);
	add_prio(root, "enqueued", s->enqueued, &bad);
	add_u64(root, "started", sum_prio(s->started), &bad);
	add_u64(root, "done", sum_prio(s->done), &bad);
	add_u64(root, "failed", sum_prio(s->failed), &bad);
	add_u64(root, "dead", s->dead, &bad);
	add_lanes(root, s, &bad);
	add_u64(root, "retried", s->retried, &bad);
	add_u64(root, "crashes", s->crashes, &bad);
	add_u64(root, "requeued", s->requeued, &bad);
	add_u64(root, "retry_waiting", s->retry_waiting, &bad);
	add_u64(root, "dead_letters", s->dead_letters, &bad);
	add_u64(root, "queue_full_waits", s->full_waits, &bad);
	add_num(root, "throughput", s->throughput, &bad);
	add_hist(root, "wait_us", &s->wait, &bad);
	add_hist(root, "run_us", &s->run, &bad);
	add_workers(root, s, &bad);
	add_u64(root, "worker_restarts", s->worker_restarts, &bad);
	if ((c = add_obj(root, "remote", &bad))) {
		add_u64(c, "workers_connected", s->remote_workers, &bad);
		add_u64(c, "leases_outstanding", s->leases_outstanding, &bad);
		add_u64(c, "lease_expired", s->lease_expired, &bad);
		add_u64(c, "connections", s->tcp_connections, &bad);
		add_u64(c, "connections_refused", s->tcp_refused, &bad);
		add_u64(c, "bytes_in", s->tcp_bytes_in, &bad);
		add_u64(c, "bytes_out", s->tcp_bytes_out, &bad);
	}
	if ((c = add_obj(root, "http_requests", &bad))) {
		uint32_t n = s->n_http < METRICS_MAX_HTTP_CODES ? s->n_http : METRICS_MAX_HTTP_CODES;
		for (uint32_t i = 0; i < n; i++) {
			snprintf(code, sizeof code, "%u", s->http[i].code);
			if (!cJSON_GetObjectItemCaseSensitive(c, code))
				add_u64(c, code, s->http[i].count, &bad);
		}
	}
	if (p && (c = add_obj(root, "process", &bad))) {
		add_num(c, "cpu_seconds", p->cpu_seconds, &bad);
		add_u64(c, "resident_bytes", p->resident_bytes, &bad);
		add_u64(c, "virtual_bytes", p->virtual_bytes, &bad);
		add_u64(c, "open_fds", p->open_fds, &bad);
		add_u64(c, "max_fds", p->max_fds, &bad);
		add_num(c, "start_time", p->start_time, &bad);
	}
	r = bad ? -ENOMEM : print_into(b, root);
	cJSON_Delete(root);
	return r;
}

int json_error(struct buf *b, const char *msg)
{
	size_t len0 = b->len;
	int r = buf_puts(b, "{\"error\":\"");
	if (!r)
		r = buf_json_escape(b, msg, strlen(msg));
	if (!r)
		r = buf_puts(b, "\"}");
	if (r) {
		b->len = len0;
		if (b->cap)
			b->data[len0] = '\0';
	}
	return r;
}
