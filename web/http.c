/* http.c — routes on a libmicrohttpd daemon (internal epoll thread). */
#include "http.h"
#include "route.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "assets.h"
#include "auth.h"
#include "buf.h"
#include "clock.h"
#include "errmsg.h"
#include "expo.h"
#include "guard.h"
#include "json.h"
#include "net.h"
#include "parse.h"
#include "procstat.h"
#include "waiting.h"

#define CT_JSON "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define ALLOW_GET "GET, HEAD"
#define ALLOW_POST "POST"

/* Every status this file sends; forq_http_requests_total has one series each. */
static const uint16_t codes[] = {200, 202, 400, 401, 403, 404, 405, 409, 413, 500, 503};
#define NCODES (sizeof codes / sizeof codes[0])
_Static_assert(NCODES <= METRICS_MAX_HTTP_CODES, "snapshot holds every code");

struct http_server {
	struct MHD_Daemon *d;
	struct guard *guard; /* per-address limit; MHD's thread only */
	struct http_hooks h;
	struct auth auth;
	size_t max_body;
	size_t max_payload;
	_Atomic uint64_t counts[NCODES];
	/* Used by handlers only, which MHD runs one at a time on its thread. */
	struct metrics_snapshot *snap; /* n_snap: one per queue */
	size_t n_snap;
	struct buf out;
	struct waiting *waiting; /* NULL: no durable hooks */
};

/* One request's state between MHD's calls (POST only). */
struct req {
	struct buf body;
	int too_big; /* body went over max_body: dropped, 413 at the end */
	int oom;
	/* A POST /tasks pushed and waiting for the disk, suspended (waiting.h). */
	struct wait_item wait;
	struct http_tasks tasks;
	uint64_t *ids;
};

static void count(struct http_server *s, unsigned code)
{
	for (size_t i = 0; i < NCODES; i++)
		if (codes[i] == code) {
			atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
			return;
		}
}

void http_requests_by_code(const struct http_server *s, struct metrics_snapshot *snap)
{
	for (size_t i = 0; i < NCODES; i++) {
		snap->http[i].code = codes[i];
		snap->http[i].count = atomic_load_explicit(&s->counts[i], memory_order_relaxed);
	}
	snap->n_http = NCODES;
}

/* Sends body (copied) with status code; extra is NULL or a NULL-terminated
 * list of header name/value pairs. */
static enum MHD_Result reply(struct http_server *s, struct MHD_Connection *c, unsigned code,
			     const char *type, const void *body, size_t len, const char *const *extra)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	for (; extra && extra[0]; extra += 2)
		MHD_add_response_header(r, extra[0], extra[1]);
	ok = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	if (ok == MHD_YES)
		count(s, code);
	return ok;
}

/* The JSON in s->out, or a 500 when building it ran out of memory. */
static enum MHD_Result reply_out(struct http_server *s, struct MHD_Connection *c, unsigned code,
				 int r, const char *const *extra)
{
	static const char oom[] = "{\"error\":\"out of memory\"}";
	if (r)
		return reply(s, c, 500, CT_JSON, oom, sizeof oom - 1, NULL);
	return reply(s, c, code, CT_JSON, s->out.data, s->out.len, extra);
}

__attribute__((format(printf, 4, 5))) static enum MHD_Result
reply_error(struct http_server *s, struct MHD_Connection *c, unsigned code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	buf_reset(&s->out);
	return reply_out(s, c, code, json_error(&s->out, msg), NULL);
}

static enum MHD_Result reply_error_hdr(struct http_server *s, struct MHD_Connection *c,
				       unsigned code, const char *msg, const char *const *extra)
{
	buf_reset(&s->out);
	return reply_out(s, c, code, json_error(&s->out, msg), extra);
}

static double now_unix(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Snapshot + procstat for /metrics and /stats. Returns 0 or -errno. */
static int take_snapshot(struct http_server *s, struct procstat *p, int *have_p)
{
	int r;
	memset(s->snap, 0, s->n_snap * sizeof *s->snap);
	if ((r = s->h.snapshot(s->h.ctx, s->snap, s->n_snap)))
		return r;
	http_requests_by_code(s, s->snap);
	*have_p = procstat_read(p) == 0;
	return 0;
}

static enum MHD_Result get_metrics(struct http_server *s, struct MHD_Connection *c)
{
	struct procstat p;
	int have_p, r;
	if ((r = take_snapshot(s, &p, &have_p)))
		return reply_error(s, c, 500, "cannot read the figures: %s", strerror(-r));
	buf_reset(&s->out);
	if (expo_write(&s->out, s->snap, s->n_snap, have_p ? &p : NULL))
		return reply_error(s, c, 500, "out of memory");
	return reply(s, c, 200, CT_METRICS, s->out.data, s->out.len, NULL);
}

static enum MHD_Result get_stats(struct http_server *s, struct MHD_Connection *c)
{
	struct procstat p;
	int have_p, r;
	if ((r = take_snapshot(s, &p, &have_p)))
		return reply_error(s, c, 500, "cannot read the figures: %s", strerror(-r));
	buf_reset(&s->out);
	return reply_out(s, c, 200,
			 json_stats_queues(&s->out, s->snap, s->n_snap, have_p ? &p : NULL,
					   now_unix()),
			 NULL);
}

static enum MHD_Result get_readyz(struct http_server *s, struct MHD_Connection *c)
{
	static const char ok[] = "{\"status\":\"ready\"}";
	static const char no[] = "{\"status\":\"not ready\"}";
	if (s->h.ready(s->h.ctx) == 1)
		return reply(s, c, 200, CT_JSON, ok, sizeof ok - 1, NULL);
	return reply(s, c, 503, CT_JSON, no, sizeof no - 1, NULL);
}

static enum MHD_Result unknown_queue(struct http_server *s, struct MHD_Connection *c,
				     const char *name)
{
	return reply_error(s, c, 404, "unknown queue \"%s\" (forqd serves no queue of that name)",
			   name);
}

static enum MHD_Result get_task(struct http_server *s, struct MHD_Connection *c,
				const char *queue, const char *idtext)
{
	struct http_task_status st;
	uint64_t id;
	int r;

	if (parse_task_id(idtext, &id))
		return reply_error(s, c, 400, "bad task id \"%.40s\" (expected a positive integer)",
				   idtext);
	/* The result text is large and filled by lookup: clear only the rest. */
	memset(&st, 0, offsetof(struct http_task_status, result));
	r = s->h.lookup(s->h.ctx, queue, id, &st);
	if (r == -ENOENT)
		return unknown_queue(s, c, queue);
	if (r != 1)
		return reply_error(s, c, 404, "unknown or forgotten task %" PRIu64, id);
	st.status[sizeof st.status - 1] = '\0';
	if (st.result_len > sizeof st.result)
		st.result_len = sizeof st.result;
	buf_reset(&s->out);
	r = buf_printf(&s->out, "{\"id\":%" PRIu64 ",\"status\":\"", id);
	if (!r)
		r = buf_json_escape(&s->out, st.status, strlen(st.status));
	if (!r)
		r = buf_printf(&s->out, "\",\"attempts\":%" PRIu32, st.attempts);
	if (!r && st.result_len) {
		r = buf_puts(&s->out, strcmp(st.status, "done") == 0 ? ",\"result\":\"" : ",\"error\":\"");
		if (!r)
			r = buf_json_escape(&s->out, st.result, st.result_len);
		if (!r)
			r = buf_putc(&s->out, '"');
	}
	if (!r)
		r = buf_putc(&s->out, '}');
	return reply_out(s, c, 200, r, NULL);
}

/* 202 {"ids":[...]}; with keys, "duplicate" says which ids are of tasks that
 * already held their key (true for a single task, an array for an array),
 * and a request that added no task at all is 200. */
static enum MHD_Result reply_ids(struct http_server *s, struct MHD_Connection *c,
				 const struct http_tasks *t, const uint64_t *ids)
{
	size_t keyed = 0, dups = 0;
	buf_reset(&s->out);
	int r = buf_puts(&s->out, "{\"ids\":[");
	for (size_t i = 0; i < t->n && !r; i++) {
		r = buf_printf(&s->out, "%s%" PRIu64, i ? "," : "", ids[i]);
		keyed += t->v[i].key_len != 0;
		dups += t->v[i].duplicate != 0;
	}
	if (!r)
		r = buf_putc(&s->out, ']');
	if (!r && keyed && !t->is_array)
		r = buf_puts(&s->out, t->v[0].duplicate ? ",\"duplicate\":true" : ",\"duplicate\":false");
	for (size_t i = 0; keyed && t->is_array && i < t->n && !r; i++)
		r = buf_printf(&s->out, "%s%s", i ? "," : ",\"duplicate\":[",
			       t->v[i].duplicate ? "true" : "false");
	if (!r && keyed && t->is_array)
		r = buf_putc(&s->out, ']');
	if (!r)
		r = buf_putc(&s->out, '}');
	return reply_out(s, c, dups == t->n ? 200 : 202, r, NULL);
}

/* A push's answer, r its outcome. */
static enum MHD_Result answer_push(struct http_server *s, struct MHD_Connection *c,
				   const char *queue, struct http_tasks *t, uint64_t *ids, int r)
{
	static const char *const retry[] = {MHD_HTTP_HEADER_RETRY_AFTER, "1", NULL};
	switch (r) {
	case 0: return reply_ids(s, c, t, ids);
	case -ENOENT: return unknown_queue(s, c, queue);
	case -EAGAIN: return reply_error_hdr(s, c, 503, "queue full, try again later", retry);
	case -ESHUTDOWN:
		return reply_error_hdr(s, c, 503, "forqd is shutting down and takes no new tasks",
				       retry);
	case -EMSGSIZE: return reply_error(s, c, 413, "a payload is over the queue's max payload");
	case -EINVAL: return reply_error(s, c, 400, "the queue refused the tasks as invalid");
	case -ENOTSUP:
		return reply_error(s, c, 400, "this queue is a NATS stream (forqd --upstream): "
				   "tasks take no delay, at or priority other than normal");
	case -ECOMM:
		return reply_error_hdr(s, c, 503, "the NATS stream did not acknowledge a task "
				       "(those before it in the request are published)", retry);
	case -ETIMEDOUT:
		return reply_error_hdr(s, c, 503,
				       "the journal did not confirm the tasks on disk in time (a "
				       "full or failing disk); they stay queued and may still run",
				       retry);
	default: return reply_error(s, c, 500, "cannot enqueue: %s", strerror(r < 0 ? -r : r));
	}
}

/* Frees what a push and its wait held. */
static void wait_free(struct http_server *s, struct req *rq)
{
	if (rq->wait.ticket)
		s->h.durable_free(s->h.ctx, rq->wait.ticket);
	rq->wait.ticket = NULL;
	free(rq->ids);
	rq->ids = NULL;
	http_tasks_free(&rq->tasks);
}

static enum MHD_Result post_tasks(struct http_server *s, struct MHD_Connection *c, struct req *rq,
				  const char *queue)
{
	char err[256];
	int r;

	if (rq->wait.done) { /* resumed: its tasks are on disk, or not in time */
		enum MHD_Result ok = answer_push(s, c, queue, &rq->tasks, rq->ids, rq->wait.result);
		wait_free(s, rq);
		return ok;
	}
	r = http_parse_tasks(rq->body.data ? rq->body.data : "", rq->body.len, s->max_payload,
			     &rq->tasks, err, sizeof err);
	if (r)
		return reply_error(s, c, r == -EINVAL ? 400 : r == -EMSGSIZE || r == -E2BIG ? 413 : 500,
				   "%s", err);
	if (!(rq->ids = calloc(rq->tasks.n, sizeof *rq->ids)))
		r = -ENOMEM;
	else
		r = s->h.push(s->h.ctx, queue, rq->tasks.v, rq->tasks.n, rq->ids);
	if (r == 0 && s->waiting && (rq->wait.ticket = s->h.durable_take(s->h.ctx, queue))) {
		rq->wait.c = c;
		rq->wait.deadline_ns = clock_mono_ns() + HTTP_DURABLE_WAIT_MS * 1000000ull;
		MHD_suspend_connection(c); /* before the thread may resume it */
		waiting_add(s->waiting, &rq->wait);
		return MHD_YES;
	}
	enum MHD_Result ok = r == -ENOMEM ? reply_error(s, c, 500, "out of memory")
					  : answer_push(s, c, queue, &rq->tasks, rq->ids, r);
	wait_free(s, rq);
	return ok;
}

void http_durable(struct http_server *s)
{
	if (s && s->waiting)
		waiting_kick(s->waiting);
}

static const char *const bearer[] = {MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer", NULL};

static int peer_on_loopback(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	return ci && ci->client_addr && net_addr_is_loopback(ci->client_addr);
}

static enum auth_role bearer_role(struct http_server *s, struct MHD_Connection *c, int *given)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	*given = h != NULL;
	return auth_role_bearer(&s->auth, h);
}

/* Task writes and reads (payloads, results) from beyond loopback need a
 * token once one is set, as TCP's AUTH does: the worker token or the admin
 * one. Returns 0 when allowed, else 1 with the 401 answer in *answer. */
static int task_access_refused(struct http_server *s, struct MHD_Connection *c,
			       enum MHD_Result *answer)
{
	int given;
	if (!s->auth.enabled || peer_on_loopback(c) || bearer_role(s, c, &given) >= AUTH_WORKER)
		return 0;
	*answer = reply_error_hdr(s, c, 401,
				  given ? "wrong token"
					: "tasks from another host need Authorization: Bearer <worker or "
					  "admin token>",
				  bearer);
	return 1;
}

/* Admin actions (shutdown, the queue controls): with an admin token set,
 * the admin token; without one, loopback peers only. Returns 0 when
 * allowed, else 1 with the 401 or 403 answer in *answer. */
static int admin_refused(struct http_server *s, struct MHD_Connection *c, const char *what,
			 enum MHD_Result *answer)
{
	if (s->auth.enabled) {
		int given;
		enum auth_role role = bearer_role(s, c, &given);
		if (role == AUTH_ADMIN)
			return 0;
		if (role == AUTH_WORKER)
			*answer = reply_error(s, c, 403, "the worker token cannot %s (use the admin "
							 "token)", what);
		else
			*answer = reply_error_hdr(s, c, 401,
						  given ? "wrong admin token"
							: "missing Authorization: Bearer <admin token>",
						  bearer);
		return 1;
	}
	if (peer_on_loopback(c))
		return 0;
	*answer = reply_error(s, c, 403,
			      "%s from another host needs an admin token (start forqd with "
			      "FORQ_ADMIN_TOKEN or --admin-token-file)", what);
	return 1;
}

static enum MHD_Result post_shutdown(struct http_server *s, struct MHD_Connection *c)
{
	const char *mode = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode");
	enum MHD_Result refused;
	int now;

	if (!mode || strcmp(mode, "drain") == 0)
		now = 0;
	else if (strcmp(mode, "now") == 0)
		now = 1;
	else
		return reply_error(s, c, 400, "unknown mode \"%.32s\" (use drain or now)", mode);
	if (admin_refused(s, c, "shut forqd down", &refused))
		return refused;
	buf_reset(&s->out);
	int r = buf_printf(&s->out, "{\"status\":\"shutting down\",\"mode\":\"%s\"}",
			   now ? "now" : "drain");
	enum MHD_Result ok = reply_out(s, c, 202, r, NULL);
	if (ok == MHD_YES && !r)
		s->h.shutdown(s->h.ctx, now);
	return ok;
}

/* The answer to a queue control that failed with r. */
static enum MHD_Result queue_refusal(struct http_server *s, struct MHD_Connection *c, int op,
				     const char *name, uint64_t id, int r)
{
	int e;
	buf_reset(&s->out);
	switch (r) {
	case -ENOENT:
		e = buf_puts(&s->out, "{\"error\":\"unknown queue \\\"");
		if (!e)
			e = buf_json_escape(&s->out, name, strlen(name));
		if (!e)
			e = buf_puts(&s->out, "\\\" (forqd serves no queue of that name)\"}");
		return reply_out(s, c, 404, e, NULL);
	case -ENOMSG:
		return reply_error(s, c, 404,
				   "task %" PRIu64 " is not queued (unknown, finished or forgotten)", id);
	case -EBUSY:
		return reply_error(s, c, 409,
				   "task %" PRIu64 " is running: only a queued task can be cancelled", id);
	case -ESRCH:
	case -ETIMEDOUT:
		return reply_error(s, c, 503, "forqd did not serve the %s in time", route_queue_ops[op]);
	default:
		return reply_error(s, c, 500, "cannot %s: %s", route_queue_ops[op], strerror(-r));
	}
}

static enum MHD_Result post_queue(struct http_server *s, struct MHD_Connection *c, const char *url)
{
	char name[QUEUE_NAME_MAX], idtext[24];
	int op = route_queue(url, name, idtext);
	uint64_t arg = 0;
	enum MHD_Result refused;

	if (op == HTTP_QUEUE_CANCEL) {
		if (task_access_refused(s, c, &refused))
			return refused;
		if (parse_task_id(idtext, &arg))
			return reply_error(s, c, 400,
					   "bad task id \"%.24s\" (expected a positive integer)", idtext);
	} else if (admin_refused(s, c, op == HTTP_QUEUE_PURGE ? "purge a queue"
							     : "pause or resume a queue",
				 &refused)) {
		return refused;
	}
	uint64_t id = arg;
	int r = s->h.queue ? s->h.queue(s->h.ctx, name, op, &arg) : -ENOSYS;
	if (r)
		return queue_refusal(s, c, op, name, id, r);
	buf_reset(&s->out);
	r = buf_puts(&s->out, "{\"queue\":\"");
	if (!r)
		r = buf_json_escape(&s->out, name, strlen(name));
	if (!r && op == HTTP_QUEUE_CANCEL)
		r = buf_printf(&s->out, "\",\"id\":%" PRIu64 ",\"status\":\"cancelled\"}", id);
	else if (!r && op == HTTP_QUEUE_PURGE)
		r = buf_printf(&s->out, "\",\"purged\":%" PRIu64 "}", arg);
	else if (!r)
		r = buf_printf(&s->out, "\",\"paused\":%s}", op == HTTP_QUEUE_PAUSE ? "true" : "false");
	return reply_out(s, c, 200, r, NULL);
}

static enum MHD_Result get_asset(struct http_server *s, struct MHD_Connection *c,
				 const struct web_asset *a)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(a->len, (void *)a->data,
								 MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'self'; style-src 'self'; script-src 'self'");
	ok = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	if (ok == MHD_YES)
		count(s, 200);
	return ok;
}


/* The guard's record of c (NULL if it has none) and the guard's clock. */
static struct guard_conn *conn_guard(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static uint64_t now_ms(void)
{
	return clock_mono_ns() / 1000000u;
}

/* MHD calls this first with the headers, then with each piece of the body,
 * then once more with *upload_size == 0: POST routes answer on that call. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct http_server *s = cls;
	struct req *rq = *con_cls;
	enum route r = route_find(url);
	(void)version;

	if (!rq) {
		guard_state(conn_guard(c), GUARD_SERVING, now_ms());
		int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
		int post = strcmp(method, "POST") == 0;
		const char *const allow[] = {MHD_HTTP_HEADER_ALLOW,
					     route_is_post(r) ? ALLOW_POST : ALLOW_GET, NULL};

		enum MHD_Result refused;
		if (r == R_NONE)
			return reply_error(s, c, 404, "no such path %.200s", url);
		if (route_is_post(r) ? !post : !get)
			return reply_error_hdr(s, c, 405, "method not allowed", allow);
		if ((r == R_TASKS || r == R_TASK_ID) && task_access_refused(s, c, &refused))
			return refused;
		switch (r) {
		case R_METRICS: return get_metrics(s, c);
		case R_STATS: return get_stats(s, c);
		case R_HEALTHZ:
			return reply(s, c, 200, CT_JSON, "{\"status\":\"ok\"}", 15, NULL);
		case R_READYZ: return get_readyz(s, c);
		case R_TASK_ID: {
			char name[QUEUE_NAME_MAX];
			const char *idtext = "";
			route_tasks(url, name, &idtext);
			return get_task(s, c, name[0] ? name : NULL, idtext);
		}
		case R_ASSET: return get_asset(s, c, route_asset(url));
		default: break;
		}
		/* POST: refuse a declared oversize body before reading it. */
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > s->max_body)
			return reply_error(s, c, 413, "body is over the limit of %zu bytes",
					   s->max_body);
		if (!(rq = calloc(1, sizeof *rq)))
			return MHD_NO;
		*con_cls = rq;
		guard_state(conn_guard(c), GUARD_RECEIVING, now_ms()); /* may give way if slow */
		return MHD_YES;
	}
	if (*upload_size) {
		guard_body(conn_guard(c), *upload_size);
		if (!rq->too_big && !rq->oom) {
			if (*upload_size > s->max_body - rq->body.len) {
				rq->too_big = 1;
				buf_free(&rq->body);
			} else if (buf_append(&rq->body, upload, *upload_size)) {
				rq->oom = 1;
				buf_free(&rq->body);
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	guard_state(conn_guard(c), GUARD_SERVING, now_ms());
	if (rq->too_big)
		return reply_error(s, c, 413, "body is over the limit of %zu bytes", s->max_body);
	if (rq->oom)
		return reply_error(s, c, 500, "out of memory");
	if (r == R_QUEUE)
		return post_queue(s, c, url);
	if (r == R_TASKS) {
		char name[QUEUE_NAME_MAX];
		const char *idtext;
		route_tasks(url, name, &idtext);
		return post_tasks(s, c, rq, name[0] ? name : NULL);
	}
	return post_shutdown(s, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;
	(void)cls, (void)toe;
	guard_state(conn_guard(c), GUARD_IDLE, now_ms());
	if (rq) {
		wait_free(cls, rq);
		buf_free(&rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

/* MHD decodes %XX in place; a decoded NUL would end the path early
 * ("/index.html%00.js" served the page). Such text is left as it came, so it
 * matches no route: 404. */
static size_t on_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls, (void)c;
	return strstr(s, "%00") ? strlen(s) : MHD_http_unescape(s);
}

/* Connections open and close on MHD's thread: the guard counts them. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_server *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		guard_closed(s->guard, *socket_context);
		*socket_context = NULL;
		return;
	}
	const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *sa = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	*socket_context = fd && sa ? guard_opened(s->guard, fd->connect_fd, sa->client_addr, now_ms())
				   : NULL;
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct http_server *s = cls;
	(void)len;
	return guard_admit(s->guard, addr, now_ms()) ? MHD_YES : MHD_NO;
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *s = cls;
	char line[512];
	size_t n;
	if (!s->h.log)
		return;
	vsnprintf(line, sizeof line, fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	s->h.log(s->h.ctx, line);
}

int http_start(struct http_server **sp, const struct http_config *c, const struct http_hooks *h,
	       char *err, size_t errlen)
{
	struct http_server *s = NULL;
	int fd = -1, r;

	*sp = NULL;
	if (!h->snapshot || !h->push || !h->lookup || !h->shutdown || !h->ready) {
		errmsg_set(err, errlen, "http: a hook is missing");
		return -EINVAL;
	}
	if (!(s = calloc(1, sizeof *s)) ||
	    !(s->snap = calloc(c->n_queues ? c->n_queues : 1, sizeof *s->snap))) {
		errmsg_set(err, errlen, "http: out of memory");
		r = -ENOMEM;
		goto fail;
	}
	s->n_snap = c->n_queues ? c->n_queues : 1;
	s->h = *h;
	if (!(s->guard = guard_new(c->per_ip_limit ? c->per_ip_limit : 64u))) {
		errmsg_set(err, errlen, "http: out of memory");
		r = -ENOMEM;
		goto fail;
	}
	s->max_body = c->max_body ? c->max_body : 1024 * 1024;
	s->max_payload = c->max_payload;
	if (auth_init(&s->auth, c->admin_token) || auth_add_worker(&s->auth, c->worker_token)) {
		errmsg_set(err, errlen, "a token is empty (or a worker token without an admin token)");
		r = -EINVAL;
		goto fail;
	}
	/* MHD gets a descriptor of its own: it closes the socket it is given in
	 * MHD_stop_daemon (unless quiesced: then http_stop does), and in 0.9.75
	 * on some MHD_start_daemon failures but not others. So listen_fd stays
	 * the caller's whatever happens, and nothing is ever closed twice. */
	if ((fd = fcntl(c->listen_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		r = -errno;
		errmsg_set(err, errlen, "http: cannot use the listening socket: %s", strerror(-r));
		goto fail;
	}
	if (h->durable_take && h->durable && h->durable_free &&
	    (r = waiting_start(&s->waiting, h))) {
		errmsg_set(err, errlen, "http: cannot start its thread: %s", strerror(-r));
		goto fail;
	}
	s->d = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
			MHD_ALLOW_SUSPEND_RESUME,
		0, on_accept, s,
		/* the logger first, so that MHD's own option checks use it too */
		on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_log, s, MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
		on_connection, s, MHD_OPTION_CONNECTION_LIMIT, c->conn_limit ? c->conn_limit : 2048u,
		MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, s, MHD_OPTION_CONNECTION_TIMEOUT,
		c->conn_timeout_s ? c->conn_timeout_s : 10u, MHD_OPTION_END);
	if (!s->d) {
		/* fd is now MHD's to have closed or not: leave it (at worst one
		 * descriptor on a failure forqd exits on). */
		errmsg_set(err, errlen, "cannot start the HTTP server (libmicrohttpd refused)");
		r = -EIO;
		goto fail;
	}
	*sp = s;
	return 0;
fail:
	if (s) {
		waiting_stop(s->waiting);
		auth_clear(&s->auth);
		guard_free(s->guard);
		free(s->snap);
		free(s);
	}
	return r;
}

void http_stop(struct http_server *s)
{
	const union MHD_DaemonInfo *di;
	MHD_socket fd;

	if (!s)
		return;
	/* After quiesce MHD's listening socket (our duplicate) is ours to close,
	 * after the stop: MHD_stop_daemon closes it only when not quiesced. */
	waiting_stop(s->waiting); /* resumed: answered 503 in the drain below */
	s->waiting = NULL;
	fd = MHD_quiesce_daemon(s->d);
	for (int waited = 0; waited < HTTP_DRAIN_MS; waited += 10) {
		di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (!di || di->num_connections == 0)
			break;
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	MHD_stop_daemon(s->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	auth_clear(&s->auth);
	guard_free(s->guard); /* after the stop: MHD told it of every close */
	buf_free(&s->out);
	free(s->snap);
	free(s);
}
