/* expo.c — Prometheus text exposition of a metrics snapshot. */
#include "expo.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A writer with a sticky error, so the families below read as a list. */
struct out {
	struct buf *b;
	int err;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	if (o->err)
		return;
	va_start(ap, fmt);
	o->err = buf_vprintf(o->b, fmt, ap);
	va_end(ap);
}

/* Label values: backslash, double quote and line feed are escaped. */
static void put_label_value(struct out *o, const char *s)
{
	for (; *s && !o->err; s++) {
		switch (*s) {
		case '\\': o->err = buf_puts(o->b, "\\\\"); break;
		case '"': o->err = buf_puts(o->b, "\\\""); break;
		case '\n': o->err = buf_puts(o->b, "\\n"); break;
		default: o->err = buf_putc(o->b, *s);
		}
	}
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct out *o, const char *name, const char *help, uint64_t v)
{
	family(o, name, "counter", help);
	put(o, "%s %" PRIu64 "\n", name, v);
}

static void gauge(struct out *o, const char *name, const char *help, uint64_t v)
{
	family(o, name, "gauge", help);
	put(o, "%s %" PRIu64 "\n", name, v);
}

void expo_format_double(char *out, size_t size, double d)
{
	if (isnan(d)) {
		snprintf(out, size, "NaN");
		return;
	}
	if (isinf(d)) {
		snprintf(out, size, d > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (fabs(d) < 1e15 && d == (double)(long long)d) {
		snprintf(out, size, "%lld", (long long)d); /* 40, not 4e+01 */
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, size, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			return;
	}
}

static void double_of(struct out *o, const char *type, const char *name, const char *help, double v)
{
	char num[40];
	expo_format_double(num, sizeof num, v);
	family(o, name, type, help);
	put(o, "%s %s\n", name, num);
}

static void gauge_double(struct out *o, const char *name, const char *help, double v)
{
	double_of(o, "gauge", name, help, v);
}

/* The queue label: the snapshot's name, "default" when it has none. */
static const char *queue_name(const struct metrics_snapshot *s)
{
	size_t n = strnlen(s->queue, sizeof s->queue);
	return n && n < sizeof s->queue ? s->queue : "default";
}

static const char *const prio_names[METRICS_NPRIO] = {"high", "normal", "low"};
static const char *const state_names[METRICS_WORKER_NSTATES] = {"starting", "running", "backoff",
								"stopped"};

static void by_prio(struct out *o, const char *name, const char *type, const char *help,
		    const uint64_t v[METRICS_NPRIO])
{
	family(o, name, type, help);
	for (int i = 0; i < METRICS_NPRIO; i++)
		put(o, "%s{priority=\"%s\"} %" PRIu64 "\n", name, prio_names[i], v[i]);
}

/* expo_format_double(2^k / 1e9) for k = EXPO_LE_MIN_K..EXPO_LE_MAX_K, written
 * out: finding the shortest form costs up to 17 snprintf/strtod rounds per
 * bound, most of a scrape's time when done on every request. */
static const char *const le_text[] = {
	"2.56e-07",    "5.12e-07",    "1.024e-06",    "2.048e-06",    "4.096e-06",
	"8.192e-06",   "1.6384e-05",  "3.2768e-05",   "6.5536e-05",   "0.000131072",
	"0.000262144", "0.000524288", "0.001048576",  "0.002097152",  "0.004194304",
	"0.008388608", "0.016777216", "0.033554432",  "0.067108864",  "0.134217728",
	"0.268435456", "0.536870912", "1.073741824",  "2.147483648",  "4.294967296",
	"8.589934592", "17.179869184", "34.359738368", "68.719476736",
};
_Static_assert(sizeof le_text / sizeof le_text[0] == EXPO_LE_MAX_K - EXPO_LE_MIN_K + 1,
	       "one text per finite bound");

static void histogram(struct out *o, const char *name, const char *help, const struct metrics_hist *h)
{
	char sum[40];
	uint64_t cum = 0;
	int k = 0;

	family(o, name, "histogram", help);
	for (int top = EXPO_LE_MIN_K; top <= EXPO_LE_MAX_K; top++) {
		for (; k <= top; k++)
			cum += h->buckets[k];
		put(o, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le_text[top - EXPO_LE_MIN_K], cum);
	}
	/* A snapshot read while tasks finish may have count and buckets a step
	 * apart: +Inf and _count must agree and never fall below a bucket. */
	for (; k < METRICS_HIST_BUCKETS; k++)
		cum += h->buckets[k];
	if (h->count > cum)
		cum = h->count;
	put(o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	expo_format_double(sum, sizeof sum, (double)h->sum_ns / 1e9);
	put(o, "%s_sum %s\n%s_count %" PRIu64 "\n", name, sum, name, cum);
}

/* A field of a TCP command row: which = 0 the count, 1 bytes in, 2 bytes out.
 * Rows of one name are added into one series. */
static uint64_t cmd_field(const struct metrics_tcp_command *c, int which)
{
	return which == 0 ? c->count : which == 1 ? c->bytes_in : c->bytes_out;
}

static void tcp_command_rows(struct out *o, const struct metrics_snapshot *s, int which)
{
	uint32_t n = s->n_tcp_commands < METRICS_MAX_TCP_COMMANDS ? s->n_tcp_commands
								  : METRICS_MAX_TCP_COMMANDS;
	for (uint32_t i = 0; i < n; i++) {
		const struct metrics_tcp_command *c = &s->tcp_commands[i];
		size_t len = strnlen(c->name, sizeof c->name);
		uint64_t sum = cmd_field(c, which);
		uint32_t j;
		if (len == 0 || len == sizeof c->name)
			continue; /* empty or unterminated: not a label value */
		for (j = 0; j < i; j++)
			if (strncmp(s->tcp_commands[j].name, c->name, sizeof c->name) == 0)
				break;
		if (j < i)
			continue; /* already written, with this row added in */
		for (j = i + 1; j < n; j++)
			if (strncmp(s->tcp_commands[j].name, c->name, sizeof c->name) == 0)
				sum += cmd_field(&s->tcp_commands[j], which);
		if (which)
			put(o, "forq_tcp_command_bytes_total{command=\"");
		else
			put(o, "forq_tcp_commands_total{command=\"");
		put_label_value(o, c->name);
		if (which)
			put(o, "\",direction=\"%s\"} %" PRIu64 "\n", which == 1 ? "in" : "out", sum);
		else
			put(o, "\"} %" PRIu64 "\n", sum);
	}
}

static void tcp_commands(struct out *o, const struct metrics_snapshot *s)
{
	family(o, "forq_tcp_commands_total", "counter", "Commands received from remote workers.");
	tcp_command_rows(o, s, 0);
	family(o, "forq_tcp_command_bytes_total", "counter",
	       "TCP protocol bytes by command: requests in, replies out.");
	tcp_command_rows(o, s, 1);
	tcp_command_rows(o, s, 2);
}

static void http_codes(struct out *o, const struct metrics_snapshot *s)
{
	uint32_t n = s->n_http < METRICS_MAX_HTTP_CODES ? s->n_http : METRICS_MAX_HTTP_CODES;
	family(o, "forq_http_requests_total", "counter", "HTTP responses sent, by status code.");
	for (uint32_t i = 0; i < n; i++) {
		uint64_t sum = s->http[i].count;
		uint32_t j;
		for (j = 0; j < i; j++)
			if (s->http[j].code == s->http[i].code)
				break;
		if (j < i)
			continue;
		for (j = i + 1; j < n; j++)
			if (s->http[j].code == s->http[i].code)
				sum += s->http[j].count;
		put(o, "forq_http_requests_total{code=\"%u\"} %" PRIu64 "\n", s->http[i].code, sum);
	}
}

static void process(struct out *o, const struct procstat *p)
{
	char num[40];
	expo_format_double(num, sizeof num, p->cpu_seconds);
	family(o, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
	put(o, "process_cpu_seconds_total %s\n", num);
	gauge(o, "process_resident_memory_bytes", "Resident memory size in bytes.", p->resident_bytes);
	gauge(o, "process_virtual_memory_bytes", "Virtual memory size in bytes.", p->virtual_bytes);
	gauge(o, "process_open_fds", "Number of open file descriptors.", p->open_fds);
	gauge(o, "process_max_fds", "Maximum number of open file descriptors.", p->max_fds);
	gauge_double(o, "process_start_time_seconds",
		     "Start time of the process since unix epoch in seconds.", p->start_time);
}

int expo_write(struct buf *b, const struct metrics_snapshot *s, const struct procstat *p)
{
	struct out o = {b, 0};
	size_t len0 = b->len;
	uint64_t states[METRICS_WORKER_NSTATES] = {0};
	uint32_t nw = s->n_workers < METRICS_MAX_WORKERS ? s->n_workers : METRICS_MAX_WORKERS;

	by_prio(&o, "forq_tasks_pending", "gauge", "Tasks waiting in the queue, by priority.", s->pending);
	gauge(&o, "forq_tasks_in_progress", "Tasks held by consumers or leased to remote workers.",
	      s->in_progress);
	by_prio(&o, "forq_tasks_enqueued_total", "counter", "Tasks enqueued, by priority.", s->enqueued);
	by_prio(&o, "forq_tasks_started_total", "counter",
		"Deliveries handed to a handler (local or remote), by priority.", s->started);
	by_prio(&o, "forq_tasks_done_total", "counter", "Tasks finished ok, by priority.", s->done);
	by_prio(&o, "forq_tasks_failed_total", "counter",
		"Tasks finished with a permanent error, by priority.", s->failed);
	counter(&o, "forq_tasks_dead_total", "Tasks whose attempts ran out, moved to dead letters.",
		s->dead);
	counter(&o, "forq_tasks_retried_total",
		"Deliveries given back to be tried again (transient failure, crash, lease expiry).",
		s->retried);
	counter(&o, "forq_task_crashes_total", "Deliveries whose consumer process died.", s->crashes);
	counter(&o, "forq_tasks_requeued_total",
		"Tasks given back to the queue by repair (crashed consumer, expired lease, recovery).",
		s->requeued);
	gauge(&o, "forq_retry_waiting", "Tasks waiting for their retry backoff.", s->retry_waiting);
	gauge(&o, "forq_tasks_scheduled", "Tasks pushed with a delay that has not run out yet.",
	      s->scheduled);
	gauge(&o, "forq_dead_letters", "Tasks in the dead-letter list now.", s->dead_letters);
	gauge_double(&o, "forq_throughput_tasks_per_second",
		     "Tasks finished (done, failed or dead) per second over the last second.",
		     s->throughput);
	histogram(&o, "forq_task_wait_seconds", "Time from enqueue to the start of a delivery.",
		  &s->wait);
	histogram(&o, "forq_task_run_seconds", "Handler run time of a delivery.", &s->run);
	gauge(&o, "forq_queue_capacity", "Tasks per priority lane.", s->capacity);
	gauge(&o, "forq_shm_bytes",
	      "Memory the queue's shared-memory object holds now (sparse queues: what is queued).",
	      s->shm_bytes);
	family(&o, "forq_queue_paused", "gauge",
	       "1 while the queue is paused: consumers and remote workers take no task from it.");
	put(&o, "forq_queue_paused{queue=\"");
	put_label_value(&o, queue_name(s));
	put(&o, "\"} %d\n", s->paused ? 1 : 0);
	family(&o, "forq_tasks_purged_total", "counter",
	       "Tasks dropped unrun by a purge of the queue (each has a purged result record).");
	put(&o, "forq_tasks_purged_total{queue=\"");
	put_label_value(&o, queue_name(s));
	put(&o, "\"} %" PRIu64 "\n", s->purged);
	family(&o, "forq_tasks_cancelled_total", "counter",
	       "Queued tasks cancelled unrun (each has a cancelled result record).");
	put(&o, "forq_tasks_cancelled_total{queue=\"");
	put_label_value(&o, queue_name(s));
	put(&o, "\"} %" PRIu64 "\n", s->cancelled);
	counter(&o, "forq_queue_full_waits_total", "Pushes that found the queue full and had to wait.",
		s->full_waits);
	gauge_double(&o, "forq_queue_rate_limit",
		     "Task starts allowed per second (--rate), 0 when there is no limit.",
		     s->rate_limit);
	double_of(&o, "counter", "forq_queue_rate_limited_seconds_total",
		  "Time consumers waited for the start rate limit, in seconds (summed over consumers).",
		  (double)s->rate_wait_ns / 1e9);

	counter(&o, "forq_journal_bytes_total", "Bytes written to the journal (--journal).",
		s->journal_bytes);
	counter(&o, "forq_journal_fsyncs_total", "fdatasync calls on the journal.", s->journal_fsyncs);
	counter(&o, "forq_journal_write_errors_total",
		"Journal writes that failed (full disk, I/O error); the tasks wait and are written "
		"again.",
		s->journal_write_errors);
	gauge(&o, "forq_journal_pending",
	      "Tasks pushed and not yet in the journal (consumers cannot take them yet).",
	      s->journal_pending);
	gauge(&o, "forq_journal_segments", "Journal segment files now.", s->journal_segments);

	gauge(&o, "forq_upstream_connected",
	      "1 while forqd is connected to its NATS JetStream upstream (--upstream), else 0.",
	      (uint64_t)s->upstream_connected);
	gauge(&o, "forq_upstream_held", "Tasks fetched from the stream and not yet ended.",
	      s->upstream_held);
	counter(&o, "forq_upstream_fetched_total", "Tasks fetched from the stream into the queue.",
		s->upstream_fetched);
	counter(&o, "forq_upstream_acked_total", "Stream messages acknowledged: their task is done.",
		s->upstream_acked);
	counter(&o, "forq_upstream_naked_total",
		"Stream messages given back for another delivery (the queue could not take them, or "
		"forqd stopped).",
		s->upstream_naked);
	counter(&o, "forq_upstream_terminated_total",
		"Stream messages terminated: their task failed for good or is dead.",
		s->upstream_terminated);
	counter(&o, "forq_upstream_reconnects_total", "Reconnections to NATS.",
		s->upstream_reconnects);
	counter(&o, "forq_upstream_publish_errors_total",
		"Publishes to the stream that JetStream did not acknowledge.",
		s->upstream_publish_errors);

	for (uint32_t i = 0; i < nw; i++)
		if (s->workers[i].state < METRICS_WORKER_NSTATES)
			states[s->workers[i].state]++;
	family(&o, "forq_workers", "gauge", "Local consumer processes, by state.");
	for (int i = 0; i < METRICS_WORKER_NSTATES; i++)
		put(&o, "forq_workers{state=\"%s\"} %" PRIu64 "\n", state_names[i], states[i]);
	counter(&o, "forq_worker_restarts_total", "Local consumer processes restarted.",
		s->worker_restarts);
	gauge(&o, "forq_results_write_blocked",
	      "Consumers holding results they cannot write now (full disk, file size limit, I/O "
	      "error); they take no tasks until written.",
	      s->results_blocked);
	gauge(&o, "forq_draining", "1 while forqd drains for shutdown.", s->draining ? 1 : 0);
	gauge(&o, "forq_stalled",
	      "1 while tasks wait and none has finished for --stall-timeout (a stopped or stuck "
	      "consumer): /readyz fails.",
	      s->stalled ? 1 : 0);
	gauge(&o, "forq_workers_stuck",
	      "Local consumers running one task longer than --stall-timeout.", s->workers_stuck);
	http_codes(&o, s);

	gauge(&o, "forq_remote_workers_connected", "Remote workers connected now.", s->remote_workers);
	gauge(&o, "forq_leases_outstanding", "Tasks leased to remote workers now.",
	      s->leases_outstanding);
	counter(&o, "forq_lease_expired_total", "Leases that expired before a result came back.",
		s->lease_expired);
	tcp_commands(&o, s);
	family(&o, "forq_tcp_bytes_total", "counter", "Bytes on remote-worker connections.");
	put(&o, "forq_tcp_bytes_total{direction=\"in\"} %" PRIu64 "\n", s->tcp_bytes_in);
	put(&o, "forq_tcp_bytes_total{direction=\"out\"} %" PRIu64 "\n", s->tcp_bytes_out);
	counter(&o, "forq_tcp_connections_total", "Remote-worker connections accepted.",
		s->tcp_connections);
	counter(&o, "forq_tcp_connections_refused_total",
		"TCP connections refused at --tcp-max-conns.", s->tcp_refused);

	family(&o, "forq_build_info", "gauge", "Always 1; the version label says which forqd runs.");
	put(&o, "forq_build_info{version=\"");
	put_label_value(&o, strnlen(s->version, sizeof s->version) < sizeof s->version ? s->version
										: "");
	put(&o, "\"} 1\n");
	gauge_double(&o, "forq_start_time_seconds", "Unix time forqd started, in seconds.",
		     s->start_time);
	if (p)
		process(&o, p);

	if (o.err) {
		b->len = len0;
		if (b->cap)
			b->data[len0] = '\0';
	}
	return o.err;
}

double hist_quantile(const uint64_t b[METRICS_HIST_BUCKETS], double q)
{
	uint64_t total = 0, cum = 0;
	int k;

	for (k = 0; k < METRICS_HIST_BUCKETS; k++)
		total += b[k];
	if (total == 0)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	double rank = q * (double)total;
	for (k = 0; k < METRICS_HIST_BUCKETS; k++) {
		if (b[k] && (double)(cum + b[k]) >= rank)
			break;
		cum += b[k];
	}
	if (k >= METRICS_HIST_BUCKETS - 1) /* open-ended: no upper bound to aim at */
		return ldexp(1.0, METRICS_HIST_BUCKETS - 2);
	double lo = k == 0 ? 0 : ldexp(1.0, k - 1);
	double hi = ldexp(1.0, k);
	return lo + (hi - lo) * ((rank - (double)cum) / (double)b[k]);
}
