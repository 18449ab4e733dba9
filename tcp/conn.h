/* conn.h — one connection of the TCP server (struct conn in tcp_internal.h):
 * its socket in the loop, its input and output buffers, its state (active,
 * flushing, lingering, dead), its place among the parked GETs and the leases
 * it holds. This file moves bytes and changes states; commands.c decides
 * what to answer. A connection is never freed inside its own handlers:
 * conn_mark_dead() queues it, conn_sweep() frees it. */
#ifndef FORQ_TCP_CONN_H
#define FORQ_TCP_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tcp_internal.h"

/* Takes fd (accepted, non-blocking) into a free slot and registers it in the
 * loop with on_event / on_timer (ctx: the conn). NULL when out of memory or
 * slots (fd closed; the caller has checked s->nfree). */
struct conn *conn_open(struct tcp_server *s, int fd, const struct sockaddr *sa, uint64_t now,
		       loop_fd_fn on_event, loop_timer_fn on_timer);
/* The connection whose lease owner id is id, or NULL. */
struct conn *conn_by_id(const struct tcp_server *s, uint32_t id);

void conn_mark_dead(struct conn *c);
/* Frees every connection marked dead: the one place. Its leases go back. */
void conn_sweep(struct tcp_server *s);
/* Stops answering: gives its leases back, sends what is queued, then shuts
 * down and closes (within CLOSE_GRACE_MS). */
void conn_begin_close(struct conn *c, const char *why, uint64_t now);
/* Gives back every lease c holds (attempts + 1). */
void conn_release_leases(struct conn *c, const char *why);
/* One lease of c (NULL: its connection is gone) in queue tq ended, answered
 * or expired; held_before: tq's leases before it ended. A full table that
 * gets a free entry sets s->lease_came_free. */
void conn_lease_ended(struct tcp_q *tq, struct conn *c, uint32_t held_before);

static inline size_t conn_out_pending(const struct conn *c)
{
	return c->out.len - c->out_off;
}
/* Checks that a reply was queued (r from a proto_format_*). Out of memory a
 * reply is missing and the stream is out of step: the connection goes. */
void conn_sent(struct conn *c, int r);
/* Writes what the socket takes; in FLUSH an emptied buffer moves to LINGER. */
void conn_flush(struct conn *c, uint64_t now);
/* Reads once into the input buffer, at most budget bytes. Returns the bytes
 * read, 0 if none now (or EOF: c->eof set), -1 if the connection is gone
 * (marked dead). *more: the read filled what was asked, more may wait. */
long conn_recv(struct conn *c, size_t budget, uint64_t now, int *more);
/* LINGER: reads and drops until EOF, then marks it dead. */
void conn_linger_read(struct conn *c);
/* Sets the loop's events from the state (reading, writing, neither). */
void conn_update_events(struct conn *c);

/* A GET_TASK(S) WAIT that found nothing waits until `until` (its timer). */
void conn_park(struct conn *c, int batch, uint32_t n, uint64_t until);
void conn_unpark(struct conn *c, uint64_t now);

#endif
