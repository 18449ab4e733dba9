/* expo.c — Prometheus text exposition of a metrics snapshot. */
#include "expo.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
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

static void gauge_double(struct out *o, const char *name, const char *help, double v)
{
	char num[40];
	expo_format_double(num, sizeof num, v);
	family(o, name, "gauge", help);
	put(o, "%s %s\n", name, num);
}

static const char *const prio_names[METRICS_NPRIO] = {"high", "normal", "low"};
static const char *const state_names[METRICS_WORKER_NSTATES] = {"starting", "running", "backoff",
								"stopped"};

/* Opens one queue's sample: `name{queue="NAME"`; the caller adds any other
 * labels, then `} value`. */
static void sample(struct out *o, const char *name, const char *suffix,
		   const struct metrics_snapshot *q)
{
	put(o, "%s%s{queue=\"", name, suffix);
	put_label_value(o, metrics_snapshot_name(q));
	put(o, "\"");
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

/* One queue's histogram lines (the family's HELP and TYPE are written). */
static void histogram(struct out *o, const char *name, const struct metrics_snapshot *q,
		      const struct metrics_hist *h)
{
	char sum[40];
	uint64_t cum = 0;
	int k = 0;

	for (int top = EXPO_LE_MIN_K; top <= EXPO_LE_MAX_K; top++) {
		for (; k <= top; k++)
			cum += h->buckets[k];
		sample(o, name, "_bucket", q);
		put(o, ",le=\"%s\"} %" PRIu64 "\n", le_text[top - EXPO_LE_MIN_K], cum);
	}
	/* A snapshot read while tasks finish may have count and buckets a step
	 * apart: +Inf and _count must agree and never fall below a bucket. */
	for (; k < METRICS_HIST_BUCKETS; k++)
		cum += h->buckets[k];
	if (h->count > cum)
		cum = h->count;
	sample(o, name, "_bucket", q);
	put(o, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
	expo_format_double(sum, sizeof sum, (double)h->sum_ns / 1e9);
	sample(o, name, "_sum", q);
	put(o, "} %s\n", sum);
	sample(o, name, "_count", q);
	put(o, "} %" PRIu64 "\n", cum);
}

/* ---- the per-queue families: one row each, one sample (set) per queue ---- */

enum qvalue {
	V_U64,     /* uint64_t at off */
	V_NUM,     /* double at off */
	V_FLAG,    /* int at off: 1 or 0 */
	V_SECONDS, /* uint64_t nanoseconds at off, in seconds */
	V_PRIO,    /* uint64_t[METRICS_NPRIO] at off, a priority label each */
	V_HIST,    /* struct metrics_hist at off */
	V_STATES,  /* the worker rows, counted by state */
};

struct qfamily {
	enum qvalue v;
	const char *type;
	const char *name;
	size_t off; /* offsetof(struct metrics_snapshot, ...) */
	const char *help;
};

#define Q(m) offsetof(struct metrics_snapshot, m)

static const struct qfamily queue_families[] = {
	{V_PRIO, "gauge", "forq_tasks_pending", Q(pending), "Tasks waiting in the queue, by priority."},
	{V_U64, "gauge", "forq_tasks_in_progress", Q(in_progress),
	 "Tasks held by consumers or leased to remote workers."},
	{V_PRIO, "counter", "forq_tasks_enqueued_total", Q(enqueued), "Tasks enqueued, by priority."},
	{V_PRIO, "counter", "forq_tasks_started_total", Q(started),
	 "Deliveries handed to a handler (local or remote), by priority."},
	{V_PRIO, "counter", "forq_tasks_done_total", Q(done), "Tasks finished ok, by priority."},
	{V_PRIO, "counter", "forq_tasks_failed_total", Q(failed),
	 "Tasks finished with a permanent error, by priority."},
	{V_U64, "counter", "forq_tasks_dead_total", Q(dead),
	 "Tasks whose attempts ran out, moved to dead letters."},
	{V_U64, "counter", "forq_tasks_retried_total", Q(retried),
	 "Deliveries given back to be tried again (transient failure, crash, lease expiry)."},
	{V_U64, "counter", "forq_task_crashes_total", Q(crashes),
	 "Deliveries whose consumer process died."},
	{V_U64, "counter", "forq_tasks_requeued_total", Q(requeued),
	 "Tasks given back to the queue by repair (crashed consumer, expired lease, recovery)."},
	{V_U64, "gauge", "forq_retry_waiting", Q(retry_waiting),
	 "Tasks waiting for their retry backoff."},
	{V_U64, "gauge", "forq_tasks_scheduled", Q(scheduled),
	 "Tasks pushed with a delay that has not run out yet."},
	{V_U64, "gauge", "forq_dead_letters", Q(dead_letters), "Tasks in the dead-letter list now."},
	{V_NUM, "gauge", "forq_throughput_tasks_per_second", Q(throughput),
	 "Tasks finished (done, failed or dead) per second over the last second."},
	{V_HIST, "histogram", "forq_task_wait_seconds", Q(wait),
	 "Time from enqueue to the start of a delivery."},
	{V_HIST, "histogram", "forq_task_run_seconds", Q(run), "Handler run time of a delivery."},
	{V_U64, "gauge", "forq_queue_capacity", Q(capacity), "Tasks per priority lane."},
	{V_U64, "gauge", "forq_queue_max_payload_bytes", Q(max_payload),
	 "Largest payload a task of the queue may have, in bytes (--max-payload)."},
	{V_U64, "gauge", "forq_shm_bytes", Q(shm_bytes),
	 "Memory the queue's shared-memory object holds now (sparse queues: what is queued)."},
	{V_FLAG, "gauge", "forq_queue_paused", Q(paused),
	 "1 while the queue is paused: consumers and remote workers take no task from it."},
	{V_U64, "counter", "forq_tasks_purged_total", Q(purged),
	 "Tasks dropped unrun by a purge of the queue (each has a purged result record)."},
	{V_U64, "counter", "forq_tasks_cancelled_total", Q(cancelled),
	 "Tasks cancelled: queued ones never run, running ones stopped (each has a cancelled "
	 "result record)."},
	{V_U64, "counter", "forq_queue_full_waits_total", Q(full_waits),
	 "Pushes that found the queue full and had to wait."},
	{V_NUM, "gauge", "forq_queue_rate_limit", Q(rate_limit),
	 "Task starts allowed per second (--rate), 0 when there is no limit."},
	{V_SECONDS, "counter", "forq_queue_rate_limited_seconds_total", Q(rate_wait_ns),
	 "Time consumers waited for the start rate limit, in seconds (summed over consumers)."},
	{V_U64, "counter", "forq_journal_bytes_total", Q(journal_bytes),
	 "Bytes written to the journal (--journal)."},
	{V_U64, "counter", "forq_journal_fsyncs_total", Q(journal_fsyncs),
	 "fdatasync calls on the journal."},
	{V_U64, "counter", "forq_journal_write_errors_total", Q(journal_write_errors),
	 "Journal writes that failed (full disk, I/O error); the tasks wait and are written again."},
	{V_U64, "gauge", "forq_journal_pending", Q(journal_pending),
	 "Tasks pushed and not yet in the journal (consumers cannot take them yet)."},
	{V_U64, "gauge", "forq_journal_segments", Q(journal_segments), "Journal segment files now."},
	{V_FLAG, "gauge", "forq_upstream_enabled", Q(upstream_enabled),
	 "1 when the queue is fed by a NATS JetStream stream (--upstream), else 0 (and every "
	 "other forq_upstream_* family 0)."},
	{V_FLAG, "gauge", "forq_upstream_connected", Q(upstream_connected),
	 "1 while the queue's NATS JetStream upstream (--upstream) is connected, else 0."},
	{V_U64, "gauge", "forq_upstream_held", Q(upstream_held),
	 "Tasks fetched from the stream and not yet ended."},
	{V_U64, "counter", "forq_upstream_fetched_total", Q(upstream_fetched),
	 "Tasks fetched from the stream into the queue."},
	{V_U64, "counter", "forq_upstream_acked_total", Q(upstream_acked),
	 "Stream messages acknowledged: their task is done."},
	{V_U64, "counter", "forq_upstream_naked_total", Q(upstream_naked),
	 "Stream messages given back for another delivery (a retry after its backoff, the queue "
	 "could not take them, or forqd stopped)."},
	{V_U64, "counter", "forq_upstream_terminated_total", Q(upstream_terminated),
	 "Stream messages terminated: their task failed for good or is dead."},
	{V_U64, "counter", "forq_upstream_reconnects_total", Q(upstream_reconnects),
	 "Reconnections to NATS."},
	{V_U64, "counter", "forq_upstream_publish_errors_total", Q(upstream_publish_errors),
	 "Publishes to the stream that JetStream did not acknowledge."},
	{V_U64, "gauge", "forq_upstream_stream_pending_tasks", Q(upstream_stream_pending),
	 "Tasks in the stream not yet delivered to any host (the shared consumer's pending "
	 "count, read every 2 s)."},
	{V_U64, "gauge", "forq_upstream_ack_pending_tasks", Q(upstream_ack_pending),
	 "Tasks delivered to some host and not yet acked, every host's (the shared consumer's "
	 "ack-pending count, read every 2 s)."},
	{V_STATES, "gauge", "forq_workers", 0, "Local consumer processes, by state."},
	{V_U64, "counter", "forq_worker_restarts_total", Q(worker_restarts),
	 "Local consumer processes restarted."},
	{V_U64, "gauge", "forq_results_write_blocked", Q(results_blocked),
	 "Consumers holding results they cannot write now (full disk, file size limit, I/O "
	 "error); they take no tasks until written."},
	{V_FLAG, "gauge", "forq_stalled", Q(stalled),
	 "1 while tasks wait and none has finished for --stall-timeout (a stopped or stuck "
	 "consumer): /readyz fails."},
	{V_U64, "gauge", "forq_workers_stuck", Q(workers_stuck),
	 "Local consumers running one task longer than --stall-timeout."},
	{V_U64, "counter", "forq_lease_expired_total", Q(lease_expired),
	 "Leases that expired before a result came back."},
};

static void worker_states(struct out *o, const char *name, const struct metrics_snapshot *q)
{
	uint64_t states[METRICS_WORKER_NSTATES] = {0};
	uint32_t nw = q->n_workers < FORQ_MAX_WORKERS ? q->n_workers : FORQ_MAX_WORKERS;
	for (uint32_t i = 0; i < nw; i++)
		if (q->workers[i].state < METRICS_WORKER_NSTATES)
			states[q->workers[i].state]++;
	for (int i = 0; i < METRICS_WORKER_NSTATES; i++) {
		sample(o, name, "", q);
		put(o, ",state=\"%s\"} %" PRIu64 "\n", state_names[i], states[i]);
	}
}

/* One queue's samples of family f. */
static void queue_samples(struct out *o, const struct qfamily *f, const struct metrics_snapshot *q)
{
	const char *at = (const char *)q + f->off;
	char num[40];
	uint64_t u;
	double d;
	int flag;

	switch (f->v) {
	case V_U64:
		memcpy(&u, at, sizeof u);
		sample(o, f->name, "", q);
		put(o, "} %" PRIu64 "\n", u);
		return;
	case V_NUM:
	case V_SECONDS:
		if (f->v == V_NUM) {
			memcpy(&d, at, sizeof d);
		} else {
			memcpy(&u, at, sizeof u);
			d = (double)u / 1e9;
		}
		expo_format_double(num, sizeof num, d);
		sample(o, f->name, "", q);
		put(o, "} %s\n", num);
		return;
	case V_FLAG:
		memcpy(&flag, at, sizeof flag);
		sample(o, f->name, "", q);
		put(o, "} %d\n", flag ? 1 : 0);
		return;
	case V_PRIO:
		for (int i = 0; i < METRICS_NPRIO; i++) {
			memcpy(&u, at + i * sizeof u, sizeof u);
			sample(o, f->name, "", q);
			put(o, ",priority=\"%s\"} %" PRIu64 "\n", prio_names[i], u);
		}
		return;
	case V_HIST: histogram(o, f->name, q, (const struct metrics_hist *)(const void *)at); return;
	case V_STATES: worker_states(o, f->name, q); return;
	}
}

/* Every per-queue family: HELP and TYPE once, then each queue's samples,
 * so that a family's samples stay together. */
static void queue_families_write(struct out *o, const struct metrics_snapshot *s, size_t n)
{
	for (size_t f = 0; f < sizeof queue_families / sizeof queue_families[0]; f++) {
		family(o, queue_families[f].name, queue_families[f].type, queue_families[f].help);
		for (size_t i = 0; i < n; i++)
			queue_samples(o, &queue_families[f], &s[i]);
	}
}

/* ---- the service's families (unlabelled by queue) ---- */

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

int expo_write(struct buf *b, const struct metrics_snapshot *s, size_t n, const struct procstat *p)
{
	struct out o = {b, 0};
	size_t len0 = b->len;

	if (n == 0)
		return -EINVAL;
	queue_families_write(&o, s, n);

	/* The service: s[0] carries it. */
	gauge(&o, "forq_draining", "1 while forqd drains for shutdown.", s->draining ? 1 : 0);
	http_codes(&o, s);
	gauge(&o, "forq_remote_workers_connected", "Remote workers connected now.", s->remote_workers);
	gauge(&o, "forq_leases_outstanding", "Tasks leased to remote workers now.",
	      s->leases_outstanding);
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
