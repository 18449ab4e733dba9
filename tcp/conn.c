/* conn.c — the TCP server's connections (conn.h). */
#include "conn.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "net.h"

#define IN_START 4096          /* first input buffer; grows to proto_max_request() */
#define OUT_SHRINK (256u << 10) /* an empty output buffer bigger than this is freed */
#define CLOSE_GRACE_MS 2000     /* BYE / closing ERR: time to flush and see EOF */

static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		snprintf(out, cap, "?");
	}
}

/* The idle timer only ever moves earlier here: it fires at the first moment
 * some connection could be idle too long, and the scan re-arms it. */
static void idle_watch(struct tcp_server *s, uint64_t now)
{
	if (!loop_timer_pending(&s->idle_timer))
		loop_timer_set(s->loop, &s->idle_timer, now + s->idle_ns);
}

struct conn *conn_open(struct tcp_server *s, int fd, const struct sockaddr *sa, uint64_t now,
		       loop_fd_fn on_event, loop_timer_fn on_timer)
{
	int one = 1;
	struct conn *c = calloc(1, sizeof *c);
	if (!c || !s->nfree || !(c->in = malloc(IN_START))) {
		free(c);
		close(fd);
		log_event(LOG_ERROR, "tcp_out_of_memory", "at=accept");
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->s = s;
	c->fd = fd;
	c->idx = s->free_idx[--s->nfree];
	if (++s->next_seq >= (1u << (32 - s->idx_bits)))
		s->next_seq = 1; /* the sequence wraps; the id is never 0 */
	c->id = s->next_seq << s->idx_bits | c->idx;
	c->state = CONN_ACTIVE;
	c->in_cap = IN_START;
	c->out = (struct buf)BUF_INIT;
	c->last_io_ns = now;
	c->loopback = net_addr_is_loopback(sa);
	c->need_auth = s->auth.enabled && !c->loopback;
	proto_parser_init(&c->parser, &s->lim);
	addr_text(sa, c->peer, sizeof c->peer);
	loop_timer_init(&c->timer, on_timer, c);
	s->conns[c->idx] = c;
	s->nconns++;
	count(&s->m_accepted, 1);
	gauge(&s->m_conns, s->nconns);
	if (loop_fd_add(s->loop, fd, EPOLLIN | EPOLLRDHUP, on_event, c))
		conn_mark_dead(c);
	idle_watch(s, now);
	log_event(LOG_DEBUG, "tcp_accepted", "peer=%s", c->peer);
	return c;
}

struct conn *conn_by_id(const struct tcp_server *s, uint32_t id)
{
	uint32_t idx = id & ((1u << s->idx_bits) - 1);
	struct conn *c = idx < s->max_conns ? s->conns[idx] : NULL;
	return c && c->id == id ? c : NULL;
}

void conn_mark_dead(struct conn *c)
{
	struct tcp_server *s = c->s;
	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	s->dead[s->ndead++] = c;
}

void conn_release_leases(struct conn *c, const char *why)
{
	struct tcp_server *s = c->s;
	for (uint32_t i = 0; i < s->nq && c->nleases; i++) {
		struct tcp_q *tq = &s->qs[i];
		uint32_t held = leases_count(&tq->leases);
		uint32_t n = leases_giveback_conn(&tq->leases, c->id, c->nleases, why, tq->res.final,
						  tq->res.ctx);
		if (n && held == leases_max(&tq->leases))
			s->lease_came_free = 1;
		c->nleases -= n < c->nleases ? n : c->nleases;
	}
	c->nleases = 0;
	gauge(&s->m_leases, server_leases(s));
}

void conn_lease_ended(struct tcp_q *tq, struct conn *c, uint32_t held_before)
{
	struct tcp_server *s = tq->s;
	if (c && c->nleases)
		c->nleases--;
	if (held_before == leases_max(&tq->leases))
		s->lease_came_free = 1;
	gauge(&s->m_leases, server_leases(s));
}

void conn_park(struct conn *c, int batch, uint32_t n, uint64_t until)
{
	struct tcp_server *s = c->s;
	c->parked = 1;
	c->park_batch = (unsigned)batch;
	c->park_count = n;
	c->park_next = NULL;
	c->park_prev = s->park_tail;
	if (s->park_tail)
		s->park_tail->park_next = c;
	else
		s->park_head = c;
	s->park_tail = c;
	s->nparked++;
	loop_timer_set(s->loop, &c->timer, until);
}

static void park_remove(struct conn *c)
{
	struct tcp_server *s = c->s;
	if (c->park_prev)
		c->park_prev->park_next = c->park_next;
	else
		s->park_head = c->park_next;
	if (c->park_next)
		c->park_next->park_prev = c->park_prev;
	else
		s->park_tail = c->park_prev;
	c->park_prev = c->park_next = NULL;
	c->parked = 0;
	s->nparked--;
	loop_timer_stop(s->loop, &c->timer);
}

void conn_unpark(struct conn *c, uint64_t now)
{
	if (!c->parked)
		return;
	park_remove(c);
	c->last_io_ns = now; /* its wait counts as activity */
	idle_watch(c->s, now);
}

void conn_begin_close(struct conn *c, const char *why, uint64_t now)
{
	if (c->state != CONN_ACTIVE)
		return;
	conn_unpark(c, now);
	c->pub_ref = 0; /* its ack, if it comes, finds no one */
	if (c->dur_q) {
		c->dur_q = NULL; /* its task stays queued, as a task whose reply is lost */
		c->s->ndurable--;
	}
	conn_release_leases(c, why);
	c->state = CONN_FLUSH;
	loop_timer_set(c->s->loop, &c->timer, now + CLOSE_GRACE_MS * MS);
}

void conn_update_events(struct conn *c)
{
	uint32_t ev = 0;
	switch (c->state) {
	case CONN_ACTIVE:
		/* Level-triggered: once seen, stop asking. A PUT waiting for
		 * its publish reads nothing, its peer's EOF included. */
		ev = c->eof || c->pub_ref || c->dur_q ? 0 : EPOLLRDHUP;
		if (!conn_waiting(c) && !c->eof && conn_out_pending(c) < OUT_HIGH)
			ev |= EPOLLIN;
		if (conn_out_pending(c))
			ev |= EPOLLOUT;
		break;
	case CONN_FLUSH:
		ev = EPOLLOUT;
		break;
	case CONN_LINGER:
		ev = EPOLLIN | EPOLLRDHUP;
		break;
	case CONN_DEAD:
		return;
	}
	if (loop_fd_mod(c->s->loop, c->fd, ev))
		conn_mark_dead(c);
}

void conn_flush(struct conn *c, uint64_t now)
{
	while (conn_out_pending(c)) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, conn_out_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out_off += (size_t)n;
			c->last_io_ns = now;
			count(&c->s->m_bytes_out, (uint64_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_mark_dead(c); /* EPIPE, ECONNRESET: the peer is gone */
		return;
	}
	if (!conn_out_pending(c)) {
		if (c->out.cap > OUT_SHRINK)
			buf_free(&c->out);
		else
			buf_reset(&c->out);
		c->out_off = 0;
		if (c->state == CONN_FLUSH) {
			shutdown(c->fd, SHUT_WR);
			c->state = CONN_LINGER;
		}
	} else if (c->out_off > c->out.len / 2) {
		memmove(c->out.data, c->out.data + c->out_off, conn_out_pending(c));
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
}

void conn_sent(struct conn *c, int r)
{
	if (!r)
		return;
	log_event(LOG_ERROR, "tcp_out_of_memory", "peer=%s", c->peer);
	conn_mark_dead(c);
}

/* Room for more input: compacts, then grows up to max_request. */
static int in_room(struct conn *c)
{
	size_t max = c->s->max_request;
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	if (c->in_len < c->in_cap)
		return 1;
	if (c->in_off) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
		return 1;
	}
	if (c->in_cap >= max)
		return 0;
	size_t cap = c->in_cap * 2 < max ? c->in_cap * 2 : max;
	char *p = realloc(c->in, cap);
	if (!p)
		return 0;
	c->in = p;
	c->in_cap = cap;
	return 1;
}

long conn_recv(struct conn *c, size_t budget, uint64_t now, int *more)
{
	*more = 0;
	if (!in_room(c)) {
		log_event(LOG_ERROR, "tcp_out_of_memory", "peer=%s", c->peer);
		conn_mark_dead(c);
		return -1;
	}
	size_t want = c->in_cap - c->in_len;
	for (;;) {
		size_t ask = want < budget ? want : budget;
		ssize_t n = recv(c->fd, c->in + c->in_len, ask, MSG_DONTWAIT);
		if (n > 0) {
			*more = (size_t)n == ask;
			c->in_len += (size_t)n;
			c->last_io_ns = now;
			count(&c->s->m_bytes_in, (uint64_t)n);
			return n;
		}
		if (n == 0) {
			c->eof = 1;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		conn_mark_dead(c); /* ECONNRESET: the peer is gone */
		return -1;
	}
}

void conn_linger_read(struct conn *c)
{
	char junk[4096];
	ssize_t n;
	while ((n = recv(c->fd, junk, sizeof junk, MSG_DONTWAIT)) > 0)
		count(&c->s->m_bytes_in, (uint64_t)n);
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		conn_mark_dead(c);
}

static void conn_free(struct conn *c)
{
	struct tcp_server *s = c->s;
	if (c->parked)
		park_remove(c);
	conn_release_leases(c, "worker connection lost");
	loop_timer_stop(s->loop, &c->timer);
	loop_fd_del(s->loop, c->fd);
	close(c->fd);
	if (c->worker)
		s->nworkers--;
	s->nconns--;
	s->conns[c->idx] = NULL;
	s->free_idx[s->nfree++] = c->idx;
	log_event(LOG_DEBUG, "tcp_closed", "peer=%s", c->peer);
	free(c->in);
	buf_free(&c->out);
	free(c);
	gauge(&s->m_conns, s->nconns);
	gauge(&s->m_workers, s->nworkers);
}

void conn_sweep(struct tcp_server *s)
{
	for (uint32_t i = 0; i < s->ndead; i++)
		conn_free(s->dead[i]);
	s->ndead = 0;
}
