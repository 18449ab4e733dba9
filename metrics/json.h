/* json.h — the one JSON encoder of stats, and JSON error bodies, with cJSON.
 *
 * One snapshot (snapshot.h), four surfaces. Each keeps the field names it
 * has always documented; one table in json.c says, row by row, which figure
 * each surface shows under which name. Counters are exact integers (written
 * as raw text, so values above 2^53 survive). Objects are unordered: clients
 * look fields up by name and ignore the ones they do not know.
 *
 * JSON_HTTP — GET /stats (README "HTTP API"; the status page reads it).
 * Latencies are percentiles in microseconds, null while a histogram is empty;
 * "process" only when a procstat is given:
 *   {"version":"0.1.0","start_time":1718000000.5,"uptime_seconds":12.5,
 *    "draining":false,"capacity":65536,"max_payload":1024,
 *    "pending":{"high":0,"normal":3,"low":0,"total":3},"in_progress":2,
 *    "enqueued":{"high":..,"normal":..,"low":..,"total":..},
 *    "started":..,"done":..,"failed":..,"dead":..,
 *    "lanes":{"high":{"pending":..,"enqueued":..,"started":..,"done":..,"failed":..},
 *             "normal":{...},"low":{...}},
 *    "retried":..,"crashes":..,"requeued":..,"retry_waiting":..,"dead_letters":..,
 *    "queue_full_waits":..,"throughput":12.5,
 *    "wait_us":{"p50":..,"p95":..,"p99":..,"count":..},"run_us":{...},
 *    "workers":[{"index":0,"pid":123,"state":"running","done":..,"failed":..,
 *                "restarts":0,"current_task":42 or null}],
 *    "worker_restarts":..,
 *    "remote":{"workers_connected":..,"leases_outstanding":..,"lease_expired":..,
 *              "connections":..,"connections_refused":..,"bytes_in":..,"bytes_out":..},
 *    "http_requests":{"200":..},
 *    "process":{"cpu_seconds":..,"resident_bytes":..,"virtual_bytes":..,"open_fds":..,
 *               "max_fds":..,"start_time":..},
 *    "queues":{"default":{...},"emails":{...}}}
 * The top-level queue figures are the first snapshot's (forqd's default
 * queue), as they were before forqd had named queues. "queues" (with
 * json_stats_queues) has one object per queue, keyed by its name, in the
 * snapshots' order, with the JSON_QUEUE names below.
 *
 * JSON_QUEUE — one queue's object in /stats's "queues": the per-queue
 * members of JSON_HTTP under the same names, and nothing of the service:
 *   {"stalled":false,"workers_stuck":0,"capacity":..,"max_payload":..,
 *    "shm_bytes":..,"rate_limit":0,"pending":{...,"total":..},"in_progress":..,
 *    "enqueued":{...},"started":..,"done":..,"failed":..,"dead":..,"lanes":{...},
 *    "retried":..,"crashes":..,"requeued":..,"retry_waiting":..,"scheduled":..,
 *    "dead_letters":..,"queue_full_waits":..,"throughput":..,"wait_us":{...},
 *    "run_us":{...},"workers":[...],"worker_restarts":..,"paused":false,
 *    "purged":..,"cancelled":..}
 *
 * JSON_CLI — `forq stats --json` (README "The forq tool"): the queue alone.
 *   {"capacity":..,"max_payload":..,"pending":{"high":..,"normal":..,"low":..},
 *    "pending_total":..,"in_progress":..,"enqueued":..,"started":..,"done":..,
 *    "failed":..,"dead":..,"lanes":{"high":{"enqueued":..,"started":..,"done":..,
 *    "failed":..},...},"retried":..,"crashes":..,"requeued":..,"retry_waiting":..,
 *    "dead_letters":..,"accepting":true}
 *
 * JSON_TCP — the STATS reply (tcp/PROTOCOL.md): flat, one line.
 *   {"capacity":..,"max_payload":..,"pending":..,"pending_high":..,
 *    "pending_normal":..,"pending_low":..,"in_progress":..,"enqueued":..,
 *    "done":..,"failed":..,"dead":..,"retried":..,"retry_waiting":..,
 *    "dead_letters":..,"accepting":true,"connections":..,"remote_workers":..,
 *    "leases":..,"lease_timeout_ms":..}
 *   ("connections" here is tcp_open, the connections open now; "accepting"
 *   is the snapshot's, which the TCP server sets false while it drains.)
 */
#ifndef FORQ_METRICS_JSON_H
#define FORQ_METRICS_JSON_H

#include <stddef.h>

#include "buf.h"
#include "procstat.h"
#include "snapshot.h"

enum json_surface {
	JSON_HTTP = 0, /* GET /stats */
	JSON_CLI,      /* forq stats --json */
	JSON_TCP,      /* TCP STATS */
	JSON_QUEUE,    /* one queue in GET /stats's "queues" */
	JSON_NSURFACES
};

/* Appends the stats body of surface `as` for s. p (HTTP only; may be NULL:
 * no "process" member) and now (the current Unix time in seconds, for
 * uptime) are ignored by the other surfaces. No newline at the end. Returns
 * 0 or -ENOMEM; on error b is as it was. */
int json_stats(struct buf *b, enum json_surface as, const struct metrics_snapshot *s,
	       const struct procstat *p, double now);

/* GET /stats of a scrape: json_stats(JSON_HTTP) of s[0], plus "queues" with
 * each of the n (>= 1) snapshots s[0..n) under its name. Returns 0, -EINVAL
 * for n == 0, or -ENOMEM; on error b is as it was. */
int json_stats_queues(struct buf *b, const struct metrics_snapshot *s, size_t n,
		      const struct procstat *p, double now);

/* Appends {"error":"<msg>"} with msg escaped. Returns 0 or -ENOMEM. */
int json_error(struct buf *b, const char *msg);

#endif
