/* waiting.h — HTTP requests whose answer waits for the disk: a POST /tasks
 * to a queue journaled with --fsync always. The request's connection is
 * suspended (libmicrohttpd), so that the HTTP thread serves others while
 * the journal syncs; this module's thread resumes it once the hooks say
 * its tasks are on disk, at its deadline, or at stop, with the outcome in
 * its item. */
#ifndef FORQ_WAITING_H
#define FORQ_WAITING_H

#include <microhttpd.h>
#include <stdint.h>

#include "http.h"

struct waiting;

struct wait_item {
	struct MHD_Connection *c;
	void *ticket;         /* hooks.durable_take's */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC */
	int result;           /* once resumed: 0 on disk, -ETIMEDOUT, -ESHUTDOWN */
	int done;             /* resumed: result is set */
	struct wait_item *next;
};

/* Starts the thread; h's durable hooks must be set. 0 or -errno. */
int waiting_start(struct waiting **wp, const struct http_hooks *h);
/* On the HTTP thread, in the request's handler, after
 * MHD_suspend_connection(it->c): it is resumed once answered. */
void waiting_add(struct waiting *w, struct wait_item *it);
/* Any thread: durable marks may have moved. */
void waiting_kick(struct waiting *w);
/* Resumes every request still waiting (-ESHUTDOWN), stops the thread and
 * frees w. NULL is fine. */
void waiting_stop(struct waiting *w);

#endif
