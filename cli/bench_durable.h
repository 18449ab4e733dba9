/* bench_durable.h — forq bench's latency from push to journaled (--journal):
 * each batch noted when pushed, and seen durable once the queue's journal
 * backlog no longer holds it (the producer's own view: a batch pushed
 * without waiting is seen when the producer next looks, at a push or a
 * forq_sync). Per batch, so a figure counts each task of it. */
#ifndef FORQ_BENCH_DURABLE_H
#define FORQ_BENCH_DURABLE_H

#include <stddef.h>
#include <stdint.h>

struct dlat {
	uint64_t *push_ns, *upto; /* batch i: pushed at, tasks pushed through it */
	size_t n, seen, cap;      /* noted, seen durable (oldest first), room */
	uint64_t *lat;            /* latency of each batch seen, ns */
	size_t nlat;
};

/* Room for `batches` batches; 0 or -ENOMEM. Batches past it are not timed. */
int dlat_init(struct dlat *d, size_t batches);
/* A batch pushed at t_ns: tasks 0 .. upto were pushed with it. */
void dlat_pushed(struct dlat *d, uint64_t t_ns, uint64_t upto);
/* At now_ns, the first `durable` tasks pushed are journaled. */
void dlat_seen(struct dlat *d, uint64_t durable, uint64_t now_ns);
/* Quantile q (0..1) of the latencies seen, in us; 0 if none. Sorts them. */
double dlat_quantile_us(struct dlat *d, double q);
void dlat_free(struct dlat *d);

#endif
