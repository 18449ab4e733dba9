/* http_reply.c — the HTTP thread's answers: JSON bodies and errors, each
 * counted by status for forq_http_requests_total, and who may ask what
 * (tokens, loopback). http_internal.h has the contract. */
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "http_internal.h"
#include "json.h"
#include "net.h"

/* Every status this file sends; forq_http_requests_total has one series each. */
static const uint16_t codes[] = {200, 202, 400, 401, 403, 404, 405, 409, 413, 500, 503};
#define NCODES HTTP_NCODES
_Static_assert(sizeof codes / sizeof codes[0] == NCODES, "one count a code");
_Static_assert(NCODES <= METRICS_MAX_HTTP_CODES, "snapshot holds every code");

void http_count(struct http_server *s, unsigned code)
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
enum MHD_Result http_reply(struct http_server *s, struct MHD_Connection *c, unsigned code,
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
		http_count(s, code);
	return ok;
}

/* The JSON in s->out, or a 500 when building it ran out of memory. */
enum MHD_Result http_reply_out(struct http_server *s, struct MHD_Connection *c, unsigned code,
			       int r, const char *const *extra)
{
	static const char oom[] = "{\"error\":\"out of memory\"}";
	if (r)
		return http_reply(s, c, 500, CT_JSON, oom, sizeof oom - 1, NULL);
	return http_reply(s, c, code, CT_JSON, s->out.data, s->out.len, extra);
}

enum MHD_Result http_reply_error(struct http_server *s, struct MHD_Connection *c, unsigned code,
				 const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	buf_reset(&s->out);
	return http_reply_out(s, c, code, json_error(&s->out, msg), NULL);
}

enum MHD_Result http_reply_error_hdr(struct http_server *s, struct MHD_Connection *c, unsigned code,
				     const char *msg, const char *const *extra)
{
	buf_reset(&s->out);
	return http_reply_out(s, c, code, json_error(&s->out, msg), extra);
}

enum MHD_Result http_unknown_queue(struct http_server *s, struct MHD_Connection *c,
				   const char *name)
{
	return http_reply_error(s, c, 404,
				"unknown queue \"%s\" (forqd serves no queue of that name)", name);
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
	const char *h =
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	*given = h != NULL;
	return auth_role_bearer(&s->auth, h);
}

/* Task writes and reads (payloads, results) from beyond loopback need a
 * token once one is set, as TCP's AUTH does: the worker token or the admin
 * one. Returns 0 when allowed, else 1 with the 401 answer in *answer. */
int http_task_access_refused(struct http_server *s, struct MHD_Connection *c,
			     enum MHD_Result *answer)
{
	int given;
	if (!s->auth.enabled || peer_on_loopback(c) || bearer_role(s, c, &given) >= AUTH_WORKER)
		return 0;
	*answer = http_reply_error_hdr(
		s, c, 401,
		given ? "wrong token"
		      : "tasks from another host need Authorization: Bearer <worker or "
			"admin token>",
		bearer);
	return 1;
}

/* Admin actions (shutdown, the queue controls): with an admin token set,
 * the admin token; without one, loopback peers only. Returns 0 when
 * allowed, else 1 with the 401 or 403 answer in *answer. */
int http_admin_refused(struct http_server *s, struct MHD_Connection *c, const char *what,
		       enum MHD_Result *answer)
{
	if (s->auth.enabled) {
		int given;
		enum auth_role role = bearer_role(s, c, &given);
		if (role == AUTH_ADMIN)
			return 0;
		if (role == AUTH_WORKER)
			*answer = http_reply_error(s, c, 403,
						   "the worker token cannot %s (use the admin "
						   "token)",
						   what);
		else
			*answer = http_reply_error_hdr(
				s, c, 401,
				given ? "wrong admin token"
				      : "missing Authorization: Bearer <admin token>",
				bearer);
		return 1;
	}
	if (peer_on_loopback(c))
		return 0;
	*answer = http_reply_error(s, c, 403,
				   "%s from another host needs an admin token (start forqd with "
				   "FORQ_ADMIN_TOKEN or --admin-token-file)",
				   what);
	return 1;
}
