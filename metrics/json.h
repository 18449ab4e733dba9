/* json.h — the JSON bodies of the HTTP API, built with cJSON.
 *
 * GET /stats is the snapshot as one object (shape below); counters are exact
 * integers (written as raw text, so values above 2^53 survive), latencies are
 * percentiles in microseconds (null while a histogram is empty):
 *   {"version":"0.1.0","start_time":1718000000.5,"uptime_seconds":12.5,
 *    "draining":false,"capacity":65536,"max_payload":1024,
 *    "pending":{"high":0,"normal":3,"low":0,"total":3},"in_progress":2,
 *    "enqueued":{"high":..,"normal":..,"low":..,"total":..},
 *    "done":..,"failed":..,"dead":..,"retried":..,"crashes":..,"requeued":..,
 *    "retry_waiting":..,"dead_letters":..,"queue_full_waits":..,
 *    "throughput":12.5,
 *    "wait_us":{"p50":..,"p95":..,"p99":..,"count":..},"run_us":{...},
 *    "workers":[{"index":0,"pid":123,"state":"running","done":..,"failed":..,
 *                "restarts":0,"current_task":42 or null}],
 *    "worker_restarts":..,
 *    "remote":{"workers_connected":..,"leases_outstanding":..,"lease_expired":..,
 *              "connections":..,"bytes_in":..,"bytes_out":..},
 *    "http_requests":{"200":..},
 *    "process":{"cpu_seconds":..,"resident_bytes":..,"open_fds":..,"max_fds":..}}
 */
#ifndef FORQ_METRICS_JSON_H
#define FORQ_METRICS_JSON_H

#include "buf.h"
#include "procstat.h"
#include "snapshot.h"

/* Appends the /stats body for s (p may be NULL: no "process" member); now is
 * the current Unix time in seconds, for uptime. Returns 0 or -ENOMEM; on
 * error b is as it was. */
int json_stats(struct buf *b, const struct metrics_snapshot *s, const struct procstat *p, double now);

/* Appends {"error":"<msg>"} with msg escaped. Returns 0 or -ENOMEM. */
int json_error(struct buf *b, const char *msg);

#endif
