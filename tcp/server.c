/* server.c — the TCP server's glue (server.h): the listening socket, the
 * loop's callbacks for sockets and timers, and the counters.
 *
 * Everything runs in forqd's loop. A socket event reads and answers
 * (commands.c); timers end parked waits and close grace periods (one per
 * connection), expire leases (one timer at the earliest deadline, which
 * the lease table knows), close idle connections (one timer at the first
 * moment one could be idle too long) and resume accepting after running out
 * of descriptors. Nothing is polled: parked GETs are served when forqd says
 * that tasks arrived (tcp_work_arrived) or when a lease entry comes free in a
 * full table. Every callback ends in after_event(), which frees the
 * connections it marked dead. */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "commands.h"
#include "conn.h"
#include "errmsg.h"
#include "log.h"
#include "net.h"

#define READ_BUDGET (256u << 10)    /* bytes read from one connection per turn: fairness */
#define ACCEPT_PAUSE_NS (100 * MS)  /* out of fds: stop accepting this long */
#define ACCEPT_BATCH 64
#define LISTEN_BACKLOG 4096

const char *tcp_counter_label(int i)
{
	if (i >= 0 && i < PROTO_CMD_COUNT)
		return proto_cmd_word((enum proto_cmd)i);
	return i == CMD_INVALID ? "INVALID" : NULL;
}

/* The end of every callback: parked GETs that a freed lease entry may serve,
 * a wake-up for those the start rate limit holds back, then the connections
 * marked dead. */
static void after_event(struct tcp_server *s, uint64_t now)
{
	if (s->lease_came_free) {
		s->lease_came_free = 0;
		if (s->nparked)
			commands_serve_parked(s, now);
	}
	if (s->nparked && !loop_timer_pending(&s->rate_timer)) {
		uint64_t w = 0;
		for (uint32_t i = 0; i < s->nq; i++) {
			uint64_t wi = forq_admin_rate_wait_ns(s->qs[i].q);
			if (wi && (!w || wi < w))
				w = wi;
		}
		if (w)
			loop_timer_set(s->loop, &s->rate_timer, now + w);
	}
	conn_sweep(s);
}

static void on_rate_timer(void *ctx, uint64_t now)
{
	struct tcp_server *s = ctx;
	if (s->nparked)
		commands_serve_parked(s, now);
	after_event(s, now);
}

static void on_readable(struct conn *c, uint64_t now)
{
	size_t budget = READ_BUDGET;
	int more;
	if (c->state == CONN_LINGER) {
		conn_linger_read(c);
		return;
	}
	while (c->state == CONN_ACTIVE && !conn_waiting(c) && !c->eof &&
	       conn_out_pending(c) < OUT_HIGH && budget > 0) {
		long n = conn_recv(c, budget, now, &more);
		if (n < 0)
			return;
		budget -= n > 0 ? (size_t)n : 0;
		commands_process(c, now); /* at EOF too: what came before it */
		if (!more)
			break; /* drained (level-triggered: the loop tells us of more) */
	}
}

static void on_conn_event(void *ctx, uint32_t ev)
{
	struct conn *c = ctx;
	struct tcp_server *s = c->s;
	uint64_t now = clock_mono_ns();
	if (c->state == CONN_DEAD)
		return;
	if (ev & EPOLLERR) {
		conn_mark_dead(c);
	} else {
		if (ev & EPOLLOUT)
			conn_flush(c, now);
		if (c->state != CONN_DEAD && ((c->parked && (ev & (EPOLLRDHUP | EPOLLHUP))) ||
					      ((c->pub_ref || c->dur_q) && (ev & EPOLLHUP))))
			conn_mark_dead(c); /* gone while waiting: hand it nothing */
		if (c->state != CONN_DEAD && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
			on_readable(c, now);
		if (c->state != CONN_DEAD)
			commands_settle(c, now);
	}
	after_event(s, now);
}

/* A parked GET's WAIT is over, a PUT's publish went unanswered, or a
 * closing connection's grace is. */
static void on_conn_timer(void *ctx, uint64_t now)
{
	struct conn *c = ctx;
	struct tcp_server *s = c->s;
	if (c->parked)
		commands_park_timeout(c, now);
	else if (c->pub_ref)
		commands_published(c, 0, 0, now);
	else if (c->dur_q)
		commands_durable(c, -ETIMEDOUT, now);
	else if (c->state == CONN_FLUSH || c->state == CONN_LINGER)
		conn_mark_dead(c);
	after_event(s, now);
}

/* Closes connections silent for idle_ns (parked ones are waiting, not
 * idle), and comes back when the next one could be. */
static void on_idle_timer(void *ctx, uint64_t now)
{
	struct tcp_server *s = ctx;
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < s->max_conns && s->nconns; i++) {
		struct conn *c = s->conns[i];
		if (!c || c->state != CONN_ACTIVE || conn_waiting(c))
			continue;
		uint64_t due = c->last_io_ns + s->idle_ns;
		if (due <= now) {
			log_event(LOG_INFO, "tcp_idle_timeout", "peer=%s idle_ms=%" PRIu64, c->peer,
				  (now - c->last_io_ns) / MS);
			conn_mark_dead(c);
		} else if (due < next) {
			next = due;
		}
	}
	if (next != UINT64_MAX)
		loop_timer_set(s->loop, &s->idle_timer, next);
	after_event(s, now);
}

static void on_lease_due(void *ctx, uint32_t slot, const struct forq_lease_info *li)
{
	struct tcp_q *tq = ctx;
	struct conn *c = conn_by_id(tq->s, li->conn);
	uint32_t held = leases_count(&tq->leases);
	int r = leases_giveback(&tq->leases, slot, li->id, li->conn, "lease expired", 1,
				tq->res.final, tq->res.ctx);
	if (r < 0)
		log_event(LOG_WARN, "lease_lost", "id=%" PRIu64 " error=\"%s\" queue=%s", li->id,
			  strerror(-r), tq->name);
	else
		log_event(LOG_WARN, "lease_expired", "id=%" PRIu64 " peer=%s %s queue=%s", li->id,
			  c ? c->peer : "?", r == 1 ? "requeued=1" : "dead=1", tq->name);
	conn_lease_ended(tq, c, held);
}

int tcp_cancel(struct tcp_server *s, const char *queue, uint64_t id)
{
	for (uint32_t i = 0; s && i < s->nq; i++)
		if (!strcmp(s->qs[i].name, queue))
			return commands_cancel_leased(&s->qs[i], id);
	return -EBUSY;
}

static void on_expiry_timer(void *ctx, uint64_t now)
{
	struct tcp_server *s = ctx;
	uint64_t next = UINT64_MAX;
	for (uint32_t i = 0; i < s->nq; i++) {
		uint64_t n = leases_expire(&s->qs[i].leases, now, on_lease_due, &s->qs[i]);
		if (n < next)
			next = n;
	}
	if (next != UINT64_MAX)
		loop_timer_set(s->loop, &s->expiry_timer, next);
	after_event(s, now);
}

static void refuse(struct tcp_server *s, int fd)
{
	/* Told why, best effort: a fresh socket's buffer takes one line. */
	struct buf b = BUF_INIT;
	if (!proto_format_err(&b, PROTO_E_TOO_MANY_CONNECTIONS)) {
		ssize_t n = send(fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)n;
	}
	buf_free(&b);
	close(fd);
	count(&s->m_refused, 1);
	log_event(LOG_WARN, "tcp_refused", "reason=\"connection limit %u reached\"", s->max_conns);
}

static void on_accept_timer(void *ctx, uint64_t now)
{
	struct tcp_server *s = ctx;
	(void)now;
	loop_fd_mod(s->loop, s->lfd, EPOLLIN);
}

static void on_listen(void *ctx, uint32_t ev)
{
	struct tcp_server *s = ctx;
	uint64_t now = clock_mono_ns();
	(void)ev;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (s->accept_pauses) {
				log_event(LOG_INFO, "tcp_accept_resumed", "pauses=%" PRIu64,
					  s->accept_pauses);
				s->accept_pauses = 0;
			}
			if (s->nfree == 0)
				refuse(s, fd);
			else
				conn_open(s, fd, (struct sockaddr *)&ss, now, on_conn_event,
					  on_conn_timer);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* Level-triggered: pause, or the loop spins on the backlog.
			 * Said once, not every pause: a lasting shortage of fds
			 * would otherwise log ten lines a second. */
			if (!s->accept_pauses++)
				log_event(LOG_WARN, "tcp_accept_paused",
					  "error=\"%s\" retry_every_ms=%llu", strerror(errno),
					  (unsigned long long)(ACCEPT_PAUSE_NS / 1000000u));
			loop_fd_mod(s->loop, s->lfd, 0);
			loop_timer_set(s->loop, &s->accept_timer, now + ACCEPT_PAUSE_NS);
		}
		break;
	}
	after_event(s, now);
}

unsigned tcp_parked(const struct tcp_server *s)
{
	return s->nparked;
}

void tcp_work_arrived(struct tcp_server *s)
{
	uint64_t now = clock_mono_ns();
	if (s->nparked)
		commands_serve_parked(s, now);
	after_event(s, now);
}

uint16_t tcp_port(const struct tcp_server *s)
{
	return s->port;
}

void tcp_published(struct tcp_server *s, uint64_t ref, uint64_t seq, int dup)
{
	uint64_t now = clock_mono_ns();
	struct conn *c = conn_by_id(s, (uint32_t)(ref >> 32));
	if (!c || c->state == CONN_DEAD || c->pub_ref != ref)
		return; /* gone, or answered not-published at the end of its wait */
	commands_published(c, seq, dup, now);
	after_event(s, now);
}

void tcp_durable(struct tcp_server *s)
{
	uint64_t now = clock_mono_ns();
	for (uint32_t i = 0; i < s->max_conns && s->ndurable; i++) {
		struct conn *c = s->conns[i];
		if (!c || c->state == CONN_DEAD || !c->dur_q)
			continue;
		int r = forq_admin_durable_reached(c->dur_q->q, &c->dur_t);
		if (r)
			commands_durable(c, r < 0 ? r : 0, now);
	}
	after_event(s, now);
}

void tcp_draining(struct tcp_server *s)
{
	s->draining = 1;
}

void tcp_counters_read(const struct tcp_server *s, struct tcp_counters *out)
{
#define LOAD(a) atomic_load_explicit(&(a), memory_order_relaxed)
	*out = (struct tcp_counters){
		.connections = LOAD(s->m_conns), .remote_workers = LOAD(s->m_workers),
		.leases = LOAD(s->m_leases), .accepted = LOAD(s->m_accepted),
		.refused = LOAD(s->m_refused), .bytes_in = LOAD(s->m_bytes_in),
		.bytes_out = LOAD(s->m_bytes_out)};
	for (int i = 0; i < TCP_COUNTED_CMDS; i++) {
		out->cmds[i].count = LOAD(s->m_cmds[i]);
		out->cmds[i].bytes_in = LOAD(s->m_cmd_in[i]);
		out->cmds[i].bytes_out = LOAD(s->m_cmd_out[i]);
	}
#undef LOAD
}

static void server_free(struct tcp_server *s)
{
	loop_timer_stop(s->loop, &s->accept_timer);
	loop_timer_stop(s->loop, &s->idle_timer);
	loop_timer_stop(s->loop, &s->expiry_timer);
	loop_timer_stop(s->loop, &s->rate_timer);
	if (s->lfd >= 0) {
		loop_fd_del(s->loop, s->lfd);
		close(s->lfd);
	}
	free(s->conns);
	free(s->free_idx);
	free(s->dead);
	for (uint32_t i = 0; i < s->nq; i++)
		leases_release(&s->qs[i].leases);
	free(s->qs);
	free(s->tasks);
	free(s->unwritten);
	buf_free(&s->scratch);
	auth_clear(&s->auth);
	free(s);
}

/* s->qs from qs: each queue's limits (the smaller of the asked and the
 * queue's own) and lease index; the server's, the largest of them. */
static int add_queues(struct tcp_server *s, const struct tcp_queue *qs, size_t n)
{
	if (!(s->qs = calloc(n, sizeof *s->qs)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct tcp_q *tq = &s->qs[i];
		struct forq_limits h;
		forq_admin_limits(qs[i].q, &h);
		*tq = (struct tcp_q){.s = s, .name = qs[i].name, .q = qs[i].q, .res = qs[i].res,
				     .publish = qs[i].publish, .publish_ctx = qs[i].publish_ctx};
		tq->batch_max = qs[i].batch_max && qs[i].batch_max < h.batch_max ? qs[i].batch_max
										 : h.batch_max;
		tq->max_payload = qs[i].max_payload && qs[i].max_payload < h.max_payload
					  ? qs[i].max_payload
					  : h.max_payload;
		if (leases_init(&tq->leases, tq->q))
			return -ENOMEM;
		forq_admin_push_nowait(tq->q); /* the loop waits for no disk (tcp_durable) */
		s->nq++;
		if (tq->batch_max > s->batch_max)
			s->batch_max = tq->batch_max;
		if (tq->max_payload > s->lim.max_payload)
			s->lim.max_payload = tq->max_payload;
	}
	return 0;
}

int tcp_start(struct tcp_server **sp, const struct tcp_config *c, const struct tcp_queue *qs,
	      size_t nq, struct loop *loop, char *err, size_t errlen)
{
	struct net_listener l;
	struct tcp_server *s = calloc(1, sizeof *s);
	int r = -ENOMEM;
	*sp = NULL;
	if (!s) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->lfd = -1;
	s->c = *c;
	s->loop = loop;
	/* The values are forqd's flags (their defaults live in its flag table):
	 * none may be 0. */
	if (!c->max_conns || c->lease_timeout_ms <= 0 || c->idle_timeout_ms <= 0 || !nq ||
	    nq > UINT16_MAX) {
		free(s);
		errmsg_set(err, errlen, "tcp: a connection limit, lease and idle timeout and "
					"1 to %u queues are needed", UINT16_MAX);
		return -EINVAL;
	}
	s->max_conns = c->max_conns;
	s->lease_ns = (uint64_t)c->lease_timeout_ms * MS;
	s->idle_ns = (uint64_t)c->idle_timeout_ms * MS;
	s->lim.max_line = PROTO_MAX_LINE_DEFAULT;
	s->lim.max_value = PROTO_MAX_VALUE;
	loop_timer_init(&s->accept_timer, on_accept_timer, s);
	loop_timer_init(&s->idle_timer, on_idle_timer, s);
	loop_timer_init(&s->expiry_timer, on_expiry_timer, s);
	loop_timer_init(&s->rate_timer, on_rate_timer, s);
	if (add_queues(s, qs, nq)) {
		errmsg_set(err, errlen, "out of memory");
		goto fail;
	}
	s->max_request = proto_max_request(&s->lim);
	while (s->idx_bits < 24 && (1u << s->idx_bits) < s->max_conns)
		s->idx_bits++;

	if (s->max_conns > (1u << 24)) {
		errmsg_set(err, errlen, "at most %u TCP connections", 1u << 24);
		r = -EINVAL;
		goto fail;
	}
	if (auth_init(&s->auth, c->admin_token) || auth_add_worker(&s->auth, c->worker_token)) {
		errmsg_set(err, errlen, "a token is empty (or a worker token without an admin token)");
		r = -EINVAL;
		goto fail;
	}
	s->conns = calloc(s->max_conns, sizeof *s->conns);
	s->free_idx = malloc(s->max_conns * sizeof *s->free_idx);
	s->dead = malloc(s->max_conns * sizeof *s->dead);
	s->tasks = calloc(s->batch_max, sizeof *s->tasks);
	s->unwritten = malloc(UNWRITTEN_MAX * sizeof *s->unwritten);
	if (!s->conns || !s->free_idx || !s->dead || !s->tasks || !s->unwritten) {
		errmsg_set(err, errlen, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < s->max_conns; i++)
		s->free_idx[i] = s->max_conns - 1 - i; /* low indexes first */
	s->nfree = s->max_conns;

	/* Beyond loopback only with a token or --insecure (like the HTTP side). */
	r = net_listen(c->listen, LISTEN_BACKLOG, !s->auth.enabled && !c->insecure, &l, err, errlen);
	if (r == -EPERM)
		errmsg_set(err, errlen,
			   "refusing to listen for workers on %s without an admin token (set "
			   "FORQ_ADMIN_TOKEN or --admin-token-file, or pass --insecure)",
			   c->listen);
	if (r)
		goto fail;
	s->lfd = l.fd;
	s->port = l.port;
	if ((r = loop_fd_add(loop, s->lfd, EPOLLIN, on_listen, s))) {
		errmsg_set(err, errlen, "epoll_ctl: %s", strerror(-r));
		goto fail;
	}
	*sp = s;
	return 0;
fail:
	server_free(s);
	return r;
}

void tcp_stop(struct tcp_server *s)
{
	if (!s)
		return;
	/* Leases stay in the queue's lease table: forqd's exit drain reports
	 * them as unfinished, or the next forqd (--keep-shm) gives them back.
	 * Giving them back here would cost each task an attempt. */
	commands_settle_results(s);
	for (uint32_t i = 0; i < s->max_conns; i++) {
		struct conn *c = s->conns[i];
		if (!c)
			continue;
		c->nleases = 0;
		conn_mark_dead(c);
	}
	conn_sweep(s);
	server_free(s);
}
