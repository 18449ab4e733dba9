/* worker_session.c — one `forq worker` connection (worker_session.h). */
#include "worker_session.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "handler.h"
#include "log.h"
#include "proto.h"

#define MS ((uint64_t)1000000)      /* ns per ms */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000
#define REPLY_SLACK_MS 30000        /* beyond WAIT: a silent forqd is a lost one */
#define FLUSH_EVERY_NS (50 * MS)    /* results of a slow batch go out at least this often */
#define SLOW_BATCH_NS (200 * MS)    /* slower batches: no prefetch (it would hold leases) */
#define REPLY_MAX_LINE 4096         /* an ERR or INFO line, with room */
#define MAX_PAYLOAD (1u << 20)      /* forq's largest task */
#define IN_START (64u << 10)
#define MAX_EXPECT 16
#define DEFAULT_LEASE_MS 30000      /* forqd's --lease-timeout default */

_Static_assert(HANDLER_MAX_OUTPUT_DEFAULT <= PROTO_MAX_VALUE, "forqd keeps a whole result");

enum expect_kind {
	EXP_AUTH,   /* OK, or ERR unauthorized */
	EXP_INFO,   /* INFO: we read the lease timeout (ERR from an older forqd) */
	EXP_PROBE,  /* RESULTS 0 0: forqd takes RESULTS batches (ERR from an older one) */
	EXP_SIMPLE, /* n replies OK / ERR (RESULT, FAIL, RETRY, TOUCH) and nb
		     * replies RESULTS a b (batches), in any order */
	EXP_GET,    /* a batch: TASKS k + k TASK, or TASK / NONE */
	EXP_BYE,
};

struct expect {
	enum expect_kind kind;
	uint32_t n;  /* EXP_SIMPLE: OK/ERR replies; EXP_GET: tasks asked for */
	uint32_t nb; /* EXP_SIMPLE: RESULTS batch replies */
};

struct task {
	uint64_t id;
	size_t off, len; /* payload in w->payloads */
};

enum session_end { S_LOST, S_DONE, S_REFUSED, S_FAILED };

struct wconn {
	const struct worker_opts *o;
	const volatile sig_atomic_t *stop; /* 1: finish what is in hand; 2: now */
	const sigset_t *open_mask;
	struct handler *h;
	int noop;
	int fd;
	struct proto_limits lim;
	char *in;
	size_t in_off, in_len, in_cap;
	struct buf out;
	size_t out_off;
	struct expect exp[MAX_EXPECT];
	unsigned exp_head, exp_n;
	uint32_t gets;        /* GET requests in flight */
	uint64_t asked;       /* tasks those may bring */
	uint32_t want;        /* TASK blocks still to come for the head GET */
	struct task *batch;   /* tasks received, not yet run */
	uint32_t nbatch, batch_cap;
	struct buf payloads;
	struct buf result;
	int framed;           /* forqd answered the probe: results go in RESULTS batches */
	struct buf items;     /* the batch being filled: nitems RESULTS items */
	uint32_t nitems;
	uint64_t done;        /* tasks answered, for --max-tasks */
	uint64_t lease_ms;    /* forqd's lease timeout, from INFO (0: not yet known) */
	uint64_t last_batch_ns;
	uint64_t reads;       /* read attempts: signals are let in every 64 */
	int exit_sent;
};

/* n plain replies (and nb batch replies for EXP_SIMPLE), coalesced into a
 * SIMPLE run at the tail. */
static void expect_push2(struct wconn *w, enum expect_kind k, uint32_t n, uint32_t nb)
{
	if (k == EXP_SIMPLE && w->exp_n) {
		struct expect *tail = &w->exp[(w->exp_head + w->exp_n - 1) % MAX_EXPECT];
		if (tail->kind == EXP_SIMPLE) {
			tail->n += n;
			tail->nb += nb;
			return;
		}
	}
	/* At most: AUTH, INFO, PROBE, 2 GETs and a SIMPLE run between each. */
	if (w->exp_n == MAX_EXPECT)
		abort(); /* our bug: more in flight than the design allows */
	w->exp[(w->exp_head + w->exp_n) % MAX_EXPECT] = (struct expect){k, n, nb};
	w->exp_n++;
}

static void expect_push(struct wconn *w, enum expect_kind k, uint32_t n)
{
	expect_push2(w, k, n, 0);
}

static void expect_pop(struct wconn *w)
{
	w->exp_head = (w->exp_head + 1) % MAX_EXPECT;
	w->exp_n--;
}

/* Waits for fd events, signals open. Returns revents, 0 on timeout or
 * signal, -1 on error. timeout_ms < 0: forever. */
static int wait_fd(struct wconn *w, short events, int timeout_ms)
{
	struct pollfd p = {.fd = w->fd, .events = events};
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
	int r = ppoll(&p, 1, timeout_ms < 0 ? NULL : &ts, w->open_mask);
	if (r < 0)
		return errno == EINTR ? 0 : -1;
	return r ? p.revents : 0;
}

static void sleep_ms(const sigset_t *open_mask, int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	ppoll(NULL, 0, &ts, open_mask);
}

/* Lets a blocked SIGINT/SIGTERM in: under steady load we may never wait. */
static void take_signals(struct wconn *w)
{
	struct timespec zero = {0, 0};
	ppoll(NULL, 0, &zero, w->open_mask);
}

/* Reads what is there into the input buffer (growing it). Returns 1 read,
 * 0 nothing now, -1 connection gone. */
static int read_some(struct wconn *w)
{
	if (w->in_off && w->in_off == w->in_len)
		w->in_off = w->in_len = 0;
	if (w->in_len == w->in_cap) {
		if (w->in_off) {
			memmove(w->in, w->in + w->in_off, w->in_len - w->in_off);
			w->in_len -= w->in_off;
			w->in_off = 0;
		} else {
			char *p = realloc(w->in, w->in_cap * 2);
			if (!p)
				return -1;
			w->in = p;
			w->in_cap *= 2;
		}
	}
	ssize_t n = recv(w->fd, w->in + w->in_len, w->in_cap - w->in_len, MSG_DONTWAIT);
	if (n > 0) {
		w->in_len += (size_t)n;
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	return -1;
}

/* The results answered since the last call go out as one RESULTS batch:
 * called before anything else is queued, so the wire order is the order of
 * the expectations. */
static void results_close(struct wconn *w)
{
	if (!w->nitems)
		return;
	if (proto_format_results(&w->out, w->nitems) ||
	    buf_append(&w->out, w->items.data, w->items.len)) {
		/* Out of memory: those leases run out, and the tasks come back. */
		log_event(LOG_ERROR, "worker_out_of_memory", "results_lost=%" PRIu32, w->nitems);
	} else {
		expect_push2(w, EXP_SIMPLE, 0, 1);
	}
	buf_reset(&w->items);
	w->nitems = 0;
}

/* Sends the output buffer, reading replies meanwhile so that neither side
 * can fill the other's buffers and wait forever. Returns 0 or -1 (gone). */
static int flush_out(struct wconn *w)
{
	results_close(w);
	while (w->out_off < w->out.len) {
		ssize_t n = send(w->fd, w->out.data + w->out_off, w->out.len - w->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			w->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		if (*w->stop >= 2)
			return -1;
		int ev = wait_fd(w, POLLIN | POLLOUT, 1000);
		if (ev < 0 || (ev & (POLLERR | POLLNVAL)))
			return -1;
		if ((ev & (POLLIN | POLLHUP)) && read_some(w) < 0)
			return -1;
	}
	buf_reset(&w->out);
	w->out_off = 0;
	return 0;
}

/* The next reply. Returns 1 with *rep (text valid until the next call), 0
 * when the connection is lost or broken, -1 when told to stop now. Reads
 * first and waits only when nothing is there: replies are usually waiting. */
static int next_reply(struct wconn *w, struct proto_reply *rep)
{
	int timeout = (w->o->wait_ms > 0 ? w->o->wait_ms : 0) + REPLY_SLACK_MS;
	uint64_t give_up = 0;
	for (;;) {
		size_t used;
		if (w->in_off < w->in_len) {
			int rc = proto_parse_reply(&w->lim, w->in + w->in_off, w->in_len - w->in_off,
						   rep, &used);
			if (rc == PROTO_PARSED) {
				w->in_off += used;
				return 1;
			}
			if (rc < 0) {
				log_event(LOG_ERROR, "worker_bad_reply", "error=%s", proto_err_word(rc));
				return 0;
			}
		}
		if (++w->reads % 64 == 0)
			take_signals(w);
		if (*w->stop >= 2)
			return -1;
		int r = read_some(w);
		if (r > 0)
			continue;
		if (r < 0)
			return 0;
		uint64_t now = clock_mono_ns();
		if (!give_up)
			give_up = now + (uint64_t)timeout * MS;
		if (now >= give_up) {
			log_event(LOG_WARN, "worker_no_reply", "waited_ms=%d", timeout);
			return 0;
		}
		if (wait_fd(w, POLLIN, (int)((give_up - now) / MS) + 1) < 0)
			return 0;
	}
}

/* Tasks a new GET may ask for (0: none, --max-tasks reached or stopping). */
static uint32_t may_ask(const struct wconn *w)
{
	if (*w->stop)
		return 0;
	if (!w->o->max_tasks)
		return w->o->batch;
	uint64_t held = w->done + w->asked + w->nbatch;
	if (held >= w->o->max_tasks)
		return 0;
	uint64_t left = w->o->max_tasks - held;
	return left < w->o->batch ? (uint32_t)left : w->o->batch;
}

static void send_get(struct wconn *w, uint32_t n, int32_t wait_ms)
{
	results_close(w); /* results first: their leases free up for this GET */
	if (w->o->batch == 1)
		proto_format_get_task(&w->out, wait_ms, w->o->queues);
	else
		proto_format_get_tasks(&w->out, n, wait_ms, w->o->queues);
	expect_push(w, EXP_GET, n);
	w->gets++;
	w->asked += n;
}

static int batch_add(struct wconn *w, const struct proto_reply *rep)
{
	if (w->nbatch == w->batch_cap) {
		uint32_t cap = w->batch_cap ? w->batch_cap * 2 : 64;
		struct task *b = realloc(w->batch, cap * sizeof *b);
		if (!b)
			return -1;
		w->batch = b;
		w->batch_cap = cap;
	}
	struct task *t = &w->batch[w->nbatch];
	t->id = rep->id;
	t->off = w->payloads.len;
	t->len = rep->text_len;
	if (buf_append(&w->payloads, rep->text, rep->text_len))
		return -1;
	w->nbatch++;
	return 0;
}

/* Puts the handler's answer for t on the wire (not yet flushed): an item of
 * the RESULTS batch being filled, binary-safe, or for an older forqd one
 * line, its line ends made spaces and cut to fit. */
static void answer(struct wconn *w, const struct task *t, enum handler_status hs)
{
	static const enum proto_cmd cmd_of[] = {
		[HANDLER_OK] = PROTO_RESULT, [HANDLER_FAIL] = PROTO_FAIL, [HANDLER_RETRY] = PROTO_RETRY};
	if (w->framed) {
		const char *text = w->result.data ? w->result.data : "";
		size_t len = w->result.len;
		if (hs != HANDLER_OK && !len) {
			text = hs == HANDLER_FAIL ? "failed" : "retry";
			len = strlen(text);
		}
		if (w->nitems == PROTO_RESULTS_MAX)
			results_close(w);
		if (proto_format_item(&w->items, cmd_of[hs], t->id, text, len))
			log_event(LOG_ERROR, "worker_out_of_memory", "result_lost=%" PRIu64, t->id);
		else
			w->nitems++;
		return;
	}
	size_t room = PROTO_MAX_LINE_DEFAULT - PROTO_ID_TEXT_OVERHEAD;
	struct buf *r = &w->result;
	if (r->len > room) {
		r->len = room;
		r->data[room] = '\0';
	}
	for (size_t i = 0; i < r->len; i++)
		if (r->data[i] == '\r' || r->data[i] == '\n')
			r->data[i] = ' ';
	const char *text = r->data ? r->data : "";
	switch (hs) {
	case HANDLER_OK:
		proto_format_result(&w->out, t->id, text, r->len);
		break;
	case HANDLER_FAIL:
		proto_format_fail(&w->out, t->id, r->len ? text : "failed", r->len ? r->len : 6);
		break;
	case HANDLER_RETRY:
		proto_format_retry(&w->out, t->id, r->len ? text : "retry", r->len ? r->len : 5);
		break;
	}
	expect_push(w, EXP_SIMPLE, 1);
}

/* Extends the leases of tasks i.. of the batch. */
static void touch_rest(struct wconn *w, uint32_t i)
{
	results_close(w);
	for (; i < w->nbatch; i++) {
		proto_format_touch(&w->out, w->batch[i].id);
		expect_push(w, EXP_SIMPLE, 1);
	}
}

/* Runs the batch in hand and answers each task. Returns 0, -1 if lost. */
static int run_batch(struct wconn *w)
{
	uint64_t start = clock_mono_ns(), last_flush = start, last_touch = start;
	uint64_t touch_ns = w->lease_ms ? w->lease_ms * MS / 3 : 0;
	for (uint32_t i = 0; i < w->nbatch; i++) {
		const struct task *t = &w->batch[i];
		enum handler_status hs = HANDLER_OK;
		if (*w->stop >= 2)
			return -1;
		buf_reset(&w->result);
		if (!w->noop)
			hs = handler_run(w->h, w->payloads.data + t->off, t->len, &w->result);
		answer(w, t, hs);
		w->done++;
		if (w->noop)
			continue;
		uint64_t now = clock_mono_ns();
		if (now - start >= FLUSH_EVERY_NS)
			take_signals(w); /* a slow batch still hears a second SIGINT */
		if (touch_ns && now - last_touch >= touch_ns) {
			touch_rest(w, i + 1);
			last_touch = now;
		}
		if (now - last_flush >= FLUSH_EVERY_NS) {
			if (flush_out(w))
				return -1;
			last_flush = now;
		}
	}
	w->last_batch_ns = clock_mono_ns() - start;
	w->nbatch = 0;
	buf_reset(&w->payloads);
	return 0;
}

/* A whole batch arrived for the head GET: run it and ask for more.
 *
 * Pipelining: while batches come back full of tasks and run fast, two GETs
 * without WAIT stay in flight, so forqd prepares the next batch while we run
 * this one, and each batch costs one send: its results and the next GET. A
 * GET with WAIT is sent only when nothing else is in flight (the queue looked
 * empty), so results never queue behind a parked request. */
static int batch_complete(struct wconn *w, uint32_t asked)
{
	expect_pop(w);
	w->gets--;
	w->asked -= asked;
	if (w->nbatch) {
		int fast = w->last_batch_ns < SLOW_BATCH_NS;
		uint32_t n = may_ask(w);
		if (n && fast && w->gets == 0) {
			send_get(w, n, -1); /* start of a streak: the prefetch goes now */
			if (flush_out(w))
				return -1;
		}
		if (run_batch(w))
			return -1;
		n = may_ask(w);
		if (n && fast && w->gets < 2 && w->last_batch_ns < SLOW_BATCH_NS)
			send_get(w, n, -1);
	}
	uint32_t n = may_ask(w);
	if (n && w->gets == 0)
		send_get(w, n, w->o->wait_ms);
	return flush_out(w);
}

/* After each reply: when nothing more is coming and no more is wanted, EXIT. */
static int maybe_exit(struct wconn *w)
{
	if (w->exit_sent || w->gets || w->nbatch || may_ask(w))
		return 0;
	results_close(w); /* before EXIT: after it nothing is read */
	proto_format_simple(&w->out, PROTO_EXIT);
	expect_push(w, EXP_BYE, 0);
	w->exit_sent = 1;
	return flush_out(w);
}

/* The reply's text for a log line: cut, and escaped (it is the server's). */
static const char *reply_text(const struct proto_reply *rep, char *buf, size_t cap)
{
	char tmp[128];
	size_t n = rep->text_len < sizeof tmp - 1 ? rep->text_len : sizeof tmp - 1;
	memcpy(tmp, rep->text, n);
	tmp[n] = '\0';
	return log_quote(tmp, buf, cap);
}

/* One reply against the head of the FIFO. Returns 0 to go on, or a
 * session_end + 1. */
static int on_reply(struct wconn *w, const struct proto_reply *rep)
{
	if (!w->exp_n) {
		log_event(LOG_ERROR, "worker_bad_reply", "error=\"reply to no request\"");
		return S_LOST + 1;
	}
	struct expect *e = &w->exp[w->exp_head];
	char q[300];
	int is_err = rep->kind == PROTO_REP_ERR;
	if (is_err && rep->text_len == 12 && !memcmp(rep->text, "unauthorized", 12)) {
		log_event(LOG_ERROR, "worker_refused",
			  "error=\"forqd wants a valid token: pass --token-file FILE or set "
			  "FORQ_TOKEN\"");
		return S_REFUSED + 1;
	}
	switch (e->kind) {
	case EXP_AUTH:
		expect_pop(w);
		return is_err ? S_REFUSED + 1 : 0;
	case EXP_INFO:
		if (rep->kind == PROTO_REP_INFO)
			w->lease_ms = rep->info.lease_timeout_ms;
		else {
			/* An older forqd: TOUCH as for its default lease timeout. */
			w->lease_ms = DEFAULT_LEASE_MS;
			log_event(LOG_INFO, "worker_lease_timeout_assumed",
				  "ms=%d reason=\"forqd does not answer INFO (it is older than this "
				  "worker)\"",
				  DEFAULT_LEASE_MS);
		}
		expect_pop(w);
		return 0;
	case EXP_PROBE:
		expect_pop(w);
		if (rep->kind == PROTO_REP_RESULTS) {
			w->framed = 1;
			return 0;
		}
		if (!is_err) {
			log_event(LOG_ERROR, "worker_bad_reply", "error=\"unexpected reply to RESULTS 0\"");
			return S_LOST + 1;
		}
		log_event(LOG_INFO, "worker_results_one_line",
			  "reason=\"forqd has no RESULTS batches (it is older than this worker): "
			  "results are sent one line each, line ends as spaces, cut to fit\"");
		return 0;
	case EXP_SIMPLE:
		if (rep->kind == PROTO_REP_RESULTS && e->nb) {
			if (rep->not_leased)
				log_event(LOG_WARN, "worker_answer_refused",
					  "results=%" PRIu32 " error=\"not-leased, or forqd failed\"",
					  rep->not_leased);
			e->nb--;
		} else if (e->n) {
			if (is_err)
				log_event(LOG_WARN, "worker_answer_refused", "error=\"%s\"",
					  reply_text(rep, q, sizeof q));
			e->n--;
		} else {
			/* A batch's closing ERR: forqd lost its framing (our bug). */
			log_event(LOG_ERROR, "worker_batch_refused", "reply=\"%s\"",
				  reply_text(rep, q, sizeof q));
			return S_LOST + 1;
		}
		if (!e->n && !e->nb)
			expect_pop(w);
		return 0;
	case EXP_BYE:
		expect_pop(w);
		return S_DONE + 1;
	case EXP_GET:
		break;
	}
	uint32_t asked = e->n;
	if (w->want) {
		if (rep->kind != PROTO_REP_TASK)
			goto bad;
		if (batch_add(w, rep))
			return S_FAILED + 1;
		if (--w->want)
			return 0;
	} else if (rep->kind == PROTO_REP_TASKS) {
		if (rep->count > asked)
			goto bad;
		if ((w->want = rep->count))
			return 0;
	} else if (rep->kind == PROTO_REP_TASK) {
		if (batch_add(w, rep))
			return S_FAILED + 1;
	} else if (rep->kind == PROTO_REP_ERR && rep->text_len == 13 &&
		   !memcmp(rep->text, "unknown-queue", 13)) {
		log_event(LOG_ERROR, "worker_refused",
			  "error=\"forqd serves no queue named in --queue %s\"",
			  w->o->queues ? w->o->queues : "");
		return S_REFUSED + 1;
	} else if (rep->kind == PROTO_REP_ERR) {
		log_event(LOG_WARN, "worker_get_refused", "error=\"%s\"",
			  reply_text(rep, q, sizeof q));
	} else if (rep->kind != PROTO_REP_NONE) {
		goto bad;
	}
	return batch_complete(w, asked) ? S_LOST + 1 : 0;
bad:
	log_event(LOG_ERROR, "worker_bad_reply", "error=\"unexpected reply to GET\"");
	return S_LOST + 1;
}

static int connect_to(const struct worker_opts *o, const sigset_t *open_mask)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV},
			*ai = NULL, *a;
	int fd = -1, one = 1, r = getaddrinfo(o->host, o->port, &hints, &ai);
	if (r) {
		log_event(LOG_WARN, "worker_connect_failed", "addr=%s error=\"%s\"", o->connect,
			  gai_strerror(r));
		return -1;
	}
	for (a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) && errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			struct timespec ts = {CONNECT_TIMEOUT_MS / 1000, 0};
			int err = ETIMEDOUT;
			socklen_t el = sizeof err;
			if (ppoll(&p, 1, &ts, open_mask) == 1)
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
			errno = err;
		} else {
			errno = 0;
		}
		if (errno) {
			log_event(LOG_WARN, "worker_connect_failed", "addr=%s error=\"%s\"", o->connect,
				  strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static enum session_end session(struct wconn *w)
{
	struct proto_reply rep;
	w->in_off = w->in_len = 0;
	buf_reset(&w->out);
	w->out_off = 0;
	w->exp_head = w->exp_n = 0;
	w->gets = 0;
	w->asked = 0;
	w->want = 0;
	w->nbatch = 0;
	buf_reset(&w->payloads);
	w->exit_sent = 0;
	w->last_batch_ns = 0;
	w->framed = 0;
	buf_reset(&w->items);
	w->nitems = 0;
	if (w->o->token) {
		proto_format_auth(&w->out, w->o->token, strlen(w->o->token));
		expect_push(w, EXP_AUTH, 0);
	}
	proto_format_simple(&w->out, PROTO_INFO);
	expect_push(w, EXP_INFO, 0);
	proto_format_results(&w->out, 0); /* the probe: is forqd new enough for batches? */
	expect_push(w, EXP_PROBE, 0);
	uint32_t n = may_ask(w);
	if (n)
		send_get(w, n, w->o->wait_ms);
	if (flush_out(w) || maybe_exit(w))
		return S_LOST;
	for (;;) {
		int r = next_reply(w, &rep);
		if (r <= 0)
			return r < 0 ? S_DONE : S_LOST;
		if ((r = on_reply(w, &rep)))
			return (enum session_end)(r - 1);
		if (maybe_exit(w))
			return S_LOST;
	}
}

/* One connection's life, reconnecting until done. Returns an exit code. */
int worker_run(const struct worker_opts *o, const sigset_t *open_mask,
	       const volatile sig_atomic_t *stop)
{
	struct wconn w = {.o = o, .stop = stop, .open_mask = open_mask, .fd = -1,
			  .lim = {.max_line = REPLY_MAX_LINE, .max_payload = MAX_PAYLOAD}};
	struct handler_options ho = {.task_timeout_ms = o->task_timeout_ms};
	char err[256];
	int code = WORKER_EXIT_FAILED, backoff = BACKOFF_FIRST_MS;

	if (handler_open(&w.h, o->handler, &ho, err, sizeof err)) {
		fprintf(stderr, "forq worker: --handler: %s\n", err);
		return WORKER_EXIT_USAGE;
	}
	w.noop = handler_is_noop(w.h);
	w.in_cap = IN_START;
	if (!(w.in = malloc(w.in_cap)))
		goto out;
	while (!*stop) {
		if ((w.fd = connect_to(o, open_mask)) < 0) {
			log_event(LOG_INFO, "worker_retry", "addr=%s in_ms=%d", o->connect, backoff);
			sleep_ms(open_mask, backoff);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		log_event(LOG_INFO, "worker_connected", "addr=%s handler=%s batch=%u queues=%s",
			  o->connect, o->handler, o->batch, o->queues ? o->queues : FORQ_QUEUE_DEFAULT);
		uint64_t t0 = clock_mono_ns(), done0 = w.done;
		enum session_end end = session(&w);
		close(w.fd);
		w.fd = -1;
		if (end == S_DONE) {
			code = WORKER_EXIT_OK;
			log_event(LOG_INFO, "worker_exit", "tasks=%" PRIu64, w.done);
			goto out;
		}
		if (end == S_REFUSED) {
			code = WORKER_EXIT_REFUSED;
			goto out;
		}
		if (end == S_FAILED)
			goto out;
		if (o->max_tasks && w.done >= o->max_tasks) {
			/* Every task answered; forqd went before our EXIT. */
			code = WORKER_EXIT_OK;
			log_event(LOG_INFO, "worker_exit", "tasks=%" PRIu64, w.done);
			goto out;
		}
		/* Lost: a session that got somewhere starts the backoff over. */
		if (w.done > done0 || clock_mono_ns() - t0 > (uint64_t)BACKOFF_MAX_MS * MS)
			backoff = BACKOFF_FIRST_MS;
		if (*stop)
			break;
		log_event(LOG_WARN, "worker_disconnected", "addr=%s retry_in_ms=%d", o->connect,
			  backoff);
		sleep_ms(open_mask, backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	code = WORKER_EXIT_OK; /* stopped while not connected: nothing in hand */
	log_event(LOG_INFO, "worker_exit", "tasks=%" PRIu64, w.done);
out:
	handler_close(w.h);
	free(w.in);
	free(w.batch);
	buf_free(&w.out);
	buf_free(&w.payloads);
	buf_free(&w.result);
	buf_free(&w.items);
	return code;
}
