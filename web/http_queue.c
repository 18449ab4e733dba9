/* http_queue.c — the HTTP routes of the queue controls: pause, resume,
 * purge, cancel, and the dead letters (list, re-queue). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "parse.h"
#include "route.h"

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
		return http_reply_out(s, c, 404, e, NULL);
	case -ENOMSG:
		return http_reply_error(
			s, c, 404,
			"task %" PRIu64 " is not queued (unknown, finished or forgotten)", id);
	case -EBUSY:
		return http_reply_error(
			s, c, 409,
			"task %" PRIu64 " is running: only a queued task can be cancelled", id);
	case -ESRCH:
	case -ETIMEDOUT:
		return http_reply_error(s, c, 503, "forqd did not serve the %s in time",
					route_queue_ops[op]);
	default:
		return http_reply_error(s, c, 500, "cannot %s: %s", route_queue_ops[op],
					strerror(-r));
	}
}

enum MHD_Result http_post_queue(struct http_server *s, struct MHD_Connection *c, const char *url)
{
	char name[QUEUE_NAME_MAX], idtext[24];
	int op = route_queue(url, name, idtext);
	uint64_t arg = 0;
	enum MHD_Result refused;

	if (op == HTTP_QUEUE_CANCEL) {
		if (http_task_access_refused(s, c, &refused))
			return refused;
		if (parse_task_id(idtext, &arg))
			return http_reply_error(
				s, c, 400, "bad task id \"%.24s\" (expected a positive integer)",
				idtext);
	} else if (http_admin_refused(s, c,
				      op == HTTP_QUEUE_PURGE ? "purge a queue"
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
		r = buf_printf(&s->out, "\",\"paused\":%s}",
			       op == HTTP_QUEUE_PAUSE ? "true" : "false");
	return http_reply_out(s, c, 200, r, NULL);
}

/* GET [/queues/{name}]/dead: the task routes' rules (it shows payloads). */
enum MHD_Result http_get_dead(struct http_server *s, struct MHD_Connection *c, const char *queue)
{
	enum MHD_Result refused;
	if (http_task_access_refused(s, c, &refused))
		return refused;
	buf_reset(&s->out);
	int r = s->h.dead ? s->h.dead(s->h.ctx, queue, &s->out) : -ENOSYS;
	if (r == -ENOENT)
		return http_unknown_queue(s, c, queue);
	if (r < 0)
		return http_reply_error(s, c, 500, "cannot read the dead letters: %s",
					strerror(-r));
	return http_reply_out(s, c, 200, 0, NULL);
}

/* POST [/queues/{name}]/dead/retry: the admin's, as a purge. All the ids
 * named or none: one that is no dead letter is a 404 and nothing moves. */
enum MHD_Result http_post_dead_retry(struct http_server *s, struct MHD_Connection *c,
				     const char *queue, const char *body, size_t len)
{
	enum MHD_Result refused;
	char err[256];
	uint64_t *ids, missing = 0;
	size_t n;
	if (http_admin_refused(s, c, "re-queue dead letters", &refused))
		return refused;
	int r = http_parse_dead_retry(body, len, &ids, &n, err, sizeof err);
	if (r == -EINVAL)
		return http_reply_error(s, c, 400, "%s", err);
	if (r)
		return http_reply_error(s, c, 500, "out of memory");
	int k = s->h.dead_retry ? s->h.dead_retry(s->h.ctx, queue, ids, n, &missing) : -ENOSYS;
	free(ids);
	if (k == -ENOENT)
		return http_unknown_queue(s, c, queue);
	if (k == -ENOMSG)
		return http_reply_error(s, c, 404,
					"task %" PRIu64 " is no dead letter: nothing re-queued",
					missing);
	if (k < 0)
		return http_reply_error(s, c, 500, "cannot re-queue: %s", strerror(-k));
	const char *name = queue ? queue : "default";
	buf_reset(&s->out);
	r = buf_puts(&s->out, "{\"queue\":\"");
	if (!r)
		r = buf_json_escape(&s->out, name, strlen(name));
	if (!r)
		r = buf_printf(&s->out, "\",\"requeued\":%d}", k);
	return http_reply_out(s, c, 200, r, NULL);
}
