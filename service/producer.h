/* producer.h — forqd's own producer thread: it pushes the --tasks file (bad
 * lines are logged as FILE:LINE and skipped) or, with --demo, a steady
 * stream of arithmetic tasks. It has its own queue handle. */
#ifndef FORQ_PRODUCER_H
#define FORQ_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

struct producer;

struct producer_config {
	const char *shm_name;
	const char *tasks_path;  /* NULL: demo mode */
	double demo_rate;        /* tasks per second */
	uint32_t max_payload;
};

int producer_start(struct producer **pp, const struct producer_config *c, char *err, size_t errlen);

/* 1 once the tasks file was read to its end (or reading stopped). */
int producer_finished(struct producer *p);

/* Tasks pushed, bad lines seen. */
void producer_counts(struct producer *p, uint64_t *pushed, uint64_t *bad_lines);

/* Stops and joins the thread (pushes end when the queue stops accepting). */
void producer_stop(struct producer *p);

#endif
