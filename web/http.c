/* http.c — routes on a libmicrohttpd daemon (internal epoll thread). */
#include "http.h"
#include "http_internal.h"
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

#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define ALLOW_GET "GET, HEAD"
#define ALLOW_POST "POST"

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
		return http_reply_error(s, c, 500, "cannot read the figures: %s", strerror(-r));
	buf_reset(&s->out);
	if (expo_write(&s->out, s->snap, s->n_snap, have_p ? &p : NULL))
		return http_reply_error(s, c, 500, "out of memory");
	return http_reply(s, c, 200, CT_METRICS, s->out.data, s->out.len, NULL);
}

static enum MHD_Result get_stats(struct http_server *s, struct MHD_Connection *c)
{
	struct procstat p;
	int have_p, r;
	if ((r = take_snapshot(s, &p, &have_p)))
		return http_reply_error(s, c, 500, "cannot read the figures: %s", strerror(-r));
	buf_reset(&s->out);
	return http_reply_out(
		s, c, 200,
		json_stats_queues(&s->out, s->snap, s->n_snap, have_p ? &p : NULL, now_unix()),
		NULL);
}

static enum MHD_Result get_readyz(struct http_server *s, struct MHD_Connection *c)
{
	static const char ok[] = "{\"status\":\"ready\"}";
	static const char no[] = "{\"status\":\"not ready\"}";
	if (s->h.ready(s->h.ctx) == 1)
		return http_reply(s, c, 200, CT_JSON, ok, sizeof ok - 1, NULL);
	return http_reply(s, c, 503, CT_JSON, no, sizeof no - 1, NULL);
}

static enum MHD_Result get_task(struct http_server *s, struct MHD_Connection *c,
				const char *queue, const char *idtext)
{
	struct http_task_status st;
	uint64_t id;
	int r;

	if (parse_task_id(idtext, &id))
		return http_reply_error(
			s, c, 400, "bad task id \"%.40s\" (expected a positive integer)", idtext);
	/* The result text is large and filled by lookup: clear only the rest. */
	memset(&st, 0, offsetof(struct http_task_status, result));
	r = s->h.lookup(s->h.ctx, queue, id, &st);
	if (r == -ENOENT)
		return http_unknown_queue(s, c, queue);
	if (r != 1)
		return http_reply_error(s, c, 404, "unknown or forgotten task %" PRIu64, id);
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
	return http_reply_out(s, c, 200, r, NULL);
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
	return http_reply_out(s, c, dups == t->n ? 200 : 202, r, NULL);
}

/* A push's answer, r its outcome. */
static enum MHD_Result answer_push(struct http_server *s, struct MHD_Connection *c,
				   const char *queue, struct http_tasks *t, uint64_t *ids, int r)
{
	static const char *const retry[] = {MHD_HTTP_HEADER_RETRY_AFTER, "1", NULL};
	switch (r) {
	case 0: return reply_ids(s, c, t, ids);
	case -ENOENT: return http_unknown_queue(s, c, queue);
	case -EAGAIN: return http_reply_error_hdr(s, c, 503, "queue full, try again later", retry);
	case -ESHUTDOWN:
		return http_reply_error_hdr(s, c, 503,
					    "forqd is shutting down and takes no new tasks", retry);
	case -EMSGSIZE:
		return http_reply_error(s, c, 413, "a payload is over the queue's max payload");
	case -EINVAL: return http_reply_error(s, c, 400, "the queue refused the tasks as invalid");
	case -ENOTSUP:
		return http_reply_error(s, c, 400,
					"this queue is a NATS stream (forqd --upstream): "
					"tasks take no delay, at or priority other than normal");
	case -ECOMM:
		return http_reply_error_hdr(s, c, 503,
					    "the NATS stream did not acknowledge a task "
					    "(those before it in the request are published)",
					    retry);
	case -ETIMEDOUT:
		return http_reply_error_hdr(
			s, c, 503,
			"the journal did not confirm the tasks on disk in time (a "
			"full or failing disk); they stay queued and may still run",
			retry);
	default: return http_reply_error(s, c, 500, "cannot enqueue: %s", strerror(r < 0 ? -r : r));
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
		return http_reply_error(s, c,
					r == -EINVAL                    ? 400
					: r == -EMSGSIZE || r == -E2BIG ? 413
									: 500,
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
	enum MHD_Result ok = r == -ENOMEM ? http_reply_error(s, c, 500, "out of memory")
					  : answer_push(s, c, queue, &rq->tasks, rq->ids, r);
	wait_free(s, rq);
	return ok;
}

void http_durable(struct http_server *s)
{
	if (s && s->waiting)
		waiting_kick(s->waiting);
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
		return http_reply_error(s, c, 400, "unknown mode \"%.32s\" (use drain or now)",
					mode);
	if (http_admin_refused(s, c, "shut forqd down", &refused))
		return refused;
	buf_reset(&s->out);
	int r = buf_printf(&s->out, "{\"status\":\"shutting down\",\"mode\":\"%s\"}",
			   now ? "now" : "drain");
	enum MHD_Result ok = http_reply_out(s, c, 202, r, NULL);
	if (ok == MHD_YES && !r)
		s->h.shutdown(s->h.ctx, now);
	return ok;
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
		http_count(s, 200);
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
			return http_reply_error(s, c, 404, "no such path %.200s", url);
		if (route_is_post(r) ? !post : !get)
			return http_reply_error_hdr(s, c, 405, "method not allowed", allow);
		if ((r == R_TASKS || r == R_TASK_ID) && http_task_access_refused(s, c, &refused))
			return refused;
		switch (r) {
		case R_METRICS: return get_metrics(s, c);
		case R_STATS: return get_stats(s, c);
		case R_HEALTHZ:
			return http_reply(s, c, 200, CT_JSON, "{\"status\":\"ok\"}", 15, NULL);
		case R_READYZ: return get_readyz(s, c);
		case R_TASK_ID: {
			char name[QUEUE_NAME_MAX];
			const char *idtext = "";
			route_tasks(url, name, &idtext);
			return get_task(s, c, name[0] ? name : NULL, idtext);
		}
		case R_DEAD: {
			char name[QUEUE_NAME_MAX];
			route_dead(url, name);
			return http_get_dead(s, c, name[0] ? name : NULL);
		}
		case R_ASSET: return get_asset(s, c, route_asset(url));
		default: break;
		}
		/* POST: refuse a declared oversize body before reading it. */
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > s->max_body)
			return http_reply_error(s, c, 413, "body is over the limit of %zu bytes",
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
		return http_reply_error(s, c, 413, "body is over the limit of %zu bytes",
					s->max_body);
	if (rq->oom)
		return http_reply_error(s, c, 500, "out of memory");
	if (r == R_QUEUE)
		return http_post_queue(s, c, url);
	if (r == R_DEAD_RETRY) {
		char name[QUEUE_NAME_MAX];
		route_dead(url, name);
		return http_post_dead_retry(s, c, name[0] ? name : NULL, rq->body.data,
					    rq->body.len);
	}
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
