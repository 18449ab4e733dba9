/* tcp.h — forqd's TCP server for remote workers and producers (the
 * GET_TASK / RESULT protocol of proto.h). Non-blocking sockets on one epoll
 * fd, driven from forqd's main loop (main thread only): no thread or process
 * per connection. Tasks handed out are leases in the queue's shared memory
 * (admin.h), so a lost worker, an expired lease or a restarted forqd gives
 * them back. */
#ifndef FORQ_TCP_H
#define FORQ_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "forq_admin.h"
#include "snapshot.h"

struct tcp_config {
	const char *listen;       /* "127.0.0.1:7070", "[::]:7070", port 0: pick one */
	const char *shm_name;
	int lease_timeout_ms;     /* a worker's time to answer (default 30000) */
	int idle_timeout_ms;      /* close a connection silent this long (0: 300000) */
	uint32_t max_payload;
	uint32_t batch_max;       /* most tasks one GET_TASKS may take */
	unsigned max_conns;       /* 0: 10000 */
	const char *admin_token;  /* needed beyond loopback, like HTTP */
	int insecure;
};

struct tcp_server;

/* Binds and listens. q is forqd's main handle (its record holds the leases'
 * counters); fn/ctx get tasks that end dead when a lease is lost. */
int tcp_start(struct tcp_server **sp, const struct tcp_config *c, struct forq *q,
	      forq_final_fn fn, void *ctx, char *err, size_t errlen);
int tcp_fd(const struct tcp_server *s);       /* epoll fd: readable when work is due */
uint16_t tcp_port(const struct tcp_server *s);
void tcp_run(struct tcp_server *s);           /* handle ready sockets, no blocking */
void tcp_tick(struct tcp_server *s, uint64_t now_ns); /* lease expiry, idle timeouts, waiters */
int tcp_timeout_ms(const struct tcp_server *s); /* when tcp_tick is next due, -1: none */
void tcp_draining(struct tcp_server *s);      /* PUT refused from now on */
void tcp_snapshot(struct tcp_server *s, struct metrics_snapshot *snap); /* any thread */
/* Closes all connections. Leases stay in the queue's lease table (no attempt
 * is charged): forqd's exit drain reports them, or the next forqd gives them
 * back. NULL is fine. */
void tcp_stop(struct tcp_server *s);

#endif
