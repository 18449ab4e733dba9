/* commands.c — the TCP server's answer to each request (commands.h). */
#include "commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "dead_json.h"
#include "json.h"
#include "log.h"

#define MAX_ERRORS 16          /* protocol errors in a row before we hang up */
#define SKIP_BUDGET (8u << 20) /* bytes dropped unparsed (junk) before we hang up */

static void reply_err(struct conn *c, int err)
{
	conn_sent(c, proto_format_err(&c->out, err));
}

static void reply_none(struct conn *c, int batch)
{
	conn_sent(c, batch ? proto_format_tasks(&c->out, 0) : proto_format_none(&c->out));
}

/* Leases up to n tasks of c's GET queues to c and writes them, the queues
 * taken in turn (the first one tried moves on by one each GET, so a busy
 * queue does not starve the others). A queue that comes up short is dry:
 * with round (serve_parked), it stays so and *round counts it; without,
 * the flags are cleared again. Returns how many. */
static int hand_out(struct tcp_server *s, struct conn *c, int batch, uint32_t n, uint64_t now,
		    uint32_t *round)
{
	int k = 0;
	if (n > s->batch_max)
		n = s->batch_max;
	for (uint32_t j = 0; j < c->get_nq && (uint32_t)k < n; j++) {
		struct tcp_q *tq = &s->qs[c->get_q[(c->get_turn + j) % c->get_nq]];
		if (tq->dry)
			continue;
		uint32_t want = n - (uint32_t)k < tq->batch_max ? n - (uint32_t)k : tq->batch_max;
		int got = leases_take(&tq->leases, c->id, now + s->lease_ns, s->tasks + k, want);
		if (got < 0) {
			log_event(LOG_ERROR, "lease_take_failed", "queue=%s error=\"%s\"", tq->name,
				  strerror(-got));
			got = 0;
		}
		if ((uint32_t)got < want && round) {
			tq->dry = 1; /* empty, paused, rate-limited or its lease table full */
			++*round;
		}
		k += got;
	}
	c->get_turn = c->get_nq ? (uint8_t)((c->get_turn + 1) % c->get_nq) : 0;
	if (k == 0)
		return 0;
	c->nleases += (uint32_t)k;
	gauge(&s->m_leases, server_leases(s));
	if (!loop_timer_pending(&s->expiry_timer))
		loop_timer_set(s->loop, &s->expiry_timer, now + s->lease_ns);
	size_t need = 16;
	for (int i = 0; i < k; i++)
		need += PROTO_TASK_OVERHEAD + s->tasks[i].len;
	int r = buf_reserve(&c->out, need);
	if (!r && batch)
		r = proto_format_tasks(&c->out, (uint32_t)k);
	for (int i = 0; i < k && !r; i++) {
		const struct forq_task *t = &s->tasks[i];
		r = proto_format_task(&c->out, t->id, t->attempts + 1u, t->payload, t->len);
	}
	if (r) {
		conn_release_leases(c, "forqd out of memory"); /* it cannot get them */
		conn_sent(c, r);
	}
	return k;
}

/* The queue a request names (PUT queue=, STATS, the controls), qs[0] when it
 * names none; NULL after answering ERR unknown-queue. */
static struct tcp_q *queue_named(struct tcp_server *s, struct conn *c, const char *name,
				 size_t len)
{
	if (!name)
		return &s->qs[0];
	for (uint32_t i = 0; i < s->nq; i++)
		if (strlen(s->qs[i].name) == len && !memcmp(s->qs[i].name, name, len))
			return &s->qs[i];
	reply_err(c, PROTO_E_UNKNOWN_QUEUE);
	return NULL;
}

/* GET_TASK(S) queue=A[,B...] into c's GET queues; without it, qs[0]. Returns
 * 0, or -1 after answering ERR unknown-queue (the request changes nothing). */
static int get_queues(struct tcp_server *s, struct conn *c, const struct proto_req *req)
{
	uint16_t q[PROTO_QUEUES_MAX];
	uint8_t nq = 0;
	const char *at = req->queue, *name;
	size_t len;
	if (!req->queue) {
		q[nq++] = 0;
	} else {
		while (nq < PROTO_QUEUES_MAX &&
		       proto_queue_next(&at, req->queue + req->queue_len, &name, &len) > 0) {
			struct tcp_q *tq = queue_named(s, c, name, len);
			if (!tq)
				return -1;
			q[nq++] = (uint16_t)(tq - s->qs);
		}
	}
	if (nq != c->get_nq || memcmp(q, c->get_q, nq * sizeof q[0])) {
		memcpy(c->get_q, q, nq * sizeof q[0]);
		c->get_nq = nq;
		c->get_turn = 0;
	}
	return 0;
}

static void do_get(struct tcp_server *s, struct conn *c, const struct proto_req *req, uint64_t now)
{
	int batch = req->cmd == PROTO_GET_TASKS;
	uint32_t n = batch ? req->count : 1;
	if (get_queues(s, c, req))
		return;
	if (!c->worker) {
		c->worker = 1;
		s->nworkers++;
		gauge(&s->m_workers, s->nworkers);
	}
	if (n > s->batch_max)
		n = s->batch_max;
	commands_settle_results(s); /* frees the answered tasks' entries first */
	if (hand_out(s, c, batch, n, now, NULL))
		return;
	if (req->wait_ms > 0 && !c->eof) /* a closed peer cannot be waiting: answer now */
		conn_park(c, batch, n, now + (uint64_t)req->wait_ms * MS);
	else
		reply_none(c, batch);
}

void commands_settle_results(struct tcp_server *s)
{
	if (!s->nunwritten)
		return;
	for (uint32_t i = 0; i < s->nq; i++)
		if (s->qs[i].unflushed) {
			s->qs[i].unflushed = 0;
			s->qs[i].res.flush(s->qs[i].res.ctx);
		}
	for (uint32_t i = 0; i < s->nunwritten; i++)
		forq_lease_release(s->qs[s->unwritten[i].qi].q, s->unwritten[i].slot);
	s->nunwritten = 0;
}

/* A task reached a final state: its result line is added to forqd's, and its
 * entry is freed once that is written (commands_settle_results). For DONE
 * and FAILED the record still counts deliveries before this one. */
static void report_final(struct tcp_q *tq, uint32_t slot, struct forq_task_info *rec,
			 const void *payload, int status, const char *text, size_t len)
{
	struct tcp_server *s = tq->s;
	if (status == FORQ_RESULT_DONE || status == FORQ_RESULT_FAILED)
		rec->attempts++;
	tq->res.add(tq->res.ctx, rec, payload, status, text, len); /* binary-safe: no copy, no NUL */
	tq->unflushed = 1;
	s->unwritten[s->nunwritten++] = (struct unwritten){(uint32_t)(tq - s->qs), slot};
	if (s->nunwritten == UNWRITTEN_MAX)
		commands_settle_results(s);
}

/* The queue whose lease table holds task id for c, with its slot and *li
 * filled; NULL if none (ids are unique across the queues, see tcp_queue). */
static struct tcp_q *lease_of(struct tcp_server *s, struct conn *c, uint64_t id,
			      struct forq_lease_info *li, uint32_t *slot)
{
	for (uint32_t i = 0; i < s->nq; i++) {
		int r = leases_find(&s->qs[i].leases, id, c->id, li);
		if (r >= 0) {
			*slot = (uint32_t)r;
			return &s->qs[i];
		}
	}
	return NULL;
}

/* RESULT, FAIL or RETRY of a task c holds. Returns 0, PROTO_E_NOT_LEASED or
 * PROTO_E_INTERNAL (logged). */
static int finish(struct tcp_server *s, struct conn *c, const struct proto_req *req, uint64_t now)
{
	static const enum forq_result_status status_of[PROTO_CMD_COUNT] = {
		[PROTO_RESULT] = FORQ_RESULT_DONE, [PROTO_FAIL] = FORQ_RESULT_FAILED,
		[PROTO_RETRY] = FORQ_RESULT_RETRY};
	struct forq_lease_info li;
	struct forq_task_info rec;
	uint32_t slot;
	struct tcp_q *tq = lease_of(s, c, req->id, &li, &slot);
	if (!tq)
		return PROTO_E_NOT_LEASED;
	uint32_t held = leases_count(&tq->leases);
	uint64_t run = now > li.taken_ns ? now - li.taken_ns : 0;
	int final = forq_lease_finish(tq->q, slot, req->id, c->id, status_of[req->cmd], req->text,
				      req->text_len, run, &rec);
	leases_forget(&tq->leases, slot, req->id);
	conn_lease_ended(tq, c, held);
	if (final == -ENOENT)
		return PROTO_E_NOT_LEASED;
	if (final < 0) {
		log_event(LOG_ERROR, "lease_finish_failed", "id=%" PRIu64 " error=\"%s\" queue=%s",
			  req->id, strerror(-final), tq->name);
		return PROTO_E_INTERNAL;
	}
	if (final != FORQ_RESULT_RETRY)
		report_final(tq, slot, &rec, li.payload, final, req->text, req->text_len);
	return 0;
}

/* The one-line forms answer each; a batch's items are counted, and its last
 * one answers for all. */
static void do_finish(struct tcp_server *s, struct conn *c, const struct proto_req *req,
		      uint64_t now)
{
	int r = finish(s, c, req, now);
	if (!req->item) {
		conn_sent(c, r ? proto_format_err(&c->out, r) : proto_format_ok(&c->out));
		return;
	}
	if (r)
		c->batch_refused++; /* not-leased, or a failure forqd logged */
	else
		c->batch_applied++;
	if (req->item_last) {
		commands_settle_results(s); /* the batch's results in one write */
		conn_sent(c, proto_format_results_reply(&c->out, c->batch_applied, c->batch_refused));
		c->batch_applied = c->batch_refused = 0;
	}
}

/* "RESULTS k": k items follow (none: the probe, answered now). */
static void do_results(struct conn *c, const struct proto_req *req)
{
	c->batch_applied = c->batch_refused = 0;
	if (!req->count)
		conn_sent(c, proto_format_results_reply(&c->out, 0, 0));
}



static void do_touch(struct tcp_server *s, struct conn *c, const struct proto_req *req,
		     uint64_t now)
{
	struct forq_lease_info li;
	uint32_t slot;
	struct tcp_q *tq = lease_of(s, c, req->id, &li, &slot);
	if (!tq || forq_lease_touch(tq->q, slot, req->id, c->id, now + s->lease_ns)) {
		reply_err(c, PROTO_E_NOT_LEASED);
		return;
	}
	conn_sent(c, proto_format_ok(&c->out));
}

/* PUT to a queue backed by a stream: handed to its publisher, and answered
 * when JetStream acknowledges it (commands_published) or the wait is over;
 * c reads nothing meanwhile. The stream has no delays or priorities. */
static void do_publish(struct tcp_server *s, struct conn *c, struct tcp_q *tq,
		       const struct proto_req *req, uint64_t now)
{
	if (req->delay_ms || req->prio != FORQ_NORMAL) {
		reply_err(c, PROTO_E_NOT_SUPPORTED);
		return;
	}
	if (!++c->pub_count)
		c->pub_count = 1;
	uint64_t ref = (uint64_t)c->id << 32 | c->pub_count;
	if (tq->publish(tq->publish_ctx, req->text, req->text_len, req->key, req->key_len, ref)) {
		reply_err(c, PROTO_E_NOT_PUBLISHED); /* logged by the hook */
		return;
	}
	c->pub_ref = ref;
	loop_timer_set(s->loop, &c->timer, now + TCP_PUBLISH_WAIT_MS * MS);
}

void commands_published(struct conn *c, uint64_t seq, int dup, uint64_t now)
{
	struct tcp_server *s = c->s;
	size_t out0 = c->out.len;
	c->pub_ref = 0;
	c->last_io_ns = now; /* its wait counts as activity */
	loop_timer_stop(s->loop, &c->timer);
	if (seq) {
		conn_sent(c, dup ? proto_format_ok_duplicate(&c->out, seq)
				 : proto_format_ok_id(&c->out, seq));
	} else {
		log_event(LOG_WARN, "tcp_put_not_published", "peer=%s", c->peer);
		reply_err(c, PROTO_E_NOT_PUBLISHED);
	}
	count(&s->m_cmd_out[PROTO_PUT], (uint64_t)(c->out.len - out0));
	if (c->state != CONN_DEAD)
		commands_settle(c, now);
}

/* A local PUT's reply: r is its push's outcome. */
static void reply_pushed(struct conn *c, const struct tcp_q *tq, int r, uint64_t id, int dup)
{
	switch (r) {
	case 0:
		conn_sent(c, dup ? proto_format_ok_duplicate(&c->out, id)
				 : proto_format_ok_id(&c->out, id));
		break;
	case -EAGAIN: reply_err(c, PROTO_E_QUEUE_FULL); break;
	case -ESHUTDOWN: reply_err(c, PROTO_E_DRAINING); break;
	case -EMSGSIZE: reply_err(c, PROTO_E_PAYLOAD_TOO_LARGE); break;
	case -ETIMEDOUT: reply_err(c, PROTO_E_NOT_DURABLE); break;
	default:
		log_event(LOG_ERROR, "tcp_put_failed", "queue=%s error=\"%s\"", tq->name,
			  strerror(-r));
		reply_err(c, PROTO_E_INTERNAL);
		break;
	}
}

static void do_put(struct tcp_server *s, struct conn *c, const struct proto_req *req,
		   uint64_t now)
{
	uint64_t id;
	struct tcp_q *tq = queue_named(s, c, req->queue, req->queue_len);
	if (!tq)
		return;
	if (s->draining) {
		reply_err(c, PROTO_E_DRAINING);
		return;
	}
	if (req->text_len > tq->max_payload) { /* the parser knows only the largest queue's */
		reply_err(c, PROTO_E_PAYLOAD_TOO_LARGE);
		return;
	}
	if (tq->publish) {
		do_publish(s, c, tq, req, now);
		return;
	}
	/* timeout 0: the loop never waits for room. */
	int dup = 0;
	struct forq *q = tq->q;
	int r = req->key ? forq_push_unique(q, (enum forq_prio)req->prio, req->text, req->text_len,
					     req->key, req->key_len, req->window_ms, req->delay_ms,
					     &id, &dup)
		: req->delay_ms ? forq_push_delayed(q, (enum forq_prio)req->prio, req->text,
						    req->text_len, req->delay_ms, &id)
				: forq_push(q, (enum forq_prio)req->prio, req->text, req->text_len, 0,
					    &id);
	/* --fsync always: the push did not wait (the loop never does); the
	 * reply waits for the journal instead, and c reads nothing meanwhile
	 * (replies stay in order; other connections go on, and their PUTs
	 * join the same fdatasync). */
	if (r == 0 && forq_admin_durable_take(q, &c->dur_t) &&
	    (r = forq_admin_durable_reached(q, &c->dur_t)) == 0) {
		c->dur_q = tq;
		c->dur_id = id;
		c->dur_dup = dup;
		s->ndurable++;
		loop_timer_set(s->loop, &c->timer, now + TCP_DURABLE_WAIT_MS * MS);
		return;
	}
	reply_pushed(c, tq, r < 0 ? r : 0, id, dup);
}

void commands_durable(struct conn *c, int r, uint64_t now)
{
	struct tcp_server *s = c->s;
	struct tcp_q *tq = c->dur_q;
	size_t out0 = c->out.len;
	c->dur_q = NULL;
	s->ndurable--;
	c->last_io_ns = now; /* its wait counts as activity */
	loop_timer_stop(s->loop, &c->timer);
	reply_pushed(c, tq, r, c->dur_id, c->dur_dup);
	count(&s->m_cmd_out[PROTO_PUT], (uint64_t)(c->out.len - out0));
	if (c->state != CONN_DEAD)
		commands_settle(c, now);
}

/* STATS [queue]: the queue's figures (its leases among them) and the
 * server's own, through the one stats encoder (metrics/json.h, the JSON_TCP
 * names). */
static void do_stats(struct tcp_server *s, struct conn *c, const struct proto_req *req)
{
	struct tcp_q *tq = queue_named(s, c, req->queue, req->queue_len);
	if (!tq)
		return;
	struct metrics_snapshot *snap = calloc(1, sizeof *snap);
	struct forq_stats st;
	struct buf *b = &s->scratch;
	int r = -ENOMEM;
	buf_reset(b);
	if (snap) {
		forq_stats_read(tq->q, &st);
		metrics_snapshot_queue(snap, &st);
		metrics_snapshot_controls(snap, tq->q);
		snap->accepting = st.accepting && !s->draining;
		snap->tcp_open = s->nconns;
		snap->remote_workers = s->nworkers;
		snap->leases_outstanding = leases_count(&tq->leases);
		snap->lease_timeout_ms = s->lease_ns / MS;
		r = json_stats(b, JSON_TCP, snap, NULL, 0);
		free(snap);
	}
	if (r || proto_format_stats(&c->out, b->data, b->len))
		reply_err(c, PROTO_E_INTERNAL);
}

static void do_info(struct tcp_server *s, struct conn *c)
{
	struct proto_info info = {.lease_timeout_ms = (uint32_t)(s->lease_ns / MS),
				  .max_payload = s->qs[0].max_payload,
				  .batch_max = s->batch_max};
	conn_sent(c, proto_format_info(&c->out, &info));
}

static void do_auth(struct tcp_server *s, struct conn *c, const struct proto_req *req,
		    uint64_t now)
{
	/* Either token opens every TCP command but the queue controls, which
	 * are the admin's (do_queue). */
	enum auth_role role = s->auth.enabled ? auth_role_of(&s->auth, req->text, req->text_len)
					       : AUTH_NONE;
	if (!s->auth.enabled || role >= AUTH_WORKER) {
		c->authed = 1;
		c->admin = role == AUTH_ADMIN;
		conn_sent(c, proto_format_ok(&c->out));
		return;
	}
	log_event(LOG_WARN, "tcp_auth_failed", "peer=%s", c->peer);
	reply_err(c, PROTO_E_UNAUTHORIZED);
	conn_begin_close(c, "unauthorized", now);
}

/* The queue an admin command names: with a token set, the connection must
 * have sent AUTH with the admin token; without one, be on loopback. NULL
 * after answering ERR forbidden or ERR unknown-queue. */
static struct tcp_q *admin_queue(struct tcp_server *s, struct conn *c, const char *name,
				 size_t len)
{
	if (s->auth.enabled ? !c->admin : !c->loopback) {
		reply_err(c, PROTO_E_FORBIDDEN);
		return NULL;
	}
	return queue_named(s, c, name, len);
}

/* PAUSE, RESUME, PURGE <queue>: the admin's, as HTTP's /queues/{name}/...
 * are (admin_queue). The loop's own handle purges, so the results are
 * written here through the queue's final callback. */
static void do_queue(struct tcp_server *s, struct conn *c, const struct proto_req *req)
{
	struct tcp_q *tq = admin_queue(s, c, req->text, req->text_len);
	if (!tq)
		return;
	if (req->cmd != PROTO_PURGE) {
		forq_admin_pause(tq->q, req->cmd == PROTO_PAUSE);
		conn_sent(c, proto_format_ok(&c->out));
		return;
	}
	int n = forq_admin_purge(tq->q, tq->res.final, tq->res.ctx);
	if (n < 0) {
		log_event(LOG_ERROR, "queue_purge_failed", "queue=%s via=tcp error=\"%s\"", tq->name,
			  strerror(-n));
		reply_err(c, PROTO_E_INTERNAL);
		return;
	}
	log_event(LOG_INFO, "queue_purged", "queue=%s tasks=%d via=tcp peer=%s", tq->name, n,
		  c->peer);
	conn_sent(c, proto_format_ok_id(&c->out, (uint64_t)n));
}

/* DEAD [queue]: the queue's dead letters, one JSON line (metrics/dead_json.h),
 * open to any connection that may ask STATS. */
static void do_dead(struct tcp_server *s, struct conn *c, const struct proto_req *req)
{
	struct tcp_q *tq = queue_named(s, c, req->queue, req->queue_len);
	if (!tq)
		return;
	buf_reset(&s->scratch);
	if (dead_json(&s->scratch, tq->q, tq->name) < 0 ||
	    proto_format_stats(&c->out, s->scratch.data, s->scratch.len))
		reply_err(c, PROTO_E_INTERNAL);
}

/* RETRY_DEAD <queue> ALL|<id>...: the admin's, as PURGE; all the ids or
 * none (ERR not-dead). */
static void do_retry_dead(struct tcp_server *s, struct conn *c, const struct proto_req *req)
{
	struct tcp_q *tq = admin_queue(s, c, req->queue, req->queue_len);
	if (!tq)
		return;
	uint64_t *ids = req->count ? malloc(req->count * sizeof *ids) : NULL;
	const char *at = req->text, *end = req->text + req->text_len;
	if (req->count && !ids) {
		reply_err(c, PROTO_E_INTERNAL);
		return;
	}
	for (uint32_t i = 0; i < req->count; i++)
		proto_ids_next(&at, end, &ids[i]); /* checked by the parser */
	int n = forq_dead_retry_ids(tq->q, ids, req->count, NULL);
	free(ids);
	if (n < 0) {
		reply_err(c, n == -ENOENT ? PROTO_E_NOT_DEAD : PROTO_E_INTERNAL);
		return;
	}
	log_event(LOG_INFO, "dead_requeued", "queue=%s tasks=%d via=tcp peer=%s", tq->name, n,
		  c->peer);
	conn_sent(c, proto_format_ok_id(&c->out, (uint64_t)n));
}

int commands_cancel_leased(struct tcp_q *tq, uint64_t id)
{
	struct forq_lease_info li;
	int slot = leases_lookup(&tq->leases, id, &li);
	if (slot < 0)
		return -EBUSY;
	struct conn *c = conn_by_id(tq->s, li.conn);
	uint32_t held = leases_count(&tq->leases);
	int r = forq_lease_cancel(tq->q, (uint32_t)slot, id, li.conn, tq->res.final, tq->res.ctx);
	leases_forget(&tq->leases, (uint32_t)slot, id);
	conn_lease_ended(tq, c, held);
	return r ? -EBUSY : 0;
}

/* CANCEL <queue> <id>: a producer's or worker's, as PUT is. */
static void do_cancel(struct tcp_server *s, struct conn *c, const struct proto_req *req)
{
	struct tcp_q *tq = queue_named(s, c, req->text, req->text_len);
	if (!tq)
		return;
	int r = forq_admin_cancel(tq->q, req->id, tq->res.final, tq->res.ctx);
	if (r == -EBUSY) /* a remote worker's lease revoked, or a consumer's task stopped */
		r = tq->res.cancel_running ? tq->res.cancel_running(tq->res.ctx, req->id)
					   : commands_cancel_leased(tq, req->id);
	if (r == 0)
		log_event(LOG_INFO, "task_cancelled", "queue=%s id=%" PRIu64 " via=tcp peer=%s",
			  tq->name, req->id, c->peer);
	switch (r) {
	case 0: conn_sent(c, proto_format_ok(&c->out)); break;
	case -ENOENT: reply_err(c, PROTO_E_NOT_QUEUED); break;
	case -EBUSY: reply_err(c, PROTO_E_RUNNING); break;
	default:
		log_event(LOG_ERROR, "tcp_cancel_failed", "error=\"%s\"", strerror(-r));
		reply_err(c, PROTO_E_INTERNAL);
	}
}

static void handle(struct tcp_server *s, struct conn *c, const struct proto_req *req, uint64_t now)
{
	count(&s->m_cmds[req->cmd], 1);
	if (c->need_auth && !c->authed && req->cmd != PROTO_AUTH) {
		reply_err(c, PROTO_E_UNAUTHORIZED);
		conn_begin_close(c, "unauthorized", now);
		return;
	}
	switch (req->cmd) {
	case PROTO_GET_TASK:
	case PROTO_GET_TASKS: do_get(s, c, req, now); break;
	case PROTO_RESULT:
	case PROTO_FAIL:
	case PROTO_RETRY: do_finish(s, c, req, now); break;
	case PROTO_RESULTS: do_results(c, req); break;
	case PROTO_TOUCH: do_touch(s, c, req, now); break;
	case PROTO_PUT: do_put(s, c, req, now); break;
	case PROTO_PING: conn_sent(c, proto_format_pong(&c->out)); break;
	case PROTO_STATS: do_stats(s, c, req); break;
	case PROTO_INFO: do_info(s, c); break;
	case PROTO_AUTH: do_auth(s, c, req, now); break;
	case PROTO_PAUSE:
	case PROTO_RESUME:
	case PROTO_PURGE: do_queue(s, c, req); break;
	case PROTO_CANCEL: do_cancel(s, c, req); break;
	case PROTO_DEAD: do_dead(s, c, req); break;
	case PROTO_RETRY_DEAD: do_retry_dead(s, c, req); break;
	case PROTO_EXIT:
		conn_sent(c, proto_format_bye(&c->out));
		conn_begin_close(c, "worker said exit", now);
		break;
	case PROTO_CMD_COUNT: break;
	}
}

static void protocol_error(struct tcp_server *s, struct conn *c, int err, uint64_t now)
{
	count(&s->m_cmds[CMD_INVALID], 1);
	if (++c->errors < MAX_ERRORS) {
		reply_err(c, err);
		return;
	}
	log_event(LOG_WARN, "tcp_too_many_errors", "peer=%s last=%s", c->peer, proto_err_word(err));
	reply_err(c, PROTO_E_TOO_MANY_ERRORS);
	conn_begin_close(c, "too many protocol errors", now);
}

/* Answers buffered requests until one parks, the output is over OUT_HIGH, or
 * the input holds no whole request. Hot path: no syscall per request. */
static void process_input(struct tcp_server *s, struct conn *c, uint64_t now)
{
	struct proto_req req;
	size_t used;
	while (c->state == CONN_ACTIVE && !conn_waiting(c) && conn_out_pending(c) < OUT_HIGH &&
	       c->in_off < c->in_len) {
		int rc = proto_parse(&c->parser, c->in + c->in_off, c->in_len - c->in_off, &req, &used);
		c->in_off += used; /* req.text stays valid: nothing moves until we return */
		if (rc == PROTO_MORE) {
			/* Bytes dropped with no request: junk after an error, or
			 * empty lines. A stream of nothing else is a flood. (A
			 * batch's cut value is dropped too, but is no junk.) */
			if (!proto_parser_in_batch(&c->parser))
				c->skipped += used;
			if (c->skipped > SKIP_BUDGET) {
				c->errors = MAX_ERRORS - 1;
				protocol_error(s, c, PROTO_E_LINE_TOO_LONG, now);
			}
			break;
		}
		if (rc < 0 && proto_parser_lost(&c->parser)) {
			/* A RESULTS batch out of step: what follows cannot be read. */
			count(&s->m_cmds[CMD_INVALID], 1);
			log_event(LOG_WARN, "tcp_batch_framing_lost", "peer=%s error=%s", c->peer,
				  proto_err_word(rc));
			reply_err(c, rc);
			conn_begin_close(c, "RESULTS batch framing lost", now);
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
		if (c->out.len > out0) /* a batch's reply is the RESULTS command's */
			count(&s->m_cmd_out[req.item_last ? PROTO_RESULTS : req.cmd],
			      (uint64_t)(c->out.len - out0));
	}
	commands_settle_results(s); /* before any reply is sent */
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	if (c->eof && c->state == CONN_ACTIVE && !conn_waiting(c) && conn_out_pending(c) < OUT_HIGH)
		conn_begin_close(c, "worker connection closed", now); /* nothing more can come */
}

void commands_process(struct conn *c, uint64_t now)
{
	process_input(c->s, c, now);
}

void commands_settle(struct conn *c, uint64_t now)
{
	if (c->state == CONN_ACTIVE)
		process_input(c->s, c, now);
	if (c->state != CONN_DEAD && conn_out_pending(c))
		conn_flush(c, now);
	if (c->state != CONN_DEAD)
		conn_update_events(c);
}

/* The delayed reply of a parked GET_TASK(S) WAIT ends its wait. */
static void unpark(struct conn *c, size_t out0, uint64_t now)
{
	struct tcp_server *s = c->s;
	if (c->out.len > out0)
		count(&s->m_cmd_out[c->park_batch ? PROTO_GET_TASKS : PROTO_GET_TASK],
		      (uint64_t)(c->out.len - out0));
	conn_unpark(c, now);
	if (c->state != CONN_DEAD)
		commands_settle(c, now);
}

void commands_serve_parked(struct tcp_server *s, uint64_t now)
{
	/* A queue that comes up short is passed over for the rest of the round
	 * (it is empty or its lease table full), and the round ends once every
	 * queue has: many waiters cost one look per queue. Connections parked
	 * during the round (a settled one's next GET) wait for the next. */
	uint32_t rounds = s->nparked, dry = 0;
	struct conn *c = s->park_head;
	while (c && rounds-- && dry < s->nq) {
		struct conn *next = c->park_next;
		size_t out0 = c->out.len;
		if (hand_out(s, c, c->park_batch, c->park_count, now, &dry))
			unpark(c, out0, now);
		c = next;
	}
	for (uint32_t i = 0; i < s->nq; i++)
		s->qs[i].dry = 0;
}

void commands_park_timeout(struct conn *c, uint64_t now)
{
	size_t out0 = c->out.len;
	if (!c->parked)
		return;
	reply_none(c, c->park_batch);
	unpark(c, out0, now);
}
