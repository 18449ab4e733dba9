/* json.c — the stats encoder and error bodies, with cJSON (see json.h). */
#include "json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
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

/* "lanes": {"high": {["pending":..,]"enqueued":..,"started":..,"done":..,"failed":..}, ...} */
static void add_lanes(cJSON *o, const char *name, const struct metrics_snapshot *s, int pending,
		      int *bad)
{
	cJSON *lanes = add_obj(o, name, bad);
	for (int i = 0; lanes && i < METRICS_NPRIO; i++) {
		cJSON *l = add_obj(lanes, prio_names[i], bad);
		if (!l)
			return;
		if (pending)
			add_u64(l, "pending", s->pending[i], bad);
		add_u64(l, "enqueued", s->enqueued[i], bad);
		add_u64(l, "started", s->started[i], bad);
		add_u64(l, "done", s->done[i], bad);
		add_u64(l, "failed", s->failed[i], bad);
	}
}

static void add_prio(cJSON *o, const char *name, const uint64_t v[METRICS_NPRIO], int total_too,
		     int *bad)
{
	cJSON *c = add_obj(o, name, bad);
	uint64_t total = 0;
	if (!c)
		return;
	for (int i = 0; i < METRICS_NPRIO; i++) {
		add_u64(c, prio_names[i], v[i], bad);
		total += v[i];
	}
	if (total_too)
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

static void add_workers(cJSON *root, const char *name, const struct metrics_snapshot *s, int *bad)
{
	uint32_t n = s->n_workers < FORQ_MAX_WORKERS ? s->n_workers : FORQ_MAX_WORKERS;
	cJSON *arr = cJSON_AddArrayToObject(root, name);
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

/* ---- the table: one row a figure, its name on each surface ---- */

enum kind {
	K_U64,       /* uint64_t at off */
	K_SUM,       /* uint64_t[METRICS_NPRIO] at off: the sum */
	K_PRIO,      /* uint64_t[METRICS_NPRIO] at off: {"high":..,"normal":..,"low":..} */
	K_PRIO_TOTAL, /* the same and "total" */
	K_LANES,     /* {"high":{"pending":..,"enqueued":..,"started":..,"done":..,"failed":..},...} */
	K_LANES_COUNTERS, /* the same without "pending" */
	K_NUM,       /* double at off */
	K_BOOL,      /* int at off */
	K_VERSION,   /* the version text */
	K_UPTIME,    /* now - start_time */
	K_HIST,      /* struct metrics_hist at off: p50, p95, p99 (us), count */
	K_WORKERS,   /* the local consumers' rows */
	K_HTTP_CODES, /* {"200":..,...} */
	K_PROCESS,   /* the procstat, when given */
	K_OPEN,      /* an object: the rows up to K_CLOSE go in it */
	K_CLOSE,
};

struct field {
	enum kind kind;
	size_t off; /* offsetof(struct metrics_snapshot, ...) */
	const char *name[JSON_NSURFACES]; /* HTTP, CLI, TCP, a queue of /stats; NULL: not
					    * shown there */
};

#define S(m) offsetof(struct metrics_snapshot, m)

static const struct field fields[] = {
	/*kind            figure                  GET /stats            forq stats --json TCP STATS         in "queues" */
	{K_VERSION,       0,                     {"version",            NULL,             NULL,             NULL}},
	{K_NUM,           S(start_time),         {"start_time",         NULL,             NULL,             NULL}},
	{K_UPTIME,        0,                     {"uptime_seconds",     NULL,             NULL,             NULL}},
	{K_BOOL,          S(draining),           {"draining",           NULL,             NULL,             NULL}},
	{K_BOOL,          S(stalled),            {"stalled",            NULL,             NULL,             "stalled"}},
	{K_U64,           S(workers_stuck),      {"workers_stuck",      NULL,             NULL,             "workers_stuck"}},
	{K_U64,           S(capacity),           {"capacity",           "capacity",       "capacity",       "capacity"}},
	{K_U64,           S(max_payload),        {"max_payload",        "max_payload",    "max_payload",    "max_payload"}},
	{K_U64,           S(shm_bytes),          {"shm_bytes",          NULL,             NULL,             "shm_bytes"}},
	{K_NUM,           S(rate_limit),         {"rate_limit",         NULL,             NULL,             "rate_limit"}},
	{K_PRIO_TOTAL,    S(pending),            {"pending",            NULL,             NULL,             "pending"}},
	{K_PRIO,          S(pending),            {NULL,                 "pending",        NULL,             NULL}},
	{K_SUM,           S(pending),            {NULL,                 "pending_total",  "pending",        NULL}},
	{K_U64,           S(pending[0]),         {NULL,                 NULL,             "pending_high",   NULL}},
	{K_U64,           S(pending[1]),         {NULL,                 NULL,             "pending_normal", NULL}},
	{K_U64,           S(pending[2]),         {NULL,                 NULL,             "pending_low",    NULL}},
	{K_U64,           S(in_progress),        {"in_progress",        "in_progress",    "in_progress",    "in_progress"}},
	{K_PRIO_TOTAL,    S(enqueued),           {"enqueued",           NULL,             NULL,             "enqueued"}},
	{K_SUM,           S(enqueued),           {NULL,                 "enqueued",       "enqueued",       NULL}},
	{K_SUM,           S(started),            {"started",            "started",        NULL,             "started"}},
	{K_SUM,           S(done),               {"done",               "done",           "done",           "done"}},
	{K_SUM,           S(failed),             {"failed",             "failed",         "failed",         "failed"}},
	{K_U64,           S(dead),               {"dead",               "dead",           "dead",           "dead"}},
	{K_LANES,         0,                     {"lanes",              NULL,             NULL,             "lanes"}},
	{K_LANES_COUNTERS,0,                     {NULL,                 "lanes",          NULL,             NULL}},
	{K_U64,           S(retried),            {"retried",            "retried",        "retried",        "retried"}},
	{K_U64,           S(crashes),            {"crashes",            "crashes",        NULL,             "crashes"}},
	{K_U64,           S(requeued),           {"requeued",           "requeued",       NULL,             "requeued"}},
	{K_U64,           S(retry_waiting),      {"retry_waiting",      "retry_waiting",  "retry_waiting",  "retry_waiting"}},
	{K_U64,           S(scheduled),          {"scheduled",          "scheduled",      "scheduled",      "scheduled"}},
	{K_U64,           S(dead_letters),       {"dead_letters",       "dead_letters",   "dead_letters",   "dead_letters"}},
	{K_U64,           S(full_waits),         {"queue_full_waits",   NULL,             NULL,             "queue_full_waits"}},
	{K_NUM,           S(throughput),         {"throughput",         NULL,             NULL,             "throughput"}},
	{K_HIST,          S(wait),               {"wait_us",            NULL,             NULL,             "wait_us"}},
	{K_HIST,          S(run),                {"run_us",             NULL,             NULL,             "run_us"}},
	{K_WORKERS,       0,                     {"workers",            NULL,             NULL,             "workers"}},
	{K_U64,           S(worker_restarts),    {"worker_restarts",    NULL,             NULL,             "worker_restarts"}},
	{K_BOOL,          S(accepting),          {NULL,                 "accepting",      "accepting",      NULL}},
	{K_BOOL,          S(paused),             {"paused",             "paused",         "paused",         "paused"}},
	{K_U64,           S(purged),             {"purged",             "purged",         "purged",         "purged"}},
	{K_U64,           S(cancelled),          {"cancelled",          "cancelled",      "cancelled",      "cancelled"}},
	{K_OPEN,          0,                     {"remote",             NULL,             NULL,             NULL}},
	{K_U64,           S(remote_workers),     {"workers_connected",  NULL,             NULL,             NULL}},
	{K_U64,           S(leases_outstanding), {"leases_outstanding", NULL,             NULL,             NULL}},
	{K_U64,           S(lease_expired),      {"lease_expired",      NULL,             NULL,             NULL}},
	{K_U64,           S(tcp_connections),    {"connections",        NULL,             NULL,             NULL}},
	{K_U64,           S(tcp_refused),        {"connections_refused",NULL,             NULL,             NULL}},
	{K_U64,           S(tcp_bytes_in),       {"bytes_in",           NULL,             NULL,             NULL}},
	{K_U64,           S(tcp_bytes_out),      {"bytes_out",          NULL,             NULL,             NULL}},
	{K_CLOSE,         0,                     {"remote",             NULL,             NULL,             NULL}},
	{K_U64,           S(tcp_open),           {NULL,                 NULL,             "connections",    NULL}},
	{K_U64,           S(remote_workers),     {NULL,                 NULL,             "remote_workers", NULL}},
	{K_U64,           S(leases_outstanding), {NULL,                 NULL,             "leases",         NULL}},
	{K_U64,           S(lease_timeout_ms),   {NULL,                 NULL,             "lease_timeout_ms",NULL}},
	{K_HTTP_CODES,    0,                     {"http_requests",      NULL,             NULL,             NULL}},
	{K_PROCESS,       0,                     {"process",            NULL,             NULL,             NULL}},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static uint64_t u64_at(const struct metrics_snapshot *s, size_t off)
{
	uint64_t v;
	memcpy(&v, (const char *)s + off, sizeof v);
	return v;
}

static const uint64_t *prio_at(const struct metrics_snapshot *s, size_t off)
{
	return (const uint64_t *)(const void *)((const char *)s + off);
}

static void add_http_codes(cJSON *o, const char *name, const struct metrics_snapshot *s, int *bad)
{
	cJSON *c = add_obj(o, name, bad);
	uint32_t n = s->n_http < METRICS_MAX_HTTP_CODES ? s->n_http : METRICS_MAX_HTTP_CODES;
	char code[8];
	for (uint32_t i = 0; c && i < n; i++) {
		snprintf(code, sizeof code, "%u", s->http[i].code);
		if (!cJSON_GetObjectItemCaseSensitive(c, code))
			add_u64(c, code, s->http[i].count, bad);
	}
}

static void add_process(cJSON *o, const char *name, const struct procstat *p, int *bad)
{
	cJSON *c;
	if (!p || !(c = add_obj(o, name, bad)))
		return;
	add_num(c, "cpu_seconds", p->cpu_seconds, bad);
	add_u64(c, "resident_bytes", p->resident_bytes, bad);
	add_u64(c, "virtual_bytes", p->virtual_bytes, bad);
	add_u64(c, "open_fds", p->open_fds, bad);
	add_u64(c, "max_fds", p->max_fds, bad);
	add_num(c, "start_time", p->start_time, bad);
}

/* Adds row f under name to o. Returns the object K_OPEN made, else o. */
static cJSON *add_field(cJSON *o, const struct field *f, const char *name,
			const struct metrics_snapshot *s, const struct procstat *p, double now,
			int *bad)
{
	switch (f->kind) {
	case K_U64: add_u64(o, name, u64_at(s, f->off), bad); break;
	case K_SUM: add_u64(o, name, sum_prio(prio_at(s, f->off)), bad); break;
	case K_PRIO: add_prio(o, name, prio_at(s, f->off), 0, bad); break;
	case K_PRIO_TOTAL: add_prio(o, name, prio_at(s, f->off), 1, bad); break;
	case K_LANES: add_lanes(o, name, s, 1, bad); break;
	case K_LANES_COUNTERS: add_lanes(o, name, s, 0, bad); break;
	case K_NUM: {
		double d;
		memcpy(&d, (const char *)s + f->off, sizeof d);
		add_num(o, name, d, bad);
		break;
	}
	case K_BOOL: {
		int v;
		memcpy(&v, (const char *)s + f->off, sizeof v);
		if (!cJSON_AddBoolToObject(o, name, v != 0))
			*bad = 1;
		break;
	}
	case K_VERSION:
		if (!cJSON_AddStringToObject(o, name, strnlen(s->version, sizeof s->version) <
								 sizeof s->version
							 ? s->version
							 : ""))
			*bad = 1;
		break;
	case K_UPTIME:
		add_num(o, name, s->start_time > 0 && now > s->start_time ? now - s->start_time : 0,
			bad);
		break;
	case K_HIST: add_hist(o, name, (const void *)((const char *)s + f->off), bad); break;
	case K_WORKERS: add_workers(o, name, s, bad); break;
	case K_HTTP_CODES: add_http_codes(o, name, s, bad); break;
	case K_PROCESS: add_process(o, name, p, bad); break;
	case K_OPEN: return add_obj(o, name, bad);
	case K_CLOSE: break;
	}
	return o;
}

/* Adds surface as's rows for s to root. Returns 0, or 1 when cJSON ran out
 * of memory. */
static int add_rows(cJSON *root, enum json_surface as, const struct metrics_snapshot *s,
		    const struct procstat *p, double now)
{
	int bad = 0;
	cJSON *o = root;
	for (size_t i = 0; i < NFIELDS && !bad; i++) {
		const struct field *f = &fields[i];
		const char *name = f->name[as];
		if (f->kind == K_CLOSE) {
			o = root;
			continue;
		}
		if (!name) {
			/* An object this surface does not show: skip what is in it. */
			if (f->kind == K_OPEN)
				while (i + 1 < NFIELDS && fields[i + 1].kind != K_CLOSE)
					i++;
			continue;
		}
		cJSON *in = add_field(o, f, name, s, p, now, &bad);
		if (f->kind == K_OPEN && in)
			o = in;
	}
	return bad;
}

static int stats_of(struct buf *b, enum json_surface as, const struct metrics_snapshot *s,
		    size_t n, const struct procstat *p, double now)
{
	int bad, r;
	cJSON *root, *queues;

	if ((unsigned)as >= JSON_NSURFACES)
		return -EINVAL;
	if (!(root = cJSON_CreateObject()))
		return -ENOMEM;
	bad = add_rows(root, as, s, p, now);
	if (n && !bad && (queues = add_obj(root, "queues", &bad)))
		for (size_t i = 0; i < n && !bad; i++) {
			cJSON *q = add_obj(queues, metrics_snapshot_name(&s[i]), &bad);
			if (q)
				bad = add_rows(q, JSON_QUEUE, &s[i], NULL, now);
		}
	r = bad ? -ENOMEM : print_into(b, root);
	cJSON_Delete(root);
	return r;
}

int json_stats(struct buf *b, enum json_surface as, const struct metrics_snapshot *s,
	       const struct procstat *p, double now)
{
	return stats_of(b, as, s, 0, p, now);
}

int json_stats_queues(struct buf *b, const struct metrics_snapshot *s, size_t n,
		      const struct procstat *p, double now)
{
	return n ? stats_of(b, JSON_HTTP, s, n, p, now) : -EINVAL;
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
