/* guard.h — who may hold HTTP connections: a limit per client address that a
 * flood of slow or idle connections from one address cannot turn into a
 * lock-out of that address (a scrape, a health probe or a local shutdown).
 *
 * At its limit, an address's new connection is still taken: the oldest of
 * that address's connections that is not in the middle of a request (slow to
 * send one, or idle between requests) is shut down to make room. Only when
 * every connection of the address is serving a request is the new one
 * refused. A slowloris client therefore only ever loses its own connections.
 *
 * Every call runs on libmicrohttpd's one thread (MHD_USE_EPOLL_INTERNAL_THREAD
 * without a thread pool): no locks. Not for a thread pool.
 */
#ifndef FORQ_WEB_GUARD_H
#define FORQ_WEB_GUARD_H

#include <stddef.h>
#include <sys/socket.h>

struct guard;

/* per_address: connections one client address may hold (at least 1). */
struct guard *guard_new(unsigned per_address);
void guard_free(struct guard *g);

/* A connection was accepted on fd from sa (MHD_CONNECTION_NOTIFY_STARTED):
 * returns its handle for the calls below (NULL if out of memory: it is then
 * not counted). */
struct guard_conn *guard_opened(struct guard *g, int fd, const struct sockaddr *sa);
/* The connection closed (MHD_CONNECTION_NOTIFY_CLOSED). NULL is ignored. */
void guard_closed(struct guard *g, struct guard_conn *c);
/* A request began on it (its headers are in) / ended (response sent). */
void guard_busy(struct guard_conn *c, int busy);

/* May a new connection from sa be accepted (MHD's accept policy)? Makes room
 * as above; returns 1 to accept, 0 to refuse. */
int guard_admit(struct guard *g, const struct sockaddr *sa);

/* Connections shut down to make room, ever (for metrics and tests). */
unsigned long guard_evicted(const struct guard *g);

#endif
