/* results_subject.h — final results on a NATS subject (forqd --upstream-results):
 * forqd's bridge publishes one JSON line per task of the stream that ends
 * (done, failed or dead) to forq.results.STREAM, and a producer on any host
 * watches that subject for the stream sequences it published
 * (`forq push --upstream --wait`).
 *
 * Core NATS, not JetStream: at-most-once. A line nobody is subscribed to
 * when it goes (a producer that subscribed late, or was disconnected) is
 * gone; the host's --results file keeps the whole record.
 *
 *   {"seq":12,"id":7,"task":"1+2","status":"done","result":"3","attempts":1,
 *    "queue":"default","stream":"jobs"}
 *
 * seq is the stream sequence (what the publish answered), id the task's id
 * on the host that ran it; "error" replaces "result" when the status is not
 * done. The result or error is the queue's recent record of it: its first
 * 95 bytes (FORQ_RESULT_TEXT_MAX). A task the queue has forgotten already
 * (more tasks ended since than --recent keeps) has status "unknown". */
#ifndef FORQ_UPSTREAM_RESULTS_SUBJECT_H
#define FORQ_UPSTREAM_RESULTS_SUBJECT_H

#include <stddef.h>
#include <stdint.h>

struct upstream;
struct upstream_watch;

/* "forq.results.NAME". */
void upstream_results_subject(const char *stream, char *out, size_t cap);

/* Calls fn (on a libnats thread) with every line published to the
 * results subject of u's stream from now on (the server has the
 * subscription when this returns). 0 or -EIO with err. */
int upstream_watch_results(struct upstream_watch **w, struct upstream *u,
			   void (*fn)(void *ctx, const char *line, size_t len), void *ctx,
			   char *err, size_t errlen);
/* Before upstream_close. NULL is fine. */
void upstream_watch_stop(struct upstream_watch *w);

#endif
