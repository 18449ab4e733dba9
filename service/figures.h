/* figures.h — what forqd shows of itself, gathered for metrics/: the
 * queue's figures, histograms and worker rows, and the TCP server's
 * counters, each into a struct metrics_snapshot. Any thread (the HTTP
 * thread asks). */
#ifndef FORQ_FIGURES_H
#define FORQ_FIGURES_H

#include "forq.h"
#include "server.h"
#include "snapshot.h"

/* The queue's counters, histograms and its first `workers` worker rows. */
void figures_queue(struct metrics_snapshot *s, struct forq *q, int workers);
/* The TCP server's counters; tcp NULL (--tcp off): zeros, with one series
 * per command still, so that dashboards see the families from the start. */
void figures_tcp(struct metrics_snapshot *s, struct tcp_server *tcp);
/* The journal's figures (all 0 when j is NULL). */
struct journal;
void figures_journal(struct metrics_snapshot *s, struct journal *j);
/* The NATS upstream's figures (--upstream; nothing when u is NULL). */
struct upstream;
struct bridge;
void figures_upstream(struct metrics_snapshot *s, struct upstream *u, struct bridge *b);

#endif
