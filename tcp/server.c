/* tcp.c — forqd's TCP server for remote workers: one epoll fd, non-blocking
 * sockets, a connection table and a lease table, all on forqd's main thread.
 *
 * A connection reads into its input buffer, parses requests with proto.c and
 * answers them in order into its output buffer, which is written back as the
 * socket takes it. A GET_TASK(S) WAIT that finds nothing parks the connection
 * (its later requests wait behind it) until tcp_tick finds a task or the wait
 * is over. Leases live in the queue's shared memory (core/lease.c); this file
 * keeps a mirror of them: an id -> slot hash for RESULT and a list per
 * connection for giving them back when it goes. Connections are never freed
 * inside their own handlers: mark_dead() queues them, sweep() frees them. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "clock.h"
#include "errmsg.h"
#include "log.h"
#include "net.h"
#include "proto.h"

#define MS ((uint64_t)1000000)        /* ns per ms */
#define OUT_HIGH (1u << 20)           /* unsent bytes above which a connection is not read */
#define READ_BUDGET (256u << 10)      /* bytes read from one connection per turn: fairness */
#define IN_START 4096                 /* first input buffer; grows to proto_max_request() */
#define OUT_SHRINK (256u << 10)       /* an empty output buffer bigger than this is freed */
#define MAX_ERRORS 16                 /* protocol errors in a row before we hang up */
#define SKIP_BUDGET (8u << 20)        /* bytes dropped unparsed (junk) before we hang up */
#define PARK_POLL_MS 2                /* how often parked GETs look at the queue again */
#define CLOSE_GRACE_MS 2000           /* BYE / closing ERR: time to flush and see EOF */
#define IDLE_SCAN_NS (1000 * MS)      /* idle and grace timeouts are checked this often */
#define EXPIRY_SCAN_NS (10 * MS)      /* lease table scanned at most this often */
#define ACCEPT_PAUSE_NS (100 * MS)    /* out of fds: stop accepting this long */
#define EV_BATCH 256
#define ACCEPT_BATCH 64
#define LISTEN_BACKLOG 4096
#define LISTEN_TAG UINT64_MAX
#define LEASE_NIL UINT32_MAX
#define DEFAULT_MAX_CONNS 10000u
#define DEFAULT_IDLE_MS 300000

/* Metrics slot for requests that did not parse. */
#define CMD_INVALID PROTO_CMD_COUNT

static const char *const cmd_metric_names[PROTO_CMD_COUNT + 1] = {
	[PROTO_GET_TASK] = "GET_TASK", [PROTO_GET_TASKS] = "GET_TASKS", [PROTO_RESULT] = "RESULT",
	[PROTO_FAIL] = "FAIL",         [PROTO_PUT] = "PUT",             [PROTO_TOUCH] = "TOUCH",
	[PROTO_PING] = "PING",         [PROTO_STATS] = "STATS",         [PROTO_EXIT] = "EXIT",
	[PROTO_RETRY] = "RETRY",       [PROTO_AUTH] = "AUTH",           [CMD_INVALID] = "INVALID",
};
_Static_assert(PROTO_CMD_COUNT + 1 <= METRICS_MAX_TCP_COMMANDS, "snapshot holds every command");

enum conn_state {
	CONN_ACTIVE, /* reading requests and answering them */
	CONN_FLUSH,  /* said BYE or a closing ERR (or saw EOF): sending the rest */
	CONN_LINGER, /* write side shut: dropping input until EOF, so no RST eats our reply */
	CONN_DEAD,   /* in s->dead: sweep() frees it */
};

struct conn {
	int fd;
	uint32_t idx;           /* slot in s->conns */
	uint32_t id;            /* lease owner in shared memory; never 0 */
	enum conn_state state;
	uint32_t events;        /* epoll mask registered now */
	struct proto_parser parser;
	char *in;               /* input: unparsed bytes are in[in_off..in_len) */
	size_t in_off, in_len, in_cap;
	struct buf out;         /* output: unsent bytes are out.data[out_off..out.len) */
	size_t out_off;
	uint64_t last_io_ns;    /* last byte read or written */
	uint64_t close_by_ns;   /* FLUSH/LINGER: hang up at this time whatever happens */
	uint64_t skipped;       /* bytes the parser dropped without a request since the last one */
	unsigned errors;        /* protocol errors in a row */
	unsigned need_auth : 1; /* AUTH required before anything else */
	unsigned authed : 1;
	unsigned worker : 1;    /* asked for tasks: counted as a remote worker */
	unsigned eof : 1;       /* peer shut its write side */
	/* A parked GET_TASK(S) WAIT; parked != 0 while in s->park list. */
	unsigned parked : 1;
	unsigned park_batch : 1; /* GET_TASKS (reply TASKS k) rather than GET_TASK */
	uint32_t park_count;
	uint64_t park_until_ns;
	struct conn *park_prev, *park_next;
	/* Leases held: a list through s->leases. */
	uint32_t lease_head;
	uint32_t nleases;
	char peer[INET6_ADDRSTRLEN + 8];
};

/* Mirror of one shared-memory lease entry held by a connection. */
struct lease {
	uint64_t id;            /* 0: entry unused */
	uint64_t deadline_ns;
	uint64_t start_ns;      /* handed out at */
	const void *payload;    /* in shared memory: valid while the entry is held */
	uint32_t conn;          /* index in s->conns */
	uint32_t prev, next;    /* the connection's list */
};

struct tcp_server {
	struct tcp_config c;
	struct forq *q;
	forq_final_fn fn;
	void *ctx;
	int ep, lfd;
	uint16_t port;
	int draining;
	uint64_t accept_paused_until;
	struct auth auth;
	struct proto_limits lim;
	size_t max_request;
	uint32_t batch_max;
	uint64_t lease_ns, idle_ns;

	struct conn **conns;    /* max_conns slots */
	uint32_t max_conns, nconns, nworkers;
	uint32_t *free_idx, nfree;
	uint32_t next_id;
	struct conn **dead;     /* marked, to be swept */
	uint32_t ndead;
	struct conn *park_head, *park_tail;
	uint32_t nparked;

	struct lease *leases;   /* indexed by shared-memory lease slot */
	uint32_t lease_max, nleases;
	uint32_t *hash;         /* open addressing, id -> slot + 1 (0: empty) */
	uint32_t hash_mask;
	unsigned hash_shift;
	uint64_t min_deadline_ns, last_expiry_scan_ns, next_idle_scan_ns;

	struct forq_task *tasks; /* batch_max, for forq_lease_take */
	struct buf scratch;      /* NUL-terminated copies of result texts, STATS */

	/* Metrics: written by the main thread only (load + store, no RMW),
	 * read by the HTTP thread. */
	_Atomic uint64_t m_conns, m_workers, m_leases, m_accepted, m_refused, m_bytes_in, m_bytes_out;
	_Atomic uint64_t m_cmds[PROTO_CMD_COUNT + 1];
	_Atomic uint64_t m_cmd_in[PROTO_CMD_COUNT + 1];  /* request bytes by command */
	_Atomic uint64_t m_cmd_out[PROTO_CMD_COUNT + 1]; /* reply bytes by command */
};

/* Single-writer counter bump: a plain load and store, no locked instruction. */
static inline void count(_Atomic uint64_t *a, uint64_t n)
{
	atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		port = ntohs(a->sin_port);
		snprintf(out, cap, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		port = ntohs(a->sin6_port);
		snprintf(out, cap, "[%s]:%u", host, port);
	} else {
		snprintf(out, cap, "?");
	}
}

/* ---- the lease mirror ---- */

static uint32_t hash_pos(const struct tcp_server *s, uint64_t id)
{
	return (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> s->hash_shift) & s->hash_mask;
}

/* Slot leased with task id, or LEASE_NIL. */
static uint32_t lease_find(const struct tcp_server *s, uint64_t id)
{
	for (uint32_t i = hash_pos(s, id);; i = (i + 1) & s->hash_mask) {
		uint32_t v = s->hash[i];
		if (v == 0)
			return LEASE_NIL;
		if (s->leases[v - 1].id == id)
			return v - 1;
	}
}

static void hash_insert(struct tcp_server *s, uint64_t id, uint32_t slot)
{
	uint32_t i = hash_pos(s, id);
	while (s->hash[i])
		i = (i + 1) & s->hash_mask;
	s->hash[i] = slot + 1;
}

/* Backward-shift deletion: no tombstones, so lookups stay short. */
static void hash_remove(struct tcp_server *s, uint64_t id)
{
	uint32_t i = hash_pos(s, id);
	while (s->hash[i] && s->leases[s->hash[i] - 1].id != id)
		i = (i + 1) & s->hash_mask;
	if (!s->hash[i])
		return;
	for (uint32_t j = i;;) {
		s->hash[i] = 0;
		for (;;) {
			j = (j + 1) & s->hash_mask;
			if (!s->hash[j])
				return;
			uint32_t home = hash_pos(s, s->leases[s->hash[j] - 1].id);
			/* Move j's entry to i unless its home lies cyclically in (i, j]. */
			if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
				break;
		}
		s->hash[i] = s->hash[j];
		i = j;
	}
}

static void lease_add(struct tcp_server *s, struct conn *c, const struct forq_task *t,
		      uint64_t now, uint64_t deadline)
{
	struct lease *l = &s->leases[t->slot];
	*l = (struct lease){.id = t->id, .deadline_ns = deadline, .start_ns = now,
			    .payload = t->payload, .conn = c->idx, .prev = LEASE_NIL,
			    .next = c->lease_head};
	if (c->lease_head != LEASE_NIL)
		s->leases[c->lease_head].prev = t->slot;
	c->lease_head = t->slot;
	c->nleases++;
	hash_insert(s, t->id, t->slot);
	if (s->nleases++ == 0 || deadline < s->min_deadline_ns)
		s->min_deadline_ns = deadline;
}

static void lease_drop(struct tcp_server *s, uint32_t slot)
{
	struct lease *l = &s->leases[slot];
	struct conn *c = s->conns[l->conn];
	hash_remove(s, l->id);
	if (l->prev != LEASE_NIL)
		s->leases[l->prev].next = l->next;
	else
		c->lease_head = l->next;
	if (l->next != LEASE_NIL)
		s->leases[l->next].prev = l->prev;
	c->nleases--;
	s->nleases--;
	l->id = 0;
}

/* A task reached a final state: forqd writes its result line. For DONE and
 * FAILED the record still counts deliveries before this one. */
static void report_final(struct tcp_server *s, struct forq_task_info *rec, const void *payload,
			 int status, const char *text, size_t len)
{
	if (!s->fn)
		return;
	if (status == FORQ_RESULT_DONE || status == FORQ_RESULT_FAILED)
		rec->attempts++;
	buf_reset(&s->scratch);
	if (buf_append(&s->scratch, text, len) || buf_putc(&s->scratch, '\0'))
		s->fn(s->ctx, rec, payload, status, "(result lost: out of memory)");
	else
		s->fn(s->ctx, rec, payload, status, s->scratch.data);
}

/* Gives back a lease (connection gone, or expired): attempts + 1. */
static void lease_giveback(struct tcp_server *s, uint32_t slot, const char *why, int expired)
{
	struct lease *l = &s->leases[slot];
	struct conn *c = s->conns[l->conn];
	int r = forq_lease_giveback(s->q, slot, l->id, c->id, why, expired, s->fn, s->ctx);
	if (r < 0)
		log_event(LOG_WARN, "lease_lost", "id=%" PRIu64 " error=\"%s\"", l->id, strerror(-r));
	else if (expired)
		log_event(LOG_WARN, "lease_expired", "id=%" PRIu64 " peer=%s %s", l->id, c->peer,
			  r == 1 ? "requeued=1" : "dead=1");
	lease_drop(s, slot);
}

static void release_leases(struct tcp_server *s, struct conn *c, const char *why)
{
	while (c->lease_head != LEASE_NIL)
		lease_giveback(s, c->lease_head, why, 0);
}

/* ---- connections ---- */

static size_t out_pending(const struct conn *c)
{
	return c->out.len - c->out_off;
}

static void mark_dead(struct tcp_server *s, struct conn *c)
{
	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	s->dead[s->ndead++] = c;
}

static void park_remove(struct tcp_server *s, struct conn *c)
{
	if (!c->parked)
		return;
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
}

static void park_add(struct tcp_server *s, struct conn *c, int batch, uint32_t n, uint64_t until)
{
	c->parked = 1;
	c->park_batch = (unsigned)batch;
	c->park_count = n;
	c->park_until_ns = until;
	c->park_next = NULL;
	c->park_prev = s->park_tail;
	if (s->park_tail)
		s->park_tail->park_next = c;
	else
		s->park_head = c;
	s->park_tail = c;
	s->nparked++;
}

/* Stop answering: send what is queued, then shut down and close. */
static void begin_close(struct tcp_server *s, struct conn *c, const char *why, uint64_t now)
{
	if (c->state != CONN_ACTIVE)
		return;
	park_remove(s, c);
	release_leases(s, c, why);
	c->state = CONN_FLUSH;
	c->close_by_ns = now + CLOSE_GRACE_MS * MS;
}

static void update_events(struct tcp_server *s, struct conn *c)
{
	uint32_t ev = 0;
	switch (c->state) {
	case CONN_ACTIVE:
		ev = c->eof ? 0 : EPOLLRDHUP; /* level-triggered: once seen, stop asking */
		if (!c->parked && !c->eof && out_pending(c) < OUT_HIGH)
			ev |= EPOLLIN;
		if (out_pending(c))
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
	if (ev == c->events)
		return;
	struct epoll_event e = {.events = ev, .data.u64 = c->idx};
	if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
	else
		mark_dead(s, c);
}

/* Writes what the socket takes. In FLUSH, an empty buffer moves on to LINGER. */
static void flush_out(struct tcp_server *s, struct conn *c, uint64_t now)
{
	while (out_pending(c)) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, out_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out_off += (size_t)n;
			c->last_io_ns = now;
			count(&s->m_bytes_out, (uint64_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		mark_dead(s, c); /* EPIPE, ECONNRESET: the peer is gone */
		return;
	}
	if (!out_pending(c)) {
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
		memmove(c->out.data, c->out.data + c->out_off, out_pending(c));
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
}

/* Checks that a reply was queued. Out of memory, one is missing and the
 * stream is out of step from here: the connection must go. */
static void sent(struct tcp_server *s, struct conn *c, int r)
{
	if (!r)
		return;
	log_event(LOG_ERROR, "tcp_out_of_memory", "peer=%s", c->peer);
	mark_dead(s, c);
}

static void reply_err(struct tcp_server *s, struct conn *c, int err)
{
	sent(s, c, proto_format_err(&c->out, err));
}

/* Leases up to n tasks to c and writes them. Returns how many. */
static int hand_out(struct tcp_server *s, struct conn *c, int batch, uint32_t n, uint64_t now)
{
	uint64_t deadline = now + s->lease_ns;
	if (n > s->batch_max)
		n = s->batch_max;
	int k = forq_lease_take(s->q, c->id, deadline, s->tasks, n, NULL);
	if (k < 0) {
		log_event(LOG_ERROR, "lease_take_failed", "error=\"%s\"", strerror(-k));
		k = 0;
	}
	if (k == 0)
		return 0;
	size_t need = 16;
	for (int i = 0; i < k; i++)
		need += sizeof "TASK 18446744073709551615 65535 4294967295\r\n\r\n" + s->tasks[i].len;
	int r = buf_reserve(&c->out, need);
	if (!r && batch)
		r = proto_format_tasks(&c->out, (uint32_t)k);
	for (int i = 0; i < k; i++) {
		const struct forq_task *t = &s->tasks[i];
		lease_add(s, c, t, now, deadline);
		if (!r)
			r = proto_format_task(&c->out, t->id, t->attempts + 1u, t->payload, t->len);
	}
	if (r) {
		release_leases(s, c, "forqd out of memory"); /* it cannot get them */
		sent(s, c, r);
	}
	return k;
}

static void reply_none(struct tcp_server *s, struct conn *c, int batch)
{
	sent(s, c, batch ? proto_format_tasks(&c->out, 0) : proto_format_none(&c->out));
}

static void do_get(struct tcp_server *s, struct conn *c, const struct proto_req *req, uint64_t now)
{
	int batch = req->cmd == PROTO_GET_TASKS;
	uint32_t n = batch ? req->count : 1;
	if (!c->worker) {
		c->worker = 1;
		s->nworkers++;
		atomic_store_explicit(&s->m_workers, s->nworkers, memory_order_relaxed);
	}
	if (n > s->batch_max)
		n = s->batch_max;
	if (hand_out(s, c, batch, n, now))
		return;
	if (req->wait_ms > 0 && !c->eof) /* a closed peer cannot be waiting: answer now */
		park_add(s, c, batch, n, now + (uint64_t)req->wait_ms * MS);
	else
		reply_none(s, c, batch);
}

static void do_finish(struct tcp_server *s, struct conn *c, const struct proto_req *req,
		      uint64_t now)
{
	static const enum forq_result_status status_of[PROTO_CMD_COUNT] = {
		[PROTO_RESULT] = FORQ_RESULT_DONE, [PROTO_FAIL] = FORQ_RESULT_FAILED,
		[PROTO_RETRY] = FORQ_RESULT_RETRY};
	uint32_t slot = lease_find(s, req->id);
	if (slot == LEASE_NIL || s->leases[slot].conn != c->idx) {
		reply_err(s, c, PROTO_E_NOT_LEASED);
		return;
	}
	struct lease *l = &s->leases[slot];
	struct forq_task_info rec;
	uint64_t run = now > l->start_ns ? now - l->start_ns : 0;
	int final = forq_lease_finish(s->q, slot, req->id, c->id, status_of[req->cmd], req->text,
				      req->text_len, run, &rec);
	const void *payload = l->payload;
	lease_drop(s, slot);
	if (final == -ENOENT) {
		reply_err(s, c, PROTO_E_NOT_LEASED);
		return;
	}
	if (final < 0) {
		log_event(LOG_ERROR, "lease_finish_failed", "id=%" PRIu64 " error=\"%s\"", req->id,
			  strerror(-final));
		reply_err(s, c, PROTO_E_INTERNAL);
		return;
	}
	if (final != FORQ_RESULT_RETRY) {
		report_final(s, &rec, payload, final, req->text, req->text_len);
		forq_lease_release(s->q, slot); /* only once its result is written */
	}
	sent(s, c, proto_format_ok(&c->out));
}

static void do_touch(struct tcp_server *s, struct conn *c, const struct proto_req *req,
		     uint64_t now)
{
	uint32_t slot = lease_find(s, req->id);
	if (slot == LEASE_NIL || s->leases[slot].conn != c->idx ||
	    forq_lease_touch(s->q, slot, req->id, c->id, now + s->lease_ns)) {
		reply_err(s, c, PROTO_E_NOT_LEASED);
		return;
	}
	s->leases[slot].deadline_ns = now + s->lease_ns;
	sent(s, c, proto_format_ok(&c->out));
}

static void do_put(struct tcp_server *s, struct conn *c, const struct proto_req *req)
{
	uint64_t id;
	if (s->draining) {
		reply_err(s, c, PROTO_E_DRAINING);
		return;
	}
	/* timeout 0: the main loop never waits for room. */
	int r = forq_push(s->q, (enum forq_prio)req->prio, req->text, req->text_len, 0, &id);
	switch (r) {
	case 0: sent(s, c, proto_format_ok_id(&c->out, id)); break;
	case -EAGAIN: reply_err(s, c, PROTO_E_QUEUE_FULL); break;
	case -ESHUTDOWN: reply_err(s, c, PROTO_E_DRAINING); break;
	case -EMSGSIZE: reply_err(s, c, PROTO_E_PAYLOAD_TOO_LARGE); break;
	default:
		log_event(LOG_ERROR, "tcp_put_failed", "error=\"%s\"", strerror(-r));
		reply_err(s, c, PROTO_E_INTERNAL);
		break;
	}
}

static void do_stats(struct tcp_server *s, struct conn *c)
{
	struct forq_stats st;
	struct buf *b = &s->scratch;
	buf_reset(b);
	forq_stats_read(s->q, &st);
	int r = buf_printf(
		b,
		"{\"pending\":%" PRIu64 ",\"pending_high\":%" PRIu64 ",\"pending_normal\":%" PRIu64
		",\"pending_low\":%" PRIu64 ",\"in_progress\":%" PRIu64 ",\"retry_waiting\":%" PRIu64
		",\"dead_letters\":%" PRIu64 ",\"enqueued\":%" PRIu64 ",\"done\":%" PRIu64
		",\"failed\":%" PRIu64 ",\"dead\":%" PRIu64 ",\"retried\":%" PRIu64
		",\"capacity\":%" PRIu64 ",\"max_payload\":%u,\"accepting\":%s,\"connections\":%u"
		",\"remote_workers\":%u,\"leases\":%u,\"lease_timeout_ms\":%" PRIu64 "}",
		st.pending[0] + st.pending[1] + st.pending[2], st.pending[0], st.pending[1],
		st.pending[2], st.in_progress, st.retry_waiting, st.dead_letters, st.enqueued,
		st.done, st.failed, st.dead, st.retried, st.capacity, st.max_payload,
		st.accepting && !s->draining ? "true" : "false", s->nconns, s->nworkers, s->nleases,
		s->lease_ns / MS);
	if (r || proto_format_stats(&c->out, b->data, b->len))
		reply_err(s, c, PROTO_E_INTERNAL);
}

static void do_auth(struct tcp_server *s, struct conn *c, const struct proto_req *req,
		    uint64_t now)
{
	char h[PROTO_MAX_LINE_DEFAULT + 16];
	int ok = 1;
	if (s->auth.enabled) {
		/* auth_check_bearer does the constant-time compare; give it a header. */
		int n = snprintf(h, sizeof h, "Bearer %.*s", (int)req->text_len, req->text);
		ok = n > 0 && (size_t)n < sizeof h && memchr(req->text, '\0', req->text_len) == NULL &&
		     auth_check_bearer(&s->auth, h);
		explicit_bzero(h, sizeof h);
	}
	if (ok) {
		c->authed = 1;
		sent(s, c, proto_format_ok(&c->out));
		return;
	}
	log_event(LOG_WARN, "tcp_auth_failed", "peer=%s", c->peer);
	reply_err(s, c, PROTO_E_UNAUTHORIZED);
	begin_close(s, c, "unauthorized", now);
}

static void handle(struct tcp_server *s, struct conn *c, const struct proto_req *req, uint64_t now)
{
	count(&s->m_cmds[req->cmd], 1);
	if (c->need_auth && !c->authed && req->cmd != PROTO_AUTH) {
		reply_err(s, c, PROTO_E_UNAUTHORIZED);
		begin_close(s, c, "unauthorized", now);
		return;
	}
	switch (req->cmd) {
	case PROTO_GET_TASK:
	case PROTO_GET_TASKS: do_get(s, c, req, now); break;
	case PROTO_RESULT:
	case PROTO_FAIL:
	case PROTO_RETRY: do_finish(s, c, req, now); break;
	case PROTO_TOUCH: do_touch(s, c, req, now); break;
	case PROTO_PUT: do_put(s, c, req); break;
	case PROTO_PING: sent(s, c, proto_format_pong(&c->out)); break;
	case PROTO_STATS: do_stats(s, c); break;
	case PROTO_AUTH: do_auth(s, c, req, now); break;
	case PROTO_EXIT:
		sent(s, c, proto_format_bye(&c->out));
		begin_close(s, c, "worker said exit", now);
		break;
	case PROTO_CMD_COUNT: break;
	}
}

static void protocol_error(struct tcp_server *s, struct conn *c, int err, uint64_t now)
{
	count(&s->m_cmds[CMD_INVALID], 1);
	if (++c->errors < MAX_ERRORS) {
		reply_err(s, c, err);
		return;
	}
	log_event(LOG_WARN, "tcp_too_many_errors", "peer=%s last=%s", c->peer, proto_err_word(err));
	reply_err(s, c, PROTO_E_TOO_MANY_ERRORS);
	begin_close(s, c, "too many protocol errors", now);
}

/* Answers buffered requests until one parks, the output is over OUT_HIGH, or
 * the input holds no whole request. Hot path: no syscall per request. */
static void process_input(struct tcp_server *s, struct conn *c, uint64_t now)
{
	struct proto_req req;
	size_t used;
	while (c->state == CONN_ACTIVE && !c->parked && out_pending(c) < OUT_HIGH &&
	       c->in_off < c->in_len) {
		int rc = proto_parse(&c->parser, c->in + c->in_off, c->in_len - c->in_off, &req, &used);
		c->in_off += used; /* req.text stays valid: nothing moves until we return */
		if (rc == PROTO_MORE) {
			/* Bytes dropped with no request: junk after an error, or
			 * empty lines. A stream of nothing else is a flood. */
			c->skipped += used;
			if (c->skipped > SKIP_BUDGET) {
				c->errors = MAX_ERRORS - 1;
				protocol_error(s, c, PROTO_E_LINE_TOO_LONG, now);
			}
			break;
		}
		if (rc < 0) {
			protocol_error(s, c, rc, now);
			continue;
		}
		c->errors = 0;
		c->skipped = 0;
		size_t out0 = c->out.len;
		handle(s, c, &req, now);
		count(&s->m_cmd_in[req.cmd], (uint64_t)used);
		if (c->out.len > out0)
			count(&s->m_cmd_out[req.cmd], (uint64_t)(c->out.len - out0));
	}
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	if (c->eof && c->state == CONN_ACTIVE && !c->parked && out_pending(c) < OUT_HIGH)
		begin_close(s, c, "worker connection closed", now); /* nothing more can come */
}

/* Room for more input: compacts, then grows up to max_request. */
static int in_room(struct tcp_server *s, struct conn *c)
{
	if (c->in_len < c->in_cap)
		return 1;
	if (c->in_off) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
		return 1;
	}
	if (c->in_cap >= s->max_request)
		return 0;
	size_t cap = c->in_cap * 2 < s->max_request ? c->in_cap * 2 : s->max_request;
	char *p = realloc(c->in, cap);
	if (!p)
		return 0;
	c->in = p;
	c->in_cap = cap;
	return 1;
}

static void on_readable(struct tcp_server *s, struct conn *c, uint64_t now)
{
	size_t budget = READ_BUDGET;
	if (c->state == CONN_LINGER) {
		char junk[4096];
		ssize_t n;
		while ((n = recv(c->fd, junk, sizeof junk, MSG_DONTWAIT)) > 0)
			count(&s->m_bytes_in, (uint64_t)n);
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			mark_dead(s, c);
		return;
	}
	while (c->state == CONN_ACTIVE && !c->parked && !c->eof && out_pending(c) < OUT_HIGH &&
	       budget > 0) {
		if (!in_room(s, c)) {
			log_event(LOG_ERROR, "tcp_out_of_memory", "peer=%s", c->peer);
			mark_dead(s, c);
			return;
		}
		size_t want = c->in_cap - c->in_len;
		ssize_t n = recv(c->fd, c->in + c->in_len, want < budget ? want : budget, MSG_DONTWAIT);
		if (n > 0) {
			c->in_len += (size_t)n;
			budget -= (size_t)n;
			c->last_io_ns = now;
			count(&s->m_bytes_in, (uint64_t)n);
			process_input(s, c, now);
			if ((size_t)n < want)
				break; /* drained (level-triggered epoll tells us of more) */
			continue;
		}
		if (n == 0) {
			c->eof = 1;
			process_input(s, c, now);
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			mark_dead(s, c); /* ECONNRESET: the peer is gone */
		break;
	}
}

static void conn_free(struct tcp_server *s, struct conn *c)
{
	park_remove(s, c);
	release_leases(s, c, "worker connection lost");
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
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
	atomic_store_explicit(&s->m_conns, s->nconns, memory_order_relaxed);
	atomic_store_explicit(&s->m_workers, s->nworkers, memory_order_relaxed);
}

/* The one place connections are freed. */
static void sweep(struct tcp_server *s)
{
	for (uint32_t i = 0; i < s->ndead; i++)
		conn_free(s, s->dead[i]);
	s->ndead = 0;
	atomic_store_explicit(&s->m_leases, s->nleases, memory_order_relaxed);
}

static void accept_one(struct tcp_server *s, int fd, const struct sockaddr *sa, uint64_t now)
{
	int one = 1;
	struct conn *c = NULL;
	if (s->nfree == 0) {
		/* Told why, best effort: a fresh socket's buffer takes one line. */
		static const char refusal[] = "ERR too-many-connections\r\n";
		ssize_t sent_n = send(fd, refusal, sizeof refusal - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)sent_n;
		close(fd);
		count(&s->m_refused, 1);
		log_event(LOG_WARN, "tcp_refused", "reason=\"connection limit %u reached\"",
			  s->max_conns);
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c || !(c->in = malloc(IN_START))) {
		free(c);
		close(fd);
		log_event(LOG_ERROR, "tcp_out_of_memory", "at=accept");
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->fd = fd;
	c->idx = s->free_idx[--s->nfree];
	if (++s->next_id == 0)
		s->next_id = 1;
	c->id = s->next_id;
	c->state = CONN_ACTIVE;
	c->in_cap = IN_START;
	c->out = (struct buf)BUF_INIT;
	c->lease_head = LEASE_NIL;
	c->last_io_ns = now;
	c->need_auth = s->auth.enabled && !net_addr_is_loopback(sa);
	proto_parser_init(&c->parser, &s->lim);
	addr_text(sa, c->peer, sizeof c->peer);
	c->events = EPOLLIN | EPOLLRDHUP;
	struct epoll_event e = {.events = c->events, .data.u64 = c->idx};
	s->conns[c->idx] = c;
	s->nconns++;
	count(&s->m_accepted, 1);
	atomic_store_explicit(&s->m_conns, s->nconns, memory_order_relaxed);
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e))
		mark_dead(s, c);
	log_event(LOG_DEBUG, "tcp_accepted", "peer=%s", c->peer);
}

static void set_listen_events(struct tcp_server *s, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.u64 = LISTEN_TAG};
	epoll_ctl(s->ep, EPOLL_CTL_MOD, s->lfd, &e);
}

static void on_accept(struct tcp_server *s, uint64_t now)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			accept_one(s, fd, (struct sockaddr *)&ss, now);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* Level-triggered: pause, or the loop spins on the backlog. */
			log_event(LOG_WARN, "tcp_accept_paused", "error=\"%s\"", strerror(errno));
			s->accept_paused_until = now + ACCEPT_PAUSE_NS;
			set_listen_events(s, 0);
		}
		return;
	}
}

/* After any activity: answer what is buffered, write, set the epoll mask. */
static void settle(struct tcp_server *s, struct conn *c, uint64_t now)
{
	if (c->state == CONN_ACTIVE)
		process_input(s, c, now);
	if (c->state != CONN_DEAD && out_pending(c))
		flush_out(s, c, now);
	if (c->state != CONN_DEAD)
		update_events(s, c);
}

void tcp_run(struct tcp_server *s)
{
	struct epoll_event evs[EV_BATCH];
	int n = epoll_wait(s->ep, evs, EV_BATCH, 0);
	uint64_t now = clock_mono_ns();
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == LISTEN_TAG) {
			on_accept(s, now);
			continue;
		}
		struct conn *c = s->conns[evs[i].data.u64];
		if (!c || c->state == CONN_DEAD)
			continue;
		uint32_t ev = evs[i].events;
		if (ev & EPOLLERR) {
			mark_dead(s, c);
			continue;
		}
		if (ev & EPOLLOUT)
			flush_out(s, c, now);
		if (c->state == CONN_DEAD)
			continue;
		if (c->parked && (ev & (EPOLLRDHUP | EPOLLHUP))) {
			mark_dead(s, c); /* gone while waiting: hand it nothing */
			continue;
		}
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
			on_readable(s, c, now);
		if (c->state != CONN_DEAD)
			settle(s, c, now);
	}
	sweep(s);
}

/* Parked GETs, oldest first; one empty take ends the round (the queue is
 * empty or the lease table full), so many waiters cost one look per tick. */
static void serve_parked(struct tcp_server *s, uint64_t now)
{
	int empty = 0;
	uint32_t rounds = s->nparked;
	struct conn *c = s->park_head;
	while (c && rounds--) {
		struct conn *next = c->park_next;
		int got = 0;
		size_t out0 = c->out.len;
		if (!empty && !(got = hand_out(s, c, c->park_batch, c->park_count, now)))
			empty = 1;
		if (got || now >= c->park_until_ns) {
			if (!got)
				reply_none(s, c, c->park_batch);
			if (c->out.len > out0) /* the delayed reply of a GET_TASK(S) WAIT */
				count(&s->m_cmd_out[c->park_batch ? PROTO_GET_TASKS : PROTO_GET_TASK],
				      (uint64_t)(c->out.len - out0));
			park_remove(s, c);
			c->last_io_ns = now;
			if (c->state != CONN_DEAD)
				settle(s, c, now);
		}
		c = next;
	}
}

static void expire_leases(struct tcp_server *s, uint64_t now)
{
	uint64_t min = UINT64_MAX;
	s->last_expiry_scan_ns = now;
	for (uint32_t i = 0; i < s->lease_max && s->nleases; i++) {
		struct lease *l = &s->leases[i];
		if (!l->id)
			continue;
		if (l->deadline_ns <= now)
			lease_giveback(s, i, "lease expired", 1);
		else if (l->deadline_ns < min)
			min = l->deadline_ns;
	}
	s->min_deadline_ns = min;
}

static void scan_idle(struct tcp_server *s, uint64_t now)
{
	s->next_idle_scan_ns = now + IDLE_SCAN_NS;
	for (uint32_t i = 0; i < s->max_conns; i++) {
		struct conn *c = s->conns[i];
		if (!c || c->state == CONN_DEAD)
			continue;
		if (c->state != CONN_ACTIVE) {
			if (now >= c->close_by_ns)
				mark_dead(s, c);
		} else if (!c->parked && now - c->last_io_ns >= s->idle_ns) {
			log_event(LOG_INFO, "tcp_idle_timeout", "peer=%s idle_ms=%" PRIu64, c->peer,
				  (now - c->last_io_ns) / MS);
			mark_dead(s, c);
		}
	}
}

void tcp_tick(struct tcp_server *s, uint64_t now)
{
	if (s->accept_paused_until && now >= s->accept_paused_until) {
		s->accept_paused_until = 0;
		set_listen_events(s, EPOLLIN);
	}
	if (s->nparked)
		serve_parked(s, now);
	if (s->nleases && now >= s->min_deadline_ns &&
	    now - s->last_expiry_scan_ns >= EXPIRY_SCAN_NS)
		expire_leases(s, now);
	if (now >= s->next_idle_scan_ns)
		scan_idle(s, now);
	sweep(s);
}

int tcp_timeout_ms(const struct tcp_server *s)
{
	if (s->nparked)
		return PARK_POLL_MS;
	if (!s->nconns)
		return -1;
	uint64_t now = clock_mono_ns(), due = s->next_idle_scan_ns;
	if (s->nleases && s->min_deadline_ns < due)
		due = s->min_deadline_ns;
	if (due <= now)
		return 0;
	return (int)((due - now + MS - 1) / MS);
}

int tcp_fd(const struct tcp_server *s)
{
	return s->ep;
}

uint16_t tcp_port(const struct tcp_server *s)
{
	return s->port;
}

void tcp_draining(struct tcp_server *s)
{
	s->draining = 1;
}

void tcp_snapshot(struct tcp_server *s, struct metrics_snapshot *snap)
{
	snap->remote_workers = atomic_load_explicit(&s->m_workers, memory_order_relaxed);
	snap->leases_outstanding = atomic_load_explicit(&s->m_leases, memory_order_relaxed);
	snap->tcp_connections = atomic_load_explicit(&s->m_accepted, memory_order_relaxed);
	snap->tcp_refused = atomic_load_explicit(&s->m_refused, memory_order_relaxed);
	snap->tcp_bytes_in = atomic_load_explicit(&s->m_bytes_in, memory_order_relaxed);
	snap->tcp_bytes_out = atomic_load_explicit(&s->m_bytes_out, memory_order_relaxed);
	snap->n_tcp_commands = PROTO_CMD_COUNT + 1;
	for (int i = 0; i <= PROTO_CMD_COUNT; i++) {
		snprintf(snap->tcp_commands[i].name, sizeof snap->tcp_commands[i].name, "%s",
			 cmd_metric_names[i]);
		snap->tcp_commands[i].count =
			atomic_load_explicit(&s->m_cmds[i], memory_order_relaxed);
		snap->tcp_commands[i].bytes_in =
			atomic_load_explicit(&s->m_cmd_in[i], memory_order_relaxed);
		snap->tcp_commands[i].bytes_out =
			atomic_load_explicit(&s->m_cmd_out[i], memory_order_relaxed);
	}
}

static void server_free(struct tcp_server *s)
{
	if (s->ep >= 0)
		close(s->ep);
	if (s->lfd >= 0)
		close(s->lfd);
	free(s->conns);
	free(s->free_idx);
	free(s->dead);
	free(s->leases);
	free(s->hash);
	free(s->tasks);
	buf_free(&s->scratch);
	auth_clear(&s->auth);
	free(s);
}

int tcp_start(struct tcp_server **sp, const struct tcp_config *c, struct forq *q,
	      forq_final_fn fn, void *ctx, char *err, size_t errlen)
{
	struct forq_limits h;
	forq_admin_limits(q, &h);
	struct tcp_server *s = calloc(1, sizeof *s);
	int r = -ENOMEM;
	*sp = NULL;
	if (!s) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->ep = s->lfd = -1;
	s->c = *c;
	s->q = q;
	s->fn = fn;
	s->ctx = ctx;
	s->max_conns = c->max_conns ? c->max_conns : DEFAULT_MAX_CONNS;
	s->lease_ns = (uint64_t)(c->lease_timeout_ms > 0 ? c->lease_timeout_ms : 30000) * MS;
	s->idle_ns = (uint64_t)(c->idle_timeout_ms > 0 ? c->idle_timeout_ms : DEFAULT_IDLE_MS) * MS;
	s->batch_max = c->batch_max && c->batch_max < h.batch_max ? c->batch_max : h.batch_max;
	s->lease_max = h.lease_max;
	s->lim.max_line = PROTO_MAX_LINE_DEFAULT;
	s->lim.max_payload = c->max_payload && c->max_payload < h.max_payload ? c->max_payload
									      : h.max_payload;
	s->max_request = proto_max_request(&s->lim);
	s->next_idle_scan_ns = clock_mono_ns() + IDLE_SCAN_NS;
	s->min_deadline_ns = UINT64_MAX;

	if (auth_init(&s->auth, c->admin_token)) {
		errmsg_set(err, errlen, "the admin token is empty");
		r = -EINVAL;
		goto fail;
	}
	unsigned bits = 1;
	while ((1u << bits) < 2 * s->lease_max)
		bits++;
	s->hash_mask = (1u << bits) - 1;
	s->hash_shift = 64 - bits;
	s->conns = calloc(s->max_conns, sizeof *s->conns);
	s->free_idx = malloc(s->max_conns * sizeof *s->free_idx);
	s->dead = malloc(s->max_conns * sizeof *s->dead);
	s->leases = calloc(s->lease_max, sizeof *s->leases);
	s->hash = calloc((size_t)s->hash_mask + 1, sizeof *s->hash);
	s->tasks = calloc(s->batch_max, sizeof *s->tasks);
	if (!s->conns || !s->free_idx || !s->dead || !s->leases || !s->hash || !s->tasks) {
		errmsg_set(err, errlen, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < s->max_conns; i++)
		s->free_idx[i] = s->max_conns - 1 - i; /* low indexes first */
	s->nfree = s->max_conns;

	if ((s->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		r = -errno;
		errmsg_set(err, errlen, "epoll_create1: %s", strerror(errno));
		goto fail;
	}
	/* Beyond loopback only with a token or --insecure (like the HTTP side). */
	struct net_listener l;
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
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = LISTEN_TAG};
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &e)) {
		r = -errno;
		errmsg_set(err, errlen, "epoll_ctl: %s", strerror(errno));
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
	for (uint32_t i = 0; i < s->max_conns; i++) {
		struct conn *c = s->conns[i];
		if (!c)
			continue;
		while (c->lease_head != LEASE_NIL)
			lease_drop(s, c->lease_head);
		if (c->state != CONN_DEAD)
			mark_dead(s, c);
	}
	sweep(s);
	server_free(s);
}
