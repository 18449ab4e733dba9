/* guard.h — who may hold HTTP connections: a limit per client address that a
 * flood of slow or idle connections from one address cannot turn into a
 * lock-out of that address (a scrape, a health probe or a local shutdown).
 *
 * At its limit, an address's new connection is still taken, and one of that
 * address's connections that holds its slot without using it is shut down to
 * make room: one idle (slow to send its request's headers, or idle between
 * requests), or one whose request body has come in slower than
 * GUARD_MIN_BODY_RATE bytes a second on average for GUARD_SLOW_AFTER_MS or
 * more (a slowloris that sends full headers, then trickles the body); of
 * those, the one that has been so the longest. A connection whose request is
 * in and being served is never shut down. Only when none can go is the new
 * connection refused. A slowloris client therefore only ever loses its own
 * connections.
 *
 * Every call runs on libmicrohttpd's one thread (MHD_USE_EPOLL_INTERNAL_THREAD
 * without a thread pool): no locks. Not for a thread pool. Times are a
 * monotonic clock's milliseconds, passed in.
 */
#ifndef FORQ_WEB_GUARD_H
#define FORQ_WEB_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A request body slower than this on average, for at least that long,
 * makes its connection one that may give way. */
#define GUARD_MIN_BODY_RATE 1024u
#define GUARD_SLOW_AFTER_MS 1000u

struct guard;

/* Where a connection is in its request. */
enum guard_state {
	GUARD_IDLE,	 /* no request, or its headers not all in */
	GUARD_RECEIVING, /* headers in, its body coming */
	GUARD_SERVING,	 /* the request is in and being answered */
};

/* per_address: connections one client address may hold (at least 1). */
struct guard *guard_new(unsigned per_address);
void guard_free(struct guard *g);

/* A connection was accepted on fd from sa (MHD_CONNECTION_NOTIFY_STARTED) at
 * now_ms, idle: returns its handle for the calls below (NULL if out of
 * memory: it is then not counted). */
struct guard_conn *guard_opened(struct guard *g, int fd, const struct sockaddr *sa,
				uint64_t now_ms);
/* The connection closed (MHD_CONNECTION_NOTIFY_CLOSED). NULL is ignored. */
void guard_closed(struct guard *g, struct guard_conn *c);
/* Its request moved on at now_ms: headers in with a body to come
 * (GUARD_RECEIVING), all in (GUARD_SERVING), or ended (GUARD_IDLE). NULL is
 * ignored. */
void guard_state(struct guard_conn *c, enum guard_state st, uint64_t now_ms);
/* n more bytes of its request body came in. NULL is ignored. */
void guard_body(struct guard_conn *c, size_t n);

/* May a new connection from sa be accepted at now_ms (MHD's accept policy)?
 * Makes room as above; returns 1 to accept, 0 to refuse. */
int guard_admit(struct guard *g, const struct sockaddr *sa, uint64_t now_ms);

/* Connections shut down to make room, ever (for metrics and tests). */
unsigned long guard_evicted(const struct guard *g);

#endif
