/* commands.h — the TCP server's answers: parse what a connection sent
 * (proto.c), run each request against the queue and its leases, and queue
 * the reply. A GET_TASK(S) WAIT that finds nothing parks the connection (its
 * later requests wait behind it) until tasks arrive or the wait is over. */
#ifndef FORQ_TCP_COMMANDS_H
#define FORQ_TCP_COMMANDS_H

#include <stdint.h>

#include "tcp_internal.h"

/* Answers what c has buffered, until a request parks, the output passes
 * OUT_HIGH or no whole request is left. Hot path: no syscall per request. */
void commands_process(struct conn *c, uint64_t now);
/* After any activity on c: commands_process, then write, then set the
 * loop's events. */
void commands_settle(struct conn *c, uint64_t now);

/* Writes the results answers added (tcp_results.flush), then frees their
 * entries: a forqd killed before the write gives those tasks back. */
void commands_settle_results(struct tcp_server *s);

/* Parked GETs, oldest first, get tasks while the queue has them. */
void commands_serve_parked(struct tcp_server *s, uint64_t now);

/* c's WAIT is over with nothing found: NONE (or TASKS 0). */
void commands_park_timeout(struct conn *c, uint64_t now);

/* c's PUT to a stream is answered: OK seq (dup: OK seq duplicate), or with
 * seq 0 ERR not-published; c reads its next requests. */
void commands_published(struct conn *c, uint64_t seq, int dup, uint64_t now);
/* c's PUT that waited for the disk: r 0 (on disk), -ETIMEDOUT or -ESHUTDOWN. */
void commands_durable(struct conn *c, int r, uint64_t now);

/* Cancels task id of queue tq if a connection holds its lease (tcp_cancel):
 * 0, or -EBUSY when none does. */
int commands_cancel_leased(struct tcp_q *tq, uint64_t id);

#endif
