/* worker_opts.h — `forq worker`'s flags: one table of rows (name, value,
 * default, help) that --help prints, parsed into struct worker_opts, and the
 * AUTH token (--token-file FILE, or the environment's FORQ_TOKEN, which is
 * then removed so that exec: handlers do not inherit it). */
#ifndef FORQ_WORKER_OPTS_H
#define FORQ_WORKER_OPTS_H

#include <stdint.h>

#include "net.h"

struct worker_opts {
	const char *connect;
	const char *handler;
	long concurrency;
	uint32_t batch;
	int task_timeout_ms;
	int32_t wait_ms;
	uint64_t max_tasks;
	const char *queues; /* --queue A[,B...]; NULL: forqd's default queue */
	int quiet;
	char *token; /* owned, wiped at exit */
	char host[NET_HOST_MAX];
	char port[8];
};

/* Returns 0, 1 after printing --help, -1 after printing the error. */
int worker_opts_parse(struct worker_opts *o, int argc, char **argv);
/* Wipes and frees the token. */
void worker_opts_free(struct worker_opts *o);

#endif
