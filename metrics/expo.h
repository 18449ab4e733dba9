/* expo.h — the Prometheus text exposition (format 0.0.4) of a scrape.
 *
 * Pure functions: no I/O, no globals, no clock. Every family gets HELP and
 * TYPE lines once, counters end in _total, the two histograms have cumulative
 * _bucket{le=...} lines for le = 2^k ns (k = 8..36) in seconds and +Inf, then
 * _sum (seconds) and _count. Label values are escaped; no series repeats (TCP
 * command rows with the same name are added up). The text ends in "\n".
 *
 * A scrape is one snapshot per queue (snapshot.h): every per-queue family
 * (the table in expo.c) has each queue's samples, labelled queue="NAME"
 * first, the queues in the array's order; the service's families (HTTP, TCP,
 * remote workers, draining, build info, start time, process_*) are read from
 * the first snapshot and carry no queue label.
 */
#ifndef FORQ_METRICS_EXPO_H
#define FORQ_METRICS_EXPO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "procstat.h"
#include "snapshot.h"

/* Finite `le` bounds exported: 2^EXPO_LE_MIN_K .. 2^EXPO_LE_MAX_K ns. */
#define EXPO_LE_MIN_K 8
#define EXPO_LE_MAX_K 36

/* Appends the exposition of the n (>= 1) queues' snapshots s[0..n) (and of
 * p's process_* figures; p may be NULL to leave them out) to b. Returns 0,
 * -EINVAL for n == 0, or -ENOMEM; on error b is as it was. */
int expo_write(struct buf *b, const struct metrics_snapshot *s, size_t n,
	       const struct procstat *p);

/* The q-quantile (0 <= q <= 1) of a power-of-two histogram, in ns, with
 * linear interpolation inside the bucket that holds the rank (bucket k spans
 * (2^(k-1), 2^k]; bucket 0 spans [0, 1]). A rank in the open-ended last
 * bucket gives its lower bound. Returns 0 for an empty histogram. */
double hist_quantile(const uint64_t b[METRICS_HIST_BUCKETS], double q);

/* Writes d in the shortest form that reads back exactly ("%g" style, as
 * Prometheus does: 2.56e-07, 0.000131072, 68.719476736), or NaN/+Inf/-Inf. */
void expo_format_double(char *out, size_t size, double d);

#endif
